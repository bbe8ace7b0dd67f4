//! Noise-adaptive hysteresis of the ridge strength.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wiretrace::vision::threshold::Hysteresis;
use wiretrace::vision::Plane;

fn threshold(c: &mut Criterion) {
    let mut g = common::group(c, "threshold");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut hysteresis = Hysteresis::new(size * size, inputs.config.threshold);
        let mut mask = Plane::new(size, size);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| {
            b.iter(|| hysteresis.apply(black_box(&inputs.ridge.strength), &inputs.prior, &mut mask))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = threshold }
criterion_main!(benches);
