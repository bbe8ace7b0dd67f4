//! Time on the box's monotonic clock, in microseconds.
//!
//! Capture timestamps travel in packets, so they must be absolute values of one clock that
//! receivers on the same box can also read: `CLOCK_MONOTONIC`, which `std::time::Instant` hides.

use nix::time::{clock_gettime, ClockId};

/// Microseconds on `CLOCK_MONOTONIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub u64);

impl Micros {
    /// Now on `CLOCK_MONOTONIC`.
    pub fn now() -> Self {
        // CLOCK_MONOTONIC cannot fail on Linux for a valid clock id; 0 keeps the type total.
        clock_gettime(ClockId::CLOCK_MONOTONIC)
            .map(|t| Micros(t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000))
            .unwrap_or_default()
    }

    /// Microseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Micros) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
