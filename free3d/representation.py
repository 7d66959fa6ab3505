"""The Free3D motion representation (paper section 4.1) and the geometry around it.

A motion of joints (..., T, J, D), D = 3 or 2, is split into a global trajectory
tau = the root joint (..., T, D) and limb vectors v = child - parent (..., T, K, D),
K = J - 1, limb k ending at joint k + 1. (The paper's eq. 5 writes parent - child; we
keep DESIGN.md's child - parent, which only flips a sign.) Because joints = tau +
A v with A the skeleton's 0/1 chain matrix, the round trip is exact.

Everything here is batched torch and differentiable, for the losses of paper eq. 10-15.

Camera convention (weak perspective, Phi): a rotation R maps world to camera
coordinates (x right, y up, z towards the camera); Phi drops z, scales and translates.
A camera at azimuth 0 and elevation 0 sits on +Z and sees the front of a canonical body.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .distributed import rand_rows
from .skeleton import Skeleton

_EPS = 1e-8


class Free3DMotion(NamedTuple):
    trajectory: Tensor  # (..., T, D) root position
    limbs: Tensor  # (..., T, K, D) child - parent


def _chain(skeleton: Skeleton, like: Tensor) -> Tensor:
    return torch.from_numpy(skeleton.chain_matrix()).to(dtype=like.dtype, device=like.device)


def _check_joints(joints: Tensor, skeleton: Skeleton) -> None:
    if joints.ndim < 2 or joints.shape[-2] != skeleton.num_joints:
        raise ValueError(
            f"expected joints (..., {skeleton.num_joints}, D) for skeleton {skeleton.name!r}, "
            f"got shape {tuple(joints.shape)}")


def limb_vectors(joints: Tensor, skeleton: Skeleton) -> Tensor:
    """(..., J, D) joints -> (..., K, D) limb vectors, child minus parent."""
    _check_joints(joints, skeleton)
    children = joints[..., 1:, :]
    parents = joints[..., torch.as_tensor(skeleton.limb_parents, device=joints.device), :]
    return children - parents


def to_free3d(joints: Tensor, skeleton: Skeleton) -> Free3DMotion:
    """Joints -> (trajectory, limb vectors) (paper eq. 6 and 7)."""
    _check_joints(joints, skeleton)
    return Free3DMotion(joints[..., 0, :], limb_vectors(joints, skeleton))


def from_free3d(trajectory: Tensor, limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(trajectory, limb vectors) -> joints: root plus the limbs along each chain."""
    if limbs.shape[-2] != skeleton.num_limbs:
        raise ValueError(
            f"expected limbs (..., {skeleton.num_limbs}, D) for skeleton {skeleton.name!r}, "
            f"got shape {tuple(limbs.shape)}")
    offsets = torch.einsum("jk,...kd->...jd", _chain(skeleton, limbs), limbs)
    return trajectory.unsqueeze(-2) + offsets


def mirror_motion(trajectory: Tensor, limbs: Tensor, skeleton: Skeleton) -> Free3DMotion:
    """The motion seen in a mirror: x negated, left and right swapped (2D or 3D).

    A mirrored body is a valid body (of a mirrored actor), so this doubles what a 2D
    lifter can learn from, and a lifter can be asked about both (flip test-time
    augmentation). Limb k ends at joint k + 1; its mirror ends at that joint's mirror.
    """
    sign = torch.ones(limbs.shape[-1], dtype=limbs.dtype, device=limbs.device)
    sign[0] = -1.0
    order = torch.as_tensor(skeleton.mirror_indices[1:] - 1, device=limbs.device)
    return Free3DMotion(trajectory * sign, limbs[..., order, :] * sign)


# ---------------------------------------------------------------------------------------
# rotations


def rotation_x(angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([o, z, z, z, c, -s, z, s, c], dim=-1).reshape(*angle.shape, 3, 3)


def rotation_y(angle: Tensor) -> Tensor:
    """Rotation about the vertical axis; positive angles turn +Z towards +X."""
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([c, z, s, z, o, z, -s, z, c], dim=-1).reshape(*angle.shape, 3, 3)


def rotation_z(angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=-1).reshape(*angle.shape, 3, 3)


def camera_rotation(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """World -> camera rotation for a camera at (azimuth, elevation), in radians.

    The camera sits on the direction (sin az cos el, sin el, cos az cos el) from the
    subject and looks at it; positive elevation looks down from above.
    """
    return rotation_x(elevation) @ rotation_y(-azimuth)


def random_view_rotations(
    n: int,
    *,
    max_tilt_deg: float = 10.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """(n, 3, 3) random rotations: any turn about the vertical axis, then a small tilt.

    These are the R of the paper's Lrec (eq. 11): new viewpoints of a predicted 3D
    motion whose projections should still look like real 2D motion.
    """
    # under DDP, the rotations this process's rows would get in a single process
    u = rand_rows(n, 3, generator=generator, dtype=dtype, device=device)
    yaw = u[:, 0] * 2 * math.pi
    tilt = math.radians(max_tilt_deg)
    pitch = (2 * u[:, 1] - 1) * tilt
    roll = (2 * u[:, 2] - 1) * tilt
    return rotation_z(roll) @ rotation_x(pitch) @ rotation_y(yaw)


def rotate(points: Tensor, rotation: Tensor) -> Tensor:
    """Apply (..., 3, 3) rotations to (..., N, 3) points or vectors.

    The rotation broadcasts over every axis between its batch axes and the last two of
    ``points``; pass (B, 3, 3) with points (B, T, J, 3) by unsqueezing to (B, 1, 3, 3).
    """
    return points @ rotation.transpose(-1, -2)


def project(
    points: Tensor,
    rotation: Tensor,
    scale: Tensor | float = 1.0,
    translation: Tensor | float = 0.0,
) -> Tensor:
    """Weak-perspective projection Phi: rotate into the camera, drop depth, scale, shift.

    For limb vectors (directions) leave ``translation`` at 0: translation only moves points.
    """
    cam = rotate(points, rotation)[..., :2]
    scale = torch.as_tensor(scale, dtype=cam.dtype, device=cam.device)
    return cam * scale + translation


# ---------------------------------------------------------------------------------------
# orientation (paper eq. 12 and 13)


def body_orientation(limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """Unit body-forward vector from 3D limb vectors (paper eq. 13).

    v_ori = normalise(v_rhip x v_lhip), the hip limbs pointing from the pelvis to each
    hip. For a canonical body (left = +X, facing +Z) this is +Z.
    """
    right = limbs[..., skeleton.limb("right_hip"), :]
    left = limbs[..., skeleton.limb("left_hip"), :]
    forward = torch.linalg.cross(right, left, dim=-1)
    return forward / forward.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def foot_directions(limbs: Tensor, skeleton: Skeleton) -> Tensor:
    """(..., 2, 3) ankle -> toe vectors of the left and right foot."""
    idx = [skeleton.limb("left_toe"), skeleton.limb("right_toe")]
    return limbs[..., idx, :]


def facing_direction(joints: Tensor, skeleton: Skeleton) -> Tensor:
    """Unit horizontal forward direction from hips and shoulders, as HumanML3D does.

    across = (right hip - left hip) + (right shoulder - left shoulder); forward =
    up x across. More robust than the hips alone for canonicalising whole clips.
    """
    across = (joints[..., skeleton.index("right_hip"), :] - joints[..., skeleton.index("left_hip"), :]
              + joints[..., skeleton.index("right_shoulder"), :]
              - joints[..., skeleton.index("left_shoulder"), :])
    up = torch.zeros_like(across)
    up[..., 1] = 1.0
    forward = torch.linalg.cross(up, across, dim=-1)
    forward = forward * torch.tensor([1.0, 0.0, 1.0], dtype=forward.dtype, device=forward.device)
    return forward / forward.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def heading_angle(direction: Tensor) -> Tensor:
    """Angle about +Y from +Z to a horizontal direction (positive towards +X)."""
    return torch.atan2(direction[..., 0], direction[..., 2])
