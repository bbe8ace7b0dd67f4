#!/usr/bin/env python3
"""The peer: a classical guidewire pipeline as a competent engineer would write it with OpenCV
and scikit-image, on the same sequences as wiretrace, written as `wiretrace rx --json` lines so
that `wiretrace eval --pred` scores both the same way.

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install -r benches/peers/requirements.txt
    /tmp/peer/bin/python benches/peers/classical_peer.py SEQ_DIR > peer.jsonl
    wiretrace eval --seq SEQ_DIR --pred peer.jsonl

Per frame: read the PGM, log-transform and scale to 8 bit, CLAHE (OpenCV), Frangi vesselness
for dark ridges at the wire's scales (scikit-image, sigmas 1-2), hysteresis threshold at the
99.5th and 98th percentiles of the vesselness, Zhang-Suen thinning (OpenCV ximgproc), the
longest path of each skeleton component (two breadth-first searches), the path with the most
vesselness along it kept, ordered from the end nearer the border, resampled to at most 64
points.
"""

import collections
import json
import pathlib
import sys

import cv2
import numpy as np
from skimage.filters import apply_hysteresis_threshold, frangi

MAX_POINTS = 64
MIN_LENGTH_PX = 20


def read_frame(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    img = img.astype(np.float64)
    log = np.log(np.maximum(img, 0.5))
    lo, hi = np.percentile(log, [0.5, 99.5])
    return np.clip((log - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)


def neighbours(y, x, h, w):
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy or dx) and 0 <= y + dy < h and 0 <= x + dx < w:
                yield y + dy, x + dx


def bfs(skel, start):
    h, w = skel.shape
    parent = {start: None}
    queue = collections.deque([start])
    last = start
    while queue:
        last = queue.popleft()
        for n in neighbours(*last, h, w):
            if skel[n] and n not in parent:
                parent[n] = last
                queue.append(n)
    return last, parent


def strongest_path(skel, vesselness):
    ys, xs = np.nonzero(skel)
    seen, best, best_score = set(), [], 0.0
    for start in zip(ys, xs):
        if start in seen:
            continue
        far, component = bfs(skel, start)
        seen.update(component)
        end, parent = bfs(skel, far)
        path = []
        while end is not None:
            path.append(end)
            end = parent[end]
        score = sum(vesselness[p] for p in path)
        if len(path) >= MIN_LENGTH_PX and score > best_score:
            best, best_score = path, score
    return best


def resample(points, n_max):
    pts = np.asarray(points, np.float64)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    arc = np.concatenate([[0], np.cumsum(seg)])
    n = int(min(n_max, max(2, np.ceil(arc[-1] / 2.0) + 1)))
    targets = np.linspace(0, arc[-1], n)
    return np.stack([np.interp(targets, arc, pts[:, 0]), np.interp(targets, arc, pts[:, 1])], axis=1)


def centerline(img):
    enhanced = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(img)
    vesselness = frangi(enhanced.astype(np.float64) / 255.0, sigmas=[1, 1.5, 2], black_ridges=True)
    if not np.any(vesselness > 0):
        return []
    high, low = np.percentile(vesselness, [99.5, 98])
    mask = apply_hysteresis_threshold(vesselness, low, high).astype(np.uint8) * 255
    skel = cv2.ximgproc.thinning(mask, thinningType=cv2.ximgproc.THINNING_ZHANGSUEN) > 0
    return ordered_centerline(skel, vesselness)


def ordered_centerline(skel, vesselness):
    """The strongest path of a skeleton, ordered from the end nearer the border, resampled."""
    path = strongest_path(skel, vesselness)
    if not path:
        return []
    h, w = skel.shape
    border = lambda p: min(p[0], p[1], h - 1 - p[0], w - 1 - p[1])
    if border(path[-1]) < border(path[0]):
        path.reverse()
    xy = [(x, y) for y, x in path]
    return resample(xy, MAX_POINTS).round(3).tolist()


def write_predictions(centerline_of, doc):
    """Runs `centerline_of` on every frame of the sequence named on the command line and prints
    `wiretrace rx --json` lines."""
    if len(sys.argv) != 2:
        sys.exit(doc)
    frames = sorted(p for p in (pathlib.Path(sys.argv[1]) / "frames").iterdir()
                    if p.suffix.lower() == ".pgm" and not p.name.startswith("."))
    for index, path in enumerate(frames):
        img = read_frame(path)
        points = centerline_of(img) if img is not None else []
        status = "ok" if points else "no_wire"
        print(json.dumps({"kind": "centerline", "frame": index, "seq": index, "status": status, "points": points}))


def main():
    write_predictions(centerline, __doc__)

if __name__ == "__main__":
    main()
