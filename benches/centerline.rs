//! Centerline from the bridged skeleton: path choice, tracking, ordering, sub-pixel, resampling.
//! The extractor keeps its tracking prior between runs, as it does between frames.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wiretrace::vision::centerline::CenterlineExtractor;

fn centerline(c: &mut Criterion) {
    let mut g = common::group(c, "centerline");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut extractor = CenterlineExtractor::new(size, size, inputs.config.centerline);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| {
            b.iter(|| {
                extractor
                    .extract(black_box(&inputs.skeleton), &inputs.ridge, inputs.noise_depth)
                    .map(|w| w.points_px.len())
            })
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = centerline }
criterion_main!(benches);
