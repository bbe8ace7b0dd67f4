#!/usr/bin/env python3
"""The learned engine against the classical path, by `wiretrace eval`, on synthetic sequences
whose seeds training never saw (1-6 by default; training uses 1000+).

    python3 engines/train/evaluate.py [--seeds 1-6] [--frames 40] [--json out.json] [--manifest-metrics]
    python3 engines/train/evaluate.py --realtime --seeds 7-9 --frames 120 --difficulties hard,extreme \
        --work /tmp/wiretrace-long
    python3 engines/train/evaluate.py --vessel-contrast dense --difficulties easy,hard

Pools every frame of every seed per difficulty (benches/peers/compare.py's definitions) and
prints one table per difficulty, learned beside classical, then the same pooled over the
frames with more than --stub-px of wire in view (the ground truth centerline's length): a
wire that has just come into view is a stub shorter than the centerline extractor takes from
the border (8 px), and those frames count as failures for both engines. With --manifest-metrics the pooled
numbers go into engines/wirenet.json's "metrics" (which the model's sha256 does not cover): under
"eval", or "eval_dense_vessels" with --vessel-contrast dense.

By default each engine runs offline (`wiretrace eval`: every frame, no deadline). With
--realtime each sequence is replayed at its own frame rate with the default deadline (33 ms)
to `wiretrace rx --json` over UDP loopback, and the receiver's output is scored (`eval
--pred`): frames the pipeline could not finish in time count as failures, as on the box.
Standard library only.
"""

import argparse
import json
import math
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches" / "peers"))
from compare import pooled, reusable  # noqa: E402

# Metrics where lower is better; the rest are better higher.
LOWER_BETTER = ("failures", "false alarms", "distance", "Hausdorff", "tip error", "deadline")


def finite(results):
    """The pooled numbers with NaN (no frame to pool) as None, rounded, for JSON."""
    return {d: {e: {k: None if isinstance(v, float) and math.isnan(v) else round(v, 4) for k, v in m.items()}
                for e, m in r.items()} for d, r in results.items()}


def wire_lengths_px(seq):
    """Length (px) of the ground truth centerline of each frame of `seq`."""
    lengths = {}
    for line in (seq / "gt" / "centerlines.jsonl").read_text().splitlines():
        if line.strip():
            frame = json.loads(line)
            p = frame["points"]
            lengths[frame["frame"]] = sum(math.dist(p[i], p[i + 1]) for i in range(len(p) - 1))
    return lengths


def beyond_stubs(report, lengths, stub_px):
    """`report` with only its frames without a wire or with more than `stub_px` of it."""
    frames = [f for f in report["per_frame"] if not f["wire_visible"] or lengths.get(f["frame"], 0.0) > stub_px]
    return {**report, "per_frame": frames}


def table(title, rows):
    print(title)
    print(f"{'metric':32s} {'learned':>9s} {'classical':>9s}")
    for key, learned in rows["learned"].items():
        classical = rows["classical"][key]
        lower = any(k in key for k in LOWER_BETTER)
        better = (learned < classical) if lower else (learned > classical)
        worse = (learned > classical) if lower else (learned < classical)
        mark = "better" if better else ("WORSE" if worse else "same")
        fmt = lambda v: f"{v:9d}" if isinstance(v, int) else f"{v:9.3f}"
        print(f"{key:32s} {fmt(learned)} {fmt(classical)}  {mark}")


def run(cmd):
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def replayed(wiretrace, seq, engine, manifest, out):
    """Replays `seq` at its frame rate through `engine` to a receiver; its JSON lines go to
    `out`. Returns the centerline messages sent as past their deadline."""
    with open(out, "w") as sink:
        rx = subprocess.Popen([wiretrace, "rx", "--udp", "127.0.0.1:0", "--json", "--idle-exit", "2"],
                              stdout=sink, stderr=subprocess.PIPE, text=True)
        listening = rx.stderr.readline().split()[-1]
        run([wiretrace, "replay", seq, "--udp", listening, "--engine", engine, "--manifest", manifest])
        rx.wait(timeout=60)
    lines = [json.loads(line) for line in pathlib.Path(out).read_text().splitlines() if line.strip()]
    return sum(1 for m in lines if m.get("kind") == "centerline" and "deadline_missed" in m.get("status", ""))


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
    ap.add_argument("--realtime", action="store_true", help="replay at the sequence's rate with the deadline")
    ap.add_argument("--vessel-contrast", default="diluted", choices=("diluted", "dense"),
                    help="what fills the synthetic vessels (`wiretrace synth --vessel-contrast`)")
    ap.add_argument("--stub-px", type=float, default=8.0,
                    help="the second table leaves out frames with no more than this much wire in view")
    a = ap.parse_args()
    if a.realtime and a.manifest_metrics:
        ap.error("--manifest-metrics records the offline eval; leave out --realtime")
    lo, hi = (int(s) for s in a.seeds.split("-"))
    dense = "-dense" if a.vessel_contrast == "dense" else ""
    results = {}
    for difficulty in a.difficulties.split(","):
        reports = {"learned": [], "classical": []}
        trimmed = {"learned": [], "classical": []}
        missed = {"learned": 0, "classical": 0}
        for seed in range(lo, hi + 1):
            seq = pathlib.Path(a.work) / f"{difficulty}{seed}{dense}"
            if not reusable(seq, a.frames, 512):
                shutil.rmtree(seq, ignore_errors=True)
                run([a.wiretrace, "synth", "--out", seq, "--seed", seed, "--frames", a.frames, "--difficulty", difficulty,
                     "--vessel-contrast", a.vessel_contrast])
            for engine in reports:
                out = seq.with_name(f"{seq.name}.{engine}.json")
                if a.realtime:
                    rx = seq.with_name(f"{seq.name}.{engine}.rx.jsonl")
                    missed[engine] += replayed(a.wiretrace, seq, engine, a.manifest, rx)
                    run([a.wiretrace, "eval", "--seq", seq, "--pred", rx, "--json", out])
                else:
                    run([a.wiretrace, "eval", "--seq", seq, "--json", out, "--engine", engine, "--manifest", a.manifest])
                reports[engine].append(json.loads(out.read_text()))
                trimmed[engine].append(beyond_stubs(reports[engine][-1], wire_lengths_px(seq), a.stub_px))
        results[difficulty] = {engine: pooled(r) for engine, r in reports.items()}
        stubs_left_out = {engine: pooled(r) for engine, r in trimmed.items()}
        if a.realtime:
            for engine in reports:
                results[difficulty][engine]["past their deadline"] = missed[engine]
        mode = "replayed in real time, 33 ms deadline" if a.realtime else "offline"
        if dense:
            mode += ", vessels full of contrast"
        table(f"\n{difficulty}: seeds {lo}-{hi}, {a.frames} frames each, {mode}", results[difficulty])
        table(f"\n{difficulty}, the frames with more than {a.stub_px:g} px of wire in view (or none)", stubs_left_out)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(finite(results), indent=2) + "\n")
    if a.manifest_metrics:
        path = pathlib.Path(a.manifest)
        manifest = json.loads(path.read_text())
        key, contrast = ("eval_dense_vessels", " --vessel-contrast dense") if dense else ("eval", "")
        difficulties = "" if a.difficulties == "easy,hard,extreme" else f" --difficulties {a.difficulties}"
        manifest.setdefault("metrics", {})[key] = {
            "command": f"python3 engines/train/evaluate.py --seeds {a.seeds} --frames {a.frames}{difficulties}{contrast}"
                       " --manifest-metrics",
            "pooled": finite(results),
        }
        path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
