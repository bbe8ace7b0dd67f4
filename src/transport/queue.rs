//! A bounded, drop-oldest queue between the pipeline and one sink.
//!
//! For a robot the newest centerline is the valuable one: when a sink falls behind, the
//! oldest waiting message goes, the drop is counted, and the producer never waits.

use std::sync::{Condvar, Mutex, PoisonError};

use heapless::Deque;
use wiretrace_protocol::Message;

use crate::time::Micros;

/// Messages a sink may have waiting before the oldest is dropped.
pub const QUEUE_DEPTH: usize = 8;

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
}

impl Default for SinkQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SinkQueue {
    /// An empty, open queue.
    pub fn new() -> Self {
        SinkQueue { state: Mutex::new(State { items: Deque::new(), closed: false, dropped: 0 }), ready: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `item`, dropping the oldest waiting item if the queue is full.
    pub fn push(&self, item: Outgoing) {
        let mut s = self.lock();
        if s.items.is_full() {
            s.items.pop_front();
            s.dropped += 1;
        }
        // Cannot fail: a slot was just freed if there was none.
        let _ = s.items.push_back(item);
        drop(s);
        self.ready.notify_one();
    }

    /// The oldest item, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<Outgoing> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
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
        let q = SinkQueue::new();
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
        let q = std::sync::Arc::new(SinkQueue::new());
        let q2 = std::sync::Arc::clone(&q);
        let t = std::thread::spawn(move || q2.pop().map(|o| o.message.seq));
        std::thread::sleep(std::time::Duration::from_millis(20));
        q.push(msg(42));
        assert_eq!(t.join().ok().flatten(), Some(42));
    }
}
