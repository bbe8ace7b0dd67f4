//! `wiretrace bench`: latency, throughput, drops and memory of the real runner on a replayed
//! sequence (issue 5, "Measurement"), and which frames were slowest.
//!
//! Each pass is a fresh [`run`] over the sequence, played `repeat` times, to a sink that
//! encodes every message as the UDP sink does and sends it nowhere:
//!
//! - **sustained**: [`Pacing::Fast`], every frame in order. Its throughput is the rate the
//!   pipeline sustains. Its latency is not the pipeline's: under backpressure a frame is
//!   stamped as soon as the hand-over slot frees, then waits there while the frame before it is
//!   processed.
//! - **paced**: a camera at half the sustained rate, or at the sequence's own frame rate where
//!   that is slower, so a frame normally finds the pipeline idle; its latency is capture to
//!   sink without queueing, the number the targets are about. (Frames do not all cost the
//!   same: the learned engine's search squares cost more than its tiles along a short wire,
//!   and a camera at half the rate the cheap frames sustain would queue behind the dear ones.)
//! - **overload** (optional): a camera at twice the sustained rate. The latest frame wins and
//!   drops are counted; bounded queues show as the latency of processed frames staying near
//!   the paced one, and as resident memory staying flat.
//!
//! Latency is the runner's own per-sink measure: capture timestamp to the message handed over
//! after encoding.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use wiretrace_protocol::{encode, Body, Message, StatusFlags, MAX_MESSAGE_LEN};

use crate::capture::replay::ReplaySource;
use crate::capture::sequence::SequenceError;
use crate::capture::{CaptureError, FrameSource};
use crate::frame::Frame;
use crate::pipeline::runner::{run, Pacing, RunOptions, RunSummary};
use crate::pipeline::PipelineConfig;
use crate::time::Micros;
use crate::transport::{Sink, SinkError};

/// The paced pass runs a camera at this fraction of the sustained rate.
pub const PACED_FRACTION: f64 = 0.5;
/// The overload pass runs a camera at this multiple of the sustained rate.
pub const OVERLOAD_FACTOR: f64 = 2.0;
/// How many of a pass's slowest frames its report names.
pub const SLOWEST: usize = 5;
/// How often resident memory is sampled during a pass.
const RSS_SAMPLE_PERIOD: Duration = Duration::from_millis(10);
const PROC_STATUS: &str = "/proc/self/status";

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The sequence directory cannot be replayed.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// `repeat` was zero.
    #[error("the sequence must be played at least once (repeat is 0)")]
    NoRepeat,
    /// The sink's or the memory sampler's thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
    /// Resident memory could not be read.
    #[error("cannot read {PROC_STATUS}")]
    Proc(#[source] std::io::Error),
    /// `/proc/self/status` lacks a field.
    #[error("{PROC_STATUS} has no {0} line")]
    ProcField(&'static str),
    /// Every frame was bad, so there is no rate to measure or pace at.
    #[error("{}: no frame could be processed", .0.display())]
    NothingProcessed(PathBuf),
    /// The stop flag was set (SIGINT or SIGTERM) before the passes ended.
    #[error("interrupted")]
    Interrupted,
    /// A run ended before its source did: the runner could not start its capture thread, or
    /// the sequence could not be opened again for a repetition.
    #[error("the {pass} pass saw {seen} of {total} frames")]
    Incomplete {
        /// Which pass.
        pass: &'static str,
        /// Frames the source delivered.
        seen: u64,
        /// Frames it holds.
        total: u64,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Times the sequence is played in each pass (at least 1).
    pub repeat: u32,
    /// Also run the overload pass.
    pub overload: bool,
    /// The pipeline under test.
    pub config: PipelineConfig,
    /// Budget per frame in the camera-paced passes (the sustained pass is offline and has
    /// none); `None` measures latency without abandoning any frame.
    pub deadline: Option<Duration>,
    /// The processing thread spins between frames ([`RunOptions::spin_wait`]).
    pub spin_wait: bool,
}

/// Capture-to-sink latency of the centerline messages of one pass (µs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl From<&Histogram<u64>> for Latency {
    fn from(h: &Histogram<u64>) -> Self {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// One of a pass's slowest frames: which frames set its tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlowFrame {
    /// Frame number in the pass: the sequence's frame index, plus the sequence's length for
    /// each playing before this one.
    pub frame: u32,
    /// Capture to sink (µs), as the sink measured it after encoding: a moment before the
    /// runner's histogram, which keeps three significant digits, so the second slowest of a
    /// 180-frame pass is near its p99 but not equal to it.
    pub latency_us: u64,
    /// The message's status: `ok`, or its flags joined by `|` (`no_wire`, `degraded`, …).
    #[serde(serialize_with = "status_name")]
    pub status: StatusFlags,
}

fn status_name<S: serde::Serializer>(status: &StatusFlags, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(status)
}

/// Resident memory over one pass (KiB). `warm_*` are sampled every 10 ms from the first
/// centerline at the sink until every frame has been seen, while every buffer has been made
/// and touched and none freed yet: flat means equal.
#[derive(Debug, Clone, Serialize)]
pub struct PassMemory {
    /// Before the run started.
    pub before_kib: u64,
    /// Lowest sample once warm (`None` when the run was too short to sample).
    pub warm_min_kib: Option<u64>,
    /// Highest sample once warm.
    pub warm_max_kib: Option<u64>,
    /// After the run ended.
    pub after_kib: u64,
}

/// One pass.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// "sustained", "paced" or "overload".
    pub name: &'static str,
    /// "fast" (every frame, backpressure) or "camera" (paced, latest wins).
    pub pacing: &'static str,
    /// Camera frame rate (`None` for fast pacing).
    pub input_fps: Option<f64>,
    /// Frames the source delivered or failed to deliver.
    pub frames: u64,
    /// Frames processed: `centerlines + no_wire + deadline_misses` (a miss is a frame the
    /// pipeline took and abandoned).
    pub processed: u64,
    /// Processed frames with a wire.
    pub centerlines: u64,
    /// Processed frames without one.
    pub no_wire: u64,
    /// Frames replaced by a newer one before processing (latest wins).
    pub dropped: u64,
    /// Frames that could not be read or processed.
    pub bad: u64,
    /// Messages the sink's bounded queue dropped.
    pub sink_dropped: u64,
    /// Messages the sink failed to encode.
    pub sink_errors: u64,
    /// The runner's deadline-miss counter, as its last heartbeat carried it.
    pub deadline_misses: u32,
    /// Wall time of the run (s).
    pub elapsed_s: f64,
    /// Processed frames per second of wall time.
    pub throughput_fps: f64,
    /// Capture to sink, centerline and no-wire messages.
    pub latency_us: Latency,
    /// The [`SLOWEST`] slowest of those messages, slowest first.
    pub slowest: Vec<SlowFrame>,
    /// Resident memory.
    pub memory: PassMemory,
}

/// Everything `wiretrace bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The sequence directory.
    pub sequence: PathBuf,
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// Frame files in the sequence.
    pub sequence_frames: usize,
    /// Times the sequence is played in each pass.
    pub repeat: u32,
    /// Every frame in order, as fast as the pipeline goes.
    pub sustained: PassReport,
    /// A camera at [`PACED_FRACTION`] of the sustained rate, or at the sequence's rate where
    /// that is slower.
    pub paced: PassReport,
    /// A camera at [`OVERLOAD_FACTOR`] times the sustained rate, when asked for.
    pub overload: Option<PassReport>,
    /// Resident memory when the bench started (KiB).
    pub rss_start_kib: u64,
    /// Resident memory when it ended (KiB).
    pub rss_end_kib: u64,
    /// Peak resident memory of the process (VmHWM, KiB).
    pub rss_peak_kib: u64,
}

/// Runs the passes on the sequence in `dir`. `stop` ends the run early (an error).
pub fn bench(dir: &Path, options: &BenchOptions, stop: &AtomicBool) -> Result<BenchReport, BenchError> {
    let rss_start_kib = proc_status_kib("VmRSS")?;
    if options.repeat == 0 {
        return Err(BenchError::NoRepeat);
    }
    let probe = ReplaySource::open(dir)?;
    let ((width, height), sequence_frames, camera_fps) = (probe.size(), probe.len(), f64::from(probe.fps()));
    drop(probe);
    let pass = |name, fps| run_pass(name, dir, options, fps, stop);
    let sustained = pass("sustained", None)?;
    if sustained.processed == 0 {
        return Err(BenchError::NothingProcessed(dir.to_path_buf()));
    }
    let rate = sustained.throughput_fps;
    let paced = pass("paced", Some((rate * PACED_FRACTION).min(camera_fps)))?;
    let overload = if options.overload { Some(pass("overload", Some(rate * OVERLOAD_FACTOR))?) } else { None };
    Ok(BenchReport {
        sequence: dir.to_path_buf(),
        width,
        height,
        sequence_frames,
        repeat: options.repeat,
        sustained,
        paced,
        overload,
        rss_start_kib,
        rss_end_kib: proc_status_kib("VmRSS")?,
        rss_peak_kib: proc_status_kib("VmHWM")?,
    })
}

/// One fresh run: camera pacing at `fps`, or fast pacing when `None`.
fn run_pass(
    name: &'static str,
    dir: &Path,
    options: &BenchOptions,
    fps: Option<f64>,
    stop: &AtomicBool,
) -> Result<PassReport, BenchError> {
    let source = Repeated::open(dir, options.repeat, fps)?;
    let frames_total = source.frames_total();
    let heard = Arc::new(Heard::default());
    let sink = EncodingSink { buf: [0; MAX_MESSAGE_LEN], heard: Arc::clone(&heard), frames_total };
    let pacing = if fps.is_some() { Pacing::Camera } else { Pacing::Fast };
    let deadline = if fps.is_some() { options.deadline } else { None };
    let run_options = RunOptions { pacing, deadline, spin_wait: options.spin_wait, ..RunOptions::default() };
    let before_kib = proc_status_kib("VmRSS")?;
    let done = AtomicBool::new(false);
    let (summary, (warm_min_kib, warm_max_kib)) = std::thread::scope(|scope| {
        let sampler = std::thread::Builder::new()
            .name("rss".into())
            .spawn_scoped(scope, || sample_warm_rss(&done, &heard))
            .map_err(BenchError::Thread)?;
        let summary = run(Box::new(source), &options.config, vec![Box::new(sink)], &run_options, stop);
        done.store(true, Ordering::SeqCst);
        let range = sampler.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, BenchError>((summary.map_err(BenchError::Thread)?, range))
    })?;
    if stop.load(Ordering::Relaxed) {
        return Err(BenchError::Interrupted);
    }
    if summary.frames_seen < frames_total {
        return Err(BenchError::Incomplete { pass: name, seen: summary.frames_seen, total: frames_total });
    }
    let memory = PassMemory { before_kib, warm_min_kib, warm_max_kib, after_kib: proc_status_kib("VmRSS")? };
    let slowest = heard.slowest.lock().unwrap_or_else(PoisonError::into_inner).to_vec();
    Ok(pass_report(name, fps, &summary, heard.deadline_misses.load(Ordering::SeqCst), slowest, memory))
}

fn pass_report(
    name: &'static str,
    fps: Option<f64>,
    s: &RunSummary,
    deadline_misses: u32,
    slowest: Vec<SlowFrame>,
    memory: PassMemory,
) -> PassReport {
    let processed = s.centerlines + s.no_wire + s.deadline_misses;
    let elapsed_s = s.elapsed.as_secs_f64();
    let sink = s.sinks.first();
    PassReport {
        name,
        pacing: if fps.is_some() { "camera" } else { "fast" },
        input_fps: fps,
        frames: s.frames_seen,
        processed,
        centerlines: s.centerlines,
        no_wire: s.no_wire,
        dropped: s.dropped_latest,
        bad: s.bad_frames,
        sink_dropped: sink.map_or(0, |k| k.dropped),
        sink_errors: sink.map_or(0, |k| k.errors),
        deadline_misses,
        elapsed_s,
        throughput_fps: if elapsed_s > 0.0 { processed as f64 / elapsed_s } else { 0.0 },
        latency_us: sink.map_or_else(Latency::default, |k| Latency::from(&k.latency_us)),
        slowest,
        memory,
    }
}

/// Samples resident memory while the pipeline exists: from the first centerline at the sink
/// until the sink hears a heartbeat counting every frame (the runner sends its last one before
/// it frees the pipeline) or, failing that, until `done`. A run shorter than one sample period
/// may give no sample.
fn sample_warm_rss(done: &AtomicBool, heard: &Heard) -> (Option<u64>, Option<u64>) {
    let (mut lo, mut hi) = (None::<u64>, None::<u64>);
    while !done.load(Ordering::SeqCst) {
        if heard.first_frame.load(Ordering::SeqCst) {
            let sample = proc_status_kib("VmRSS");
            // Checked after reading, so the sample was taken before the pipeline was freed.
            if heard.all_frames_seen.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(kib) = sample {
                lo = Some(lo.map_or(kib, |v| v.min(kib)));
                hi = Some(hi.map_or(kib, |v| v.max(kib)));
            }
        }
        std::thread::sleep(RSS_SAMPLE_PERIOD);
    }
    (lo, hi)
}

/// What the bench's sink learnt, shared with the bench thread.
#[derive(Debug, Default)]
struct Heard {
    first_frame: AtomicBool,
    all_frames_seen: AtomicBool,
    deadline_misses: AtomicU32,
    slowest: Mutex<Slowest>,
}

/// The slowest frames so far, slowest first; fixed size, so keeping it allocates nothing.
#[derive(Debug, Default)]
struct Slowest([Option<SlowFrame>; SLOWEST]);

impl Slowest {
    fn offer(&mut self, frame: SlowFrame) {
        let Some(at) = self.0.iter().position(|s| s.is_none_or(|s| frame.latency_us > s.latency_us)) else {
            return;
        };
        self.0[at..].rotate_right(1);
        self.0[at] = Some(frame);
    }

    fn to_vec(&self) -> Vec<SlowFrame> {
        self.0.iter().flatten().copied().collect()
    }
}

/// Encodes every message as the UDP sink does, so that cost is in the latency, and keeps what
/// the runner's heartbeats say (its deadline-miss counter, and when every frame has been seen)
/// and the slowest frames.
struct EncodingSink {
    buf: [u8; MAX_MESSAGE_LEN],
    heard: Arc<Heard>,
    frames_total: u64,
}

impl Sink for EncodingSink {
    fn target(&self) -> String {
        "bench".into()
    }

    fn send(&mut self, message: &Message) -> Result<(), SinkError> {
        encode(message, &mut self.buf)?;
        match &message.body {
            Body::Centerline(c) => {
                self.heard.first_frame.store(true, Ordering::SeqCst);
                let latency_us = Micros::now().since(Micros(c.capture_us));
                let slow = SlowFrame { frame: c.frame, latency_us, status: c.status };
                self.heard.slowest.lock().unwrap_or_else(PoisonError::into_inner).offer(slow);
            }
            Body::Heartbeat(h) => {
                self.heard.deadline_misses.store(h.deadline_misses, Ordering::SeqCst);
                if u64::from(h.frames_seen) >= self.frames_total {
                    self.heard.all_frames_seen.store(true, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }
}

/// The sequence played `repeat` times, at `fps` when given, its frames numbered on across the
/// playings (so the slowest frames name one frame). A [`ReplaySource`] cannot rewind,
/// so the directory is opened again for each repetition, after the finished source is freed:
/// its file buffer is then reused, where sources opened up front each left theirs resident
/// (half a MiB a repetition at 512 × 512).
struct Repeated {
    dir: PathBuf,
    current: Option<ReplaySource>,
    /// Repetitions not opened yet.
    left: u32,
    /// Added to the frame indices of the current playing: the frames of those before it.
    offset: u32,
    size: (usize, usize),
    fps: f32,
    sequence_frames: usize,
    repeat: u32,
}

impl Repeated {
    fn open(dir: &Path, repeat: u32, fps: Option<f64>) -> Result<Self, BenchError> {
        let first = ReplaySource::open(dir)?;
        let (size, sequence_frames) = (first.size(), first.len());
        let fps = fps.map_or(first.fps(), |f| f as f32);
        let left = repeat.saturating_sub(1);
        Ok(Repeated {
            dir: dir.to_path_buf(),
            current: Some(first),
            left,
            offset: 0,
            size,
            fps,
            sequence_frames,
            repeat,
        })
    }

    fn frames_total(&self) -> u64 {
        self.sequence_frames as u64 * u64::from(self.repeat)
    }
}

impl FrameSource for Repeated {
    fn size(&self) -> (usize, usize) {
        self.size
    }

    fn fps(&self) -> f32 {
        self.fps
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        loop {
            if let Some(next) = self.current.as_mut()?.next_frame(frame) {
                frame.index = frame.index.saturating_add(self.offset);
                return Some(next);
            }
            self.current = None;
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            self.offset = self.offset.saturating_add(u32::try_from(self.sequence_frames).unwrap_or(u32::MAX));
            match ReplaySource::open(&self.dir) {
                Ok(source) => self.current = Some(source),
                // Counted as one bad frame; the pass then ends short and the bench says so.
                Err(e) => {
                    let reason = format!("cannot open the sequence again: {e}");
                    return Some(Err(CaptureError::BadFrame { path: self.dir.clone(), reason }));
                }
            }
        }
    }
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
fn proc_status_kib(field: &'static str) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(PROC_STATUS).map_err(BenchError::Proc)?;
    status_field_kib(&status, field).ok_or(BenchError::ProcField(field))
}

fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        writeln!(
            f,
            "{}: {} frames of {}x{}, played {} time(s) per pass",
            self.sequence.display(),
            self.sequence_frames,
            self.width,
            self.height,
            self.repeat
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>7} {:>9} {:>7} {:>10} {:>4} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>15}",
            "pass",
            "input fps",
            "frames",
            "processed",
            "dropped",
            "sink drops",
            "bad",
            "misses",
            "frames/s",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "max us",
            "warm RSS MiB"
        )?;
        for p in [Some(&self.sustained), Some(&self.paced), self.overload.as_ref()].into_iter().flatten() {
            let input = p.input_fps.map_or("every".to_string(), |r| format!("{r:.1}"));
            let warm = match (p.memory.warm_min_kib, p.memory.warm_max_kib) {
                (Some(lo), Some(hi)) => format!("{:.1}-{:.1}", mib(lo), mib(hi)),
                _ => "-".to_string(),
            };
            let l = &p.latency_us;
            writeln!(
                f,
                "{:<10} {input:>9} {:>7} {:>9} {:>7} {:>10} {:>4} {:>6} {:>8.1} {:>9} {:>9} {:>9} {:>9} {warm:>15}",
                p.name,
                p.frames,
                p.processed,
                p.dropped,
                p.sink_dropped,
                p.bad,
                p.deadline_misses,
                p.throughput_fps,
                l.p50,
                l.p99,
                l.p999,
                l.max
            )?;
        }
        writeln!(
            f,
            "latency is capture to sink; in the sustained pass it includes a wait of about one frame \
             in the hand-over slot (backpressure), in the paced pass it does not"
        )?;
        write!(
            f,
            "RSS: {:.1} MiB at start, {:.1} MiB at end, peak {:.1} MiB",
            mib(self.rss_start_kib),
            mib(self.rss_end_kib),
            mib(self.rss_peak_kib)
        )?;
        write!(f, "\nslowest frames of the paced pass (frame: us status):")?;
        let mut separator = " ";
        for s in &self.paced.slowest {
            write!(f, "{separator}{}: {} {}", s.frame, s.latency_us, s.status)?;
            separator = ", ";
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(frame: u32, latency_us: u64) -> SlowFrame {
        SlowFrame { frame, latency_us, status: StatusFlags::OK }
    }

    #[test]
    fn the_slowest_frames_are_kept_slowest_first() {
        let mut slowest = Slowest::default();
        assert!(slowest.to_vec().is_empty());
        for (frame, latency_us) in [(0, 50), (1, 70), (2, 10), (3, 90), (4, 70), (5, 20), (6, 5), (7, 80)] {
            slowest.offer(slow(frame, latency_us));
        }
        // Of equal latencies the first heard stays ahead.
        let want = [slow(3, 90), slow(7, 80), slow(1, 70), slow(4, 70), slow(0, 50)];
        assert_eq!(slowest.to_vec(), want);
        slowest.offer(slow(8, 50));
        assert_eq!(slowest.to_vec(), want, "no faster frame displaces one kept");
    }

    #[test]
    fn frames_are_numbered_on_across_the_playings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = crate::capture::synthetic::SynthConfig { size_px: 64, frames: 3, ..Default::default() };
        crate::capture::synthetic::write_sequence(&cfg, dir.path()).expect("synth");
        let mut source = Repeated::open(dir.path(), 3, None).expect("open");
        let mut frame = Frame::with_size(64, 64);
        let mut seen = Vec::new();
        while let Some(next) = source.next_frame(&mut frame) {
            next.expect("frame");
            seen.push(frame.index);
        }
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_status_field_is_read_in_kib() {
        let status = "Name:\twiretrace\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\nThreads:\t4\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(81_234));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(80_000));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
        assert_eq!(status_field_kib("VmRSS:\tlots kB\n", "VmRSS"), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let rss = proc_status_kib("VmRSS").expect("VmRSS");
        assert!(rss > 0);
        assert!(proc_status_kib("VmHWM").expect("VmHWM") >= rss);
    }
}
