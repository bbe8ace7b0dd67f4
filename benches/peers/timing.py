#!/usr/bin/env python3
"""Per-frame time of wiretrace beside the classical OpenCV/scikit-image peer and the OpenCV peer,
on the same frames, in the same run, with ratios (issue 5). Prints a markdown table (the one in README.md); the
output of `wiretrace bench` goes to standard error.

    cargo build --release
    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install -r benches/peers/requirements.txt
    /tmp/peer/bin/python benches/peers/timing.py --seq SEQ_DIR [--repeat N] [--overload] [--engine E] [--spin-wait]
        [--deadline-ms MS] [--json FILE]

wiretrace: `wiretrace bench --seq SEQ_DIR --engine E` (classical by default, the path the peers
are written like; or learned), its paced pass: a camera at half the rate the pipeline
sustains, or the sequence's own rate where slower, so no frame waits for another, timed from
capture (after the PGM is decoded) to the encoded message handed to the sink. The classical
path filters tiles along a tracked wire; it is also run with `--ridge-search squares` (beyond
the tiles one square of the frame a frame, never the whole frame), with `--whole-frame` (every
frame filtered whole, as the peers do) and with `--look-within-frame` (beyond the tiles before
each frame's answer, not after it as by default), in the same run, so all four show beside the
peers.
The bench sets no deadline unless given --deadline-ms, so the default search (`auto`) always
takes the whole frame where it looks beyond the tiles: the learned engine then segments the
whole frame while nothing is tracked, which under the service's 33 ms deadline it never does
on one core here; `--deadline-ms 33` times it as the box runs it.

The peer: `read_frame` then `centerline` of classical_peer.py, one frame after another, wall
clock; `read_frame` includes decoding the PGM. Its library calls are wrapped with timers (the
peer's own code runs unchanged), so the table also splits its time by library: OpenCV (CLAHE,
Zhang-Suen thinning), scikit-image (Frangi, hysteresis) and the Python path search.

The OpenCV peer: `read_frame` then `centerline` of opencv_peer.py (the same steps with every
image stage in OpenCV and NumPy), timed as a whole.

Run nothing else meanwhile: both sides are timed on this machine's cores one after the other.
"""

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

import classical_peer as peer
import opencv_peer

ROOT = pathlib.Path(__file__).resolve().parents[2]
WIRETRACE = ROOT / "target" / "release" / "wiretrace"
MANIFEST = ROOT / "engines" / "wirenet.json"

# Per frame: seconds spent in each wrapped call.
spent = collections.defaultdict(float)


def timed(stage, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - start

    return wrapper


class Proxy:
    """Stands in for a module inside classical_peer: the given attributes replaced, the rest the
    module's own."""

    def __init__(self, target, **overrides):
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._target, name)


class TimedClahe:
    def __init__(self, clahe):
        self.apply = timed("clahe", clahe.apply)


def instrument():
    """Wraps the peer's library calls: its code is timed as written, not a copy of it."""
    peer.cv2 = Proxy(
        cv2,
        createCLAHE=lambda **kw: TimedClahe(cv2.createCLAHE(**kw)),
        ximgproc=Proxy(cv2.ximgproc, thinning=timed("thinning", cv2.ximgproc.thinning)),
    )
    peer.frangi = timed("frangi", peer.frangi)
    peer.apply_hysteresis_threshold = timed("hysteresis", peer.apply_hysteresis_threshold)
    peer.strongest_path = timed("path", peer.strongest_path)


# Table rows for the peer: (label, stages summed); "frame" is the whole frame.
PEER_ROWS = [
    ("peer, whole frame", ["frame"]),
    ("peer: scikit-image (Frangi, hysteresis)", ["frangi", "hysteresis"]),
    ("peer: OpenCV (CLAHE, Zhang-Suen thinning)", ["clahe", "thinning"]),
    ("peer: Python (longest paths)", ["path"]),
    ("peer: read + log scale (incl. PGM decode)", ["read"]),
    ("OpenCV peer, whole frame", ["opencv"]),
]


def time_peer(frames, repeat):
    """Seconds per frame, for the whole frame and each stage."""
    instrument()
    peer.centerline(peer.read_frame(frames[0]))  # warm-up, untimed: imports, caches
    rows = collections.defaultdict(list)
    for _ in range(repeat):
        for path in frames:
            spent.clear()
            start = time.perf_counter()
            img = timed("read", peer.read_frame)(path)
            if img is not None:
                peer.centerline(img)
            spent["frame"] = time.perf_counter() - start
            for stage in ["frame", "read", "clahe", "frangi", "hysteresis", "thinning", "path"]:
                rows[stage].append(spent[stage])
    return {k: np.asarray(v) for k, v in rows.items()}


def time_opencv_peer(frames, repeat):
    """Seconds per frame of the OpenCV peer, whole frames."""
    opencv_peer.centerline(peer.read_frame(frames[0]))  # warm-up, untimed
    seconds = []
    for _ in range(repeat):
        for path in frames:
            start = time.perf_counter()
            img = peer.read_frame(path)
            if img is not None:
                opencv_peer.centerline(img)
            seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def quantile_ms(seconds, q):
    # "higher": a value that was measured, as HdrHistogram reports (to its precision).
    return float(np.percentile(seconds, q, method="higher")) * 1e3


def run_wiretrace(binary, seq, repeat, overload, ridge_threads, engine, spin_wait, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "bench.json"
        cmd = [str(binary), "bench", "--seq", str(seq), "--repeat", str(repeat), "--json", str(out),
               "--ridge-threads", str(ridge_threads), "--engine", engine, "--manifest", str(MANIFEST)]
        cmd += (["--overload"] if overload else []) + (["--spin-wait"] if spin_wait else []) + list(extra)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return json.loads(out.read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", required=True, type=pathlib.Path, help="sequence directory (frames/NNNNNN.pgm)")
    ap.add_argument("--repeat", type=int, default=1, help="times each side goes through the frames")
    ap.add_argument("--overload", action="store_true", help="pass --overload to wiretrace bench")
    ap.add_argument("--ridge-threads", type=int, default=1,
                    help="wiretrace's ridge stage on this many threads (the peers stay as they are)")
    ap.add_argument("--spin-wait", action="store_true",
                    help="wiretrace's processing thread spins between frames (the peers stay as they are)")
    ap.add_argument("--wiretrace", type=pathlib.Path, default=WIRETRACE, help="the wiretrace binary")
    ap.add_argument("--engine", choices=["classical", "learned"], default="classical",
                    help="what finds the wire in wiretrace: the classical path, like the peers, or the learned engine")
    ap.add_argument("--deadline-ms", type=int,
                    help="wiretrace's frames get this budget from capture, as on the box (none by default)")
    ap.add_argument("--json", type=pathlib.Path, help="also write the numbers here")
    a = ap.parse_args()
    frames_dir = a.seq / "frames"
    if not frames_dir.is_dir():
        sys.exit(f"{a.seq} has no frames/ folder: a sequence keeps its frames in frames/NNNNNN.pgm")
    frames = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() == ".pgm" and not p.name.startswith("."))
    if not frames:
        sys.exit(f"{frames_dir} holds no frame")
    if a.repeat < 1:
        sys.exit("--repeat must be at least 1")

    load_before = os.getloadavg()[0]
    deadline = ("--deadline-ms", str(a.deadline_ms)) if a.deadline_ms is not None else ()
    wiretrace = lambda *extra: run_wiretrace(a.wiretrace, a.seq, a.repeat, a.overload, a.ridge_threads, a.engine,
                                             a.spin_wait, deadline + extra)
    bench = wiretrace()
    squares, whole, within = None, None, None
    if a.engine == "classical":
        squares = wiretrace("--ridge-search", "squares")
        whole = wiretrace("--whole-frame")
        within = wiretrace("--look-within-frame")
    peer_s = time_peer(frames, a.repeat)
    peer_s["opencv"] = time_opencv_peer(frames, a.repeat)
    load_after = os.getloadavg()[0]

    paced = bench["paced"]["latency_us"]
    wt = {"median": paced["p50"] / 1e3, "p99": paced["p99"] / 1e3}
    threads = "" if a.ridge_threads == 1 else f", ridge stage on {a.ridge_threads} threads"
    threads += ", spinning" if a.spin_wait else ""
    threads += f", {a.deadline_ms} ms deadline" if a.deadline_ms is not None else ""
    rows = [{"what": f"wiretrace ({a.engine}), capture to sink (paced{threads})", **wt, "frames": paced["count"]}]
    variants = [("--ridge-search squares", squares), ("--whole-frame", whole), ("--look-within-frame", within)]
    for flag, other in variants:
        if other is not None:
            w = other["paced"]["latency_us"]
            rows.append({"what": f"wiretrace ({a.engine}, {flag}), capture to sink (paced{threads})",
                         "median": w["p50"] / 1e3, "p99": w["p99"] / 1e3, "frames": w["count"]})
    for label, stages in PEER_ROWS:
        total = sum(peer_s[s] for s in stages)
        rows.append({"what": label, "median": quantile_ms(total, 50), "p99": quantile_ms(total, 99),
                     "frames": len(total)})

    print(f"\n{a.seq}: {bench['width']} x {bench['height']}, {len(frames)} frames x {a.repeat}; "
          f"{os.cpu_count()} cores, load average {load_before:.2f} before, {load_after:.2f} after\n")
    print("| per frame | median (ms) | p99 (ms) | row / first row, median | row / first row, p99 |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = lambda k: "" if r is rows[0] else f"{r[k] / wt[k]:.2f}"
        print(f"| {r['what']} | {r['median']:.1f} | {r['p99']:.1f} | {ratio('median')} | {ratio('p99')} |")
    if a.json:
        a.json.write_text(json.dumps({"wiretrace_bench": bench, "wiretrace_squares_bench": squares,
                                      "wiretrace_whole_frame_bench": whole,
                                      "wiretrace_within_frame_bench": within, "rows": rows,
                                      "load_average": [load_before, load_after]}, indent=2))
        print(f"numbers written to {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
