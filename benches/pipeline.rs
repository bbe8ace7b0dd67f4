//! The whole classical pipeline on one frame (`Pipeline::process`), without capture or sinks:
//! `wiretrace bench` measures those end to end.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wiretrace::pipeline::Pipeline;

fn pipeline(c: &mut Criterion) {
    let mut g = common::group(c, "pipeline");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut pipeline = Pipeline::new(size, size, &inputs.config).expect("classical pipeline");
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| {
            b.iter(|| pipeline.process(black_box(&inputs.frame)).map(|w| w.map(|w| w.points_px.len())))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = pipeline }
criterion_main!(benches);
