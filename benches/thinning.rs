//! Zhang-Suen thinning of the hysteresis mask; it works in place, so each run gets a fresh copy
//! made outside the timing.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use wiretrace::vision::thinning::Thinning;

fn thinning(c: &mut Criterion) {
    let mut g = common::group(c, "thinning");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut thinning = Thinning::new(size * size);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| {
            b.iter_batched_ref(|| inputs.segmentation.clone(), |mask| thinning.apply(mask), BatchSize::LargeInput)
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = thinning }
criterion_main!(benches);
