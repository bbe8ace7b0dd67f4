//! Log attenuation of a detector frame.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wiretrace::vision::normalise::Normaliser;
use wiretrace::vision::Plane;

fn normalise(c: &mut Criterion) {
    let mut g = common::group(c, "normalise");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut normaliser = Normaliser::new();
        let mut out = Plane::new(size, size);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| b.iter(|| normaliser.log_attenuation(black_box(&inputs.frame), &mut out)));
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = normalise }
criterion_main!(benches);
