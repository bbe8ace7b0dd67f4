#!/usr/bin/env bash
# Trains the learned engine from scratch and writes engines/wirenet.onnx, its manifest
# engines/wirenet.json and the training curves engines/wirenet-training.csv.
# Extra arguments go to train.py (--steps, --batch, --seed, --cache, --out).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${WIRETRACE_TRAIN_VENV:-/tmp/wiretrace-train-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r engines/train/requirements.txt
fi
cargo build --release --locked
"$VENV/bin/python" engines/train/train.py --wiretrace target/release/wiretrace "$@"
