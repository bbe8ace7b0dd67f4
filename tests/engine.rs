//! The learned engine: the model manifest and its checks (each refusal names the file and what
//! is wrong), and tract's output on the committed fixture against ONNX Runtime's
//! (tests/engine/, written by examples/engine_fixture.rs and engines/train/make_fixture.py).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;
use wiretrace::engine::{check, load, sha256_hex, EngineError, SegmentationEngine};
use wiretrace::vision::features::{CHANNELS, FEATURE_VERSION};

const TOLERANCE: f32 = 1e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest_path() -> PathBuf {
    root().join("engines/wirenet.json")
}

fn committed_manifest() -> Value {
    serde_json::from_slice(&std::fs::read(manifest_path()).expect("read engines/wirenet.json")).expect("json")
}

fn committed_model() -> Vec<u8> {
    std::fs::read(root().join("engines/wirenet.onnx")).expect("read engines/wirenet.onnx")
}

/// A directory holding `model` as wirenet.onnx and the committed manifest changed by `edit`.
fn model_dir(model: &[u8], edit: impl FnOnce(&mut Value)) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("wirenet.onnx"), model).expect("write model");
    let mut manifest = committed_manifest();
    edit(&mut manifest);
    let path = dir.path().join("wirenet.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).expect("json")).expect("write manifest");
    (dir, path)
}

fn load_err(path: &Path) -> (EngineError, String) {
    let e = load(path, &[(64, 64)]).expect_err("the model must be refused");
    let message = e.to_string();
    (e, message)
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn the_committed_model_passes_its_checks_and_runs() {
    let checked = check(&manifest_path()).expect("the committed model passes");
    assert_eq!(checked.manifest.feature_version, FEATURE_VERSION);
    assert_eq!(checked.manifest.input.channels, CHANNELS);
    assert_eq!(sha256_hex(&checked.bytes), checked.manifest.sha256);

    let mut engine = load(&manifest_path(), &[(64, 64), (32, 48)]).expect("load");
    assert_eq!(engine.name(), "tract");
    assert_eq!(engine.sizes().collect::<Vec<_>>(), vec![(64, 64), (32, 48)]);
    let features = vec![0.25; CHANNELS * 32 * 48];
    let mut probability = vec![-1.0; 32 * 48];
    engine.segment(&features, 32, 48, &mut probability).expect("segment");
    assert!(probability.iter().all(|p| (0.0..=1.0).contains(p)), "probabilities in 0..1");
}

#[test]
fn a_model_with_one_byte_flipped_is_refused_by_its_sha256() {
    let mut model = committed_model();
    let at = model.len() / 2;
    model[at] ^= 0x01;
    let got = sha256_hex(&model);
    let (dir, path) = model_dir(&model, |_| {});
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::Sha256Mismatch { .. }), "{e:?}");
    let model_path = dir.path().join("wirenet.onnx");
    for part in [
        &model_path.display().to_string(),
        "sha256 mismatch",
        committed_manifest()["sha256"].as_str().expect("sha"),
        &got,
        "re-export",
    ] {
        assert!(message.contains(part), "{message:?} does not say {part:?}");
    }
}

#[test]
fn a_consistently_corrupt_model_is_refused_by_tract_not_a_panic() {
    let model = committed_model();
    let truncated = model[..model.len() / 3].to_vec();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let not_onnx = b"{\"this\": \"is a JSON file, not a model\"}".to_vec();
    for (what, bytes) in [("truncated", truncated), ("garbage", garbage), ("not onnx", not_onnx), ("empty", Vec::new())]
    {
        let sha = sha256_hex(&bytes);
        let (dir, path) = model_dir(&bytes, |m| m["sha256"] = json!(sha));
        let (e, message) = load_err(&path);
        assert!(matches!(e, EngineError::ModelRejected { engine: "tract", .. }), "{what}: {e:?}");
        let model_path = dir.path().join("wirenet.onnx").display().to_string();
        assert!(message.contains(&model_path) && message.contains("cannot be loaded by tract"), "{what}: {message}");
    }
}

#[test]
fn a_missing_model_or_manifest_is_named() {
    let (dir, path) = model_dir(&committed_model(), |m| m["model"] = json!("elsewhere.onnx"));
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::ModelMissing { .. }), "{e:?}");
    assert!(message.contains(&dir.path().join("elsewhere.onnx").display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");

    let missing = dir.path().join("nothing.json");
    let (e, message) = load_err(&missing);
    assert!(matches!(e, EngineError::ManifestMissing { .. }), "{e:?}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
}

#[test]
fn a_model_trained_on_other_features_is_refused() {
    let (_dir, path) = model_dir(&committed_model(), |m| m["feature_version"] = json!(FEATURE_VERSION + 1));
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::FeatureVersion { .. }), "{e:?}");
    let says =
        format!("trained on feature version {}, this build computes version {FEATURE_VERSION}", FEATURE_VERSION + 1);
    assert!(message.contains(&says) && message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_model_with_other_channels_is_refused() {
    let (_dir, path) = model_dir(&committed_model(), |m| m["input"]["channels"] = json!(CHANNELS + 2));
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::Channels { model: 7, build: 5, .. }), "{e:?}");
    assert!(message.contains("takes 7 input channels, this build computes 5"), "{message}");
}

#[test]
fn input_and_output_names_must_be_the_models() {
    let (_dir, path) = model_dir(&committed_model(), |m| m["input"]["name"] = json!("image"));
    let (e, message) = load_err(&path);
    assert!(matches!(&e, EngineError::TensorName { what: "input", found, .. } if found == &["features"]), "{e:?}");
    assert!(message.contains("no input named \"image\""), "{message}");

    let (_dir, path) = model_dir(&committed_model(), |m| m["output"]["name"] = json!("mask"));
    let (e, message) = load_err(&path);
    assert!(matches!(&e, EngineError::TensorName { what: "output", found, .. } if found == &["probability"]), "{e:?}");
    assert!(message.contains("no output named \"mask\""), "{message}");
}

#[test]
fn a_manifest_that_is_not_what_it_should_be_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wirenet.json");
    std::fs::write(&path, "{\n  \"format\": 1,\n  \"model\": \"wirenet.onnx\",,\n}").expect("write");
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::ManifestJson { line: 3, .. }), "{e:?}");
    assert!(message.starts_with(&format!("model manifest {}:3:", path.display())), "{message}");
    assert!(!message.contains(" at line "), "the position is said once: {message}");

    let (_dir, path) = model_dir(&committed_model(), |m| m["input"]["layout"] = json!("NCHW"));
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::ManifestJson { .. }) && message.contains("unknown field `layout`"), "{message}");

    let (_dir, path) = model_dir(&committed_model(), |m| m["format"] = json!(2));
    let (e, message) = load_err(&path);
    assert!(matches!(e, EngineError::UnsupportedFormat { found: 2, supported: 1, .. }), "{e:?}");
    assert!(message.contains("format 2 is not supported"), "{message}");

    for (field, value, says) in [
        ("sha256", json!("ABC"), "sha256"),
        ("roi_px", json!(100), "roi_px: 100 is not a positive multiple of 8"),
        ("opset", json!(13), "opset: 13 here, but the model file"),
        ("date", json!("yesterday"), "date"),
        ("model", json!("/etc/passwd"), "relative to the manifest"),
    ] {
        let (_dir, path) = model_dir(&committed_model(), |m| m[field] = value);
        let (e, message) = load_err(&path);
        assert!(matches!(e, EngineError::BadManifest { .. }), "{field}: {e:?}");
        assert!(message.contains(says), "{field}: {message}");
    }
}

#[test]
fn sizes_are_declared_at_start_and_checked_at_each_call() {
    let e = load(&manifest_path(), &[(64, 60)]).expect_err("60 is not a multiple of 8");
    assert!(matches!(e, EngineError::BadSize { width: 64, height: 60, multiple_of: 8 }), "{e:?}");

    let mut engine = load(&manifest_path(), &[(64, 64)]).expect("load");
    let features = vec![0.0; CHANNELS * 32 * 32];
    let mut probability = vec![0.0; 32 * 32];
    let e = engine.segment(&features, 32, 32, &mut probability).expect_err("32x32 was not declared");
    assert!(matches!(e, EngineError::UndeclaredSize { width: 32, height: 32 }), "{e:?}");

    let mut probability = vec![0.0; 64 * 64];
    let e = engine.segment(&features, 64, 64, &mut probability).expect_err("features of the wrong size");
    assert!(matches!(e, EngineError::BufferSize { what: "features", expected: 20480, got: 5120, .. }), "{e:?}");
    let features = vec![0.0; CHANNELS * 64 * 64];
    engine.segment(&features, 64, 64, &mut probability).expect("the engine still works after refusing");
}

/// tract on the committed fixture matches ONNX Runtime's probabilities to 1e-4.
#[test]
fn tract_matches_onnx_runtime_on_the_committed_fixture() {
    let dir = root().join("tests/engine");
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(dir.join("fixture.json")).expect("read fixture.json")).expect("json");
    let checked = check(&manifest_path()).expect("the committed model");
    assert_eq!(
        fixture["model"]["sha256"].as_str(),
        Some(checked.manifest.sha256.as_str()),
        "tests/engine/ was made for another model than engines/wirenet.onnx: regenerate it (engines/README.md)"
    );
    let features = read_f32(&dir.join(fixture["input"]["file"].as_str().expect("input file")));
    let expected = read_f32(&dir.join(fixture["output"]["file"].as_str().expect("output file")));
    let shape: Vec<usize> = serde_json::from_value(fixture["output"]["shape"].clone()).expect("output shape");
    let (height, width) = (shape[2], shape[3]);
    assert_eq!(features.len(), CHANNELS * width * height);

    let mut engine = load(&manifest_path(), &[(width, height)]).expect("load");
    let mut probability = vec![0.0; width * height];
    for _ in 0..2 {
        // Twice: the reused input tensor and run state give the same answer again.
        engine.segment(&features, width, height, &mut probability).expect("segment");
        let (at, diff) = probability
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold((0, 0.0f32), |best, (i, d)| if d > best.1 { (i, d) } else { best });
        assert!(
            diff <= TOLERANCE,
            "pixel {at}: tract {} vs onnxruntime {} (|diff| {diff:e})",
            probability[at],
            expected[at]
        );
    }
}

/// `wiretrace bench-engine` times tract on a sequence's crops and whole frames, writes its JSON
/// report, and without the peer says how to get it.
#[test]
fn bench_engine_reports_tract_and_how_to_add_the_peer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seq = dir.path().join("seq");
    let bin = env!("CARGO_BIN_EXE_wiretrace");
    let synth = std::process::Command::new(bin)
        .args(["synth", "--frames", "2", "--size", "160", "--difficulty", "hard", "--out"])
        .arg(&seq)
        .output()
        .expect("run synth");
    assert!(synth.status.success(), "{}", String::from_utf8_lossy(&synth.stderr));
    let json = dir.path().join("engine.json");
    let out = std::process::Command::new(bin)
        .args(["bench-engine", "--frames", "3", "--manifest"])
        .arg(manifest_path())
        .arg("--seq")
        .arg(&seq)
        .arg("--json")
        .arg(&json)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .expect("run bench-engine");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("crop 160x160") && !stdout.contains("whole frame"), "{stdout}");
    assert!(stdout.contains("ONNX Runtime peer not run") && stdout.contains("ORT_DYLIB_PATH"), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).expect("the JSON report")).expect("json");
    let tract = &report["sizes"][0]["timings"][0];
    assert_eq!((tract["engine"].as_str(), tract["calls"].as_u64()), (Some("tract"), Some(3)));
    assert!(tract["median_us"].as_f64().is_some_and(|t| t > 0.0), "{report}");
    assert_eq!(report["crop_centre"], "ground-truth wire");
}
