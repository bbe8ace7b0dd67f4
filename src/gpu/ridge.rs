//! The ridge stage on the GPU: [`crate::vision::ridge::RidgeDetector::detect`] in the kernels
//! of `kernels/ridge.cu`, from the frame's pixels (log attenuation in
//! `kernels/normalise.cu`) or from an attenuation plane made on the CPU. The ridge map and the
//! thick mask come back to the host for the stages that follow.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::{check_len, grid_1d, grid_2d, Gpu, GpuError, KernelId};
use crate::frame::Frame;
use crate::vision::ridge::{Kernels, RidgeMap, RidgeParams};
use crate::vision::Plane;

/// Threads along a row in the row pass; each block holds its row segment and the kernels'
/// reach either side in shared memory.
const ROW_BLOCK: u32 = 256;

/// One scale's kernels on the device.
#[derive(Debug)]
pub(crate) struct DeviceKernels {
    pub(crate) sigma_px: f32,
    pub(crate) radius: i32,
    pub(crate) g: CudaSlice<f32>,
    pub(crate) d1: CudaSlice<f32>,
    pub(crate) d2: CudaSlice<f32>,
}

impl DeviceKernels {
    pub(crate) fn new(gpu: &Gpu, sigma_px: f32) -> Result<Self, GpuError> {
        let k = Kernels::new(sigma_px);
        let up = |taps: &[f32]| gpu.stream().clone_htod(taps).map_err(GpuError::driver("upload of kernel taps"));
        Ok(DeviceKernels { sigma_px, radius: k.radius as i32, g: up(&k.g)?, d1: up(&k.d1)?, d2: up(&k.d2)? })
    }
}

/// Planes of one frame's size on the device for the separable filters: the row pass's three
/// outputs and the Hessian's three entries.
#[derive(Debug)]
pub(crate) struct HessianPlanes {
    pub(crate) width: usize,
    pub(crate) height: usize,
    smooth: CudaSlice<f32>,
    first: CudaSlice<f32>,
    second: CudaSlice<f32>,
    pub(crate) xx: CudaSlice<f32>,
    pub(crate) xy: CudaSlice<f32>,
    pub(crate) yy: CudaSlice<f32>,
}

impl HessianPlanes {
    pub(crate) fn new(gpu: &Gpu, width: usize, height: usize) -> Result<Self, GpuError> {
        let plane = || gpu.stream().alloc_zeros::<f32>(width * height).map_err(GpuError::driver("allocation"));
        Ok(HessianPlanes {
            width,
            height,
            smooth: plane()?,
            first: plane()?,
            second: plane()?,
            xx: plane()?,
            xy: plane()?,
            yy: plane()?,
        })
    }

    /// The row pass of `k` over `input`.
    pub(crate) fn rows(&mut self, gpu: &Gpu, input: &CudaSlice<f32>, k: &DeviceKernels) -> Result<(), GpuError> {
        let (w, h) = (self.width as i32, self.height as i32);
        let cfg = LaunchConfig {
            grid_dim: ((self.width as u32).div_ceil(ROW_BLOCK), self.height as u32, 1),
            block_dim: (ROW_BLOCK, 1, 1),
            shared_mem_bytes: (ROW_BLOCK + 2 * k.radius as u32) * 4,
        };
        let mut launch = gpu.stream().launch_builder(gpu.function(KernelId::RidgeRows));
        launch.arg(input).arg(&w).arg(&h).arg(&k.g).arg(&k.d1).arg(&k.d2).arg(&k.radius);
        launch.arg(&mut self.smooth).arg(&mut self.first).arg(&mut self.second);
        // SAFETY: the arguments match wt_ridge_rows's parameters; every plane holds w × h
        // values and the shared memory the tile needs is asked for.
        unsafe { launch.launch(cfg) }.map(drop).map_err(GpuError::driver("wt_ridge_rows"))
    }

    /// The Hessian of the last row pass, scaled by σ².
    pub(crate) fn hessian(&mut self, gpu: &Gpu, k: &DeviceKernels) -> Result<(), GpuError> {
        let s2 = k.sigma_px * k.sigma_px;
        let (w, h) = (self.width, self.height);
        cols(gpu, (w, h), &self.second, (&k.g, k.radius, false, s2), &mut self.xx)?;
        cols(gpu, (w, h), &self.first, (&k.d1, k.radius, true, s2), &mut self.xy)?;
        cols(gpu, (w, h), &self.smooth, (&k.d2, k.radius, false, s2), &mut self.yy)
    }
}

/// The column pass of one kernel (`anti`: antisymmetric) over `input`, times `scale`.
fn cols(
    gpu: &Gpu,
    (w, h): (usize, usize),
    input: &CudaSlice<f32>,
    (k, radius, anti, scale): (&CudaSlice<f32>, i32, bool, f32),
    out: &mut CudaSlice<f32>,
) -> Result<(), GpuError> {
    let (wi, hi, anti) = (w as i32, h as i32, i32::from(anti));
    let mut launch = gpu.stream().launch_builder(gpu.function(KernelId::RidgeCols));
    launch.arg(input).arg(&wi).arg(&hi).arg(k).arg(&radius).arg(&anti).arg(&scale).arg(out);
    // SAFETY: the arguments match wt_ridge_cols's parameters; both planes hold w × h values.
    unsafe { launch.launch(grid_2d(w, h)) }.map(drop).map_err(GpuError::driver("wt_ridge_cols"))
}

/// [`crate::vision::ridge::RidgeDetector`] on the GPU, with every buffer made at start.
#[derive(Debug)]
pub struct GpuRidge {
    gpu: Arc<Gpu>,
    params: RidgeParams,
    wire: Vec<DeviceKernels>,
    thick: DeviceKernels,
    planes: HessianPlanes,
    pixels: CudaSlice<u16>,
    lut: CudaSlice<f32>,
    lut_maxval: u16,
    input: CudaSlice<f32>,
    gx: CudaSlice<f32>,
    gy: CudaSlice<f32>,
    strength: CudaSlice<f32>,
    normal_x: CudaSlice<f32>,
    normal_y: CudaSlice<f32>,
    raw: CudaSlice<f32>,
    response: CudaSlice<f32>,
    mask: CudaSlice<u8>,
    scratch: CudaSlice<u8>,
}

impl GpuRidge {
    /// The ridge stage for `width` × `height` frames with `params`.
    pub fn new(gpu: Arc<Gpu>, width: usize, height: usize, params: &RidgeParams) -> Result<Self, GpuError> {
        let n = width * height;
        let stream = gpu.stream().clone();
        let f32s = |len: usize| stream.alloc_zeros::<f32>(len).map_err(GpuError::driver("allocation"));
        let u8s = || stream.alloc_zeros::<u8>(n).map_err(GpuError::driver("allocation"));
        let wire = params.wire_scales_px.iter().map(|&s| DeviceKernels::new(&gpu, s)).collect::<Result<Vec<_>, _>>()?;
        Ok(GpuRidge {
            thick: DeviceKernels::new(&gpu, params.thick_scale_px)?,
            planes: HessianPlanes::new(&gpu, width, height)?,
            pixels: stream.alloc_zeros::<u16>(n).map_err(GpuError::driver("allocation"))?,
            lut: f32s(usize::from(u16::MAX) + 1)?,
            lut_maxval: 0,
            input: f32s(n)?,
            gx: f32s(n)?,
            gy: f32s(n)?,
            strength: f32s(n)?,
            normal_x: f32s(n)?,
            normal_y: f32s(n)?,
            raw: f32s(n)?,
            response: f32s(n)?,
            mask: u8s()?,
            scratch: u8s()?,
            wire,
            params: params.clone(),
            gpu,
        })
    }

    /// The log attenuation of `frame` as the stage's input, through `table` (the CPU
    /// normaliser's, [`crate::vision::normalise::Normaliser::table`], for `frame.maxval`).
    pub fn load_frame(&mut self, frame: &Frame, table: &[f32]) -> Result<(), GpuError> {
        check_len("the frame", frame.pixels.len(), self.pixels.len())?;
        let maxval = frame.maxval.max(1);
        check_len("the attenuation table", table.len(), usize::from(maxval) + 1)?;
        let stream = self.gpu.stream();
        if maxval != self.lut_maxval {
            stream.memcpy_htod(table, &mut self.lut).map_err(GpuError::driver("upload of the attenuation table"))?;
            self.lut_maxval = maxval;
        }
        stream.memcpy_htod(&frame.pixels[..], &mut self.pixels).map_err(GpuError::driver("upload of the frame"))?;
        let (top, n) = (i32::from(maxval), self.planes.width as i32 * self.planes.height as i32);
        let mut launch = stream.launch_builder(self.gpu.function(KernelId::LogAttenuation));
        launch.arg(&self.pixels).arg(&self.lut).arg(&top).arg(&mut self.input).arg(&n);
        // SAFETY: the arguments match wt_log_attenuation's; the table has 65 536 entries.
        unsafe { launch.launch(grid_1d(n as usize)) }.map(drop).map_err(GpuError::driver("wt_log_attenuation"))
    }

    /// An attenuation plane made on the CPU (after background suppression) as the input.
    pub fn load_attenuation(&mut self, attenuation: &Plane<f32>) -> Result<(), GpuError> {
        check_len("the attenuation", attenuation.data.len(), self.input.len())?;
        self.gpu
            .stream()
            .memcpy_htod(&attenuation.data[..], &mut self.input)
            .map_err(GpuError::driver("upload of the attenuation"))
    }

    /// The loaded input's log attenuation, for tests and diagnostics.
    pub fn input(&self, out: &mut Plane<f32>) -> Result<(), GpuError> {
        check_len("the attenuation", out.data.len(), self.input.len())?;
        self.gpu.stream().memcpy_dtoh(&self.input, &mut out.data[..]).map_err(GpuError::driver("download"))?;
        self.gpu.synchronize()
    }

    /// The ridge map of the loaded input into `out`, and where thick structures were masked
    /// into `thick_mask`.
    pub fn detect(&mut self, out: &mut RidgeMap, thick_mask: &mut Plane<u8>) -> Result<(), GpuError> {
        let (w, h) = (self.planes.width, self.planes.height);
        for (what, got) in [
            ("the ridge strength", out.strength.data.len()),
            ("the ridge normal", out.normal_x.data.len()),
            ("the ridge normal", out.normal_y.data.len()),
            ("the thick mask", thick_mask.data.len()),
        ] {
            check_len(what, got, w * h)?;
        }
        let gpu = Arc::clone(&self.gpu);
        let stream = gpu.stream();
        let (wi, hi, n) = (w as i32, h as i32, (w * h) as i32);
        let two_b2 = 2.0 * self.params.beta * self.params.beta;
        let mut launch = stream.launch_builder(gpu.function(KernelId::RidgeInit));
        launch.arg(&mut self.strength).arg(&mut self.normal_x).arg(&mut self.normal_y).arg(&mut self.raw).arg(&n);
        // SAFETY: the arguments match wt_ridge_init's; every plane holds n values.
        unsafe { launch.launch(grid_1d(w * h)) }.map_err(GpuError::driver("wt_ridge_init"))?;
        for k in &self.wire {
            self.planes.rows(&gpu, &self.input, k)?;
            self.planes.hessian(&gpu, k)?;
            let s1 = k.sigma_px;
            cols(&gpu, (w, h), &self.planes.first, (&k.g, k.radius, false, s1), &mut self.gx)?;
            cols(&gpu, (w, h), &self.planes.smooth, (&k.d1, k.radius, true, s1), &mut self.gy)?;
            let p = &self.planes;
            let mut launch = stream.launch_builder(gpu.function(KernelId::RidgeFold));
            launch.arg(&p.xx).arg(&p.xy).arg(&p.yy).arg(&self.gx).arg(&self.gy);
            launch.arg(&mut self.strength).arg(&mut self.normal_x).arg(&mut self.normal_y).arg(&mut self.raw);
            launch.arg(&n).arg(&two_b2).arg(&self.params.edge_tolerance);
            // SAFETY: the arguments match wt_ridge_fold's; every plane holds n values.
            unsafe { launch.launch(grid_1d(w * h)) }.map_err(GpuError::driver("wt_ridge_fold"))?;
        }
        self.planes.rows(&gpu, &self.input, &self.thick)?;
        self.planes.hessian(&gpu, &self.thick)?;
        let p = &self.planes;
        let mut launch = stream.launch_builder(gpu.function(KernelId::WeightedDepth));
        launch.arg(&p.xx).arg(&p.xy).arg(&p.yy).arg(&mut self.response).arg(&n).arg(&two_b2);
        // SAFETY: the arguments match wt_weighted_depth's; every plane holds n values.
        unsafe { launch.launch(grid_1d(w * h)) }.map_err(GpuError::driver("wt_weighted_depth"))?;
        let min_depth = self.params.thick_min_depth;
        let mut launch = stream.launch_builder(gpu.function(KernelId::ThickCentres));
        launch.arg(&self.response).arg(&self.raw).arg(&p.xx).arg(&p.xy).arg(&p.yy).arg(&mut self.mask);
        launch.arg(&wi).arg(&hi).arg(&min_depth);
        // SAFETY: the arguments match wt_thick_centres's; every plane holds w × h values.
        unsafe { launch.launch(grid_2d(w, h)) }.map_err(GpuError::driver("wt_thick_centres"))?;
        let radius = self.params.thick_dilation_px() as i32;
        for axis in [0i32, 1] {
            let (from, to) = if axis == 0 { (&self.mask, &mut self.scratch) } else { (&self.scratch, &mut self.mask) };
            let mut launch = stream.launch_builder(gpu.function(KernelId::Dilate));
            launch.arg(from).arg(to).arg(&wi).arg(&hi).arg(&radius).arg(&axis);
            // SAFETY: the arguments match wt_dilate's; both masks hold w × h values.
            unsafe { launch.launch(grid_2d(w, h)) }.map_err(GpuError::driver("wt_dilate"))?;
        }
        let (min_cos, margin) = (self.params.parallel_min_cos(), self.params.border_margin_px() as i32);
        let mut launch = stream.launch_builder(gpu.function(KernelId::RidgeFinish));
        launch.arg(&mut self.strength).arg(&self.normal_x).arg(&self.normal_y).arg(&self.mask);
        launch.arg(&p.xx).arg(&p.xy).arg(&p.yy).arg(&wi).arg(&hi).arg(&min_cos).arg(&margin);
        // SAFETY: the arguments match wt_ridge_finish's; every plane holds w × h values.
        unsafe { launch.launch(grid_2d(w, h)) }.map_err(GpuError::driver("wt_ridge_finish"))?;
        let down = GpuError::driver("download of the ridge map");
        stream.memcpy_dtoh(&self.strength, &mut out.strength.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.normal_x, &mut out.normal_x.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.normal_y, &mut out.normal_y.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.mask, &mut thick_mask.data[..]).map_err(&down)?;
        gpu.synchronize()
    }
}
