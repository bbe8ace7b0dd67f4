//! The shutters' level given on the command line reaches the field of view, and a level that is
//! no share of full scale is refused by name.

mod common;

use std::path::Path;

use common::{synth, wiretrace};

/// Frames with a wire and frames answered, by `wiretrace eval` with the classical path and
/// `extra` arguments.
fn answered(seq: &Path, extra: &[&str]) -> (u64, u64) {
    let json = seq.join("report.json");
    let out = wiretrace()
        .args(["eval", "--engine", "classical", "--seq"])
        .arg(seq)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("run wiretrace eval");
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("report is JSON");
    let with_wire = report["frames_with_wire"].as_u64().expect("frames_with_wire");
    (with_wire, with_wire - report["failures"].as_u64().expect("failures"))
}

#[test]
fn a_level_above_the_patient_hides_everything_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    synth(dir.path(), 9, 20, 256);
    let (with_wire, found) = answered(dir.path(), &[]);
    assert!(with_wire > 0 && found > 0, "the wire is found at the raw detector's level: {found} of {with_wire}");
    // Everything darker than 90 % of full scale, the whole patient, is taken for shutters.
    let (_, found_behind_shutters) = answered(dir.path(), &["--shutter-below", "0.9"]);
    assert_eq!(found_behind_shutters, 0, "no ridge survives behind the shutters");

    let out = wiretrace()
        .args(["eval", "--engine", "classical", "--seq"])
        .arg(dir.path())
        .args(["--shutter-below", "1.5"])
        .output()
        .expect("run wiretrace eval");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--shutter-below 1.5") && stderr.contains("share of full scale"), "{stderr}");
}
