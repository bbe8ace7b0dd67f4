//! The sequence directory: replay input and ground truth (design.md, "Sequence format").
//!
//! ```text
//! frames/NNNNNN.pgm        binary PGM, 8- or 16-bit, any maxval
//! meta.json                optional: width, height, bits, fps
//! gt/NNNNNN_mask.png       optional: 8-bit grey wire mask, 0 or 255
//! gt/centerlines.jsonl     optional: {"frame": i, "points": [[x, y], ...]} per line
//! ```
//!
//! A frame's index is its position in `frames/` in file-name order, whatever the name says, so
//! ground truth lines up with the output even when some file is bad.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::pgm::{encode_pgm, MAX_SIDE_PX};

/// Folder of the frames, inside the sequence directory.
pub const FRAMES_DIR: &str = "frames";
/// Folder of the ground truth, inside the sequence directory.
pub const GT_DIR: &str = "gt";
/// The optional metadata file, inside the sequence directory.
pub const META_FILE: &str = "meta.json";
/// The centerline ground truth, inside [`GT_DIR`].
pub const CENTERLINES_FILE: &str = "centerlines.jsonl";
/// Frame rates `meta.json` may give: anything slower than one frame in ten seconds or faster
/// than a thousand a second is a typo, and a frame period must fit a `Duration`.
pub const FPS_RANGE: std::ops::RangeInclusive<f32> = 0.1..=1000.0;

/// Why a sequence directory, or one of its files, cannot be used. Every variant names the file
/// or directory; the underlying cause, where there is one, is the error's `source`.
#[derive(Debug, Error)]
pub enum SequenceError {
    /// The OS refused an operation on a file or directory.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: "read", "write", "create", "list".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The directory has no `frames/` folder.
    #[error("{} has no frames/ folder: a sequence keeps its frames in frames/NNNNNN.pgm", dir.display())]
    MissingFrames {
        /// The sequence directory.
        dir: PathBuf,
    },
    /// The sequence's frames are larger than the pipeline runs.
    #[error("{}: frames of {width}x{height} are larger than the pipeline runs ({max_side_px} px a side)", dir.display())]
    TooLarge {
        /// The sequence directory.
        dir: PathBuf,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Largest side the pipeline takes.
        max_side_px: usize,
    },
    /// A ground-truth point is not a finite pixel coordinate within the largest frame.
    #[error("{}, line {line}: point ({x}, {y}) is not a pixel coordinate", path.display())]
    CenterlinePoint {
        /// The centerlines file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The point's x.
        x: f32,
        /// The point's y.
        y: f32,
    },
    /// A ground-truth centerline has more points than any wire's needs.
    #[error("{}, line {line}: {points} points, more than {MAX_POLYLINE_POINTS}", path.display())]
    CenterlinePoints {
        /// The centerlines file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// How many it has.
        points: usize,
    },
    /// `frames/` holds no file (or none that can be read).
    #[error("{}/frames/ holds no frame", dir.display())]
    NoFrames {
        /// The sequence directory.
        dir: PathBuf,
    },
    /// `meta.json` is not valid JSON of the expected shape.
    #[error("{} is not valid sequence metadata", path.display())]
    Meta {
        /// The metadata file.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// `meta.json` parses but a value is out of range.
    #[error("{}: {what}", path.display())]
    BadMeta {
        /// The metadata file.
        path: PathBuf,
        /// Which value, and why.
        what: String,
    },
    /// A line of `centerlines.jsonl` is not a centerline record.
    #[error("{}, line {line}: not a centerline record", path.display())]
    Centerline {
        /// The centerline file.
        path: PathBuf,
        /// Line number, counting from 1.
        line: usize,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A frame could not be written as PGM.
    #[error("cannot write frame {}", path.display())]
    Frame {
        /// The frame file.
        path: PathBuf,
        /// The I/O or encoding failure.
        source: io::Error,
    },
    /// A mask PNG could not be decoded.
    #[error("cannot decode mask {}", path.display())]
    MaskDecode {
        /// The mask file.
        path: PathBuf,
        /// The PNG decoder's complaint.
        source: png::DecodingError,
    },
    /// A mask PNG could not be encoded.
    #[error("cannot encode mask {}", path.display())]
    MaskEncode {
        /// The mask file.
        path: PathBuf,
        /// The PNG encoder's complaint.
        source: png::EncodingError,
    },
    /// A mask is not an 8-bit grey image of 0 and 255, or does not match its size.
    #[error("{}: {what}", path.display())]
    BadMask {
        /// The mask file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// `meta.json`. Every field is optional; unknown fields are accepted so that newer writers stay
/// readable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SequenceMeta {
    /// Frame width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Frame height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<usize>,
    /// Bits the detector delivers (12 for maxval 4095).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits: Option<u8>,
    /// Frame rate the sequence was recorded at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f32>,
}

impl SequenceMeta {
    /// What is out of range, if anything: sides 1..=16384, bits 1..=16, fps in [`FPS_RANGE`].
    fn problem(&self) -> Option<String> {
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if let Some(side) = side.filter(|s| !(1..=MAX_SIDE_PX).contains(s)) {
                return Some(format!("{name} {side} is out of range 1..={MAX_SIDE_PX}"));
            }
        }
        if let Some(bits) = self.bits.filter(|b| !(1..=16).contains(b)) {
            return Some(format!("bits {bits} is out of range 1..=16"));
        }
        if let Some(fps) = self.fps.filter(|f| !FPS_RANGE.contains(f)) {
            return Some(format!("fps {fps} is out of range {}..={}", FPS_RANGE.start(), FPS_RANGE.end()));
        }
        None
    }
}

/// The ground-truth centerline of one frame: one line of `gt/centerlines.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CenterlineTruth {
    /// Frame index (position in the sequence, from 0).
    pub frame: u32,
    /// Pixel coordinates `[x, y]`: (0, 0) is the centre of the top-left pixel, x the column,
    /// y the row. Proximal end (where the wire enters the image) first, distal tip last; empty
    /// when no wire is visible.
    pub points: Vec<[f32; 2]>,
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SequenceError + 'a {
    move |source| SequenceError::Io { action, path: path.to_path_buf(), source }
}

/// File name of frame `index` in `frames/` as this crate writes it.
pub fn frame_file_name(index: u32) -> String {
    format!("{index:06}.pgm")
}

/// The ground-truth mask of the frame stored at `frame_path`: `gt/` + its stem + `_mask.png`,
/// so masks pair with frames by name even when numbering starts at 1 (as ffmpeg's does).
pub fn mask_path(dir: &Path, frame_path: &Path) -> PathBuf {
    let stem = frame_path.file_stem().unwrap_or_default().to_string_lossy();
    dir.join(GT_DIR).join(format!("{stem}_mask.png"))
}

/// Reads `dir/meta.json`: `None` when there is none, an error naming the file when it is
/// malformed or holds an out-of-range value.
pub fn read_meta(dir: &Path) -> Result<Option<SequenceMeta>, SequenceError> {
    let path = dir.join(META_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", &path)(e)),
    };
    let meta: SequenceMeta =
        serde_json::from_str(&text).map_err(|source| SequenceError::Meta { path: path.clone(), source })?;
    match meta.problem() {
        Some(what) => Err(SequenceError::BadMeta { path, what }),
        None => Ok(Some(meta)),
    }
}

/// Writes `dir/meta.json`.
pub fn write_meta(dir: &Path, meta: &SequenceMeta) -> Result<(), SequenceError> {
    let path = dir.join(META_FILE);
    let mut text = serde_json::to_string_pretty(meta)
        .map_err(|e| io_error("write", &path)(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    text.push('\n');
    fs::write(&path, text).map_err(io_error("write", &path))
}

/// The `*.pgm` files in `dir/frames/` (symbolic links followed, hidden files and other
/// extensions left out and logged), sorted by file name. The position in this list is the
/// frame index; files are not opened, so a bad one still takes its place, and a stray
/// `.gitkeep` or `notes.txt` does not shift the frames after it. An error names the directory
/// when `frames/` is missing or holds no `*.pgm`.
pub fn frame_paths(dir: &Path) -> Result<Vec<PathBuf>, SequenceError> {
    let frames = dir.join(FRAMES_DIR);
    let entries = match fs::read_dir(&frames) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SequenceError::MissingFrames { dir: dir.to_path_buf() })
        }
        Err(e) => return Err(io_error("list", &frames)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error("list", &frames))?.path();
        if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        let pgm = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pgm"));
        if hidden || !pgm {
            tracing::warn!("{}: not a frame (frames are frames/NNNNNN.pgm), ignored", path.display());
            continue;
        }
        paths.push(path);
    }
    if paths.is_empty() {
        return Err(SequenceError::NoFrames { dir: dir.to_path_buf() });
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(paths)
}

/// Writes one frame as binary PGM (16-bit when `maxval` > 255).
pub fn write_frame(path: &Path, width: usize, height: usize, maxval: u16, pixels: &[u16]) -> Result<(), SequenceError> {
    let frame_error = |source| SequenceError::Frame { path: path.to_path_buf(), source };
    let mut out = BufWriter::new(File::create(path).map_err(frame_error)?);
    encode_pgm(&mut out, width, height, maxval, pixels).map_err(frame_error)?;
    out.flush().map_err(frame_error)
}

/// Most points a centerline read from a file may have: a receiver's has at most the protocol's
/// 128, a ground truth about one per pixel of wire; the eval's distances grow with the square
/// of the count.
pub const MAX_POLYLINE_POINTS: usize = 4096;

/// Reads `dir/gt/centerlines.jsonl`, one record per non-blank line, in file order. An error
/// names the file and the line; a missing file is an `Io` error with kind `NotFound`.
pub fn read_centerlines(dir: &Path) -> Result<Vec<CenterlineTruth>, SequenceError> {
    let path = dir.join(GT_DIR).join(CENTERLINES_FILE);
    let text = fs::read_to_string(&path).map_err(io_error("read", &path))?;
    let mut truths = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let truth: CenterlineTruth = serde_json::from_str(line).map_err(|source| SequenceError::Centerline {
            path: path.clone(),
            line: i + 1,
            source,
        })?;
        if truth.points.len() > MAX_POLYLINE_POINTS {
            return Err(SequenceError::CenterlinePoints { path, line: i + 1, points: truth.points.len() });
        }
        if let Some(p) = truth.points.iter().find(|p| !p.iter().all(|c| c.is_finite() && c.abs() <= MAX_SIDE_PX as f32))
        {
            return Err(SequenceError::CenterlinePoint { path, line: i + 1, x: p[0], y: p[1] });
        }
        truths.push(truth);
    }
    Ok(truths)
}

/// Writes `dir/gt/centerlines.jsonl` (creating `gt/`), one compact record per line.
pub fn write_centerlines(dir: &Path, truths: &[CenterlineTruth]) -> Result<(), SequenceError> {
    let gt = dir.join(GT_DIR);
    fs::create_dir_all(&gt).map_err(io_error("create", &gt))?;
    let path = gt.join(CENTERLINES_FILE);
    let write_error = io_error("write", &path);
    let result = (|| {
        let mut out = BufWriter::new(File::create(&path)?);
        for truth in truths {
            serde_json::to_writer(&mut out, truth)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    result.map_err(write_error)
}

/// Checks a mask's length and values (0 or 255 only).
fn mask_problem(width: usize, height: usize, mask: &[u8]) -> Option<String> {
    if mask.len() != width * height {
        return Some(format!("{} mask bytes for a {width}x{height} image", mask.len()));
    }
    let i = mask.iter().position(|&v| v != 0 && v != 255)?;
    Some(format!("mask pixel (x {}, y {}) is {}; a mask holds only 0 and 255", i % width, i / width, mask[i]))
}

/// Writes a wire mask as an 8-bit greyscale PNG; `mask` is row-major, 0 (background) or 255
/// (wire).
pub fn write_mask_png(path: &Path, width: usize, height: usize, mask: &[u8]) -> Result<(), SequenceError> {
    if let Some(what) = mask_problem(width, height, mask) {
        return Err(SequenceError::BadMask { path: path.to_path_buf(), what });
    }
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(SequenceError::BadMask {
            path: path.to_path_buf(),
            what: format!("{width}x{height} is too large"),
        });
    };
    let encode_error = |source| SequenceError::MaskEncode { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(io_error("create", path))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode_error)?;
    writer.write_image_data(mask).map_err(encode_error)?;
    writer.finish().map_err(encode_error)
}

/// Reads a wire mask written by [`write_mask_png`] into `mask` (reusing its allocation) and
/// returns `(width, height)`. Anything but 8-bit greyscale holding only 0 and 255 is an error:
/// ground truth is not guessed at.
pub fn read_mask_png(path: &Path, mask: &mut Vec<u8>) -> Result<(usize, usize), SequenceError> {
    mask.clear();
    let decode_error = |source| SequenceError::MaskDecode { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_error("read", path))?;
    let mut reader = png::Decoder::new(io::BufReader::new(file)).read_info().map_err(decode_error)?;
    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    if !(1..=MAX_SIDE_PX).contains(&width) || !(1..=MAX_SIDE_PX).contains(&height) {
        let what = format!("mask is {width}x{height}; each side must be 1..={MAX_SIDE_PX}");
        return Err(SequenceError::BadMask { path: path.to_path_buf(), what });
    }
    if (info.color_type, info.bit_depth) != (png::ColorType::Grayscale, png::BitDepth::Eight) {
        let what = format!("mask is {:?} {:?}; a mask is 8-bit greyscale", info.bit_depth, info.color_type);
        return Err(SequenceError::BadMask { path: path.to_path_buf(), what });
    }
    let size = reader.output_buffer_size().ok_or_else(|| SequenceError::BadMask {
        path: path.to_path_buf(),
        what: format!("{width}x{height} is too large"),
    })?;
    mask.resize(size, 0);
    reader.next_frame(mask).map_err(decode_error)?;
    mask.truncate(width * height);
    if let Some(what) = mask_problem(width, height, mask) {
        mask.clear();
        return Err(SequenceError::BadMask { path: path.to_path_buf(), what });
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn meta_is_optional_lenient_about_unknown_fields_and_strict_about_values() -> TestResult {
        let dir = tempfile::tempdir()?;
        assert_eq!(read_meta(dir.path())?, None);

        fs::write(dir.path().join(META_FILE), r#"{"width": 640, "fps": 7.5, "detector": "XR-9"}"#)?;
        let meta = read_meta(dir.path())?;
        assert_eq!(meta, Some(SequenceMeta { width: Some(640), height: None, bits: None, fps: Some(7.5) }));

        fs::write(dir.path().join(META_FILE), r#"{"width": 640,"#)?;
        let err = read_meta(dir.path()).expect_err("malformed");
        assert!(matches!(&err, SequenceError::Meta { path, .. } if path.ends_with(META_FILE)), "{err}");
        assert!(err.to_string().contains("meta.json"), "{err}");

        fs::write(dir.path().join(META_FILE), r#"{"bits": 24}"#)?;
        assert!(matches!(read_meta(dir.path()), Err(SequenceError::BadMeta { .. })));
        fs::write(dir.path().join(META_FILE), r#"{"fps": 0}"#)?;
        assert!(matches!(read_meta(dir.path()), Err(SequenceError::BadMeta { .. })));
        // A tiny rate would make a frame period no Duration can hold.
        for fps in ["1e-30", "0.09", "1000.5", "1e30"] {
            fs::write(dir.path().join(META_FILE), format!(r#"{{"fps": {fps}}}"#))?;
            let err = read_meta(dir.path()).expect_err(fps).to_string();
            assert!(err.contains("meta.json: fps") && err.contains("out of range 0.1..=1000"), "{err}");
        }
        for fps in [0.1, 1000.0] {
            fs::write(dir.path().join(META_FILE), format!(r#"{{"fps": {fps}}}"#))?;
            assert_eq!(read_meta(dir.path())?.and_then(|m| m.fps), Some(fps));
        }

        let meta = SequenceMeta { width: Some(512), height: Some(512), bits: Some(12), fps: Some(15.0) };
        write_meta(dir.path(), &meta)?;
        assert_eq!(read_meta(dir.path())?, Some(meta));
        Ok(())
    }

    #[test]
    fn frame_paths_lists_pgm_files_in_name_order() -> TestResult {
        let dir = tempfile::tempdir()?;
        let err = frame_paths(dir.path()).expect_err("no frames/");
        assert!(matches!(&err, SequenceError::MissingFrames { dir: d } if d == dir.path()));
        assert!(err.to_string().contains(&dir.path().display().to_string()));

        let frames = dir.path().join(FRAMES_DIR);
        fs::create_dir(&frames)?;
        fs::create_dir(frames.join("000000.pgm.d"))?;
        assert!(matches!(frame_paths(dir.path()), Err(SequenceError::NoFrames { .. })));

        for name in ["000010.pgm", "000002.pgm", "000001.PGM", "not-a-frame.txt", ".gitkeep", ".000000.pgm"] {
            fs::write(frames.join(name), b"x")?;
        }
        let names: Vec<String> = frame_paths(dir.path())?
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["000001.PGM", "000002.pgm", "000010.pgm"], "stray files take no frame index");
        Ok(())
    }

    #[test]
    fn centerlines_round_trip_and_errors_name_file_and_line() -> TestResult {
        let dir = tempfile::tempdir()?;
        let truths = vec![
            CenterlineTruth { frame: 0, points: vec![] },
            CenterlineTruth { frame: 1, points: vec![[0.0, 10.5], [2.0, 11.25], [3.5, 12.0]] },
        ];
        write_centerlines(dir.path(), &truths)?;
        assert_eq!(read_centerlines(dir.path())?, truths);
        let text = fs::read_to_string(dir.path().join(GT_DIR).join(CENTERLINES_FILE))?;
        assert_eq!(text.lines().next(), Some(r#"{"frame":0,"points":[]}"#));

        fs::write(dir.path().join(GT_DIR).join(CENTERLINES_FILE), "{\"frame\":0,\"points\":[]}\n\n{\"frame\":1}\n")?;
        let err = read_centerlines(dir.path()).expect_err("missing points");
        assert!(matches!(err, SequenceError::Centerline { line: 3, .. }), "{err}");
        assert!(err.to_string().contains("centerlines.jsonl, line 3"), "{err}");

        let long = CenterlineTruth { frame: 2, points: vec![[1.0, 1.0]; MAX_POLYLINE_POINTS + 1] };
        write_centerlines(dir.path(), &[truths[0].clone(), long])?;
        let err = read_centerlines(dir.path()).expect_err("too many points");
        assert!(matches!(err, SequenceError::CenterlinePoints { line: 2, points: 4097, .. }), "{err}");
        Ok(())
    }

    #[test]
    fn masks_round_trip_and_reject_non_binary_values() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("000003_mask.png");
        let (w, h) = (7, 5);
        let mask: Vec<u8> = (0..w * h).map(|i| if i % 3 == 0 { 255 } else { 0 }).collect();
        write_mask_png(&path, w, h, &mask)?;
        let mut back = Vec::new();
        assert_eq!(read_mask_png(&path, &mut back)?, (w, h));
        assert_eq!(back, mask);

        assert!(matches!(write_mask_png(&path, w, h, &mask[1..]), Err(SequenceError::BadMask { .. })));
        let mut grey = mask.clone();
        grey[4] = 128;
        assert!(matches!(write_mask_png(&path, w, h, &grey), Err(SequenceError::BadMask { .. })));

        fs::write(&path, b"P5 1 1 255\n\0")?;
        assert!(matches!(read_mask_png(&path, &mut back), Err(SequenceError::MaskDecode { .. })));
        Ok(())
    }

    #[test]
    fn masks_pair_with_frames_by_name() {
        let dir = Path::new("/data/seq");
        assert_eq!(mask_path(dir, &dir.join("frames/000001.pgm")), dir.join("gt/000001_mask.png"));
        assert_eq!(frame_file_name(42), "000042.pgm");
    }

    #[test]
    fn frames_are_written_as_pgm() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(frame_file_name(0));
        write_frame(&path, 3, 2, 4095, &[0, 1, 2, 4095, 4, 5])?;
        let mut pixels = Vec::new();
        let header = super::super::pgm::decode_pgm(&fs::read(&path)?, &mut pixels)?;
        assert_eq!((header.width, header.height, header.maxval), (3, 2, 4095));
        assert_eq!(pixels, [0, 1, 2, 4095, 4, 5]);
        assert!(matches!(write_frame(&path, 3, 2, 255, &[0; 5]), Err(SequenceError::Frame { .. })));
        Ok(())
    }
}
