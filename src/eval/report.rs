//! `wiretrace eval`: scores a sequence, either by running the pipeline on it in process or from
//! a receiver's output (`rx --json` lines), against its ground truth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metrics::{
    cl_dice, components, coverage, densify, dice, direction_correct, draw_tube, hausdorff95, label_components,
    mean_centerline_distance, tip_error,
};
use crate::capture::replay::ReplaySource;
use crate::capture::sequence::{
    frame_paths, mask_path, read_centerlines, read_mask_png, SequenceError, CENTERLINES_FILE, GT_DIR,
    MAX_POLYLINE_POINTS,
};
use crate::capture::FrameSource;
use crate::frame::Frame;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::vision::Plane;

/// Why a sequence could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The pipeline's engine could not be built.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The sequence or its ground truth could not be read.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The predictions file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Predictions {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line of the predictions file is not a receiver JSON line.
    #[error("{}, line {line}: {what}", path.display())]
    PredictionLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// A ground-truth centerline cannot be scored on the sequence's frames: a point far outside
    /// them, too many points, or a line longer than any wire in them.
    #[error("{}, frame {frame}: {what}", path.display())]
    Truth {
        /// The centerlines file.
        path: PathBuf,
        /// The frame.
        frame: u32,
        /// What is wrong.
        what: String,
    },
    /// A frame's mask does not have the frame's size.
    #[error("{}: mask is {got_w}x{got_h}, frames are {want_w}x{want_h}", path.display())]
    MaskSize {
        /// The mask file.
        path: PathBuf,
        /// Mask width.
        got_w: usize,
        /// Mask height.
        got_h: usize,
        /// Frame width.
        want_w: usize,
        /// Frame height.
        want_h: usize,
    },
}

/// Scores of one frame. Distances are `None` where either side has no wire.
#[derive(Debug, Clone, Serialize)]
pub struct FrameScores {
    /// Frame index.
    pub frame: u32,
    /// The ground truth shows a wire.
    pub wire_visible: bool,
    /// The prediction has a wire.
    pub answered: bool,
    /// Dice of the predicted wire mask against the true mask.
    pub dice: Option<f32>,
    /// clDice of the same masks.
    pub cl_dice: Option<f32>,
    /// Connected components of the predicted wire mask (1 is a whole wire).
    pub components: Option<u32>,
    /// Mean symmetric centerline distance (px).
    pub mean_distance_px: Option<f32>,
    /// 95th-percentile Hausdorff distance (px).
    pub hausdorff95_px: Option<f32>,
    /// Distance between the tips (px).
    pub tip_error_px: Option<f32>,
    /// Share of the true centerline within 2 px of the prediction.
    pub coverage: Option<f32>,
    /// The prediction runs proximal to tip, like the truth.
    pub direction_correct: Option<bool>,
}

/// Mean and median of one metric over the frames that have it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Frames that have a value.
    pub frames: usize,
    /// Mean (NaN without frames; JSON null).
    pub mean: Option<f32>,
    /// Median.
    pub median: Option<f32>,
}

impl Summary {
    fn of(values: impl Iterator<Item = f32>) -> Self {
        let mut v: Vec<f32> = values.collect();
        v.sort_by(f32::total_cmp);
        let n = v.len();
        Summary {
            frames: n,
            mean: (n > 0).then(|| v.iter().sum::<f32>() / n as f32),
            median: (n > 0).then(|| v[n / 2]),
        }
    }
}

/// The report of one sequence.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceReport {
    /// The sequence directory.
    pub sequence: PathBuf,
    /// Where the centerlines came from: "pipeline" or the predictions file.
    pub predictions: String,
    /// Frames in the sequence.
    pub frames: usize,
    /// Frames whose ground truth shows a wire.
    pub frames_with_wire: usize,
    /// Frames with a wire and no answer: failures.
    pub failures: usize,
    /// Frames without a wire where one was reported.
    pub false_alarms: usize,
    /// Over frames with a wire and a true mask; a failure scores 0.
    pub dice: Summary,
    /// Over frames with a wire and a true mask; a failure scores 0.
    pub cl_dice: Summary,
    /// Over frames with a wire; a failure scores 0.
    pub coverage: Summary,
    /// Over answered frames with a wire.
    pub mean_distance_px: Summary,
    /// Over answered frames with a wire.
    pub hausdorff95_px: Summary,
    /// Over answered frames with a wire.
    pub tip_error_px: Summary,
    /// Over answered frames with a wire.
    pub components: Summary,
    /// Share of answered frames with a wire whose predicted wire is one piece.
    pub one_component_share: Option<f32>,
    /// Share of answered frames with a wire that run proximal to tip.
    pub direction_correct_share: Option<f32>,
    /// Every frame.
    pub per_frame: Vec<FrameScores>,
}

/// Where predictions come from.
enum Predictor {
    /// Receiver output, by frame.
    File(BTreeMap<u32, Vec<[f32; 2]>>),
    /// The pipeline (the learned or the classical engine), run here.
    Pipeline(Box<Pipeline>),
}

/// What the evaluator knows of one frame's prediction.
struct Prediction<'a> {
    points: &'a [[f32; 2]],
    /// The predicted wire mask, where the predictor has one.
    mask: Option<&'a Plane<u8>>,
}

/// Scores one frame; `truth_mask` is `None` when the sequence has no mask for it.
fn score_frame(
    frame: u32,
    prediction: Prediction<'_>,
    truth: &[[f32; 2]],
    truth_mask: Option<&Plane<u8>>,
) -> FrameScores {
    let answered = !prediction.points.is_empty();
    let drawn;
    let predicted_mask = match (prediction.mask, truth_mask) {
        (Some(m), _) => Some(m),
        (None, Some(t)) => {
            drawn = tube_like(prediction.points, truth, t);
            Some(&drawn)
        }
        (None, None) => None,
    };
    let masks = predicted_mask.zip(truth_mask);
    FrameScores {
        frame,
        wire_visible: !truth.is_empty(),
        answered,
        dice: masks.and_then(|(p, t)| dice(p, t)),
        cl_dice: masks.and_then(|(p, t)| cl_dice(p, t)),
        components: predicted_mask.filter(|_| answered).map(components),
        mean_distance_px: mean_centerline_distance(prediction.points, truth),
        hausdorff95_px: hausdorff95(prediction.points, truth),
        tip_error_px: tip_error(prediction.points, truth),
        coverage: coverage(prediction.points, truth),
        direction_correct: direction_correct(prediction.points, truth),
    }
}

/// A prediction without a mask (receiver output) drawn as a tube as wide as the true wire:
/// the true mask's area over the true centerline's length.
fn tube_like(points: &[[f32; 2]], truth: &[[f32; 2]], truth_mask: &Plane<u8>) -> Plane<u8> {
    let mut mask = Plane::new(truth_mask.width, truth_mask.height);
    let length = densify(truth, 1.0).len().max(1) as f32;
    let area = truth_mask.data.iter().filter(|&&v| v != 0).count() as f32;
    let radius_px = (0.5 * area / length).max(0.75);
    draw_tube(points, radius_px, &mut mask);
    mask
}

/// The segmentation components the centerline runs through: the wire as the pipeline
/// segmented it, without the other ridges it kept.
fn wire_components(segmentation: &Plane<u8>, points: &[[f32; 2]], labels: &mut Vec<u32>, out: &mut Plane<u8>) {
    label_components(segmentation, labels);
    let w = segmentation.width;
    let mut hit = std::collections::BTreeSet::new();
    for p in densify(points, 0.5) {
        let (x, y) = (p[0].round(), p[1].round());
        if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < segmentation.height {
            let l = labels[y as usize * w + x as usize];
            if l != 0 {
                hit.insert(l);
            }
        }
    }
    for (o, l) in out.data.iter_mut().zip(labels.iter()) {
        *o = u8::from(*l != 0 && hit.contains(l));
    }
}

/// How far outside the frame (px) a scored centerline's point may lie.
const OUTSIDE_PX: f32 = 16.0;

/// Why `points` cannot be scored on `width` × `height` frames, if they cannot: more than
/// [`MAX_POLYLINE_POINTS`], a point more than [`OUTSIDE_PX`] outside the frame, or a line
/// longer than twice the frame's perimeter. The metrics sample a line every half pixel, so a
/// line of any length would cost any memory and time.
fn unscorable(points: &[[f32; 2]], width: usize, height: usize) -> Option<String> {
    if points.len() > MAX_POLYLINE_POINTS {
        return Some(format!("{} points, more than {MAX_POLYLINE_POINTS}", points.len()));
    }
    let (w, h) = (width as f32, height as f32);
    let outside = |p: &&[f32; 2]| {
        !(-OUTSIDE_PX..=w + OUTSIDE_PX).contains(&p[0]) || !(-OUTSIDE_PX..=h + OUTSIDE_PX).contains(&p[1])
    };
    if let Some(p) = points.iter().find(outside) {
        return Some(format!("point ({}, {}) lies outside the {width}x{height} frame", p[0], p[1]));
    }
    let length_px: f32 = points.windows(2).map(|s| (s[1][0] - s[0][0]).hypot(s[1][1] - s[0][1])).sum();
    let longest_px = 4.0 * (w + h);
    (length_px > longest_px).then(|| format!("the line is {length_px:.0} px long, more than {longest_px} px"))
}

/// Reads `rx --json` output for `width` × `height` frames: the points of the last centerline
/// message for each frame.
pub fn read_predictions(path: &Path, width: usize, height: usize) -> Result<BTreeMap<u32, Vec<[f32; 2]>>, EvalError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EvalError::Predictions { path: path.to_path_buf(), source })?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: String| EvalError::PredictionLine { path: path.to_path_buf(), line: i + 1, what };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if v["kind"] != "centerline" {
            continue;
        }
        let frame = v["frame"].as_u64().and_then(|f| u32::try_from(f).ok()).ok_or_else(|| bad("no frame".into()))?;
        let points = v["points"]
            .as_array()
            .ok_or_else(|| bad("no points".into()))?
            .iter()
            .map(|p| match (p[0].as_f64(), p[1].as_f64()) {
                (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Ok([x as f32, y as f32]),
                _ => Err(bad(format!("point {p} is not [x, y]"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(what) = unscorable(&points, width, height) {
            return Err(bad(what));
        }
        out.insert(frame, points);
    }
    Ok(out)
}

/// Scores the sequence in `dir`: from `predictions` (receiver output) if given, else by running
/// the pipeline `config` describes on every frame in process.
pub fn evaluate(dir: &Path, predictions: Option<&Path>, config: &PipelineConfig) -> Result<SequenceReport, EvalError> {
    let truths = read_centerlines(dir)?;
    let truth_of = |frame: u32| truths.iter().find(|t| t.frame == frame).map_or(&[][..], |t| t.points.as_slice());
    let paths = frame_paths(dir)?;
    let mut source = ReplaySource::open(dir)?;
    let (width, height) = source.size();
    for truth in &truths {
        if let Some(what) = unscorable(&truth.points, width, height) {
            let path = dir.join(GT_DIR).join(CENTERLINES_FILE);
            return Err(EvalError::Truth { path, frame: truth.frame, what });
        }
    }
    let mut predictor = match predictions {
        Some(path) => Predictor::File(read_predictions(path, width, height)?),
        None => Predictor::Pipeline(Box::new(Pipeline::new(width, height, config)?)),
    };
    let mut frame = Frame::with_size(width, height);
    let (mut truth_mask, mut mask_bytes) = (Plane::new(width, height), Vec::new());
    let (mut wire_mask, mut labels) = (Plane::new(width, height), Vec::new());
    let mut per_frame = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let index = index as u32;
        let truth = truth_of(index);
        let mask_file = mask_path(dir, path);
        let have_mask = mask_file.exists();
        if have_mask {
            let (w, h) = read_mask_png(&mask_file, &mut mask_bytes)?;
            if (w, h) != (width, height) {
                return Err(EvalError::MaskSize { path: mask_file, got_w: w, got_h: h, want_w: width, want_h: height });
            }
            truth_mask.data.copy_from_slice(&mask_bytes);
        }
        let truth_mask = have_mask.then_some(&truth_mask);
        let frame_ok = source.next_frame(&mut frame).is_some_and(|r| r.is_ok());
        let scores = match &mut predictor {
            Predictor::File(p) => {
                let points = p.get(&index).map_or(&[][..], Vec::as_slice);
                score_frame(index, Prediction { points, mask: None }, truth, truth_mask)
            }
            Predictor::Pipeline(pipeline) => {
                let points = if frame_ok {
                    pipeline.process(&frame).ok().flatten().map(|w| w.points_px.to_vec()).unwrap_or_default()
                } else {
                    Vec::new()
                };
                wire_components(pipeline.segmentation(), &points, &mut labels, &mut wire_mask);
                score_frame(index, Prediction { points: &points, mask: Some(&wire_mask) }, truth, truth_mask)
            }
        };
        per_frame.push(scores);
    }
    Ok(summarise(dir, predictions, per_frame))
}

fn summarise(dir: &Path, predictions: Option<&Path>, per_frame: Vec<FrameScores>) -> SequenceReport {
    let with_wire: Vec<&FrameScores> = per_frame.iter().filter(|f| f.wire_visible).collect();
    let answered: Vec<&&FrameScores> = with_wire.iter().filter(|f| f.answered).collect();
    let share = |n: usize| (!answered.is_empty()).then(|| n as f32 / answered.len() as f32);
    SequenceReport {
        sequence: dir.to_path_buf(),
        predictions: predictions.map_or("pipeline".into(), |p| p.display().to_string()),
        frames: per_frame.len(),
        frames_with_wire: with_wire.len(),
        failures: with_wire.len() - answered.len(),
        false_alarms: per_frame.iter().filter(|f| !f.wire_visible && f.answered).count(),
        dice: Summary::of(with_wire.iter().filter_map(|f| f.dice)),
        cl_dice: Summary::of(with_wire.iter().filter_map(|f| f.cl_dice)),
        coverage: Summary::of(with_wire.iter().filter_map(|f| f.coverage)),
        mean_distance_px: Summary::of(answered.iter().filter_map(|f| f.mean_distance_px)),
        hausdorff95_px: Summary::of(answered.iter().filter_map(|f| f.hausdorff95_px)),
        tip_error_px: Summary::of(answered.iter().filter_map(|f| f.tip_error_px)),
        components: Summary::of(answered.iter().filter_map(|f| f.components.map(|c| c as f32))),
        one_component_share: share(answered.iter().filter(|f| f.components == Some(1)).count()),
        direction_correct_share: share(answered.iter().filter(|f| f.direction_correct == Some(true)).count()),
        per_frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUTH: [[f32; 2]; 2] = [[5.0, 20.0], [55.0, 20.0]];

    fn truth_mask() -> Plane<u8> {
        let mut m = Plane::new(64, 48);
        draw_tube(&TRUTH, 1.0, &mut m);
        m
    }

    #[test]
    fn receiver_lines_become_predictions_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rx.jsonl");
        let lines = [
            r#"{"kind":"heartbeat","seq":0}"#,
            r#"{"kind":"centerline","frame":3,"seq":1,"status":"ok","points":[[1.5,2.0],[3.0,4.0]]}"#,
            r#"{"kind":"centerline","frame":4,"seq":2,"status":"no_wire","points":[]}"#,
        ];
        std::fs::write(&path, lines.join("\n")).expect("write");
        let p = read_predictions(&path, 64, 64).expect("parse");
        assert_eq!(p.get(&3), Some(&vec![[1.5, 2.0], [3.0, 4.0]]));
        assert_eq!(p.get(&4), Some(&Vec::new()));
        std::fs::write(&path, format!("{}\n{{\"kind\":\"centerline\",\"frame\":5,\"points\":[[1]]}}", lines[1]))
            .expect("write");
        let err = read_predictions(&path, 64, 64).expect_err("bad point");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    /// So is a ground-truth centerline the sequence's frames cannot hold, with its file and
    /// frame.
    #[test]
    fn a_truth_outside_the_frames_is_refused_with_its_frame() {
        use crate::capture::sequence::{write_centerlines, CenterlineTruth};
        use crate::capture::synthetic::{write_sequence, Difficulty, SynthConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SynthConfig {
            seed: 1,
            size_px: 64,
            frames: 3,
            fps: 15.0,
            difficulty: Difficulty::Easy,
            ..SynthConfig::default()
        };
        write_sequence(&cfg, dir.path()).expect("sequence");
        let far = CenterlineTruth { frame: 1, points: vec![[10.0, 10.0], [16000.0, 10.0]] };
        write_centerlines(dir.path(), &[far]).expect("truth");
        let err = evaluate(dir.path(), None, &PipelineConfig::default()).expect_err("far truth").to_string();
        assert!(err.contains("centerlines.jsonl, frame 1") && err.contains("outside the 64x64 frame"), "{err}");
    }

    /// A centerline far outside the frame, of too many points or of a length no wire in the
    /// frame has is refused with its line, before the metrics sample it (a point at 1e9 px
    /// once asked them for 8 GiB).
    #[test]
    fn predictions_that_no_frame_holds_are_refused_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rx.jsonl");
        let line = |points: &str| format!("{{\"kind\":\"centerline\",\"frame\":5,\"points\":{points}}}");
        let zigzag: Vec<String> =
            (0..40).map(|i| format!("[{},{}]", if i % 2 == 0 { 0 } else { 63 }, 63 - i)).collect();
        let many: Vec<String> = (0..=MAX_POLYLINE_POINTS).map(|i| format!("[{}, 10]", i % 64)).collect();
        for (points, why) in [
            ("[[10,10],[1e9,1e9]]".to_string(), "outside the 64x64 frame"),
            ("[[10,10],[-17,10]]".to_string(), "outside the 64x64 frame"),
            (format!("[{}]", zigzag.join(",")), "px long"),
            (format!("[{}]", many.join(",")), "more than 4096"),
        ] {
            std::fs::write(&path, format!("\n{}\n", line(&points))).expect("write");
            let err = read_predictions(&path, 64, 64).expect_err(why).to_string();
            assert!(err.contains("line 2") && err.contains(why), "{why}: {err}");
        }
        std::fs::write(&path, line("[[-16,0],[80,64]]")).expect("write");
        assert!(read_predictions(&path, 64, 64).is_ok(), "16 px outside the frame is allowed");
    }

    #[test]
    fn failures_score_zero_and_false_alarms_are_counted() {
        let mask = truth_mask();
        let frames = vec![
            score_frame(0, Prediction { points: &TRUTH, mask: None }, &TRUTH, Some(&mask)),
            score_frame(1, Prediction { points: &[], mask: None }, &TRUTH, Some(&mask)),
            score_frame(2, Prediction { points: &TRUTH, mask: None }, &[], None),
        ];
        // The receiver's centerline is drawn as wide as the true wire: nearly the same mask.
        assert!(frames[0].dice.is_some_and(|d| d > 0.95), "{:?}", frames[0].dice);
        assert_eq!(frames[0].components, Some(1));
        assert_eq!((frames[1].dice, frames[1].cl_dice, frames[1].coverage), (Some(0.0), Some(0.0), Some(0.0)));
        let report = summarise(Path::new("seq"), None, frames);
        assert_eq!((report.frames, report.frames_with_wire, report.failures, report.false_alarms), (3, 2, 1, 1));
        assert!(report.dice.mean.is_some_and(|d| (0.47..=0.5).contains(&d)), "{:?}", report.dice);
        assert_eq!(report.mean_distance_px.frames, 1);
        assert_eq!(report.direction_correct_share, Some(1.0));
    }
}
