//! The external frame trigger: the fluoroscope's exposure signal on a GPIO input, gating any
//! frame source so that only frames taken while the X-ray is on reach the pipeline.
//!
//! Between exposures a fluoroscope's video output keeps showing the last image (last-image
//! hold), and a frame grabber keeps delivering it as if it were new. Processed, it would send
//! the robot the wire as it was seconds ago, stamped as fresh. [`TriggeredSource`] holds such
//! frames back: they are neither processed nor counted as bad, and the runner's heartbeats
//! carry `no_signal` (SPEC: "no X-ray frames are arriving") until exposed frames come again.
//!
//! The line is a level, active for the whole exposure run (the generator's "X-ray on" or
//! exposure-release output), and it is polled through `embedded-hal`'s [`InputPin`] once per
//! frame the source delivers. Polling cannot catch short per-pulse signals (pulsed fluoroscopy
//! pulses last milliseconds, frames come every 33-66 ms), so there is no one-frame-per-edge
//! mode: that needs the kernel's timestamped edge events, which `embedded-hal` does not carry.

use std::time::Instant;

use embedded_hal::digital::InputPin;

use super::{CaptureError, FrameSource};
use crate::config::GpioLine;
use crate::frame::Frame;
use crate::gpio::{GpioError, FRAME_TRIGGER};
use crate::time::Micros;

/// Frames of `source`, only those taken while the trigger line on `pin` is active.
///
/// A frame passes when the line reads active just after the source delivers it and, for a live
/// source (which stamps its frames with the device's capture time), when it was captured no
/// earlier than the first read that saw the line active: a frame already waiting in the
/// driver's queue from before the exposure is held back. So is, usually, the first frame of
/// each exposure, whose capture precedes that read. A level gap shorter than a frame period
/// can go unseen.
///
/// Every call of `next_frame` reads one frame from `source` (so the driver's queue never fills
/// with old frames while the line is inactive) and returns at once: a held-back frame comes
/// back as [`CaptureError::NoSignal`], so the wrapper returns to the runner at least as often
/// as `source` does. A line that cannot be read counts as inactive (fail closed: no frame is
/// processed that the trigger has not vouched for); the error is logged once, naming the line,
/// and the recovery once more. Nothing here allocates, except that one error message.
pub struct TriggeredSource<S, P> {
    source: S,
    pin: P,
    line: GpioLine,
    live: bool,
    /// When a read first saw the line active in the current exposure; `None` while inactive.
    active_since: Option<Micros>,
    /// The last read failed (the failure has been logged).
    failing: bool,
}

impl<S: FrameSource, P: InputPin> TriggeredSource<S, P> {
    /// Gates `source` by `pin`, the configured `line` (active at low level when
    /// `line.active_low`), which names it in errors.
    pub fn new(source: S, pin: P, line: GpioLine) -> Self {
        let live = source.live();
        TriggeredSource { source, pin, line, live, active_since: None, failing: false }
    }

    /// Reads the line at `now` and notes when it became active.
    fn sample(&mut self, now: Micros) {
        match self.pin.is_high() {
            Ok(high) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!("{FRAME_TRIGGER}: {} line {} reads again", self.line.chip.display(), self.line.line);
                }
                if high != self.line.active_low {
                    self.active_since.get_or_insert(now);
                } else {
                    self.active_since = None;
                }
            }
            Err(e) => {
                self.active_since = None;
                if !self.failing {
                    self.failing = true;
                    let error = GpioError::Read {
                        key: FRAME_TRIGGER,
                        chip: self.line.chip.clone(),
                        line: self.line.line,
                        reason: format!("{e:?}"),
                    };
                    tracing::error!("{error}; frames are held back (no signal) until it reads again");
                }
            }
        }
    }
}

impl<S: FrameSource, P: InputPin + Send> FrameSource for TriggeredSource<S, P> {
    fn size(&self) -> (usize, usize) {
        self.source.size()
    }

    fn fps(&self) -> f32 {
        self.source.fps()
    }

    fn live(&self) -> bool {
        self.live
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let entered = Instant::now();
        let result = self.source.next_frame(frame)?;
        self.sample(Micros::now());
        let exposed = match (&result, self.active_since) {
            (_, None) | (Err(CaptureError::NoSignal { .. }), _) => false,
            // A file or memory source's frame is taken now, when the runner stamps it.
            (Ok(()), Some(since)) => !self.live || frame.capture >= since,
            // A frame that could not be read during an exposure is the source's fault: the
            // runner counts it.
            (Err(_), Some(_)) => true,
        };
        if exposed {
            Some(result)
        } else {
            Some(Err(CaptureError::NoSignal { waited: entered.elapsed() }))
        }
    }
}

impl<S, P> std::fmt::Debug for TriggeredSource<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggeredSource")
            .field("line", &self.line)
            .field("live", &self.live)
            .field("active_since", &self.active_since)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use embedded_hal::digital::{ErrorKind, ErrorType};

    use super::*;
    use crate::capture::memory::MemorySource;

    /// What a scripted read returns.
    #[derive(Debug, Clone, Copy)]
    enum Level {
        High,
        Low,
        Broken,
    }

    /// The error of a [`Level::Broken`] read.
    #[derive(Debug)]
    struct ReadFailed;

    impl embedded_hal::digital::Error for ReadFailed {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    /// An input pin that returns its script, one level per read, then its last level forever.
    #[derive(Debug)]
    struct ScriptedPin {
        script: VecDeque<Level>,
        last: Level,
        reads: usize,
    }

    impl ScriptedPin {
        fn new(script: &[Level]) -> Self {
            ScriptedPin { script: script.iter().copied().collect(), last: Level::Low, reads: 0 }
        }
    }

    impl ErrorType for ScriptedPin {
        type Error = ReadFailed;
    }

    impl InputPin for ScriptedPin {
        fn is_high(&mut self) -> Result<bool, ReadFailed> {
            self.reads += 1;
            if let Some(level) = self.script.pop_front() {
                self.last = level;
            }
            match self.last {
                Level::High => Ok(true),
                Level::Low => Ok(false),
                Level::Broken => Err(ReadFailed),
            }
        }
        fn is_low(&mut self) -> Result<bool, ReadFailed> {
            self.is_high().map(|high| !high)
        }
    }

    fn line(active_low: bool) -> GpioLine {
        GpioLine { chip: "/dev/gpiochip0".into(), line: 7, active_low }
    }

    fn frames(n: u32) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let mut f = Frame::with_size(8, 8);
                f.index = i;
                f
            })
            .collect()
    }

    /// What each call gives: the frame's index, or `None` for no signal.
    fn outcomes<S: FrameSource>(source: &mut S, calls: usize) -> Vec<Option<u32>> {
        let mut frame = Frame::with_size(8, 8);
        (0..calls)
            .map(|_| match source.next_frame(&mut frame) {
                Some(Ok(())) => Some(frame.index),
                Some(Err(CaptureError::NoSignal { .. })) => None,
                other => panic!("a frame or no signal, got {other:?}"),
            })
            .collect()
    }

    use Level::{Broken, High, Low};

    #[test]
    fn only_frames_read_while_the_line_is_active_pass() {
        let pin = ScriptedPin::new(&[Low, Low, High, High, High, Low, High]);
        let mut gated = TriggeredSource::new(MemorySource::new(frames(7), 15.0), pin, line(false));
        assert_eq!(outcomes(&mut gated, 7), [None, None, Some(2), Some(3), Some(4), None, Some(6)]);
        assert_eq!(gated.pin.reads, 7, "one read per frame");
        assert!(gated.next_frame(&mut Frame::with_size(8, 8)).is_none(), "the source's end is the end");
    }

    #[test]
    fn an_active_low_line_passes_frames_at_low_level() {
        let pin = ScriptedPin::new(&[High, Low, Low, High]);
        let mut gated = TriggeredSource::new(MemorySource::new(frames(4), 15.0), pin, line(true));
        assert_eq!(outcomes(&mut gated, 4), [None, Some(1), Some(2), None]);
    }

    #[test]
    fn a_line_that_cannot_be_read_holds_frames_back_until_it_reads_again() {
        let pin = ScriptedPin::new(&[High, Broken, Broken, High, High]);
        let mut gated = TriggeredSource::new(MemorySource::new(frames(5), 15.0), pin, line(false));
        assert_eq!(outcomes(&mut gated, 5), [Some(0), None, None, Some(3), Some(4)]);
    }

    #[test]
    fn the_read_error_names_the_line() {
        let e = GpioError::Read { key: FRAME_TRIGGER, chip: "/dev/gpiochip0".into(), line: 7, reason: "EIO".into() };
        assert_eq!(e.to_string(), "gpio.frame_trigger: cannot read /dev/gpiochip0 line 7: EIO");
    }

    /// A live source as the runner sees it: each step is a frame the device stamped (µs), or a
    /// frame timeout (no signal).
    struct Camera(std::vec::IntoIter<Option<Micros>>);

    impl FrameSource for Camera {
        fn size(&self) -> (usize, usize) {
            (8, 8)
        }
        fn fps(&self) -> f32 {
            15.0
        }
        fn live(&self) -> bool {
            true
        }
        fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
            match self.0.next()? {
                Some(stamp) => {
                    frame.capture = stamp;
                    frame.index = frame.index.wrapping_add(1);
                    Some(Ok(()))
                }
                None => Some(Err(CaptureError::NoSignal { waited: Duration::from_millis(500) })),
            }
        }
    }

    #[test]
    fn a_live_frame_captured_before_the_line_was_seen_active_is_held_back() {
        let now = Micros::now();
        let before = Micros(now.0 - 100_000);
        let after = Micros(now.0 + 60_000_000);
        // A frame queued before the exposure, then frames captured during it, a timeout, and an
        // exposure that ends.
        let camera = Camera(vec![Some(before), Some(after), None, Some(after), Some(after)].into_iter());
        let pin = ScriptedPin::new(&[High, High, High, High, Low]);
        let mut gated = TriggeredSource::new(camera, pin, line(false));
        assert!(gated.live(), "live like its source");
        let passed: Vec<bool> = outcomes(&mut gated, 5).iter().map(Option::is_some).collect();
        assert_eq!(passed, [false, true, false, true, false]);
    }

    #[test]
    fn a_bad_frame_counts_only_during_an_exposure() {
        struct Bad;
        impl FrameSource for Bad {
            fn size(&self) -> (usize, usize) {
                (8, 8)
            }
            fn fps(&self) -> f32 {
                15.0
            }
            fn next_frame(&mut self, _: &mut Frame) -> Option<Result<(), CaptureError>> {
                Some(Err(CaptureError::BadFrame { path: "frame".into(), reason: "torn".into() }))
            }
        }
        let mut gated = TriggeredSource::new(Bad, ScriptedPin::new(&[Low, High]), line(false));
        let mut frame = Frame::with_size(8, 8);
        assert!(matches!(gated.next_frame(&mut frame), Some(Err(CaptureError::NoSignal { .. }))));
        assert!(matches!(gated.next_frame(&mut frame), Some(Err(CaptureError::BadFrame { .. }))));
    }

    /// Hands every heartbeat's no-signal flag to the test.
    struct NoSignalFlags(std::sync::mpsc::Sender<bool>);

    impl crate::transport::Sink for NoSignalFlags {
        fn target(&self) -> String {
            "heartbeats".into()
        }
        fn send(&mut self, m: &wiretrace_protocol::Message) -> Result<(), crate::transport::SinkError> {
            if let wiretrace_protocol::Body::Heartbeat(h) = &m.body {
                let _ = self.0.send(h.flags.contains(wiretrace_protocol::HeartbeatFlags::NO_SIGNAL));
            }
            Ok(())
        }
    }

    #[test]
    fn through_the_runner_held_back_frames_are_no_signal_and_not_bad() {
        use crate::pipeline::runner::{run, RunOptions};
        use crate::pipeline::PipelineConfig;
        // 100 ms without an exposure, then five exposed frames, at 100 frames per second.
        let mut script = vec![Low; 10];
        script.extend([High; 5]);
        let mut frames = frames(15);
        for f in &mut frames {
            f.maxval = 4095;
            f.pixels.fill(2000);
        }
        let gated = TriggeredSource::new(MemorySource::new(frames, 100.0), ScriptedPin::new(&script), line(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let options = RunOptions { heartbeat_period: Duration::from_millis(20), ..RunOptions::default() };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let summary =
            run(Box::new(gated), &PipelineConfig::default(), vec![Box::new(NoSignalFlags(tx))], &options, &stop)
                .expect("run");
        assert_eq!((summary.frames_seen, summary.bad_frames), (5, 0), "{summary:?}");
        assert_eq!(summary.centerlines + summary.no_wire + summary.dropped_latest, 5, "{summary:?}");
        let flags: Vec<bool> = rx.try_iter().collect();
        assert_eq!(flags.first(), Some(&true), "no signal while the line is inactive: {flags:?}");
        assert_eq!(flags.last(), Some(&false), "exposed frames came: {flags:?}");
    }
}
