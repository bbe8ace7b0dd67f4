//! Synthetic low-dose fluoroscopy with exact ground truth: the test bench of the project.
//!
//! Frames are modelled, not drawn. Every object in the beam contributes a line integral `mu*t`
//! (soft tissue, spine, ribs, a faint contrast-filled vessel tree, a catheter, the guidewire);
//! the detector receives `N0 * exp(-sum)` photons per pixel (Beer-Lambert), blurred by its
//! point-spread function, counted with Poisson noise and scaled by its gain to 12-bit values.
//! Breathing translates everything but the spine; the wire slides forward along a fixed path.
//! The ground truth is that path's visible part, so it is exact, not a segmentation.
//!
//! [`Difficulty`] sets the dose and how the scene is laid out: in `easy` the catheter and
//! vessels keep clear of the wire; in `hard` the dose is a quarter and they cross it; `extreme`
//! quarters the dose again, looks through a circular collimator (black outside the field, where
//! the wire is not visible and so not in the ground truth), lets each pulse's dose flicker, and
//! runs the wire over the spine.
//!
//! What does not change between frames is computed once in [`SyntheticSequence::new`]: the
//! static line integrals (tissue, spine, collimator) and the moving ones (ribs, vessels,
//! catheter), which a frame samples at its breathing shift. Only the wire is rasterised per
//! frame.
//!
//! All randomness comes from this module's own xoshiro256++ generator and Poisson sampler, so a
//! seed gives the same sequence whatever the versions of other crates. (Geometry goes through
//! the platform's `exp`, `ln`, `sin`: a different libm may change a value in its last bit.)

use std::f32::consts::PI;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

use super::sequence::{
    frame_file_name, mask_path, write_centerlines, write_frame, write_mask_png, write_meta, CenterlineTruth,
    SequenceError, SequenceMeta, FPS_RANGE, FRAMES_DIR, GT_DIR,
};

/// Largest detector value: a 12-bit detector.
pub const MAXVAL: u16 = 4095;
/// Detector output for an unattenuated pixel: the gain puts it just below full scale.
pub const UNATTENUATED_COUNTS: f32 = 3900.0;
/// Smallest frame side [`SyntheticSequence`] renders.
pub const MIN_SIZE_PX: usize = 64;
/// Largest frame side [`SyntheticSequence`] renders.
pub const MAX_SIZE_PX: usize = 4096;
/// Most frames in a sequence: frame files are named with six digits.
pub const MAX_FRAMES: u32 = 1_000_000;
/// Frame rate used when a configuration's is not a positive number.
pub const DEFAULT_FPS: f32 = 15.0;

/// Sub-pixel samples per side for tubes thinner than [`THIN_TUBE_RADIUS_PX`], so a 1 px wire
/// neither aliases nor vanishes between pixel centres.
const THIN_SUPERSAMPLE: usize = 4;
/// Sub-pixel samples per side for wider tubes (their edges are soft anyway).
const WIDE_SUPERSAMPLE: usize = 2;
const THIN_TUBE_RADIUS_PX: f32 = 2.0;
/// Devices and the vessel trunk start this far outside the frame, so breathing never shows an
/// end at the border.
const OUTSIDE_PX: f32 = 40.0;
/// Spacing of ground-truth centerline points.
const TRUTH_STEP_PX: f32 = 2.0;
/// A mask marks pixels whose centre lies within the wire radius of the centerline, but at least
/// this far (more than half a pixel diagonal), so the pixel under every centerline point is set.
const MASK_MIN_RADIUS_PX: f32 = 0.75;
/// A visible centerline shorter than this counts as no wire.
const MIN_VISIBLE_PX: f32 = 1.0;

/// Line integrals of bone are given for a 512 px frame and scale with the pixel size.
const REFERENCE_SIZE_PX: f32 = 512.0;
/// Trabecular bone, in excess of the soft tissue it displaces (per px at 512 px).
const TRABECULAR_MU_PER_PX: f32 = 0.0035;
/// Cortical bone, in excess of soft tissue (per px at 512 px).
const CORTICAL_MU_PER_PX: f32 = 0.012;
/// Rib cortex (per px at 512 px); ribs are thin-walled tubes.
const RIB_MU_PER_PX: f32 = 0.02;
/// How much less the aerated lungs attenuate than the mediastinum, before normalisation.
const LUNG_MU_T: f32 = 0.6;
/// How much more the heart attenuates than the lungs beside it, before normalisation.
const HEART_MU_T: f32 = 0.35;

/// How hard the synthetic images are. Every number that depends on it is in [`SynthParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Difficulty {
    /// Normal low dose (~1200 photons/px); the wire keeps clear of the catheter and vessels.
    #[default]
    Easy,
    /// A quarter of that dose (~300 photons/px); the catheter and a vessel cross the wire.
    Hard,
    /// ~80 photons/px through a circular collimator, flickering from pulse to pulse; the wire runs
    /// over the spine and crosses the catheter and a vessel.
    Extreme,
}

impl Difficulty {
    /// Every difficulty, easiest first.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Hard, Difficulty::Extreme];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Hard => "hard",
            Difficulty::Extreme => "extreme",
        }
    }

    /// The numbers that make this difficulty.
    pub fn params(self) -> SynthParams {
        let easy = SynthParams {
            photons_per_px: 1200.0,
            psf_sigma_px: 0.7,
            tissue_mu_t: (1.0, 2.0),
            vessel_mu_per_px: 0.016,
            vessel_clearance_px: 10.0,
            vessel_crossing: None,
            catheter_mu_per_px: 0.3,
            catheter_radius_px: (2.5, 4.0),
            catheter_clearance_px: 25.0,
            catheter_crossing: None,
            wire_radius_px: (0.5, 1.5),
            wire_mu_per_px: 0.5,
            tip_mu_factor: 2.0,
            tip_length_px: (25.0, 40.0),
            breathing_amplitude_px: (4.0, 6.0),
            breathing_period_s: (3.6, 4.4),
            advance_px_per_frame: (2.0, 4.0),
            hidden_frames: (3, 5),
            wire_spine_clearance_px: Some(12.0),
            wire_on_spine_frac: 0.0,
            collimator: None,
            flicker_frac: 0.0,
        };
        // The catheter crosses where the tip is 12-24 frames after it comes into view, a vessel
        // 26-40 frames after: a 60-frame sequence shows both crossings for much of its length.
        let catheter_crossing = CrossingParams { angle_deg: (35.0, 90.0), frames_in_view: (12.0, 24.0) };
        let vessel_crossing = CrossingParams { angle_deg: (35.0, 90.0), frames_in_view: (26.0, 40.0) };
        let hard = SynthParams {
            photons_per_px: 300.0,
            catheter_clearance_px: 10.0,
            catheter_crossing: Some(catheter_crossing),
            vessel_crossing: Some(vessel_crossing),
            ..easy
        };
        match self {
            Difficulty::Easy => easy,
            Difficulty::Hard => hard,
            Difficulty::Extreme => SynthParams {
                photons_per_px: 80.0,
                wire_spine_clearance_px: None,
                wire_on_spine_frac: 0.5,
                collimator: Some(CollimatorParams {
                    radius_frac: (0.45, 0.5),
                    centre_offset_frac: 0.03,
                    edge_px: 6.0,
                    outside_mu_t: 8.0,
                }),
                flicker_frac: 0.12,
                ..hard
            },
        }
    }
}

/// What fills the vessel tree: the diluted contrast of every difficulty, or a bolus of it at
/// full strength, as while contrast is injected. Full-strength contrast makes the thin branches
/// as dark as a wire: what a network trained on diluted vessels alone takes for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VesselContrast {
    /// [`SynthParams::vessel_mu_per_px`]: faint.
    #[default]
    Diluted,
    /// [`DENSE_VESSEL_MU_PER_PX`], drawn per sequence.
    Dense,
}

/// Attenuation per px of chord of vessels full of undiluted iodinated contrast (a 3 mm artery
/// at about 0.25 mm per px, 12 px of chord, attenuates about 1: as much as the wire).
pub const DENSE_VESSEL_MU_PER_PX: (f32, f32) = (0.06, 0.12);

impl VesselContrast {
    /// Both, diluted first.
    pub const ALL: [VesselContrast; 2] = [VesselContrast::Diluted, VesselContrast::Dense];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            VesselContrast::Diluted => "diluted",
            VesselContrast::Dense => "dense",
        }
    }
}

impl fmt::Display for VesselContrast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VesselContrast {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VesselContrast::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| SynthError::UnknownVesselContrast(s.to_string()))
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Difficulty {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Difficulty::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| SynthError::UnknownDifficulty(s.to_string()))
    }
}

/// Every difficulty-dependent number. Pairs are `(min, max)` ranges a seed draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Mean photons per pixel with nothing in the beam: the dose.
    pub photons_per_px: f32,
    /// Standard deviation of the detector's Gaussian point-spread function.
    pub psf_sigma_px: f32,
    /// Range of the soft-tissue line integral over the frame.
    pub tissue_mu_t: (f32, f32),
    /// Diluted contrast in the vessels: attenuation per px of chord ([`VesselContrast::Dense`]
    /// draws a denser one instead).
    pub vessel_mu_per_px: f32,
    /// Closest a vessel wall comes to the wire (away from a crossing).
    pub vessel_clearance_px: f32,
    /// Where the vessel tree's trunk crosses the wire, or `None` to keep every vessel clear of it.
    pub vessel_crossing: Option<CrossingParams>,
    /// Catheter wall attenuation per px of chord.
    pub catheter_mu_per_px: f32,
    /// Outer radius of the catheter.
    pub catheter_radius_px: (f32, f32),
    /// Closest the catheter wall comes to the wire (away from a crossing).
    pub catheter_clearance_px: f32,
    /// Where the catheter crosses the wire, or `None` to keep it clear of the wire and enter by
    /// another border.
    pub catheter_crossing: Option<CrossingParams>,
    /// Radius of the wire.
    pub wire_radius_px: (f32, f32),
    /// Attenuation of the wire's metal per px of chord.
    pub wire_mu_per_px: f32,
    /// How much more the radiopaque tip attenuates than the rest of the wire.
    pub tip_mu_factor: f32,
    /// Length of the radiopaque tip.
    pub tip_length_px: (f32, f32),
    /// Breathing: amplitude of the translation.
    pub breathing_amplitude_px: (f32, f32),
    /// Breathing: period.
    pub breathing_period_s: (f32, f32),
    /// How far the wire advances per frame until it reaches the end of its path.
    pub advance_px_per_frame: (f32, f32),
    /// Frames at the start in which the wire is not yet in the image.
    pub hidden_frames: (u32, u32),
    /// Closest the wire comes to the vertebral column, or `None` to let it run over the spine
    /// (where bone edges cross it, a harder case).
    pub wire_spine_clearance_px: Option<f32>,
    /// Least share of the wire's visible path that lies over the vertebral bodies; above 0 the
    /// wire enters by the top or bottom border over the spine.
    pub wire_on_spine_frac: f32,
    /// A circular collimator, or `None` for a field of view that fills the frame.
    pub collimator: Option<CollimatorParams>,
    /// Pulse-to-pulse dose variation: each frame's photons are scaled by a factor drawn from
    /// `1 +- flicker_frac`.
    pub flicker_frac: f32,
}

/// How a catheter or vessel crosses the wire's path: once, at a clear angle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossingParams {
    /// Angle between the two paths where they cross, in degrees (90 is square).
    pub angle_deg: (f32, f32),
    /// The crossing is where the wire's tip gets this many frames (of advance) after the wire
    /// comes into view, so a short sequence shows it.
    pub frames_in_view: (f32, f32),
}

/// A circular collimator: lead shutters that leave a disc of the detector in the beam.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollimatorParams {
    /// Radius of the field of view, as a fraction of the frame side.
    pub radius_frac: (f32, f32),
    /// Largest offset of the field's centre from the frame's along each axis, as a fraction of
    /// the side.
    pub centre_offset_frac: f32,
    /// Width of the penumbra outside the field's edge over which the shutters' attenuation rises.
    pub edge_px: f32,
    /// Line integral of the shutters: a few photons in ten thousand get through.
    pub outside_mu_t: f32,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// The same seed gives the same sequence.
    pub seed: u64,
    /// Side of the square frame.
    pub size_px: usize,
    /// Number of frames [`write_sequence`] writes.
    pub frames: u32,
    /// Frame rate: sets the breathing phase of each frame and goes to `meta.json`.
    pub fps: f32,
    /// How hard the images are.
    pub difficulty: Difficulty,
    /// What fills the vessels.
    pub vessel_contrast: VesselContrast,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            size_px: 512,
            frames: 60,
            fps: DEFAULT_FPS,
            difficulty: Difficulty::Easy,
            vessel_contrast: VesselContrast::Diluted,
        }
    }
}

impl SynthConfig {
    /// Rejects what [`SyntheticSequence::new`] would have to clamp.
    pub fn validate(&self) -> Result<(), SynthError> {
        if !(MIN_SIZE_PX..=MAX_SIZE_PX).contains(&self.size_px) {
            return Err(SynthError::SizeOutOfRange { size_px: self.size_px });
        }
        if !FPS_RANGE.contains(&self.fps) {
            return Err(SynthError::BadFps { fps: self.fps });
        }
        if self.frames == 0 {
            return Err(SynthError::NoFrames);
        }
        if self.frames > MAX_FRAMES {
            return Err(SynthError::TooManyFrames { frames: self.frames });
        }
        Ok(())
    }
}

/// Why a synthetic sequence could not be made.
#[derive(Debug, Error)]
pub enum SynthError {
    /// The frame size is outside what the generator renders.
    #[error("synthetic frame size {size_px} px is outside {MIN_SIZE_PX}..={MAX_SIZE_PX}")]
    SizeOutOfRange {
        /// The requested side.
        size_px: usize,
    },
    /// The frame rate is not a positive number.
    #[error("synthetic frame rate {fps} is outside {}..={} (what meta.json may hold)", FPS_RANGE.start(), FPS_RANGE.end())]
    BadFps {
        /// The requested rate.
        fps: f32,
    },
    /// Zero frames requested: a sequence directory needs at least one.
    #[error("a synthetic sequence needs at least one frame")]
    NoFrames,
    /// More frames than six-digit file names hold.
    #[error("{frames} frames requested; a sequence holds at most {MAX_FRAMES}")]
    TooManyFrames {
        /// Frames requested.
        frames: u32,
    },
    /// An unknown difficulty name.
    #[error("unknown difficulty {0:?} (known: easy, hard, extreme)")]
    UnknownDifficulty(String),
    /// An unknown vessel contrast name.
    #[error("unknown vessel contrast {0:?} (known: diluted, dense)")]
    UnknownVesselContrast(String),
    /// The output already holds frames; they are not overwritten or mixed with new ones.
    #[error("{} already holds frames; write a synthetic sequence into a new or empty directory", dir.display())]
    NotEmpty {
        /// The output directory.
        dir: PathBuf,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// One step of splitmix64: seeds xoshiro and derives independent streams.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman and Vigna), written out here so a seed means the same numbers forever.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

/// Independent random streams of one seed: a change to how one part of the scene is drawn
/// leaves the others as they were.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Breathing = 1,
    Wire = 2,
    Catheter = 3,
    Spine = 4,
    Tissue = 5,
    Ribs = 6,
    Vessels = 7,
    Noise = 8,
    Collimator = 9,
    Flicker = 10,
    Contrast = 11,
}

impl Rng {
    fn from_seed(seed: u64) -> Self {
        let mut state = seed;
        Rng { s: [splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state)] }
    }

    /// The generator of `stream` number `index` (a frame for the noise) of `seed`.
    fn stream(seed: u64, stream: Stream, index: u64) -> Self {
        let mut state = seed;
        let mut state = splitmix64(&mut state) ^ (stream as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
        let mut state = splitmix64(&mut state) ^ index.wrapping_mul(0xa24b_aed4_963e_e407);
        Rng::from_seed(splitmix64(&mut state))
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, (lo, hi): (f32, f32)) -> f32 {
        lo + (hi - lo) * self.uniform() as f32
    }

    /// Uniform in [-half, half).
    fn symmetric(&mut self, half: f32) -> f32 {
        self.range((-half, half))
    }

    /// Uniform integer in 0..n (n > 0; the bias of the multiply-shift is below 2^-32).
    fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// ln(k!): exact sum for small k, Stirling's series (error < 1e-11) beyond.
fn ln_factorial(k: u64) -> f64 {
    if k < 16 {
        return (2..=k).map(|i| (i as f64).ln()).sum();
    }
    let n = k as f64;
    let n2 = n * n;
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n) - 1.0 / (360.0 * n * n2)
        + 1.0 / (1260.0 * n * n2 * n2)
}

/// A Poisson sample with mean `lambda`: Knuth's product of uniforms below 10, Hörmann's
/// transformed rejection with squeeze (PTRS, 1993) from 10 up. Non-positive or NaN means give 0.
fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda < 10.0 {
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut product = rng.uniform();
        while product > limit {
            k += 1;
            product *= rng.uniform();
        }
        return k;
    }
    let sqrt_lambda = lambda.sqrt();
    let ln_lambda = lambda.ln();
    let b = 0.931 + 2.53 * sqrt_lambda;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let v_r = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.uniform() - 0.5;
        let v = rng.uniform();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
        if us >= 0.07 && v <= v_r {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let k_int = k as u64;
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln() <= -lambda + k * ln_lambda - ln_factorial(k_int) {
            return k_int;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry

type Point = [f32; 2];

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

fn lerp_point(a: Point, b: Point, t: f32) -> Point {
    [lerp(a[0], b[0], t), lerp(a[1], b[1], t)]
}

fn distance(a: Point, b: Point) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Squared distance from `p` to segment `a`-`b`, and the parameter of the nearest point.
fn segment_nearest(a: Point, b: Point, p: Point) -> (f32, f32) {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let (apx, apy) = (p[0] - a[0], p[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 { ((apx * abx + apy * aby) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (dx, dy) = (apx - t * abx, apy - t * aby);
    (dx * dx + dy * dy, t)
}

/// Signed distance of `p` inside the square of pixel centres `[0, size-1]^2` (negative outside).
fn depth(p: Point, size: usize) -> f32 {
    let far = (size - 1) as f32;
    p[0].min(p[1]).min(far - p[0]).min(far - p[1])
}

/// The part of segment `a`-`b` inside the square of pixel centres, as parameters `(t0, t1)`
/// (Liang-Barsky).
fn clip_to_frame(a: Point, b: Point, size: usize) -> Option<(f32, f32)> {
    let far = (size - 1) as f32;
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    for (p, q) in [(-dx, a[0]), (dx, far - a[0]), (-dy, a[1]), (dy, far - a[1])] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// The collimated field of view: a disc outside which the shutters stop almost every photon.
/// It does not breathe: the shutters sit on the tube, not on the patient.
#[derive(Debug, Clone, Copy)]
struct Field {
    centre: Point,
    radius_px: f32,
    edge_px: f32,
    outside_mu_t: f32,
}

impl Field {
    fn draw(rng: &mut Rng, size: usize, spec: &CollimatorParams) -> Self {
        let (s, half) = (size as f32, 0.5 * (size - 1) as f32);
        let offset = spec.centre_offset_frac * s;
        Field {
            centre: [half + rng.symmetric(offset), half + rng.symmetric(offset)],
            radius_px: rng.range(spec.radius_frac) * s,
            edge_px: spec.edge_px,
            outside_mu_t: spec.outside_mu_t,
        }
    }

    /// Signed distance of `p` inside the field's edge (negative outside).
    fn depth(&self, p: Point) -> f32 {
        self.radius_px - distance(p, self.centre)
    }

    /// Line integral of the shutters at `p`: none inside the field, rising smoothly over
    /// `edge_px` outside it (the penumbra of the focal spot).
    fn mu_t(&self, p: Point) -> f32 {
        self.outside_mu_t * smoothstep(0.0, self.edge_px, -self.depth(p))
    }

    /// The part of segment `a`-`b` inside the field, as parameters `(t0, t1)`.
    fn clip(&self, a: Point, b: Point) -> Option<(f32, f32)> {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let (fx, fy) = (a[0] - self.centre[0], a[1] - self.centre[1]);
        let qa = dx * dx + dy * dy;
        let qb = fx * dx + fy * dy;
        let qc = fx * fx + fy * fy - self.radius_px * self.radius_px;
        if qa == 0.0 {
            return (qc <= 0.0).then_some((0.0, 1.0));
        }
        let disc = qb * qb - qa * qc;
        if disc < 0.0 {
            return None;
        }
        let root = disc.sqrt();
        let (t0, t1) = (((-qb - root) / qa).max(0.0), ((-qb + root) / qa).min(1.0));
        (t0 <= t1).then_some((t0, t1))
    }
}

/// Where polylines `a` and `b` cross, and the angle between the crossing segments in degrees.
/// Segment ends count, with a margin for rounding: paths are built through points on others.
fn crossings(a: &[Point], b: &[Point]) -> Vec<(Point, f32)> {
    let cross = |u: Point, v: Point| u[0] * v[1] - u[1] * v[0];
    let within = |t: f32| (-1e-4..=1.0 + 1e-4).contains(&t);
    let mut found = Vec::new();
    for p in a.windows(2) {
        for q in b.windows(2) {
            let (r, s) = ([p[1][0] - p[0][0], p[1][1] - p[0][1]], [q[1][0] - q[0][0], q[1][1] - q[0][1]]);
            let denom = cross(r, s);
            if denom == 0.0 {
                continue;
            }
            let qp = [q[0][0] - p[0][0], q[0][1] - p[0][1]];
            let (t, u) = (cross(qp, s) / denom, cross(qp, r) / denom);
            if within(t) && within(u) {
                let sin = (denom / (r[0].hypot(r[1]) * s[0].hypot(s[1]))).abs().min(1.0);
                found.push((lerp_point(p[0], p[1], t), sin.asin().to_degrees()));
            }
        }
    }
    found
}

/// True when no two points of `a` and `b` are closer than `min_px`.
fn clear_of(a: &[Point], b: &[Point], min_px: f32) -> bool {
    let min2 = min_px * min_px;
    a.iter().all(|p| b.iter().all(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) >= min2))
}

/// True when points of a curve sampled every `step_px` that are more than `min_arc_px` apart
/// along it stay at least `min_px` apart in space: no loops, no near self-contact.
fn no_self_approach(points: &[Point], step_px: f32, min_arc_px: f32, min_px: f32) -> bool {
    let skip = (min_arc_px / step_px).ceil() as usize;
    let min2 = min_px * min_px;
    points
        .iter()
        .enumerate()
        .all(|(i, p)| points.iter().skip(i + skip).all(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) >= min2))
}

/// A frame border, by which a device or vessel enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Border {
    Left,
    Right,
    Top,
    Bottom,
}

impl Border {
    const ALL: [Border; 4] = [Border::Left, Border::Right, Border::Top, Border::Bottom];

    /// The point at fraction `along` of this border, and the inward direction (radians).
    fn entry(self, along: f32, size: usize) -> (Point, f32) {
        let far = (size - 1) as f32;
        match self {
            Border::Left => ([0.0, along * far], 0.0),
            Border::Right => ([far, along * far], PI),
            Border::Top => ([along * far, 0.0], 0.5 * PI),
            Border::Bottom => ([along * far, far], -0.5 * PI),
        }
    }
}

/// A smooth random curve: straight for `straight_px`, then curvature drawn as a sum of three
/// sinusoids of arc length, clamped to `1 / min_radius_px`.
#[derive(Debug, Clone, Copy)]
struct CurveSpec {
    start: Point,
    heading_rad: f32,
    straight_px: f32,
    length_px: f32,
    step_px: f32,
    min_radius_px: f32,
}

fn random_curve(rng: &mut Rng, spec: &CurveSpec) -> Vec<Point> {
    let max_curvature = 1.0 / spec.min_radius_px;
    let waves: [(f32, f32, f32); 3] = [
        (rng.symmetric(1.4), 2.0 * PI / rng.range((150.0, 400.0)), rng.range((0.0, 2.0 * PI))),
        (rng.symmetric(0.9), 2.0 * PI / rng.range((70.0, 150.0)), rng.range((0.0, 2.0 * PI))),
        (rng.symmetric(0.5), 2.0 * PI / rng.range((35.0, 70.0)), rng.range((0.0, 2.0 * PI))),
    ];
    let n = (spec.length_px / spec.step_px).ceil().max(1.0) as usize;
    let mut points = Vec::with_capacity(n + 1);
    let mut p = spec.start;
    let mut heading = spec.heading_rad;
    points.push(p);
    for i in 0..n {
        let s = (i as f32 + 0.5) * spec.step_px - spec.straight_px;
        let curvature = if s < 0.0 {
            0.0
        } else {
            let sum: f32 = waves.iter().map(|&(amp, k, phase)| amp * (k * s + phase).sin()).sum();
            max_curvature * sum.clamp(-1.0, 1.0)
        };
        let mid = heading + 0.5 * curvature * spec.step_px;
        p = [p[0] + spec.step_px * mid.cos(), p[1] + spec.step_px * mid.sin()];
        heading += curvature * spec.step_px;
        points.push(p);
    }
    points
}

/// A tube around a polyline sampled every `step_px`, with a radius per point.
#[derive(Debug, Clone, Default)]
struct Tube {
    points: Vec<Point>,
    radius_px: Vec<f32>,
    arc_px: Vec<f32>,
    step_px: f32,
}

impl Tube {
    /// A tube whose radius goes linearly from `radius_px.0` at the start to `.1` at the end.
    fn new(points: Vec<Point>, step_px: f32, radius_px: (f32, f32)) -> Self {
        let mut arc_px = Vec::with_capacity(points.len());
        let mut s = 0.0;
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                s += distance(points[i - 1], *p);
            }
            arc_px.push(s);
        }
        let total = s.max(f32::EPSILON);
        let radius_px = arc_px.iter().map(|a| lerp(radius_px.0, radius_px.1, a / total)).collect();
        Tube { points, radius_px, arc_px, step_px }
    }

    fn length_px(&self) -> f32 {
        self.arc_px.last().copied().unwrap_or(0.0)
    }

    fn max_radius_px(&self) -> f32 {
        self.radius_px.iter().copied().fold(0.0, f32::max)
    }

    /// Radius at arc length `s`.
    fn radius_at(&self, s: f32) -> f32 {
        let (k, t) = self.locate(s);
        lerp(self.radius_px[k], self.radius_px[k + 1], t)
    }

    /// Point at arc length `s` (clamped to the tube).
    fn point_at(&self, s: f32) -> Point {
        let (k, t) = self.locate(s);
        lerp_point(self.points[k], self.points[k + 1], t)
    }

    /// Heading at arc length `s`.
    fn heading_at(&self, s: f32) -> f32 {
        let (k, _) = self.locate(s);
        let (a, b) = (self.points[k], self.points[k + 1]);
        (b[1] - a[1]).atan2(b[0] - a[0])
    }

    /// Segment index and parameter of arc length `s`; the tube has at least two points.
    fn locate(&self, s: f32) -> (usize, f32) {
        let last = self.points.len() - 2;
        let k = self.arc_px.partition_point(|&a| a <= s).saturating_sub(1).min(last);
        let len = self.arc_px[k + 1] - self.arc_px[k];
        let t = if len > 0.0 { ((s - self.arc_px[k]) / len).clamp(0.0, 1.0) } else { 0.0 };
        (k, t)
    }

    /// Replaces the contents with the part of `path` up to arc length `end_px`, reusing the
    /// allocations.
    fn set_prefix(&mut self, path: &Tube, end_px: f32) {
        let (k, t) = path.locate(end_px);
        self.points.clear();
        self.radius_px.clear();
        self.arc_px.clear();
        self.points.extend_from_slice(&path.points[..=k]);
        self.radius_px.extend_from_slice(&path.radius_px[..=k]);
        self.arc_px.extend_from_slice(&path.arc_px[..=k]);
        self.points.push(lerp_point(path.points[k], path.points[k + 1], t));
        self.radius_px.push(lerp(path.radius_px[k], path.radius_px[k + 1], t));
        self.arc_px.push(lerp(path.arc_px[k], path.arc_px[k + 1], t));
        self.step_px = path.step_px;
    }
}

/// Cross-section of a tube.
#[derive(Debug, Clone, Copy)]
enum Profile {
    /// A solid cylinder: chord `2 sqrt(r^2 - d^2)`.
    Solid,
    /// A wall of `1 - inner_frac` of the radius around a core attenuating `core_weight` as much.
    Shell { inner_frac: f32, core_weight: f32 },
}

impl Profile {
    /// Weighted chord length at squared distance `d2` from the axis of a tube of radius `r`.
    fn chord(self, r: f32, d2: f32) -> f32 {
        let outer = 2.0 * (r * r - d2).max(0.0).sqrt();
        match self {
            Profile::Solid => outer,
            Profile::Shell { inner_frac, core_weight } => {
                let ri = inner_frac * r;
                let inner = 2.0 * (ri * ri - d2).max(0.0).sqrt();
                outer - inner + core_weight * inner
            }
        }
    }
}

/// How a tube's values meet what is already in the map.
#[derive(Debug, Clone, Copy)]
enum Combine {
    /// Separate objects: line integrals add.
    Add,
    /// Branches of one vessel tree: where they overlap the union counts once.
    Max,
}

/// A row-major `f32` image of line integrals.
struct Map<'a> {
    values: &'a mut [f32],
    width: usize,
    height: usize,
}

/// Adds a tube's pixel-averaged line integral `chord * mu(arc length)` to `map`, with the tube's
/// points shifted by `offset`.
///
/// Each pixel is written once: by the segment nearest its centre among a window of neighbours
/// wide enough to hold every segment that can reach it (curves here never come back near
/// themselves). Its value is the mean over `n x n` sub-pixel samples of the chord through the
/// nearest segment in that window, so the union of segments is one smooth tube.
fn splat_tube(tube: &Tube, offset: Point, profile: Profile, combine: Combine, mu: impl Fn(f32) -> f32, map: &mut Map) {
    let count = tube.points.len();
    if count < 2 || map.width == 0 || map.height == 0 {
        return;
    }
    let segments = count - 1;
    let r_max = tube.max_radius_px();
    let n = if r_max < THIN_TUBE_RADIUS_PX { THIN_SUPERSAMPLE } else { WIDE_SUPERSAMPLE };
    let inv_samples = 1.0 / (n * n) as f32;
    let window = ((2.0 * r_max + 3.0) / tube.step_px.max(0.1)).ceil() as usize + 1;
    let reach = r_max + 1.0;
    let at = |i: usize| [tube.points[i][0] + offset[0], tube.points[i][1] + offset[1]];
    let (x_far, y_far) = ((map.width - 1) as f32, (map.height - 1) as f32);
    for k in 0..segments {
        let (a, b) = (at(k), at(k + 1));
        let x0 = (a[0].min(b[0]) - reach).floor().max(0.0);
        let x1 = (a[0].max(b[0]) + reach).ceil().min(x_far);
        let y0 = (a[1].min(b[1]) - reach).floor().max(0.0);
        let y1 = (a[1].max(b[1]) + reach).ceil().min(y_far);
        if x0 > x1 || y0 > y1 {
            continue;
        }
        let (lo, hi) = (k.saturating_sub(window), (k + window).min(segments - 1));
        let nearest = |p: Point| {
            let mut best = (f32::INFINITY, k, 0.0);
            for j in lo..=hi {
                let (d2, t) = segment_nearest(at(j), at(j + 1), p);
                if d2 < best.0 {
                    best = (d2, j, t);
                }
            }
            best
        };
        for y in y0 as usize..=y1 as usize {
            for x in x0 as usize..=x1 as usize {
                let centre = [x as f32, y as f32];
                let (d2, owner, _) = nearest(centre);
                if owner != k || d2 > reach * reach {
                    continue;
                }
                let mut sum = 0.0;
                for sy in 0..n {
                    for sx in 0..n {
                        let p = [
                            centre[0] + (sx as f32 + 0.5) / n as f32 - 0.5,
                            centre[1] + (sy as f32 + 0.5) / n as f32 - 0.5,
                        ];
                        let (d2, j, t) = nearest(p);
                        let r = lerp(tube.radius_px[j], tube.radius_px[j + 1], t);
                        if d2 < r * r {
                            sum += profile.chord(r, d2) * mu(lerp(tube.arc_px[j], tube.arc_px[j + 1], t));
                        }
                    }
                }
                let value = sum * inv_samples;
                let cell = &mut map.values[y * map.width + x];
                match combine {
                    Combine::Add => *cell += value,
                    Combine::Max => *cell = cell.max(value),
                }
            }
        }
    }
}

/// Sets to 255 every pixel whose centre lies within `radius_px` of the polyline.
fn mark_polyline(line: &[Point], radius_px: f32, mask: &mut [u8], size: usize) {
    let far = (size - 1) as f32;
    let r2 = radius_px * radius_px;
    for w in line.windows(2) {
        let (a, b) = (w[0], w[1]);
        let x0 = (a[0].min(b[0]) - radius_px).floor().max(0.0) as usize;
        let x1 = (a[0].max(b[0]) + radius_px).ceil().min(far) as usize;
        let y0 = (a[1].min(b[1]) - radius_px).floor().max(0.0) as usize;
        let y1 = (a[1].max(b[1]) + radius_px).ceil().min(far) as usize;
        for y in y0..=y1 {
            for x in x0..=x1 {
                if segment_nearest(a, b, [x as f32, y as f32]).0 <= r2 {
                    mask[y * size + x] = 255;
                }
            }
        }
    }
}

/// Points every `step_px` of arc length along `line`, then its exact end.
fn resample(line: &[Point], step_px: f32) -> Vec<Point> {
    let (Some(&first), Some(&last)) = (line.first(), line.last()) else { return Vec::new() };
    let mut out = vec![first];
    let mut next = step_px;
    let mut start = 0.0;
    for w in line.windows(2) {
        let len = distance(w[0], w[1]);
        while len > 0.0 && next <= start + len {
            out.push(lerp_point(w[0], w[1], (next - start) / len));
            next += step_px;
        }
        start += len;
    }
    let n = out.len();
    match out.last_mut() {
        Some(end) if n > 1 && distance(*end, last) < 0.5 * step_px => *end = last,
        _ => out.push(last),
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Anatomy and devices

/// Breathing: a smooth periodic translation, mostly cranio-caudal.
#[derive(Debug, Clone, Copy)]
struct Breathing {
    amplitude_px: f32,
    period_s: f32,
    phase_rad: f32,
    direction: Point,
}

impl Breathing {
    fn draw(rng: &mut Rng, params: &SynthParams) -> Self {
        let angle = 0.5 * PI + rng.symmetric(0.7);
        Breathing {
            amplitude_px: rng.range(params.breathing_amplitude_px),
            period_s: rng.range(params.breathing_period_s),
            phase_rad: rng.range((0.0, 2.0 * PI)),
            direction: [angle.cos(), angle.sin()],
        }
    }

    /// Largest displacement, in any direction.
    fn max_px(&self) -> f32 {
        self.amplitude_px
    }

    /// Displacement of the moving anatomy at time `t_s`.
    fn shift_px(&self, t_s: f64) -> Point {
        let phase = 2.0 * std::f64::consts::PI * t_s / f64::from(self.period_s) + f64::from(self.phase_rad);
        let a = self.amplitude_px * phase.sin() as f32;
        [a * self.direction[0], a * self.direction[1]]
    }
}

/// The guidewire: its full path (anatomy coordinates, starting outside the frame), and how it
/// advances.
#[derive(Debug, Clone)]
struct Wire {
    path: Tube,
    border: Border,
    /// Arc length at which the path, at rest, comes into view.
    entry_px: f32,
    radius_px: f32,
    mu_per_px: f32,
    tip_factor: f32,
    tip_length_px: f32,
    /// Arc length of the tip in frame 0.
    tip_start_px: f32,
    advance_px_per_frame: f32,
}

impl Wire {
    fn tip_px(&self, index: u32) -> f32 {
        (self.tip_start_px + self.advance_px_per_frame * index as f32).min(self.path.length_px())
    }

    /// Attenuation per px of chord at arc length `s` when the tip is at `tip_px`: the distal
    /// `tip_length_px` are radiopaque, with a 2 px transition.
    fn mu_at(&self, s: f32, tip_px: f32) -> f32 {
        let start = tip_px - self.tip_length_px;
        self.mu_per_px * (1.0 + (self.tip_factor - 1.0) * smoothstep(start - 1.0, start + 1.0, s))
    }
}

/// Room the wire keeps from the frame border, and its tightest bend, for a frame of `size`.
fn device_margins(size: usize) -> (f32, f32) {
    let size = size as f32;
    (20.0f32.min(0.08 * size), 40.0f32.min(0.1 * size))
}

/// True when a device path enters the frame after `OUTSIDE_PX` and then stays inside, at
/// least `margin_px` from every border once well in.
fn stays_inside(points: &[Point], step_px: f32, size: usize, margin_px: f32) -> bool {
    points.iter().enumerate().all(|(i, &p)| {
        let inside_px = i as f32 * step_px - OUTSIDE_PX;
        inside_px < 2.0 || depth(p, size) >= (0.5 * inside_px).min(margin_px)
    })
}

/// True when a path, from where it first comes into `field`, stays in it, at least
/// `margin_px` from its edge once well in: through a collimator the wire is one visible piece.
fn stays_in_field(points: &[Point], step_px: f32, field: &Field, margin_px: f32) -> bool {
    let Some(first) = points.iter().position(|&p| field.depth(p) >= 0.0) else { return false };
    points[first..].iter().enumerate().all(|(i, &p)| {
        let inside_px = i as f32 * step_px;
        inside_px < 2.0 || field.depth(p) >= (0.5 * inside_px).min(margin_px)
    })
}

/// The wire's path, thickness and schedule. It enters at frame `hidden_frames` or soon after:
/// the tip starts back far enough to stay out of view in the frames before, whatever the
/// breathing does to it then. Through a collimator, it stays in the field once in it.
fn plan_wire(
    rng: &mut Rng,
    size: usize,
    params: &SynthParams,
    spine: &Spine,
    field: Option<&Field>,
    breathing: &Breathing,
    fps: f32,
) -> Wire {
    let (margin_px, min_radius_px) = device_margins(size);
    let step_px = 1.0;
    let far = (size - 1) as f32;
    let on_spine = params.wire_on_spine_frac > 0.0;
    let in_view = |p: Point| depth(p, size) >= 0.0 && field.is_none_or(|f| f.depth(p) >= 0.0);
    let (points, border) = (0..300)
        .find_map(|_| {
            let (border, entry, heading_rad) = if on_spine {
                // Along the column, from above or below.
                let border = if rng.below(2) == 0 { Border::Top } else { Border::Bottom };
                let y = if border == Border::Top { 0.0 } else { far };
                let x = spine.centre_x_at(y) + rng.symmetric(0.5 * spine.half_width_px);
                let (entry, inward) = border.entry(x / far, size);
                (border, entry, inward + rng.symmetric(0.3))
            } else {
                let border = Border::ALL[rng.below(4) as usize];
                let (entry, inward) = border.entry(rng.range((0.2, 0.8)), size);
                (border, entry, inward + rng.symmetric(0.6))
            };
            let start = [entry[0] - OUTSIDE_PX * heading_rad.cos(), entry[1] - OUTSIDE_PX * heading_rad.sin()];
            let length_px = OUTSIDE_PX + rng.range((0.6, 0.9)) * size as f32;
            let spec = CurveSpec { start, heading_rad, straight_px: OUTSIDE_PX, length_px, step_px, min_radius_px };
            let points = random_curve(rng, &spec);
            let off_spine =
                params.wire_spine_clearance_px.is_none_or(|c| spine.clear_of(&points, c + breathing.max_px()));
            let over_spine = !on_spine || {
                let (seen, over) = points
                    .iter()
                    .filter(|&&p| in_view(p))
                    .fold((0usize, 0usize), |(seen, over), &p| (seen + 1, over + usize::from(spine.covers(p))));
                seen > 0 && over as f32 >= params.wire_on_spine_frac * seen as f32
            };
            (stays_inside(&points, step_px, size, margin_px)
                && no_self_approach(&points, step_px, 60.0, 25.0)
                && off_spine
                && over_spine
                && field.is_none_or(|f| stays_in_field(&points, step_px, f, margin_px)))
            .then_some((points, border))
        })
        .unwrap_or_else(|| {
            // Straight down from the top border, left of any spine or along it when the wire
            // must be over it: valid for any size.
            let x = |y: f32| if on_spine { spine.centre_x_at(y) } else { 0.12 * far };
            let points = (0..=(OUTSIDE_PX + 0.7 * size as f32) as usize)
                .map(|i| [x(i as f32 - OUTSIDE_PX), i as f32 - OUTSIDE_PX])
                .collect();
            (points, Border::Top)
        });
    let radius_px = rng.range(params.wire_radius_px);
    let advance_px_per_frame = rng.range(params.advance_px_per_frame);
    let (lo, hi) = params.hidden_frames;
    let hidden_frames = lo + rng.below(hi.saturating_sub(lo) + 1);
    let path = Tube::new(points, step_px, (radius_px, radius_px));
    let shift_at = |i: u32| breathing.shift_px(f64::from(i) / f64::from(fps));
    let tip_start_px = match field {
        None => {
            // How far in the tip reaches per px of arc on the straight stretch, and where it
            // is when its cap, shifted by breathing, still ends a pixel outside.
            let (_, inward_rad) = border.entry(0.5, size);
            let inward = [inward_rad.cos(), inward_rad.sin()];
            let (a, b) = (path.points[0], path.points[1]);
            let along = ((b[0] - a[0]) * inward[0] + (b[1] - a[1]) * inward[1]) / distance(a, b).max(f32::EPSILON);
            let lead_px = (0..hidden_frames)
                .map(|i| {
                    let shift = shift_at(i);
                    let shift_in = shift[0] * inward[0] + shift[1] * inward[1];
                    advance_px_per_frame * i as f32 + (shift_in + radius_px + 1.0) / along.max(0.1)
                })
                .fold(radius_px + 1.0, f32::max);
            (OUTSIDE_PX - lead_px).max(0.0)
        }
        Some(field) => {
            // The path may cross the frame border and the penumbra at any angle: find, for each
            // hidden frame, the first point whose cap could show, and keep the tip short of it.
            let reach = radius_px + 1.0;
            (0..hidden_frames.max(1))
                .map(|i| {
                    let shift = shift_at(i);
                    let shows = |p: &Point| {
                        let q = [p[0] + shift[0], p[1] + shift[1]];
                        depth(q, size) > -reach && field.depth(q) > -reach
                    };
                    let first = path.points.iter().position(shows).map_or(path.length_px(), |k| path.arc_px[k]);
                    first - 1.0 - advance_px_per_frame * i as f32
                })
                .fold(f32::INFINITY, f32::min)
                .max(0.0)
        }
    };
    let entry_px = path.points.iter().position(|&p| in_view(p)).map_or(0.0, |k| path.arc_px[k]);
    Wire {
        path,
        border,
        entry_px,
        radius_px,
        mu_per_px: params.wire_mu_per_px,
        tip_factor: params.tip_mu_factor,
        tip_length_px: rng.range(params.tip_length_px),
        tip_start_px,
        advance_px_per_frame,
    }
}

/// The points within `reach` places of index `k`.
fn around(points: &[Point], k: usize, reach: usize) -> &[Point] {
    &points[k.saturating_sub(reach)..(k + reach + 1).min(points.len())]
}

/// The shape of a path across the wire.
#[derive(Debug, Clone, Copy)]
struct AcrossSpec {
    /// Straight run on beyond the frame border, so breathing never shows the path's end.
    outside_px: f32,
    /// Length on from the crossing.
    ahead_px: f32,
    min_radius_px: f32,
    /// Room kept from the wire's axis away from the crossing.
    gap_px: f32,
}

/// A path that crosses the wire's once, at a clear angle, where `crossing` puts it: traced
/// back from the crossing until it leaves the frame, then straight on, and forward from the
/// crossing. Away from the crossing it keeps `spec.gap_px` from the wire. `None` when this draw
/// does not.
fn path_across_wire(
    rng: &mut Rng,
    size: usize,
    wire: &Wire,
    crossing: &CrossingParams,
    spec: &AcrossSpec,
) -> Option<Vec<Point>> {
    let step_px = 1.0;
    let arc_px = wire.entry_px + wire.advance_px_per_frame * rng.range(crossing.frames_in_view);
    // In the middle of the wire's visible length, wherever its tip ends.
    let arc_px = arc_px.min(wire.entry_px + 0.7 * (wire.path.length_px() - wire.entry_px));
    let at = wire.path.point_at(arc_px);
    let angle_rad = rng.range(crossing.angle_deg).to_radians();
    let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
    let reverse = if rng.below(2) == 0 { 0.0 } else { PI };
    let heading_rad = wire.path.heading_at(arc_px) + side * angle_rad + reverse;
    // Straight lines at this angle are `gap_px` apart this far from the crossing; the path is
    // straight there and may bend beyond, so both are checked from half again as far.
    let near_px = spec.gap_px / angle_rad.sin();
    let (straight_px, min_radius_px) = (near_px, spec.min_radius_px);
    let curve =
        |heading_rad, length_px| CurveSpec { start: at, heading_rad, straight_px, length_px, step_px, min_radius_px };
    let back = random_curve(rng, &curve(heading_rad + PI, 2.0 * size as f32));
    let exit = back.iter().position(|&p| depth(p, size) < 0.0).filter(|&k| k > 0)?;
    let (a, b) = (back[exit - 1], back[exit]);
    let dir = [b[0] - a[0], b[1] - a[1]];
    let outside = (spec.outside_px / step_px).ceil() as usize;
    let mut points: Vec<Point> =
        (1..=outside).rev().map(|i| [b[0] + i as f32 * dir[0], b[1] + i as f32 * dir[1]]).collect();
    points.extend(back[..=exit].iter().rev());
    let crossing_at = points.len() - 1;
    points.extend_from_slice(&random_curve(rng, &curve(heading_rad, spec.ahead_px))[1..]);
    // Only the parts within `check_px` of the crossing along both paths may come close, and
    // there they cross once (small frames hold tight bends).
    let check_px = 1.5 * near_px;
    let (reach, wire_reach) = ((check_px / step_px) as usize + 1, (check_px / wire.path.step_px) as usize + 1);
    let wire_at = wire.path.locate(arc_px).0;
    let apart = |points: &[Point], k: usize, reach: usize| -> Vec<Point> {
        points.iter().enumerate().filter(|&(i, _)| i.abs_diff(k) > reach).map(|(_, &p)| p).collect()
    };
    let once = crossings(around(&points, crossing_at, reach), around(&wire.path.points, wire_at, wire_reach))
        .iter()
        .all(|&(p, _)| distance(p, at) < 1.0);
    (once
        && clear_of(&apart(&points, crossing_at, reach), &wire.path.points, spec.gap_px)
        && clear_of(&points, &apart(&wire.path.points, wire_at, wire_reach), spec.gap_px))
    .then_some(points)
}

/// A catheter: crossing the wire as `catheter_crossing` says, or else entering by another
/// border than the wire; either way keeping `catheter_clearance_px` from the wire elsewhere.
/// `None` when no such path is found (small frames).
fn plan_catheter(rng: &mut Rng, size: usize, params: &SynthParams, wire: &Wire) -> Option<Tube> {
    let (margin_px, _) = device_margins(size);
    let step_px = 1.0;
    let min_radius_px = 60.0f32.min(0.15 * size as f32);
    if let Some(crossing) = &params.catheter_crossing {
        let s = size as f32;
        return (0..300).find_map(|_| {
            let radius_px = rng.range(params.catheter_radius_px);
            let spec = AcrossSpec {
                outside_px: OUTSIDE_PX,
                ahead_px: rng.range((0.1 * s, 0.3 * s)),
                min_radius_px,
                gap_px: params.catheter_clearance_px + radius_px + wire.radius_px,
            };
            let points = path_across_wire(rng, size, wire, crossing, &spec)?;
            (stays_inside(&points, step_px, size, margin_px) && no_self_approach(&points, step_px, 60.0, 25.0))
                .then(|| Tube::new(points, step_px, (radius_px, radius_px)))
        });
    }
    let borders: Vec<Border> = Border::ALL.into_iter().filter(|&b| b != wire.border).collect();
    (0..300).find_map(|_| {
        let border = borders[rng.below(borders.len() as u32) as usize];
        let radius_px = rng.range(params.catheter_radius_px);
        let (entry, inward) = border.entry(rng.range((0.15, 0.85)), size);
        let heading_rad = inward + rng.symmetric(0.8);
        let start = [entry[0] - OUTSIDE_PX * heading_rad.cos(), entry[1] - OUTSIDE_PX * heading_rad.sin()];
        let length_px = OUTSIDE_PX + rng.range((0.3, 0.55)) * size as f32;
        let spec = CurveSpec { start, heading_rad, straight_px: OUTSIDE_PX, length_px, step_px, min_radius_px };
        let points = random_curve(rng, &spec);
        let clearance = params.catheter_clearance_px + radius_px + wire.radius_px;
        (stays_inside(&points, step_px, size, margin_px)
            && no_self_approach(&points, step_px, 60.0, 25.0)
            && clear_of(&points, &wire.path.points, clearance))
        .then(|| Tube::new(points, step_px, (radius_px, radius_px)))
    })
}

/// A branching tree of contrast-filled vessels, radius 4 px tapering to 1.5 px, kept
/// `vessel_clearance_px` from the wire but where `vessel_crossing` has the trunk cross it.
fn plan_vessels(rng: &mut Rng, size: usize, params: &SynthParams, wire: &Wire) -> Vec<Tube> {
    const MIN_RADIUS_PX: f32 = 1.5;
    let step_px = 1.0;
    let s = size as f32;
    let clear = |points: &[Point], radius_px: f32| {
        clear_of(points, &wire.path.points, params.vessel_clearance_px + radius_px + wire.radius_px)
            && no_self_approach(points, step_px, 40.0, 12.0)
    };
    let back_px = 0.5 * OUTSIDE_PX;
    let across = |rng: &mut Rng, crossing: &CrossingParams| {
        (0..300).find_map(|_| {
            let radius_px = (rng.range((3.3, 4.0)), rng.range((2.3, 2.8)));
            let spec = AcrossSpec {
                outside_px: back_px,
                ahead_px: rng.range((0.2 * s, 0.5 * s)),
                min_radius_px: 30.0,
                gap_px: params.vessel_clearance_px + radius_px.0 + wire.radius_px,
            };
            let points = path_across_wire(rng, size, wire, crossing, &spec)?;
            no_self_approach(&points, step_px, 40.0, 12.0).then(|| Tube::new(points, step_px, radius_px))
        })
    };
    // Where no crossing trunk is found (small frames), the tree keeps clear of the wire.
    let trunk = params.vessel_crossing.and_then(|crossing| across(rng, &crossing)).or_else(|| {
        (0..50).find_map(|_| {
            let (entry, inward) = Border::ALL[rng.below(4) as usize].entry(rng.range((0.15, 0.85)), size);
            let heading_rad = inward + rng.symmetric(0.9);
            let start = [entry[0] - back_px * heading_rad.cos(), entry[1] - back_px * heading_rad.sin()];
            let length_px = back_px + rng.range((0.5, 0.9)) * s;
            let radius_px = (rng.range((3.3, 4.0)), rng.range((2.3, 2.8)));
            let spec = CurveSpec { start, heading_rad, straight_px: 0.0, length_px, step_px, min_radius_px: 30.0 };
            let points = random_curve(rng, &spec);
            clear(&points, radius_px.0).then(|| Tube::new(points, step_px, radius_px))
        })
    });
    let Some(trunk) = trunk else {
        return Vec::new();
    };
    let branch = |rng: &mut Rng, parent: &Tube, length_frac: (f32, f32)| {
        (0..10).find_map(|_| {
            let at_px = rng.range((0.15, 0.8)) * parent.length_px();
            let radius_px = (0.75 * parent.radius_at(at_px)).max(MIN_RADIUS_PX);
            let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
            let spec = CurveSpec {
                start: parent.point_at(at_px),
                heading_rad: parent.heading_at(at_px) + side * rng.range((0.4, 1.0)),
                straight_px: 0.0,
                length_px: rng.range(length_frac) * s,
                step_px,
                min_radius_px: 25.0,
            };
            let points = random_curve(rng, &spec);
            clear(&points, radius_px).then(|| Tube::new(points, step_px, (radius_px, MIN_RADIUS_PX)))
        })
    };
    // Two to four branches off the trunk, then up to two off each of those.
    let mut tree = vec![trunk];
    for _ in 0..2 + rng.below(3) {
        let found = branch(rng, &tree[0], (0.15, 0.4));
        tree.extend(found);
    }
    for parent in 1..tree.len() {
        for _ in 0..rng.below(3) {
            let found = branch(rng, &tree[parent], (0.08, 0.2));
            tree.extend(found);
        }
    }
    tree
}

/// The vertebral column: rounded blocks with disc gaps and cortical rims, pedicles and spinous
/// processes, slightly tilted and widening caudally.
#[derive(Debug, Clone, Copy)]
struct Spine {
    centre_x_px: f32,
    tilt: f32,
    first_y_px: f32,
    period_px: f32,
    half_width_px: f32,
    half_depth_px: f32,
    half_height_px: f32,
    cortex_px: f32,
    size: usize,
}

impl Spine {
    fn draw(rng: &mut Rng, size: usize) -> Self {
        let s = size as f32;
        let period_px = rng.range((0.14, 0.16)) * s;
        Spine {
            centre_x_px: rng.range((0.38, 0.62)) * s,
            tilt: rng.symmetric(0.12),
            first_y_px: rng.range((-1.0, 0.0)) * period_px,
            period_px,
            half_width_px: rng.range((0.08, 0.095)) * s,
            half_depth_px: 0.07 * s,
            half_height_px: 0.37 * period_px,
            cortex_px: 0.008 * s,
            size,
        }
    }

    /// True when every point keeps `clearance_px` from the column's sides (the widest
    /// vertebra's half width, so the test holds at every height).
    fn clear_of(&self, points: &[Point], clearance_px: f32) -> bool {
        let half_width_px = self.half_width_px * 1.2 + clearance_px;
        points.iter().all(|p| (p[0] - self.centre_x_at(p[1])).abs() >= half_width_px)
    }

    /// True when `p` lies well over the vertebral bodies, not just their rims.
    fn covers(&self, p: Point) -> bool {
        (p[0] - self.centre_x_at(p[1])).abs() <= 0.8 * self.half_width_px
    }

    fn centre_x_at(&self, y: f32) -> f32 {
        self.centre_x_px + self.tilt * (y - 0.5 * self.size as f32)
    }

    /// Centre of vertebra `k` and its scale (vertebrae grow caudally).
    fn vertebra(&self, k: f32) -> (Point, f32) {
        let y = self.first_y_px + (k + 0.5) * self.period_px;
        ([self.centre_x_at(y), y], 0.9 + 0.2 * (y / self.size as f32).clamp(-0.5, 1.5))
    }

    /// Line integral at `p`, in excess of the soft tissue the bone displaces.
    fn mu_t(&self, p: Point) -> f32 {
        let bone_scale = REFERENCE_SIZE_PX / self.size as f32;
        let k = ((p[1] - self.first_y_px) / self.period_px).floor();
        let (c, scale) = self.vertebra(k);
        let (u, v) = (p[0] - c[0], p[1] - c[1]);
        let (a, b, h, cortex) =
            (self.half_width_px * scale, self.half_depth_px * scale, self.half_height_px * scale, self.cortex_px);
        if u.abs() >= a {
            return 0.0;
        }
        // Body: (u/a)^2 + (w/b)^2 + (v/h)^8 <= 1, a rounded block; its chord along the beam w.
        let chord = |a: f32, b: f32, h: f32| 2.0 * b * (1.0 - (u / a).powi(2) - (v / h).powi(8)).max(0.0).sqrt();
        let outer = chord(a, b, h);
        let inner = chord(a - cortex, b - cortex, h - cortex);
        let body = TRABECULAR_MU_PER_PX * inner + CORTICAL_MU_PER_PX * (outer - inner);
        // Pedicles (end-on ovals, upper body) and the spinous process (a drop, lower middle):
        // cylinders along the beam, seen as rings of cortex around trabecular bone.
        let ring = |cu: f32, cv: f32, ru: f32, rv: f32, length: f32| {
            let e = ((u - cu) / ru).powi(2) + ((v - cv) / rv).powi(2);
            if e >= 1.0 {
                return 0.0;
            }
            length * lerp(TRABECULAR_MU_PER_PX, CORTICAL_MU_PER_PX, smoothstep(0.45, 0.8, e))
        };
        let length = 0.35 * b;
        let processes = ring(-0.55 * a, -0.3 * h, 0.17 * a, 0.32 * h, length)
            + ring(0.55 * a, -0.3 * h, 0.17 * a, 0.32 * h, length)
            + ring(0.0, 0.35 * h, 0.1 * a, 0.45 * h, 0.8 * length);
        (body + processes) * bone_scale
    }
}

/// Soft tissue: a smooth body thickness with low-frequency variation, aerated lungs either side
/// of the mediastinum above a domed diaphragm, rescaled to `params.tissue_mu_t`.
fn tissue_map(rng: &mut Rng, size: usize, params: &SynthParams, spine: &Spine, diaphragm_y_px: f32) -> Vec<f32> {
    let s = size as f32;
    let waves: Vec<(f32, f32, f32, f32)> = (0..5)
        .map(|_| {
            let angle = rng.range((0.0, 2.0 * PI));
            let k = 2.0 * PI / (rng.range((0.6, 2.5)) * s);
            (k * angle.cos(), k * angle.sin(), rng.range((0.0, 2.0 * PI)), rng.range((0.03, 0.08)))
        })
        .collect();
    let lung_half_width = rng.range((0.45, 0.6)) * s;
    let mediastinum = rng.range((0.12, 0.16)) * s;
    // The heart sits on the diaphragm, mostly to the patient's left (the image's right).
    let heart_axes = [rng.range((0.2, 0.26)) * s, rng.range((0.15, 0.2)) * s];
    let heart_centre =
        [spine.centre_x_at(diaphragm_y_px) + rng.range((0.08, 0.16)) * s, diaphragm_y_px - 0.6 * heart_axes[1]];
    let mut map = vec![0.0; size * size];
    for (y, row) in map.chunks_exact_mut(size).enumerate() {
        for (x, cell) in row.iter_mut().enumerate() {
            let (xf, yf) = (x as f32, y as f32);
            let lateral = (xf - spine.centre_x_at(yf)).abs();
            // Lungs widen from the apex to the base; the mediastinum widens towards the heart.
            let level = (yf / diaphragm_y_px).clamp(0.0, 1.0);
            let (inner, outer) = (mediastinum * (0.8 + 0.4 * level), lung_half_width * (0.75 + 0.25 * level.sqrt()));
            let dome = diaphragm_y_px + 0.35 * s * (lateral / s).powi(2);
            let lung = smoothstep(inner, inner + 0.08 * s, lateral)
                * (1.0 - smoothstep(outer - 0.06 * s, outer + 0.06 * s, lateral))
                * (1.0 - smoothstep(dome - 0.04 * s, dome + 0.04 * s, yf));
            let variation: f32 =
                waves.iter().map(|&(kx, ky, phase, amp)| amp * (kx * xf + ky * yf + phase).cos()).sum();
            // A rounded organ: its thickness along the beam falls like a sphere's towards the rim.
            let e = ((xf - heart_centre[0]) / heart_axes[0]).powi(2) + ((yf - heart_centre[1]) / heart_axes[1]).powi(2);
            let heart = (1.0 - e).max(0.0).sqrt();
            *cell = 1.0 + variation - LUNG_MU_T * lung * (1.0 - heart) + HEART_MU_T * heart;
        }
    }
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (out_lo, out_hi) = params.tissue_mu_t;
    let scale = if hi > lo { (out_hi - out_lo) / (hi - lo) } else { 0.0 };
    for v in &mut map {
        *v = out_lo + (*v - lo) * scale;
    }
    map
}

/// Posterior ribs: from each thoracic vertebra, out and slightly down, curving further down
/// laterally (an arc of a circle); thin cortical tubes.
fn plan_ribs(rng: &mut Rng, size: usize, spine: &Spine, diaphragm_y_px: f32) -> Vec<Tube> {
    let s = size as f32;
    let radius_px = rng.range((0.015, 0.019)) * s;
    // Ribs bend gently: a coarse polyline is exact to a hundredth of a pixel and cheap to splat.
    let step_px = (radius_px / 3.0).max(3.0);
    let mut ribs = Vec::new();
    let first = ((-0.5 * s - spine.first_y_px) / spine.period_px).floor() as i32;
    let last = ((diaphragm_y_px - spine.first_y_px) / spine.period_px).floor() as i32;
    for k in first..=last {
        let (c, scale) = spine.vertebra(k as f32);
        for side in [-1.0f32, 1.0] {
            let length_px = rng.range((0.5, 0.62)) * s;
            let heading_rad = rng.range((0.05, 0.3));
            let turn_rad = rng.range((0.8, 1.2));
            let mut p = [c[0] + side * spine.half_width_px * scale * 1.05, c[1] - 0.15 * spine.half_height_px];
            let n = (length_px / step_px).ceil() as usize;
            let mut points = Vec::with_capacity(n + 1);
            points.push(p);
            for i in 0..n {
                let theta = heading_rad + turn_rad * (i as f32 + 0.5) / n as f32;
                p = [p[0] + side * step_px * theta.cos(), p[1] + step_px * theta.sin()];
                points.push(p);
            }
            ribs.push(Tube::new(points, step_px, (radius_px, 0.85 * radius_px)));
        }
    }
    ribs
}

// ---------------------------------------------------------------------------------------------
// The sequence

/// What a seed draws for the anatomy and devices, each part from its own stream.
struct Scene {
    breathing: Breathing,
    spine: Spine,
    field: Option<Field>,
    wire: Wire,
    catheter: Option<Tube>,
    vessels: Vec<Tube>,
}

impl Scene {
    fn plan(seed: u64, size: usize, fps: f32, params: &SynthParams) -> Self {
        let rng = |stream| Rng::stream(seed, stream, 0);
        let breathing = Breathing::draw(&mut rng(Stream::Breathing), params);
        let spine = Spine::draw(&mut rng(Stream::Spine), size);
        let field = params.collimator.map(|spec| Field::draw(&mut rng(Stream::Collimator), size, &spec));
        let wire = plan_wire(&mut rng(Stream::Wire), size, params, &spine, field.as_ref(), &breathing, fps);
        let catheter = plan_catheter(&mut rng(Stream::Catheter), size, params, &wire);
        let vessels = plan_vessels(&mut rng(Stream::Vessels), size, params, &wire);
        Scene { breathing, spine, field, wire, catheter, vessels }
    }
}

/// A synthetic sequence: the scene is built once; any frame can then be rendered, in any order,
/// with its ground truth.
pub struct SyntheticSequence {
    cfg: SynthConfig,
    params: SynthParams,
    size: usize,
    breathing: Breathing,
    wire: Wire,
    /// The collimated field of view, if any: the wire is visible only inside it.
    field: Option<Field>,
    /// Line integral of what does not move (tissue, spine), frame coordinates.
    static_mu_t: Vec<f32>,
    /// Line integral of what breathes (ribs, vessels, catheter): anatomy coordinates with
    /// `margin` px on every side, sampled per frame at the breathing shift.
    moving_mu_t: Vec<f32>,
    margin: usize,
    psf: Vec<f32>,
    // Per-frame buffers, allocated once.
    visible: Tube,
    wire_mu_t: Vec<f32>,
    counts: Vec<f32>,
    scratch: Vec<f32>,
}

impl fmt::Debug for SyntheticSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyntheticSequence")
            .field("cfg", &self.cfg)
            .field("wire_radius_px", &self.wire.radius_px)
            .field("advance_px_per_frame", &self.wire.advance_px_per_frame)
            .field("breathing", &self.breathing)
            .finish_non_exhaustive()
    }
}

impl SyntheticSequence {
    /// Builds the scene for `cfg` and allocates every buffer rendering needs. A size outside
    /// [`MIN_SIZE_PX`]..=[`MAX_SIZE_PX`] is clamped and a non-positive fps replaced by
    /// [`DEFAULT_FPS`], so this cannot fail; [`SynthConfig::validate`] rejects them instead.
    pub fn new(cfg: SynthConfig) -> Self {
        let size = cfg.size_px.clamp(MIN_SIZE_PX, MAX_SIZE_PX);
        let fps = if cfg.fps.is_finite() && cfg.fps > 0.0 { cfg.fps } else { DEFAULT_FPS };
        let cfg = SynthConfig { size_px: size, fps, ..cfg };
        let mut params = cfg.difficulty.params();
        let rng = |stream| Rng::stream(cfg.seed, stream, 0);
        if cfg.vessel_contrast == VesselContrast::Dense {
            params.vessel_mu_per_px = rng(Stream::Contrast).range(DENSE_VESSEL_MU_PER_PX);
        }

        let Scene { breathing, spine, field, wire, catheter, vessels } = Scene::plan(cfg.seed, size, fps, &params);
        let margin = params.breathing_amplitude_px.1.ceil() as usize + 2;
        let mut tissue_rng = rng(Stream::Tissue);
        let diaphragm_y_px = tissue_rng.range((0.65, 0.95)) * size as f32;

        let mut static_mu_t = tissue_map(&mut tissue_rng, size, &params, &spine, diaphragm_y_px);
        for (y, row) in static_mu_t.chunks_exact_mut(size).enumerate() {
            for (x, cell) in row.iter_mut().enumerate() {
                let p = [x as f32, y as f32];
                *cell += spine.mu_t(p);
                if let Some(field) = &field {
                    *cell += field.mu_t(p);
                }
            }
        }

        let side = size + 2 * margin;
        let mut moving_mu_t = vec![0.0; side * side];
        let mut map = Map { values: &mut moving_mu_t, width: side, height: side };
        let to_map = [margin as f32, margin as f32];
        // Vessels first, into the empty map: `Max` then merges only overlapping branches.
        let vessel_mu = params.vessel_mu_per_px;
        for vessel in vessels {
            splat_tube(&vessel, to_map, Profile::Solid, Combine::Max, |_| vessel_mu, &mut map);
        }
        let rib_mu = RIB_MU_PER_PX * REFERENCE_SIZE_PX / size as f32;
        let rib_profile = Profile::Shell { inner_frac: 0.65, core_weight: 0.3 };
        for rib in plan_ribs(&mut rng(Stream::Ribs), size, &spine, diaphragm_y_px) {
            // The bony rib fades into costal cartilage at its lateral end.
            let fade = (0.7 * rib.length_px(), rib.length_px());
            splat_tube(
                &rib,
                to_map,
                rib_profile,
                Combine::Add,
                |s| rib_mu * (1.0 - smoothstep(fade.0, fade.1, s)),
                &mut map,
            );
        }
        if let Some(catheter) = catheter {
            let mu = params.catheter_mu_per_px;
            let profile = Profile::Shell { inner_frac: 0.6, core_weight: 0.3 };
            splat_tube(&catheter, to_map, profile, Combine::Add, |_| mu, &mut map);
        }

        let sigma = params.psf_sigma_px.max(0.05);
        let radius = (3.0 * sigma).ceil() as i32;
        let mut psf: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
        let total: f32 = psf.iter().sum();
        psf.iter_mut().for_each(|w| *w /= total);

        let mut visible = wire.path.clone();
        visible.points.reserve(1);
        visible.radius_px.reserve(1);
        visible.arc_px.reserve(1);
        SyntheticSequence {
            cfg,
            params,
            size,
            breathing,
            wire,
            field,
            static_mu_t,
            moving_mu_t,
            margin,
            psf,
            visible,
            wire_mu_t: vec![0.0; size * size],
            counts: vec![0.0; size * size],
            scratch: vec![0.0; size * size],
        }
    }

    /// The configuration, with size and fps as rendered.
    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// Side of the square frames.
    pub fn size_px(&self) -> usize {
        self.size
    }

    /// Largest pixel value: 4095, a 12-bit detector.
    pub fn maxval(&self) -> u16 {
        MAXVAL
    }

    /// Breathing displacement of frame `index`.
    fn shift_px(&self, index: u32) -> Point {
        self.breathing.shift_px(f64::from(index) / f64::from(self.cfg.fps))
    }

    /// The dose of frame `index` relative to the nominal one: pulsed tubes vary from pulse to
    /// pulse, and the detector's gain does not follow.
    fn flicker(&self, index: u32) -> f32 {
        1.0 + Rng::stream(self.cfg.seed, Stream::Flicker, u64::from(index)).symmetric(self.params.flicker_frac)
    }

    /// Renders frame `index` into `pixels` (`size_px * size_px`, row-major). Allocates nothing;
    /// the result depends only on the seed and `index`, not on what was rendered before.
    ///
    /// # Panics
    /// If `pixels` does not have `size_px * size_px` elements (a caller bug, not bad input).
    pub fn render(&mut self, index: u32, pixels: &mut [u16]) {
        let size = self.size;
        assert_eq!(pixels.len(), size * size, "render needs a {size}x{size} pixel buffer");
        let shift = self.shift_px(index);

        // The wire, rasterised at this frame's tip position and shift.
        let tip_px = self.wire.tip_px(index);
        self.visible.set_prefix(&self.wire.path, tip_px);
        self.wire_mu_t.fill(0.0);
        let wire = &self.wire;
        let mut map = Map { values: &mut self.wire_mu_t, width: size, height: size };
        splat_tube(&self.visible, shift, Profile::Solid, Combine::Add, |s| wire.mu_at(s, tip_px), &mut map);

        // Beer-Lambert: expected photons behind the total line integral, from this frame's
        // pulse. The moving map is sampled bilinearly at the shift, with the same weights for
        // every pixel.
        let n0 = self.params.photons_per_px;
        let pulse = n0 * self.flicker(index);
        let side = size + 2 * self.margin;
        let (ux, uy) = (self.margin as f32 - shift[0], self.margin as f32 - shift[1]);
        let (ix, iy) = (ux.floor(), uy.floor());
        let (fx, fy) = (ux - ix, uy - iy);
        let (ix, iy) = (ix.max(0.0) as usize, iy.max(0.0) as usize);
        let w = [(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy];
        for y in 0..size {
            let top = &self.moving_mu_t[(y + iy) * side + ix..][..size + 1];
            let bottom = &self.moving_mu_t[(y + iy + 1) * side + ix..][..size + 1];
            let row = y * size..(y + 1) * size;
            let (fixed, wire_row, counts) =
                (&self.static_mu_t[row.clone()], &self.wire_mu_t[row.clone()], &mut self.counts[row]);
            for x in 0..size {
                let moving = w[0] * top[x] + w[1] * top[x + 1] + w[2] * bottom[x] + w[3] * bottom[x + 1];
                counts[x] = pulse * (-(fixed[x] + moving + wire_row[x])).exp();
            }
        }

        // Detector blur on the expected counts, then photon noise and gain.
        blur_rows(&self.counts, &mut self.scratch, size, &self.psf);
        blur_columns(&self.scratch, &mut self.counts, size, &self.psf);
        let gain = UNATTENUATED_COUNTS / n0;
        let mut rng = Rng::stream(self.cfg.seed, Stream::Noise, u64::from(index));
        for (px, &expected) in pixels.iter_mut().zip(&self.counts) {
            let photons = poisson(&mut rng, f64::from(expected));
            *px = (photons as f32 * gain).round().min(f32::from(MAXVAL)) as u16;
        }
    }

    /// The wire's visible centerline in frame `index`, finely sampled: from where it comes into
    /// view (the frame border, or the collimated field's edge) to the tip; empty when less than
    /// [`MIN_VISIBLE_PX`] is in view.
    fn visible_centerline(&self, index: u32) -> Vec<Point> {
        let shift = self.shift_px(index);
        let tip_px = self.wire.tip_px(index);
        let mut prefix = Tube::default();
        prefix.set_prefix(&self.wire.path, tip_px);
        let moved: Vec<Point> = prefix.points.iter().map(|p| [p[0] + shift[0], p[1] + shift[1]]).collect();
        let far = (self.size - 1) as f32;
        // Clipped ends are on the border up to rounding; pin them to it.
        let on_frame = |p: Point| [p[0].clamp(0.0, far), p[1].clamp(0.0, far)];
        let clip = |a: Point, b: Point| {
            let (t0, t1) = clip_to_frame(a, b, self.size)?;
            let Some(field) = &self.field else { return Some((t0, t1)) };
            let (f0, f1) = field.clip(a, b)?;
            let (t0, t1) = (t0.max(f0), t1.min(f1));
            (t0 <= t1).then_some((t0, t1))
        };
        let mut line: Vec<Point> = Vec::new();
        for w in moved.windows(2) {
            let Some((t0, t1)) = clip(w[0], w[1]) else {
                if line.is_empty() {
                    continue;
                }
                break;
            };
            if line.is_empty() {
                line.push(on_frame(lerp_point(w[0], w[1], t0)));
            }
            let end = on_frame(lerp_point(w[0], w[1], t1));
            if line.last().is_none_or(|&p| distance(p, end) > 1e-4) {
                line.push(end);
            }
            if t1 < 1.0 {
                break;
            }
        }
        let length: f32 = line.windows(2).map(|w| distance(w[0], w[1])).sum();
        if length < MIN_VISIBLE_PX {
            line.clear();
        }
        line
    }

    /// Ground truth of frame `index`: the visible centerline in its breathing position, proximal
    /// end (on the frame border or the field's edge) first, a point every ~2 px of arc length,
    /// the exact tip last.
    pub fn truth(&self, index: u32) -> CenterlineTruth {
        CenterlineTruth { frame: index, points: resample(&self.visible_centerline(index), TRUTH_STEP_PX) }
    }

    /// The wire mask of frame `index` into `mask` (`size_px * size_px`): 255 where a pixel
    /// centre lies within the wire radius (at least 0.75 px) of the visible centerline, else 0.
    ///
    /// # Panics
    /// If `mask` does not have `size_px * size_px` elements.
    pub fn render_mask(&self, index: u32, mask: &mut [u8]) {
        let size = self.size;
        assert_eq!(mask.len(), size * size, "render_mask needs a {size}x{size} buffer");
        mask.fill(0);
        let radius_px = self.wire.radius_px.max(MASK_MIN_RADIUS_PX);
        mark_polyline(&self.visible_centerline(index), radius_px, mask, size);
    }
}

/// Horizontal pass of the separable PSF, edges replicated.
fn blur_rows(src: &[f32], dst: &mut [f32], size: usize, kernel: &[f32]) {
    let r = kernel.len() / 2;
    for (row, out) in src.chunks_exact(size).zip(dst.chunks_exact_mut(size)) {
        for (x, o) in out.iter_mut().enumerate() {
            *o = if x >= r && x + r < size {
                kernel.iter().zip(&row[x - r..=x + r]).map(|(k, v)| k * v).sum()
            } else {
                kernel.iter().enumerate().map(|(i, k)| k * row[(x + i).saturating_sub(r).min(size - 1)]).sum()
            };
        }
    }
}

/// Vertical pass of the separable PSF, edges replicated.
fn blur_columns(src: &[f32], dst: &mut [f32], size: usize, kernel: &[f32]) {
    let r = kernel.len() / 2;
    for (y, out) in dst.chunks_exact_mut(size).enumerate() {
        out.fill(0.0);
        for (i, &k) in kernel.iter().enumerate() {
            let sy = (y + i).saturating_sub(r).min(size - 1);
            for (o, &v) in out.iter_mut().zip(&src[sy * size..(sy + 1) * size]) {
                *o += k * v;
            }
        }
    }
}

/// Writes `cfg.frames` frames with ground truth to `dir` in the sequence format: 16-bit PGM
/// frames (maxval 4095), `meta.json`, `gt/NNNNNN_mask.png` and `gt/centerlines.jsonl`. Refuses a
/// directory whose `frames/` already holds files, so old frames never mix with new ones.
pub fn write_sequence(cfg: &SynthConfig, dir: &Path) -> Result<(), SynthError> {
    cfg.validate()?;
    let frames_dir = dir.join(FRAMES_DIR);
    let gt_dir = dir.join(GT_DIR);
    if fs::read_dir(&frames_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(SynthError::NotEmpty { dir: dir.to_path_buf() });
    }
    for d in [&frames_dir, &gt_dir] {
        fs::create_dir_all(d).map_err(|source| SequenceError::Io {
            action: "create",
            path: d.to_path_buf(),
            source,
        })?;
    }
    let mut synth = SyntheticSequence::new(cfg.clone());
    let size = synth.size_px();
    let mut pixels = vec![0u16; size * size];
    let mut mask = vec![0u8; size * size];
    let mut truths = Vec::with_capacity(cfg.frames as usize);
    for index in 0..cfg.frames {
        let frame_path = frames_dir.join(frame_file_name(index));
        synth.render(index, &mut pixels);
        write_frame(&frame_path, size, size, MAXVAL, &pixels)?;
        synth.render_mask(index, &mut mask);
        write_mask_png(&mask_path(dir, &frame_path), size, size, &mask)?;
        truths.push(synth.truth(index));
    }
    write_centerlines(dir, &truths)?;
    let meta = SequenceMeta { width: Some(size), height: Some(size), bits: Some(12), fps: Some(cfg.fps) };
    write_meta(dir, &meta)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::pgm::decode_pgm;
    use crate::capture::sequence::{frame_paths, read_centerlines, read_mask_png, read_meta};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn config(seed: u64, size_px: usize) -> SynthConfig {
        SynthConfig { seed, size_px, frames: 40, ..SynthConfig::default() }
    }

    fn config_at(difficulty: Difficulty, seed: u64, size_px: usize) -> SynthConfig {
        SynthConfig { difficulty, ..config(seed, size_px) }
    }

    fn render(synth: &mut SyntheticSequence, index: u32) -> Vec<u16> {
        let mut pixels = vec![0; synth.size_px() * synth.size_px()];
        synth.render(index, &mut pixels);
        pixels
    }

    fn polyline_length(points: &[Point]) -> f32 {
        points.windows(2).map(|w| distance(w[0], w[1])).sum()
    }

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        // Outputs of Vigna's xoshiro256plusplus.c seeded with four splitmix64 outputs.
        for (seed, expected) in [
            (0, [0x53175d61490b23df, 0x61da6f3dc380d507, 0x5c0fdf91ec9a7bfc, 0x02eebf8c3bbe5e1a]),
            (12345, [0x8d948a82def8a568, 0x3477f953796702a0, 0x15caa2fce6db8d69, 0x2cef8853c20c6dd0]),
        ] {
            let mut rng = Rng::from_seed(seed);
            let got: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    #[test]
    fn poisson_has_the_right_mean_and_variance() {
        let mut rng = Rng::from_seed(7);
        for lambda in [0.3, 2.5, 9.99, 10.0, 37.5, 270.0, 1200.0] {
            let n = 100_000;
            let samples: Vec<f64> = (0..n).map(|_| poisson(&mut rng, lambda) as f64).collect();
            let mean = samples.iter().sum::<f64>() / n as f64;
            let var = samples.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!((mean - lambda).abs() < 5.0 * (lambda / n as f64).sqrt(), "lambda {lambda}: mean {mean}");
            assert!((var / lambda - 1.0).abs() < 0.03, "lambda {lambda}: variance {var}");
        }
        // P(0) for a small mean, and degenerate means.
        let zeros = (0..100_000).filter(|_| poisson(&mut rng, 2.0) == 0).count() as f64 / 100_000.0;
        assert!((zeros - (-2.0f64).exp()).abs() < 0.005, "P(0) {zeros}");
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
        assert!((ln_factorial(20) - 42.335_616_460_753_485).abs() < 1e-10);
        assert!((ln_factorial(15) - 27.899_271_383_840_894).abs() < 1e-10);
    }

    #[test]
    fn a_seed_gives_the_same_frames_in_any_order() {
        for difficulty in Difficulty::ALL {
            let mut a = SyntheticSequence::new(config_at(difficulty, 3, 256));
            let mut b = SyntheticSequence::new(config_at(difficulty, 3, 256));
            let a_frames: Vec<Vec<u16>> = [0, 9, 25].iter().map(|&i| render(&mut a, i)).collect();
            let b_frames: Vec<Vec<u16>> = [25, 0, 9].iter().map(|&i| render(&mut b, i)).collect();
            assert_eq!(a_frames[0], b_frames[1], "{difficulty}");
            assert_eq!(a_frames[1], b_frames[2], "{difficulty}");
            assert_eq!(a_frames[2], b_frames[0], "{difficulty}");
            assert_eq!(render(&mut a, 9), a_frames[1], "{difficulty}");
            assert_eq!(a.truth(25), b.truth(25), "{difficulty}");
            assert_ne!(a_frames[1], a_frames[2], "{difficulty}: frames differ (noise, motion)");
        }
    }

    /// FNV-1a of a byte stream.
    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
    }

    #[test]
    fn easy_frames_are_as_they_were() {
        // Pinned before the harder difficulties were added: other tests and recorded results
        // depend on easy sequences. (A platform whose libm rounds differently may change it.)
        let mut synth = SyntheticSequence::new(config(3, 128));
        let pixels = render(&mut synth, 20);
        assert_eq!(fnv1a(pixels.iter().flat_map(|v| v.to_le_bytes())), 0x053b_a9e1_96aa_55a2);
        let points = synth.truth(20).points;
        assert_eq!(fnv1a(points.iter().flatten().flat_map(|v| v.to_le_bytes())), 0x587b_9c9e_80b2_7afc);
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = SyntheticSequence::new(config(1, 256));
        let mut b = SyntheticSequence::new(config(2, 256));
        assert_ne!(render(&mut a, 20), render(&mut b, 20));
        assert_ne!(a.truth(20), b.truth(20));
    }

    #[test]
    fn truth_runs_from_the_border_to_a_tip_inside() {
        for (difficulty, seed) in
            [Difficulty::Easy, Difficulty::Hard].into_iter().flat_map(|d| (0..12).map(move |s| (d, s)))
        {
            let synth = SyntheticSequence::new(config_at(difficulty, seed, 256));
            let far = (synth.size_px() - 1) as f32;
            let mut visible_frames = 0;
            for index in 0..40 {
                let points = synth.truth(index).points;
                if points.is_empty() {
                    continue;
                }
                visible_frames += 1;
                assert!(points.len() >= 2, "{difficulty} seed {seed} frame {index}");
                let first = points[0];
                let border_px = first[0].min(first[1]).min(far - first[0]).min(far - first[1]);
                assert!(
                    border_px.abs() <= 1.5,
                    "{difficulty} seed {seed} frame {index}: starts {border_px} px from the border"
                );
                for p in &points {
                    assert!(
                        (0.0..=far).contains(&p[0]) && (0.0..=far).contains(&p[1]),
                        "{difficulty} seed {seed}: {p:?} outside"
                    );
                }
                for w in points.windows(2) {
                    assert!(
                        distance(w[0], w[1]) <= 1.01 * TRUTH_STEP_PX * 1.5,
                        "{difficulty} seed {seed}: points too far apart"
                    );
                }
            }
            assert!(
                visible_frames >= 28,
                "{difficulty} seed {seed}: wire visible in only {visible_frames} of 40 frames"
            );
        }
    }

    #[test]
    fn the_wire_is_hidden_at_first_then_enters_and_grows() {
        for (difficulty, seed) in Difficulty::ALL.into_iter().flat_map(|d| (0..12).map(move |s| (d, s))) {
            let synth = SyntheticSequence::new(config_at(difficulty, seed, 512));
            let mut mask = vec![0u8; 512 * 512];
            for index in 0..difficulty.params().hidden_frames.0 {
                assert!(synth.truth(index).points.is_empty(), "{difficulty} seed {seed} frame {index}");
                synth.render_mask(index, &mut mask);
                assert!(mask.iter().all(|&m| m == 0), "{difficulty} seed {seed} frame {index}");
            }
            assert!(!synth.truth(12).points.is_empty(), "{difficulty} seed {seed}: no wire by frame 12");
            let lengths: Vec<f32> = [15, 30, 45].iter().map(|&i| polyline_length(&synth.truth(i).points)).collect();
            assert!(
                lengths[0] + 20.0 < lengths[1] && lengths[1] + 20.0 < lengths[2],
                "{difficulty} seed {seed}: {lengths:?}"
            );
        }
    }

    #[test]
    fn the_mask_covers_the_centerline_and_little_else() {
        for (difficulty, seed) in Difficulty::ALL.into_iter().flat_map(|d| (0..8).map(move |s| (d, s))) {
            let synth = SyntheticSequence::new(config_at(difficulty, seed, 256));
            let size = synth.size_px();
            let mut mask = vec![0u8; size * size];
            for index in [3, 10, 30] {
                let points = synth.truth(index).points;
                synth.render_mask(index, &mut mask);
                assert_eq!(points.is_empty(), mask.iter().all(|&m| m == 0), "{difficulty} seed {seed} frame {index}");
                for p in &points {
                    let (x, y) = (p[0].round() as usize, p[1].round() as usize);
                    assert_eq!(
                        mask[y * size + x],
                        255,
                        "{difficulty} seed {seed} frame {index}: {p:?} not in the mask"
                    );
                }
                let reach = synth.wire.radius_px.max(MASK_MIN_RADIUS_PX) + 0.01;
                for (i, _) in mask.iter().enumerate().filter(|(_, &m)| m == 255) {
                    let c = [(i % size) as f32, (i / size) as f32];
                    let d2 = points.windows(2).map(|w| segment_nearest(w[0], w[1], c).0).fold(f32::INFINITY, f32::min);
                    assert!(
                        d2.sqrt() <= reach + 0.05,
                        "{difficulty} seed {seed}: mask pixel {c:?} is {} px from the wire",
                        d2.sqrt()
                    );
                }
            }
        }
    }

    /// Mean log attenuation on the truth centerline minus that 6 px to either side of it.
    fn wire_contrast(synth: &mut SyntheticSequence, index: u32) -> f32 {
        let pixels = render(synth, index);
        let size = synth.size_px();
        let attenuation = |p: Point| {
            let (x, y) = (p[0].round().clamp(0.0, (size - 1) as f32), p[1].round().clamp(0.0, (size - 1) as f32));
            -(f32::from(pixels[y as usize * size + x as usize]).max(1.0) / UNATTENUATED_COUNTS).ln()
        };
        let points = synth.truth(index).points;
        let (mut on, mut beside, mut n) = (0.0, 0.0, 0.0);
        for w in points.windows(3).skip(3) {
            let (dx, dy) = (w[2][0] - w[0][0], w[2][1] - w[0][1]);
            let len = dx.hypot(dy).max(1e-6);
            let normal = [-dy / len * 6.0, dx / len * 6.0];
            on += attenuation(w[1]);
            beside += 0.5
                * (attenuation([w[1][0] + normal[0], w[1][1] + normal[1]])
                    + attenuation([w[1][0] - normal[0], w[1][1] - normal[1]]));
            n += 1.0;
        }
        (on - beside) / n
    }

    #[test]
    fn the_wire_is_a_clear_ridge_in_log_attenuation() {
        for (difficulty, seed) in Difficulty::ALL.into_iter().flat_map(|d| (0..8).map(move |s| (d, s))) {
            let mut synth = SyntheticSequence::new(config_at(difficulty, seed, 512));
            let contrast = wire_contrast(&mut synth, 30);
            assert!(
                contrast > 0.15,
                "{difficulty} seed {seed} (wire radius {} px): contrast {contrast}",
                synth.wire.radius_px
            );
        }
    }

    #[test]
    fn the_catheter_and_vessels_keep_clear_of_the_wire() {
        for seed in 0..8 {
            let params = Difficulty::Easy.params();
            let size = 512;
            let Scene { spine, wire, catheter, vessels, .. } = Scene::plan(seed, size, 15.0, &params);
            let clearance = params.wire_spine_clearance_px.unwrap_or(0.0);
            assert!(spine.clear_of(&wire.path.points, clearance), "seed {seed}: the easy wire runs over the spine");
            let catheter = catheter.expect("a 512 px frame has room for a catheter");
            let entry = catheter.point_at(OUTSIDE_PX);
            let far = (size - 1) as f32;
            let border = [
                (entry[0], Border::Left),
                (far - entry[0], Border::Right),
                (entry[1], Border::Top),
                (far - entry[1], Border::Bottom),
            ]
            .into_iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, b)| b);
            assert_ne!(border, Some(wire.border), "seed {seed}: catheter enters by the wire's border");
            let gap = params.catheter_clearance_px + catheter.max_radius_px() + wire.radius_px;
            assert!(clear_of(&catheter.points, &wire.path.points, gap - 0.01), "seed {seed}");
            for vessel in vessels {
                let gap = params.vessel_clearance_px + vessel.max_radius_px() + wire.radius_px;
                assert!(clear_of(&vessel.points, &wire.path.points, gap - 0.01), "seed {seed}");
                assert!(vessel.max_radius_px() <= 4.0 && vessel.radius_px.iter().all(|&r| r >= 1.5));
            }
        }
    }

    #[test]
    fn difficulties_parse_from_their_names() {
        for difficulty in Difficulty::ALL {
            assert_eq!(difficulty.name().parse::<Difficulty>().ok(), Some(difficulty));
            assert_eq!(difficulty.to_string(), difficulty.name());
        }
        assert_eq!("hard".parse::<Difficulty>().ok(), Some(Difficulty::Hard));
        assert_eq!("extreme".parse::<Difficulty>().ok(), Some(Difficulty::Extreme));
        let err = "Hard".parse::<Difficulty>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("easy, hard, extreme"), "{err}");
    }

    #[test]
    fn dense_contrast_darkens_the_vessels_and_nothing_else() {
        for difficulty in [Difficulty::Easy, Difficulty::Hard] {
            let diluted = config_at(difficulty, 5, 256);
            let dense = SynthConfig { vessel_contrast: VesselContrast::Dense, ..diluted.clone() };
            let (a, b) = (SyntheticSequence::new(diluted), SyntheticSequence::new(dense));
            assert_eq!(a.params.vessel_mu_per_px, difficulty.params().vessel_mu_per_px);
            let mu = b.params.vessel_mu_per_px;
            assert!((DENSE_VESSEL_MU_PER_PX.0..=DENSE_VESSEL_MU_PER_PX.1).contains(&mu), "{mu}");
            for i in [0, 20, 39] {
                assert_eq!(a.truth(i).points, b.truth(i).points, "{difficulty} frame {i}: the same wire");
            }
            // What breathes is the vessels, the ribs and the catheter: only the vessels change.
            let (mut darker, mut lighter) = (0, 0);
            for (x, y) in a.moving_mu_t.iter().zip(&b.moving_mu_t) {
                darker += usize::from(y > x);
                lighter += usize::from(y < x);
            }
            assert_eq!(lighter, 0, "{difficulty}");
            assert!(darker > 1000, "{difficulty}: {darker} px of vessel");
            assert_eq!(a.static_mu_t, b.static_mu_t, "{difficulty}: tissue and spine");
        }
        assert_eq!("dense".parse::<VesselContrast>().ok(), Some(VesselContrast::Dense));
        assert_eq!(VesselContrast::default().to_string(), "diluted");
        let err = "full".parse::<VesselContrast>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("diluted, dense"), "{err}");
    }

    #[test]
    fn each_difficulty_counts_its_photons() {
        // Poisson counts scaled by the gain G = UNATTENUATED_COUNTS / N0 have variance G times
        // their mean, so N0 = UNATTENUATED_COUNTS * mean / variance wherever the image is flat
        // (and whatever a frame's flicker): -ln(counts) has variance 1 / (N0 exp(-mu t)).
        // Differences of neighbours remove the slow anatomy; the median over blocks, the edges.
        const BLOCK: usize = 16;
        for difficulty in Difficulty::ALL {
            let mut synth = SyntheticSequence::new(config_at(difficulty, 4, 512));
            let pixels = render(&mut synth, 20);
            let mut estimates = Vec::new();
            for by in (64..448).step_by(BLOCK) {
                for bx in (64..448).step_by(BLOCK) {
                    let (mut sum, mut diff2, mut n) = (0.0, 0.0, 0.0);
                    for y in by..by + BLOCK {
                        for x in bx..bx + BLOCK - 1 {
                            let (a, b) = (f64::from(pixels[y * 512 + x]), f64::from(pixels[y * 512 + x + 1]));
                            sum += a;
                            diff2 += (b - a).powi(2);
                            n += 1.0;
                        }
                    }
                    estimates.push(f64::from(UNATTENUATED_COUNTS) * (sum / n) / (0.5 * diff2 / n));
                }
            }
            estimates.sort_by(f64::total_cmp);
            let n0 = estimates[estimates.len() / 2];
            let expected = f64::from(difficulty.params().photons_per_px);
            assert!((n0 / expected - 1.0).abs() < 0.1, "{difficulty}: {n0:.0} photons/px, expected {expected}");
        }
    }

    #[test]
    fn in_hard_and_extreme_the_catheter_and_a_vessel_cross_the_wire() {
        for (difficulty, seed) in
            [Difficulty::Hard, Difficulty::Extreme].into_iter().flat_map(|d| (0..10).map(move |s| (d, s)))
        {
            let params = difficulty.params();
            let Scene { field, wire, catheter, vessels, .. } = Scene::plan(seed, 512, 15.0, &params);
            let in_view = |p: Point| depth(p, 512) >= 0.0 && field.is_none_or(|f| f.depth(p) >= 0.0);
            let catheter = catheter.expect("a 512 px frame has room for a crossing catheter");
            let found = crossings(&catheter.points, &wire.path.points);
            let Some(&(at, angle_deg)) = found.first() else { panic!("{difficulty} seed {seed}: no crossing") };
            assert!(
                found.iter().all(|c| distance(c.0, at) < 2.0),
                "{difficulty} seed {seed}: crosses twice: {found:?}"
            );
            assert!((30.0..=90.0).contains(&angle_deg), "{difficulty} seed {seed}: crosses at {angle_deg} degrees");
            assert!(in_view(at), "{difficulty} seed {seed}: crossing {at:?} out of view");
            let vessel_crossings: Vec<(Point, f32)> =
                vessels.iter().flat_map(|v| crossings(&v.points, &wire.path.points)).collect();
            assert!(
                vessel_crossings.iter().any(|&(p, angle_deg)| in_view(p) && angle_deg >= 30.0),
                "{difficulty} seed {seed}: no vessel crosses the wire in view: {vessel_crossings:?}"
            );
        }
    }

    #[test]
    fn in_extreme_the_wire_runs_over_the_spine() {
        let params = Difficulty::Extreme.params();
        for seed in 0..10 {
            let Scene { spine, field, wire, .. } = Scene::plan(seed, 512, 15.0, &params);
            let field = field.expect("extreme is collimated");
            let seen: Vec<Point> =
                wire.path.points.iter().copied().filter(|&p| depth(p, 512) >= 0.0 && field.depth(p) >= 0.0).collect();
            let over = seen.iter().filter(|&&p| spine.covers(p)).count() as f32 / seen.len() as f32;
            assert!(seen.len() > 200 && over >= 0.5, "seed {seed}: {over} of {} px over the spine", seen.len());
        }
    }

    #[test]
    fn the_collimator_leaves_only_its_field_in_the_beam() {
        for seed in 0..4 {
            let mut synth = SyntheticSequence::new(config_at(Difficulty::Extreme, seed, 512));
            let field = synth.field.expect("extreme is collimated");
            let pixels = render(&mut synth, 25);
            let (mut outside, mut inside) = ((0.0, 0.0, 0u16), (0.0, 0.0));
            for (i, &v) in pixels.iter().enumerate() {
                let d = field.depth([(i % 512) as f32, (i / 512) as f32]);
                if d < -(field.edge_px + 2.0) {
                    outside = (outside.0 + f64::from(v), outside.1 + 1.0, outside.2.max(v));
                } else if d > 5.0 {
                    inside = (inside.0 + f64::from(v), inside.1 + 1.0);
                }
            }
            let (outside_mean, inside_mean) = (outside.0 / outside.1, inside.0 / inside.1);
            assert!(outside.1 > 10_000.0, "seed {seed}: only {} px outside", outside.1);
            // A photon is 49 counts here: outside, about one pixel in a hundred sees one, none
            // sees three.
            assert!(outside_mean < 1.0 && outside.2 < 150, "seed {seed}: outside {outside_mean}, max {}", outside.2);
            assert!(inside_mean > 300.0, "seed {seed}: inside {inside_mean}");
        }
    }

    #[test]
    fn through_the_collimator_the_truth_runs_from_the_field_edge_to_the_tip() {
        for seed in 0..12 {
            let synth = SyntheticSequence::new(config_at(Difficulty::Extreme, seed, 512));
            let field = synth.field.expect("extreme is collimated");
            let mut visible_frames = 0;
            for index in 0..50 {
                let points = synth.truth(index).points;
                let (Some(&first), Some(&last)) = (points.first(), points.last()) else { continue };
                visible_frames += 1;
                for &p in &points {
                    assert!(field.depth(p) >= -0.01 && depth(p, 512) >= 0.0, "seed {seed} frame {index}: {p:?} unseen");
                }
                let edge_px = field.depth(first).abs().min(depth(first, 512).abs());
                assert!(edge_px < 0.01, "seed {seed} frame {index}: starts {edge_px} px in view");
                let (shift, tip_px) = (synth.shift_px(index), synth.wire.tip_px(index));
                let tip = synth.wire.path.point_at(tip_px);
                let tip = [tip[0] + shift[0], tip[1] + shift[1]];
                assert!(distance(last, tip) < 0.01, "seed {seed} frame {index}: ends at {last:?}, tip {tip:?}");
            }
            assert!(visible_frames >= 40, "seed {seed}: wire visible in only {visible_frames} of 50 frames");
        }
    }

    #[test]
    fn extreme_brightness_flickers_from_pulse_to_pulse() {
        // The mean over the field follows each frame's dose; what breathing and noise add is
        // well under a percent.
        let mut synth = SyntheticSequence::new(config_at(Difficulty::Extreme, 6, 256));
        let field = synth.field.expect("extreme is collimated");
        let (mut means, mut doses) = (Vec::new(), Vec::new());
        for index in 0..16 {
            let pixels = render(&mut synth, index);
            let (sum, n) = pixels
                .iter()
                .enumerate()
                .filter(|(i, _)| field.depth([(i % 256) as f32, (i / 256) as f32]) > 4.0)
                .fold((0.0, 0.0), |(sum, n), (_, &v)| (sum + f64::from(v), n + 1.0));
            means.push(sum / n);
            doses.push(f64::from(synth.flicker(index)));
        }
        let spread =
            |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max) / v.iter().copied().fold(f64::MAX, f64::min);
        let explained: Vec<f64> = means.iter().zip(&doses).map(|(m, d)| m / d).collect();
        assert!(spread(&means) > 1.1, "means {means:?}");
        assert!(spread(&explained) < 1.015, "means over doses {explained:?}");
        assert!(doses.iter().all(|d| (0.88..=1.12).contains(d)), "{doses:?}");
        let easy = SyntheticSequence::new(config(6, 256));
        assert!((0..16).all(|i| easy.flicker(i) == 1.0));
    }

    #[test]
    fn pixels_are_12_bit_and_the_image_is_exposed_sensibly() {
        let mut synth = SyntheticSequence::new(config(5, 256));
        let pixels = render(&mut synth, 10);
        assert!(pixels.iter().all(|&v| v <= MAXVAL));
        let mean = pixels.iter().map(|&v| f64::from(v)).sum::<f64>() / pixels.len() as f64;
        // Tissue attenuates 1-2: most pixels lie between exp(-2.5) and exp(-0.9) of full scale.
        assert!((250.0..1600.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn config_is_validated() {
        assert!(SynthConfig::default().validate().is_ok());
        assert!(matches!(config(0, 32).validate(), Err(SynthError::SizeOutOfRange { size_px: 32 })));
        for fps in [0.0, 1e-45, 1e30, f32::NAN] {
            assert!(matches!(SynthConfig { fps, ..config(0, 256) }.validate(), Err(SynthError::BadFps { .. })));
        }
        assert!(matches!(SynthConfig { frames: 0, ..config(0, 256) }.validate(), Err(SynthError::NoFrames)));
        let too_many = SynthConfig { frames: MAX_FRAMES + 1, ..config(0, 256) };
        assert!(matches!(too_many.validate(), Err(SynthError::TooManyFrames { .. })));
        assert_eq!("easy".parse::<Difficulty>().ok(), Some(Difficulty::Easy));
        assert!("nightmare".parse::<Difficulty>().is_err());
        // Out-of-range values are clamped rather than failing.
        let mut tiny = SyntheticSequence::new(SynthConfig { size_px: 1, fps: f32::NAN, ..config(0, 256) });
        assert_eq!(tiny.size_px(), MIN_SIZE_PX);
        let pixels = render(&mut tiny, 7);
        assert_eq!(pixels.len(), MIN_SIZE_PX * MIN_SIZE_PX);
    }

    #[test]
    fn write_sequence_writes_what_reads_back() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cfg = SynthConfig {
            seed: 11,
            size_px: 128,
            frames: 8,
            fps: 12.5,
            difficulty: Difficulty::Easy,
            ..SynthConfig::default()
        };
        write_sequence(&cfg, dir.path())?;

        let meta = read_meta(dir.path())?.ok_or("no meta.json")?;
        assert_eq!(meta, SequenceMeta { width: Some(128), height: Some(128), bits: Some(12), fps: Some(12.5) });
        let paths = frame_paths(dir.path())?;
        assert_eq!(paths.len(), 8);
        let truths = read_centerlines(dir.path())?;
        assert_eq!(truths.len(), 8);

        let mut synth = SyntheticSequence::new(cfg.clone());
        let (mut pixels, mut mask, mut expected_mask) = (Vec::new(), Vec::new(), vec![0u8; 128 * 128]);
        for (index, path) in paths.iter().enumerate() {
            let index = index as u32;
            let header = decode_pgm(&fs::read(path)?, &mut pixels)?;
            assert_eq!((header.width, header.height, header.maxval), (128, 128, 4095));
            assert_eq!(pixels, render(&mut synth, index));
            assert_eq!(truths[index as usize], synth.truth(index));
            let mask_path = dir.path().join(GT_DIR).join(format!("{index:06}_mask.png"));
            assert_eq!(read_mask_png(&mask_path, &mut mask)?, (128, 128));
            synth.render_mask(index, &mut expected_mask);
            assert_eq!(mask, expected_mask);
        }
        assert!(matches!(write_sequence(&cfg, dir.path()), Err(SynthError::NotEmpty { .. })));
        Ok(())
    }
}
