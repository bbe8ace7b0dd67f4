//! The ioctl side of V4L2 capture: open, negotiate, mmap streaming, reconnect.
//!
//! The `v4l` crate's stream queues the buffer it last handed out and dequeues the next one in
//! a single call, waiting without a timeout. So that a silent device cannot hold the capture
//! thread, buffers 1.. are queued here at start and buffer 0 is kept back; each frame then
//! waits in `poll` with the link's timeout, and only a buffer already filled is dequeued.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use v4l::buffer::{Flags as BufferFlags, Type};
use v4l::capability::Flags as CapabilityFlags;
use v4l::format::FieldOrder;
use v4l::io::mmap::Stream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::Capture;
use v4l::{Device, Format, FourCC, Fraction};

use super::{
    capture_time, describe_offered, CaptureTime, DriverFormat, Layout, Link, Next, Sequencer, V4l2Error, V4l2Options,
    STREAM_BUFFERS,
};
use crate::capture::{CaptureError, FrameSource};
use crate::frame::Frame;
use crate::time::Micros;

/// `POLLIN` of poll(2): a filled buffer is waiting.
const POLLIN: i16 = 0x0001;
/// `ENODEV`: the device is gone (unplugged).
const ENODEV: i32 = 19;
/// `EINVAL`: here, a buffer index the driver did not allocate.
const EINVAL: i32 = 22;

/// An open device that streams.
struct Open {
    stream: Stream<'static>,
    layout: Layout,
}

/// Frames from a V4L2 capture device. Lost devices are reopened (see [`Link`]); meanwhile
/// `next_frame` returns [`CaptureError::NoSignal`] every frame timeout or sooner.
pub struct V4l2Source {
    options: V4l2Options,
    open: Option<Open>,
    /// The layout of the first stream; a reopened device must keep it. `None` until the
    /// device has been opened once.
    layout: Option<Layout>,
    fps: f32,
    link: Link,
    sequencer: Sequencer,
    /// The driver's timestamps are not on `CLOCK_MONOTONIC`: said once, then the clock is read
    /// at dequeue.
    fallback_said: bool,
    /// The last reopen error, so a device that stays away is logged once, not every attempt.
    last_reopen_error: Option<String>,
    /// A stream that could not be stopped keeps the device busy, so every reopen would fail:
    /// the source ends with [`CaptureError::Unrecoverable`] instead of `no signal` forever.
    stuck: Option<V4l2Error>,
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("device", &self.options.device)
            .field("layout", &self.layout)
            .field("streaming", &self.open.is_some())
            .field("link", &self.link.state())
            .finish_non_exhaustive()
    }
}

impl V4l2Source {
    /// Opens `options.device`, negotiates format, size and rate, maps the buffers and starts
    /// streaming. A device that is not there yet, or cannot be opened or driven yet, is
    /// retried like one lost later (the frame size is the configured one, which negotiation
    /// insists on anyway); only failures that need a configuration change are returned (see
    /// [`V4l2Error::may_clear`]).
    pub fn open(options: V4l2Options) -> Result<Self, V4l2Error> {
        options.validate()?;
        let now = Instant::now();
        let (open, fps, link, last_reopen_error) = match open_stream(&options) {
            Ok((open, fps)) => {
                tracing::info!(
                    "{}: {} {}x{} at {fps} fps, {} mmap buffers",
                    options.device.display(),
                    options.format,
                    options.width,
                    options.height,
                    STREAM_BUFFERS
                );
                (Some(open), fps, Link::opened(now, &options), None)
            }
            Err(e) if e.may_clear() => {
                let why = with_causes(&e);
                tracing::warn!("{why}; no signal until it can be opened, retrying");
                (None, options.fps, Link::absent(now, &options), Some(why))
            }
            Err(e) => return Err(e),
        };
        Ok(V4l2Source {
            layout: open.as_ref().map(|o| o.layout),
            open,
            fps,
            link,
            sequencer: Sequencer::default(),
            fallback_said: false,
            last_reopen_error,
            stuck: None,
            options,
        })
    }

    /// Closes the stream, if open.
    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            if let Err(e) = close(open.stream, &self.options.device) {
                self.stuck = Some(e);
            }
        }
    }

    fn reopen(&mut self) {
        self.close();
        if self.stuck.is_some() {
            return;
        }
        let now = Instant::now();
        match open_stream(&self.options) {
            Ok((open, fps)) if self.layout.is_none_or(|l| l == open.layout) => {
                if self.link.reopened(now) {
                    tracing::info!("{}: open again, waiting for frames", self.options.device.display());
                } else {
                    tracing::debug!("{}: open again, still no frame", self.options.device.display());
                }
                if self.layout.is_none() {
                    self.fps = fps;
                }
                self.layout = Some(open.layout);
                self.open = Some(open);
                self.sequencer.restarted();
                self.last_reopen_error = None;
            }
            Ok((open, _)) => match close(open.stream, &self.options.device) {
                Ok(()) => self.reopen_failed(now, format!("its layout changed to {:?}", open.layout)),
                Err(e) => self.stuck = Some(e),
            },
            Err(e @ V4l2Error::Stuck { .. }) => self.stuck = Some(e),
            Err(e) => self.reopen_failed(now, with_causes(&e)),
        }
    }

    fn reopen_failed(&mut self, now: Instant, why: String) {
        if self.last_reopen_error.as_ref() != Some(&why) {
            tracing::warn!("{}: cannot reopen yet ({why}); retrying", self.options.device.display());
            self.last_reopen_error = Some(why);
        }
        self.link.reopen_failed(now);
    }

    fn lost(&mut self, error: &io::Error) {
        tracing::warn!("{}: capture failed ({error}); no signal until it is back", self.options.device.display());
        self.close();
        self.link.lost(Instant::now());
    }

    /// Waits up to `wait` for a filled buffer and reads it into `frame`: `Ok(false)` when none
    /// came, `Ok(true)` with the frame read, `Err` when the device failed.
    fn read(&mut self, wait: Duration, frame: &mut Frame) -> io::Result<Result<bool, CaptureError>> {
        let Some(open) = self.open.as_mut() else { return Ok(Ok(false)) };
        let millis = i32::try_from(wait.as_millis().max(1)).unwrap_or(i32::MAX);
        if open.stream.handle().poll(POLLIN, millis)? == 0 {
            return Ok(Ok(false));
        }
        let (buffer, meta) = CaptureStream::next(&mut open.stream)?;
        let now = Micros::now();
        let index = self.sequencer.index(meta.sequence);
        // A driver that leaves `bytesused` 0 filled the whole buffer.
        let used = match meta.bytesused as usize {
            0 => buffer,
            n => buffer.get(..n).unwrap_or(buffer),
        };
        let bad = |reason: String| CaptureError::BadFrame { path: self.options.device.clone(), reason };
        if meta.flags.contains(BufferFlags::ERROR) {
            return Ok(Err(bad(format!("the driver marked frame {index} corrupted"))));
        }
        let maxval = match open.layout.read_luma(used, self.options.y16, &mut frame.pixels) {
            Ok(maxval) => maxval,
            Err(short) => return Ok(Err(bad(format!("frame {index}: {short}")))),
        };
        let stamp = capture_time(u32::from(meta.flags), meta.timestamp.sec, meta.timestamp.usec, now);
        if let (CaptureTime::Dequeued(_), false) = (stamp, self.fallback_said) {
            tracing::warn!(
                "{}: the driver's buffer timestamps are not on CLOCK_MONOTONIC (flags {:#x}); capture time is read \
                 at dequeue, so deadlines are measured from then",
                self.options.device.display(),
                u32::from(meta.flags)
            );
            self.fallback_said = true;
        }
        frame.width = open.layout.width;
        frame.height = open.layout.height;
        frame.maxval = maxval;
        frame.index = index;
        frame.capture = stamp.micros();
        Ok(Ok(true))
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            if let Err(e) = close(open.stream, &self.options.device) {
                tracing::error!("{}", with_causes(&e));
            }
        }
    }
}

impl FrameSource for V4l2Source {
    fn size(&self) -> (usize, usize) {
        (self.options.width as usize, self.options.height as usize)
    }

    fn fps(&self) -> f32 {
        self.fps
    }

    fn live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.sequencer.dropped()
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Option<Result<(), CaptureError>> {
        let started = Instant::now();
        loop {
            if let Some(stuck) = &self.stuck {
                let reason = with_causes(stuck);
                return Some(Err(CaptureError::Unrecoverable { path: self.options.device.clone(), reason }));
            }
            let step = self.link.next(Instant::now());
            // One wait per call at most while there is no signal, so the runner reports it.
            if !self.link.has_signal() && started.elapsed() >= self.options.frame_timeout {
                return Some(Err(CaptureError::NoSignal { waited: started.elapsed() }));
            }
            match step {
                Next::Wait(wait) => match self.read(wait, frame) {
                    Ok(Ok(true)) => {
                        if let Some(gap) = self.link.frame(Instant::now()) {
                            tracing::info!(
                                "{}: frames arriving (after {:.1} s without)",
                                self.options.device.display(),
                                gap.as_secs_f64()
                            );
                        }
                        return Some(Ok(()));
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(bad)) => return Some(Err(bad)),
                    Err(e) => self.lost(&e),
                },
                Next::Reopen => self.reopen(),
                Next::Sleep(wait) => std::thread::sleep(wait.min(self.options.frame_timeout)),
            }
        }
    }
}

/// An error and its causes on one line, as the CLI reports them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

pub(super) fn ioctl<'a>(device: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> V4l2Error + 'a {
    move |source| V4l2Error::Ioctl { device: device.to_path_buf(), action, source }
}

/// Opens the device, negotiates, maps the buffers, queues all but buffer 0 and starts
/// streaming. Returns the stream and the frame rate the device runs at.
fn open_stream(options: &V4l2Options) -> Result<(Open, f32), V4l2Error> {
    let device = options.device.as_path();
    let dev = Device::with_path(device).map_err(|source| V4l2Error::Open { device: device.to_path_buf(), source })?;
    let caps = dev.query_caps().map_err(ioctl(device, "query its capabilities"))?;
    if !caps.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE | CapabilityFlags::STREAMING) {
        return Err(V4l2Error::NotCapable { device: device.to_path_buf(), card: caps.card, needed: "capture" });
    }
    let offered: Vec<[u8; 4]> = Capture::enum_formats(&dev)
        .map_err(ioctl(device, "list its pixel formats"))?
        .into_iter()
        .map(|d| d.fourcc.repr)
        .collect();
    if !offered.contains(&options.format.fourcc()) {
        return Err(V4l2Error::UnsupportedFormat {
            device: device.to_path_buf(),
            asked: options.format,
            offered: describe_offered(&offered),
        });
    }
    let mut asked = Format::new(options.width, options.height, FourCC::new(&options.format.fourcc()));
    asked.field_order = FieldOrder::Progressive;
    let got = Capture::set_format(&dev, &asked).map_err(ioctl(device, "set the pixel format"))?;
    let layout = Layout::negotiated(options.format, options.width, options.height, driver_format(&got))
        .map_err(|source| V4l2Error::Negotiation { device: device.to_path_buf(), source })?;
    let fps = set_rate(&dev, device, options.fps);
    let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, STREAM_BUFFERS)
        .map_err(ioctl(device, "map its streaming buffers"))?;
    // Buffer 0 stays with us: the stream queues it back on its first `next`.
    for index in 1..STREAM_BUFFERS as usize {
        match CaptureStream::queue(&mut stream, index) {
            Ok(()) => {}
            // The driver gave fewer buffers than asked: those it gave are queued.
            Err(e) if e.raw_os_error() == Some(EINVAL) && index > 1 => break,
            Err(e) => {
                close(stream, device)?;
                return Err(ioctl(device, "queue its buffers")(e));
            }
        }
    }
    if let Err(e) = stream.start() {
        close(stream, device)?;
        return Err(ioctl(device, "start streaming")(e));
    }
    Ok((Open { stream, layout }, fps))
}

pub(super) fn driver_format(f: &Format) -> DriverFormat {
    DriverFormat {
        fourcc: f.fourcc.repr,
        width: f.width,
        height: f.height,
        stride: f.stride,
        size: f.size,
        field: f.field_order as u32,
    }
}

/// Asks for `fps` and returns the rate the device runs at. Frame grabbers that follow their
/// input's rate refuse to set one; that is logged and their own rate kept.
fn set_rate(dev: &Device, device: &Path, fps: f32) -> f32 {
    let interval = Fraction::new(1000, (fps * 1000.0).round() as u32);
    let params = v4l::video::capture::Parameters::new(interval);
    let rate = |p: &v4l::video::capture::Parameters| {
        let i = p.interval;
        (i.numerator > 0).then(|| i.denominator as f32 / i.numerator as f32)
    };
    match Capture::set_params(dev, &params) {
        Ok(set) => rate(&set).unwrap_or(fps),
        Err(e) => {
            let own = Capture::params(dev).ok().as_ref().and_then(rate);
            tracing::warn!(
                "{}: cannot set {fps} fps ({e}); the device keeps its own rate{}",
                device.display(),
                own.map_or(String::new(), |r| format!(" ({r} fps)"))
            );
            own.unwrap_or(fps)
        }
    }
}

/// Stops streaming and unmaps the buffers. The `v4l` crate panics when it cannot stop a
/// stream on drop for any reason but a vanished device, which with `panic = "abort"` would
/// kill the service; so the stream is stopped here first, and one that cannot be stopped is
/// leaked and [`V4l2Error::Stuck`] returned, for the caller to end what it does: the device
/// stays busy until the process exits.
pub(super) fn close(mut stream: Stream<'static>, device: &Path) -> Result<(), V4l2Error> {
    match stream.stop() {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(ENODEV) => {}
        Err(source) => {
            std::mem::forget(stream);
            return Err(V4l2Error::Stuck { device: device.to_path_buf(), source });
        }
    }
    drop(stream);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::v4l2::{LinkState, PixelFormat, RetryPolicy};

    #[test]
    fn a_device_missing_at_start_is_no_signal_not_an_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut options = V4l2Options::new(dir.path().join("video-late"), PixelFormat::Grey, 8, 6, 30.0);
        options.frame_timeout = Duration::from_millis(20);
        options.stall_reopen = Duration::from_millis(20);
        options.retry = RetryPolicy { first: Duration::from_millis(5), max: Duration::from_millis(10) };
        let mut source = V4l2Source::open(options).expect("a missing node is waited for");
        assert_eq!((source.size(), source.fps()), ((8, 6), 30.0), "size and rate come from the options");
        let mut frame = Frame::default();
        for _ in 0..3 {
            assert!(matches!(source.next_frame(&mut frame), Some(Err(CaptureError::NoSignal { .. }))));
        }
        assert!(matches!(source.link.state(), LinkState::Down { attempts, .. } if attempts > 0));
        let bad = V4l2Options::new(dir.path().join("video-late"), PixelFormat::Grey, 0, 6, 30.0);
        assert!(matches!(V4l2Source::open(bad), Err(V4l2Error::BadOptions { .. })), "bad options still fail");
    }
}
