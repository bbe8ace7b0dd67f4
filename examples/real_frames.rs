//! Both engines on real X-ray frames (issue 4: "on real frames, if present, report both").
//!
//! ```text
//! cargo run --release --example real_frames -- ../shared/data/real/fercer-coronary-angios80 --shutter-below 0.08
//! ```
//!
//! The frames there are coronary angiograms (300 × 300, 8 bit) with coronary *vessel* masks and
//! no guidewire masks, so no wire metric applies. Per frame this reports whether each engine
//! answers, the length and confidence of its centerline, and the share of its points within
//! 2 px of an annotated vessel: a wire in a vessel lies on one, an answer along a rib edge or
//! the collimator does not (catheters are mostly not annotated). Each frame is its own
//! sequence: a fresh pipeline sees it 6 times (with no deadline, the learned engine searches
//! the whole frame until it tracks something), and the last answer counts. These frames were grabbed from
//! video: their shutters read grey 13-16 of 255, not 0, so `--shutter-below 0.08` (grey 20)
//! tells the field of view where they are, as `pipeline.shutter_below` does on the box.

use std::path::{Path, PathBuf};

use wiretrace::config::EngineKind;
use wiretrace::frame::Frame;
use wiretrace::pipeline::{Pipeline, PipelineConfig};
use wiretrace::vision::field::FieldParams;

#[path = "common/grey_png.rs"]
mod grey_png;
use grey_png::{read_frame, read_grey};

/// Frames each pipeline sees before its answer is taken.
const LOOKS: u32 = 6;

/// A centerline's points (px), its length (px) and its confidence.
type Answer = (Vec<[f32; 2]>, f32, f32);

fn answer(config: &PipelineConfig, frame: &mut Frame) -> anyhow::Result<Option<Answer>> {
    let mut pipeline = Pipeline::new(frame.width, frame.height, config)?;
    let mut last = None;
    for i in 0..LOOKS {
        frame.index = i;
        last = pipeline.process(frame)?.map(|w| (w.points_px.to_vec(), w.length_px, w.confidence));
    }
    Ok(last)
}

/// Share of `points` within 2 px of a set pixel of `mask`.
fn on_vessel(points: &[[f32; 2]], mask: &[u8], w: usize, h: usize) -> f32 {
    let near = |p: &[f32; 2]| {
        let (x, y) = (p[0].round() as isize, p[1].round() as isize);
        (-2..=2).any(|dy| {
            (-2..=2).any(|dx| {
                let (xx, yy) = (x + dx, y + dy);
                xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h && mask[yy as usize * w + xx as usize] != 0
            })
        })
    };
    points.iter().filter(|p| near(p)).count() as f32 / points.len().max(1) as f32
}

fn main() -> anyhow::Result<()> {
    let mut dir = PathBuf::from("../shared/data/real/fercer-coronary-angios80");
    let mut field = FieldParams::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--shutter-below" {
            let value = args.next().unwrap_or_default();
            field.shutter_below = value.parse().map_err(|e| anyhow::anyhow!("--shutter-below {value}: {e}"))?;
            anyhow::ensure!(
                FieldParams::is_share(field.shutter_below),
                "--shutter-below {value}: {}",
                FieldParams::SHARE_RANGE
            );
        } else {
            dir = PathBuf::from(arg);
        }
    }
    let defaults = PipelineConfig { field, ..PipelineConfig::default() };
    let mut frames: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png") && !p.to_string_lossy().ends_with("_vesselmask.png"))
        .collect();
    frames.sort();
    let engines = [
        ("learned", defaults.clone().with_engine(EngineKind::Learned, Path::new("engines/wirenet.json"), false)?),
        ("classical", defaults.with_engine(EngineKind::Classical, Path::new(""), false)?),
    ];
    println!("{:<12} {:>28} {:>28}", "frame", "learned: len conf on-vessel", "classical: len conf on-vessel");
    let mut totals = [(0usize, 0.0f32); 2];
    for path in &frames {
        let mut frame = read_frame(path)?;
        let (w, h) = (frame.width, frame.height);
        let mask_path =
            path.with_file_name(format!("{}_vesselmask.png", path.file_stem().unwrap_or_default().to_string_lossy()));
        let (mask, mw, mh) = read_grey(&mask_path)?;
        anyhow::ensure!((mw, mh) == (w, h), "{}: mask is {mw}x{mh}, frame {w}x{h}", mask_path.display());
        let mut cells = Vec::new();
        for (k, (_, config)) in engines.iter().enumerate() {
            cells.push(match answer(config, &mut frame)? {
                Some((points, length, confidence)) => {
                    let share = on_vessel(&points, &mask, w, h);
                    totals[k].0 += 1;
                    totals[k].1 += share;
                    format!("{length:>6.0} px {confidence:>5.2} {:>9.0} %", 100.0 * share)
                }
                None => format!("{:>28}", "none"),
            });
        }
        let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        println!("{name:<12} {:>28} {:>28}", cells[0], cells[1]);
    }
    for (k, (name, _)) in engines.iter().enumerate() {
        let (answered, share) = totals[k];
        println!(
            "{name}: answered on {answered} of {} frames; on a vessel, mean over its answers: {:.0} %",
            frames.len(),
            100.0 * share / answered.max(1) as f32
        );
    }
    Ok(())
}
