//! The learned segmentation engine: a network that turns a region's feature planes
//! ([`crate::vision::features`]) into a wire probability per pixel.
//!
//! A model ships as an ONNX file with a JSON manifest beside it (`engines/README.md`). Before
//! anything is optimised, [`check`] reads the manifest, verifies the model file against its
//! sha256 and the manifest against what this build computes (feature definition, channels), so
//! a wrong or damaged model is a clear error at start, never a wrong answer later. [`load`]
//! then builds the CPU engine, [`TractEngine`], optimised once for each region size the
//! service will ask for. With the `ort-peer` feature, `ort::OrtEngine` runs the same model on
//! ONNX Runtime for comparison ([`bench`](mod@bench)).

pub mod bench;
#[cfg(feature = "ort-peer")]
pub mod ort;
pub mod tract;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::vision::features::{CHANNELS, FEATURE_VERSION};

pub use self::tract::TractEngine;

/// The manifest format this build reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Highest ONNX opset the engines are built and tested against.
pub const MAX_OPSET: u32 = 17;

/// A model's manifest (`engines/wirenet.json`). Every field but `training` and `metrics`
/// (provenance, free-form) is checked; unknown fields are refused, so a manifest written for a
/// newer format is not half-understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The ONNX file, relative to the manifest's directory.
    pub model: PathBuf,
    /// sha256 of the ONNX file, lowercase hex.
    pub sha256: String,
    /// [`FEATURE_VERSION`] the model was trained on.
    pub feature_version: u32,
    /// The network's input.
    pub input: InputSpec,
    /// The network's output.
    pub output: OutputSpec,
    /// Side of the square region the service crops around the wire (px).
    pub roi_px: usize,
    /// ONNX opset of the export.
    pub opset: u32,
    /// Trainable parameters of the network (informational: the ONNX file folds batch norm).
    pub parameters: u64,
    /// How the model was trained (command, seeds, duration), free-form.
    pub training: serde_json::Value,
    /// Evaluation results, free-form.
    pub metrics: serde_json::Value,
    /// Export date (YYYY-MM-DD).
    pub date: String,
}

/// The network's input: `[1, channels, height, width]` f32.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// ONNX input name.
    pub name: String,
    /// Feature planes ([`CHANNELS`]).
    pub channels: usize,
    /// Height and width must be multiples of this (the network's downsampling).
    pub multiple_of: usize,
}

/// The network's output: `[1, 1, height, width]` f32 probabilities in 0..1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// ONNX output name.
    pub name: String,
}

/// Why a model cannot be loaded or run. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The manifest file does not exist.
    #[error("model manifest {path} does not exist (install the model, or point the configuration at its manifest)")]
    ManifestMissing {
        /// Manifest path.
        path: PathBuf,
    },
    /// The manifest exists but cannot be read.
    #[error("cannot read model manifest {path}")]
    ManifestUnreadable {
        /// Manifest path.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not JSON of the expected shape.
    #[error("model manifest {path}:{line}:{column}: {message}")]
    ManifestJson {
        /// Manifest path.
        path: PathBuf,
        /// Line of the problem (from 1).
        line: usize,
        /// Column of the problem (from 1).
        column: usize,
        /// What serde said, without its position.
        message: String,
    },
    /// The manifest is of a format this build does not read.
    #[error("model manifest {path}: format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        /// Manifest path.
        path: PathBuf,
        /// Format in the manifest.
        found: u32,
        /// Format this build reads.
        supported: u32,
    },
    /// A manifest field has a value that cannot be right.
    #[error("model manifest {path}: {field}: {problem}")]
    BadManifest {
        /// Manifest path.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The model file the manifest names does not exist.
    #[error("model file {model} (named by {manifest}) does not exist")]
    ModelMissing {
        /// Manifest path.
        manifest: PathBuf,
        /// Model path.
        model: PathBuf,
    },
    /// The model file exists but cannot be read.
    #[error("cannot read model file {model}")]
    ModelUnreadable {
        /// Model path.
        model: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not the one the manifest describes.
    #[error(
        "model file {model}: sha256 mismatch: {manifest} expects {expected}, the file has {got}; the file is \
         damaged or not the model the manifest describes: re-export it with its manifest, or re-download both"
    )]
    Sha256Mismatch {
        /// Model path.
        model: PathBuf,
        /// Manifest path.
        manifest: PathBuf,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the file.
        got: String,
    },
    /// The model was trained on features this build does not compute.
    #[error(
        "model manifest {path}: the model was trained on feature version {model}, this build computes version \
         {build}; use a model trained on version {build} (or a build of wiretrace that computes version {model})"
    )]
    FeatureVersion {
        /// Manifest path.
        path: PathBuf,
        /// Feature version of the model.
        model: u32,
        /// Feature version this build computes.
        build: u32,
    },
    /// The model takes a different number of feature planes than this build computes.
    #[error("{path}: the model takes {model} input channels, this build computes {build} feature planes")]
    Channels {
        /// Manifest or model path, whichever says so.
        path: PathBuf,
        /// Channels of the model.
        model: usize,
        /// Channels this build computes.
        build: usize,
    },
    /// The model has no input, or no output, of the name the manifest gives.
    #[error("model file {model}: no {what} named {expected:?} (the model has {found:?}); the manifest does not describe this model")]
    TensorName {
        /// Model path.
        model: PathBuf,
        /// `input` or `output`.
        what: &'static str,
        /// Name in the manifest.
        expected: String,
        /// Names in the model.
        found: Vec<String>,
    },
    /// The model file is not a model the engine can run (corrupt, truncated, or unsupported
    /// operators).
    #[error("model file {model} cannot be loaded by {engine}: {reason}")]
    ModelRejected {
        /// Model path.
        model: PathBuf,
        /// Engine that refused it.
        engine: &'static str,
        /// What the engine said.
        reason: String,
    },
    /// A region size declared at start is not one the network takes.
    #[error("region {width}x{height}: sides must be positive multiples of {multiple_of}")]
    BadSize {
        /// Width asked for.
        width: usize,
        /// Height asked for.
        height: usize,
        /// What the sides must be multiples of.
        multiple_of: usize,
    },
    /// `segment` was asked for a region size that was not declared at start.
    #[error("region {width}x{height} was not declared when the engine was made")]
    UndeclaredSize {
        /// Width asked for.
        width: usize,
        /// Height asked for.
        height: usize,
    },
    /// A buffer handed to `segment` does not fit the region.
    #[error("{what} holds {got} values, a {width}x{height} region needs {expected}")]
    BufferSize {
        /// `features` or `probability`.
        what: &'static str,
        /// Values needed.
        expected: usize,
        /// Values given.
        got: usize,
        /// Region width.
        width: usize,
        /// Region height.
        height: usize,
    },
    /// The engine failed while running the network.
    #[error("{engine} failed to run the model: {reason}")]
    Inference {
        /// Engine that failed.
        engine: &'static str,
        /// What it said.
        reason: String,
    },
    /// The ONNX Runtime library could not be opened (the `ort-peer` feature).
    #[error("cannot use ONNX Runtime from {path}: {reason}")]
    Runtime {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A segmentation engine: feature planes of a region in, wire probability per pixel out.
/// Made once at start for a fixed set of region sizes; `segment` reuses what was built then.
pub trait SegmentationEngine: Send + std::fmt::Debug {
    /// Short name for logs and reports (`tract`, `onnxruntime`).
    fn name(&self) -> &'static str;

    /// Writes the probability (0..1) of each pixel of a `width` × `height` region into
    /// `probability` (row-major, `width * height` values), from its `features` as
    /// [`crate::vision::features::FeatureExtractor`] writes them (`CHANNELS × height × width`).
    /// A size not declared at start is an error.
    fn segment(
        &mut self,
        features: &[f32],
        width: usize,
        height: usize,
        probability: &mut [f32],
    ) -> Result<(), EngineError>;
}

/// A manifest that passed [`check`], with the bytes of its verified model file.
#[derive(Debug, Clone)]
pub struct CheckedModel {
    /// The manifest.
    pub manifest: Manifest,
    /// Where the manifest was read.
    pub manifest_path: PathBuf,
    /// Where the model was read.
    pub model_path: PathBuf,
    /// The model file, whose sha256 is the manifest's.
    pub bytes: Vec<u8>,
}

impl CheckedModel {
    /// Checks `sizes` (width, height) against the network's input; the engines call it before
    /// optimising anything.
    pub fn check_sizes(&self, sizes: &[(usize, usize)]) -> Result<(), EngineError> {
        let m = self.manifest.input.multiple_of;
        match sizes.iter().find(|&&(w, h)| w == 0 || h == 0 || !w.is_multiple_of(m) || !h.is_multiple_of(m)) {
            Some(&(width, height)) => Err(EngineError::BadSize { width, height, multiple_of: m }),
            None => Ok(()),
        }
    }
}

/// Reads the manifest at `manifest_path`, checks it against this build and its model file
/// against its sha256, and returns the model's bytes.
pub fn check(manifest_path: &Path) -> Result<CheckedModel, EngineError> {
    let path = manifest_path.to_path_buf();
    let text = std::fs::read_to_string(manifest_path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => EngineError::ManifestMissing { path: path.clone() },
        _ => EngineError::ManifestUnreadable { path: path.clone(), source },
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let message = full.strip_suffix(&format!(" at line {line} column {column}")).unwrap_or(&full).to_string();
        EngineError::ManifestJson { path: path.clone(), line, column, message }
    })?;
    check_fields(&manifest, &path)?;

    let model_path = manifest_path.parent().unwrap_or(Path::new("")).join(&manifest.model);
    let bytes = std::fs::read(&model_path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => EngineError::ModelMissing { manifest: path.clone(), model: model_path.clone() },
        _ => EngineError::ModelUnreadable { model: model_path.clone(), source },
    })?;
    let got = sha256_hex(&bytes);
    if got != manifest.sha256 {
        return Err(EngineError::Sha256Mismatch {
            model: model_path,
            manifest: path,
            expected: manifest.sha256.clone(),
            got,
        });
    }
    Ok(CheckedModel { manifest, manifest_path: path, model_path, bytes })
}

/// Checks `manifest` and builds a [`TractEngine`] for `sizes` (width, height).
pub fn load(manifest_path: &Path, sizes: &[(usize, usize)]) -> Result<TractEngine, EngineError> {
    TractEngine::new(&check(manifest_path)?, sizes)
}

/// `features` and `probability` fit a `width` × `height` region.
pub(crate) fn check_buffers(
    features: &[f32],
    probability: &[f32],
    width: usize,
    height: usize,
) -> Result<(), EngineError> {
    let n = width * height;
    for (what, expected, got) in [("features", CHANNELS * n, features.len()), ("probability", n, probability.len())] {
        if got != expected {
            return Err(EngineError::BufferSize { what, expected, got, width, height });
        }
    }
    Ok(())
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest's own values, and those that must match this build.
fn check_fields(m: &Manifest, path: &Path) -> Result<(), EngineError> {
    let bad = |field, problem: String| Err(EngineError::BadManifest { path: path.to_path_buf(), field, problem });
    if m.format != MANIFEST_FORMAT {
        return Err(EngineError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: m.format,
            supported: MANIFEST_FORMAT,
        });
    }
    if m.feature_version != FEATURE_VERSION {
        return Err(EngineError::FeatureVersion {
            path: path.to_path_buf(),
            model: m.feature_version,
            build: FEATURE_VERSION,
        });
    }
    if m.input.channels != CHANNELS {
        return Err(EngineError::Channels { path: path.to_path_buf(), model: m.input.channels, build: CHANNELS });
    }
    if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return bad("sha256", format!("{:?} is not 64 lowercase hex digits", m.sha256));
    }
    if m.model.as_os_str().is_empty() || m.model.is_absolute() {
        return bad("model", format!("{:?} must be a file name relative to the manifest", m.model));
    }
    if m.input.name.is_empty() || m.output.name.is_empty() {
        return bad("input.name / output.name", "must not be empty".into());
    }
    if !(1..=64).contains(&m.input.multiple_of) {
        return bad("input.multiple_of", format!("{} is not in 1..=64", m.input.multiple_of));
    }
    if m.roi_px == 0 || !m.roi_px.is_multiple_of(m.input.multiple_of) {
        return bad("roi_px", format!("{} is not a positive multiple of {}", m.roi_px, m.input.multiple_of));
    }
    if !(1..=MAX_OPSET).contains(&m.opset) {
        return bad("opset", format!("{} is not in 1..={MAX_OPSET}", m.opset));
    }
    if !is_date(&m.date) {
        return bad("date", format!("{:?} is not YYYY-MM-DD", m.date));
    }
    Ok(())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_nothing_is_the_known_digest() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn dates_are_year_month_day() {
        assert!(is_date("2026-11-25"));
        for bad in ["2026-1-25", "25-11-2026", "2026/11/25", "2026-11-25T00:00", ""] {
            assert!(!is_date(bad), "{bad}");
        }
    }
}
