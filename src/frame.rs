//! The unit of work: one X-ray frame as the detector delivered it.

use crate::time::Micros;

/// One grey-level frame, row-major, with the detector's own range (`maxval`, e.g. 4095 for a
/// 12-bit detector). Buffers are reused: a source refills a `Frame` instead of making a new one.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Largest value a pixel can take.
    pub maxval: u16,
    /// `width * height` pixel values, row-major.
    pub pixels: Vec<u16>,
    /// Position in the sequence (replay) or capture counter (live), counting from 0.
    pub index: u32,
    /// When the frame was captured.
    pub capture: Micros,
}

impl Frame {
    /// A frame with room for `width * height` pixels, all zero.
    pub fn with_size(width: usize, height: usize) -> Self {
        Frame { width, height, maxval: 0, pixels: vec![0; width * height], index: 0, capture: Micros(0) }
    }
}
