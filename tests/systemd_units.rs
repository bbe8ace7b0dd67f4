//! Issue 6: the systemd unit and the sysusers file, checked by `systemd/verify` against the
//! binary under test (`systemd-analyze verify` in a throwaway root, any warning an error).
//! `.ci/run` installs systemd where `systemd-analyze` is missing.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the script through bash rather than executing it: a test that has just written its copy
/// may find it "text file busy" while another test thread forks with the write still open.
fn verify(systemd_dir: &Path) -> Output {
    Command::new("bash")
        .arg(systemd_dir.join("verify"))
        .arg(env!("CARGO_BIN_EXE_wiretrace"))
        .output()
        .expect("run systemd/verify (it needs systemd-analyze and systemd-sysusers: apt-get install systemd)")
}

fn repo_systemd() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

#[test]
fn the_unit_and_the_service_user_verify_clean() {
    let out = verify(&repo_systemd());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));
}

#[test]
fn a_warning_from_systemd_analyze_fails_the_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["verify", "wiretrace.service", "wiretrace.sysusers", "wiretrace.service.d/board.conf.example"] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo_systemd().join(file), &to).expect("copy");
    }
    let unit = dir.path().join("wiretrace.service");
    let text = std::fs::read_to_string(&unit).expect("read unit");
    std::fs::write(&unit, text.replace("WatchdogSec=5", "WatchdogSecs=5")).expect("write unit");
    let out = verify(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misspelt key passed");
    assert!(stderr.contains("Unknown key 'WatchdogSecs'"), "{stderr}");
}

/// The value of `key` in the unit, if it is set once.
fn setting(unit: &str, key: &str) -> Option<String> {
    let mut values = unit.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string));
    let first = values.next();
    first.filter(|_| values.next().is_none())
}

#[test]
fn a_device_that_appears_late_is_retried_for_good_after_the_network_is_up() {
    let unit = std::fs::read_to_string(repo_systemd().join("wiretrace.service")).expect("read unit");
    // A start limit would leave the unit failed for good after a few quick restarts at boot.
    assert_eq!(setting(&unit, "StartLimitIntervalSec").as_deref(), Some("0"));
    assert_eq!(setting(&unit, "StartLimitBurst"), None);
    let restart: u32 = setting(&unit, "RestartSec").and_then(|s| s.parse().ok()).expect("RestartSec= in seconds");
    assert!((2..=10).contains(&restart), "RestartSec={restart}");
    // systemd 249 (JetPack 6): no RestartSteps= (254) to rely on.
    assert_eq!(setting(&unit, "RestartSteps"), None);
    assert_eq!(setting(&unit, "After").as_deref(), Some("network-online.target"));
    assert_eq!(setting(&unit, "Wants").as_deref(), Some("network-online.target"));
}

#[test]
fn after_every_stop_the_unit_turns_the_status_led_off() {
    let unit = std::fs::read_to_string(repo_systemd().join("wiretrace.service")).expect("read unit");
    let post = setting(&unit, "ExecStopPost").expect("ExecStopPost=");
    let args = post.strip_prefix("-/usr/bin/wiretrace ").expect("the package's binary, failure ignored");
    let args: Vec<&str> = args.split(' ').collect();
    assert_eq!(args, ["led", "off", "--config", "/etc/wiretrace/wiretrace.toml"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wiretrace.toml");
    let base = "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 5\nfps = 15.0\n\n\
                [sinks]\nudp = [\"127.0.0.1:7400\"]\n";
    let led_off = |text: String| {
        std::fs::write(&config, text).expect("write config");
        Command::new(env!("CARGO_BIN_EXE_wiretrace"))
            .args(&args[..2])
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run wiretrace led off")
    };
    let out = led_off(base.to_string());
    assert!(out.status.success() && out.stdout.is_empty(), "no LED: nothing to do: {out:?}");
    let out = led_off(format!("{base}\n[gpio.status_led]\nchip = \"/dev/wiretrace-no-such-chip\"\nline = 3\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("/dev/wiretrace-no-such-chip"), "{stderr}");
}
