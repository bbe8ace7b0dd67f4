//! The loopback feeder: a sequence written into a V4L2 output device (v4l2loopback) at its
//! fps, so that `wiretrace run` on the capture side goes through the real V4L2 path.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::capability::Flags as CapabilityFlags;
use v4l::format::FieldOrder;
use v4l::io::mmap::Stream;
use v4l::io::traits::OutputStream;
use v4l::video::Output;
use v4l::{Device, Format, FourCC, Fraction};

use super::device::{close, driver_format, ioctl};
use super::{describe_offered, FeedOptions, FeedSummary, Layout, V4l2Error, FIELD_NONE, STREAM_BUFFERS};
use crate::capture::replay::ReplaySource;
use crate::capture::FrameSource;
use crate::frame::Frame;

/// Longest sleep between looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Sleeps until `due`, or until `stop` is set; false when stopped.
fn sleep_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STOP_CHECK));
    }
}

/// See [`super::feed`]. Frame `k` is filled into the buffer the stream hands out at its due
/// time and queued at the next one (the `v4l` stream queues a buffer when the next is asked
/// for), so frames reach the device one period after their slot, at the sequence's rate.
pub(super) fn feed(options: &FeedOptions, stop: &AtomicBool) -> Result<FeedSummary, V4l2Error> {
    let device = options.device.as_path();
    let open_seq = |seq: &Path| {
        ReplaySource::open(seq).map_err(|source| V4l2Error::Sequence { device: device.to_path_buf(), source })
    };
    let mut source = open_seq(&options.seq)?;
    let (width, height) = source.size();
    let fps = source.fps();
    let (mut stream, layout) = open_output(options, width as u32, height as u32, fps)?;
    let result = play(options, &mut source, (&mut stream, layout), stop, &open_seq);
    let closed = close(stream, device);
    let (frames, bad_frames, passes) = result?;
    closed?;
    Ok(FeedSummary { frames, bad_frames, passes, fps })
}

/// The feeding loop: returns frames written, frames skipped and passes.
fn play(
    options: &FeedOptions,
    source: &mut ReplaySource,
    (stream, layout): (&mut Stream<'static>, Layout),
    stop: &AtomicBool,
    open_seq: &dyn Fn(&Path) -> Result<ReplaySource, V4l2Error>,
) -> Result<(u64, u64, u64), V4l2Error> {
    let device = options.device.as_path();
    let period = Duration::from_secs_f64(1.0 / f64::from(source.fps()));
    let (width, height) = source.size();
    let mut frame = Frame::with_size(width, height);
    let start = Instant::now();
    let (mut slot, mut frames, mut bad, mut passes) = (0u32, 0u64, 0u64, 0u64);
    loop {
        while let Some(result) = source.next_frame(&mut frame) {
            let due = start + period * slot;
            slot = slot.wrapping_add(1);
            if let Err(e) = result {
                tracing::warn!("skipped frame: {e}");
                bad += 1;
                continue;
            }
            if !sleep_until(due, stop) {
                return Ok((frames, bad, passes));
            }
            let (buffer, meta) = OutputStream::next(stream).map_err(ioctl(device, "queue a frame"))?;
            layout.write_luma(&frame.pixels, frame.maxval, buffer).map_err(|short| V4l2Error::Ioctl {
                device: device.to_path_buf(),
                action: "fill its buffer",
                source: std::io::Error::other(short),
            })?;
            meta.bytesused = layout.image_bytes() as u32;
            meta.field = FIELD_NONE;
            frames += 1;
        }
        passes += 1;
        if !options.looped || stop.load(Ordering::Relaxed) {
            break;
        }
        *source = open_seq(&options.seq)?;
        if source.size() != (width, height) {
            return Err(V4l2Error::BadOptions {
                device: device.to_path_buf(),
                what: format!("{} changed size while it was fed", options.seq.display()),
            });
        }
    }
    // The last frame is queued when the stream is asked for the next buffer.
    if frames > 0 && sleep_until(start + period * slot, stop) {
        OutputStream::next(stream).map_err(ioctl(device, "queue a frame"))?;
    }
    Ok((frames, bad, passes))
}

/// Opens the output device, sets the sequence's format, size and rate, and maps the buffers.
fn open_output(
    options: &FeedOptions,
    width: u32,
    height: u32,
    fps: f32,
) -> Result<(Stream<'static>, Layout), V4l2Error> {
    let device = options.device.as_path();
    let dev = Device::with_path(device).map_err(|source| V4l2Error::Open { device: device.to_path_buf(), source })?;
    let caps = dev.query_caps().map_err(ioctl(device, "query its capabilities"))?;
    if !caps.capabilities.contains(CapabilityFlags::VIDEO_OUTPUT | CapabilityFlags::STREAMING) {
        return Err(V4l2Error::NotCapable { device: device.to_path_buf(), card: caps.card, needed: "output" });
    }
    let format = options.format;
    // v4l2loopback lists no output formats until one is set; only a list it gives is checked.
    let offered: Vec<[u8; 4]> =
        Output::enum_formats(&dev).map(|list| list.into_iter().map(|d| d.fourcc.repr).collect()).unwrap_or_default();
    if !offered.is_empty() && !offered.contains(&format.fourcc()) {
        return Err(V4l2Error::UnsupportedFormat {
            device: device.to_path_buf(),
            asked: format,
            offered: describe_offered(&offered),
        });
    }
    let mut asked = Format::new(width, height, FourCC::new(&format.fourcc()));
    asked.field_order = FieldOrder::Progressive;
    let got = Output::set_format(&dev, &asked).map_err(ioctl(device, "set the pixel format"))?;
    let layout = Layout::negotiated(format, width, height, driver_format(&got))
        .map_err(|source| V4l2Error::Negotiation { device: device.to_path_buf(), source })?;
    let params = v4l::video::output::Parameters::new(Fraction::new(1000, (fps * 1000.0).round() as u32));
    if let Err(e) = Output::set_params(&dev, &params) {
        tracing::warn!("{}: cannot announce {fps} fps ({e}); frames are still written at that rate", device.display());
    }
    let stream = Stream::with_buffers(&dev, Type::VideoOutput, STREAM_BUFFERS)
        .map_err(ioctl(device, "map its streaming buffers"))?;
    tracing::info!("{}: feeding {format} {width}x{height} at {fps} fps", device.display());
    Ok((stream, layout))
}
