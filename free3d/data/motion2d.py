"""The 2D training data: single-view 2D clips and their captions, nothing else.

This module is the only way the 2D-supervised stages read a prepared dataset, and it
has no code that opens ``motion3d/``: Free3D's motion model never sees a 3D coordinate.
A test deletes motion3d/ and records every file opened to hold it to that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..skeleton import Skeleton, get_skeleton
from .prepared import MOTION2D_DIR, DatasetError, load_arrays, read_captions, read_meta, read_split


@dataclass(frozen=True)
class Clip2D:
    clip_id: str
    trajectory: np.ndarray  # (T, 2)
    limbs: np.ndarray  # (T, K, 2)
    confidence: np.ndarray  # (T, J)
    captions: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return self.trajectory.shape[0]


def load_clip2d(root: str | os.PathLike, clip_id: str) -> Clip2D:
    path = Path(root) / MOTION2D_DIR / f"{clip_id}.npz"
    if not path.is_file():
        raise DatasetError(f"{root}: no 2D motion for clip {clip_id!r}")
    z = load_arrays(path, ("trajectory", "limbs", "confidence"))
    traj, limbs, conf = z["trajectory"], z["limbs"], z["confidence"]
    return Clip2D(clip_id, traj, limbs, conf, tuple(read_captions(root, clip_id)))


class Motion2DDataset(Dataset):
    """Single-view 2D clips of one split, loaded into memory once.

    An item is a dict: ``trajectory`` (T, 2), ``limbs`` (T, K, 2), ``confidence`` (T, J)
    float tensors, ``captions`` (tuple of str), ``clip_id`` and ``length``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.skeleton: Skeleton = get_skeleton(self.meta["skeleton"])
        self.split = split
        self.fps = float(self.meta["fps"])
        self.clips = [load_clip2d(self.root, cid) for cid in read_split(self.root, split)]
        if not self.clips:
            raise DatasetError(f"{root}: split {split!r} is empty")
        k = self.skeleton.num_limbs
        for c in self.clips:
            if c.limbs.shape[1:] != (k, 2):
                raise DatasetError(f"{root}: clip {c.clip_id} has limbs {c.limbs.shape}, "
                                   f"skeleton {self.skeleton.name} needs (T, {k}, 2)")

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        c = self.clips[i]
        return {
            "clip_id": c.clip_id,
            "trajectory": torch.from_numpy(c.trajectory),
            "limbs": torch.from_numpy(c.limbs),
            "confidence": torch.from_numpy(c.confidence),
            "captions": c.captions,
            "length": c.num_frames,
        }


def pad_collate(items: list[dict]) -> dict:
    """Batch items of different lengths: zero-pad to the longest, with a (B, T) mask."""
    lengths = torch.tensor([it["length"] for it in items])
    t = int(lengths.max())
    out: dict = {"clip_id": [it["clip_id"] for it in items],
                 "captions": [it["captions"] for it in items], "length": lengths,
                 "mask": torch.arange(t)[None, :] < lengths[:, None]}
    for key in ("trajectory", "limbs", "confidence"):
        first = items[0][key]
        batch = first.new_zeros((len(items), t, *first.shape[1:]))
        for b, it in enumerate(items):
            batch[b, : it["length"]] = it[key]
        out[key] = batch
    return out
