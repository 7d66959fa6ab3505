"""Rigid-skeleton depth (our addition, not in the paper): sizes from limb lengths, signs
from a lifter.

Under weak perspective a limb of length L whose image is l long lies |depth| =
sqrt(L^2 - |l|^2) off the image plane (Taylor, "Reconstruction of articulated objects
from point correspondences in a single uncalibrated image", CVIU 2000). Only the sign
of that depth is ambiguous, and a 2D-to-3D lifter trained with 3D-free losses gets the
signs right far more often than the size (``benchmarks/lift_depth_checks.py``). So:
keep the observed 2D, take each limb's sign from the lifter and its size from the
clip's limb lengths.

The lengths come from the clip's 2D alone: per limb, its longest image over the clip (a
limb that turns through the image plane shows its full length; never more, without
keypoint noise), and a left limb and its right twin share the longer of the two. The
lifter's own lengths are not used: they carry its bias in depth (ML-RQ's are too short,
the 3D-supervised lifter's too long). Nothing here reads 3D data or a skeleton template.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .skeleton import Skeleton


def clip_limb_lengths(limbs2d: Tensor, skeleton: Skeleton) -> Tensor:
    """(K,) limb lengths of one clip from its 2D limbs (T, K, 2): each limb's longest image
    over the clip, then the longer of each left-right pair."""
    if limbs2d.ndim != 3 or limbs2d.shape[-1] != 2:
        raise ValueError(f"expected the 2D limbs (T, K, 2) of one clip, got {tuple(limbs2d.shape)}")
    length = limbs2d.norm(dim=-1).amax(0)
    twin = torch.as_tensor(skeleton.mirror_indices[1:] - 1, device=length.device)
    return torch.maximum(length, length[twin])


def rigid_depth(limbs2d: Tensor, signs: Tensor, lengths: Tensor) -> Tensor:
    """(T, K, 3) limbs: the 2D limbs (T, K, 2) with depth sqrt(L^2 - |l|^2) of (K,) (or
    per-frame (T, K)) lengths, signed by (T, K) signs. A limb whose image is longer than
    its length gets depth 0."""
    size = (lengths.square() - limbs2d.square().sum(-1)).clamp_min(0).sqrt()
    return torch.cat([limbs2d, (torch.sign(signs).to(size.dtype) * size)[..., None]], dim=-1)


def rigid_lift(limbs2d: Tensor, lifted_limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(T, K, 3) limbs: the observed 2D (T, K, 2), depth sized by :func:`clip_limb_lengths`
    and signed by a lift of it (T, K, 3)."""
    if lifted_limbs.shape[:-1] != limbs2d.shape[:-1]:
        raise ValueError(f"the lift {tuple(lifted_limbs.shape)} does not match the 2D limbs "
                         f"{tuple(limbs2d.shape)}")
    return rigid_depth(limbs2d, lifted_limbs[..., 2], clip_limb_lengths(limbs2d, skeleton))
