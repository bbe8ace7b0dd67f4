//! V4L2 capture from a frame grabber or camera, and the feeder that plays a sequence into a
//! v4l2loopback device so a test bench goes through the same capture path.
//!
//! What can be decided without a device lives in this file and is tested without one: which
//! pixel formats are taken and how a buffer becomes luma ([`Layout`]), Y16 scaling
//! ([`Y16Scale`]), capture time from a buffer's timestamp ([`capture_time`]) and when to retry
//! a lost device ([`Link`]). The ioctl side is built with the `v4l2` feature only, because the
//! `v4l` crate's bindings need libclang at build time; without it [`open`] and [`feed`] return
//! [`V4l2Error::NotBuilt`], so a laptop build still parses a board's configuration.

#[cfg(feature = "v4l2")]
mod device;
#[cfg(feature = "v4l2")]
mod output;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use thiserror::Error;

#[cfg(feature = "v4l2")]
pub use device::V4l2Source;

use super::sequence::SequenceError;
use super::FrameSource;
use crate::pipeline::MAX_SIDE_PX;
use crate::time::Micros;

/// Longest frame timeout: see [`V4l2Options::validate`].
pub const MAX_FRAME_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest wait between reopens of a device that opens but stays silent (see [`Link`]), unless
/// the configured stall reopen is longer.
pub const MAX_STALL_REOPEN: Duration = Duration::from_secs(60);

/// Buffers mapped for streaming: one being read, the others with the driver, so a frame that
/// arrives while the pipeline reads the last one still has a buffer to land in.
pub const STREAM_BUFFERS: u32 = 4;

/// The pixel formats wiretrace takes: grey levels, or the luma of packed YUV 4:2:2. Named in
/// configuration files as [`PixelFormat::name`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum PixelFormat {
    /// `GREY`: 8 bits per pixel.
    #[serde(rename = "GREY")]
    Grey,
    /// `Y16`: 16 bits per pixel, little-endian (a detector's 12 or 14 bits, see [`Y16Scale`]).
    #[serde(rename = "Y16")]
    Y16,
    /// `YUYV`: packed Y0 U Y1 V; only the luma is kept.
    #[serde(rename = "YUYV")]
    Yuyv,
}

impl PixelFormat {
    /// Every format, in the order [`FromStr`] lists them.
    pub const ALL: [PixelFormat; 3] = [PixelFormat::Grey, PixelFormat::Y16, PixelFormat::Yuyv];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Y16 => *b"Y16 ",
            PixelFormat::Yuyv => *b"YUYV",
        }
    }

    /// The format with this four-character code, if wiretrace takes it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        PixelFormat::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// Its name in configuration files and on the command line (as `v4l2-ctl` prints it).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Grey => "GREY",
            PixelFormat::Y16 => "Y16",
            PixelFormat::Yuyv => "YUYV",
        }
    }

    /// Bytes one pixel takes in a row.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Grey => 1,
            PixelFormat::Y16 | PixelFormat::Yuyv => 2,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pixel format name that is not one of [`PixelFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown pixel format {0:?}: wiretrace takes GREY, Y16 or YUYV")]
pub struct UnknownPixelFormat(pub String);

impl FromStr for PixelFormat {
    type Err = UnknownPixelFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PixelFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPixelFormat(s.to_string()))
    }
}

/// A four-character code as `v4l2-ctl --list-formats` shows it: trailing spaces dropped,
/// anything unprintable in hex.
pub fn fourcc_name(code: [u8; 4]) -> String {
    if code.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        code.iter().map(|&b| char::from(b)).collect::<String>().trim_end().to_string()
    } else {
        format!("0x{:08x}", u32::from_le_bytes(code))
    }
}

/// How the bits of a Y16 sample sit: detectors deliver 12 or 14 bits in a 16-bit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alignment {
    /// Shifted to the top of the word (the unused low bits are zero): V4L2's convention for
    /// Y16, so that full scale is 65535 whatever the detector.
    #[default]
    Msb,
    /// In the low bits (as V4L2's Y10 and Y12 do); values above the detector's range are
    /// clamped to its top.
    Lsb,
}

/// Turns Y16 samples into detector counts, so `maxval` is the detector's (4095 for 12 bits)
/// and the log-attenuation stage sees the range it was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Y16Scale {
    /// Significant bits of the detector, 1..=16.
    pub bits: u8,
    /// Where they sit in the 16-bit word.
    pub alignment: Alignment,
}

impl Default for Y16Scale {
    fn default() -> Self {
        Y16Scale { bits: 16, alignment: Alignment::Msb }
    }
}

impl Y16Scale {
    /// Largest count: `2^bits - 1`.
    pub fn maxval(self) -> u16 {
        (u32::MAX >> (32 - u32::from(self.bits.clamp(1, 16)))) as u16
    }

    /// The detector count of one sample.
    pub fn apply(self, raw: u16) -> u16 {
        match self.alignment {
            Alignment::Msb => raw >> (16 - self.bits.clamp(1, 16)),
            Alignment::Lsb => raw.min(self.maxval()),
        }
    }
}

/// How long to wait before trying a lost device again: `first`, doubling after each failed
/// attempt up to `max`, so a camera that comes back is found within `max` and one that does
/// not costs a few open calls a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first attempt.
    pub first: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { first: Duration::from_millis(100), max: Duration::from_secs(2) }
    }
}

/// What to capture and how. The configuration's `[source]` section maps onto it.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Options {
    /// Device node; on a box the udev name `/dev/wiretrace-camera`, which survives re-plugging.
    pub device: PathBuf,
    /// Pixel format to ask for; a device that does not offer it is an error naming what it does.
    pub format: PixelFormat,
    /// Frame width asked for; a driver that answers another size is an error.
    pub width: u32,
    /// Frame height asked for.
    pub height: u32,
    /// Frame rate asked for; a grabber that cannot set it keeps its own (logged).
    pub fps: f32,
    /// Y16 samples to detector counts (ignored for GREY and YUYV, which are 8-bit).
    pub y16: Y16Scale,
    /// No frame for this long and heartbeats say `no signal`, until one comes.
    pub frame_timeout: Duration,
    /// No frame for this long and the device is closed and opened again: a grabber can hang
    /// without disappearing. Doubled after each reopen that brings no frame, up to
    /// [`MAX_STALL_REOPEN`].
    pub stall_reopen: Duration,
    /// Pacing of attempts to open a lost device again.
    pub retry: RetryPolicy,
}

impl V4l2Options {
    /// Options for `device` with the default timeouts: no signal after 0.5 s without a frame,
    /// reopened after 5 s.
    pub fn new(device: impl Into<PathBuf>, format: PixelFormat, width: u32, height: u32, fps: f32) -> Self {
        V4l2Options {
            device: device.into(),
            format,
            width,
            height,
            fps,
            y16: Y16Scale::default(),
            frame_timeout: Duration::from_millis(500),
            stall_reopen: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// Checks the values a configuration file can get wrong; the error names the value.
    pub fn validate(&self) -> Result<(), V4l2Error> {
        let bad = |what: String| Err(V4l2Error::BadOptions { device: self.device.clone(), what });
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if !(1..=MAX_SIDE_PX).contains(&(side as usize)) {
                return bad(format!("{name} {side} is out of range 1..={MAX_SIDE_PX}"));
            }
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return bad(format!("fps {} is not in 0..=1000", self.fps));
        }
        if !(1..=16).contains(&self.y16.bits) {
            return bad(format!("Y16 bits {} is out of range 1..=16", self.y16.bits));
        }
        // The capture thread comes back to the runner at least every two frame timeouts, so a
        // stop request and the no-signal flag wait at most two seconds.
        if self.frame_timeout.is_zero()
            || self.frame_timeout > MAX_FRAME_TIMEOUT
            || self.stall_reopen < self.frame_timeout
        {
            return bad(format!(
                "the frame timeout ({:?}) must be in (0, 1 s] and no longer than the stall reopen ({:?})",
                self.frame_timeout, self.stall_reopen
            ));
        }
        if self.retry.first.is_zero() || self.retry.max < self.retry.first {
            return bad(format!(
                "retry waits {:?} to {:?} must be positive and rising",
                self.retry.first, self.retry.max
            ));
        }
        Ok(())
    }
}

/// Why a V4L2 device cannot be used. Every variant names the device.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum V4l2Error {
    /// This binary has no V4L2 support.
    #[error(
        "{}: this wiretrace was built without V4L2 support; build it with `--features v4l2` (the board package is)",
        device.display()
    )]
    NotBuilt {
        /// The device that was asked for.
        device: PathBuf,
    },
    /// An option is out of range.
    #[error("{}: {what}", device.display())]
    BadOptions {
        /// The device.
        device: PathBuf,
        /// Which value, and why.
        what: String,
    },
    /// The device node cannot be opened.
    #[error("cannot open {}", device.display())]
    Open {
        /// The device.
        device: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The device is not what the role needs (a capture or an output device with streaming).
    #[error("{} ({card}) is not a V4L2 {needed} device with mmap streaming", device.display())]
    NotCapable {
        /// The device.
        device: PathBuf,
        /// The driver's name for it.
        card: String,
        /// "capture" or "output".
        needed: &'static str,
    },
    /// The device does not offer the configured pixel format.
    #[error("{} does not offer {asked}; it offers {offered}", device.display())]
    UnsupportedFormat {
        /// The device.
        device: PathBuf,
        /// The configured format.
        asked: PixelFormat,
        /// What it offers, and which of those wiretrace takes.
        offered: String,
    },
    /// The driver answered a format request with something else.
    #[error("{}: {source}", device.display())]
    Negotiation {
        /// The device.
        device: PathBuf,
        /// What differs.
        source: Mismatch,
    },
    /// An ioctl failed.
    #[error("{}: cannot {action}", device.display())]
    Ioctl {
        /// The device.
        device: PathBuf,
        /// What was being done: "list formats", "set the format", "start streaming", …
        action: &'static str,
        /// What the driver said.
        source: std::io::Error,
    },
    /// A stream could not be stopped: its buffers stay mapped and the device stays busy
    /// until this process exits.
    #[error("{}: cannot stop streaming; its buffers stay mapped until the process exits", device.display())]
    Stuck {
        /// The device.
        device: PathBuf,
        /// What the driver said.
        source: std::io::Error,
    },
    /// The sequence to feed cannot be read.
    #[error("cannot feed {}", device.display())]
    Sequence {
        /// The device.
        device: PathBuf,
        /// What is wrong with the sequence.
        source: SequenceError,
    },
}

impl V4l2Error {
    /// True for a failure that can clear by itself, which [`open`] therefore waits out with
    /// `no signal` instead of failing the start: a node that is absent (a USB grabber that
    /// enumerates late) or cannot be opened or driven yet (busy, permissions not yet set by
    /// udev, an ioctl that fails while the device settles). Bad options, a node that is not a
    /// capture device and a device that opens but offers another format or size are not: they
    /// need a configuration change, so waiting would only hide them behind `no signal`.
    pub fn may_clear(&self) -> bool {
        matches!(self, V4l2Error::Open { .. } | V4l2Error::Ioctl { .. })
    }
}

/// The formats a device offers, for an error message: each by name, then which of them
/// wiretrace takes, so the fix (the configuration's `format`) is in the message.
pub fn describe_offered(offered: &[[u8; 4]]) -> String {
    if offered.is_empty() {
        return "no pixel format at all".to_string();
    }
    let names: Vec<String> = offered.iter().map(|&c| fourcc_name(c)).collect();
    let usable: Vec<&str> =
        offered.iter().filter_map(|&c| PixelFormat::from_fourcc(c)).map(PixelFormat::name).collect();
    let usable = match usable.as_slice() {
        [] => "none of which wiretrace takes (GREY, Y16, YUYV)".to_string(),
        some => format!("of which wiretrace takes {}", some.join(", ")),
    };
    format!("{}, {usable}", names.join(", "))
}

/// What a driver answered to a format request (the fields of `struct v4l2_pix_format` that
/// matter here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverFormat {
    /// Pixel format code.
    pub fourcc: [u8; 4],
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Bytes per row, padding included.
    pub stride: u32,
    /// Bytes per image.
    pub size: u32,
    /// Field order (`enum v4l2_field`).
    pub field: u32,
}

/// `V4L2_FIELD_NONE`: progressive frames, the only field order wiretrace takes.
pub const FIELD_NONE: u32 = 1;

/// The name of a `enum v4l2_field` value, as the kernel headers spell it.
pub fn field_name(field: u32) -> String {
    let name = match field {
        0 => "ANY",
        1 => "NONE (progressive)",
        2 => "TOP",
        3 => "BOTTOM",
        4 => "INTERLACED",
        5 => "SEQ_TB",
        6 => "SEQ_BT",
        7 => "ALTERNATE",
        8 => "INTERLACED_TB",
        9 => "INTERLACED_BT",
        other => return format!("unknown field order {other}"),
    };
    name.to_string()
}

/// How a driver's answer differs from what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// Another pixel format.
    #[error("asked for {asked}, the driver set {}", fourcc_name(*got))]
    Format {
        /// The format asked for.
        asked: PixelFormat,
        /// The code the driver set.
        got: [u8; 4],
    },
    /// Interlaced or single fields: each buffer would be half the height, or two fields
    /// combed together, and the wire's centerline wrong.
    #[error("asked for progressive frames (field NONE), the driver set field {}", field_name(*got))]
    Field {
        /// The field order the driver set.
        got: u32,
    },
    /// Another frame size: the configuration's `width` and `height` must be one the device
    /// delivers.
    #[error("asked for {}x{}, the driver set {}x{}", asked.0, asked.1, got.0, got.1)]
    Size {
        /// Width and height asked for.
        asked: (u32, u32),
        /// Width and height the driver set.
        got: (u32, u32),
    },
    /// Rows shorter than the pixels they must hold, or an image shorter than its rows.
    #[error("the driver's layout ({stride} bytes a row, {size} an image) cannot hold {width}x{height} {format}")]
    Layout {
        /// Pixel format.
        format: PixelFormat,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes per row the driver set.
        stride: u32,
        /// Bytes per image the driver set.
        size: u32,
    },
}

/// A buffer shorter than its image: the driver delivered a partial frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("buffer holds {got} bytes, the image needs {needed}")]
pub struct ShortBuffer {
    /// Bytes in the buffer.
    pub got: usize,
    /// Bytes the image needs.
    pub needed: usize,
}

/// Where the pixels of a negotiated format sit in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Pixel format.
    pub format: PixelFormat,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes from one row's start to the next.
    pub stride: usize,
}

impl Layout {
    /// Checks the driver's answer to a request for `format` at `width` × `height`, progressive:
    /// the same format, size and field order, and rows and an image long enough for them.
    pub fn negotiated(format: PixelFormat, width: u32, height: u32, got: DriverFormat) -> Result<Layout, Mismatch> {
        if got.fourcc != format.fourcc() {
            return Err(Mismatch::Format { asked: format, got: got.fourcc });
        }
        if (got.width, got.height) != (width, height) {
            return Err(Mismatch::Size { asked: (width, height), got: (got.width, got.height) });
        }
        if got.field != FIELD_NONE {
            return Err(Mismatch::Field { got: got.field });
        }
        let (w, h) = (width as usize, height as usize);
        let row = w * format.bytes_per_pixel();
        // Some drivers leave the stride 0 for packed rows.
        let stride = if got.stride == 0 { row } else { got.stride as usize };
        let layout = Layout { format, width: w, height: h, stride };
        if stride < row || (got.size != 0 && (got.size as usize) < layout.image_bytes()) {
            return Err(Mismatch::Layout { format, width, height, stride: got.stride, size: got.size });
        }
        Ok(layout)
    }

    /// Bytes of one row's pixels, padding excluded.
    pub fn row_bytes(&self) -> usize {
        self.width * self.format.bytes_per_pixel()
    }

    /// Bytes a buffer needs: every row but the last with its padding.
    pub fn image_bytes(&self) -> usize {
        self.stride * (self.height - 1) + self.row_bytes()
    }

    /// Reads the luma of `buffer` into `pixels` (row-major, `width * height`) and returns the
    /// frame's `maxval`. `pixels` keeps its allocation: a frame from the runner's pool has the
    /// capacity already, so nothing is allocated per frame.
    pub fn read_luma(&self, buffer: &[u8], y16: Y16Scale, pixels: &mut Vec<u16>) -> Result<u16, ShortBuffer> {
        if buffer.len() < self.image_bytes() {
            return Err(ShortBuffer { got: buffer.len(), needed: self.image_bytes() });
        }
        pixels.resize(self.width * self.height, 0);
        let rows = buffer.chunks(self.stride).zip(pixels.chunks_exact_mut(self.width));
        match self.format {
            PixelFormat::Grey => {
                for (src, dst) in rows {
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = u16::from(s));
                }
                Ok(u16::from(u8::MAX))
            }
            PixelFormat::Yuyv => {
                for (src, dst) in rows {
                    dst.iter_mut().zip(src.iter().step_by(2)).for_each(|(d, &s)| *d = u16::from(s));
                }
                Ok(u16::from(u8::MAX))
            }
            PixelFormat::Y16 => {
                for (src, dst) in rows {
                    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                        *d = y16.apply(u16::from_le_bytes([s[0], s[1]]));
                    }
                }
                Ok(y16.maxval())
            }
        }
    }

    /// Writes `pixels` (values up to `maxval`) into `buffer` in this layout: the feeder's side.
    /// Counts are shifted, not rescaled, so a 12-bit frame comes back exactly from Y16 read
    /// with 12 MSB-aligned bits: GREY and YUYV keep the top 8 bits of the frame's range, Y16
    /// puts its bits at the top of the word. YUYV's chroma is neutral (128).
    pub fn write_luma(&self, pixels: &[u16], maxval: u16, buffer: &mut [u8]) -> Result<(), ShortBuffer> {
        if buffer.len() < self.image_bytes() {
            return Err(ShortBuffer { got: buffer.len(), needed: self.image_bytes() });
        }
        if pixels.len() < self.width * self.height {
            return Err(ShortBuffer { got: pixels.len(), needed: self.width * self.height });
        }
        let bits = 16 - maxval.max(1).leading_zeros();
        let to_8 = |v: u16| -> u8 {
            let v = u32::from(v.min(maxval));
            (if bits > 8 { v >> (bits - 8) } else { v << (8 - bits) }).min(255) as u8
        };
        let rows = buffer.chunks_mut(self.stride).zip(pixels.chunks_exact(self.width));
        match self.format {
            PixelFormat::Grey => {
                for (dst, src) in rows {
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = to_8(s));
                }
            }
            PixelFormat::Yuyv => {
                for (dst, src) in rows {
                    for (d, &s) in dst.chunks_exact_mut(2).zip(src) {
                        d[0] = to_8(s);
                        d[1] = 128;
                    }
                }
            }
            PixelFormat::Y16 => {
                for (dst, src) in rows {
                    for (d, &s) in dst.chunks_exact_mut(2).zip(src) {
                        d.copy_from_slice(&(s.min(maxval) << (16 - bits)).to_le_bytes());
                    }
                }
            }
        }
        Ok(())
    }
}

/// `V4L2_BUF_FLAG_TIMESTAMP_MASK`.
pub const TIMESTAMP_TYPE_MASK: u32 = 0x0000_e000;
/// `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`: the buffer's time is on `CLOCK_MONOTONIC`.
pub const TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;

/// Where a frame's capture time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTime {
    /// The driver's buffer timestamp, on `CLOCK_MONOTONIC`: when the frame was taken.
    Driver(Micros),
    /// The clock read when the buffer was dequeued, because the driver's timestamp is not on
    /// `CLOCK_MONOTONIC` (or is unset or in the future); later than the truth by the
    /// driver's latency, so deadlines are measured short.
    Dequeued(Micros),
}

impl CaptureTime {
    /// The time, whichever its source.
    pub fn micros(self) -> Micros {
        match self {
            CaptureTime::Driver(t) | CaptureTime::Dequeued(t) => t,
        }
    }
}

/// The capture time of a buffer with `flags` and timestamp `sec`, `usec`, dequeued at `now`
/// (`CLOCK_MONOTONIC`). Only a monotonic timestamp can be compared with the clock the
/// deadline is read on; one that is zero or later than `now` is a driver bug and not trusted.
pub fn capture_time(flags: u32, sec: i64, usec: i64, now: Micros) -> CaptureTime {
    let monotonic = flags & TIMESTAMP_TYPE_MASK == TIMESTAMP_MONOTONIC;
    let stamp = (u64::try_from(sec).ok(), u64::try_from(usec).ok().filter(|u| *u < 1_000_000));
    match stamp {
        (Some(sec), Some(usec)) if monotonic => match sec.checked_mul(1_000_000).and_then(|s| s.checked_add(usec)) {
            Some(t) if t > 0 && t <= now.0 => CaptureTime::Driver(Micros(t)),
            _ => CaptureTime::Dequeued(now),
        },
        _ => CaptureTime::Dequeued(now),
    }
}

/// Frame indices from the driver's buffer `sequence`, so a frame the driver lost (no buffer
/// free, a grabber's FIFO overrun) leaves a hole in the indices the robot sees and is counted
/// as dropped. A reopened stream counts from 0 again: indices go on from the last one, so
/// they keep rising across reopens.
#[derive(Debug, Clone, Default)]
pub struct Sequencer {
    next_index: u32,
    last: Option<u32>,
    dropped: u64,
}

impl Sequencer {
    /// The index of the buffer with driver sequence `sequence`. A sequence that does not rise
    /// (a driver that restarted it) is taken as the next frame, without a gap.
    pub fn index(&mut self, sequence: u32) -> u32 {
        let skipped = match self.last {
            Some(last) if sequence > last => sequence - last - 1,
            _ => 0,
        };
        let index = self.next_index.wrapping_add(skipped);
        self.next_index = index.wrapping_add(1);
        self.last = Some(sequence);
        self.dropped += u64::from(skipped);
        index
    }

    /// The stream was started again: its next sequence continues the indices, whatever it is.
    pub fn restarted(&mut self) {
        self.last = None;
    }

    /// Frames the driver skipped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// What the capture loop should do next, as [`Link`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for a frame, at most this long.
    Wait(Duration),
    /// Close the device (if open) and open it again now.
    Reopen,
    /// The device is closed: try again after this long.
    Sleep(Duration),
}

/// The state of the link to a capture device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Open, and a frame came within the frame timeout.
    Streaming,
    /// Open, but no frame for longer than the frame timeout: `no signal`.
    Silent {
        /// When the last frame came (or the device was opened).
        since: Instant,
    },
    /// Closed after an error or a stall; reopened at `retry_at`.
    Down {
        /// When it was lost.
        since: Instant,
        /// When to try again.
        retry_at: Instant,
        /// Failed attempts since it was lost.
        attempts: u32,
    },
}

/// The reconnect state machine of a capture device. It never reads a clock: every call takes
/// `now`, so tests drive it through hours of outages in microseconds.
#[derive(Debug, Clone)]
pub struct Link {
    state: LinkState,
    last_frame: Instant,
    backoff: Duration,
    frame_timeout: Duration,
    stall_reopen: Duration,
    /// Silence before the next reopen: `stall_reopen`, doubled after each reopen that brought
    /// no frame up to [`MAX_STALL_REOPEN`], so a device that opens but stays silent (a grabber
    /// without input) is not reopened every few seconds all night.
    stall_wait: Duration,
    /// Reopens since the last frame.
    reopens: u32,
    retry: RetryPolicy,
}

impl Link {
    /// A device just opened at `now`: without signal until its first frame, which is due
    /// within the frame timeout.
    pub fn opened(now: Instant, options: &V4l2Options) -> Self {
        Link {
            state: LinkState::Silent { since: now },
            last_frame: now,
            backoff: options.retry.first,
            frame_timeout: options.frame_timeout,
            stall_reopen: options.stall_reopen,
            stall_wait: options.stall_reopen,
            reopens: 0,
            retry: options.retry,
        }
    }

    /// A device that could not be opened at `now` (see [`V4l2Error::may_clear`]): without
    /// signal, first tried again after the policy's first wait.
    pub fn absent(now: Instant, options: &V4l2Options) -> Self {
        let mut link = Link::opened(now, options);
        link.lost(now);
        link
    }

    /// Where the link is.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// True while frames arrive: what heartbeats report as the absence of `no signal`.
    pub fn has_signal(&self) -> bool {
        self.state == LinkState::Streaming
    }

    /// A frame arrived. Returns how long the signal was absent, when it was, so the caller can
    /// log the recovery once.
    pub fn frame(&mut self, now: Instant) -> Option<Duration> {
        let gap = match self.state {
            LinkState::Streaming => None,
            LinkState::Silent { since } | LinkState::Down { since, .. } => Some(now.saturating_duration_since(since)),
        };
        self.state = LinkState::Streaming;
        self.last_frame = now;
        self.backoff = self.retry.first;
        self.stall_wait = self.stall_reopen;
        self.reopens = 0;
        gap
    }

    /// What to do at `now`: wait for the next frame up to the frame timeout, reopen a device
    /// silent for longer than the stall limit, or sleep until the next attempt.
    pub fn next(&mut self, now: Instant) -> Next {
        match self.state {
            LinkState::Down { retry_at, .. } => match retry_at.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Next::Sleep(left),
                _ => Next::Reopen,
            },
            LinkState::Streaming | LinkState::Silent { .. } => {
                let silent = now.saturating_duration_since(self.last_frame);
                if silent >= self.stall_wait {
                    Next::Reopen
                } else if silent >= self.frame_timeout {
                    if self.state == LinkState::Streaming {
                        self.state = LinkState::Silent { since: self.last_frame };
                    }
                    Next::Wait(self.frame_timeout.min(self.stall_wait - silent))
                } else {
                    Next::Wait(self.frame_timeout - silent)
                }
            }
        }
    }

    /// The device failed (gone, I/O error, stalled): it is closed and tried again after the
    /// current backoff.
    pub fn lost(&mut self, now: Instant) {
        let since = match self.state {
            LinkState::Streaming => now,
            LinkState::Silent { since } | LinkState::Down { since, .. } => since,
        };
        self.state = LinkState::Down { since, retry_at: now + self.backoff, attempts: 0 };
    }

    /// An attempt to open it again failed: the wait doubles, up to the policy's maximum.
    pub fn reopen_failed(&mut self, now: Instant) {
        let (since, attempts) = match self.state {
            LinkState::Down { since, attempts, .. } => (since, attempts + 1),
            LinkState::Silent { since } => (since, 1),
            LinkState::Streaming => (now, 1),
        };
        self.backoff = (self.backoff * 2).min(self.retry.max);
        self.state = LinkState::Down { since, retry_at: now + self.backoff, attempts };
    }

    /// It was opened again: still without signal until its first frame, which is due within
    /// the frame timeout. If the previous reopen brought no frame either, the next stall
    /// reopen waits twice as long. Returns true for the first reopen since the last frame, so
    /// the caller logs an outage once.
    pub fn reopened(&mut self, now: Instant) -> bool {
        let since = match self.state {
            LinkState::Down { since, .. } | LinkState::Silent { since } => since,
            LinkState::Streaming => now,
        };
        self.state = LinkState::Silent { since };
        self.last_frame = now;
        if self.reopens > 0 {
            self.stall_wait = (self.stall_wait * 2).min(MAX_STALL_REOPEN.max(self.stall_reopen));
        }
        self.reopens = self.reopens.saturating_add(1);
        self.reopens == 1
    }
}

/// Opens the capture device of `options` as a frame source: negotiates the format, maps
/// [`STREAM_BUFFERS`] buffers and starts streaming. A device that is not there yet is no
/// error (see [`V4l2Error::may_clear`]): the source says `no signal` and keeps trying.
pub fn open(options: &V4l2Options) -> Result<Box<dyn FrameSource>, V4l2Error> {
    options.validate()?;
    #[cfg(feature = "v4l2")]
    {
        Ok(Box::new(V4l2Source::open(options.clone())?))
    }
    #[cfg(not(feature = "v4l2"))]
    {
        Err(V4l2Error::NotBuilt { device: options.device.clone() })
    }
}

/// What `wiretrace feed` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOptions {
    /// The output side of a v4l2loopback device.
    pub device: PathBuf,
    /// Sequence directory (`frames/NNNNNN.pgm`, optional `meta.json` with the fps).
    pub seq: PathBuf,
    /// Pixel format written.
    pub format: PixelFormat,
    /// Start again after the last frame, until stopped.
    pub looped: bool,
}

/// What a feed did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeedSummary {
    /// Frames written to the device.
    pub frames: u64,
    /// Frame files that could not be read (skipped, their time slot left empty).
    pub bad_frames: u64,
    /// Times the whole sequence was played.
    pub passes: u64,
    /// The rate frames were written at.
    pub fps: f32,
}

/// Writes the sequence of `options` into its output device at the sequence's fps until it
/// ends (or, looped, until `stop` is set).
pub fn feed(options: &FeedOptions, stop: &AtomicBool) -> Result<FeedSummary, V4l2Error> {
    #[cfg(feature = "v4l2")]
    {
        output::feed(options, stop)
    }
    #[cfg(not(feature = "v4l2"))]
    {
        let _ = stop;
        Err(V4l2Error::NotBuilt { device: options.device.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> V4l2Options {
        V4l2Options::new("/dev/video9", PixelFormat::Grey, 4, 2, 15.0)
    }

    #[test]
    fn pixel_formats_parse_from_their_names_and_codes() {
        for format in PixelFormat::ALL {
            assert_eq!(format.name().parse::<PixelFormat>(), Ok(format));
            assert_eq!(PixelFormat::from_fourcc(format.fourcc()), Some(format));
        }
        assert_eq!("grey".parse::<PixelFormat>(), Ok(PixelFormat::Grey));
        assert_eq!(PixelFormat::from_fourcc(*b"MJPG"), None);
        let err = "RGB3".parse::<PixelFormat>().expect_err("not taken").to_string();
        assert!(err.contains("RGB3") && err.contains("GREY, Y16 or YUYV"), "{err}");
    }

    #[test]
    fn an_unsupported_format_error_says_what_the_device_offers_and_what_of_it_works() {
        let offered = [*b"MJPG", *b"YUYV", *b"Y16 "];
        assert_eq!(describe_offered(&offered), "MJPG, YUYV, Y16, of which wiretrace takes YUYV, Y16");
        assert_eq!(describe_offered(&[*b"MJPG"]), "MJPG, none of which wiretrace takes (GREY, Y16, YUYV)");
        assert_eq!(describe_offered(&[]), "no pixel format at all");
        assert_eq!(fourcc_name([0, 1, 2, 3]), "0x03020100");
        let err = V4l2Error::UnsupportedFormat {
            device: "/dev/wiretrace-camera".into(),
            asked: PixelFormat::Grey,
            offered: describe_offered(&offered),
        };
        assert_eq!(
            err.to_string(),
            "/dev/wiretrace-camera does not offer GREY; it offers MJPG, YUYV, Y16, of which wiretrace takes YUYV, Y16"
        );
    }

    fn answer(fourcc: &[u8; 4], width: u32, height: u32, stride: u32, size: u32) -> DriverFormat {
        DriverFormat { fourcc: *fourcc, width, height, stride, size, field: FIELD_NONE }
    }

    #[test]
    fn negotiation_takes_only_progressive_frames_and_names_the_field_it_got() {
        let alternate = DriverFormat { field: 7, ..answer(b"GREY", 4, 2, 4, 8) };
        let err = Layout::negotiated(PixelFormat::Grey, 4, 2, alternate);
        assert_eq!(err, Err(Mismatch::Field { got: 7 }));
        assert_eq!(
            err.expect_err("alternate").to_string(),
            "asked for progressive frames (field NONE), the driver set field ALTERNATE"
        );
        let interlaced = DriverFormat { field: 4, ..answer(b"GREY", 4, 2, 4, 8) };
        assert_eq!(Layout::negotiated(PixelFormat::Grey, 4, 2, interlaced), Err(Mismatch::Field { got: 4 }));
        assert_eq!(field_name(42), "unknown field order 42");
        assert!(Layout::negotiated(PixelFormat::Grey, 4, 2, answer(b"GREY", 4, 2, 4, 8)).is_ok());
    }

    #[test]
    fn negotiation_takes_only_the_format_and_size_asked_for() {
        let grey = Layout::negotiated(PixelFormat::Grey, 4, 2, answer(b"GREY", 4, 2, 8, 16));
        assert_eq!(grey, Ok(Layout { format: PixelFormat::Grey, width: 4, height: 2, stride: 8 }));
        // A stride of 0 means packed rows.
        let packed = Layout::negotiated(PixelFormat::Yuyv, 4, 2, answer(b"YUYV", 4, 2, 0, 0));
        assert_eq!(packed.map(|l| l.stride), Ok(8));
        assert_eq!(
            Layout::negotiated(PixelFormat::Y16, 4, 2, answer(b"YUYV", 4, 2, 8, 16)),
            Err(Mismatch::Format { asked: PixelFormat::Y16, got: *b"YUYV" })
        );
        let size = Layout::negotiated(PixelFormat::Grey, 1024, 1024, answer(b"GREY", 640, 480, 640, 307_200));
        assert_eq!(size, Err(Mismatch::Size { asked: (1024, 1024), got: (640, 480) }));
        let text = size.expect_err("size differs").to_string();
        assert_eq!(text, "asked for 1024x1024, the driver set 640x480");
        assert!(matches!(
            Layout::negotiated(PixelFormat::Y16, 4, 2, answer(b"Y16 ", 4, 2, 6, 16)),
            Err(Mismatch::Layout { stride: 6, .. })
        ));
        assert!(matches!(
            Layout::negotiated(PixelFormat::Grey, 4, 2, answer(b"GREY", 4, 2, 8, 11)),
            Err(Mismatch::Layout { size: 11, .. })
        ));
    }

    #[test]
    fn grey_rows_are_read_past_their_padding() {
        let layout = Layout { format: PixelFormat::Grey, width: 3, height: 2, stride: 5 };
        let buffer = [1, 2, 255, 99, 99, 4, 5, 6, 99, 99];
        let mut pixels = Vec::with_capacity(6);
        let before = pixels.as_ptr();
        assert_eq!(layout.read_luma(&buffer, Y16Scale::default(), &mut pixels), Ok(255));
        assert_eq!(pixels, [1, 2, 255, 4, 5, 6]);
        assert_eq!(pixels.as_ptr(), before, "a frame with room for the image is not reallocated");
        // The last row needs no padding.
        assert!(layout.read_luma(&buffer[..8], Y16Scale::default(), &mut pixels).is_ok());
        assert_eq!(
            layout.read_luma(&buffer[..7], Y16Scale::default(), &mut pixels),
            Err(ShortBuffer { got: 7, needed: 8 })
        );
    }

    #[test]
    fn yuyv_keeps_the_luma_only() {
        let layout = Layout { format: PixelFormat::Yuyv, width: 4, height: 1, stride: 8 };
        let buffer = [10, 128, 20, 64, 30, 200, 40, 0];
        let mut pixels = Vec::new();
        assert_eq!(layout.read_luma(&buffer, Y16Scale::default(), &mut pixels), Ok(255));
        assert_eq!(pixels, [10, 20, 30, 40]);
    }

    #[test]
    fn y16_is_little_endian_and_scaled_to_the_detector_bits() {
        let layout = Layout { format: PixelFormat::Y16, width: 2, height: 1, stride: 4 };
        let mut pixels = Vec::new();
        // 0xfff0 and 0x0010: 12-bit 4095 and 1 at the top of the word.
        let msb = [0xf0, 0xff, 0x10, 0x00];
        assert_eq!(layout.read_luma(&msb, Y16Scale::default(), &mut pixels), Ok(65535));
        assert_eq!(pixels, [0xfff0, 0x0010]);
        let twelve = Y16Scale { bits: 12, alignment: Alignment::Msb };
        assert_eq!(layout.read_luma(&msb, twelve, &mut pixels), Ok(4095));
        assert_eq!(pixels, [4095, 1]);
        let lsb = Y16Scale { bits: 12, alignment: Alignment::Lsb };
        assert_eq!(layout.read_luma(&[0xff, 0x0f, 0x00, 0x20], lsb, &mut pixels), Ok(4095));
        assert_eq!(pixels, [4095, 4095], "a value above the detector's range is clamped to its top");
        assert_eq!(Y16Scale { bits: 1, alignment: Alignment::Msb }.maxval(), 1);
        assert_eq!(Y16Scale { bits: 14, alignment: Alignment::Msb }.apply(0xffff), 16383);
    }

    #[test]
    fn what_the_feeder_writes_the_capture_side_reads_back() {
        let (w, h) = (5, 3);
        let twelve_bit: Vec<u16> = (0..w * h).map(|i| (i as u16 * 273) % 4096).collect();
        for format in PixelFormat::ALL {
            let stride = w * format.bytes_per_pixel() + 3;
            let layout = Layout { format, width: w, height: h, stride };
            let mut buffer = vec![0u8; stride * h];
            layout.write_luma(&twelve_bit, 4095, &mut buffer).expect("buffer fits");
            let mut back = Vec::new();
            let scale = Y16Scale { bits: 12, alignment: Alignment::Msb };
            let maxval = layout.read_luma(&buffer, scale, &mut back).expect("buffer fits");
            let expected: Vec<u16> = match format {
                PixelFormat::Y16 => twelve_bit.clone(),
                PixelFormat::Grey | PixelFormat::Yuyv => twelve_bit.iter().map(|v| v >> 4).collect(),
            };
            assert_eq!((back, maxval), (expected, if format == PixelFormat::Y16 { 4095 } else { 255 }), "{format}");
        }
        // An 8-bit frame with a small maxval is stretched to the top of the byte.
        let layout = Layout { format: PixelFormat::Grey, width: 2, height: 1, stride: 2 };
        let mut buffer = [0u8; 2];
        layout.write_luma(&[15, 7], 15, &mut buffer).expect("buffer fits");
        assert_eq!(buffer, [240, 112]);
        assert_eq!(layout.write_luma(&[1], 255, &mut buffer), Err(ShortBuffer { got: 1, needed: 2 }));
    }

    #[test]
    fn only_a_monotonic_timestamp_is_the_capture_time() {
        let now = Micros(5_000_000);
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, 4, 250_000, now), CaptureTime::Driver(Micros(4_250_000)));
        // Flags outside the timestamp type do not matter.
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC | 0x1, 4, 0, now), CaptureTime::Driver(Micros(4_000_000)));
        // TIMESTAMP_COPY (0x4000) and UNKNOWN (0) are not on our clock.
        assert_eq!(capture_time(0x4000, 4, 250_000, now), CaptureTime::Dequeued(now));
        assert_eq!(capture_time(0, 4, 250_000, now), CaptureTime::Dequeued(now));
        // Unset, from the future, or malformed: the driver is not trusted.
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, 0, 0, now), CaptureTime::Dequeued(now));
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, 6, 0, now), CaptureTime::Dequeued(now));
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, -1, 0, now), CaptureTime::Dequeued(now));
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, 1, 1_000_000, now), CaptureTime::Dequeued(now));
        assert_eq!(capture_time(TIMESTAMP_MONOTONIC, i64::MAX, 0, now), CaptureTime::Dequeued(now));
        assert_eq!(CaptureTime::Dequeued(now).micros(), now);
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_silent_device_reports_no_signal_then_is_reopened() {
        let t0 = Instant::now();
        let mut link = Link::opened(t0, &options());
        assert!(!link.has_signal(), "no signal before the first frame");
        assert_eq!(link.next(t0), Next::Wait(500 * MS));
        assert_eq!(link.frame(t0 + 20 * MS), Some(20 * MS), "the first frame brings the signal");
        assert_eq!(link.frame(t0 + 40 * MS), None, "a frame while streaming is no recovery");
        assert_eq!(link.next(t0 + 140 * MS), Next::Wait(400 * MS));
        assert!(link.has_signal());
        // 0.5 s without a frame: no signal, and it keeps waiting in frame-timeout steps.
        assert_eq!(link.next(t0 + 540 * MS), Next::Wait(500 * MS));
        assert_eq!(link.state(), LinkState::Silent { since: t0 + 40 * MS });
        assert!(!link.has_signal());
        assert_eq!(link.next(t0 + 4_840 * MS), Next::Wait(200 * MS), "no wait runs past the stall limit");
        // 5 s without a frame: closed and opened again.
        assert_eq!(link.next(t0 + 5_040 * MS), Next::Reopen);
        link.reopened(t0 + 5_050 * MS);
        assert!(!link.has_signal(), "a reopened device has no signal until a frame comes");
        assert_eq!(link.next(t0 + 5_050 * MS), Next::Wait(500 * MS));
        assert_eq!(link.next(t0 + 5_550 * MS), Next::Wait(500 * MS));
        assert_eq!(link.state(), LinkState::Silent { since: t0 + 40 * MS }, "the outage keeps its start");
        assert_eq!(link.frame(t0 + 5_100 * MS), Some(5_060 * MS), "the gap counts from the last frame");
        assert!(link.has_signal());
    }

    #[test]
    fn a_device_that_stays_silent_is_reopened_ever_less_often_until_a_frame_comes() {
        let t0 = Instant::now();
        let mut link = Link::opened(t0, &options());
        link.frame(t0);
        let mut now = t0;
        let mut last_reopen = t0;
        let (mut intervals, mut first) = (Vec::new(), Vec::new());
        for _ in 0..8 {
            while let Next::Wait(wait) = link.next(now) {
                now += wait;
            }
            intervals.push((now - last_reopen).as_secs());
            first.push(link.reopened(now));
            last_reopen = now;
        }
        assert_eq!(intervals, [5, 5, 10, 20, 40, 60, 60, 60], "doubling after each reopen without a frame");
        assert_eq!(first, [true, false, false, false, false, false, false, false], "logged once an outage");
        assert_eq!(link.state(), LinkState::Silent { since: t0 }, "one outage throughout");
        // A frame ends the outage: the next stall is reopened after 5 s again, and logged.
        link.frame(now);
        assert_eq!(link.next(now + 4_999 * MS), Next::Wait(MS));
        assert_eq!(link.next(now + 5_000 * MS), Next::Reopen);
        assert!(link.reopened(now + 5_000 * MS));
    }

    #[test]
    fn a_lost_device_is_retried_with_a_doubling_wait_until_it_returns() {
        let t0 = Instant::now();
        let mut link = Link::opened(t0, &options());
        link.frame(t0);
        link.lost(t0 + 10 * MS);
        assert!(!link.has_signal());
        assert_eq!(link.next(t0 + 10 * MS), Next::Sleep(100 * MS));
        assert_eq!(link.next(t0 + 110 * MS), Next::Reopen);
        let mut now = t0 + 110 * MS;
        let mut waits = Vec::new();
        for _ in 0..7 {
            link.reopen_failed(now);
            let Next::Sleep(wait) = link.next(now) else { panic!("a failed reopen sleeps: {:?}", link.state()) };
            waits.push(wait.as_millis());
            now += wait;
            assert_eq!(link.next(now), Next::Reopen);
        }
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000, 2000]);
        assert!(matches!(link.state(), LinkState::Down { attempts: 7, since, .. } if since == t0 + 10 * MS));
        link.reopened(now);
        assert_eq!(link.frame(now + 20 * MS), Some(now + 20 * MS - (t0 + 10 * MS)));
        // Back to the first wait after a recovery.
        link.lost(now + 30 * MS);
        assert_eq!(link.next(now + 30 * MS), Next::Sleep(100 * MS));
    }

    #[test]
    fn only_a_device_that_is_not_there_yet_is_waited_for() {
        let device = PathBuf::from("/dev/video9");
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(V4l2Error::Open { device: device.clone(), source: io() }.may_clear());
        assert!(V4l2Error::Ioctl { device: device.clone(), action: "start streaming", source: io() }.may_clear());
        let unsupported =
            V4l2Error::UnsupportedFormat { device: device.clone(), asked: PixelFormat::Grey, offered: "MJPG".into() };
        assert!(!unsupported.may_clear());
        let size = Mismatch::Size { asked: (4, 2), got: (8, 8) };
        assert!(!V4l2Error::Negotiation { device: device.clone(), source: size }.may_clear());
        assert!(!V4l2Error::NotCapable { device: device.clone(), card: "x".into(), needed: "capture" }.may_clear());
        assert!(!V4l2Error::BadOptions { device, what: "width 0".into() }.may_clear());
    }

    #[test]
    fn a_device_absent_at_start_is_tried_with_the_same_backoff() {
        let t0 = Instant::now();
        let mut link = Link::absent(t0, &options());
        assert!(!link.has_signal());
        assert_eq!(link.next(t0), Next::Sleep(100 * MS));
        assert_eq!(link.next(t0 + 100 * MS), Next::Reopen);
        link.reopen_failed(t0 + 100 * MS);
        assert_eq!(link.next(t0 + 100 * MS), Next::Sleep(200 * MS));
        link.reopened(t0 + 300 * MS);
        assert_eq!(link.frame(t0 + 320 * MS), Some(320 * MS), "the outage counts from the start");
    }

    #[test]
    fn frame_indices_follow_the_driver_sequence_and_keep_rising_across_reopens() {
        let mut seq = Sequencer::default();
        let indices: Vec<u32> = [0, 1, 2, 5, 6].into_iter().map(|s| seq.index(s)).collect();
        assert_eq!(indices, [0, 1, 2, 5, 6]);
        assert_eq!(seq.dropped(), 2, "sequences 3 and 4 were lost by the driver");
        // A reopened stream starts from 0 (or anywhere): no gap, indices go on.
        seq.restarted();
        assert_eq!([0, 1, 3].map(|s| seq.index(s)), [7, 8, 10]);
        assert_eq!(seq.dropped(), 3);
        // A driver that starts its sequence at 100 after a reopen is no drop either.
        seq.restarted();
        assert_eq!(seq.index(100), 11);
        // A sequence that goes back is the next frame.
        assert_eq!(seq.index(40), 12);
        assert_eq!(seq.dropped(), 3);
    }

    #[test]
    fn options_out_of_range_are_named() {
        assert!(options().validate().is_ok());
        let bad = |o: V4l2Options| o.validate().expect_err("out of range").to_string();
        assert_eq!(bad(V4l2Options { width: 0, ..options() }), "/dev/video9: width 0 is out of range 1..=4096");
        assert!(bad(V4l2Options { fps: f32::NAN, ..options() }).contains("fps NaN"));
        let y16 = Y16Scale { bits: 17, alignment: Alignment::Msb };
        assert!(bad(V4l2Options { y16, ..options() }).contains("Y16 bits 17"));
        assert!(bad(V4l2Options { stall_reopen: Duration::from_millis(100), ..options() }).contains("stall reopen"));
        assert!(bad(V4l2Options { frame_timeout: Duration::from_secs(2), ..options() }).contains("(0, 1 s]"));
        let retry = RetryPolicy { first: Duration::ZERO, max: Duration::from_secs(1) };
        assert!(bad(V4l2Options { retry, ..options() }).contains("retry"));
    }

    #[cfg(not(feature = "v4l2"))]
    #[test]
    fn without_the_feature_opening_a_device_says_how_to_get_it() {
        let err = open(&options()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("/dev/video9: this wiretrace was built without V4L2 support"), "{err}");
        let feed_options =
            FeedOptions { device: "/dev/video10".into(), seq: "seq".into(), format: PixelFormat::Grey, looped: false };
        let err = feed(&feed_options, &AtomicBool::new(false)).expect_err("not built");
        assert!(matches!(err, V4l2Error::NotBuilt { .. }));
    }
}
