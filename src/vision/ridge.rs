//! Multi-scale Hessian ridge measure for bright thin ridges in log attenuation.
//!
//! Second derivatives come from separable Gaussian-derivative kernels, scale-normalised by σ²
//! so responses at different scales compare. The measure is the ridge depth `-λ2` weighted by
//! Frangi's anisotropy term `exp(-Rb²/2β²)`, `Rb = λ1/λ2`. Frangi's structureness term
//! `1 - exp(-S²/2c²)` is left out on purpose: it saturates, and a saturated measure cannot
//! tell a high-contrast wire from a faint rib edge. Kept in attenuation units, the depth is
//! about 0.385 × the line's peak attenuation at its best scale, whatever the dose.
//!
//! A guidewire is 1-3 px wide and answers at small scales; a catheter (5-8 px) answers best at
//! `thick_scale_px`. Where that scale wins, the neighbourhood is taken as a thick structure
//! and its small-scale responses (the catheter's walls produce them too) are suppressed.

use std::ops::Range;

use super::features::Roi;
use super::Plane;

/// Parameters of the ridge measure.
#[derive(Debug, Clone)]
pub struct RidgeParams {
    /// Gaussian scales (σ, px) at which a wire is sought.
    pub wire_scales_px: Vec<f32>,
    /// Scale (σ, px) at which catheters and other thick tubes answer best.
    pub thick_scale_px: f32,
    /// Frangi's β: how strongly blob-like responses (|λ1| close to |λ2|) are suppressed.
    pub beta: f32,
    /// Ridge depth (attenuation units) at the thick scale above which a thick structure is
    /// masked.
    pub thick_min_depth: f32,
    /// Thin ridges near a thick one are suppressed only when they run within this angle
    /// (radians, below π/2) of it: a catheter's walls are parallel to it, a wire crossing a rib
    /// is not.
    pub parallel_tolerance_rad: f32,
    /// How much slope across a ridge is tolerated before it counts as the shoulder of a step
    /// edge (bone, lung, collimator), as a share of the ridge depth (the module's `edge_exponent`).
    pub edge_tolerance: f32,
}

impl Default for RidgeParams {
    fn default() -> Self {
        RidgeParams {
            wire_scales_px: vec![1.0, 1.5, 2.0],
            thick_scale_px: 3.5,
            beta: 0.5,
            thick_min_depth: 0.12,
            parallel_tolerance_rad: 0.5,
            edge_tolerance: 0.5,
        }
    }
}

impl RidgeParams {
    /// Radius (px) of the square the thick mask is dilated by: a catheter's walls lie that far
    /// from its axis.
    pub(crate) fn thick_dilation_px(&self) -> usize {
        self.thick_scale_px.ceil() as usize + 1
    }

    /// Width (px) of the band along the frame's border where responses parallel to it are
    /// echoes of the reflection there.
    pub(crate) fn border_margin_px(&self) -> usize {
        self.wire_scales_px.iter().copied().fold(0.0, f32::max).ceil() as usize + 1
    }

    /// Pixels beyond its own on each side that a part of the image must be given so that the
    /// detector's output on it is the same as on the whole image: the reach of the filters, of
    /// the thick-axis test (one pixel) and of the thick mask's dilation.
    pub fn halo_px(&self) -> usize {
        let reach = self.wire_scales_px.iter().chain([&self.thick_scale_px]).map(|&s| Kernels::radius_px(s)).max();
        reach.unwrap_or(0) + 1 + self.thick_dilation_px() + 1
    }

    /// Cosine of [`RidgeParams::parallel_tolerance_rad`].
    pub(crate) fn parallel_min_cos(&self) -> f32 {
        self.parallel_tolerance_rad.cos()
    }
}

/// One-dimensional Gaussian kernels of a scale: smoothing, first and second derivative.
#[derive(Debug, Clone)]
pub(crate) struct Kernels {
    pub(crate) radius: usize,
    pub(crate) g: Vec<f32>,
    pub(crate) d1: Vec<f32>,
    pub(crate) d2: Vec<f32>,
}

impl Kernels {
    /// The kernels of scikit-image's `hessian_matrix(.., use_gaussian_derivatives=True)`
    /// (0.24), so that it is a reference this stage can be checked against: every second
    /// derivative is two first-order Gaussian derivatives at σ/√2 (SciPy's sampled kernels),
    /// which compose to scale σ. The two passes are folded into one kernel per axis, cut at
    /// ±6σ where the taps are below 2e-8 of the peak (measured against scikit-image: within
    /// 2e-5 relative, `tests/golden.rs`).
    pub(crate) fn new(sigma_px: f32) -> Self {
        let s = f64::from(sigma_px) / std::f64::consts::SQRT_2;
        let pass_radius = (7.0 * s).ceil() as i64;
        let xs: Vec<f64> = (-pass_radius..=pass_radius).map(|x| x as f64).collect();
        let phi: Vec<f64> = xs.iter().map(|x| (-0.5 * x * x / (s * s)).exp()).collect();
        let total: f64 = phi.iter().sum();
        let g: Vec<f64> = phi.iter().map(|p| p / total).collect();
        // SciPy convolves with -x/s² φ; as a correlation kernel that is +x/s² φ.
        let d: Vec<f64> = xs.iter().zip(&g).map(|(x, g)| x / (s * s) * g).collect();
        let radius = Self::radius_px(sigma_px);
        Kernels { radius, g: compose(&g, &g, radius), d1: compose(&d, &g, radius), d2: compose(&d, &d, radius) }
    }
}

impl Kernels {
    /// Where the kernels of `sigma_px` are cut: 6σ.
    pub(crate) fn radius_px(sigma_px: f32) -> usize {
        (6.0 * f64::from(sigma_px)).ceil() as usize
    }
}

/// The correlation kernel of correlating with `a`, then with `b` (their full convolution),
/// centred and cut to `radius`.
fn compose(a: &[f64], b: &[f64], radius: usize) -> Vec<f32> {
    let full_radius = (a.len() + b.len() - 2) / 2;
    let mut full = vec![0.0f64; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            full[i + j] += x * y;
        }
    }
    let r = radius.min(full_radius);
    full[full_radius - r..=full_radius + r].iter().map(|&v| v as f32).collect()
}

/// Symmetric reflection at the borders (`d c b a | a b c d | d c b a`).
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    if let Ok(inside) = usize::try_from(i) {
        if inside < n {
            return inside;
        }
    }
    let n = n as isize;
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

/// Whether this CPU runs the AVX2 copies of the filters' loops: the same loops compiled for
/// eight lanes instead of the x86-64 baseline's four, doing the same arithmetic in the same
/// order (Rust never fuses a multiply and an add on its own), so bit for bit the same result.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Writes `fn $body(args)` from the block, and `fn $name(args)` that runs it, through `$avx2`,
/// the same body compiled with AVX2 enabled, where the CPU has AVX2 ([`avx2`]).
macro_rules! with_avx2_copy {
    (
        $(#[$doc:meta])*
        fn $name:ident / $avx2:ident / $body:ident $(<$lt:lifetime>)? ($($arg:ident: $ty:ty),* $(,)?) $block:block
    ) => {
        $(#[$doc])*
        #[allow(unsafe_code)] // Calls the AVX2 copy only where the CPU has AVX2.
        fn $name $(<$lt>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if avx2() {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2 $(<$lt>)? ($($arg: $ty),*) {
            $body($($arg),*)
        }

        #[inline(always)]
        fn $body $(<$lt>)? ($($arg: $ty),*) $block
    };
}

with_avx2_copy! {
    /// Correlates the `rows` of `input` with the three kernels of a scale at once (centres at
    /// `radius`), in the columns `cols` only: smoothing and second derivative are symmetric,
    /// the first derivative is antisymmetric, so each pair of taps either side of the centre
    /// is summed and differenced once and read once for all three. The rows of `out` may be
    /// longer than `input`'s ([`row_pitch`]).
    fn filter_rows / filter_rows_avx2 / filter_rows_body(
        input: &Plane<f32>,
        k: &Kernels,
        padded: &mut [f32],
        out: [&mut Plane<f32>; 3],
        rows: Range<usize>,
        cols: Range<usize>,
    ) {
        let (w, r) = (input.width, k.radius);
        let (c0, c1) = (cols.start, cols.end);
        let [smooth, d1, d2] = out;
        let pitch = smooth.width;
        for y in rows {
            let row_in = &input.data[y * w..(y + 1) * w];
            let at = y * pitch + c0..y * pitch + c1;
            let (s_out, d1_out, d2_out) =
                (&mut smooth.data[at.clone()], &mut d1.data[at.clone()], &mut d2.data[at]);
            padded[r..r + w].copy_from_slice(row_in);
            for i in (0..r).chain(r + w..w + 2 * r) {
                padded[i] = row_in[reflect(i as isize - r as isize, w)];
            }
            let mut x = c0;
            while x + BLOCK <= c1 {
                row_block(k, padded, [&mut *s_out, &mut *d1_out, &mut *d2_out], x - c0, x, BLOCK);
                x += BLOCK;
            }
            let out = [s_out, d1_out, d2_out];
            if x < c1 {
                if c1 - c0 >= BLOCK {
                    // The rest as a full block ending at `c1` ([`BLOCK`]).
                    row_block(k, padded, out, c1 - BLOCK - c0, c1 - BLOCK, BLOCK);
                } else {
                    row_block(k, padded, out, x - c0, x, c1 - x);
                }
            }
        }
    }
}

/// Pixels of a row filtered together, their sums held in registers over every tap: each output
/// is written once rather than once per tap (32 measured faster than 16 or 64 on this machine).
///
/// A block of fewer pixels keeps its sums in memory, and a window's width is rarely a multiple
/// of the block (a tile's is about 106 px): where the window holds a full block, the pixels
/// left after the full blocks are filtered as a full block ending at the window's end. The
/// pixels it shares with the block before are computed again, to the same bits: each pixel's
/// sums run in the same order wherever its block starts.
const BLOCK: usize = 32;

/// The row pass for the `n` (at most [`BLOCK`]) pixels of the padded row from column `x`, into
/// `out` from `at`: per pixel the centre tap, then each pair of taps outwards, the order of
/// the reference in the tests.
#[inline(always)]
fn row_block(k: &Kernels, padded: &[f32], out: [&mut [f32]; 3], at: usize, x: usize, n: usize) {
    let r = k.radius;
    let (mut s, mut e, mut f) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    let centre = &padded[r + x..][..n];
    for l in 0..n {
        (s[l], e[l], f[l]) = (k.g[r] * centre[l], k.d1[r] * centre[l], k.d2[r] * centre[l]);
    }
    for j in 1..=r {
        let (g, d1k, d2k) = (k.g[r + j], k.d1[r + j], k.d2[r + j]);
        let (after, before) = (&padded[r + x + j..][..n], &padded[r + x - j..][..n]);
        for l in 0..n {
            let (sum, diff) = (after[l] + before[l], after[l] - before[l]);
            s[l] += g * sum;
            f[l] += d2k * sum;
            e[l] += d1k * diff;
        }
    }
    let [s_out, d1_out, d2_out] = out;
    s_out[at..at + n].copy_from_slice(&s[..n]);
    d1_out[at..at + n].copy_from_slice(&e[..n]);
    d2_out[at..at + n].copy_from_slice(&f[..n]);
}

/// One column pass: a kernel, where its results go (a plane, or one row) and a factor applied
/// to them.
type ColumnPass<'a, T> = (&'a [f32], T, f32);

/// Correlates the columns of `input` with the symmetric kernel of `sym` and the
/// antisymmetric kernel of `anti` (same radius), each when given, reading each pair of source
/// rows once for both, in `window` only. The rows of `input` and of the outputs may differ in
/// length ([`row_pitch`]).
fn filter_cols(
    input: &Plane<f32>,
    radius: usize,
    tap_rows: &mut [usize],
    mut sym: Option<ColumnPass<'_, &mut Plane<f32>>>,
    mut anti: Option<ColumnPass<'_, &mut Plane<f32>>>,
    window: Roi,
) {
    for y in window.y..window.y + window.height {
        let at = |w: usize| y * w..(y + 1) * w;
        let sym_row = sym.as_mut().map(|(k, out, scale)| (*k, &mut out.data[at(out.width)], *scale));
        let anti_row = anti.as_mut().map(|(k, out, scale)| (*k, &mut out.data[at(out.width)], *scale));
        filter_cols_row(input, radius, y, tap_rows, sym_row, anti_row, window.x..window.x + window.width);
    }
}

with_avx2_copy! {
    /// Row `y` of [`filter_cols`], in the columns `cols` of the rows given (whole rows of
    /// `input`'s width); `tap_rows` (at least `2 * radius + 1` long) is scratch.
    fn filter_cols_row / filter_cols_row_avx2 / filter_cols_row_body<'a>(
        input: &Plane<f32>,
        radius: usize,
        y: usize,
        tap_rows: &mut [usize],
        sym: Option<ColumnPass<'a, &'a mut [f32]>>,
        anti: Option<ColumnPass<'a, &'a mut [f32]>>,
        cols: Range<usize>,
    ) {
        let (w, h, r) = (input.width, input.height, radius);
        let taps = &mut tap_rows[..2 * r + 1];
        for (t, at) in taps.iter_mut().enumerate() {
            *at = reflect((y + t) as isize - r as isize, h) * w;
        }
        let absent = || (&[][..], &mut [][..], 0.0);
        match (sym, anti) {
            (Some(s), Some(a)) => column_blocks::<true, true>(&input.data, taps, s, a, cols),
            (Some(s), None) => column_blocks::<true, false>(&input.data, taps, s, absent(), cols),
            (None, Some(a)) => column_blocks::<false, true>(&input.data, taps, absent(), a, cols),
            (None, None) => {}
        }
    }
}

/// [`filter_cols_row`] with its kernels known to be there (`SYM`, `ANTI`), so that each block's
/// sums stay in registers; `taps` holds where each source row starts, top to bottom.
#[inline(always)]
fn column_blocks<const SYM: bool, const ANTI: bool>(
    data: &[f32],
    taps: &[usize],
    sym: ColumnPass<'_, &mut [f32]>,
    anti: ColumnPass<'_, &mut [f32]>,
    cols: Range<usize>,
) {
    let mut x = cols.start;
    while x + BLOCK <= cols.end {
        column_block::<SYM, ANTI>(data, taps, (sym.0, &mut *sym.1, sym.2), (anti.0, &mut *anti.1, anti.2), x, BLOCK);
        x += BLOCK;
    }
    if x < cols.end {
        if cols.len() >= BLOCK {
            // The rest as a full block ending at the window's end ([`BLOCK`]).
            column_block::<SYM, ANTI>(data, taps, sym, anti, cols.end - BLOCK, BLOCK);
        } else {
            column_block::<SYM, ANTI>(data, taps, sym, anti, x, cols.end - x);
        }
    }
}

/// The column pass for the `n` (at most [`BLOCK`]) pixels from column `x`: per pixel the
/// centre tap (symmetric kernel) or zero (antisymmetric), then each pair of taps outwards,
/// then the factor, the order of the reference in the tests.
#[inline(always)]
fn column_block<const SYM: bool, const ANTI: bool>(
    data: &[f32],
    taps: &[usize],
    (sym_k, sym_out, sym_scale): ColumnPass<'_, &mut [f32]>,
    (anti_k, anti_out, anti_scale): ColumnPass<'_, &mut [f32]>,
    x: usize,
    n: usize,
) {
    let r = taps.len() / 2;
    let (mut s, mut a) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    if SYM {
        let centre = &data[taps[r] + x..][..n];
        for l in 0..n {
            s[l] = sym_k[r] * centre[l];
        }
    }
    for j in 1..=r {
        let (after, before) = (&data[taps[r + j] + x..][..n], &data[taps[r - j] + x..][..n]);
        if SYM {
            let kj = sym_k[r + j];
            for l in 0..n {
                s[l] += kj * (after[l] + before[l]);
            }
        }
        if ANTI {
            let kj = anti_k[r + j];
            for l in 0..n {
                a[l] += kj * (after[l] - before[l]);
            }
        }
    }
    if SYM {
        for (o, v) in sym_out[x..x + n].iter_mut().zip(&s) {
            *o = v * sym_scale;
        }
    }
    if ANTI {
        for (o, v) in anti_out[x..x + n].iter_mut().zip(&a) {
            *o = v * anti_scale;
        }
    }
}

/// Scale-normalised Hessian of one plane at one scale.
#[derive(Debug, Clone)]
pub struct Hessian {
    /// ∂²/∂x² · σ².
    pub xx: Plane<f32>,
    /// ∂²/∂x∂y · σ².
    pub xy: Plane<f32>,
    /// ∂²/∂y² · σ².
    pub yy: Plane<f32>,
}

/// Eigenvalues of `[[xx, xy], [xy, yy]]`, ordered `|λ1| <= |λ2|`.
#[inline]
pub fn eigenvalues(xx: f32, xy: f32, yy: f32) -> (f32, f32) {
    let mean = 0.5 * (xx + yy);
    let half_diff = 0.5 * (xx - yy);
    let root = (half_diff * half_diff + xy * xy).sqrt();
    let (a, b) = (mean + root, mean - root);
    if a.abs() <= b.abs() {
        (a, b)
    } else {
        (b, a)
    }
}

/// The ridge measure of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RidgeMap {
    /// Ridge depth of bright thin ridges (attenuation units), thick structures suppressed.
    pub strength: Plane<f32>,
    /// The unit vector across the ridge at the scale that answered best (its sign is
    /// arbitrary), x and y components; (1, 0) where there is no ridge. Kept as a vector, not an
    /// angle: every use is a projection or a comparison of directions, which need no arctangent.
    pub normal_x: Plane<f32>,
    /// See `normal_x`.
    pub normal_y: Plane<f32>,
}

impl RidgeMap {
    /// An empty map for frames of this size.
    pub fn new(width: usize, height: usize) -> Self {
        RidgeMap {
            strength: Plane::new(width, height),
            normal_x: Plane::new(width, height),
            normal_y: Plane::new(width, height),
        }
    }

    /// No ridge anywhere: zero strength, normal (1, 0).
    pub(crate) fn clear(&mut self) {
        self.strength.data.fill(0.0);
        self.normal_x.data.fill(1.0);
        self.normal_y.data.fill(0.0);
    }

    /// No ridge in `roi`.
    pub(crate) fn clear_in(&mut self, roi: Roi) {
        self.strength.fill_in(roi, 0.0);
        self.normal_x.fill_in(roi, 1.0);
        self.normal_y.fill_in(roi, 0.0);
    }

    /// Gives the map a new size within the one it was made with (see [`Plane::reshape`]).
    pub(crate) fn reshape(&mut self, width: usize, height: usize) {
        for plane in [&mut self.strength, &mut self.normal_x, &mut self.normal_y] {
            plane.reshape(width, height);
        }
    }
}

/// Scratch planes of the Hessian computation.
#[derive(Debug)]
struct Work {
    hessian: Hessian,
    /// The row pass's results, in rows of [`row_pitch`] values.
    smooth_rows: Plane<f32>,
    d1_rows: Plane<f32>,
    d2_rows: Plane<f32>,
    /// One row each of a wire scale's Hessian (xx, xy, yy) and first derivatives
    /// (∂/∂x · σ, ∂/∂y · σ), folded into the map as soon as it is filtered.
    scale_rows: [Vec<f32>; 5],
    padded_row: Vec<f32>,
    /// Where each source row of the column pass starts, for the row being filtered.
    tap_rows: Vec<usize>,
}

/// The length of the row pass's rows for `width` pixels: whole cache lines of 16 values, an
/// odd number of them, so that the column pass's taps, one line from each of up to 2 × 21 + 1
/// rows, fall in different sets of an 8-way L1 cache. At a power-of-two width they would all
/// fall in one or two sets, and the column pass ran at 1024² 1.5 times slower than a width of
/// 1040. `width` itself where `height` such rows would not fit in `capacity` values.
fn row_pitch(width: usize, height: usize, capacity: usize) -> usize {
    let lines = width.div_ceil(16) | 1;
    let pitch = lines * 16;
    if pitch * height <= capacity {
        pitch
    } else {
        width
    }
}

impl Work {
    /// Scratch for `width` × `height` planes and kernels of up to `max_radius`, with rows of
    /// `row_len` values for a wire scale's fold (none where there is none).
    fn new(width: usize, height: usize, max_radius: usize, row_len: usize) -> Self {
        let plane = || Plane::new(width, height);
        let rows = || Plane::new(row_pitch(width, height, usize::MAX), height);
        Work {
            hessian: Hessian { xx: plane(), xy: plane(), yy: plane() },
            smooth_rows: rows(),
            d1_rows: rows(),
            d2_rows: rows(),
            scale_rows: std::array::from_fn(|_| vec![0.0; row_len]),
            padded_row: vec![0.0; width + 2 * max_radius],
            tap_rows: vec![0; 2 * max_radius + 1],
        }
    }

    /// Gives the planes a new size within the one they were made with ([`Plane::reshape`]).
    fn reshape(&mut self, width: usize, height: usize) {
        for plane in [&mut self.hessian.xx, &mut self.hessian.xy, &mut self.hessian.yy] {
            plane.reshape(width, height);
        }
        let capacity = [&self.smooth_rows, &self.d1_rows, &self.d2_rows].map(|p| p.data.capacity()).into_iter().min();
        let pitch = row_pitch(width, height, capacity.unwrap_or(0));
        for plane in [&mut self.smooth_rows, &mut self.d1_rows, &mut self.d2_rows] {
            plane.reshape(pitch, height);
        }
    }

    /// Correlates the rows of `input` with the three kernels of `k`, as far as the column
    /// pass over `window` reads them: its columns, and its rows with `k`'s reach either side.
    ///
    /// The padded row was sized at start for the detector's own scales; only a larger scale
    /// asked of [`RidgeDetector::hessian_at`] grows it.
    fn row_pass(&mut self, input: &Plane<f32>, k: &Kernels, window: Roi) {
        let padded_len = input.width + 2 * k.radius;
        if self.padded_row.len() < padded_len {
            self.padded_row.resize(padded_len, 0.0);
        }
        if self.tap_rows.len() < 2 * k.radius + 1 {
            self.tap_rows.resize(2 * k.radius + 1, 0);
        }
        let out = [&mut self.smooth_rows, &mut self.d1_rows, &mut self.d2_rows];
        let rows = window.y.saturating_sub(k.radius)..(window.y + window.height + k.radius).min(input.height);
        filter_rows(input, k, &mut self.padded_row, out, rows, window.x..window.x + window.width);
    }

    /// The scale-normalised Hessian of `input` at `sigma_px`, in `window` of its planes.
    fn hessian(&mut self, input: &Plane<f32>, k: &Kernels, sigma_px: f32, window: Roi) {
        self.row_pass(input, k, window);
        let (s2, r) = (sigma_px * sigma_px, k.radius);
        let h = &mut self.hessian;
        let taps = &mut self.tap_rows;
        filter_cols(&self.d2_rows, r, taps, Some((&k.g, &mut h.xx, s2)), None, window);
        filter_cols(&self.d1_rows, r, taps, None, Some((&k.d1, &mut h.xy, s2)), window);
        filter_cols(&self.smooth_rows, r, taps, Some((&k.d2, &mut h.yy, s2)), None, window);
    }

    /// Folds the wire scale `k` (`sigma_px`) of `input` into `out`: its ridge depth `-λ2`
    /// weighted by Frangi's anisotropy term, so lines count and blobs do not, and by the edge
    /// weight ([`edge_exponent`]) from the scale's gradient, takes a pixel where it beats the
    /// scales before, together with its normal. The unweighted depth goes into `raw`, the
    /// deepest of the scales so far.
    ///
    /// Row by row: each row of the scale's Hessian and gradient is folded as soon as it is
    /// filtered, so the five never go through memory as whole planes. Only `window` of `out`
    /// and `raw` is written.
    #[allow(clippy::too_many_arguments)] // The scale, what it folds into, and where.
    fn fold_wire_scale(
        &mut self,
        input: &Plane<f32>,
        k: &Kernels,
        sigma_px: f32,
        (beta, edge_tolerance): (f32, f32),
        out: &mut RidgeMap,
        raw: &mut Plane<f32>,
        window: Roi,
    ) {
        self.row_pass(input, k, window);
        let (w, r, s2, s1) = (input.width, k.radius, sigma_px * sigma_px, sigma_px);
        let cols = window.x..window.x + window.width;
        let [xx, xy, yy, gx, gy] = self.scale_rows.each_mut().map(|row| &mut row[..w]);
        for y in window.y..window.y + window.height {
            let c = || cols.clone();
            let taps = &mut self.tap_rows;
            filter_cols_row(&self.d2_rows, r, y, taps, Some((&k.g, &mut *xx, s2)), None, c());
            filter_cols_row(&self.d1_rows, r, y, taps, Some((&k.g, &mut *gx, s1)), Some((&k.d1, &mut *xy, s2)), c());
            filter_cols_row(
                &self.smooth_rows,
                r,
                y,
                taps,
                Some((&k.d2, &mut *yy, s2)),
                Some((&k.d1, &mut *gy, s1)),
                c(),
            );
            let at = y * w + cols.start..y * w + cols.end;
            fold_pixels(
                [&xx[c()], &xy[c()], &yy[c()]],
                [&gx[c()], &gy[c()]],
                &mut out.strength.data[at.clone()],
                &mut out.normal_x.data[at.clone()],
                &mut out.normal_y.data[at.clone()],
                &mut raw.data[at],
                (2.0 * beta * beta, edge_tolerance),
            );
        }
    }

    /// Ridge depth of the current Hessian weighted by the anisotropy term only, in `window`:
    /// the thick scale's measure.
    fn weighted_depth(&self, beta: f32, out: &mut Plane<f32>, window: Roi) {
        let two_b2 = 2.0 * beta * beta;
        let (h, w) = (&self.hessian, out.width);
        for y in window.y..window.y + window.height {
            let at = y * w + window.x..y * w + window.x + window.width;
            let (xxs, xys, yys) = (&h.xx.data[at.clone()], &h.xy.data[at.clone()], &h.yy.data[at.clone()]);
            for (i, o) in out.data[at].iter_mut().enumerate() {
                let (l1, l2) = eigenvalues(xxs[i], xys[i], yys[i]);
                let rb = l1 / l2;
                let weighted = -l2 * exp(-(rb * rb / two_b2));
                *o = if l2 < 0.0 { weighted } else { 0.0 };
            }
        }
    }

    /// The unit normal of the current Hessian at pixel `i`.
    fn normal_at(&self, i: usize) -> (f32, f32) {
        let h = &self.hessian;
        let (xx, xy, yy) = (h.xx.data[i], h.xy.data[i], h.yy.data[i]);
        let (_, l2) = eigenvalues(xx, xy, yy);
        normal_vector(xx, xy, yy, l2)
    }
}

with_avx2_copy! {
    /// The body of [`Work::fold_wire_scale`] for one row: the Hessian (xx, xy, yy), the gradient
    /// (x, y), and what it updates (strength, normal x, normal y, raw depth).
    ///
    /// Written for the compiler's vectoriser: it knows that the four arrays written do not
    /// overlap anything only because each is a `&mut` parameter of its own; every value is
    /// computed for every pixel and the updates are blends, not conditional stores (which the
    /// baseline x86-64 and NEON have no vector instruction for).
    fn fold_pixels / fold_pixels_avx2 / fold_pixels_body(
        hessian: [&[f32]; 3],
        gradient: [&[f32]; 2],
        strength: &mut [f32],
        nxs: &mut [f32],
        nys: &mut [f32],
        raw: &mut [f32],
        weights: (f32, f32),
    ) {
        let (two_b2, edge_tolerance) = weights;
        let n = raw.len();
        let ([xxs, xys, yys], [gxs, gys]) = (hessian, gradient);
        let (xxs, xys, yys, gxs, gys) = (&xxs[..n], &xys[..n], &yys[..n], &gxs[..n], &gys[..n]);
        let (strength, nxs, nys) = (&mut strength[..n], &mut nxs[..n], &mut nys[..n]);
        for i in 0..n {
            let (xx, xy, yy) = (xxs[i], xys[i], yys[i]);
            let (l1, l2) = eigenvalues(xx, xy, yy);
            let (nx, ny) = normal_vector(xx, xy, yy, l2);
            let (rb, depth) = (l1 / l2, -l2);
            let slope = gxs[i] * nx + gys[i] * ny;
            let weighted = depth * exp(-(rb * rb / two_b2) + edge_exponent(slope, depth, edge_tolerance));
            let ridge = depth > 0.0;
            raw[i] = if ridge & (depth > raw[i]) { depth } else { raw[i] };
            let keep = u32::from(!(ridge & (weighted > strength[i]))).wrapping_neg();
            strength[i] = blend(keep, strength[i], weighted);
            nxs[i] = blend(keep, nxs[i], nx);
            nys[i] = blend(keep, nys[i], ny);
        }
    }
}

/// `old` where `keep` is all ones, `new` where it is zero.
#[inline(always)]
fn blend(keep: u32, old: f32, new: f32) -> f32 {
    f32::from_bits((old.to_bits() & keep) | (new.to_bits() & !keep))
}

/// The eigenvector of `λ2`, unit length, or (1, 0) where the Hessian is zero.
#[inline]
pub fn normal_vector(xx: f32, xy: f32, yy: f32, l2: f32) -> (f32, f32) {
    let (nx, ny) = if (xy != 0.0) | (l2 != xx) { (xy, l2 - xx) } else { (l2 - yy, xy) };
    let norm = (nx * nx + ny * ny).sqrt();
    if norm > 0.0 {
        (nx / norm, ny / norm)
    } else {
        (1.0, 0.0)
    }
}

/// `e^x` for `x` in [-87, 88] (clamped outside), within 2e-7 relative of the exact value: Cephes'
/// `expf` (range reduction by ln 2, a degree-6 polynomial, the exponent set directly), written
/// so that the compiler vectorises it. The C library's `expf` is a call per value and was a
/// tenth of the frame.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 × 2²³ rounds to the nearest integer without a rounding
    // instruction the baseline x86-64 target lacks.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    // The integer n sits in the low bits of `shifted`, read without a float-to-int conversion.
    let two_n = f32::from_bits((shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23);
    (p * r * r + r + 1.0) * two_n
}

/// How much of a ridge response is a line rather than the shoulder of a step edge.
///
/// Across a line the slope is zero at the axis, where `-λ2` peaks. Beside a step edge blurred
/// to scale `s`, `-λ2` peaks at distance `s` from the edge, where the scale-normalised slope
/// is `s/σ ≥ 1` times the depth. A wire passing a bone edge keeps its axis at a small ratio;
/// the edge's own shoulder does not. Slope along the ridge (a wire crossing an edge) is not
/// counted: only its component across the ridge, `slope`, is.
///
/// The weight is `e` to this exponent, taken together with the anisotropy term's.
#[inline(always)]
fn edge_exponent(slope: f32, depth: f32, tolerance: f32) -> f32 {
    let ratio = slope / (depth * tolerance);
    -0.5 * ratio * ratio
}

/// The scale-normalised Hessian of whole planes of one size at a fixed set of scales, with
/// kernels and scratch made at start: the learned engine's features.
#[derive(Debug)]
pub struct HessianFilter {
    kernels: Vec<(Kernels, f32)>,
    work: Work,
}

impl HessianFilter {
    /// Kernels and scratch for `width` × `height` planes at each of `sigmas_px`.
    pub fn new(width: usize, height: usize, sigmas_px: &[f32]) -> Self {
        let kernels: Vec<(Kernels, f32)> = sigmas_px.iter().map(|&s| (Kernels::new(s), s)).collect();
        let max_radius = kernels.iter().map(|(k, _)| k.radius).max().unwrap_or(0);
        HessianFilter { kernels, work: Work::new(width, height, max_radius, 0) }
    }

    /// How far (px) the largest scale's kernels reach: a region needs this much of the image
    /// around it for its Hessian to equal the whole image's.
    pub fn reach_px(&self) -> usize {
        self.kernels.iter().map(|(k, _)| k.radius).max().unwrap_or(0)
    }

    /// The Hessian of `input` (of the size given at start) at the `scale`-th of the scales.
    pub fn compute(&mut self, input: &Plane<f32>, scale: usize) -> &Hessian {
        let (k, sigma_px) = &self.kernels[scale];
        self.work.hessian(input, k, *sigma_px, Roi::whole(input.width, input.height));
        &self.work.hessian
    }
}

/// Computes [`RidgeMap`]s; holds kernels and scratch planes for one frame size.
#[derive(Debug)]
pub struct RidgeDetector {
    params: RidgeParams,
    wire_kernels: Vec<Kernels>,
    thick_kernels: Kernels,
    work: Work,
    response: Plane<f32>,
    thin_raw: Plane<f32>,
    thick_mask: Plane<u8>,
    dilate_scratch: Plane<u8>,
    /// Which sides of the planes are the image's own border, rather than the edge of a part of
    /// it ([`bands`](super::bands), [`tiles`](super::tiles)), where nothing is a border echo.
    sides: ImageSides,
}

/// Which sides of the planes a [`RidgeDetector`] works on are the image's own border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageSides {
    pub(crate) top: bool,
    pub(crate) bottom: bool,
    pub(crate) left: bool,
    pub(crate) right: bool,
}

impl ImageSides {
    /// The planes are the whole image.
    pub(crate) const ALL: ImageSides = ImageSides { top: true, bottom: true, left: true, right: true };
}

impl RidgeDetector {
    /// Builds kernels and scratch planes for `width` × `height` frames.
    pub fn new(width: usize, height: usize, params: RidgeParams) -> Self {
        Self::for_part(width, height, params, ImageSides::ALL)
    }

    /// A detector for a `width` × `height` part of a larger image, whose sides are the image's
    /// border where `sides` says so.
    pub(crate) fn for_part(width: usize, height: usize, params: RidgeParams, sides: ImageSides) -> Self {
        let wire_kernels: Vec<Kernels> = params.wire_scales_px.iter().map(|&s| Kernels::new(s)).collect();
        let thick_kernels = Kernels::new(params.thick_scale_px);
        let max_radius = wire_kernels.iter().map(|k| k.radius).chain([thick_kernels.radius]).max().unwrap_or(0);
        let plane = || Plane::new(width, height);
        RidgeDetector {
            params,
            wire_kernels,
            thick_kernels,
            work: Work::new(width, height, max_radius, width),
            response: plane(),
            thin_raw: plane(),
            thick_mask: Plane::new(width, height),
            dilate_scratch: Plane::new(width, height),
            sides,
        }
    }

    /// Which sides of the planes are the image's border, for a part of the image that moves.
    pub(crate) fn set_sides(&mut self, sides: ImageSides) {
        self.sides = sides;
    }

    /// Gives the detector a new size within the one it was made with, for parts of the image
    /// that change size: no wider, and no more pixels ([`Plane::reshape`]).
    pub(crate) fn reshape(&mut self, width: usize, height: usize) {
        debug_assert!(width <= self.work.scale_rows[0].len(), "{width} px is wider than the detector");
        self.work.reshape(width, height);
        for plane in [&mut self.response, &mut self.thin_raw] {
            plane.reshape(width, height);
        }
        self.thick_mask.reshape(width, height);
        self.dilate_scratch.reshape(width, height);
    }

    fn thick_dilation_px(&self) -> usize {
        self.params.thick_dilation_px()
    }

    /// Scale-normalised Hessian of `input` at `sigma_px`: the reference that faster variants
    /// and the learned engine's features are checked against.
    pub fn hessian_at(&mut self, input: &Plane<f32>, sigma_px: f32) -> &Hessian {
        self.work.hessian(input, &Kernels::new(sigma_px), sigma_px, Roi::whole(input.width, input.height));
        &self.work.hessian
    }

    /// Where the last frame's thick structures (catheters) were masked, for diagnostics.
    pub fn thick_mask(&self) -> &Plane<u8> {
        &self.thick_mask
    }

    /// Computes the ridge map of a log-attenuation plane.
    pub fn detect(&mut self, input: &Plane<f32>, out: &mut RidgeMap) {
        self.detect_in(input, out, Roi::whole(input.width, input.height));
    }

    /// [`RidgeDetector::detect`] where only `inner` of the map is wanted (a part's region
    /// inside its halo): each scale is filtered only where what `inner` reads of it lies, the
    /// wire scales within the thick mask's dilation of it, the thick scale one pixel beyond
    /// (the axis test's neighbours). Inside `inner` the map and the thick mask are `detect`'s,
    /// bit for bit; outside it they are not to be read.
    pub(crate) fn detect_in(&mut self, input: &Plane<f32>, out: &mut RidgeMap, inner: Roi) {
        let (w, h) = (input.width, input.height);
        let radius = self.thick_dilation_px();
        let (wire, thick) = (inner.grown(radius, (w, h)), inner.grown(radius + 1, (w, h)));
        out.clear();
        self.thin_raw.data.fill(0.0);
        for (k, &sigma) in self.wire_kernels.iter().zip(&self.params.wire_scales_px) {
            let weights = (self.params.beta, self.params.edge_tolerance);
            self.work.fold_wire_scale(input, k, sigma, weights, out, &mut self.thin_raw, wire);
        }
        self.work.hessian(input, &self.thick_kernels, self.params.thick_scale_px, thick);
        self.work.weighted_depth(self.params.beta, &mut self.response, thick);
        self.mark_thick_centres(wire);
        dilate(&mut self.thick_mask, radius, &mut self.dilate_scratch);
        let min_cos = self.params.parallel_min_cos();
        for y in inner.y..inner.y + inner.height {
            for i in y * w + inner.x..y * w + inner.x + inner.width {
                let v = &mut out.strength.data[i];
                if self.thick_mask.data[i] != 0 && *v > 0.0 {
                    let (tx, ty) = self.work.normal_at(i);
                    if (out.normal_x.data[i] * tx + out.normal_y.data[i] * ty).abs() > min_cos {
                        *v = 0.0;
                    }
                }
            }
        }
        self.suppress_border_echoes(out);
    }

    /// Mirroring at the border turns any structure that meets the border at a shallow angle
    /// into a ridge along the border itself. A wire crosses the border; it does not run along
    /// it. So ridges in the outermost pixels that run parallel to the border are dropped.
    fn suppress_border_echoes(&self, out: &mut RidgeMap) {
        let (w, h) = (out.strength.width, out.strength.height);
        let margin = self.params.border_margin_px();
        let min_cos = self.params.parallel_min_cos();
        for y in 0..h {
            for x in 0..w {
                let near_row = (self.sides.top && y < margin) || (self.sides.bottom && y + margin >= h);
                let near_col = (self.sides.left && x < margin) || (self.sides.right && x + margin >= w);
                if !(near_row || near_col) {
                    continue;
                }
                let i = y * w + x;
                let along_row = near_row && out.normal_y.data[i].abs() > min_cos;
                let along_col = near_col && out.normal_x.data[i].abs() > min_cos;
                if along_row || along_col {
                    out.strength.data[i] = 0.0;
                }
            }
        }
    }

    /// Marks the axes of thick ridges: pixels where the thick-scale depth is a maximum across
    /// the ridge (along the Hessian normal), above `thick_min_depth`, and deeper than the
    /// deepest wire-scale response there. The wire scales are taken without the anisotropy
    /// term, which drops at a wire's end (its cap is blob-like) and would let the thick scale
    /// win at the tip; the thick scale keeps it, so the blob of a tip is no thick ridge.
    /// Comparing on the axis only matters: beside a thin wire the thick scale still answers
    /// while the small ones do not.
    ///
    /// Only within `window`, outside which the mask is left empty.
    fn mark_thick_centres(&mut self, window: Roi) {
        let (w, h) = (self.thin_raw.width, self.thin_raw.height);
        let depth = &self.response.data;
        self.thick_mask.data.fill(0);
        for y in window.y.max(1)..(window.y + window.height).min(h.saturating_sub(1)) {
            for x in window.x.max(1)..(window.x + window.width).min(w - 1) {
                let i = y * w + x;
                let t = depth[i];
                if t <= self.params.thick_min_depth || t <= self.thin_raw.data[i] {
                    continue;
                }
                let (nx, ny) = self.work.normal_at(i);
                let step = across_step(nx, ny, w as isize);
                let (a, b) = (depth[(i as isize - step) as usize], depth[(i as isize + step) as usize]);
                if t >= a && t >= b {
                    self.thick_mask.data[i] = 1;
                }
            }
        }
    }
}

/// The index step to the neighbour across a ridge whose normal is (`nx`, `ny`), in a plane
/// `w` wide: the normal's direction rounded to one of the four pixel directions, by comparison
/// against tan(π/8) (no arctangent, whose last bit differs between libraries: the GPU's kernel
/// makes the same comparisons, `kernels/common.cuh`).
#[inline]
pub(crate) fn across_step(nx: f32, ny: f32, w: isize) -> isize {
    const TAN_PI_8: f32 = 0.414_213_57;
    // The normal and its opposite are the same direction across the ridge: take the one in
    // the upper half plane.
    let (x, y) = if ny < 0.0 || (ny == 0.0 && nx < 0.0) { (-nx, -ny) } else { (nx, ny) };
    if y < TAN_PI_8 * x.abs() {
        1
    } else if x.abs() <= TAN_PI_8 * y {
        w
    } else if x > 0.0 {
        w + 1
    } else {
        w - 1
    }
}

/// Binary dilation by a square of side `2 * radius + 1`, as two separable passes, each a
/// maximum over shifted rows so that it vectorises.
pub(crate) fn dilate(mask: &mut Plane<u8>, radius: usize, scratch: &mut Plane<u8>) {
    let (w, h) = (mask.width, mask.height);
    for (row_in, row_out) in mask.data.chunks_exact(w).zip(scratch.data.chunks_exact_mut(w)) {
        row_out.copy_from_slice(row_in);
        for d in 1..=radius.min(w - 1) {
            row_out[..w - d].iter_mut().zip(&row_in[d..]).for_each(|(o, &v)| *o = (*o).max(v));
            row_out[d..].iter_mut().zip(&row_in[..w - d]).for_each(|(o, &v)| *o = (*o).max(v));
        }
    }
    for (y, row_out) in mask.data.chunks_exact_mut(w).enumerate() {
        let (lo, hi) = (y.saturating_sub(radius), (y + radius).min(h - 1));
        row_out.fill(0);
        for row in scratch.data[lo * w..(hi + 1) * w].chunks_exact(w) {
            row_out.iter_mut().zip(row).for_each(|(o, &v)| *o = (*o).max(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 copies of the filters' loops give the baseline's results bit for bit, on sizes
    /// that leave a remainder after every vector width, with values of both signs and zeros.
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[allow(unsafe_code)]
    fn the_avx2_copies_match_the_baseline_bit_for_bit() {
        if !avx2() {
            println!("SKIPPED: this CPU has no AVX2");
            return;
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if state.is_multiple_of(17) {
                0.0
            } else {
                v
            }
        };
        let (w, h) = (67, 29);
        let input = Plane { width: w, height: h, data: (0..w * h).map(|_| next()).collect() };
        let k = Kernels::new(1.5);
        let bits = |p: &Plane<f32>| p.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();

        // Rows and columns short of the plane's own, as a window of it asks: wider than a block
        // (its last block overlapping the one before), and narrower (a short block).
        for cols in [3..w - 2, 5..30] {
            let planes = || [Plane::new(w, h), Plane::new(w, h), Plane::new(w, h)];
            let (mut base, mut fast) = (planes(), planes());
            let mut padded = vec![0.0; w + 2 * k.radius];
            let rows = 2..h - 1;
            filter_rows_body(&input, &k, &mut padded, base.each_mut(), rows.clone(), cols.clone());
            // SAFETY: the CPU has AVX2, checked above.
            unsafe { filter_rows_avx2(&input, &k, &mut padded, fast.each_mut(), rows, cols.clone()) };
            for (b, f) in base.iter().zip(&fast) {
                assert_eq!(bits(b), bits(f), "row pass, columns {cols:?}");
            }

            let mut taps = vec![0; 2 * k.radius + 1];
            for y in 0..h {
                let rows = || (vec![0.0f32; w], vec![0.0f32; w]);
                let ((mut s0, mut a0), (mut s1, mut a1)) = (rows(), rows());
                let (sym, anti) = (Some((&k.d2[..], &mut s0[..], 2.25)), Some((&k.d1[..], &mut a0[..], 1.5)));
                filter_cols_row_body(&input, k.radius, y, &mut taps, sym, anti, cols.clone());
                // SAFETY: as above.
                unsafe {
                    let (sym, anti) = (Some((&k.d2[..], &mut s1[..], 2.25)), Some((&k.d1[..], &mut a1[..], 1.5)));
                    filter_cols_row_avx2(&input, k.radius, y, &mut taps, sym, anti, cols.clone())
                };
                assert_eq!((s0, a0), (s1, a1), "column pass, row {y}, columns {cols:?}");
            }
        }

        let row = |n: usize, next: &mut dyn FnMut() -> f32| (0..n).map(|_| next()).collect::<Vec<f32>>();
        let n = 2 * w + 3;
        let [xx, xy, yy, gx, gy] = std::array::from_fn(|_| row(n, &mut next));
        let outputs = |next: &mut dyn FnMut() -> f32| [row(n, next), row(n, next), row(n, next), row(n, next)];
        let mut base = outputs(&mut next);
        let mut fast = base.clone();
        let [s, nx, ny, raw] = base.each_mut();
        fold_pixels_body([&xx, &xy, &yy], [&gx, &gy], s, nx, ny, raw, (0.5, 1.5));
        let [s, nx, ny, raw] = fast.each_mut();
        // SAFETY: as above.
        unsafe { fold_pixels_avx2([&xx, &xy, &yy], [&gx, &gy], s, nx, ny, raw, (0.5, 1.5)) };
        for (b, f) in base.iter().zip(&fast) {
            assert_eq!(
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                f.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    fn plane_from(width: usize, height: usize, f: impl Fn(f32, f32) -> f32) -> Plane<f32> {
        let mut p = Plane::new(width, height);
        for y in 0..height {
            for x in 0..width {
                p.data[y * width + x] = f(x as f32, y as f32);
            }
        }
        p
    }

    #[test]
    fn hessian_of_a_quadratic_is_exact_away_from_borders() {
        let (a, b, c) = (0.02f32, -0.01f32, 0.03f32);
        let img = plane_from(64, 48, |x, y| {
            let (x, y) = (x - 32.0, y - 24.0);
            0.5 * a * x * x + b * x * y + 0.5 * c * y * y
        });
        let sigma = 2.0;
        let mut det = RidgeDetector::new(64, 48, RidgeParams::default());
        let h = det.hessian_at(&img, sigma);
        let s2 = sigma * sigma;
        for y in 10..38 {
            for x in 10..54 {
                assert!((h.xx.at(x, y) - a * s2).abs() < 1e-4, "xx at {x},{y}: {}", h.xx.at(x, y));
                assert!((h.xy.at(x, y) - b * s2).abs() < 1e-4, "xy at {x},{y}");
                assert!((h.yy.at(x, y) - c * s2).abs() < 1e-4, "yy at {x},{y}");
            }
        }
    }

    #[test]
    fn exp_is_within_two_ten_millionths_of_the_exact_value() {
        for i in 0..=200_000 {
            let x = -87.0 + 100.0 * i as f32 / 200_000.0;
            let exact = f64::from(x).exp();
            let relative = ((f64::from(exp(x)) - exact) / exact).abs();
            assert!(relative < 2e-7, "e^{x}: {} against {exact}, {relative:e} relative", exp(x));
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), exp(-87.0));
    }

    /// A plane of `w` × `h` values in -0.5..0.5, some of them zero.
    fn noise_plane(w: usize, h: usize, seed: u64) -> Plane<f32> {
        let mut state = seed;
        let data = (0..w * h)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(13) {
                    0.0
                } else {
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                }
            })
            .collect();
        Plane { width: w, height: h, data }
    }

    /// The row and column passes, blocked and with rows of another pitch, against correlation
    /// written pixel by pixel in the same order: centre tap, then each pair outwards, then the
    /// factor. Windows that are no multiple of the block, wider than one (the last block
    /// overlaps the one before) and narrower (a short block), off the plane's edges, and planes
    /// lower than the kernel, whose rows reflect more than once. Nothing outside the window is
    /// written.
    #[test]
    fn the_blocked_passes_equal_plain_correlation_bit_for_bit() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (w, h, sigma, seed) in [(75, 40, 1.5, 1u64), (131, 9, 3.5, 2), (33, 70, 1.0, 3)] {
            let input = noise_plane(w, h, seed);
            let k = Kernels::new(sigma);
            let r = k.radius as isize;
            let at = |x: isize, y: isize| input.data[reflect(y, h) * w + reflect(x, w)];
            let (rows, cols) = (1..h - 1, 2..w - 3);
            let pitch = row_pitch(w, h, usize::MAX);
            assert!(pitch > w && pitch.is_multiple_of(16) && !(pitch / 16).is_multiple_of(2), "{w} px: pitch {pitch}");
            let unwritten = f32::from_bits(0x7fc0_dead);
            let plane = || Plane { width: pitch, height: h, data: vec![unwritten; pitch * h] };
            let mut out = [plane(), plane(), plane()];
            filter_rows(&input, &k, &mut vec![0.0; w + 2 * k.radius], out.each_mut(), rows.clone(), cols.clone());
            for (i, v) in out.iter().flat_map(|p| p.data.iter().enumerate()) {
                let (x, y) = (i % pitch, i / pitch);
                if !(rows.contains(&y) && cols.contains(&x)) {
                    assert_eq!(v.to_bits(), unwritten.to_bits(), "row pass wrote {x},{y} outside its window");
                }
            }
            for y in rows.clone() {
                for x in cols.clone() {
                    let (xi, yi) = (x as isize, y as isize);
                    let centre = at(xi, yi);
                    let mut want = [k.g[k.radius] * centre, k.d1[k.radius] * centre, k.d2[k.radius] * centre];
                    for j in 1..=r {
                        let (after, before) = (at(xi + j, yi), at(xi - j, yi));
                        let ju = (r + j) as usize;
                        want[0] += k.g[ju] * (after + before);
                        want[1] += k.d1[ju] * (after - before);
                        want[2] += k.d2[ju] * (after + before);
                    }
                    let got = out.each_ref().map(|p| p.data[y * pitch + x]);
                    assert_eq!(bits(&got), bits(&want), "row pass at {x},{y} of {w}x{h}, σ {sigma}");
                }
            }
            let mut taps = vec![0; 2 * k.radius + 1];
            for y in 0..h {
                let (mut sym, mut anti) = (vec![unwritten; w], vec![unwritten; w]);
                let passes = (Some((&k.d2[..], &mut sym[..], 2.25)), Some((&k.d1[..], &mut anti[..], 1.5)));
                filter_cols_row(&input, k.radius, y, &mut taps, passes.0, passes.1, cols.clone());
                let mut alone = vec![unwritten; w];
                filter_cols_row(&input, k.radius, y, &mut taps, None, Some((&k.d1, &mut alone, 1.5)), cols.clone());
                assert_eq!(bits(&alone), bits(&anti), "antisymmetric pass alone, row {y}");
                for x in (0..w).filter(|x| !cols.contains(x)) {
                    assert_eq!(bits(&[sym[x], anti[x]]), bits(&[unwritten; 2]), "column pass wrote {x},{y} outside");
                }
                for x in cols.clone() {
                    let (xi, yi) = (x as isize, y as isize);
                    let (mut s, mut a) = (k.d2[k.radius] * at(xi, yi), 0.0f32);
                    for j in 1..=r {
                        let (after, before) = (at(xi, yi + j), at(xi, yi - j));
                        let ju = (r + j) as usize;
                        s += k.d2[ju] * (after + before);
                        a += k.d1[ju] * (after - before);
                    }
                    assert_eq!(bits(&[sym[x], anti[x]]), bits(&[s * 2.25, a * 1.5]), "column pass at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn reflection_mirrors_at_both_borders_and_repeats() {
        let mirrored: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(mirrored, [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        assert!((-3..4).all(|i| reflect(i, 1) == 0));
    }

    #[test]
    fn eigenvalues_are_ordered_by_magnitude() {
        let (l1, l2) = eigenvalues(-3.0, 0.0, 1.0);
        assert_eq!((l1, l2), (1.0, -3.0));
        let (l1, l2) = eigenvalues(2.0, 1.0, 2.0);
        assert!((l1 - 1.0).abs() < 1e-6 && (l2 - 3.0).abs() < 1e-6);
    }

    /// A bright line of Gaussian profile with width `s_px`, at angle `theta`, through the centre.
    fn line(size: usize, s_px: f32, amplitude: f32, theta: f32) -> Plane<f32> {
        let (nx, ny) = (-theta.sin(), theta.cos());
        let c = size as f32 / 2.0;
        plane_from(size, size, |x, y| {
            let d = (x - c) * nx + (y - c) * ny;
            amplitude * (-d * d / (2.0 * s_px * s_px)).exp()
        })
    }

    #[test]
    fn a_thin_line_peaks_on_its_axis_at_any_angle() {
        for theta in [0.0f32, 0.4, 0.785, 1.3] {
            let img = line(64, 0.9, 0.3, theta);
            let mut det = RidgeDetector::new(64, 64, RidgeParams::default());
            let mut map = RidgeMap::new(64, 64);
            det.detect(&img, &mut map);
            let (nx, ny) = (-theta.sin(), theta.cos());
            let on = map.strength.at(32, 32);
            let off_x = (32.0 + 4.0 * nx).round() as usize;
            let off_y = (32.0 + 4.0 * ny).round() as usize;
            // A Gaussian line's depth at its best scale is 2/(3√3) ≈ 0.385 of its amplitude.
            assert!((0.3..0.4).contains(&(on / 0.3)), "theta {theta}: on-axis depth {on}");
            assert!(map.strength.at(off_x, off_y) < 0.2 * on, "theta {theta}: off-axis too strong");
        }
    }

    #[test]
    fn the_shoulder_of_a_step_edge_is_no_ridge_but_a_line_beside_it_is() {
        // A bone edge (attenuation steps up by 0.3 at x = 40, blurred over 1 px) and a wire
        // 0.3 deep at x = 52 on the bright side of it.
        let edge = |x: f32| 0.3 / (1.0 + (-(x - 40.0) / 0.6).exp());
        let wire = |x: f32| 0.3 * (-(x - 52.0) * (x - 52.0) / (2.0 * 0.9 * 0.9)).exp();
        let img = plane_from(96, 64, |x, _| edge(x) + wire(x));
        let mut det = RidgeDetector::new(96, 64, RidgeParams::default());
        let mut map = RidgeMap::new(96, 64);
        det.detect(&img, &mut map);
        let wire_depth = map.strength.at(52, 32);
        let shoulder = (30..47).map(|x| map.strength.at(x, 32)).fold(0.0, f32::max);
        assert!(wire_depth > 0.09, "wire depth {wire_depth}");
        assert!(shoulder < 0.2 * wire_depth, "edge shoulder {shoulder} against wire {wire_depth}");
        let without = RidgeParams { edge_tolerance: f32::INFINITY, ..RidgeParams::default() };
        RidgeDetector::new(96, 64, without).detect(&img, &mut map);
        let raw_shoulder = (30..47).map(|x| map.strength.at(x, 32)).fold(0.0, f32::max);
        assert!(
            raw_shoulder > 4.0 * shoulder,
            "unweighted, the shoulder is a ridge: {raw_shoulder} against {shoulder}"
        );
    }

    #[test]
    fn a_dark_line_is_not_a_ridge() {
        let img = line(64, 0.9, -0.3, 0.3);
        let mut det = RidgeDetector::new(64, 64, RidgeParams::default());
        let mut map = RidgeMap::new(64, 64);
        det.detect(&img, &mut map);
        assert!(map.strength.at(32, 32) < 0.05);
    }

    #[test]
    fn a_thick_tube_is_suppressed_but_a_thin_wire_beside_it_is_kept() {
        let size = 96;
        let img = plane_from(size, size, |x, _| {
            let tube = |c: f32, r: f32| {
                let d = x - c;
                if d.abs() < r {
                    2.0 * (r * r - d * d).sqrt()
                } else {
                    0.0
                }
            };
            0.1 * tube(30.0, 3.5) + 0.25 * tube(70.0, 0.8)
        });
        let mut det = RidgeDetector::new(size, size, RidgeParams::default());
        let mut map = RidgeMap::new(size, size);
        det.detect(&img, &mut map);
        for x in 24..=36 {
            assert_eq!(map.strength.at(x, 48), 0.0, "catheter column {x} not suppressed");
        }
        assert!(map.strength.at(70, 48) > 0.05, "wire lost: {}", map.strength.at(70, 48));
    }

    /// A window of the map, each scale filtered only where the window reads it, is the whole
    /// map's there bit for bit: windows at the corners, the borders and inside, and windows
    /// whose edge lies a thick mask's dilation from a tube's axis (the mask's reach into them),
    /// over two tubes, a wire crossing them at a slant, a blob and noise.
    #[test]
    fn a_window_of_the_map_is_the_whole_map_s_bit_for_bit() {
        let (w, h) = (83, 71);
        let img = plane_from(w, h, |x, y| {
            let tube = |d: f32, r: f32| if d.abs() < r { 2.0 * (r * r - d * d).sqrt() } else { 0.0 };
            let noise = ((x * 12.9898 + y * 78.233).sin() * 43758.547).fract() * 0.02;
            0.1 * tube(x - 30.0, 3.5)
                + 0.1 * tube(y - 40.0, 3.5)
                + 0.25 * tube((x - 0.6 * y - 20.0) * 0.857, 0.8)
                + 0.3 * (-((x - 60.0).powi(2) + (y - 55.0).powi(2)) / 8.0).exp()
                + noise
        });
        let mut det = RidgeDetector::new(w, h, RidgeParams::default());
        let mut whole = RidgeMap::new(w, h);
        det.detect(&img, &mut whole);
        let whole_mask = det.thick_mask().clone();
        let reach = RidgeParams::default().thick_dilation_px();
        let windows = [
            Roi { x: 0, y: 0, width: 20, height: 15 },
            Roi { x: 25, y: 10, width: 30, height: 40 },
            Roi { x: 70, y: 60, width: 13, height: 11 },
            Roi { x: 0, y: 33, width: 83, height: 1 },
            // The axes at x = 30 and y = 40 lie `reach` beyond these windows' edges.
            Roi { x: 30 + reach, y: 10, width: 10, height: 10 },
            Roi { x: 12, y: 10, width: 30 - reach - 12 + 1, height: 10 },
            Roi { x: 50, y: 40 + reach, width: 10, height: 8 },
            Roi { x: 50, y: 20, width: 10, height: 40 - reach - 20 + 1 },
            Roi::whole(w, h),
        ];
        for inner in windows {
            for y in inner.y..inner.y + inner.height {
                for x in inner.x..inner.x + inner.width {
                    assert!(x < w && y < h, "{inner:?} reaches beyond the image");
                }
            }
        }
        // Every plane of the detector holds another image's values where the window does not
        // compute its own.
        let other = plane_from(w, h, |x, y| 1e4 * ((x * 0.7).sin() + (y * 0.45).cos()));
        let mut map = RidgeMap::new(w, h);
        for inner in windows {
            det.detect(&other, &mut map);
            det.detect_in(&img, &mut map, inner);
            for y in inner.y..inner.y + inner.height {
                for i in y * w + inner.x..y * w + inner.x + inner.width {
                    let same = |a: &Plane<f32>, b: &Plane<f32>| a.data[i].to_bits() == b.data[i].to_bits();
                    assert!(same(&map.strength, &whole.strength), "{inner:?}: strength at {i}");
                    assert!(same(&map.normal_x, &whole.normal_x) && same(&map.normal_y, &whole.normal_y));
                    assert_eq!(det.thick_mask().data[i], whole_mask.data[i], "{inner:?}: thick mask at {i}");
                }
            }
        }
        // The Hessian alone, at a wire scale and the thick one: the window's row pass reaches
        // as far as its column pass reads.
        for sigma in [1.0, 3.5] {
            let k = Kernels::new(sigma);
            let reference = det.hessian_at(&img, sigma).clone();
            for inner in windows {
                det.work.hessian(&other, &k, sigma, Roi::whole(w, h));
                det.work.hessian(&img, &k, sigma, inner);
                let got = &det.work.hessian;
                for y in inner.y..inner.y + inner.height {
                    for i in y * w + inner.x..y * w + inner.x + inner.width {
                        let bits = |p: &Plane<f32>| p.data[i].to_bits();
                        let (a, b) = (&reference, got);
                        assert_eq!(
                            (bits(&a.xx), bits(&a.xy), bits(&a.yy)),
                            (bits(&b.xx), bits(&b.xy), bits(&b.yy)),
                            "σ {sigma}, {inner:?}: Hessian at {i}"
                        );
                    }
                }
            }
        }
        let masked = |x: usize, y: usize| whole_mask.data[y * w + x] == 1;
        assert!(masked(30 + reach, 15) && masked(30 - reach, 15), "the tube's mask reaches the windows");
        assert!(masked(55, 40 + reach) && masked(55, 40 - reach));
    }

    /// The step across a ridge is the normal's direction rounded to the nearest of the four
    /// pixel directions, whichever of its two senses the normal has.
    #[test]
    fn the_step_across_is_the_nearest_pixel_direction() {
        let w = 100;
        for degrees in 0..360 {
            if degrees % 45 == 22 || degrees % 45 == 23 {
                continue; // within a degree of a boundary
            }
            let theta = (degrees as f32).to_radians();
            let want = match ((degrees % 180) as f32 / 45.0).round() as i32 {
                0 | 4 => 1,
                1 => w + 1,
                2 => w,
                _ => w - 1,
            };
            assert_eq!(across_step(theta.cos(), theta.sin(), w), want, "{degrees} degrees");
        }
    }
}
