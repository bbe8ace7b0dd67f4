#!/usr/bin/env python3
"""Trains WireNet on wiretrace's own synthetic sequences and exports it as ONNX with its
manifest. One command, from the repository root (engines/train/README.md):

    bash engines/train/train.sh

Data: `wiretrace synth` sequences of every difficulty, and of easy and hard with the vessels
full of contrast (`--vessel-contrast dense`: their thin branches are as dark as a wire, what
real angiograms show while contrast is injected), seeds disjoint from the ones the eval and
the tests use; every window is augmented on the fly (rotation, scale, elastic deformation,
noise, blur, contrast and gamma) before its features are computed, as the service computes
them (features.py, held to the Rust extractor by tests/features_parity.rs).

Loss: BCE + Dice, then soft clDice (Shit et al., CVPR 2021) with a weight rising from zero:
overlap first, then topology, so a one-pixel break in the wire costs what it costs the robot.
Where the wire crosses a catheter its own ridge is a small part of what the features show, and
the mask broke there: --crossing-share centres windows on such crossings, --crossing-weight
weighs their wire pixels in the BCE. --init-from fine-tunes an exported model instead of
starting from scratch (engines/train/README.md, "Crossings").
"""

import argparse
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import features  # noqa: E402
from model import WireNet, parameters  # noqa: E402

# Seeds: eval and tests use 1-99; training and validation never overlap them.
TRAIN_SEEDS = range(1000, 1024)
VAL_SEEDS = range(2000, 2003)
# Difficulties, "+dense" with the vessels full of contrast.
DIFFICULTIES = ("easy", "hard", "extreme", "easy+dense", "hard+dense")
# How often each is drawn: the hard cases are where the network must earn its keep.
DIFFICULTY_WEIGHTS = (1.0, 2.0, 2.0, 1.0, 1.5)
FRAMES = 60
FRAME_STEP = 2
SIZE = 512
CROP = 192
MARGIN = 16  # >= features.reach_px(): the window's features equal the whole frame's there
# A wire mask under this many pixels is a stub that has just come into view (about 20 px of wire).
STUB_MAX_PX = 40
# A wire pixel crosses a catheter where the ridge depth (-lambda2) at the ridge stage's thick
# scale exceeds this within CROSSING_REACH_PX of it: a catheter reads 0.5-0.65 on its axis, a
# vessel full of contrast up to 0.42, a vertebra's edge under 0.2 at hard dose; at extreme dose
# the collimator's edge and the spine pass too, where the wire is as hard to see. Vessels are
# left out: they are what the network must not take for a wire.
THICK_SCALE_PX = 3.5
CROSSING_MIN_DEPTH = 0.45
CROSSING_REACH_PX = 3


@dataclasses.dataclass
class Sampling:
    """Shares of the training windows drawn otherwise (batch()); none drawn while all are 0."""
    upright: float = 0.0
    stubs: float = 0.0
    shutters: float = 0.0
    crossings: float = 0.0


def read_pgm(path):
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    if parts[0] != b"P5":
        raise ValueError(f"{path}: not a binary PGM")
    w, h, maxval = int(parts[1]), int(parts[2]), int(parts[3])
    raw = parts[4]
    dtype = ">u2" if maxval > 255 else "u1"
    return np.frombuffer(raw, dtype=dtype, count=w * h).reshape(h, w).astype(np.uint16), maxval


def sequence(binary, cache, difficulty, seed, crossings):
    """Frames (log attenuation, float16 to keep memory small), wire masks and, where
    `crossings`, where the wire crosses a catheter (crossing_masks(); else None) of one
    sequence, written with `wiretrace synth` once and cached."""
    npz = cache / f"{difficulty}_{seed}.npz"
    if not npz.exists():
        out = cache / f"{difficulty}_{seed}"
        dose, _, vessels = difficulty.partition("+")
        subprocess.run(
            [binary, "synth", "--out", str(out), "--seed", str(seed), "--frames", str(FRAMES),
             "--size", str(SIZE), "--difficulty", dose, "--vessel-contrast", vessels or "diluted"],
            check=True, capture_output=True,
        )
        att, masks = [], []
        for i in range(0, FRAMES, FRAME_STEP):
            counts, maxval = read_pgm(out / "frames" / f"{i:06d}.pgm")
            att.append(features.log_attenuation(counts, maxval).astype(np.float16))
            masks.append((np.asarray(Image.open(out / "gt" / f"{i:06d}_mask.png")) > 0).astype(np.uint8))
        np.savez(npz, att=np.stack(att), masks=np.stack(masks))
        for f in sorted(out.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        out.rmdir()
    z = np.load(npz)
    att, masks = z["att"], z["masks"]
    if not crossings:
        return att, masks, None
    # Beside the sequence, named for what defines them; written whole or not at all.
    npy = cache / f"{difficulty}_{seed}_crossings_{THICK_SCALE_PX}_{CROSSING_MIN_DEPTH}_{CROSSING_REACH_PX}.npy"
    if not npy.exists():
        partial = npy.with_suffix(f".{os.getpid()}.partial")
        with open(partial, "wb") as f:
            np.save(f, crossing_masks(att, masks))
        os.replace(partial, npy)
    return att, masks, np.load(npy)


@dataclasses.dataclass
class Frames:
    """One difficulty's training frames: log attenuation and masks as arrays (where the
    windows are chosen) and as tensors on the training device (where they are cut); the
    crossings None where no training option reads them."""
    att: np.ndarray
    masks: np.ndarray
    stubs: np.ndarray
    crossings: np.ndarray | None
    crossing_frames: np.ndarray
    att_on_device: torch.Tensor
    masks_on_device: torch.Tensor
    crossings_on_device: torch.Tensor | None


def load(binary, cache, seeds, device, jobs, crossings=False):
    """Every difficulty's frames of `seeds`, the sequences written `jobs` at a time, with
    their crossings where `crossings`."""
    # One torch thread a worker: the workers share the cores.
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, initializer=torch.set_num_threads,
                                                initargs=(1,)) as pool:
        parts = {d: [pool.submit(sequence, binary, cache, d, s, crossings) for s in seeds] for d in DIFFICULTIES}
        parts = {d: [p.result() for p in ps] for d, ps in parts.items()}
    data = {}
    for d in DIFFICULTIES:
        att = np.concatenate([p[0] for p in parts[d]])
        masks = np.concatenate([p[1] for p in parts[d]])
        if crossings:
            cross = np.concatenate([p[2] for p in parts[d]])
            cross_frames = np.nonzero(cross.reshape(len(cross), -1).any(axis=1))[0]
            cross_on_device = torch.from_numpy(cross).to(device)
        else:
            cross, cross_frames, cross_on_device = None, np.zeros(0, dtype=np.int64), None
        data[d] = Frames(att, masks, stub_frames(masks), cross, cross_frames, torch.from_numpy(att).to(device),
                         torch.from_numpy(masks).to(device), cross_on_device)
    return data


def crossing_masks(att, masks):
    """The wire pixels of each frame that lie on or beside a catheter, where the wire's own ridge
    is a small part of what the features show: within CROSSING_REACH_PX of where the ridge depth
    at the thick scale, on the noisy frame, exceeds CROSSING_MIN_DEPTH."""
    out = np.zeros_like(masks)
    reach = 2 * CROSSING_REACH_PX + 1
    for i in range(0, len(att), 16):
        a = torch.from_numpy(att[i : i + 16].astype(np.float32))[:, None]
        _, l2 = features.eigenvalues(*features.hessian(a, THICK_SCALE_PX))
        thick = (-l2 > CROSSING_MIN_DEPTH).float()
        near = F.max_pool2d(thick, reach, 1, CROSSING_REACH_PX)[:, 0].numpy() > 0
        out[i : i + 16] = masks[i : i + 16] & near
    return out


def window_grid(rng, centre, out_px, augment):
    """Sampling grid (normalised coordinates of the 512 frame) of an out_px window around
    centre (x, y): rotated, scaled and elastically deformed when augmenting."""
    angle = rng.uniform(0, 2 * math.pi) if augment else 0.0
    scale = math.exp(rng.uniform(math.log(0.8), math.log(1.25))) if augment else 1.0
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    t = np.arange(out_px, dtype=np.float64) - (out_px - 1) / 2
    u, v = np.meshgrid(t, t)
    x = centre[0] + c * u - s * v
    y = centre[1] + s * u + c * v
    if augment and rng.uniform() < 0.7:
        amp = rng.uniform(0.5, 3.0)
        coarse = rng.normal(0, amp, size=(2, 1, 6, 6)).astype(np.float32)
        field = F.interpolate(torch.from_numpy(coarse), size=(out_px, out_px), mode="bicubic", align_corners=True)
        x = x + field[0, 0].numpy()
        y = y + field[1, 0].numpy()
    gx = (2 * x + 1) / SIZE - 1
    gy = (2 * y + 1) / SIZE - 1
    return torch.from_numpy(np.stack([gx, gy], axis=-1).astype(np.float32))


def photometric(rng, att):
    """Contrast, gamma, blur and extra noise on one window of log attenuation [1, 1, H, W]."""
    base = att.median()
    att = base + (att - base) * rng.uniform(0.7, 1.4)
    if rng.uniform() < 0.5:
        lo, hi = att.min(), att.max()
        span = (hi - lo).clamp_min(1e-6)
        att = lo + span * ((att - lo) / span).clamp(0, 1) ** rng.uniform(0.7, 1.4)
    if rng.uniform() < 0.3:
        sigma = rng.uniform(0.3, 0.9)
        r = 3
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        k = (k / k.sum()).to(att.device)
        att = F.conv2d(F.pad(att, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        att = F.conv2d(F.pad(att, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    if rng.uniform() < 0.5:
        att = att + torch.randn_like(att) * rng.uniform(0.0, 0.12)
    return att


def collimate(rng, att, mask):
    """Shutters over part of one window [1, 1, H, W]: beyond a circle's arc through the window
    the attenuation rises to a plateau, flat but for noise, and the wire under it is not to be
    found. The service drops ridges at a black field's edge, but a frame grabber's black is
    not always black (8-bit video has its black at grey 16): its edge must not read as a wire."""
    _, _, h, w = att.shape
    angle = rng.uniform(0, 2 * math.pi)
    normal = np.array([math.cos(angle), math.sin(angle)])
    radius = rng.uniform(150.0, 600.0)
    through = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    centre = through - radius * normal
    ys, xs = np.mgrid[0:h, 0:w]
    beyond = np.hypot(xs - centre[0], ys - centre[1]) - radius
    ramp = torch.from_numpy(1.0 / (1.0 + np.exp(-np.clip(beyond / rng.uniform(0.3, 2.0), -50, 50))))
    ramp = ramp.float().to(att.device)[None, None]
    plateau = att.median() + rng.uniform(1.0, 4.0) + torch.randn_like(att) * rng.uniform(0.0, 0.15)
    att = att + ramp * (plateau - att)
    return att, mask * (ramp < 0.5).float()


def stub_frames(masks):
    """Indices of the frames whose wire has just come into view: a short stub at the field's
    edge, which the service must find before it grows."""
    pixels = masks.reshape(len(masks), -1).sum(axis=1)
    return np.nonzero((pixels > 0) & (pixels < STUB_MAX_PX))[0]


def batch(rng, data, n, augment, sampling=None):
    """n windows: features [n, C, CROP, CROP], and wire masks and crossing masks (zero where
    the crossings were not loaded) [n, 1, CROP, CROP].

    `sampling` (augmenting only) draws some windows otherwise: taken from frames where the wire
    has just come into view, placed as the service places its regions (upright and inside the
    frame, so a wire entering across the border meets the edge of the network's input there;
    turned by multiples of 90 degrees and mirrored instead of rotated freely), with shutters
    over part of them (collimate()), or centred where the wire crosses a catheter. Each share
    at 0 draws nothing from `rng`."""
    sampling = sampling if augment and sampling else Sampling()
    out_px = CROP + 2 * MARGIN
    names = list(data)
    weights = np.array(DIFFICULTY_WEIGHTS) / sum(DIFFICULTY_WEIGHTS)
    atts, masks, turns = [], [], []
    for _ in range(n):
        frames = data[names[rng.choice(len(names), p=weights)]]
        att, mask, stubs = frames.att, frames.masks, frames.stubs
        upright = sampling.upright > 0 and rng.uniform() < sampling.upright
        crossing = (sampling.crossings > 0 and len(frames.crossing_frames)
                    and rng.uniform() < sampling.crossings)
        if crossing:
            i = frames.crossing_frames[rng.integers(len(frames.crossing_frames))]
        elif sampling.stubs > 0 and len(stubs) and rng.uniform() < sampling.stubs:
            i = stubs[rng.integers(len(stubs))]
        else:
            i = rng.integers(len(att))
        ys, xs = np.nonzero(frames.crossings[i] if crossing else mask[i])
        if crossing:
            j = rng.integers(len(xs))
            centre = (xs[j] + rng.normal(0, CROP / 12), ys[j] + rng.normal(0, CROP / 12))
        elif len(xs) and rng.uniform() < 0.85:
            j = rng.integers(len(xs))
            centre = (xs[j] + rng.normal(0, CROP / 6), ys[j] + rng.normal(0, CROP / 6))
        else:
            centre = (rng.uniform(CROP / 2, SIZE - CROP / 2), rng.uniform(CROP / 2, SIZE - CROP / 2))
        if upright:
            half = CROP / 2
            centre = tuple(float(np.clip(round(c - 0.5) + 0.5, half - 0.5, SIZE - half - 0.5)) for c in centre)
        grid = window_grid(rng, centre, out_px, augment and not upright)[None].to(frames.att_on_device.device)
        a = frames.att_on_device[i].float()[None, None]
        wire = frames.masks_on_device[i]
        on_crossing = torch.zeros_like(wire) if frames.crossings_on_device is None else frames.crossings_on_device[i]
        m = torch.stack([wire, on_crossing]).float()[None]
        a = F.grid_sample(a, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        m = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if sampling.shutters > 0 and rng.uniform() < sampling.shutters:
            a, m = collimate(rng, a, m)
        if augment:
            a = photometric(rng, a)
        atts.append(a)
        masks.append((m[:, :, MARGIN:-MARGIN, MARGIN:-MARGIN] > 0.5).float())
        turns.append((int(rng.integers(4)), bool(rng.integers(2))) if upright else None)
    x = features.features(torch.cat(atts), (MARGIN, MARGIN, CROP, CROP))
    t = torch.cat(masks)
    # Eigenvalues do not change when the image turns or mirrors: the features turn with it.
    for k, turn in enumerate(turns):
        if turn:
            x[k], t[k] = torch.rot90(x[k], turn[0], (1, 2)), torch.rot90(t[k], turn[0], (1, 2))
            if turn[1]:
                x[k], t[k] = x[k].flip(2), t[k].flip(2)
    return x, t[:, :1], t[:, 1:]


def soft_erode(x):
    return -torch.maximum(F.max_pool2d(-x, (3, 1), 1, (1, 0)), F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def soft_dilate(x):
    return F.max_pool2d(x, 3, 1, 1)


def soft_skeleton(x, iterations=5):
    skel = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice(p, t, eps=1.0):
    sp, st = soft_skeleton(p), soft_skeleton(t)
    tprec = ((sp * t).sum() + eps) / (sp.sum() + eps)
    tsens = ((st * p).sum() + eps) / (st.sum() + eps)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


def dice_loss(p, t, eps=1.0):
    return 1 - (2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps)


def cldice_weight(progress, fine_tuning=False):
    """0 for the first 30 % of training, then rising linearly to 0.5 at 70 %; 0.5 throughout
    when fine-tuning a trained model, which has learned the overlap already."""
    return 0.5 if fine_tuning else 0.5 * min(max((progress - 0.3) / 0.4, 0.0), 1.0)


def load_onnx(model, path):
    """`model` with the weights of an exported WireNet of its width. The export folded each
    batch norm into its convolution, so the batch norms become identities and fine-tuning
    trains the folded convolutions. Each convolution is found by the module path in its
    node's name (`/enc2/enc2.1/enc2.1.0/Conv`), not by the order of the weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    if any(n.op_type == "BatchNormalization" for n in graph.node):
        raise ValueError(f"{path}: its batch norms are not folded into its convolutions")
    tensors = {t.name: numpy_helper.to_array(t).copy() for t in graph.initializer}
    for block in (model.enc0, model.enc1, *model.enc2, model.enc3, model.dec2, model.dec1):
        block[1] = nn.Identity()
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    loaded = set()
    with torch.no_grad():
        for node in (n for n in graph.node if n.op_type == "Conv"):
            name = node.name.split("/")[-2] if node.name.count("/") >= 2 else node.name
            conv = convs.get(name)
            if conv is None or len(node.input) != 3:
                raise ValueError(f"{path}: convolution {node.name!r} is none of WireNet's")
            w, b = tensors[node.input[1]], tensors[node.input[2]]
            if tuple(conv.weight.shape) != w.shape:
                raise ValueError(f"{path}: {name} is {w.shape}, WireNet's is {tuple(conv.weight.shape)} (another --width?)")
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
            loaded.add(name)
    if loaded != set(convs):
        raise ValueError(f"{path}: no weights for {sorted(set(convs) - loaded)}")
    return model


def one_cycle(progress, max_lr, pct_start=0.1, div=25.0, final_div=1e4):
    """The learning rate of torch's OneCycleLR (cosine) at a share of the training, for a
    training that ends at a time rather than a step."""
    start, end = max_lr / div, max_lr / div / final_div
    if progress < pct_start:
        a, b, f = start, max_lr, progress / pct_start
    else:
        a, b, f = max_lr, end, (progress - pct_start) / (1 - pct_start)
    return b + (a - b) * (1 + math.cos(math.pi * min(f, 1.0))) / 2


@torch.no_grad()
def validate(model, val):
    model.eval()
    x, t, _ = val
    p = torch.cat([model(x[i : i + 16]) for i in range(0, len(x), 16)])
    hard = (p > 0.5).float()
    dice = 1 - dice_loss(hard, t, eps=1e-6).item()
    cl = 1 - soft_cldice(hard, t, eps=1e-6).item()
    model.train()
    return dice, cl


def export(model, out_dir, meta):
    model.cpu().eval()
    onnx_path = out_dir / "wirenet.onnx"
    x = torch.zeros(1, features.CHANNELS, 256, 256)
    torch.onnx.export(
        model, x, str(onnx_path), input_names=["features"], output_names=["probability"], opset_version=17,
        dynamo=False, dynamic_axes={"features": {2: "height", 3: "width"}, "probability": {2: "height", 3: "width"}},
    )
    manifest = {
        "format": 1,
        "model": onnx_path.name,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "feature_version": features.FEATURE_VERSION,
        "input": {"name": "features", "channels": features.CHANNELS, "multiple_of": 8},
        "output": {"name": "probability"},
        "roi_px": 256,
        "opset": 17,
        "parameters": parameters(model),
        **meta,
    }
    (out_dir / "wirenet.json").write_text(json.dumps(manifest, indent=2) + "\n")


def recipe_args(argv):
    """The command line's arguments but the paths, which are this machine's."""
    paths = {"--wiretrace", "--cache", "--out"}
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in paths:
            skip = True
        elif a.split("=", 1)[0] not in paths:
            kept.append(a)
    return kept


def machine(device):
    """What trained the model, for the manifest."""
    where = f"{torch.get_num_threads()} threads"
    if device.type == "cuda":
        where += f", {torch.cuda.get_device_name(device)}"
    return f"{where}, torch {torch.__version__}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wiretrace", default="target/release/wiretrace", help="the binary that writes the sequences")
    ap.add_argument("--cache", default="/tmp/wiretrace-train", help="where the sequences are kept between runs")
    ap.add_argument("--out", default=str(HERE.parent), help="where wirenet.onnx and wirenet.json go")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float,
                    help="train for this long instead of --steps (the schedules follow the time)")
    ap.add_argument("--device", default="cpu", help="torch device: cpu, or cuda where there is one")
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="sequences written at a time")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--upright-share", type=float, default=0.4,
                    help="share of windows placed upright inside the frame, as the service's regions (README)")
    ap.add_argument("--stub-share", type=float, default=0.15,
                    help="share of windows taken from frames where the wire has just come into view")
    ap.add_argument("--shutter-share", type=float, default=0.2,
                    help="share of windows with shutters over part of them")
    ap.add_argument("--crossing-share", type=float, default=0.0,
                    help="share of windows centred where the wire crosses a thick structure (a catheter)")
    ap.add_argument("--crossing-weight", type=float, default=1.0,
                    help="weight of the loss on wire pixels at such crossings, against 1 elsewhere")
    ap.add_argument("--init-from", help="fine-tune this exported model (wirenet.onnx) instead of training from scratch")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    ap.add_argument("--width", type=int, default=8,
                    help="channels of WireNet's full-resolution level (model.py); CPU time per tile grows as its square")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads; 1 where another process competes for the cores (OpenMP spins)")
    args = ap.parse_args()

    started = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    sampling = Sampling(upright=args.upright_share, stubs=args.stub_share, shutters=args.shutter_share,
                        crossings=args.crossing_share)
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    # The features must be the service's to 1e-4: no TensorFloat-32 in their convolutions.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    crossings = args.crossing_share > 0 or args.crossing_weight != 1
    train = load(args.wiretrace, cache, TRAIN_SEEDS, device, args.jobs, crossings)
    val_data = load(args.wiretrace, cache, VAL_SEEDS, device, args.jobs)
    val = batch(np.random.default_rng(12345), val_data, 96, augment=False)
    data_s = time.time() - started
    print(f"data: {sum(len(v.att) for v in train.values())} training frames, {data_s:.0f} s", flush=True)

    model, fine_tuned = WireNet(args.width), None
    if args.init_from:
        model = load_onnx(model, args.init_from)
        start = pathlib.Path(args.init_from)
        fine_tuned = {"from": start.name, "sha256": hashlib.sha256(start.read_bytes()).hexdigest()}
    model = model.to(device)
    max_lr = args.lr
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=1e-4)
    budget_s = args.minutes * 60 if args.minutes else None
    sched = None if budget_s else torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=args.steps, pct_start=0.1)
    pos_weight = torch.tensor(3.0, device=device)
    log_path = pathlib.Path(args.out) / "wirenet-training.csv"
    log = ["step,seconds,lr,loss,bce,dice,cldice_loss,cldice_weight,val_dice,val_cldice"]
    training_started = time.time()
    step, progress = 0, 0.0
    while progress < 1.0:
        step += 1
        if budget_s:
            progress = min((time.time() - training_started) / budget_s, 1.0)
            for group in opt.param_groups:
                group["lr"] = one_cycle(progress, max_lr)
        else:
            progress = step / args.steps
        x, t, crossing = batch(rng, train, args.batch, augment=True, sampling=sampling)
        logit = model.logits(x)
        p = torch.sigmoid(logit)
        weight = 1 + (args.crossing_weight - 1) * crossing if args.crossing_weight != 1 else None
        bce = F.binary_cross_entropy_with_logits(logit, t, weight=weight, pos_weight=pos_weight)
        dice = dice_loss(p, t)
        w = cldice_weight(progress, fine_tuning=bool(args.init_from))
        cl = soft_cldice(p, t)
        loss = bce + dice + w * cl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        if step % 100 == 0 or progress >= 1.0:
            vd, vc = validate(model, val)
            line = (f"{step},{time.time() - started:.0f},{opt.param_groups[0]['lr']:.2e},{loss.item():.4f},"
                    f"{bce.item():.4f},{dice.item():.4f},{cl.item():.4f},{w:.3f},{vd:.4f},{vc:.4f}")
            log.append(line)
            print(line, flush=True)
    log_path.write_text("\n".join(log) + "\n")
    vd, vc = validate(model, val)
    export(model, pathlib.Path(args.out), {
        "training": {
            "command": " ".join(["bash engines/train/train.sh", *recipe_args(sys.argv[1:])]),
            "seeds": {"train": [TRAIN_SEEDS.start, TRAIN_SEEDS.stop - 1], "validation": [VAL_SEEDS.start, VAL_SEEDS.stop - 1],
                      "difficulties": list(DIFFICULTIES), "frames": f"0..{FRAMES} step {FRAME_STEP}", "torch": args.seed},
            **({"fine_tuned": fine_tuned} if fine_tuned else {}),
            **({"crossing_weight": args.crossing_weight} if args.crossing_weight != 1 else {}),
            **({"lr": args.lr} if args.lr != 3e-3 else {}),
            "steps": step, **({"minutes": args.minutes} if budget_s else {}), "batch": args.batch, "crop_px": CROP,
            **({"sampling": dataclasses.asdict(sampling)} if sampling != Sampling() else {}),
            "duration_s": round(time.time() - started), "data_s": round(data_s),
            "machine": machine(device),
        },
        "metrics": {"validation_windows": {"dice": round(vd, 4), "cldice": round(vc, 4)}},
        "date": datetime.date.today().isoformat(),
    })
    print(f"done in {time.time() - started:.0f} s: val dice {vd:.4f} cldice {vc:.4f}")


if __name__ == "__main__":
    main()
