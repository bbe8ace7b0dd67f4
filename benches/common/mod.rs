//! Inputs of the stage benches: a hard synthetic frame and the pipeline's intermediate planes
//! on it, so that each stage is timed on what it sees in a run, not on a toy image.

// Each bench uses the part of this module its stage needs.
#![allow(dead_code)]

use std::time::Duration;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::frame::Frame;
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::ridge::RidgeMap;
use wiretrace::vision::thinning::Thinning;
use wiretrace::vision::Plane;

/// Frame sides the targets are set at.
pub const SIZES: [usize; 2] = [512, 1024];
const SEED: u64 = 3;
/// In a hard sequence the catheter crosses the wire 12-24 frames after it comes into view: by
/// frame 30 the wire is long and crossed.
const FRAME: u32 = 30;
/// Frames processed before [`FRAME`], so the tracker has a prior as it would in a run.
const PRIMING_FRAMES: u32 = 3;

/// Short runs: `cargo bench` over every stage and both sizes takes a few minutes on 2 cores.
/// Flat sampling, since a 1024 × 1024 frame takes a large part of a second in the slow stages.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

/// A group named after the stage, with throughput in pixels.
pub fn group<'a>(c: &'a mut Criterion, stage: &str) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(stage);
    g.sampling_mode(SamplingMode::Flat);
    g
}

/// The id of one size, setting the group's throughput to its pixels.
pub fn size_id(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, size: usize) -> BenchmarkId {
    g.throughput(Throughput::Elements((size * size) as u64));
    BenchmarkId::from_parameter(format!("{size}x{size}"))
}

/// The frame and what each stage takes as input on it.
pub struct Inputs {
    /// The detector frame.
    pub frame: Frame,
    /// The configuration the planes were made with.
    pub config: PipelineConfig,
    /// Log attenuation: the ridge detector's input.
    pub attenuation: Plane<f32>,
    /// Ridge map: the threshold's and the centerline's input.
    pub ridge: RidgeMap,
    /// Hysteresis mask: the thinning's input.
    pub segmentation: Plane<u8>,
    /// Skeleton before bridging: the bridging's input.
    pub thinned: Plane<u8>,
    /// Where thick structures hide the ridge: the bridging's other input.
    pub occluded: Plane<u8>,
    /// The tracked wire the hysteresis is seeded along.
    pub prior: Vec<[f32; 2]>,
    /// The frame's noise depth: the centerline's path gate.
    pub noise_depth: f32,
    /// Skeleton after bridging: the centerline's input.
    pub skeleton: Plane<u8>,
}

/// `seed`'s hard synthetic sequence at `size`, up to frame `last`, and a frame to render it into.
pub fn hard_sequence(size: usize, seed: u64, last: u32) -> (SyntheticSequence, Frame) {
    let cfg = SynthConfig {
        seed,
        size_px: size,
        frames: last + 1,
        fps: 15.0,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    };
    let synth = SyntheticSequence::new(cfg);
    let mut frame = Frame::with_size(size, size);
    frame.maxval = synth.maxval();
    (synth, frame)
}

/// Renders the frame at `size` and runs the pipeline on it and the frames before it.
pub fn inputs(size: usize) -> Inputs {
    let (mut synth, mut frame) = hard_sequence(size, SEED, FRAME);
    let config = PipelineConfig::default();
    let mut pipeline = Pipeline::new(size, size, &config).expect("classical pipeline");
    for index in FRAME - PRIMING_FRAMES..=FRAME {
        synth.render(index, &mut frame.pixels);
        frame.index = index;
        pipeline.process(&frame).expect("the frame has the pipeline's size");
    }
    let prior = pipeline.prior().to_vec();
    let mut attenuation = Plane::new(size, size);
    Normaliser::new().log_attenuation(&frame, &mut attenuation);
    let segmentation = pipeline.segmentation().clone();
    let mut thinned = segmentation.clone();
    Thinning::new(size * size).apply(&mut thinned);
    Inputs {
        frame,
        attenuation,
        ridge: pipeline.ridge_map().clone(),
        segmentation,
        thinned,
        occluded: pipeline.thick_mask().clone(),
        prior,
        noise_depth: pipeline.noise_depth(),
        skeleton: pipeline.skeleton().clone(),
        config,
    }
}
