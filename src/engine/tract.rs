//! The CPU engine: the ONNX model run by tract, pure Rust, one thread.
//!
//! tract optimises a model best for a fixed input shape (the convolutions pick their kernels
//! and pack their weights for it), so [`TractEngine::new`] builds one optimised plan and one
//! run state per declared region size, at start. A call then copies the features into an
//! input tensor kept from the previous call and runs the plan. What a call still allocates is
//! tract's: each operator returns a fresh output tensor, and the plan's bookkeeping per run
//! (`engines/README.md` gives the count).

use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::{Factoid, InferenceModel};

use super::{check_buffers, CheckedModel, EngineError, SegmentationEngine};
use crate::vision::features::CHANNELS;

const ENGINE: &str = "tract";

/// The model, optimised for each declared region size.
#[derive(Debug)]
pub struct TractEngine {
    plans: Vec<SizedPlan>,
}

/// One region size: its optimised plan, a run state, and the input tensor handed to each run.
#[derive(Debug)]
struct SizedPlan {
    width: usize,
    height: usize,
    state: TypedSimpleState,
    /// Shared with the run while it lasts; tract drops its handle when the run ends, so the
    /// next call can write into it again.
    input: Arc<Tensor>,
}

impl TractEngine {
    /// Parses the checked model, checks its input and output against the manifest, and
    /// optimises it for each `(width, height)` in `sizes`.
    pub fn new(model: &CheckedModel, sizes: &[(usize, usize)]) -> Result<Self, EngineError> {
        model.check_sizes(sizes)?;
        let rejected = |e: TractError| EngineError::ModelRejected {
            model: model.model_path.clone(),
            engine: ENGINE,
            reason: format!("{e:#}"),
        };
        let onnx = tract_onnx::onnx();
        let proto = onnx.proto_model_for_read(&mut &model.bytes[..]).map_err(rejected)?;
        check_proto(model, &proto)?;
        let parsed = onnx.model_for_proto_model(&proto).map_err(rejected)?;
        let parsed = select_io(model, parsed)?;
        let mut plans = Vec::with_capacity(sizes.len());
        for &(width, height) in sizes {
            if plans.iter().any(|p: &SizedPlan| (p.width, p.height) == (width, height)) {
                continue;
            }
            let shape = [1, CHANNELS, height, width];
            let plan = parsed
                .clone()
                .with_input_fact(0, f32::fact(shape).into())
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(|e| EngineError::ModelRejected {
                    model: model.model_path.clone(),
                    engine: ENGINE,
                    reason: format!("optimising for a {width}x{height} region: {e:#}"),
                })?;
            let mut state = plan.spawn().map_err(rejected)?;
            let input = Arc::new(Tensor::zero::<f32>(&shape).map_err(rejected)?);
            // One run now, not on the first frame that needs the plan: a plan's first run costs
            // more than the next ones (the whole 512² frame's 82-96 ms against 46-58 here; with
            // this run, 65-74), enough to take that frame past its deadline.
            state.run(tvec![TValue::from_const(Arc::clone(&input))]).map_err(|e| EngineError::ModelRejected {
                model: model.model_path.clone(),
                engine: ENGINE,
                reason: format!("a first run on a {width}x{height} region: {e:#}"),
            })?;
            plans.push(SizedPlan { width, height, state, input });
        }
        Ok(TractEngine { plans })
    }

    /// The region sizes (width, height) this engine was made for.
    pub fn sizes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.plans.iter().map(|p| (p.width, p.height))
    }
}

impl SegmentationEngine for TractEngine {
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
        let plan = self
            .plans
            .iter_mut()
            .find(|p| (p.width, p.height) == (width, height))
            .ok_or(EngineError::UndeclaredSize { width, height })?;
        check_buffers(features, probability, width, height)?;
        let failed = |e: TractError| EngineError::Inference { engine: ENGINE, reason: format!("{e:#}") };
        // Shared only if a run failed half-way and kept it: then this copies it once.
        let input = Arc::make_mut(&mut plan.input);
        input
            .try_as_plain_ram_mut()
            .and_then(|mut t| t.as_slice_mut::<f32>().map(|s| s.copy_from_slice(features)))
            .map_err(failed)?;
        let outputs = plan.state.run(tvec![TValue::from_const(Arc::clone(&plan.input))]).map_err(failed)?;
        let output = outputs
            .first()
            .ok_or_else(|| EngineError::Inference { engine: ENGINE, reason: "the model produced no output".into() })?;
        let view = output.try_as_plain_ram().map_err(failed)?;
        let values = view.as_slice::<f32>().map_err(failed)?;
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

/// The file holds a graph (an empty or foreign file can parse as an empty ONNX model), of the
/// opset its manifest names.
fn check_proto(model: &CheckedModel, proto: &ModelProto) -> Result<(), EngineError> {
    if proto.graph.as_ref().is_none_or(|g| g.node.is_empty()) {
        return Err(EngineError::ModelRejected {
            model: model.model_path.clone(),
            engine: ENGINE,
            reason: "the file holds no ONNX graph".into(),
        });
    }
    let declared =
        proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(0, |o| o.version);
    if declared != i64::from(model.manifest.opset) {
        return Err(EngineError::BadManifest {
            path: model.manifest_path.clone(),
            field: "opset",
            problem: format!(
                "{} here, but the model file {} declares {declared}",
                model.manifest.opset,
                model.model_path.display()
            ),
        });
    }
    Ok(())
}

/// Checks the model's single input and the named output against the manifest, and keeps only
/// that output.
fn select_io(model: &CheckedModel, mut parsed: InferenceModel) -> Result<InferenceModel, EngineError> {
    let m = &model.manifest;
    let inputs: Vec<String> = parsed
        .input_outlets()
        .map(|o| o.iter().map(|o| parsed.node(o.node).name.clone()).collect())
        .unwrap_or_default();
    if inputs.len() != 1 || inputs[0] != m.input.name {
        return Err(EngineError::TensorName {
            model: model.model_path.clone(),
            what: "input",
            expected: m.input.name.clone(),
            found: inputs,
        });
    }
    let channels = parsed
        .input_fact(0)
        .ok()
        .and_then(|f| f.shape.dim(1))
        .and_then(|d| d.concretize())
        .and_then(|d| d.as_i64())
        .and_then(|d| usize::try_from(d).ok());
    if let Some(channels) = channels.filter(|&c| c != CHANNELS) {
        return Err(EngineError::Channels { path: model.model_path.clone(), model: channels, build: CHANNELS });
    }
    let outputs: Vec<(OutletId, String)> = parsed
        .output_outlets()
        .map(|o| {
            o.iter().map(|&o| (o, parsed.outlet_label(o).unwrap_or(&parsed.node(o.node).name).to_string())).collect()
        })
        .unwrap_or_default();
    let Some(&(outlet, _)) = outputs.iter().find(|(_, name)| *name == m.output.name) else {
        return Err(EngineError::TensorName {
            model: model.model_path.clone(),
            what: "output",
            expected: m.output.name.clone(),
            found: outputs.into_iter().map(|(_, name)| name).collect(),
        });
    };
    parsed.select_output_outlets(&[outlet]).map_err(|e| EngineError::ModelRejected {
        model: model.model_path.clone(),
        engine: ENGINE,
        reason: format!("{e:#}"),
    })?;
    Ok(parsed)
}
