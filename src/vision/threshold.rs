//! Ridge strength to a binary wire mask by hysteresis.
//!
//! A single threshold either breaks a low-dose wire into pieces or lets noise in; hysteresis
//! keeps weak pixels only where they connect to strong ones, which is how a faint stretch of
//! wire between two clear stretches survives.

use super::Plane;

/// Hysteresis thresholds on ridge depth (attenuation units, see [`super::ridge`]).
#[derive(Debug, Clone, Copy)]
pub struct ThresholdParams {
    /// Depth that starts a wire region.
    pub high: f32,
    /// Depth that continues one.
    pub low: f32,
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams { high: 0.12, low: 0.05 }
    }
}

/// Hysteresis thresholding with a stack sized at start.
#[derive(Debug)]
pub struct Hysteresis {
    params: ThresholdParams,
    stack: Vec<u32>,
}

impl Hysteresis {
    /// Scratch space for frames of `pixels` pixels.
    pub fn new(pixels: usize, params: ThresholdParams) -> Self {
        Hysteresis { params, stack: Vec::with_capacity(pixels) }
    }

    /// Writes 1 where `strength` belongs to a region that reaches `high` through pixels at or
    /// above `low` (8-connected), 0 elsewhere.
    pub fn apply(&mut self, strength: &Plane<f32>, mask: &mut Plane<u8>) {
        let (w, h) = (strength.width, strength.height);
        let ThresholdParams { high, low } = self.params;
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

    #[test]
    fn weak_pixels_survive_only_when_connected_to_strong_ones() {
        let mut s = Plane::new(8, 3);
        s.data[..8].copy_from_slice(&[0.9, 0.3, 0.3, 0.1, 0.3, 0.3, 0.0, 0.0]);
        s.data[16 + 6] = 0.3;
        let mut mask = Plane::new(8, 3);
        Hysteresis::new(24, ThresholdParams { high: 0.5, low: 0.2 }).apply(&s, &mut mask);
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
        Hysteresis::new(9, ThresholdParams { high: 0.5, low: 0.2 }).apply(&s, &mut mask);
        assert_eq!(mask.data, vec![1, 0, 0, 0, 1, 0, 0, 0, 1]);
    }
}
