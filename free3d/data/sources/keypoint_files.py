"""A prepared dataset from keypoint files and their captions: 2D only, no 3D behind it.

Each file (or OpenPose folder) under ``--src`` is one take, read by
:mod:`free3d.keypoints` and normalised exactly as the lift command does (bandai21, 20 fps,
missing joints at confidence 0). Takes are cut with the canonical rules of the other
sources (shorter than 2 s dropped, longer ones cut into pieces of at most 9.8 s), and
each piece is normalised again the way ``project_clip`` normalises a mocap clip's view.
No ``motion3d/`` and no camera is written: nobody knows them for video keypoints.
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ... import __version__
from ...keypoints import KeypointError, normalise_2d, prepare_2d, read_keypoints
from ...representation import to_free3d
from ...skeleton import BANDAI21
from ..canonical import FPS, MAX_FRAMES, MIN_FRAMES, clip_windows
from ..prepared import SPLITS, ClipRecord, DatasetWriter
from ..single_view import Motion2D

SOURCE = "keypoints"
TEST_SHARE = 0.1  # of takes in the default split; whole takes, by hashed id
_SUFFIXES = (".json", ".npy", ".npz")


def read_caption_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """Captions by clip file stem: ``stem#caption`` lines (several per stem allowed) or a
    JSON object {stem: [captions] or caption}."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--captions {p}: no such file")
    text = p.read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--captions {p}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"--captions {p}: expected a JSON object {{stem: [captions]}}")
        for stem, caps in data.items():
            caps = [caps] if isinstance(caps, str) else caps
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise ValueError(f"--captions {p}: captions of {stem!r} are not a list of strings")
            out[str(stem)] = [c.strip() for c in caps if c.strip()]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            stem, sep, caption = line.partition("#")
            if not sep or not stem.strip() or not caption.strip():
                raise ValueError(f"--captions {p}:{n}: expected '<clip file stem>#caption', "
                                 f"got {line.strip()!r}")
            # HumanML3D-style lines carry more '#' fields (tokens, times): keep the caption
            out.setdefault(stem.strip(), []).append(caption.split("#")[0].strip())
    out = {k: v for k, v in out.items() if v}
    if not out:
        raise ValueError(f"--captions {p}: no captions in it")
    return out


def keypoint_inputs(src: str | os.PathLike) -> dict[str, Path]:
    """Stem -> keypoint file (.json/.npy/.npz) or OpenPose folder (a folder of .json)."""
    root = Path(src)
    if not root.is_dir():
        raise ValueError(f"--src {root}: not a folder")
    found: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if (p.is_file() and p.suffix.lower() in _SUFFIXES) or (p.is_dir() and any(p.glob("*.json"))):
            stem = p.stem if p.is_file() else p.name
            if stem in found:
                raise ValueError(f"--src {root}: {found[stem].name} and {p.name} are both clip "
                                 f"{stem!r}; keep one")
            found[stem] = p
    if not found:
        raise ValueError(f"--src {root}: no keypoint files in it (.json, .npy, .npz, or OpenPose "
                         "folders of .json)")
    return found


def clip_id_of(stem: str) -> str:
    """A file-name-safe clip id for a stem (spaces and the like become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "clip"


def hashed_split(take_id: str, seed: int) -> str:
    """train or test by a hash of (seed, id): the same take always lands in the same split,
    whatever else is in the folder."""
    h = zlib.crc32(f"{seed}:{take_id}".encode()) / 2**32
    return "test" if h < TEST_SHARE else "train"


def piece_motion2d(xy: np.ndarray, conf: np.ndarray) -> Motion2D:
    """One cut piece as a training clip: re-normalised (median torso, first root at the
    origin; ``project_clip``'s rule per clip) and in the trajectory + limbs form."""
    pts = normalise_2d(xy, BANDAI21, y_up=True)
    traj, limbs = to_free3d(torch.from_numpy(pts), BANDAI21)
    return Motion2D(traj.numpy().astype(np.float32), limbs.numpy().astype(np.float32),
                    conf.astype(np.float32), camera=None)


def prepare_keypoints(src: str | os.PathLike, captions: str | os.PathLike, out: str | os.PathLike,
                      *, layout: str | None = None, fps: float | None = None,
                      split: str | None = None, seed: int = 0, overwrite: bool = False,
                      progress: bool = True) -> dict:
    """Write a 2D-only prepared dataset and return its summary (see the module doc).

    ``split``: every clip into that split; None: about 90/10 train/test by hashed take id.
    Files without captions and unreadable files are skipped and named in the summary;
    an error (no usable clip, ...) leaves ``out`` untouched.
    """
    t0 = time.perf_counter()
    if split is not None and split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
    inputs = keypoint_inputs(src)
    caps = read_caption_file(captions)
    dropped: Counter = Counter()
    skipped: dict[str, str] = {}
    ids: dict[str, str] = {}
    for stem in inputs:
        cid = clip_id_of(stem)
        if cid in ids.values():
            raise ValueError(f"--src {src}: two files map to clip id {cid!r}; rename one")
        ids[stem] = cid
    split_count: Counter = Counter()
    frames_total = clips = takes = 0
    with DatasetWriter(out, overwrite=overwrite, with_3d=False) as writer:
        for stem, path in tqdm(inputs.items(), desc="reading keypoints", unit="file",
                               disable=not progress):
            if stem not in caps:
                dropped["without captions"] += 1
                skipped[path.name] = "no caption"
                continue
            try:
                xy, conf = prepare_2d(read_keypoints(path, layout=layout, fps=fps), BANDAI21)
            except KeypointError as e:
                dropped["unreadable"] += 1
                skipped[path.name] = str(e)
                continue
            windows = clip_windows(len(xy))
            if not windows:
                dropped[f"shorter than {MIN_FRAMES / FPS:g} s"] += 1
                continue
            takes += 1
            take = ids[stem]
            where = split or hashed_split(take, seed)
            for k, (a, b) in enumerate(windows):
                cid = take if len(windows) == 1 else f"{take}_p{k}"
                writer.add(ClipRecord(cid, take, SOURCE, {}, b - a, where,
                                      extra={"file": path.name}),
                           None, piece_motion2d(xy[a:b], conf[a:b]), caps[stem])
                split_count[where] += 1
                frames_total += b - a
                clips += 1
        if not clips:
            raise ValueError(f"no usable clips in {src}: every file was dropped ({dict(dropped)})"
                             + "".join(f"\n  {name}: {why}" for name, why in skipped.items()))
        if not split_count["train"]:
            raise ValueError(f"no clip landed in the train split ({dict(split_count)}); "
                             "give --split train")
        unused = sorted(set(caps) - set(inputs))
        summary = {
            "source": SOURCE,
            "skeleton": BANDAI21.name,
            "takes_kept": takes,
            "clips": clips,
            "hours": round(frames_total / FPS / 3600, 4),
            "splits": {s: split_count[s] for s in SPLITS},
            "dropped": dict(dropped),
            "skipped": skipped,
            "captions_without_file": len(unused),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        meta = {
            "free3d_version": __version__,
            "source": SOURCE,
            "skeleton": BANDAI21.name,
            "fps": FPS,
            "min_frames": MIN_FRAMES,
            "max_frames": MAX_FRAMES,
            "seed": seed,
            "split": split or f"hashed take id: {1 - TEST_SHARE:g} train, {TEST_SHARE:g} test",
            "motion3d": False,
            "camera": None,  # the 2D is the keypoints', normalised; no camera is known
            "keypoints": {"layout": layout or "detected per file", "fps": fps or "per file"},
        }
        writer.commit(meta, summary)
    return summary


def format_keypoint_summary(summary: dict) -> str:
    """Human-readable summary of :func:`prepare_keypoints`."""
    lines = [
        f"prepared {summary['clips']} clips from {summary['takes_kept']} keypoint files "
        f"({summary['hours']:.2f} h, skeleton {summary['skeleton']}, 2D only: no motion3d/) "
        f"in {summary['seconds']:.1f} s",
        "splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()),
        "dropped: " + (", ".join(f"{v} {k}" for k, v in summary["dropped"].items()) or "none"),
    ]
    lines += [f"  skipped {name}: {why}" for name, why in summary["skipped"].items()]
    if summary["captions_without_file"]:
        lines.append(f"captions for {summary['captions_without_file']} stem(s) with no keypoint file")
    return "\n".join(lines)
