//! The `wiretrace` command line: one report per error, at the end.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use wiretrace::bench::{bench, BenchOptions};
use wiretrace::capture::replay::ReplaySource;
use wiretrace::capture::synthetic::{write_sequence, Difficulty, SynthConfig, VesselContrast};
use wiretrace::capture::trigger::TriggeredSource;
use wiretrace::capture::v4l2::{feed, FeedOptions, PixelFormat};
use wiretrace::config::{self, Backend, EngineKind, ServiceConfig};
use wiretrace::demo::{run_demo, summary_lines};
use wiretrace::engine::bench::{bench_engines, EngineBenchOptions};
use wiretrace::eval::report::evaluate;
use wiretrace::gpio::{self, StatusLed};
use wiretrace::pipeline::realtime::ThreadPlacement;
use wiretrace::pipeline::runner::{run, Pacing, RunOptions, RunSummary};
use wiretrace::pipeline::PipelineConfig;
use wiretrace::service::{Notifier, ServiceMonitor};
use wiretrace::transport::receiver::{message_json, receive_stream, receive_udp, Receiver, RxStats, StopWhen};
use wiretrace::transport::serial::{open_port, SerialSink};
use wiretrace::transport::udp::UdpSink;
use wiretrace::transport::Sink;
use wiretrace::vision::background::BackgroundParams;
use wiretrace::vision::bands::MAX_RIDGE_WORKERS;
use wiretrace::vision::field::FieldParams;
use wiretrace::vision::recursive::RecursiveFilter;
use wiretrace::vision::tiles::Search;
use wiretrace_protocol::{Body, Message};

/// A line of a command's report on standard output; a failure to write it (a closed pipe, a
/// full disk) ends the command with that error, not a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*).context("writing to standard output")?
    };
}

/// A line of progress or summary on standard error, where a failure to write has nowhere to
/// be told: it is ignored.
macro_rules! note {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
#[derive(Parser)]
#[command(
    name = "wiretrace",
    version,
    about = "Finds the guidewire in X-ray frames and sends its centerline to a robot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic sequence in memory, run it through the pipeline to a receiver on
    /// UDP loopback, and score the centerlines against ground truth.
    Demo {
        /// Seed of the synthetic sequence.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Number of frames.
        #[arg(long, default_value_t = 60)]
        frames: u32,
        /// Frame size (px, square).
        #[arg(long, default_value_t = 512)]
        size: usize,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Replay a sequence directory through the pipeline to the given sinks.
    Replay {
        /// Sequence directory (frames/NNNNNN.pgm, optional meta.json).
        dir: PathBuf,
        /// Send each message as a UDP datagram to this address (repeatable).
        #[arg(long = "udp", value_name = "ADDR")]
        udp: Vec<SocketAddr>,
        /// Send COBS-framed messages to this serial device (repeatable).
        #[arg(long = "serial", value_name = "PATH")]
        serial: Vec<String>,
        /// Baud rate of the serial devices.
        #[arg(long, default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(1..))]
        baud: u32,
        /// Process every frame in order as fast as possible instead of at the sequence's fps.
        /// Offline work: no deadline applies.
        #[arg(long)]
        fast: bool,
        /// Budget (ms) from capture to hand-off to the sinks; a frame that cannot make it is
        /// sent as `deadline_missed` without points. 0: no deadline.
        #[arg(long, value_name = "MS", default_value_t = 33)]
        deadline_ms: u64,
        #[command(flatten)]
        placement: PlacementArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Reference receiver: decode messages, check CRC and sequence numbers.
    Rx {
        /// Listen for datagrams on this address.
        #[arg(long, value_name = "ADDR", conflicts_with = "serial", required_unless_present = "serial")]
        udp: Option<SocketAddr>,
        /// Read COBS frames from this serial device.
        #[arg(long, value_name = "PATH")]
        serial: Option<String>,
        /// Baud rate of the serial device.
        #[arg(long, default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(1..))]
        baud: u32,
        /// One JSON object per message on standard output; counters go to standard error.
        #[arg(long)]
        json: bool,
        /// Exit after this many seconds without a message (counted from the first one).
        #[arg(long, value_name = "SECONDS")]
        idle_exit: Option<f64>,
    },
    /// Score a sequence against its ground truth: the pipeline run here, or a receiver's output.
    Eval {
        /// Sequence directory with ground truth (gt/centerlines.jsonl, optional gt/*_mask.png).
        #[arg(long)]
        seq: PathBuf,
        /// Receiver output to score (`wiretrace rx --json` lines) instead of running the pipeline.
        #[arg(long, value_name = "FILE")]
        pred: Option<PathBuf>,
        /// Where to write the JSON report [default: ./<sequence name>.eval.json].
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Measure a sequence through the real runner: capture-to-sink latency, throughput, drops,
    /// deadline misses and resident memory, every frame as fast as possible and then paced like
    /// a camera at half that rate (and, with --overload, twice it).
    Bench {
        /// Sequence directory (frames/NNNNNN.pgm, optional meta.json).
        #[arg(long)]
        seq: PathBuf,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Play the sequence this many times in each pass.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Add a pass with frames arriving at twice the rate the pipeline sustains.
        #[arg(long)]
        overload: bool,
        /// Budget (ms) per frame in the camera-paced passes, whose misses are then counted;
        /// 0 (the default) measures latency without abandoning any frame.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        deadline_ms: u64,
        /// Keep the processing thread spinning between frames instead of asleep.
        #[arg(long)]
        spin_wait: bool,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Time the learned engine alone on a sequence's regions: tract, and ONNX Runtime beside it
    /// in a build with `--features ort-peer` and ORT_DYLIB_PATH set (engines/README.md).
    BenchEngine {
        /// The model's manifest.
        #[arg(long, value_name = "FILE", default_value = "engines/wirenet.json")]
        manifest: PathBuf,
        /// Sequence directory (frames/NNNNNN.pgm; gt/centerlines.jsonl centres the crop).
        #[arg(long)]
        seq: PathBuf,
        /// Frames timed, the sequence played again if shorter [default: the whole sequence].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        frames: Option<u32>,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Write a synthetic low-dose fluoroscopy sequence with ground truth.
    Synth {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives the same sequence.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of frames.
        #[arg(long, default_value_t = 60)]
        frames: u32,
        /// Frame size (px, square).
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Frame rate written to meta.json.
        #[arg(long, default_value_t = 15.0)]
        fps: f32,
        /// easy (1200 photons/px, wire clear of catheter and spine), hard (300, crossings) or
        /// extreme (80, collimator, flicker, wire over the spine).
        #[arg(long, default_value = "easy")]
        difficulty: Difficulty,
        /// What fills the vessels: diluted contrast (faint, every difficulty's) or dense (a bolus
        /// at full strength, its thin branches as dark as a wire).
        #[arg(long, default_value = "diluted")]
        vessel_contrast: VesselContrast,
    },
    /// Write a sequence into a V4L2 output device (v4l2loopback) at its fps, so `wiretrace run`
    /// on the capture side goes through the real V4L2 path (board/bench/README.md). Needs a
    /// build with `--features v4l2`.
    Feed {
        /// The loopback device's node, e.g. /dev/video10.
        device: PathBuf,
        /// Sequence directory (frames/NNNNNN.pgm, optional meta.json with the fps).
        #[arg(long)]
        seq: PathBuf,
        /// Pixel format written: GREY, Y16 (a 12-bit frame's bits at the top of the word) or YUYV.
        #[arg(long, default_value = "GREY")]
        format: PixelFormat,
        /// Start again after the last frame, until interrupted.
        #[arg(long = "loop")]
        looped: bool,
    },
    /// Run as the service: source, pipeline and sinks from the configuration file. Tells
    /// systemd when it is ready and feeds its watchdog (Type=notify, WatchdogSec=).
    Run {
        /// Configuration file (config/wiretrace.toml documents every key).
        #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Check on this box what the service needs: configuration, engine, GPU, camera, sinks,
    /// clock. One line per check with PASS, FAIL or INFO and the fix; exits non-zero on a FAIL.
    Selftest {
        /// Configuration file.
        #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The status LED (gpio.status_led), outside a run.
    Led {
        #[command(subcommand)]
        command: LedCommand,
    },
}

#[derive(Subcommand)]
enum LedCommand {
    /// Turn the LED off; nothing to do when the configuration has none. The unit runs this
    /// after the service ends (ExecStopPost=), so a crashed service does not stay "running".
    Off {
        /// Configuration file.
        #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file without running anything, and summarise it; exits
    /// non-zero on the first error, which names the line and the key.
    Check {
        /// Configuration file.
        file: PathBuf,
    },
}

/// Where the capture and processing threads run. Each is applied when the process is
/// permitted; the log says what was not.
#[derive(clap::Args)]
struct PlacementArgs {
    /// Pin the capture thread to this CPU.
    #[arg(long, value_name = "CPU")]
    capture_cpu: Option<usize>,
    /// Pin the processing thread to this CPU.
    #[arg(long, value_name = "CPU")]
    processing_cpu: Option<usize>,
    /// Run processing under SCHED_FIFO at this priority (1-98), and capture one above it, so a
    /// frame is always taken when it comes.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=98))]
    fifo_priority: Option<u8>,
    /// Keep the processing thread spinning between frames instead of asleep: lower latency
    /// for a whole core; not with --fifo-priority, under which it would starve that core.
    #[arg(long, conflicts_with = "fifo_priority")]
    spin_wait: bool,
}

impl PlacementArgs {
    fn threads(&self) -> (ThreadPlacement, ThreadPlacement) {
        (
            ThreadPlacement { cpu: self.capture_cpu, fifo_priority: self.fifo_priority.map(|p| p + 1) },
            ThreadPlacement { cpu: self.processing_cpu, fifo_priority: self.fifo_priority },
        )
    }
}

/// Pipeline options shared by the commands that run it.
#[derive(clap::Args)]
struct PipelineArgs {
    /// What finds the wire: the learned network (the default) or the classical ridge filter.
    #[arg(long, value_enum, default_value = "learned")]
    engine: EngineKind,
    /// Where the ridge (or feature) and thinning stages run: the CPU, or CUDA kernels on the
    /// GPU, with the CPU in their place, and the log saying why, where no GPU can be used.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// The learned engine's model manifest [default: engines/wirenet.json, else
    /// /usr/share/wiretrace/engines/wirenet.json].
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// When the model is missing, corrupt or does not match this build, run the classical path
    /// instead of refusing to start; every message then carries the degraded flag.
    #[arg(long)]
    allow_degraded: bool,
    /// Subtract a running background of this many frames (time constant) from each frame, so
    /// static anatomy fades while a moving wire stays.
    #[arg(long, value_name = "FRAMES")]
    subtract_background: Option<f32>,
    /// Average each frame with those before it, the newest weighted this much (above 0, at
    /// most 1; 1: off): the noise of low dose falls (variance to 0.6 at 0.75), and what moves
    /// lags a little [default: 0.75 with the learned engine, off with the classical].
    #[arg(long, value_name = "WEIGHT")]
    recursive_filter: Option<f32>,
    /// Share of full scale below which the frame is behind the collimator's shutters [default:
    /// 0.0025, a raw detector's black; a frame grabber on video output needs its black level,
    /// e.g. 0.08 for grey 13-16 of 255].
    #[arg(long, value_name = "SHARE")]
    shutter_below: Option<f32>,
    /// Threads for the ridge stage, the processing thread included; each takes a band of the
    /// frame, with the same result as one.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_RIDGE_WORKERS as i64 + 1))]
    ridge_threads: u16,
    /// Pin the extra ridge threads to these CPUs, one each (comma-separated).
    #[arg(long, value_name = "CPU,...", value_delimiter = ',')]
    ridge_cpus: Vec<usize>,
    /// The classical ridge stage filters the whole frame every frame, not tiles along the
    /// tracked wire (to compare: inside the tiles the map is the same).
    #[arg(long)]
    whole_frame: bool,
    /// How either engine looks beyond the tracked wire's tiles, and for a wire while none is
    /// tracked: the whole frame at once, or one square a frame, which bounds every frame's cost
    /// and may find a wire a few frames later; auto: the whole frame where it can make the
    /// frame's deadline.
    #[arg(long, value_enum, default_value_t = Search::Auto, conflicts_with = "whole_frame")]
    ridge_search: Search,
    /// In real time, the classical path looks beyond the tracked wire's tiles within the
    /// frame, before its answer, instead of after it (the default, where an answer costs its
    /// tiles alone and what the look finds is answered a frame later).
    #[arg(long)]
    look_within_frame: bool,
}

impl PipelineArgs {
    /// The pipeline's configuration; extra ridge threads run under `SCHED_FIFO` at
    /// `fifo_priority` when given, like the processing thread that waits for them.
    fn config(&self, fifo_priority: Option<u8>) -> anyhow::Result<PipelineConfig> {
        let extra = usize::from(self.ridge_threads) - 1;
        if self.ridge_cpus.len() > extra {
            bail!("--ridge-cpus names {} CPUs for {extra} extra ridge threads", self.ridge_cpus.len());
        }
        let ridge_workers =
            (0..extra).map(|i| ThreadPlacement { cpu: self.ridge_cpus.get(i).copied(), fifo_priority }).collect();
        let background = match self.subtract_background {
            Some(frames) if frames.is_finite() && frames >= 1.0 => {
                Some(BackgroundParams { time_constant_frames: frames })
            }
            Some(frames) => bail!("--subtract-background {frames}: must be at least 1 frame"),
            None => None,
        };
        if let Some(weight) = self.recursive_filter.filter(|&w| !RecursiveFilter::is_weight(w)) {
            bail!("--recursive-filter {weight}: {}", RecursiveFilter::WEIGHT_RANGE);
        }
        let defaults = PipelineConfig::default();
        let field = match self.shutter_below {
            None => defaults.field,
            Some(share) if FieldParams::is_share(share) => FieldParams { shutter_below: share, ..defaults.field },
            Some(share) => bail!("--shutter-below {share}: {}", FieldParams::SHARE_RANGE),
        };
        let config = PipelineConfig {
            background,
            recursive_filter_weight: self.recursive_filter,
            field,
            ridge_workers,
            ridge_tiles: defaults.ridge_tiles.filter(|_| !self.whole_frame),
            ridge_search: self.ridge_search,
            look_between_frames: !self.look_within_frame,
            gpu: self.backend.open_gpu(),
            ..defaults
        };
        let manifest = self.manifest.clone().unwrap_or_else(config::default_manifest);
        Ok(config.with_engine(self.engine, &manifest, self.allow_degraded)?)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("wiretrace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo { seed, frames, size, pipeline } => demo(seed, frames, size, &pipeline.config(None)?),
        Command::Replay { dir, udp, serial, baud, fast, deadline_ms, placement, pipeline } => {
            let deadline = (!fast && deadline_ms > 0).then(|| Duration::from_millis(deadline_ms));
            let (capture_thread, processing_thread) = placement.threads();
            let options = RunOptions {
                pacing: if fast { Pacing::Fast } else { Pacing::Camera },
                deadline,
                capture_thread,
                processing_thread,
                spin_wait: placement.spin_wait,
                ..RunOptions::default()
            };
            replay(dir, &udp, &serial, baud, &options, &pipeline.config(placement.fifo_priority)?)
        }
        Command::Rx { udp, serial, baud, json, idle_exit } => rx(udp, serial, baud, json, idle_exit),
        Command::Eval { seq, pred, json, pipeline } => {
            // A receiver's output is scored as it is: no pipeline runs, so no model is needed.
            let config = if pred.is_some() { PipelineConfig::default() } else { pipeline.config(None)? };
            eval(&seq, pred.as_deref(), json, &config)
        }
        Command::Bench { seq, json, repeat, overload, deadline_ms, spin_wait, pipeline } => {
            let deadline = (deadline_ms > 0).then(|| Duration::from_millis(deadline_ms));
            let options = BenchOptions { repeat, overload, config: pipeline.config(None)?, deadline, spin_wait };
            run_bench(&seq, json.as_deref(), &options)
        }
        Command::BenchEngine { manifest, seq, frames, json } => bench_engine(manifest, seq, frames, json.as_deref()),
        Command::Feed { device, seq, format, looped } => feed_loopback(FeedOptions { device, seq, format, looped }),
        Command::Synth { out, seed, frames, size, fps, difficulty, vessel_contrast } => {
            let cfg = SynthConfig { vessel_contrast, ..synth_config(seed, frames, size, fps, difficulty)? };
            write_sequence(&cfg, &out).with_context(|| format!("writing {}", out.display()))?;
            let vessels = match vessel_contrast {
                VesselContrast::Diluted => "",
                VesselContrast::Dense => ", vessels full of contrast,",
            };
            note!("wrote {frames} {difficulty} frames{vessels} of {size}x{size} to {}", out.display());
            Ok(())
        }
        Command::Run { config } => run_service(&config),
        Command::Selftest { config } => selftest(&config),
        Command::Led { command: LedCommand::Off { config } } => {
            // The line is requested at its off level; it keeps that level once released.
            if let Some(line) = config::load(&config)?.gpio.status_led {
                gpio::open_output(&line)?;
            }
            Ok(())
        }
        Command::Config { command: ConfigCommand::Check { file } } => {
            let checked = config::load(&file)?;
            out!("{}: valid", file.display());
            for line in checked.summary() {
                out!("  {line}");
            }
            Ok(())
        }
    }
}

fn synth_config(seed: u64, frames: u32, size: usize, fps: f32, difficulty: Difficulty) -> anyhow::Result<SynthConfig> {
    let cfg = SynthConfig { seed, size_px: size, frames, fps, difficulty, ..SynthConfig::default() };
    cfg.validate()?;
    Ok(cfg)
}

/// The demo holds its whole sequence in memory; these keep it under about 600 MiB.
const DEMO_MAX_FRAMES: u32 = 300;
const DEMO_MAX_SIZE_PX: usize = 1024;

/// SIGINT and SIGTERM set the returned flag, so runs end cleanly with their summaries.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    Ok(stop)
}

fn demo(seed: u64, frames: u32, size: usize, pipeline: &PipelineConfig) -> anyhow::Result<()> {
    if frames > DEMO_MAX_FRAMES || size > DEMO_MAX_SIZE_PX {
        bail!("the demo keeps its frames in memory: at most {DEMO_MAX_FRAMES} frames of {DEMO_MAX_SIZE_PX} px (use synth and replay for more)");
    }
    let cfg = synth_config(seed, frames, size, 15.0, Difficulty::Easy)?;
    let engine = match (&pipeline.learned, pipeline.degraded) {
        (Some(l), _) => format!("learned engine ({})", l.model.manifest_path.display()),
        (None, true) => "classical engine, degraded".to_string(),
        (None, false) => "classical engine".to_string(),
    };
    out!("wiretrace demo: {frames} synthetic frames of {size}x{size} (seed {seed}), 15 fps, UDP loopback, {engine}");
    let report = run_demo(cfg, pipeline, |f| {
        let d = f.distance_px.map_or("   -".into(), |d| format!("{d:4.2}"));
        let t = f.tip_error_px.map_or("   -".into(), |t| format!("{t:4.1}"));
        let what = match (f.points, f.wire_visible) {
            (0, false) => "no wire (none visible)".to_string(),
            (0, true) => "no wire (MISSED)".to_string(),
            (n, _) => format!("{n:2} points"),
        };
        // The run goes on whether or not anyone reads its lines; the summary's write says so.
        let _ = writeln!(
            std::io::stdout(),
            "frame {:3}  {what:22}  distance {d} px  tip {t} px  latency {:6} us  {:3} B",
            f.frame,
            f.received_us,
            f.datagram_bytes
        );
    })?;
    out!();
    for line in summary_lines(&report) {
        out!("{line}");
    }
    Ok(())
}

fn eval(seq: &Path, pred: Option<&Path>, json: Option<PathBuf>, config: &PipelineConfig) -> anyhow::Result<()> {
    let report = evaluate(seq, pred, config).with_context(|| format!("scoring {}", seq.display()))?;
    out!(
        "{} ({}): {} frames, {} with a wire; {} failures (no answer), {} false alarms",
        seq.display(),
        report.predictions,
        report.frames,
        report.frames_with_wire,
        report.failures,
        report.false_alarms
    );
    out!("{:<28} {:>8} {:>8} {:>7}", "metric", "mean", "median", "frames");
    let rows = [
        ("dice", report.dice),
        ("clDice", report.cl_dice),
        ("coverage (2 px)", report.coverage),
        ("mean distance (px)", report.mean_distance_px),
        ("hausdorff 95 (px)", report.hausdorff95_px),
        ("tip error (px)", report.tip_error_px),
        ("components", report.components),
    ];
    let cell = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for (name, s) in rows {
        out!("{name:<28} {:>8} {:>8} {:>7}", cell(s.mean), cell(s.median), s.frames);
    }
    out!("{:<28} {:>8}", "one component (share)", cell(report.one_component_share));
    out!("{:<28} {:>8}", "proximal to tip (share)", cell(report.direction_correct_share));
    let path = json.unwrap_or_else(|| {
        let name = seq.file_name().map_or("sequence".into(), |n| n.to_string_lossy().into_owned());
        PathBuf::from(format!("{name}.eval.json"))
    });
    write_report(&path, &report)
}

/// Writes a report as pretty JSON and says where.
fn write_report(path: &Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    note!("report written to {}", path.display());
    Ok(())
}

fn run_bench(seq: &Path, json: Option<&Path>, options: &BenchOptions) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let report = bench(seq, options, &stop).with_context(|| format!("benchmarking {}", seq.display()))?;
    out!("{report}");
    json.map_or(Ok(()), |path| write_report(path, &report))
}

fn bench_engine(manifest: PathBuf, seq: PathBuf, frames: Option<u32>, json: Option<&Path>) -> anyhow::Result<()> {
    let peer_library = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()).map(PathBuf::from);
    let options = EngineBenchOptions { manifest, seq, frames: frames.map(|n| n as usize), peer_library };
    let report =
        bench_engines(&options).with_context(|| format!("benchmarking the engine on {}", options.seq.display()))?;
    out!("{report}");
    json.map_or(Ok(()), |path| write_report(path, &report))
}

fn print_run_summary(what: &str, s: &RunSummary) {
    note!(
        "{what}: {} frames seen, {} centerlines, {} no-wire, {} deadline missed, {} dropped (latest wins), {} lost \
         by the device, {} bad, {} heartbeats in {:.1} s",
        s.frames_seen,
        s.centerlines,
        s.no_wire,
        s.deadline_misses,
        s.dropped_latest,
        s.dropped_by_source,
        s.bad_frames,
        s.heartbeats,
        s.elapsed.as_secs_f64()
    );
    for k in &s.sinks {
        note!("  {k}");
    }
}

fn replay(
    dir: PathBuf,
    udp: &[SocketAddr],
    serial: &[String],
    baud: u32,
    options: &RunOptions,
    config: &PipelineConfig,
) -> anyhow::Result<()> {
    if udp.is_empty() && serial.is_empty() {
        bail!("nothing to send to: give --udp ADDR or --serial PATH");
    }
    let source = ReplaySource::open(&dir).with_context(|| format!("opening sequence {}", dir.display()))?;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for &addr in udp {
        sinks.push(Box::new(UdpSink::new(addr)?));
    }
    for path in serial {
        sinks.push(Box::new(SerialSink::open(path, baud)?));
    }
    let (w, h) = wiretrace::capture::FrameSource::size(&source);
    tracing::info!(
        "replaying {} ({} frames, {w}x{h}){}",
        dir.display(),
        source.len(),
        if options.pacing == Pacing::Fast { ", fast" } else { "" }
    );
    let stop = stop_flag()?;
    let summary = run(Box::new(source), config, sinks, options, &stop).context("starting the sinks")?;
    print_run_summary("replay", &summary);
    Ok(())
}

fn rx(
    udp: Option<SocketAddr>,
    serial: Option<String>,
    baud: u32,
    json: bool,
    idle_exit: Option<f64>,
) -> anyhow::Result<()> {
    let idle = match idle_exit {
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => bail!("--idle-exit {s}: must be a positive number of seconds"),
        },
        None => None,
    };
    let stop = stop_flag()?;
    let until = StopWhen { stop: &stop, idle };
    let stdout = std::io::stdout();
    let mut print = |m: &Message| {
        let mut out = stdout.lock();
        let line = if json { message_json(m).to_string() } else { human_line(m) };
        // A closed pipe ends the output, not the receiver: counters still go to stderr.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    let mut receiver = Receiver::new();
    let result = match (udp, serial) {
        (Some(addr), _) => {
            let socket = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
            note!("rx: listening on udp {}", socket.local_addr()?);
            receive_udp(&socket, &mut receiver, until, &mut print).with_context(|| format!("receiving on {addr}"))
        }
        (None, Some(path)) => {
            let mut port = open_port(&path, baud, Duration::from_millis(50))?;
            note!("rx: listening on serial {path} at {baud} baud");
            receive_stream(&mut port, &mut receiver, until, &mut print).with_context(|| format!("reading {path}"))
        }
        (None, None) => bail!("give --udp ADDR or --serial PATH"),
    };
    // The counters are the point of a reference receiver: print them even when the link died.
    report_rx(&receiver.stats());
    result
}

fn human_line(m: &Message) -> String {
    match &m.body {
        Body::Centerline(c) => {
            let tip = c.points.last().map_or(String::new(), |p| format!(" tip ({:.1}, {:.1})", p.x_px(), p.y_px()));
            format!(
                "seq {:6} frame {:6} {:14} {:3} points{tip} confidence {:.2} latency {} us",
                m.seq,
                c.frame,
                c.status.to_string(),
                c.points.len(),
                c.confidence.as_unit(),
                c.latency_us
            )
        }
        Body::Heartbeat(h) => format!(
            "seq {:6} heartbeat uptime {:.1} s, {} frames seen, {} dropped, {} deadline misses, backend {}, {}",
            m.seq,
            h.uptime_us as f64 / 1e6,
            h.frames_seen,
            h.frames_dropped,
            h.deadline_misses,
            h.backend.name(),
            h.flags
        ),
    }
}

fn report_rx(s: &RxStats) {
    note!(
        "rx: {} messages ({} centerlines, {} heartbeats), {} CRC failures, {} otherwise damaged, {} resyncs, \
         {} sequence gaps ({} missing), {} incompatible, {} of unknown kinds",
        s.messages,
        s.centerlines,
        s.heartbeats,
        s.crc_failures,
        s.damaged,
        s.resyncs,
        s.seq_gaps,
        s.missing,
        s.incompatible,
        s.unknown_kinds
    );
    note!("rx summary: {}", serde_json::to_string(s).unwrap_or_default());
}

fn feed_loopback(options: FeedOptions) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let s = feed(&options, &stop).with_context(|| format!("feeding {}", options.seq.display()))?;
    note!(
        "feed: {} frames written to {} at {} fps in {} passes, {} bad frames skipped",
        s.frames,
        options.device.display(),
        s.fps,
        s.passes,
        s.bad_frames
    );
    Ok(())
}

/// Opened sinks, and their names for the status line.
type NamedSinks = (Vec<Box<dyn Sink>>, Vec<String>);

/// The configured sinks, opened.
fn open_sinks(config: &ServiceConfig) -> anyhow::Result<NamedSinks> {
    let (mut sinks, mut names): (Vec<Box<dyn Sink>>, Vec<String>) = (Vec::new(), Vec::new());
    for target in &config.sinks.udp {
        let addr = config::resolve_udp(target).with_context(|| format!("sinks.udp: resolving {target}"))?;
        sinks.push(Box::new(UdpSink::new(addr)?));
        names.push(format!("udp {addr}"));
    }
    for s in &config.sinks.serial {
        sinks.push(Box::new(SerialSink::open(&s.path, s.baud)?));
        names.push(format!("serial {}", s.path));
    }
    Ok((sinks, names))
}

/// The service: everything from the configuration file, until the source ends or SIGTERM.
fn run_service(path: &Path) -> anyhow::Result<()> {
    let config = config::load(path)?;
    let stop = stop_flag()?;
    let (mut source, pacing) = config::open_source(&config.source)?;
    if let Some(line) = &config.gpio.frame_trigger {
        // Unlike the LED, the trigger is not a convenience: without it frames outside an
        // exposure (the fluoroscope's last-image hold) would be processed as fresh.
        let pin = gpio::open_input(line).with_context(|| {
            format!("{}: the frame trigger cannot be used; not starting without it", path.display())
        })?;
        tracing::info!("frame trigger on {} line {}: frames only while it is active", line.chip.display(), line.line);
        source = Box::new(TriggeredSource::new(source, pin, line.clone()));
    }
    let (sinks, names) = open_sinks(&config)?;
    let notifier = Notifier::from_env()?;
    let watchdog = sd_notify::watchdog_enabled();
    let monitor = Arc::new(ServiceMonitor::new(notifier, watchdog, config.watchdog.capture_stall, &names));
    if monitor.stall_outlasts_watchdog() {
        tracing::warn!(
            "watchdog.capture_stall_ms = {} is not below the unit's WatchdogSec= ({} ms): a capture stuck in \
             the source is restarted only after both; lower it or raise WatchdogSec=",
            config.watchdog.capture_stall.as_millis(),
            watchdog.map_or(0, |w| w.as_millis())
        );
    }
    let (w, h) = source.size();
    tracing::info!(
        "running {} ({}, {w}x{h}) to {}; watchdog {}",
        path.display(),
        config.source.kind(),
        names.join(", "),
        watchdog.map_or("off".to_string(), |w| format!("every {} ms", w.as_millis()))
    );
    let options = RunOptions {
        pacing,
        heartbeat_period: config.pipeline.heartbeat_period,
        low_confidence: config.pipeline.low_confidence,
        deadline: config.pipeline.deadline,
        capture_thread: config.realtime.capture_thread,
        processing_thread: config.realtime.processing_thread,
        spin_wait: config.realtime.spin_wait,
        monitor: Some(Arc::clone(&monitor) as Arc<dyn wiretrace::pipeline::runner::RunMonitor>),
    };
    let background =
        config.pipeline.subtract_background_frames.map(|frames| BackgroundParams { time_constant_frames: frames });
    let defaults = PipelineConfig::default();
    let pipeline = PipelineConfig {
        background,
        recursive_filter_weight: config.pipeline.recursive_filter_weight,
        field: FieldParams { shutter_below: config.pipeline.shutter_below, ..defaults.field },
        ridge_search: config.pipeline.ridge_search,
        look_between_frames: config.pipeline.look_between_frames,
        ridge_workers: config.realtime.ridge_workers.clone(),
        gpu: config.engine.backend.open_gpu(),
        ..defaults
    }
    .with_engine(config.engine.kind, &config.engine.manifest, config.engine.allow_degraded)
    .with_context(|| format!("{}: engine", path.display()))?;
    let led_stop = AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        if let Some(line) = &config.gpio.status_led {
            // The LED is a convenience: without it the service still does its job.
            match gpio::open_output(line) {
                Ok(pin) => {
                    let led = StatusLed::new(pin, line.active_low);
                    let (monitor, led_stop) = (&monitor, &led_stop);
                    scope.spawn(move || gpio::drive(led, || monitor.health(), led_stop));
                }
                Err(e) => tracing::warn!("{e}; running without the status LED"),
            }
        }
        let summary = run(source, &pipeline, sinks, &options, &stop).context("starting the sinks");
        monitor.stopping();
        led_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        summary
    });
    let summary = summary?;
    print_run_summary("run", &summary);
    // Exits non-zero, so systemd restarts the service and the stuck device is released.
    if let Some(why) = summary.source_failed {
        bail!("{why}");
    }
    Ok(())
}

fn selftest(path: &Path) -> anyhow::Result<()> {
    let checks = wiretrace::selftest::run_checks(path);
    for check in &checks {
        out!("{check}");
    }
    let failed = checks.iter().filter(|c| c.outcome == wiretrace::selftest::Outcome::Fail).count();
    if failed > 0 {
        bail!("selftest: {failed} of {} checks failed", checks.len());
    }
    out!("selftest: all {} checks passed", checks.len());
    Ok(())
}
