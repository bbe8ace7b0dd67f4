//! Hostile and damaged input: nothing panics, nothing damaged is ever accepted, and the stream
//! decoder recovers at the next intact frame.

mod common;

use std::collections::BTreeSet;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use wiretrace_protocol::*;

/// Whatever decodes must re-encode within the bounds and decode to the same message again.
fn assert_sound(msg: &Message) {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let len = encode(msg, &mut buf).expect("a decoded message re-encodes within MAX_MESSAGE_LEN");
    assert_eq!(decode(&buf[..len]).as_ref(), Ok(msg));
    let mut frame = [0u8; MAX_FRAME_LEN];
    encode_frame(msg, &mut frame).expect("and frames within MAX_FRAME_LEN");
}

/// A header this decoder gets past often, so bodies are fuzzed and not just the header checks.
fn plausible_header() -> impl Strategy<Value = [u8; 4]> {
    (
        prop_oneof![4 => Just(1u8), 1 => any::<u8>()],
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        prop_oneof![Just(1u8), Just(2u8), any::<u8>()],
    )
        .prop_map(|(major, minor, flags, kind)| [major, minor, flags, kind])
}

#[derive(Debug, Clone)]
enum Damage {
    FlipBit { at: Index, bit: u8 },
    Insert { at: Index, byte: u8 },
    Delete { at: Index },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Damage::FlipBit { at, bit }),
        (any::<Index>(), prop_oneof![Just(0u8), any::<u8>()]).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        any::<Index>().prop_map(|at| Damage::Delete { at }),
    ]
}

/// Applies `damage` and `truncate` to `stream`, all positions in the original stream, and returns
/// the damaged stream and which original positions were touched. An insertion at `i` goes before
/// original byte `i` and touches it.
fn apply(stream: &[u8], damage: &[Damage], truncate: Option<Index>) -> (Vec<u8>, Vec<bool>) {
    let len = stream.len();
    let mut flips = vec![0u8; len];
    let mut inserts = vec![Vec::new(); len + 1];
    let mut deleted = vec![false; len];
    let mut touched = vec![false; len];
    for item in damage {
        match item {
            Damage::FlipBit { at, bit } => {
                let i = at.index(len);
                flips[i] ^= 1 << bit;
                touched[i] = true;
            }
            Damage::Insert { at, byte } => {
                let i = at.index(len + 1);
                inserts[i].push(*byte);
                if i < len {
                    touched[i] = true;
                }
            }
            Damage::Delete { at } => {
                let i = at.index(len);
                deleted[i] = true;
                touched[i] = true;
            }
        }
    }
    let end = truncate.map_or(len, |at| at.index(len));
    touched[end..].fill(true);
    let mut out = Vec::new();
    for i in 0..end {
        out.extend(&inserts[i]);
        if !deleted[i] {
            out.push(stream[i] ^ flips[i]);
        }
    }
    (out, touched)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        if let Ok(msg) = decode(&bytes) {
            assert_sound(&msg);
        }
        for msg in decode_stream(&bytes).into_iter().flatten() {
            assert_sound(&msg);
        }
        let mut small = StreamDecoder::<16>::new();
        small.feed(&bytes, |_| {});
    }

    /// Bytes that pass the CRC and usually the header checks, so the body parser sees them.
    #[test]
    fn arbitrary_sealed_bodies_never_panic(
        header in plausible_header(),
        body in prop::collection::vec(
            prop_oneof![3 => any::<u8>(), 1 => Just(0x00u8), 1 => Just(0x80u8), 1 => Just(0xffu8)],
            0..400,
        ),
    ) {
        let mut bytes = header.to_vec();
        bytes.extend(body);
        let bytes = seal(bytes);
        if let Ok(msg) = decode(&bytes) {
            assert_sound(&msg);
        }
    }

    /// Valid messages with a few bytes changed and the CRC fixed, as a buggy sender might send.
    #[test]
    fn mutated_sealed_messages_never_panic(
        msg in message_strategy(40),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = to_bytes(&msg);
        bytes.truncate(bytes.len() - CRC_LEN);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(msg) = decode(&seal(bytes)) {
            assert_sound(&msg);
        }
    }

    /// CRC-32C detects every error of up to 3 flipped bits at our lengths (positions that
    /// coincide are flipped once).
    #[test]
    fn flipped_bits_are_always_detected(
        msg in message_strategy(MAX_POINTS),
        flips in prop::collection::vec(any::<Index>(), 1..=3),
    ) {
        let mut bytes = to_bytes(&msg);
        let bits = bytes.len() * 8;
        let positions: BTreeSet<usize> = flips.iter().map(|at| at.index(bits)).collect();
        for bit in positions {
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        prop_assert!(decode(&bytes).is_err());
    }

    /// A stream of frames, damaged anywhere: nothing panics, everything decoded is one of the
    /// original messages, and every frame the damage did not touch is still decoded.
    #[test]
    fn damaged_streams_resynchronise(
        msgs in prop::collection::vec(message_strategy(24), 2..7),
        damage in prop::collection::vec(damage(), 0..6),
        truncate in prop::option::weighted(0.2, any::<Index>()),
        chunk in 1..64usize,
    ) {
        // Distinct seqs tell the originals apart.
        let msgs: Vec<Message> = msgs
            .into_iter()
            .enumerate()
            .map(|(i, msg)| Message { seq: i as u32, ..msg })
            .collect();
        // Frame k spans its opening delimiter (the previous frame's, or the initial 0x00) up to
        // and including its own.
        let mut stream = vec![0x00];
        let mut spans = Vec::new();
        for msg in &msgs {
            let start = stream.len() - 1;
            stream.extend(to_frame(msg));
            spans.push(start..stream.len());
        }

        let (damaged, touched) = apply(&stream, &damage, truncate);
        let mut decoder: StreamDecoder = StreamDecoder::new();
        let mut decoded = BTreeSet::new();
        for piece in damaged.chunks(chunk) {
            decoder.feed(piece, |result| {
                if let Ok(msg) = result {
                    let original = msgs.get(msg.seq as usize);
                    assert_eq!(Some(&msg), original, "decoded a message that was never sent");
                    decoded.insert(msg.seq);
                }
            });
        }
        for (k, span) in spans.into_iter().enumerate() {
            if !touched[span].contains(&true) {
                prop_assert!(decoded.contains(&(k as u32)), "untouched frame {} lost", k);
            }
        }
    }
}
