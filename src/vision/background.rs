//! Temporal background suppression: the digital-subtraction idea for a moving wire.
//!
//! A running estimate of each pixel's log attenuation (an exponential average over
//! `time_constant_frames`) is subtracted from the frame, so anatomy that stays put fades while
//! a wire that advances, or moves with the heart, stays. In log attenuation the subtraction
//! is exact for anything in front of or behind the wire (Beer-Lambert adds). A wire that stops
//! moving fades too, over the same time constant, which is why this is off by default.

use super::Plane;

/// Parameters of background suppression.
#[derive(Debug, Clone, Copy)]
pub struct BackgroundParams {
    /// Frames over which the background estimate follows the image (the average's time
    /// constant).
    pub time_constant_frames: f32,
}

impl Default for BackgroundParams {
    fn default() -> Self {
        BackgroundParams { time_constant_frames: 30.0 }
    }
}

/// The running background, sized at start.
#[derive(Debug)]
pub struct BackgroundSuppressor {
    params: BackgroundParams,
    estimate: Plane<f32>,
    primed: bool,
}

impl BackgroundSuppressor {
    /// A suppressor for `width` × `height` frames; the first frame primes the estimate.
    pub fn new(width: usize, height: usize, params: BackgroundParams) -> Self {
        BackgroundSuppressor { params, estimate: Plane::new(width, height), primed: false }
    }

    /// Subtracts the background from `attenuation` in place, then updates the background with
    /// the frame as it came. The first frame becomes the background and comes out as zeros:
    /// without history there is nothing to tell apart.
    pub fn apply(&mut self, attenuation: &mut Plane<f32>) {
        if !self.primed {
            self.estimate.data.copy_from_slice(&attenuation.data);
            self.primed = true;
        }
        let alpha = 1.0 / self.params.time_constant_frames.max(1.0);
        for (a, b) in attenuation.data.iter_mut().zip(self.estimate.data.iter_mut()) {
            let frame = *a;
            *a = frame - *b;
            *b += alpha * (frame - *b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_anatomy_fades_and_a_moving_wire_stays() {
        let (w, h) = (32, 16);
        let mut bg = BackgroundSuppressor::new(w, h, BackgroundParams { time_constant_frames: 4.0 });
        let anatomy = |x: usize, y: usize| 1.0 + 0.01 * x as f32 + if y == 3 { 0.5 } else { 0.0 };
        let mut last = Plane::new(w, h);
        for t in 0..40 {
            let wire_x = t % w;
            let mut frame = Plane::new(w, h);
            for y in 0..h {
                for x in 0..w {
                    frame.data[y * w + x] = anatomy(x, y) + if x == wire_x { 0.3 } else { 0.0 };
                }
            }
            bg.apply(&mut frame);
            last = frame;
        }
        let wire_x = 39 % w;
        let on_wire = last.at(wire_x, 10);
        let static_rib = last.at((wire_x + 16) % w, 3);
        assert!(on_wire > 0.25, "the moving wire keeps its contrast: {on_wire}");
        assert!(static_rib.abs() < 0.1, "the static ridge fades: {static_rib}");
    }

    #[test]
    fn the_first_frame_is_all_background() {
        let mut bg = BackgroundSuppressor::new(4, 1, BackgroundParams::default());
        let mut frame = Plane { width: 4, height: 1, data: vec![1.0, 2.0, 3.0, 4.0] };
        bg.apply(&mut frame);
        assert_eq!(frame.data, vec![0.0; 4]);
    }
}
