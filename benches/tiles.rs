//! The ridge stage on tiles along a tracked wire, as the classical path runs it on most frames:
//! the wire of hard seed 7 short (frame 30, about 100 px in view at 512²) and long (frame 110,
//! about 410 px), whose regions set the paced p99 (README, "What sets the paced p99 at 512
//! px"). Throughput is the pixels of the regions' crops, which is what the stage pays for.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::ridge::RidgeMap;
use wiretrace::vision::tiles::{Looks, TiledRidge};
use wiretrace::vision::Plane;

/// Hard seed 7: the classical path tracks its wire from its first frames (seed 3's, the stage benches',
/// is too faint to be tracked, and every frame of it is filtered whole).
const SEED: u64 = 7;
const SHORT_FRAME: u32 = 30;
const LONG_FRAME: u32 = 110;
/// A camera's frame interval at 15 fps: what a look between frames may take.
const FRAME_INTERVAL_US: u64 = 66_667;

/// The log attenuation of `seed`'s hard frames `at` (ascending) and the centerline tracked up
/// to each, every frame before them run as the runner runs a camera's frames at 15 fps: looks
/// beyond the tiles between frames, and a faint wire tracked from where it came into view.
fn tracked_frames<const N: usize>(
    size: usize,
    seed: u64,
    at: [u32; N],
    config: &PipelineConfig,
) -> [(Plane<f32>, Vec<[f32; 2]>); N] {
    let last = at[N - 1];
    let (mut synth, mut frame) = common::hard_sequence(size, seed, last);
    let mut pipeline = Pipeline::new(size, size, config).expect("classical pipeline");
    pipeline.look_between_frames(Some(FRAME_INTERVAL_US));
    let mut out = at.map(|_| (Plane::new(size, size), Vec::new()));
    for index in 0..=last {
        synth.render(index, &mut frame.pixels);
        frame.index = index;
        if let Some(k) = at.iter().position(|&a| a == index) {
            let prior = pipeline.prior();
            assert!(!prior.is_empty(), "seed {seed}: no wire tracked by frame {index} at {size}²");
            out[k].1 = prior.to_vec();
            Normaliser::new().log_attenuation(&frame, &mut out[k].0);
        }
        pipeline.process(&frame).expect("the frame has the pipeline's size");
        pipeline.finish_look();
    }
    out
}

fn tiles(c: &mut Criterion) {
    let mut g = common::group(c, "tiles");
    let config = PipelineConfig::default();
    let roi = config.ridge_tiles.expect("the classical path runs on tiles by default");
    for size in common::SIZES {
        let [short, long] = tracked_frames(size, SEED, [SHORT_FRAME, LONG_FRAME], &config);
        for (wire, (attenuation, prior)) in [("short", &short), ("long", &long)] {
            let mut tiles = TiledRidge::new(size, size, &config.ridge, roi, config.ridge_search)
                .expect("tiles are smaller than the frame");
            // A tracked wire from the border, looks between frames: the tiles a frame filters
            // before its answer (the look beyond them waits for the camera's idle time).
            assert!(tiles.plan(prior, true, true, true, Looks::BetweenFrames), "{wire} wire at {size}²: whole frame");
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
