//! Replay of a recorded sequence directory (design.md, "Sequence format").
//!
//! Frame `i` is the `i`-th file of `frames/` in name order, so the output lines up with the
//! ground truth even when a file is bad: a bad file is reported with its name, skipped,
//! counted, and keeps its index.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::pgm::{decode_pgm, read_header};
use super::sequence::{frame_paths, read_meta, SequenceError};
use super::{CaptureError, FrameSource};
use crate::frame::Frame;
use crate::pipeline::MAX_SIDE_PX;

/// Frame rate assumed when `meta.json` does not give one.
pub const DEFAULT_FPS: f32 = 15.0;

/// Reads a sequence directory frame by frame, reusing one file buffer.
#[derive(Debug)]
pub struct ReplaySource {
    paths: Vec<PathBuf>,
    next: usize,
    width: usize,
    height: usize,
    fps: f32,
    bytes: Vec<u8>,
}

impl ReplaySource {
    /// Lists `dir/frames/` and reads `meta.json`. The frame size comes from `meta.json`, or
    /// else from the first frame that decodes.
    pub fn open(dir: &Path) -> Result<Self, SequenceError> {
        let paths = frame_paths(dir)?;
        let meta = read_meta(dir)?.unwrap_or_default();
        let mut bytes = Vec::new();
        let mut pixels = Vec::new();
        let (width, height) = match (meta.width, meta.height) {
            (Some(w), Some(h)) => (w, h),
            _ => paths
                .iter()
                .find_map(|p| {
                    // Read only what a frame of the largest size can be: a huge stray file is
                    // passed over, not loaded whole.
                    let mut file = File::open(p).ok()?;
                    if file.metadata().ok()?.len() > largest_pgm_bytes(MAX_SIDE_PX, MAX_SIDE_PX) {
                        return None;
                    }
                    let mut data = Vec::new();
                    file.read_to_end(&mut data).ok()?;
                    decode_pgm(&data, &mut pixels).ok().map(|h| (h.width, h.height))
                })
                .ok_or_else(|| SequenceError::NoFrames { dir: dir.to_path_buf() })?,
        };
        if !(1..=MAX_SIDE_PX).contains(&width) || !(1..=MAX_SIDE_PX).contains(&height) {
            return Err(SequenceError::TooLarge { dir: dir.to_path_buf(), width, height, max_side_px: MAX_SIDE_PX });
        }
        bytes.reserve(largest_pgm_bytes(width, height) as usize);
        // read_meta has checked it is in FPS_RANGE, so a frame period always fits a Duration.
        let fps = meta.fps.unwrap_or(DEFAULT_FPS);
        Ok(ReplaySource { paths, next: 0, width, height, fps, bytes })
    }

    /// Number of frames (files) in the sequence.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when `frames/` holds no file.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

impl FrameSource for ReplaySource {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn fps(&self) -> f32 {
        self.fps
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let index = self.next;
        let path = self.paths.get(index)?;
        self.next += 1;
        frame.index = index as u32;
        Some(load(path, &mut self.bytes, frame, (self.width, self.height)))
    }
}

/// Room for a PGM header with comments, beyond the raster.
const HEADER_ALLOWANCE_BYTES: u64 = 4096;

/// The most bytes a `width` × `height` PGM file can hold: 16-bit samples and a header.
fn largest_pgm_bytes(width: usize, height: usize) -> u64 {
    (width * height * 2) as u64 + HEADER_ALLOWANCE_BYTES
}

/// Reads and decodes the frame file `path` into `frame`, through the reused `bytes` buffer.
/// The file's length and the header's size are checked before anything grows, so a huge
/// stray file cannot make the service allocate without bound.
fn load(path: &Path, bytes: &mut Vec<u8>, frame: &mut Frame, size: (usize, usize)) -> Result<(), CaptureError> {
    let io = |source| CaptureError::Io { path: path.to_path_buf(), source };
    let bad = |reason: String| CaptureError::BadFrame { path: path.to_path_buf(), reason };
    let mut file = File::open(path).map_err(io)?;
    let largest = largest_pgm_bytes(size.0, size.1);
    let len = file.metadata().map_err(io)?.len();
    if len > largest {
        return Err(bad(format!("file is {len} bytes, more than a {}x{} PGM can be", size.0, size.1)));
    }
    bytes.clear();
    file.read_to_end(bytes).map_err(io)?;
    let header = read_header(bytes).map_err(|e| bad(e.to_string()))?;
    if (header.width, header.height) != size {
        return Err(bad(format!("frame is {}x{}, the sequence is {}x{}", header.width, header.height, size.0, size.1)));
    }
    decode_pgm(bytes, &mut frame.pixels).map_err(|e| bad(e.to_string()))?;
    frame.width = header.width;
    frame.height = header.height;
    frame.maxval = header.maxval;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::sequence::write_frame;

    /// Without `meta.json` the size comes from the first frame that decodes; a stray file
    /// larger than any frame is passed over without being read (3 GiB, sparse).
    #[test]
    fn a_huge_stray_file_is_not_read_for_the_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let frames = dir.path().join("frames");
        std::fs::create_dir(&frames).expect("frames/");
        let huge = File::create(frames.join("000000.pgm")).expect("stray file");
        huge.set_len(3 << 30).expect("3 GiB, sparse");
        write_frame(&frames.join("000001.pgm"), 16, 12, 255, &[7; 16 * 12]).expect("frame");
        let source = ReplaySource::open(dir.path()).expect("open");
        assert_eq!((source.size(), source.len()), ((16, 12), 2));
    }
}
