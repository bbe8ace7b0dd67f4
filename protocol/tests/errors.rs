//! Every decode error from the bytes that cause it, and the edge cases of the stream decoder.

mod common;

use common::*;
use wiretrace_protocol::*;

/// Header and body of `msg` without its CRC, to be changed and then sealed again.
fn unsealed(msg: &Message) -> Vec<u8> {
    let mut bytes = to_bytes(msg);
    bytes.truncate(bytes.len() - CRC_LEN);
    bytes
}

fn centerline_with_points(count: usize) -> Message {
    centerline_message(7, realistic_points(count, 6.0))
}

#[test]
fn damaged_bytes_fail_the_crc() {
    let mut bytes = to_bytes(&example_centerline());
    bytes[10] ^= 0x04;
    let covered = &bytes[..bytes.len() - CRC_LEN];
    let err = decode(&bytes).expect_err("damaged");
    assert_eq!(err, DecodeError::BadCrc { received: 0x852F_CCE8, computed: crc32c(covered) });
    assert!(err.is_transmission_error());
}

#[test]
fn other_major_versions_are_rejected_after_the_crc() {
    for major in [0, 2, 255] {
        let mut bytes = unsealed(&example_heartbeat());
        bytes[0] = major;
        bytes[1] = 7;
        let err = decode(&seal(bytes)).expect_err("other major");
        assert_eq!(err, DecodeError::UnsupportedVersion { major, minor: 7 });
        assert!(!err.is_transmission_error());
    }
    // A damaged major version is a CRC failure, not a version mismatch.
    let mut bytes = to_bytes(&example_heartbeat());
    bytes[0] = 2;
    assert!(matches!(decode(&bytes), Err(DecodeError::BadCrc { .. })));
}

#[test]
fn reserved_flags_are_rejected() {
    for flags in [0x02, 0x03, 0x80] {
        let mut bytes = unsealed(&example_heartbeat());
        bytes[2] = flags;
        assert_eq!(decode(&seal(bytes)), Err(DecodeError::ReservedFlags(flags)));
    }
}

#[test]
fn unknown_kinds_report_their_seq() {
    for kind in [0, 3, 255] {
        let mut bytes = unsealed(&example_heartbeat());
        bytes[3] = kind;
        assert_eq!(decode(&seal(bytes)), Err(DecodeError::UnknownKind { kind, seq: 1001 }));
    }
    assert_eq!(
        decode(&seal(vec![1, 0, 0, 9, 0xff])),
        Err(DecodeError::MalformedBody),
        "an unknown kind without a readable seq"
    );
}

#[test]
fn newer_minor_versions_may_append_fields() {
    for msg in [example_centerline(), example_heartbeat(), example_signed_heartbeat()] {
        for minor in [1, 255] {
            let mut bytes = unsealed(&msg);
            bytes[1] = minor;
            let trailer_at = bytes.len() - if msg.auth.is_some() { AUTH_TRAILER_LEN } else { 0 };
            bytes.splice(trailer_at..trailer_at, [0x01, 0x80, 0x01, 0x00]);
            assert_eq!(decode(&seal(bytes)), Ok(msg.clone()), "minor {minor}");
        }
    }
}

#[test]
fn trailing_bytes_are_an_error_for_our_minor() {
    for msg in [example_centerline(), example_heartbeat(), example_signed_heartbeat()] {
        let mut bytes = unsealed(&msg);
        let trailer_at = bytes.len() - if msg.auth.is_some() { AUTH_TRAILER_LEN } else { 0 };
        bytes.insert(trailer_at, 0x00);
        assert_eq!(decode(&seal(bytes)), Err(DecodeError::TrailingBytes));
    }
}

#[test]
fn more_than_128_points_are_rejected() {
    let head = [1, 0, 0, 1, 0x01, 0x02, 0x03, 0x04, 0x00, 0xff];
    let mut bytes = head.to_vec();
    bytes.extend([0x81, 0x01]); // 129 points
    bytes.extend([0x00; 2 * 129]);
    assert_eq!(decode(&seal(bytes)), Err(DecodeError::TooManyPoints));

    // The count decides, however much of the list follows.
    for count in [[0x81, 0x01, 0x00], [0xff, 0xff, 0x03]] {
        let mut bytes = head.to_vec();
        bytes.extend(count);
        assert_eq!(decode(&seal(bytes)), Err(DecodeError::TooManyPoints));
    }
    let mut bytes = head.to_vec();
    bytes.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(decode(&seal(bytes)), Err(DecodeError::TooManyPoints), "u32::MAX points");

    // 128 is fine.
    let mut bytes = head.to_vec();
    bytes.extend([0x80, 0x01]);
    bytes.extend([0x00; 2 * 128]);
    let msg = decode(&seal(bytes)).expect("128 points");
    let Body::Centerline(centerline) = msg.body else { panic!("centerline expected") };
    assert_eq!(centerline.points.len(), MAX_POINTS);
}

#[test]
fn malformed_varints_are_rejected() {
    // seq as a 5-byte u32 whose last byte carries more than 4 bits.
    let bytes = seal(vec![1, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode(&bytes), Err(DecodeError::MalformedBody));
    // A varint that never ends.
    let bytes = seal(vec![1, 0, 0, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);
    assert_eq!(decode(&bytes), Err(DecodeError::MalformedBody));
}

#[test]
fn auth_flag_without_room_for_the_trailer() {
    let bytes = seal(vec![1, 0, 0x01, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(decode(&bytes), Err(DecodeError::MalformedBody));
}

#[test]
fn messages_shorter_than_header_and_crc() {
    for len in 0..HEADER_LEN + CRC_LEN {
        let err = decode(&vec![0; len]).expect_err("too short");
        assert_eq!(err, DecodeError::TooShort { len });
        assert!(err.is_transmission_error());
    }
}

/// Cut anywhere, a message fails: as received (the CRC no longer matches), and even when a buggy
/// sender sealed the cut bytes with a valid CRC (the body no longer parses).
#[test]
fn truncated_messages_fail_at_every_length() {
    for msg in [centerline_with_points(64), example_heartbeat(), example_signed_heartbeat(), worst_case_message()] {
        let bytes = to_bytes(&msg);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "received prefix of {len} bytes");
        }
        let covered = unsealed(&msg);
        for len in HEADER_LEN..covered.len() {
            let err = decode(&seal(covered[..len].to_vec())).expect_err("sealed prefix");
            assert_eq!(err, DecodeError::MalformedBody, "sealed prefix of {len} bytes");
        }
    }
}

#[test]
fn small_buffers_are_reported_not_overrun() {
    let msg = centerline_with_points(16);
    let (datagram, frame) = (to_bytes(&msg), to_frame(&msg));
    let mut buf = vec![0; frame.len()];
    for len in 0..datagram.len() {
        assert_eq!(encode(&msg, &mut buf[..len]), Err(EncodeError::BufferTooSmall));
    }
    for len in 0..frame.len() {
        assert_eq!(encode_frame(&msg, &mut buf[..len]), Err(EncodeError::BufferTooSmall));
    }
    assert_eq!(encode(&msg, &mut buf[..datagram.len()]), Ok(datagram.len()));
    assert_eq!(encode_frame(&msg, &mut buf), Ok(frame.len()));
}

#[test]
fn overlong_frame_is_reported_once_then_the_next_frame_decodes() {
    let good = to_frame(&example_heartbeat());
    let mut decoder = StreamDecoder::<64>::new();
    let mut results = Vec::new();
    decoder.feed(&[0x55; 200], |result| results.push(result));
    assert_eq!(results, [Err(DecodeError::FrameTooLong)]);
    decoder.feed(&[0x00], |result| results.push(result));
    decoder.feed(&good, |result| results.push(result));
    assert_eq!(results, [Err(DecodeError::FrameTooLong), Ok(example_heartbeat())]);
    assert!(DecodeError::FrameTooLong.is_transmission_error());
}

#[test]
fn frame_exactly_filling_the_buffer_decodes() {
    let frame = to_frame(&example_heartbeat());
    let mut decoder = StreamDecoder::<23>::new();
    assert_eq!(frame.len(), 23 + 1, "the delimiter is not stored");
    let mut results = Vec::new();
    decoder.feed(&frame, |result| results.push(result));
    assert_eq!(results, [Ok(example_heartbeat())]);
    let mut decoder = StreamDecoder::<22>::new();
    let mut results = Vec::new();
    decoder.feed(&frame, |result| results.push(result));
    assert_eq!(results, [Err(DecodeError::FrameTooLong)]);
}

#[test]
fn empty_frames_are_ignored() {
    let mut stream = vec![0x00, 0x00, 0x00];
    stream.extend(to_frame(&example_centerline()));
    stream.extend([0x00, 0x00]);
    assert_eq!(decode_stream(&stream), [Ok(example_centerline())]);
}

#[test]
fn bad_cobs_is_reported() {
    // The code byte 0x05 promises four more bytes, but the frame ends after one.
    let err = decode_stream(&[0x05, 0x01, 0x00]);
    assert_eq!(err, [Err(DecodeError::BadCobs)]);
    assert!(DecodeError::BadCobs.is_transmission_error());
    // Valid COBS of too few bytes.
    assert_eq!(decode_stream(&[0x01, 0x00]), [Err(DecodeError::TooShort { len: 0 })]);
}

#[test]
fn reset_drops_a_partial_frame() {
    let frame = to_frame(&example_heartbeat());
    let mut decoder: StreamDecoder = StreamDecoder::default();
    for &byte in &frame[..10] {
        assert_eq!(decoder.push(byte), None);
    }
    decoder.reset();
    let mut results = Vec::new();
    decoder.feed(&frame, |result| results.push(result));
    assert_eq!(results, [Ok(example_heartbeat())]);
}

#[test]
fn errors_display_without_debug_noise() {
    let cases = [
        (DecodeError::TooShort { len: 3 }, "message too short: 3 bytes"),
        (
            DecodeError::BadCrc { received: 1, computed: 0xE306_9283 },
            "CRC mismatch: received 0x00000001, computed 0xe3069283",
        ),
        (DecodeError::UnsupportedVersion { major: 2, minor: 1 }, "unsupported protocol version 2.1"),
        (DecodeError::ReservedFlags(0x82), "reserved header flags set: 0x82"),
        (DecodeError::UnknownKind { kind: 9, seq: 4 }, "unknown message kind 9 (seq 4)"),
        (DecodeError::TooManyPoints, "centerline has more than 128 points"),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
    }
    let _: &dyn core::error::Error = &DecodeError::MalformedBody;
    let _: &dyn core::error::Error = &EncodeError::BufferTooSmall;
}
