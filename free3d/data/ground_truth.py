"""The hidden 3D ground truth of a prepared dataset.

Only evaluation and the 3D-supervised baselines may import this module; the 2D
training path (:mod:`free3d.data.motion2d`) never does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .prepared import MOTION3D_DIR, DatasetError, read_split


def load_motion3d(root: str | os.PathLike, clip_id: str) -> np.ndarray:
    """(T, J, 3) canonical joints in metres."""
    path = Path(root) / MOTION3D_DIR / f"{clip_id}.npy"
    if not path.is_file():
        raise DatasetError(f"{root}: no 3D motion for clip {clip_id!r}")
    return np.load(path)


def load_split3d(root: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    return {cid: load_motion3d(root, cid) for cid in read_split(root, split)}
