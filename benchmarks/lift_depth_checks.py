"""How good is a 2D-to-3D lifter's depth? Prints one line per model.

    python benchmarks/lift_depth_checks.py --data PREPARED_DIR --model RUN [--model RUN ...]

On the test split, in the camera frame of each clip's 2D view, per joint relative to
the root (millimetres):

- depth correlation and slope: the least-squares slope of predicted on true depth
  (1 = right magnitude; 0.2 = a body flattened to a fifth of its depth);
- mean |depth| predicted against true;
- clips whose predicted depth is anti-correlated with the truth (mirrored in depth);
- an oracle bound on the depth *signs*: the observed 2D, each limb's depth magnitude
  from its true length, and only the sign of its depth from the model, scored with
  MPJPE / PA-MPJPE in world space like ``free3d eval lift``. It uses 3D lengths, so
  it is a diagnostic, not a lifter.

``--per-limb`` adds, per limb, the share of its depth (weighted by the true depth's
size) whose sign the model gets wrong and its depth correlation, and how often the knees
bend forwards (``free3d.losses.knee_bend`` < 0) in the model's lift and in the truth.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from free3d.data.ground_truth import camera_to_world, load_camera, load_motion3d, world_to_camera
from free3d.data.motion2d import load_clip2d
from free3d.data.prepared import read_meta, read_split
from free3d.evaluation.lift import lift_with_model
from free3d.evaluation.lifting import mpjpe, pa_mpjpe
from free3d.losses import knee_bend
from free3d.representation import from_free3d, to_free3d
from free3d.rigid_depth import rigid_depth
from free3d.skeleton import get_skeleton
from free3d.training.lifting import load_run


def check(data: str, run: str, per_limb: bool = False) -> str:
    skeleton = get_skeleton(read_meta(data)["skeleton"])
    model, cfg, _ = load_run(run)
    pred_depth, true_depth, mirrored, errors, pa_errors = [], [], 0, [], []
    limb_pred, limb_true = [], []
    for cid in read_split(data, "test"):
        camera = load_camera(data, cid)
        truth = load_motion3d(data, cid)
        lifted = world_to_camera(lift_with_model(model, cfg, data, cid, skeleton), camera)
        true_cam = world_to_camera(truth, camera)
        p = (lifted[..., 2] - lifted[:, :1, 2]).ravel() / camera.scale
        t = (true_cam[..., 2] - true_cam[:, :1, 2]).ravel() / camera.scale
        pred_depth.append(p)
        true_depth.append(t)
        mirrored += int(np.dot(p, t) < 0)
        # oracle: observed 2D limbs, true lengths, the model's depth signs
        clip = load_clip2d(data, cid)
        limbs2 = torch.from_numpy(clip.limbs).double()
        true_limbs = to_free3d(torch.from_numpy(true_cam), skeleton).limbs
        lifted_limbs = to_free3d(torch.from_numpy(lifted), skeleton).limbs
        limb_pred.append(lifted_limbs)
        limb_true.append(true_limbs)
        # --rigid-depth's step with each frame's true lengths instead of the 2D's
        oracle = rigid_depth(limbs2, lifted_limbs[..., 2], true_limbs.norm(dim=-1))
        root = torch.nn.functional.pad(torch.from_numpy(clip.trajectory).double(), (0, 1))
        joints = from_free3d(root, oracle, skeleton)
        world = torch.from_numpy(camera_to_world(joints.numpy(), camera))
        errors.append(mpjpe(world, torch.from_numpy(truth), reduction="none"))
        pa_errors.append(pa_mpjpe(world, torch.from_numpy(truth), reduction="none"))
    p, t = np.concatenate(pred_depth), np.concatenate(true_depth)
    slope = float(np.dot(p, t) / np.dot(t, t))
    line = (f"{run}: depth corr {np.corrcoef(p, t)[0, 1]:.2f}, slope {slope:.2f}, "
            f"mean |depth| {1000 * np.abs(p).mean():.0f} mm (true {1000 * np.abs(t).mean():.0f}), "
            f"mirrored clips {mirrored}/{len(errors)}; observed 2D + true lengths + its signs: "
            f"MPJPE {torch.cat(errors).mean():.1f}, PA-MPJPE {torch.cat(pa_errors).mean():.1f}")
    if per_limb:
        line += "\n" + limb_report(torch.cat(limb_pred), torch.cat(limb_true), skeleton)
    return line


def limb_report(pred: torch.Tensor, true: torch.Tensor, skeleton) -> str:
    """Per limb (named by its end joint): depth-weighted wrong-sign share and correlation."""
    lines = []
    for k in range(skeleton.num_limbs):
        p, t = pred[:, k, 2], true[:, k, 2]
        wrong = float(((torch.sign(p) != torch.sign(t)).double() * t.abs()).sum() / t.abs().sum())
        corr = float(np.corrcoef(p.numpy(), t.numpy())[0, 1])
        lines.append(f"  limb to {skeleton.joint_names[k + 1]:<12} wrong depth sign {wrong:.2f}, "
                     f"corr {corr:.2f}")
    for name, limbs in (("lift", pred), ("truth", true)):
        forwards = float((knee_bend(limbs, skeleton) < 0).double().mean())
        lines.append(f"  knees bent forwards ({name}): {100 * forwards:.1f} % of frames")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared dataset folder (free3d data prepare)")
    p.add_argument("--model", action="append", required=True, help="a lifter's run folder (2D in)")
    p.add_argument("--per-limb", action="store_true",
                   help="also per-limb sign errors and knees bent forwards")
    args = p.parse_args()
    for run in args.model:
        print(check(args.data, run, args.per_limb), flush=True)


if __name__ == "__main__":
    main()
