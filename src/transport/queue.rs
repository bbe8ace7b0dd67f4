//! A bounded queue between the pipeline and one sink.
//!
//! For a robot the newest centerline is the valuable one: when a sink falls behind, the
//! oldest waiting message goes, the drop is counted, and the producer never waits. A scored
//! run (`replay --fast`) must account for every frame instead, so there the producer waits.

use std::sync::{Condvar, Mutex, PoisonError};

use heapless::Deque;
use wiretrace_protocol::Message;

use crate::time::Micros;

/// Messages a sink may have waiting. Small on purpose: at 115200 baud a centerline takes
/// about 14 ms to leave, and a deep queue would only deliver older news.
pub const QUEUE_DEPTH: usize = 4;

/// What a full queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the oldest waiting message and count it (live operation).
    DropOldest,
    /// Make the producer wait (evaluation: every message must arrive).
    Wait,
}

/// A message on its way to a sink, with the capture time of its frame.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message.
    pub message: Message,
    /// Capture time of the frame it describes (0 for heartbeats).
    pub capture: Micros,
}

#[derive(Debug)]
struct State {
    items: Deque<Outgoing, QUEUE_DEPTH>,
    closed: bool,
    dropped: u64,
}

/// Fixed-capacity queue: no allocation after creation.
#[derive(Debug)]
pub struct SinkQueue {
    state: Mutex<State>,
    ready: Condvar,
    when_full: WhenFull,
}

impl SinkQueue {
    /// An empty, open queue.
    pub fn new(when_full: WhenFull) -> Self {
        SinkQueue {
            state: Mutex::new(State { items: Deque::new(), closed: false, dropped: 0 }),
            ready: Condvar::new(),
            when_full,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `item`; when the queue is full, drops the oldest item or waits, as configured.
    pub fn push(&self, item: Outgoing) {
        let mut s = self.lock();
        if self.when_full == WhenFull::Wait {
            while s.items.is_full() && !s.closed {
                s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
        }
        if s.items.is_full() {
            s.items.pop_front();
            s.dropped += 1;
        }
        // Cannot fail: a slot was just freed if there was none.
        let _ = s.items.push_back(item);
        drop(s);
        self.ready.notify_all();
    }

    /// The oldest item, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<Outgoing> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                drop(s);
                self.ready.notify_all();
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// No more items will come; `pop` drains what is left, then returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Items dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiretrace_protocol::{Body, Heartbeat};

    fn msg(seq: u32) -> Outgoing {
        Outgoing {
            message: Message { seq, body: Body::Heartbeat(Heartbeat::default()), auth: None },
            capture: Micros(0),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let q = SinkQueue::new(WhenFull::DropOldest);
        for seq in 0..(QUEUE_DEPTH as u32 + 3) {
            q.push(msg(seq));
        }
        q.close();
        assert_eq!(q.dropped(), 3);
        let seqs: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|o| o.message.seq).collect();
        assert_eq!(seqs, (3..QUEUE_DEPTH as u32 + 3).collect::<Vec<_>>());
    }

    #[test]
    fn pop_waits_for_a_push_from_another_thread() {
        let q = std::sync::Arc::new(SinkQueue::new(WhenFull::DropOldest));
        let q2 = std::sync::Arc::clone(&q);
        let t = std::thread::spawn(move || q2.pop().map(|o| o.message.seq));
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.push(msg(42));
        assert_eq!(t.join().ok().flatten(), Some(42));
    }

    #[test]
    fn a_waiting_queue_loses_nothing() {
        let q = std::sync::Arc::new(SinkQueue::new(WhenFull::Wait));
        let q2 = std::sync::Arc::clone(&q);
        let producer = std::thread::spawn(move || {
            for seq in 0..50 {
                q2.push(msg(seq));
            }
            q2.close();
        });
        let mut got = Vec::new();
        while let Some(o) = q.pop() {
            got.push(o.message.seq);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(producer.join().is_ok());
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(q.dropped(), 0);
    }
}
