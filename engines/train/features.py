"""The learned engine's input features, as src/vision/features.rs defines them (version 1).

Channel order: log attenuation minus its lower median over the region; then the sigma^2
normalised Hessian eigenvalues lambda1 (smaller magnitude) and lambda2 at sigma 1 and 2 px;
everything clamped to +-4. The Hessian uses the ridge stage's kernels (scikit-image's
Gaussian-derivative construction, cut at 6 sigma) and symmetric reflection at the borders.

tests/features_parity.rs checks the Rust features against this file's output on a committed
fixture (written by tests/features/generate.py) within 1e-4.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_VERSION = 1
CHANNELS = 5
SCALES_PX = (1.0, 2.0)
CLAMP = 4.0


def _compose(a, b, radius):
    full = np.convolve(a, b)
    full_radius = (len(a) + len(b) - 2) // 2
    r = min(radius, full_radius)
    return full[full_radius - r : full_radius + r + 1].astype(np.float32)


def kernels(sigma_px):
    """Smoothing, first and second derivative correlation kernels of one scale, as
    `Kernels::new` in src/vision/ridge.rs builds them."""
    s = sigma_px / math.sqrt(2.0)
    pass_radius = math.ceil(7.0 * s)
    xs = np.arange(-pass_radius, pass_radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * xs * xs / (s * s))
    g = phi / phi.sum()
    d = xs / (s * s) * g
    radius = math.ceil(6.0 * sigma_px)
    return _compose(g, g, radius), _compose(d, g, radius), _compose(d, d, radius)


def reach_px():
    return max(math.ceil(6.0 * s) for s in SCALES_PX)


def _reflect_index(n, r):
    """Indices of a length-n axis padded by r each side with symmetric reflection
    (d c b a | a b c d | d c b a), any r."""
    i = np.arange(-r, n + r)
    period = 2 * n
    m = np.mod(i, period)
    return torch.from_numpy(np.where(m >= n, period - 1 - m, m))


def _correlate(x, k, axis):
    """Correlates x [N, 1, H, W] with the 1-D kernel k along axis (3: rows, 2: columns),
    symmetric reflection at the borders."""
    r = (len(k) - 1) // 2
    n = x.shape[axis]
    x = torch.index_select(x, axis, _reflect_index(n, r).to(x.device))
    w = torch.from_numpy(k).to(x)
    w = w.view(1, 1, 1, -1) if axis == 3 else w.view(1, 1, -1, 1)
    return F.conv2d(x, w)


def hessian(att, sigma_px):
    """Scale-normalised (xx, xy, yy) of att [N, 1, H, W]."""
    g, d1, d2 = kernels(sigma_px)
    s2 = sigma_px * sigma_px
    smooth_rows = _correlate(att, g, 3)
    d1_rows = _correlate(att, d1, 3)
    d2_rows = _correlate(att, d2, 3)
    xx = _correlate(d2_rows, g, 2) * s2
    xy = _correlate(d1_rows, d1, 2) * s2
    yy = _correlate(smooth_rows, d2, 2) * s2
    return xx, xy, yy


def eigenvalues(xx, xy, yy):
    """(lambda1, lambda2) with |lambda1| <= |lambda2|, as `ridge::eigenvalues`."""
    mean = 0.5 * (xx + yy)
    half_diff = 0.5 * (xx - yy)
    root = torch.sqrt(half_diff * half_diff + xy * xy)
    a, b = mean + root, mean - root
    a_first = a.abs() <= b.abs()
    return torch.where(a_first, a, b), torch.where(a_first, b, a)


def features(att, region):
    """Features [N, CHANNELS, h, w] of the region (y0, x0, h, w) of att [N, 1, H, W].

    The Hessian is taken over the whole of att, so att must extend reach_px() beyond the
    region on every side where the region does not touch att's border (as the Rust extractor's
    margin does)."""
    y0, x0, h, w = region
    crop = att[:, :, y0 : y0 + h, x0 : x0 + w]
    flat = crop.reshape(crop.shape[0], -1)
    # torch.median gives the lower median for an even count, as the Rust extractor does.
    median = flat.median(dim=1).values.view(-1, 1, 1, 1)
    planes = [crop - median]
    for sigma in SCALES_PX:
        l1, l2 = eigenvalues(*hessian(att, sigma))
        planes += [l1[:, :, y0 : y0 + h, x0 : x0 + w], l2[:, :, y0 : y0 + h, x0 : x0 + w]]
    return torch.cat(planes, dim=1).clamp(-CLAMP, CLAMP)


def log_attenuation(counts, maxval):
    """-ln(v / maxval) per pixel, zero counts taken as half a count (src/vision/normalise.rs)."""
    counts = np.minimum(counts.astype(np.float32), np.float32(maxval))
    return np.float32(math.log(max(maxval, 1))) - np.log(np.maximum(counts, np.float32(0.5)))
