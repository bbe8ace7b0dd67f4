//! Replay of a synthetic sequence → `rx --json` in another process, over UDP loopback.

mod common;

use common::{centerlines, points, replay, rx_summary, synth, Rx};
use wiretrace::capture::sequence::read_centerlines;
use wiretrace::eval::mean_centerline_distance;

#[test]
fn replayed_centerlines_follow_the_wire_and_every_frame_is_accounted_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = 30u32;
    synth(dir.path(), 10, frames, 512);
    let truth = read_centerlines(dir.path()).expect("ground truth");

    let (rx, listening) = Rx::start(&["--udp", "127.0.0.1:0", "--idle-exit", "2"]);
    let addr = listening.rsplit(' ').next().expect("address").to_string();
    replay(&[dir.path().to_str().expect("utf-8 path"), "--udp", &addr, "--fast"]);
    let (messages, stderr) = rx.finish();

    let seqs: Vec<u64> = messages.iter().map(|m| m["seq"].as_u64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers have gaps: {seqs:?}");
    let summary = rx_summary(&stderr);
    assert_eq!(summary["seq_gaps"], 0);
    assert_eq!(summary["crc_failures"], 0);

    let lines = centerlines(&messages);
    let mut frame_ids: Vec<u64> = lines.iter().map(|m| m["frame"].as_u64().expect("frame")).collect();
    frame_ids.sort_unstable();
    assert_eq!(frame_ids, (0..u64::from(frames)).collect::<Vec<_>>(), "each frame once");

    // The pipeline reports wires of 20 px and more; a wire that has just entered is shorter.
    let long_enough = |gt: &[[f32; 2]]| {
        gt.windows(2).map(|s| ((s[1][0] - s[0][0]).powi(2) + (s[1][1] - s[0][1]).powi(2)).sqrt()).sum::<f32>() >= 30.0
    };
    let (mut distances, mut visible, mut missed) = (Vec::new(), 0, 0);
    for m in &lines {
        let frame = m["frame"].as_u64().expect("frame") as u32;
        let gt = &truth.iter().find(|t| t.frame == frame).expect("truth for every frame").points;
        let status = m["status"].as_str().expect("status");
        let pts = points(m);
        assert!(m["capture_us"].as_u64().is_some() && m["latency_us"].as_u64().is_some());
        if status.contains("no_wire") {
            assert!(pts.is_empty(), "no-wire message with points");
        } else {
            assert!(!pts.is_empty() && pts.len() <= 64, "frame {frame}: {} points", pts.len());
        }
        if !long_enough(gt) {
            continue;
        }
        visible += 1;
        match mean_centerline_distance(&pts, gt) {
            Some(d) => distances.push(d),
            None => missed += 1,
        }
    }
    assert!(visible >= 20, "the sequence should show the wire in most frames ({visible})");
    assert!(missed * 20 <= visible, "wire missed in {missed} of {visible} frames where it is visible");
    let mean = distances.iter().sum::<f32>() / distances.len() as f32;
    assert!(mean < 2.0, "mean centerline distance {mean:.2} px; per frame: {distances:?}");

    // The receiver's output lines up with the ground truth, so eval can score it, anywhere:
    // it needs no model (none is found from the temporary directory).
    let pred = dir.path().join("rx.jsonl");
    let text: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
    std::fs::write(&pred, text.join("\n")).expect("write rx output");
    let report_path = dir.path().join("report.json");
    let out = common::wiretrace()
        .args(["eval", "--seq", dir.path().to_str().expect("utf-8 path"), "--pred"])
        .arg(&pred)
        .arg("--json")
        .arg(&report_path)
        .current_dir(dir.path())
        .output()
        .expect("run eval");
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report")).expect("report is JSON");
    assert_eq!(report["frames"], u64::from(frames));
    assert!(report["mean_distance_px"]["median"].as_f64().is_some_and(|d| d < 1.0), "{report}");
    assert_eq!(report["direction_correct_share"], 1.0);
}

#[test]
fn garbage_datagrams_are_counted_and_the_receiver_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    synth(dir.path(), 4, 6, 128);
    let (rx, listening) = Rx::start(&["--udp", "127.0.0.1:0", "--idle-exit", "2"]);
    let addr = listening.rsplit(' ').next().expect("address").to_string();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for garbage in [&b""[..], b"\x01", b"hello, robot", &[0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]] {
        socket.send_to(garbage, &addr).expect("send garbage");
    }
    replay(&[dir.path().to_str().expect("utf-8 path"), "--udp", &addr, "--fast"]);
    let (messages, stderr) = rx.finish();
    let summary = rx_summary(&stderr);
    assert_eq!(summary["crc_failures"], 2, "{summary}");
    assert_eq!(summary["damaged"], 2, "too short: {summary}");
    assert_eq!(centerlines(&messages).len(), 6);
}
