"""HumanML3D and KIT-ML in HumanML3D's on-disk format: joint positions and captions.

Layout of ``src`` (what HumanML3D's processing scripts write)::

    new_joints/<id>.npy   (T, 22, 3) HumanML3D (20 fps, metres) or (T, 21, 3) KIT-ML
                          (12.5 fps, millimetres); Y up
    texts/<id>.txt        one caption a line: ``caption#word/POS ...#start#end``, start and
                          end in seconds; ``0#0`` (or NaN) means the whole clip
    train.txt, val.txt, test.txt   clip ids, one a line (``M...`` ids are mirrored copies)

Each clip gives one take for its whole-clip captions and one take per distinct caption
crop (``<id>_<startframe>_<endframe>``, frames at 20 fps), all in the clip's split. Takes
keep only their first 9.8 s (``Take.max_frames``) since their captions describe them whole.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...skeleton import Skeleton, get_skeleton
from ..canonical import FPS, MAX_FRAMES, resample_positions
from ..take import Take

DATASETS = {  # name -> (skeleton, joints, native fps)
    "humanml3d": ("humanml3d22", 22, 20.0),
    "kit": ("kit21", 21, 12.5),
}
SPLIT_FILES = ("train", "val", "test")
MM_HEIGHT_THRESHOLD = 10.0  # a median body height above this can only be millimetres
MM_TO_M = 0.001


def _dataset_for_joints(j: int) -> str | None:
    return next((name for name, (_, nj, _) in DATASETS.items() if nj == j), None)


def _load_joints(path: Path, label: str) -> np.ndarray:
    """A new_joints array as float64 (T, J, 3), J in 22/21; ValueError naming the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{label}: cannot read the array ({e})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{label}: expected a numeric (T, J, 3) array")
    if arr.ndim != 3 or arr.shape[2] != 3 or _dataset_for_joints(arr.shape[1]) is None:
        raise ValueError(f"{label}: joints have shape {arr.shape}; expected (T, 22, 3) for "
                         "HumanML3D or (T, 21, 3) for KIT-ML")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{label}: joints contain NaN or inf")
    return arr


def _parse_time(text: str) -> float:
    value = float(text)  # ValueError when not a number
    if math.isinf(value):
        raise ValueError(f"{text!r} is not a finite time")
    return value


def parse_text_file(text: str, label: str) -> list[tuple[str, float | None, float | None]]:
    """(caption, start, end) of each caption line; start = end = None for the whole clip.

    Lines with an empty caption are left out; a malformed line raises ValueError naming
    ``label`` and the line number.
    """
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("#")
        if len(fields) < 3:
            raise ValueError(f"{label}:{n}: malformed line (expected "
                             f"'caption#tokens#start#end'): {line.strip()[:120]!r}")
        try:
            start, end = _parse_time(fields[-2]), _parse_time(fields[-1])
        except ValueError:
            raise ValueError(f"{label}:{n}: malformed line (start/end "
                             f"{fields[-2].strip()!r}, {fields[-1].strip()!r} are not numbers): "
                             f"{line.strip()[:120]!r}") from None
        caption = fields[0].strip()
        if not caption:
            continue
        if math.isnan(start) or math.isnan(end) or (start == 0.0 and end == 0.0):
            out.append((caption, None, None))
        else:
            out.append((caption, start, end))
    return out


def _read_splits(src: Path) -> dict[str, str]:
    """Clip id -> split, from train.txt / val.txt / test.txt (those present)."""
    present = [s for s in SPLIT_FILES if (src / f"{s}.txt").is_file()]
    if not present:
        raise ValueError(f"{src}: no split files (expected train.txt, val.txt and test.txt "
                         "listing clip ids)")
    splits: dict[str, str] = {}
    for split in present:
        text = (src / f"{split}.txt").read_text(encoding="utf-8", errors="replace")
        for clip_id in (line.strip() for line in text.splitlines()):
            if not clip_id:
                continue
            other = splits.setdefault(clip_id, split)
            if other != split:
                raise ValueError(f"{src}: clip {clip_id!r} is listed in both {other}.txt "
                                 f"and {split}.txt")
    return splits


def _detect_dataset(joints_dir: Path, ids: list[str]) -> str:
    """HumanML3D or KIT from the joint count of the first listed (else any) clip."""
    paths = [joints_dir / f"{i}.npy" for i in ids]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        path = next(iter(sorted(joints_dir.glob("*.npy"))), None)
    if path is None:
        raise ValueError(f"{joints_dir}: no .npy files")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"new_joints/{path.name}: cannot read the array ({e})") from None
    name = _dataset_for_joints(arr.shape[1]) if arr.ndim == 3 and arr.shape[2] == 3 else None
    if name is None:
        raise ValueError(f"new_joints/{path.name}: joints have shape {arr.shape}; expected "
                         "(T, 22, 3) for HumanML3D or (T, 21, 3) for KIT-ML")
    return name


def _to_metres(joints: np.ndarray, units: str) -> np.ndarray:
    if units == "auto":
        height = joints[..., 1].max(axis=1) - joints[..., 1].min(axis=1)
        units = "mm" if float(np.median(height)) > MM_HEIGHT_THRESHOLD else "m"
    return joints * MM_TO_M if units == "mm" else joints


def load_humanml3d(
    src: str | os.PathLike,
    *,
    dataset: str = "auto",
    units: str = "auto",
    fps: float | None = None,
    progress: bool = True,
) -> tuple[list[Take], Counter, Skeleton]:
    """Takes of a HumanML3D or KIT-ML folder, the drop counts, and the skeleton.

    ``dataset``: "humanml3d", "kit" or "auto" (by joint count, 22 or 21). ``units``: "m",
    "mm" or "auto" (millimetres when a clip's median body height exceeds 10). ``fps``: the
    source frame rate, by default 20 for HumanML3D and 12.5 for KIT; clips are resampled
    to 20 fps. Only clips listed in the split files are read; a listed clip without its
    joints or texts file is dropped as "missing files".
    """
    if dataset not in (*DATASETS, "auto"):
        raise ValueError(f"dataset must be 'humanml3d', 'kit' or 'auto', got {dataset!r}")
    if units not in ("m", "mm", "auto"):
        raise ValueError(f"units must be 'm', 'mm' or 'auto', got {units!r}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    src = Path(src)
    if not src.is_dir():
        raise ValueError(f"{src} is not a folder (expected a HumanML3D / KIT-ML folder with "
                         "new_joints/, texts/ and train/val/test.txt)")
    joints_dir, texts_dir = src / "new_joints", src / "texts"
    missing = [d.name + "/" for d in (joints_dir, texts_dir) if not d.is_dir()]
    if missing:
        hint = " (unzip texts.zip first)" if (src / "texts.zip").is_file() else ""
        raise ValueError(f"{src}: missing {' and '.join(missing)}{hint}; expected the "
                         "HumanML3D layout new_joints/<id>.npy, texts/<id>.txt, train/val/test.txt")
    splits = _read_splits(src)
    if dataset == "auto":
        dataset = _detect_dataset(joints_dir, list(splits))
    skeleton_name, num_joints, native_fps = DATASETS[dataset]
    skeleton = get_skeleton(skeleton_name)
    src_fps = float(fps) if fps is not None else native_fps

    takes: list[Take] = []
    dropped: Counter = Counter()
    for clip_id, split in tqdm(splits.items(), desc=f"reading {dataset}", unit="clip",
                               disable=not progress):
        jpath, tpath = joints_dir / f"{clip_id}.npy", texts_dir / f"{clip_id}.txt"
        if not (jpath.is_file() and tpath.is_file()):
            dropped["missing files"] += 1
            continue
        tlabel = f"texts/{tpath.name}"
        lines = parse_text_file(tpath.read_text(encoding="utf-8", errors="replace"), tlabel)
        joints = _load_joints(jpath, f"new_joints/{jpath.name}")
        if joints.shape[1] != num_joints:
            raise ValueError(f"new_joints/{jpath.name}: {joints.shape[1]} joints, but the "
                             f"dataset is {dataset} ({num_joints} joints)")
        if not lines:
            dropped["no captions"] += 1
            continue
        if joints.shape[0] == 0:
            dropped["empty motion"] += 1
            continue
        joints = _to_metres(joints, units)
        joints = resample_positions(joints, src_fps, FPS, skeleton).astype(np.float32)
        n = joints.shape[0]

        groups: dict[tuple[int, int], list[str]] = {}
        bad: set[tuple[float, float]] = set()
        for caption, start, end in lines:
            if start is None:
                a, b = 0, n
            else:
                a, b = round(start * FPS), min(round(end * FPS), n)
                if end <= start or start < 0 or a >= n or b <= a:
                    bad.add((start, end))
                    continue
            captions = groups.setdefault((a, b), [])
            if caption not in captions:
                captions.append(caption)
        dropped["bad crop"] += len(bad)
        for (a, b), captions in groups.items():
            take_id = clip_id if (a, b) == (0, n) else f"{clip_id}_{a}_{b}"
            takes.append(Take(take_id, joints[a:b], dataset, {}, captions=captions,
                              split=split, max_frames=MAX_FRAMES))
    return takes, +dropped, skeleton  # unary + drops zero counts
