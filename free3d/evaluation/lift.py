"""``free3d eval lift``: lift every 2D clip of a split to 3D and score it against the
hidden 3D (MPJPE root-aligned, PA-MPJPE, millimetres), with the depth checks (how deep,
which way), the root's path in world space and its vertical drift.

Lifted poses come out in the camera frame of their 2D view, in the 2D's normalised
units; the clip's stored camera (known to evaluation only) maps them back to world
metres. Global heading is therefore scored: a lift with its depth mirrored is wrong.

The lifter runs on its device in IEEE fp32 (so a GPU gives the CPU's scores up to
rounding); lifted clips come back to the CPU (float64) for scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..checkpoints import load_autoencoder
from ..data.ground_truth import (
    camera_to_world,
    load_camera,
    load_motion3d,
    load_split3d,
    require_3d,
    world_to_camera,
)
from ..data.motion2d import load_clip2d
from ..data.prepared import read_meta, read_split
from ..device import model_device, resolve_device, tf32_scope
from ..models.autoencoders import pad_frames
from ..representation import from_free3d, mirror_motion, to_free3d
from ..rigid_depth import clip_limb_lengths, rigid_depth, rigid_lift
from ..skeleton import Skeleton, get_skeleton
from .lifting import mean_pose_lift, mpjpe, pa_mpjpe, zero_depth_lift

REFERENCES = ("zero-depth", "mean-pose", "rigid-random-signs")


class PathScores:
    """Depth and root-path checks of lifted clips, accumulated clip by clip.

    In each clip's camera frame (metres), per joint relative to the root:
    ``depth_corr`` and ``depth_slope`` (least squares of predicted on true depth: 1 =
    right size, 0.2 = flattened to a fifth) and ``mirrored_clips`` (predicted depth
    anti-correlated with the truth). In world space: ``root_path_mm``, the mean distance
    between predicted and true root once both start at the origin (the trajectory's
    depth included), and ``root_drift_mm``, the mean |height change| of the root since
    the first frame (``true_root_drift_mm`` for the truth).
    """

    def __init__(self) -> None:
        self.dot_pt = self.dot_tt = self.dot_pp = self.sum_p = self.sum_t = 0.0
        self.n = self.mirrored = self.clips = 0
        self.path, self.drift, self.true_drift = [], [], []

    def add(self, pred: np.ndarray, target: np.ndarray, camera) -> None:
        cam_p = world_to_camera(pred, camera) / camera.scale
        cam_t = world_to_camera(target, camera) / camera.scale
        p = (cam_p[..., 2] - cam_p[:, :1, 2]).ravel()
        t = (cam_t[..., 2] - cam_t[:, :1, 2]).ravel()
        self.dot_pt += float(p @ t)
        self.dot_tt += float(t @ t)
        self.dot_pp += float(p @ p)
        self.sum_p += float(p.sum())
        self.sum_t += float(t.sum())
        self.n += p.size
        self.mirrored += int(p @ t < 0 and np.abs(p).mean() > 1e-6)  # a flat lift mirrors nothing
        self.clips += 1
        root_p, root_t = pred[:, 0] - pred[:1, 0], target[:, 0] - target[:1, 0]
        self.path.append(np.linalg.norm(root_p - root_t, axis=-1))
        self.drift.append(np.abs(root_p[:, 1]))
        self.true_drift.append(np.abs(root_t[:, 1]))

    def result(self) -> dict:
        n = max(self.n, 1)
        cov = self.dot_pt / n - self.sum_p * self.sum_t / n ** 2
        var_p = self.dot_pp / n - (self.sum_p / n) ** 2
        var_t = self.dot_tt / n - (self.sum_t / n) ** 2
        corr = cov / np.sqrt(var_p * var_t) if var_p > 1e-18 and var_t > 1e-18 else 0.0
        mm = lambda x: round(1000 * float(np.concatenate(x).mean()), 2)  # noqa: E731
        return {"depth_corr": round(float(corr), 3),
                "depth_slope": round(self.dot_pt / max(self.dot_tt, 1e-18), 3),
                "mirrored_clips": self.mirrored,
                "root_path_mm": mm(self.path), "root_drift_mm": mm(self.drift),
                "true_root_drift_mm": mm(self.true_drift)}


def keep_observed_2d(lifted: torch.Tensor, joints2d: torch.Tensor) -> torch.Tensor:
    """Camera-frame (T, J, 3) lift with x, y replaced by the observed 2D; its depth kept.

    The depth stays root-relative: each joint keeps its depth offset from the root. So
    the result reprojects exactly onto the input view, which suits video to 3D, where
    the keypoints are the measurement and only depth is missing.
    """
    out = zero_depth_lift(joints2d.to(lifted.dtype))
    out[..., 2] = lifted[..., 2] - lifted[..., :1, 2]
    return out


@torch.no_grad()
def lift_clip(model, trajectory: Tensor, limbs: Tensor, skeleton: Skeleton, *,
              mirror_average: bool = False) -> Tensor:
    """(T, J, 3) camera-frame joints lifted from one 2D clip, trajectory (T, 2), limbs (T, K, 2).

    ``mirror_average``: also lift the clip's mirror image (:func:`mirror_motion`),
    mirror that lift back and average the two, the flip test-time augmentation of
    2D-to-3D lifting (VideoPose3D). A mirrored body is a valid body, so both are fair guesses.
    Inputs may be on any device: the model reads them on its own; the result is on the CPU.
    """
    n = trajectory.shape[0]
    dev = model_device(model)
    out = model(pad_frames(trajectory[None].to(dev), model.downsampling),
                pad_frames(limbs[None].to(dev), model.downsampling))
    joints = from_free3d(out.trajectory, out.limbs, skeleton)[0, :n].cpu().double()
    if not mirror_average:
        return joints
    flip_traj, flip_limbs = mirror_motion(trajectory, limbs, skeleton)
    back = lift_clip(model, flip_traj, flip_limbs, skeleton)[:, skeleton.mirror_indices]
    return (joints + back * back.new_tensor([-1.0, 1.0, 1.0])) / 2


@torch.no_grad()
def lift_with_model(model, cfg, data: str | Path, clip_id: str, skeleton, *,
                    keep_2d: bool = False, rigid: bool = False,
                    mirror_average: bool = False) -> np.ndarray:
    """(T, J, 3) world-frame joints from a trained MotionLifter for one clip.

    ``keep_2d``: take only depth from the model, x and y from the clip's 2D
    (:func:`keep_observed_2d`; ML-RQ and other 2D-input lifters only).
    ``rigid``: the clip's 2D with depth sized by its limb lengths and signed by the model
    (:func:`free3d.rigid_depth.rigid_lift`; 2D-input lifters only).
    ``mirror_average``: average with the lift of the mirrored clip (:func:`lift_clip`).
    """
    if getattr(model, "input_dim", 2) == 3:  # MoMask's 3D RVQ-VAE: reconstruction, not lifting
        j3 = torch.from_numpy(load_motion3d(data, clip_id)).float()[None]
        traj, limbs = to_free3d(j3.to(model_device(model)), skeleton)
        n = traj.shape[1]
        out = model(pad_frames(traj, model.downsampling), pad_frames(limbs, model.downsampling))
        return from_free3d(out.trajectory, out.limbs, skeleton)[0, :n].cpu().double().numpy()
    clip = load_clip2d(data, clip_id)
    traj, limbs = torch.from_numpy(clip.trajectory), torch.from_numpy(clip.limbs)
    cam_joints = lift_clip(model, traj, limbs, skeleton, mirror_average=mirror_average)
    if rigid:
        limbs3 = rigid_lift(limbs.double(), to_free3d(cam_joints, skeleton).limbs, skeleton)
        cam_joints = from_free3d(torch.nn.functional.pad(traj.double(), (0, 1)), limbs3, skeleton)
    elif keep_2d:
        cam_joints = keep_observed_2d(cam_joints, from_free3d(traj, limbs, skeleton).double())
    return camera_to_world(cam_joints.numpy(), load_camera(data, clip_id))


def evaluate_lifting(data: str | Path, *, model_path: str | Path | None = None,
                     reference: str | None = None, split: str = "test",
                     progress: bool = True, keep_2d: bool = False, rigid: bool = False,
                     mirror_average: bool = False, device: str | torch.device = "auto") -> dict:
    """Scores of a trained run (``model_path``) or a trivial ``reference`` on a split.

    ``keep_2d``: score the model's depth on the observed 2D; ``rigid``: the observed 2D
    with rigid-skeleton depth signed by the model; ``mirror_average``: average each lift
    with that of the mirrored clip (see :func:`lift_with_model`). ``device``: where the
    model lifts (references compute on the CPU).
    """
    if keep_2d and rigid:
        raise ValueError("keep_2d and rigid are two ways to score the observed 2D; give one")
    if (model_path is None) == (reference is None):
        raise ValueError("give exactly one of a model run folder or a reference "
                         f"({', '.join(REFERENCES)})")
    device = resolve_device(device)
    skeleton = get_skeleton(read_meta(data)["skeleton"])
    require_3d(data, "eval lift (MPJPE against the 3D)")
    ids = read_split(data, split)
    model = cfg = None
    if model_path is not None:
        model, cfg, model_skel = load_autoencoder(model_path)
        model.to(device)
        if model_skel.name != skeleton.name:
            raise ValueError(f"{model_path} is for skeleton {model_skel.name}; the data is "
                             f"{skeleton.name}")
        if cfg["stage"] == "prior":
            raise ValueError(f"{model_path} is a 2D prior; it does not lift to 3D")
        name = f"{cfg['stage']}:{Path(model_path).name}"
        for flag, on, label in (("--keep-2d", keep_2d, " (observed 2D + its depth)"),
                                ("--rigid-depth", rigid, " (observed 2D + rigid depth, its signs)"),
                                ("--mirror-average", mirror_average, " + mirror average")):
            if on and getattr(model, "input_dim", 2) != 2:
                raise ValueError(f"{model_path} reads 3D; {flag} needs a lifter from 2D")
            name += label if on else ""
    elif reference == "mean-pose":
        train3d = load_split3d(data, "train")
        mean_pose = torch.from_numpy(np.concatenate(
            [j - j[:, :1] for j in train3d.values()]).mean(0))
        name = "reference:mean-pose"
    elif reference in ("zero-depth", "rigid-random-signs"):
        name = f"reference:{reference}"
        coin = torch.Generator().manual_seed(0)
    else:
        raise ValueError(f"unknown reference {reference!r}; choose from {', '.join(REFERENCES)}")

    per_frame_mpjpe, per_frame_pa, paths = [], [], PathScores()
    for cid in tqdm(ids, desc=f"lifting {split}", unit="clip", disable=not progress):
        target = torch.from_numpy(load_motion3d(data, cid)).double()
        if model is not None:
            with tf32_scope(device, enabled=False):
                pred = torch.from_numpy(lift_with_model(model, cfg, data, cid, skeleton, keep_2d=keep_2d,
                                                         rigid=rigid, mirror_average=mirror_average))
        elif reference == "mean-pose":
            pred = mean_pose_lift(mean_pose, target.shape[0]).double()
        else:
            clip = load_clip2d(data, cid)
            traj, limbs = torch.from_numpy(clip.trajectory).double(), torch.from_numpy(clip.limbs).double()
            if reference == "rigid-random-signs":  # what --rigid-depth gives without a lifter
                signs = torch.randint(0, 2, limbs.shape[:2], generator=coin).double() * 2 - 1
                limbs = rigid_depth(limbs, signs, clip_limb_lengths(limbs, skeleton))
                cam = from_free3d(torch.nn.functional.pad(traj, (0, 1)), limbs, skeleton)
            else:
                cam = zero_depth_lift(from_free3d(traj, limbs, skeleton))
            pred = torch.from_numpy(camera_to_world(cam.numpy(), load_camera(data, cid)))
        paths.add(pred.numpy(), target.numpy(), load_camera(data, cid))
        per_frame_mpjpe.append(mpjpe(pred, target, reduction="none"))
        per_frame_pa.append(pa_mpjpe(pred, target, reduction="none"))
    frame_mpjpe, frame_pa = torch.cat(per_frame_mpjpe), torch.cat(per_frame_pa)
    return {"model": name, "split": split, "clips": len(ids), "frames": int(frame_mpjpe.numel()),
            "mpjpe_mm": round(float(frame_mpjpe.mean()), 2),
            "pa_mpjpe_mm": round(float(frame_pa.mean()), 2), **paths.result()}
