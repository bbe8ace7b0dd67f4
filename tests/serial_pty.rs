//! Replay → serial → rx over real pseudo-terminals at 115200 baud, with garbage injected on
//! the line. The test is the cable: it copies bytes from the sender's pty to the receiver's
//! and injects noise in the middle of the stream.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use common::{centerlines, rx_summary, synth, wiretrace, Rx};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::unistd::{read, ttyname, write};

/// A pty pair: the device path a process opens, and the master end the test holds.
fn pty() -> (OwnedFd, OwnedFd, String) {
    let pair = openpty(None, None).expect("openpty");
    let path = ttyname(pair.slave.as_fd()).expect("ttyname").to_string_lossy().into_owned();
    (pair.master, pair.slave, path)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = write(fd, bytes).expect("write to pty");
        bytes = &bytes[n..];
    }
}

#[test]
fn the_receiver_resynchronises_after_garbage_and_loses_only_the_frame_hit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = 20u32;
    synth(dir.path(), 5, frames, 192);

    let (sender_master, _sender_slave, sender_path) = pty();
    let (receiver_master, _receiver_slave, receiver_path) = pty();
    let (rx, _) = Rx::start(&["--serial", &receiver_path, "--baud", "115200", "--idle-exit", "2"]);

    let mut replay = wiretrace()
        .args([
            "replay",
            dir.path().to_str().expect("utf-8 path"),
            "--serial",
            &sender_path,
            "--baud",
            "115200",
            "--fast",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn replay");

    // Garbage, including a delimiter, lands inside whatever frame is on the line after 300
    // bytes: early enough for any output of 20 frames (even all "no wire", 28 bytes each).
    let garbage = [0x5a, 0x13, 0x00, 0xc3, 0x7e, 0x01, 0xff, 0x42];
    let inject_at = 300usize;
    let (mut relayed, mut injected) = (0usize, false);
    let mut buf = [0u8; 256];
    let mut quiet_since: Option<Instant> = None;
    loop {
        let mut fds = [PollFd::new(sender_master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).expect("poll");
        if ready > 0 {
            let n = match read(&sender_master, &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EIO) => 0,
                Err(e) => panic!("read from pty: {e}"),
            };
            let mut chunk = &buf[..n];
            if !injected && relayed + chunk.len() > inject_at {
                let cut = inject_at - relayed;
                write_all(&receiver_master, &chunk[..cut]);
                write_all(&receiver_master, &garbage);
                relayed += cut;
                chunk = &chunk[cut..];
                injected = true;
            }
            write_all(&receiver_master, chunk);
            relayed += chunk.len();
            quiet_since = None;
        } else if replay.try_wait().expect("replay status").is_some() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
    }
    let replay_out = replay.wait_with_output().expect("replay output");
    assert!(replay_out.status.success(), "replay failed: {}", String::from_utf8_lossy(&replay_out.stderr));
    assert!(injected, "the stream was too short to inject into ({relayed} bytes)");

    let (messages, stderr) = rx.finish();
    let summary = rx_summary(&stderr);
    assert_eq!(summary["missing"], 1, "exactly the frame hit is lost: {summary}");
    assert_eq!(summary["seq_gaps"], 1);
    assert!(summary["resyncs"].as_u64().is_some_and(|r| r >= 1), "{summary}");

    let got = centerlines(&messages).len() as u32;
    let heartbeats = messages.iter().filter(|m| m["kind"] == "heartbeat").count() as u32;
    assert!(got + 1 >= frames && got <= frames, "{got} of {frames} centerlines arrived");
    assert_eq!(messages.len() as u64, summary["messages"].as_u64().expect("messages"));
    assert!(heartbeats >= 1, "the final heartbeat arrives");
}

/// A robot that stops reading: the line's buffer fills and writes block. A centerline with a
/// deadline is given up at the deadline (cut short, so the receiver drops it as damaged), never
/// handed over late; the write timeout alone would have blocked 200 ms.
#[test]
fn a_stalled_line_never_takes_a_centerline_past_its_deadline() {
    use wiretrace::time::Micros;
    use wiretrace::transport::serial::SerialSink;
    use wiretrace::transport::{Sink, SinkError};
    use wiretrace_protocol::{Body, Centerline, Confidence, Message, StatusFlags, SubpixelPoint};

    let (_master, _slave, path) = pty();
    let mut sink = SerialSink::open(&path, 115_200).expect("open pty");
    let mut points = heapless::Vec::new();
    for i in 0..64 {
        let _ = points.push(SubpixelPoint::from_px(i as f32 * 3.7, 100.0 + (i % 7) as f32));
    }
    let budget_us = 30_000;
    let (mut blocked, mut late) = (0, Vec::new());
    for seq in 0..20_000u32 {
        let c = Centerline {
            frame: seq,
            capture_us: 0,
            latency_us: 0,
            status: StatusFlags::OK,
            confidence: Confidence(200),
            points: points.clone(),
        };
        let deadline = Micros(Micros::now().0 + budget_us);
        let result = sink.send_by(&Message { seq, body: Body::Centerline(c), auth: None }, Some(deadline));
        let over_us = Micros::now().0.saturating_sub(deadline.0);
        if over_us > 50_000 {
            late.push(over_us);
        }
        if matches!(result, Err(SinkError::Write(_) | SinkError::Late)) {
            blocked += 1;
            if blocked == 3 {
                break;
            }
        }
    }
    assert!(blocked == 3, "the line never filled up");
    assert!(late.is_empty(), "writes ran past their deadline by (µs): {late:?}");
}
