//! Synthetic fluoroscopy as a live source: each frame is rendered when the capture thread asks
//! for it, so a bench or demo box runs the service without a grabber or a recorded sequence.

use super::synthetic::{SynthConfig, SynthError, SyntheticSequence};
use super::{CaptureError, FrameSource};
use crate::frame::Frame;

/// Renders frames `0..frames` of a synthetic sequence, in order, then ends.
#[derive(Debug)]
pub struct SyntheticSource {
    sequence: SyntheticSequence,
    next: u32,
}

impl SyntheticSource {
    /// Checks `cfg` and sets up the generator (its scene is made here, not per frame).
    pub fn new(cfg: SynthConfig) -> Result<Self, SynthError> {
        cfg.validate()?;
        Ok(SyntheticSource { sequence: SyntheticSequence::new(cfg), next: 0 })
    }
}

impl FrameSource for SyntheticSource {
    fn size(&self) -> (usize, usize) {
        let side = self.sequence.size_px();
        (side, side)
    }

    fn fps(&self) -> f32 {
        self.sequence.config().fps
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let index = self.next;
        if index >= self.sequence.config().frames {
            return None;
        }
        self.next += 1;
        let side = self.sequence.size_px();
        frame.width = side;
        frame.height = side;
        frame.pixels.resize(side * side, 0);
        self.sequence.render(index, &mut frame.pixels);
        frame.maxval = self.sequence.maxval();
        frame.index = index;
        Some(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::synthetic::Difficulty;

    #[test]
    fn renders_the_same_frames_as_the_sequence_then_ends() {
        let cfg = SynthConfig {
            seed: 4,
            size_px: 64,
            frames: 3,
            fps: 10.0,
            difficulty: Difficulty::Easy,
            ..SynthConfig::default()
        };
        let mut source = SyntheticSource::new(cfg.clone()).expect("valid config");
        let mut reference = SyntheticSequence::new(cfg);
        let mut frame = Frame::with_size(64, 64);
        let mut expected = vec![0u16; 64 * 64];
        for i in 0..3 {
            assert!(matches!(source.next_frame(&mut frame), Some(Ok(()))));
            reference.render(i, &mut expected);
            assert_eq!((frame.index, frame.maxval), (i, reference.maxval()));
            assert!(frame.pixels == expected, "frame {i} differs from the sequence");
        }
        assert!(source.next_frame(&mut frame).is_none());
        assert_eq!((source.size(), source.fps()), ((64, 64), 10.0));
    }

    #[test]
    fn a_bad_config_is_refused() {
        let cfg = SynthConfig { size_px: 8, ..SynthConfig::default() };
        assert!(matches!(SyntheticSource::new(cfg), Err(SynthError::SizeOutOfRange { size_px: 8 })));
    }
}
