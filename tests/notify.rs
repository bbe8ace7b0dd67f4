//! Issue 6: the service speaks systemd's notify protocol. The real binary runs as systemd would
//! start it (`NOTIFY_SOCKET`, `WATCHDOG_USEC`), with a unix datagram socket this test owns in
//! systemd's place: READY, STATUS and WATCHDOG arrive while frames flow; when the capture thread
//! hangs in a read that never returns, WATCHDOG stops while the process lives on (so systemd
//! would restart it); once the read returns, WATCHDOG resumes; SIGTERM ends it with STOPPING.
//!
//! The hang is a real one: a frame file of the sequence is replaced, after the service listed
//! it, by a FIFO that nobody writes, so opening it blocks as a read from a dead network mount
//! or a wedged driver would.

mod common;

use std::fs;
use std::io::Read;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};
use wiretrace::capture::synthetic::{write_sequence, Difficulty, SynthConfig};
use wiretrace_protocol::{decode, Body, MAX_MESSAGE_LEN};

/// systemd's watchdog interval for the service: it pings every half of it.
const WATCHDOG: Duration = Duration::from_millis(400);
/// The frame that will hang: well after the service has started.
const HANGING_FRAME: u32 = 25;

/// One notification with the time it arrived.
struct Note {
    at: Instant,
    text: String,
}

/// Reads notifications until `until` returns true for one or `timeout` passes.
fn read_until(socket: &UnixDatagram, timeout: Duration, notes: &mut Vec<Note>, until: impl Fn(&str) -> bool) -> bool {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = until(&text);
            notes.push(Note { at: Instant::now(), text });
            if hit {
                return true;
            }
        }
    }
    false
}

/// systemd's notify socket, the robot's UDP socket and the service started on a configuration
/// in `dir` with `source`, the robot as its sink, the repository's model, and `others` (further
/// tables).
fn systemd_and_robot(dir: &Path, source: &str, others: &str) -> (UnixDatagram, UdpSocket, Service) {
    let notify_path = dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let robot = UdpSocket::bind("127.0.0.1:0").expect("bind the robot's socket");
    robot.set_nonblocking(true).expect("nonblocking");
    let config = dir.join("wiretrace.toml");
    let sinks = format!("[sinks]\nudp = [\"{}\"]\n", robot.local_addr().expect("address"));
    let engine = common::MODEL_TABLE;
    fs::write(&config, format!("{source}\n{sinks}\n{engine}\n{others}")).expect("write config");
    let service = start_service(&config, &notify_path);
    (notify, robot, service)
}

fn count(notes: &[Note], what: &str) -> usize {
    notes.iter().filter(|n| n.text.contains(what)).count()
}

/// Heartbeats that reached the UDP sink since the last call.
fn heartbeats(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let mut n = 0;
    while let Ok(len) = socket.recv(&mut buf) {
        n += usize::from(matches!(decode(&buf[..len]), Ok(m) if matches!(m.body, Body::Heartbeat(_))));
    }
    n
}

/// The running service; killed when dropped, so a failed assertion does not leave it blocked
/// on the FIFO after the test.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_service(config: &Path, notify: &Path) -> Service {
    let child = common::wiretrace()
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wiretrace run");
    Service(child)
}

#[test]
fn watchdog_is_fed_while_frames_flow_and_stops_when_capture_hangs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seq = dir.path().join("seq");
    let cfg = SynthConfig {
        seed: 5,
        size_px: 128,
        frames: 200,
        fps: 20.0,
        difficulty: Difficulty::Easy,
        ..SynthConfig::default()
    };
    write_sequence(&cfg, &seq).expect("write sequence");

    let source = format!("[source]\nkind = \"replay\"\n[source.replay]\ndir = \"{}\"\n", seq.display());
    let others = "[pipeline]\nheartbeat_ms = 100\n\n[watchdog]\ncapture_stall_ms = 300\n";
    let (notify, robot, mut service) = systemd_and_robot(dir.path(), &source, others);
    let child = &mut service.0;
    let mut notes = Vec::new();
    assert!(read_until(&notify, Duration::from_secs(20), &mut notes, |t| t.contains("READY=1")), "no READY=1");

    // The service has listed the sequence: swap a later frame for a FIFO nobody writes.
    let frame = seq.join("frames").join(format!("{HANGING_FRAME:06}.pgm"));
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
    fs::rename(&fifo, &frame).expect("swap the frame for the FIFO");

    let hung = read_until(&notify, Duration::from_secs(10), &mut notes, |t| t.contains("capture hung"));
    assert!(hung, "no 'capture hung' status: {:?}", notes.iter().map(|n| &n.text).collect::<Vec<_>>());
    let hung_at = notes.last().expect("the hung status").at;
    assert!(count(&notes, "WATCHDOG=1") >= 3, "pinged while frames flowed");
    assert!(count(&notes, "STATUS=running;") >= 1, "status said running");
    let pings_before = count(&notes, "WATCHDOG=1");
    heartbeats(&robot);

    // Three watchdog intervals with capture hung: systemd would have killed it long before.
    let since = notes.len();
    read_until(&notify, WATCHDOG * 3, &mut notes, |_| false);
    let during = &notes[since..];
    assert_eq!(count(during, "WATCHDOG=1"), 0, "pinged while capture hung");
    assert!(count(during, "STATUS=capture hung") >= 3, "the loop still reports: {}", during.len());
    assert!(child.try_wait().expect("wait").is_none(), "the process is alive");
    let sent = heartbeats(&robot);
    assert!(sent >= 5, "heartbeats still go out to the robot every 100 ms: {sent} in 1.2 s");
    let last_ping = notes.iter().rev().find(|n| n.text.contains("WATCHDOG=1")).expect("a ping").at;
    assert!(hung_at.duration_since(last_ping) < Duration::from_secs(1), "pings stopped when capture hung");

    // The read returns (an empty file, a bad frame): frames flow again and so do the pings.
    drop(fs::OpenOptions::new().write(true).open(&frame).expect("open the FIFO's writing end"));
    assert!(
        read_until(&notify, Duration::from_secs(5), &mut notes, |t| t.contains("WATCHDOG=1")),
        "pings resume once capture does"
    );
    assert!(count(&notes, "WATCHDOG=1") > pings_before);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    assert!(read_until(&notify, Duration::from_secs(10), &mut notes, |t| t.contains("STOPPING=1")), "no STOPPING=1");
    let status = child.wait().expect("wait");
    assert!(status.success(), "SIGTERM ends the service cleanly: {status}");
}

#[test]
fn a_synthetic_source_runs_to_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = "[source]\nkind = \"synthetic\"\n[source.synthetic]\nsize = 128\nframes = 30\nfps = 30.0\n";
    let (notify, robot, mut service) = systemd_and_robot(dir.path(), source, "");
    let mut notes = Vec::new();
    assert!(read_until(&notify, Duration::from_secs(20), &mut notes, |t| t.contains("STOPPING=1")), "no STOPPING=1");
    let order: Vec<usize> = ["READY=1", "WATCHDOG=1", "STOPPING=1"]
        .iter()
        .map(|what| notes.iter().position(|n| n.text.contains(what)).unwrap_or(usize::MAX))
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "READY, WATCHDOG, STOPPING in order: {order:?}");
    let mut stderr = String::new();
    service.0.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(service.0.wait().expect("wait").success());
    assert!(stderr.contains("run: 30 frames seen"), "{stderr}");
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let mut centerlines = 0;
    while let Ok(n) = robot.recv(&mut buf) {
        centerlines += usize::from(matches!(decode(&buf[..n]), Ok(m) if matches!(m.body, Body::Centerline(_))));
    }
    assert!(centerlines > 0, "centerlines reached the sink");
}
