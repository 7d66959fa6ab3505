"""Canonical 3D clips (DESIGN.md section 2): metres, Y up, 20 fps, floor at y = 0,
first-frame root at x = z = 0 facing +Z, 2 to 9.8 s long."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..representation import facing_direction, from_free3d, heading_angle, to_free3d
from ..skeleton import Skeleton

FPS = 20.0
MIN_FRAMES = 40  # 2 s
MAX_FRAMES = 196  # 9.8 s; token length = frames / 4


def check_clip(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``joints`` as float64 (T, J, 3) with T >= 2, or a ValueError saying what it is."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3) or len(joints) < 2:
        raise ValueError(f"expected a clip (T >= 2, {skeleton.num_joints}, 3); got {joints.shape}")
    return joints


def canonicalize(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Put a (T, J, 3) clip on the floor, its first-frame root at the origin, facing +Z."""
    joints = np.asarray(joints, dtype=np.float64)
    out = joints - np.array([joints[0, 0, 0], joints[..., 1].min(), joints[0, 0, 2]])
    forward = facing_direction(torch.from_numpy(out[0]), skeleton)
    angle = -float(heading_angle(forward))  # turn the first-frame heading onto +Z
    c, s = math.cos(angle), math.sin(angle)
    rot_y = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return out @ rot_y.T


def clip_windows(
    n_frames: int, *, min_frames: int = MIN_FRAMES, max_frames: int = MAX_FRAMES
) -> list[tuple[int, int]]:
    """Frame ranges [start, end) that cut a take into clips of min..max frames.

    Too short: no clip. Too long: the fewest equal pieces that fit, so no frame is lost
    and no piece is a short leftover.
    """
    if n_frames < min_frames:
        return []
    pieces = math.ceil(n_frames / max_frames)
    bounds = np.linspace(0, n_frames, pieces + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def resample_positions(
    joints: np.ndarray, src_fps: float, dst_fps: float, skeleton: Skeleton
) -> np.ndarray:
    """Resample a joint-position clip in time (for sources that have no rotations).

    Limb vectors are interpolated linearly and then rescaled to each limb's median
    length, so bones keep their length (plain position interpolation shortens them).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if abs(src_fps - dst_fps) < 1e-9:
        return joints
    n = joints.shape[0]
    n_out = int(math.floor((n - 1) * dst_fps / src_fps + 1e-6)) + 1
    src = np.arange(n_out) * (src_fps / dst_fps)
    i0 = np.clip(np.floor(src).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    a = (src - i0)[:, None, None]
    traj, limbs = to_free3d(torch.from_numpy(joints), skeleton)
    traj, limbs = traj.numpy(), limbs.numpy()
    lengths = np.median(np.linalg.norm(limbs, axis=-1), axis=0)
    new_limbs = (1 - a) * limbs[i0] + a * limbs[i1]
    norm = np.linalg.norm(new_limbs, axis=-1, keepdims=True)
    new_limbs = new_limbs / np.maximum(norm, 1e-12) * lengths[None, :, None]
    new_traj = (1 - a[:, 0]) * traj[i0] + a[:, 0] * traj[i1]
    return from_free3d(torch.from_numpy(new_traj), torch.from_numpy(new_limbs), skeleton).numpy()


def upright_transform(joints: np.ndarray, skeleton: Skeleton, *,
                      level_floor: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with ``joints @ R.T + t`` canonical (see above).

    For clips whose vertical is unknown (lifted or generated ones come out in the frame
    of some camera, tilted by its elevation): "up" is first the clip's mean ankle-to-hip
    direction, which is vertical on average for anything that stands (bows and kicks
    included, where the spine or one leg leans); then, for clips that travel, the
    floor the feet walk on is levelled (:func:`floor_tilt`; ``level_floor=False`` skips
    it). Then floor, origin and facing as in :func:`canonicalize`.
    """
    joints = np.asarray(joints, dtype=np.float64)
    hips = joints[:, [skeleton.index("left_hip"), skeleton.index("right_hip")]].mean(1)
    ankles = joints[:, [skeleton.index("left_ankle"), skeleton.index("right_ankle")]].mean(1)
    up = (hips - ankles).mean(0)
    up = up / max(np.linalg.norm(up), 1e-9)
    tilt = _rotation_between(up, np.array([0.0, 1.0, 0.0]))
    if level_floor:
        tilt = floor_tilt(joints @ tilt.T, skeleton) @ tilt
    standing = joints @ tilt.T
    forward = facing_direction(torch.from_numpy(standing[0]), skeleton)
    angle = -float(heading_angle(forward))
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]) @ tilt
    turned = joints @ rot.T
    return rot, -np.array([turned[0, 0, 0], turned[..., 1].min(), turned[0, 0, 2]])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector a onto unit vector b (Rodrigues)."""
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: half a turn about any axis normal to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 0.0, 1.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _floor_slope(joints: np.ndarray, skeleton: Skeleton, min_travel: float) -> tuple[float, float] | None:
    """(dy/dx, dy/dz) of the floor under the lowest foot of every frame, fitted along the
    principal directions of travel spanning ``min_travel`` metres; None without any."""
    feet = [skeleton.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    pts = np.asarray(joints, dtype=np.float64)[:, feet]
    low = pts[np.arange(len(pts)), pts[..., 1].argmin(1)]  # (T, 3)
    xz = low[:, [0, 2]] - low[:, [0, 2]].mean(0)
    y = low[:, 1] - low[:, 1].mean()
    _, axes = np.linalg.eigh(xz.T @ xz)
    coords = xz @ axes  # along the principal directions
    spans = np.ptp(coords, axis=0) >= min_travel
    if not spans.any():
        return None
    slopes = np.zeros(2)
    slopes[spans] = np.linalg.lstsq(coords[:, spans], y, rcond=None)[0]
    a, b = axes @ slopes
    return float(a), float(b)


def remove_floor_slope(joints: np.ndarray, skeleton: Skeleton, *, min_travel: float = 0.5) -> np.ndarray:
    """An upright clip whose feet climb or sink along its path, on a level floor again.

    Each frame moves vertically by the fitted floor's height under its root (the
    :func:`floor_tilt` fit), so the body keeps its uprightness: for lifted clips, whose
    slope comes from depth errors, not from the camera, turning the body (as
    :func:`floor_tilt` does) would make it lean.
    """
    joints = np.asarray(joints, dtype=np.float64)
    slope = _floor_slope(joints, skeleton, min_travel)
    if slope is None:
        return joints.copy()
    root = joints[:, 0, [0, 2]] - joints[:, 0, [0, 2]].mean(0)
    height = root @ np.array(slope)
    out = joints.copy()
    out[..., 1] -= height[:, None]
    out[..., 1] -= out[..., 1].min()
    return out


def floor_tilt(joints: np.ndarray, skeleton: Skeleton, *, min_travel: float = 0.5,
               max_deg: float = 30.0) -> np.ndarray:
    """The rotation that levels the floor a roughly upright (T, J, 3) clip walks on.

    The lowest foot joint of every frame is a point on the floor. Along each principal
    direction of their horizontal spread that spans at least ``min_travel`` metres, the
    floor's slope is fitted by least squares; along shorter ones it is left at zero (a
    clip that stays in place, a wave or a bow, has no floor to read and keeps its tilt).
    This is where an elevated camera shows: walking away from it reads as climbing in
    its frame. The correction is capped at ``max_deg`` degrees.
    """
    slope = _floor_slope(joints, skeleton, min_travel)
    if slope is None:
        return np.eye(3)
    a, b = slope
    normal = np.array([-a, 1.0, -b]) / np.sqrt(1.0 + a * a + b * b)
    angle = math.acos(min(1.0, normal[1]))
    if angle > math.radians(max_deg):  # keep the direction, cap the size
        horizontal = normal[[0, 2]] / max(np.linalg.norm(normal[[0, 2]]), 1e-12)
        s = math.sin(math.radians(max_deg))
        normal = np.array([horizontal[0] * s, math.cos(math.radians(max_deg)), horizontal[1] * s])
    return _rotation_between(normal, np.array([0.0, 1.0, 0.0]))
