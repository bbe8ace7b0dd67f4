//! Where CUDA is absent, `--backend cuda` says why and the CPU runs every stage: the service
//! keeps working, and its heartbeats name the CPU backend.

mod common;

use common::{centerlines, replay, synth, Rx};
use wiretrace::gpu::Gpu;

#[test]
fn without_cuda_the_cuda_backend_says_why_and_the_cpu_runs() {
    if Gpu::open(None).is_ok() {
        eprintln!("SKIPPED: a CUDA device is here, so there is no fallback to see");
        return;
    }
    let seq = tempfile::tempdir().expect("tempdir");
    synth(seq.path(), 4, 8, 256);
    let seq_arg = seq.path().to_str().expect("utf-8 path");
    let (rx, listening) = Rx::start(&["--udp", "127.0.0.1:0", "--idle-exit", "2"]);
    let addr = listening.rsplit(' ').next().expect("address").to_string();
    let out = replay(&[seq_arg, "--fast", "--udp", &addr, "--engine", "classical", "--backend", "cuda"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("engine.backend = \"cuda\": no CUDA driver") && stderr.contains("the CPU runs every stage"),
        "says why: {stderr}"
    );
    let (messages, _) = rx.finish();
    let heartbeats: Vec<_> = messages.iter().filter(|m| m["kind"] == "heartbeat").collect();
    assert!(!heartbeats.is_empty(), "heartbeats came");
    for h in heartbeats {
        assert_eq!(h["backend"], "cpu-classical", "{h}");
    }
    assert!(centerlines(&messages).len() >= 6, "the CPU found the wire");
}
