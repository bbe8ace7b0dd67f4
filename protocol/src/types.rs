//! The values a message carries, independent of their byte layout.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use crate::{AUTH_TRAILER_LEN, MAX_POINTS};

/// A point in fixed-point pixel coordinates, 1/16 px units.
///
/// (0,0) is the centre of the top-left pixel, x grows to the right (column), y grows down (row).
/// 1/16 px is finer than any detector's accuracy, and integers make the point coding exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubpixelPoint {
    /// Column in 1/16 px.
    pub x_px16: i32,
    /// Row in 1/16 px.
    pub y_px16: i32,
}

impl SubpixelPoint {
    /// Fixed-point units per pixel.
    pub const UNITS_PER_PX: i32 = 16;

    /// A point from coordinates already in 1/16 px.
    pub const fn new(x_px16: i32, y_px16: i32) -> Self {
        Self { x_px16, y_px16 }
    }

    /// A point from pixel coordinates, rounded half away from zero to 1/16 px; values beyond the
    /// `i32` range saturate and NaN becomes 0, so any float is safe to pass.
    pub fn from_px(x: f32, y: f32) -> Self {
        Self {
            x_px16: round_to_i32(x * Self::UNITS_PER_PX as f32),
            y_px16: round_to_i32(y * Self::UNITS_PER_PX as f32),
        }
    }

    /// Column in pixels (exact while |x| < 2^20 px).
    pub fn x_px(self) -> f32 {
        self.x_px16 as f32 / Self::UNITS_PER_PX as f32
    }

    /// Row in pixels (exact while |y| < 2^20 px).
    pub fn y_px(self) -> f32 {
        self.y_px16 as f32 / Self::UNITS_PER_PX as f32
    }

    pub(crate) const fn wrapping_add(self, other: Self) -> Self {
        Self::new(self.x_px16.wrapping_add(other.x_px16), self.y_px16.wrapping_add(other.y_px16))
    }

    pub(crate) const fn wrapping_sub(self, other: Self) -> Self {
        Self::new(self.x_px16.wrapping_sub(other.x_px16), self.y_px16.wrapping_sub(other.y_px16))
    }
}

/// Rounds half away from zero, saturating, NaN to 0, without `std` (`f32::round` needs it).
///
/// `value - trunc(value)` is exact in binary floating point, so unlike `(value + 0.5) as i32`
/// this never rounds 0.49999997 up or shifts large odd values.
fn round_to_i32(value: f32) -> i32 {
    let truncated = value as i32;
    let fraction = value - truncated as f32;
    if fraction >= 0.5 {
        truncated.saturating_add(1)
    } else if fraction <= -0.5 {
        truncated.saturating_sub(1)
    } else {
        truncated
    }
}

/// Defines a `u8` bit set that keeps unknown bits, since a newer minor version may add some.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$flag_meta:meta])* $flag:ident = $bit:literal, $label:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u8);

        impl $name {
            /// No bit set.
            pub const OK: Self = Self(0);
            $( $(#[$flag_meta])* pub const $flag: Self = Self($bit); )*

            const NAMED: &'static [(Self, &'static str)] = &[$((Self::$flag, $label)),*];
            const KNOWN: u8 = 0 $(| $bit)*;

            /// The bits as sent on the wire.
            pub const fn bits(self) -> u8 {
                self.0
            }

            /// Wraps wire bits, keeping those this version does not know.
            pub const fn from_bits_retain(bits: u8) -> Self {
                Self(bits)
            }

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no bit is set, known or not.
            pub const fn is_ok(self) -> bool {
                self.0 == 0
            }

            /// Sets every bit of `other`.
            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            /// Bits set that this version has no name for.
            pub const fn unknown_bits(self) -> u8 {
                self.0 & !Self::KNOWN
            }

            /// Names of the known bits that are set, lowest bit first.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::NAMED
                    .iter()
                    .filter(move |(flag, _)| self.contains(*flag))
                    .map(|(_, name)| *name)
            }
        }

        impl BitOr for $name {
            type Output = Self;

            fn bitor(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, other: Self) {
                self.insert(other);
            }
        }

        /// `ok`, or the set names joined by `|`, with unknown bits last in hex.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.is_ok() {
                    return f.write_str("ok");
                }
                let mut separator = "";
                for name in self.names() {
                    write!(f, "{separator}{name}")?;
                    separator = "|";
                }
                match self.unknown_bits() {
                    0 => Ok(()),
                    unknown => write!(f, "{separator}{unknown:#04x}"),
                }
            }
        }
    };
}

flag_set! {
    /// Status of a centerline; no bit set means OK.
    ///
    /// Unknown bits are kept (a newer minor version may add some) and make [`Self::is_ok`] false,
    /// so a receiver never mistakes a status it cannot interpret for a good one.
    StatusFlags {
        /// No wire in the frame; `points` is empty.
        NO_WIRE = 1, "no_wire";
        /// The result came after the frame's deadline.
        DEADLINE_MISSED = 2, "deadline_missed";
        /// A fallback backend or reduced processing produced the result.
        DEGRADED = 4, "degraded";
        /// The detector's confidence is below its threshold.
        LOW_CONFIDENCE = 8, "low_confidence";
    }
}

flag_set! {
    /// Condition of the sender, reported by a heartbeat; no bit set means OK.
    ///
    /// Unknown bits are kept and make [`Self::is_ok`] false, as for [`StatusFlags`].
    HeartbeatFlags {
        /// No X-ray frames are arriving.
        NO_SIGNAL = 1, "no_signal";
        /// The sender runs a fallback backend or reduced processing.
        DEGRADED = 2, "degraded";
    }
}

/// Detector confidence; 0..=255 maps linearly to 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Confidence(pub u8);

impl Confidence {
    /// From a value in 0.0..=1.0, rounded to the nearest step; out-of-range values are clamped
    /// and NaN becomes 0, so a detector bug cannot claim certainty.
    pub fn from_unit(value: f32) -> Self {
        // Clamping to 0..=1 keeps the rounded value within 0..=255.
        Self(round_to_i32(value.clamp(0.0, 1.0) * 255.0) as u8)
    }

    /// As a value in 0.0..=1.0.
    pub fn as_unit(self) -> f32 {
        f32::from(self.0) / 255.0
    }
}

/// Which inference backend produced the results; unknown values are kept, as a newer sender
/// may have more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BackendId(pub u8);

impl BackendId {
    /// Classical image processing on the CPU.
    pub const CPU_CLASSICAL: Self = Self(0);
    /// Learned model on the CPU.
    pub const CPU_LEARNED: Self = Self(1);
    /// Learned model on the GPU with CUDA kernels.
    pub const GPU_CUDA: Self = Self(2);
    /// Learned model on the GPU with TensorRT.
    pub const GPU_TENSORRT: Self = Self(3);

    /// Short name for logs; `"unknown"` for values this version does not know.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "cpu-classical",
            1 => "cpu-learned",
            2 => "gpu-cuda",
            3 => "gpu-tensorrt",
            _ => "unknown",
        }
    }
}

/// The name, or `unknown(n)` so the raw value is not lost.
impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "unknown" => write!(f, "unknown({})", self.0),
            name => f.write_str(name),
        }
    }
}

/// The guidewire centerline found in one X-ray frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Centerline {
    /// Index of the X-ray frame, counted by the sender from its start.
    pub frame: u32,
    /// When the frame was captured: the sender's `CLOCK_MONOTONIC` in µs.
    pub capture_us: u64,
    /// Time from capture to encoding, in µs.
    pub latency_us: u32,
    /// Whether the centerline can be trusted.
    pub status: StatusFlags,
    /// Detector confidence.
    pub confidence: Confidence,
    /// Points along the wire, proximal end (where it enters the image) first, tip last, at
    /// uniform arc length.
    pub points: heapless::Vec<SubpixelPoint, MAX_POINTS>,
}

/// Periodic sign of life with counters, so the robot can tell a quiet sender from a dead one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// Time since the sender started, in µs.
    pub uptime_us: u64,
    /// X-ray frames received since start.
    pub frames_seen: u32,
    /// X-ray frames dropped without a result since start.
    pub frames_dropped: u32,
    /// Results that missed their deadline since start.
    pub deadline_misses: u32,
    /// Backend producing the results.
    pub backend: BackendId,
    /// Condition of the sender.
    pub flags: HeartbeatFlags,
}

/// What a message carries; each variant is one message kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "boxing needs an allocator, which firmware may lack")]
pub enum Body {
    /// Kind 1.
    Centerline(Centerline),
    /// Kind 2.
    Heartbeat(Heartbeat),
}

impl From<Centerline> for Body {
    fn from(centerline: Centerline) -> Self {
        Self::Centerline(centerline)
    }
}

impl From<Heartbeat> for Body {
    fn from(heartbeat: Heartbeat) -> Self {
        Self::Heartbeat(heartbeat)
    }
}

/// Opaque 13-byte authentication trailer, reserved for message signing in a later minor version
/// (link id, 48-bit timestamp, 48-bit truncated keyed MAC, in the spirit of MAVLink 2 signing).
///
/// Version 1.0 carries it without checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthTrailer(pub [u8; AUTH_TRAILER_LEN]);

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// One wrapping counter per sender across all kinds, so receivers see gaps even in kinds
    /// they do not know.
    pub seq: u32,
    /// The payload.
    pub body: Body,
    /// Authentication trailer, if the sender attached one.
    pub auth: Option<AuthTrailer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_px_rounds_half_away_from_zero() {
        let p = SubpixelPoint::from_px(1.5, -2.0);
        assert_eq!(p, SubpixelPoint::new(24, -32));
        assert_eq!(round_to_i32(0.5), 1);
        assert_eq!(round_to_i32(-0.5), -1);
        assert_eq!(round_to_i32(0.499_999_97), 0);
        assert_eq!(round_to_i32(-0.499_999_97), 0);
        assert_eq!(round_to_i32(16_777_215.0), 16_777_215);
        assert_eq!(SubpixelPoint::from_px(0.03, -0.03), SubpixelPoint::new(0, 0));
        assert_eq!(SubpixelPoint::from_px(0.032, 511.97), SubpixelPoint::new(1, 8192));
    }

    #[test]
    fn from_px_saturates_and_zeroes_nan() {
        let p = SubpixelPoint::from_px(f32::INFINITY, f32::NEG_INFINITY);
        assert_eq!(p, SubpixelPoint::new(i32::MAX, i32::MIN));
        let p = SubpixelPoint::from_px(1e30, -1e30);
        assert_eq!(p, SubpixelPoint::new(i32::MAX, i32::MIN));
        assert_eq!(SubpixelPoint::from_px(f32::NAN, 3.0), SubpixelPoint::new(0, 48));
    }

    #[test]
    fn px_accessors_invert_from_px() {
        let p = SubpixelPoint::from_px(123.4375, -0.0625);
        assert_eq!(p, SubpixelPoint::new(1975, -1));
        assert_eq!((p.x_px(), p.y_px()), (123.4375, -0.0625));
    }

    #[test]
    fn confidence_clamps_and_rounds() {
        assert_eq!(Confidence::from_unit(0.0), Confidence(0));
        assert_eq!(Confidence::from_unit(1.0), Confidence(255));
        assert_eq!(Confidence::from_unit(0.5), Confidence(128));
        assert_eq!(Confidence::from_unit(-3.0), Confidence(0));
        assert_eq!(Confidence::from_unit(7.0), Confidence(255));
        assert_eq!(Confidence::from_unit(f32::NAN), Confidence(0));
        assert_eq!(Confidence(255).as_unit(), 1.0);
        assert_eq!(Confidence(0).as_unit(), 0.0);
        for raw in 0..=255 {
            assert_eq!(Confidence::from_unit(Confidence(raw).as_unit()), Confidence(raw));
        }
    }

    #[test]
    fn status_flags_keep_unknown_bits() {
        let mut status = StatusFlags::NO_WIRE;
        status.insert(StatusFlags::DEGRADED);
        assert_eq!(status.bits(), 0b101);
        assert!(status.contains(StatusFlags::NO_WIRE | StatusFlags::DEGRADED));
        assert!(!status.contains(StatusFlags::DEADLINE_MISSED));
        assert!(StatusFlags::OK.is_ok());
        assert!(StatusFlags::default().is_ok());

        let future = StatusFlags::from_bits_retain(0x80);
        assert!(!future.is_ok());
        assert_eq!(future.unknown_bits(), 0x80);
        assert_eq!(future.names().count(), 0);
    }

    #[test]
    fn flag_names_print_without_allocation() {
        let status = StatusFlags::from_bits_retain(0xFF);
        let names: [&str; 4] = ["no_wire", "deadline_missed", "degraded", "low_confidence"];
        assert!(status.names().eq(names));

        let mut heartbeat = HeartbeatFlags::OK;
        heartbeat |= HeartbeatFlags::NO_SIGNAL;
        heartbeat |= HeartbeatFlags::DEGRADED;
        assert!(heartbeat.names().eq(["no_signal", "degraded"]));
    }

    #[test]
    fn display() {
        use core::fmt::Write;
        let mut text = heapless::String::<64>::new();
        write!(text, "{}", StatusFlags::OK).expect("fits");
        assert_eq!(text, "ok");
        text.clear();
        write!(text, "{}", StatusFlags::from_bits_retain(0x85)).expect("fits");
        assert_eq!(text, "no_wire|degraded|0x80");
        text.clear();
        write!(text, "{}", HeartbeatFlags::from_bits_retain(0x40)).expect("fits");
        assert_eq!(text, "0x40");
        text.clear();
        write!(text, "{} {}", BackendId::GPU_TENSORRT, BackendId(9)).expect("fits");
        assert_eq!(text, "gpu-tensorrt unknown(9)");
    }

    #[test]
    fn backend_names() {
        assert_eq!(BackendId::CPU_CLASSICAL.name(), "cpu-classical");
        assert_eq!(BackendId::CPU_LEARNED.name(), "cpu-learned");
        assert_eq!(BackendId::GPU_CUDA.name(), "gpu-cuda");
        assert_eq!(BackendId::GPU_TENSORRT.name(), "gpu-tensorrt");
        assert_eq!(BackendId(4).name(), "unknown");
    }
}
