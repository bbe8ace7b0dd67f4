#!/usr/bin/env python3
"""wiretrace against the classical OpenCV/scikit-image peer, on the same synthetic sequences,
scored by the same `wiretrace eval --pred`. Prints a markdown table per difficulty (the one in
README.md) and leaves the sequences, predictions and reports under --work.

    cargo build --release
    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install -r benches/peers/requirements.txt
    /tmp/peer/bin/python benches/peers/compare.py --seeds 1-6 --frames 30 --difficulty easy

wiretrace's centerlines go the way a robot gets them: `replay --fast` to `rx --json` over UDP
loopback. Frames are pooled over all sequences of a difficulty.
"""

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
WIRETRACE = ROOT / "target" / "release" / "wiretrace"
PEER = pathlib.Path(__file__).resolve().parent / "classical_peer.py"


def run(args, **kw):
    return subprocess.run([str(a) for a in args], check=True, **kw)


def reusable(seq, frames, size):
    """Whether `seq` holds a sequence of `frames` frames of `size` × `size` from an earlier run."""
    meta = seq / "meta.json"
    if not meta.exists() or json.loads(meta.read_text()).get("width") != size:
        return False
    return len(list((seq / "frames").glob("*.pgm"))) == frames


def wiretrace_predictions(seq, out):
    with open(out, "w") as sink:
        rx = subprocess.Popen([WIRETRACE, "rx", "--udp", "127.0.0.1:0", "--json", "--idle-exit", "2"],
                              stdout=sink, stderr=subprocess.PIPE, text=True)
        listening = rx.stderr.readline().split()[-1]
        run([WIRETRACE, "replay", seq, "--udp", listening, "--fast"], stderr=subprocess.DEVNULL)
        rx.wait(timeout=60)


def evaluate(seq, pred, report):
    run([WIRETRACE, "eval", "--seq", seq, "--pred", pred, "--json", report], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    return json.loads(pathlib.Path(report).read_text())


def pooled(reports):
    frames = [f for r in reports for f in r["per_frame"]]
    wire = [f for f in frames if f["wire_visible"]]
    answered = [f for f in wire if f["answered"]]
    vals = lambda key, rows: [f[key] for f in rows if f[key] is not None]
    mean = lambda v: statistics.fmean(v) if v else float("nan")
    median = lambda v: statistics.median(v) if v else float("nan")
    return {
        "frames with a wire": len(wire),
        "failures (no answer)": len(wire) - len(answered),
        "false alarms": sum(1 for f in frames if not f["wire_visible"] and f["answered"]),
        "Dice, mean": mean(vals("dice", wire)),
        "clDice, mean": mean(vals("cl_dice", wire)),
        "coverage (2 px), mean": mean(vals("coverage", wire)),
        "mean distance (px), median": median(vals("mean_distance_px", answered)),
        "mean distance (px), mean": mean(vals("mean_distance_px", answered)),
        "Hausdorff 95 (px), median": median(vals("hausdorff95_px", answered)),
        "tip error (px), median": median(vals("tip_error_px", answered)),
        "one component (share)": mean([1.0 if f["components"] == 1 else 0.0 for f in answered]),
        "proximal to tip (share)": mean([1.0 if f["direction_correct"] else 0.0 for f in answered]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-6", help="a range like 1-6")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--difficulty", default="easy")
    ap.add_argument("--work", default="/tmp/wiretrace-peers")
    ap.add_argument("--reuse-peer", action="store_true",
                    help="keep the peer's predictions from an earlier run in --work (they do not depend on wiretrace)")
    a = ap.parse_args()
    lo, hi = (int(s) for s in a.seeds.split("-"))
    work = pathlib.Path(a.work) / a.difficulty
    work.mkdir(parents=True, exist_ok=True)
    reports = {"wiretrace": [], "OpenCV/scikit-image peer": []}
    for seed in range(lo, hi + 1):
        seq = work / f"seed{seed}"
        if not reusable(seq, a.frames, a.size):
            # Made with other arguments (and the peer's predictions with it): made again.
            shutil.rmtree(seq, ignore_errors=True)
            cmd = [WIRETRACE, "synth", "--out", seq, "--seed", seed, "--frames", a.frames, "--size", a.size]
            if a.difficulty != "easy":
                cmd += ["--difficulty", a.difficulty]
            run(cmd, stderr=subprocess.DEVNULL)
        wiretrace_predictions(seq, seq / "wiretrace.jsonl")
        if not (a.reuse_peer and (seq / "peer.jsonl").exists()):
            with open(seq / "peer.jsonl", "w") as out:
                run([sys.executable, PEER, seq], stdout=out)
        reports["wiretrace"].append(evaluate(seq, seq / "wiretrace.jsonl", seq / "wiretrace.eval.json"))
        reports["OpenCV/scikit-image peer"].append(evaluate(seq, seq / "peer.jsonl", seq / "peer.eval.json"))
        print(f"seed {seed} done", file=sys.stderr)
    table = {name: pooled(r) for name, r in reports.items()}
    names = list(table)
    print(f"\n{a.difficulty}: seeds {a.seeds}, {a.frames} frames of {a.size} x {a.size} each\n")
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for metric in table[names[0]]:
        cells = [table[n][metric] for n in names]
        fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
        print(f"| {metric} | " + " | ".join(fmt(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
