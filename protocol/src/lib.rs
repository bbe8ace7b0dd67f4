//! Wire protocol between wiretrace and the robot controller: guidewire centerlines and
//! heartbeats, version 1.0.
//!
//! `SPEC.md` next to this crate is the normative byte-level contract; this crate is its reference
//! implementation. It is `no_std`, never allocates, and never panics on any input, so robot
//! firmware can use it as is.
//!
//! - [`encode`] / [`decode`]: one message, e.g. one UDP datagram.
//! - [`encode_frame`] / [`StreamDecoder`]: COBS frames ending in `0x00`, for serial links and TCP.
//!
//! ```
//! use wiretrace_protocol::{
//!     decode, encode, encode_frame, Body, Centerline, Confidence, Message, StatusFlags,
//!     StreamDecoder, SubpixelPoint, MAX_FRAME_LEN, MAX_MESSAGE_LEN,
//! };
//!
//! let mut centerline = Centerline {
//!     frame: 42,
//!     capture_us: 1_000_000,
//!     latency_us: 15_000,
//!     status: StatusFlags::OK,
//!     confidence: Confidence::from_unit(0.8),
//!     ..Centerline::default()
//! };
//! centerline.points.push(SubpixelPoint::from_px(100.0, 200.0)).expect("capacity");
//! let msg = Message { seq: 7, body: Body::Centerline(centerline), auth: None };
//!
//! // Datagram: one message per UDP packet.
//! let mut datagram = [0u8; MAX_MESSAGE_LEN];
//! let len = encode(&msg, &mut datagram)?;
//! assert_eq!(decode(&datagram[..len]), Ok(msg.clone()));
//!
//! // Byte stream: frames may arrive in any chunks.
//! let mut frame = [0u8; MAX_FRAME_LEN];
//! let len = encode_frame(&msg, &mut frame)?;
//! let mut decoder: StreamDecoder = StreamDecoder::new();
//! let mut received = None;
//! for chunk in frame[..len].chunks(3) {
//!     decoder.feed(chunk, |result| received = Some(result));
//! }
//! assert_eq!(received, Some(Ok(msg)));
//! # Ok::<(), wiretrace_protocol::EncodeError>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod error;
mod stream;
mod types;

pub use codec::{decode, encode, encode_frame};
pub use error::{DecodeError, EncodeError};
/// The `heapless` version used in [`Centerline::points`], so users need not pin it themselves.
pub use heapless;
pub use stream::StreamDecoder;
pub use types::{
    AuthTrailer, BackendId, Body, Centerline, Confidence, Heartbeat, HeartbeatFlags, Message, StatusFlags,
    SubpixelPoint,
};

/// Major version: changes with any incompatible change; decoders reject other majors.
pub const VERSION_MAJOR: u8 = 1;
/// Minor version: changes when fields, kinds or flag bits are added compatibly.
pub const VERSION_MINOR: u8 = 0;
/// Most points a centerline carries; decoders reject more.
pub const MAX_POINTS: usize = 128;
/// Header length (major, minor, flags, kind); fixed for all versions.
pub const HEADER_LEN: usize = 4;
/// Length of the CRC-32C that ends every message; fixed for all versions.
pub const CRC_LEN: usize = 4;
/// Length of the authentication trailer, present when header flag bit 0 is set.
pub const AUTH_TRAILER_LEN: usize = 13;

/// Longest LEB128 varint of an unsigned integer of `bits` bits (zigzag keeps signed ones the same).
const fn varint_max_len(bits: u32) -> usize {
    bits.div_ceil(7) as usize
}

/// Length of the LEB128 varint of `value`.
const fn varint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// seq, frame, capture_us, latency_us, status, confidence, point count, points.
const MAX_CENTERLINE_BODY_LEN: usize = 3 * varint_max_len(u32::BITS)
    + varint_max_len(u64::BITS)
    + 2
    + varint_len(MAX_POINTS)
    + MAX_POINTS * 2 * varint_max_len(i32::BITS);

/// seq, uptime_us, frames_seen, frames_dropped, deadline_misses, backend, flags.
const MAX_HEARTBEAT_BODY_LEN: usize = 4 * varint_max_len(u32::BITS) + varint_max_len(u64::BITS) + 2;

const MAX_BODY_LEN: usize =
    if MAX_CENTERLINE_BODY_LEN > MAX_HEARTBEAT_BODY_LEN { MAX_CENTERLINE_BODY_LEN } else { MAX_HEARTBEAT_BODY_LEN };

/// Longest message this version encodes (1330): a buffer this long always suffices for [`encode`].
///
/// Messages from a newer minor version may be longer; [`decode`] accepts any length.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + MAX_BODY_LEN + AUTH_TRAILER_LEN + CRC_LEN;

/// Longest frame this version encodes (1337), delimiter included: a buffer this long always
/// suffices for [`encode_frame`].
///
/// COBS adds one code byte, plus one per run of 254 non-zero bytes.
pub const MAX_FRAME_LEN: usize = MAX_MESSAGE_LEN + MAX_MESSAGE_LEN / 254 + 1 + 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_the_spec() {
        assert_eq!(MAX_CENTERLINE_BODY_LEN, 1309);
        assert_eq!(MAX_HEARTBEAT_BODY_LEN, 32);
        assert_eq!(MAX_MESSAGE_LEN, 1330);
        assert_eq!(MAX_FRAME_LEN, 1337);
    }

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_max_len(32), 5);
        assert_eq!(varint_max_len(64), 10);
    }
}
