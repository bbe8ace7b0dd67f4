//! Every message this version can express survives encoding, as a datagram and as a stream.

mod common;

use common::*;
use proptest::prelude::*;
use wiretrace_protocol::*;

/// Splits `bytes` into chunks of the given sizes (cycled), as a serial driver might deliver them.
fn chunks<'a>(bytes: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = bytes;
    sizes.iter().cycle().map_while(move |&size| {
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn datagram_round_trip(msg in message_strategy(MAX_POINTS)) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let len = encode(&msg, &mut buf).expect("MAX_MESSAGE_LEN suffices");
        prop_assert_eq!(decode(&buf[..len]), Ok(msg.clone()));

        // The exact length suffices; one byte less does not.
        let mut exact = vec![0u8; len];
        prop_assert_eq!(encode(&msg, &mut exact), Ok(len));
        prop_assert_eq!(&exact[..], &buf[..len]);
        prop_assert_eq!(encode(&msg, &mut exact[..len - 1]), Err(EncodeError::BufferTooSmall));
    }

    #[test]
    fn frame_round_trip_in_any_chunks(
        msg in message_strategy(MAX_POINTS),
        sizes in prop::collection::vec(1..80usize, 1..8),
    ) {
        let frame = to_frame(&msg);
        prop_assert!(frame.len() <= MAX_FRAME_LEN);
        prop_assert_eq!(frame.iter().position(|&b| b == 0), Some(frame.len() - 1));

        let mut decoder: StreamDecoder = StreamDecoder::new();
        let mut results = Vec::new();
        for chunk in chunks(&frame, &sizes) {
            decoder.feed(chunk, |result| results.push(result));
        }
        prop_assert_eq!(results, vec![Ok(msg)]);
    }

    #[test]
    fn stream_of_frames_round_trip(
        msgs in prop::collection::vec(message_strategy(32), 1..8),
        sizes in prop::collection::vec(1..300usize, 1..8),
    ) {
        let mut stream = vec![0x00];
        for msg in &msgs {
            stream.extend(to_frame(msg));
        }
        let mut decoder: StreamDecoder = StreamDecoder::new();
        let mut decoded = Vec::new();
        for chunk in chunks(&stream, &sizes) {
            decoder.feed(chunk, |result| decoded.push(result.expect("intact frame")));
        }
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn from_px_round_trips_on_the_grid(x in -100_000..100_000i32, y in -100_000..100_000i32) {
        let point = SubpixelPoint::new(x, y);
        prop_assert_eq!(SubpixelPoint::from_px(point.x_px(), point.y_px()), point);
    }

    #[test]
    fn from_px_is_within_half_a_unit(x in -1.0e5f32..1.0e5, y in -1.0e5f32..1.0e5) {
        let point = SubpixelPoint::from_px(x, y);
        prop_assert!((f64::from(point.x_px16) - f64::from(x) * 16.0).abs() <= 0.5);
        prop_assert!((f64::from(point.y_px16) - f64::from(y) * 16.0).abs() <= 0.5);
    }
}
