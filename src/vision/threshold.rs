//! Ridge strength to a binary wire mask by hysteresis.
//!
//! A single threshold either breaks a low-dose wire into pieces or lets noise in; hysteresis
//! keeps weak pixels only where they connect to strong ones, which is how a faint stretch of
//! wire between two clear stretches survives.

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
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams { high: 0.12, low: 0.05, high_over_noise: 2.5, low_over_noise: 1.2 }
    }
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
}

impl Hysteresis {
    /// Scratch space for frames of `pixels` pixels.
    pub fn new(pixels: usize, params: ThresholdParams) -> Self {
        Hysteresis {
            params,
            stack: Vec::with_capacity(pixels),
            samples: Vec::with_capacity(pixels / NOISE_SAMPLE_STRIDE + 1),
            noise: 0.0,
        }
    }

    /// The 90th percentile of the non-zero depths (zero is outside the field or no ridge).
    fn noise_depth(&mut self, strength: &Plane<f32>) -> f32 {
        self.samples.clear();
        self.samples.extend(strength.data.iter().step_by(NOISE_SAMPLE_STRIDE).copied().filter(|&v| v > 0.0));
        if self.samples.is_empty() {
            return 0.0;
        }
        let k = self.samples.len() * 9 / 10;
        *self.samples.select_nth_unstable_by(k, f32::total_cmp).1
    }

    /// The noise depth of the last frame: the 90th percentile of its ridge depth.
    pub fn noise(&self) -> f32 {
        self.noise
    }

    /// Writes 1 where `strength` belongs to a region that reaches the high threshold through
    /// pixels at or above the low one (8-connected), 0 elsewhere.
    pub fn apply(&mut self, strength: &Plane<f32>, mask: &mut Plane<u8>) {
        let (w, h) = (strength.width, strength.height);
        let noise = self.noise_depth(strength);
        self.noise = noise;
        let p = self.params;
        let (high, low) = (p.high.max(p.high_over_noise * noise), p.low.max(p.low_over_noise * noise));
        mask.data.fill(0);
        self.stack.clear();
        for (i, &v) in strength.data.iter().enumerate() {
            if v >= high {
                mask.data[i] = 1;
                self.stack.push(i as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain hysteresis, no noise adaptation.
    const FIXED: ThresholdParams = ThresholdParams { high: 0.5, low: 0.2, high_over_noise: 0.0, low_over_noise: 0.0 };

    #[test]
    fn thresholds_rise_with_the_noise() {
        // A noisy frame: 90 % of pixels at depth 0.1, a ridge at 0.2 that would pass the floor
        // (0.12) but is less than 2.5 times the noise.
        let mut s = Plane { width: 100, height: 10, data: vec![0.1; 1000] };
        for x in 0..100 {
            s.data[5 * 100 + x] = 0.2;
        }
        let mut mask = Plane::new(100, 10);
        Hysteresis::new(1000, ThresholdParams::default()).apply(&s, &mut mask);
        assert!(mask.data.iter().all(|&m| m == 0));
        for x in 0..100 {
            s.data[5 * 100 + x] = 0.3;
        }
        Hysteresis::new(1000, ThresholdParams::default()).apply(&s, &mut mask);
        assert_eq!(mask.data.iter().filter(|&&m| m == 1).count(), 100);
    }

    #[test]
    fn weak_pixels_survive_only_when_connected_to_strong_ones() {
        let mut s = Plane::new(8, 3);
        s.data[..8].copy_from_slice(&[0.9, 0.3, 0.3, 0.1, 0.3, 0.3, 0.0, 0.0]);
        s.data[16 + 6] = 0.3;
        let mut mask = Plane::new(8, 3);
        Hysteresis::new(24, FIXED).apply(&s, &mut mask);
        assert_eq!(&mask.data[..8], &[1, 1, 1, 0, 0, 0, 0, 0]);
        assert!(mask.data[8..].iter().all(|&m| m == 0));
    }

    #[test]
    fn diagonal_neighbours_connect() {
        let mut s = Plane::new(3, 3);
        s.data[0] = 0.9;
        s.data[4] = 0.3;
        s.data[8] = 0.3;
        let mut mask = Plane::new(3, 3);
        Hysteresis::new(9, FIXED).apply(&s, &mut mask);
        assert_eq!(mask.data, vec![1, 0, 0, 0, 1, 0, 0, 0, 1]);
    }
}
