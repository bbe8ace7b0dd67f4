//! Ridge strength to a binary wire mask by hysteresis.
//!
//! A single threshold either breaks a low-dose wire into pieces or lets noise in; hysteresis
//! keeps weak pixels only where they connect to strong ones, which is how a faint stretch of
//! wire between two clear stretches survives.
//!
//! The tracked wire of the last frames is a prior here too: along it (within
//! `prior_radius_px`) the low threshold also starts a region. A guidewire's radiopaque tip is
//! far deeper than its body; where a catheter crossing cuts the faint body off from the tip,
//! the body no longer connects to anything above the high threshold, but it is where the
//! wire was.

use super::features::Roi;
use super::Plane;

/// Hysteresis thresholds on ridge depth (attenuation units, see [`super::ridge`]). At low dose
/// photon noise alone makes ridges as deep as a wire's at easy dose, so each threshold is the
/// larger of its floor and a multiple of the frame's noise depth (its 90th percentile over the
/// field: most of a frame is not wire).
#[derive(Debug, Clone, Copy)]
pub struct ThresholdParams {
    /// Least depth that starts a wire region.
    pub high: f32,
    /// Least depth that continues one.
    pub low: f32,
    /// A region starts only this many times above the noise depth.
    pub high_over_noise: f32,
    /// And continues this many times above it.
    pub low_over_noise: f32,
    /// Distance (px) from the tracked wire within which the low threshold starts a region.
    pub prior_radius_px: f32,
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams { high: 0.12, low: 0.05, high_over_noise: 2.5, low_over_noise: 1.2, prior_radius_px: 2.5 }
    }
}

/// A noise depth measured on part of a frame ([`Hysteresis::measure`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSample {
    /// The 90th percentile of the part's non-zero ridge depths (zero when it had none).
    pub depth: f32,
    /// How many depths it was taken from.
    pub samples: usize,
}

/// Pixels between samples when estimating the noise depth.
const NOISE_SAMPLE_STRIDE: usize = 3;

/// Hysteresis thresholding with a stack sized at start.
#[derive(Debug)]
pub struct Hysteresis {
    params: ThresholdParams,
    stack: Vec<u32>,
    samples: Vec<f32>,
    noise: f32,
    near_prior: Vec<bool>,
}

impl Hysteresis {
    /// Scratch space for frames of `pixels` pixels.
    pub fn new(pixels: usize, params: ThresholdParams) -> Self {
        Hysteresis {
            params,
            stack: Vec::with_capacity(pixels),
            samples: Vec::with_capacity(pixels / NOISE_SAMPLE_STRIDE + 1),
            noise: 0.0,
            near_prior: vec![false; pixels],
        }
    }

    /// The 90th percentile of the non-zero depths (zero is outside the field or no ridge).
    fn noise_depth(&mut self, strength: &Plane<f32>) -> f32 {
        self.samples.clear();
        self.samples.extend(strength.data.iter().step_by(NOISE_SAMPLE_STRIDE).copied().filter(|&v| v > 0.0));
        self.ninetieth()
    }

    fn ninetieth(&mut self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let k = self.samples.len() * 9 / 10;
        *self.samples.select_nth_unstable_by(k, f32::total_cmp).1
    }

    /// The noise depth of `strength` within `region` alone (the 90th percentile of its
    /// non-zero depths), with the number of depths it was taken from: for a ridge map of part
    /// of the frame, where the rest is no sample.
    pub fn measure(&mut self, strength: &Plane<f32>, region: Roi) -> NoiseSample {
        self.samples.clear();
        let w = strength.width;
        for y in region.y..region.y + region.height {
            let row = &strength.data[y * w + region.x..][..region.width];
            // The same stride as over the whole frame, continued across rows.
            let skip = (NOISE_SAMPLE_STRIDE - (y * w + region.x) % NOISE_SAMPLE_STRIDE) % NOISE_SAMPLE_STRIDE;
            self.samples.extend(row.iter().skip(skip).step_by(NOISE_SAMPLE_STRIDE).copied().filter(|&v| v > 0.0));
        }
        NoiseSample { depth: self.ninetieth(), samples: self.samples.len() }
    }

    /// The noise depth the last frame was thresholded at: the 90th percentile of the ridge
    /// depth of the last frame [`Hysteresis::apply`] measured it on, or what
    /// [`Hysteresis::apply_at_noise`] was given.
    pub fn noise(&self) -> f32 {
        self.noise
    }

    /// Writes 1 where `strength` belongs to a region that reaches the high threshold through
    /// pixels at or above the low one (8-connected), or reaches the low one within
    /// `prior_radius_px` of the polyline `prior` (empty: none), 0 elsewhere.
    pub fn apply(&mut self, strength: &Plane<f32>, prior: &[[f32; 2]], mask: &mut Plane<u8>) {
        // Thresholds that do not follow the noise (a probability's) need no estimate of it.
        let follows_noise = self.params.high_over_noise > 0.0 || self.params.low_over_noise > 0.0;
        self.noise = if follows_noise { self.noise_depth(strength) } else { 0.0 };
        self.threshold(strength, prior, mask);
    }

    /// [`Hysteresis::apply`] at the noise depth `noise`, measured elsewhere: for a ridge map of
    /// only part of the frame, where the parts around the wire are no sample of the frame's
    /// noise (their 90th percentile is about a fifth higher at extreme dose).
    pub fn apply_at_noise(&mut self, strength: &Plane<f32>, prior: &[[f32; 2]], mask: &mut Plane<u8>, noise: f32) {
        self.noise = noise;
        self.threshold(strength, prior, mask);
    }

    fn threshold(&mut self, strength: &Plane<f32>, prior: &[[f32; 2]], mask: &mut Plane<u8>) {
        let (w, h) = (strength.width, strength.height);
        let noise = self.noise;
        let p = self.params;
        let (high, low) = (p.high.max(p.high_over_noise * noise), p.low.max(p.low_over_noise * noise));
        self.mark_near(prior, w, h);
        mask.data.fill(0);
        self.stack.clear();
        // Most of a frame is below both thresholds (all of it outside the regions the ridge
        // stage ran on): 64 depths at a time are passed over when none reaches the lower.
        const BLOCK: usize = 64;
        let least = high.min(low);
        for (k, block) in strength.data.chunks(BLOCK).enumerate() {
            if !block.iter().fold(false, |any, &v| any | (v >= least)) {
                continue;
            }
            for (j, &v) in block.iter().enumerate() {
                let i = k * BLOCK + j;
                if v >= high || (v >= low && self.near_prior[i]) {
                    mask.data[i] = 1;
                    self.stack.push(i as u32);
                }
            }
        }
        while let Some(i) = self.stack.pop() {
            let (x, y) = (i as usize % w, i as usize / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask.data[j] == 0 && strength.data[j] >= low {
                        mask.data[j] = 1;
                        self.stack.push(j as u32);
                    }
                }
            }
        }
    }
}

impl Hysteresis {
    /// Sets `near_prior` within `prior_radius_px` of the polyline `prior`.
    fn mark_near(&mut self, prior: &[[f32; 2]], w: usize, h: usize) {
        self.near_prior.fill(false);
        let r = self.params.prior_radius_px;
        for segment in prior.windows(2) {
            let (a, b) = (segment[0], segment[1]);
            let x0 = (a[0].min(b[0]) - r).floor().max(0.0) as usize;
            let y0 = (a[1].min(b[1]) - r).floor().max(0.0) as usize;
            let x1 = ((a[0].max(b[0]) + r).ceil().max(0.0) as usize).min(w.saturating_sub(1));
            let y1 = ((a[1].max(b[1]) + r).ceil().max(0.0) as usize).min(h.saturating_sub(1));
            for y in y0..=y1 {
                for x in x0..=x1 {
                    if segment_distance([x as f32, y as f32], a, b) <= r {
                        self.near_prior[y * w + x] = true;
                    }
                }
            }
        }
    }
}

/// Distance (px) from `p` to the segment `a`–`b`.
fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (ex, ey) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    (ex * ex + ey * ey).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain hysteresis, no noise adaptation.
    const FIXED: ThresholdParams =
        ThresholdParams { high: 0.5, low: 0.2, high_over_noise: 0.0, low_over_noise: 0.0, prior_radius_px: 1.5 };

    #[test]
    fn thresholds_rise_with_the_noise() {
        // A noisy frame: 90 % of pixels at depth 0.1, a ridge at 0.2 that would pass the floor
        // (0.12) but is less than 2.5 times the noise.
        let mut s = Plane { width: 100, height: 10, data: vec![0.1; 1000] };
        for x in 0..100 {
            s.data[5 * 100 + x] = 0.2;
        }
        let mut mask = Plane::new(100, 10);
        Hysteresis::new(1000, ThresholdParams::default()).apply(&s, &[], &mut mask);
        assert!(mask.data.iter().all(|&m| m == 0));
        for x in 0..100 {
            s.data[5 * 100 + x] = 0.3;
        }
        Hysteresis::new(1000, ThresholdParams::default()).apply(&s, &[], &mut mask);
        assert_eq!(mask.data.iter().filter(|&&m| m == 1).count(), 100);
    }

    #[test]
    fn the_noise_of_a_region_is_measured_in_it_alone_as_over_a_whole_frame() {
        let (w, h) = (40, 30);
        let mut s = Plane::new(w, h);
        for (i, v) in s.data.iter_mut().enumerate() {
            *v = ((i * 37) % 101) as f32 / 100.0;
        }
        let mut hysteresis = Hysteresis::new(w * h, ThresholdParams::default());
        let whole = hysteresis.measure(&s, Roi::whole(w, h));
        hysteresis.apply(&s, &[], &mut Plane::new(w, h));
        assert_eq!(whole.depth, hysteresis.noise(), "the same samples as the whole frame's");
        assert_eq!(whole.samples, s.data.iter().step_by(NOISE_SAMPLE_STRIDE).filter(|&&v| v > 0.0).count());
        // Deep ridges outside a quiet region do not raise its noise.
        let region = Roi { x: 5, y: 4, width: 20, height: 10 };
        for y in 0..h {
            for x in 0..w {
                let inside = (5..25).contains(&x) && (4..14).contains(&y);
                s.data[y * w + x] = if inside { 0.01 } else { 5.0 };
            }
        }
        let part = hysteresis.measure(&s, region);
        assert_eq!(part.depth, 0.01);
        assert!((60..=70).contains(&part.samples), "a third of 200 pixels: {}", part.samples);
        assert_eq!(hysteresis.measure(&Plane::new(w, h), region), NoiseSample { depth: 0.0, samples: 0 });
        hysteresis.apply_at_noise(&s, &[], &mut Plane::new(w, h), 0.5);
        assert_eq!(hysteresis.noise(), 0.5);
    }

    /// Hysteresis as the module doc says it, pixel by pixel: the reference for the threshold's
    /// passing over of blocks.
    fn plain_hysteresis(s: &Plane<f32>, (high, low): (f32, f32), near: &[bool]) -> Vec<u8> {
        let (w, h) = (s.width as isize, s.height as isize);
        let mut mask = vec![0u8; s.data.len()];
        let mut stack: Vec<usize> =
            (0..s.data.len()).filter(|&i| s.data[i] >= high || (s.data[i] >= low && near[i])).collect();
        for &i in &stack {
            mask[i] = 1;
        }
        while let Some(i) = stack.pop() {
            let (x, y) = ((i as isize) % w, (i as isize) / w);
            for (nx, ny) in (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (x + dx, y + dy))) {
                let j = (ny * w + nx) as usize;
                if (0..w).contains(&nx) && (0..h).contains(&ny) && mask[j] == 0 && s.data[j] >= low {
                    mask[j] = 1;
                    stack.push(j);
                }
            }
        }
        mask
    }

    #[test]
    fn blocks_passed_over_change_nothing() {
        // Sparse ridges on a mostly empty plane whose size is no multiple of the block, NaN
        // here and there, a prior, and thresholds in either order.
        let (w, h) = (77, 41);
        let mut s = Plane::new(w, h);
        let mut state = 12345u64;
        for (i, v) in s.data.iter_mut().enumerate() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (state >> 40) as f32 / (1u64 << 24) as f32;
            let ridge = (10..13).contains(&(i / w)) || (30..32).contains(&(i % w));
            *v = match (state >> 33) % 500 {
                _ if ridge => r,
                0 => r,
                1 => f32::NAN,
                _ => 0.0,
            };
        }
        let prior = [[3.0, 2.0], [70.0, 38.0]];
        // Alone within 64 pixels either side (so in any block of 64): a depth between the
        // thresholds on the prior, and one exactly at the lesser threshold.
        for (at, depth) in [(27 * w + 50, 0.4), (20 * w + 70, 0.3)] {
            s.data[at - 64..at + 64].fill(0.0);
            s.data[at] = depth;
        }
        for (high, low) in [(0.6, 0.3), (0.3, 0.6), (0.95, 0.05)] {
            let params = ThresholdParams { high, low, ..FIXED };
            let mut hysteresis = Hysteresis::new(w * h, params);
            let mut mask = Plane::new(w, h);
            hysteresis.apply(&s, &prior, &mut mask);
            let want = plain_hysteresis(&s, (high, low), &hysteresis.near_prior);
            assert_eq!(mask.data, want, "high {high}, low {low}");
            assert!(want.contains(&1));
        }
    }

    #[test]
    fn weak_pixels_survive_only_when_connected_to_strong_ones() {
        let mut s = Plane::new(8, 3);
        s.data[..8].copy_from_slice(&[0.9, 0.3, 0.3, 0.1, 0.3, 0.3, 0.0, 0.0]);
        s.data[16 + 6] = 0.3;
        let mut mask = Plane::new(8, 3);
        Hysteresis::new(24, FIXED).apply(&s, &[], &mut mask);
        assert_eq!(&mask.data[..8], &[1, 1, 1, 0, 0, 0, 0, 0]);
        assert!(mask.data[8..].iter().all(|&m| m == 0));
    }

    #[test]
    fn along_the_tracked_wire_the_low_threshold_starts_a_region() {
        // Two weak stretches, neither touching a strong pixel; the prior runs along the first.
        let mut s = Plane::new(20, 8);
        for x in 2..18 {
            s.data[2 * 20 + x] = 0.3;
            s.data[6 * 20 + x] = 0.3;
        }
        let mut mask = Plane::new(20, 8);
        Hysteresis::new(160, FIXED).apply(&s, &[[4.0, 2.5], [15.0, 2.5]], &mut mask);
        assert!((2..18).all(|x| mask.data[2 * 20 + x] == 1), "the stretch along the prior, all of it");
        assert!(mask.data[6 * 20..7 * 20].iter().all(|&m| m == 0), "the stretch away from it");
        Hysteresis::new(160, FIXED).apply(&s, &[], &mut mask);
        assert!(mask.data.iter().all(|&m| m == 0), "without a prior");
    }

    #[test]
    fn diagonal_neighbours_connect() {
        let mut s = Plane::new(3, 3);
        s.data[0] = 0.9;
        s.data[4] = 0.3;
        s.data[8] = 0.3;
        let mut mask = Plane::new(3, 3);
        Hysteresis::new(9, FIXED).apply(&s, &[], &mut mask);
        assert_eq!(mask.data, vec![1, 0, 0, 0, 1, 0, 0, 0, 1]);
    }
}
