//! Multi-scale Hessian ridge measure: the stage that costs most.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wiretrace::vision::ridge::{RidgeDetector, RidgeMap};

fn ridge(c: &mut Criterion) {
    let mut g = common::group(c, "ridge");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut detector = RidgeDetector::new(size, size, inputs.config.ridge.clone());
        let mut out = RidgeMap::new(size, size);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| b.iter(|| detector.detect(black_box(&inputs.attenuation), &mut out)));
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = ridge }
criterion_main!(benches);
