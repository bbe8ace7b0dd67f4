//! ONNX Runtime on the CPU, the speed and correctness peer of [`super::TractEngine`] (the
//! `ort-peer` feature): same model, same checks, same trait, one thread.
//!
//! The runtime library is not linked: it is opened at run time from a path (the PyPI
//! `onnxruntime` wheel's `libonnxruntime.so.1.*`), so the build needs nothing. ONNX Runtime
//! plans memory per input shape itself, so one session serves every declared size.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::{check_buffers, CheckedModel, EngineError, SegmentationEngine};
use crate::vision::features::CHANNELS;

const ENGINE: &str = "onnxruntime";

/// The environment variable the tests and `wiretrace bench-engine` take the library from.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The process's ONNX Runtime: a library is loaded once per process, whatever path comes later.
static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// The model in an ONNX Runtime session limited to one thread.
#[derive(Debug)]
pub struct OrtEngine {
    session: Session,
    sizes: Vec<(usize, usize)>,
    output: String,
}

impl OrtEngine {
    /// Opens ONNX Runtime from `library` (once per process), builds a single-threaded session
    /// for the checked model, and checks its input and output names against the manifest.
    pub fn new(model: &CheckedModel, sizes: &[(usize, usize)], library: &Path) -> Result<Self, EngineError> {
        model.check_sizes(sizes)?;
        let environment = environment(library)?;
        let rejected =
            |reason: String| EngineError::ModelRejected { model: model.model_path.clone(), engine: ENGINE, reason };
        let builder = Session::builder(&environment).map_err(|e| rejected(e.to_string()))?;
        let builder = builder.with_intra_threads(1).map_err(|e| rejected(e.to_string()))?;
        let mut builder = builder.with_inter_threads(1).map_err(|e| rejected(e.to_string()))?;
        let session = builder.commit_from_memory(&model.bytes).map_err(|e| rejected(e.to_string()))?;
        let m = &model.manifest;
        let inputs: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
        if inputs.len() != 1 || inputs[0] != m.input.name {
            return Err(EngineError::TensorName {
                model: model.model_path.clone(),
                what: "input",
                expected: m.input.name.clone(),
                found: inputs,
            });
        }
        let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
        if !outputs.contains(&m.output.name) {
            return Err(EngineError::TensorName {
                model: model.model_path.clone(),
                what: "output",
                expected: m.output.name.clone(),
                found: outputs,
            });
        }
        Ok(OrtEngine { session, sizes: sizes.to_vec(), output: m.output.name.clone() })
    }

    /// The library named by [`DYLIB_ENV`], if set.
    pub fn library_from_env() -> Option<PathBuf> {
        std::env::var_os(DYLIB_ENV).filter(|p| !p.is_empty()).map(PathBuf::from)
    }
}

fn environment(library: &Path) -> Result<Environment, EngineError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let failed = |reason: String| EngineError::Runtime { path: library.to_path_buf(), reason };
    let env = ort::init_from(library)
        .map_err(|e| failed(e.to_string()))?
        .with_name("wiretrace")
        .build()
        .map_err(|e| failed(e.to_string()))?;
    Ok(ENVIRONMENT.get_or_init(|| env).clone())
}

impl SegmentationEngine for OrtEngine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn segment(
        &mut self,
        features: &[f32],
        width: usize,
        height: usize,
        probability: &mut [f32],
    ) -> Result<(), EngineError> {
        if !self.sizes.contains(&(width, height)) {
            return Err(EngineError::UndeclaredSize { width, height });
        }
        check_buffers(features, probability, width, height)?;
        let failed = |e: ort::Error| EngineError::Inference { engine: ENGINE, reason: e.to_string() };
        let input = TensorRef::from_array_view(([1, CHANNELS, height, width], features)).map_err(failed)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(failed)?;
        let output = outputs
            .get(&self.output)
            .ok_or_else(|| EngineError::Inference { engine: ENGINE, reason: format!("no output {:?}", self.output) })?;
        let (_, values) = output.try_extract_tensor::<f32>().map_err(failed)?;
        if values.len() != probability.len() {
            return Err(EngineError::BufferSize {
                what: "the model's output",
                expected: probability.len(),
                got: values.len(),
                width,
                height,
            });
        }
        probability.copy_from_slice(values);
        Ok(())
    }
}
