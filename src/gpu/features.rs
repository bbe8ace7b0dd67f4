//! The learned engine's input on the GPU: [`crate::vision::features::FeatureExtractor`] in
//! `kernels/features.cu`, written straight into the engine's padded channel-major layout.
//! The Hessians are taken over the whole frame, which a region's features equal by their
//! definition; the median of the region is taken on the host, which holds the attenuation.

use std::sync::Arc;

use super::ridge::{DeviceKernels, HessianPlanes};
use super::{grid_2d, DeviceBuffer, Gpu, GpuError, KernelId};
use crate::vision::features::{region_median, Roi, CHANNELS, CLAMP, SCALES_PX};
use crate::vision::Plane;

/// Feature extraction for regions of `width` × `height` frames, every buffer made at start.
#[derive(Debug)]
pub struct GpuFeatures {
    gpu: Arc<Gpu>,
    kernels: [DeviceKernels; 2],
    scales: [HessianPlanes; 2],
    input: DeviceBuffer<f32>,
    out: DeviceBuffer<f32>,
    normal_x: DeviceBuffer<f32>,
    normal_y: DeviceBuffer<f32>,
    median_scratch: Vec<f32>,
    normals: (Vec<f32>, Vec<f32>),
    /// Pixels of the last region.
    region_px: usize,
}

impl GpuFeatures {
    /// The stage for `width` × `height` frames, its output at most `max_engine_px` (the
    /// engine's largest input, each side a multiple of the network's).
    pub fn new(gpu: Arc<Gpu>, width: usize, height: usize, max_engine_px: (usize, usize)) -> Result<Self, GpuError> {
        let f32s = |len: usize| DeviceBuffer::zeros(&gpu, len);
        let n = width * height;
        Ok(GpuFeatures {
            kernels: [DeviceKernels::new(&gpu, SCALES_PX[0])?, DeviceKernels::new(&gpu, SCALES_PX[1])?],
            scales: [HessianPlanes::new(&gpu, width, height)?, HessianPlanes::new(&gpu, width, height)?],
            input: f32s(n)?,
            out: f32s(CHANNELS * max_engine_px.0 * max_engine_px.1)?,
            normal_x: f32s(n)?,
            normal_y: f32s(n)?,
            median_scratch: vec![0.0; n],
            normals: (vec![0.0; n], vec![0.0; n]),
            region_px: 0,
            gpu,
        })
    }

    /// Uploads `attenuation` and filters it at both scales, once a frame, for the regions
    /// [`GpuFeatures::extract`] then takes from it.
    pub fn load(&mut self, attenuation: &Plane<f32>) -> Result<(), GpuError> {
        let gpu = &*self.gpu;
        let (fw, fh) = (attenuation.width, attenuation.height);
        if (fw, fh) != (self.scales[0].width, self.scales[0].height) {
            return Err(GpuError::Size(format!(
                "a {fw}x{fh} frame, the stage was made for {}x{}",
                self.scales[0].width, self.scales[0].height
            )));
        }
        gpu.stream()
            .memcpy_htod(&attenuation.data[..], &mut self.input.slice)
            .map_err(GpuError::driver("upload of the attenuation"))?;
        for (planes, k) in self.scales.iter().zip(&self.kernels) {
            planes.rows(gpu, &self.input, k)?;
            planes.hessian(gpu, k)?;
        }
        Ok(())
    }

    /// Writes the features of `roi` of `attenuation`, the frame last loaded with
    /// [`GpuFeatures::load`], into `out` laid out for an engine input of `engine_px` (each
    /// channel `engine_px.0 × engine_px.1`, the region at its top left, zero elsewhere), and
    /// keeps the normal at σ = 1 px for [`GpuFeatures::normals`].
    pub fn extract(
        &mut self,
        attenuation: &Plane<f32>,
        roi: Roi,
        engine_px: (usize, usize),
        out: &mut [f32],
    ) -> Result<(), GpuError> {
        let gpu = &*self.gpu;
        let stream = gpu.stream();
        let (fw, fh) = (attenuation.width, attenuation.height);
        let (ew, eh) = engine_px;
        let len = CHANNELS * ew * eh;
        let fits = roi.x + roi.width <= fw && roi.y + roi.height <= fh && roi.width <= ew && roi.height <= eh;
        let frame_fits = (fw, fh) == (self.scales[0].width, self.scales[0].height);
        if !fits || !frame_fits || len > self.out.len() || len > out.len() {
            return Err(GpuError::Size(format!(
                "region {roi:?} of a {fw}x{fh} frame into an engine input of {ew}x{eh} ({} values held)",
                self.out.len()
            )));
        }
        let median = region_median(attenuation, roi, &mut self.median_scratch);
        stream
            .memset_zeros(&mut self.out.slice.slice_mut(..len))
            .map_err(GpuError::driver("clearing the engine input"))?;
        let [one, two] = &self.scales;
        let [fwi, x, y, rw, rh] = [fw, roi.x, roi.y, roi.width, roi.height].map(|v| v as i32);
        let (ewi, ehi) = (ew as i32, eh as i32);
        // SAFETY: the arguments match wt_pack_features's; the region lies in the frame and in
        // the engine's input (checked above), its normals fit the frame-sized planes, and the
        // output holds at least CHANNELS × ew × eh values.
        unsafe {
            launch!(gpu, KernelId::PackFeatures, grid_2d(roi.width, roi.height);
                &self.input.addr, &one.xx.addr, &one.xy.addr, &one.yy.addr, &two.xx.addr, &two.xy.addr, &two.yy.addr,
                &fwi, &x, &y, &rw, &rh, &median, &CLAMP, &self.out.addr, &ewi, &ehi,
                &self.normal_x.addr, &self.normal_y.addr)
        }?;
        let down = GpuError::driver("download of the features");
        stream.memcpy_dtoh(&self.out.slice.slice(..len), &mut out[..len]).map_err(&down)?;
        let n = roi.width * roi.height;
        self.region_px = n;
        stream.memcpy_dtoh(&self.normal_x.slice.slice(..n), &mut self.normals.0[..n]).map_err(&down)?;
        stream.memcpy_dtoh(&self.normal_y.slice.slice(..n), &mut self.normals.1[..n]).map_err(&down)?;
        gpu.synchronize()
    }

    /// The unit normal across the ridge at σ = 1 px over the last region (x and y planes,
    /// region-sized, row-major).
    pub fn normals(&self) -> (&[f32], &[f32]) {
        (&self.normals.0[..self.region_px], &self.normals.1[..self.region_px])
    }
}
