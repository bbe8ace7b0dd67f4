//! Contrast-limited adaptive histogram equalisation (CLAHE) of 8-bit images.
//!
//! Written to follow OpenCV's `cv::createCLAHE(clip, tiles).apply` step for step, so it can be
//! checked against it (`tests/golden.rs`, within ±1 grey level): the image is padded by
//! reflection (101) to whole tiles as OpenCV pads it, each tile's histogram is clipped at
//! `clip × tile pixels / 256` with the excess spread evenly and the remainder stepped across
//! the bins, and each pixel blends the look-up tables of its four nearest tiles.
//!
//! The classical ridge stage keeps physical units (log attenuation) and does not use it;
//! CLAHE is for images people look at and for the learned engine's input.

use super::Plane;

const BINS: usize = 256;

/// CLAHE parameters, as OpenCV names them.
#[derive(Debug, Clone, Copy)]
pub struct ClaheParams {
    /// Clip limit, relative to a flat histogram (OpenCV's `clipLimit`, default 40).
    pub clip_limit: f32,
    /// Tiles across (OpenCV's `tileGridSize.width`).
    pub tiles_x: usize,
    /// Tiles down.
    pub tiles_y: usize,
}

impl Default for ClaheParams {
    fn default() -> Self {
        ClaheParams { clip_limit: 2.0, tiles_x: 8, tiles_y: 8 }
    }
}

/// CLAHE with its look-up tables and padded copy sized at start.
#[derive(Debug)]
pub struct Clahe {
    params: ClaheParams,
    padded: Plane<u8>,
    luts: Vec<[u8; BINS]>,
}

/// Reflect-101 index (`c b | a b c | b a`), as OpenCV's `BORDER_REFLECT_101`.
fn reflect101(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i % period;
    if m < n {
        m
    } else {
        period - m
    }
}

impl Clahe {
    /// Buffers for `width` × `height` images; tile counts of zero are taken as one.
    pub fn new(width: usize, height: usize, params: ClaheParams) -> Self {
        let params = ClaheParams { tiles_x: params.tiles_x.max(1), tiles_y: params.tiles_y.max(1), ..params };
        // OpenCV pads only when a side is not a whole number of tiles, and then pads both sides
        // by `tiles - side % tiles`: a whole extra tile's worth on a side that already fitted.
        let (tx, ty) = (params.tiles_x, params.tiles_y);
        let (pw, ph) = if width.is_multiple_of(tx) && height.is_multiple_of(ty) {
            (width, height)
        } else {
            (width + tx - width % tx, height + ty - height % ty)
        };
        Clahe { params, padded: Plane::new(pw, ph), luts: vec![[0; BINS]; params.tiles_x * params.tiles_y] }
    }

    /// Equalises `input` into `out` (same size as given to [`Clahe::new`]).
    pub fn apply(&mut self, input: &Plane<u8>, out: &mut Plane<u8>) {
        let ClaheParams { clip_limit, tiles_x, tiles_y } = self.params;
        let (w, h) = (input.width, input.height);
        let (pw, ph) = (self.padded.width, self.padded.height);
        for y in 0..ph {
            let sy = reflect101(y, h);
            for x in 0..pw {
                self.padded.data[y * pw + x] = input.data[sy * w + reflect101(x, w)];
            }
        }
        let (tw, th) = (pw / tiles_x, ph / tiles_y);
        let tile_pixels = tw * th;
        let lut_scale = (BINS - 1) as f32 / tile_pixels as f32;
        let clip = if clip_limit > 0.0 { ((clip_limit * tile_pixels as f32 / BINS as f32) as i64).max(1) } else { 0 };
        for ty in 0..tiles_y {
            for tx in 0..tiles_x {
                let mut hist = [0i64; BINS];
                for y in ty * th..(ty + 1) * th {
                    for &v in &self.padded.data[y * pw + tx * tw..y * pw + (tx + 1) * tw] {
                        hist[usize::from(v)] += 1;
                    }
                }
                if clip > 0 {
                    let mut clipped = 0;
                    for bin in hist.iter_mut() {
                        if *bin > clip {
                            clipped += *bin - clip;
                            *bin = clip;
                        }
                    }
                    let batch = clipped / BINS as i64;
                    let mut residual = clipped - batch * BINS as i64;
                    hist.iter_mut().for_each(|b| *b += batch);
                    if residual != 0 {
                        let step = (BINS as i64 / residual).max(1) as usize;
                        let mut i = 0;
                        while i < BINS && residual > 0 {
                            hist[i] += 1;
                            i += step;
                            residual -= 1;
                        }
                    }
                }
                let lut = &mut self.luts[ty * tiles_x + tx];
                let mut sum = 0i64;
                for (entry, &count) in lut.iter_mut().zip(&hist) {
                    sum += count;
                    *entry = (sum as f32 * lut_scale).round_ties_even().clamp(0.0, 255.0) as u8;
                }
            }
        }
        for y in 0..h {
            let tyf = y as f32 / th as f32 - 0.5;
            let ty1 = tyf.floor() as isize;
            let ya = tyf - ty1 as f32;
            let (ty1, ty2) = (ty1.max(0) as usize, ((ty1 + 1) as usize).min(tiles_y - 1));
            for x in 0..w {
                let txf = x as f32 / tw as f32 - 0.5;
                let tx1 = txf.floor() as isize;
                let xa = txf - tx1 as f32;
                let (tx1, tx2) = (tx1.max(0) as usize, ((tx1 + 1) as usize).min(tiles_x - 1));
                let v = usize::from(input.data[y * w + x]);
                let lut = |ty: usize, tx: usize| f32::from(self.luts[ty * tiles_x + tx][v]);
                let res = (lut(ty1, tx1) * (1.0 - xa) + lut(ty1, tx2) * xa) * (1.0 - ya)
                    + (lut(ty2, tx1) * (1.0 - xa) + lut(ty2, tx2) * xa) * ya;
                out.data[y * w + x] = res.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (0..8).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, [0, 1, 2, 3, 2, 1, 0, 1]);
    }

    #[test]
    fn a_flat_image_stays_flat_and_a_low_contrast_one_gains_contrast() {
        let (w, h) = (64, 64);
        let mut clahe = Clahe::new(w, h, ClaheParams { clip_limit: 40.0, ..ClaheParams::default() });
        let mut out = Plane::new(w, h);
        let flat = Plane { width: w, height: h, data: vec![100; w * h] };
        clahe.apply(&flat, &mut out);
        assert!(out.data.windows(2).all(|p| p[0] == p[1]));
        // Four grey levels a step apart in every tile.
        let dim = Plane { width: w, height: h, data: (0..w * h).map(|i| 100 + ((i % w + i / w) % 4) as u8).collect() };
        clahe.apply(&dim, &mut out);
        let spread =
            |p: &Plane<u8>| p.data.iter().max().copied().unwrap_or(0) - p.data.iter().min().copied().unwrap_or(0);
        assert!(spread(&out) > 10 * spread(&dim), "{} vs {}", spread(&out), spread(&dim));
    }
}
