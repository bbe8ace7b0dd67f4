//! Serial sink: COBS-framed messages on a UART.
//!
//! A write that times out or fails may leave half a frame on the line; the next write starts
//! with a 0x00 delimiter so the receiver drops only that half frame. A centerline with a
//! deadline times out at the deadline, so a stalled line cuts it short (the receiver sees a
//! damaged frame) instead of handing it over late. A port that fails is
//! reopened, at most once a second, so a robot that is power-cycled comes back.

use std::io::Write;
use std::time::{Duration, Instant};

use serialport::SerialPort;
use wiretrace_protocol::{encode_frame, Message, MAX_FRAME_LEN};

use super::{Sink, SinkError};
use crate::time::Micros;

/// How long one frame may take to leave before the write counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause between attempts to reopen a failed port.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// Opens `path` at `baud`, 8N1, no flow control.
pub fn open_port(path: &str, baud: u32, timeout: Duration) -> Result<Box<dyn SerialPort>, SinkError> {
    serialport::new(path, baud)
        .timeout(timeout)
        .open()
        .map_err(|e| SinkError::Open { target: path.to_string(), reason: e.to_string() })
}

/// Writes COBS frames to a serial device.
#[derive(Debug)]
pub struct SerialSink {
    path: String,
    baud: u32,
    port: Option<Box<dyn SerialPort>>,
    last_open_attempt: Option<Instant>,
    needs_delimiter: bool,
    buf: [u8; MAX_FRAME_LEN + 1],
}

impl SerialSink {
    /// Opens the port now, so a wrong path or baud rate is reported at start.
    pub fn open(path: &str, baud: u32) -> Result<Self, SinkError> {
        let port = open_port(path, baud, WRITE_TIMEOUT)?;
        Ok(SerialSink {
            path: path.to_string(),
            baud,
            port: Some(port),
            last_open_attempt: Some(Instant::now()),
            // A leading delimiter makes the receiver drop whatever partial frame it holds.
            needs_delimiter: true,
            buf: [0; MAX_FRAME_LEN + 1],
        })
    }

    fn ensure_open(&mut self) -> Result<(), SinkError> {
        if self.port.is_some() {
            return Ok(());
        }
        if self.last_open_attempt.is_some_and(|t| t.elapsed() < REOPEN_INTERVAL) {
            return Err(SinkError::Closed);
        }
        self.last_open_attempt = Some(Instant::now());
        self.port = Some(open_port(&self.path, self.baud, WRITE_TIMEOUT)?);
        self.needs_delimiter = true;
        tracing::info!("serial {}: reopened", self.path);
        Ok(())
    }
}

impl Sink for SerialSink {
    fn target(&self) -> String {
        format!("serial://{}@{}", self.path, self.baud)
    }

    fn send(&mut self, message: &Message) -> Result<(), SinkError> {
        self.send_by(message, None)
    }

    fn send_by(&mut self, message: &Message, deadline: Option<Micros>) -> Result<(), SinkError> {
        let timeout = match deadline {
            Some(d) => match d.0.checked_sub(Micros::now().0) {
                Some(left_us) if left_us > 0 => WRITE_TIMEOUT.min(Duration::from_micros(left_us)),
                _ => return Err(SinkError::Late),
            },
            None => WRITE_TIMEOUT,
        };
        let start = usize::from(self.needs_delimiter);
        self.buf[0] = 0;
        let n = encode_frame(message, &mut self.buf[start..])?;
        self.ensure_open()?;
        let Some(port) = self.port.as_mut() else {
            return Err(SinkError::Closed);
        };
        if let Err(e) = port.set_timeout(timeout) {
            self.port = None;
            return Err(SinkError::Write(e.into()));
        }
        match port.write_all(&self.buf[..start + n]) {
            Ok(()) => {
                self.needs_delimiter = false;
                Ok(())
            }
            Err(source) => {
                self.needs_delimiter = true;
                if source.kind() != std::io::ErrorKind::TimedOut {
                    self.port = None;
                }
                Err(SinkError::Write(source))
            }
        }
    }
}
