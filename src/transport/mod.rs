//! Getting messages out: sinks (UDP, serial) fed in parallel through bounded queues, and the
//! receiving side used by `wiretrace rx` and the demo.
//!
//! Every sink runs on its own thread behind its own [`queue::SinkQueue`], so a slow or dead
//! sink loses its own oldest messages and never holds up the pipeline or the other sinks.

pub mod queue;
pub mod receiver;
pub mod serial;
pub mod udp;

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use wiretrace_protocol::{Body, Confidence, Message, StatusFlags};

use crate::time::Micros;
pub use queue::WhenFull;
use queue::{Outgoing, SinkQueue};

/// Why a sink could not send a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The message did not fit the encode buffer (cannot happen for messages built by
    /// wiretrace; kept so a bug shows as an error, not a panic).
    #[error("encoding failed: {0}")]
    Encode(#[from] wiretrace_protocol::EncodeError),
    /// The operating system refused to set the sink up.
    #[error("{target}: {source}")]
    Io {
        /// The sink's address or device.
        target: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The operating system refused a message. It names no target: it happens per message, so
    /// it must not allocate, and the sink's report that logs it has the target.
    #[error("write failed: {0}")]
    Write(std::io::Error),
    /// The device could not be opened.
    #[error("{target}: cannot open: {reason}")]
    Open {
        /// The device.
        target: String,
        /// What failed.
        reason: String,
    },
    /// The device failed and stays closed until its next reopen attempt. Without a target for
    /// the same reason as [`SinkError::Write`].
    #[error("closed after a failure, waiting to reopen")]
    Closed,
    /// The message's deadline had passed before it could be written; nothing was sent.
    #[error("past its deadline before it could be written")]
    Late,
}

/// A destination for messages. `send` may block (a serial line at 115200 baud does); it runs
/// on the sink's own thread.
pub trait Sink: Send + 'static {
    /// Where messages go, for logs and reports.
    fn target(&self) -> String;
    /// Sends one message.
    fn send(&mut self, message: &Message) -> Result<(), SinkError>;
    /// Sends one message that must be handed over by `deadline` (CLOCK_MONOTONIC). A sink
    /// whose write can block (a serial line whose buffer is full) gives up at the deadline
    /// rather than hand the message over late. The default ignores it: a datagram is handed
    /// over at once.
    fn send_by(&mut self, message: &Message, deadline: Option<Micros>) -> Result<(), SinkError> {
        let _ = deadline;
        self.send(message)
    }
}

/// Counters and latency of one sink.
#[derive(Debug, Clone)]
pub struct SinkReport {
    /// Where messages went.
    pub target: String,
    /// Messages handed to the OS.
    pub sent: u64,
    /// Messages dropped because the sink's queue was full.
    pub dropped: u64,
    /// Messages that failed to send.
    pub errors: u64,
    /// Centerlines that reached this sink after their deadline and went out as deadline-missed
    /// messages instead.
    pub deadline_misses: u64,
    /// Capture to hand-off latency of centerline messages (µs).
    pub latency_us: Histogram<u64>,
}

impl std::fmt::Display for SinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sink {}: {} sent, {} dropped, {} errors, {} late; capture to sink p50 {} us, p99 {} us",
            self.target,
            self.sent,
            self.dropped,
            self.errors,
            self.deadline_misses,
            self.latency_us.value_at_quantile(0.5),
            self.latency_us.value_at_quantile(0.99)
        )
    }
}

impl SinkReport {
    fn new(target: String) -> Self {
        SinkReport {
            target,
            sent: 0,
            dropped: 0,
            errors: 0,
            deadline_misses: 0,
            // 1 µs to 100 s at 3 significant digits: allocated once here, recording never allocates.
            latency_us: Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant histogram bounds are valid"),
        }
    }
}

/// Turns a centerline into its deadline-missed message: no points, no confidence, `no_wire`
/// and `deadline_missed` added to its status (as SPEC.md's example). Returns false when it
/// already was one.
pub fn late_to_missed(c: &mut wiretrace_protocol::Centerline) -> bool {
    if c.status.contains(StatusFlags::DEADLINE_MISSED) {
        return false;
    }
    c.points.clear();
    c.confidence = Confidence(0);
    c.status.insert(StatusFlags::NO_WIRE | StatusFlags::DEADLINE_MISSED);
    true
}

/// The running sinks: one thread and one queue each.
#[derive(Debug)]
pub struct Sinks {
    queues: Vec<Arc<SinkQueue>>,
    reports: Vec<Arc<Mutex<SinkReport>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Sinks {
    /// Starts a thread per sink, each behind its own [`SinkQueue`]. Each sink stamps a
    /// centerline's `latency_us` just before encoding it, so time spent waiting in the queue
    /// is counted and a message that waited is not passed off as fresh. With a `deadline`
    /// (capture to hand-off), a centerline already past it when its sink takes it goes out as
    /// a deadline-missed message without points ([`late_to_missed`]), and heartbeats carry the
    /// sink's own count of those on top of the pipeline's. A centerline with points goes out
    /// through [`Sink::send_by`] with its deadline, so a write that would block past it gives
    /// up instead.
    pub fn start(sinks: Vec<Box<dyn Sink>>, when_full: WhenFull, deadline: Option<Duration>) -> std::io::Result<Self> {
        let budget_us = deadline.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut this = Sinks { queues: Vec::new(), reports: Vec::new(), threads: Vec::new() };
        for (i, mut sink) in sinks.into_iter().enumerate() {
            let queue = Arc::new(SinkQueue::new(when_full));
            let report = Arc::new(Mutex::new(SinkReport::new(sink.target())));
            let (q, r) = (Arc::clone(&queue), Arc::clone(&report));
            let thread = std::thread::Builder::new().name(format!("sink-{i}")).spawn(move || {
                let mut late = 0u64;
                while let Some(mut out) = q.pop() {
                    let mut deadline = None;
                    match &mut out.message.body {
                        Body::Centerline(c) => {
                            let latency_us = Micros::now().since(out.capture);
                            c.latency_us = u32::try_from(latency_us).unwrap_or(u32::MAX);
                            if budget_us.is_some_and(|b| latency_us > b) && late_to_missed(c) {
                                late += 1;
                            }
                            if !c.points.is_empty() {
                                deadline = budget_us.map(|b| Micros(out.capture.0.saturating_add(b)));
                            }
                        }
                        Body::Heartbeat(h) => {
                            h.deadline_misses =
                                h.deadline_misses.saturating_add(u32::try_from(late).unwrap_or(u32::MAX));
                        }
                    }
                    let result = sink.send_by(&out.message, deadline);
                    let done = Micros::now();
                    let mut rep = r.lock().unwrap_or_else(PoisonError::into_inner);
                    rep.deadline_misses = late;
                    match result {
                        Ok(()) => {
                            rep.sent += 1;
                            if matches!(out.message.body, Body::Centerline(_)) {
                                rep.latency_us.saturating_record(done.since(out.capture).max(1));
                            }
                        }
                        Err(e) => {
                            if rep.errors == 0 {
                                tracing::warn!("sink {}: {e}", rep.target);
                            }
                            rep.errors += 1;
                        }
                    }
                }
            })?;
            this.queues.push(queue);
            this.reports.push(report);
            this.threads.push(thread);
        }
        Ok(this)
    }

    /// Queues `message` on every sink; never blocks on a sink.
    pub fn broadcast(&self, message: &Message, capture: Micros) {
        for q in &self.queues {
            q.push(Outgoing { message: message.clone(), capture });
        }
    }

    /// Lets every sink drain its queue, stops the threads and returns their reports.
    pub fn finish(self) -> Vec<SinkReport> {
        for q in &self.queues {
            q.close();
        }
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a sink thread panicked");
            }
        }
        self.reports
            .iter()
            .zip(&self.queues)
            .map(|(r, q)| {
                let mut rep = r.lock().unwrap_or_else(PoisonError::into_inner).clone();
                rep.dropped = q.dropped();
                rep
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::time::{Duration, Instant};
    use wiretrace_protocol::Heartbeat;

    /// A sink whose device hangs: every send blocks until the test lets go (or, should the
    /// test itself be stuck, for long enough to fail its timing check instead of hanging).
    struct Hung(Receiver<()>);

    impl Sink for Hung {
        fn target(&self) -> String {
            "hung".into()
        }
        fn send(&mut self, _: &Message) -> Result<(), SinkError> {
            let _ = self.0.recv_timeout(Duration::from_secs(10));
            Ok(())
        }
    }

    /// A sink that hands every sequence number to the test.
    struct Recording(Sender<u32>);

    impl Sink for Recording {
        fn target(&self) -> String {
            "recording".into()
        }
        fn send(&mut self, m: &Message) -> Result<(), SinkError> {
            let _ = self.0.send(m.seq);
            Ok(())
        }
    }

    /// A sink that takes `delay` per message and hands every message to the test.
    struct Slow(Duration, Sender<Message>);

    impl Sink for Slow {
        fn target(&self) -> String {
            "slow".into()
        }
        fn send(&mut self, m: &Message) -> Result<(), SinkError> {
            std::thread::sleep(self.0);
            let _ = self.1.send(m.clone());
            Ok(())
        }
    }

    #[test]
    fn a_centerline_that_waited_past_its_deadline_in_a_queue_goes_out_as_missed() {
        let (tx, rx) = channel();
        let budget = Duration::from_millis(15);
        let sinks = Sinks::start(vec![Box::new(Slow(Duration::from_millis(40), tx))], WhenFull::Wait, Some(budget))
            .expect("start sinks");
        let mut points = heapless::Vec::new();
        let _ = points.push(wiretrace_protocol::SubpixelPoint::from_px(10.0, 20.0));
        let _ = points.push(wiretrace_protocol::SubpixelPoint::from_px(30.0, 40.0));
        for seq in 0..3u32 {
            let c = wiretrace_protocol::Centerline {
                frame: seq,
                capture_us: 0,
                latency_us: 0,
                status: StatusFlags::OK,
                confidence: Confidence(200),
                points: points.clone(),
            };
            sinks.broadcast(&Message { seq, body: Body::Centerline(c), auth: None }, Micros::now());
        }
        sinks.broadcast(&Message { seq: 3, body: Body::Heartbeat(Heartbeat::default()), auth: None }, Micros(0));
        let reports = sinks.finish();
        let sent: Vec<Message> = rx.try_iter().collect();
        let mut late = 0;
        for m in &sent[..3] {
            let Body::Centerline(c) = &m.body else { panic!("expected a centerline: {m:?}") };
            if c.latency_us > 15_000 {
                late += 1;
                assert!(c.status.contains(StatusFlags::DEADLINE_MISSED | StatusFlags::NO_WIRE), "{c:?}");
                assert!(c.points.is_empty(), "a late centerline left with its points: {c:?}");
            } else {
                assert!(c.status.is_ok() && c.points.len() == 2, "{c:?}");
            }
        }
        // The first goes out at once; the others wait 40 ms and more behind it.
        assert!(late >= 2, "{sent:?}");
        assert_eq!(reports[0].deadline_misses, late);
        let Body::Heartbeat(h) = &sent[3].body else { panic!("expected the heartbeat: {:?}", sent[3]) };
        assert_eq!(u64::from(h.deadline_misses), late, "the heartbeat carries the sink's own count");
    }

    #[test]
    fn a_hung_sink_delays_neither_the_pipeline_nor_the_other_sinks() {
        let (release, hung) = channel();
        let (seen_tx, seen) = channel();
        let sinks = Sinks::start(vec![Box::new(Hung(hung)), Box::new(Recording(seen_tx))], WhenFull::DropOldest, None)
            .expect("start sinks");
        let started = Instant::now();
        for seq in 0..100u32 {
            let message = Message { seq, body: Body::Heartbeat(Heartbeat::default()), auth: None };
            sinks.broadcast(&message, Micros(0));
            // The healthy sink keeps up with the producer: it never falls a queue behind.
            assert_eq!(seen.recv_timeout(Duration::from_secs(5)), Ok(seq));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(release);
        let reports = sinks.finish();
        let hung = reports.iter().find(|r| r.target == "hung").expect("hung report");
        let healthy = reports.iter().find(|r| r.target == "recording").expect("recording report");
        assert_eq!((healthy.sent, healthy.dropped), (100, 0));
        assert!(hung.dropped >= 100 - 1 - queue::QUEUE_DEPTH as u64, "the hung sink drops its oldest: {hung:?}");
        assert_eq!(hung.sent + hung.dropped, 100);
    }
}
