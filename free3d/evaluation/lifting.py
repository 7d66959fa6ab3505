"""Lifting errors in millimetres: MPJPE (root-aligned) and PA-MPJPE (after the best
similarity transform, per frame), plus trivial references that give them meaning.

Inputs are joints (..., T, J, 3) in metres; ``mask`` (..., T) marks valid frames of
padded batches. ``reduction="none"`` returns per-frame errors (..., T).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _reduce(per_frame: Tensor, mask: Tensor | None, reduction: str) -> Tensor:
    if reduction == "none":
        return per_frame
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if mask is None:
        return per_frame.mean()
    m = mask.to(per_frame.dtype)
    return (per_frame * m).sum() / m.sum().clamp_min(1)


def mpjpe(pred: Tensor, target: Tensor, *, root: int = 0, mask: Tensor | None = None,
          reduction: str = "mean") -> Tensor:
    """Mean per-joint position error after subtracting each frame's root joint, in mm.

    Global heading is not removed: a pose facing the wrong way is an error.
    """
    p = pred - pred[..., root:root + 1, :]
    t = target - target[..., root:root + 1, :]
    return _reduce((p - t).norm(dim=-1).mean(-1) * 1000.0, mask, reduction)


def procrustes_align(pred: Tensor, target: Tensor) -> Tensor:
    """pred (..., J, 3) moved by the similarity transform (scale, rotation without
    reflection, translation) that brings it closest to target in the least-squares sense."""
    mu_p, mu_t = pred.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    u, s, vh = torch.linalg.svd(p.transpose(-1, -2) @ t)  # (..., 3, 3)
    d = torch.sign(torch.linalg.det(u @ vh))  # -1: the best orthogonal map is a reflection
    sign = torch.ones_like(s)
    sign[..., -1] = d
    rot = u @ torch.diag_embed(sign) @ vh  # p @ rot ~ t
    scale = (s * sign).sum(-1) / p.square().sum((-1, -2)).clamp_min(1e-12)
    return scale[..., None, None] * p @ rot + mu_t


def pa_mpjpe(pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
             reduction: str = "mean") -> Tensor:
    """MPJPE after per-frame Procrustes alignment (scale, rotation, translation), in mm."""
    aligned = procrustes_align(pred, target)
    return _reduce((aligned - target).norm(dim=-1).mean(-1) * 1000.0, mask, reduction)


def lifting_errors(pred: Tensor, target: Tensor, *, mask: Tensor | None = None) -> dict[str, float]:
    return {"mpjpe_mm": float(mpjpe(pred, target, mask=mask)),
            "pa_mpjpe_mm": float(pa_mpjpe(pred, target, mask=mask))}


def zero_depth_lift(joints2d: Tensor) -> Tensor:
    """Trivial reference: the 2D pose in its camera frame with every depth set to 0.

    Map it to the world with the clip's camera before scoring (as lifted poses are).
    """
    return torch.cat([joints2d, torch.zeros_like(joints2d[..., :1])], dim=-1)


def mean_pose_lift(mean_pose: Tensor, num_frames: int) -> Tensor:
    """Trivial reference: the root-relative mean training pose (J, 3), every frame."""
    return mean_pose.expand(num_frames, *mean_pose.shape)
