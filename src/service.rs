//! The service's side of systemd (`Type=notify`): `READY=1` once running, `STATUS=` lines,
//! `WATCHDOG=1` from the processing loop, `STOPPING=1` at the end.
//!
//! What feeds the watchdog: the processing loop coming round (after every frame, and at least
//! every half watchdog interval while it waits for one) while the capture thread is not stuck
//! inside the source. So:
//! - frames flowing: fed;
//! - no frames because the camera is quiet (X-ray off, cable out): a live source returns a
//!   timeout error within its frame timeout, heartbeats go out, and the watchdog is fed, since
//!   a restart would not bring the frames back and would interrupt the heartbeats the robot
//!   relies on to know there is no signal;
//! - the processing loop hung (a deadlock, a stage that never returns): nothing calls
//!   [`ServiceMonitor::looped`], so nothing feeds the watchdog, and systemd restarts the
//!   service;
//! - the capture thread hung inside the source (a read that never returns, a driver stuck in
//!   `VIDIOC_DQBUF`) for longer than `watchdog.capture_stall_ms`: the loop still comes round
//!   and sends heartbeats and `STATUS=`, but stops feeding the watchdog, and systemd restarts
//!   the service.
//!
//! The messages sent from the processing loop are formatted into a buffer on the stack and sent
//! over a socket connected once at start (`sd_notify::notify` opens a socket and builds a
//! `String` per call), so the hot path allocates nothing.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::pipeline::runner::{Progress, RunMonitor};
use crate::time::Micros;

/// Largest notification datagram: the `STATUS=` line with all the sinks fits.
const MESSAGE_BYTES: usize = 1024;

/// Interval of `STATUS=` updates when systemd set no watchdog.
pub const STATUS_PERIOD: Duration = Duration::from_secs(2);

/// Why the notification socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` names a socket that cannot be connected to.
    #[error("cannot connect to the notification socket {path}")]
    Connect {
        /// The socket's path (`@` for the abstract namespace).
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The sd_notify socket, connected once.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
}

impl Notifier {
    /// Connects to `NOTIFY_SOCKET`; `None` when it is not set (not started by systemd).
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()).map(|p| Self::connect(&p)).transpose()
    }

    /// Connects to the socket at `path`; a leading `@` means the abstract namespace.
    pub fn connect(path: &OsStr) -> Result<Self, NotifyError> {
        let error = |source| NotifyError::Connect { path: path.to_string_lossy().into_owned(), source };
        let socket = UnixDatagram::unbound().map_err(error)?;
        let bytes = path.as_bytes();
        let address = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name),
            None => SocketAddr::from_pathname(path),
        }
        .map_err(error)?;
        socket.connect_addr(&address).map_err(error)?;
        // A notification that cannot go out at once is dropped: the processing loop never
        // waits for systemd.
        socket.set_nonblocking(true).map_err(error)?;
        Ok(Notifier { socket })
    }

    /// Sends `states` in one datagram, one per line. Allocates nothing.
    pub fn send(&self, states: &[NotifyState<'_>]) -> std::io::Result<()> {
        let mut message = Text::<MESSAGE_BYTES>::new();
        for state in states {
            let _ = writeln!(message, "{state}");
        }
        self.socket.send(message.as_bytes()).map(|_| ())
    }
}

/// Text in a fixed buffer; what does not fit is cut at a character boundary.
#[derive(Debug)]
struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    fn new() -> Self {
        Text { bytes: [0; N], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only whole characters are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// How the service is doing, as the status LED shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Starting or stopped: nothing to show.
    Stopped = 0,
    /// Frames flow and make their deadlines.
    Running = 1,
    /// No frames, deadline misses, or capture hung.
    Degraded = 2,
}

impl Health {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Health::Running,
            2 => Health::Degraded,
            _ => Health::Stopped,
        }
    }
}

/// What the monitor remembers between two beats.
#[derive(Debug, Default)]
struct Beat {
    last: Option<Instant>,
    processed: u64,
    misses: u64,
}

/// The service's [`RunMonitor`]: feeds the systemd watchdog and updates `STATUS=` at each beat
/// (half the watchdog interval, or [`STATUS_PERIOD`]), and publishes the service's
/// [`Health`] for the status LED.
#[derive(Debug)]
pub struct ServiceMonitor {
    notifier: Option<Notifier>,
    watchdog: Option<Duration>,
    capture_stall: Duration,
    beat_period: Duration,
    sinks: String,
    beat: Mutex<Beat>,
    health: AtomicU8,
    last_loop_us: AtomicU64,
}

impl ServiceMonitor {
    /// `watchdog` is systemd's interval (`WATCHDOG_USEC`, from `sd_notify::watchdog_enabled`);
    /// `capture_stall` how long capture may wait in the source before it counts as hung;
    /// `sinks` names the sinks for the status line.
    pub fn new(
        notifier: Option<Notifier>,
        watchdog: Option<Duration>,
        capture_stall: Duration,
        sinks: &[String],
    ) -> Self {
        let watchdog = watchdog.filter(|w| !w.is_zero());
        ServiceMonitor {
            notifier,
            watchdog,
            capture_stall,
            beat_period: watchdog.map_or(STATUS_PERIOD, |w| w / 2),
            sinks: sinks.join(", "),
            beat: Mutex::new(Beat::default()),
            health: AtomicU8::new(Health::Stopped as u8),
            last_loop_us: AtomicU64::new(0),
        }
    }

    /// The service's health as of the last beat; [`Health::Degraded`] when the processing
    /// loop has not come round for two beats.
    pub fn health(&self) -> Health {
        let health = Health::from_u8(self.health.load(Ordering::Relaxed));
        let last = self.last_loop_us.load(Ordering::Relaxed);
        let silent = Duration::from_micros(Micros::now().since(Micros(last)));
        if health != Health::Stopped && silent > self.beat_period * 2 {
            Health::Degraded
        } else {
            health
        }
    }

    /// True when `watchdog.capture_stall_ms` is not below systemd's `WatchdogSec=`: a capture
    /// stuck in the source then keeps the watchdog fed longer than systemd's own limit, and the
    /// restart comes only after both have passed.
    pub fn stall_outlasts_watchdog(&self) -> bool {
        self.watchdog.is_some_and(|w| self.capture_stall >= w)
    }

    /// Says `STOPPING=1` and marks the service stopped.
    pub fn stopping(&self) {
        self.health.store(Health::Stopped as u8, Ordering::Relaxed);
        self.notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    fn notify(&self, states: &[NotifyState<'_>]) {
        if let Some(n) = &self.notifier {
            // systemd may be gone at shutdown; there is no one else to tell.
            let _ = n.send(states);
        }
    }
}

impl RunMonitor for ServiceMonitor {
    fn started(&self) {
        self.last_loop_us.store(Micros::now().0, Ordering::Relaxed);
        self.health.store(Health::Degraded as u8, Ordering::Relaxed);
        let mut status = Text::<MESSAGE_BYTES>::new();
        let _ = write!(status, "started, waiting for frames; sinks: {}", self.sinks);
        self.notify(&[NotifyState::Ready, NotifyState::Status(status.as_str())]);
    }

    fn looped(&self, p: &Progress) {
        let now = Instant::now();
        self.last_loop_us.store(Micros::now().0, Ordering::Relaxed);
        let mut beat = self.beat.lock().unwrap_or_else(PoisonError::into_inner);
        if beat.last.is_some_and(|last| now.duration_since(last) < self.beat_period) {
            return;
        }
        let hung = p.capture_waiting >= self.capture_stall;
        let (new_frames, new_misses) = (p.processed - beat.processed, p.deadline_misses - beat.misses);
        *beat = Beat { last: Some(now), processed: p.processed, misses: p.deadline_misses };
        drop(beat);
        let health = if hung || new_frames == 0 || new_misses > 0 { Health::Degraded } else { Health::Running };
        self.health.store(health as u8, Ordering::Relaxed);

        let mut status = Text::<MESSAGE_BYTES>::new();
        let _ = if hung {
            write!(
                status,
                "capture hung: no frame from the source for {:.1} s, watchdog not fed; ",
                p.capture_waiting.as_secs_f32()
            )
        } else if new_frames == 0 {
            write!(status, "no frames; ")
        } else if new_misses > 0 {
            write!(status, "degraded: {new_misses} deadline misses in the last {} ms; ", self.beat_period.as_millis())
        } else {
            write!(status, "running; ")
        };
        let _ = write!(
            status,
            "{} frames, {} processed, {} deadline missed, {} dropped, {} heartbeats; sinks: {}",
            p.frames_seen, p.processed, p.deadline_misses, p.dropped, p.heartbeats, self.sinks
        );
        if !hung && self.watchdog.is_some() {
            self.notify(&[NotifyState::Watchdog, NotifyState::Status(status.as_str())]);
        } else {
            self.notify(&[NotifyState::Status(status.as_str())]);
        }
    }

    fn until_due(&self) -> Duration {
        let beat = self.beat.lock().unwrap_or_else(PoisonError::into_inner);
        beat.last.map_or(Duration::ZERO, |last| (last + self.beat_period).saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket standing in for systemd's, and a monitor connected to it.
    fn systemd(watchdog: Option<Duration>) -> (tempfile::TempDir, UnixDatagram, ServiceMonitor) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let notifier = Notifier::connect(path.as_os_str()).expect("connect");
        let sinks = ["udp 127.0.0.1:7400".to_string(), "serial /dev/ttyTHS0".to_string()];
        (dir, socket, ServiceMonitor::new(Some(notifier), watchdog, Duration::from_millis(500), &sinks))
    }

    fn received(socket: &UnixDatagram) -> Vec<String> {
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        while let Ok(n) = socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn ready_then_watchdog_with_status_once_per_beat() {
        let (_dir, socket, monitor) = systemd(Some(Duration::from_secs(10)));
        monitor.started();
        let progress = Progress { frames_seen: 10, processed: 9, dropped: 1, ..Progress::default() };
        monitor.looped(&progress);
        monitor.looped(&progress);
        let got = received(&socket);
        assert_eq!(got.len(), 2, "one beat per half watchdog interval: {got:?}");
        assert!(got[0].starts_with("READY=1\nSTATUS=started"), "{got:?}");
        assert_eq!(
            got[1],
            "WATCHDOG=1\nSTATUS=running; 10 frames, 9 processed, 0 deadline missed, 1 dropped, 0 heartbeats; \
             sinks: udp 127.0.0.1:7400, serial /dev/ttyTHS0\n"
        );
        assert_eq!(monitor.health(), Health::Running);
        let due = monitor.until_due();
        assert!(due > Duration::from_millis(4900) && due <= Duration::from_secs(5), "half the watchdog: {due:?}");
        monitor.stopping();
        assert_eq!(received(&socket), ["STOPPING=1\nSTATUS=stopping\n"]);
        assert_eq!(monitor.health(), Health::Stopped);
    }

    #[test]
    fn a_hung_capture_gets_status_but_no_watchdog() {
        let (_dir, socket, monitor) = systemd(Some(Duration::from_millis(2)));
        monitor.started();
        let hung = Progress { processed: 3, capture_waiting: Duration::from_millis(700), ..Progress::default() };
        monitor.looped(&hung);
        let got = received(&socket);
        assert!(got[1].starts_with("STATUS=capture hung: no frame from the source for 0.7 s"), "{got:?}");
        assert!(!got.iter().any(|m| m.contains("WATCHDOG")), "{got:?}");
        assert_eq!(monitor.health(), Health::Degraded);
        assert!(monitor.stall_outlasts_watchdog(), "500 ms of stall against a 2 ms watchdog");
    }

    #[test]
    fn without_a_watchdog_status_still_goes_out_and_quiet_is_degraded() {
        let (_dir, socket, monitor) = systemd(None);
        monitor.started();
        assert_eq!(monitor.until_due(), Duration::ZERO, "the first beat is due at once");
        monitor.looped(&Progress::default());
        let got = received(&socket);
        assert!(got[1].starts_with("STATUS=no frames; "), "{got:?}");
        assert_eq!(monitor.health(), Health::Degraded);
        assert!(monitor.until_due() > STATUS_PERIOD - Duration::from_millis(100));
        assert!(!monitor.stall_outlasts_watchdog(), "no watchdog, nothing to outlast");
    }

    #[test]
    fn pings_stay_half_a_watchdog_apart_when_frames_come_just_after_a_beat_and_heartbeats_are_rare() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        use crate::capture::memory::MemorySource;
        use crate::frame::Frame;
        use crate::pipeline::runner::{run, RunOptions};
        use crate::pipeline::PipelineConfig;

        // Pings due every 200 ms; a frame every 180 ms lands just after most beats, which used to
        // push the next ping a whole period past that frame (up to 360 ms apart). 100 ms of the
        // margin are for a machine busy with other tests.
        let (_dir, socket, monitor) = systemd(Some(Duration::from_millis(400)));
        socket.set_nonblocking(false).expect("blocking");
        socket.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        let frames = (0..14)
            .map(|i| {
                let mut f = Frame::with_size(64, 64);
                f.maxval = 4095;
                f.pixels.fill(2000);
                f.index = i;
                f
            })
            .collect();
        let options = RunOptions {
            heartbeat_period: Duration::from_secs(60),
            monitor: Some(Arc::new(monitor) as Arc<dyn RunMonitor>),
            ..RunOptions::default()
        };
        let pings = std::thread::scope(|scope| {
            let listener = scope.spawn(|| {
                let mut buf = [0u8; 2048];
                let mut at = Vec::new();
                while let Ok(n) = socket.recv(&mut buf) {
                    if buf[..n].starts_with(b"WATCHDOG=1") {
                        at.push(Instant::now());
                    }
                }
                at
            });
            let source = Box::new(MemorySource::new(frames, 1000.0 / 180.0));
            run(source, &PipelineConfig::default(), Vec::new(), &options, &AtomicBool::new(false)).expect("run");
            listener.join().expect("listener")
        });
        assert!(pings.len() >= 10, "{} pings in 2.5 s", pings.len());
        let longest = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        assert!(longest < Duration::from_millis(300), "pings {longest:?} apart, half the watchdog is 200 ms");
    }

    #[test]
    fn an_abstract_socket_name_is_understood() {
        let name = format!("wiretrace-test-{}", std::process::id());
        let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).expect("name"))
            .expect("bind abstract");
        let notifier = Notifier::connect(OsStr::new(&format!("@{name}"))).expect("connect");
        notifier.send(&[NotifyState::Ready]).expect("send");
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let mut t = Text::<5>::new();
        assert!(write!(t, "abcé€").is_err());
        assert_eq!(t.as_str(), "abcé");
    }
}
