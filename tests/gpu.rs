//! The GPU path against the CPU reference: each kernel on synthetic frames and on random
//! frames, and the whole pipeline. Runs wherever a CUDA device is; elsewhere every test says
//! `SKIPPED: no CUDA device` and passes. README.md ("GPU tests") says how to run it on a GPU
//! machine from a binary built here.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::config::EngineKind;
use wiretrace::frame::Frame;
use wiretrace::gpu::features::GpuFeatures;
use wiretrace::gpu::ridge::GpuRidge;
use wiretrace::gpu::thinning::GpuThinning;
use wiretrace::gpu::{Gpu, GpuError};
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::vision::features::{FeatureExtractor, Roi, CHANNELS};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::ridge::{RidgeDetector, RidgeMap, RidgeParams};
use wiretrace::vision::thinning::Thinning;
use wiretrace::vision::threshold::{Hysteresis, ThresholdParams};
use wiretrace::vision::tiles::Search;
use wiretrace::vision::Plane;
use wiretrace_protocol::BackendId;

/// The device, opened once for every test; `None`, said loudly, where there is none. A
/// device that is there but cannot load the kernels fails the test, and so does none at all
/// where WIRETRACE_REQUIRE_GPU is set (a GPU machine, where a skip would hide a broken driver).
fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| match Gpu::open(None) {
        Ok(gpu) => {
            eprintln!("GPU: {}", gpu.describe());
            Some(gpu)
        }
        Err(e @ (GpuError::NoDriver | GpuError::NoDevice(_))) => {
            assert!(std::env::var_os("WIRETRACE_REQUIRE_GPU").is_none(), "WIRETRACE_REQUIRE_GPU is set: {e}");
            eprintln!("SKIPPED: no CUDA device ({e})");
            None
        }
        Err(e) => panic!("a CUDA device is there but the GPU path cannot start: {e}"),
    });
    if gpu.is_none() {
        eprintln!("SKIPPED: no CUDA device");
    }
    gpu.clone()
}

fn frame(synth: &mut SyntheticSequence, index: u32) -> Frame {
    let side = synth.size_px();
    let mut f = Frame::with_size(side, side);
    synth.render(index, &mut f.pixels);
    f.maxval = synth.maxval();
    f.index = index;
    f
}

fn sequence(difficulty: Difficulty, size_px: usize, seed: u64) -> SyntheticSequence {
    SyntheticSequence::new(SynthConfig { seed, size_px, frames: 40, fps: 15.0, difficulty, ..SynthConfig::default() })
}

fn attenuation(f: &Frame) -> Plane<f32> {
    let mut att = Plane::new(f.width, f.height);
    Normaliser::new().log_attenuation(f, &mut att);
    att
}

/// The kernels repeat their CPU reference's IEEE operations in its order (kernels/README.md),
/// so their output is the reference's bit for bit; the bar, 1e-4 relative, is looser.
/// The first pixel where `gpu` and `cpu` differ, with the count of them.
fn compare(name: &str, gpu: &[f32], cpu: &[f32]) -> Result<(), String> {
    assert_eq!(gpu.len(), cpu.len());
    let bad: Vec<usize> = (0..gpu.len()).filter(|&i| gpu[i].to_bits() != cpu[i].to_bits()).collect();
    match bad.first() {
        None => Ok(()),
        Some(&i) => Err(format!("{name}: {} pixels differ, first at {i}: GPU {} CPU {}", bad.len(), gpu[i], cpu[i])),
    }
}

/// The CPU and GPU ridge maps and thick masks of `att`.
fn both_ridges(gpu: &Arc<Gpu>, att: &Plane<f32>) -> ((RidgeMap, Plane<u8>), (RidgeMap, Plane<u8>)) {
    let (w, h) = (att.width, att.height);
    let params = RidgeParams::default();
    let mut cpu = RidgeDetector::new(w, h, params.clone());
    let mut cpu_map = RidgeMap::new(w, h);
    cpu.detect(att, &mut cpu_map);
    let mut stage = GpuRidge::new(Arc::clone(gpu), w, h, &params).expect("GPU ridge stage");
    let (mut gpu_map, mut gpu_mask) = (RidgeMap::new(w, h), Plane::new(w, h));
    stage.load_attenuation(att).expect("upload");
    stage.detect(&mut gpu_map, &mut gpu_mask).expect("GPU ridge");
    ((cpu_map, cpu.thick_mask().clone()), (gpu_map, gpu_mask))
}

fn check_ridge(what: &str, gpu: &Arc<Gpu>, att: &Plane<f32>) -> Result<(), String> {
    let ((cpu_map, cpu_mask), (gpu_map, gpu_mask)) = both_ridges(gpu, att);
    let mask_diff = cpu_mask.data.iter().zip(&gpu_mask.data).filter(|(a, b)| a != b).count();
    if mask_diff > 0 {
        return Err(format!("{what}: the thick masks differ at {mask_diff} pixels"));
    }
    compare(&format!("{what} strength"), &gpu_map.strength.data, &cpu_map.strength.data)?;
    compare(&format!("{what} normal x"), &gpu_map.normal_x.data, &cpu_map.normal_x.data)?;
    compare(&format!("{what} normal y"), &gpu_map.normal_y.data, &cpu_map.normal_y.data)
}

#[test]
fn log_attenuation_is_the_cpu_table_s() {
    let Some(gpu) = gpu() else { return };
    let mut synth = sequence(Difficulty::Hard, 256, 3);
    let mut stage = GpuRidge::new(Arc::clone(&gpu), 256, 256, &RidgeParams::default()).expect("stage");
    let mut normaliser = Normaliser::new();
    let mut out = Plane::new(256, 256);
    for (i, maxval) in [(0, 4095u16), (1, 4095), (2, 255)] {
        let mut f = frame(&mut synth, i);
        f.maxval = maxval;
        stage.load_frame(&f, normaliser.table(f.maxval)).expect("normalise");
        stage.input(&mut out).expect("download");
        let cpu = attenuation(&f);
        assert!(out.data.iter().zip(&cpu.data).all(|(g, c)| g.to_bits() == c.to_bits()), "frame {i}");
    }
}

#[test]
fn ridge_maps_match_the_cpu_on_synthetic_frames() {
    let Some(gpu) = gpu() else { return };
    for (difficulty, size) in [(Difficulty::Easy, 256), (Difficulty::Hard, 512), (Difficulty::Extreme, 512)] {
        let mut synth = sequence(difficulty, size, 5);
        for i in [0, 17] {
            let att = attenuation(&frame(&mut synth, i));
            let what = format!("{} {size} frame {i}", difficulty.name());
            check_ridge(&what, &gpu, &att).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{what}: ridge map and thick mask bit for bit the CPU's");
        }
    }
}

/// A mask with much to thin: hysteresis at low fixed thresholds keeps the wire, catheters,
/// ribs and noise, blobs and all.
fn hysteresis_mask(map: &RidgeMap) -> Plane<u8> {
    let mut mask = Plane::new(map.strength.width, map.strength.height);
    let n = mask.data.len();
    let params =
        ThresholdParams { high: 0.03, low: 0.01, high_over_noise: 0.0, low_over_noise: 0.0, prior_radius_px: 2.5 };
    Hysteresis::new(n, params).apply(&map.strength, &[], &mut mask);
    mask
}

fn check_thinning(gpu: &Arc<Gpu>, mask: &Plane<u8>) -> Result<(), String> {
    let (w, h) = (mask.width, mask.height);
    let mut cpu = mask.clone();
    Thinning::new(w * h).apply(&mut cpu);
    let mut on_gpu = mask.clone();
    GpuThinning::new(Arc::clone(gpu), w, h).expect("stage").apply(&mut on_gpu).expect("GPU thinning");
    let diff = cpu.data.iter().zip(&on_gpu.data).filter(|(a, b)| a != b).count();
    if diff == 0 {
        Ok(())
    } else {
        Err(format!("{w}x{h}: the skeletons differ at {diff} pixels"))
    }
}

#[test]
fn thinning_is_the_cpu_s_pixel_for_pixel() {
    let Some(gpu) = gpu() else { return };
    for difficulty in [Difficulty::Easy, Difficulty::Hard, Difficulty::Extreme] {
        let mut synth = sequence(difficulty, 512, 9);
        let att = attenuation(&frame(&mut synth, 4));
        let mut map = RidgeMap::new(512, 512);
        RidgeDetector::new(512, 512, RidgeParams::default()).detect(&att, &mut map);
        let mask = hysteresis_mask(&map);
        assert!(mask.data.iter().filter(|&&v| v != 0).count() > 100, "{}: a mask to thin", difficulty.name());
        check_thinning(&gpu, &mask).unwrap_or_else(|e| panic!("{}: {e}", difficulty.name()));
    }
    // A solid frame: the border rows and columns stay, the rest thins.
    let full = Plane { width: 40, height: 30, data: vec![1u8; 1200] };
    check_thinning(&gpu, &full).unwrap_or_else(|e| panic!("solid: {e}"));
}

#[test]
fn features_match_the_cpu_extractor_in_every_region() {
    let Some(gpu) = gpu() else { return };
    let (w, h) = (320, 288);
    let mut synth = SyntheticSequence::new(SynthConfig {
        seed: 11,
        size_px: 320,
        frames: 10,
        fps: 15.0,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    });
    let f = frame(&mut synth, 3);
    let mut cropped = Frame::with_size(w, h);
    cropped.maxval = f.maxval;
    for y in 0..h {
        cropped.pixels[y * w..(y + 1) * w].copy_from_slice(&f.pixels[y * 320..y * 320 + w]);
    }
    let att = attenuation(&cropped);
    // The engine's whole-frame input is padded to a multiple of 16: 320 x 288 is one already,
    // a 100 x 90 region is padded to 112 x 96.
    let mut stage = GpuFeatures::new(Arc::clone(&gpu), w, h, (w, h)).expect("stage");
    // One upload and filtering, every region packed from it (as the pipeline's tiles are).
    stage.load(&att).expect("GPU filtering");
    for (roi, engine_px) in [
        (Roi::whole(w, h), (w, h)),
        (Roi { x: 0, y: 0, width: 100, height: 90 }, (112, 96)),
        (Roi { x: 220, y: 198, width: 100, height: 90 }, (100, 90)),
        (Roi { x: 117, y: 61, width: 100, height: 90 }, (100, 90)),
    ] {
        let n = roi.width * roi.height;
        let mut cpu = vec![0.0; CHANNELS * n];
        let mut extractor = FeatureExtractor::new(w, h, roi.width, roi.height);
        extractor.extract(&att, roi, &mut cpu).expect("CPU features");
        let (ew, eh) = engine_px;
        let mut on_gpu = vec![f32::NAN; CHANNELS * ew * eh];
        stage.extract(&att, roi, engine_px, &mut on_gpu).expect("GPU features");
        for c in 0..CHANNELS {
            for y in 0..eh {
                for x in 0..ew {
                    let g = on_gpu[(c * eh + y) * ew + x];
                    let want =
                        if x < roi.width && y < roi.height { cpu[(c * roi.height + y) * roi.width + x] } else { 0.0 };
                    assert_eq!(g.to_bits(), want.to_bits(), "{roi:?} channel {c} at {x},{y}: GPU {g} CPU {want}");
                }
            }
        }
        let (nx, ny) = extractor.normals();
        let (gx, gy) = stage.normals();
        compare(&format!("{roi:?} normal x"), gx, &nx.data).unwrap_or_else(|e| panic!("{e}"));
        compare(&format!("{roi:?} normal y"), gy, &ny.data).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A random frame: smooth random structures (sums of random lines and blobs) on noise, over
/// the range of attenuations a detector gives.
fn random_attenuation() -> impl Strategy<Value = Plane<f32>> {
    (8usize..96, 8usize..96, any::<u64>()).prop_map(|(w, h, seed)| {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let lines: Vec<[f32; 4]> =
            (0..4).map(|_| [next() * 6.3, next() * w as f32, next() * 3.0 + 0.6, next()]).collect();
        let mut p = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let mut v = 1.0 + 0.05 * next();
                for &[theta, offset, width, depth] in &lines {
                    let d = x as f32 * theta.cos() + y as f32 * theta.sin() - offset;
                    v += depth * (-d * d / (2.0 * width * width)).exp();
                }
                p.data[y * w + x] = v;
            }
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_give_the_cpu_s_ridge_map_and_skeleton(att in random_attenuation()) {
        if let Some(gpu) = gpu() {
            check_ridge("random frame", &gpu, &att).map_err(TestCaseError::fail)?;
            let mut map = RidgeMap::new(att.width, att.height);
            RidgeDetector::new(att.width, att.height, RidgeParams::default()).detect(&att, &mut map);
            check_thinning(&gpu, &hysteresis_mask(&map)).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn random_masks_thin_as_on_the_cpu(w in 3usize..70, h in 3usize..70, seed in any::<u64>(), density in 0.2f64..0.9) {
        if let Some(gpu) = gpu() {
            let mut state = seed | 1;
            let data = (0..w * h)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    u8::from(((state >> 33) as f64 / (1u64 << 31) as f64) < density)
                })
                .collect();
            check_thinning(&gpu, &Plane { width: w, height: h, data }).map_err(TestCaseError::fail)?;
        }
    }
}

/// The centerlines of `frames` of a sequence through a CPU and a GPU pipeline of `config`,
/// frame by frame: the same frames answered, every point within 0.25 px.
fn pipelines_agree(gpu: &Arc<Gpu>, config: PipelineConfig, difficulty: Difficulty, size: usize) {
    let mut cpu = Pipeline::new(size, size, &config).expect("CPU pipeline");
    let mut on_gpu =
        Pipeline::new(size, size, &PipelineConfig { gpu: Some(Arc::clone(gpu)), ..config }).expect("GPU pipeline");
    assert_eq!(on_gpu.backend(), BackendId::GPU_CUDA);
    let mut synth = sequence(difficulty, size, 21);
    let (mut answered, mut worst) = (0, 0.0f32);
    for i in 0..30 {
        let f = frame(&mut synth, i);
        let a = cpu.process(&f).expect("CPU frame").map(|w| w.points_px.to_vec());
        let b = on_gpu.process(&f).expect("GPU frame").map(|w| w.points_px.to_vec());
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                assert_eq!(a.len(), b.len(), "frame {i}: {} CPU points, {} GPU points", a.len(), b.len());
                for (p, q) in a.iter().zip(&b) {
                    worst = worst.max(((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt());
                }
                answered += 1;
            }
            (a, b) => panic!("frame {i}: CPU answered {}, GPU {}", a.is_some(), b.is_some()),
        }
    }
    assert_eq!(on_gpu.backend(), BackendId::GPU_CUDA, "the GPU failed on the way");
    eprintln!("{} {size}: {answered} of 30 frames answered, worst point {worst:.6} px apart", difficulty.name());
    assert!(answered >= 10, "only {answered} frames answered");
    assert!(worst <= 0.25, "points {worst} px apart");
}

#[test]
fn the_gpu_pipeline_s_centerlines_are_the_cpu_s() {
    let Some(gpu) = gpu() else { return };
    for (difficulty, size) in [(Difficulty::Easy, 256), (Difficulty::Hard, 512), (Difficulty::Extreme, 512)] {
        pipelines_agree(&gpu, PipelineConfig::default(), difficulty, size);
    }
}

/// The search on squares keeps only its tiles and square of the GPU's whole-frame ridge map:
/// the same regions as the CPU's tiles, so the same centerlines.
#[test]
fn the_gpu_pipeline_searching_on_squares_gives_the_cpu_s_centerlines() {
    let Some(gpu) = gpu() else { return };
    let config = PipelineConfig { ridge_search: Search::Squares, ..PipelineConfig::default() };
    for (difficulty, size) in [(Difficulty::Easy, 512), (Difficulty::Hard, 512)] {
        pipelines_agree(&gpu, config.clone(), difficulty, size);
    }
}

#[test]
fn the_learned_pipeline_with_gpu_features_gives_the_cpu_s_centerlines() {
    let Some(gpu) = gpu() else { return };
    let config = PipelineConfig::default()
        .with_engine(EngineKind::Learned, Path::new("engines/wirenet.json"), false)
        .expect("the shipped model loads");
    pipelines_agree(&gpu, config, Difficulty::Hard, 512);
}
