//! The ridge stage on tiles along the tracked wire: detect → crop → filter, on the classical
//! path as on the learned one ([`roi`]).
//!
//! The filters cost per pixel, and a tracked wire lies within a few pixels of where it was:
//! the frame's ridge map is needed only near the last centerline. The tiles are chosen as the
//! learned engine's are ([`roi::cover`]); neighbours along the wire are merged into their
//! bounding box where its crop costs no more pixels (a straight stretch of wire). Each region
//! is computed on a crop of the frame with the ridge stage's halo around it
//! ([`RidgeParams::halo_px`]), so inside a region the map is the whole frame's, bit for bit,
//! and regions that overlap agree. Outside them the map is empty: the wire is sought where it
//! was.
//!
//! The whole frame is filtered when nothing is tracked, when the tracked centerline does not
//! begin at the frame's border or the field's edge (a piece of a wire, or no wire), when the
//! crops would cost as many pixels as the frame, when a centerline ended on an inner edge of
//! the regions and covering it again would not move them, and at least once every
//! [`WHOLE_FRAME_EVERY`] frames.

use super::features::Roi;
use super::ridge::{ImageSides, RidgeDetector, RidgeMap, RidgeParams};
use super::roi::{self, RoiParams};
use super::Plane;

/// The ridge stage on tiles, with every plane and list made at start for one frame size.
#[derive(Debug)]
pub struct TiledRidge {
    roi: RoiParams,
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
    /// This frame's regions: tiles, or neighbouring tiles merged into their bounding box where
    /// its crop has no more pixels than theirs; the whole frame alone when it is filtered whole.
    regions: Vec<Roi>,
    next: Vec<Roi>,
    /// The last centerline ended on an inner edge of its regions.
    cut: bool,
    /// Frames planned since a whole frame last went through to the hysteresis
    /// ([`TiledRidge::whole_frame_measured`]): one abandoned at its deadline does not count.
    since_measured: u32,
}

/// The whole frame is filtered at least once in this many frames (a second at 15 fps), tracked
/// wire or not: the hysteresis' noise depth is measured on it (tiles near a wire are no sample
/// of the frame's noise), and a wire elsewhere can take over from a track that was wrong.
pub const WHOLE_FRAME_EVERY: u32 = 15;

impl TiledRidge {
    /// The stage for `width` × `height` frames with tiles as `roi` says (its `side_px` is not
    /// used: with nothing tracked the frame is filtered whole); `None` when a tile with its
    /// halo would be the whole frame.
    ///
    /// Crops hold up to a quarter of the frame (or one tile's, where that is more): the stage's
    /// planes take about 14 bytes per pixel of the frame.
    pub fn new(width: usize, height: usize, params: &RidgeParams, roi: RoiParams) -> Option<Self> {
        let halo_px = params.halo_px();
        if roi.tile_px == 0 {
            return None;
        }
        let side = roi.tile_px.checked_add(2 * halo_px)?;
        let tile_crop = (side.min(width), side.min(height));
        if roi.tile_px >= width || roi.tile_px >= height || tile_crop == (width, height) {
            return None;
        }
        let crop_capacity_px = (tile_crop.0 * tile_crop.1).max(width * height / 4);
        // As wide as the frame, so that a crop of any shape with that many pixels fits.
        let rows = crop_capacity_px.div_ceil(width);
        let most = (width * height).div_ceil(roi.tile_px * roi.tile_px);
        Some(TiledRidge {
            roi,
            frame_px: (width, height),
            halo_px,
            crop_capacity_px,
            detector: RidgeDetector::for_part(width, rows, params.clone(), ImageSides::ALL),
            input: Plane::new(width, rows),
            map: RidgeMap::new(width, rows),
            thick_mask: Plane::new(width, height),
            inside: Plane::new(width, height),
            tiles: Vec::with_capacity(most),
            regions: Vec::with_capacity(most),
            next: Vec::with_capacity(most),
            cut: false,
            since_measured: 0,
        })
    }

    /// Chooses this frame's tiles along `prior` (the tracked centerline, proximal first; empty:
    /// none), which is `anchored` where its proximal end lies at the frame's border or the
    /// field's edge. False when the whole frame is to be filtered instead.
    ///
    /// A wire comes into view across the field's edge. A centerline whose proximal end lies
    /// inside the field is a piece of one (its proximal part broken off at a crossing, or a
    /// structure that is no wire): the rest of it may lie anywhere, so the frame is filtered
    /// whole.
    pub fn plan(&mut self, prior: &[[f32; 2]], anchored: bool) -> bool {
        let (w, h) = self.frame_px;
        let tiled = anchored
            && self.since_measured + 1 < WHOLE_FRAME_EVERY
            && roi::cover(prior, w, h, self.roi, &mut self.tiles)
            && self.merge() < w * h
            && !(self.cut && self.next == self.regions);
        self.since_measured = self.since_measured.saturating_add(1);
        if !tiled {
            self.next.clear();
            self.next.push(Roi::whole(w, h));
        }
        std::mem::swap(&mut self.regions, &mut self.next);
        tiled
    }

    /// Merges neighbouring tiles (the tiles follow the wire) into `next`, one region where the
    /// crop of their bounding box has no more pixels than theirs and fits the detector;
    /// returns the pixels of all the crops.
    fn merge(&mut self) -> usize {
        self.next.clear();
        let (frame_px, halo_px) = (self.frame_px, self.halo_px);
        let area = |r: Roi| {
            let c = crop_of(r, frame_px, halo_px);
            c.width * c.height
        };
        let mut total = 0;
        let mut group: Option<Roi> = None;
        for &tile in &self.tiles {
            group = Some(match group {
                None => tile,
                Some(g) => {
                    let both = bounding_box(g, tile);
                    if area(both) <= (area(g) + area(tile)).min(self.crop_capacity_px) {
                        both
                    } else {
                        total += area(g);
                        self.next.push(g);
                        tile
                    }
                }
            });
        }
        if let Some(g) = group {
            total += area(g);
            self.next.push(g);
        }
        total
    }

    /// A whole frame went through to the hysteresis, which measured the frame's noise on it:
    /// the next [`WHOLE_FRAME_EVERY`] - 1 frames may be tiles. Until then every frame is planned
    /// whole (a whole frame abandoned at its deadline measured nothing).
    pub fn whole_frame_measured(&mut self) {
        self.since_measured = 0;
    }

    /// The tiles of the last [`TiledRidge::plan`], or the whole frame.
    pub fn regions(&self) -> &[Roi] {
        &self.regions
    }

    /// The ridge map of `input` in this frame's regions into `out`, empty outside them (zero
    /// strength, normal (1, 0)), and the thick mask likewise; after a [`TiledRidge::plan`]
    /// that chose tiles.
    pub fn detect(&mut self, input: &Plane<f32>, out: &mut RidgeMap) {
        out.clear();
        self.thick_mask.data.fill(0);
        let (w, h) = self.frame_px;
        for k in 0..self.regions.len() {
            let region = self.regions[k];
            let crop = crop_of(region, self.frame_px, self.halo_px);
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
            self.detector.detect(&self.input, &mut self.map);
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
    }

    /// Empties `map` and `thick_mask` (a whole frame's, from another backend) outside this
    /// frame's tiles, so that every backend looks where the CPU looks.
    pub fn keep_tiles_only(&mut self, map: &mut RidgeMap, thick_mask: &mut Plane<u8>) {
        let inside = &mut self.inside;
        inside.data.fill(0);
        for tile in &self.regions {
            for y in tile.y..tile.y + tile.height {
                inside.data[y * inside.width + tile.x..][..tile.width].fill(1);
            }
        }
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

    /// Notes the centerline found in this frame's tiles: one that ends on an inner edge of
    /// them may go on beyond.
    pub fn note_centerline(&mut self, line: &[[f32; 2]]) {
        let (w, h) = self.frame_px;
        self.cut = roi::cut_by_edge(line, &self.regions, w, h, roi::CUT_TOLERANCE_PX);
    }
}

/// The crop of a `frame_px` frame that `region` is computed on: the region with `halo_px` on
/// every side, within the frame.
fn crop_of(region: Roi, (w, h): (usize, usize), halo_px: usize) -> Roi {
    let (x, y) = (region.x.saturating_sub(halo_px), region.y.saturating_sub(halo_px));
    let right = (region.x + region.width + halo_px).min(w);
    let bottom = (region.y + region.height + halo_px).min(h);
    Roi { x, y, width: right - x, height: bottom - y }
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
        TiledRidge::new(width, height, &RidgeParams::default(), ROI).expect("tiles smaller than the frame")
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
            assert!(stage.plan(&wire, true), "a wire is followed by tiles");
            let tiles = stage.regions().to_vec();
            assert!(!tiles.is_empty() && tiles != [Roi::whole(width, height)], "{tiles:?}");
            map.strength.data.fill(f32::NAN);
            stage.detect(&input, &mut map);
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

    #[test]
    fn neighbouring_tiles_along_a_straight_wire_are_merged_and_exact() {
        let (width, height) = SIZE;
        let straight = [[0.0, 100.0], [255.0, 104.0]];
        let mut tiles = Vec::new();
        assert!(roi::cover(&straight, width, height, ROI, &mut tiles));
        let mut stage = tiled(width, height);
        assert!(stage.plan(&straight, true));
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
        stage.detect(&input, &mut map);
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
        assert!(stage.plan(&WIRES[2], true));
        let mut from_tiles = RidgeMap::new(width, height);
        stage.detect(&input, &mut from_tiles);
        let (mut whole, mut whole_thick) = detect_whole(&input);
        stage.keep_tiles_only(&mut whole, &mut whole_thick);
        assert_eq!(whole, from_tiles);
        assert_eq!(&whole_thick, stage.thick_mask());
    }

    #[test]
    fn nothing_tracked_or_too_many_tiles_is_the_whole_frame() {
        let (width, height) = SIZE;
        let mut stage = tiled(width, height);
        assert!(!stage.plan(&[], true));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
        // Crops of 48 + 2 × halo px: a wire across the frame would need more pixels of crops
        // than the frame has.
        assert!(!stage.plan(&[[0.0, 0.0], [255.0, 239.0]], true));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
    }

    #[test]
    fn a_centerline_cut_by_a_tile_s_edge_whose_cover_stays_put_gets_the_whole_frame() {
        let (width, height) = SIZE;
        let mut stage = tiled(width, height);
        let short = [[70.0, 70.0], [80.0, 75.0]];
        assert!(stage.plan(&short, true));
        let tile = stage.regions()[0];
        // The centerline ran to the tile's right edge: the wire may go on outside it.
        let edge = (tile.x + tile.width - 1) as f32;
        stage.note_centerline(&[[70.0, 70.0], [edge, 75.0]]);
        // Covering it again gives the same tile, so the stage filters the whole frame.
        assert!(!stage.plan(&short, true));
        assert_eq!(stage.regions(), &[Roi::whole(width, height)]);
        stage.note_centerline(&short);
        assert!(stage.plan(&short, true));
        assert_eq!(stage.regions(), &[tile]);
    }

    #[test]
    fn a_centerline_that_does_not_begin_at_the_field_s_edge_gets_the_whole_frame() {
        let mut stage = tiled(SIZE.0, SIZE.1);
        assert!(!stage.plan(&WIRES[2], false));
        assert_eq!(stage.regions(), &[Roi::whole(SIZE.0, SIZE.1)]);
        assert!(stage.plan(&WIRES[2], true));
    }

    #[test]
    fn the_whole_frame_comes_round_while_a_wire_is_followed_until_one_is_measured() {
        let mut stage = tiled(SIZE.0, SIZE.1);
        let every = WHOLE_FRAME_EVERY as usize;
        let mut whole = Vec::new();
        for i in 0..2 * every + 1 {
            if !stage.plan(&WIRES[0], true) {
                whole.push(i);
                // The first whole frame is abandoned at its deadline before the hysteresis.
                if whole.len() > 1 {
                    stage.whole_frame_measured();
                }
            }
        }
        assert_eq!(whole, [every - 1, every, 2 * every]);
    }

    #[test]
    fn a_tile_with_its_halo_as_large_as_the_frame_is_no_tiling() {
        assert!(TiledRidge::new(100, 100, &RidgeParams::default(), ROI).is_none());
        assert!(TiledRidge::new(500, 20, &RidgeParams::default(), ROI).is_none());
    }
}
