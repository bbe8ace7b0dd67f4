//! The whole V4L2 path through a v4l2loopback device: `feed` writes a synthetic sequence into
//! its output side, [`V4l2Source`] captures it. Needs the `v4l2` feature and a loaded
//! v4l2loopback module (board/bench/README.md: `modprobe v4l2loopback devices=1 video_nr=10
//! exclusive_caps=1`); without the device the test says SKIPPED and passes, since neither a
//! container nor CI can load kernel modules. `WIRETRACE_LOOPBACK=/dev/videoN` picks another
//! node than /dev/video10.

#![cfg(feature = "v4l2")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wiretrace::capture::replay::ReplaySource;
use wiretrace::capture::synthetic::{write_sequence, Difficulty, SynthConfig};
use wiretrace::capture::v4l2::{feed, FeedOptions, PixelFormat, V4l2Options, V4l2Source};
use wiretrace::capture::{CaptureError, FrameSource};
use wiretrace::frame::Frame;
use wiretrace::time::Micros;

/// The loopback node, or why there is none.
fn loopback() -> Result<PathBuf, String> {
    if !Path::new("/sys/module/v4l2loopback").exists() {
        return Err("the v4l2loopback module is not loaded".into());
    }
    let node = std::env::var_os("WIRETRACE_LOOPBACK").map_or_else(|| PathBuf::from("/dev/video10"), PathBuf::from);
    if node.exists() {
        Ok(node)
    } else {
        Err(format!("{} does not exist (set WIRETRACE_LOOPBACK to the loopback node)", node.display()))
    }
}

/// Sets the feeder's stop flag when dropped, so a failed assertion on the capture side ends
/// the looped feed and the scope's join does not hang.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Every frame of the sequence at `dir`, as GREY carries it: the top 8 of its 12 bits.
fn grey_frames(dir: &Path) -> Vec<Vec<u16>> {
    let mut source = ReplaySource::open(dir).expect("sequence opens");
    let mut frame = Frame::default();
    let mut frames = Vec::new();
    while let Some(result) = source.next_frame(&mut frame) {
        result.expect("frame reads");
        frames.push(frame.pixels.iter().map(|v| v >> 4).collect());
    }
    frames
}

#[test]
fn fed_frames_come_back_through_v4l2_capture_with_monotonic_capture_times() {
    let device = match loopback() {
        Ok(device) => device,
        Err(why) => {
            println!("SKIPPED: no v4l2loopback device ({why})");
            return;
        }
    };
    let seq = tempfile::tempdir().expect("temporary directory");
    let cfg = SynthConfig {
        seed: 3,
        size_px: 64,
        frames: 6,
        fps: 30.0,
        difficulty: Difficulty::Easy,
        ..SynthConfig::default()
    };
    write_sequence(&cfg, seq.path()).expect("sequence written");
    let expected = grey_frames(seq.path());
    let stop = AtomicBool::new(false);
    let options =
        FeedOptions { device: device.clone(), seq: seq.path().into(), format: PixelFormat::Grey, looped: true };
    std::thread::scope(|scope| {
        let feeder = scope.spawn(|| feed(&options, &stop));
        let stop_feeder = StopOnDrop(&stop);
        // With exclusive_caps the capture side appears once a writer streams.
        std::thread::sleep(Duration::from_millis(500));
        let capture = V4l2Options::new(&device, PixelFormat::Grey, 64, 64, 30.0);
        let mut source = V4l2Source::open(capture).expect("the capture side opens");
        assert!(source.live());
        let mut frame = Frame::with_size(64, 64);
        let mut stamps = Vec::new();
        while stamps.len() < 12 {
            match source.next_frame(&mut frame) {
                Some(Ok(())) => {
                    assert!(expected.contains(&frame.pixels), "frame {} is not a fed frame", frame.index);
                    assert_eq!((frame.width, frame.height, frame.maxval), (64, 64, 255));
                    assert!(frame.capture <= Micros::now(), "a capture time in the future");
                    stamps.push(frame.capture);
                }
                Some(Err(CaptureError::NoSignal { waited })) => panic!("no frame for {waited:?} while fed"),
                other => panic!("capture ended: {other:?}"),
            }
        }
        drop(stop_feeder);
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "capture times rise: {stamps:?}");
        let span_us = stamps[11].since(stamps[0]);
        // 11 periods of 33 ms, give or take a scheduler's hiccup.
        assert!((250_000..600_000).contains(&span_us), "12 frames at 30 fps took {span_us} us");
        let summary = feeder.join().expect("feeder thread").expect("feed ran");
        assert!(summary.frames >= 12 && summary.bad_frames == 0, "{summary:?}");
    });
}
