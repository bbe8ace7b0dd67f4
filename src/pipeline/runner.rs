//! Runs a source through the pipeline to the sinks: a capture thread, the processing loop on
//! the calling thread, and a thread per sink.
//!
//! Frames travel between capture and processing through a one-slot exchange with a small pool
//! of frame buffers made at start. Paced like a camera, the newest frame replaces one still
//! waiting (counted as dropped), so the pipeline always works on the latest image; with
//! `Pacing::Fast` capture waits instead, so every frame is processed in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wiretrace_protocol::{
    BackendId, Body, Centerline, Confidence, Heartbeat, HeartbeatFlags, Message, StatusFlags, SubpixelPoint, MAX_POINTS,
};

use super::realtime::{place, ThreadPlacement};
use super::{Pipeline, PipelineConfig, PipelineError};
use crate::capture::{CaptureError, FrameSource};
use crate::frame::Frame;
use crate::time::Micros;
use crate::transport::{late_to_missed, Sink, SinkReport, Sinks, WhenFull};

/// How frames are delivered to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// At the source's frame rate; the latest frame wins when the pipeline is busy.
    Camera,
    /// As fast as the pipeline takes them, every frame, in order (evaluation, benches).
    Fast,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Frame delivery.
    pub pacing: Pacing,
    /// Interval between heartbeats, whether or not frames flow.
    pub heartbeat_period: Duration,
    /// Confidence below which a centerline carries the low-confidence flag.
    pub low_confidence: f32,
    /// Budget from a frame's capture to its message's hand-off to each sink. A frame that
    /// cannot make it is abandoned at the next stage boundary and its message says
    /// `deadline_missed`, without points; `None` for offline work (evaluation), where late is
    /// harmless.
    pub deadline: Option<Duration>,
    /// CPU and scheduling of the capture thread.
    pub capture_thread: ThreadPlacement,
    /// CPU and scheduling of the processing loop (the thread that calls [`run`]).
    pub processing_thread: ThreadPlacement,
    /// The processing loop spins between frames instead of sleeping: a core that never idles
    /// takes the next frame without waking up, which on this machine cut the paced p99 at 512²
    /// by 2-4 ms (README). It costs that core whole; not for SCHED_FIFO, under which it
    /// would starve everything else on the core (the configuration refuses both).
    pub spin_wait: bool,
    /// Told from inside the processing loop how the run goes (the service's systemd watchdog).
    pub monitor: Option<Arc<dyn RunMonitor>>,
}

/// Watches a run from inside its processing loop: the loop calls it after every frame and
/// every wait, so a loop that hangs stops calling it, and a watchdog fed from here stops
/// being fed. Called on the hot path: it must not allocate or block.
pub trait RunMonitor: Send + Sync + std::fmt::Debug {
    /// The source is open, the pipeline built, the sinks and the capture thread started.
    fn started(&self);
    /// The processing loop came round. While the loop is alive it comes round again within
    /// [`RunMonitor::until_due`] of this call, however long the heartbeat period is.
    fn looped(&self, progress: &Progress);
    /// How long from now until the monitor is next due to act (a watchdog ping): the loop
    /// wakes then rather than a whole period after a frame, so beats stay a period apart.
    fn until_due(&self) -> Duration;
}

/// Where a run stands, for a [`RunMonitor`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Frames the source delivered or failed to deliver.
    pub frames_seen: u64,
    /// Frames that went out as a centerline message (with a wire, without, or deadline missed).
    pub processed: u64,
    /// Of those, frames abandoned at their deadline.
    pub deadline_misses: u64,
    /// Frames replaced by a newer one, that could not be read or processed, or that the device
    /// lost.
    pub dropped: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// How long the capture thread has been waiting inside the source for its current frame;
    /// zero while it is not in the source (pacing, handing over, waiting for a free buffer).
    pub capture_waiting: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            pacing: Pacing::Camera,
            heartbeat_period: Duration::from_secs(1),
            low_confidence: 0.5,
            deadline: None,
            capture_thread: ThreadPlacement::default(),
            processing_thread: ThreadPlacement::default(),
            spin_wait: false,
            monitor: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Frames the source delivered or failed to deliver.
    pub frames_seen: u64,
    /// Frames replaced by a newer one before processing (camera pacing).
    pub dropped_latest: u64,
    /// Frames the device lost before the source got them ([`FrameSource::dropped`]).
    pub dropped_by_source: u64,
    /// Frames that could not be read or processed.
    pub bad_frames: u64,
    /// Centerline messages with a wire.
    pub centerlines: u64,
    /// Centerline messages saying no wire was found.
    pub no_wire: u64,
    /// Frames abandoned by the pipeline because their deadline passed (each sink's own late
    /// hand-offs are in its report).
    pub deadline_misses: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Per-sink counters and latency.
    pub sinks: Vec<SinkReport>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Why the source ended the run, when it failed for good
    /// ([`CaptureError::Unrecoverable`]); `None` when it ran out or the run was stopped.
    pub source_failed: Option<String>,
}

/// Frame buffers in flight: the pool and the slot between capture and processing.
const POOL_FRAMES: usize = 3;

#[derive(Debug)]
struct Slots {
    ready: Option<Frame>,
    free: Vec<Frame>,
    closed: bool,
}

/// Spin-loop hints between two looks at the slot while spinning ([`RunOptions::spin_wait`]):
/// a few hundred nanoseconds, short against a frame, long enough that the capture thread
/// seldom finds the lock taken.
const SPINS_PER_LOOK: usize = 64;

/// The hand-over point between the capture thread and the processing loop.
#[derive(Debug)]
struct Exchange {
    slots: Mutex<Slots>,
    changed: Condvar,
}

enum Taken {
    Frame(Frame),
    Timeout,
    Closed,
}

impl Exchange {
    fn new(width: usize, height: usize) -> Self {
        let mut free = Vec::with_capacity(POOL_FRAMES);
        free.extend((0..POOL_FRAMES).map(|_| Frame::with_size(width, height)));
        Exchange { slots: Mutex::new(Slots { ready: None, free, closed: false }), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Slots>) -> MutexGuard<'a, Slots> {
        self.changed.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// A free buffer for capture, waiting until processing returns one; `None` once the
    /// exchange is closed.
    fn take_free(&self) -> Option<Frame> {
        let mut s = self.lock();
        loop {
            if s.closed {
                return None;
            }
            if let Some(f) = s.free.pop() {
                return Some(f);
            }
            s = self.wait(s);
        }
    }

    /// Camera pacing: puts `frame` in the slot; a frame still waiting there is returned to the
    /// caller as its next buffer (it was dropped).
    fn offer_latest(&self, frame: Frame) -> Option<Frame> {
        let replaced = self.lock().ready.replace(frame);
        self.changed.notify_all();
        replaced
    }

    /// Fast pacing: waits for an empty slot, then timestamps `frame` (unless its source did)
    /// and puts it there. The frame is dropped if the exchange closes meanwhile.
    fn offer_wait(&self, mut frame: Frame, stamp: bool) {
        let mut s = self.lock();
        while s.ready.is_some() && !s.closed {
            s = self.wait(s);
        }
        if s.closed {
            return;
        }
        if stamp {
            frame.capture = Micros::now();
        }
        s.ready = Some(frame);
        drop(s);
        self.changed.notify_all();
    }

    /// The frame in the slot, waiting up to `timeout` for one: asleep on the condition
    /// variable, or with `spin`, polling the slot.
    fn take_ready(&self, timeout: Duration, spin: bool) -> Taken {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(f) = s.ready.take() {
                drop(s);
                self.changed.notify_all();
                return Taken::Frame(f);
            }
            if s.closed {
                return Taken::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Taken::Timeout;
            }
            if spin {
                drop(s);
                for _ in 0..SPINS_PER_LOOK {
                    std::hint::spin_loop();
                }
                s = self.lock();
            } else {
                s = self.changed.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
            }
        }
    }

    /// A frame waits in the slot.
    fn frame_waits(&self) -> bool {
        self.lock().ready.is_some()
    }

    fn give_back(&self, frame: Frame) {
        self.lock().free.push(frame);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// Closes the exchange when its side of the hand-over ends, normally or by a panic, so the
/// other side never waits for a partner that is gone.
struct CloseOnDrop<'a>(&'a Exchange);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[derive(Debug, Default)]
struct Counters {
    seen: AtomicU64,
    dropped_latest: AtomicU64,
    bad: AtomicU64,
    /// The source's own count of frames its device lost.
    by_source: AtomicU64,
    misses: AtomicU64,
    /// A live source says no frame is coming: heartbeats carry `no_signal`.
    no_signal: AtomicBool,
    /// When (µs on the monotonic clock) the capture thread entered the source for the frame it
    /// waits for; 0 while it is not in the source.
    in_source_since_us: AtomicU64,
}

impl Counters {
    /// Frames lost anywhere: replaced by a newer one, unreadable, or lost by the device.
    fn dropped(&self) -> u64 {
        self.dropped_latest.load(Ordering::Relaxed)
            + self.bad.load(Ordering::Relaxed)
            + self.by_source.load(Ordering::Relaxed)
    }
}

/// How often a thread may log a skipped frame: the first ones each by name (a bad file in a
/// sequence should be named), then about one a second, so a grabber that marks every buffer
/// bad does not fill the journal; the counters still count every one.
#[derive(Debug)]
struct LogBudget {
    /// Messages that may go out now (a burst), refilled at one a second.
    tokens: f64,
    refilled: Instant,
    /// Messages held back since the last one that went out.
    held_back: u64,
}

impl LogBudget {
    const BURST: f64 = 10.0;

    fn new(now: Instant) -> Self {
        LogBudget { tokens: Self::BURST, refilled: now, held_back: 0 }
    }

    /// Whether a message may go out at `now`; if so, how many were held back before it.
    fn spend(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed).min(Self::BURST);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.held_back))
        } else {
            self.held_back += 1;
            None
        }
    }

    /// Logs a skipped frame within the budget.
    fn skipped(&mut self, error: &dyn std::fmt::Display) {
        match self.spend(Instant::now()) {
            Some(0) => tracing::warn!("skipped frame: {error}"),
            Some(held_back) => tracing::warn!("skipped frame: {error} ({held_back} more skipped, not logged)"),
            None => {}
        }
    }
}

/// The capture thread: pulls frames from `source`, paces them and hands them over. Returns
/// the source's error when it failed for good.
fn capture(
    source: &mut dyn FrameSource,
    exchange: &Exchange,
    options: &RunOptions,
    counters: &Counters,
    stop: &AtomicBool,
) -> Option<CaptureError> {
    place("capture", options.capture_thread);
    let pacing = options.pacing;
    let live = source.live();
    let period = Duration::from_secs_f64(1.0 / f64::from(source.fps().max(0.1)));
    let _close = CloseOnDrop(exchange);
    let start = Instant::now();
    let mut log = LogBudget::new(start);
    let mut slot = 0u32;
    // No free buffer: the exchange closed, the run is over.
    let mut spare = exchange.take_free()?;
    while !stop.load(Ordering::Relaxed) {
        counters.in_source_since_us.store(Micros::now().0.max(1), Ordering::Relaxed);
        let next = source.next_frame(&mut spare);
        counters.in_source_since_us.store(0, Ordering::Relaxed);
        let Some(result) = next else { break };
        match result {
            Err(CaptureError::NoSignal { .. }) => {
                counters.no_signal.store(true, Ordering::Relaxed);
                // A file or memory source held back (by the frame trigger) still spends its
                // frame's time, so it plays on at its fps and resumes on schedule instead of
                // racing ahead.
                if !live && pacing == Pacing::Camera {
                    let due = start + period * slot;
                    slot += 1;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                continue;
            }
            Err(e @ CaptureError::Unrecoverable { .. }) => {
                tracing::error!("{e}; ending the run");
                return Some(e);
            }
            _ => {}
        }
        counters.no_signal.store(false, Ordering::Relaxed);
        counters.seen.fetch_add(1, Ordering::Relaxed);
        counters.by_source.store(source.dropped(), Ordering::Relaxed);
        let due = start + period * slot;
        slot += 1;
        if let Err(e) = result {
            log.skipped(&e);
            counters.bad.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match pacing {
            // A live source's frames come at the device's pace with its capture time.
            Pacing::Camera => {
                if !live {
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    spare.capture = Micros::now();
                }
                spare = match exchange.offer_latest(spare) {
                    Some(dropped) => {
                        counters.dropped_latest.fetch_add(1, Ordering::Relaxed);
                        dropped
                    }
                    None => exchange.take_free()?,
                };
            }
            Pacing::Fast => {
                exchange.offer_wait(spare, !live);
                spare = exchange.take_free()?;
            }
        }
    }
    None
}

fn saturating_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Builds the centerline message of a processed frame; `latency_us` is stamped by each sink
/// when it encodes the message. Frames below `low_confidence` carry its flag.
pub fn centerline_message(frame: &Frame, points_px: Option<(&[[f32; 2]], f32)>, low_confidence: f32) -> Centerline {
    let mut c = Centerline {
        frame: frame.index,
        capture_us: frame.capture.0,
        latency_us: 0,
        status: StatusFlags::OK,
        confidence: Confidence(0),
        points: heapless::Vec::new(),
    };
    match points_px {
        Some((points, confidence)) => {
            // The pipeline resamples to at most MAX_POINTS, so the tip is never cut here.
            for p in points.iter().take(MAX_POINTS) {
                let _ = c.points.push(SubpixelPoint::from_px(p[0], p[1]));
            }
            c.confidence = Confidence::from_unit(confidence);
            if confidence < low_confidence {
                c.status.insert(StatusFlags::LOW_CONFIDENCE);
            }
        }
        None => c.status.insert(StatusFlags::NO_WIRE),
    }
    c
}

/// Runs until the source ends or `stop` is set; returns what happened. Sinks get a thread
/// each; paced like a camera a sink that falls behind drops its oldest messages, with
/// `Pacing::Fast` the pipeline waits for it instead, so every frame is accounted for.
pub fn run(
    mut source: Box<dyn FrameSource>,
    config: &PipelineConfig,
    sinks: Vec<Box<dyn Sink>>,
    options: &RunOptions,
    stop: &AtomicBool,
) -> std::io::Result<RunSummary> {
    let when_full = match options.pacing {
        Pacing::Camera => WhenFull::DropOldest,
        Pacing::Fast => WhenFull::Wait,
    };
    let (width, height) = source.size();
    // Built before anything starts: a model the engine cannot run stops the run here.
    let mut pipeline = Pipeline::new(width, height, config).map_err(std::io::Error::other)?;
    // Looks wait between frames only where frames come at a camera's pace.
    let fps = source.fps();
    if config.look_between_frames && options.pacing == Pacing::Camera && fps > 0.0 {
        pipeline.look_between_frames(Some((1e6 / f64::from(fps)) as u64));
    }
    let sinks = Sinks::start(sinks, when_full, options.deadline)?;
    let budget_us = options.deadline.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let started = Instant::now();
    let start_us = Micros::now();
    let mut log = LogBudget::new(started);
    let exchange = Exchange::new(width, height);
    let counters = Counters::default();
    let mut seq = 0u32;
    let (mut centerlines, mut no_wire, mut heartbeats) = (0u64, 0u64, 0u64);
    let mut send = |body: Body, capture: Micros| {
        sinks.broadcast(&Message { seq, body, auth: None }, capture);
        seq = seq.wrapping_add(1);
    };
    // The backend is read for each heartbeat: a GPU that fails leaves the CPU running.
    let heartbeat = |counters: &Counters, backend: BackendId| Heartbeat {
        uptime_us: Micros::now().since(start_us),
        frames_seen: saturating_u32(counters.seen.load(Ordering::Relaxed)),
        frames_dropped: saturating_u32(counters.dropped()),
        deadline_misses: saturating_u32(counters.misses.load(Ordering::Relaxed)),
        backend,
        flags: {
            let mut flags = HeartbeatFlags::default();
            if counters.no_signal.load(Ordering::Relaxed) {
                flags.insert(HeartbeatFlags::NO_SIGNAL);
            }
            if config.degraded {
                flags.insert(HeartbeatFlags::DEGRADED);
            }
            flags
        },
    };
    let source_failed = std::thread::scope(|scope| {
        let capture_thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn_scoped(scope, || capture(source.as_mut(), &exchange, options, &counters, stop));
        let capture_thread = match capture_thread {
            Ok(thread) => thread,
            Err(e) => {
                tracing::error!("cannot start the capture thread: {e}");
                return None;
            }
        };
        let close = CloseOnDrop(&exchange);
        place("processing", options.processing_thread);
        if let Some(m) = &options.monitor {
            m.started();
        }
        let mut last_heartbeat = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let monitor_due = options.monitor.as_ref().map_or(Duration::MAX, |m| m.until_due());
            let wait = options.heartbeat_period.saturating_sub(last_heartbeat.elapsed()).min(monitor_due);
            match exchange.take_ready(wait, options.spin_wait) {
                Taken::Frame(frame) => {
                    let deadline = budget_us.map(|b| Micros(frame.capture.0.saturating_add(b)));
                    let message = match pipeline.process_by(&frame, deadline) {
                        Ok(wire) => {
                            let found = wire.map(|w| (w.points_px, w.confidence));
                            Some(centerline_message(&frame, found, options.low_confidence))
                        }
                        Err(PipelineError::DeadlineMissed { .. }) => {
                            counters.misses.fetch_add(1, Ordering::Relaxed);
                            let mut c = centerline_message(&frame, None, options.low_confidence);
                            late_to_missed(&mut c);
                            Some(c)
                        }
                        Err(e) => {
                            log.skipped(&e);
                            counters.bad.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                    };
                    if let Some(mut c) = message {
                        if config.degraded || pipeline.searched_in_part() {
                            c.status.insert(StatusFlags::DEGRADED);
                        }
                        let missed = c.status.contains(StatusFlags::DEADLINE_MISSED);
                        if !missed && c.status.contains(StatusFlags::NO_WIRE) {
                            no_wire += 1;
                        } else if !missed {
                            centerlines += 1;
                        }
                        send(Body::Centerline(c), frame.capture);
                    }
                    exchange.give_back(frame);
                    // A frame that came while this one was processed is not kept waiting.
                    if pipeline.look_waits() && !exchange.frame_waits() {
                        pipeline.finish_look();
                    } else {
                        pipeline.drop_look();
                    }
                }
                Taken::Timeout => {}
                Taken::Closed => break,
            }
            if last_heartbeat.elapsed() >= options.heartbeat_period {
                send(Body::Heartbeat(heartbeat(&counters, pipeline.backend())), Micros(0));
                heartbeats += 1;
                last_heartbeat = Instant::now();
            }
            if let Some(m) = &options.monitor {
                let since = counters.in_source_since_us.load(Ordering::Relaxed);
                let misses = counters.misses.load(Ordering::Relaxed);
                m.looped(&Progress {
                    frames_seen: counters.seen.load(Ordering::Relaxed),
                    processed: centerlines + no_wire + misses,
                    deadline_misses: misses,
                    dropped: counters.dropped(),
                    heartbeats,
                    capture_waiting: Duration::from_micros(if since == 0 {
                        0
                    } else {
                        Micros::now().since(Micros(since))
                    }),
                });
            }
        }
        // The loop ends when capture closes the exchange, or on a stop request, which the
        // capture thread sees within two frame timeouts.
        drop(close);
        capture_thread.join().ok().flatten()
    });
    send(Body::Heartbeat(heartbeat(&counters, pipeline.backend())), Micros(0));
    heartbeats += 1;
    Ok(RunSummary {
        frames_seen: counters.seen.load(Ordering::Relaxed),
        dropped_latest: counters.dropped_latest.load(Ordering::Relaxed),
        dropped_by_source: counters.by_source.load(Ordering::Relaxed),
        bad_frames: counters.bad.load(Ordering::Relaxed),
        centerlines,
        no_wire,
        deadline_misses: counters.misses.load(Ordering::Relaxed),
        heartbeats,
        sinks: sinks.finish(),
        elapsed: started.elapsed(),
        source_failed: source_failed.map(|e| e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Sender};

    use super::*;
    use crate::capture::memory::MemorySource;
    use crate::capture::CaptureError;
    use crate::transport::SinkError;

    /// Hands the frame index of every centerline message to the test.
    struct Frames(Sender<u32>);

    impl Sink for Frames {
        fn target(&self) -> String {
            "frames".into()
        }
        fn send(&mut self, m: &Message) -> Result<(), SinkError> {
            if let Body::Centerline(c) = &m.body {
                let _ = self.0.send(c.frame);
            }
            Ok(())
        }
    }

    fn flat_frames(n: u32) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let mut f = Frame::with_size(256, 256);
                f.maxval = 4095;
                f.pixels.fill(2000);
                f.index = i;
                f
            })
            .collect()
    }

    fn run_frames(n: u32, fps: f32, pacing: Pacing) -> (RunSummary, Vec<u32>) {
        let (tx, rx) = channel();
        let options = RunOptions { pacing, ..RunOptions::default() };
        let source = Box::new(MemorySource::new(flat_frames(n), fps));
        let summary =
            run(source, &PipelineConfig::default(), vec![Box::new(Frames(tx))], &options, &AtomicBool::new(false))
                .expect("run");
        (summary, rx.try_iter().collect())
    }

    #[test]
    fn paced_like_a_camera_the_latest_frame_wins_over_a_slow_pipeline() {
        // 2000 frames per second: each 256 x 256 frame takes the pipeline milliseconds.
        let (summary, frames) = run_frames(40, 2000.0, Pacing::Camera);
        assert!(summary.dropped_latest > 0, "{summary:?}");
        assert_eq!(summary.frames_seen, 40);
        assert_eq!(summary.no_wire + summary.centerlines + summary.dropped_latest, 40, "{summary:?}");
        assert!(frames.windows(2).all(|w| w[0] < w[1]), "processed in capture order: {frames:?}");
        assert_eq!(frames.last(), Some(&39), "the newest frame is never the one dropped");
    }

    #[test]
    fn fast_pacing_processes_every_frame_in_order() {
        let (summary, frames) = run_frames(12, 2000.0, Pacing::Fast);
        assert_eq!(summary.dropped_latest, 0);
        assert_eq!(frames, (0..12).collect::<Vec<_>>());
        assert!(summary.sinks.iter().all(|s| s.dropped == 0 && s.sent >= 12));
    }

    /// Hands every message to the test.
    struct Messages(Sender<Message>);

    impl Sink for Messages {
        fn target(&self) -> String {
            "messages".into()
        }
        fn send(&mut self, m: &Message) -> Result<(), SinkError> {
            let _ = self.0.send(m.clone());
            Ok(())
        }
    }

    /// Frames 30-32 of an easy synthetic sequence, where the wire is long and clear.
    fn wire_frames() -> Vec<Frame> {
        use crate::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
        let cfg = SynthConfig {
            seed: 7,
            size_px: 256,
            frames: 33,
            fps: 15.0,
            difficulty: Difficulty::Easy,
            ..SynthConfig::default()
        };
        let mut synth = SyntheticSequence::new(cfg);
        (30..33)
            .map(|i| {
                let mut f = Frame::with_size(256, 256);
                synth.render(i, &mut f.pixels);
                f.maxval = synth.maxval();
                f.index = i;
                f
            })
            .collect()
    }

    fn centerlines_with(deadline: Option<Duration>) -> (RunSummary, Vec<Centerline>, Vec<Heartbeat>) {
        let (tx, rx) = channel();
        let options = RunOptions { pacing: Pacing::Fast, deadline, ..RunOptions::default() };
        let source = Box::new(MemorySource::new(wire_frames(), 15.0));
        let summary =
            run(source, &PipelineConfig::default(), vec![Box::new(Messages(tx))], &options, &AtomicBool::new(false))
                .expect("run");
        let (mut centerlines, mut heartbeats) = (Vec::new(), Vec::new());
        for m in rx.try_iter() {
            match m.body {
                Body::Centerline(c) => centerlines.push(c),
                Body::Heartbeat(h) => heartbeats.push(h),
            }
        }
        (summary, centerlines, heartbeats)
    }

    /// Paced like a camera, with looks between frames (the default), the first frame's search
    /// waits until it is answered: it says no wire, searched in part, and the next frame has
    /// the wire the search found. Processed as they come, frames do not wait for each other's
    /// looks, and with looks within the frame nothing waits: the first is searched and answered.
    #[test]
    fn a_look_between_frames_runs_after_the_frame_s_answer_where_frames_come_at_a_camera_s_pace() {
        for (pacing, between, first_found) in
            [(Pacing::Camera, true, false), (Pacing::Fast, true, true), (Pacing::Camera, false, true)]
        {
            let (tx, rx) = channel();
            let options = RunOptions { pacing, ..RunOptions::default() };
            let config = PipelineConfig { look_between_frames: between, ..PipelineConfig::default() };
            let source = Box::new(MemorySource::new(wire_frames(), 15.0));
            run(source, &config, vec![Box::new(Messages(tx))], &options, &AtomicBool::new(false)).expect("run");
            let sent: Vec<Centerline> = rx
                .try_iter()
                .filter_map(|m| match m.body {
                    Body::Centerline(c) => Some(c),
                    Body::Heartbeat(_) => None,
                })
                .collect();
            assert_eq!(sent.len(), 3, "{pacing:?}, between {between}");
            let first = &sent[0];
            assert_eq!(!first.status.contains(StatusFlags::NO_WIRE), first_found, "{pacing:?}, {between}: {first:?}");
            assert_eq!(first.status.contains(StatusFlags::DEGRADED), !first_found, "{pacing:?}, {between}: {first:?}");
            assert!(!sent[1].points.is_empty(), "{pacing:?}, {between}: {sent:?}");
        }
    }

    #[test]
    fn a_frame_past_its_deadline_is_sent_as_missed_and_never_as_a_centerline() {
        let (summary, on_time, _) = centerlines_with(None);
        assert_eq!(summary.deadline_misses, 0);
        let found = |c: &Centerline| !c.status.contains(StatusFlags::DEADLINE_MISSED) && !c.points.is_empty();
        assert!(on_time.iter().all(found), "without a deadline a wire is found: {on_time:?}");

        // A budget no pipeline can make: every frame is abandoned at a stage boundary.
        let (summary, late, heartbeats) = centerlines_with(Some(Duration::from_micros(1)));
        assert_eq!(late.iter().map(|c| c.frame).collect::<Vec<_>>(), vec![30, 31, 32], "one message per frame");
        for c in &late {
            assert!(c.status.contains(StatusFlags::DEADLINE_MISSED | StatusFlags::NO_WIRE), "{c:?}");
            assert!(c.points.is_empty() && c.confidence == Confidence(0), "a late result leaked: {c:?}");
        }
        assert_eq!((summary.deadline_misses, summary.centerlines, summary.no_wire), (3, 0, 0));
        assert_eq!(heartbeats.last().map(|h| h.deadline_misses), Some(3), "the final heartbeat counts them");
    }

    #[test]
    fn skipped_frames_are_logged_by_name_at_first_then_about_once_a_second() {
        let t0 = Instant::now();
        let mut budget = LogBudget::new(t0);
        let burst: Vec<_> = (0..10).map(|_| budget.spend(t0)).collect();
        assert!(burst.iter().all(|&b| b == Some(0)), "the first ten each go out: {burst:?}");
        assert_eq!((0..29).filter_map(|_| budget.spend(t0)).count(), 0, "then nothing in the same instant");
        assert_eq!(budget.spend(t0 + Duration::from_millis(1000)), Some(29), "a second later one, with the count");
        assert_eq!(budget.spend(t0 + Duration::from_millis(1500)), None, "half a token is not one");
        assert_eq!(budget.spend(t0 + Duration::from_secs(60)), Some(1), "a quiet minute refills the burst");
        assert_eq!((0..9).filter_map(|_| budget.spend(t0 + Duration::from_secs(60))).count(), 9);
    }

    /// What a camera does at one call of `next_frame`.
    #[derive(Debug, Clone, Copy)]
    enum Shot {
        /// 10 ms without a frame.
        Silent,
        /// A frame the device stamped at this time (µs on the monotonic clock).
        Frame(u64),
        /// The device failed for good.
        Stuck,
    }

    /// A camera as the runner sees it (no camera exists here): one shot of the script per
    /// call of `next_frame`, then the end. From call `lost.0` on, its driver reports `lost.1`
    /// frames it could not deliver.
    struct Camera {
        script: std::vec::IntoIter<Shot>,
        calls: u32,
        lost: (u32, u64),
    }

    impl Camera {
        fn new(script: Vec<Shot>) -> Self {
            Camera { script: script.into_iter(), calls: 0, lost: (u32::MAX, 0) }
        }
    }

    impl FrameSource for Camera {
        fn size(&self) -> (usize, usize) {
            (256, 256)
        }
        fn fps(&self) -> f32 {
            15.0
        }
        fn live(&self) -> bool {
            true
        }
        fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
            self.calls += 1;
            match self.script.next()? {
                Shot::Silent => {
                    std::thread::sleep(Duration::from_millis(10));
                    Some(Err(CaptureError::NoSignal { waited: Duration::from_millis(10) }))
                }
                Shot::Frame(stamp_us) => {
                    frame.maxval = 4095;
                    frame.pixels.fill(2000);
                    frame.capture = Micros(stamp_us);
                    Some(Ok(()))
                }
                Shot::Stuck => {
                    let reason = "cannot stop streaming".to_string();
                    Some(Err(CaptureError::Unrecoverable { path: "/dev/video9".into(), reason }))
                }
            }
        }
        fn dropped(&self) -> u64 {
            if self.calls >= self.lost.0 {
                self.lost.1
            } else {
                0
            }
        }
    }

    fn run_camera(script: Vec<Shot>) -> (RunSummary, Vec<Message>) {
        let (tx, rx) = channel();
        let options =
            RunOptions { pacing: Pacing::Fast, heartbeat_period: Duration::from_millis(20), ..RunOptions::default() };
        let source = Box::new(Camera::new(script));
        let summary =
            run(source, &PipelineConfig::default(), vec![Box::new(Messages(tx))], &options, &AtomicBool::new(false))
                .expect("run");
        (summary, rx.try_iter().collect())
    }

    #[test]
    fn a_live_source_keeps_its_capture_times_and_its_silence_is_no_signal() {
        let silence = |n| std::iter::repeat_n(Shot::Silent, n);
        let frames = [Shot::Frame(1_000), Shot::Frame(2_000), Shot::Frame(3_000)];
        let (summary, messages) = run_camera(silence(10).chain(frames).collect());
        assert_eq!(summary.frames_seen, 3, "silence is neither a frame nor a bad one: {summary:?}");
        assert_eq!(summary.bad_frames, 0);
        let no_signal =
            |m: &Message| matches!(&m.body, Body::Heartbeat(h) if h.flags.contains(HeartbeatFlags::NO_SIGNAL));
        let first_frame = messages.iter().position(|m| matches!(m.body, Body::Centerline(_))).expect("frames sent");
        assert!(messages[..first_frame].iter().any(no_signal), "100 ms of silence go out as no signal: {messages:?}");
        let stamps: Vec<u64> = messages
            .iter()
            .filter_map(|m| if let Body::Centerline(c) = &m.body { Some(c.capture_us) } else { None })
            .collect();
        assert_eq!(stamps, [1_000, 2_000, 3_000], "the device's capture times, not the runner's");
        let last = messages.last().expect("a final heartbeat");
        assert!(matches!(last.body, Body::Heartbeat(_)) && !no_signal(last), "frames came back: {last:?}");

        let (_, messages) = run_camera(frames.into_iter().chain(silence(5)).collect());
        assert!(messages.last().is_some_and(no_signal), "the signal was lost at the end: {:?}", messages.last());
    }

    /// A memory source whose odd frames are held back, as a closed frame trigger does.
    struct EveryOtherHeldBack(MemorySource);

    impl FrameSource for EveryOtherHeldBack {
        fn size(&self) -> (usize, usize) {
            self.0.size()
        }
        fn fps(&self) -> f32 {
            self.0.fps()
        }
        fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
            let next = self.0.next_frame(frame)?;
            if frame.index % 2 == 1 {
                return Some(Err(CaptureError::NoSignal { waited: Duration::ZERO }));
            }
            Some(next)
        }
    }

    #[test]
    fn frames_held_back_from_a_file_source_still_take_their_time() {
        let (tx, rx) = channel();
        let source = Box::new(EveryOtherHeldBack(MemorySource::new(flat_frames(20), 100.0)));
        let summary = run(
            source,
            &PipelineConfig::default(),
            vec![Box::new(Frames(tx))],
            &RunOptions::default(),
            &AtomicBool::new(false),
        )
        .expect("run");
        assert_eq!((summary.frames_seen, summary.bad_frames), (10, 0), "held back is not seen: {summary:?}");
        assert_eq!(rx.try_iter().filter(|i| i % 2 == 1).count(), 0, "no held-back frame was processed");
        // 20 frames at 100 fps: the last is due at 190 ms; only the 10 passed would take 90 ms.
        assert!(summary.elapsed >= Duration::from_millis(180), "played at its fps: {:?}", summary.elapsed);
    }

    #[test]
    fn a_source_that_fails_for_good_ends_the_run_with_its_reason() {
        // A few failures, then the end, so a runner that takes the failure for a bad frame
        // ends too, with no reason.
        let now = Micros::now().0;
        let camera = Camera::new(vec![Shot::Frame(now), Shot::Frame(now), Shot::Stuck, Shot::Stuck, Shot::Stuck]);
        let (tx, rx) = channel();
        let options = RunOptions { pacing: Pacing::Fast, ..RunOptions::default() };
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Frames(tx))];
        let summary =
            run(Box::new(camera), &PipelineConfig::default(), sinks, &options, &AtomicBool::new(false)).expect("run");
        let failed = summary.source_failed.as_deref().unwrap_or_default();
        assert!(failed.starts_with("/dev/video9: cannot stop streaming"), "{summary:?}");
        assert_eq!(summary.frames_seen, 2, "the failure is not a frame");
        assert_eq!(rx.try_iter().count(), 2, "the frames before it went out");
    }

    #[test]
    fn frames_the_device_lost_are_counted_as_dropped() {
        // Its driver lost two frames between the second and the third.
        let now = Micros::now().0;
        let mut camera = Camera::new(vec![Shot::Frame(now), Shot::Frame(now), Shot::Frame(now)]);
        camera.lost = (3, 2);
        let (tx, rx) = channel();
        let options = RunOptions { pacing: Pacing::Fast, ..RunOptions::default() };
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Messages(tx))];
        let summary =
            run(Box::new(camera), &PipelineConfig::default(), sinks, &options, &AtomicBool::new(false)).expect("run");
        assert_eq!((summary.frames_seen, summary.dropped_by_source), (3, 2), "{summary:?}");
        let last = rx.try_iter().last().map(|m| m.body);
        assert!(matches!(last, Some(Body::Heartbeat(h)) if h.frames_dropped == 2), "{last:?}");
    }

    #[test]
    fn a_stop_request_ends_the_run() {
        let stop = AtomicBool::new(true);
        let source = Box::new(MemorySource::new(flat_frames(5), 15.0));
        let summary = run(source, &PipelineConfig::default(), Vec::new(), &RunOptions::default(), &stop).expect("run");
        assert!(summary.frames_seen <= 1, "{summary:?}");
        assert_eq!(summary.heartbeats, 1, "the final heartbeat still goes out");
    }

    /// Records what the processing loop tells it.
    #[derive(Debug, Default)]
    struct Recorder {
        started: AtomicBool,
        progress: Mutex<Vec<Progress>>,
    }

    impl RunMonitor for Recorder {
        fn started(&self) {
            self.started.store(true, Ordering::SeqCst);
        }
        fn looped(&self, progress: &Progress) {
            self.progress.lock().expect("lock").push(*progress);
        }
        fn until_due(&self) -> Duration {
            Duration::from_millis(20)
        }
    }

    /// Delivers its frames, then waits inside `next_frame` until the test lets it end.
    struct Blocking(MemorySource, std::sync::mpsc::Receiver<()>);

    impl FrameSource for Blocking {
        fn size(&self) -> (usize, usize) {
            self.0.size()
        }
        fn fps(&self) -> f32 {
            self.0.fps()
        }
        fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
            let next = self.0.next_frame(frame);
            if next.is_none() {
                let _ = self.1.recv();
            }
            next
        }
    }

    /// Asleep between frames or spinning ([`RunOptions::spin_wait`]), the loop takes every
    /// frame and comes round when the monitor is due.
    #[test]
    fn the_monitor_sees_the_loop_come_round_asleep_or_spinning_and_capture_waiting_in_the_source() {
        for spin_wait in [false, true] {
            let recorder = Arc::new(Recorder::default());
            let (release, wait) = channel();
            let options = RunOptions {
                pacing: Pacing::Fast,
                heartbeat_period: Duration::from_secs(60),
                spin_wait,
                monitor: Some(Arc::clone(&recorder) as Arc<dyn RunMonitor>),
                ..RunOptions::default()
            };
            let source = Box::new(Blocking(MemorySource::new(flat_frames(3), 15.0), wait));
            let stop = AtomicBool::new(false);
            let summary = std::thread::scope(|scope| {
                let running = scope.spawn(|| run(source, &PipelineConfig::default(), Vec::new(), &options, &stop));
                std::thread::sleep(Duration::from_millis(400));
                let _ = release.send(());
                running.join().expect("runner thread").expect("run")
            });
            assert!(recorder.started.load(Ordering::SeqCst));
            let progress = recorder.progress.lock().expect("lock");
            let rounds = progress.len();
            assert!(rounds >= 10, "spinning {spin_wait}: the loop came round every 20 ms while waiting: {rounds}");
            assert!(progress.iter().any(|p| p.processed == 3), "{progress:?}");
            let longest = progress.iter().map(|p| p.capture_waiting).max().unwrap_or_default();
            assert!(longest >= Duration::from_millis(250), "capture waited in the source: {longest:?}");
            assert_eq!(summary.frames_seen, 3);
        }
    }
}
