//! `wiretrace demo`: a synthetic sequence, generated in memory, through the real pipeline and
//! the real UDP sink to an in-process receiver on loopback, scored against ground truth.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use wiretrace_protocol::{encode, encode_frame, Body, Message, MAX_FRAME_LEN, MAX_MESSAGE_LEN};

use crate::capture::memory::MemorySource;
use crate::capture::sequence::CenterlineTruth;
use crate::capture::synthetic::{SynthConfig, SyntheticSequence};
use crate::eval::{mean_centerline_distance, tip_error};
use crate::frame::Frame;
use crate::pipeline::runner::{run, Pacing, RunOptions, RunSummary};
use crate::pipeline::PipelineConfig;
use crate::time::Micros;
use crate::transport::receiver::{receive_udp, Receiver, RxStats, StopWhen};
use crate::transport::udp::UdpSink;
use crate::transport::Sink;

/// Scores of one received centerline against its frame's ground truth.
#[derive(Debug, Clone, Copy)]
pub struct FrameScore {
    /// Frame index.
    pub frame: u32,
    /// Wire visible in the ground truth.
    pub wire_visible: bool,
    /// Points received (0 for no wire).
    pub points: usize,
    /// Mean symmetric centerline distance (px), when both have a wire.
    pub distance_px: Option<f32>,
    /// Tip error (px), when both have a wire.
    pub tip_error_px: Option<f32>,
    /// Capture to reception at the receiver (µs).
    pub received_us: u64,
    /// Size of the datagram (bytes).
    pub datagram_bytes: usize,
    /// Size of the COBS frame for a serial line.
    pub serial_bytes: usize,
}

/// Everything the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    /// Per received centerline, in arrival order.
    pub frames: Vec<FrameScore>,
    /// The sender's side.
    pub run: RunSummary,
    /// The receiver's counters.
    pub rx: RxStats,
    /// Capture to sink budget of each frame: one frame period.
    pub deadline: Duration,
}

/// Scores `message` against `truth` (indexed by frame).
fn score(message: &Message, truth: &[CenterlineTruth]) -> Option<FrameScore> {
    let Body::Centerline(c) = &message.body else { return None };
    let now = Micros::now();
    let predicted: Vec<[f32; 2]> = c.points.iter().map(|p| [p.x_px(), p.y_px()]).collect();
    let gt = truth.iter().find(|t| t.frame == c.frame).map(|t| t.points.as_slice()).unwrap_or(&[]);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let datagram_bytes = encode(message, &mut buf[..MAX_MESSAGE_LEN]).unwrap_or(0);
    let serial_bytes = encode_frame(message, &mut buf).unwrap_or(0);
    Some(FrameScore {
        frame: c.frame,
        wire_visible: !gt.is_empty(),
        points: predicted.len(),
        distance_px: mean_centerline_distance(&predicted, gt),
        tip_error_px: tip_error(&predicted, gt),
        received_us: now.since(Micros(c.capture_us)),
        datagram_bytes,
        serial_bytes,
    })
}

/// Generates the sequence, runs it paced like a camera and returns the scores; `on_frame` is
/// called as each centerline arrives.
pub fn run_demo(
    cfg: SynthConfig,
    pipeline: &PipelineConfig,
    mut on_frame: impl FnMut(&FrameScore) + Send,
) -> anyhow::Result<DemoReport> {
    let fps = cfg.fps;
    let mut synth = SyntheticSequence::new(cfg.clone());
    let truth: Vec<CenterlineTruth> = (0..cfg.frames).map(|i| synth.truth(i)).collect();
    let frames: Vec<Frame> = (0..cfg.frames)
        .map(|i| {
            let mut f = Frame::with_size(cfg.size_px, cfg.size_px);
            synth.render(i, &mut f.pixels);
            f.maxval = synth.maxval();
            f.index = i;
            f
        })
        .collect();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let to = socket.local_addr()?;
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(UdpSink::new(to)?)];
    let stop = AtomicBool::new(false);
    let scores = Mutex::new(Vec::new());
    // A result is due before the next frame: one frame period from capture.
    let deadline = Duration::from_secs_f64(1.0 / f64::from(fps.max(0.1)));
    let options = RunOptions { pacing: Pacing::Camera, deadline: Some(deadline), ..RunOptions::default() };
    let (run_summary, rx) = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            let mut rx = Receiver::new();
            receive_udp(&socket, &mut rx, StopWhen { stop: &stop, idle: None }, |m| {
                if let Some(s) = score(m, &truth) {
                    on_frame(&s);
                    scores.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(s);
                }
            })
            .map(|()| rx.stats())
        });
        let never = AtomicBool::new(false);
        let summary = run(Box::new(MemorySource::new(frames, fps)), pipeline, sinks, &options, &never);
        // Loopback delivers at once; the pause lets the receiver drain its socket buffer.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let rx = receiver.join().map_err(|_| anyhow::anyhow!("receiver thread panicked"))?;
        Ok::<_, anyhow::Error>((summary?, rx?))
    })?;
    let frames = scores.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(DemoReport { frames, run: run_summary, rx, deadline })
}

/// Mean centerline distance (px) beyond which a detection followed something other than the wire.
pub const WRONG_STRUCTURE_PX: f32 = 5.0;

/// Median of `values` (`None` when empty).
pub fn median(values: &mut [f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    Some(values[values.len() / 2])
}

/// The summary lines printed after the per-frame lines.
pub fn summary_lines(report: &DemoReport) -> Vec<String> {
    let visible: Vec<&FrameScore> = report.frames.iter().filter(|f| f.wire_visible).collect();
    let mut dists: Vec<f32> = visible.iter().filter_map(|f| f.distance_px).collect();
    let mut tips: Vec<f32> = visible.iter().filter_map(|f| f.tip_error_px).collect();
    let mean = |v: &[f32]| if v.is_empty() { f32::NAN } else { v.iter().sum::<f32>() / v.len() as f32 };
    let found = dists.len();
    let wrong = dists.iter().filter(|&&d| d > WRONG_STRUCTURE_PX).count();
    let false_alarms = report.frames.iter().filter(|f| !f.wire_visible && f.points > 0).count();
    let mut lat = Histogram::<u64>::new_with_bounds(1, 100_000_000, 3).expect("constant histogram bounds are valid");
    for f in &report.frames {
        lat.saturating_record(f.received_us.max(1));
    }
    let with_wire: Vec<&FrameScore> = report.frames.iter().filter(|f| f.points > 0).collect();
    let max_bytes = with_wire.iter().map(|f| f.serial_bytes).max().unwrap_or(0);
    let mean_bytes = with_wire.iter().map(|f| f.datagram_bytes as f32).sum::<f32>() / with_wire.len().max(1) as f32;
    let r = &report.run;
    let mut lines = vec![
        format!(
            "frames: {} captured, {} received ({} with a visible wire), {} dropped (latest wins), {} bad, \
             {} past their deadline ({} ms) and sent as missed",
            r.frames_seen,
            report.frames.len(),
            visible.len(),
            r.dropped_latest,
            r.bad_frames,
            // The demo's one sink: its late hand-offs come on top of the pipeline's misses.
            r.deadline_misses + r.sinks.iter().map(|s| s.deadline_misses).max().unwrap_or(0),
            report.deadline.as_millis()
        ),
        format!(
            "wire found in {found}/{} frames where it is visible ({wrong} of them on another structure, \
             > {WRONG_STRUCTURE_PX} px away); {false_alarms} false alarms",
            visible.len()
        ),
        format!(
            "centerline distance to ground truth: mean {:.2} px, median {:.2} px",
            mean(&dists),
            median(&mut dists).unwrap_or(f32::NAN)
        ),
        format!("tip error: mean {:.2} px, median {:.2} px", mean(&tips), median(&mut tips).unwrap_or(f32::NAN)),
        format!(
            "latency capture to receiver: p50 {} us, p99 {} us, max {} us",
            lat.value_at_quantile(0.5),
            lat.value_at_quantile(0.99),
            lat.max()
        ),
    ];
    lines.extend(r.sinks.iter().map(ToString::to_string));
    lines.push(format!(
        "packet size: mean {mean_bytes:.0} B per datagram; largest {max_bytes} B COBS-framed for a serial line"
    ));
    let rx = &report.rx;
    lines.push(format!(
        "receiver: {} messages ({} centerlines, {} heartbeats), {} CRC failures, {} sequence gaps",
        rx.messages, rx.centerlines, rx.heartbeats, rx.crc_failures, rx.seq_gaps
    ));
    lines
}
