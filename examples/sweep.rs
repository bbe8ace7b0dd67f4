//! Accuracy of the classical CPU pipeline over many synthetic sequences, in process (no
//! transport, no pacing). Until `wiretrace eval` exists this is where the README's accuracy
//! numbers come from:
//!
//! ```text
//! cargo run --release --example sweep -- [FIRST_SEED] [SEEDS] [FRAMES] [SIZE] [DIFFICULTY]
//! ```
//!
//! One line per seed: `.` no wire and none visible, `F` false alarm, `M` missed, `o` found
//! (mean distance ≤ 5 px), `X` found something else.

use wiretrace::capture::synthetic::{Difficulty, SynthConfig, SyntheticSequence};
use wiretrace::demo::{median, WRONG_STRUCTURE_PX};
use wiretrace::eval::{mean_centerline_distance, tip_error};
use wiretrace::frame::Frame;
use wiretrace::pipeline::{Pipeline, PipelineConfig};

fn arg(i: usize, default: u64) -> anyhow::Result<u64> {
    std::env::args().nth(i).map_or(Ok(default), |a| a.parse().map_err(|e| anyhow::anyhow!("argument {i} ({a}): {e}")))
}

fn main() -> anyhow::Result<()> {
    let (first, seeds, frames, size) = (arg(1, 1)?, arg(2, 24)?, arg(3, 30)? as u32, arg(4, 512)? as usize);
    let difficulty: Difficulty = std::env::args().nth(5).as_deref().unwrap_or("easy").parse()?;
    let mut pipeline = Pipeline::new(size, size, &PipelineConfig::default()).expect("classical pipeline");
    let mut frame = Frame::with_size(size, size);
    let (mut distances, mut tips) = (Vec::new(), Vec::new());
    let (mut visible, mut missed, mut wrong, mut false_alarms, mut empty) = (0, 0, 0, 0, 0);
    for seed in first..first + seeds {
        let cfg = SynthConfig { seed, size_px: size, frames, fps: 15.0, difficulty, ..SynthConfig::default() };
        let mut synth = SyntheticSequence::new(cfg);
        frame.maxval = synth.maxval();
        let mut line = String::new();
        for index in 0..frames {
            synth.render(index, &mut frame.pixels);
            frame.index = index;
            let truth = synth.truth(index).points;
            let found = pipeline.process(&frame)?.map(|w| w.points_px.to_vec());
            let mark = match (found, truth.is_empty()) {
                (None, true) => {
                    empty += 1;
                    '.'
                }
                (Some(_), true) => {
                    false_alarms += 1;
                    'F'
                }
                (None, false) => {
                    visible += 1;
                    missed += 1;
                    'M'
                }
                (Some(points), false) => {
                    visible += 1;
                    let d = mean_centerline_distance(&points, &truth).unwrap_or(f32::INFINITY);
                    if d > WRONG_STRUCTURE_PX {
                        wrong += 1;
                        'X'
                    } else {
                        distances.push(d);
                        tips.extend(tip_error(&points, &truth));
                        'o'
                    }
                }
            };
            line.push(mark);
        }
        println!("seed {seed:3}: {line}");
    }
    let right = distances.len();
    println!(
        "{seeds} {difficulty} sequences x {frames} frames of {size}x{size}: wire visible in {visible} frames: found {right}, \
         missed {missed}, another structure {wrong}; {false_alarms} false alarms in {} frames without a wire",
        empty + false_alarms
    );
    println!(
        "where found: centerline distance median {:.2} px, tip error median {:.2} px",
        median(&mut distances).unwrap_or(f32::NAN),
        median(&mut tips).unwrap_or(f32::NAN)
    );
    Ok(())
}
