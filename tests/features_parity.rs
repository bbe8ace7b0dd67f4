//! The learned engine's features as the service computes them (`vision::features`) against
//! the training code's (`engines/train/features.py`), on the fixture `tests/features/generate.py`
//! wrote: a network is only as good as the agreement of its inputs in training and service.

use wiretrace::vision::features::{FeatureExtractor, Roi, CHANNELS, FEATURE_VERSION};
use wiretrace::vision::Plane;

const ROWS: usize = 80;
const COLS: usize = 96;

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn rust_features_equal_the_training_features() {
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("features/manifest.json")).expect("fixture manifest");
    assert_eq!(manifest["feature_version"], FEATURE_VERSION, "regenerate tests/features (generate.py)");
    let input = Plane { width: COLS, height: ROWS, data: f32s(include_bytes!("features/input.f32")) };
    let expected = [
        f32s(include_bytes!("features/region0.f32")),
        f32s(include_bytes!("features/region1.f32")),
        f32s(include_bytes!("features/region2.f32")),
    ];
    let regions = manifest["regions"].as_array().expect("regions");
    assert_eq!(regions.len(), expected.len());
    let mut worst = 0.0f32;
    for (region, want) in regions.iter().zip(&expected) {
        let at = |k: &str| region[k].as_u64().expect("region field") as usize;
        let roi = Roi { x: at("x"), y: at("y"), width: at("width"), height: at("height") };
        let mut extractor = FeatureExtractor::new(COLS, ROWS, roi.width, roi.height);
        let mut got = vec![0.0; CHANNELS * roi.width * roi.height];
        extractor.extract(&input, roi, &mut got).expect("extract");
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let err = (g - w).abs() / w.abs().max(1.0);
            worst = worst.max(err);
            let (c, p) = (i / (roi.width * roi.height), i % (roi.width * roi.height));
            assert!(err <= 1e-4, "{roi:?} channel {c} pixel {p}: rust {g}, training {w}");
        }
    }
    println!("worst difference {worst:e} (relative, absolute below 1)");
}
