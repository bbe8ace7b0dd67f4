#!/usr/bin/env python3
"""Writes the expected output of the engine fixture that tests/engine.rs holds tract to (1e-4).

The input is the feature planes of a 64x64 region of a hard synthetic frame, written by the Rust
service's own code (examples/engine_fixture.rs); this script runs the model on it with ONNX
Runtime, the reference implementation of ONNX, and writes the probabilities beside it.

Run it in a fresh virtual environment with the pinned versions (CI does not: the outputs are
committed, so the comparison needs no Python), after every new model (engines/README.md):

    cargo run --release --example engine_fixture
    python3 -m venv /tmp/fixture && /tmp/fixture/bin/pip install -r engines/train/fixture-requirements.txt
    /tmp/fixture/bin/python engines/train/make_fixture.py engines/wirenet.onnx

Files in tests/engine/: input.json and features_64x64.f32 (from the Rust example),
probability_64x64.f32 (raw little-endian float32, [1, 1, 64, 64]) and fixture.json (shapes,
sha256 of the model and of both arrays, versions).
"""

import argparse
import hashlib
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def pinned_versions():
    wanted = {}
    for line in (HERE / "fixture-requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            wanted[name] = version
    have = {"onnxruntime": ort.__version__, "numpy": np.__version__}
    for name, version in wanted.items():
        if have[name] != version:
            sys.exit(f"{name} {have[name]} installed, {version} pinned: install engines/train/fixture-requirements.txt")
    return wanted


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=pathlib.Path, help="the ONNX model (engines/wirenet.onnx)")
    parser.add_argument("--dir", type=pathlib.Path, default=ROOT / "tests" / "engine", help="fixture directory")
    args = parser.parse_args()
    versions = pinned_versions()

    info = json.loads((args.dir / "input.json").read_text())
    raw = (args.dir / info["file"]).read_bytes()
    if sha256(raw) != info["sha256"]:
        sys.exit(f"{args.dir / info['file']}: sha256 differs from input.json: run the Rust example again")
    features = np.frombuffer(raw, dtype="<f4").reshape(info["shape"])

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model_bytes = args.model.read_bytes()
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    (probability,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: features})
    probability = np.ascontiguousarray(probability, dtype="<f4")
    out = probability.tobytes()
    name = "probability_{}x{}.f32".format(probability.shape[3], probability.shape[2])
    (args.dir / name).write_bytes(out)

    fixture = {
        "generator": "engines/train/make_fixture.py",
        "versions": versions,
        "model": {"file": args.model.name, "sha256": sha256(model_bytes)},
        "input": {k: info[k] for k in ("file", "shape", "sha256", "feature_version", "source")},
        "output": {
            "file": name,
            "dtype": "float32 little-endian",
            "shape": list(probability.shape),
            "sha256": sha256(out),
            "what": "ONNX Runtime (CPU, one thread) probabilities of the model on the input",
        },
    }
    (args.dir / "fixture.json").write_text(json.dumps(fixture, indent=2) + "\n")
    print(f"wrote {name} and fixture.json to {args.dir}: probability in [{probability.min():.4f}, {probability.max():.4f}]")


if __name__ == "__main__":
    main()
