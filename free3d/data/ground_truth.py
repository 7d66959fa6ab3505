"""The hidden 3D ground truth of a prepared dataset.

Only evaluation and the 3D-supervised baselines may import this module; the 2D
training path (:mod:`free3d.data.motion2d`) never does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .prepared import MOTION2D_DIR, MOTION2D_KEYS, MOTION3D_DIR, DatasetError, load_arrays, read_split
from .single_view import Camera


def require_3d(root: str | os.PathLike, what: str) -> None:
    """One clear error when ``root`` is a 2D-only dataset (prepared from keypoint files)
    and ``what`` needs its 3D ground truth."""
    if not (Path(root) / MOTION3D_DIR).is_dir():
        raise DatasetError(f"{root} holds 2D only (no {MOTION3D_DIR}/: prepared from keypoint "
                           f"files); {what} needs the 3D ground truth of a mocap dataset")


def load_motion3d(root: str | os.PathLike, clip_id: str) -> np.ndarray:
    """(T, J, 3) canonical joints in metres."""
    require_3d(root, "this command")
    path = Path(root) / MOTION3D_DIR / f"{clip_id}.npy"
    if not path.is_file():
        raise DatasetError(f"{root}: no 3D motion for clip {clip_id!r}")
    return load_arrays(path)


def load_split3d(root: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    return {cid: load_motion3d(root, cid) for cid in read_split(root, split)}


def load_camera(root: str | os.PathLike, clip_id: str) -> Camera:
    """The clip's stored single-view camera (evaluation maps lifted poses back with it)."""
    path = Path(root) / MOTION2D_DIR / f"{clip_id}.npz"
    if not path.is_file():
        raise DatasetError(f"{root}: no 2D motion for clip {clip_id!r}")
    require_3d(root, "mapping lifted poses to the world with the stored camera")
    z = load_arrays(path, MOTION2D_KEYS[3:])  # the camera_* arrays
    return Camera(float(z["camera_azimuth_deg"]), float(z["camera_elevation_deg"]),
                  float(z["camera_scale"]), tuple(float(v) for v in z["camera_translation"]))


def world_to_camera(joints: np.ndarray, camera: Camera) -> np.ndarray:
    """World joints (metres) -> the camera frame and units of the clip's 2D view.

    x, y then match the stored 2D up to translation; z is the depth a lifter must find.
    """
    return camera.scale * joints @ camera.rotation().T


def camera_to_world(joints: np.ndarray, camera: Camera) -> np.ndarray:
    """Inverse of :func:`world_to_camera` (up to translation)."""
    return (joints / camera.scale) @ camera.rotation()


def tokeniser_input(lifter, root: str | os.PathLike, clip_id: str):
    """A clip as ``lifter`` reads it: trajectory (T, D) and limbs (T, K, D) tensors.

    An ML-RQ reads the clip's stored single view (D = 2); only MoMask's 3D RVQ-VAE
    (``rvq3d --input-dim 3``, the 3D-supervised baseline) reads the 3D ground truth.
    """
    import torch

    from ..representation import to_free3d
    from .motion2d import load_clip2d

    if lifter.input_dim == 3:
        return to_free3d(torch.from_numpy(load_motion3d(root, clip_id)).float(), lifter.skeleton)
    clip = load_clip2d(root, clip_id)
    return torch.from_numpy(clip.trajectory), torch.from_numpy(clip.limbs)
