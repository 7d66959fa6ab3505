"""Per-frame feature vectors that the convolutional models read and write.

Three representations: ``limbs`` (Free3D's, paper 4.1: trajectory + limb vectors),
``joints`` (paper table 5's "w.j.c" ablation: joint coordinates) and ``limbs-velocity``
(ours: limb vectors + the root's displacement since the previous frame, as MoMask's
HumanML3D features carry root velocity). Trajectories are taken relative to the first
frame of the window, so a window's features do not depend on where it starts.

Why velocity: a position trajectory grows with the clip (a 10 s walk goes 13 m) while
training windows are 2 to 3 s long, and a quantised bottleneck cannot carry positions it
never saw; a convolutional decoder cannot integrate a depth drift over more frames than it
sees. Per-frame displacements look the same at any time of any clip, and the decoder's
output is integrated (a cumulative sum) back into the trajectory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..representation import from_free3d, limb_vectors
from ..skeleton import Skeleton

REPRESENTATIONS = ("limbs", "joints", "limbs-velocity")


def feature_dim(skeleton: Skeleton, representation: str, dim: int) -> int:
    if representation in ("limbs", "limbs-velocity"):
        return dim + skeleton.num_limbs * dim
    if representation == "joints":
        return skeleton.num_joints * dim
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


def encode_motion(trajectory: Tensor, limbs: Tensor, skeleton: Skeleton, representation: str) -> Tensor:
    """(B, T, D) trajectory + (B, T, K, D) limbs -> (B, T, F) features."""
    traj = trajectory - trajectory[:, :1]
    if representation == "limbs":
        return torch.cat([traj, limbs.flatten(-2)], dim=-1)
    if representation == "limbs-velocity":  # frame 0 moves by 0
        return torch.cat([torch.diff(traj, dim=1, prepend=traj[:, :1]), limbs.flatten(-2)], dim=-1)
    if representation == "joints":
        return from_free3d(traj, limbs, skeleton).flatten(-2)
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


def decode_motion(features: Tensor, skeleton: Skeleton, representation: str, dim: int
                  ) -> tuple[Tensor, Tensor]:
    """(B, T, F) features -> trajectory (B, T, D) and limbs (B, T, K, D)."""
    b, t, _ = features.shape
    if representation == "limbs":
        return features[..., :dim], features[..., dim:].reshape(b, t, skeleton.num_limbs, dim)
    if representation == "limbs-velocity":
        return (torch.cumsum(features[..., :dim], dim=1),
                features[..., dim:].reshape(b, t, skeleton.num_limbs, dim))
    if representation == "joints":
        joints = features.reshape(b, t, skeleton.num_joints, dim)
        return joints[..., 0, :], limb_vectors(joints, skeleton)
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


def floored_std(x: Tensor, relative_floor: float = 0.0) -> Tensor:
    """Per-feature std of (N, F) ``x``, each at least ``relative_floor`` x the median feature's
    (and 1e-3).

    Why a relative floor: with the 2D normalised to a fixed torso length, the spine's
    vertical components vary by 2 to 5 mm over a whole dataset, against 40 to 180 mm for the
    limbs. Divided by their own std, a few millimetres of change in a view that ML-RQ
    training feeds back into a network (Lrec, Lcycle, Lfeat) arrive as tens of standard
    deviations, and L2D weighs one spine coordinate like thousands of arm coordinates.
    """
    std = x.std(0)
    floor = max(1e-3, relative_floor * float(std.median())) if relative_floor > 0 else 1e-3
    return std.clamp_min(floor)


class Standardizer(nn.Module):
    """Per-feature mean/std, fitted once on training data and saved with the weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor, *, relative_floor: float = 0.0) -> None:
        """``relative_floor``: see :func:`floored_std` (0: a 1e-3 floor only)."""
        flat = features.reshape(-1, features.shape[-1])
        self.mean.copy_(flat.mean(0))
        self.std.copy_(floored_std(flat, relative_floor))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean
