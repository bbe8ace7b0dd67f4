//! Both engines on real cine runs without a guidewire: what each takes for a wire, frame by frame.
//!
//! ```text
//! cargo run --release --example real_sequences -- ../shared/data/real/hedichaker-xca-cine
//! ```
//!
//! The folder holds diagnostic coronary angiography runs (512 × 512, 8 bit, `pPP_cC_fFFF.png`,
//! frames in order) with catheters and ECG leads in view and no guidewire, and no annotation:
//! every answer is a false alarm. Each run goes through one pipeline per engine, as the box would
//! see it (the tracker carries from frame to frame); this prints, per run and engine, the frames
//! answered and, per answer, its length, confidence and ends, so the answers can be looked at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wiretrace::config::EngineKind;
use wiretrace::pipeline::{Pipeline, PipelineConfig};

#[path = "common/grey_png.rs"]
mod grey_png;
use grey_png::read_frame;

fn main() -> anyhow::Result<()> {
    let dir =
        PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "../shared/data/real/hedichaker-xca-cine".into()));
    let mut runs: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        if path.extension().is_some_and(|e| e == "png") {
            let run = name.rsplit_once("_f").map_or(name.clone(), |(run, _)| run.to_string());
            runs.entry(run).or_default().push(path);
        }
    }
    let engines = [
        (
            "learned",
            PipelineConfig::default().with_engine(EngineKind::Learned, Path::new("engines/wirenet.json"), false)?,
        ),
        ("classical", PipelineConfig::default().with_engine(EngineKind::Classical, Path::new(""), false)?),
    ];
    for (run, mut paths) in runs {
        paths.sort();
        for (name, config) in &engines {
            let first = read_frame(&paths[0])?;
            let mut pipeline = Pipeline::new(first.width, first.height, config)?;
            let mut answered = Vec::new();
            for (i, path) in paths.iter().enumerate() {
                let mut frame = read_frame(path)?;
                frame.index = i as u32;
                if let Some(wire) = pipeline.process(&frame)? {
                    let (a, b) = (wire.points_px[0], wire.points_px[wire.points_px.len() - 1]);
                    answered.push(format!(
                        "  f{i:03} {:>4.0} px conf {:.2} ({:.0},{:.0})-({:.0},{:.0})",
                        wire.length_px, wire.confidence, a[0], a[1], b[0], b[1]
                    ));
                }
            }
            println!("{run} {name}: answered {} of {} frames", answered.len(), paths.len());
            answered.iter().for_each(|line| println!("{line}"));
        }
    }
    Ok(())
}
