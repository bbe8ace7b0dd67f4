//! Issue 6: `wiretrace config check` validates a file without running anything, and `run`
//! refuses what this build cannot do before it opens anything.

mod common;

use std::fs;
use std::path::Path;

#[test]
fn config_check_summarises_a_valid_file() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wiretrace.toml");
    let out = common::wiretrace().args(["config", "check"]).arg(&shipped).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": valid"), "{stdout}");
    for line in [
        "source     v4l2 /dev/wiretrace-camera GREY 1024x1024",
        "sink       serial /dev/wiretrace-robot at 115200 baud",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(stdout.lines().count() < 24, "fits one screen:\n{stdout}");
}

/// A report that cannot be written (here to a full device; a closed pipe alike) ends the
/// command with that error and a failure status, not a panic's abort.
#[test]
fn a_report_that_cannot_be_written_is_an_error_not_a_crash() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wiretrace.toml");
    let full = fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = common::wiretrace().args(["config", "check"]).arg(&shipped).stdout(full).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing to standard output: No space left on device"), "{stderr}");
}

#[test]
fn config_check_names_file_line_and_key_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("wiretrace.toml");
    fs::write(&file, "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 10\nfps = 15.0\n[[sinks.serial]]\npath = \"/dev/ttyTHS0\"\nbuad = 115200\n")
        .expect("write");
    let out = common::wiretrace().args(["config", "check"]).arg(&file).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!(
        "wiretrace: {}:9:1: sinks.serial[0].buad: unknown field `buad`, expected `path` or `baud`",
        file.display()
    );
    assert_eq!(stderr.trim_end(), want);

    let missing = dir.path().join("absent.toml");
    let out = common::wiretrace().args(["config", "check"]).arg(&missing).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot read {}", missing.display())));
}

#[test]
fn run_without_v4l2_support_says_how_to_get_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("wiretrace.toml");
    fs::write(&file, "[source]\nkind = \"v4l2\"\n[source.v4l2]\ndevice = \"/dev/video0\"\npixel_format = \"Y16\"\nwidth = 512\nheight = 512\nfps = 15.0\n[sinks]\nudp = [\"127.0.0.1:9\"]\n")
        .expect("write");
    let out = common::wiretrace().args(["run", "--config"]).arg(&file).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("built without V4L2 support; build it with `--features v4l2`"), "{stderr}");
}

#[test]
fn run_refuses_to_start_with_a_frame_trigger_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("wiretrace.toml");
    fs::write(
        &file,
        "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 5\nfps = 15.0\n[sinks]\nudp = [\"127.0.0.1:9\"]\n\
         [gpio.frame_trigger]\nchip = \"/dev/wiretrace-no-such-gpiochip\"\nline = 7\n",
    )
    .expect("write");
    let out = common::wiretrace().args(["run", "--config"]).arg(&file).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "no frame is processed ungated: {stderr}");
    assert!(stderr.contains("the frame trigger cannot be used; not starting without it"), "{stderr}");
    #[cfg(not(feature = "gpio"))]
    let why = "gpio.frame_trigger (/dev/wiretrace-no-such-gpiochip line 7): this build has no GPIO support; build with --features gpio";
    #[cfg(feature = "gpio")]
    let why = "gpio.frame_trigger: cannot use /dev/wiretrace-no-such-gpiochip line 7";
    assert!(stderr.contains(why), "{stderr}");
    assert!(!stderr.contains("frames seen"), "nothing ran: {stderr}");
}
