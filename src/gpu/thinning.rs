//! Zhang-Suen thinning on the GPU: [`crate::vision::thinning::Thinning`] in
//! `kernels/thinning.cu`, each sub-iteration one launch over the whole mask from one buffer
//! into the other, until an iteration removes nothing. Identical to the CPU pixel for pixel.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{check_len, grid_2d, Gpu, GpuError, KernelId};
use crate::vision::Plane;

/// The thinning stage with its two mask buffers and change flag made at start.
#[derive(Debug)]
pub struct GpuThinning {
    gpu: Arc<Gpu>,
    width: usize,
    height: usize,
    masks: [CudaSlice<u8>; 2],
    changed: CudaSlice<i32>,
}

impl GpuThinning {
    /// The stage for `width` × `height` masks.
    pub fn new(gpu: Arc<Gpu>, width: usize, height: usize) -> Result<Self, GpuError> {
        let stream = gpu.stream().clone();
        let mask = || stream.alloc_zeros::<u8>(width * height).map_err(GpuError::driver("allocation"));
        Ok(GpuThinning {
            masks: [mask()?, mask()?],
            changed: stream.alloc_zeros::<i32>(1).map_err(GpuError::driver("allocation"))?,
            gpu,
            width,
            height,
        })
    }

    /// Thins `mask` (values 0 or 1) in place until it no longer changes.
    pub fn apply(&mut self, mask: &mut Plane<u8>) -> Result<(), GpuError> {
        check_len("the mask", mask.data.len(), self.width * self.height)?;
        let gpu = Arc::clone(&self.gpu);
        let stream = gpu.stream();
        let (w, h) = (self.width as i32, self.height as i32);
        stream.memcpy_htod(&mask.data[..], &mut self.masks[0]).map_err(GpuError::driver("upload of the mask"))?;
        let mut changed = [0i32];
        loop {
            stream.memset_zeros(&mut self.changed).map_err(GpuError::driver("clearing the change flag"))?;
            for second in [0i32, 1] {
                let [a, b] = &mut self.masks;
                let (from, to) = if second == 0 { (&*a, b) } else { (&*b, a) };
                let mut launch = stream.launch_builder(gpu.function(KernelId::ZhangSuen));
                launch.arg(from).arg(to).arg(&w).arg(&h).arg(&second).arg(&mut self.changed);
                // SAFETY: the arguments match wt_zhang_suen's; both masks hold w × h values.
                unsafe { launch.launch(grid_2d(self.width, self.height)) }
                    .map_err(GpuError::driver("wt_zhang_suen"))?;
            }
            stream
                .memcpy_dtoh(&self.changed, &mut changed[..])
                .map_err(GpuError::driver("download of the change flag"))?;
            gpu.synchronize()?;
            if changed[0] == 0 {
                break;
            }
        }
        stream.memcpy_dtoh(&self.masks[0], &mut mask.data[..]).map_err(GpuError::driver("download of the skeleton"))?;
        gpu.synchronize()
    }
}
