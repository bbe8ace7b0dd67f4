//! Optional real-time placement of the capture and processing threads: a CPU of their own,
//! and `SCHED_FIFO`, so nothing else on the box runs in their way. Each is used when the
//! process is permitted (root, `CAP_SYS_NICE`, or `LimitRTPRIO` in the systemd unit); when
//! not, the thread runs as it is and the log says why.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

/// Where and how a thread runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadPlacement {
    /// The only CPU the thread may run on.
    pub cpu: Option<usize>,
    /// `SCHED_FIFO` at this priority (1-99, higher first).
    pub fifo_priority: Option<u8>,
}

/// Why part of a placement could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// The CPU does not exist or the thread may not run there.
    #[error("cannot pin to CPU {cpu}: {source}")]
    Pin {
        /// The CPU asked for.
        cpu: usize,
        /// What the kernel said.
        source: nix::Error,
    },
    /// The priority is out of range for `SCHED_FIFO`.
    #[error("cannot run under SCHED_FIFO at priority {priority}: out of range")]
    FifoPriority {
        /// The priority asked for.
        priority: u8,
    },
    /// The process lacks the right to real-time scheduling, or the kernel refused it.
    #[error("cannot run under SCHED_FIFO at priority {priority}: {source}")]
    Fifo {
        /// The priority asked for.
        priority: u8,
        /// What the scheduler call said.
        source: thread_priority::Error,
    },
}

/// Applies `placement` to the calling thread. Every part is tried; what failed is returned
/// and the rest stays applied.
pub fn apply(placement: ThreadPlacement) -> Vec<PlacementError> {
    let mut failed = Vec::new();
    if let Some(cpu) = placement.cpu {
        let mut set = CpuSet::new();
        if let Err(source) = set.set(cpu).and_then(|()| sched_setaffinity(Pid::from_raw(0), &set)) {
            failed.push(PlacementError::Pin { cpu, source });
        }
    }
    if let Some(priority) = placement.fifo_priority {
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        match ThreadPriorityValue::try_from(priority) {
            Err(_) => failed.push(PlacementError::FifoPriority { priority }),
            Ok(value) => {
                let set =
                    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), fifo);
                if let Err(source) = set {
                    failed.push(PlacementError::Fifo { priority, source });
                }
            }
        }
    }
    failed
}

/// [`apply`], reporting to the log: what was applied, and what was not and why.
pub fn place(thread: &str, placement: ThreadPlacement) {
    if placement == ThreadPlacement::default() {
        return;
    }
    let failed = apply(placement);
    for e in &failed {
        tracing::warn!("{thread} thread: {e}; running without it");
    }
    if failed.is_empty() {
        tracing::info!("{thread} thread: {placement:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::sched_getaffinity;

    #[test]
    fn a_thread_is_pinned_to_the_cpu_it_asks_for() {
        let allowed = |set: CpuSet| (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect();
        let cpus: Vec<usize> = allowed(sched_getaffinity(Pid::from_raw(0)).expect("affinity"));
        let last = *cpus.last().expect("this thread may run somewhere");
        let (failed, now) = std::thread::spawn(move || {
            let failed = apply(ThreadPlacement { cpu: Some(last), fifo_priority: None });
            (failed.len(), allowed(sched_getaffinity(Pid::from_raw(0)).expect("affinity")))
        })
        .join()
        .expect("thread");
        assert_eq!((failed, now), (0, vec![last]));
    }

    #[test]
    fn what_cannot_be_applied_is_named() {
        let failed = std::thread::spawn(|| {
            let failed = apply(ThreadPlacement { cpu: Some(CpuSet::count() + 1), fifo_priority: Some(0) });
            failed.iter().map(ToString::to_string).collect::<Vec<_>>()
        })
        .join()
        .expect("thread");
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed[0].starts_with("cannot pin to CPU"), "{failed:?}");
        assert!(failed[1].contains("SCHED_FIFO at priority 0"), "{failed:?}");
    }

    #[test]
    fn fifo_is_applied_or_refused_with_the_reason() {
        let outcome = std::thread::spawn(|| {
            let failed = apply(ThreadPlacement { cpu: None, fifo_priority: Some(10) });
            let policy = thread_priority::thread_schedule_policy().expect("policy");
            (failed.iter().map(ToString::to_string).collect::<Vec<_>>(), policy)
        })
        .join()
        .expect("thread");
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        match outcome {
            (failed, policy) if failed.is_empty() => assert_eq!(policy, fifo),
            (failed, policy) => {
                assert_ne!(policy, fifo);
                assert!(failed[0].contains("SCHED_FIFO"), "{failed:?}");
            }
        }
    }
}
