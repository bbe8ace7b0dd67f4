//! Issue 5: the hot path allocates nothing after warm-up.
//!
//! A counting global allocator counts every allocation and reallocation in this process, on
//! every thread. Each scenario warms up, then counts over a few hundred frames of a hard
//! synthetic sequence held in memory, and requires zero. Bad frames and a dead serial port are
//! part of the counted frames: an error on the per-frame path must not allocate either. So are
//! frames held back by the frame trigger, and a trigger line that cannot be read.
//!
//! Its own test binary without libtest's harness, so nothing else runs in the process (no test
//! threads, no output capture) while it counts.

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use wiretrace::capture::memory::MemorySource;
use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::capture::trigger::TriggeredSource;
use wiretrace::capture::{CaptureError, FrameSource};
use wiretrace::config::GpioLine;
use wiretrace::frame::Frame;
use wiretrace::gpu::Gpu;
use wiretrace::pipeline::realtime::ThreadPlacement;
use wiretrace::pipeline::runner::{centerline_message, run, Pacing, RunMonitor, RunOptions};
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::service::{Notifier, ServiceMonitor};
use wiretrace::time::Micros;
use wiretrace::transport::serial::SerialSink;
use wiretrace::transport::udp::UdpSink;
use wiretrace::transport::{Sink, Sinks, WhenFull};
use wiretrace::vision::background::BackgroundParams;
use wiretrace::vision::roi::RoiParams;
use wiretrace::vision::tiles::Search;
use wiretrace_protocol::{decode, Body, Heartbeat, Message, MAX_MESSAGE_LEN};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Frames before counting starts: buffers that grow to their working size, lazy statics,
/// the tracking prior settling.
const WARM_UP: u32 = 20;
/// Frames counted.
const COUNTED: u32 = 300;
/// Side of the frames: large enough for a real wire, small enough for a test.
const SIZE: usize = 256;
/// Every this many frames a bad frame (wrong size) and a heartbeat go through as well.
const BAD_EVERY: u32 = 25;

/// Allocations and reallocations so far, on every thread.
fn allocations() -> usize {
    let s = GLOBAL.stats();
    s.allocations + s.reallocations
}

/// Counted frames without a wire (flat, nothing ridge-like), in runs longer than the tracker
/// keeps a lost wire: the no-wire message, losing the tracked wire and finding it again.
fn without_wire(index: u32) -> bool {
    (101..108).contains(&index) || (201..208).contains(&index)
}

/// `WARM_UP + COUNTED` frames of a hard synthetic sequence, rendered into memory up front, with
/// the flat frames of [`without_wire`] in it.
fn frames() -> Vec<Frame> {
    let cfg = SynthConfig {
        seed: 3,
        size_px: SIZE,
        frames: WARM_UP + COUNTED,
        difficulty: Difficulty::Hard,
        ..SynthConfig::default()
    };
    let mut synth = SyntheticSequence::new(cfg);
    (0..WARM_UP + COUNTED)
        .map(|i| {
            let mut f = Frame::with_size(SIZE, SIZE);
            if without_wire(i) {
                f.pixels.fill(2000);
            } else {
                synth.render(i, &mut f.pixels);
            }
            f.maxval = synth.maxval();
            f.index = i;
            f
        })
        .collect()
}

/// Counted frames that are bad: the runner end to end gets them instead of the good frame,
/// frame by frame they come after it.
fn bad(index: u32) -> bool {
    index >= WARM_UP && index.is_multiple_of(BAD_EVERY)
}

/// A frame the pipeline rejects: half the height it runs at.
fn bad_frame() -> Frame {
    let mut f = Frame::with_size(SIZE, SIZE / 2);
    f.maxval = 4095;
    f
}

/// A loopback socket to receive the sink's datagrams on.
fn receiver() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    socket.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    let addr = socket.local_addr().expect("receiver address");
    (socket, addr)
}

/// The centerline message the runner sends for a processed frame.
fn message(seq: u32, frame: &Frame, wire: Option<(&[[f32; 2]], f32)>) -> Message {
    Message { seq, body: Body::Centerline(centerline_message(frame, wire, 0.5)), auth: None }
}

/// Allocations counted per part of the per-frame path.
#[derive(Debug, Default)]
struct Counts {
    process: usize,
    message: usize,
    sink: usize,
    bad_frames: usize,
    heartbeats: usize,
}

/// `Pipeline::process`, the centerline message, the queue and the UDP sink's thread (encode,
/// send), one frame at a time on this thread: the test waits for each datagram before the next
/// frame, so what a frame allocates is counted by part (the sink thread starts on a message as
/// soon as it is queued, so its share may show in the queue's count). A bad frame is logged as
/// the runner does, with no subscriber installed. `camera_paced`: frames come as a camera's at
/// 15 fps, where the runner lets looks wait until after the frame's answer if the config does.
fn pipeline_and_sinks_frame_by_frame(frames: Vec<Frame>, config: PipelineConfig, camera_paced: bool) {
    let (socket, addr) = receiver();
    let sinks =
        Sinks::start(vec![Box::new(UdpSink::new(addr).expect("udp sink"))], WhenFull::Wait, None).expect("sinks");
    let mut source = MemorySource::new(frames, 15.0);
    let ridge_threads = config.ridge_workers.len() + 1;
    let mut pipeline = Pipeline::new(SIZE, SIZE, &config).expect("classical pipeline");
    let between_frames = camera_paced && config.look_between_frames;
    pipeline.look_between_frames(between_frames.then_some(66_667));
    let backend = pipeline.backend();
    let mut frame = Frame::with_size(SIZE, SIZE);
    let mut rejected = bad_frame();
    let mut datagram = [0u8; MAX_MESSAGE_LEN];
    let mut receive = |kind: &str| -> Message {
        let (n, _) = socket.recv_from(&mut datagram).unwrap_or_else(|e| panic!("no datagram for {kind}: {e}"));
        decode(&datagram[..n]).expect("a valid message")
    };
    let (mut counts, mut seq, mut wires, mut looks) = (Counts::default(), 0u32, 0u32, 0u32);
    while let Some(read) = source.next_frame(&mut frame) {
        read.expect("a frame from memory");
        frame.capture = Micros::now();
        let counting = frame.index >= WARM_UP;
        let count = |total: &mut usize, since: usize| {
            if counting {
                *total += allocations() - since;
            }
        };

        let before = allocations();
        let found =
            pipeline.process(&frame).expect("a frame of the pipeline's size").map(|w| (w.points_px, w.confidence));
        count(&mut counts.process, before);
        wires += u32::from(found.is_some() && counting);
        assert!(found.is_none() || !without_wire(frame.index), "a wire in a flat frame");

        let before = allocations();
        sinks.broadcast(&message(seq, &frame, found), frame.capture);
        seq += 1;
        count(&mut counts.message, before);

        let before = allocations();
        let got = receive("a centerline");
        count(&mut counts.sink, before);
        assert!(matches!(&got.body, Body::Centerline(c) if c.frame == frame.index), "{got:?}");

        let before = allocations();
        looks += u32::from(pipeline.finish_look() && counting);
        count(&mut counts.process, before);

        if bad(frame.index) {
            let before = allocations();
            rejected.index = frame.index;
            match pipeline.process(&rejected) {
                Err(e) => tracing::warn!("skipped frame: {e}"),
                Ok(_) => panic!("a frame of the wrong size was processed"),
            }
            count(&mut counts.bad_frames, before);

            let before = allocations();
            let heartbeat = Message { seq, body: Body::Heartbeat(Heartbeat::default()), auth: None };
            sinks.broadcast(&heartbeat, Micros(0));
            seq += 1;
            assert!(matches!(receive("a heartbeat").body, Body::Heartbeat(_)));
            count(&mut counts.heartbeats, before);
        }
    }
    let reports = sinks.finish();
    println!(
        "frame by frame, {backend}, {ridge_threads} ridge threads, {COUNTED} frames of {SIZE}x{SIZE} after {WARM_UP} to \
         warm up ({wires} with a wire, {} bad, {looks} looks between frames), allocations: {counts:?}",
        (WARM_UP..WARM_UP + COUNTED).filter(|&i| bad(i)).count()
    );
    assert!(wires >= COUNTED / 2, "the wire path was exercised: {wires} of {COUNTED} frames");
    assert_eq!(looks > 0, between_frames, "{looks} looks between frames");
    assert_eq!(reports[0].errors, 0);
    assert_eq!(pipeline.backend(), backend, "the backend held to the end");
    let Counts { process, message, sink, bad_frames, heartbeats } = counts;
    assert_eq!((process, message, sink, bad_frames, heartbeats), (0, 0, 0, 0, 0), "allocations per part");
}

/// Allocations counted by [`Windowed`] when the capture thread reaches the first and the last
/// counted frame.
static WINDOW: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The in-memory source, marking the counting window as the capture thread passes through it.
struct Windowed(MemorySource);

impl FrameSource for Windowed {
    fn size(&self) -> (usize, usize) {
        self.0.size()
    }

    fn fps(&self) -> f32 {
        self.0.fps()
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let next = self.0.next_frame(frame)?;
        if frame.index == WARM_UP {
            WINDOW[0].store(allocations(), Ordering::SeqCst);
        } else if frame.index == WARM_UP + COUNTED - 1 {
            WINDOW[1].store(allocations(), Ordering::SeqCst);
        }
        Some(next)
    }
}

/// The runner end to end (capture thread, frame exchange, pipeline, centerline messages,
/// heartbeats, sink queue and thread, UDP to a receiving thread). The window runs from the
/// capture of the first counted frame to that of the last, so it holds the processing and
/// sending of the frames in between. `Pacing::Fast` processes every frame; `Pacing::Camera` at
/// `fps` faster than the pipeline drops frames (latest wins) and sink messages (oldest go).
/// With a `deadline` no frame can make, every frame goes out as a deadline-missed message.
fn runner_end_to_end(mut frames: Vec<Frame>, pacing: Pacing, fps: f32, deadline: Option<Duration>) {
    runner_with_monitor(frames_with_bad(&mut frames), pacing, fps, deadline, None, false);
}

/// [`runner_end_to_end`] paced like a camera slower than the pipeline, its processing thread
/// spinning between frames (`RunOptions::spin_wait`).
fn runner_spinning(mut frames: Vec<Frame>) {
    runner_with_monitor(frames_with_bad(&mut frames), Pacing::Camera, 200.0, None, None, true);
}

/// Makes the frames of [`bad`] the wrong size, and hands the frames on.
fn frames_with_bad(frames: &mut Vec<Frame>) -> Vec<Frame> {
    // Bad frames fit the runner's frame buffers: only the pipeline rejects them.
    for f in frames.iter_mut().filter(|f| bad(f.index)) {
        f.height = SIZE / 2;
        f.pixels.truncate(SIZE * SIZE / 2);
    }
    std::mem::take(frames)
}

/// The service's systemd watchdog on the runner: a monitor that pings a notify socket owned
/// here every 10 ms (a 20 ms watchdog), with a status line each time.
fn runner_with_the_service_watchdog(mut frames: Vec<Frame>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&path).expect("bind the notify socket");
    systemd.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let notifier = Notifier::connect(path.as_os_str()).expect("connect");
    let sinks = ["udp 127.0.0.1".to_string()];
    let monitor =
        Arc::new(ServiceMonitor::new(Some(notifier), Some(Duration::from_millis(20)), Duration::from_secs(2), &sinks));
    let done = AtomicBool::new(false);
    let pings = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 2048];
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = systemd.recv(&mut buf) {
                    if buf[..n].starts_with(b"WATCHDOG=1\n") {
                        pings.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        let frames = frames_with_bad(&mut frames);
        runner_with_monitor(frames, Pacing::Fast, 15.0, None, Some(monitor), false);
        done.store(true, Ordering::SeqCst);
    });
    let pings = pings.load(Ordering::SeqCst);
    println!("the service's watchdog on the runner: {pings} pings");
    assert!(pings > 10, "the watchdog was fed while counting: {pings} pings");
}

/// [`runner_end_to_end`] with an optional [`RunMonitor`] on the processing loop, asleep or
/// spinning between frames.
fn runner_with_monitor(
    frames: Vec<Frame>,
    pacing: Pacing,
    fps: f32,
    deadline: Option<Duration>,
    monitor: Option<Arc<ServiceMonitor>>,
    spin_wait: bool,
) {
    let (socket, addr) = receiver();
    socket.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
    let received = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut datagram = [0u8; MAX_MESSAGE_LEN];
            while !done.load(Ordering::SeqCst) {
                if let Ok((n, _)) = socket.recv_from(&mut datagram) {
                    if matches!(decode(&datagram[..n]), Ok(Message { body: Body::Centerline(_), .. })) {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        let options = RunOptions {
            pacing,
            heartbeat_period: Duration::from_millis(50),
            deadline,
            spin_wait,
            monitor: monitor.map(|m| m as Arc<dyn RunMonitor>),
            ..RunOptions::default()
        };
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(UdpSink::new(addr).expect("udp sink"))];
        let source = Box::new(Windowed(MemorySource::new(frames, fps)));
        let summary = run(source, &PipelineConfig::default(), sinks, &options, &AtomicBool::new(false));
        std::thread::sleep(Duration::from_millis(300));
        done.store(true, Ordering::SeqCst);
        summary.expect("run")
    });
    let counted = WINDOW[1].load(Ordering::SeqCst) - WINDOW[0].load(Ordering::SeqCst);
    let received = received.load(Ordering::SeqCst);
    let sink_dropped = summary.sinks[0].dropped;
    println!(
        "runner, {pacing:?} pacing at {fps} frames/s, {COUNTED} frames of {SIZE}x{SIZE} after {WARM_UP} to warm up: \
         {} with a wire, {} without, {} past the deadline, {} bad, {} dropped (latest wins), {} heartbeats, \
         {sink_dropped} dropped at the sink, {received} centerlines received; allocations in the window: {counted}",
        summary.centerlines,
        summary.no_wire,
        summary.deadline_misses,
        summary.bad_frames,
        summary.dropped_latest,
        summary.heartbeats,
    );
    let processed = summary.centerlines + summary.no_wire + summary.deadline_misses;
    assert_eq!(processed + summary.bad_frames + summary.dropped_latest, u64::from(WARM_UP + COUNTED));
    // Frames that miss their deadline are abandoned at once: that run is over before a heartbeat.
    if deadline.is_none() {
        assert!(summary.heartbeats > 2, "heartbeats were sent while counting: {}", summary.heartbeats);
    }
    assert!(received <= processed && received + sink_dropped >= processed, "{received} received of {processed}");
    if deadline.is_some() {
        assert_eq!((summary.centerlines, summary.no_wire), (0, 0), "every frame missed its deadline");
        assert_eq!(received, processed);
    } else if pacing == Pacing::Fast {
        assert_eq!(summary.bad_frames, (0..WARM_UP + COUNTED).filter(|&i| bad(i)).count() as u64);
        assert!(summary.no_wire >= 14, "the 14 flat frames have no wire: {} without", summary.no_wire);
        assert_eq!(received, processed);
    } else if !spin_wait {
        assert!(summary.dropped_latest > 0, "the camera outpaced the pipeline");
    }
    assert_eq!(counted, 0, "allocations from frame {WARM_UP} to frame {}", WARM_UP + COUNTED - 1);
}

/// A serial sink whose robot is gone (the other end of its line closed): every message fails,
/// and failing allocates nothing either. The messages take milliseconds, so none of them
/// reaches the once-a-second reopen attempt (which opens a device, and allocates).
fn serial_sink_with_the_port_down() {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(pair.slave.as_fd()).expect("ttyname");
    let mut sink = SerialSink::open(path.to_str().expect("utf-8 path"), 115_200).expect("open the pty");
    drop(pair);
    let heartbeat = Message { seq: 0, body: Body::Heartbeat(Heartbeat::default()), auth: None };
    let mut failed = 0;
    for _ in 0..WARM_UP {
        failed += usize::from(sink.send(&heartbeat).is_err());
    }
    let before = allocations();
    for _ in 0..COUNTED {
        failed += usize::from(sink.send(&heartbeat).is_err());
    }
    let counted = allocations() - before;
    println!(
        "serial port down, {COUNTED} messages after {WARM_UP} to warm up: {failed} failed; allocations: {counted}"
    );
    assert_eq!(failed, (WARM_UP + COUNTED) as usize, "the port is down");
    assert_eq!(counted, 0, "allocations over {COUNTED} messages to a dead port");
}

/// Bad frames logged through a subscriber set up as the service sets up its own (formatted,
/// filtered by level), writing nowhere: a log line per bad frame must not allocate either.
fn bad_frames_logged_by_a_subscriber() {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .finish();
    let mut pipeline = Pipeline::new(SIZE, SIZE, &PipelineConfig::default()).expect("classical pipeline");
    let mut frame = bad_frame();
    let counted = tracing::subscriber::with_default(subscriber, || {
        let mut before = 0;
        for index in 0..WARM_UP + COUNTED {
            if index == WARM_UP {
                before = allocations();
            }
            frame.index = index;
            match pipeline.process(&frame) {
                Err(e) => tracing::warn!("skipped frame: {e}"),
                Ok(_) => panic!("a frame of the wrong size was processed"),
            }
        }
        allocations() - before
    });
    println!("{COUNTED} bad frames logged after {WARM_UP} to warm up; allocations: {counted}");
    assert_eq!(counted, 0, "allocations over {COUNTED} logged bad frames");
}

/// Frames whose exposure line cannot be read: from before counting starts (so its one error
/// message is made then) into the counted frames, where it reads again.
fn unreadable(index: u32) -> bool {
    (WARM_UP - 5..WARM_UP + 40).contains(&index)
}

/// Counted frames taken with the X-ray off.
fn unexposed(index: u32) -> bool {
    (150..170).contains(&index) || (250..260).contains(&index)
}

/// The fluoroscope's exposure line as the trigger reads it, once per frame: its level follows
/// the index of the frame read with it.
#[derive(Debug, Default)]
struct ExposureLine {
    reads: u32,
}

/// A read of the line failed.
#[derive(Debug)]
struct Unreadable;

impl embedded_hal::digital::Error for Unreadable {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for ExposureLine {
    type Error = Unreadable;
}

impl InputPin for ExposureLine {
    fn is_high(&mut self) -> Result<bool, Unreadable> {
        let index = self.reads;
        self.reads += 1;
        if unreadable(index) {
            Err(Unreadable)
        } else {
            Ok(!unexposed(index))
        }
    }

    fn is_low(&mut self) -> Result<bool, Unreadable> {
        self.is_high().map(|high| !high)
    }
}

/// The runner with its source behind the frame trigger, every frame: frames held back (line
/// inactive or unreadable) go back to the runner as no signal, exposed ones are processed.
fn runner_behind_the_frame_trigger(frames: Vec<Frame>) {
    let line = GpioLine { chip: "/dev/gpiochip0".into(), line: 7, active_low: false };
    let source = TriggeredSource::new(Windowed(MemorySource::new(frames, 15.0)), ExposureLine::default(), line);
    let options =
        RunOptions { pacing: Pacing::Fast, heartbeat_period: Duration::from_millis(50), ..RunOptions::default() };
    let summary =
        run(Box::new(source), &PipelineConfig::default(), Vec::new(), &options, &AtomicBool::new(false)).expect("run");
    let counted = WINDOW[1].load(Ordering::SeqCst) - WINDOW[0].load(Ordering::SeqCst);
    let held_back = (0..WARM_UP + COUNTED).filter(|&i| unreadable(i) || unexposed(i)).count() as u64;
    println!(
        "runner behind the frame trigger, {COUNTED} frames of {SIZE}x{SIZE} after {WARM_UP} to warm up: {} seen, \
         {held_back} held back, {} bad, {} heartbeats; allocations in the window: {counted}",
        summary.frames_seen, summary.bad_frames, summary.heartbeats
    );
    assert_eq!(summary.frames_seen, u64::from(WARM_UP + COUNTED) - held_back, "{summary:?}");
    assert_eq!(summary.bad_frames, 0, "held back is not bad");
    assert_eq!(summary.centerlines + summary.no_wire, summary.frames_seen, "every exposed frame processed");
    assert_eq!(counted, 0, "allocations from frame {WARM_UP} to frame {}", WARM_UP + COUNTED - 1);
}

/// A named part of the test, run to completion even when another fails.
type Scenario = (&'static str, Box<dyn FnOnce()>);

fn main() {
    let frames = frames();
    let scenarios: [Scenario; 15] = [
        ("serial sink with the port down", Box::new(serial_sink_with_the_port_down)),
        (
            "pipeline and sinks frame by frame",
            Box::new({
                let frames = frames.clone();
                move || pipeline_and_sinks_frame_by_frame(frames, PipelineConfig::default(), false)
            }),
        ),
        (
            "pipeline and sinks frame by frame, the classical search on squares",
            Box::new({
                let frames = frames.clone();
                move || {
                    // Squares smaller than these frames, so that the search runs square by square.
                    let ridge_tiles = Some(RoiParams { side_px: 128, tile_px: 48, margin_px: 8.0 });
                    let config =
                        PipelineConfig { ridge_tiles, ridge_search: Search::Squares, ..PipelineConfig::default() };
                    pipeline_and_sinks_frame_by_frame(frames, config, false)
                }
            }),
        ),
        (
            "pipeline and sinks frame by frame, looks beyond the tiles between frames",
            Box::new({
                let frames = frames.clone();
                move || pipeline_and_sinks_frame_by_frame(frames, PipelineConfig::default(), true)
            }),
        ),
        (
            "pipeline and sinks frame by frame, recursive filter and background suppression",
            Box::new({
                // The average of a flat frame and the wire frames before it still shows the wire.
                let frames: Vec<Frame> = frames.iter().filter(|f| !without_wire(f.index)).cloned().collect();
                move || {
                    let config = PipelineConfig {
                        recursive_filter_weight: Some(0.5),
                        background: Some(BackgroundParams { time_constant_frames: 20.0 }),
                        ..PipelineConfig::default()
                    };
                    pipeline_and_sinks_frame_by_frame(frames, config, false)
                }
            }),
        ),
        (
            "pipeline and sinks frame by frame, ridge stage on three threads",
            Box::new({
                let frames = frames.clone();
                let ridge_workers = vec![ThreadPlacement::default(); 2];
                move || {
                    pipeline_and_sinks_frame_by_frame(
                        frames,
                        PipelineConfig { ridge_workers, ..PipelineConfig::default() },
                        false,
                    )
                }
            }),
        ),
        (
            "pipeline and sinks frame by frame, ridge stage and thinning on the GPU",
            Box::new({
                let frames = frames.clone();
                move || match Gpu::open(None) {
                    Ok(gpu) => pipeline_and_sinks_frame_by_frame(
                        frames,
                        PipelineConfig { gpu: Some(gpu), ..PipelineConfig::default() },
                        false,
                    ),
                    Err(e) => println!("SKIPPED: no CUDA device ({e})"),
                }
            }),
        ),
        (
            "pipeline and sinks frame by frame, on the GPU, searching square by square",
            Box::new({
                let frames = frames.clone();
                move || match Gpu::open(None) {
                    Ok(gpu) => {
                        let ridge_tiles = Some(RoiParams { side_px: 128, tile_px: 48, margin_px: 8.0 });
                        let config = PipelineConfig {
                            ridge_tiles,
                            ridge_search: Search::Squares,
                            gpu: Some(gpu),
                            ..PipelineConfig::default()
                        };
                        pipeline_and_sinks_frame_by_frame(frames, config, false)
                    }
                    Err(e) => println!("SKIPPED: no CUDA device ({e})"),
                }
            }),
        ),
        (
            "runner end to end, every frame",
            Box::new({
                let frames = frames.clone();
                move || runner_end_to_end(frames, Pacing::Fast, 15.0, None)
            }),
        ),
        (
            "runner end to end, spinning between frames",
            Box::new({
                let frames = frames.clone();
                move || runner_spinning(frames)
            }),
        ),
        (
            "runner end to end with the service's watchdog",
            Box::new({
                let frames = frames.clone();
                move || runner_with_the_service_watchdog(frames)
            }),
        ),
        (
            "runner behind the frame trigger",
            Box::new({
                let frames = frames.clone();
                move || runner_behind_the_frame_trigger(frames)
            }),
        ),
        (
            "runner end to end, every frame past its deadline",
            Box::new({
                let frames = frames.clone();
                move || runner_end_to_end(frames, Pacing::Fast, 15.0, Some(Duration::from_micros(1)))
            }),
        ),
        // Faster than the pipeline at this size, even once it is 5 times faster than now.
        (
            "runner end to end, paced like a camera",
            Box::new(move || runner_end_to_end(frames, Pacing::Camera, 1000.0, None)),
        ),
        ("bad frames logged by a subscriber", Box::new(bad_frames_logged_by_a_subscriber)),
    ];
    let total = scenarios.len();
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)).is_err() {
            failed.push(name);
        }
    }
    println!("no_alloc: {} passed, {} failed", total - failed.len(), failed.len());
    assert!(failed.is_empty(), "failed: {failed:?}");
}
