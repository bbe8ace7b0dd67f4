//! Errors of encoding and decoding; their `Display` never allocates.

use crate::MAX_POINTS;

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) (or
    /// [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) for frames) bytes always suffice.
    #[error("output buffer too small for the encoded message")]
    BufferTooSmall,
}

/// Why bytes could not be decoded into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header and a CRC.
    #[error("message too short: {len} bytes")]
    TooShort {
        /// Length of the message.
        len: usize,
    },
    /// The CRC-32C does not match: the bytes were damaged.
    #[error("CRC mismatch: received {received:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC at the end of the message.
        received: u32,
        /// CRC of the bytes before it.
        computed: u32,
    },
    /// Intact message of a major version this decoder does not speak.
    #[error("unsupported protocol version {major}.{minor}")]
    UnsupportedVersion {
        /// Major version of the message.
        major: u8,
        /// Minor version of the message.
        minor: u8,
    },
    /// A reserved header flag is set; it may change the layout, so the message is not read.
    #[error("reserved header flags set: {0:#04x}")]
    ReservedFlags(u8),
    /// Intact message of a kind this version does not know; receivers skip and count it.
    #[error("unknown message kind {kind} (seq {seq})")]
    UnknownKind {
        /// Kind byte of the message.
        kind: u8,
        /// Sequence number, which every kind starts with, so the skipped message is no gap.
        seq: u32,
    },
    /// The body (or the auth trailer the flags announce) does not parse: truncated or overlong
    /// varint, or missing fields.
    #[error("malformed message body")]
    MalformedBody,
    /// A centerline announces more points than the protocol allows.
    #[error("centerline has more than {} points", MAX_POINTS)]
    TooManyPoints,
    /// Bytes follow the body although the sender's minor version is not newer than ours.
    #[error("trailing bytes after the message body")]
    TrailingBytes,
    /// A stream frame is not valid COBS.
    #[error("invalid COBS frame")]
    BadCobs,
    /// A stream frame overflowed the decoder's buffer; bytes up to the next `0x00` are dropped.
    #[error("frame longer than the receive buffer")]
    FrameTooLong,
}

impl DecodeError {
    /// Whether the bytes were damaged, cut or merged in transit (line noise, a lost delimiter).
    ///
    /// The other errors come from intact bytes: a sender of another version or a buggy one,
    /// which deserves a different counter and alarm than a noisy cable.
    pub const fn is_transmission_error(&self) -> bool {
        matches!(self, Self::TooShort { .. } | Self::BadCrc { .. } | Self::BadCobs | Self::FrameTooLong)
    }
}
