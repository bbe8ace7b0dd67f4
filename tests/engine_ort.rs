//! ONNX Runtime beside tract (the `ort-peer` feature): both engines give the same
//! probabilities, to 1e-4, on the committed fixture and on a 256² region of a hard synthetic
//! frame. Needs the runtime library: `ORT_DYLIB_PATH` set to the onnxruntime wheel's
//! `libonnxruntime.so.1.32.0` (.ci/run installs it); without it the test says SKIPPED.

use std::path::PathBuf;

use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::engine::ort::OrtEngine;
use wiretrace::engine::{check, EngineError, SegmentationEngine, TractEngine};
use wiretrace::frame::Frame;
use wiretrace::vision::features::{FeatureExtractor, Roi, CHANNELS};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::Plane;

const TOLERANCE: f32 = 1e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(root().join("tests/engine").join(name)).expect("read fixture");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Features of the 256² region around the middle of the wire in a hard 512² synthetic frame.
fn synthetic_region() -> Vec<f32> {
    let (size, side, index) = (512, 256, 10);
    let cfg = SynthConfig {
        seed: 9,
        size_px: size,
        frames: index + 1,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    };
    let mut synth = SyntheticSequence::new(cfg);
    let mut frame = Frame::with_size(size, size);
    synth.render(index, &mut frame.pixels);
    frame.maxval = synth.maxval();
    let mut attenuation = Plane::new(size, size);
    Normaliser::new().log_attenuation(&frame, &mut attenuation);
    let truth = synth.truth(index);
    let [cx, cy] = truth.points.get(truth.points.len() / 2).copied().unwrap_or([256.0, 256.0]);
    let corner = |c: f32| ((c - side as f32 / 2.0).round().max(0.0) as usize).min(size - side);
    let mut features = vec![0.0; CHANNELS * side * side];
    let roi = Roi { x: corner(cx), y: corner(cy), width: side, height: side };
    FeatureExtractor::new(size, size, side, side).extract(&attenuation, roi, &mut features).expect("features");
    features
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn onnx_runtime_and_tract_agree() {
    let Some(library) = OrtEngine::library_from_env() else {
        println!("SKIPPED: ORT_DYLIB_PATH not set (point it at the onnxruntime wheel's libonnxruntime.so.1.32.0)");
        eprintln!("SKIPPED: ORT_DYLIB_PATH not set (point it at the onnxruntime wheel's libonnxruntime.so.1.32.0)");
        return;
    };
    let model = check(&root().join("engines/wirenet.json")).expect("the committed model");
    let sizes = [(64, 64), (256, 256)];
    let mut ort = OrtEngine::new(&model, &sizes, &library).expect("ONNX Runtime session");
    let mut tract = TractEngine::new(&model, &sizes).expect("tract plan");
    assert_eq!((ort.name(), tract.name()), ("onnxruntime", "tract"));

    let fixture = read_f32("features_64x64.f32");
    let expected = read_f32("probability_64x64.f32");
    let region = synthetic_region();
    for (what, features, side) in [("fixture", &fixture, 64), ("synthetic 256²", &region, 256)] {
        let (mut p_ort, mut p_tract) = (vec![0.0; side * side], vec![0.0; side * side]);
        ort.segment(features, side, side, &mut p_ort).expect("onnxruntime");
        tract.segment(features, side, side, &mut p_tract).expect("tract");
        let diff = max_diff(&p_ort, &p_tract);
        println!("{what}: max |onnxruntime - tract| = {diff:e}");
        assert!(diff <= TOLERANCE, "{what}: the engines differ by {diff:e}");
        if side == 64 {
            let diff = max_diff(&p_ort, &expected);
            assert!(diff <= TOLERANCE, "onnxruntime from Rust vs the committed fixture: {diff:e}");
        }
    }

    let e = ort.segment(&region, 128, 128, &mut [0.0; 128 * 128]).expect_err("128² was not declared");
    assert!(matches!(e, EngineError::UndeclaredSize { width: 128, height: 128 }), "{e:?}");
}
