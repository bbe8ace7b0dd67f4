//! Issue 6: `wiretrace selftest` on this machine, which has no camera and no GPU: clear FAILs
//! with their fixes, the CPU backend PASS, a serial sink on a real pseudo-terminal and a UDP
//! sink on loopback.

mod common;

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Output;

use nix::pty::{openpty, OpenptyResult};

/// A pseudo-terminal standing in for the robot's serial adapter, and its device path.
fn pty() -> (OpenptyResult, String) {
    let pair = openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(pair.slave.as_fd()).expect("ttyname");
    (pair, path.to_str().expect("utf-8 path").to_string())
}

fn selftest(config: &Path) -> (Output, Vec<String>) {
    let out = common::wiretrace().args(["selftest", "--config"]).arg(config).output().expect("run selftest");
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    (out, lines)
}

/// The line of the check `name` whose text contains `what`.
fn line<'a>(lines: &'a [String], outcome: &str, name: &str, what: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{outcome}  {name:<8} ")) && l.contains(what))
        .unwrap_or_else(|| panic!("no {outcome} {name} line with {what:?} in:\n{}", lines.join("\n")))
}

#[test]
fn no_camera_and_no_gpu_fail_clearly_and_the_cpu_backend_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_robot, serial) = pty();
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let config = dir.path().join("wiretrace.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"v4l2\"\n[source.v4l2]\ndevice = \"/dev/wiretrace-camera\"\npixel_format = \"Y16\"\n\
             width = 512\nheight = 512\nfps = 15.0\n\n[sinks]\nudp = [\"{}\"]\n[[sinks.serial]]\npath = \"{serial}\"\n\
             baud = 57600\n\n{}",
            receiver.local_addr().expect("address"),
            common::MODEL_TABLE,
        ),
    )
    .expect("write config");
    let (out, lines) = selftest(&config);
    assert_eq!(lines.len(), 7, "one line per check:\n{}", lines.join("\n"));
    line(&lines, "PASS", "config", "valid, source v4l2");
    line(&lines, "PASS", "engine", "on the CPU: found the wire in a 256x256 test frame");
    line(&lines, "PASS", "engine", "learned (");
    line(&lines, "INFO", "gpu", "engine.backend = \"cpu\": the engine runs on the CPU");
    let camera = line(&lines, "FAIL", "camera", "built without V4L2 support");
    assert!(camera.contains("-> fix: /dev/wiretrace-camera does not exist: install the board package"), "{camera}");
    line(&lines, "PASS", "sink", &format!("serial {serial} opens at 57600 baud"));
    line(&lines, "PASS", "sink", &format!("udp {} resolves", receiver.local_addr().expect("address")));
    line(&lines, "PASS", "clock", "CLOCK_MONOTONIC works, clock source");
    assert!(!out.status.success(), "a FAIL makes selftest fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("selftest: 1 of 7 checks failed"));
    receiver.set_nonblocking(true).expect("nonblocking");
    assert!(receiver.recv(&mut [0u8; 64]).is_err(), "selftest sends nothing to a sink");
}

#[test]
fn a_missing_model_fails_the_engine_check_with_its_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wiretrace.toml");
    std::fs::write(
        &config,
        "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 5\nfps = 15.0\n\n\
         [engine]\nmanifest = \"/nonexistent/wirenet.json\"\n\n[sinks]\nudp = [\"127.0.0.1:9\"]\n",
    )
    .expect("write config");
    let (out, lines) = selftest(&config);
    let engine = line(&lines, "FAIL", "engine", "/nonexistent/wirenet.json");
    assert!(engine.contains("-> fix: reinstall the package"), "{engine}");
    assert!(!out.status.success());
}

#[test]
fn a_gpu_that_cannot_be_used_a_missing_serial_port_an_led_and_a_trigger_without_gpio_fail_with_their_fixes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wiretrace.toml");
    std::fs::write(
        &config,
        "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 5\nfps = 15.0\n\n\
         [engine]\nkind = \"classical\"\nbackend = \"cuda\"\n\n[[sinks.serial]]\npath = \"/dev/wiretrace-no-such-port\"\nbaud = 115200\n\n\
         [gpio.status_led]\nchip = \"/dev/gpiochip0\"\nline = 12\n\n\
         [gpio.frame_trigger]\nchip = \"/dev/wiretrace-no-such-gpiochip\"\nline = 7\n",
    )
    .expect("write config");
    let (out, lines) = selftest(&config);
    assert!(!out.status.success());
    if wiretrace::gpu::Gpu::open(None).is_err() {
        let gpu = line(&lines, "FAIL", "gpu", "engine.backend = \"cuda\": no CUDA driver");
        assert!(gpu.contains("-> fix: check the NVIDIA driver (nvidia-smi)"), "{gpu}");
        assert!(gpu.contains("or set engine.backend = \"cpu\""), "{gpu}");
    }
    let serial = line(&lines, "FAIL", "sink", "serial /dev/wiretrace-no-such-port: cannot open");
    assert!(serial.contains("-> fix: connect the robot's serial adapter"), "{serial}");
    line(&lines, "PASS", "source", "synthetic: one 128x128 frame");
    #[cfg(not(feature = "gpio"))]
    line(
        &lines,
        "FAIL",
        "led",
        "this build has no GPIO support; build with --features gpio -> fix: install the board package",
    );
    let trigger = line(&lines, "FAIL", "trigger", "gpio.frame_trigger");
    assert!(trigger.contains("/dev/wiretrace-no-such-gpiochip line 7"), "{trigger}");
    assert!(
        trigger.contains("-> fix: install the board package (built with --features gpio), check gpio.frame_trigger"),
        "{trigger}"
    );
    assert!(trigger.contains("the service does not start without its trigger"), "{trigger}");
}

#[test]
fn a_replayed_sequence_and_loopback_pass_every_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seq = dir.path().join("seq");
    common::synth(&seq, 3, 2, 64);
    let config = dir.path().join("wiretrace.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"replay\"\n[source.replay]\ndir = \"{}\"\n\n[sinks]\nudp = [\"localhost:7400\"]\n\n{}",
            seq.display(),
            common::MODEL_TABLE
        ),
    )
    .expect("write config");
    let (out, lines) = selftest(&config);
    assert!(out.status.success(), "{}", lines.join("\n"));
    line(&lines, "PASS", "source", "replay: one 64x64 frame");
    assert_eq!(lines.last().map(String::as_str), Some("selftest: all 6 checks passed"));
}

#[test]
fn without_a_config_file_the_fix_says_how_to_get_one() {
    let (out, lines) = selftest(Path::new("/nonexistent/wiretrace.toml"));
    assert!(!out.status.success());
    line(
        &lines,
        "FAIL",
        "config",
        "cannot read /nonexistent/wiretrace.toml: No such file or directory (os error 2) -> fix: write it",
    );
    line(&lines, "PASS", "engine", "learned (engines/wirenet.json) on the CPU");
}

#[test]
fn while_the_service_runs_the_devices_it_holds_are_skipped_not_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    // systemctl as on a box where the service runs: `is-active --quiet wiretrace` says yes.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let systemctl = bin.join("systemctl");
    std::fs::write(&systemctl, "#!/bin/sh\n[ \"$*\" = \"is-active --quiet wiretrace\" ]\n").expect("write");
    std::fs::set_permissions(&systemctl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let config = dir.path().join("wiretrace.toml");
    std::fs::write(
        &config,
        "[source]\nkind = \"v4l2\"\n[source.v4l2]\ndevice = \"/dev/wiretrace-camera\"\npixel_format = \"Y16\"\n\
         width = 512\nheight = 512\nfps = 15.0\n\n[[sinks.serial]]\npath = \"/dev/wiretrace-robot\"\nbaud = 115200\n\n"
            .to_string()
            + common::MODEL_TABLE,
    )
    .expect("write config");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = common::wiretrace()
        .args(["selftest", "--config"])
        .arg(&config)
        .env("PATH", path)
        .output()
        .expect("run selftest");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let held = "skipped: the service is running and holds the device; stop it to check";
    line(&lines, "INFO", "camera", held);
    line(&lines, "INFO", "sink", &format!("serial /dev/wiretrace-robot: {held}"));
    assert!(out.status.success(), "nothing failed:\n{}", lines.join("\n"));
}
