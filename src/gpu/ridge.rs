//! The ridge stage on the GPU: [`crate::vision::ridge::RidgeDetector::detect`] in the kernels
//! of `kernels/ridge.cu`, from the frame's pixels (log attenuation in
//! `kernels/normalise.cu`) or from an attenuation plane made on the CPU. The ridge map and the
//! thick mask come back to the host for the stages that follow.

use std::sync::Arc;

use cudarc::driver::LaunchConfig;

use super::{check_len, grid_1d, grid_2d, DeviceBuffer, Gpu, GpuError, KernelId};
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
    pub(crate) g: DeviceBuffer<f32>,
    pub(crate) d1: DeviceBuffer<f32>,
    pub(crate) d2: DeviceBuffer<f32>,
}

impl DeviceKernels {
    pub(crate) fn new(gpu: &Gpu, sigma_px: f32) -> Result<Self, GpuError> {
        let k = Kernels::new(sigma_px);
        Ok(DeviceKernels {
            sigma_px,
            radius: k.radius as i32,
            g: DeviceBuffer::from_host(gpu, &k.g)?,
            d1: DeviceBuffer::from_host(gpu, &k.d1)?,
            d2: DeviceBuffer::from_host(gpu, &k.d2)?,
        })
    }
}

/// Planes of one frame's size on the device for the separable filters: the row pass's three
/// outputs and the Hessian's three entries.
#[derive(Debug)]
pub(crate) struct HessianPlanes {
    pub(crate) width: usize,
    pub(crate) height: usize,
    smooth: DeviceBuffer<f32>,
    first: DeviceBuffer<f32>,
    second: DeviceBuffer<f32>,
    pub(crate) xx: DeviceBuffer<f32>,
    pub(crate) xy: DeviceBuffer<f32>,
    pub(crate) yy: DeviceBuffer<f32>,
}

impl HessianPlanes {
    pub(crate) fn new(gpu: &Gpu, width: usize, height: usize) -> Result<Self, GpuError> {
        let plane = || DeviceBuffer::zeros(gpu, width * height);
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

    /// The row pass of `k` over `input` (a plane of this size).
    pub(crate) fn rows(&self, gpu: &Gpu, input: &DeviceBuffer<f32>, k: &DeviceKernels) -> Result<(), GpuError> {
        let (w, h) = (self.width as i32, self.height as i32);
        let cfg = LaunchConfig {
            grid_dim: ((self.width as u32).div_ceil(ROW_BLOCK), self.height as u32, 1),
            block_dim: (ROW_BLOCK, 1, 1),
            shared_mem_bytes: (ROW_BLOCK + 2 * k.radius as u32) * 4,
        };
        let (smooth, first, second) = (&self.smooth.addr, &self.first.addr, &self.second.addr);
        // SAFETY: the arguments match wt_ridge_rows's parameters; every plane holds w × h
        // values, each kernel 2r + 1 taps, and the shared memory the tile needs is asked for.
        unsafe {
            launch!(gpu, KernelId::RidgeRows, cfg;
                &input.addr, &w, &h, &k.g.addr, &k.d1.addr, &k.d2.addr, &k.radius, smooth, first, second)
        }
    }

    /// The Hessian of the last row pass, scaled by σ².
    pub(crate) fn hessian(&self, gpu: &Gpu, k: &DeviceKernels) -> Result<(), GpuError> {
        let s2 = k.sigma_px * k.sigma_px;
        let size = (self.width, self.height);
        cols(gpu, size, &self.second, (&k.g, k.radius, false, s2), &self.xx)?;
        cols(gpu, size, &self.first, (&k.d1, k.radius, true, s2), &self.xy)?;
        cols(gpu, size, &self.smooth, (&k.d2, k.radius, false, s2), &self.yy)
    }
}

/// The column pass of one kernel (`anti`: antisymmetric) over `input`, times `scale`.
fn cols(
    gpu: &Gpu,
    (w, h): (usize, usize),
    input: &DeviceBuffer<f32>,
    (k, radius, anti, scale): (&DeviceBuffer<f32>, i32, bool, f32),
    out: &DeviceBuffer<f32>,
) -> Result<(), GpuError> {
    let (wi, hi, anti) = (w as i32, h as i32, i32::from(anti));
    // SAFETY: the arguments match wt_ridge_cols's parameters; both planes hold w × h values,
    // the kernel 2r + 1 taps.
    unsafe {
        launch!(gpu, KernelId::RidgeCols, grid_2d(w, h);
            &input.addr, &wi, &hi, &k.addr, &radius, &anti, &scale, &out.addr)
    }
}

/// [`crate::vision::ridge::RidgeDetector`] on the GPU, with every buffer made at start.
#[derive(Debug)]
pub struct GpuRidge {
    gpu: Arc<Gpu>,
    params: RidgeParams,
    wire: Vec<DeviceKernels>,
    thick: DeviceKernels,
    planes: HessianPlanes,
    pixels: DeviceBuffer<u16>,
    lut: DeviceBuffer<f32>,
    lut_maxval: u16,
    input: DeviceBuffer<f32>,
    gx: DeviceBuffer<f32>,
    gy: DeviceBuffer<f32>,
    strength: DeviceBuffer<f32>,
    normal_x: DeviceBuffer<f32>,
    normal_y: DeviceBuffer<f32>,
    raw: DeviceBuffer<f32>,
    response: DeviceBuffer<f32>,
    mask: DeviceBuffer<u8>,
    scratch: DeviceBuffer<u8>,
}

impl GpuRidge {
    /// The ridge stage for `width` × `height` frames with `params`.
    pub fn new(gpu: Arc<Gpu>, width: usize, height: usize, params: &RidgeParams) -> Result<Self, GpuError> {
        let n = width * height;
        let plane = || DeviceBuffer::<f32>::zeros(&gpu, n);
        let wire = params.wire_scales_px.iter().map(|&s| DeviceKernels::new(&gpu, s)).collect::<Result<Vec<_>, _>>()?;
        Ok(GpuRidge {
            thick: DeviceKernels::new(&gpu, params.thick_scale_px)?,
            planes: HessianPlanes::new(&gpu, width, height)?,
            pixels: DeviceBuffer::zeros(&gpu, n)?,
            lut: DeviceBuffer::zeros(&gpu, usize::from(u16::MAX) + 1)?,
            lut_maxval: 0,
            input: plane()?,
            gx: plane()?,
            gy: plane()?,
            strength: plane()?,
            normal_x: plane()?,
            normal_y: plane()?,
            raw: plane()?,
            response: plane()?,
            mask: DeviceBuffer::zeros(&gpu, n)?,
            scratch: DeviceBuffer::zeros(&gpu, n)?,
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
            stream
                .memcpy_htod(table, &mut self.lut.slice)
                .map_err(GpuError::driver("upload of the attenuation table"))?;
            self.lut_maxval = maxval;
        }
        stream
            .memcpy_htod(&frame.pixels[..], &mut self.pixels.slice)
            .map_err(GpuError::driver("upload of the frame"))?;
        let (top, n) = (i32::from(maxval), self.pixels.len() as i32);
        // SAFETY: the arguments match wt_log_attenuation's; the table has 65 536 entries, the
        // frame and the attenuation n values.
        unsafe {
            launch!(self.gpu, KernelId::LogAttenuation, grid_1d(n as usize);
                &self.pixels.addr, &self.lut.addr, &top, &self.input.addr, &n)
        }
    }

    /// An attenuation plane made on the CPU (after background suppression) as the input.
    pub fn load_attenuation(&mut self, attenuation: &Plane<f32>) -> Result<(), GpuError> {
        check_len("the attenuation", attenuation.data.len(), self.input.len())?;
        self.gpu
            .stream()
            .memcpy_htod(&attenuation.data[..], &mut self.input.slice)
            .map_err(GpuError::driver("upload of the attenuation"))
    }

    /// The loaded input's log attenuation, for tests and diagnostics.
    pub fn input(&self, out: &mut Plane<f32>) -> Result<(), GpuError> {
        check_len("the attenuation", out.data.len(), self.input.len())?;
        self.gpu.stream().memcpy_dtoh(&self.input.slice, &mut out.data[..]).map_err(GpuError::driver("download"))?;
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
        let gpu = &*self.gpu;
        let (wi, hi, n) = (w as i32, h as i32, (w * h) as i32);
        let two_b2 = 2.0 * self.params.beta * self.params.beta;
        let (strength, nx, ny, raw) = (&self.strength.addr, &self.normal_x.addr, &self.normal_y.addr, &self.raw.addr);
        // SAFETY: the arguments match wt_ridge_init's; every plane holds n values.
        unsafe { launch!(gpu, KernelId::RidgeInit, grid_1d(w * h); strength, nx, ny, raw, &n) }?;
        let p = &self.planes;
        for k in &self.wire {
            p.rows(gpu, &self.input, k)?;
            p.hessian(gpu, k)?;
            let s1 = k.sigma_px;
            cols(gpu, (w, h), &p.first, (&k.g, k.radius, false, s1), &self.gx)?;
            cols(gpu, (w, h), &p.smooth, (&k.d1, k.radius, true, s1), &self.gy)?;
            // SAFETY: the arguments match wt_ridge_fold's; every plane holds n values.
            unsafe {
                launch!(gpu, KernelId::RidgeFold, grid_1d(w * h);
                    &p.xx.addr, &p.xy.addr, &p.yy.addr, &self.gx.addr, &self.gy.addr,
                    strength, nx, ny, raw, &n, &two_b2, &self.params.edge_tolerance)
            }?;
        }
        p.rows(gpu, &self.input, &self.thick)?;
        p.hessian(gpu, &self.thick)?;
        let (hessian, response, mask) = ((&p.xx.addr, &p.xy.addr, &p.yy.addr), &self.response.addr, &self.mask.addr);
        // SAFETY: the arguments match wt_weighted_depth's; every plane holds n values.
        unsafe {
            launch!(gpu, KernelId::WeightedDepth, grid_1d(w * h); hessian.0, hessian.1, hessian.2, response, &n, &two_b2)
        }?;
        let min_depth = self.params.thick_min_depth;
        // SAFETY: the arguments match wt_thick_centres's; every plane holds w × h values.
        unsafe {
            launch!(gpu, KernelId::ThickCentres, grid_2d(w, h);
                response, raw, hessian.0, hessian.1, hessian.2, mask, &wi, &hi, &min_depth)
        }?;
        let radius = self.params.thick_dilation_px() as i32;
        for (axis, from, to) in [(0i32, mask, &self.scratch.addr), (1, &self.scratch.addr, mask)] {
            // SAFETY: the arguments match wt_dilate's; both masks hold w × h values.
            unsafe { launch!(gpu, KernelId::Dilate, grid_2d(w, h); from, to, &wi, &hi, &radius, &axis) }?;
        }
        let (min_cos, margin) = (self.params.parallel_min_cos(), self.params.border_margin_px() as i32);
        // SAFETY: the arguments match wt_ridge_finish's; every plane holds w × h values.
        unsafe {
            launch!(gpu, KernelId::RidgeFinish, grid_2d(w, h);
                strength, nx, ny, mask, hessian.0, hessian.1, hessian.2, &wi, &hi, &min_cos, &margin)
        }?;
        let stream = gpu.stream();
        let down = GpuError::driver("download of the ridge map");
        stream.memcpy_dtoh(&self.strength.slice, &mut out.strength.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.normal_x.slice, &mut out.normal_x.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.normal_y.slice, &mut out.normal_y.data[..]).map_err(&down)?;
        stream.memcpy_dtoh(&self.mask.slice, &mut thick_mask.data[..]).map_err(&down)?;
        gpu.synchronize()
    }
}
