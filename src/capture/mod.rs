//! Frame sources: recorded sequences on disk, frames in memory, synthetic fluoroscopy.
//!
//! A source fills frames it is lent; it does not timestamp them. Timestamps are taken by the
//! runner when a frame is handed to the pipeline, on the monotonic clock.

pub mod memory;
pub mod pgm;
pub mod replay;
pub mod sequence;
pub mod synthetic;
pub mod synthetic_source;

use std::path::PathBuf;

use crate::frame::Frame;

/// Why a frame could not be captured. The source stays usable: the next call moves on.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The frame file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a usable frame.
    #[error("{}: {reason}", path.display())]
    BadFrame {
        /// The frame file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Something that delivers frames of one size.
pub trait FrameSource: Send {
    /// Width and height of every frame.
    fn size(&self) -> (usize, usize);
    /// Frames per second at which the source delivers when paced like a camera.
    fn fps(&self) -> f32;
    /// Fills `frame` (reusing its buffer) with the next frame; `None` at the end, `Some(Err)`
    /// for a frame that could not be read (the next call moves on).
    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>>;
}
