//! The ridge stage on tiles along a tracked wire, as the classical path runs it on most frames:
//! the wire of hard seed 7 short (frame 30, about 100 px in view at 512²) and long (frame 110,
//! about 410 px), whose regions set the paced p99 (README, "What sets the paced p99 at 512
//! px"). Throughput is the pixels of the regions' crops, which is what the stage pays for.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::frame::Frame;
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::ridge::RidgeMap;
use wiretrace::vision::roi::RoiParams;
use wiretrace::vision::tiles::{Looks, Search, TiledRidge};
use wiretrace::vision::Plane;

/// Hard seed 7: the classical path tracks its wire from frame 5 (seed 3's, the stage benches',
/// is too faint to be tracked, and every frame of it is filtered whole).
const SEED: u64 = 7;
const SHORT_FRAME: u32 = 30;
const LONG_FRAME: u32 = 110;
/// The log attenuation of `seed`'s hard frame `at` and the centerline tracked up to it, every
/// frame before it run, as in a run: a faint wire is tracked from where it came into view.
fn tracked_frame(size: usize, seed: u64, at: u32) -> (Plane<f32>, Vec<[f32; 2]>) {
    let cfg = SynthConfig {
        seed,
        size_px: size,
        frames: at + 1,
        fps: 15.0,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    };
    let mut synth = SyntheticSequence::new(cfg);
    let mut frame = Frame::with_size(size, size);
    frame.maxval = synth.maxval();
    let mut pipeline = Pipeline::new(size, size, &PipelineConfig::default()).expect("classical pipeline");
    for index in 0..at {
        synth.render(index, &mut frame.pixels);
        frame.index = index;
        pipeline.process(&frame).expect("the frame has the pipeline's size");
    }
    let prior = pipeline.prior().to_vec();
    assert!(!prior.is_empty(), "seed {seed}: no wire tracked by frame {at} at {size}²");
    synth.render(at, &mut frame.pixels);
    let mut attenuation = Plane::new(size, size);
    Normaliser::new().log_attenuation(&frame, &mut attenuation);
    (attenuation, prior)
}

fn tiles(c: &mut Criterion) {
    let mut g = common::group(c, "tiles");
    let config = PipelineConfig::default();
    for size in common::SIZES {
        let short = tracked_frame(size, SEED, SHORT_FRAME);
        let long = tracked_frame(size, SEED, LONG_FRAME);
        for (wire, (attenuation, prior)) in [("short", &short), ("long", &long)] {
            let mut tiles = TiledRidge::new(size, size, &config.ridge, RoiParams::default(), Search::Auto)
                .expect("tiles are smaller than the frame");
            // A tracked wire from the border, looks between frames: the regions the runner's
            // frames on tiles filter before their answer.
            let on_tiles = tiles.plan(prior, true, true, true, Looks::BetweenFrames);
            assert!(on_tiles, "{wire} wire at {size}²: whole frame");
            let mut out = RidgeMap::new(size, size);
            tiles.detect(attenuation, &mut out, false);
            g.throughput(Throughput::Elements(tiles.filtered_px() as u64));
            let id = BenchmarkId::new(wire, format!("{size}x{size}"));
            g.bench_function(id, |b| b.iter(|| tiles.detect(black_box(attenuation), &mut out, true)));
        }
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = tiles }
criterion_main!(benches);
