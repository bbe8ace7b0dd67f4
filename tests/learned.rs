//! The learned engine in the pipeline and the service: it beats the classical path on extreme
//! low-dose sequences and keeps to the wire among vessels full of contrast (and leaves one it
//! took for a wire once the wire comes into view), a model that cannot be used stops the start
//! with its reason, and with
//! `--allow-degraded` the classical path runs and every message says so.

mod common;

use std::path::{Path, PathBuf};

use common::{centerlines, replay, synth, wiretrace, Rx};
use wiretrace::capture::synthetic::{write_sequence, Difficulty, SynthConfig, VesselContrast};
use wiretrace::config::EngineKind;
use wiretrace::engine::EngineError;
use wiretrace::eval::report::{evaluate, SequenceReport};
use wiretrace::pipeline::PipelineConfig;

const MANIFEST: &str = "engines/wirenet.json";

fn config(kind: EngineKind) -> PipelineConfig {
    PipelineConfig::default().with_engine(kind, Path::new(MANIFEST), false).expect("the shipped model loads")
}

/// Both engines on the eval's first three seeds of `difficulty` (40 frames of 512²), each
/// engine's frames pooled: one sequence alone turns on a frame or two of a wire coming into
/// view. Learned first.
fn both_engines(difficulty: Difficulty, vessel_contrast: VesselContrast) -> (Pooled, Pooled) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut learned, mut classical) = (Pooled::default(), Pooled::default());
    for seed in 1..=3 {
        let seq = eval_sequence(dir.path(), seed, difficulty, vessel_contrast);
        learned.add(&evaluate(&seq, None, &config(EngineKind::Learned)).expect("learned eval"));
        classical.add(&evaluate(&seq, None, &config(EngineKind::Classical)).expect("classical eval"));
    }
    println!("learned {learned:?}\nclassical {classical:?}");
    (learned, classical)
}

/// The eval's sequence `seed` of `difficulty` (40 frames of 512² at 15 fps), written under `dir`.
fn eval_sequence(dir: &Path, seed: u64, difficulty: Difficulty, vessel_contrast: VesselContrast) -> PathBuf {
    let cfg = SynthConfig { seed, size_px: 512, frames: 40, fps: 15.0, difficulty, vessel_contrast };
    let seq = dir.join(seed.to_string());
    write_sequence(&cfg, &seq).expect("write sequence");
    seq
}

/// The bar on extreme sequences (clDice 0.05 higher, Dice higher, no more frames
/// without an answer). The full comparison over seeds and difficulties is the benchmark
/// (`engines/train/evaluate.py`).
#[test]
fn the_learned_path_beats_the_classical_path_on_extreme_sequences() {
    let (learned, classical) = both_engines(Difficulty::Extreme, VesselContrast::Diluted);
    assert!(learned.cl_dice() >= classical.cl_dice() + 0.05, "clDice");
    assert!(learned.dice() > classical.dice(), "Dice");
    assert!(learned.failures <= classical.failures, "frames with a wire and no answer");
}

/// Contrast-filled vessels are as dark as a wire: the model before the one shipped took them
/// for it (clDice 0.24 on these three sequences, 9 false alarms, a vessel tracked for the
/// whole sequence). The shipped model keeps to the wire (0.77, 2), where the classical path
/// does 0.55; any model shipped must keep doing so.
#[test]
fn the_learned_path_keeps_to_the_wire_among_vessels_full_of_contrast() {
    let (learned, classical) = both_engines(Difficulty::Hard, VesselContrast::Dense);
    assert!(learned.cl_dice() >= 0.7, "clDice {}", learned.cl_dice());
    assert!(learned.cl_dice() > classical.cl_dice(), "clDice against the classical path's");
    let false_alarms = learned.false_alarms;
    assert!(false_alarms <= 3, "{false_alarms} answers before the wire came into view");
}

/// Before the wire comes into view the network may take a vessel full of contrast for one:
/// in two of these six sequences it then tracked the vessel for the whole sequence (the
/// regions never reached beyond it), and in two more until the wire was 15 frames in. Now the
/// wire coming into view takes over: by the last ten frames every sequence's answers are the
/// wire.
#[test]
fn the_learned_path_gives_up_a_vessel_for_the_wire_coming_into_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in 1..=6 {
        let seq = eval_sequence(dir.path(), seed, Difficulty::Easy, VesselContrast::Dense);
        let report = evaluate(&seq, None, &config(EngineKind::Learned)).expect("learned eval");
        let last: Vec<f32> = report.per_frame[30..].iter().map(|f| f.coverage.unwrap_or(0.0)).collect();
        let mean = last.iter().sum::<f32>() / last.len() as f32;
        assert!(mean >= 0.9, "seed {seed}: coverage of the wire over the last ten frames {last:?}");
    }
}

/// At extreme dose the field is a collimated disc, and the wire comes into view at its edge,
/// inside the image. It used to be taken only once it was as long as a wire anywhere (16 px),
/// and the field's margin hid its first 8 px: 7, 7 and 6 frames after it came into view on
/// these seeds. Taken at the field's edge as at the image's border, 4, 3 and 3 frames; with
/// the learned engine's margin of 3 px, 2, 1 and 1.
#[test]
fn the_learned_path_answers_a_wire_coming_into_view_at_the_collimator_s_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in [1, 3, 5] {
        let seq = eval_sequence(dir.path(), seed, Difficulty::Extreme, VesselContrast::Diluted);
        let report = evaluate(&seq, None, &config(EngineKind::Learned)).expect("learned eval");
        let frames = &report.per_frame;
        let entered = frames.iter().position(|f| f.wire_visible).expect("the wire comes into view");
        assert!(frames[..entered].iter().all(|f| !f.answered), "seed {seed}: an answer before the wire");
        let on_wire = frames.iter().position(|f| f.answered && f.mean_distance_px.is_some_and(|d| d < 3.0));
        let after = on_wire.map(|found| found - entered);
        assert!(
            after.is_some_and(|n| n <= 2),
            "seed {seed}: frames from coming into view to an answer on it: {after:?}"
        );
    }
}

/// A wire coming into view at the image's border shows 3-4 px in its first frame, and its
/// skeleton is a pixel shorter (thinning takes a stub's end). With 3 px the shortest path taken
/// from the border, these seeds were answered a frame after the wire came into view; with
/// 2 px, in the first frame it is in view.
#[test]
fn the_learned_path_answers_a_wire_in_the_first_frame_it_shows_at_the_border() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in [1, 2] {
        let seq = eval_sequence(dir.path(), seed, Difficulty::Hard, VesselContrast::Diluted);
        let report = evaluate(&seq, None, &config(EngineKind::Learned)).expect("learned eval");
        let frames = &report.per_frame;
        let entered = frames.iter().position(|f| f.wire_visible).expect("the wire comes into view");
        assert!(frames[..entered].iter().all(|f| !f.answered), "seed {seed}: an answer before the wire");
        let first = &frames[entered];
        assert!(
            first.answered && first.mean_distance_px.is_some_and(|d| d < 3.0),
            "seed {seed}: frame {entered}, the first with the wire in view: {first:?}"
        );
    }
}

/// Frames of several sequences' reports taken together.
#[derive(Debug, Default)]
struct Pooled {
    failures: usize,
    false_alarms: usize,
    /// (sum over frames, frames) of Dice and of clDice.
    dice: (f64, usize),
    cl_dice: (f64, usize),
}

impl Pooled {
    fn add(&mut self, report: &SequenceReport) {
        self.failures += report.failures;
        self.false_alarms += report.false_alarms;
        for (total, s) in [(&mut self.dice, &report.dice), (&mut self.cl_dice, &report.cl_dice)] {
            total.0 += f64::from(s.mean.unwrap_or(0.0)) * s.frames as f64;
            total.1 += s.frames;
        }
    }

    fn dice(&self) -> f64 {
        self.dice.0 / self.dice.1.max(1) as f64
    }

    fn cl_dice(&self) -> f64 {
        self.cl_dice.0 / self.cl_dice.1.max(1) as f64
    }
}

#[test]
fn a_missing_model_is_refused_unless_degraded_is_allowed() {
    let missing = Path::new("/nonexistent/wirenet.json");
    let err = PipelineConfig::default().with_engine(EngineKind::Learned, missing, false).err();
    assert!(matches!(err, Some(EngineError::ManifestMissing { .. })), "{err:?}");
    let degraded = PipelineConfig::default().with_engine(EngineKind::Learned, missing, true).expect("degraded");
    assert!(degraded.degraded && degraded.learned.is_none(), "the classical path, flagged");
    let classical =
        PipelineConfig::default().with_engine(EngineKind::Classical, missing, false).expect("no model needed");
    assert!(!classical.degraded && classical.learned.is_none());
}

/// A model whose bytes are not the manifest's: the service does not start, and says which
/// file and why; allowed to degrade, it runs the classical path and every message carries the
/// flag, over real UDP to the reference receiver.
#[test]
fn a_corrupt_model_stops_the_start_or_runs_degraded_and_flagged() {
    let models = tempfile::tempdir().expect("tempdir");
    let mut onnx = std::fs::read("engines/wirenet.onnx").expect("shipped model");
    let middle = onnx.len() / 2;
    onnx[middle] ^= 0xff;
    std::fs::write(models.path().join("wirenet.onnx"), &onnx).expect("write model");
    std::fs::copy(MANIFEST, models.path().join("wirenet.json")).expect("copy manifest");
    let manifest = models.path().join("wirenet.json");
    let seq = tempfile::tempdir().expect("tempdir");
    synth(seq.path(), 3, 6, 256);
    let seq_arg = seq.path().to_str().expect("utf-8 path");
    let manifest_arg = manifest.to_str().expect("utf-8 path");

    let refused = wiretrace()
        .args(["replay", seq_arg, "--fast", "--udp", "127.0.0.1:9", "--manifest", manifest_arg])
        .output()
        .expect("run replay");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a corrupt model must not run");
    assert!(stderr.contains("wirenet.onnx") && stderr.contains("sha256"), "names the file and the check: {stderr}");

    let (rx, listening) = Rx::start(&["--udp", "127.0.0.1:0", "--idle-exit", "2"]);
    let addr = listening.rsplit(' ').next().expect("address").to_string();
    let out = replay(&[seq_arg, "--fast", "--udp", &addr, "--manifest", manifest_arg, "--allow-degraded"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("flagged degraded"));
    let (messages, _) = rx.finish();
    let lines = centerlines(&messages);
    assert_eq!(lines.len(), 6, "every frame answered");
    for m in lines {
        assert!(m["status"].as_str().is_some_and(|s| s.contains("degraded")), "{m}");
    }
}
