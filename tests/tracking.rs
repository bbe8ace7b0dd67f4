//! Tracking keeps the wire's ordering, proximal end first, across a sequence in which the
//! catheter crosses it (the hard synthetic difficulty).

use wiretrace::capture::synthetic::{write_sequence, Difficulty, SynthConfig};
use wiretrace::eval::report::evaluate;
use wiretrace::pipeline::PipelineConfig;

#[test]
fn the_wire_keeps_its_direction_while_the_catheter_crosses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SynthConfig {
        seed: 3,
        size_px: 512,
        frames: 50,
        fps: 15.0,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    };
    write_sequence(&cfg, dir.path()).expect("synth");
    let report = evaluate(dir.path(), None, &PipelineConfig::default()).expect("eval");
    let answered: Vec<_> = report.per_frame.iter().filter(|f| f.wire_visible && f.answered).collect();
    assert!(answered.len() >= 40, "the wire is found in most frames: {}", answered.len());
    let tracked = &answered[answered.len() / 4..];
    let reversed: Vec<u32> = tracked.iter().filter(|f| f.direction_correct == Some(false)).map(|f| f.frame).collect();
    assert!(reversed.is_empty(), "frames sent tip first: {reversed:?}");
}
