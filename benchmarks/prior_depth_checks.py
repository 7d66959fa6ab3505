"""Can a frozen 2D prior tell the true depth of a motion from a flattened one?

    python benchmarks/prior_depth_checks.py --data PREPARED_DIR --prior RUN [--prior RUN ...]
        [--split train] [--lifter RUN]

Lrec (paper eq. 11) can only give a lifter depth if the prior's score of a random new
view is lowest when the depth is right. This script takes real motion (the hidden 3D of
40-frame windows, in the camera frame of each clip's 2D view, so it is a diagnostic and
no training path), scales its depth by a factor (1 = true, 0 = flattened onto the image,
-1 = mirrored), turns it about the vertical like Lrec does, and scores the projection
with the prior. For each factor it prints, against the true depth, how often the score
is worse (higher) and the median relative change, for two scores:

- ``mse``: Lrec's score, the plain squared reconstruction error (``Prior2D.
  reconstruction_error``);
- ``relative``: the same divided by the window's own spread over time, for analysis.
  A plain error is smaller for motion with less spread, so it favours a flattened body;
  the relative one does not. It is not a training option: a lifter trained with it
  (docs/results.md, "Why Lrec does not set the depth's size") blew its depth up to metres, where the spread
  grows faster than the error.

A score that can give depth is worse in most windows at every factor other than 1.
It also prints how far real motion is from Liso's assumption (``--lambda-iso``): per
limb, the ratio of mean squared depth to mean squared image x once clips are stood up.
``--lifter RUN`` also scales an ML-RQ's own output depth on training windows and prints
its mean score: where the score falls as the depth grows, Lrec pushes the lifter's depth
up; where it is flat, Lrec leaves the depth's size to the other terms.
"""

from __future__ import annotations

import argparse

import torch

from free3d.data.ground_truth import load_camera, load_motion3d, world_to_camera
from free3d.data.prepared import read_meta, read_split
from free3d.losses import project_view, upright_rotation
from free3d.representation import random_view_rotations, rotate, to_free3d
from free3d.skeleton import Skeleton, get_skeleton
from free3d.training.lifting import load_frozen_prior, load_run, load_training_clips

FACTORS = (2.0, 1.4, 0.6, 0.3, 0.0, -1.0)
WINDOW = 40
RELATIVE_FLOOR = 0.01  # keeps near-motionless windows from dividing by ~0


def scaled_depth(traj: torch.Tensor, limbs: torch.Tensor, factor: float):
    scale = torch.tensor([1.0, 1.0, factor])
    return traj * scale, limbs * scale


def real_windows(data: str, split: str, skeleton: Skeleton, max_clips: int):
    """(N, 40, 3) trajectories and (N, 40, K, 3) limbs of true motion, camera frame, in
    the 2D data's normalised scale."""
    trajs, limbs = [], []
    for cid in read_split(data, split)[:max_clips]:
        camera = load_camera(data, cid)
        motion = world_to_camera(load_motion3d(data, cid), camera)  # already in the 2D's scale
        f = to_free3d(torch.from_numpy(motion).float(), skeleton)
        n = f.limbs.shape[0] // WINDOW
        trajs.append(f.trajectory[:n * WINDOW].reshape(n, WINDOW, 3))
        limbs.append(f.limbs[:n * WINDOW].reshape(n, WINDOW, *f.limbs.shape[1:]))
    return torch.cat(trajs), torch.cat(limbs)


def per_window_scores(prior, traj2: torch.Tensor, limbs2: torch.Tensor) -> dict[str, torch.Tensor]:
    """Prior2D.reconstruction_error per window, and the same relative to the window's spread."""
    x = prior.features(traj2, limbs2)
    recon, _ = prior.reconstruct(x)
    error = (recon - x).square().mean((1, 2))
    spread = (x - x.mean(1, keepdim=True)).square().mean((1, 2))
    return {"mse": error, "relative": error / (spread + RELATIVE_FLOOR)}


@torch.no_grad()
def check_prior(data: str, split: str, prior_run: str, max_clips: int) -> None:
    skeleton = get_skeleton(read_meta(data)["skeleton"])
    prior = load_frozen_prior(prior_run, skeleton)
    traj, limbs = real_windows(data, split, skeleton, max_clips)
    turns = random_view_rotations(len(traj), generator=torch.Generator().manual_seed(0))
    turns = turns @ upright_rotation(limbs, skeleton)
    scores = {}
    for factor in (1.0, *FACTORS):
        t2, l2 = project_view(*scaled_depth(traj, limbs, factor), turns, skeleton)
        scores[factor] = per_window_scores(prior, t2, l2)
    print(f"{prior_run}: {len(traj)} windows of real {split} motion, turned about the vertical")
    for kind in ("mse", "relative"):
        true = scores[1.0][kind]
        cells = []
        for factor in FACTORS:
            worse = (scores[factor][kind] > true).float().mean()
            change = ((scores[factor][kind] - true) / true).median()
            cells.append(f"x{factor:g}: worse {worse:.0%} ({change:+.0%})")
        print(f"  {kind:8} depth " + ", ".join(cells))


@torch.no_grad()
def check_isotropy(data: str, split: str, max_clips: int) -> None:
    """Liso's assumption on real motion: stood up, each limb's depth spreads like its x."""
    skeleton = get_skeleton(read_meta(data)["skeleton"])
    _, limbs = real_windows(data, split, skeleton, max_clips)
    upright = rotate(limbs, upright_rotation(limbs, skeleton).unsqueeze(1))
    ratio = upright[..., 2].square().mean((0, 1)) / upright[..., 0].square().mean((0, 1))
    print(f"real {split} motion, stood up: mean z^2 / mean x^2 per limb from {ratio.min():.2f} "
          f"to {ratio.max():.2f} (Liso assumes 1)")


@torch.no_grad()
def check_lifter(lifter_run: str, prior_run: str) -> None:
    model, cfg, skeleton = load_run(lifter_run)
    prior = load_frozen_prior(prior_run, skeleton)
    arrays = load_training_clips(cfg, skeleton)
    g = torch.Generator().manual_seed(0)
    batch = arrays.sample(512, WINDOW, g)
    out = model.eval()(batch["traj2"], batch["limbs2"])
    turns = random_view_rotations(512, generator=g)
    print(f"{lifter_run}: mean Lrec of its own output (512 training windows) with its depth scaled")
    rows = {"mse": [], "relative": []}
    for factor in (0.0, 1.0, 2.0, 3.0, 5.0):
        t2, l2 = project_view(*scaled_depth(out.trajectory, out.limbs, factor), turns, skeleton)
        for kind, s in per_window_scores(prior, t2, l2).items():
            rows[kind].append(f"x{factor:g}: {s.mean():.3f}")
    for kind, cells in rows.items():
        print(f"  {kind:8} " + ", ".join(cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared dataset folder (free3d data prepare)")
    p.add_argument("--prior", action="append", required=True, help="a 2D prior's run folder")
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--clips", type=int, default=150, help="clips of the split to use")
    p.add_argument("--lifter", action="append", default=[],
                   help="an ML-RQ run: also score its own output at scaled depths (first prior)")
    args = p.parse_args()
    check_isotropy(args.data, args.split, args.clips)
    for prior_run in args.prior:
        check_prior(args.data, args.split, prior_run, args.clips)
    for lifter_run in args.lifter:
        check_lifter(lifter_run, args.prior[0])


if __name__ == "__main__":
    main()
