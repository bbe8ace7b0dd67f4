//! The ridge stage over horizontal bands of the frame, one thread each: the same output as
//! [`RidgeDetector::detect`] on the whole frame, bit for bit, in a fraction of the time where
//! cores are free (on the box, the cores beside the processing thread's).
//!
//! Each band is given enough rows above and below its own ([`RidgeParams::halo_px`]) that
//! every filter and mask reaching into its rows sees what it would see on the whole frame.
//! Bands and their buffers are made at start and passed between threads by ownership through
//! one-place mailboxes, so a frame allocates nothing and needs no shared mutable state.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::features::Roi;
use super::ridge::{ImageSides, RidgeDetector, RidgeMap, RidgeParams};
use super::Plane;
use crate::pipeline::realtime::{place, ThreadPlacement};

/// Most threads the ridge stage takes beside the processing thread: each band has its own
/// detector and planes, so each costs memory and a thread whether or not a core is free.
pub const MAX_RIDGE_WORKERS: usize = 63;

/// One band: its rows of the frame with their halo, a detector for them, and its output.
#[derive(Debug)]
struct Band {
    /// Rows of the frame the band reads, halo included.
    input_rows: Range<usize>,
    /// Rows of the frame the band answers for.
    output_rows: Range<usize>,
    detector: RidgeDetector,
    input: Plane<f32>,
    map: RidgeMap,
}

impl Band {
    fn new(width: usize, height: usize, output_rows: Range<usize>, halo: usize, params: &RidgeParams) -> Self {
        let input_rows = output_rows.start.saturating_sub(halo)..(output_rows.end + halo).min(height);
        let rows = input_rows.len();
        let sides = ImageSides { top: input_rows.start == 0, bottom: input_rows.end == height, ..ImageSides::ALL };
        Band {
            detector: RidgeDetector::for_part(width, rows, params.clone(), sides),
            input: Plane::new(width, rows),
            map: RidgeMap::new(width, rows),
            input_rows,
            output_rows,
        }
    }

    fn load(&mut self, frame: &Plane<f32>) {
        let w = frame.width;
        self.input.data.copy_from_slice(&frame.data[self.input_rows.start * w..self.input_rows.end * w]);
    }

    /// The band's own rows of the ridge map: the halo is only read.
    fn detect(&mut self) {
        let own = Roi {
            x: 0,
            y: self.output_rows.start - self.input_rows.start,
            width: self.input.width,
            height: self.output_rows.len(),
        };
        self.detector.detect_in(&self.input, &mut self.map, own);
    }

    /// Copies the band's own rows of its output into the frame's.
    fn store(&self, out: &mut RidgeMap, thick_mask: &mut Plane<u8>) {
        let w = out.strength.width;
        let own =
            (self.output_rows.start - self.input_rows.start) * w..(self.output_rows.end - self.input_rows.start) * w;
        let frame = self.output_rows.start * w..self.output_rows.end * w;
        out.strength.data[frame.clone()].copy_from_slice(&self.map.strength.data[own.clone()]);
        out.normal_x.data[frame.clone()].copy_from_slice(&self.map.normal_x.data[own.clone()]);
        out.normal_y.data[frame.clone()].copy_from_slice(&self.map.normal_y.data[own.clone()]);
        thick_mask.data[frame].copy_from_slice(&self.detector.thick_mask().data[own]);
    }
}

/// A worker ends only when its [`BandedRidge`] is dropped, or by a panic, which in a release
/// build has already ended the process (`panic = "abort"`).
const WORKER_GONE: &str = "a ridge worker thread ended while the stage was in use";
/// A band is away only while [`BandedRidge::detect`] runs, which would have returned it.
const BAND_AWAY: &str = "a ridge band was not returned by the frame before";

/// A one-place mailbox between two threads, closed by either side.
///
/// Not `std::sync::mpsc`: a thread's first wait on a channel allocates its wait context, and
/// the processing thread may first wait for a worker at any frame (one that the worker was
/// late for under load). A mutex and a condition variable wait on a futex and allocate
/// nothing.
#[derive(Debug)]
struct Mailbox<T> {
    /// The letter, and whether the mailbox is closed.
    state: Mutex<(Option<T>, bool)>,
    changed: Condvar,
}

impl<T> Mailbox<T> {
    fn new() -> Arc<Self> {
        Arc::new(Mailbox { state: Mutex::new((None, false)), changed: Condvar::new() })
    }

    /// Nothing is ever left inconsistent under the lock: a panic elsewhere does not matter.
    fn lock(&self) -> MutexGuard<'_, (Option<T>, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves `letter`; gives it back if the mailbox is closed. The two sides take turns, so
    /// the mailbox is empty when a letter comes.
    fn put(&self, letter: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.1 {
            return Err(letter);
        }
        debug_assert!(state.0.is_none(), "a letter was left in a mailbox");
        state.0 = Some(letter);
        self.changed.notify_one();
        Ok(())
    }

    /// Waits for a letter; `None` once the mailbox is closed and empty.
    fn take(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(letter) = state.0.take() {
                return Some(letter);
            }
            if state.1 {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }
}

/// Closes a mailbox when dropped: a worker that ends, even by a panic, closes its outbox so
/// that the processing thread does not wait for it forever.
struct CloseOnDrop<T>(Arc<Mailbox<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A thread that detects ridges in the bands it is sent and sends them back.
#[derive(Debug)]
struct Worker {
    jobs: Arc<Mailbox<Box<Band>>>,
    done: Arc<Mailbox<Box<Band>>>,
    /// The worker's band while it is not being worked on.
    band: Option<Box<Band>>,
    thread: Option<JoinHandle<()>>,
}

/// Why the banded ridge stage could not start.
#[derive(Debug, thiserror::Error)]
enum BandsError {
    /// A worker thread could not be made.
    #[error("cannot start ridge worker thread {index}: {source}")]
    Spawn {
        /// Which worker (1 is the first band below the calling thread's).
        index: usize,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The ridge stage, on the calling thread alone or over bands on worker threads.
#[derive(Debug)]
pub struct BandedRidge {
    /// The first band, worked on by the calling thread; the whole frame without workers.
    own: Band,
    workers: Vec<Worker>,
    thick_mask: Plane<u8>,
}

impl BandedRidge {
    /// The ridge stage for `width` × `height` frames over one band per placement in
    /// `workers` and one for the calling thread. With no workers it is
    /// [`RidgeDetector::detect`] on the calling thread, nothing copied. A frame with fewer
    /// rows than bands gets fewer workers. If a worker cannot be started, the log says why
    /// and the stage runs on the calling thread alone.
    pub fn new(width: usize, height: usize, params: RidgeParams, workers: &[ThreadPlacement]) -> Self {
        let count = (workers.len() + 1).min(height.max(1));
        if count == 1 {
            return Self::single(width, height, params);
        }
        Self::start(width, height, params.clone(), &workers[..count - 1]).unwrap_or_else(|e| {
            tracing::warn!("{e}; the ridge stage runs on the processing thread alone");
            Self::single(width, height, params)
        })
    }

    fn single(width: usize, height: usize, params: RidgeParams) -> Self {
        let own = Band {
            input_rows: 0..height,
            output_rows: 0..height,
            detector: RidgeDetector::new(width, height, params),
            input: Plane::new(0, 0),
            map: RidgeMap::new(0, 0),
        };
        BandedRidge { own, workers: Vec::new(), thick_mask: Plane::new(0, 0) }
    }

    fn start(
        width: usize,
        height: usize,
        params: RidgeParams,
        workers: &[ThreadPlacement],
    ) -> Result<Self, BandsError> {
        let count = workers.len() + 1;
        let halo = params.halo_px();
        let rows = |i: usize| i * height / count..(i + 1) * height / count;
        let own = Band::new(width, height, rows(0), halo, &params);
        let mut started = Vec::with_capacity(count - 1);
        for (index, &placement) in (1..).zip(workers) {
            let band = Box::new(Band::new(width, height, rows(index), halo, &params));
            let (jobs, done) = (Mailbox::<Box<Band>>::new(), Mailbox::new());
            let (inbox, outbox) = (Arc::clone(&jobs), CloseOnDrop(Arc::clone(&done)));
            let thread = std::thread::Builder::new()
                .name(format!("ridge-{index}"))
                .spawn(move || {
                    place("ridge worker", placement);
                    while let Some(mut band) = inbox.take() {
                        band.detect();
                        if outbox.0.put(band).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|source| BandsError::Spawn { index, source })?;
            started.push(Worker { jobs, done, band: Some(band), thread: Some(thread) });
        }
        Ok(BandedRidge { own, workers: started, thick_mask: Plane::new(width, height) })
    }

    /// How many threads share a frame, the calling one included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// [`RidgeDetector::detect`] of the whole frame.
    pub fn detect(&mut self, input: &Plane<f32>, out: &mut RidgeMap) {
        if self.workers.is_empty() {
            self.own.detector.detect(input, out);
            return;
        }
        for worker in &mut self.workers {
            let mut band = worker.band.take().expect(BAND_AWAY);
            band.load(input);
            assert!(worker.jobs.put(band).is_ok(), "{WORKER_GONE}");
        }
        self.own.load(input);
        self.own.detect();
        self.own.store(out, &mut self.thick_mask);
        for worker in &mut self.workers {
            let band = worker.done.take().expect(WORKER_GONE);
            band.store(out, &mut self.thick_mask);
            worker.band = Some(band);
        }
    }

    /// Where the last frame's thick structures (catheters) were masked.
    pub fn thick_mask(&self) -> &Plane<u8> {
        if self.workers.is_empty() {
            self.own.detector.thick_mask()
        } else {
            &self.thick_mask
        }
    }
}

impl Drop for BandedRidge {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            worker.jobs.close();
            if let Some(thread) = worker.thread.take() {
                // A worker that panicked has nothing left to clean up.
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Log attenuation with a catheter, a wire crossing it, an edge and deterministic noise:
    /// every part of the ridge stage (thick mask, its dilation, edge weighting, border echoes)
    /// has something to do near the band boundaries.
    pub(crate) fn scene(width: usize, height: usize) -> Plane<f32> {
        let mut p = Plane::new(width, height);
        let mut noise = 0x2545_f491_u32;
        for y in 0..height {
            for x in 0..width {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let (xf, yf) = (x as f32, y as f32);
                let catheter = 0.6 * (-((xf - 0.4 * width as f32 - 0.2 * yf).powi(2)) / 18.0).exp();
                let wire = 0.3 * (-((yf - 0.5 * height as f32 - 0.3 * xf).powi(2)) / 1.2).exp();
                let edge = if x > width * 3 / 4 { 0.25 } else { 0.0 };
                p.data[y * width + x] = catheter + wire + edge + 0.02 * (noise as f32 / u32::MAX as f32);
            }
        }
        p
    }

    pub(crate) fn detect_whole(input: &Plane<f32>) -> (RidgeMap, Plane<u8>) {
        let mut detector = RidgeDetector::new(input.width, input.height, RidgeParams::default());
        let mut map = RidgeMap::new(input.width, input.height);
        detector.detect(input, &mut map);
        (map, detector.thick_mask().clone())
    }

    #[test]
    fn bands_give_the_whole_frame_answer_bit_for_bit() {
        for (width, height) in [(96, 160), (61, 97)] {
            let input = scene(width, height);
            let (whole, whole_thick) = detect_whole(&input);
            assert!(whole_thick.data.contains(&1), "the catheter is masked somewhere");
            for threads in [2, 3, 4] {
                let workers = vec![ThreadPlacement::default(); threads - 1];
                let mut banded = BandedRidge::new(width, height, RidgeParams::default(), &workers);
                assert_eq!(banded.threads(), threads);
                let mut map = RidgeMap::new(width, height);
                for _ in 0..2 {
                    map.strength.data.fill(f32::NAN);
                    banded.detect(&input, &mut map);
                    let same = |a: &Plane<f32>, b: &Plane<f32>| {
                        a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits())
                    };
                    assert!(same(&map.strength, &whole.strength), "{width}x{height}, {threads} threads: strength");
                    assert!(same(&map.normal_x, &whole.normal_x), "{width}x{height}, {threads} threads: normal x");
                    assert!(same(&map.normal_y, &whole.normal_y), "{width}x{height}, {threads} threads: normal y");
                    assert_eq!(banded.thick_mask(), &whole_thick, "{width}x{height}, {threads} threads: thick mask");
                }
            }
        }
    }

    #[test]
    fn a_frame_with_fewer_rows_than_threads_gets_fewer_threads() {
        for (width, height) in [(7, 1), (9, 2), (3, 3), (12, 5)] {
            let input = scene(width, height);
            let (whole, whole_thick) = detect_whole(&input);
            let mut banded = BandedRidge::new(width, height, RidgeParams::default(), &[ThreadPlacement::default(); 4]);
            assert_eq!(banded.threads(), height.min(5));
            let mut map = RidgeMap::new(width, height);
            banded.detect(&input, &mut map);
            assert_eq!((&map.strength, banded.thick_mask()), (&whole.strength, &whole_thick), "{width}x{height}");
        }
    }

    #[test]
    fn one_thread_is_the_detector_itself() {
        let input = scene(64, 48);
        let (whole, whole_thick) = detect_whole(&input);
        let mut stage = BandedRidge::new(64, 48, RidgeParams::default(), &[]);
        let mut map = RidgeMap::new(64, 48);
        stage.detect(&input, &mut map);
        assert_eq!(stage.threads(), 1);
        assert_eq!((&map.strength, stage.thick_mask()), (&whole.strength, &whole_thick));
    }
}
