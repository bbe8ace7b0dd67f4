//! Binary PGM (Netpbm P5): the frame format of sequence directories.
//!
//! One byte per sample when maxval < 256, two big-endian bytes otherwise. The maxval is kept as
//! the file gives it (detectors are often 12-bit, maxval 4095), never rescaled, and a sample
//! above it is an error: silently clamping a corrupt frame would hide it from a medical device.

use std::io::{self, Write};

use thiserror::Error;

/// Largest width or height accepted; anything bigger is a corrupt header, not a detector.
pub const MAX_SIDE_PX: usize = 16384;

/// The size and range of a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgmHeader {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Largest value a pixel may take.
    pub maxval: u16,
}

impl PgmHeader {
    /// Bytes per sample in the raster: 1 when maxval < 256, else 2.
    pub fn bytes_per_sample(&self) -> usize {
        if self.maxval < 256 {
            1
        } else {
            2
        }
    }

    /// Bytes of raster that follow the header.
    pub fn raster_bytes(&self) -> usize {
        self.width * self.height * self.bytes_per_sample()
    }
}

/// Why bytes are not a usable binary PGM frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PgmError {
    /// No Netpbm magic number at all (a text file, a PNG, an empty file...).
    #[error("not a PGM file (it does not start with the P5 magic number)")]
    NotPgm,
    /// Another Netpbm format: ASCII PGM, PBM, PPM or PAM.
    #[error("{format} is not supported, only binary greyscale PGM (P5) is")]
    Unsupported {
        /// The format the magic number names.
        format: &'static str,
    },
    /// The header is malformed.
    #[error("bad PGM header: {0}")]
    BadHeader(String),
    /// Zero or absurd dimensions.
    #[error("PGM dimensions {width}x{height} are out of range (each side must be 1..={MAX_SIDE_PX})")]
    BadDimensions {
        /// Columns the header gives.
        width: usize,
        /// Rows the header gives.
        height: usize,
    },
    /// The raster is shorter than the header promises.
    #[error("PGM raster is truncated: the header promises {expected_bytes} bytes, the file has {got_bytes}")]
    Truncated {
        /// Raster bytes the header promises.
        expected_bytes: usize,
        /// Raster bytes present.
        got_bytes: usize,
    },
    /// Bytes after the raster: a multi-image file, or a header misread (e.g. CR LF after maxval).
    #[error("PGM has {extra_bytes} bytes after the raster; a frame file must hold exactly one image")]
    TrailingBytes {
        /// Bytes beyond the raster the header describes.
        extra_bytes: usize,
    },
    /// A sample exceeds the maxval the header declares.
    #[error("pixel (x {x}, y {y}) is {value}, above the maxval {maxval}")]
    ValueAboveMaxval {
        /// Column of the first such pixel.
        x: usize,
        /// Row of the first such pixel.
        y: usize,
        /// Its value.
        value: u16,
        /// The declared maxval.
        maxval: u16,
    },
}

/// Netpbm whitespace: blank, TAB, LF, VT, FF, CR.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads the header fields of a P5 file.
struct HeaderParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl HeaderParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips a `#` comment through the end of its line (CR or LF, consumed too).
    fn skip_comment(&mut self) {
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\n' || b == b'\r' {
                break;
            }
        }
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            if is_space(b) {
                self.pos += 1;
            } else if b == b'#' {
                self.skip_comment();
            } else {
                break;
            }
        }
    }

    /// A decimal field, which must end with whitespace or a comment.
    fn number(&mut self, field: &str) -> Result<u32, PgmError> {
        self.skip_space_and_comments();
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(b - b'0')))
                .ok_or_else(|| PgmError::BadHeader(format!("{field} is too large")))?;
            self.pos += 1;
        }
        match self.peek() {
            None if self.pos == start => Err(PgmError::BadHeader(format!("the header ends before the {field}"))),
            // The end of the bytes right after maxval is a missing raster, reported as such.
            None => Ok(value),
            Some(b) if self.pos > start && (is_space(b) || b == b'#') => Ok(value),
            Some(_) => Err(PgmError::BadHeader(format!("{field} is not a decimal number"))),
        }
    }
}

/// Parses the header; returns it and the offset of the raster.
fn parse_header(bytes: &[u8]) -> Result<(PgmHeader, usize), PgmError> {
    let format = match bytes {
        [b'P', b'5', ..] => None,
        [b'P', b'1', ..] => Some("ASCII PBM (P1)"),
        [b'P', b'2', ..] => Some("ASCII PGM (P2)"),
        [b'P', b'3', ..] => Some("ASCII PPM colour (P3)"),
        [b'P', b'4', ..] => Some("binary PBM bitmap (P4)"),
        [b'P', b'6', ..] => Some("binary PPM colour (P6)"),
        [b'P', b'7', ..] => Some("PAM (P7)"),
        _ => return Err(PgmError::NotPgm),
    };
    if let Some(format) = format {
        return Err(PgmError::Unsupported { format });
    }
    let mut p = HeaderParser { bytes, pos: 2 };
    if p.peek().is_some_and(|b| !is_space(b) && b != b'#') {
        return Err(PgmError::BadHeader("the magic number P5 is not followed by whitespace".into()));
    }
    let width = p.number("width")? as usize;
    let height = p.number("height")? as usize;
    let maxval = p.number("maxval")?;
    if !(1..=MAX_SIDE_PX).contains(&width) || !(1..=MAX_SIDE_PX).contains(&height) {
        return Err(PgmError::BadDimensions { width, height });
    }
    let maxval = match u16::try_from(maxval) {
        Ok(0) => return Err(PgmError::BadHeader("maxval is 0, it must be 1..=65535".into())),
        Ok(m) => m,
        Err(_) => return Err(PgmError::BadHeader(format!("maxval {maxval} is above 65535"))),
    };
    // Exactly one whitespace character (or a comment line) separates maxval from the raster.
    if p.peek() == Some(b'#') {
        p.skip_comment();
    } else {
        p.pos += 1;
    }
    Ok((PgmHeader { width, height, maxval }, p.pos))
}

/// Reads only the header, so a caller can check the size before decoding.
pub fn read_header(bytes: &[u8]) -> Result<PgmHeader, PgmError> {
    parse_header(bytes).map(|(header, _)| header)
}

/// Decodes a binary PGM into `pixels` (row-major), reusing its allocation: it is cleared and
/// refilled, and does not reallocate when its capacity suffices. On error `pixels` is empty.
pub fn decode_pgm(bytes: &[u8], pixels: &mut Vec<u16>) -> Result<PgmHeader, PgmError> {
    pixels.clear();
    let (header, offset) = parse_header(bytes)?;
    let raster = bytes.get(offset..).unwrap_or_default();
    let expected_bytes = header.raster_bytes();
    if raster.len() < expected_bytes {
        return Err(PgmError::Truncated { expected_bytes, got_bytes: raster.len() });
    }
    if raster.len() > expected_bytes {
        return Err(PgmError::TrailingBytes { extra_bytes: raster.len() - expected_bytes });
    }
    if header.bytes_per_sample() == 1 {
        pixels.extend(raster.iter().map(|&b| u16::from(b)));
    } else {
        pixels.extend(raster.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])));
    }
    let maxval = header.maxval;
    if let Some(i) = pixels.iter().position(|&v| v > maxval) {
        let value = pixels[i];
        pixels.clear();
        return Err(PgmError::ValueAboveMaxval { x: i % header.width, y: i / header.width, value, maxval });
    }
    Ok(header)
}

/// Encodes a binary PGM: 8-bit samples when `maxval` < 256, else 16-bit big-endian. Rejects
/// (as `InvalidInput`) a frame our own decoder would reject, so a written file always reads back.
pub fn encode_pgm(out: &mut impl Write, width: usize, height: usize, maxval: u16, pixels: &[u16]) -> io::Result<()> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    if !(1..=MAX_SIDE_PX).contains(&width) || !(1..=MAX_SIDE_PX).contains(&height) {
        return Err(invalid(format!("PGM dimensions {width}x{height} out of range 1..={MAX_SIDE_PX}")));
    }
    if maxval == 0 {
        return Err(invalid("PGM maxval must be at least 1".into()));
    }
    if pixels.len() != width * height {
        return Err(invalid(format!("{} pixels for a {width}x{height} PGM", pixels.len())));
    }
    if let Some(v) = pixels.iter().find(|&&v| v > maxval) {
        return Err(invalid(format!("pixel value {v} above PGM maxval {maxval}")));
    }
    write!(out, "P5\n{width} {height}\n{maxval}\n")?;
    // Staged through a stack buffer: few write calls even on an unbuffered writer, no allocation.
    let mut buf = [0u8; 8192];
    if maxval < 256 {
        for chunk in pixels.chunks(buf.len()) {
            for (b, &v) in buf.iter_mut().zip(chunk) {
                *b = v as u8;
            }
            out.write_all(&buf[..chunk.len()])?;
        }
    } else {
        for chunk in pixels.chunks(buf.len() / 2) {
            for (b, &v) in buf.chunks_exact_mut(2).zip(chunk) {
                b.copy_from_slice(&v.to_be_bytes());
            }
            out.write_all(&buf[..2 * chunk.len()])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: usize, height: usize, maxval: u16, pixels: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_pgm(&mut out, width, height, maxval, pixels).expect("valid frame encodes");
        out
    }

    fn round_trip(width: usize, height: usize, maxval: u16) {
        let pixels: Vec<u16> =
            (0..width * height).map(|i| ((i as u64 * 2_654_435_761) % (u64::from(maxval) + 1)) as u16).collect();
        let bytes = encode(width, height, maxval, &pixels);
        let bps = if maxval < 256 { 1 } else { 2 };
        assert_eq!(bytes.len(), format!("P5\n{width} {height}\n{maxval}\n").len() + width * height * bps);
        let mut back = Vec::new();
        let header = decode_pgm(&bytes, &mut back).expect("own output decodes");
        assert_eq!(header, PgmHeader { width, height, maxval });
        assert_eq!(back, pixels);
    }

    #[test]
    fn round_trips_8_bit_16_bit_and_12_bit() {
        round_trip(4, 3, 255);
        round_trip(5, 2, 1);
        round_trip(6, 7, 65535);
        round_trip(640, 480, 4095);
        round_trip(300, 1, 256);
    }

    #[test]
    fn round_trips_odd_sizes() {
        round_trip(1, 1, 255);
        round_trip(1, 9, 4095);
        round_trip(13, 1, 200);
        round_trip(7, 11, 1023);
        round_trip(4099, 3, 4095); // more samples than the staging buffer holds
    }

    #[test]
    fn sixteen_bit_is_big_endian() {
        let mut pixels = Vec::new();
        let header = decode_pgm(b"P5 2 1 4095 \x01\x02\x0f\xff", &mut pixels).expect("valid");
        assert_eq!(header.maxval, 4095);
        assert_eq!(pixels, [0x0102, 0x0fff]);
    }

    #[test]
    fn reads_comments_and_any_whitespace_in_the_header() {
        let bytes = b"P5\n# written by a detector\n# two comment lines\n3\t2 # width, height\r\n 255# max\n\x00\x01\x02\x03\x04\xff";
        let mut pixels = Vec::new();
        let header = decode_pgm(bytes, &mut pixels).expect("comments are allowed");
        assert_eq!(header, PgmHeader { width: 3, height: 2, maxval: 255 });
        assert_eq!(pixels, [0, 1, 2, 3, 4, 255]);
    }

    #[test]
    fn reuses_the_pixel_buffer() {
        let bytes = encode(8, 8, 255, &[7; 64]);
        let mut pixels = Vec::with_capacity(100);
        pixels.extend([1, 2, 3]);
        let before = pixels.as_ptr();
        decode_pgm(&bytes, &mut pixels).expect("valid");
        assert_eq!(pixels.len(), 64);
        assert_eq!(pixels.as_ptr(), before);
    }

    #[test]
    fn rejects_truncated_raster() {
        let mut bytes = encode(4, 4, 4095, &[100; 16]);
        bytes.truncate(bytes.len() - 3);
        let mut pixels = vec![1];
        assert_eq!(decode_pgm(&bytes, &mut pixels), Err(PgmError::Truncated { expected_bytes: 32, got_bytes: 29 }));
        assert!(pixels.is_empty());
        assert_eq!(
            decode_pgm(b"P5 2 2 255", &mut pixels),
            Err(PgmError::Truncated { expected_bytes: 4, got_bytes: 0 })
        );
        assert!(matches!(decode_pgm(b"P5 2 2", &mut pixels), Err(PgmError::BadHeader(_))));
    }

    #[test]
    fn rejects_bytes_after_the_raster() {
        // CR LF after maxval: the LF would otherwise be read as the first pixel.
        let bytes = b"P5 2 1 255\r\n\x10\x20";
        assert_eq!(decode_pgm(bytes, &mut Vec::new()), Err(PgmError::TrailingBytes { extra_bytes: 1 }));
    }

    #[test]
    fn rejects_files_that_are_not_pgm() {
        let mut pixels = Vec::new();
        assert_eq!(decode_pgm(b"", &mut pixels), Err(PgmError::NotPgm));
        assert_eq!(decode_pgm(b"hello, world\n", &mut pixels), Err(PgmError::NotPgm));
        assert_eq!(decode_pgm(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", &mut pixels), Err(PgmError::NotPgm));
        assert_eq!(
            decode_pgm(b"P6 1 1 255\n\0\0\0", &mut pixels),
            Err(PgmError::Unsupported { format: "binary PPM colour (P6)" })
        );
        assert!(matches!(decode_pgm(b"P5x 1 1 255\n\0", &mut pixels), Err(PgmError::BadHeader(_))));
    }

    #[test]
    fn rejects_ascii_pgm_clearly() {
        let err = decode_pgm(b"P2\n2 1\n255\n0 255\n", &mut Vec::new()).expect_err("P2 is not supported");
        assert_eq!(err, PgmError::Unsupported { format: "ASCII PGM (P2)" });
        assert!(err.to_string().contains("ASCII PGM (P2) is not supported"), "{err}");
    }

    #[test]
    fn rejects_bad_dimensions_and_maxval() {
        let mut pixels = Vec::new();
        assert_eq!(decode_pgm(b"P5 0 4 255\n", &mut pixels), Err(PgmError::BadDimensions { width: 0, height: 4 }));
        assert_eq!(
            decode_pgm(b"P5 16385 1 255\n", &mut pixels),
            Err(PgmError::BadDimensions { width: 16385, height: 1 })
        );
        assert!(matches!(decode_pgm(b"P5 99999999999 1 255\n", &mut pixels), Err(PgmError::BadHeader(_))));
        assert!(matches!(decode_pgm(b"P5 1 1 0\n\0", &mut pixels), Err(PgmError::BadHeader(_))));
        assert!(matches!(decode_pgm(b"P5 1 1 65536\n\0\0", &mut pixels), Err(PgmError::BadHeader(_))));
        assert!(matches!(decode_pgm(b"P5 1 -1 255\n\0", &mut pixels), Err(PgmError::BadHeader(_))));
        assert!(matches!(decode_pgm(b"P5 1x 1 255\n\0", &mut pixels), Err(PgmError::BadHeader(_))));
    }

    #[test]
    fn rejects_values_above_maxval() {
        let bytes = b"P5 2 2 4095\n\x00\x01\x0f\xff\x00\x02\x10\x00";
        let mut pixels = Vec::new();
        assert_eq!(
            decode_pgm(bytes, &mut pixels),
            Err(PgmError::ValueAboveMaxval { x: 1, y: 1, value: 4096, maxval: 4095 })
        );
        assert!(pixels.is_empty());
        assert!(matches!(decode_pgm(b"P5 1 1 100\n\x65", &mut pixels), Err(PgmError::ValueAboveMaxval { .. })));
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would_reject() {
        let mut out = Vec::new();
        assert!(encode_pgm(&mut out, 2, 2, 255, &[0; 3]).is_err());
        assert!(encode_pgm(&mut out, 0, 2, 255, &[]).is_err());
        assert!(encode_pgm(&mut out, 1, 1, 0, &[0]).is_err());
        assert!(encode_pgm(&mut out, 1, 1, 4095, &[4096]).is_err());
        assert!(out.is_empty());
    }
}
