//! Board profiles and `board/provision.sh`: every profile is complete and consistent, and the
//! script, run with `WIRETRACE_ROOT` (files under a temporary root, commands only shown),
//! writes what a box needs and refuses what would leave it half set up.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BOARDS: [&str; 3] = ["jetson-agx-orin", "jetson-orin-nx-nano", "jetson-xavier-nx"];

fn board_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("board")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key = value` (or `Key=value`) on its own line, quotes removed.
fn value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The CPUs of a `CPUAffinity=` list such as `4-7` or `2 3`.
fn cpus(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split([' ', ',']).filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (usize, usize) = (first.parse().expect("CPU number"), last.parse().expect("CPU number"));
        cpus.extend(first..=last);
    }
    cpus
}

#[test]
fn every_board_pins_its_threads_inside_the_services_cpu_set() {
    for board in BOARDS {
        let dir = board_dir().join(board);
        let config = read(&dir.join("wiretrace.toml"));
        let dropin = read(&dir.join("wiretrace.service.d/board.conf"));
        let allowed = cpus(&value(&dropin, "CPUAffinity").unwrap_or_else(|| panic!("{board}: no CPUAffinity")));
        let capture: usize = value(&config, "capture_cpu").and_then(|v| v.parse().ok()).expect("capture_cpu");
        let processing: usize = value(&config, "processing_cpu").and_then(|v| v.parse().ok()).expect("processing_cpu");
        assert!(
            allowed.contains(&capture) && allowed.contains(&processing),
            "{board}: {capture}, {processing} not in {allowed:?}"
        );
        assert_ne!(capture, processing, "{board}: capture and processing share a core");
        assert!(!allowed.contains(&0), "{board}: CPU 0 takes the interrupts");
        let priority: u8 = value(&config, "fifo_priority").and_then(|v| v.parse().ok()).expect("fifo_priority");
        assert!((1..50).contains(&priority), "{board}: FIFO {priority} is not below the interrupt threads");
        let service = wiretrace::config::load(&dir.join("wiretrace.toml")).unwrap_or_else(|e| panic!("{board}: {e}"));
        let realtime = &service.realtime;
        assert_eq!((realtime.capture_thread.cpu, realtime.processing_thread.cpu), (Some(capture), Some(processing)));
        for ridge in &realtime.ridge_workers {
            let cpu = ridge.cpu.unwrap_or_else(|| panic!("{board}: a ridge thread without its CPU"));
            assert!(allowed.contains(&cpu) && cpu != capture && cpu != processing, "{board}: ridge thread on {cpu}");
            assert_eq!(ridge.fifo_priority, Some(priority), "{board}: the ridge thread runs as processing does");
        }
        assert_eq!(value(&config, "device").as_deref(), Some("/dev/wiretrace-camera"), "{board}");
        assert_eq!(value(&config, "path").as_deref(), Some("/dev/wiretrace-robot"), "{board}");

        let clocks = read(&dir.join("wiretrace-clocks.service"));
        assert_eq!(value(&clocks, "Before").as_deref(), Some("wiretrace.service"), "{board}");
        assert_eq!(value(&clocks, "Type").as_deref(), Some("oneshot"), "{board}");
        assert!(
            clocks.contains("ExecStart=/usr/sbin/nvpmodel -m ") && clocks.contains("ExecStart=/usr/bin/jetson_clocks")
        );
        assert_eq!(value(&dropin, "Wants").as_deref(), Some("wiretrace-clocks.service"), "{board}");
        assert!(value(&read(&dir.join("board.env")), "UART").is_some_and(|u| u.starts_with("ttyTHS")), "{board}");
    }
}

#[test]
fn udev_templates_name_the_two_devices_with_placeholders_only_for_what_a_box_differs_in() {
    for entry in fs::read_dir(board_dir().join("udev")).expect("board/udev") {
        let path = entry.expect("entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let rules: Vec<String> = read(&path).lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
        assert_eq!(rules.len(), 1, "{name}: one rule");
        let (link, group) = match name.split('-').next() {
            Some("camera") => ("SYMLINK+=\"wiretrace-camera\"", "GROUP=\"video\""),
            Some("robot") => ("SYMLINK+=\"wiretrace-robot\"", "GROUP=\"dialout\""),
            _ => panic!("{name}: templates are camera-*.rules or robot-*.rules"),
        };
        assert!(rules[0].contains(link) && rules[0].contains(group), "{name}: {}", rules[0]);
        assert!(rules[0].contains("@SERIAL@") || rules[0].contains("@UART@"), "{name}: matches no one device");
        assert!(rules[0].contains("TAG+=\"systemd\""), "{name}: no .device unit for systemd: {}", rules[0]);
    }
}

fn provision(root: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(board_dir().join("provision.sh"))
        .args(args)
        .env("WIRETRACE_ROOT", root)
        .output()
        .expect("run bash board/provision.sh")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The status line of a step, e.g. `FAIL engine ...`.
fn step<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} step in:\n{out}"))
}

/// The TensorRT engine tooling is not in the repository yet; once it is, provisioning runs it.
fn engine_tooling_exists() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/build-engine.sh").exists()
}

#[test]
fn provisioning_installs_the_profile_and_names_the_devices() {
    let root = tempfile::tempdir().expect("temporary root");
    let debs = tempfile::tempdir().expect("temporary dir");
    let deb = debs.path().join("wiretrace_0.1.0_arm64.deb");
    fs::write(&deb, "").expect("write deb");
    let deb = deb.canonicalize().expect("canonical path").to_string_lossy().into_owned();
    let args = ["jetson-agx-orin", "--camera", "magewell-usb", "--camera-serial", "B4F2-0042", "--deb", &deb];
    let out = provision(root.path(), &[&args[..], &["--robot", "jetson-uart", "--cpu-only"]].concat());
    let log = text(&out);
    // A re-provision over a changed conffile must not stop at dpkg's prompt.
    let install = format!(
        "would run: apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {deb}"
    );
    assert!(log.contains(&install), "{install} missing from:\n{log}");
    assert!(out.status.success(), "{log}");
    let board = board_dir().join("jetson-agx-orin");
    let installed = |p: &str| root.path().join(p.trim_start_matches('/'));
    assert_eq!(read(&installed("/etc/wiretrace/wiretrace.toml")), read(&board.join("wiretrace.toml")));
    assert_eq!(
        read(&installed("/etc/systemd/system/wiretrace-clocks.service")),
        read(&board.join("wiretrace-clocks.service"))
    );
    assert_eq!(
        read(&installed("/etc/systemd/system/wiretrace.service.d/board.conf")),
        read(&board.join("wiretrace.service.d/board.conf"))
    );
    let rules = read(&installed("/etc/udev/rules.d/99-wiretrace.rules"));
    assert!(rules.contains(r#"ATTRS{idVendor}=="2935", ATTRS{serial}=="B4F2-0042""#), "{rules}");
    assert!(rules.contains(r#"KERNEL=="ttyTHS0", SYMLINK+="wiretrace-robot""#), "{rules}");
    assert!(!rules.contains('@'), "a placeholder is left: {rules}");
    for command in [
        "udevadm control --reload",
        "systemctl enable --now wiretrace-clocks.service",
        // selftest fills the kernel cache where the service's unit puts it.
        "env CACHE_DIRECTORY=/var/cache/wiretrace wiretrace selftest --config /etc/wiretrace/wiretrace.toml",
        "systemctl enable --now wiretrace.service",
    ] {
        assert!(log.contains(&format!("would run: {command}")), "{command} missing from:\n{log}");
    }
    if !engine_tooling_exists() {
        assert!(step(&log, "engine").starts_with("SKIP"), "{log}");
    }
    assert!(log.ends_with("provision.sh: jetson-agx-orin provisioned\n"), "{log}");

    // Again, over a configuration changed by hand: it is kept beside the new one.
    fs::write(installed("/etc/wiretrace/wiretrace.toml"), "# edited on the box\n").expect("edit");
    let out = provision(root.path(), &["jetson-agx-orin", "--cpu-only"]);
    assert!(out.status.success(), "the rules written before are kept: {}", text(&out));
    assert_eq!(read(&installed("/etc/wiretrace/wiretrace.toml.before-provision")), "# edited on the box\n");
}

#[test]
fn without_a_tensorrt_build_provisioning_fails_and_says_the_network_runs_on_the_cpu() {
    if engine_tooling_exists() {
        println!("SKIPPED: engines/build-engine.sh exists, so the engine step runs it");
        return;
    }
    let root = tempfile::tempdir().expect("temporary root");
    let args = [
        "jetson-xavier-nx",
        "--camera",
        "epiphan-usb",
        "--camera-serial",
        "E1",
        "--robot",
        "cp210x",
        "--robot-serial",
        "C2",
    ];
    let out = provision(root.path(), &args);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let engine = step(&log, "engine");
    assert!(
        engine.starts_with("FAIL")
            && engine.contains("no TensorRT engine build yet")
            && engine.contains("CPU with tract"),
        "{engine}"
    );
    assert!(log.contains("jetson-xavier-nx is not fully provisioned"), "{log}");
}

#[test]
fn provisioning_refuses_what_would_leave_a_box_half_set_up() {
    let root = tempfile::tempdir().expect("temporary root");
    let out = provision(root.path(), &["jetson-tx2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no board profile jetson-tx2") && text(&out).contains("jetson-orin-nx-nano"),
        "{}",
        text(&out)
    );

    // A serial that would break out of the udev rule.
    let bad = [
        "jetson-agx-orin",
        "--camera",
        "magewell-usb",
        "--camera-serial",
        "x\", RUN+=\"/bin/sh",
        "--robot",
        "jetson-uart",
    ];
    let out = provision(root.path(), &bad);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!root.path().join("etc/udev/rules.d/99-wiretrace.rules").exists());

    let out = provision(root.path(), &["jetson-agx-orin", "--camera", "magewell-usb", "--camera-serial", "A"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--camera and --robot go together"), "{}", text(&out));

    // No names for the devices at all: the step fails and says how.
    let out = provision(root.path(), &["jetson-agx-orin", "--cpu-only"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        step(&log, "udev").starts_with("FAIL") && step(&log, "udev").contains("give --camera and --robot"),
        "{log}"
    );
}
