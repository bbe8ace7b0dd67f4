//! The learned engine's input: feature planes of a region of a frame.
//!
//! Definition version [`FEATURE_VERSION`], the one `engines/train/features.py` implements for
//! training (`tests/features_parity.rs` holds the two to 1e-4), in channel order:
//! 0. log attenuation minus its median over the region (the lower median for an even count);
//! 1-4. the scale-normalised Hessian eigenvalues λ1 (smaller magnitude) and λ2 of the log
//!    attenuation at σ = 1 and 2 px ([`SCALES_PX`]), as the ridge stage defines them;
//!
//! every value clamped to ±[`CLAMP`] (a collimator edge would otherwise dwarf the wire).
//!
//! A region's features equal the whole frame's there: the Hessian is computed on the region
//! with as much of the frame around it as the kernels reach, and where that margin would leave
//! the frame it ends at the frame's own border, which then reflects as it does for the whole
//! frame. So the network can be trained on crops of whole-frame features.

use super::ridge::{eigenvalues, normal_vector, HessianFilter};
use super::Plane;

/// Version of the definition above; a model's manifest names the one it was trained on.
pub const FEATURE_VERSION: u32 = 1;
/// Feature planes per pixel.
pub const CHANNELS: usize = 5;
/// Hessian scales (σ, px).
pub const SCALES_PX: [f32; 2] = [1.0, 2.0];
/// Every feature is clamped to ±this.
pub const CLAMP: f32 = 4.0;

/// A rectangle of a frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl Roi {
    /// The whole of a `width` × `height` frame.
    pub fn whole(width: usize, height: usize) -> Self {
        Roi { x: 0, y: 0, width, height }
    }

    /// This rectangle with `by` pixels more on every side, within a `width` × `height` frame.
    pub(crate) fn grown(self, by: usize, (width, height): (usize, usize)) -> Self {
        let (x, y) = (self.x.saturating_sub(by), self.y.saturating_sub(by));
        let (right, bottom) = ((self.x + self.width + by).min(width), (self.y + self.height + by).min(height));
        Roi { x, y, width: right - x, height: bottom - y }
    }
}

/// Computes the features of regions of one size in frames of one size; every buffer is made
/// at start.
#[derive(Debug)]
pub struct FeatureExtractor {
    frame: (usize, usize),
    roi: (usize, usize),
    /// The region with its margin, as the Hessian sees it.
    padded: Plane<f32>,
    hessian: HessianFilter,
    median_scratch: Vec<f32>,
    normal_x: Plane<f32>,
    normal_y: Plane<f32>,
}

/// Why features could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeatureError {
    /// The region is not the size the extractor was made for, or leaves the frame.
    #[error("region {roi:?} is not a {want_w}x{want_h} region of the {frame_w}x{frame_h} frame")]
    BadRoi {
        /// The region asked for.
        roi: Roi,
        /// Region width the extractor was made for.
        want_w: usize,
        /// Region height the extractor was made for.
        want_h: usize,
        /// Frame width.
        frame_w: usize,
        /// Frame height.
        frame_h: usize,
    },
}

impl FeatureExtractor {
    /// An extractor for `roi_w` × `roi_h` regions of `frame_w` × `frame_h` frames (the region
    /// no larger than the frame).
    pub fn new(frame_w: usize, frame_h: usize, roi_w: usize, roi_h: usize) -> Self {
        let (roi_w, roi_h) = (roi_w.min(frame_w), roi_h.min(frame_h));
        let reach = HessianFilter::new(1, 1, &SCALES_PX).reach_px();
        let (pw, ph) = ((roi_w + 2 * reach).min(frame_w), (roi_h + 2 * reach).min(frame_h));
        FeatureExtractor {
            frame: (frame_w, frame_h),
            roi: (roi_w, roi_h),
            padded: Plane::new(pw, ph),
            hessian: HessianFilter::new(pw, ph, &SCALES_PX),
            median_scratch: vec![0.0; roi_w * roi_h],
            normal_x: Plane::new(roi_w, roi_h),
            normal_y: Plane::new(roi_w, roi_h),
        }
    }

    /// Region size this extractor computes.
    pub fn roi_size(&self) -> (usize, usize) {
        self.roi
    }

    /// Writes the [`CHANNELS`] feature planes of `roi` of `attenuation` into `out`
    /// (channel-major, `CHANNELS × height × width`), and keeps the ridge normal at σ = 1 for
    /// [`FeatureExtractor::normals`].
    pub fn extract(&mut self, attenuation: &Plane<f32>, roi: Roi, out: &mut [f32]) -> Result<(), FeatureError> {
        let (fw, fh) = self.frame;
        let (rw, rh) = self.roi;
        if (attenuation.width, attenuation.height) != self.frame
            || (roi.width, roi.height) != self.roi
            || roi.x + rw > fw
            || roi.y + rh > fh
        {
            return Err(FeatureError::BadRoi { roi, want_w: rw, want_h: rh, frame_w: fw, frame_h: fh });
        }
        let n = rw * rh;
        let out = &mut out[..CHANNELS * n];
        let (pw, ph) = (self.padded.width, self.padded.height);
        // The margin is centred on the region where the frame allows, else pushed inside it;
        // it always ends at the frame's border or at least `reach` from the region.
        let px = (roi.x.saturating_sub((pw - rw) / 2)).min(fw - pw);
        let py = (roi.y.saturating_sub((ph - rh) / 2)).min(fh - ph);
        for (y, row) in self.padded.data.chunks_exact_mut(pw).enumerate() {
            let at = (py + y) * fw + px;
            row.copy_from_slice(&attenuation.data[at..at + pw]);
        }
        let (ox, oy) = (roi.x - px, roi.y - py);
        // Row `y` of the region within the padded plane.
        let inside = |y: usize| (oy + y) * pw + ox..(oy + y) * pw + ox + rw;

        let image = &mut out[..n];
        for (y, row) in image.chunks_exact_mut(rw).enumerate() {
            row.copy_from_slice(&self.padded.data[inside(y)]);
        }
        let median = region_median(attenuation, roi, &mut self.median_scratch);
        image.iter_mut().for_each(|v| *v = (*v - median).clamp(-CLAMP, CLAMP));

        for scale in 0..SCALES_PX.len() {
            let h = self.hessian.compute(&self.padded, scale);
            let (l1s, rest) = out[(1 + 2 * scale) * n..].split_at_mut(n);
            let l2s = &mut rest[..n];
            for y in 0..rh {
                let at = inside(y);
                let (xx, xy, yy) = (&h.xx.data[at.clone()], &h.xy.data[at.clone()], &h.yy.data[at]);
                let row = y * rw..(y + 1) * rw;
                let (l1s, l2s) = (&mut l1s[row.clone()], &mut l2s[row.clone()]);
                let (nxs, nys) = (&mut self.normal_x.data[row.clone()], &mut self.normal_y.data[row]);
                for x in 0..rw {
                    let (a, b) = eigenvalues(xx[x], xy[x], yy[x]);
                    (l1s[x], l2s[x]) = (a.clamp(-CLAMP, CLAMP), b.clamp(-CLAMP, CLAMP));
                    if scale == 0 {
                        (nxs[x], nys[x]) = normal_vector(xx[x], xy[x], yy[x], b);
                    }
                }
            }
        }
        Ok(())
    }

    /// The unit normal across the ridge at σ = 1 px over the last region (x and y planes).
    pub fn normals(&self) -> (&Plane<f32>, &Plane<f32>) {
        (&self.normal_x, &self.normal_y)
    }
}

/// The lower median of `roi` of `attenuation`, ordered by [`f32::total_cmp`]; `scratch` holds
/// at least the region's pixels.
pub(crate) fn region_median(attenuation: &Plane<f32>, roi: Roi, scratch: &mut [f32]) -> f32 {
    let n = roi.width * roi.height;
    let values = &mut scratch[..n];
    for (y, row) in values.chunks_exact_mut(roi.width).enumerate() {
        let at = (roi.y + y) * attenuation.width + roi.x;
        row.copy_from_slice(&attenuation.data[at..at + roi.width]);
    }
    *values.select_nth_unstable_by((n - 1) / 2, f32::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::ridge::RidgeDetector;
    use crate::vision::ridge::RidgeParams;

    fn image(w: usize, h: usize) -> Plane<f32> {
        let mut p = Plane::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let line = (-(x as f32 - 0.6 * y as f32 - 20.0).powi(2) / 2.0).exp();
                let texture = ((x * 7 + y * 13) % 11) as f32 * 0.01;
                p.data[y * w + x] = 1.5 + 0.8 * line + texture + 0.002 * x as f32;
            }
        }
        p
    }

    /// A region's features are the whole frame's: in the interior, and where the region
    /// touches each border.
    #[test]
    fn a_region_has_the_whole_frames_features() {
        let (w, h) = (96, 80);
        let att = image(w, h);
        let mut whole = vec![0.0; CHANNELS * w * h];
        FeatureExtractor::new(w, h, w, h).extract(&att, Roi::whole(w, h), &mut whole).expect("whole");
        let mut region = FeatureExtractor::new(w, h, 40, 32);
        let mut out = vec![0.0; CHANNELS * 40 * 32];
        for (x, y) in [(0, 0), (30, 20), (56, 48), (56, 0), (0, 48), (3, 40)] {
            region.extract(&att, Roi { x, y, width: 40, height: 32 }, &mut out).expect("region");
            for c in 1..CHANNELS {
                for ry in 0..32 {
                    for rx in 0..40 {
                        let got = out[(c * 32 + ry) * 40 + rx];
                        let want = whole[(c * h + y + ry) * w + x + rx];
                        assert!((got - want).abs() <= 1e-6, "c{c} at {x}+{rx},{y}+{ry}: {got} vs {want}");
                    }
                }
            }
        }
    }

    /// The eigenvalues are the ridge stage's Hessian's, scale for scale.
    #[test]
    fn eigenvalues_are_the_ridge_stages() {
        let (w, h) = (64, 64);
        let att = image(w, h);
        let mut out = vec![0.0; CHANNELS * w * h];
        FeatureExtractor::new(w, h, w, h).extract(&att, Roi::whole(w, h), &mut out).expect("whole");
        let mut reference = RidgeDetector::new(w, h, RidgeParams::default());
        for (s, &sigma) in SCALES_PX.iter().enumerate() {
            let hess = reference.hessian_at(&att, sigma);
            for i in 0..w * h {
                let (l1, l2) = eigenvalues(hess.xx.data[i], hess.xy.data[i], hess.yy.data[i]);
                assert_eq!(out[(1 + 2 * s) * w * h + i], l1);
                assert_eq!(out[(2 + 2 * s) * w * h + i], l2);
            }
        }
    }

    #[test]
    fn image_channel_is_centred_on_the_median_and_clamped() {
        let (w, h) = (4, 2);
        let att = Plane { width: w, height: h, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0] };
        let mut out = vec![0.0; CHANNELS * w * h];
        FeatureExtractor::new(w, h, w, h).extract(&att, Roi::whole(w, h), &mut out).expect("whole");
        assert_eq!(&out[..8], &[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, CLAMP]);
    }

    #[test]
    fn a_region_outside_the_frame_is_an_error() {
        let att = image(64, 64);
        let mut ex = FeatureExtractor::new(64, 64, 32, 32);
        let mut out = vec![0.0; CHANNELS * 32 * 32];
        let roi = Roi { x: 40, y: 0, width: 32, height: 32 };
        assert!(matches!(ex.extract(&att, roi, &mut out), Err(FeatureError::BadRoi { .. })));
    }
}
