//! The GPU path: the CUDA kernels of `kernels/`, compiled with NVRTC at start for the GPU
//! found (the PTX cached on disk under a hash of source and architecture), loaded through
//! cudarc. Every kernel follows its CPU reference in [`crate::vision`] operation for operation
//! and is tested against it (`tests/gpu.rs`).
//!
//! cudarc loads `libcuda` and `libnvrtc` when first asked, so this builds and runs where
//! CUDA is absent: [`Gpu::open`] then says why, and the service runs the CPU path.

/// Launches a kernel on the GPU's stream: `launch!(gpu, KernelId, LaunchConfig; &arg, ...)`,
/// each argument a reference to a value of the kernel's parameter type (a buffer by its
/// [`DeviceBuffer::addr`]). The pointers to the values stay on the stack, where
/// `cuLaunchKernel` reads them: a launch allocates nothing. It is `unsafe`: the arguments must
/// match the kernel's parameters in number, order and type.
macro_rules! launch {
    ($gpu:expr, $id:expr, $cfg:expr; $($arg:expr),+ $(,)?) => {{
        let mut params = [$(std::ptr::from_ref($arg).cast_mut().cast::<std::ffi::c_void>()),+];
        $gpu.launch($id, $cfg, &mut params)
    }};
}

pub mod features;
pub mod ridge;
pub mod thinning;

use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig, ValidAsZeroBits,
};
use cudarc::nvrtc::{CompileOptions, Ptx};
use sha2::{Digest, Sha256};

/// Why the GPU path cannot run, or failed on a frame.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// `libcuda` is not installed or cannot be loaded.
    #[error("no CUDA driver: libcuda could not be loaded")]
    NoDriver,
    /// The driver loads but gives no usable device.
    #[error("no usable CUDA device: {0}")]
    NoDevice(String),
    /// `libnvrtc` cannot be loaded, and the cache lacks a compiled kernel.
    #[error(
        "NVRTC (libnvrtc) could not be loaded to compile kernels/{file} for {arch}, and no compiled copy is cached"
    )]
    NoNvrtc {
        /// The source that needed compiling.
        file: &'static str,
        /// The target architecture.
        arch: String,
    },
    /// A kernel source does not compile.
    #[error("kernels/{file} does not compile for {arch}: {log}")]
    Compile {
        /// The source file.
        file: &'static str,
        /// The target architecture.
        arch: String,
        /// NVRTC's log.
        log: String,
    },
    /// The driver refuses a compiled module or one of its kernels.
    #[error("kernels/{file} cannot be loaded: {reason}")]
    Load {
        /// The source file.
        file: &'static str,
        /// What the driver said.
        reason: String,
    },
    /// A copy or a launch failed.
    #[error("CUDA {what} failed: {reason}")]
    Driver {
        /// The operation.
        what: &'static str,
        /// What the driver said.
        reason: String,
    },
    /// The kernels ran but their result is not the CPU reference's.
    #[error("the GPU's result differs from the CPU's: {0}")]
    Mismatch(String),
    /// Buffers of the wrong size were handed in (a bug in the caller, not bad input).
    #[error("GPU buffers do not fit: {0}")]
    Size(String),
}

impl GpuError {
    pub(crate) fn driver(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> GpuError {
        move |e| GpuError::Driver { what, reason: e.to_string() }
    }
}

/// The CUDA version whose driver API cudarc is built against (its `cuda-11040` feature in
/// Cargo.toml): JetPack 5's, so Xavier runs the GPU path too. Newer drivers keep every call of
/// it; an older one lacks some, and cudarc would abort the process on the first missing call.
const BUILT_FOR_CUDA: i32 = 11040;

/// A kernel source file of `kernels/`, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Its name under `kernels/`.
    pub file: &'static str,
    /// The CUDA C source.
    pub text: &'static str,
}

const COMMON: &str = include_str!("../../kernels/common.cuh");
const INCLUDE: &str = "#include \"common.cuh\"";

/// Every kernel source, in [`KernelId`] order of first use.
pub const SOURCES: [Source; 4] = [
    Source { file: "normalise.cu", text: include_str!("../../kernels/normalise.cu") },
    Source { file: "ridge.cu", text: include_str!("../../kernels/ridge.cu") },
    Source { file: "features.cu", text: include_str!("../../kernels/features.cu") },
    Source { file: "thinning.cu", text: include_str!("../../kernels/thinning.cu") },
];

impl Source {
    /// The program NVRTC compiles: the source with `common.cuh` put in place of its include,
    /// `#line` marks keeping error lines true to both files.
    pub fn program(&self) -> String {
        match self.text.split_once(INCLUDE) {
            Some((before, after)) => {
                // `#line` numbers the line after it: the one after the include's.
                let line = before.matches('\n').count() + 2;
                format!("{before}#line 1 \"common.cuh\"\n{COMMON}\n#line {line} \"{}\"{after}", self.file)
            }
            None => self.text.to_string(),
        }
    }
}

/// The kernels, by their `extern "C"` entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelId {
    /// Detector values to log attenuation.
    LogAttenuation,
    /// Row pass of the Gaussian-derivative filters.
    RidgeRows,
    /// Column pass of the Gaussian-derivative filters.
    RidgeCols,
    /// Clears the ridge map.
    RidgeInit,
    /// Folds one wire scale into the ridge map.
    RidgeFold,
    /// The thick scale's weighted depth.
    WeightedDepth,
    /// The axes of thick structures.
    ThickCentres,
    /// One axis of the dilation of the thick mask.
    Dilate,
    /// Thick-structure and border-echo suppression.
    RidgeFinish,
    /// The learned engine's input.
    PackFeatures,
    /// One Zhang-Suen sub-iteration.
    ZhangSuen,
}

impl KernelId {
    /// Every kernel.
    pub const ALL: [KernelId; 11] = [
        KernelId::LogAttenuation,
        KernelId::RidgeRows,
        KernelId::RidgeCols,
        KernelId::RidgeInit,
        KernelId::RidgeFold,
        KernelId::WeightedDepth,
        KernelId::ThickCentres,
        KernelId::Dilate,
        KernelId::RidgeFinish,
        KernelId::PackFeatures,
        KernelId::ZhangSuen,
    ];

    /// The entry point's name.
    pub const fn entry(self) -> &'static str {
        match self {
            KernelId::LogAttenuation => "wt_log_attenuation",
            KernelId::RidgeRows => "wt_ridge_rows",
            KernelId::RidgeCols => "wt_ridge_cols",
            KernelId::RidgeInit => "wt_ridge_init",
            KernelId::RidgeFold => "wt_ridge_fold",
            KernelId::WeightedDepth => "wt_weighted_depth",
            KernelId::ThickCentres => "wt_thick_centres",
            KernelId::Dilate => "wt_dilate",
            KernelId::RidgeFinish => "wt_ridge_finish",
            KernelId::PackFeatures => "wt_pack_features",
            KernelId::ZhangSuen => "wt_zhang_suen",
        }
    }

    /// The source that defines it.
    pub const fn source(self) -> Source {
        match self {
            KernelId::LogAttenuation => SOURCES[0],
            KernelId::PackFeatures => SOURCES[2],
            KernelId::ZhangSuen => SOURCES[3],
            _ => SOURCES[1],
        }
    }
}

/// The NVRTC options every kernel is built with: no fused multiply-add, so that products and
/// sums round as on the CPU; precise division and square root are NVRTC's defaults.
fn options(arch: &str) -> Vec<String> {
    vec!["--fmad=false".into(), format!("--gpu-architecture={arch}")]
}

/// Compiles `source` to PTX for `arch` (`compute_87`, `sm_72`, …) with NVRTC.
pub fn compile(source: Source, arch: &str) -> Result<String, GpuError> {
    // SAFETY: only tries to load the library by name; nothing of it is called.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(GpuError::NoNvrtc { file: source.file, arch: arch.to_string() });
    }
    let opts = CompileOptions { options: options(arch), name: Some(source.file.into()), ..Default::default() };
    let program = source.program();
    match cudarc::nvrtc::compile_ptx_with_opts(program, opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => Err(GpuError::Compile {
            file: source.file,
            arch: arch.to_string(),
            log: log.to_string_lossy().trim().to_string(),
        }),
        Err(e) => Err(GpuError::Compile { file: source.file, arch: arch.to_string(), log: e.to_string() }),
    }
}

/// Where compiled kernels are kept between starts: systemd's `CacheDirectory`, else the
/// user's cache.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CACHE_DIRECTORY") {
        return Some(PathBuf::from(dir).join("kernels"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wiretrace").join("kernels"))
}

/// The cache file of `source` compiled for `arch`: named by the sha256 of what went in.
fn cache_path(dir: &Path, source: Source, arch: &str) -> PathBuf {
    let mut hash = Sha256::new();
    hash.update(source.program().as_bytes());
    for option in options(arch) {
        hash.update(option.as_bytes());
        hash.update([0]);
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{}-{arch}-{}.ptx", source.file.trim_end_matches(".cu"), &digest[..16]))
}

/// A CUDA device with every kernel loaded, and the one stream the pipeline's work goes on.
pub struct Gpu {
    stream: Arc<CudaStream>,
    functions: Vec<CudaFunction>,
    name: String,
    arch: String,
    _modules: Vec<Arc<CudaModule>>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu").field("name", &self.name).field("arch", &self.arch).finish_non_exhaustive()
    }
}

impl Gpu {
    /// Opens device 0 and loads every kernel, compiled for it with NVRTC or taken from
    /// `cache` (written there when compiled; `None`: no cache).
    pub fn open(cache: Option<&Path>) -> Result<Arc<Gpu>, GpuError> {
        // SAFETY: only tries to load the library by name; nothing of it is called.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(GpuError::NoDriver);
        }
        Self::open_present(cache)
    }

    fn open_present(cache: Option<&Path>) -> Result<Arc<Gpu>, GpuError> {
        let mut version = 0;
        // SAFETY: cuDriverGetVersion writes one int and needs no cuInit.
        unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }
            .result()
            .map_err(|e| GpuError::NoDevice(e.to_string()))?;
        if version < BUILT_FOR_CUDA {
            return Err(GpuError::NoDevice(format!(
                "the CUDA driver is version {}.{}, this build needs {}.{} or newer",
                version / 1000,
                version % 1000 / 10,
                BUILT_FOR_CUDA / 1000,
                BUILT_FOR_CUDA % 1000 / 10
            )));
        }
        let ctx = CudaContext::new(0).map_err(|e| GpuError::NoDevice(e.to_string()))?;
        // One stream does all the work in order: the per-buffer events cudarc would record
        // for several streams are not needed.
        // SAFETY: no other stream of this context touches these buffers.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx.compute_capability().map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device".into());
        let arch = format!("compute_{major}{minor}");
        let stream = ctx.default_stream();
        let mut modules = Vec::with_capacity(SOURCES.len());
        for source in SOURCES {
            let path = cache.map(|dir| cache_path(dir, source, &arch));
            let cached = path.as_deref().and_then(read_cached).and_then(|ptx| {
                // A module this driver will not take (written by another NVRTC, say) is
                // compiled again and replaces the cached one.
                ctx.load_module(Ptx::from_src(ptx))
                    .map_err(|e| tracing::warn!("cached kernels/{} not loaded ({e}); compiling it", source.file))
                    .ok()
            });
            let module = match cached {
                Some(module) => module,
                None => {
                    let ptx = compile(source, &arch)?;
                    let module = ctx
                        .load_module(Ptx::from_src(ptx.as_str()))
                        .map_err(|e| GpuError::Load { file: source.file, reason: e.to_string() })?;
                    if let Some(path) = &path {
                        write_cached(path, &ptx, source.file);
                    }
                    module
                }
            };
            modules.push(module);
        }
        let functions = KernelId::ALL
            .iter()
            .map(|&id| {
                let source = id.source();
                let at = SOURCES.iter().position(|s| *s == source).unwrap_or(0);
                modules[at]
                    .load_function(id.entry())
                    .map_err(|e| GpuError::Load { file: source.file, reason: format!("{}: {e}", id.entry()) })
            })
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!("GPU: {name} ({arch}), {} kernels loaded", functions.len());
        Ok(Arc::new(Gpu { stream, functions, name, arch, _modules: modules }))
    }

    /// The device's name and the architecture the kernels were built for.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.arch)
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(crate) fn function(&self, id: KernelId) -> &CudaFunction {
        let at = KernelId::ALL.iter().position(|&k| k == id).unwrap_or(0);
        &self.functions[at]
    }

    /// Launches `id` with `params`, pointers to its arguments' values (see `launch!`).
    ///
    /// # Safety
    /// `params` must match the kernel's parameters in number, order and type, and every buffer
    /// they name must hold what the kernel reads and writes.
    pub(crate) unsafe fn launch(
        &self,
        id: KernelId,
        cfg: LaunchConfig,
        params: &mut [*mut c_void],
    ) -> Result<(), GpuError> {
        let function = self.function(id).cu_function();
        let (grid, block, shared) = (cfg.grid_dim, cfg.block_dim, cfg.shared_mem_bytes);
        // SAFETY: the caller vouches for the arguments; the function and the stream belong
        // to this context.
        unsafe { cudarc::driver::result::launch_kernel(function, grid, block, shared, self.stream.cu_stream(), params) }
            .map_err(GpuError::driver(id.entry()))
    }

    /// Waits for the stream's work.
    pub(crate) fn synchronize(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(GpuError::driver("synchronize"))
    }
}

/// The PTX cached at `path`, if it is there and is text a module can be made of (no NUL: a
/// file zeroed by a power cut is not).
fn read_cached(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|ptx| !ptx.is_empty() && !ptx.contains('\0'))
}

/// Caches `ptx` at `path`: written beside it, then renamed over it, so a reader never sees
/// half a file. Failing to cache costs only a compile at the next start.
fn write_cached(path: &Path, ptx: &str, file: &str) {
    let partial = path.with_extension("ptx.partial");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&partial, ptx))
        .and_then(|()| std::fs::File::open(&partial)?.sync_all())
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(e) = written {
        tracing::warn!("cannot cache the compiled kernels/{file} at {}: {e}", path.display());
    }
}

/// A device buffer and its address, taken once: kernels are given the address.
#[derive(Debug)]
pub(crate) struct DeviceBuffer<T> {
    pub(crate) slice: CudaSlice<T>,
    pub(crate) addr: CUdeviceptr,
}

impl<T: DeviceRepr + ValidAsZeroBits> DeviceBuffer<T> {
    /// `len` zeros.
    pub(crate) fn zeros(gpu: &Gpu, len: usize) -> Result<Self, GpuError> {
        let slice = gpu.stream().alloc_zeros::<T>(len).map_err(GpuError::driver("allocation"))?;
        Ok(Self::new(gpu, slice))
    }

    /// A copy of `data`.
    pub(crate) fn from_host(gpu: &Gpu, data: &[T]) -> Result<Self, GpuError> {
        let slice = gpu.stream().clone_htod(data).map_err(GpuError::driver("upload"))?;
        Ok(Self::new(gpu, slice))
    }

    fn new(gpu: &Gpu, slice: CudaSlice<T>) -> Self {
        // With event tracking off (Gpu::open) the guard returned beside the address does
        // nothing; the address stays valid as long as the slice.
        let addr = slice.device_ptr(gpu.stream()).0;
        DeviceBuffer { slice, addr }
    }

    /// Values held.
    pub(crate) fn len(&self) -> usize {
        self.slice.len()
    }
}

/// Fails unless `got` equals `want` values (`what` names the buffer).
pub(crate) fn check_len(what: &str, got: usize, want: usize) -> Result<(), GpuError> {
    if got == want {
        Ok(())
    } else {
        Err(GpuError::Size(format!("{what} has {got} values, the GPU stage was made for {want}")))
    }
}

/// One thread per pixel in blocks of 32 × 8: a warp reads a row segment (coalesced), 256
/// threads a block suit both Orin (sm_87) and Xavier (sm_72).
pub(crate) fn grid_2d(width: usize, height: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((width as u32).div_ceil(32), (height as u32).div_ceil(8), 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    }
}

/// One thread per element in blocks of 256.
pub(crate) fn grid_1d(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: ((n as u32).div_ceil(256), 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_gives_back_what_it_was_given_and_not_a_zeroed_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = cache_path(dir.path(), SOURCES[1], "compute_87");
        assert_eq!(read_cached(&path), None, "nothing cached yet");
        write_cached(&path, ".version 8.2\n.target sm_87\n", "ridge.cu");
        assert_eq!(read_cached(&path).as_deref(), Some(".version 8.2\n.target sm_87\n"));
        assert!(!path.with_extension("ptx.partial").exists(), "renamed into place");
        std::fs::write(&path, [0u8; 64]).expect("zero the file");
        assert_eq!(read_cached(&path), None, "a zeroed file is no kernel");
        assert_ne!(path, cache_path(dir.path(), SOURCES[1], "compute_72"), "one file per architecture");
        assert_ne!(path, cache_path(dir.path(), SOURCES[2], "compute_87"), "one file per source");
    }

    #[test]
    fn the_common_header_takes_the_include_s_place_and_lines_stay_true() {
        let program = SOURCES[1].program();
        assert!(!program.contains(INCLUDE) && program.contains("wt_reflect"));
        let at = program
            .find("#line ")
            .and_then(|i| program[i..].find("\n#line ").map(|j| i + j + 1))
            .expect("two #line marks");
        assert!(program[at..].starts_with("#line 8 \"ridge.cu\""), "{}", &program[at..at + 30]);
    }
}
