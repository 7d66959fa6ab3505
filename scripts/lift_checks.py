"""Checks of an ML-RQ that the lifting table does not show; prints numbers.

    python scripts/lift_checks.py --model RUN_OR_BUNDLE --data DATA [--clips 60]

- **Travel by window length**: 2D windows of the training clips (N frames), lifted; the
  median ratio of the lifted root's image-plane travel to the 2D's, for windows that
  move. A lifter trained on one window length can be right at that length and wrong on
  whole clips (the generator's tokens and every lifted video are whole clips).
- **Tokens and views**: the 3D of training clips filmed from two random cameras; how
  often their layer-0 tokens agree, as each view's own 2D is tokenised (``--token-view
  clip``) and as the ML-RQ's lift of it seen from the canonical camera (``canonical``).
  The 3D is read only to film the clip twice; the tokens come from 2D.
- **Walking backwards**: the Bandai-Namco "walk-back" clips of the train split, lifted
  from their 2D; the root's travel along the body's first-second facing, lifted and true
  (negative = backwards), how much of the 2D's own travel in the image the lift keeps,
  split by how side-on the camera saw the body, and how far the planted feet push it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from free3d.checkpoints import load_autoencoder
from free3d.data.canonical import upright_transform
from free3d.data.ground_truth import load_camera, load_motion3d, world_to_camera
from free3d.data.motion2d import load_clip2d
from free3d.data.prepared import read_split
from free3d.data.single_view import Camera, canonical_view, project_clip
from free3d.evaluation.lift import lift_clip
from free3d.representation import facing_direction


def layer0_codes(lifter, trajectory: np.ndarray, limbs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return lifter.tokenize(torch.from_numpy(trajectory[None]), torch.from_numpy(limbs[None]))[0, :, 0]


def travel_by_length(lifter, data: str, ids: list[str], lengths: list[int], rng) -> None:
    for n in lengths:
        ratios = []
        for cid in ids:
            clip = load_clip2d(data, cid)
            if len(clip.trajectory) < n:
                continue
            s = int(rng.integers(0, len(clip.trajectory) - n + 1))
            traj, limbs = clip.trajectory[s:s + n], clip.limbs[s:s + n]
            seen = np.linalg.norm(traj[-1] - traj[0])
            if seen < 0.5:  # standing still: no travel to compare
                continue
            lifted = lift_clip(lifter, torch.from_numpy(traj), torch.from_numpy(limbs), lifter.skeleton)
            ratios.append(float(np.linalg.norm(lifted[-1, 0, :2] - lifted[0, 0, :2])) / seen)
        if ratios:
            print(f"windows of {n} frames: lifted / 2D travel median {np.median(ratios):.2f} "
                  f"({len(ratios)} moving windows)")


def token_views(lifter, data: str, ids: list[str], rng) -> None:
    sk = lifter.skeleton
    agree = {"clip": [], "canonical": []}
    for cid in ids:
        world = load_motion3d(data, cid).astype(np.float64)
        cameras = [Camera(float(rng.uniform(0, 360)), float(rng.uniform(-5, 20))) for _ in range(2)]
        views = [project_clip(world, camera, sk) for camera in cameras]
        own = [layer0_codes(lifter, v.trajectory, v.limbs) for v in views]
        canon = []
        for v in views:
            lifted = lift_clip(lifter, torch.from_numpy(v.trajectory), torch.from_numpy(v.limbs), sk)
            c = canonical_view(lifted.numpy(), sk)
            canon.append(layer0_codes(lifter, c.trajectory, c.limbs))
        agree["clip"].append(float((own[0] == own[1]).float().mean()))
        agree["canonical"].append(float((canon[0] == canon[1]).float().mean()))
    print("layer-0 tokens of one clip filmed from two random cameras agree: "
          + ", ".join(f"{k} view {np.mean(v):.3f}" for k, v in agree.items()) + f" ({len(ids)} clips)")


def feet_travel(joints: np.ndarray, skeleton, contact: float = 0.05) -> float:
    """How far the body goes along its first facing if it moved only by its planted foot
    (the lowest foot joint, within ``contact`` m of the floor, pushed back under the root),
    and by the root itself in the other frames; a clip stood up first."""
    rot, t = upright_transform(joints, skeleton)
    c = joints @ rot.T + t  # facing +Z at frame 0
    feet = [skeleton.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    rel = c[:, feet] - c[:, :1]
    low = c[:, feet, 1].argmin(1)
    floor = np.median(c[:, feet, 1].min(1))
    total = 0.0
    for i in range(len(c) - 1):
        if c[i, feet[low[i]], 1] - floor < contact and low[i] == low[i + 1]:
            total -= rel[i + 1, low[i], 2] - rel[i, low[i], 2]
        else:
            total += c[i + 1, 0, 2] - c[i, 0, 2]
    return float(total)


def walking_backwards(lifter, data: str, ids: list[str]) -> None:
    sk = lifter.skeleton
    rows = []
    for cid in ids:
        clip, cam = load_clip2d(data, cid), load_camera(data, cid)
        true = world_to_camera(load_motion3d(data, cid).astype(np.float64), cam)
        lifted = lift_clip(lifter, torch.from_numpy(clip.trajectory), torch.from_numpy(clip.limbs),
                           sk).numpy()
        along, faces = [], []
        for j in (true, lifted):
            face = facing_direction(torch.from_numpy(j[:20].mean(0)), sk).numpy()
            faces.append(face)
            along.append(float((j[-1, 0] - j[0, 0]) @ face / np.linalg.norm(face)))
        # the image-plane part of the travel is observed: the lift should keep it
        seen = np.linalg.norm(clip.trajectory[-1] - clip.trajectory[0])
        # how side-on the camera saw the body: |sin| of the facing's angle to the view axis
        side = abs(faces[0][0]) / max(float(np.linalg.norm(faces[0][[0, 2]])), 1e-9)
        rows.append([*along, float(np.linalg.norm(lifted[-1, 0, :2] - lifted[0, 0, :2])) / max(seen, 1e-9),
                     side, feet_travel(true, sk), feet_travel(lifted, sk)])
    if rows:
        r = np.array(rows)
        print(f"walk-back clips ({len(r)}): travel along the facing, "
              f"true median {np.median(r[:, 0]):+.2f} m, "
              f"lifted {np.median(r[:, 1]):+.2f} m; lifted backwards in {(r[:, 1] < 0).sum()}/{len(r)}; "
              f"lifted / 2D travel in the image median {np.median(r[:, 2]):.2f}")
        for name, pick in (("side-on (|sin| > 0.7)", r[:, 3] > 0.7),
                           ("front- or back-on (< 0.35)", r[:, 3] < 0.35)):
            if pick.any():
                print(f"  filmed {name}: lifted backwards in {(r[pick, 1] < 0).sum()}/{pick.sum()}, "
                      f"travel along the facing {r[pick, 1].min():+.2f} to {r[pick, 1].max():+.2f} m "
                      f"(true {r[pick, 0].min():+.2f} to {r[pick, 0].max():+.2f} m)")
        print("  travel the planted feet push the body along its facing: "
              f"true median {np.median(r[:, 4]):+.2f} m, lifted {np.median(r[:, 5]):+.2f} m")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an ML-RQ run folder or a Free3D model folder")
    p.add_argument("--data", required=True, help="prepared dataset folder (its train split is read)")
    p.add_argument("--clips", type=int, default=60, help="training clips drawn for the first two checks")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    path = Path(args.model)
    lifter, _, _ = load_autoencoder(path / "mlrq" if (path / "generator.json").is_file() else path)
    if lifter.input_dim != 2:
        raise SystemExit(f"{args.model}: not an ML-RQ (it reads {lifter.input_dim}D)")
    lifter.eval()
    rng = np.random.default_rng(args.seed)
    train = read_split(args.data, "train")
    ids = [str(c) for c in rng.choice(train, min(args.clips, len(train)), replace=False)]
    travel_by_length(lifter, args.data, ids, [24, 40, 80, 120], rng)
    token_views(lifter, args.data, ids, rng)
    content = {}
    with open(Path(args.data) / "clips.jsonl") as f:
        for line in f:
            d = json.loads(line)
            content[d["id"]] = d.get("labels", {}).get("content")
    walking_backwards(lifter, args.data, [c for c in train if content.get(c) == "walk-back"])


if __name__ == "__main__":
    main()
