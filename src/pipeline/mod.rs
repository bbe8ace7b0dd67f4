//! The per-frame pipeline and the threads that run it.
//!
//! [`Pipeline`] chains the vision stages on one frame with buffers made at start;
//! [`runner`] moves frames from a source through it to the sinks.

pub mod runner;

use crate::frame::Frame;
use crate::time::Micros;
use crate::vision::background::{BackgroundParams, BackgroundSuppressor};
use crate::vision::bridging::{BridgeParams, GapBridger};
use crate::vision::centerline::{CenterlineExtractor, CenterlineParams, Wire};
use crate::vision::field::{FieldOfView, FieldParams};
use crate::vision::normalise::Normaliser;
use crate::vision::ridge::{RidgeDetector, RidgeMap, RidgeParams};
use crate::vision::thinning::Thinning;
use crate::vision::threshold::{Hysteresis, ThresholdParams};
use crate::vision::Plane;

/// Largest frame side (px) the pipeline is built for: its planes take about 80 bytes a pixel,
/// 1.3 GiB at 4096 × 4096.
pub const MAX_SIDE_PX: usize = 4096;

/// Parameters of every stage.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// Temporal background suppression, off unless set.
    pub background: Option<BackgroundParams>,
    /// The collimated field of view.
    pub field: FieldParams,
    /// Ridge measure.
    pub ridge: RidgeParams,
    /// Mask from ridge strength.
    pub threshold: ThresholdParams,
    /// Joining skeleton fragments.
    pub bridging: BridgeParams,
    /// Centerline from skeleton.
    pub centerline: CenterlineParams,
}

/// Why a frame could not be processed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PipelineError {
    /// The frame does not have the size the pipeline was built for.
    #[error("frame {index} is {got_w}x{got_h}, the pipeline runs at {want_w}x{want_h}")]
    SizeMismatch {
        /// Frame index.
        index: u32,
        /// Frame width.
        got_w: usize,
        /// Frame height.
        got_h: usize,
        /// Pipeline width.
        want_w: usize,
        /// Pipeline height.
        want_h: usize,
    },
    /// The frame's deadline passed before the pipeline was done with it; what it had is thrown
    /// away, so no late centerline can leave.
    #[error("frame {index} missed its deadline before {stage}")]
    DeadlineMissed {
        /// Frame index.
        index: u32,
        /// The stage that would have run next.
        stage: &'static str,
    },
}

/// The classical CPU pipeline: log attenuation (→ background suppression) → Hessian ridge →
/// hysteresis → Zhang-Suen → gap bridging → centerline. All planes are allocated in [`Pipeline::new`].
#[derive(Debug)]
pub struct Pipeline {
    width: usize,
    height: usize,
    normaliser: Normaliser,
    attenuation: Plane<f32>,
    background: Option<BackgroundSuppressor>,
    field: FieldOfView,
    ridge: RidgeDetector,
    ridge_map: RidgeMap,
    hysteresis: Hysteresis,
    segmentation: Plane<u8>,
    skeleton: Plane<u8>,
    thinning: Thinning,
    bridger: GapBridger,
    extractor: CenterlineExtractor,
}

impl Pipeline {
    /// Builds every stage for `width` × `height` frames.
    pub fn new(width: usize, height: usize, config: &PipelineConfig) -> Self {
        let n = width * height;
        Pipeline {
            width,
            height,
            normaliser: Normaliser::new(),
            attenuation: Plane::new(width, height),
            background: config.background.map(|p| BackgroundSuppressor::new(width, height, p)),
            field: FieldOfView::new(width, height, config.field),
            ridge: RidgeDetector::new(width, height, config.ridge.clone()),
            ridge_map: RidgeMap::new(width, height),
            hysteresis: Hysteresis::new(n, config.threshold),
            segmentation: Plane::new(width, height),
            skeleton: Plane::new(width, height),
            thinning: Thinning::new(n),
            bridger: GapBridger::new(width, height, config.bridging),
            extractor: CenterlineExtractor::new(
                width,
                height,
                CenterlineParams {
                    max_points: config.centerline.max_points.min(wiretrace_protocol::MAX_POINTS),
                    ..config.centerline
                },
            ),
        }
    }

    /// Frame size this pipeline runs at.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Finds the wire in `frame`; `Ok(None)` when there is none.
    pub fn process(&mut self, frame: &Frame) -> Result<Option<Wire<'_>>, PipelineError> {
        self.process_by(frame, None)
    }

    /// [`Pipeline::process`] against a deadline (CLOCK_MONOTONIC): the clock is read at every
    /// stage boundary, and once the deadline has passed the frame is abandoned with
    /// [`PipelineError::DeadlineMissed`], whatever it would have become.
    pub fn process_by(&mut self, frame: &Frame, deadline: Option<Micros>) -> Result<Option<Wire<'_>>, PipelineError> {
        let check = |stage: &'static str| match deadline {
            Some(d) if Micros::now().0 > d.0 => Err(PipelineError::DeadlineMissed { index: frame.index, stage }),
            _ => Ok(()),
        };
        if (frame.width, frame.height) != (self.width, self.height) || frame.pixels.len() != self.width * self.height {
            return Err(PipelineError::SizeMismatch {
                index: frame.index,
                got_w: frame.width,
                got_h: frame.height,
                want_w: self.width,
                want_h: self.height,
            });
        }
        check("normalise")?;
        self.normaliser.log_attenuation(frame, &mut self.attenuation);
        let collimated = self.field.update(&self.attenuation) > 0;
        if let Some(background) = &mut self.background {
            background.apply(&mut self.attenuation);
        }
        check("ridge")?;
        self.ridge.detect(&self.attenuation, &mut self.ridge_map);
        if collimated {
            self.field.suppress(&mut self.ridge_map.strength);
        }
        check("threshold")?;
        self.hysteresis.apply(&self.ridge_map.strength, self.extractor.prior(), &mut self.segmentation);
        check("thinning")?;
        self.skeleton.data.copy_from_slice(&self.segmentation.data);
        self.thinning.apply(&mut self.skeleton);
        check("bridging")?;
        self.bridger.apply(&mut self.skeleton, self.ridge.thick_mask());
        check("centerline")?;
        let wire = self.extractor.extract(&self.skeleton, &self.ridge_map, self.hysteresis.noise());
        check("sending").map(|()| wire)
    }

    /// The ridge map of the last frame, for diagnostics.
    pub fn ridge_map(&self) -> &RidgeMap {
        &self.ridge_map
    }

    /// The noise depth the last frame's thresholds and path gate were set from.
    pub fn noise_depth(&self) -> f32 {
        self.hysteresis.noise()
    }

    /// The tracked wire the last frame's hysteresis was seeded along (empty when none).
    pub fn prior(&self) -> &[[f32; 2]] {
        self.extractor.prior()
    }

    /// The ridge detector, for diagnostics of its intermediate planes.
    pub fn ridge_detector(&self) -> &RidgeDetector {
        &self.ridge
    }

    /// The last frame's segmentation: every pixel the hysteresis kept (0 or 1), wire and
    /// anything else ridge-like.
    pub fn segmentation(&self) -> &Plane<u8> {
        &self.segmentation
    }

    /// The last frame's skeleton after gap bridging (0 or 1), for diagnostics.
    pub fn skeleton(&self) -> &Plane<u8> {
        &self.skeleton
    }
}
