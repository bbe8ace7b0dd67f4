//! The collimated field of view: where the detector sees the patient at all.
//!
//! Many fluoroscopes collimate to a disc or a rectangle; outside it the image is black, and the
//! edge between is the strongest curvature in the frame. Its ridge (and the wire's ridge where
//! it runs under the shutters) says nothing about the wire, so ridge depth within `margin_px`
//! of the field's edge, or outside it, is dropped.
//!
//! How black "black" is belongs to the installation: a flat panel read out raw gives a few
//! counts behind the shutters, a frame grabber on the fluoroscope's video output gives its
//! video black level (grey 13-16 of 255 in the real angiograms we have), so the level is
//! configured (`pipeline.shutter_below`), not guessed from each frame, where the darkest
//! anatomy (a spine at low dose) could be taken for shutters and a wire over it dropped.

use super::Plane;

/// Parameters of the field-of-view mask.
#[derive(Debug, Clone, Copy)]
pub struct FieldParams {
    /// A pixel is behind the shutters where the box around it, averaged in log attenuation, is
    /// darker than this share of the detector's full scale. The default, 0.25 % (an
    /// attenuation of 6), is far below any patient on a raw detector.
    pub shutter_below: f32,
    /// Half-width (px) of the box the attenuation is averaged over first, so that a pixel that
    /// caught no photon inside the field at very low dose does not count as outside.
    pub smooth_half_width_px: usize,
    /// Distance (px) from the field's edge within which ridges are dropped.
    pub margin_px: usize,
}

impl Default for FieldParams {
    fn default() -> Self {
        FieldParams { shutter_below: (-6.0f32).exp(), smooth_half_width_px: 4, margin_px: 8 }
    }
}

impl FieldParams {
    /// What [`is_share`](Self::is_share) asks of a share, for error messages.
    pub const SHARE_RANGE: &'static str = "must be a share of full scale, above 0 and below 1";

    /// Whether `share` can be a [`shutter_below`](FieldParams::shutter_below): above 0 and
    /// below 1.
    pub fn is_share(share: f32) -> bool {
        share.is_finite() && share > 0.0 && share < 1.0
    }

    /// The box mean of log attenuation above which a pixel is behind the shutters.
    pub fn outside_attenuation(&self) -> f32 {
        -self.shutter_below.ln()
    }
}

/// Finds the field of view per frame, with its planes sized at start.
#[derive(Debug)]
pub struct FieldOfView {
    params: FieldParams,
    rows: Plane<f32>,
    /// One row of column sums of `rows`.
    column_sum: Vec<f32>,
    /// Per column, how many pixels of a row its box covers (fewer at the borders).
    row_counts: Vec<f32>,
    /// Per row: it holds a pixel near or above the threshold.
    hot_rows: Vec<bool>,
    outside: Plane<u8>,
    scratch: Plane<u8>,
}

impl FieldOfView {
    /// Planes for `width` × `height` frames.
    pub fn new(width: usize, height: usize, params: FieldParams) -> Self {
        FieldOfView {
            params,
            rows: Plane::new(width, height),
            column_sum: vec![0.0; width],
            row_counts: (0..width)
                .map(|x| {
                    let r = params.smooth_half_width_px;
                    ((x + r).min(width - 1) - x.saturating_sub(r) + 1) as f32
                })
                .collect(),
            hot_rows: vec![false; height],
            outside: Plane::new(width, height),
            scratch: Plane::new(width, height),
        }
    }

    /// Marks the pixels outside the field, or within `margin_px` of its edge, from the frame's
    /// log attenuation; returns how many there are.
    pub fn update(&mut self, attenuation: &Plane<f32>) -> usize {
        let (w, h) = (attenuation.width, attenuation.height);
        let r = self.params.smooth_half_width_px;
        let threshold = self.params.outside_attenuation();
        // A box mean above the threshold needs a pixel above it in the box (a mean is at most
        // its largest term; the margin covers the sum's rounding), so rows with no such pixel
        // within `r` are inside the field without a sum: on most frames no shutter is in view.
        let near = threshold * (1.0 - 1e-5);
        for (hot, row) in self.hot_rows.iter_mut().zip(attenuation.data.chunks_exact(w)) {
            // An OR of compares, which the compiler vectorises (a running maximum it does not).
            *hot = row.iter().fold(false, |any, &v| any | (v > near));
        }
        let window = |y: usize| y.saturating_sub(r)..=(y + r).min(h - 1);
        let any_hot = |rows: std::ops::RangeInclusive<usize>| self.hot_rows[rows].iter().any(|&hot| hot);
        // Box means as sums of shifted rows, in the order a window sum would add them, so
        // the compiler vectorises them; only for rows some output row that can be outside
        // reads.
        for (y, (row_in, row_out)) in
            attenuation.data.chunks_exact(w).zip(self.rows.data.chunks_exact_mut(w)).enumerate()
        {
            let (lo, hi) = (y.saturating_sub(2 * r), (y + 2 * r).min(h - 1));
            if !any_hot(lo..=hi) {
                continue;
            }
            row_out.fill(0.0);
            for d in -(r.min(w - 1) as isize)..=r.min(w - 1) as isize {
                let shift = d.unsigned_abs();
                let (out, from) = if d < 0 {
                    (&mut row_out[shift..], &row_in[..w - shift])
                } else {
                    (&mut row_out[..w - shift], &row_in[shift..])
                };
                out.iter_mut().zip(from).for_each(|(o, &v)| *o += v);
            }
            row_out.iter_mut().zip(&self.row_counts).for_each(|(o, &n)| *o /= n);
        }
        let mut count = 0;
        for y in 0..h {
            let outside = &mut self.outside.data[y * w..(y + 1) * w];
            if !any_hot(window(y)) {
                outside.fill(0);
                continue;
            }
            let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
            self.column_sum.fill(0.0);
            for row in self.rows.data[lo * w..(hi + 1) * w].chunks_exact(w) {
                self.column_sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
            }
            let count_rows = (hi - lo + 1) as f32;
            for (o, &sum) in outside.iter_mut().zip(&self.column_sum) {
                let out = sum / count_rows > threshold;
                *o = u8::from(out);
                count += usize::from(out);
            }
        }
        if count == 0 {
            return 0;
        }
        super::ridge::dilate(&mut self.outside, self.params.margin_px, &mut self.scratch);
        self.outside.data.iter().filter(|&&v| v != 0).count()
    }

    /// Whether `p` (px) lies within `radius_px` of the frame's border, or of what the last
    /// [`update`](FieldOfView::update) marked as outside the field: where a wire that enters
    /// the field is first seen.
    pub fn near_edge(&self, p: [f32; 2], radius_px: f32) -> bool {
        let (w, h) = (self.outside.width, self.outside.height);
        let lo = |v: f32| (v - radius_px).floor();
        let hi = |v: f32| (v + radius_px).ceil();
        if lo(p[0]) <= 0.0 || lo(p[1]) <= 0.0 || hi(p[0]) >= (w - 1) as f32 || hi(p[1]) >= (h - 1) as f32 {
            return true;
        }
        let (x0, x1, y0, y1) = (lo(p[0]) as usize, hi(p[0]) as usize, lo(p[1]) as usize, hi(p[1]) as usize);
        (y0..=y1).any(|y| self.outside.data[y * w + x0..=y * w + x1].contains(&1))
    }

    /// Where `p` (px) lies within `radius_px` of what the last [`update`] marked as outside
    /// the field: the unit vector into the field there, from the centre of the marked pixels
    /// within that reach (the square of it) to `p`. `None` elsewhere, and where they surround
    /// `p` evenly. The frame's border is not such an edge here: it has its own sides.
    ///
    /// [`update`]: FieldOfView::update
    pub fn inward_at(&self, p: [f32; 2], radius_px: f32) -> Option<[f32; 2]> {
        let (w, h) = (self.outside.width, self.outside.height);
        let span = |v: f32, n: usize| {
            let lo = (v - radius_px).floor().max(0.0) as usize;
            let hi = ((v + radius_px).ceil().max(0.0) as usize).min(n - 1);
            lo..=hi
        };
        let (mut sum, mut count) = ([0.0f32; 2], 0usize);
        for y in span(p[1], h) {
            for x in span(p[0], w) {
                if self.outside.data[y * w + x] != 0 {
                    (sum[0], sum[1], count) = (sum[0] + x as f32, sum[1] + y as f32, count + 1);
                }
            }
        }
        let centre = [sum[0] / count.max(1) as f32, sum[1] / count.max(1) as f32];
        let (dx, dy) = (p[0] - centre[0], p[1] - centre[1]);
        let length = (dx * dx + dy * dy).sqrt();
        (count > 0 && length > 0.0).then(|| [dx / length, dy / length])
    }

    /// Drops ridge depth outside the field and near its edge (as of the last [`update`]).
    ///
    /// [`update`]: FieldOfView::update
    pub fn suppress(&self, strength: &mut Plane<f32>) {
        for (s, &out) in strength.data.iter_mut().zip(&self.outside.data) {
            if out != 0 {
                *s = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_black_outside_a_disc_and_a_margin_inside_it_are_dropped() {
        let (w, h) = (80, 80);
        let mut att = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let r = ((x as f32 - 40.0).powi(2) + (y as f32 - 40.0).powi(2)).sqrt();
                att.data[y * w + x] = if r < 30.0 { 2.0 } else { 9.0 };
            }
        }
        // A dead pixel inside the field: no photon, but not behind the shutters.
        att.data[40 * w + 40] = 9.0;
        let mut fov = FieldOfView::new(w, h, FieldParams::default());
        assert!(fov.update(&att) > 0);
        let mut strength = Plane { width: w, height: h, data: vec![1.0; w * h] };
        fov.suppress(&mut strength);
        assert_eq!(strength.at(40, 40), 1.0, "centre kept");
        assert_eq!(strength.at(40, 20), 1.0, "well inside kept");
        assert_eq!(strength.at(40, 13), 0.0, "within the margin of the edge dropped");
        assert_eq!(strength.at(2, 2), 0.0, "outside dropped");
        // Where a wire entering the field is first seen: at its edge, or the frame's border.
        assert!(fov.near_edge([40.0, 20.0], 8.0), "the margin ends at about 14 px");
        assert!(!fov.near_edge([40.0, 40.0], 8.0), "the centre, dead pixel and all, is well inside");
        assert!(fov.near_edge([0.0, 40.0], 0.5), "on the frame's border");
        // Into the field at its edge: up at the bottom, right at the left.
        let edge_y = (40..h).find(|&y| fov.near_edge([40.0, y as f32], 0.0)).expect("the bottom edge") as f32;
        let [nx, ny] = fov.inward_at([40.0, edge_y - 2.0], 4.0).expect("near the edge");
        assert!(nx.abs() < 0.05 && ny < -0.99, "up from the bottom: ({nx}, {ny})");
        let edge_x = (0..40).rev().find(|&x| fov.near_edge([x as f32, 40.0], 0.0)).expect("the left edge") as f32;
        let [nx, ny] = fov.inward_at([edge_x + 2.0, 40.0], 4.0).expect("near the edge");
        assert!(nx > 0.99 && ny.abs() < 0.05, "right from the left: ({nx}, {ny})");
        assert_eq!(fov.inward_at([40.0, 40.0], 4.0), None, "well inside");
    }

    #[test]
    fn without_shutters_only_the_frame_s_border_is_an_edge() {
        let att = Plane { width: 40, height: 30, data: vec![2.5; 1200] };
        let mut fov = FieldOfView::new(40, 30, FieldParams::default());
        fov.update(&att);
        assert!(fov.near_edge([3.0, 15.0], 4.0) && fov.near_edge([20.0, 26.5], 4.0));
        assert!(!fov.near_edge([20.0, 15.0], 4.0) && !fov.near_edge([5.0, 15.0], 4.0));
    }

    /// A frame grabber's video black (grey 14 of 255) is not behind the shutters for a raw
    /// detector's level, and is once the installation's level says so; the darkest patient
    /// (grey 30) stays inside either way.
    #[test]
    fn grey_shutters_are_found_at_the_configured_level() {
        let (w, h) = (60, 40);
        let grey = |v: f32| (255.0f32 / v).ln();
        let mut att = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                att.data[y * w + x] = match x {
                    0..=14 => grey(14.0),
                    15..=29 => grey(30.0),
                    _ => grey(120.0),
                };
            }
        }
        let mut raw = FieldOfView::new(w, h, FieldParams::default());
        assert_eq!(raw.update(&att), 0, "grey 14 is far above a raw detector's black");
        let video = FieldParams { shutter_below: 20.0 / 255.0, ..FieldParams::default() };
        assert!((video.outside_attenuation() - grey(20.0)).abs() < 1e-6);
        let mut fov = FieldOfView::new(w, h, video);
        assert!(fov.update(&att) > 0);
        let mut strength = Plane { width: w, height: h, data: vec![1.0; w * h] };
        fov.suppress(&mut strength);
        assert_eq!(strength.at(5, 20), 0.0, "behind the shutters");
        assert_eq!(strength.at(20, 20), 0.0, "within the margin of their edge");
        assert_eq!(strength.at(26, 20), 1.0, "the dark patient beyond the margin kept");
        assert_eq!(strength.at(45, 20), 1.0);
        assert!(fov.near_edge([22.0, 20.0], 2.0) && !fov.near_edge([45.0, 20.0], 2.0));
    }

    #[test]
    fn the_default_level_is_an_attenuation_of_6() {
        assert!((FieldParams::default().outside_attenuation() - 6.0).abs() < 1e-6);
    }

    #[test]
    fn an_uncollimated_frame_keeps_everything() {
        let att = Plane { width: 20, height: 20, data: vec![2.5; 400] };
        let mut fov = FieldOfView::new(20, 20, FieldParams::default());
        assert_eq!(fov.update(&att), 0);
        let mut strength = Plane { width: 20, height: 20, data: vec![0.5; 400] };
        fov.suppress(&mut strength);
        assert!(strength.data.iter().all(|&s| s == 0.5));
    }

    /// Every pixel's box mean, summed the way `update` sums, then the dilation: what `update`
    /// gives when it sums every row.
    fn outside_by_summing_everything(att: &Plane<f32>, params: FieldParams) -> Plane<u8> {
        let (w, h, r) = (att.width, att.height, params.smooth_half_width_px);
        let mut rows = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let (lo, hi) = (x.saturating_sub(r), (x + r).min(w - 1));
                let mut sum = 0.0f32;
                for d in -(r as isize)..=r as isize {
                    let at = x as isize + d;
                    if at >= 0 && (at as usize) < w {
                        sum += att.data[y * w + at as usize];
                    }
                }
                rows.data[y * w + x] = sum / (hi - lo + 1) as f32;
            }
        }
        let mut outside = Plane::new(w, h);
        for y in 0..h {
            let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
            for x in 0..w {
                let sum: f32 = (lo..=hi).map(|yy| rows.data[yy * w + x]).sum();
                outside.data[y * w + x] = u8::from(sum / (hi - lo + 1) as f32 > params.outside_attenuation());
            }
        }
        let mut scratch = Plane::new(w, h);
        super::super::ridge::dilate(&mut outside, params.margin_px, &mut scratch);
        outside
    }

    /// Rows far from any dark pixel are skipped, and the mask is the one summing every row
    /// gives: a shutter on one side, a dark band in the middle, values just under and at the
    /// threshold.
    #[test]
    fn skipping_rows_without_dark_pixels_changes_nothing() {
        let (w, h) = (48, 90);
        let params = FieldParams::default();
        let mut att = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                att.data[y * w + x] = match y {
                    0..=9 => 9.0,
                    40..=44 => 6.0 + 0.1 * (x % 3) as f32,
                    60..=70 => 6.0 - 1e-6 * (x % 5) as f32,
                    _ => 2.0 + 0.01 * ((x * 7 + y * 3) % 13) as f32,
                };
            }
        }
        let mut fov = FieldOfView::new(w, h, params);
        let count = fov.update(&att);
        let want = outside_by_summing_everything(&att, params);
        assert_eq!(fov.outside, want);
        assert_eq!(count, want.data.iter().filter(|&&v| v != 0).count());
        assert!(fov.outside.at(20, 25) == 0 && fov.outside.at(20, 2) == 1, "kept and dropped rows");
    }
}
