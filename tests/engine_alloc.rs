//! Heap allocations of one tract `segment` call after warm-up, counted by a global allocator.
//!
//! tract is not allocation-free: every operator of the plan returns a new output tensor, and a
//! run keeps some bookkeeping of its own (engines/README.md, "Allocations"). This test holds
//! the count where it is measured, the same for every call (nothing grows from call to call),
//! so a change that adds allocations to the engine's own side shows.
//!
//! Its own test binary without libtest's harness, so nothing else allocates while it counts.

use std::alloc::System;
use std::path::PathBuf;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use wiretrace::engine::{load, SegmentationEngine};
use wiretrace::vision::features::CHANNELS;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WARM_UP: usize = 3;
const COUNTED: usize = 10;
/// Region sizes, and the most allocations one call may make there: what tract 0.23.9 makes
/// with the committed WireNet (112, 182 and 348), with a little room. None of them is the
/// engine's own: its input tensor and output copy are reused.
const SIZES: [((usize, usize), usize); 3] = [((64, 64), 120), ((256, 256), 190), ((512, 512), 360)];

fn main() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("engines/wirenet.json");
    let sizes: Vec<(usize, usize)> = SIZES.iter().map(|s| s.0).collect();
    let mut engine = load(&manifest, &sizes).expect("load the committed model");
    for ((w, h), budget) in SIZES {
        let features: Vec<f32> = (0..CHANNELS * w * h).map(|i| ((i % 97) as f32 - 48.0) / 24.0).collect();
        let mut probability = vec![0.0; w * h];
        for _ in 0..WARM_UP {
            engine.segment(&features, w, h, &mut probability).expect("segment");
        }
        let mut per_call = Vec::with_capacity(COUNTED);
        let mut bytes = Vec::with_capacity(COUNTED);
        for _ in 0..COUNTED {
            let before = GLOBAL.stats();
            engine.segment(&features, w, h, &mut probability).expect("segment");
            let after = GLOBAL.stats();
            per_call.push(after.allocations + after.reallocations - before.allocations - before.reallocations);
            bytes.push(after.bytes_allocated - before.bytes_allocated);
        }
        println!(
            "tract segment {w}x{h}: {} allocations per call ({} bytes) after {WARM_UP} to warm up, over {COUNTED} calls",
            per_call[0], bytes[0]
        );
        assert!(
            per_call.iter().all(|&n| n == per_call[0]),
            "{w}x{h}: allocations vary from call to call: {per_call:?}"
        );
        assert!(per_call[0] <= budget, "{w}x{h}: {} allocations per call, budget {budget}", per_call[0]);
    }
}
