//! Gap bridging of the skeleton; it draws in place, so each run gets a fresh copy of the
//! unbridged skeleton made outside the timing.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use wiretrace::vision::bridging::GapBridger;

fn bridging(c: &mut Criterion) {
    let mut g = common::group(c, "bridging");
    for size in common::SIZES {
        let inputs = common::inputs(size);
        let mut bridger = GapBridger::new(size, size, inputs.config.bridging);
        let id = common::size_id(&mut g, size);
        g.bench_function(id, |b| {
            b.iter_batched_ref(
                || inputs.thinned.clone(),
                |skeleton| bridger.apply(skeleton, &inputs.occluded),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = bridging }
criterion_main!(benches);
