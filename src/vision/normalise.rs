//! Detector values to log attenuation.
//!
//! X-ray counts follow Beer-Lambert, `I = I0 exp(-∫μ)`: in `-ln(I / I0)` the wire adds a
//! constant ridge whatever the tissue behind it, so the ridge filter sees the same wire over
//! lung and over spine. Higher values mean more attenuation: the wire is a bright ridge.

use super::Plane;
use crate::frame::Frame;

/// Converts frames through a lookup table built for the detector's `maxval`.
#[derive(Debug)]
pub struct Normaliser {
    lut: Vec<f32>,
    lut_maxval: u16,
}

impl Default for Normaliser {
    fn default() -> Self {
        Self::new()
    }
}

impl Normaliser {
    /// Allocates a table large enough for any 16-bit detector.
    pub fn new() -> Self {
        Normaliser { lut: vec![0.0; usize::from(u16::MAX) + 1], lut_maxval: 0 }
    }

    /// Writes `-ln(v / maxval)` per pixel into `out`; zero counts are taken as half a count,
    /// so a saturated-dark pixel is large but finite.
    pub fn log_attenuation(&mut self, frame: &Frame, out: &mut Plane<f32>) {
        let lut = self.table(frame.maxval);
        let top = lut.len() - 1;
        for (o, &p) in out.data.iter_mut().zip(&frame.pixels) {
            *o = lut[usize::from(p).min(top)];
        }
    }

    /// The attenuation of every value `0..=maxval` of a detector with `maxval` (at least 1),
    /// rebuilt only when `maxval` changes.
    pub fn table(&mut self, maxval: u16) -> &[f32] {
        let maxval = maxval.max(1);
        if maxval != self.lut_maxval {
            let ln_max = f32::from(maxval).ln();
            for (v, entry) in self.lut.iter_mut().enumerate().take(usize::from(maxval) + 1) {
                *entry = ln_max - (v as f32).max(0.5).ln();
            }
            self.lut_maxval = maxval;
        }
        &self.lut[..=usize::from(maxval)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attenuation_is_minus_log_of_transmission() {
        let mut frame = Frame::with_size(3, 1);
        frame.maxval = 4095;
        frame.pixels.copy_from_slice(&[4095, 1000, 0]);
        let mut out = Plane::new(3, 1);
        Normaliser::new().log_attenuation(&frame, &mut out);
        assert!(out.data[0].abs() < 1e-6);
        assert!((out.data[1] - (4095.0f32 / 1000.0).ln()).abs() < 1e-5);
        assert!((out.data[2] - (4095.0f32 / 0.5).ln()).abs() < 1e-4);
    }

    #[test]
    fn lut_follows_a_change_of_maxval() {
        let mut n = Normaliser::new();
        let mut out = Plane::new(1, 1);
        let mut frame = Frame::with_size(1, 1);
        frame.maxval = 255;
        frame.pixels[0] = 255;
        n.log_attenuation(&frame, &mut out);
        assert!(out.data[0].abs() < 1e-6);
        frame.maxval = 4095;
        n.log_attenuation(&frame, &mut out);
        assert!((out.data[0] - (4095.0f32 / 255.0).ln()).abs() < 1e-5);
    }
}
