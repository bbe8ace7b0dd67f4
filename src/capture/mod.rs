//! Frame sources: recorded sequences on disk, frames in memory, synthetic fluoroscopy, and a
//! V4L2 device (frame grabber, camera, or a v4l2loopback device fed by `wiretrace feed`).
//!
//! A file or memory source fills frames it is lent and does not timestamp them: the runner
//! paces them like a camera and stamps each when it is handed to the pipeline, on the
//! monotonic clock. A live source ([`FrameSource::live`]) is paced by its device and stamps
//! its frames with the device's capture time. [`trigger::TriggeredSource`] gates any of them by
//! the fluoroscope's exposure signal.

pub mod memory;
pub mod pgm;
pub mod replay;
pub mod sequence;
pub mod synthetic;
pub mod synthetic_source;
pub mod trigger;
pub mod v4l2;

use std::path::PathBuf;

use crate::frame::Frame;

/// Why a frame could not be captured. The source stays usable, the next call moves on, except
/// after [`CaptureError::Unrecoverable`].
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
    /// No frame is coming from a live source (the device is silent, or gone and being
    /// reopened), or the frame trigger held one back (no exposure). Not a bad frame:
    /// heartbeats say `no signal` until frames come again.
    #[error("no frame for {} ms", waited.as_millis())]
    NoSignal {
        /// How long the source waited in this call.
        waited: std::time::Duration,
    },
    /// The source can deliver nothing more in this process, though retrying would look like
    /// `no signal` forever (a stream that cannot be stopped keeps the device busy). The runner
    /// ends the run with it, so the service exits with an error and is restarted, which
    /// releases what the process holds.
    #[error("{}: {reason}; the source cannot go on in this process", path.display())]
    Unrecoverable {
        /// The device.
        path: PathBuf,
        /// What is stuck.
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
    /// True for a device that delivers frames at its own pace and stamps each with its
    /// capture time (a camera): the runner neither paces nor restamps its frames. Such a
    /// source returns [`CaptureError::NoSignal`] from `next_frame` at least every two
    /// seconds while no frame comes, so the runner can report it and stop.
    fn live(&self) -> bool {
        false
    }
    /// Frames the device lost before they reached the source so far (a V4L2 driver's
    /// sequence gaps), which heartbeats count as dropped; 0 for a source that cannot tell.
    fn dropped(&self) -> u64 {
        0
    }
}

/// A boxed source is a source, so wrappers such as [`trigger::TriggeredSource`] take the
/// configured one as it is opened.
impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn size(&self) -> (usize, usize) {
        (**self).size()
    }
    fn fps(&self) -> f32 {
        (**self).fps()
    }
    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        (**self).next_frame(frame)
    }
    fn live(&self) -> bool {
        (**self).live()
    }
}
