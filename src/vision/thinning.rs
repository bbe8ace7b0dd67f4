//! Binary mask to one-pixel-wide skeleton: Zhang-Suen thinning.
//!
//! Written to follow OpenCV's `cv::ximgproc::thinning(.., THINNING_ZHANGSUEN)` step for step
//! (same neighbourhood order, conditions and border rule), so that it can be checked against
//! OpenCV pixel for pixel: each sub-iteration marks pixels on the unchanged image, then
//! removes them all; pixels in the outermost rows and columns are never removed.

use super::Plane;

/// Zhang-Suen thinning with scratch space sized at start.
#[derive(Debug)]
pub struct Thinning {
    marked: Vec<u32>,
    /// The pixels that may still be removed: those set inside the outermost rows and columns
    /// when the scans began, less those cleared before the last sub-iteration pair.
    set: Vec<u32>,
}

impl Thinning {
    /// Scratch space for frames of `pixels` pixels.
    pub fn new(pixels: usize) -> Self {
        Thinning { marked: Vec::with_capacity(pixels), set: Vec::with_capacity(pixels) }
    }

    /// Thins `mask` (values 0 or 1) in place until it no longer changes.
    pub fn apply(&mut self, mask: &mut Plane<u8>) {
        let (w, h) = (mask.width, mask.height);
        if w < 3 || h < 3 {
            return;
        }
        // Only set pixels change, and none is ever set: the scan can stay within their
        // bounding box (the learned engine's mask covers one region of the frame).
        let Some((x0, y0, x1, y1)) = bounding_box(mask) else {
            return;
        };
        // A mask is mostly empty even within its box: after one scan for its set pixels, the
        // sub-iterations visit only those. Each marks on the unchanged image, so the order of
        // visits is free.
        self.set.clear();
        for y in y0.max(1)..=y1.min(h - 2) {
            let row = y * w;
            for x in x0.max(1)..=x1.min(w - 2) {
                if mask.data[row + x] != 0 {
                    self.set.push((row + x) as u32);
                }
            }
        }
        loop {
            let mut changed = false;
            for second in [false, true] {
                self.marked.clear();
                for &i in &self.set {
                    if mask.data[i as usize] != 0 && removable(&mask.data, w, i as usize, second) {
                        self.marked.push(i);
                    }
                }
                changed |= !self.marked.is_empty();
                for &i in &self.marked {
                    mask.data[i as usize] = 0;
                }
            }
            if !changed {
                return;
            }
            self.set.retain(|&i| mask.data[i as usize] != 0);
        }
    }
}

/// The smallest (x0, y0, x1, y1), inclusive, holding every set pixel; `None` when none is.
fn bounding_box(mask: &Plane<u8>) -> Option<(usize, usize, usize, usize)> {
    let w = mask.width;
    // An OR of the row, which the compiler vectorises; a test for any byte stops at each.
    let rows = || mask.data.chunks_exact(w).enumerate().filter(|(_, r)| r.iter().fold(0, |acc, &v| acc | v) != 0);
    let (y0, y1) = (rows().next()?.0, rows().next_back()?.0);
    let (mut x0, mut x1) = (w - 1, 0);
    for (_, row) in rows() {
        if let (Some(first), Some(last)) = (row.iter().position(|&v| v != 0), row.iter().rposition(|&v| v != 0)) {
            (x0, x1) = (x0.min(first), x1.max(last));
        }
    }
    Some((x0, y0, x1, y1))
}

/// The Zhang-Suen deletion test for the pixel at `i` (not on the border).
#[inline]
fn removable(m: &[u8], w: usize, i: usize, second: bool) -> bool {
    let p2 = m[i - w];
    let p3 = m[i - w + 1];
    let p4 = m[i + 1];
    let p5 = m[i + w + 1];
    let p6 = m[i + w];
    let p7 = m[i + w - 1];
    let p8 = m[i - 1];
    let p9 = m[i - w - 1];
    let ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2];
    let transitions = ring.windows(2).filter(|p| p[0] == 0 && p[1] == 1).count();
    let neighbours = u32::from(p2)
        + u32::from(p3)
        + u32::from(p4)
        + u32::from(p5)
        + u32::from(p6)
        + u32::from(p7)
        + u32::from(p8)
        + u32::from(p9);
    let (m1, m2) = if second { (p2 * p4 * p8, p2 * p6 * p8) } else { (p2 * p4 * p6, p4 * p6 * p8) };
    transitions == 1 && (2..=6).contains(&neighbours) && m1 == 0 && m2 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Zhang-Suen as OpenCV writes it: every sub-iteration scans every inner pixel.
    fn thin_by_scans(mask: &mut Plane<u8>) {
        let (w, h) = (mask.width, mask.height);
        loop {
            let mut changed = false;
            for second in [false, true] {
                let marked: Vec<usize> = (1..h - 1)
                    .flat_map(|y| (1..w - 1).map(move |x| y * w + x))
                    .filter(|&i| mask.data[i] != 0 && removable(&mask.data, w, i, second))
                    .collect();
                changed |= !marked.is_empty();
                marked.iter().for_each(|&i| mask.data[i] = 0);
            }
            if !changed {
                return;
            }
        }
    }

    proptest! {
        /// Thick bars and blobs at random, some touching the border: the same skeleton as
        /// scanning the whole mask every sub-iteration.
        #[test]
        fn visiting_the_set_pixels_thins_as_scanning_everything_does(
            boxes in prop::collection::vec((0usize..48, 0usize..40, 1usize..14, 1usize..14), 1..8),
        ) {
            let (w, h) = (48, 40);
            let mut mask = Plane::new(w, h);
            for &(x, y, bw, bh) in &boxes {
                for yy in y..(y + bh).min(h) {
                    mask.data[yy * w + x..yy * w + (x + bw).min(w)].fill(1);
                }
            }
            let mut want = mask.clone();
            thin_by_scans(&mut want);
            let mut thinning = Thinning::new(w * h);
            thinning.apply(&mut mask);
            prop_assert_eq!(mask.data, want.data);
        }
    }

    fn from_rows(rows: &[&str]) -> Plane<u8> {
        let (w, h) = (rows[0].len(), rows.len());
        let mut p = Plane::new(w, h);
        for (y, r) in rows.iter().enumerate() {
            for (x, c) in r.bytes().enumerate() {
                p.data[y * w + x] = u8::from(c == b'#');
            }
        }
        p
    }

    fn to_rows(p: &Plane<u8>) -> Vec<String> {
        p.data.chunks(p.width).map(|r| r.iter().map(|&v| if v != 0 { '#' } else { '.' }).collect()).collect()
    }

    #[test]
    fn a_thick_bar_thins_to_a_line() {
        let mut m = from_rows(&["............", ".##########.", ".##########.", ".##########.", "............"]);
        Thinning::new(60).apply(&mut m);
        let rows = to_rows(&m);
        assert!(rows[1].chars().all(|c| c == '.') && rows[3].chars().all(|c| c == '.'), "{rows:?}");
        assert!(rows[2].matches('#').count() >= 6, "{rows:?}");
    }

    #[test]
    fn a_one_pixel_line_is_stable() {
        let rows = [".......", ".#.....", "..#....", "...###.", "......."];
        let mut m = from_rows(&rows);
        Thinning::new(35).apply(&mut m);
        assert_eq!(to_rows(&m), rows);
    }

    #[test]
    fn border_pixels_are_never_removed() {
        let mut m = from_rows(&["####", "####", "####"]);
        Thinning::new(12).apply(&mut m);
        assert_eq!(to_rows(&m)[0], "####");
        assert_eq!(to_rows(&m)[2], "####");
    }

    #[test]
    fn thinning_keeps_components_connected() {
        let mut m = Plane::new(40, 40);
        for y in 0..40 {
            for x in 0..40 {
                let d = ((x as f32 - 20.0).powi(2) + (y as f32 - 20.0).powi(2)).sqrt();
                m.data[y * 40 + x] = u8::from((12.0..16.0).contains(&d));
            }
        }
        Thinning::new(1600).apply(&mut m);
        let ones = m.data.iter().filter(|&&v| v != 0).count();
        assert!(ones > 60, "ring vanished: {ones} pixels");
        let mut seen = vec![false; 1600];
        let start = m.data.iter().position(|&v| v != 0).unwrap_or(0);
        let mut stack = vec![start];
        seen[start] = true;
        let mut reached = 0;
        while let Some(i) = stack.pop() {
            reached += 1;
            let (x, y) = ((i % 40) as isize, (i / 40) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if (0..40).contains(&nx) && (0..40).contains(&ny) {
                        let j = (ny * 40 + nx) as usize;
                        if m.data[j] != 0 && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
        }
        assert_eq!(reached, ones);
    }
}
