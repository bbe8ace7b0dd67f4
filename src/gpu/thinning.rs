//! Zhang-Suen thinning on the GPU: [`crate::vision::thinning::Thinning`] in
//! `kernels/thinning.cu`, each sub-iteration one launch over the whole mask from one buffer
//! into the other, until an iteration removes nothing. Identical to the CPU pixel for pixel.

use std::sync::Arc;

use super::{check_len, grid_2d, DeviceBuffer, Gpu, GpuError, KernelId};
use crate::vision::Plane;

/// The thinning stage with its two mask buffers and change flag made at start.
#[derive(Debug)]
pub struct GpuThinning {
    gpu: Arc<Gpu>,
    width: usize,
    height: usize,
    masks: [DeviceBuffer<u8>; 2],
    changed: DeviceBuffer<i32>,
}

impl GpuThinning {
    /// The stage for `width` × `height` masks.
    pub fn new(gpu: Arc<Gpu>, width: usize, height: usize) -> Result<Self, GpuError> {
        Ok(GpuThinning {
            masks: [DeviceBuffer::zeros(&gpu, width * height)?, DeviceBuffer::zeros(&gpu, width * height)?],
            changed: DeviceBuffer::zeros(&gpu, 1)?,
            gpu,
            width,
            height,
        })
    }

    /// Thins `mask` (values 0 or 1) in place until it no longer changes.
    pub fn apply(&mut self, mask: &mut Plane<u8>) -> Result<(), GpuError> {
        check_len("the mask", mask.data.len(), self.width * self.height)?;
        let gpu = &*self.gpu;
        let stream = gpu.stream();
        let (w, h) = (self.width as i32, self.height as i32);
        stream.memcpy_htod(&mask.data[..], &mut self.masks[0].slice).map_err(GpuError::driver("upload of the mask"))?;
        let mut changed = [0i32];
        loop {
            stream.memset_zeros(&mut self.changed.slice).map_err(GpuError::driver("clearing the change flag"))?;
            for second in [0i32, 1] {
                let [a, b] = [&self.masks[0].addr, &self.masks[1].addr];
                let (from, to) = if second == 0 { (a, b) } else { (b, a) };
                // SAFETY: the arguments match wt_zhang_suen's; both masks hold w × h values.
                unsafe {
                    launch!(gpu, KernelId::ZhangSuen, grid_2d(self.width, self.height);
                        from, to, &w, &h, &second, &self.changed.addr)
                }?;
            }
            stream
                .memcpy_dtoh(&self.changed.slice, &mut changed[..])
                .map_err(GpuError::driver("download of the change flag"))?;
            gpu.synchronize()?;
            if changed[0] == 0 {
                break;
            }
        }
        stream
            .memcpy_dtoh(&self.masks[0].slice, &mut mask.data[..])
            .map_err(GpuError::driver("download of the skeleton"))?;
        gpu.synchronize()
    }
}
