//! The receiving side: decodes datagrams or a byte stream, checks sequence numbers and
//! counts what went wrong. This is the reference a robot engineer checks their wiring with.

use std::io::{ErrorKind, Read};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wiretrace_protocol::{decode, Body, DecodeError, Message, StreamDecoder};

/// What a receiver counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RxStats {
    /// Messages decoded.
    pub messages: u64,
    /// Centerline messages among them.
    pub centerlines: u64,
    /// Heartbeats among them.
    pub heartbeats: u64,
    /// Frames or datagrams whose CRC did not match.
    pub crc_failures: u64,
    /// Other damage in transit: too short, bad COBS, a frame too long for the buffer.
    pub damaged: u64,
    /// Intact messages this receiver cannot use: another major version, reserved flags, a
    /// malformed body. They point at a sender of another version, not at the line.
    pub incompatible: u64,
    /// Times a byte stream was resynchronised after a damaged frame.
    pub resyncs: u64,
    /// Messages of a kind newer than this receiver (skipped, but their sequence numbers count).
    pub unknown_kinds: u64,
    /// Jumps in the sequence number.
    pub seq_gaps: u64,
    /// Messages missing according to those jumps.
    pub missing: u64,
}

/// Tracks sequence numbers and counters over one link.
#[derive(Debug, Default)]
pub struct Receiver {
    stats: RxStats,
    last_seq: Option<u32>,
}

impl Receiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one decode result; returns the message when there is one. `stream` says the
    /// result came from a byte stream, where every error means a resynchronisation.
    pub fn accept(&mut self, result: Result<Message, DecodeError>, stream: bool) -> Option<Message> {
        match result {
            Ok(message) => {
                self.stats.messages += 1;
                match message.body {
                    Body::Centerline(_) => self.stats.centerlines += 1,
                    Body::Heartbeat(_) => self.stats.heartbeats += 1,
                }
                self.track(message.seq);
                Some(message)
            }
            Err(DecodeError::UnknownKind { seq, .. }) => {
                self.stats.unknown_kinds += 1;
                self.track(seq);
                None
            }
            Err(e) => {
                match e {
                    DecodeError::BadCrc { .. } => self.stats.crc_failures += 1,
                    _ if e.is_transmission_error() => self.stats.damaged += 1,
                    _ => self.stats.incompatible += 1,
                }
                if stream && e.is_transmission_error() {
                    self.stats.resyncs += 1;
                }
                tracing::debug!("rejected: {e}");
                None
            }
        }
    }

    /// Counts the messages missing before `seq` (u32, wrapping; a step back is a restarted
    /// sender, not a gap).
    fn track(&mut self, seq: u32) {
        if let Some(last) = self.last_seq {
            let step = seq.wrapping_sub(last);
            if step > 1 && step < u32::MAX / 2 {
                self.stats.seq_gaps += 1;
                self.stats.missing += u64::from(step - 1);
            }
        }
        self.last_seq = Some(seq);
    }

    /// Counters so far.
    pub fn stats(&self) -> RxStats {
        self.stats
    }
}

/// When a receive loop stops.
#[derive(Debug, Clone, Copy)]
pub struct StopWhen<'a> {
    /// Set from elsewhere (a signal handler) to stop.
    pub stop: &'a AtomicBool,
    /// Stop after this long without a message, counted from the first message.
    pub idle: Option<Duration>,
}

impl StopWhen<'_> {
    fn reached(&self, last_message: Option<Instant>) -> bool {
        self.stop.load(Ordering::Relaxed)
            || matches!((self.idle, last_message), (Some(idle), Some(t)) if t.elapsed() >= idle)
    }
}

/// How often a blocked read wakes up to check whether to stop.
const POLL: Duration = Duration::from_millis(50);

/// Largest UDP payload: a newer minor version may send longer messages than this one knows.
const MAX_DATAGRAM: usize = 65_536;

/// Receives datagrams on `socket` until `until` says stop; counts into `rx` and calls
/// `on_message` for each message. The counters stay with the caller, also when this fails.
pub fn receive_udp(
    socket: &UdpSocket,
    rx: &mut Receiver,
    until: StopWhen<'_>,
    mut on_message: impl FnMut(&Message),
) -> std::io::Result<()> {
    socket.set_read_timeout(Some(POLL))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last = None;
    while !until.reached(last) {
        match socket.recv(&mut buf) {
            Ok(n) => {
                last = Some(Instant::now());
                if let Some(m) = rx.accept(decode(&buf[..n]), false) {
                    on_message(&m);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives COBS frames from a byte stream (a serial port) until `until` says stop or the
/// stream ends; counts into `rx`.
pub fn receive_stream(
    reader: &mut dyn Read,
    rx: &mut Receiver,
    until: StopWhen<'_>,
    mut on_message: impl FnMut(&Message),
) -> std::io::Result<()> {
    let mut decoder: StreamDecoder = StreamDecoder::new();
    let mut buf = [0u8; 512];
    let mut last = None;
    while !until.reached(last) {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                last = Some(Instant::now());
                decoder.feed(&buf[..n], |result| {
                    if let Some(m) = rx.accept(result, true) {
                        on_message(&m);
                    }
                });
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One message as a JSON line for `wiretrace rx --json` (see design.md, "Receiver output").
pub fn message_json(message: &Message) -> serde_json::Value {
    match &message.body {
        Body::Centerline(c) => {
            let points: Vec<[f32; 2]> = c.points.iter().map(|p| [p.x_px(), p.y_px()]).collect();
            serde_json::json!({
                "kind": "centerline",
                "frame": c.frame,
                "seq": message.seq,
                "status": c.status.to_string(),
                "capture_us": c.capture_us,
                "latency_us": c.latency_us,
                "confidence": c.confidence.as_unit(),
                "points": points,
            })
        }
        Body::Heartbeat(h) => serde_json::json!({
            "kind": "heartbeat",
            "seq": message.seq,
            "uptime_us": h.uptime_us,
            "frames_seen": h.frames_seen,
            "frames_dropped": h.frames_dropped,
            "deadline_misses": h.deadline_misses,
            "backend": h.backend.name(),
            "flags": h.flags.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiretrace_protocol::Heartbeat;

    fn hb(seq: u32) -> Result<Message, DecodeError> {
        Ok(Message { seq, body: Body::Heartbeat(Heartbeat::default()), auth: None })
    }

    #[test]
    fn sequence_gaps_count_missing_messages_and_wrap() {
        let mut rx = Receiver::new();
        for seq in [u32::MAX - 1, u32::MAX, 0, 3, 4] {
            rx.accept(hb(seq), false);
        }
        let s = rx.stats();
        assert_eq!((s.messages, s.heartbeats, s.seq_gaps, s.missing), (5, 5, 1, 2));
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut rx = Receiver::new();
        rx.accept(Err(DecodeError::BadCrc { received: 1, computed: 2 }), true);
        rx.accept(Err(DecodeError::BadCobs), true);
        rx.accept(Err(DecodeError::MalformedBody), true);
        let s = rx.stats();
        assert_eq!((s.crc_failures, s.damaged, s.incompatible, s.resyncs), (1, 1, 1, 2));
    }

    #[test]
    fn messages_of_unknown_kinds_keep_the_sequence_whole() {
        let mut rx = Receiver::new();
        rx.accept(hb(1), false);
        rx.accept(Err(DecodeError::UnknownKind { kind: 9, seq: 2 }), false);
        rx.accept(hb(3), false);
        let s = rx.stats();
        assert_eq!((s.messages, s.unknown_kinds, s.seq_gaps), (2, 1, 0));
    }
}
