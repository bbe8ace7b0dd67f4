//! Where the learned engine looks: detect → crop → segment.
//!
//! The network costs per pixel, so it runs on a fixed square around the tracked wire rather
//! than on the whole frame. The square follows the wire: it is centred on the bounding box of
//! the last frame's centerline grown by a margin (the wire advances and breathes between
//! frames). The whole frame is the region when the wire with its margin is longer than the
//! square, and when a centerline ended on the square's edge inside the frame and centring on
//! it again would not move the square: the wire may go on beyond it.
//!
//! With nothing to follow (the first frames, tracking lost) the frame is searched one square
//! a frame ([`search_tile`]), so every frame keeps the pace of a crop: a whole-frame pass costs
//! four times as much at 512², more than a frame's budget. A wire anywhere is in view within
//! as many frames as there are squares (4 at 512²); what a partial search finds, or does not,
//! is flagged degraded in its message.

use super::features::Roi;

/// The region for the next frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiParams {
    /// Side (px) of the square region.
    pub side_px: usize,
    /// How far (px) beyond the last centerline's bounding box the region must reach.
    pub margin_px: f32,
}

impl Default for RoiParams {
    fn default() -> Self {
        RoiParams { side_px: 256, margin_px: 32.0 }
    }
}

/// The region to segment in a `frame_w` × `frame_h` frame, given the tracked wire `prior`
/// (points in pixels; empty when nothing is tracked).
pub fn choose(prior: &[[f32; 2]], frame_w: usize, frame_h: usize, params: RoiParams) -> Roi {
    let whole = Roi::whole(frame_w, frame_h);
    let side = params.side_px;
    if prior.is_empty() || side >= frame_w || side >= frame_h {
        return whole;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in prior {
        (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
    }
    let m = params.margin_px;
    let (x0, y0) = ((x0 - m).max(0.0), (y0 - m).max(0.0));
    let (x1, y1) = ((x1 + m).min((frame_w - 1) as f32), (y1 + m).min((frame_h - 1) as f32));
    if x1 - x0 + 1.0 > side as f32 || y1 - y0 + 1.0 > side as f32 || !(x0 <= x1 && y0 <= y1) {
        return whole;
    }
    let start = |lo: f32, hi: f32, frame: usize| {
        let centred = (0.5 * (lo + hi) - 0.5 * side as f32).round().max(0.0) as usize;
        centred.min(frame - side)
    };
    Roi { x: start(x0, x1, frame_w), y: start(y0, y1, frame_h), width: side, height: side }
}

/// The `k`-th square of the search (cyclic): squares of side `side_px` on a grid that covers a
/// `frame_w` × `frame_h` frame, the last row and column pushed inside the frame, row by row.
pub fn search_tile(k: usize, frame_w: usize, frame_h: usize, side_px: usize) -> Roi {
    let (cols, rows) = (frame_w.div_ceil(side_px).max(1), frame_h.div_ceil(side_px).max(1));
    let k = k % (cols * rows);
    let (i, j) = (k % cols, k / cols);
    let (x, y) = ((i * side_px).min(frame_w - side_px), (j * side_px).min(frame_h - side_px));
    Roi { x, y, width: side_px, height: side_px }
}

/// Whether a centerline ends on an edge of `roi` that is not the frame's border (within
/// `tolerance_px`): the wire may go on outside the region.
pub fn cut_by_edge(line: &[[f32; 2]], roi: Roi, frame_w: usize, frame_h: usize, tolerance_px: f32) -> bool {
    let (l, t) = (roi.x as f32, roi.y as f32);
    let (r, b) = ((roi.x + roi.width - 1) as f32, (roi.y + roi.height - 1) as f32);
    let on_inner_edge = |p: &[f32; 2]| {
        (roi.x > 0 && p[0] - l <= tolerance_px)
            || (roi.y > 0 && p[1] - t <= tolerance_px)
            || (roi.x + roi.width < frame_w && r - p[0] <= tolerance_px)
            || (roi.y + roi.height < frame_h && b - p[1] <= tolerance_px)
    };
    [line.first(), line.last()].into_iter().flatten().any(on_inner_edge)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RoiParams = RoiParams { side_px: 256, margin_px: 32.0 };

    #[test]
    fn nothing_tracked_means_the_whole_frame() {
        assert_eq!(choose(&[], 512, 512, P), Roi::whole(512, 512));
    }

    #[test]
    fn the_region_is_centred_on_the_wire_and_kept_inside_the_frame() {
        let roi = choose(&[[200.0, 220.0], [260.0, 300.0]], 512, 512, P);
        assert_eq!(roi, Roi { x: 102, y: 132, width: 256, height: 256 });
        let roi = choose(&[[0.0, 500.0], [40.0, 450.0]], 512, 512, P);
        assert_eq!(roi, Roi { x: 0, y: 256, width: 256, height: 256 }, "pushed inside at the corner");
    }

    #[test]
    fn a_wire_longer_than_the_region_gets_the_whole_frame() {
        let long = [[10.0, 10.0], [240.0, 20.0]];
        assert_eq!(choose(&long, 512, 512, P), Roi::whole(512, 512), "230 px plus two margins");
        let fits = [[40.0, 10.0], [220.0, 20.0]];
        assert_ne!(choose(&fits, 512, 512, P), Roi::whole(512, 512));
    }

    #[test]
    fn a_frame_no_larger_than_the_region_is_segmented_whole() {
        assert_eq!(choose(&[[10.0, 10.0], [20.0, 20.0]], 256, 300, P), Roi::whole(256, 300));
    }

    #[test]
    fn the_search_covers_the_frame_square_by_square() {
        let tiles: Vec<Roi> = (0..5).map(|k| search_tile(k, 512, 512, 256)).collect();
        let at: Vec<(usize, usize)> = tiles.iter().map(|t| (t.x, t.y)).collect();
        assert_eq!(at, [(0, 0), (256, 0), (0, 256), (256, 256), (0, 0)]);
        let odd: Vec<(usize, usize)> = (0..6).map(|k| search_tile(k, 600, 300, 256)).map(|t| (t.x, t.y)).collect();
        assert_eq!(odd, [(0, 0), (256, 0), (344, 0), (0, 44), (256, 44), (344, 44)], "the last ones pushed inside");
    }

    #[test]
    fn an_end_on_an_inner_edge_is_a_cut_one_on_the_frame_border_is_not() {
        let roi = Roi { x: 100, y: 0, width: 256, height: 256 };
        assert!(cut_by_edge(&[[101.0, 50.0], [200.0, 50.0]], roi, 512, 512, 2.0), "left edge is inside the frame");
        assert!(!cut_by_edge(&[[200.0, 0.5], [200.0, 100.0]], roi, 512, 512, 2.0), "top edge is the frame's");
        assert!(cut_by_edge(&[[200.0, 100.0], [200.0, 254.5]], roi, 512, 512, 2.0), "bottom edge");
        assert!(!cut_by_edge(&[[150.0, 100.0], [200.0, 120.0]], roi, 512, 512, 2.0));
    }
}
