//! The ridge stage on tiles along the tracked wire: detect → crop → filter, on the classical
//! path as on the learned one ([`roi`]).
//!
//! The filters cost per pixel, and a tracked wire lies within a few pixels of where it was:
//! the frame's ridge map is needed only near the last centerline. The tiles are chosen as the
//! learned engine's are ([`roi::cover`]); neighbours along the wire are merged into their
//! bounding box where its crop costs no more pixels (a straight stretch of wire). Each region
//! is computed on a crop of the frame with the ridge stage's halo around it
//! ([`RidgeParams::halo_px`]), so inside a region the map is the whole frame's, bit for bit,
//! and regions that overlap agree. Outside them the map is empty.
//!
//! Where the tracked wire is not all there is to see, the rest of the frame is looked at, as
//! [`Search`] says: the whole frame at once, or one square of the search's grid
//! ([`roi::search_tile`], `side_px`) a frame beside the tiles, which bounds every frame's
//! cost at the price of finding a wire later, or (the default) the whole frame where it can
//! make the frame's deadline and a square where it cannot (README, "The search on squares").
//! It looks:
//! - when nothing is tracked; with squares, a square alone (flagged as searched in part), or
//!   the tiles along the last centerline where one was seen too faint to be tracked;
//! - when the tracked centerline does not begin at the frame's border or the field's edge (a
//!   piece of a wire, or no wire): the rest of it may lie anywhere;
//! - when a centerline ended on an inner edge of its regions and covering it again would not
//!   move them: the wire may go on beyond (with squares, the square is centred on that end);
//! - with squares, after a frame whose regions held no wire;
//! - at least once every [`WHOLE_FRAME_EVERY`] or [`SQUARE_EVERY`] frames: a wire elsewhere
//!   can take over from a track that was wrong, and the hysteresis' noise depth is measured.
//!
//! The noise depth is measured on the whole frame or the search's squares only, each square's
//! kept until it comes round again and the frame's taken as their mean weighted by samples:
//! tiles near a wire are no sample of the frame's noise (their 90th percentile is about a
//! fifth higher at extreme dose). The whole frame is also filtered where the crops would cost
//! as many pixels as it has.

use super::features::Roi;
use super::ridge::{ImageSides, RidgeDetector, RidgeMap, RidgeParams};
use super::roi::{self, holds, RoiParams};
use super::threshold::NoiseSample;
use super::Plane;

/// The ridge stage on tiles, with every plane and list made at start for one frame size.
#[derive(Debug)]
pub struct TiledRidge {
    roi: RoiParams,
    search: Search,
    frame_px: (usize, usize),
    /// Pixels of the frame around a region that its crop holds (where the frame has them).
    halo_px: usize,
    /// The most pixels a crop may have: what the detector's planes were made for.
    crop_capacity_px: usize,
    detector: RidgeDetector,
    input: Plane<f32>,
    map: RidgeMap,
    thick_mask: Plane<u8>,
    /// 1 in this frame's regions, for [`TiledRidge::keep_tiles_only`].
    inside: Plane<u8>,
    /// The tiles along the wire, before neighbours are merged.
    tiles: Vec<Roi>,
    /// The tiles beyond the wire's tip.
    ahead: Vec<Roi>,
    /// This frame's regions: tiles, or neighbouring tiles merged into their bounding box where
    /// its crop has no more pixels than theirs, then the square, if any (last); the whole
    /// frame alone when it is filtered whole.
    regions: Vec<Roi>,
    next: Vec<Roi>,
    /// The regions the last [`TiledRidge::detect`] wrote: all it has to clear of its map.
    written: Vec<Roi>,
    /// This frame's square, the last of its regions.
    square: Option<Roi>,
    /// Where this frame's noise depth is to be measured.
    sample: Sample,
    /// Nothing was tracked: this frame was searched in its square alone.
    searching: bool,
    /// The square of the search's grid the next one is.
    search_next: usize,
    /// The latest noise depth measured on each square of the search's grid.
    square_noise: Vec<Option<NoiseSample>>,
    /// The end of the last centerline that lay on an inner edge of its regions.
    cut_at: Option<[f32; 2]>,
    /// The last frame's regions held no wire.
    missed: bool,
    /// Frames planned since the noise depth was last measured ([`TiledRidge::note_noise`]):
    /// a square abandoned at its deadline measured nothing.
    since_measured: u32,
    /// The last plan had a wire to follow.
    tracked: bool,
    /// The last plan's tiles, merged, without its look beyond them.
    tiles_only: Vec<Roi>,
    /// The last plan's regions, look included, while the look waits
    /// ([`TiledRidge::defer_look`]).
    with_look: Vec<Roi>,
    /// The sample and search flag of a look that waits.
    deferred: Option<(Sample, bool)>,
}

/// When a frame's look beyond its tiles runs: before the frame's answer, or after it
/// ([`TiledRidge::defer_look`]), in which case a tip that advanced past the tiles would be
/// answered cut until the next frame, so the tiles reach beyond the tip whatever the look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    /// Within the frame, before its answer.
    WithinFrame,
    /// Possibly after the frame's answer.
    BetweenFrames,
}

/// Where a frame's noise depth is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sample {
    /// Nowhere: tiles along the wire only, or a square centred on a cut.
    None,
    /// On this square of the search's grid.
    Square(usize),
    /// On the whole frame.
    Whole,
}

/// How the stage looks beyond the tracked wire's tiles (and the learned engine, in the
/// pipeline, while no wire is tracked: the whole frame or one square a frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Search {
    /// The whole frame where it can make the frame's deadline, one square a frame where it
    /// cannot or nothing is known yet of what it costs (a whole frame that cannot is abandoned
    /// every time, and no wire is ever found).
    #[default]
    Auto,
    /// The whole frame at once: a wire is found in the first frame it shows in, and such a
    /// frame costs what a frame without tiles does (20 ms at 512² on one core, 80 at 1024²).
    Whole,
    /// One square of the search a frame, beside the tiles: no frame costs much more than a
    /// square and its tiles, and a wire may be found a few frames later.
    Squares,
}

/// The whole frame is filtered at least once in this many frames (a second at 15 fps) while a
/// wire is followed on tiles ([`Search::Whole`]).
pub const WHOLE_FRAME_EVERY: u32 = 15;

/// A square of the search comes round at least once in this many frames while a wire is
/// followed on tiles ([`Search::Squares`]): at 512² and 256² squares, the frame is seen whole
/// every 20 frames (1.3 s at 15 fps). A square costs the same however often it comes.
pub const SQUARE_EVERY: u32 = 5;

impl TiledRidge {
    /// The stage for `width` × `height` frames with tiles and the search's squares as `roi`
    /// says; `None` when a tile with its halo would be the whole frame.
    ///
    /// Crops hold up to a quarter of the frame, or one square's or one tile's where that is
    /// more: the stage's planes take about 14 bytes per pixel of the frame.
    pub fn new(width: usize, height: usize, params: &RidgeParams, roi: RoiParams, search: Search) -> Option<Self> {
        let halo_px = params.halo_px();
        if roi.tile_px == 0 || roi.side_px == 0 {
            return None;
        }
        let side = roi.tile_px.checked_add(2 * halo_px)?;
        let tile_crop = (side.min(width), side.min(height));
        if roi.tile_px >= width || roi.tile_px >= height || tile_crop == (width, height) {
            return None;
        }
        // A square as large as the frame is the whole frame, which needs no crop.
        let square = roi::search_tile(0, width, height, roi.side_px);
        let square_crop =
            if square == Roi::whole(width, height) { 0 } else { area(square.grown(halo_px, (width, height))) };
        let crop_capacity_px = (tile_crop.0 * tile_crop.1).max(square_crop).max(width * height / 4);
        // As wide as the frame, so that a crop of any shape with that many pixels fits.
        let rows = crop_capacity_px.div_ceil(width).min(height);
        // `cover`'s tiles, two beyond the tip, and a square.
        let most = (width * height).div_ceil(roi.tile_px * roi.tile_px) + 3;
        let (cols, grid_rows) = roi::search_grid(width, height, roi.side_px);
        Some(TiledRidge {
            roi,
            search,
            frame_px: (width, height),
            halo_px,
            crop_capacity_px,
            detector: RidgeDetector::for_part(width, rows, params.clone(), ImageSides::ALL),
            input: Plane::new(width, rows),
            map: RidgeMap::new(width, rows),
            thick_mask: Plane::new(width, height),
            inside: Plane::new(width, height),
            tiles: Vec::with_capacity(most),
            ahead: Vec::with_capacity(2),
            regions: Vec::with_capacity(most),
            next: Vec::with_capacity(most),
            written: Vec::with_capacity(most),
            square: None,
            sample: Sample::None,
            searching: false,
            search_next: 0,
            square_noise: vec![None; cols * grid_rows],
            cut_at: None,
            missed: false,
            since_measured: 0,
            tracked: false,
            tiles_only: Vec::with_capacity(most),
            with_look: Vec::with_capacity(most),
            deferred: None,
        })
    }

    /// Chooses this frame's regions along `prior` (the tracked centerline, or the last one seen
    /// where none is tracked, proximal first; empty: none), which is `anchored` where it is
    /// tracked and its proximal end lies at the frame's border or the field's edge. False when
    /// the whole frame is to be filtered instead.
    ///
    /// A wire comes into view across the field's edge. A centerline whose proximal end lies
    /// inside the field is a piece of one (its proximal part broken off at a crossing, or a
    /// structure that is no wire): the rest of it may lie anywhere, so the search goes on
    /// beside its tiles.
    ///
    /// With [`Search::Auto`], `whole_affordable` says whether a whole frame can make this
    /// frame's deadline for the search, and `look_affordable` for a look beyond tracked tiles.
    /// With squares, or [`Looks::BetweenFrames`], the tiles reach `AHEAD_PX` (64 px) beyond the tip.
    pub fn plan(
        &mut self,
        prior: &[[f32; 2]],
        anchored: bool,
        whole_affordable: bool,
        look_affordable: bool,
        looks: Looks,
    ) -> bool {
        self.drop_look();
        let (w, h) = self.frame_px;
        let tracked = !prior.is_empty();
        let squares = match self.search {
            Search::Auto if tracked => !look_affordable,
            Search::Auto => !whole_affordable,
            Search::Whole => false,
            Search::Squares => true,
        };
        let side = self.roi.side_px;
        self.since_measured = self.since_measured.saturating_add(1);
        let tiled = tracked && roi::cover(prior, w, h, self.roi, &mut self.tiles);
        if tiled && (squares || looks == Looks::BetweenFrames) {
            if let Some(ahead) = beyond_tip(prior, w, h) {
                if roi::cover(&ahead, w, h, self.roi, &mut self.ahead) {
                    self.tiles.extend_from_slice(&self.ahead);
                }
            }
        }
        self.next.clear();
        if tiled {
            self.merge();
        }
        self.tiles_only.clone_from(&self.next);
        self.tracked = tracked;
        let last_tiles = &self.regions[..self.regions.len() - usize::from(self.square.is_some())];
        let stuck = self.cut_at.filter(|_| tiled && self.next == last_tiles);
        let every = if squares { SQUARE_EVERY } else { WHOLE_FRAME_EVERY };
        let look = !tiled || !anchored || (squares && self.missed) || self.since_measured >= every;
        // The square beside the tiles, if any, and where it measures the noise.
        let square = match stuck {
            _ if !(look || stuck.is_some()) => None,
            _ if !squares => Some((Roi::whole(w, h), Sample::Whole)),
            Some(at) if side < w && side < h => Some((roi::centred(at, w, h, side), Sample::None)),
            _ => {
                let k = self.search_next % self.square_noise.len();
                self.search_next = k + 1;
                Some((roi::search_tile(k, w, h, side), Sample::Square(k)))
            }
        };
        if let Some((square, _)) = square {
            self.next.retain(|&t| !holds(square, t));
            self.next.push(square);
        }
        let (frame_px, halo_px) = (self.frame_px, self.halo_px);
        let pixels: usize = self.next.iter().map(|&r| area(r.grown(halo_px, frame_px))).sum();
        let whole = Roi::whole(w, h);
        // Too many tiles for `cover`, or crops as costly as the frame.
        if (tracked && !tiled) || pixels >= w * h || self.next == [whole] {
            self.next.clear();
            self.next.push(whole);
            (self.square, self.sample) = (None, Sample::Whole);
        } else {
            self.square = square.map(|(r, _)| r);
            self.sample = square.map_or(Sample::None, |(_, sample)| sample);
        }
        self.searching = !tracked && self.sample != Sample::Whole;
        std::mem::swap(&mut self.regions, &mut self.next);
        self.regions != [whole]
    }

    /// Leaves the last plan's look beyond the tiles (its square, or the whole frame) for after
    /// the frame's answer: its regions become the tiles alone, and nothing is searched or
    /// measured in them, until [`TiledRidge::resume_look`] gives the look back. False, and
    /// nothing changed, where the plan has no look, or follows a wire on no tiles (too many
    /// to cover), or on tiles that cost as much as the frame.
    pub fn defer_look(&mut self) -> bool {
        let (w, h) = self.frame_px;
        let tiles_px: usize = self.tiles_only.iter().map(|&r| area(r.grown(self.halo_px, self.frame_px))).sum();
        if !self.has_look() || (self.tracked && self.tiles_only.is_empty()) || tiles_px >= w * h {
            return false;
        }
        self.deferred = Some((self.sample, self.searching));
        self.with_look.clone_from(&self.regions);
        self.regions.clone_from(&self.tiles_only);
        self.sample = Sample::None;
        self.searching = !self.tracked;
        true
    }

    /// The last plan looks beyond the tiles: a square beside them, or the whole frame.
    pub fn has_look(&self) -> bool {
        let (w, h) = self.frame_px;
        self.square.is_some() || self.regions == [Roi::whole(w, h)]
    }

    /// Gives back the look [`TiledRidge::defer_look`] left: the regions are the plan's again.
    /// Returns what `plan` would have (false: the whole frame), or `None` where no look waits.
    pub fn resume_look(&mut self) -> Option<bool> {
        let (sample, searching) = self.deferred.take()?;
        std::mem::swap(&mut self.regions, &mut self.with_look);
        (self.sample, self.searching) = (sample, searching);
        Some(self.regions != [Roi::whole(self.frame_px.0, self.frame_px.1)])
    }

    /// Gives up the look [`TiledRidge::defer_look`] left: the frame was the tiles alone, and
    /// the next plan looks again (the noise depth was not measured).
    pub fn drop_look(&mut self) {
        if self.deferred.take().is_some() {
            self.square = None;
        }
    }

    /// Merges neighbouring tiles (the tiles follow the wire) into `next`, one region where the
    /// crop of their bounding box has no more pixels than theirs and fits the detector.
    fn merge(&mut self) {
        let (frame_px, halo_px) = (self.frame_px, self.halo_px);
        let cost = |r: Roi| area(r.grown(halo_px, frame_px));
        let mut group: Option<Roi> = None;
        for &tile in &self.tiles {
            group = Some(match group {
                None => tile,
                Some(g) => {
                    let both = bounding_box(g, tile);
                    if cost(both) <= (cost(g) + cost(tile)).min(self.crop_capacity_px) {
                        both
                    } else {
                        self.next.push(g);
                        tile
                    }
                }
            });
        }
        self.next.extend(group);
    }

    /// Where this frame's noise depth is to be measured, after the ridge map was filtered: a
    /// square of the search's grid, or the whole frame; `None` when the tiles follow a wire
    /// alone, whose frames keep the noise depth measured before ([`TiledRidge::noise`]).
    pub fn noise_region(&self) -> Option<Roi> {
        match self.sample {
            Sample::None => None,
            Sample::Square(_) => self.square,
            Sample::Whole => Some(Roi::whole(self.frame_px.0, self.frame_px.1)),
        }
    }

    /// Keeps the noise depth measured on [`TiledRidge::noise_region`]: the next
    /// [`SQUARE_EVERY`] - 1 frames on tiles may do without a square.
    pub fn note_noise(&mut self, measured: NoiseSample) {
        match self.sample {
            Sample::None => return,
            Sample::Square(k) => self.square_noise[k] = Some(measured),
            Sample::Whole => self.square_noise.fill(Some(measured)),
        }
        self.since_measured = 0;
    }

    /// The frame's noise depth: the mean of the latest depth measured on each square of the
    /// search, weighted by their samples (zero before any).
    pub fn noise(&self) -> f32 {
        let (sum, samples) = self
            .square_noise
            .iter()
            .flatten()
            .fold((0.0f64, 0usize), |(sum, n), m| (sum + f64::from(m.depth) * m.samples as f64, n + m.samples));
        if samples == 0 {
            0.0
        } else {
            (sum / samples as f64) as f32
        }
    }

    /// Nothing was tracked, and this frame was searched in one square of it.
    pub fn searching(&self) -> bool {
        self.searching
    }

    /// The tiles and square of the last [`TiledRidge::plan`], or the whole frame.
    pub fn regions(&self) -> &[Roi] {
        &self.regions
    }

    /// Pixels the last [`TiledRidge::plan`]'s regions filter: their crops, halo included.
    pub fn filtered_px(&self) -> usize {
        self.regions.iter().map(|&r| area(r.grown(self.halo_px, self.frame_px))).sum()
    }

    /// The ridge map of `input` in this frame's regions into `out`, empty outside them (zero
    /// strength, normal (1, 0)), and the thick mask likewise; after a [`TiledRidge::plan`]
    /// that chose tiles. `out_as_left`: `out` holds what the last call left in it, with
    /// nothing written since but zero strength, so only that call's regions need clearing,
    /// not three planes of the frame (12 MB at 1024²).
    pub fn detect(&mut self, input: &Plane<f32>, out: &mut RidgeMap, out_as_left: bool) {
        if out_as_left {
            self.written.iter().for_each(|&r| out.clear_in(r));
        } else {
            out.clear();
        }
        self.written.iter().for_each(|&r| self.thick_mask.fill_in(r, 0));
        self.written.clone_from(&self.regions);
        for k in 0..self.regions.len() {
            self.filter(input, out, self.regions[k]);
        }
    }

    /// After a [`TiledRidge::resume_look`] that gave back a square, filters the square alone
    /// into `out`, which holds this frame's tiles as [`TiledRidge::detect`] left them: the
    /// map inside the square is the same whoever filters it, so the tiles are not filtered
    /// again. Returns the pixels filtered, the square's crop.
    pub fn detect_look(&mut self, input: &Plane<f32>, out: &mut RidgeMap) -> usize {
        let Some(square) = self.square.filter(|s| self.regions.last() == Some(s)) else {
            return 0;
        };
        self.written.push(square);
        self.filter(input, out, square);
        area(square.grown(self.halo_px, self.frame_px))
    }

    /// The ridge map of `input` in `region`, computed on its crop, into `out` and the thick mask.
    fn filter(&mut self, input: &Plane<f32>, out: &mut RidgeMap, region: Roi) {
        let (w, h) = self.frame_px;
        let crop = region.grown(self.halo_px, self.frame_px);
        debug_assert!(crop.width * crop.height <= self.crop_capacity_px, "{region:?} is no tiles' region");
        self.input.reshape(crop.width, crop.height);
        self.map.reshape(crop.width, crop.height);
        self.detector.reshape(crop.width, crop.height);
        for (y, row) in self.input.data.chunks_exact_mut(crop.width).enumerate() {
            let at = (crop.y + y) * w + crop.x;
            row.copy_from_slice(&input.data[at..at + crop.width]);
        }
        self.detector.set_sides(ImageSides {
            top: crop.y == 0,
            bottom: crop.y + crop.height == h,
            left: crop.x == 0,
            right: crop.x + crop.width == w,
        });
        let inner = Roi { x: region.x - crop.x, y: region.y - crop.y, ..region };
        self.detector.detect_in(&self.input, &mut self.map, inner);
        let thick = self.detector.thick_mask();
        for y in region.y..region.y + region.height {
            let from = (y - crop.y) * crop.width + (region.x - crop.x);
            let (from, to) = (from..from + region.width, y * w + region.x..y * w + region.x + region.width);
            out.strength.data[to.clone()].copy_from_slice(&self.map.strength.data[from.clone()]);
            out.normal_x.data[to.clone()].copy_from_slice(&self.map.normal_x.data[from.clone()]);
            out.normal_y.data[to.clone()].copy_from_slice(&self.map.normal_y.data[from.clone()]);
            self.thick_mask.data[to].copy_from_slice(&thick.data[from]);
        }
    }

    /// Empties `map` and `thick_mask` (a whole frame's, from another backend) outside this
    /// frame's tiles, so that every backend looks where the CPU looks.
    pub fn keep_tiles_only(&mut self, map: &mut RidgeMap, thick_mask: &mut Plane<u8>) {
        let inside = &mut self.inside;
        inside.data.fill(0);
        self.regions.iter().for_each(|&tile| inside.fill_in(tile, 1));
        for (i, &keep) in inside.data.iter().enumerate() {
            if keep == 0 {
                (map.strength.data[i], map.normal_x.data[i], map.normal_y.data[i]) = (0.0, 1.0, 0.0);
                thick_mask.data[i] = 0;
            }
        }
    }

    /// Where the last frame's thick structures were masked, within its tiles.
    pub fn thick_mask(&self) -> &Plane<u8> {
        &self.thick_mask
    }

    /// Notes the centerline found in this frame's regions: one that ends on an inner edge of
    /// them may go on beyond.
    pub fn note_centerline(&mut self, line: &[[f32; 2]]) {
        let (w, h) = self.frame_px;
        self.cut_at = roi::cut_end(line, &self.regions, w, h, roi::CUT_TOLERANCE_PX);
        self.missed = line.is_empty();
    }
}

/// How far (px) beyond a followed wire's tip the tiles reach with the search on squares, or
/// where looks may wait until after the frame's answer: the tip advances, and a crossing can
/// hide a stretch of it, beyond which the centerline would not reach again until the next look.
const AHEAD_PX: f32 = 64.0;

/// The segment from the tip (last point) of `line` to [`AHEAD_PX`] beyond it, in the direction
/// of its last 16 px, within the frame; `None` for a line shorter than that.
fn beyond_tip(line: &[[f32; 2]], w: usize, h: usize) -> Option<[[f32; 2]; 2]> {
    let tip = *line.last()?;
    let back = line.iter().rev().find(|p| (p[0] - tip[0]).hypot(p[1] - tip[1]) >= 16.0)?;
    let (dx, dy) = (tip[0] - back[0], tip[1] - back[1]);
    let scale = AHEAD_PX / dx.hypot(dy);
    let clamp = |v: f32, n: usize| v.clamp(0.0, (n - 1) as f32);
    Some([tip, [clamp(tip[0] + dx * scale, w), clamp(tip[1] + dy * scale, h)]])
}

fn area(r: Roi) -> usize {
    r.width * r.height
}

/// The smallest region that holds both `a` and `b`.
fn bounding_box(a: Roi, b: Roi) -> Roi {
    let (x, y) = (a.x.min(b.x), a.y.min(b.y));
    let right = (a.x + a.width).max(b.x + b.width);
    let bottom = (a.y + a.height).max(b.y + b.height);
    Roi { x, y, width: right - x, height: bottom - y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::bands::tests::{detect_whole, scene};

    const ROI: RoiParams = RoiParams { side_px: 256, tile_px: 48, margin_px: 8.0 };
    const SIZE: (usize, usize) = (256, 240);

    fn tiled(width: usize, height: usize) -> TiledRidge {
        TiledRidge::new(width, height, &RidgeParams::default(), ROI, Search::Whole)
            .expect("tiles smaller than the frame")
    }

    fn inside(tiles: &[Roi], x: usize, y: usize) -> bool {
        tiles.iter().any(|r| (r.x..r.x + r.width).contains(&x) && (r.y..r.y + r.height).contains(&y))
    }

    /// Wires from the top-left corner, to the right border and across the catheter, so
    /// tiles meet every kind of edge: the frame's corners and borders, each other's, and inner
    /// edges.
    const WIRES: [[[f32; 2]; 3]; 3] = [
        [[0.0, 0.0], [40.0, 45.0], [70.0, 50.0]],
        [[180.0, 200.0], [220.0, 210.0], [255.0, 230.0]],
        [[60.0, 120.0], [110.0, 125.0], [150.0, 130.0]],
    ];

    #[test]
    fn inside_the_tiles_the_map_is_the_whole_frame_s_bit_for_bit_and_empty_outside() {
        let (width, height) = SIZE;
        let input = scene(width, height);
        let (whole, whole_thick) = detect_whole(&input);
        assert!(whole_thick.data.contains(&1), "the catheter is masked somewhere");
        let mut stage = tiled(width, height);
        let mut map = RidgeMap::new(width, height);
        let mut thick_inside = 0;
        for wire in WIRES {
            assert!(stage.plan(&wire, true, true, true, Looks::WithinFrame), "a wire is followed by tiles");
            let tiles = stage.regions().to_vec();
            assert!(!tiles.is_empty() && tiles != [Roi::whole(width, height)], "{tiles:?}");
            map.strength.data.fill(f32::NAN);
            stage.detect(&input, &mut map, false);
            for y in 0..height {
                for x in 0..width {
                    let i = y * width + x;
                    let got =
                        (map.strength.data[i], map.normal_x.data[i], map.normal_y.data[i], stage.thick_mask().data[i]);
                    if inside(&tiles, x, y) {
                        let want = (
                            whole.strength.data[i],
                            whole.normal_x.data[i],
                            whole.normal_y.data[i],
                            whole_thick.data[i],
                        );
                        assert_eq!(got.0.to_bits(), want.0.to_bits(), "strength at {x},{y}");
                        assert_eq!(
                            (got.1.to_bits(), got.2.to_bits(), got.3),
                            (want.1.to_bits(), want.2.to_bits(), want.3)
                        );
                        thick_inside += usize::from(got.3);
                    } else {
                        assert_eq!(got, (0.0, 1.0, 0.0, 0), "outside the tiles at {x},{y}");
                    }
                }
            }
        }
        assert!(thick_inside > 0, "the tiles hold some of the catheter's mask");
    }

    /// Frame after frame, with regions that move and change in number, clearing only the last
    /// frame's regions leaves the map and the thick mask as clearing everything does.
    #[test]
    fn clearing_only_the_last_regions_is_clearing_everything() {
        let (width, height) = SIZE;
        let input = scene(width, height);
        // The search on squares: a piece of a wire not anchored has a square beside its tiles.
        let stage = || TiledRidge::new(width, height, &RidgeParams::default(), SEARCH, Search::Squares);
        let (mut kept, mut fresh) = (stage().expect("tiles"), stage().expect("tiles"));
        let (mut kept_map, mut fresh_map) = (RidgeMap::new(width, height), RidgeMap::new(width, height));
        let plans = [(&WIRES[0][..], true), (&WIRES[2], false), (&WIRES[1], true), (&WIRES[2][..2], false)];
        let mut squares = 0;
        for (k, &(wire, anchored)) in plans.iter().chain(&plans).enumerate() {
            for stage in [&mut kept, &mut fresh] {
                assert!(stage.plan(wire, anchored, true, true, Looks::WithinFrame), "plan {k}");
            }
            squares += usize::from(kept.noise_region().is_some());
            kept.detect(&input, &mut kept_map, k > 0);
            fresh_map.strength.data.fill(f32::NAN);
            fresh.detect(&input, &mut fresh_map, false);
            assert_eq!(kept.regions(), fresh.regions());
            assert!(kept_map == fresh_map, "plan {k}: the maps differ");
            assert!(kept.thick_mask() == fresh.thick_mask(), "plan {k}: the thick masks differ");
        }
        assert!(squares >= 2, "{squares} plans with a square");
    }

    #[test]
    fn neighbouring_tiles_along_a_straight_wire_are_merged_and_exact() {
        let (width, height) = SIZE;
        let straight = [[0.0, 100.0], [255.0, 104.0]];
        let mut tiles = Vec::new();
        assert!(roi::cover(&straight, width, height, ROI, &mut tiles));
        let mut stage = tiled(width, height);
        assert!(stage.plan(&straight, true, true, true, Looks::WithinFrame));
        let regions = stage.regions().to_vec();
        assert!(regions.len() < tiles.len(), "{} tiles in {} regions: {regions:?}", tiles.len(), regions.len());
        for t in &tiles {
            let holds = |r: &Roi| {
                r.x <= t.x && r.y <= t.y && t.x + t.width <= r.x + r.width && t.y + t.height <= r.y + r.height
            };
            assert!(regions.iter().any(holds), "{t:?} in none of {regions:?}");
        }
        let input = scene(width, height);
        let (whole, _) = detect_whole(&input);
        let mut map = RidgeMap::new(width, height);
        stage.detect(&input, &mut map, false);
        for r in &regions {
            for y in r.y..r.y + r.height {
                let row = y * width + r.x..y * width + r.x + r.width;
                let same = map.strength.data[row.clone()]
                    .iter()
                    .zip(&whole.strength.data[row])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "row {y} of {r:?}");
            }
        }
    }

    #[test]
    fn another_backend_s_map_is_cut_to_the_same_tiles() {
        let (width, height) = SIZE;
        let input = scene(width, height);
        let mut stage = tiled(width, height);
        assert!(stage.plan(&WIRES[2], true, true, true, Looks::WithinFrame));
        let mut from_tiles = RidgeMap::new(width, height);
        stage.detect(&input, &mut from_tiles, false);
        let (mut whole, mut whole_thick) = detect_whole(&input);
        stage.keep_tiles_only(&mut whole, &mut whole_thick);
        assert_eq!(whole, from_tiles);
        assert_eq!(&whole_thick, stage.thick_mask());
    }

    #[test]
    fn nothing_tracked_or_too_many_tiles_is_the_whole_frame() {
        let (width, height) = SIZE;
        let mut stage = tiled(width, height);
        assert!(!stage.plan(&[], true, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
        // Crops of 48 + 2 × halo px: a wire across the frame would need more pixels of crops
        // than the frame has.
        assert!(!stage.plan(&[[0.0, 0.0], [255.0, 239.0]], true, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
    }

    #[test]
    fn a_centerline_cut_by_a_tile_s_edge_whose_cover_stays_put_gets_the_whole_frame() {
        let (width, height) = SIZE;
        let mut stage = tiled(width, height);
        let short = [[70.0, 70.0], [80.0, 75.0]];
        assert!(stage.plan(&short, true, true, true, Looks::WithinFrame));
        let tile = stage.regions()[0];
        // The centerline ran to the tile's right edge: the wire may go on outside it.
        let edge = (tile.x + tile.width - 1) as f32;
        stage.note_centerline(&[[70.0, 70.0], [edge, 75.0]]);
        // Covering it again gives the same tile, so the stage filters the whole frame.
        assert!(!stage.plan(&short, true, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
        stage.note_centerline(&short);
        assert!(stage.plan(&short, true, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[tile]);
    }

    #[test]
    fn a_centerline_that_does_not_begin_at_the_field_s_edge_gets_the_whole_frame() {
        let mut stage = tiled(SIZE.0, SIZE.1);
        assert!(!stage.plan(&WIRES[2], false, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[Roi::whole(SIZE.0, SIZE.1)]);
        assert!(stage.plan(&WIRES[2], true, true, true, Looks::WithinFrame));
    }

    #[test]
    fn the_whole_frame_comes_round_while_a_wire_is_followed_until_one_is_measured() {
        let (width, height) = SIZE;
        let mut stage = TiledRidge::new(width, height, &RidgeParams::default(), SEARCH, Search::Whole)
            .expect("tiles smaller than the frame");
        let every = WHOLE_FRAME_EVERY as usize;
        let mut whole = Vec::new();
        for i in 0..2 * every + 1 {
            if !stage.plan(&WIRES[0], true, true, true, Looks::WithinFrame) {
                whole.push(i);
                assert_eq!(stage.noise_region(), Some(Roi::whole(width, height)));
                // The first whole frame is abandoned at its deadline before the hysteresis.
                if whole.len() > 1 {
                    stage.note_noise(measured(1.0, 10));
                }
            } else {
                assert_eq!(stage.noise_region(), None);
            }
        }
        assert_eq!(whole, [every - 1, every, 2 * every]);
        // Nothing tracked, or a piece of a wire: the whole frame, with squares smaller than it.
        assert!(!stage.plan(&[], true, true, true, Looks::WithinFrame));
        assert!(!stage.plan(&WIRES[2], false, true, true, Looks::WithinFrame));
        assert!(!stage.searching());
    }

    #[test]
    fn auto_looks_at_the_whole_frame_where_it_is_affordable_and_at_a_square_where_not() {
        let (width, height) = SIZE;
        let mut stage = TiledRidge::new(width, height, &RidgeParams::default(), SEARCH, Search::Auto)
            .expect("tiles smaller than the frame");
        assert!(!stage.plan(&[], true, true, true, Looks::WithinFrame), "the whole frame, affordable");
        assert_eq!(stage.noise_region(), Some(Roi::whole(width, height)));
        assert!(
            stage.plan(&[], true, false, false, Looks::WithinFrame),
            "a square where the whole frame would miss the deadline"
        );
        assert!(stage.searching());
        assert_eq!(stage.regions(), &[roi::search_tile(0, width, height, 128)]);
        assert!(
            stage.plan(&WIRES[2], false, false, false, Looks::WithinFrame),
            "a piece of a wire: its tiles and a square"
        );
        assert_eq!(stage.regions().last(), Some(&roi::search_tile(1, width, height, 128)));
        assert!(!stage.plan(&WIRES[2], false, true, true, Looks::WithinFrame), "the whole frame again once affordable");
        // The search's estimate says yes, the whole frame's last measured cost says no.
        assert!(
            !stage.plan(&[], true, true, false, Looks::WithinFrame),
            "nothing tracked: the search's estimate rules"
        );
        assert!(stage.plan(&WIRES[2], false, true, false, Looks::WithinFrame), "beyond a tracked piece: a square");
        assert_eq!(stage.regions().last(), Some(&roi::search_tile(2, width, height, 128)));
    }

    /// Squares of the search smaller than the frame: a 2 × 2 grid.
    const SEARCH: RoiParams = RoiParams { side_px: 128, ..ROI };

    fn searching(width: usize, height: usize) -> TiledRidge {
        TiledRidge::new(width, height, &RidgeParams::default(), SEARCH, Search::Squares)
            .expect("tiles smaller than the frame")
    }

    fn measured(depth: f32, samples: usize) -> NoiseSample {
        NoiseSample { depth, samples }
    }

    #[test]
    fn with_nothing_tracked_the_frame_is_searched_one_square_a_frame_and_its_noise_measured_there() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        let mut seen = Vec::new();
        for k in 0..5 {
            assert!(stage.plan(&[], true, true, true, Looks::WithinFrame), "a square, not the whole frame");
            assert!(stage.searching());
            let square = roi::search_tile(k, width, height, 128);
            assert_eq!(stage.regions(), &[square]);
            assert_eq!(stage.noise_region(), Some(square));
            stage.note_noise(measured(k as f32, 100));
            seen.push((square.x, square.y));
        }
        assert_eq!(seen, [(0, 0), (128, 0), (0, 112), (128, 112), (0, 0)]);
        // Square 0 measured twice: its latest depth counts, beside the other three.
        assert_eq!(stage.noise(), (4.0 + 1.0 + 2.0 + 3.0) / 4.0);
        let input = scene(width, height);
        let (whole, _) = detect_whole(&input);
        let mut map = RidgeMap::new(width, height);
        stage.detect(&input, &mut map, false);
        let square = stage.regions()[0];
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                let want = if inside(&[square], x, y) { whole.strength.data[i] } else { 0.0 };
                assert_eq!(map.strength.data[i].to_bits(), want.to_bits(), "at {x},{y}");
            }
        }
    }

    #[test]
    fn the_noise_is_the_squares_latest_weighted_by_their_samples_or_the_whole_frame_s() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        assert_eq!(stage.noise(), 0.0, "nothing measured yet");
        stage.plan(&[], true, true, true, Looks::WithinFrame);
        stage.note_noise(measured(1.0, 300));
        stage.plan(&[], true, true, true, Looks::WithinFrame);
        stage.note_noise(measured(2.0, 100));
        assert_eq!(stage.noise(), 1.25);
        // A wire round the frame: tiles as costly as the frame, which is measured whole.
        let round = [[0.0, 0.0], [255.0, 0.0], [255.0, 239.0], [0.0, 239.0], [0.0, 1.0]];
        assert!(!stage.plan(&round, true, true, true, Looks::WithinFrame));
        assert_eq!(stage.noise_region(), Some(Roi::whole(width, height)));
        stage.note_noise(measured(0.5, 1000));
        assert_eq!(stage.noise(), 0.5);
    }

    #[test]
    fn a_square_comes_round_beside_the_tiles_until_one_is_measured() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        let every = SQUARE_EVERY as usize;
        let mut with_square = Vec::new();
        for i in 0..3 * every + 1 {
            assert!(stage.plan(&WIRES[0], true, true, true, Looks::WithinFrame));
            assert!(!stage.searching(), "the wire is followed");
            if let Some(square) = stage.noise_region() {
                with_square.push(i);
                assert_eq!(stage.regions().last(), Some(&square), "after the tiles");
                let mut tiles = Vec::new();
                roi::cover(&WIRES[0], width, height, SEARCH, &mut tiles);
                assert!(tiles.iter().all(|&t| stage.regions().iter().any(|&r| holds(r, t))), "{:?}", stage.regions());
                // The first square is abandoned at its deadline before the hysteresis.
                if with_square.len() > 1 {
                    stage.note_noise(measured(1.0, 10));
                }
            } else {
                let grid = (0..4).map(|k| roi::search_tile(k, width, height, 128));
                assert!(grid.into_iter().all(|q| !stage.regions().contains(&q)), "{:?}", stage.regions());
            }
        }
        assert_eq!(with_square, [every - 1, every, 2 * every, 3 * every]);
    }

    #[test]
    fn a_look_left_for_later_is_the_tiles_alone_until_it_is_given_back_or_given_up() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        let mut tiles = Vec::new();
        roi::cover(&WIRES[0], width, height, SEARCH, &mut tiles);
        // Nothing planned to look beyond the tiles: nothing to leave, until a square comes round.
        let mut square = None;
        for _ in 0..SQUARE_EVERY {
            assert!(stage.plan(&WIRES[0], true, true, true, Looks::WithinFrame));
            square = stage.noise_region();
            if square.is_some() {
                break;
            }
            assert!(!stage.defer_look());
        }
        let square = square.expect("a square comes round");
        // The square beside the tiles, left for later: the tiles alone, nothing measured.
        let planned = stage.regions().to_vec();
        assert!(stage.defer_look());
        assert!(!stage.regions().contains(&square) && stage.noise_region().is_none(), "{:?}", stage.regions());
        assert!(tiles.iter().all(|&t| stage.regions().iter().any(|&r| holds(r, t))), "{:?}", stage.regions());
        assert_eq!(stage.resume_look(), Some(true));
        assert_eq!((stage.regions(), stage.noise_region()), (&planned[..], Some(square)));
        assert_eq!(stage.resume_look(), None, "given back once");
        // Given up, nothing was measured, and the next plan looks again, at the next square.
        assert!(stage.plan(&WIRES[0], true, true, true, Looks::WithinFrame));
        let next = stage.noise_region().expect("the square was not measured");
        assert!(stage.defer_look());
        stage.drop_look();
        assert!(stage.plan(&WIRES[0], true, true, true, Looks::WithinFrame));
        assert!(stage.noise_region().is_some_and(|after| after != next), "{:?}", stage.regions());
        // Nothing followed and the whole frame to search: no regions until it is given back.
        let mut stage = TiledRidge::new(width, height, &RidgeParams::default(), SEARCH, Search::Auto).expect("tiles");
        assert!(!stage.plan(&[], false, true, true, Looks::WithinFrame));
        assert!(stage.defer_look());
        assert!(stage.regions().is_empty() && stage.searching());
        assert_eq!(stage.resume_look(), Some(false));
        assert_eq!(stage.regions(), [Roi::whole(width, height)]);
    }

    #[test]
    fn a_piece_of_a_wire_is_followed_with_the_search_beside_it_and_tiles_inside_the_square_dropped() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        let input = scene(width, height);
        let (whole, _) = detect_whole(&input);
        let mut map = RidgeMap::new(width, height);
        for k in 0..4 {
            assert!(stage.plan(&WIRES[2], false, true, true, Looks::WithinFrame));
            let square = roi::search_tile(k, width, height, 128);
            assert_eq!(stage.noise_region(), Some(square));
            let regions = stage.regions().to_vec();
            assert_eq!(regions.last(), Some(&square));
            assert!(regions[..regions.len() - 1].iter().all(|&t| !holds(square, t)), "{regions:?}");
            let mut tiles = Vec::new();
            roi::cover(&WIRES[2], width, height, SEARCH, &mut tiles);
            for t in tiles {
                assert!(regions.iter().any(|&r| holds(r, t)), "{t:?} in none of {regions:?}");
            }
            stage.detect(&input, &mut map, false);
            for y in 0..height {
                for x in 0..width {
                    let i = y * width + x;
                    let want = if inside(&regions, x, y) { whole.strength.data[i] } else { 0.0 };
                    assert_eq!(map.strength.data[i].to_bits(), want.to_bits(), "{k}: at {x},{y}");
                }
            }
            stage.note_noise(measured(1.0, 10));
        }
    }

    #[test]
    fn after_a_frame_whose_regions_held_no_wire_a_square_comes_beside_the_tiles() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        assert!(stage.plan(&WIRES[1], true, true, true, Looks::WithinFrame));
        assert_eq!(stage.noise_region(), None, "tiles alone");
        stage.note_centerline(&[]);
        assert!(stage.plan(&WIRES[1], true, true, true, Looks::WithinFrame));
        assert!(stage.noise_region().is_some(), "the wire was not in its tiles: a square too");
        stage.note_centerline(&WIRES[1]);
        assert!(stage.plan(&WIRES[1], true, true, true, Looks::WithinFrame));
        assert_eq!(stage.noise_region(), None);
    }

    #[test]
    fn with_squares_or_looks_between_frames_the_tiles_reach_beyond_the_tip_along_the_wire() {
        let (width, height) = SIZE;
        let wire = [[0.0, 100.0], [40.0, 100.0], [60.0, 100.0]];
        assert_eq!(beyond_tip(&wire, width, height), Some([[60.0, 100.0], [60.0 + AHEAD_PX, 100.0]]));
        assert_eq!(beyond_tip(&[[250.0, 5.0], [250.0, 30.0]], width, height), Some([[250.0, 30.0], [250.0, 94.0]]));
        assert_eq!(beyond_tip(&[[0.0, 5.0], [10.0, 5.0]], width, height), None, "too short for a direction");
        let diagonal = beyond_tip(&[[200.0, 200.0], [240.0, 230.0]], width, height).expect("direction");
        assert_eq!(diagonal[1], [255.0, 239.0], "kept inside the frame");
        let ahead = ((60.0 + AHEAD_PX) as usize, 100);
        let mut squares = searching(width, height);
        assert!(squares.plan(&wire, true, true, true, Looks::WithinFrame));
        assert!(inside(squares.regions(), ahead.0, ahead.1), "{:?}", squares.regions());
        let mut whole = tiled(width, height);
        assert!(whole.plan(&wire, true, true, true, Looks::WithinFrame));
        assert!(!inside(whole.regions(), ahead.0, ahead.1), "the whole frame looks there instead");
        // Unless the look may wait until after the frame's answer.
        assert!(whole.plan(&wire, true, true, true, Looks::BetweenFrames));
        assert!(inside(whole.regions(), ahead.0, ahead.1), "{:?}", whole.regions());
    }

    #[test]
    fn a_cut_centerline_whose_cover_stays_put_gets_a_square_centred_on_its_cut_end() {
        let (width, height) = SIZE;
        let mut stage = searching(width, height);
        let short = [[70.0, 70.0], [80.0, 75.0]];
        assert!(stage.plan(&short, true, true, true, Looks::WithinFrame));
        let tile = stage.regions()[0];
        let edge = (tile.x + tile.width - 1) as f32;
        stage.note_centerline(&[[70.0, 70.0], [edge, 75.0]]);
        assert!(stage.plan(&short, true, true, true, Looks::WithinFrame));
        let square = roi::centred([edge, 75.0], width, height, 128);
        assert_eq!(stage.regions(), &[square], "the tile lies inside the square");
        assert_eq!(stage.noise_region(), None, "a square off the search's grid measures nothing");
        stage.note_centerline(&short);
        assert!(stage.plan(&short, true, true, true, Looks::WithinFrame));
        assert_eq!(stage.regions(), &[tile]);
    }

    #[test]
    fn a_tile_with_its_halo_as_large_as_the_frame_is_no_tiling() {
        for search in [Search::Whole, Search::Squares] {
            assert!(TiledRidge::new(100, 100, &RidgeParams::default(), ROI, search).is_none());
            assert!(TiledRidge::new(500, 20, &RidgeParams::default(), ROI, search).is_none());
        }
    }
}
