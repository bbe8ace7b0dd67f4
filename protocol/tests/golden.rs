//! Golden bytes: these freeze the version 1.0 wire format. If one fails, the format changed,
//! which needs a major version bump, not a new golden value.

mod common;

use common::*;
use wiretrace_protocol::*;

#[test]
fn centerline_bytes() {
    let expected = [
        0x01, 0x00, 0x00, 0x01, // version 1.0, no flags, kind 1
        0xe8, 0x07, // seq 1000
        0x2a, // frame 42
        0xc0, 0x84, 0x3d, // capture_us 1_000_000
        0x98, 0x75, // latency_us 15_000
        0x00, // status OK
        0xc8, // confidence 200
        0x03, // 3 points
        0x80, 0x19, 0x80, 0x32, // (1600, 3200) absolute
        0x90, 0x01, 0x60, // (72, 48) first difference
        0x00, 0x10, // (0, 8) second difference
        0xe8, 0xcc, 0x2f, 0x85, // CRC-32C 0x852fcce8
    ];
    assert_eq!(to_bytes(&example_centerline()), expected);
    assert_eq!(decode(&expected), Ok(example_centerline()));
}

#[test]
fn heartbeat_bytes() {
    let expected = [
        0x01, 0x00, 0x00, 0x02, // version 1.0, no flags, kind 2
        0xe9, 0x07, // seq 1001
        0x80, 0xc8, 0xce, 0xb4, 0x0d, // uptime_us 3_600_000_000
        0xe0, 0xcb, 0x06, // frames_seen 108_000
        0x03, // frames_dropped
        0x01, // deadline_misses
        0x03, // backend gpu-tensorrt
        0x00, // flags OK
        0x1c, 0xc6, 0x19, 0x0d, // CRC-32C
    ];
    assert_eq!(to_bytes(&example_heartbeat()), expected);
    assert_eq!(decode(&expected), Ok(example_heartbeat()));
}

#[test]
fn framed_centerline_bytes() {
    let expected = [
        0x02, 0x01, 0x01, 0x0c, 0x01, 0xea, 0x07, 0x2b, 0xf5, 0x88, 0x3f, 0x88, 0xa4, 0x01, 0x03, 0x01, 0x05, 0xa5,
        0x76, 0x20, 0x81, 0x00,
    ];
    assert_eq!(to_frame(&example_no_wire()), expected);
    assert_eq!(decode_stream(&expected), [Ok(example_no_wire())]);
}

#[test]
fn auth_trailer_bytes() {
    let expected = [
        0x01, 0x00, 0x01, 0x02, // version 1.0, auth flag, kind 2
        0xeb, 0x07, 0xc0, 0xcc, 0x8b, 0xb5, 0x0d, 0xfe, 0xcb, 0x06, 0x03, 0x01, 0x03, 0x02, // body
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, // trailer
        0xff, 0xa4, 0x79, 0x29, // CRC-32C
    ];
    assert_eq!(to_bytes(&example_signed_heartbeat()), expected);
    assert_eq!(decode(&expected), Ok(example_signed_heartbeat()));
}

#[test]
fn extreme_values_bytes() {
    let msg = Message {
        seq: u32::MAX,
        body: Body::Centerline(Centerline {
            frame: 0,
            capture_us: u64::MAX,
            latency_us: 0,
            status: StatusFlags::from_bits_retain(0xFF),
            confidence: Confidence(255),
            points: points(&[(i32::MIN, i32::MAX), (i32::MAX, i32::MIN), (-1, 1)]),
        }),
        auth: None,
    };
    let expected = [
        0x01, 0x00, 0x00, 0x01, //
        0xff, 0xff, 0xff, 0xff, 0x0f, // seq u32::MAX
        0x00, // frame 0
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // capture_us u64::MAX
        0x00, // latency_us 0
        0xff, 0xff, // status 0xff, confidence 255
        0x03, //
        0xff, 0xff, 0xff, 0xff, 0x0f, 0xfe, 0xff, 0xff, 0xff, 0x0f, // (MIN, MAX)
        0x01, 0x02, // (MAX - MIN, MIN - MAX) wraps to (-1, 1)
        0xfd, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f, // wraps to (MIN + 1, MIN)
        0x7e, 0xe4, 0xc0, 0x40, // CRC-32C
    ];
    assert_eq!(to_bytes(&msg), expected);
    assert_eq!(decode(&expected), Ok(msg));
}

#[test]
fn worst_case_fills_the_bounds_exactly() {
    let msg = worst_case_message();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    assert_eq!(encode(&msg, &mut buf), Ok(MAX_MESSAGE_LEN));
    assert_eq!(decode(&buf), Ok(msg.clone()));

    let mut frame = [0u8; MAX_FRAME_LEN];
    assert_eq!(encode_frame(&msg, &mut frame), Ok(MAX_FRAME_LEN));
    assert_eq!(decode_stream(&frame), [Ok(msg)]);
}

/// The size table in SPEC.md. Realistic field values: seq ~10^6, frame ~10^5, capture_us ~10^11,
/// latency 20 ms.
#[test]
fn size_table() {
    let rows = [
        ("heartbeat", heartbeat_message(1_000_000)),
        ("centerline, 0 points", centerline_message(1_000_000, realistic_points(0, 7.0))),
        ("centerline, 16 points, 7 px", centerline_message(1_000_000, realistic_points(16, 7.0))),
        ("centerline, 64 points, 7 px", centerline_message(1_000_000, realistic_points(64, 7.0))),
        ("centerline, 64 points, 4 px", centerline_message(1_000_000, realistic_points(64, 4.0))),
        ("centerline, 128 points, 4 px", centerline_message(1_000_000, realistic_points(128, 4.0))),
        ("worst case", worst_case_message()),
    ];
    let mut sizes = Vec::new();
    // Run with --nocapture to print the table.
    println!("| message | datagram bytes | framed bytes |");
    for (name, msg) in &rows {
        let (datagram, framed) = (to_bytes(msg).len(), to_frame(msg).len());
        println!("| {name} | {datagram} | {framed} |");
        sizes.push((*name, datagram, framed));
    }
    assert_eq!(
        sizes,
        [
            ("heartbeat", 23, 25),
            ("centerline, 0 points", 26, 28),
            ("centerline, 16 points, 7 px", 61, 63),
            ("centerline, 64 points, 7 px", 157, 159),
            ("centerline, 64 points, 4 px", 156, 158),
            ("centerline, 128 points, 4 px", 285, 287),
            ("worst case", MAX_MESSAGE_LEN, MAX_FRAME_LEN),
        ]
    );
}

/// The size requirement: a realistic 64-point centerline fits 200 bytes on a serial link.
#[test]
fn realistic_centerline_fits_200_bytes() {
    for spacing_px in [4.0, 5.0, 6.0, 7.0, 8.0] {
        let msg = centerline_message(1_000_000, realistic_points(64, spacing_px));
        let framed = to_frame(&msg).len();
        assert!(framed <= 200, "{framed} bytes at {spacing_px} px spacing");
    }
}
