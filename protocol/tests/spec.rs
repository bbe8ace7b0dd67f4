//! Keeps SPEC.md honest: every `hex` block in it must decode to the values the document states
//! (repeated here), and encoding those values must give exactly the bytes shown.

mod common;

use common::*;
use wiretrace_protocol::{decode, Message};

const SPEC: &str = include_str!("../SPEC.md");

enum Form {
    Datagram,
    Frame,
}

/// The examples of SPEC.md section 12, in document order, with the values stated there.
fn expected() -> [(Form, Message); 5] {
    [
        (Form::Datagram, example_centerline()),
        (Form::Datagram, example_heartbeat()),
        (Form::Datagram, example_no_wire()),
        (Form::Frame, example_no_wire()),
        (Form::Datagram, example_signed_heartbeat()),
    ]
}

/// The contents of every fenced block with info string `hex`, as bytes.
fn hex_blocks(markdown: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in markdown.lines() {
        let fence = line.trim();
        match current.as_mut() {
            None if fence == "```hex" => current = Some(Vec::new()),
            None => {}
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some(bytes) => bytes.extend(line.split_whitespace().map(|pair| {
                assert_eq!(pair.len(), 2, "SPEC.md hex must be space-separated byte pairs: {pair:?}");
                u8::from_str_radix(pair, 16).expect("SPEC.md hex block holds only hex bytes")
            })),
        }
    }
    assert!(current.is_none(), "unterminated hex block in SPEC.md");
    blocks
}

#[test]
fn every_spec_example_decodes_to_its_stated_values() {
    let blocks = hex_blocks(SPEC);
    let expected = expected();
    assert_eq!(blocks.len(), expected.len(), "hex blocks in SPEC.md vs. expectations here");
    for (index, (bytes, (form, msg))) in blocks.iter().zip(expected).enumerate() {
        let example = index + 1;
        match form {
            Form::Datagram => {
                assert_eq!(decode(bytes), Ok(msg.clone()), "hex block {example}");
                assert_eq!(&to_bytes(&msg), bytes, "hex block {example} re-encoded");
            }
            Form::Frame => {
                assert_eq!(decode_stream(bytes), [Ok(msg.clone())], "hex block {example}");
                assert_eq!(&to_frame(&msg), bytes, "hex block {example} re-encoded");
            }
        }
    }
}

#[test]
fn spec_states_the_constants() {
    use wiretrace_protocol::*;
    for (text, value) in [("MAX_MESSAGE_LEN", MAX_MESSAGE_LEN), ("MAX_FRAME_LEN", MAX_FRAME_LEN)] {
        assert!(SPEC.contains(text), "{text} missing from SPEC.md");
        assert!(SPEC.contains(&value.to_string()), "{text} = {value} missing from SPEC.md");
    }
    assert!(SPEC.contains("`0xE3069283`"), "CRC check value");
    assert!(SPEC.contains(&format!("at most {MAX_POINTS}")));
}
