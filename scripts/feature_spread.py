"""How far the ML-RQ's standardised 2D input features reach, for each std floor.

    python scripts/feature_spread.py --data DATA [--floors 0 0.25 0.5 1] [--windows 8192]

With the per-feature std (floor 0), a feature that barely varies over the data (the
spine's vertical in torso-normalised 2D) turns a deep bow into tens of standard
deviations; docs/results.md traces ML-RQ's loss spikes to such windows. The relative
floor (``--std-floor``, ``free3d.models.features.floored_std``) bounds that.
"""

from __future__ import annotations

import argparse

import torch

from free3d.data.prepared import read_meta
from free3d.models.features import encode_motion, floored_std
from free3d.skeleton import get_skeleton
from free3d.training.lifting import load_training_clips, make_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a prepared dataset folder")
    ap.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    ap.add_argument("--windows", type=int, default=8192, help="random training windows read")
    ap.add_argument("--window", type=int, default=40, help="frames per window")
    args = ap.parse_args()
    cfg = make_config("mlrq", args.data, prior="unused")
    skeleton = get_skeleton(read_meta(args.data)["skeleton"])
    clips = load_training_clips(cfg, skeleton)
    batch = clips.sample(args.windows, args.window, torch.Generator().manual_seed(0))
    feats = encode_motion(batch["traj2"], batch["limbs2"], skeleton, cfg.representation)
    flat = feats.reshape(-1, feats.shape[-1]).double()
    print(f"{args.windows} windows of {args.window} frames, {flat.shape[1]} features ({cfg.representation})")
    print("| std floor | largest |z| | its feature | 99.99th percentile of |z| | features floored |")
    print("|---|---|---|---|---|")
    for floor in args.floors:
        std = floored_std(flat, floor)
        z = ((flat - flat.mean(0)) / std).abs()
        top = z.amax(0)
        rows = torch.randperm(len(z), generator=torch.Generator().manual_seed(1))[:20000]
        q = torch.quantile(z[rows], 0.9999)
        floored = int((std > flat.std(0)).sum())
        print(f"| {floor:g} | {float(top.max()):.1f} | {int(top.argmax())} | {float(q):.1f} | {floored} |")


if __name__ == "__main__":
    main()
