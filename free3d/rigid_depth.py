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


def clip_limb_lengths(limbs2d: Tensor, skeleton: Skeleton, lifted_limbs: Tensor | None = None
                      ) -> Tensor:
    """(K,) limb lengths of one clip from its 2D limbs (T, K, 2) and, if given, a lift of
    it (T, K, 3): per limb the longer of its longest image and the lift's median length,
    then the longer of each left-right pair."""
    if limbs2d.ndim != 3 or limbs2d.shape[-1] != 2:
        raise ValueError(f"expected the 2D limbs (T, K, 2) of one clip, got {tuple(limbs2d.shape)}")
    length = limbs2d.norm(dim=-1).amax(0)
    if lifted_limbs is not None:
        if lifted_limbs.shape[:-1] != limbs2d.shape[:-1]:
            raise ValueError(f"the lift {tuple(lifted_limbs.shape)} does not match the 2D limbs "
                             f"{tuple(limbs2d.shape)}")
        length = torch.maximum(length, lifted_limbs.norm(dim=-1).median(0).values.to(length.dtype))
    twin = torch.as_tensor(skeleton.mirror_indices[1:] - 1, device=length.device)
    return torch.maximum(length, length[twin])


def rigid_depth(limbs2d: Tensor, signs: Tensor, lengths: Tensor) -> Tensor:
    """(T, K, 3) limbs: the 2D limbs (T, K, 2) with depth sqrt(L^2 - |l|^2) of (K,) lengths,
    signed by (T, K) signs. A limb whose image is longer than its length gets depth 0."""
    size = (lengths.square() - limbs2d.square().sum(-1)).clamp_min(0).sqrt()
    return torch.cat([limbs2d, (torch.sign(signs).to(size.dtype) * size)[..., None]], dim=-1)


def rigid_lift(limbs2d: Tensor, lifted_limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(T, K, 3) limbs: the observed 2D, depth sized by :func:`clip_limb_lengths` and signed
    by the lift (T, K, 3)."""
    lengths = clip_limb_lengths(limbs2d, skeleton, lifted_limbs)
    return rigid_depth(limbs2d, lifted_limbs[..., 2], lengths)
