"""Rigid-skeleton depth (our addition, not in the paper): sizes from limb lengths, signs
from a lifter.

Under weak perspective a limb of length L whose image is l long lies |depth| =
sqrt(L^2 - |l|^2) off the image plane (Taylor, "Reconstruction of articulated objects
from point correspondences in a single uncalibrated image", CVIU 2000). Only the sign
of that depth is ambiguous, and a 2D-to-3D lifter trained with 3D-free losses gets the
signs right far more often than the size (``benchmarks/lift_depth_checks.py``). So:
keep the observed 2D, take each limb's sign from the lifter and its size from the
clip's limb lengths.

The lengths come from the clip itself, 3D-free: per limb, the longer of its longest
image over the clip (a limb that turns through the image plane shows its full length)
and the lifter's median 3D length; a left limb and its right twin share the longer of
the two. Nothing here reads 3D data or a skeleton template.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .skeleton import Skeleton


def clip_limb_lengths(limbs2d: Tensor, lifted_limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(K,) limb lengths of one clip from its 2D limbs (T, K, 2) and a lift (T, K, 3)."""
    if limbs2d.ndim != 3 or limbs2d.shape[-1] != 2 or lifted_limbs.shape[:-1] != limbs2d.shape[:-1]:
        raise ValueError(f"expected 2D limbs (T, K, 2) and lifted limbs (T, K, 3) of one clip, "
                         f"got {tuple(limbs2d.shape)} and {tuple(lifted_limbs.shape)}")
    seen = limbs2d.norm(dim=-1).amax(0)
    lifted = lifted_limbs.norm(dim=-1).median(0).values
    length = torch.maximum(seen, lifted.to(seen.dtype))
    twin = torch.as_tensor(skeleton.mirror_indices[1:] - 1, device=length.device)
    return torch.maximum(length, length[twin])


def rigid_depth(limbs2d: Tensor, lifted_limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(T, K, 3) limbs: the observed 2D, depth sized by :func:`clip_limb_lengths` and signed
    by the lift. A limb whose image is longer than its length gets depth 0."""
    length = clip_limb_lengths(limbs2d, lifted_limbs, skeleton)
    size = (length.square() - limbs2d.square().sum(-1)).clamp_min(0).sqrt()
    depth = torch.sign(lifted_limbs[..., 2]).to(size.dtype) * size
    return torch.cat([limbs2d, depth[..., None]], dim=-1)
