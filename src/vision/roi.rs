//! Where the learned engine looks: detect → crop → segment (and, with the same tiles, the
//! classical ridge stage: [`tiles`](super::tiles)).
//!
//! The network costs per pixel, so it runs on squares along the tracked wire rather than on
//! the whole frame. The wire is covered by tiles ([`cover`]): walking the last frame's
//! centerline from its proximal end, each tile takes as much of it as fits with a margin on
//! every side (the wire advances and breathes between frames), centred on that run. A wire of
//! any length costs about its own length in tiles, not the frame's area: at 512², a 480 px
//! wire needs five or six 128² tiles, a third of the frame's pixels. The whole frame is the
//! region only when the tiles would cover as many pixels as it has, and when a centerline
//! ended on an inner edge of the tiles and covering it again would not move them: the wire may
//! go on beyond.
//!
//! With nothing to follow (the first frames, tracking lost) the whole frame is segmented where
//! that makes the frame's deadline (offline, or on a fast enough box), else one larger square
//! a frame ([`search_tile`]), so every frame keeps the pace of a few tiles: on one core of
//! this machine a whole 512² frame costs more than a frame's budget. A wire anywhere is in
//! view within as many frames as there are squares (4 at 512²); what a partial search finds,
//! or does not, is flagged degraded in its message. A square where something reached the
//! hysteresis' seed without becoming a wire (a stub entering the frame) is searched again,
//! centred there ([`centred`]), for a frame or two before the search moves on (the
//! pipeline's `Learned`).

use super::features::Roi;

/// The regions of the next frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiParams {
    /// Side (px) of the squares of the search.
    pub side_px: usize,
    /// Side (px) of the tiles that cover a tracked wire. Each pixel costs the same, and a tile
    /// is there for its inside beyond the margin: a 480 px wire takes seven 96² tiles (65 k
    /// px), against six 128² tiles with 24 px to spare (98 k px) or seven with 32 px.
    pub tile_px: usize,
    /// How far (px) beyond the last centerline a tile must reach: room for the wire to move,
    /// and context for the network. 16 px cost little against 32 in the learned engine's eval
    /// (extreme clDice 0.642 -> 0.639 offline, 0.552 -> 0.541 in real time; README).
    pub margin_px: f32,
}

impl Default for RoiParams {
    fn default() -> Self {
        RoiParams { side_px: 256, tile_px: 96, margin_px: 16.0 }
    }
}

/// Steps (px) along the centerline at which [`cover`] checks that it is covered: below the
/// margin, so that a long straight segment between two distant points is covered too.
const COVER_STEP_PX: f32 = 4.0;

/// Covers the tracked wire `prior` (points in pixels, proximal first) of a `frame_w` ×
/// `frame_h` frame with tiles of side `params.tile_px` into `tiles`, every point of the
/// polyline at least `params.margin_px` inside one of them or at the frame's border. False, and
/// `tiles` empty, when the whole frame should be segmented instead: nothing is tracked, the
/// tile is not smaller than the frame, or the tiles would cover as many pixels as the frame has.
/// `tiles` never holds as many as `frame_w * frame_h / tile_px²` (rounded up) entries.
pub fn cover(prior: &[[f32; 2]], frame_w: usize, frame_h: usize, params: RoiParams, tiles: &mut Vec<Roi>) -> bool {
    tiles.clear();
    let side = params.tile_px;
    if prior.is_empty() || side >= frame_w || side >= frame_h {
        return false;
    }
    // This many tiles would cover as many pixels as the frame has.
    let most = (frame_w * frame_h).div_ceil(side * side);
    let (mut run, mut last): (Option<Bounds>, Option<[f32; 2]>) = (None, None);
    for p in along(prior) {
        let grown = run.map_or(Bounds::at(p), |b| b.with(p));
        if grown.fits(frame_w, frame_h, side, params.margin_px) {
            (run, last) = (Some(grown), Some(p));
            continue;
        }
        // The tile about to be made and the last one.
        if tiles.len() + 2 >= most {
            tiles.clear();
            return false;
        }
        if let Some(b) = run {
            tiles.push(b.square(frame_w, frame_h, side, params.margin_px));
        }
        // The next run starts at the last point of this one, so that the step between them
        // lies wholly in one tile.
        run = Some(last.map_or(Bounds::at(p), |l| Bounds::at(l).with(p)));
        last = Some(p);
    }
    if let Some(b) = run {
        tiles.push(b.square(frame_w, frame_h, side, params.margin_px));
    }
    true
}

/// The square of side `side_px` centred on `at`, pushed inside a `frame_w` × `frame_h` frame.
pub fn centred(at: [f32; 2], frame_w: usize, frame_h: usize, side_px: usize) -> Roi {
    Bounds::at(at).square(frame_w, frame_h, side_px, 0.0)
}

/// Whether `outer` holds all of `inner`.
pub fn holds(outer: Roi, inner: Roi) -> bool {
    outer.x <= inner.x
        && outer.y <= inner.y
        && inner.x + inner.width <= outer.x + outer.width
        && inner.y + inner.height <= outer.y + outer.height
}

/// The points of the polyline `line` and between them, no more than [`COVER_STEP_PX`] apart.
fn along(line: &[[f32; 2]]) -> impl Iterator<Item = [f32; 2]> + '_ {
    let between = line.windows(2).flat_map(|s| {
        let (a, b) = (s[0], s[1]);
        let steps = ((b[0] - a[0]).hypot(b[1] - a[1]) / COVER_STEP_PX).ceil().max(1.0) as usize;
        (0..steps).map(move |k| {
            let t = k as f32 / steps as f32;
            [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
        })
    });
    between.chain(line.last().copied())
}

/// The bounding box of a run of points (pixels).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Bounds {
    fn at(p: [f32; 2]) -> Self {
        Bounds { x0: p[0], y0: p[1], x1: p[0], y1: p[1] }
    }

    fn with(self, p: [f32; 2]) -> Self {
        Bounds { x0: self.x0.min(p[0]), y0: self.y0.min(p[1]), x1: self.x1.max(p[0]), y1: self.y1.max(p[1]) }
    }

    /// The box grown by `margin` on every side, within the frame.
    fn grown(self, frame_w: usize, frame_h: usize, margin: f32) -> Bounds {
        Bounds {
            x0: (self.x0 - margin).max(0.0),
            y0: (self.y0 - margin).max(0.0),
            x1: (self.x1 + margin).min((frame_w - 1) as f32),
            y1: (self.y1 + margin).min((frame_h - 1) as f32),
        }
    }

    /// Whether the box with its margin fits in a square of side `side`.
    fn fits(self, frame_w: usize, frame_h: usize, side: usize, margin: f32) -> bool {
        let g = self.grown(frame_w, frame_h, margin);
        g.x1 - g.x0 + 1.0 <= side as f32 && g.y1 - g.y0 + 1.0 <= side as f32
    }

    /// The square of side `side` centred on the box with its margin, pushed inside the frame.
    fn square(self, frame_w: usize, frame_h: usize, side: usize, margin: f32) -> Roi {
        let g = self.grown(frame_w, frame_h, margin);
        let start = |lo: f32, hi: f32, frame: usize| {
            let centred = (0.5 * (lo + hi) - 0.5 * side as f32).round().max(0.0) as usize;
            centred.min(frame - side)
        };
        Roi { x: start(g.x0, g.x1, frame_w), y: start(g.y0, g.y1, frame_h), width: side, height: side }
    }
}

/// The `k`-th square of the search (cyclic): squares of side `side_px` on a grid that covers a
/// `frame_w` × `frame_h` frame, the last row and column pushed inside the frame, row by row.
/// A side longer than the frame's is cut to it (one square: the whole frame).
pub fn search_tile(k: usize, frame_w: usize, frame_h: usize, side_px: usize) -> Roi {
    let (cols, rows) = search_grid(frame_w, frame_h, side_px);
    let (width, height) = (side_px.min(frame_w), side_px.min(frame_h));
    let k = k % (cols * rows);
    let (i, j) = (k % cols, k / cols);
    let (x, y) = ((i * side_px).min(frame_w - width), (j * side_px).min(frame_h - height));
    Roi { x, y, width, height }
}

/// Columns and rows of the search's grid ([`search_tile`]).
pub fn search_grid(frame_w: usize, frame_h: usize, side_px: usize) -> (usize, usize) {
    let side = side_px.max(1);
    (frame_w.div_ceil(side).max(1), frame_h.div_ceil(side).max(1))
}

/// How far (px) `p` lies inside `roi` from its nearest edge that is not the frame's border
/// (infinite where every edge is the border); negative beyond such an edge. A point refined
/// past the frame's border is still inside.
pub fn depth_inside(p: [f32; 2], roi: Roi, frame_w: usize, frame_h: usize) -> f32 {
    depth_along(p[0], roi.x, roi.width, frame_w).min(depth_along(p[1], roi.y, roi.height, frame_h))
}

/// [`depth_inside`] along one axis: how far `at` lies inside `start..start + len` from its
/// ends that are not the frame's (`0..frame_len`). A region's depth is separable, so a caller
/// filling a region takes it once per row and once per column.
pub fn depth_along(at: f32, start: usize, len: usize, frame_len: usize) -> f32 {
    let mut depth = f32::INFINITY;
    if start > 0 {
        depth = depth.min(at - start as f32);
    }
    if start + len < frame_len {
        depth = depth.min((start + len - 1) as f32 - at);
    }
    depth
}

/// How near (px) an inner edge of its regions a centerline may end before the wire is taken to
/// go on beyond it ([`cut_by_edge`]): the refined end of a wire cut by the edge lies a pixel or
/// two inside.
pub const CUT_TOLERANCE_PX: f32 = 3.0;

/// Whether a centerline ends within `tolerance_px` of an edge of the `regions` it was found in
/// that is not the frame's border, deeper inside none of them: the wire may go on outside.
pub fn cut_by_edge(line: &[[f32; 2]], regions: &[Roi], frame_w: usize, frame_h: usize, tolerance_px: f32) -> bool {
    cut_end(line, regions, frame_w, frame_h, tolerance_px).is_some()
}

/// The end of a centerline that [`cut_by_edge`] finds cut, the distal one first (a wire
/// grows at its tip).
pub fn cut_end(
    line: &[[f32; 2]],
    regions: &[Roi],
    frame_w: usize,
    frame_h: usize,
    tolerance_px: f32,
) -> Option<[f32; 2]> {
    let near_edge = |p: &[f32; 2]| {
        let deepest = regions.iter().map(|&roi| depth_inside(*p, roi, frame_w, frame_h)).fold(f32::MIN, f32::max);
        deepest <= tolerance_px
    };
    [line.last(), line.first()].into_iter().flatten().copied().find(near_edge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: RoiParams = RoiParams { side_px: 256, tile_px: 128, margin_px: 32.0 };

    fn covered(prior: &[[f32; 2]], w: usize, h: usize) -> Option<Vec<Roi>> {
        let mut tiles = Vec::new();
        cover(prior, w, h, P, &mut tiles).then_some(tiles)
    }

    /// Every point of `line`, a pixel apart, with its margin (within the frame) inside a tile.
    fn every_point_has_its_margin(line: &[[f32; 2]], tiles: &[Roi], w: usize, h: usize) -> Result<(), String> {
        for s in line.windows(2) {
            let steps = (s[1][0] - s[0][0]).hypot(s[1][1] - s[0][1]).ceil().max(1.0) as usize;
            for k in 0..=steps {
                let t = k as f32 / steps as f32;
                let p = [s[0][0] + t * (s[1][0] - s[0][0]), s[0][1] + t * (s[1][1] - s[0][1])];
                let m = P.margin_px - 1.0;
                let inside = |r: &Roi| {
                    let fits = |v: f32, lo: usize, len: usize, frame: usize| {
                        (v - m).max(0.0) >= lo as f32 && (v + m).min((frame - 1) as f32) <= (lo + len - 1) as f32
                    };
                    fits(p[0], r.x, r.width, w) && fits(p[1], r.y, r.height, h)
                };
                if !tiles.iter().any(inside) {
                    return Err(format!("{p:?} without its margin in {tiles:?}"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn nothing_tracked_is_no_cover() {
        assert_eq!(covered(&[], 512, 512), None);
    }

    #[test]
    fn a_short_wire_gets_one_tile_centred_on_it_and_kept_inside_the_frame() {
        assert_eq!(
            covered(&[[200.0, 220.0], [240.0, 260.0]], 512, 512),
            Some(vec![Roi { x: 156, y: 176, width: 128, height: 128 }])
        );
        let corner = covered(&[[0.0, 500.0], [30.0, 470.0]], 512, 512);
        assert_eq!(corner, Some(vec![Roi { x: 0, y: 384, width: 128, height: 128 }]), "pushed inside at the corner");
    }

    /// A long straight wire with points only at its ends is covered along its whole length,
    /// by about its length in tiles rather than by the frame.
    #[test]
    fn a_long_wire_is_covered_along_its_length() {
        let line = [[10.0, 40.0], [500.0, 300.0]];
        let tiles = covered(&line, 512, 512).expect("tiles, not the whole frame");
        assert!((6..=9).contains(&tiles.len()), "{tiles:?}");
        every_point_has_its_margin(&line, &tiles, 512, 512).expect("covered");
    }

    #[test]
    fn a_wire_that_winds_over_the_whole_frame_gets_the_whole_frame() {
        let winding: Vec<[f32; 2]> =
            (0..8).flat_map(|r| [[5.0, 5.0 + 64.0 * r as f32], [506.0, 5.0 + 64.0 * r as f32]]).collect();
        assert_eq!(covered(&winding, 512, 512), None);
    }

    #[test]
    fn a_frame_no_larger_than_the_tile_is_segmented_whole() {
        assert_eq!(covered(&[[10.0, 10.0], [20.0, 20.0]], 128, 300), None);
    }

    #[test]
    fn a_square_centred_on_a_point_stays_inside_the_frame() {
        assert_eq!(centred([200.0, 40.0], 512, 512, 256), Roi { x: 72, y: 0, width: 256, height: 256 });
        assert_eq!(centred([500.0, 300.0], 512, 512, 256), Roi { x: 256, y: 172, width: 256, height: 256 });
    }

    proptest! {
        #[test]
        fn any_wire_is_covered_with_its_margin_or_gets_the_whole_frame(
            points in prop::collection::vec((0.0f32..511.0, 0.0f32..383.0), 1..12),
        ) {
            let line: Vec<[f32; 2]> = points.iter().map(|&(x, y)| [x, y]).collect();
            let mut tiles = Vec::with_capacity(512 * 384 / (128 * 128));
            let capacity = tiles.capacity();
            if cover(&line, 512, 384, P, &mut tiles) {
                prop_assert!(tiles.len() * 128 * 128 < 512 * 384, "{} tiles cost more than the frame", tiles.len());
                prop_assert!(tiles.iter().all(|t| t.x + t.width <= 512 && t.y + t.height <= 384));
                prop_assert_eq!(every_point_has_its_margin(&line, &tiles, 512, 384), Ok(()));
            } else {
                prop_assert!(tiles.is_empty());
            }
            prop_assert_eq!(tiles.capacity(), capacity, "no allocation");
        }
    }

    #[test]
    fn the_search_covers_the_frame_square_by_square() {
        let tiles: Vec<Roi> = (0..5).map(|k| search_tile(k, 512, 512, 256)).collect();
        let at: Vec<(usize, usize)> = tiles.iter().map(|t| (t.x, t.y)).collect();
        assert_eq!(at, [(0, 0), (256, 0), (0, 256), (256, 256), (0, 0)]);
        let odd: Vec<(usize, usize)> = (0..6).map(|k| search_tile(k, 600, 300, 256)).map(|t| (t.x, t.y)).collect();
        assert_eq!(odd, [(0, 0), (256, 0), (344, 0), (0, 44), (256, 44), (344, 44)], "the last ones pushed inside");
        assert_eq!(search_grid(600, 300, 256), (3, 2));
        let short = search_tile(1, 600, 200, 256);
        assert_eq!(short, Roi { x: 256, y: 0, width: 256, height: 200 }, "cut to a frame less high than a square");
        assert_eq!(search_tile(0, 200, 100, 256), Roi::whole(200, 100));
    }

    #[test]
    fn an_end_on_an_inner_edge_is_a_cut_one_on_the_frame_border_or_inside_another_region_is_not() {
        let roi = [Roi { x: 100, y: 0, width: 256, height: 256 }];
        assert!(cut_by_edge(&[[101.0, 50.0], [200.0, 50.0]], &roi, 512, 512, 2.0), "left edge is inside the frame");
        assert!(!cut_by_edge(&[[200.0, 0.5], [200.0, 100.0]], &roi, 512, 512, 2.0), "top edge is the frame's");
        assert!(cut_by_edge(&[[200.0, 100.0], [200.0, 254.5]], &roi, 512, 512, 2.0), "bottom edge");
        assert!(!cut_by_edge(&[[150.0, 100.0], [200.0, 120.0]], &roi, 512, 512, 2.0));
        let two = [roi[0], Roi { x: 0, y: 0, width: 128, height: 128 }];
        assert!(!cut_by_edge(&[[101.0, 50.0], [200.0, 50.0]], &two, 512, 512, 2.0), "deep inside the other tile");
        assert!(!cut_by_edge(&[[200.0, -0.4], [200.0, 100.0]], &roi, 512, 512, 2.0), "refined past the border");
        assert!(cut_by_edge(&[[200.0, 100.0], [200.0, 300.0]], &roi, 512, 512, 2.0), "beyond an inner edge");
        let both = [[101.0, 50.0], [200.0, 254.5]];
        assert_eq!(cut_end(&both, &roi, 512, 512, 2.0), Some([200.0, 254.5]), "the distal end first");
        assert_eq!(cut_end(&[[101.0, 50.0], [200.0, 50.0]], &roi, 512, 512, 2.0), Some([101.0, 50.0]));
        assert_eq!(cut_end(&[[150.0, 100.0], [200.0, 120.0]], &roi, 512, 512, 2.0), None);
    }
}
