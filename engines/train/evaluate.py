#!/usr/bin/env python3
"""The learned engine against the classical path, by `wiretrace eval`, on synthetic sequences
whose seeds training never saw (1-6 by default; training uses 1000+).

    python3 engines/train/evaluate.py [--seeds 1-6] [--frames 40] [--json out.json] [--manifest-metrics]

Pools every frame of every seed per difficulty (benches/peers/compare.py's definitions) and
prints one table per difficulty, learned beside classical. With --manifest-metrics the pooled
numbers go into engines/wirenet.json's "metrics" (which the model's sha256 does not cover).
Standard library only.
"""

import argparse
import json
import math
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches" / "peers"))
from compare import pooled  # noqa: E402

# Metrics where lower is better; the rest are better higher.
LOWER_BETTER = ("failures", "false alarms", "distance", "Hausdorff", "tip error")


def finite(results):
    """The pooled numbers with NaN (no frame to pool) as None, rounded, for JSON."""
    return {d: {e: {k: None if isinstance(v, float) and math.isnan(v) else round(v, 4) for k, v in m.items()}
                for e, m in r.items()} for d, r in results.items()}


def run(cmd):
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wiretrace", default=str(ROOT / "target" / "release" / "wiretrace"))
    ap.add_argument("--manifest", default=str(ROOT / "engines" / "wirenet.json"))
    ap.add_argument("--seeds", default="1-6")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--difficulties", default="easy,hard,extreme")
    ap.add_argument("--work", default="/tmp/wiretrace-learned-eval")
    ap.add_argument("--json", help="write the pooled numbers here")
    ap.add_argument("--manifest-metrics", action="store_true", help="store the pooled numbers in the manifest")
    a = ap.parse_args()
    lo, hi = (int(s) for s in a.seeds.split("-"))
    results = {}
    for difficulty in a.difficulties.split(","):
        reports = {"learned": [], "classical": []}
        for seed in range(lo, hi + 1):
            seq = pathlib.Path(a.work) / f"{difficulty}{seed}"
            if not (seq / "frames").exists():
                run([a.wiretrace, "synth", "--out", seq, "--seed", seed, "--frames", a.frames, "--difficulty", difficulty])
            for engine in reports:
                out = seq.with_name(f"{seq.name}.{engine}.json")
                run([a.wiretrace, "eval", "--seq", seq, "--json", out, "--engine", engine, "--manifest", a.manifest])
                reports[engine].append(json.loads(out.read_text()))
        results[difficulty] = {engine: pooled(r) for engine, r in reports.items()}
        print(f"\n{difficulty}: seeds {lo}-{hi}, {a.frames} frames each")
        print(f"{'metric':32s} {'learned':>9s} {'classical':>9s}")
        for key, learned in results[difficulty]["learned"].items():
            classical = results[difficulty]["classical"][key]
            lower = any(k in key for k in LOWER_BETTER)
            better = (learned < classical) if lower else (learned > classical)
            worse = (learned > classical) if lower else (learned < classical)
            mark = "better" if better else ("WORSE" if worse else "same")
            fmt = lambda v: f"{v:9d}" if isinstance(v, int) else f"{v:9.3f}"
            print(f"{key:32s} {fmt(learned)} {fmt(classical)}  {mark}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(finite(results), indent=2) + "\n")
    if a.manifest_metrics:
        path = pathlib.Path(a.manifest)
        manifest = json.loads(path.read_text())
        manifest.setdefault("metrics", {})["eval"] = {
            "command": f"python3 engines/train/evaluate.py --seeds {a.seeds} --frames {a.frames} --manifest-metrics",
            "pooled": finite(results),
        }
        path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
