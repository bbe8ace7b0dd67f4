//! Writes the input of the engine fixture (tests/engine/): the feature planes of a 64×64
//! region on the wire of a hard synthetic frame, as the service computes them. Then
//! `engines/train/make_fixture.py` runs the model on them with ONNX Runtime for the expected
//! output (engines/README.md):
//!
//! ```text
//! cargo run --release --example engine_fixture -- [OUT_DIR]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::engine::sha256_hex;
use wiretrace::frame::Frame;
use wiretrace::vision::features::{FeatureExtractor, Roi, CHANNELS, FEATURE_VERSION};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::Plane;

const SEED: u64 = 5;
const FRAME: u32 = 20;
const SIZE: usize = 512;
const SIDE: usize = 64;
const FEATURES_FILE: &str = "features_64x64.f32";

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tests/engine".into()));
    let difficulty = Difficulty::Hard;
    let mut synth = SyntheticSequence::new(SynthConfig {
        seed: SEED,
        size_px: SIZE,
        frames: FRAME + 1,
        difficulty,
        ..SynthConfig::default()
    });
    let mut frame = Frame::with_size(SIZE, SIZE);
    synth.render(FRAME, &mut frame.pixels);
    frame.maxval = synth.maxval();
    let mut attenuation = Plane::new(SIZE, SIZE);
    Normaliser::new().log_attenuation(&frame, &mut attenuation);

    // Centred on the middle point of the wire, so the region holds wire and background.
    let truth = synth.truth(FRAME);
    let [cx, cy] = *truth.points.get(truth.points.len() / 2).context("the synthetic frame has no visible wire")?;
    let corner = |c: f32| ((c - SIDE as f32 / 2.0).round().max(0.0) as usize).min(SIZE - SIDE);
    let roi = Roi { x: corner(cx), y: corner(cy), width: SIDE, height: SIDE };
    let mut features = vec![0.0f32; CHANNELS * SIDE * SIDE];
    FeatureExtractor::new(SIZE, SIZE, SIDE, SIDE).extract(&attenuation, roi, &mut features)?;

    let bytes: Vec<u8> = features.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(FEATURES_FILE), &bytes)?;
    let info = serde_json::json!({
        "generator": "examples/engine_fixture.rs",
        "file": FEATURES_FILE,
        "dtype": "float32 little-endian",
        "shape": [1, CHANNELS, SIDE, SIDE],
        "sha256": sha256_hex(&bytes),
        "feature_version": FEATURE_VERSION,
        "source": {
            "synthetic": {"seed": SEED, "difficulty": difficulty.name(), "size_px": SIZE, "frame": FRAME},
            "roi": {"x": roi.x, "y": roi.y, "width": SIDE, "height": SIDE},
        },
    });
    std::fs::write(out.join("input.json"), serde_json::to_string_pretty(&info)? + "\n")?;
    println!("wrote {} and input.json to {} (region at {}, {})", FEATURES_FILE, out.display(), roi.x, roi.y);
    Ok(())
}
