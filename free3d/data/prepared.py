"""The prepared-dataset folder, and writing it without leaving anything half-done.

Layout of a prepared dataset (all clips canonical, 20 fps)::

    meta.json           format version, skeleton, fps, seed, camera distribution, source
    clips.jsonl         one line per clip: id, take, source, labels, frames, split
    summary.json        what preparation kept and dropped, and why
    splits/{train,val,test}.txt
    texts/<id>.txt      captions, one per line
    motion2d/<id>.npz   trajectory (T,2), limbs (T,K,2), confidence (T,J), camera_*
    motion3d/<id>.npy   (T,J,3) metres: evaluation and 3D baselines only

A dataset prepared from keypoint files (``free3d data prepare keypoints``) has no
``motion3d/`` and no camera_* arrays: its meta.json says ``"motion3d": false``.

Only :mod:`free3d.data.ground_truth` opens ``motion3d/``; the 2D training path
(:mod:`free3d.data.motion2d`) has no code that can.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..locks import hold, remove_abandoned
from .single_view import Motion2D

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
MOTION2D_DIR = "motion2d"
MOTION3D_DIR = "motion3d"
TEXTS_DIR = "texts"


class DatasetError(ValueError):
    """A prepared dataset that is missing, incomplete or malformed."""


@dataclass
class ClipRecord:
    """One prepared clip's metadata (one line of clips.jsonl)."""

    id: str
    take: str  # the source take it was cut from; pieces of one take share a split
    source: str
    labels: dict[str, str]
    frames: int
    split: str
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = {"id": self.id, "take": self.take, "source": self.source, "labels": self.labels,
             "frames": self.frames, "split": self.split}
        if self.extra:
            d["extra"] = self.extra
        return json.dumps(d, ensure_ascii=False)


# the arrays of motion2d/<id>.npz, in the order they are written
MOTION2D_KEYS = ("trajectory", "limbs", "confidence", "camera_azimuth_deg", "camera_elevation_deg",
                 "camera_scale", "camera_translation")


def save_motion2d(path: str | os.PathLike, motion2d: Motion2D) -> None:
    """Write one clip's motion2d/<id>.npz: float32 2D, float64 camera (none when the
    2D came from keypoint files: no camera is known, and a made-up one would mislead)."""
    cam = motion2d.camera
    arrays = {"trajectory": motion2d.trajectory.astype(np.float32),
              "limbs": motion2d.limbs.astype(np.float32),
              "confidence": motion2d.confidence.astype(np.float32)}
    if cam is not None:
        arrays.update(camera_azimuth_deg=np.float64(cam.azimuth_deg),
                      camera_elevation_deg=np.float64(cam.elevation_deg),
                      camera_scale=np.float64(cam.scale),
                      camera_translation=np.asarray(cam.translation, dtype=np.float64))
    np.savez(path, **arrays)


def load_arrays(path: Path, keys: tuple[str, ...] | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy array, or the ``keys`` arrays of a .npz, of a prepared dataset; a DatasetError
    naming the file when it is damaged (numpy would blame ``allow_pickle``)."""
    try:
        if keys is None:
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path} is damaged ({type(e).__name__}: {e}); prepare the dataset "
                           "again") from None


def check_clip_id(clip_id: str) -> str:
    if not clip_id or any(c in clip_id for c in '/\\:*?"<>|\n\t ') or clip_id.startswith("."):
        raise ValueError(f"clip id {clip_id!r} is not usable as a file name")
    return clip_id


class DatasetWriter:
    """Writes a prepared dataset into a scratch folder beside ``out`` and moves it into
    place only when :meth:`commit` is called, so a failure leaves nothing behind.

    Use as a context manager: leaving the block by an exception removes the scratch folder.
    ``with_3d=False``: a 2D-only dataset (keypoint files), written without ``motion3d/``.
    """

    def __init__(self, out: str | os.PathLike, *, overwrite: bool = False,
                 with_3d: bool = True) -> None:
        self.out = Path(out)
        self.with_3d = with_3d
        if self.out.exists() and not (self.out.is_dir() and not any(self.out.iterdir())):
            if not overwrite:
                raise FileExistsError(f"{self.out} already exists and is not empty; choose another "
                                      "--out or pass --overwrite")
            # --overwrite replaces a prepared dataset, never some other folder
            if not (self.out / "meta.json").is_file():
                raise FileExistsError(f"{self.out} exists and is not a prepared free3d dataset; "
                                      "refusing to overwrite it")
        parent, name = self.out.parent, self.out.name
        try:
            parent.mkdir(parents=True, exist_ok=True)
            # what killed runs left: their scratch (no live process holds it), and once the
            # swap into place is done, the replaced dataset
            remove_abandoned(parent, f".{name}.partial-")
            if self.out.exists():
                remove_abandoned(parent, f".{name}.old-")
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent))
        except OSError as e:  # e.g. /proc/x: name --out, not the hidden scratch
            raise ValueError(f"--out {self.out} cannot be made or written: {e.strerror or e}") from None
        self._held = hold(self.tmp)  # held while writing: the scratch of a live run
        for d in (MOTION2D_DIR, MOTION3D_DIR, TEXTS_DIR, "splits"):
            if d != MOTION3D_DIR or with_3d:
                (self.tmp / d).mkdir()
        self.records: list[ClipRecord] = []
        self._committed = False

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            shutil.rmtree(self.tmp, ignore_errors=True)
        os.close(self._held)

    def add(self, record: ClipRecord, joints3d: np.ndarray | None, motion2d: Motion2D,
            captions: list[str]) -> None:
        cid = check_clip_id(record.id)
        if (joints3d is None) == self.with_3d:
            raise ValueError(f"clip {cid}: 3D joints {'missing' if self.with_3d else 'given'} "
                             f"for a dataset {'with' if self.with_3d else 'without'} motion3d/")
        if record.split not in SPLITS:
            raise ValueError(f"clip {cid}: split must be one of {SPLITS}, got {record.split!r}")
        captions = [c.strip() for c in captions if c.strip()]
        if not captions:
            raise ValueError(f"clip {cid}: no captions")
        if any("\n" in c for c in captions):
            raise ValueError(f"clip {cid}: a caption contains a line break")
        if joints3d is not None:
            np.save(self.tmp / MOTION3D_DIR / f"{cid}.npy", joints3d.astype(np.float32))
        save_motion2d(self.tmp / MOTION2D_DIR / f"{cid}.npz", motion2d)
        (self.tmp / TEXTS_DIR / f"{cid}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
        self.records.append(record)

    def commit(self, meta: dict, summary: dict) -> Path:
        ids = [r.id for r in self.records]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate clip ids in the prepared dataset")
        records = sorted(self.records, key=lambda r: r.id)
        with open(self.tmp / "clips.jsonl", "w", encoding="utf-8") as f:
            for r in records:
                f.write(r.to_json() + "\n")
        for split in SPLITS:
            lines = [r.id for r in records if r.split == split]
            (self.tmp / "splits" / f"{split}.txt").write_text(
                "".join(i + "\n" for i in lines), encoding="utf-8")
        meta = {"format_version": FORMAT_VERSION, **meta}
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (self.tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)
        self._committed = True
        return self.out


def read_meta(root: str | os.PathLike) -> dict:
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DatasetError(f"{root} is not a prepared free3d dataset (no meta.json); "
                           "run 'free3d data prepare ...' first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{root}: format version {meta.get('format_version')}, "
                           f"this free3d reads {FORMAT_VERSION}; prepare it again")
    return meta


def read_records(root: str | os.PathLike) -> list[ClipRecord]:
    path = Path(root) / "clips.jsonl"
    if not path.is_file():
        raise DatasetError(f"{root}: clips.jsonl is missing")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                out.append(ClipRecord(d["id"], d["take"], d["source"], d["labels"], d["frames"],
                                      d["split"], d.get("extra", {})))
            except (json.JSONDecodeError, KeyError) as e:
                raise DatasetError(f"{path}:{n}: malformed line ({e})") from None
    return out


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(root) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise DatasetError(f"{root}: split file {path.name} is missing")
    return [s for s in path.read_text(encoding="utf-8").split() if s]


def read_captions(root: str | os.PathLike, clip_id: str) -> list[str]:
    path = Path(root) / TEXTS_DIR / f"{clip_id}.txt"
    if not path.is_file():
        raise DatasetError(f"{root}: no captions for clip {clip_id!r}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
