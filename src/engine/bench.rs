//! `wiretrace bench-engine`: the learned engine alone, tract beside ONNX Runtime.
//!
//! For each frame of a sequence, the features of two regions are computed (not timed): the
//! manifest's crop (`roi_px` square, centred on the ground-truth wire where the sequence has
//! one, else on the frame) and the whole frame (its largest centred region the network takes).
//! Each engine then segments the same features, one thread each, alternating which goes first
//! from frame to frame so neither always finds the other's data in the cache. The report gives
//! per engine and size the median, p99 and maximum time of a `segment` call, the tract/ONNX
//! Runtime ratio, and the largest difference between their outputs (they must agree).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{check, EngineError, SegmentationEngine, TractEngine};
use crate::capture::replay::ReplaySource;
use crate::capture::sequence::{read_centerlines, SequenceError, CENTERLINES_FILE, GT_DIR};
use crate::capture::FrameSource;
use crate::frame::Frame;
use crate::vision::features::{FeatureError, FeatureExtractor, Roi, CHANNELS};
use crate::vision::normalise::Normaliser;
use crate::vision::Plane;

/// Calls per engine and size before timing starts (lazy allocations, caches).
const WARM_UP: usize = 3;

/// What to measure.
#[derive(Debug, Clone)]
pub struct EngineBenchOptions {
    /// The model's manifest.
    pub manifest: PathBuf,
    /// Sequence directory.
    pub seq: PathBuf,
    /// Frames timed (the sequence wraps around if shorter); all of it when `None`.
    pub frames: Option<usize>,
    /// ONNX Runtime library for the peer; `None` runs tract alone.
    pub peer_library: Option<PathBuf>,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineBenchError {
    /// The model or an engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The sequence.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A region's features.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// No frame of the sequence could be read.
    #[error("{}: no frame could be read", .0.display())]
    NoFrames(PathBuf),
    /// The frames are smaller than the network's smallest input.
    #[error("frames of {width}x{height} are smaller than the network's {multiple_of} px")]
    FrameTooSmall {
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Smallest side the network takes.
        multiple_of: usize,
    },
    /// This build has no ONNX Runtime peer.
    #[error("this build has no ONNX Runtime peer: build with --features ort-peer")]
    NoPeer,
}

/// Times of one engine on one region size (µs).
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Engine name.
    pub engine: &'static str,
    /// Calls timed.
    pub calls: usize,
    /// Median.
    pub median_us: f64,
    /// 99th percentile (nearest rank).
    pub p99_us: f64,
    /// Slowest call.
    pub max_us: f64,
}

/// Both engines on one region size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeReport {
    /// What the region is (`crop` or `whole frame`).
    pub region: &'static str,
    /// Region width.
    pub width: usize,
    /// Region height.
    pub height: usize,
    /// One entry per engine, tract first.
    pub timings: Vec<Timing>,
    /// tract's median over ONNX Runtime's, with the peer.
    pub median_ratio: Option<f64>,
    /// tract's p99 over ONNX Runtime's, with the peer.
    pub p99_ratio: Option<f64>,
    /// Largest absolute difference between the engines' probabilities, with the peer.
    pub max_abs_diff: Option<f32>,
}

/// The whole bench.
#[derive(Debug, Clone, Serialize)]
pub struct EngineBenchReport {
    /// Manifest measured.
    pub manifest: PathBuf,
    /// sha256 of its model.
    pub model_sha256: String,
    /// Sequence read.
    pub sequence: PathBuf,
    /// Frame size.
    pub frame_width: usize,
    /// Frame size.
    pub frame_height: usize,
    /// Frames timed (after the warm-up).
    pub frames: usize,
    /// Threads per engine.
    pub threads: usize,
    /// Where the crop was centred.
    pub crop_centre: &'static str,
    /// One entry per region size.
    pub sizes: Vec<SizeReport>,
    /// Why ONNX Runtime did not run, when it did not.
    pub peer_missing: Option<String>,
}

/// Runs the bench (see the module's documentation).
pub fn bench_engines(options: &EngineBenchOptions) -> Result<EngineBenchReport, EngineBenchError> {
    let model = check(&options.manifest)?;
    let mut source = ReplaySource::open(&options.seq)?;
    let (fw, fh) = source.size();
    let multiple = model.manifest.input.multiple_of;
    let fit = |side: usize, limit: usize| side.min(limit) / multiple * multiple;
    let crop = (fit(model.manifest.roi_px, fw), fit(model.manifest.roi_px, fh));
    let whole = (fit(fw, fw), fit(fh, fh));
    if crop.0 == 0 || crop.1 == 0 {
        return Err(EngineBenchError::FrameTooSmall { width: fw, height: fh, multiple_of: multiple });
    }
    let regions: Vec<(&'static str, (usize, usize))> =
        if crop == whole { vec![("crop", crop)] } else { vec![("crop", crop), ("whole frame", whole)] };
    let sizes: Vec<(usize, usize)> = regions.iter().map(|r| r.1).collect();
    let mut engines: Vec<Box<dyn SegmentationEngine>> = vec![Box::new(TractEngine::new(&model, &sizes)?)];
    let peer_missing = match peer(&model, &sizes, options.peer_library.as_deref()) {
        Ok(engine) => {
            engines.push(engine);
            None
        }
        Err(why) => Some(why),
    };

    let truths = if options.seq.join(GT_DIR).join(CENTERLINES_FILE).exists() {
        read_centerlines(&options.seq)?
    } else {
        Vec::new()
    };
    let frames = options.frames.unwrap_or(source.len());
    let mut extractors: Vec<FeatureExtractor> =
        sizes.iter().map(|&(w, h)| FeatureExtractor::new(fw, fh, w, h)).collect();
    let mut features: Vec<Vec<f32>> = sizes.iter().map(|&(w, h)| vec![0.0; CHANNELS * w * h]).collect();
    let mut outputs: Vec<Vec<f32>> = vec![Vec::new(); engines.len()];
    let mut times: Vec<Vec<Vec<f64>>> = vec![vec![Vec::with_capacity(frames); engines.len()]; sizes.len()];
    let mut max_diff = vec![0.0f32; sizes.len()];
    let mut frame = Frame::with_size(fw, fh);
    let mut attenuation = Plane::new(fw, fh);
    let mut normaliser = Normaliser::new();
    let (mut done, mut read_any) = (0, false);
    while done < frames + WARM_UP {
        match source.next_frame(&mut frame) {
            None if !read_any => return Err(EngineBenchError::NoFrames(options.seq.clone())),
            None => {
                source = ReplaySource::open(&options.seq)?;
                continue;
            }
            Some(Err(e)) => {
                tracing::warn!("skipped: {e}");
                continue;
            }
            Some(Ok(())) => read_any = true,
        }
        normaliser.log_attenuation(&frame, &mut attenuation);
        let centre = truths.iter().find(|t| t.frame == frame.index).and_then(|t| wire_centre(&t.points));
        for (s, &(w, h)) in sizes.iter().enumerate() {
            let (cx, cy) = centre.unwrap_or((fw as f32 / 2.0, fh as f32 / 2.0));
            let roi = Roi { x: corner(cx, w, fw), y: corner(cy, h, fh), width: w, height: h };
            extractors[s].extract(&attenuation, roi, &mut features[s])?;
            for turn in 0..engines.len() {
                // Alternate which engine goes first.
                let e = (turn + done) % engines.len();
                outputs[e].resize(w * h, 0.0);
                let start = Instant::now();
                engines[e].segment(&features[s], w, h, &mut outputs[e])?;
                let us = start.elapsed().as_secs_f64() * 1e6;
                if done >= WARM_UP {
                    times[s][e].push(us);
                }
            }
            for other in outputs.iter().skip(1) {
                let diff = outputs[0].iter().zip(other).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                max_diff[s] = max_diff[s].max(diff);
            }
        }
        done += 1;
    }

    let peer = engines.len() > 1;
    let reports = regions
        .iter()
        .enumerate()
        .map(|(s, &(region, (width, height)))| {
            let timings: Vec<Timing> = engines.iter().zip(&mut times[s]).map(|(e, t)| timing(e.name(), t)).collect();
            let ratio = |f: fn(&Timing) -> f64| peer.then(|| f(&timings[0]) / f(&timings[1]));
            SizeReport {
                region,
                width,
                height,
                median_ratio: ratio(|t| t.median_us),
                p99_ratio: ratio(|t| t.p99_us),
                max_abs_diff: peer.then_some(max_diff[s]),
                timings,
            }
        })
        .collect();
    Ok(EngineBenchReport {
        manifest: options.manifest.clone(),
        model_sha256: model.manifest.sha256.clone(),
        sequence: options.seq.clone(),
        frame_width: fw,
        frame_height: fh,
        frames,
        threads: 1,
        crop_centre: if truths.is_empty() { "frame centre" } else { "ground-truth wire" },
        sizes: reports,
        peer_missing,
    })
}

/// The ONNX Runtime engine, or why there is none.
#[cfg(feature = "ort-peer")]
fn peer(
    model: &super::CheckedModel,
    sizes: &[(usize, usize)],
    library: Option<&Path>,
) -> Result<Box<dyn SegmentationEngine>, String> {
    let library = library.ok_or_else(|| {
        format!(
            "{} is not set: point it at the onnxruntime wheel's libonnxruntime.so.1.32.0 (engines/README.md)",
            super::ort::DYLIB_ENV
        )
    })?;
    super::ort::OrtEngine::new(model, sizes, library)
        .map(|e| Box::new(e) as Box<dyn SegmentationEngine>)
        .map_err(|e| e.to_string())
}

/// The ONNX Runtime engine, or why there is none.
#[cfg(not(feature = "ort-peer"))]
fn peer(
    _model: &super::CheckedModel,
    _sizes: &[(usize, usize)],
    _library: Option<&Path>,
) -> Result<Box<dyn SegmentationEngine>, String> {
    Err(format!(
        "{}; then set ORT_DYLIB_PATH to the onnxruntime wheel's libonnxruntime.so.1.32.0 (engines/README.md)",
        EngineBenchError::NoPeer
    ))
}

/// Middle of the bounding box of a centerline.
fn wire_centre(points: &[[f32; 2]]) -> Option<(f32, f32)> {
    let first = points.first()?;
    let (mut lo, mut hi) = (*first, *first);
    for p in points {
        for i in 0..2 {
            lo[i] = lo[i].min(p[i]);
            hi[i] = hi[i].max(p[i]);
        }
    }
    Some(((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0))
}

/// Left (or top) edge of a `side` region centred on `centre`, inside a frame of `frame` px.
fn corner(centre: f32, side: usize, frame: usize) -> usize {
    let start = (centre - side as f32 / 2.0).round().max(0.0) as usize;
    start.min(frame - side)
}

fn timing(engine: &'static str, times: &mut [f64]) -> Timing {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if times.is_empty() {
            return 0.0;
        }
        let rank = (q * times.len() as f64).ceil() as usize;
        times[rank.clamp(1, times.len()) - 1]
    };
    Timing { engine, calls: times.len(), median_us: at(0.5), p99_us: at(0.99), max_us: at(1.0) }
}

impl fmt::Display for EngineBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} on {} ({}x{} frames, {} timed, crop centred on the {}), {} thread per engine",
            self.manifest.display(),
            self.sequence.display(),
            self.frame_width,
            self.frame_height,
            self.frames,
            self.crop_centre,
            self.threads
        )?;
        writeln!(f, "{:<22} {:<12} {:>10} {:>10} {:>10}", "region", "engine", "median ms", "p99 ms", "max ms")?;
        for s in &self.sizes {
            for t in &s.timings {
                let region = format!("{} {}x{}", s.region, s.width, s.height);
                writeln!(
                    f,
                    "{region:<22} {:<12} {:>10.2} {:>10.2} {:>10.2}",
                    t.engine,
                    t.median_us / 1e3,
                    t.p99_us / 1e3,
                    t.max_us / 1e3
                )?;
            }
            if let (Some(m), Some(p), Some(d)) = (s.median_ratio, s.p99_ratio, s.max_abs_diff) {
                writeln!(f, "{:<22} tract / onnxruntime: median {m:.2}x, p99 {p:.2}x; max |difference| {d:.2e}", "")?;
            }
        }
        if let Some(why) = &self.peer_missing {
            writeln!(f, "ONNX Runtime peer not run: {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_stays_inside_the_frame() {
        assert_eq!(corner(256.0, 256, 512), 128);
        assert_eq!(corner(10.0, 256, 512), 0);
        assert_eq!(corner(500.0, 256, 512), 256);
        assert_eq!(corner(256.0, 512, 512), 0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut t: Vec<f64> = (1..=200).map(f64::from).collect();
        let r = timing("x", &mut t);
        assert_eq!((r.calls, r.median_us, r.p99_us, r.max_us), (200, 100.0, 198.0, 200.0));
    }

    #[test]
    fn the_wire_centre_is_the_middle_of_its_extent() {
        assert_eq!(wire_centre(&[[10.0, 100.0], [30.0, 20.0], [20.0, 60.0]]), Some((20.0, 60.0)));
        assert_eq!(wire_centre(&[]), None);
    }
}
