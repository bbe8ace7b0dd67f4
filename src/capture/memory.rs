//! Frames held in memory: the demo's synthetic sequence, and tests.

use super::{CaptureError, FrameSource};
use crate::frame::Frame;

/// Plays frames from memory, in order.
#[derive(Debug)]
pub struct MemorySource {
    frames: Vec<Frame>,
    next: usize,
    fps: f32,
}

impl MemorySource {
    /// `frames` must all have the size of the first one.
    pub fn new(frames: Vec<Frame>, fps: f32) -> Self {
        MemorySource { frames, next: 0, fps }
    }
}

impl FrameSource for MemorySource {
    fn size(&self) -> (usize, usize) {
        self.frames.first().map_or((0, 0), |f| (f.width, f.height))
    }

    fn fps(&self) -> f32 {
        self.fps
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let src = self.frames.get(self.next)?;
        self.next += 1;
        frame.width = src.width;
        frame.height = src.height;
        frame.maxval = src.maxval;
        frame.index = src.index;
        frame.pixels.clear();
        frame.pixels.extend_from_slice(&src.pixels);
        Some(Ok(()))
    }
}
