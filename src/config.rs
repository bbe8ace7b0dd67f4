//! The service's configuration: one TOML file (`/etc/wiretrace/wiretrace.toml` on the box).
//!
//! `config/wiretrace.toml` in the repository is the documented schema. Unknown keys are
//! rejected, so a misspelt key is an error rather than a silently ignored setting, and every
//! error names the file, the line and column, and the key.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::capture::replay::ReplaySource;
use crate::capture::sequence::{SequenceError, FPS_RANGE};
use crate::capture::synthetic::{Difficulty, SynthConfig, SynthError, MAX_FRAMES, MAX_SIZE_PX, MIN_SIZE_PX};
use crate::capture::synthetic_source::SyntheticSource;
use crate::capture::v4l2::{Alignment, PixelFormat, V4l2Error, V4l2Options, Y16Scale};
use crate::capture::{self, FrameSource};
use crate::pipeline::realtime::ThreadPlacement;
use crate::pipeline::runner::Pacing;
use crate::pipeline::{recursive_filter_in_effect, MAX_SIDE_PX};
use crate::vision::bands::MAX_RIDGE_WORKERS;
use crate::vision::field::FieldParams;
use crate::vision::recursive::RecursiveFilter;
use crate::vision::tiles::Search;

/// Where the service looks for its configuration on the box.
pub const DEFAULT_PATH: &str = "/etc/wiretrace/wiretrace.toml";

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown or missing key, or a value is out of range.
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_ref().map_or(String::new(), |k| format!("{k}: ")))]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// Dotted path of the key (`sinks.serial[0].baud`), when the error is at one.
        key: Option<String>,
        /// Line, counting from 1.
        line: usize,
        /// Column, counting from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// A validated configuration: everything the service needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// Where frames come from.
    pub source: SourceConfig,
    /// What finds the wire.
    pub engine: EngineConfig,
    /// Deadline, heartbeats, confidence, background suppression.
    pub pipeline: PipelineSettings,
    /// Where centerlines go.
    pub sinks: SinkConfig,
    /// Where and how the threads run (`[realtime]`).
    pub realtime: RealtimeConfig,
    /// When the service stops feeding the systemd watchdog.
    pub watchdog: WatchdogConfig,
    /// Optional GPIO lines.
    pub gpio: GpioConfig,
}

/// Where and how the service's threads run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeConfig {
    /// CPU pinning and real-time priority of the capture and processing threads.
    pub capture_thread: ThreadPlacement,
    /// See `capture_thread`.
    pub processing_thread: ThreadPlacement,
    /// One more thread for the ridge stage per entry, on a band of the frame each, pinned as
    /// it says, at the processing thread's priority (which waits for them).
    pub ridge_workers: Vec<ThreadPlacement>,
    /// The processing thread spins between frames instead of sleeping
    /// ([`RunOptions::spin_wait`](crate::pipeline::runner::RunOptions::spin_wait)).
    pub spin_wait: bool,
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// A V4L2 capture device (the frame grabber).
    V4l2(V4l2Config),
    /// A recorded sequence directory.
    Replay(ReplayConfig),
    /// Synthetic fluoroscopy rendered as it is needed (bench and demo boxes).
    Synthetic(SynthConfig),
}

impl SourceConfig {
    /// The `source.kind` value that selects this source.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::V4l2(_) => "v4l2",
            SourceConfig::Replay(_) => "replay",
            SourceConfig::Synthetic(_) => "synthetic",
        }
    }
}

/// The frame grabber.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Config {
    /// Device node, e.g. `/dev/wiretrace-camera` (the board's udev rule makes that name).
    pub device: PathBuf,
    /// Pixel format asked of the driver.
    pub pixel_format: PixelFormat,
    /// Frame width (px).
    pub width: u32,
    /// Frame height (px).
    pub height: u32,
    /// Frames per second asked of the driver.
    pub fps: f32,
    /// Wait between attempts to reopen a device that went away.
    pub reconnect_interval: Duration,
    /// How Y16 samples become detector counts (used only with `pixel_format = "Y16"`).
    pub y16: Y16Scale,
}

/// A recorded sequence played as the source.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Sequence directory (`frames/NNNNNN.pgm`, optional `meta.json`).
    pub dir: PathBuf,
    /// Like a camera (at the sequence's fps, latest frame wins) or every frame as fast as
    /// possible, without a deadline.
    pub pacing: Pacing,
}

/// What finds the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The detector.
    pub kind: EngineKind,
    /// Where it runs.
    pub backend: Backend,
    /// The learned engine's model manifest.
    pub manifest: PathBuf,
    /// Run the classical path, flagged degraded, when the model cannot be used.
    pub allow_degraded: bool,
}

/// Where the package installs the model's manifest.
pub const DEFAULT_MANIFEST: &str = "/usr/share/wiretrace/engines/wirenet.json";

/// The model a command uses when none is named: a checkout's (`engines/wirenet.json` under
/// the working directory, as with `cargo run`), else the package's.
pub fn default_manifest() -> PathBuf {
    let checkout = PathBuf::from("engines/wirenet.json");
    if checkout.exists() {
        checkout
    } else {
        PathBuf::from(DEFAULT_MANIFEST)
    }
}

/// Detectors this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The segmentation network (engines/) on the region around the wire, then thinning and
    /// centerline: the default.
    Learned,
    /// Multi-scale ridge filter, thinning and centerline: no model file.
    Classical,
}

/// Where the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The reference CPU implementation.
    #[default]
    Cpu,
    /// CUDA kernels on the GPU (the Jetson's) for the ridge or feature stage and thinning;
    /// the CPU runs them where no GPU can be used, and says why.
    Cuda,
}

impl Backend {
    /// The GPU this backend runs on: `None` for the CPU, and for CUDA where no GPU can be
    /// used, the log saying why (the CPU then runs every stage, and heartbeats say so).
    pub fn open_gpu(self) -> Option<std::sync::Arc<crate::gpu::Gpu>> {
        match self {
            Backend::Cpu => None,
            Backend::Cuda => match crate::gpu::Gpu::open(crate::gpu::default_cache_dir().as_deref()) {
                Ok(gpu) => Some(gpu),
                Err(e) => {
                    tracing::warn!("engine.backend = \"cuda\": {e}; the CPU runs every stage");
                    None
                }
            },
        }
    }
}

/// Pipeline settings of the service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineSettings {
    /// Budget from capture to hand-off; `None` with fast replay pacing, where no deadline
    /// applies.
    pub deadline: Option<Duration>,
    /// Interval between heartbeats.
    pub heartbeat_period: Duration,
    /// Confidence below which a centerline is flagged low-confidence.
    pub low_confidence: f32,
    /// Running background subtraction, time constant in frames; off when `None`.
    pub subtract_background_frames: Option<f32>,
    /// Recursive temporal filtering, the newest frame's weight (1: off); the engine's default
    /// when `None` ([`recursive_filter_in_effect`]).
    pub recursive_filter_weight: Option<f32>,
    /// Share of full scale below which the frame is behind the collimator's shutters
    /// ([`FieldParams::shutter_below`](crate::vision::field::FieldParams::shutter_below)).
    pub shutter_below: f32,
    /// How either engine looks beyond the tracked wire's tiles, and for a wire while none is
    /// tracked.
    pub ridge_search: Search,
    /// The classical path looks beyond its tiles after each frame's answer (the default), or
    /// within the frame
    /// ([`Pipeline::look_between_frames`](crate::pipeline::Pipeline::look_between_frames)).
    pub look_between_frames: bool,
}

/// Where centerlines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// UDP targets, `host:port`.
    pub udp: Vec<String>,
    /// Serial lines.
    pub serial: Vec<SerialConfig>,
}

/// One serial line to the robot controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Device, e.g. `/dev/wiretrace-robot`.
    pub path: String,
    /// Baud rate.
    pub baud: u32,
}

/// When the service stops feeding the systemd watchdog (its interval is `WatchdogSec=` in the
/// unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// How long the capture thread may wait inside the source for one frame before the service
    /// counts it as hung. A live source returns an error when no frame comes within its own
    /// timeout, which must be shorter than this (at least [`MIN_V4L2_CAPTURE_STALL_MS`] for V4L2).
    pub capture_stall: Duration,
}

/// Optional GPIO lines of the board.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpioConfig {
    /// Status LED: steady while running, blinking while degraded, off when stopped.
    pub status_led: Option<GpioLine>,
    /// The fluoroscope's exposure signal: when set, only frames taken while it is active are
    /// processed, and the service refuses to start without it.
    pub frame_trigger: Option<GpioLine>,
}

/// One line of a GPIO chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioLine {
    /// Character device of the chip, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// Line offset on that chip.
    pub line: u32,
    /// True when the line is active (LED lit, X-ray on) at low level.
    pub active_low: bool,
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<ServiceConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Validates configuration text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<ServiceConfig, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().unwrap_or(0..0);
        invalid(text, path, key_at(text, &at), at, e.message().trim_end().to_string())
    })?;
    raw.validate().map_err(|Bad { key, span, message }| invalid(text, path, Some(key), span, message))
}

fn invalid(text: &str, path: &Path, key: Option<String>, span: Range<usize>, message: String) -> ConfigError {
    let (line, column) = line_column(text, span.start);
    ConfigError::Invalid { path: path.to_path_buf(), key, line, column, message }
}

/// Line and column (from 1, in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted path of the key whose key or value most narrowly covers `span`: the toml
/// crate's errors carry a span but not always the key (a type error says only what it
/// expected). Every node is visited, since a table's span covers its header, not its body.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    fn covers(outer: &Range<usize>, at: usize) -> bool {
        outer.start <= at && at < outer.end.max(outer.start + 1)
    }
    /// The narrowest covering node so far: its span length and its path.
    type Best = Option<(usize, String)>;
    fn consider(span: Range<usize>, at: usize, path: &str, best: &mut Best) {
        if covers(&span, at) && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
            *best = Some((span.len(), path.to_string()));
        }
    }
    fn walk(value: &DeValue<'_>, at: usize, path: &str, best: &mut Best) {
        match value {
            DeValue::Table(table) => {
                for (key, value) in table.iter() {
                    let here =
                        if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
                    consider(key.span(), at, &here, best);
                    consider(value.span(), at, &here, best);
                    walk(value.get_ref(), at, &here, best);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    consider(item.span(), at, &here, best);
                    walk(item.get_ref(), at, &here, best);
                }
            }
            _ => {}
        }
    }
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    walk(&DeValue::Table(root.into_inner()), span.start, "", &mut best);
    best.map(|(_, path)| path)
}

/// A value that parses but cannot be used.
struct Bad {
    key: String,
    span: Range<usize>,
    message: String,
}

fn bad(key: impl Into<String>, span: Range<usize>, message: impl Into<String>) -> Bad {
    Bad { key: key.into(), span, message: message.into() }
}

/// An optional setting's value where it passes `valid`; where it does not, an error naming
/// `key` at the value's place, the value, and `requirement`.
fn checked(
    value: Option<Spanned<f32>>,
    key: &str,
    valid: impl Fn(f32) -> bool,
    requirement: &str,
) -> Result<Option<f32>, Bad> {
    match value {
        Some(v) if !valid(*v.get_ref()) => Err(bad(key, v.span(), format!("{}: {requirement}", v.get_ref()))),
        other => Ok(other.map(Spanned::into_inner)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    source: RawSource,
    engine: Option<RawEngine>,
    #[serde(default)]
    pipeline: RawPipeline,
    sinks: Spanned<RawSinks>,
    #[serde(default)]
    realtime: RawRealtime,
    #[serde(default)]
    watchdog: RawWatchdog,
    #[serde(default)]
    gpio: RawGpio,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    V4l2,
    Replay,
    Synthetic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Spanned<SourceKind>,
    v4l2: Option<RawV4l2>,
    replay: Option<RawReplay>,
    synthetic: Option<RawSynthetic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV4l2 {
    device: Spanned<PathBuf>,
    pixel_format: PixelFormat,
    width: Spanned<u32>,
    height: Spanned<u32>,
    fps: Spanned<f32>,
    #[serde(default = "default_reconnect_ms")]
    reconnect_interval_ms: Spanned<u64>,
    #[serde(default = "default_y16_bits")]
    y16_bits: Spanned<u8>,
    #[serde(default)]
    y16_alignment: Alignment,
}

fn default_y16_bits() -> Spanned<u8> {
    Spanned::new(0..0, 16)
}

fn default_reconnect_ms() -> Spanned<u64> {
    Spanned::new(0..0, 1000)
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum RawPacing {
    #[default]
    Camera,
    Fast,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    dir: Spanned<PathBuf>,
    #[serde(default)]
    pacing: RawPacing,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawDifficulty {
    Easy,
    Hard,
    Extreme,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynthetic {
    #[serde(default)]
    seed: u64,
    size: Spanned<usize>,
    frames: Spanned<u32>,
    fps: Spanned<f32>,
    difficulty: Option<RawDifficulty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    #[serde(default = "default_engine_kind")]
    kind: EngineKind,
    #[serde(default)]
    backend: Backend,
    manifest: Option<PathBuf>,
    #[serde(default)]
    allow_degraded: bool,
}

fn default_engine_kind() -> EngineKind {
    EngineKind::Learned
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default = "default_deadline_ms")]
    deadline_ms: Spanned<u64>,
    #[serde(default = "default_heartbeat_ms")]
    heartbeat_ms: Spanned<u64>,
    #[serde(default = "default_low_confidence")]
    low_confidence: Spanned<f32>,
    subtract_background_frames: Option<Spanned<f32>>,
    recursive_filter_weight: Option<Spanned<f32>>,
    shutter_below: Option<Spanned<f32>>,
    #[serde(default)]
    ridge_search: Search,
    #[serde(default = "default_look_between_frames")]
    look_between_frames: bool,
}

fn default_look_between_frames() -> bool {
    crate::pipeline::PipelineConfig::default().look_between_frames
}

fn default_deadline_ms() -> Spanned<u64> {
    Spanned::new(0..0, 33)
}

fn default_heartbeat_ms() -> Spanned<u64> {
    Spanned::new(0..0, 1000)
}

fn default_low_confidence() -> Spanned<f32> {
    Spanned::new(0..0, 0.5)
}

impl Default for RawPipeline {
    fn default() -> Self {
        RawPipeline {
            deadline_ms: default_deadline_ms(),
            heartbeat_ms: default_heartbeat_ms(),
            low_confidence: default_low_confidence(),
            subtract_background_frames: None,
            recursive_filter_weight: None,
            shutter_below: None,
            ridge_search: Search::default(),
            look_between_frames: default_look_between_frames(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSinks {
    #[serde(default)]
    udp: Vec<Spanned<String>>,
    #[serde(default)]
    serial: Vec<RawSerial>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSerial {
    path: Spanned<String>,
    baud: Spanned<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRealtime {
    capture_cpu: Option<usize>,
    processing_cpu: Option<usize>,
    fifo_priority: Option<Spanned<u8>>,
    ridge_cpus: Option<Spanned<Vec<usize>>>,
    spin_wait: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatchdog {
    #[serde(default = "default_capture_stall_ms")]
    capture_stall_ms: Spanned<u64>,
}

fn default_capture_stall_ms() -> Spanned<u64> {
    Spanned::new(0..0, 3000)
}

/// Least `watchdog.capture_stall_ms` with a V4L2 source: a healthy `next_frame` may stay in the
/// source for two frame timeouts (0.5 s each at most) and a reopen of the device, and that
/// must not count as a hang.
pub const MIN_V4L2_CAPTURE_STALL_MS: u64 = 2500;

impl Default for RawWatchdog {
    fn default() -> Self {
        RawWatchdog { capture_stall_ms: default_capture_stall_ms() }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGpio {
    status_led: Option<RawGpioLine>,
    frame_trigger: Option<RawGpioLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpioLine {
    chip: Spanned<PathBuf>,
    line: Spanned<u32>,
    #[serde(default)]
    active_low: bool,
}

/// Highest `realtime.fifo_priority`: the capture thread runs one above it, and 99 is left to
/// the kernel's own real-time threads.
pub const MAX_FIFO_PRIORITY: u8 = 98;

impl RawConfig {
    fn validate(self) -> Result<ServiceConfig, Bad> {
        let source = self.source.validate()?;
        let fast = matches!(&source, SourceConfig::Replay(r) if r.pacing == Pacing::Fast);
        let engine = self.engine.map_or_else(
            || EngineConfig {
                kind: EngineKind::Learned,
                backend: Backend::Cpu,
                manifest: PathBuf::from(DEFAULT_MANIFEST),
                allow_degraded: false,
            },
            |e| EngineConfig {
                kind: e.kind,
                backend: e.backend,
                manifest: e.manifest.unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST)),
                allow_degraded: e.allow_degraded,
            },
        );
        let pipeline = self.pipeline.validate(fast)?;
        let sinks = validate_sinks(self.sinks)?;
        let realtime = self.realtime.validate()?;
        let capture_stall_ms = self.watchdog.capture_stall_ms;
        if *capture_stall_ms.get_ref() == 0 {
            return Err(bad("watchdog.capture_stall_ms", capture_stall_ms.span(), "must be at least 1 ms"));
        }
        if matches!(source, SourceConfig::V4l2(_)) && *capture_stall_ms.get_ref() < MIN_V4L2_CAPTURE_STALL_MS {
            return Err(bad(
                "watchdog.capture_stall_ms",
                capture_stall_ms.span(),
                format!(
                    "{} ms is below {MIN_V4L2_CAPTURE_STALL_MS} ms for source.kind = \"v4l2\": a healthy \
                     camera may wait up to two frame timeouts and a reopen for one frame, which would \
                     count as a hang",
                    capture_stall_ms.get_ref()
                ),
            ));
        }
        let watchdog = WatchdogConfig { capture_stall: Duration::from_millis(*capture_stall_ms.get_ref()) };
        let gpio = self.gpio.validate()?;
        Ok(ServiceConfig { source, engine, pipeline, sinks, realtime, watchdog, gpio })
    }
}

impl RawSource {
    fn validate(self) -> Result<SourceConfig, Bad> {
        let kind = *self.kind.get_ref();
        let missing = |table: &str| {
            bad("source.kind", self.kind.span(), format!("the chosen source needs its settings in [source.{table}]"))
        };
        match kind {
            SourceKind::V4l2 => self.v4l2.ok_or_else(|| missing("v4l2"))?.validate().map(SourceConfig::V4l2),
            SourceKind::Replay => {
                let replay = self.replay.ok_or_else(|| missing("replay"))?;
                if replay.dir.get_ref().as_os_str().is_empty() {
                    return Err(bad("source.replay.dir", replay.dir.span(), "must name a sequence directory"));
                }
                let pacing = match replay.pacing {
                    RawPacing::Camera => Pacing::Camera,
                    RawPacing::Fast => Pacing::Fast,
                };
                Ok(SourceConfig::Replay(ReplayConfig { dir: replay.dir.into_inner(), pacing }))
            }
            SourceKind::Synthetic => {
                self.synthetic.ok_or_else(|| missing("synthetic"))?.validate().map(SourceConfig::Synthetic)
            }
        }
    }
}

fn positive_fps(key: &str, fps: &Spanned<f32>) -> Result<f32, Bad> {
    let value = *fps.get_ref();
    if FPS_RANGE.contains(&value) {
        Ok(value)
    } else {
        let (low, high) = (FPS_RANGE.start(), FPS_RANGE.end());
        Err(bad(key, fps.span(), format!("{value} is not a frame rate ({low} to {high})")))
    }
}

impl RawV4l2 {
    fn validate(self) -> Result<V4l2Config, Bad> {
        if self.device.get_ref().as_os_str().is_empty() {
            return Err(bad("source.v4l2.device", self.device.span(), "must name a device, e.g. /dev/video0"));
        }
        // The V4L2 crate turns the path into a C string and panics on a NUL byte.
        if self.device.get_ref().as_os_str().as_encoded_bytes().contains(&0) {
            return Err(bad("source.v4l2.device", self.device.span(), "contains a NUL character"));
        }
        for (key, side) in [("source.v4l2.width", &self.width), ("source.v4l2.height", &self.height)] {
            let px = *side.get_ref() as usize;
            if !(1..=MAX_SIDE_PX).contains(&px) {
                return Err(bad(key, side.span(), format!("{px} px is outside 1..={MAX_SIDE_PX}")));
            }
        }
        let fps = positive_fps("source.v4l2.fps", &self.fps)?;
        let reconnect = *self.reconnect_interval_ms.get_ref();
        if reconnect == 0 {
            return Err(bad(
                "source.v4l2.reconnect_interval_ms",
                self.reconnect_interval_ms.span(),
                "must be at least 1 ms",
            ));
        }
        let bits = *self.y16_bits.get_ref();
        if !(1..=16).contains(&bits) {
            return Err(bad("source.v4l2.y16_bits", self.y16_bits.span(), format!("{bits} is outside 1..=16")));
        }
        Ok(V4l2Config {
            device: self.device.into_inner(),
            pixel_format: self.pixel_format,
            width: *self.width.get_ref(),
            height: *self.height.get_ref(),
            fps,
            reconnect_interval: Duration::from_millis(reconnect),
            y16: Y16Scale { bits, alignment: self.y16_alignment },
        })
    }
}

impl RawSynthetic {
    fn validate(self) -> Result<SynthConfig, Bad> {
        let size = *self.size.get_ref();
        if !(MIN_SIZE_PX..=MAX_SIZE_PX).contains(&size) {
            return Err(bad(
                "source.synthetic.size",
                self.size.span(),
                format!("{size} px is outside {MIN_SIZE_PX}..={MAX_SIZE_PX}"),
            ));
        }
        let frames = *self.frames.get_ref();
        if !(1..=MAX_FRAMES).contains(&frames) {
            return Err(bad(
                "source.synthetic.frames",
                self.frames.span(),
                format!("{frames} is outside 1..={MAX_FRAMES}"),
            ));
        }
        let difficulty = match self.difficulty.unwrap_or(RawDifficulty::Easy) {
            RawDifficulty::Easy => Difficulty::Easy,
            RawDifficulty::Hard => Difficulty::Hard,
            RawDifficulty::Extreme => Difficulty::Extreme,
        };
        let fps = positive_fps("source.synthetic.fps", &self.fps)?;
        Ok(SynthConfig { seed: self.seed, size_px: size, frames, fps, difficulty, ..SynthConfig::default() })
    }
}

impl RawPipeline {
    fn validate(self, fast: bool) -> Result<PipelineSettings, Bad> {
        let deadline_ms = *self.deadline_ms.get_ref();
        if deadline_ms == 0 {
            return Err(bad("pipeline.deadline_ms", self.deadline_ms.span(), "must be at least 1 ms"));
        }
        let heartbeat_ms = *self.heartbeat_ms.get_ref();
        if !(10..=60_000).contains(&heartbeat_ms) {
            return Err(bad(
                "pipeline.heartbeat_ms",
                self.heartbeat_ms.span(),
                format!("{heartbeat_ms} is outside 10..=60000"),
            ));
        }
        let low = *self.low_confidence.get_ref();
        if !(0.0..=1.0).contains(&low) {
            return Err(bad("pipeline.low_confidence", self.low_confidence.span(), format!("{low} is outside 0..=1")));
        }
        let background = checked(
            self.subtract_background_frames,
            "pipeline.subtract_background_frames",
            |frames| frames.is_finite() && frames >= 1.0,
            "must be at least 1 frame",
        )?;
        let recursive = checked(
            self.recursive_filter_weight,
            "pipeline.recursive_filter_weight",
            RecursiveFilter::is_weight,
            RecursiveFilter::WEIGHT_RANGE,
        )?;
        let shutter_below =
            checked(self.shutter_below, "pipeline.shutter_below", FieldParams::is_share, FieldParams::SHARE_RANGE)?
                .unwrap_or(FieldParams::default().shutter_below);
        Ok(PipelineSettings {
            deadline: (!fast).then(|| Duration::from_millis(deadline_ms)),
            heartbeat_period: Duration::from_millis(heartbeat_ms),
            low_confidence: low,
            subtract_background_frames: background,
            recursive_filter_weight: recursive,
            shutter_below,
            ridge_search: self.ridge_search,
            look_between_frames: self.look_between_frames,
        })
    }
}

/// True when `target` is an IP socket address or `host:port` with a plausible host name, so a
/// typo is caught by `config check`; names are resolved when the service starts.
fn udp_target_parses(target: &str) -> bool {
    if target.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = target.rsplit_once(':') else { return false };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && !label.starts_with('-') && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

fn validate_sinks(sinks: Spanned<RawSinks>) -> Result<SinkConfig, Bad> {
    let span = sinks.span();
    let sinks = sinks.into_inner();
    if sinks.udp.is_empty() && sinks.serial.is_empty() {
        return Err(bad("sinks", span, "no sink: give sinks.udp or [[sinks.serial]]"));
    }
    for (i, target) in sinks.udp.iter().enumerate() {
        if !udp_target_parses(target.get_ref()) {
            return Err(bad(
                format!("sinks.udp[{i}]"),
                target.span(),
                format!("\"{}\" is not an address: write IP:PORT or HOST:PORT", target.get_ref()),
            ));
        }
    }
    let mut serial = Vec::new();
    for (i, s) in sinks.serial.into_iter().enumerate() {
        if s.path.get_ref().is_empty() {
            return Err(bad(format!("sinks.serial[{i}].path"), s.path.span(), "must name a device"));
        }
        if *s.baud.get_ref() == 0 {
            return Err(bad(format!("sinks.serial[{i}].baud"), s.baud.span(), "must be more than 0"));
        }
        serial.push(SerialConfig { path: s.path.into_inner(), baud: s.baud.into_inner() });
    }
    Ok(SinkConfig { udp: sinks.udp.into_iter().map(Spanned::into_inner).collect(), serial })
}

impl RawRealtime {
    fn validate(self) -> Result<RealtimeConfig, Bad> {
        let priority = match self.fifo_priority {
            Some(p) if !(1..=MAX_FIFO_PRIORITY).contains(p.get_ref()) => {
                return Err(bad(
                    "realtime.fifo_priority",
                    p.span(),
                    format!("{} is outside 1..={MAX_FIFO_PRIORITY}", p.get_ref()),
                ));
            }
            other => other.map(Spanned::into_inner),
        };
        let spin_wait = match self.spin_wait {
            Some(spin) if *spin.get_ref() && priority.is_some() => {
                return Err(bad(
                    "realtime.spin_wait",
                    spin.span(),
                    "a thread spinning under SCHED_FIFO (realtime.fifo_priority) starves every other task on \
                     its CPU; set one of them",
                ));
            }
            spin => spin.is_some_and(|s| s.into_inner()),
        };
        let ridge_cpus = match self.ridge_cpus {
            Some(cpus) if cpus.get_ref().len() > MAX_RIDGE_WORKERS => {
                return Err(bad(
                    "realtime.ridge_cpus",
                    cpus.span(),
                    format!("names {} CPUs; at most {MAX_RIDGE_WORKERS} ridge threads", cpus.get_ref().len()),
                ));
            }
            cpus => cpus.map(Spanned::into_inner).unwrap_or_default(),
        };
        Ok(RealtimeConfig {
            capture_thread: ThreadPlacement { cpu: self.capture_cpu, fifo_priority: priority.map(|p| p + 1) },
            processing_thread: ThreadPlacement { cpu: self.processing_cpu, fifo_priority: priority },
            ridge_workers: ridge_cpus
                .into_iter()
                .map(|cpu| ThreadPlacement { cpu: Some(cpu), fifo_priority: priority })
                .collect(),
            spin_wait,
        })
    }
}

impl RawGpioLine {
    fn validate(self, key: &str) -> Result<GpioLine, Bad> {
        if self.chip.get_ref().as_os_str().is_empty() {
            return Err(bad(format!("{key}.chip"), self.chip.span(), "must name a GPIO chip, e.g. /dev/gpiochip0"));
        }
        Ok(GpioLine { chip: self.chip.into_inner(), line: self.line.into_inner(), active_low: self.active_low })
    }
}

impl RawGpio {
    fn validate(self) -> Result<GpioConfig, Bad> {
        let trigger_span = self.frame_trigger.as_ref().map(|t| t.line.span());
        let status_led = self.status_led.map(|l| l.validate("gpio.status_led")).transpose()?;
        let frame_trigger = self.frame_trigger.map(|l| l.validate("gpio.frame_trigger")).transpose()?;
        // The kernel lends a line to one request: the second would fail at start.
        if let (Some(led), Some(trigger), Some(span)) = (&status_led, &frame_trigger, trigger_span) {
            if led.chip == trigger.chip && led.line == trigger.line {
                return Err(bad(
                    "gpio.frame_trigger.line",
                    span,
                    "is the status LED's line; the trigger needs its own",
                ));
            }
        }
        Ok(GpioConfig { status_led, frame_trigger })
    }
}

/// Why the configured source cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The frame grabber cannot be opened, or this build has no V4L2 capture.
    #[error("source.kind = \"v4l2\"")]
    V4l2(#[source] V4l2Error),
    /// The sequence directory cannot be replayed.
    #[error("opening sequence {}", dir.display())]
    Replay {
        /// The sequence directory.
        dir: PathBuf,
        /// Why.
        source: SequenceError,
    },
    /// The synthetic settings are out of the generator's range.
    #[error("source.synthetic")]
    Synthetic(#[from] SynthError),
}

/// The frame grabber, through the V4L2 capture (a build without the `v4l2` feature refuses it,
/// saying how to get it).
fn open_v4l2(v4l2: &V4l2Config) -> Result<Box<dyn FrameSource>, SourceError> {
    let mut options = V4l2Options::new(&v4l2.device, v4l2.pixel_format, v4l2.width, v4l2.height, v4l2.fps);
    options.y16 = v4l2.y16;
    options.retry.first = v4l2.reconnect_interval;
    options.retry.max = options.retry.max.max(v4l2.reconnect_interval);
    capture::v4l2::open(&options).map_err(SourceError::V4l2)
}

/// Opens the configured source; also says how the runner paces it.
pub fn open_source(source: &SourceConfig) -> Result<(Box<dyn FrameSource>, Pacing), SourceError> {
    Ok(match source {
        SourceConfig::V4l2(v4l2) => (open_v4l2(v4l2)?, Pacing::Camera),
        SourceConfig::Replay(r) => {
            let replay =
                ReplaySource::open(&r.dir).map_err(|source| SourceError::Replay { dir: r.dir.clone(), source })?;
            (Box::new(replay), r.pacing)
        }
        SourceConfig::Synthetic(cfg) => (Box::new(SyntheticSource::new(cfg.clone())?), Pacing::Camera),
    })
}

/// Resolves a UDP target (`IP:PORT` or `HOST:PORT`) to its first address.
pub fn resolve_udp(target: &str) -> std::io::Result<SocketAddr> {
    target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{target} resolves to no address")))
}

impl ServiceConfig {
    /// A summary that fits one screen: what the service would run.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.push(match &self.source {
            SourceConfig::V4l2(v) => format!(
                "source     v4l2 {} {}{} {}x{} at {} fps, reconnect every {} ms",
                v.device.display(),
                v.pixel_format.name(),
                if v.pixel_format == PixelFormat::Y16 {
                    let at = if v.y16.alignment == Alignment::Msb { "top" } else { "bottom" };
                    format!(" ({} bits at the {at} of the word)", v.y16.bits)
                } else {
                    String::new()
                },
                v.width,
                v.height,
                v.fps,
                v.reconnect_interval.as_millis()
            ),
            SourceConfig::Replay(r) => format!(
                "source     replay {} ({})",
                r.dir.display(),
                if r.pacing == Pacing::Fast { "fast: every frame, no deadline" } else { "paced like a camera" }
            ),
            SourceConfig::Synthetic(s) => format!(
                "source     synthetic {} frames of {}x{} at {} fps, {}, seed {}",
                s.frames,
                s.size_px,
                s.size_px,
                s.fps,
                s.difficulty.name(),
                s.seed
            ),
        });
        let backend = match self.engine.backend {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        };
        let e = &self.engine;
        lines.push(match e.kind {
            EngineKind::Classical => format!("engine     classical on {backend}"),
            EngineKind::Learned => format!(
                "engine     learned on {backend}, model {}{}",
                e.manifest.display(),
                if e.allow_degraded { ", classical (degraded) if it cannot be used" } else { "" }
            ),
        });
        let p = &self.pipeline;
        let filter = |learned| {
            recursive_filter_in_effect(p.recursive_filter_weight, learned)
                .map_or("off".to_string(), |w| format!("newest frame weighted {w}"))
        };
        let learned = e.kind == EngineKind::Learned;
        let mut recursive = filter(learned);
        // The degraded pipeline is the classical one, with the classical path's default.
        if learned && e.allow_degraded && filter(false) != recursive {
            recursive = format!("{recursive} ({} if degraded to classical)", filter(false));
        }
        // Only the classical path's looks on the CPU wait (the degraded pipeline is the
        // classical one), and only where frames come at a camera's pace.
        let looks = match (learned && !e.allow_degraded, e.backend, p.look_between_frames) {
            (true, _, _) | (false, Backend::Cuda, _) => "",
            (false, Backend::Cpu, true) => ", classical path beyond its tiles between frames at a camera's pace",
            (false, Backend::Cpu, false) => ", classical path beyond its tiles within the frame",
        };
        lines.push(format!(
            "pipeline   deadline {}, heartbeat every {} ms, low confidence below {}, recursive filter {}, background {}, shutters below {:.2} % of full scale, search {}{}",
            p.deadline.map_or("none".to_string(), |d| format!("{} ms", d.as_millis())),
            p.heartbeat_period.as_millis(),
            p.low_confidence,
            recursive,
            p.subtract_background_frames.map_or("kept".to_string(), |f| format!("subtracted over {f} frames")),
            100.0 * p.shutter_below,
            match p.ridge_search {
                Search::Auto => "whole frame where it makes the deadline, else one square a frame",
                Search::Whole => "whole frame",
                Search::Squares => "one square a frame",
            },
            looks
        ));
        for target in &self.sinks.udp {
            lines.push(format!("sink       udp {target}"));
        }
        for s in &self.sinks.serial {
            lines.push(format!("sink       serial {} at {} baud", s.path, s.baud));
        }
        let thread = |t: &ThreadPlacement| {
            format!(
                "cpu {}, {}",
                t.cpu.map_or("any".to_string(), |c| c.to_string()),
                t.fifo_priority.map_or("normal scheduling".to_string(), |p| format!("SCHED_FIFO {p}"))
            )
        };
        let realtime = &self.realtime;
        lines.push(format!("capture    {}", thread(&realtime.capture_thread)));
        let waits = if realtime.spin_wait { ", spinning between frames" } else { "" };
        lines.push(format!("processing {}{waits}", thread(&realtime.processing_thread)));
        for worker in &realtime.ridge_workers {
            lines.push(format!("ridge band {}", thread(worker)));
        }
        lines.push(format!(
            "watchdog   fed while the processing loop runs and capture waits less than {} ms for a frame",
            self.watchdog.capture_stall.as_millis()
        ));
        let line = |l: &Option<GpioLine>| {
            l.as_ref().map_or("none".to_string(), |l| {
                format!("{} line {}{}", l.chip.display(), l.line, if l.active_low { " (active low)" } else { "" })
            })
        };
        lines.push(format!("gpio       status LED {}", line(&self.gpio.status_led)));
        lines.push(match &self.gpio.frame_trigger {
            Some(_) => {
                format!("gpio       frame trigger {}: frames only while it is active", line(&self.gpio.frame_trigger))
            }
            None => "gpio       frame trigger none: every frame is processed".to_string(),
        });
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[source]\nkind = \"synthetic\"\n\n[source.synthetic]\nsize = 128\nframes = 10\nfps = 15.0\n\n[sinks]\nudp = [\"127.0.0.1:7400\"]\n";

    /// A camera source, with its defaults.
    const V4L2: &str = "[source]\nkind = \"v4l2\"\n[source.v4l2]\ndevice = \"/dev/video0\"\npixel_format = \"GREY\"\nwidth = 640\nheight = 480\nfps = 30.0\n[sinks]\nudp = [\"127.0.0.1:7400\"]\n";

    #[test]
    fn a_camera_needs_a_capture_stall_longer_than_its_own_timeouts() {
        let (_, _, message) = error(&format!("{V4L2}\n[watchdog]\ncapture_stall_ms = 300\n"));
        assert!(message.contains("2500 ms") && message.contains("frame timeouts"), "{message}");
        let config = parse(&format!("{V4L2}\n[watchdog]\ncapture_stall_ms = 2500\n"), Path::new("box.toml"));
        assert_eq!(config.expect("valid").watchdog.capture_stall, Duration::from_millis(2500));
        assert_eq!(parse(V4L2, Path::new("box.toml")).expect("valid").watchdog.capture_stall.as_millis(), 3000);
        let replay = parse(&format!("{MINIMAL}\n[watchdog]\ncapture_stall_ms = 300\n"), Path::new("box.toml"));
        assert!(replay.is_ok(), "only a camera has frame timeouts: {replay:?}");
    }

    #[test]
    fn a_y16_detectors_bits_and_their_place_in_the_word_are_read_and_checked() {
        let y16 = V4L2.replace("\"GREY\"", "\"Y16\"\ny16_bits = 12\ny16_alignment = \"lsb\"");
        let SourceConfig::V4l2(v4l2) = parse(&y16, Path::new("box.toml")).expect("valid").source else {
            panic!("a camera source")
        };
        assert_eq!(v4l2.y16, Y16Scale { bits: 12, alignment: Alignment::Lsb });
        let (key, line, _) = error(&y16.replace("y16_bits = 12", "y16_bits = 17"));
        assert_eq!((key.as_deref(), line), (Some("source.v4l2.y16_bits"), 6));
        let (key, line, _) = error(&y16.replace("\"lsb\"", "\"middle\""));
        assert_eq!((key.as_deref(), line), (Some("source.v4l2.y16_alignment"), 7));
        let grey = parse(V4L2, Path::new("box.toml")).expect("valid");
        assert!(matches!(grey.source, SourceConfig::V4l2(v) if v.y16 == Y16Scale::default()), "16 bits at the top");
    }

    #[test]
    fn a_device_path_with_a_nul_character_is_refused_by_name() {
        let (key, line, message) = error(&V4L2.replace("/dev/video0", "/dev/vid\\u0000eo0"));
        assert_eq!(
            (key.as_deref(), line, message.as_str()),
            (Some("source.v4l2.device"), 4, "contains a NUL character")
        );
    }

    /// The key, line and message of the error `text` gives.
    fn error(text: &str) -> (Option<String>, usize, String) {
        match parse(text, Path::new("box.toml")) {
            Err(ConfigError::Invalid { key, line, message, .. }) => (key, line, message),
            other => panic!("expected an invalid configuration, got {other:?}"),
        }
    }

    #[test]
    fn the_shipped_config_is_valid_and_says_what_it_runs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wiretrace.toml");
        let config = load(&path).expect("config/wiretrace.toml is valid");
        let SourceConfig::V4l2(v4l2) = &config.source else { panic!("the box default is the grabber: {config:?}") };
        assert_eq!((v4l2.pixel_format, v4l2.width, v4l2.height), (PixelFormat::Grey, 1024, 1024));
        assert_eq!(config.pipeline.deadline, Some(Duration::from_millis(33)));
        assert_eq!(config.sinks.serial, vec![SerialConfig { path: "/dev/wiretrace-robot".into(), baud: 115_200 }]);
        assert_eq!(config.watchdog.capture_stall, Duration::from_millis(3000));
        let summary = config.summary().join("\n");
        assert!(summary.contains("v4l2 /dev/wiretrace-camera GREY 1024x1024 at 15 fps"), "{summary}");
        assert!(summary.contains("serial /dev/wiretrace-robot at 115200 baud"), "{summary}");
    }

    #[test]
    fn the_engine_table_names_the_model_and_whether_to_degrade() {
        let text =
            format!("{MINIMAL}\n[engine]\nkind = \"learned\"\nmanifest = \"/opt/m.json\"\nallow_degraded = true\n");
        let engine = parse(&text, Path::new("box.toml")).expect("valid").engine;
        assert_eq!(
            (engine.kind, engine.manifest, engine.allow_degraded),
            (EngineKind::Learned, "/opt/m.json".into(), true)
        );
        let summary = parse(&text, Path::new("box.toml")).expect("valid").summary().join("\n");
        assert!(
            summary.contains("recursive filter newest frame weighted 0.75 (off if degraded to classical)"),
            "the degraded pipeline runs without the learned engine's filter: {summary}"
        );
        let set = text.replace("[engine]", "[pipeline]\nrecursive_filter_weight = 0.5\n[engine]");
        let summary = parse(&set, Path::new("box.toml")).expect("valid").summary().join("\n");
        assert!(
            summary.contains("recursive filter newest frame weighted 0.5,"),
            "a weight set holds for both: {summary}"
        );
        let classical = format!("{MINIMAL}\n[engine]\nkind = \"classical\"\n");
        assert_eq!(parse(&classical, Path::new("box.toml")).expect("valid").engine.kind, EngineKind::Classical);
        let (key, line, _) = error(&format!("{MINIMAL}\n[engine]\nkind = \"neural\"\n"));
        assert_eq!((key.as_deref(), line), (Some("engine.kind"), 13));
    }

    #[test]
    fn optional_tables_take_their_defaults() {
        let config = parse(MINIMAL, Path::new("box.toml")).expect("valid");
        let learned = EngineConfig {
            kind: EngineKind::Learned,
            backend: Backend::Cpu,
            manifest: PathBuf::from(DEFAULT_MANIFEST),
            allow_degraded: false,
        };
        assert_eq!(config.engine, learned, "the learned engine, as the package installs it");
        assert_eq!(config.pipeline.heartbeat_period, Duration::from_secs(1));
        assert_eq!(config.pipeline.shutter_below, FieldParams::default().shutter_below, "a raw detector's black");
        let video = parse(&format!("{MINIMAL}\n[pipeline]\nshutter_below = 0.08\n"), Path::new("box.toml"));
        assert_eq!(video.expect("valid").pipeline.shutter_below, 0.08);
        assert_eq!(config.pipeline.ridge_search, Search::Auto);
        let squares = parse(&format!("{MINIMAL}\n[pipeline]\nridge_search = \"squares\"\n"), Path::new("box.toml"));
        assert_eq!(squares.expect("valid").pipeline.ridge_search, Search::Squares);
        assert!(config.pipeline.look_between_frames, "looks between frames unless set");
        let within = parse(&format!("{MINIMAL}\n[pipeline]\nlook_between_frames = false\n"), Path::new("box.toml"));
        assert!(!within.expect("valid").pipeline.look_between_frames);
        // The summary names where the classical path looks, and says nothing of it for the
        // learned engine, whose looks never wait.
        let summary = |text: &str| parse(text, Path::new("box.toml")).expect("valid").summary().join("\n");
        let classical = format!("{MINIMAL}\n[engine]\nkind = \"classical\"\n");
        assert!(summary(&classical).contains("classical path beyond its tiles between frames"));
        let set = classical.replace("[engine]", "[pipeline]\nlook_between_frames = false\n[engine]");
        assert!(summary(&set).contains("classical path beyond its tiles within the frame"));
        let learned = format!("{MINIMAL}\n[engine]\nkind = \"learned\"\nmanifest = \"/opt/m.json\"\n");
        assert!(!summary(&learned).contains("beyond its tiles"));
        let degraded = learned.replace("[engine]", "[engine]\nallow_degraded = true");
        assert!(summary(&degraded).contains("classical path beyond its tiles between frames"));
        let gpu = classical.replace("[engine]", "[engine]\nbackend = \"cuda\"");
        assert!(!summary(&gpu).contains("beyond its tiles"), "looks on the GPU never wait");
        assert_eq!(config.pipeline.recursive_filter_weight, None, "the engine's default unless set");
        let filtered = parse(&format!("{MINIMAL}\n[pipeline]\nrecursive_filter_weight = 0.5\n"), Path::new("box.toml"));
        assert_eq!(filtered.expect("valid").pipeline.recursive_filter_weight, Some(0.5));
        assert_eq!(config.realtime, RealtimeConfig::default());
        assert_eq!(config.gpio, GpioConfig::default());
    }

    #[test]
    fn the_processing_thread_spins_when_asked_and_not_under_sched_fifo() {
        let parsed = |extra: &str| parse(&format!("{MINIMAL}\n[realtime]\n{extra}"), Path::new("box.toml"));
        assert!(parsed("spin_wait = true\n").expect("valid").realtime.spin_wait);
        assert!(!parsed("spin_wait = false\nfifo_priority = 40\n").expect("valid").realtime.spin_wait);
        assert!(!parse(MINIMAL, Path::new("box.toml")).expect("valid").realtime.spin_wait, "off by default");
        assert!(parsed("spin_wait = true\nfifo_priority = 40\n").is_err());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("fps = 15.0\n", "fps = 15.0\nframerate = 30\n");
        let (key, line, message) = error(&text);
        assert_eq!((key.as_deref(), line), (Some("source.synthetic.framerate"), 8));
        assert!(message.contains("unknown field `framerate`"), "{message}");
        let (key, line, _) = error(&format!("{MINIMAL}\n[diagnostics]\nlisten = \"0.0.0.0:80\"\n"));
        assert_eq!((key.as_deref(), line), (Some("diagnostics"), 12));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_with_its_line() {
        let text = format!("{MINIMAL}\n[[sinks.serial]]\npath = \"/dev/ttyTHS0\"\nbaud = \"fast\"\n");
        let (key, line, message) = error(&text);
        assert_eq!((key.as_deref(), line), (Some("sinks.serial[0].baud"), 14));
        assert!(message.contains("expected u32"), "{message}");
    }

    #[test]
    fn values_out_of_range_are_named_with_their_lines() {
        let cases = [
            (format!("{MINIMAL}\n[[sinks.serial]]\npath = \"/dev/ttyTHS0\"\nbaud = 0\n"), "sinks.serial[0].baud", 14),
            (format!("{MINIMAL}\n[pipeline]\ndeadline_ms = 0\n"), "pipeline.deadline_ms", 13),
            (format!("{MINIMAL}\n[pipeline]\nshutter_below = 0.0\n"), "pipeline.shutter_below", 13),
            (format!("{MINIMAL}\n[pipeline]\nshutter_below = 1.5\n"), "pipeline.shutter_below", 13),
            (format!("{MINIMAL}\n[pipeline]\nridge_search = \"tiles\"\n"), "pipeline.ridge_search", 13),
            (format!("{MINIMAL}\n[pipeline]\nrecursive_filter_weight = 0.0\n"), "pipeline.recursive_filter_weight", 13),
            (format!("{MINIMAL}\n[pipeline]\nrecursive_filter_weight = 1.5\n"), "pipeline.recursive_filter_weight", 13),
            (MINIMAL.replace("127.0.0.1:7400", "127.0.0.1"), "sinks.udp[0]", 10),
            (MINIMAL.replace("127.0.0.1:7400", "robot controller:7400"), "sinks.udp[0]", 10),
            (MINIMAL.replace("size = 128", "size = 8"), "source.synthetic.size", 5),
            (MINIMAL.replace("fps = 15.0", "fps = nan"), "source.synthetic.fps", 7),
            (format!("{MINIMAL}\n[realtime]\nfifo_priority = 99\n"), "realtime.fifo_priority", 13),
            (format!("{MINIMAL}\n[realtime]\nridge_cpus = [{}]\n", ["1"; 64].join(", ")), "realtime.ridge_cpus", 13),
            (MINIMAL.replace("fps = 15.0", "fps = 1e-45"), "source.synthetic.fps", 7),
            (format!("{MINIMAL}\n[realtime]\nfifo_priority = 40\nspin_wait = true\n"), "realtime.spin_wait", 14),
            (format!("{MINIMAL}\n[watchdog]\ncapture_stall_ms = 0\n"), "watchdog.capture_stall_ms", 13),
            (format!("{V4L2}\n[watchdog]\ncapture_stall_ms = 2499\n"), "watchdog.capture_stall_ms", 13),
        ];
        for (text, want_key, want_line) in cases {
            let (key, line, message) = error(&text);
            assert_eq!((key.as_deref(), line), (Some(want_key), want_line), "{message}");
        }
    }

    #[test]
    fn an_unknown_pixel_format_lists_the_known_ones() {
        let text = "[source]\nkind = \"v4l2\"\n[source.v4l2]\ndevice = \"/dev/video0\"\npixel_format = \"RGB3\"\nwidth = 640\nheight = 480\nfps = 30.0\n[sinks]\nudp = [\"127.0.0.1:7400\"]\n";
        let (key, line, message) = error(text);
        assert_eq!((key.as_deref(), line), (Some("source.v4l2.pixel_format"), 5));
        assert!(message.contains("RGB3") && message.contains("GREY") && message.contains("YUYV"), "{message}");
    }

    #[test]
    fn the_chosen_source_needs_its_table_and_a_sink_is_required() {
        let (key, line, message) = error(&MINIMAL.replace("kind = \"synthetic\"", "kind = \"replay\""));
        assert_eq!((key.as_deref(), line), (Some("source.kind"), 2));
        assert!(message.contains("[source.replay]"), "{message}");
        let (key, _, message) = error(&MINIMAL.replace("udp = [\"127.0.0.1:7400\"]", ""));
        assert_eq!(key.as_deref(), Some("sinks"), "{message}");
        let (key, line, message) = error("[source\nkind = 1\n");
        assert_eq!(line, 1, "{key:?} {message}");
    }

    #[test]
    fn the_error_message_names_file_line_column_and_key() {
        let text = MINIMAL.replace("frames = 10", "frames = 0");
        let e = parse(&text, Path::new("/etc/wiretrace/wiretrace.toml")).expect_err("0 frames");
        assert_eq!(
            e.to_string(),
            "/etc/wiretrace/wiretrace.toml:6:10: source.synthetic.frames: 0 is outside 1..=1000000"
        );
    }

    const TRIGGER: &str = "\n[gpio.frame_trigger]\nchip = \"/dev/gpiochip1\"\nline = 7\nactive_low = true\n";

    #[test]
    fn the_frame_trigger_is_read_and_summarised() {
        let config = parse(&format!("{MINIMAL}{TRIGGER}"), Path::new("box.toml")).expect("valid");
        let line = GpioLine { chip: "/dev/gpiochip1".into(), line: 7, active_low: true };
        assert_eq!(config.gpio, GpioConfig { status_led: None, frame_trigger: Some(line) });
        let summary = config.summary().join("\n");
        assert!(
            summary.contains("frame trigger /dev/gpiochip1 line 7 (active low): frames only while it is active"),
            "{summary}"
        );
        let config = parse(MINIMAL, Path::new("box.toml")).expect("valid");
        assert!(config.summary().join("\n").contains("frame trigger none: every frame is processed"));
    }

    #[test]
    fn frame_trigger_mistakes_are_named_with_their_lines() {
        // MINIMAL has 10 lines; TRIGGER's table header is line 12.
        let cases = [
            (format!("{MINIMAL}{TRIGGER}mode = \"edge\"\n"), "gpio.frame_trigger.mode", 16, "unknown field `mode`"),
            (
                format!("{MINIMAL}{}", TRIGGER.replace("line = 7", "line = \"7\"")),
                "gpio.frame_trigger.line",
                14,
                "expected u32",
            ),
            (
                format!("{MINIMAL}{}", TRIGGER.replace("active_low = true", "active_low = 1")),
                "gpio.frame_trigger.active_low",
                15,
                "expected a boolean",
            ),
            (
                format!("{MINIMAL}{}", TRIGGER.replace("/dev/gpiochip1", "")),
                "gpio.frame_trigger.chip",
                13,
                "must name a GPIO chip",
            ),
            (
                format!("{MINIMAL}{TRIGGER}\n[gpio.status_led]\nchip = \"/dev/gpiochip1\"\nline = 7\n"),
                "gpio.frame_trigger.line",
                14,
                "is the status LED's line",
            ),
        ];
        for (text, want_key, want_line, want_message) in cases {
            let (key, line, message) = error(&text);
            assert_eq!((key.as_deref(), line), (Some(want_key), want_line), "{message}");
            assert!(message.contains(want_message), "{want_key}: {message}");
        }
    }

    #[test]
    fn fast_replay_has_no_deadline() {
        let text = MINIMAL.replace("kind = \"synthetic\"", "kind = \"replay\"")
            + "[source.replay]\ndir = \"/seq\"\npacing = \"fast\"\n";
        let config = parse(&text, Path::new("box.toml")).expect("valid");
        assert_eq!(config.source, SourceConfig::Replay(ReplayConfig { dir: "/seq".into(), pacing: Pacing::Fast }));
        assert_eq!(config.pipeline.deadline, None);
    }

    #[test]
    fn udp_targets_may_be_names_resolved_at_start() {
        assert!(udp_target_parses("[::1]:7400") && udp_target_parses("robot-1.lab:7400"));
        assert!(!udp_target_parses("robot:0") && !udp_target_parses(":7400") && !udp_target_parses("robot"));
        assert_eq!(resolve_udp("localhost:7400").expect("localhost resolves").port(), 7400);
    }
}
