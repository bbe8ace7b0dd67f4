//! Helpers shared by the end-to-end tests: they run the real `wiretrace` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// The configuration table that points the service at the repository's model (a box has the
/// package's, the default).
pub const MODEL_TABLE: &str =
    concat!("[engine]\nmanifest = \"", env!("CARGO_MANIFEST_DIR"), "/engines/wirenet.json\"\n");

pub fn wiretrace() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wiretrace"));
    c.env("RUST_LOG", "info");
    c
}

/// Writes a synthetic sequence with the real `synth` command.
pub fn synth(dir: &Path, seed: u64, frames: u32, size: usize) {
    let out = wiretrace()
        .args(["synth", "--out"])
        .arg(dir)
        .args(["--seed", &seed.to_string(), "--frames", &frames.to_string(), "--size", &size.to_string()])
        .output()
        .expect("run wiretrace synth");
    assert!(out.status.success(), "synth failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A running `wiretrace rx` with its standard error read line by line on a thread.
pub struct Rx {
    pub child: Child,
    pub stderr_lines: Receiver<String>,
}

impl Rx {
    /// Starts `wiretrace rx ARGS --json` and waits for its "listening" line, which it returns.
    pub fn start(args: &[&str]) -> (Rx, String) {
        let mut child = wiretrace()
            .arg("rx")
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wiretrace rx");
        let stderr = child.stderr.take().expect("rx stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let listening = lines.recv_timeout(Duration::from_secs(20)).expect("rx printed nothing: did it start?");
        assert!(listening.starts_with("rx: listening on"), "unexpected first line from rx: {listening}");
        (Rx { child, stderr_lines: lines }, listening)
    }

    /// Waits for rx to exit (it is started with --idle-exit) and returns its JSON lines and
    /// the rest of its standard error.
    pub fn finish(mut self) -> (Vec<serde_json::Value>, Vec<String>) {
        let mut stdout = self.child.stdout.take().expect("rx stdout");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).expect("read rx stdout");
        let status = self.child.wait().expect("wait for rx");
        let stderr: Vec<String> = self.stderr_lines.iter().collect();
        assert!(status.success(), "rx failed: {stderr:?}");
        let json = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("rx printed a non-JSON line {l:?}: {e}")))
            .collect();
        (json, stderr)
    }
}

/// The JSON summary rx prints on standard error when it exits.
pub fn rx_summary(stderr: &[String]) -> serde_json::Value {
    let line = stderr.iter().find_map(|l| l.strip_prefix("rx summary: ")).expect("rx summary line");
    serde_json::from_str(line).expect("rx summary is JSON")
}

/// Runs `wiretrace replay ARGS` to completion.
pub fn replay(args: &[&str]) -> Output {
    let out = wiretrace().arg("replay").args(args).output().expect("run wiretrace replay");
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Centerline messages from rx output.
pub fn centerlines(messages: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    messages.iter().filter(|m| m["kind"] == "centerline").collect()
}

pub fn points(message: &serde_json::Value) -> Vec<[f32; 2]> {
    message["points"]
        .as_array()
        .expect("points array")
        .iter()
        .map(|p| [p[0].as_f64().expect("x") as f32, p[1].as_f64().expect("y") as f32])
        .collect()
}
