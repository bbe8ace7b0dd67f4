//! Recursive temporal filtering: the fluoroscope's own noise reduction, for low dose.
//!
//! Each frame's log attenuation is replaced by an exponential average of the frames so far,
//! the newest weighted `weight`: the noise's variance falls to `weight / (2 - weight)` of a
//! frame's (0.6 at 0.75; a third at 0.5, a frame at 80 photons per pixel looking like one at
//! 240), which lets the learned engine see a faint wire at low dose. The price is lag: what
//! moves (the tip as the wire advances, everything as the heart beats) shows at part of its
//! contrast for a frame or two, on average `(1 - weight) / weight` frames late, so tip error
//! and centerline distance grow. The learned engine runs it at 0.75 unless
//! `pipeline.recursive_filter_weight` says otherwise; the classical path only when it does.

use super::Plane;

/// The running average, sized at start.
#[derive(Debug)]
pub struct RecursiveFilter {
    weight: f32,
    average: Plane<f32>,
    primed: bool,
}

impl RecursiveFilter {
    /// A filter for `width` × `height` frames giving the newest frame `weight` (0 < weight ≤ 1;
    /// [`is_weight`](Self::is_weight)); the first frame primes the average.
    pub fn new(width: usize, height: usize, weight: f32) -> Self {
        RecursiveFilter { weight, average: Plane::new(width, height), primed: false }
    }

    /// What [`is_weight`](Self::is_weight) asks of a weight, for error messages.
    pub const WEIGHT_RANGE: &'static str = "must be above 0 and at most 1 (1: the frame itself)";

    /// Whether `weight` is one the filter takes: above 0, at most 1.
    pub fn is_weight(weight: f32) -> bool {
        weight > 0.0 && weight <= 1.0
    }

    /// Folds `attenuation` into the average and replaces it with the average.
    pub fn apply(&mut self, attenuation: &mut Plane<f32>) {
        if !self.primed {
            self.average.data.copy_from_slice(&attenuation.data);
            self.primed = true;
        }
        let weight = self.weight;
        for (a, m) in attenuation.data.iter_mut().zip(self.average.data.iter_mut()) {
            *m += weight * (*a - *m);
            *a = *m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise: a 32-bit LCG mapped to [-0.5, 0.5).
    fn noise(state: &mut u32) -> f32 {
        *state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    #[test]
    fn noise_variance_falls_to_weight_over_two_minus_weight() {
        let (w, h) = (64, 64);
        let mut filter = RecursiveFilter::new(w, h, 0.5);
        let mut frame = Plane::new(w, h);
        let mut state = 7;
        let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0usize);
        for t in 0..200 {
            frame.data.iter_mut().for_each(|v| *v = 1.0 + noise(&mut state));
            filter.apply(&mut frame);
            if t >= 20 {
                for &v in &frame.data {
                    sum += f64::from(v);
                    sum_sq += f64::from(v) * f64::from(v);
                    n += 1;
                }
            }
        }
        let mean = sum / n as f64;
        let variance = sum_sq / n as f64 - mean * mean;
        // Uniform noise of width 1 has variance 1/12; the average keeps w / (2 - w) of it.
        let expected = (1.0 / 12.0) * 0.5 / 1.5;
        assert!((mean - 1.0).abs() < 1e-3, "mean {mean}");
        assert!((variance / expected - 1.0).abs() < 0.05, "variance {variance}, expected {expected}");
    }

    #[test]
    fn a_step_is_followed_geometrically_and_the_first_frame_primes() {
        let mut filter = RecursiveFilter::new(2, 1, 0.25);
        let mut frame = Plane::new(2, 1);
        frame.data.copy_from_slice(&[4.0, 8.0]);
        filter.apply(&mut frame);
        assert_eq!(frame.data, [4.0, 8.0], "the first frame comes out as it went in");
        for k in 1..=3 {
            frame.data.copy_from_slice(&[0.0, 8.0]);
            filter.apply(&mut frame);
            assert!((frame.data[0] - 4.0 * 0.75f32.powi(k)).abs() < 1e-6, "step {k}: {:?}", frame.data);
            assert_eq!(frame.data[1], 8.0);
        }
        let mut off = RecursiveFilter::new(2, 1, 1.0);
        frame.data.copy_from_slice(&[1.0, 2.0]);
        off.apply(&mut frame);
        frame.data.copy_from_slice(&[3.0, 5.0]);
        off.apply(&mut frame);
        assert_eq!(frame.data, [3.0, 5.0], "weight 1 is the frame itself");
        assert!(!RecursiveFilter::is_weight(0.0) && !RecursiveFilter::is_weight(1.5));
        assert!(!RecursiveFilter::is_weight(f32::NAN) && RecursiveFilter::is_weight(0.5));
    }
}
