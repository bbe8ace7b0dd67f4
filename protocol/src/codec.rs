//! Byte layout of version 1.0: header | postcard body | optional auth trailer | CRC-32C.

use postcard::ser_flavors::{Cobs, Flavor, Slice};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};

use crate::{
    AuthTrailer, BackendId, Body, Centerline, Confidence, DecodeError, EncodeError, Heartbeat, HeartbeatFlags, Message,
    StatusFlags, SubpixelPoint, AUTH_TRAILER_LEN, CRC_LEN, HEADER_LEN, MAX_POINTS, VERSION_MAJOR, VERSION_MINOR,
};

/// CRC-32C (Castagnoli): Hamming distance 6 up to 5243 data bits, where IEEE CRC-32 has 5 or 4.
static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Header flag bit 0: the auth trailer sits between body and CRC.
const FLAG_AUTH: u8 = 0x01;
const KIND_CENTERLINE: u8 = 1;
const KIND_HEARTBEAT: u8 = 2;

/// Encodes one message (e.g. one UDP datagram) into `out` and returns its length.
///
/// An `out` of [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) bytes always suffices. On error the
/// contents of `out` are unspecified.
pub fn encode(msg: &Message, out: &mut [u8]) -> Result<usize, EncodeError> {
    write_message(msg, Slice::new(out))
}

/// Encodes one message as a frame for byte streams: COBS of the message, then `0x00`.
///
/// An `out` of [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) bytes always suffices. On error the
/// contents of `out` are unspecified.
pub fn encode_frame(msg: &Message, out: &mut [u8]) -> Result<usize, EncodeError> {
    let cobs = Cobs::try_new(Slice::new(out)).map_err(|_| EncodeError::BufferTooSmall)?;
    write_message(msg, cobs)
}

/// Streams the message through `flavor`, so framing needs no second buffer.
fn write_message<'a>(msg: &Message, flavor: impl Flavor<Output = &'a mut [u8]>) -> Result<usize, EncodeError> {
    // Our types only ever make postcard fail for lack of space.
    postcard::serialize_with_flavor(&WireMessage(msg), AppendCrc::new(flavor))
        .map(|written| written.len())
        .map_err(|_| EncodeError::BufferTooSmall)
}

/// Decodes one message, checking in the order that stays valid across versions: length, CRC,
/// major version, then the rest.
///
/// Trailing body bytes are skipped when the sender's minor version is newer than
/// [`VERSION_MINOR`] (it may have appended fields) and rejected otherwise.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let too_short = DecodeError::TooShort { len: bytes.len() };
    let (covered, crc) = bytes.split_last_chunk::<CRC_LEN>().ok_or(too_short)?;
    let (&[major, minor, flags, kind], rest) = covered.split_first_chunk::<HEADER_LEN>().ok_or(too_short)?;

    let received = u32::from_le_bytes(*crc);
    let computed = CRC32C.checksum(covered);
    if received != computed {
        return Err(DecodeError::BadCrc { received, computed });
    }
    if major != VERSION_MAJOR {
        return Err(DecodeError::UnsupportedVersion { major, minor });
    }
    if flags & !FLAG_AUTH != 0 {
        return Err(DecodeError::ReservedFlags(flags));
    }
    let (body, auth) = if flags & FLAG_AUTH == 0 {
        (rest, None)
    } else {
        let (body, trailer) = rest.split_last_chunk::<AUTH_TRAILER_LEN>().ok_or(DecodeError::MalformedBody)?;
        (body, Some(AuthTrailer(*trailer)))
    };

    let (seq, body, trailing) = match kind {
        KIND_CENTERLINE => decode_centerline(body)?,
        KIND_HEARTBEAT => decode_heartbeat(body)?,
        kind => {
            // Every kind starts with seq, so receivers can account for messages they skip.
            let (seq, _) = take::<u32>(body)?;
            return Err(DecodeError::UnknownKind { kind, seq });
        }
    };
    let sender_is_newer = minor > VERSION_MINOR;
    if !trailing.is_empty() && !sender_is_newer {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(Message { seq, body, auth })
}

fn decode_centerline(bytes: &[u8]) -> Result<(u32, Body, &[u8]), DecodeError> {
    let (head, rest) = take::<CenterlineHead>(bytes)?;
    // The count is checked before any point is read, so the error does not depend on how much
    // of the list arrived.
    let (count, mut rest) = take::<u32>(rest)?;
    if count > MAX_POINTS as u32 {
        return Err(DecodeError::TooManyPoints);
    }
    let mut points = heapless::Vec::new();
    let mut predictor = Predictor::default();
    for _ in 0..count {
        let ((dx, dy), tail) = take::<(i32, i32)>(rest)?;
        let point = predictor.predict().wrapping_add(SubpixelPoint::new(dx, dy));
        predictor.advance(point);
        points.push(point).map_err(|_| DecodeError::TooManyPoints)?;
        rest = tail;
    }
    let centerline = Centerline {
        frame: head.frame,
        capture_us: head.capture_us,
        latency_us: head.latency_us,
        status: StatusFlags::from_bits_retain(head.status),
        confidence: Confidence(head.confidence),
        points,
    };
    Ok((head.seq, Body::Centerline(centerline), rest))
}

fn decode_heartbeat(bytes: &[u8]) -> Result<(u32, Body, &[u8]), DecodeError> {
    let (wire, rest) = take::<HeartbeatWire>(bytes)?;
    let heartbeat = Heartbeat {
        uptime_us: wire.uptime_us,
        frames_seen: wire.frames_seen,
        frames_dropped: wire.frames_dropped,
        deadline_misses: wire.deadline_misses,
        backend: BackendId(wire.backend),
        flags: HeartbeatFlags::from_bits_retain(wire.flags),
    };
    Ok((wire.seq, Body::Heartbeat(heartbeat), rest))
}

fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError> {
    postcard::take_from_bytes(bytes).map_err(|_| DecodeError::MalformedBody)
}

/// Second-order predictor of the next point, shared by encoder and decoder so that they agree
/// by construction: nothing for point 0, the previous point for point 1, and linear
/// extrapolation `2 p[i-1] - p[i-2]` after that. All arithmetic wraps, so every `i32`
/// coordinate round-trips.
#[derive(Debug, Default)]
struct Predictor {
    last: SubpixelPoint,
    step: SubpixelPoint,
    started: bool,
}

impl Predictor {
    fn predict(&self) -> SubpixelPoint {
        self.last.wrapping_add(self.step)
    }

    fn advance(&mut self, point: SubpixelPoint) {
        if self.started {
            self.step = point.wrapping_sub(self.last);
        }
        self.started = true;
        self.last = point;
    }
}

/// The whole message in wire order; postcard writes `u8` arrays as raw bytes.
struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Message { seq, body, auth } = self.0;
        let flags = if auth.is_some() { FLAG_AUTH } else { 0 };
        let mut parts = serializer.serialize_tuple(2 + usize::from(auth.is_some()))?;
        match body {
            Body::Centerline(centerline) => {
                parts.serialize_element(&[VERSION_MAJOR, VERSION_MINOR, flags, KIND_CENTERLINE])?;
                parts.serialize_element(&CenterlineWire::new(*seq, centerline))?;
            }
            Body::Heartbeat(heartbeat) => {
                parts.serialize_element(&[VERSION_MAJOR, VERSION_MINOR, flags, KIND_HEARTBEAT])?;
                parts.serialize_element(&HeartbeatWire::new(*seq, heartbeat))?;
            }
        }
        if let Some(auth) = auth {
            parts.serialize_element(&auth.0)?;
        }
        parts.end()
    }
}

/// Centerline fields before the points, in wire order.
#[derive(Debug, Serialize, Deserialize)]
struct CenterlineHead {
    seq: u32,
    frame: u32,
    capture_us: u64,
    latency_us: u32,
    status: u8,
    confidence: u8,
}

#[derive(Debug, Serialize)]
struct CenterlineWire<'a> {
    head: CenterlineHead,
    points: PointResiduals<'a>,
}

impl<'a> CenterlineWire<'a> {
    fn new(seq: u32, centerline: &'a Centerline) -> Self {
        Self {
            head: CenterlineHead {
                seq,
                frame: centerline.frame,
                capture_us: centerline.capture_us,
                latency_us: centerline.latency_us,
                status: centerline.status.bits(),
                confidence: centerline.confidence.0,
            },
            points: PointResiduals(&centerline.points),
        }
    }
}

/// Points as a count followed by each point's `(x, y)` residual from [`Predictor`].
#[derive(Debug)]
struct PointResiduals<'a>(&'a [SubpixelPoint]);

impl Serialize for PointResiduals<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        let mut predictor = Predictor::default();
        for &point in self.0 {
            let residual = point.wrapping_sub(predictor.predict());
            predictor.advance(point);
            seq.serialize_element(&(residual.x_px16, residual.y_px16))?;
        }
        seq.end()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HeartbeatWire {
    seq: u32,
    uptime_us: u64,
    frames_seen: u32,
    frames_dropped: u32,
    deadline_misses: u32,
    backend: u8,
    flags: u8,
}

impl HeartbeatWire {
    fn new(seq: u32, heartbeat: &Heartbeat) -> Self {
        Self {
            seq,
            uptime_us: heartbeat.uptime_us,
            frames_seen: heartbeat.frames_seen,
            frames_dropped: heartbeat.frames_dropped,
            deadline_misses: heartbeat.deadline_misses,
            backend: heartbeat.backend.0,
            flags: heartbeat.flags.bits(),
        }
    }
}

/// Feeds every byte through CRC-32C on its way to `inner` and appends the CRC, little-endian.
struct AppendCrc<F> {
    inner: F,
    digest: crc::Digest<'static, u32>,
}

impl<F> AppendCrc<F> {
    fn new(inner: F) -> Self {
        Self { inner, digest: CRC32C.digest() }
    }
}

impl<F: Flavor> Flavor for AppendCrc<F> {
    type Output = F::Output;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.digest.update(&[byte]);
        self.inner.try_push(byte)
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.digest.update(bytes);
        self.inner.try_extend(bytes)
    }

    fn finalize(self) -> postcard::Result<F::Output> {
        let Self { mut inner, digest } = self;
        inner.try_extend(&digest.finalize().to_le_bytes())?;
        inner.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_crc32c() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn predictor_is_second_order() {
        let points = [SubpixelPoint::new(1600, 3200), SubpixelPoint::new(1672, 3248), SubpixelPoint::new(1744, 3304)];
        let mut predictor = Predictor::default();
        let mut residuals = [SubpixelPoint::default(); 3];
        for (point, residual) in points.iter().zip(&mut residuals) {
            *residual = point.wrapping_sub(predictor.predict());
            predictor.advance(*point);
        }
        assert_eq!(residuals, [SubpixelPoint::new(1600, 3200), SubpixelPoint::new(72, 48), SubpixelPoint::new(0, 8),]);
    }

    #[test]
    fn predictor_wraps() {
        let mut predictor = Predictor::default();
        predictor.advance(SubpixelPoint::new(i32::MIN, i32::MAX));
        predictor.advance(SubpixelPoint::new(i32::MAX, i32::MIN));
        assert_eq!(predictor.predict(), SubpixelPoint::new(i32::MAX - 1, i32::MIN + 1));
    }
}
