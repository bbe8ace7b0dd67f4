//! Reassembly of COBS frames from a byte stream.

use crate::{decode, DecodeError, Message, MAX_FRAME_LEN};

/// Byte that ends every frame; COBS guarantees it appears nowhere else.
const DELIMITER: u8 = 0x00;

/// Decodes messages from a byte stream of COBS frames, each ending in `0x00`, in a fixed buffer
/// of `N` bytes.
///
/// The default `N` holds every frame of this version. Receivers that want to read fields a newer
/// minor version appends may choose a larger `N`; longer frames yield
/// [`DecodeError::FrameTooLong`].
///
/// Every delimiter resynchronises: garbage between frames costs at most the frame it runs into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDecoder<const N: usize = MAX_FRAME_LEN> {
    frame: heapless::Vec<u8, N>,
    discarding: bool,
}

impl<const N: usize> StreamDecoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self { frame: heapless::Vec::new(), discarding: false }
    }

    /// One byte in; `Some(result)` when a delimiter closes a non-empty frame, or when a frame
    /// outgrows the buffer (reported once; bytes up to the next delimiter are then dropped).
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, DecodeError>> {
        if byte == DELIMITER {
            let discarded = core::mem::replace(&mut self.discarding, false);
            if discarded || self.frame.is_empty() {
                return None;
            }
            let result = decode_cobs(&mut self.frame);
            self.frame.clear();
            Some(result)
        } else if self.discarding {
            None
        } else if self.frame.push(byte).is_err() {
            self.frame.clear();
            self.discarding = true;
            Some(Err(DecodeError::FrameTooLong))
        } else {
            None
        }
    }

    /// A chunk of any length in; calls `on_result` for every frame completed, in order.
    pub fn feed(&mut self, bytes: &[u8], mut on_result: impl FnMut(Result<Message, DecodeError>)) {
        for &byte in bytes {
            if let Some(result) = self.push(byte) {
                on_result(result);
            }
        }
    }

    /// Drops any partial frame, e.g. when the link reopens.
    pub fn reset(&mut self) {
        self.frame.clear();
        self.discarding = false;
    }
}

impl<const N: usize> Default for StreamDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Undoes COBS in place, then decodes the message.
fn decode_cobs(frame: &mut [u8]) -> Result<Message, DecodeError> {
    let len = cobs::decode_in_place(frame).map_err(|_| DecodeError::BadCobs)?;
    decode(frame.get(..len).ok_or(DecodeError::BadCobs)?)
}
