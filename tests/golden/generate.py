#!/usr/bin/env python3
"""Writes the golden fixtures that tests/golden.rs compares wiretrace's CPU stages against.

The references are implementations people already trust:
  - Hessian: scikit-image's feature.hessian_matrix(use_gaussian_derivatives=True, mode='reflect')
    and hessian_matrix_eigvals, times sigma**2 (scale normalisation done here explicitly: the
    library's frangi() lost its normalisation after 0.19.3, scikit-image issue 7711).
  - Zhang-Suen thinning: OpenCV's cv2.ximgproc.thinning(THINNING_ZHANGSUEN).
  - CLAHE: OpenCV's cv2.createCLAHE(clipLimit, tileGridSize).apply on 8-bit images.

Run it in a fresh virtual environment with the pinned versions (CI does not: the outputs are
committed, so the comparison needs no Python):

    python3 -m venv /tmp/golden && /tmp/golden/bin/pip install -r tests/golden/requirements.txt
    /tmp/golden/bin/python tests/golden/generate.py

Files: raw little-endian arrays (float32 or uint8), shapes and provenance in manifest.json.
"""

import hashlib
import json
import pathlib
import sys

import cv2
import numpy as np
import scipy
import skimage
from skimage.feature import hessian_matrix, hessian_matrix_eigvals

HERE = pathlib.Path(__file__).resolve().parent
SIGMAS = [1.0, 1.5, 2.0, 3.5]
SIZE = 64


def pinned_versions():
    wanted = {}
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            wanted[name] = version
    have = {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
        "opencv-contrib-python-headless": cv2.__version__,
    }
    for name, version in wanted.items():
        # cv2 reports 4.10.0 for the 4.10.0.84 wheel.
        if not version.startswith(have[name]):
            sys.exit(f"{name} {have[name]} installed, {version} pinned: install tests/golden/requirements.txt")
    return wanted


def ridge_image(rng):
    """Bright lines of several widths and angles, a blob, a ramp and mild noise: every sign and
    orientation of curvature the ridge stage meets."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    img = 0.002 * x + 0.001 * y
    for (cx, cy, angle, width, amp) in [(20, 30, 0.3, 0.8, 0.5), (40, 25, 1.2, 1.5, 0.3), (32, 45, -0.5, 3.0, 0.4)]:
        d = (x - cx) * -np.sin(angle) + (y - cy) * np.cos(angle)
        img += amp * np.exp(-d * d / (2 * width * width))
    img += 0.6 * np.exp(-((x - 50) ** 2 + (y - 50) ** 2) / (2 * 4.0 ** 2))
    img += 0.02 * rng.standard_normal(img.shape)
    return img.astype(np.float32)


def thinning_masks(rng):
    """Binary masks: thick strokes, a ring, blobs with holes, a noisy threshold."""
    masks = []
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.line(m, (5, 10), (58, 40), 255, 5)
    cv2.circle(m, (40, 40), 12, 255, 4)
    cv2.rectangle(m, (8, 45), (25, 60), 255, -1)
    cv2.circle(m, (16, 52), 3, 0, -1)
    masks.append(m)
    noisy = (cv2.GaussianBlur(rng.random((SIZE, SIZE)).astype(np.float32), (0, 0), 2.0) > 0.5).astype(np.uint8) * 255
    masks.append(noisy)
    m = np.zeros((SIZE, SIZE), np.uint8)
    pts = np.array([[2, 60], [20, 30], [35, 35], [50, 10], [62, 5]], np.int32)
    cv2.polylines(m, [pts], False, 255, 3)
    m[0, :] = 255  # a foreground border row: border pixels are never removed
    masks.append(m)
    return masks


def clahe_image(rng, shape):
    """A dim, low-contrast frame: a gradient, a dark disc and a thin bright line, with noise."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 60 + 0.3 * x + 0.2 * y
    img -= 25 * (((x - 0.3 * w) ** 2 + (y - 0.6 * h) ** 2) < (0.2 * min(h, w)) ** 2)
    img += 30 * np.exp(-((x - 0.7 * w - 0.2 * y) ** 2) / 2.0)
    img += 4 * rng.standard_normal(shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write(name, array, manifest, **info):
    data = np.ascontiguousarray(array).tobytes()
    (HERE / name).write_bytes(data)
    manifest["files"][name] = {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "sha256": hashlib.sha256(data).hexdigest(),
        **info,
    }


def main():
    manifest = {"generator": "tests/golden/generate.py", "versions": pinned_versions(), "files": {}}
    rng = np.random.default_rng(7)
    img = ridge_image(rng)
    write("hessian_input.f32", img, manifest, what="input image, row-major")
    for sigma in SIGMAS:
        h = hessian_matrix(img.astype(np.float64), sigma=sigma, mode="reflect", order="rc", use_gaussian_derivatives=True)
        eig = hessian_matrix_eigvals(h) * sigma**2
        write(f"hessian_eig_s{sigma}.f32", eig.astype(np.float32), manifest,
              what=f"sigma^2-normalised Hessian eigenvalues at sigma {sigma}, larger first: [2, H, W]")
    for i, mask in enumerate(thinning_masks(rng)):
        thin = cv2.ximgproc.thinning(mask, thinningType=cv2.ximgproc.THINNING_ZHANGSUEN)
        write(f"thinning_{i}_in.u8", mask, manifest, what="mask, 0 or 255")
        write(f"thinning_{i}_out.u8", thin, manifest, what="OpenCV Zhang-Suen of the mask, 0 or 255")
    for i, (clip, tiles, shape) in enumerate([(2.0, (8, 8), (64, 64)), (3.0, (4, 6), (75, 100)), (40.0, (8, 8), (60, 90))]):
        img = clahe_image(rng, shape)
        out = cv2.createCLAHE(clipLimit=clip, tileGridSize=tiles).apply(img)
        info = {"clip_limit": clip, "tiles_x": tiles[0], "tiles_y": tiles[1]}
        write(f"clahe_{i}_in.u8", img, manifest, what="8-bit image", **info)
        write(f"clahe_{i}_out.u8", out, manifest, what="OpenCV CLAHE of the image", **info)
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
