//! `wiretrace selftest`: what the service needs, checked one by one on the box, one line each
//! with PASS, FAIL or INFO and, for a FAIL, the fix. Nothing is sent anywhere: a UDP target is
//! resolved and routed, not written to.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_hal::digital::InputPin;

use crate::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use crate::capture::{CaptureError, FrameSource};
use crate::config::{self, Backend, EngineKind, GpioLine, ServiceConfig, SourceConfig};
use crate::frame::Frame;
use crate::gpio;
use crate::gpu::ridge::GpuRidge;
use crate::gpu::thinning::GpuThinning;
use crate::gpu::{default_cache_dir, Gpu, GpuError};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::time::Micros;
use crate::transport::serial::open_port;
use crate::vision::ridge::{RidgeDetector, RidgeMap, RidgeParams};
use crate::vision::thinning::Thinning;
use crate::vision::Plane;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Works.
    Pass,
    /// The service cannot work like this.
    Fail,
    /// Worth knowing, not a fault.
    Info,
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`config`, `engine`, `camera`, `sink`, ...).
    pub name: &'static str,
    /// Its outcome.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about a FAIL.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Check { name, outcome: Outcome::Pass, detail: detail.into(), fix: None }
    }

    fn info(name: &'static str, detail: impl Into<String>) -> Self {
        Check { name, outcome: Outcome::Info, detail: detail.into(), fix: None }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check { name, outcome: Outcome::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match self.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Info => "INFO",
        };
        write!(f, "{outcome}  {:<8} {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, " -> fix: {fix}")?;
        }
        Ok(())
    }
}

/// An error and its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// How long the camera (or other source) may take to deliver its first frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// What a device check says while the service holds the device (the camera, the serial port and
/// the GPIO lines are opened exclusively).
const HELD: &str = "skipped: the service is running and holds the device; stop it to check";

/// True when systemd says the wiretrace service is running; false where there is no systemctl.
fn service_running() -> bool {
    Command::new("systemctl")
        .args(["is-active", "--quiet", "wiretrace"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs every check for the configuration at `path`. Checks that need a valid configuration
/// are left out when it is not; the config check's FAIL says why. While the service runs, the
/// devices it holds are not opened and their checks say so.
pub fn run_checks(path: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = match config::load(path) {
        Ok(c) => {
            checks.push(Check::pass("config", format!("{}: valid, source {}", path.display(), c.source.kind())));
            Some(c)
        }
        Err(e) => {
            let fix = match &e {
                config::ConfigError::Read { .. } => {
                    "write it (the package's example config documents every key) or give --config FILE".to_string()
                }
                config::ConfigError::Invalid { .. } => {
                    format!("correct that line, then `wiretrace config check {}`", path.display())
                }
            };
            checks.push(Check::fail("config", chain(&e), fix));
            None
        }
    };
    checks.push(engine(config.as_ref()));
    checks.push(gpu(config.as_ref()));
    if let Some(c) = &config {
        let held = service_running();
        checks.push(match &c.source {
            SourceConfig::V4l2(_) if held => Check::info("camera", HELD),
            other => source(other),
        });
        checks.extend(sinks(c, held));
        if c.gpio.status_led.is_some() && held {
            checks.push(Check::info("led", HELD));
        } else if let Some(line) = &c.gpio.status_led {
            checks.push(match gpio::open_output(line) {
                Ok(_) => Check::pass("led", format!("{} line {} opens as an output", line.chip.display(), line.line)),
                Err(e) => Check::fail(
                    "led",
                    e.to_string(),
                    "install the board package (built with --features gpio), check gpio.status_led and the chip's group",
                ),
            });
        }
        if let Some(line) = &c.gpio.frame_trigger {
            checks.push(if held { Check::info("trigger", HELD) } else { trigger(line) });
        }
    }
    checks.push(clock());
    checks
}

/// The frame trigger's line opens as an input and reads; its level now is worth knowing (with
/// the X-ray off it should say inactive). Without it the service does not start.
fn trigger(line: &GpioLine) -> Check {
    let fix = "install the board package (built with --features gpio), check gpio.frame_trigger and the chip's \
               group; the service does not start without its trigger (remove [gpio.frame_trigger] to process \
               every frame)";
    let mut pin = match gpio::open_input(line) {
        Ok(pin) => pin,
        Err(e) => return Check::fail("trigger", e.to_string(), fix),
    };
    let at = format!("{} line {}", line.chip.display(), line.line);
    match pin.is_high() {
        Ok(high) => Check::pass(
            "trigger",
            format!(
                "{at} reads as an input: {} now{}",
                if high != line.active_low { "active (exposure)" } else { "inactive (no exposure)" },
                if line.active_low { ", active low" } else { "" }
            ),
        ),
        Err(e) => Check::fail("trigger", format!("{}: cannot read {at}: {e:?}", gpio::FRAME_TRIGGER), fix),
    }
}

/// The configured engine (the learned one when there is no valid configuration), loaded and
/// checked as the service would (without a configuration: the model `run` would take), then
/// run on one synthetic frame with a wire in it.
fn engine(config: Option<&ServiceConfig>) -> Check {
    const SIDE: usize = 256;
    let (kind, manifest, allow_degraded) = match config {
        Some(c) => (c.engine.kind, c.engine.manifest.clone(), c.engine.allow_degraded),
        None => (EngineKind::Learned, config::default_manifest(), false),
    };
    let pipeline_config = match PipelineConfig::default().with_engine(kind, &manifest, allow_degraded) {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                "engine",
                e.to_string(),
                "reinstall the package (it ships the model and its manifest), or point engine.manifest at a model \
                 this version was built for; engine.allow_degraded = true runs the classical engine meanwhile",
            )
        }
    };
    let what = match (&pipeline_config.learned, pipeline_config.degraded) {
        (Some(_), _) => format!("learned ({}) on the CPU", manifest.display()),
        (None, true) => "classical on the CPU, DEGRADED: the learned engine cannot be used (see the log)".to_string(),
        (None, false) => "classical on the CPU".to_string(),
    };
    let cfg = SynthConfig {
        seed: 7,
        size_px: SIDE,
        frames: 33,
        fps: 15.0,
        difficulty: Difficulty::Easy,
        ..SynthConfig::default()
    };
    let mut synth = SyntheticSequence::new(cfg);
    let mut frame = Frame::with_size(SIDE, SIDE);
    synth.render(30, &mut frame.pixels);
    frame.maxval = synth.maxval();
    frame.index = 30;
    frame.capture = Micros::now();
    let mut pipeline = match Pipeline::new(SIDE, SIDE, &pipeline_config) {
        Ok(p) => p,
        Err(e) => return Check::fail("engine", format!("{what}: {e}"), "reinstall the package"),
    };
    let started = Instant::now();
    let fix = "reinstall the package; report the version (`wiretrace --version`) if it persists";
    match pipeline.process(&frame) {
        Ok(Some(wire)) if !pipeline_config.degraded => Check::pass(
            "engine",
            format!(
                "{what}: found the wire in a {SIDE}x{SIDE} test frame ({} points) in {} ms",
                wire.points_px.len(),
                started.elapsed().as_millis()
            ),
        ),
        Ok(Some(_)) => Check::fail("engine", what, "reinstall the package, or fix the model the log names"),
        Ok(None) => Check::fail("engine", format!("{what}: no wire found in a test frame that has one"), fix),
        Err(e) => Check::fail("engine", format!("{what}: {e}"), fix),
    }
}

/// The GPU, where the configuration asks for one: a FAIL when none can be used (the service
/// would run on the CPU, slower than the board is sized for), else what it is. Opening it
/// compiles the kernels into the cache, so the service's first start is quick; the ridge and
/// thinning kernels then run on a test frame and must give the CPU's result.
fn gpu(config: Option<&ServiceConfig>) -> Check {
    let fix =
        "check the NVIDIA driver (nvidia-smi) and the CUDA libraries of the JetPack, or set engine.backend = \"cpu\"";
    match config.map(|c| c.engine.backend) {
        Some(Backend::Cuda) => {
            match Gpu::open(default_cache_dir().as_deref()).and_then(|gpu| gpu_agrees(&gpu).map(|()| gpu)) {
                Ok(gpu) => {
                    Check::pass("gpu", format!("{}: kernels loaded, and they give the CPU's result", gpu.describe()))
                }
                Err(e) => Check::fail("gpu", format!("engine.backend = \"cuda\": {e}"), fix),
            }
        }
        _ => Check::info("gpu", "engine.backend = \"cpu\": the engine runs on the CPU".to_string()),
    }
}

/// Runs the GPU's ridge and thinning stages on a 64 × 64 frame with a line in it, and fails
/// unless they give the CPU's ridge map and skeleton bit for bit.
fn gpu_agrees(gpu: &Arc<Gpu>) -> Result<(), GpuError> {
    const SIDE: usize = 64;
    let mut attenuation = Plane::new(SIDE, SIDE);
    for (i, v) in attenuation.data.iter_mut().enumerate() {
        let (x, y) = ((i % SIDE) as f32, (i / SIDE) as f32);
        let across = x - 0.5 * y - 16.0;
        *v = 1.5 + 0.4 * (-across * across / 2.0).exp();
    }
    let params = RidgeParams::default();
    let (mut cpu, mut on_gpu) = (RidgeMap::new(SIDE, SIDE), RidgeMap::new(SIDE, SIDE));
    RidgeDetector::new(SIDE, SIDE, params.clone()).detect(&attenuation, &mut cpu);
    let mut ridge = GpuRidge::new(Arc::clone(gpu), SIDE, SIDE, &params)?;
    ridge.load_attenuation(&attenuation)?;
    ridge.detect(&mut on_gpu, &mut Plane::new(SIDE, SIDE))?;
    let mask =
        Plane { width: SIDE, height: SIDE, data: cpu.strength.data.iter().map(|&v| u8::from(v > 0.05)).collect() };
    let (mut thin_cpu, mut thin_gpu) = (mask.clone(), mask);
    Thinning::new(SIDE * SIDE).apply(&mut thin_cpu);
    GpuThinning::new(Arc::clone(gpu), SIDE, SIDE)?.apply(&mut thin_gpu)?;
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    if !same(&cpu.strength.data, &on_gpu.strength.data) || thin_cpu != thin_gpu {
        return Err(GpuError::Mismatch("the ridge map or the skeleton of a 64x64 test frame".into()));
    }
    Ok(())
}

/// Opens the source and waits up to [`FRAME_TIMEOUT`] for one frame.
fn source(source: &SourceConfig) -> Check {
    let name = if matches!(source, SourceConfig::V4l2(_)) { "camera" } else { "source" };
    let fix = match source {
        SourceConfig::V4l2(v) if !v.device.exists() => format!(
            "{} does not exist: install the board package (built with --features v4l2), connect the frame grabber, check its udev rule",
            v.device.display()
        ),
        SourceConfig::V4l2(_) => "install the board package (built with --features v4l2)".to_string(),
        SourceConfig::Replay(r) => format!("check source.replay.dir: {} must hold frames/NNNNNN.pgm", r.dir.display()),
        SourceConfig::Synthetic(_) => "check [source.synthetic]".to_string(),
    };
    let opened = match config::open_source(source) {
        Ok((opened, _)) => opened,
        Err(e) => return Check::fail(name, chain(&e), fix),
    };
    first_frame(opened, source.kind(), name, &fix, FRAME_TIMEOUT)
}

/// What the grab thread saw in one call of `next_frame`.
enum Grab {
    Frame(Duration),
    NoSignal,
    Bad(String),
    Ended,
}

/// Calls `next_frame` until a frame comes, the source fails or ends, or `timeout` passes. A
/// live source that opened but says no signal gets its own FAIL: the grabber works, the picture
/// does not reach it.
fn first_frame(
    mut opened: Box<dyn FrameSource>,
    kind: &str,
    name: &'static str,
    fix: &str,
    timeout: Duration,
) -> Check {
    let (w, h) = opened.size();
    let (tx, rx) = channel();
    // A source that hangs keeps this thread; selftest exits after reporting it. It stops
    // asking once nobody listens.
    let grab = std::thread::Builder::new().name("selftest-grab".into()).spawn(move || {
        let mut frame = Frame::with_size(w, h);
        let started = Instant::now();
        loop {
            let got = match opened.next_frame(&mut frame) {
                Some(Ok(())) => Grab::Frame(started.elapsed()),
                Some(Err(CaptureError::NoSignal { .. })) => Grab::NoSignal,
                Some(Err(e)) => Grab::Bad(e.to_string()),
                None => Grab::Ended,
            };
            let again = matches!(got, Grab::NoSignal);
            if tx.send(got).is_err() || !again {
                break;
            }
        }
    });
    if let Err(e) = grab {
        return Check::fail(name, format!("cannot start a thread: {e}"), "check the box's memory and process limits");
    }
    let deadline = Instant::now() + timeout;
    let mut no_signal = false;
    let got = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Grab::NoSignal) => no_signal = true,
            Ok(other) => break Some(other),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break None,
        }
    };
    let secs = timeout.as_secs_f32();
    match got {
        Some(Grab::Frame(took)) => Check::pass(name, format!("{kind}: one {w}x{h} frame in {} ms", took.as_millis())),
        Some(Grab::Bad(e)) => Check::fail(name, format!("{kind}: the first frame is bad: {e}"), fix),
        Some(Grab::Ended) => Check::fail(name, format!("{kind}: no frame at all"), fix),
        None if no_signal => Check::fail(
            name,
            format!("{kind}: opens and negotiates, no frames within {secs} s"),
            "is the fluoroscope's video output connected to the grabber, and is X-ray on?",
        ),
        Some(Grab::NoSignal) | None => Check::fail(name, format!("{kind}: no frame within {secs} s"), fix),
    }
}

/// Each serial line opens at its baud rate (unless the running service holds it); each UDP
/// target resolves and has a route (nothing is sent).
fn sinks(config: &ServiceConfig, held: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    for s in &config.sinks.serial {
        if held {
            checks.push(Check::info("sink", format!("serial {}: {HELD}", s.path)));
            continue;
        }
        let check = match open_port(&s.path, s.baud, Duration::from_millis(100)) {
            Ok(port) => match port.baud_rate() {
                Ok(b) if b == s.baud => Check::pass("sink", format!("serial {} opens at {} baud", s.path, s.baud)),
                Ok(b) => Check::fail(
                    "sink",
                    format!("serial {}: asked for {} baud, the driver set {b}", s.path, s.baud),
                    "use a baud rate the adapter supports, the same on the robot's side",
                ),
                Err(e) => Check::fail(
                    "sink",
                    format!("serial {}: cannot read the baud rate back: {e}", s.path),
                    "check the adapter",
                ),
            },
            Err(e) => Check::fail(
                "sink",
                format!("serial {e}"),
                "connect the robot's serial adapter, check the board's udev rule and that the user is in dialout",
            ),
        };
        checks.push(check);
    }
    for target in &config.sinks.udp {
        let routed = config::resolve_udp(target).and_then(|addr| {
            let any = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let socket = UdpSocket::bind(any)?;
            socket.connect(addr)?;
            Ok((addr, socket.local_addr()?))
        });
        checks.push(match routed {
            Ok((addr, from)) => {
                Check::pass("sink", format!("udp {target} resolves to {addr}, routed from {}", from.ip()))
            }
            Err(e) => Check::fail(
                "sink",
                format!("udp {target}: {e}"),
                "check the address in sinks.udp, the network interface and its route to the robot",
            ),
        });
    }
    checks
}

/// Where the kernel's clock source is reported.
const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// CLOCK_MONOTONIC (capture timestamps) works and moves; which clock source drives it.
fn clock() -> Check {
    let source = std::fs::read_to_string(CLOCKSOURCE).map(|s| s.trim().to_string());
    let (a, b) = (Micros::now(), Micros::now());
    if a.0 == 0 || b < a {
        return Check::fail(
            "clock",
            "CLOCK_MONOTONIC does not work",
            "check the kernel: the service cannot timestamp frames",
        );
    }
    match source {
        Ok(s) if s == "jiffies" => Check::fail(
            "clock",
            "CLOCK_MONOTONIC is driven by jiffies (a tick, milliseconds apart)",
            "enable the board's hardware timer (arch_sys_counter on Jetson) in the kernel",
        ),
        Ok(s) => Check::pass("clock", format!("CLOCK_MONOTONIC works, clock source {s}")),
        Err(e) => Check::pass("clock", format!("CLOCK_MONOTONIC works (clock source unknown: {CLOCKSOURCE}: {e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera that opened: `quiet` calls of 10 ms without a signal, then frames.
    struct Quiet {
        quiet: usize,
    }

    impl FrameSource for Quiet {
        fn size(&self) -> (usize, usize) {
            (16, 16)
        }
        fn fps(&self) -> f32 {
            15.0
        }
        fn live(&self) -> bool {
            true
        }
        fn next_frame(&mut self, _frame: &mut Frame) -> Option<Result<(), CaptureError>> {
            if self.quiet == 0 {
                return Some(Ok(()));
            }
            self.quiet -= 1;
            std::thread::sleep(Duration::from_millis(10));
            Some(Err(CaptureError::NoSignal { waited: Duration::from_millis(10) }))
        }
    }

    fn check(quiet: usize) -> Check {
        first_frame(
            Box::new(Quiet { quiet }),
            "v4l2",
            "camera",
            "install the board package",
            Duration::from_millis(300),
        )
    }

    #[test]
    fn a_camera_without_signal_is_asked_again_until_the_timeout_then_blamed_on_the_picture() {
        let c = check(usize::MAX);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "v4l2: opens and negotiates, no frames within 0.3 s");
        assert!(c.fix.as_deref().is_some_and(|f| f.contains("X-ray on")), "{c}");
    }

    #[test]
    fn a_frame_after_some_silence_passes() {
        let c = check(5);
        assert_eq!(c.outcome, Outcome::Pass, "{c}");
        assert!(c.detail.starts_with("v4l2: one 16x16 frame in "), "{c}");
    }
}
