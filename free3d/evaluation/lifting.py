"""Lifting quality: MPJPE and PA-MPJPE against 3D ground truth, plus trivial references.

Joints are (..., T, J, 3) in metres, in the skeleton's joint order; the root joint
(pelvis) is index 0. Every metric is reported in millimetres.

* :func:`mpjpe` subtracts each frame's root joint from prediction and target, then
  averages the Euclidean joint distances. It removes translation only: a prediction in
  another orientation (or at another scale) than the target is penalised for it.
* :func:`pa_mpjpe` first maps each predicted frame onto its target with the best
  similarity transform (scale, proper rotation, translation; orthogonal Procrustes),
  so it measures pose shape only. Reflections are not allowed (det R = +1): a mirrored
  pose is an error, not a match.

Padded batches pass ``mask`` (..., T) bool, True for valid frames. Invalid frames never
reach the arithmetic (they are replaced before any product or SVD), so NaN or inf
garbage in padding cannot leak into the result.

:func:`zero_depth_lift` and :func:`mean_pose_lift` are the two references that give the
numbers a scale: a lifter should beat both, on both metrics.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Reduction = Literal["mean", "none"]

_MM = 1000.0
_EPS = 1e-12


def _as_float(x: Tensor) -> Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _prepare(pred: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check shapes, broadcast, and zero out invalid frames of both inputs."""
    pred, target = _as_float(pred), _as_float(target)
    if pred.ndim < 2 or pred.shape[-1] != 3 or target.ndim < 2 or target.shape[-1] != 3:
        raise ValueError(f"joints must be (..., T, J, 3); got {tuple(pred.shape)} and {tuple(target.shape)}")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    pred, target = torch.broadcast_tensors(pred.to(dtype), target.to(dtype))
    if mask is None:
        return pred, target, None
    mask = torch.as_tensor(mask, device=pred.device)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool (..., T); got {mask.dtype}")
    try:
        frames = torch.broadcast_shapes(mask.shape, pred.shape[:-2])
    except RuntimeError:
        frames = None
    if frames != pred.shape[:-2]:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit joints {tuple(pred.shape)}")
    mask = mask.expand(frames)
    keep = mask[..., None, None]
    zero = pred.new_zeros(())
    return torch.where(keep, pred, zero), torch.where(keep, target, zero), mask


def _reduce(per_frame: Tensor, mask: Tensor | None, reduction: Reduction) -> Tensor:
    if reduction == "none":
        if mask is None:
            return per_frame
        return torch.where(mask, per_frame, per_frame.new_full((), float("nan")))
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")
    if mask is None:
        return per_frame.mean()
    valid = mask.to(per_frame.dtype)
    # No valid frame at all gives 0 / 0 = NaN, deliberately.
    return (per_frame * valid).sum() / valid.sum()


def mpjpe(
    pred: Tensor,
    target: Tensor,
    *,
    root: int = 0,
    mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Root-aligned mean per-joint position error, in millimetres.

    Each frame's ``root`` joint is subtracted from prediction and target, then the
    Euclidean joint distances are averaged over joints. Only translation is removed:
    no rotation, no scale. ``pred`` and ``target`` (..., T, J, 3) in metres broadcast
    against each other (a lone pose (J, 3) counts as one frame).

    ``mask`` (..., T) bool keeps the valid frames of a padded batch. ``reduction="mean"``
    returns a scalar tensor, the mean over all valid frames (each frame weighs the same;
    NaN if there is none); ``"none"`` returns per-frame errors (..., T), NaN at invalid
    frames.
    """
    pred, target, mask = _prepare(pred, target, mask)
    pred = pred - pred[..., root : root + 1, :]
    target = target - target[..., root : root + 1, :]
    per_frame = (pred - target).norm(dim=-1).mean(dim=-1) * _MM
    return _reduce(per_frame, mask, reduction)


def procrustes_align(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Best similarity transform of each frame of ``pred`` onto ``target``.

    Minimises sum_j |s R p_j + t - q_j|^2 over scale s, rotation R (det R = +1) and
    translation t, per frame (orthogonal Procrustes / Umeyama, via a batched SVD of the
    3x3 cross-covariance). When the unconstrained optimum is a reflection the last
    singular direction is flipped, so R is always a proper rotation.

    Returns ``(aligned, scale, rotation, translation)``: aligned (..., J, 3) =
    s * pred @ R^T + t, scale (...), rotation (..., 3, 3) acting on column vectors,
    translation (..., 3). A frame whose predicted joints all coincide gets scale 0.
    """
    pred, target = _as_float(pred), _as_float(target)
    dtype = torch.promote_types(pred.dtype, target.dtype)
    pred, target = torch.broadcast_tensors(pred.to(dtype), target.to(dtype))
    mu_p = pred.mean(dim=-2, keepdim=True)
    mu_q = target.mean(dim=-2, keepdim=True)
    p = pred - mu_p
    q = target - mu_q
    # Row vectors: find Q (= R^T) maximising tr(Q^T p^T q); p^T q = U S V^T, Q = U D V^T.
    cov = p.transpose(-1, -2) @ q
    u, s, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    flip = torch.ones_like(s)
    flip = torch.cat([flip[..., :2], d[..., None]], dim=-1)
    q_rot = (u * flip[..., None, :]) @ vh
    rotation = q_rot.transpose(-1, -2)
    var_p = p.square().sum(dim=(-1, -2))
    scale = (s * flip).sum(dim=-1) / var_p.clamp_min(_EPS)
    translation = mu_q[..., 0, :] - scale[..., None] * (mu_p @ q_rot)[..., 0, :]
    aligned = scale[..., None, None] * (pred @ q_rot) + translation[..., None, :]
    return aligned, scale, rotation, translation


def pa_mpjpe(
    pred: Tensor,
    target: Tensor,
    *,
    mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Procrustes-aligned MPJPE, in millimetres.

    Each predicted frame is mapped onto its target frame by the least-squares similarity
    transform (scale, proper rotation, translation; see :func:`procrustes_align`), then
    the Euclidean joint distances are averaged. Global orientation, position and body
    size are thus forgiven; mirroring is not. ``mask`` and ``reduction`` as in
    :func:`mpjpe`.
    """
    pred, target, mask = _prepare(pred, target, mask)
    aligned = procrustes_align(pred, target)[0]
    per_frame = (aligned - target).norm(dim=-1).mean(dim=-1) * _MM
    return _reduce(per_frame, mask, reduction)


def lifting_errors(pred: Tensor, target: Tensor, *, mask: Tensor | None = None) -> dict[str, float]:
    """``{"mpjpe_mm": ..., "pa_mpjpe_mm": ...}`` over all valid frames (root joint 0)."""
    with torch.no_grad():
        return {
            "mpjpe_mm": float(mpjpe(pred, target, mask=mask)),
            "pa_mpjpe_mm": float(pa_mpjpe(pred, target, mask=mask)),
        }


# ---------------------------------------------------------------------------------------
# trivial references


def zero_depth_lift(joints2d: Tensor) -> Tensor:
    """Reference lift that knows no depth: (..., T, J, 2) -> (..., T, J, 3), z = 0.

    x and y are copied from the 2D joints, which are in the *camera* frame (x right,
    y up; see :mod:`free3d.representation`), while the 3D target is in the *world*
    frame. So:

    * its MPJPE, which root-aligns but never rotates, pays for the camera's viewing
      rotation (azimuth, elevation) as well as for the missing depth, and for any
      mismatch between the 2D scale and metres. It is the error of taking the 2D view
      literally as 3D.
    * its PA-MPJPE removes rotation, scale and translation, and is left with the
      missing depth alone: the fair "no lifting at all" reference for PA-MPJPE.

    Compare a lifter against it on the same metric only.
    """
    joints2d = _as_float(joints2d)
    if joints2d.ndim < 3 or joints2d.shape[-1] != 2:
        raise ValueError(f"joints2d must be (..., T, J, 2); got {tuple(joints2d.shape)}")
    return torch.cat([joints2d, joints2d.new_zeros(joints2d.shape[:-1] + (1,))], dim=-1)


def mean_root_relative_pose(joints: Tensor, *, root: int = 0) -> Tensor:
    """The mean root-relative pose (J, 3) of training joints (..., T, J, 3), for
    :func:`mean_pose_lift`."""
    joints = _as_float(joints)
    rel = joints - joints[..., root : root + 1, :]
    return rel.reshape(-1, *joints.shape[-2:]).mean(dim=0)


def mean_pose_lift(mean_pose: Tensor, num_frames: int) -> Tensor:
    """Reference lift that ignores its input: the mean pose (J, 3), repeated (T, J, 3).

    ``mean_pose`` is the root-relative mean training pose in the world frame (see
    :func:`mean_root_relative_pose`); a batch of poses (..., J, 3) gives (..., T, J, 3).
    Under MPJPE (root alignment only) it is scored in the target's world orientation, so
    it pays for every facing other than the mean pose's; under PA-MPJPE orientation and
    size are forgiven and it is the error of predicting one fixed body posture.
    """
    mean_pose = _as_float(mean_pose)
    if mean_pose.ndim < 2 or mean_pose.shape[-1] != 3:
        raise ValueError(f"mean_pose must be (J, 3); got {tuple(mean_pose.shape)}")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0; got {num_frames}")
    shape = mean_pose.shape[:-2] + (num_frames,) + mean_pose.shape[-2:]
    return mean_pose.unsqueeze(-3).expand(shape).clone()
