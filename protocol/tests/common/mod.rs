//! Helpers shared by the integration tests; each test binary uses a different subset.
#![allow(dead_code)]

use proptest::prelude::*;
use wiretrace_protocol::heapless;
use wiretrace_protocol::{
    encode, encode_frame, AuthTrailer, BackendId, Body, Centerline, Confidence, DecodeError, Heartbeat, HeartbeatFlags,
    Message, StatusFlags, StreamDecoder, SubpixelPoint, MAX_FRAME_LEN, MAX_MESSAGE_LEN, MAX_POINTS,
};

/// CRC-32C from the `crc` crate directly, independent of the protocol's own use of it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(bytes)
}

/// Appends a valid CRC to hand-built header and body bytes.
pub fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

pub fn to_bytes(msg: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let len = encode(msg, &mut buf).expect("MAX_MESSAGE_LEN always suffices");
    buf[..len].to_vec()
}

pub fn to_frame(msg: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = encode_frame(msg, &mut buf).expect("MAX_FRAME_LEN always suffices");
    buf[..len].to_vec()
}

/// Every result a fresh default decoder reports for `stream`.
pub fn decode_stream(stream: &[u8]) -> Vec<Result<Message, DecodeError>> {
    let mut decoder: StreamDecoder = StreamDecoder::new();
    let mut results = Vec::new();
    decoder.feed(stream, |result| results.push(result));
    results
}

pub fn points(list: &[(i32, i32)]) -> heapless::Vec<SubpixelPoint, MAX_POINTS> {
    list.iter().map(|&(x, y)| SubpixelPoint::new(x, y)).collect()
}

pub fn centerline_message(seq: u32, points: heapless::Vec<SubpixelPoint, MAX_POINTS>) -> Message {
    Message {
        seq,
        body: Body::Centerline(Centerline {
            frame: 100_000,
            capture_us: 100_000_000_000,
            latency_us: 20_000,
            status: StatusFlags::OK,
            confidence: Confidence(230),
            points,
        }),
        auth: None,
    }
}

pub fn heartbeat_message(seq: u32) -> Message {
    Message {
        seq,
        body: Body::Heartbeat(Heartbeat {
            uptime_us: 28_800_000_000,
            frames_seen: 864_000,
            frames_dropped: 120,
            deadline_misses: 15,
            backend: BackendId::GPU_TENSORRT,
            flags: HeartbeatFlags::OK,
        }),
        auth: None,
    }
}

/// A guidewire as the pipeline reports it: a smooth bend across a 512x512 frame, resampled at
/// uniform arc length `spacing_px`, with about ±0.25 px of detector noise.
pub fn realistic_points(count: usize, spacing_px: f64) -> heapless::Vec<SubpixelPoint, MAX_POINTS> {
    let (mut x, mut y) = (40.0_f64, 480.0_f64);
    let mut noise_state = 0x2545_F491_u32;
    let mut noise = move || {
        noise_state = noise_state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (f64::from(noise_state >> 8) / f64::from(1u32 << 24) - 0.5) * 0.5
    };
    let mut points = heapless::Vec::new();
    for i in 0..count {
        let s = i as f64 * spacing_px;
        // Heading turns from up-right towards right, in an S with radius of curvature >= 75 px.
        let heading = -1.0 + s / 300.0 + 0.6 * (s / 60.0).sin();
        let point = SubpixelPoint::from_px((x + noise()) as f32, (y + noise()) as f32);
        assert!((0.0..=511.0).contains(&point.x_px()) && (0.0..=511.0).contains(&point.y_px()));
        points.push(point).expect("count <= MAX_POINTS");
        x += spacing_px * heading.cos();
        y += spacing_px * heading.sin();
    }
    points
}

pub fn point_strategy() -> impl Strategy<Value = SubpixelPoint> {
    // Both the full i32 range and the small coordinates of real frames.
    let coordinate = || prop_oneof![any::<i32>(), -10_000..10_000i32];
    (coordinate(), coordinate()).prop_map(|(x, y)| SubpixelPoint::new(x, y))
}

pub fn centerline_strategy(max_points: usize) -> impl Strategy<Value = Centerline> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(point_strategy(), 0..=max_points),
    )
        .prop_map(|(frame, capture_us, latency_us, status, confidence, points)| Centerline {
            frame,
            capture_us,
            latency_us,
            status: StatusFlags::from_bits_retain(status),
            confidence: Confidence(confidence),
            points: points.into_iter().collect(),
        })
}

pub fn heartbeat_strategy() -> impl Strategy<Value = Heartbeat> {
    (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u8>(), any::<u8>()).prop_map(
        |(uptime_us, frames_seen, frames_dropped, deadline_misses, backend, flags)| Heartbeat {
            uptime_us,
            frames_seen,
            frames_dropped,
            deadline_misses,
            backend: BackendId(backend),
            flags: HeartbeatFlags::from_bits_retain(flags),
        },
    )
}

/// Any message this version can send, with up to `max_points` points.
pub fn message_strategy(max_points: usize) -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        centerline_strategy(max_points).prop_map(Body::Centerline),
        heartbeat_strategy().prop_map(Body::Heartbeat),
    ];
    (any::<u32>(), body, prop::option::of(any::<[u8; 13]>().prop_map(AuthTrailer)))
        .prop_map(|(seq, body, auth)| Message { seq, body, auth })
}

/// SPEC.md example 1: a 3-point centerline.
pub fn example_centerline() -> Message {
    Message {
        seq: 1000,
        body: Body::Centerline(Centerline {
            frame: 42,
            capture_us: 1_000_000,
            latency_us: 15_000,
            status: StatusFlags::OK,
            confidence: Confidence(200),
            points: points(&[(1600, 3200), (1672, 3248), (1744, 3304)]),
        }),
        auth: None,
    }
}

/// SPEC.md example 2: a heartbeat.
pub fn example_heartbeat() -> Message {
    Message {
        seq: 1001,
        body: Body::Heartbeat(Heartbeat {
            uptime_us: 3_600_000_000,
            frames_seen: 108_000,
            frames_dropped: 3,
            deadline_misses: 1,
            backend: BackendId::GPU_TENSORRT,
            flags: HeartbeatFlags::OK,
        }),
        auth: None,
    }
}

/// SPEC.md example 3 (sent as a COBS frame): a centerline without a wire.
pub fn example_no_wire() -> Message {
    Message {
        seq: 1002,
        body: Body::Centerline(Centerline {
            frame: 43,
            capture_us: 1_033_333,
            latency_us: 21_000,
            status: StatusFlags::NO_WIRE | StatusFlags::DEADLINE_MISSED,
            confidence: Confidence(0),
            points: heapless::Vec::new(),
        }),
        auth: None,
    }
}

/// SPEC.md example 4: a heartbeat with an auth trailer.
pub fn example_signed_heartbeat() -> Message {
    Message {
        seq: 1003,
        body: Body::Heartbeat(Heartbeat {
            uptime_us: 3_601_000_000,
            frames_seen: 108_030,
            frames_dropped: 3,
            deadline_misses: 1,
            backend: BackendId::GPU_TENSORRT,
            flags: HeartbeatFlags::DEGRADED,
        }),
        auth: Some(AuthTrailer([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d])),
    }
}

/// The longest message this version encodes: extreme field values, 128 points whose residuals
/// all need 5 bytes, and an auth trailer.
pub fn worst_case_message() -> Message {
    let far = 1 << 30;
    let points = (0..MAX_POINTS)
        .map(|i| if i % 2 == 0 { SubpixelPoint::new(far, far) } else { SubpixelPoint::new(0, 0) })
        .collect();
    Message {
        seq: u32::MAX,
        body: Body::Centerline(Centerline {
            frame: u32::MAX,
            capture_us: u64::MAX,
            latency_us: u32::MAX,
            status: StatusFlags::from_bits_retain(0xFF),
            confidence: Confidence(255),
            points,
        }),
        auth: Some(AuthTrailer([0xFF; 13])),
    }
}
