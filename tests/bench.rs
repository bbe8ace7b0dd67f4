//! `wiretrace bench` on a small synthetic sequence: every frame of every pass is accounted for,
//! the percentiles are ordered and memory was measured. No timing thresholds: machines are noisy.

mod common;

use common::wiretrace;
use serde_json::Value;

fn count(pass: &Value, key: &str) -> u64 {
    pass[key].as_u64().unwrap_or_else(|| panic!("{key} is not a count in {pass}"))
}

/// Runs `wiretrace bench` with `args` on a hard synthetic sequence of `frames` frames at
/// 128 × 128 and 20 fps; returns its summary (standard output) and its JSON report.
fn bench(frames: &str, args: &[&str]) -> (String, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let seq = dir.path().join("seq");
    let out = wiretrace()
        .args(["synth", "--frames", frames, "--size", "128", "--fps", "20", "--difficulty", "hard", "--out"])
        .arg(&seq)
        .output()
        .expect("run wiretrace synth");
    assert!(out.status.success(), "synth failed: {}", String::from_utf8_lossy(&out.stderr));
    let json = dir.path().join("bench.json");
    let out = wiretrace()
        .arg("bench")
        .args(args)
        .arg("--seq")
        .arg(&seq)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run wiretrace bench");
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_str(&std::fs::read_to_string(&json).expect("read report")).expect("JSON");
    (String::from_utf8_lossy(&out.stdout).into_owned(), report)
}

#[test]
fn every_frame_is_accounted_for_in_every_pass() {
    let (stdout, report) = bench("8", &["--repeat", "2", "--overload"]);
    for line in ["sustained", "paced", "overload", "p99 us", "RSS:"] {
        assert!(stdout.contains(line), "the summary lacks {line:?}: {stdout}");
    }

    assert_eq!(report["sequence_frames"], 8);
    assert_eq!(report["repeat"], 2);
    let sustained_fps = report["sustained"]["throughput_fps"].as_f64().expect("throughput");
    assert!(sustained_fps > 0.0);
    // The paced camera runs at half the sustained rate, or at the sequence's 20 fps where that
    // is slower; the overload camera at twice the sustained rate.
    let paced_fps = (0.5 * sustained_fps).min(20.0);
    for (name, input_fps) in [("sustained", None), ("paced", Some(paced_fps)), ("overload", Some(2.0 * sustained_fps))]
    {
        let pass = &report[name];
        assert_eq!(count(pass, "frames"), 16, "{name}: {pass}");
        let processed = count(pass, "processed");
        assert_eq!(processed, count(pass, "centerlines") + count(pass, "no_wire"), "{name}: no deadline: {pass}");
        assert_eq!(processed + count(pass, "dropped") + count(pass, "bad"), 16, "{name}: {pass}");
        assert_eq!(count(pass, "bad"), 0, "{name}: {pass}");
        let latency = &pass["latency_us"];
        // A message the sink's queue dropped is not measured; every other processed frame is.
        let measured = count(latency, "count");
        assert!(measured <= processed, "{name}: {pass}");
        if count(pass, "sink_dropped") == 0 {
            assert_eq!(measured, processed, "{name}: {pass}");
        }
        let (p50, p99, p999, max) =
            (count(latency, "p50"), count(latency, "p99"), count(latency, "p999"), count(latency, "max"));
        assert!(0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{name}: {latency}");
        match input_fps {
            None => assert!(pass["input_fps"].is_null() && count(pass, "dropped") == 0, "{name}: {pass}"),
            Some(want) => {
                let fps = pass["input_fps"].as_f64().expect("input fps");
                assert!((fps - want).abs() < 1e-6 * fps, "{name}: {fps}, not {want} (sustained {sustained_fps})");
            }
        }
        assert!(count(&pass["memory"], "before_kib") > 0, "{name}: {pass}");
        // The slowest frames, slowest first; frames are numbered on across the playings.
        let slowest = pass["slowest"].as_array().expect("slowest frames");
        assert_eq!(slowest.len() as u64, measured.min(5), "{name}: {pass}");
        let latencies: Vec<u64> = slowest.iter().map(|s| count(s, "latency_us")).collect();
        assert!(latencies.windows(2).all(|p| p[0] >= p[1]), "{name}: {latencies:?}");
        // Taken a moment before the sink's histogram takes its own.
        assert!(latencies.first().is_some_and(|&l| l <= max), "{name}: {latencies:?}, max {max}");
        for s in slowest {
            assert!(count(s, "frame") < 16, "{name}: {s}");
            assert!(s["status"].as_str().is_some_and(|t| !t.is_empty()), "{name}: {s}");
        }
    }
    assert!(stdout.contains("slowest frames of the paced pass"), "{stdout}");
    assert_eq!(count(&report["sustained"], "sink_dropped"), 0, "fast pacing waits for the sink");
    let (start, end, peak) =
        (count(&report, "rss_start_kib"), count(&report, "rss_end_kib"), count(&report, "rss_peak_kib"));
    assert!(start > 0 && end > 0 && peak >= start.max(end), "{report}");
}

#[test]
fn with_a_deadline_no_frame_can_make_the_paced_passes_count_every_frame_missed() {
    // 1 ms: the ridge stage alone takes longer at 128 × 128.
    let (_, report) = bench("6", &["--deadline-ms", "1"]);
    let sustained = &report["sustained"];
    assert_eq!(count(sustained, "deadline_misses"), 0, "the sustained pass is offline: {sustained}");
    let paced = &report["paced"];
    let processed = count(paced, "processed");
    assert!(processed > 0, "{paced}");
    assert_eq!(count(paced, "centerlines") + count(paced, "no_wire"), 0, "a result left on time: {paced}");
    assert_eq!(count(paced, "deadline_misses"), processed, "{paced}");
}

#[test]
fn a_directory_that_is_not_a_sequence_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-sequence");
    let out = wiretrace().args(["bench", "--seq"]).arg(&missing).output().expect("run wiretrace bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&*missing.to_string_lossy()), "the error does not name the directory: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
