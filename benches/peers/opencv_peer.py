#!/usr/bin/env python3
"""The OpenCV peer: the classical pipeline with every image stage in OpenCV (and NumPy for the
per-pixel eigenvalues), as an engineer would write it who wants speed from Python. Same steps
and parameters as `classical_peer.py`, so the two differ only in the libraries doing the work:

CLAHE (OpenCV), Hessian at sigmas 1, 1.5, 2 from Gaussian blur and Sobel second derivatives
(OpenCV), Frangi vesselness for dark ridges (NumPy), hysteresis at the 99.5th and 98th
percentiles (OpenCV connected components), Zhang-Suen thinning (OpenCV ximgproc), then the
same strongest longest path, ordering and resampling as `classical_peer.py`.

    /tmp/peer/bin/python benches/peers/opencv_peer.py SEQ_DIR > opencv_peer.jsonl
"""

import cv2
import numpy as np

import classical_peer as peer

SIGMAS = (1.0, 1.5, 2.0)
BETA, GAMMA_FRACTION = 0.5, 0.5


def vesselness(img):
    """Frangi's measure for dark ridges, the maximum over SIGMAS, scale-normalised by sigma²."""
    f = img.astype(np.float32) / 255.0
    best = np.zeros_like(f)
    for s in SIGMAS:
        blur = cv2.GaussianBlur(f, (0, 0), s)
        dxx = cv2.Sobel(blur, cv2.CV_32F, 2, 0, ksize=3) * s * s
        dyy = cv2.Sobel(blur, cv2.CV_32F, 0, 2, ksize=3) * s * s
        dxy = cv2.Sobel(blur, cv2.CV_32F, 1, 1, ksize=3) * s * s
        half_trace, root = 0.5 * (dxx + dyy), np.sqrt(0.25 * (dxx - dyy) ** 2 + dxy * dxy)
        a, b = half_trace + root, half_trace - root
        swap = np.abs(a) > np.abs(b)
        l1, l2 = np.where(swap, b, a), np.where(swap, a, b)
        structure = np.sqrt(l1 * l1 + l2 * l2)
        c = GAMMA_FRACTION * max(float(structure.max()), 1e-9)
        rb = l1 / np.where(l2 == 0, 1e-9, l2)
        v = np.exp(-rb * rb / (2 * BETA * BETA)) * (1 - np.exp(-structure * structure / (2 * c * c)))
        v[l2 < 0] = 0  # dark ridges only: the intensity curves up across them
        np.maximum(best, v, out=best)
    return best


def hysteresis(values, low, high):
    """Pixels at or above `low` connected (8-neighbours) to one at or above `high`."""
    count, labels = cv2.connectedComponents((values >= low).astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(values.shape, np.uint8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[values >= high])] = True
    keep[0] = False
    return keep[labels].astype(np.uint8) * 255


def centerline(img):
    enhanced = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(img)
    v = vesselness(enhanced)
    if not np.any(v > 0):
        return []
    high, low = np.percentile(v, [99.5, 98])
    skel = cv2.ximgproc.thinning(hysteresis(v, low, high), thinningType=cv2.ximgproc.THINNING_ZHANGSUEN) > 0
    return peer.ordered_centerline(skel, v)


def main():
    peer.write_predictions(centerline, __doc__)

if __name__ == "__main__":
    main()
