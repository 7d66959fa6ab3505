"""Per-frame feature vectors that the convolutional models read and write.

Two representations (paper table 5): ``limbs`` (Free3D's: trajectory + limb vectors) and
``joints`` (the "w.j.c" ablation: joint coordinates). Trajectories are taken relative to
the first frame of the window, so a window's features do not depend on where it starts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..representation import from_free3d, limb_vectors
from ..skeleton import Skeleton

REPRESENTATIONS = ("limbs", "joints")


def feature_dim(skeleton: Skeleton, representation: str, dim: int) -> int:
    if representation == "limbs":
        return dim + skeleton.num_limbs * dim
    if representation == "joints":
        return skeleton.num_joints * dim
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


def encode_motion(trajectory: Tensor, limbs: Tensor, skeleton: Skeleton, representation: str) -> Tensor:
    """(B, T, D) trajectory + (B, T, K, D) limbs -> (B, T, F) features."""
    traj = trajectory - trajectory[:, :1]
    if representation == "limbs":
        return torch.cat([traj, limbs.flatten(-2)], dim=-1)
    if representation == "joints":
        return from_free3d(traj, limbs, skeleton).flatten(-2)
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


def decode_motion(features: Tensor, skeleton: Skeleton, representation: str, dim: int
                  ) -> tuple[Tensor, Tensor]:
    """(B, T, F) features -> trajectory (B, T, D) and limbs (B, T, K, D)."""
    b, t, _ = features.shape
    if representation == "limbs":
        return features[..., :dim], features[..., dim:].reshape(b, t, skeleton.num_limbs, dim)
    if representation == "joints":
        joints = features.reshape(b, t, skeleton.num_joints, dim)
        return joints[..., 0, :], limb_vectors(joints, skeleton)
    raise ValueError(f"unknown representation {representation!r}; choose from {REPRESENTATIONS}")


class Standardizer(nn.Module):
    """Per-feature mean/std, fitted once on training data and saved with the weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        flat = features.reshape(-1, features.shape[-1])
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0).clamp_min(1e-3))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean
