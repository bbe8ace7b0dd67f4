#!/usr/bin/env python3
"""Writes the fixture tests/features_parity.rs holds the Rust feature extractor to: the
learned engine's features as the training code computes them (engines/train/features.py).

Run with the training environment (engines/train/README.md):

    /tmp/train-venv/bin/python tests/features/generate.py

Files: raw little-endian float32 arrays, shapes and regions in manifest.json.
"""

import hashlib
import json
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "engines" / "train"))
import features  # noqa: E402

SIZE = (80, 96)  # rows, columns
# (y0, x0, h, w): inside the frame with a full margin, and touching the top-left and the
# bottom-right borders.
REGIONS = [(20, 28, 40, 40), (0, 0, 40, 40), (40, 56, 40, 40)]


def frame(rng):
    """Log attenuation of a low-dose frame: tissue, a wire, a catheter, a bone edge, and a
    collimator corner (values far beyond the clamp), with Poisson noise."""
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float64)
    mu = 1.2 + 0.004 * x + 0.5 / (1 + np.exp(-(x - 70) / 2.0))
    mu += 0.6 * np.exp(-0.5 * ((x - 0.5 * y - 25) / 1.0) ** 2)
    mu += 0.4 * np.exp(-0.5 * ((y - 0.3 * x - 45) / 3.5) ** 2)
    mu += np.where((x - 95) ** 2 + (y - 79) ** 2 < 15**2, 7.0, 0.0)
    counts = rng.poisson(300.0 * np.exp(-mu))
    return features.log_attenuation(np.minimum(counts, 4095), 4095)


def main():
    rng = np.random.default_rng(20261125)
    att = frame(rng).astype(np.float32)
    files = {"input.f32": att}
    t = torch.from_numpy(att)[None, None]
    for i, region in enumerate(REGIONS):
        files[f"region{i}.f32"] = features.features(t, region)[0].numpy().astype(np.float32)
    manifest = {
        "generator": "tests/features/generate.py",
        "feature_version": features.FEATURE_VERSION,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "regions": [dict(zip(("y", "x", "height", "width"), r)) for r in REGIONS],
        "files": {},
    }
    for name, array in files.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        (HERE / name).write_bytes(data)
        manifest["files"][name] = {"shape": list(array.shape), "sha256": hashlib.sha256(data).hexdigest()}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
