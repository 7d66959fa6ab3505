"""Turn source takes into a prepared dataset: cut, canonicalise, caption, split, and
project each clip once into its single 2D view."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from .. import __version__
from ..skeleton import Skeleton
from .canonical import FPS, MAX_FRAMES, MIN_FRAMES, canonicalize, clip_windows
from .captions import make_captions
from .prepared import ClipRecord, DatasetWriter
from .single_view import AZIMUTH_RANGE_DEG, ELEVATION_RANGE_DEG, draw_camera, project_clip
from .splits import DEFAULT_RATIOS, stratified_split
from .take import Take

CAPTIONS_PER_CLIP = 6
__all__ = ["Take", "format_summary", "prepare_dataset"]


def _stratum(labels: dict[str, str]) -> str:
    return "/".join(f"{k}={labels[k]}" for k in sorted(labels)) or "all"


def _bone_drift(joints: np.ndarray, skeleton: Skeleton) -> float:
    """Largest change of any bone's length through the clip, in metres."""
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, skeleton.limb_parents], axis=-1)
    return float((lengths.max(axis=0) - lengths.min(axis=0)).max())


def prepare_dataset(
    takes: Iterable[Take],
    out: str | os.PathLike,
    *,
    skeleton: Skeleton,
    source: str,
    seed: int = 0,
    overwrite: bool = False,
    dropped: Counter | None = None,
    progress: bool = True,
    total: int | None = None,
) -> dict:
    """Write a prepared dataset from ``takes`` and return its summary.

    ``dropped`` carries drop counts the source already made (reason -> count). Any error
    leaves ``out`` untouched (see :class:`DatasetWriter`).
    """
    t0 = time.perf_counter()
    dropped = Counter(dropped or {})
    truncated = 0
    pieces: list[tuple[Take, str, int, int]] = []
    take_labels: dict[str, str] = {}
    take_splits: dict[str, str] = {}
    with DatasetWriter(out, overwrite=overwrite) as writer:
        for take in tqdm(takes, total=total, desc="reading takes", unit="take",
                         disable=not progress):
            if take.joints.ndim != 3 or take.joints.shape[1:] != (skeleton.num_joints, 3):
                raise ValueError(f"take {take.take_id}: joints {take.joints.shape} do not match "
                                 f"skeleton {skeleton.name} ({skeleton.num_joints} joints)")
            if not np.isfinite(take.joints).all():
                raise ValueError(f"take {take.take_id}: joints contain NaN or inf")
            n = take.joints.shape[0]
            if take.max_frames is not None and n > take.max_frames:
                n, truncated = take.max_frames, truncated + 1
            windows = clip_windows(n)
            if not windows:
                dropped[f"shorter than {MIN_FRAMES / FPS:g} s"] += 1
                continue
            if take.take_id in take_labels:
                raise ValueError(f"two takes share the id {take.take_id!r}")
            take_labels[take.take_id] = _stratum(take.labels)
            if take.split is not None:
                take_splits[take.take_id] = take.split
            for k, (a, b) in enumerate(windows):
                cid = take.take_id if len(windows) == 1 else f"{take.take_id}_p{k}"
                pieces.append((take, cid, a, b))
        if not pieces:
            raise ValueError(f"no usable clips from {source}: every take was dropped "
                             f"({dict(dropped)})")

        unassigned = {t: lab for t, lab in take_labels.items() if t not in take_splits}
        take_splits.update(stratified_split(unassigned, seed=seed))

        labels_count: dict[str, Counter] = {}
        split_count: Counter = Counter()
        frames_total = 0
        drift = 0.0
        for take, cid, a, b in tqdm(pieces, desc="writing clips", unit="clip",
                                    disable=not progress):
            joints = canonicalize(take.joints[a:b], skeleton)
            drift = max(drift, _bone_drift(joints, skeleton))
            motion2d = project_clip(joints, draw_camera(seed, cid), skeleton)
            captions = take.captions or make_captions(
                take.labels["content"], take.labels["style"], n=CAPTIONS_PER_CLIP,
                seed=f"{seed}:{cid}")
            split = take_splits[take.take_id]
            writer.add(ClipRecord(cid, take.take_id, take.source, dict(take.labels), b - a, split),
                       joints, motion2d, captions)
            for key, value in take.labels.items():
                labels_count.setdefault(key, Counter())[value] += 1
            split_count[split] += 1
            frames_total += b - a

        summary = {
            "source": source,
            "skeleton": skeleton.name,
            "takes_kept": len(take_labels),
            "clips": len(pieces),
            "hours": round(frames_total / FPS / 3600, 4),
            "splits": {s: split_count[s] for s in ("train", "val", "test")},
            "labels": {k: dict(sorted(v.items())) for k, v in sorted(labels_count.items())},
            "dropped": dict(dropped),
            "truncated_to_max_length": truncated,
            "max_bone_length_drift_mm": round(drift * 1000, 4),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        meta = {
            "free3d_version": __version__,
            "source": source,
            "skeleton": skeleton.name,
            "fps": FPS,
            "min_frames": MIN_FRAMES,
            "max_frames": MAX_FRAMES,
            "seed": seed,
            "split_ratios": list(DEFAULT_RATIOS),
            "camera": {"model": "weak perspective, one per clip, drawn from (seed, clip id)",
                       "azimuth_deg": list(AZIMUTH_RANGE_DEG),
                       "elevation_deg": list(ELEVATION_RANGE_DEG),
                       "scale": "median 2D pelvis-neck length = skeleton rest torso length"},
        }
        writer.commit(meta, summary)
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable summary of :func:`prepare_dataset`."""
    lines = [
        f"prepared {summary['clips']} clips from {summary['takes_kept']} takes of "
        f"{summary['source']} ({summary['hours']:.2f} h, skeleton {summary['skeleton']}); "
        f"cutting, projecting and writing took {summary['seconds']:.1f} s",
        "splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()),
    ]
    for key, counts in summary["labels"].items():
        lines.append(f"{key} ({len(counts)}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    dropped = summary["dropped"]
    lines.append("dropped: " + (", ".join(f"{v} {k}" for k, v in dropped.items()) or "none"))
    if summary.get("truncated_to_max_length"):
        lines.append(f"truncated to {MAX_FRAMES / FPS:g} s: {summary['truncated_to_max_length']}")
    lines.append(f"largest bone-length drift: {summary['max_bone_length_drift_mm']:.4f} mm")
    return "\n".join(lines)
