"""Single-view 2D motion from a 3D clip: one weak-perspective camera per clip.

The camera is drawn once, from the dataset seed and the clip id, and stored with the
clip; it is never re-drawn (re-drawing per epoch would be multi-view supervision).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..representation import camera_rotation, project, to_free3d
from ..skeleton import Skeleton
from .canonical import upright_transform

AZIMUTH_RANGE_DEG = (0.0, 360.0)
ELEVATION_RANGE_DEG = (-5.0, 20.0)  # roughly eye level, as in most video


@dataclass(frozen=True)
class Camera:
    """Weak perspective: x2d = scale * (R x3d)[:2] + translation."""

    azimuth_deg: float
    elevation_deg: float
    scale: float = 1.0
    translation: tuple[float, float] = (0.0, 0.0)

    def rotation(self) -> np.ndarray:
        az = torch.tensor(math.radians(self.azimuth_deg), dtype=torch.float64)
        el = torch.tensor(math.radians(self.elevation_deg), dtype=torch.float64)
        return camera_rotation(az, el).numpy()

    def to_dict(self) -> dict:
        return asdict(self)


def draw_camera(seed: int, clip_id: str) -> Camera:
    """The clip's one camera: a function of (seed, clip id) only, so it never changes."""
    rng = np.random.default_rng([seed, zlib.crc32(clip_id.encode())])
    return Camera(
        azimuth_deg=float(rng.uniform(*AZIMUTH_RANGE_DEG)),
        elevation_deg=float(rng.uniform(*ELEVATION_RANGE_DEG)),
    )


@dataclass(frozen=True)
class Motion2D:
    trajectory: np.ndarray  # (T, 2) root, first frame at the origin
    limbs: np.ndarray  # (T, K, 2) child - parent
    confidence: np.ndarray  # (T, J) in [0, 1]; ones for mocap
    camera: Camera | None  # None: 2D from keypoint files, whose camera nobody knows


def project_clip(joints: np.ndarray, camera: Camera, skeleton: Skeleton) -> Motion2D:
    """Project a canonical (T, J, 3) clip with ``camera`` and normalise its 2D scale.

    Weak perspective cannot know scale, so it is fixed from the 2D alone, as it would be
    for video keypoints: the median 2D pelvis-to-neck length becomes the skeleton's rest
    torso length. The first-frame root goes to the 2D origin.
    """
    pts = torch.from_numpy(np.asarray(joints, dtype=np.float64))
    raw = project(pts, torch.from_numpy(camera.rotation())).numpy()
    torso = np.linalg.norm(raw[:, skeleton.index("neck")] - raw[:, skeleton.index("pelvis")], axis=-1)
    median_torso = float(np.median(torso))
    if median_torso < 1e-6:
        raise ValueError("cannot normalise 2D scale: the torso projects to a point")
    scale = skeleton.torso_length / median_torso
    translation = -scale * raw[0, 0]
    cam = Camera(camera.azimuth_deg, camera.elevation_deg, scale,
                 (float(translation[0]), float(translation[1])))
    joints2d = raw * scale + translation
    traj, limbs = to_free3d(torch.from_numpy(joints2d), skeleton)
    return Motion2D(
        trajectory=traj.numpy().astype(np.float32),
        limbs=limbs.numpy().astype(np.float32),
        confidence=np.ones(joints2d.shape[:2], dtype=np.float32),
        camera=cam,
    )


# The one camera that sees every clip the generator's tokens are made of (``canonical_view``):
# three-quarter front, so that facing, travel and which side is which all show in the 2D
# (a side view hides left from right, a front view hides travel); the elevation is the
# middle of the range the ML-RQ was trained on.
CANONICAL_CAMERA = Camera(azimuth_deg=45.0, elevation_deg=float(np.mean(ELEVATION_RANGE_DEG)))


def canonical_view(joints: np.ndarray, skeleton: Skeleton, camera: Camera = CANONICAL_CAMERA) -> Motion2D:
    """A (T, J, 3) clip in any frame (a lifted one: its camera's), stood up, put on the
    floor facing +Z at the origin (:func:`upright_transform`), then seen by ``camera``.

    Tokens of clips seen from one camera carry the motion without the random view each
    clip happened to be filmed from, which the text cannot predict.
    """
    rot, t = upright_transform(joints, skeleton)
    return project_clip(np.asarray(joints, dtype=np.float64) @ rot.T + t, camera, skeleton)
