"""A prepared dataset as one compressed file, and back (``free3d data pack`` / ``unpack``).

Nothing is dropped: unpacking gives back every float bit-identical (3D joints, 2D
trajectory and limbs, confidence, cameras) and every text file byte-identical
(meta.json, summary.json, clips.jsonl, splits, captions). The .npy/.npz files are
written anew the way preparation writes them, so with numpy's usual (1.0) .npy header
the unpacked folder is byte for byte the folder that was packed.

The file is a plain tar compressed with xz (``tar tJf FILE`` lists it)::

    free3d-pack.json      manifest: format version, free3d version, clips and frames,
                          what each array holds and how it is coded, checksums
    meta.json, summary.json, clips.jsonl, splits/*.txt, texts/*.txt   verbatim
    arrays/*.npy          the motion of all clips laid end to end, coded by
                          :mod:`free3d.data.motion_codec`, and the cameras as they were

Laying clips end to end and coding each float against a prediction from its own past,
its skeleton and (for 2D) its camera is what makes this small: Bandai-Namco's 2,669
clips (140 MB of files) pack into 33.8 MB, 28.7 MB of it the 3D. Plain xz of the raw
float32 would need about 75 %; delta coding along time, 60 % for the 3D alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import __version__
from ..files import usual_mode
from ..skeleton import get_skeleton
from . import motion_codec as codec
from .ground_truth import require_3d
from .prepared import (
    FORMAT_VERSION,
    MOTION2D_DIR,
    MOTION2D_KEYS,
    MOTION3D_DIR,
    SPLITS,
    TEXTS_DIR,
    DatasetError,
    check_clip_id,
    read_meta,
    read_records,
    read_split,
    save_motion2d,
)
from .single_view import Camera, Motion2D

PACK_FORMAT = "free3d-pack"
PACK_VERSION = 1
MANIFEST = "free3d-pack.json"
PRECISION = ("exact, nothing dropped: 3D, 2D, confidence and cameras bit-identical; "
             "text files byte-identical")
XZ_PRESET = 6  # 9 gains nothing on these arrays and needs 7x the memory
_XZ_MAGIC = b"\xfd7zXZ\x00"
_TOP_FILES = ("meta.json", "summary.json", "clips.jsonl")
_TEXT_DIRS = ("splits", TEXTS_DIR)
_CAMERA_SCALARS = ("camera_azimuth_deg", "camera_elevation_deg", "camera_scale")
_CAMERA = (*_CAMERA_SCALARS, "camera_translation")


class PackError(ValueError):
    """A file that is not a free3d pack, or one that is damaged."""


@dataclass(frozen=True)
class PackReport:
    """What :func:`pack_dataset` wrote."""

    path: Path
    size_bytes: int
    clips: int
    frames: int
    source: str
    skeleton: str
    dataset_bytes: int  # the packed files' sizes, as they were in the folder
    seconds: float
    precision: str
    left_out: tuple[str, ...]  # files in the folder that are not part of a prepared dataset

    def describe(self) -> str:
        lines = [
            f"packed {self.clips} clips ({self.frames:,} frames; {self.source}, skeleton "
            f"{self.skeleton}) into {self.path}: {self.size_bytes / 1e6:.1f} MB "
            f"({self.size_bytes:,} bytes) from {self.dataset_bytes / 1e6:.1f} MB of files, "
            f"in {self.seconds:.1f} s",
            f"precision: {self.precision}",
        ]
        if self.left_out:
            shown = ", ".join(self.left_out[:5]) + (", ..." if len(self.left_out) > 5 else "")
            lines.append(f"left out {len(self.left_out)} file(s) that are not part of a "
                         f"prepared dataset: {shown}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# pack


def pack_dataset(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False,
                 progress: bool = True) -> PackReport:
    """Write the prepared dataset ``src`` as the single file ``dst`` (see the module doc).

    ``dst`` appears only when complete. Raises :class:`DatasetError` when ``src`` is not
    a prepared dataset and ``FileExistsError`` when ``dst`` exists (unless ``overwrite``).
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if dst.is_dir() or (dst.exists() and not overwrite):
        raise FileExistsError(f"{dst} already exists; choose another file"
                              + ("" if dst.is_dir() else " or pass --overwrite"))
    meta = read_meta(src)
    require_3d(src, "data pack (its codec stores the 3D and the cameras)")
    records = read_records(src)
    for split in SPLITS:
        read_split(src, split)
    if not records:
        raise DatasetError(f"{src}: clips.jsonl lists no clips")
    ids = [check_clip_id(r.id) for r in records]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{src}: clips.jsonl lists a clip id twice")

    try:
        skeleton = get_skeleton(meta["skeleton"])
    except KeyError as e:
        raise DatasetError(f"{src}: {e.args[0]}") from None
    texts = _text_files(src)
    motion = _read_motion(src, ids, progress)
    if motion["joints"].shape[1] != skeleton.num_joints:
        raise DatasetError(f"{src}: clips have {motion['joints'].shape[1]} joints, skeleton "
                           f"{skeleton.name} has {skeleton.num_joints}")
    members, manifest = _encode(motion, np.asarray(skeleton.parents), progress)
    manifest = {
        "format": PACK_FORMAT,
        "format_version": PACK_VERSION,
        "free3d_version": __version__,
        "precision": PRECISION,
        "dataset": {"format_version": meta["format_version"], "source": meta.get("source"),
                    "skeleton": meta.get("skeleton")},
        "clips": ids,
        **manifest,
        "files": list(texts),
    }
    members = {MANIFEST: json.dumps(manifest, indent=1).encode() + b"\n",
               **{name: (src / name).read_bytes() for name in texts}, **members}

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.partial-", dir=dst.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_tar(raw, members, progress)
        usual_mode(tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    packed = set(texts) | {f"{d}/{i}{ext}" for i in ids
                           for d, ext in ((MOTION2D_DIR, ".npz"), (MOTION3D_DIR, ".npy"))}
    on_disk = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    return PackReport(
        path=dst, size_bytes=dst.stat().st_size, clips=len(ids),
        frames=int(motion["lengths"].sum()), source=str(meta.get("source")),
        skeleton=str(meta.get("skeleton")),
        dataset_bytes=sum((src / name).stat().st_size for name in packed),
        seconds=time.perf_counter() - t0, precision=PRECISION,
        left_out=tuple(name for name in on_disk if name not in packed))


def _text_files(src: Path) -> list[str]:
    """The dataset's text files, relative to ``src``: top-level ones, splits and captions."""
    names = [name for name in _TOP_FILES if (src / name).is_file()]
    for d in _TEXT_DIRS:
        names += sorted(f"{d}/{p.name}" for p in (src / d).glob("*.txt")
                        if p.is_file() and not p.name.startswith("."))
    return names


def _read_motion(src: Path, ids: list[str], progress: bool) -> dict[str, np.ndarray]:
    """Every clip's 3D and 2D arrays, laid end to end, with per-clip cameras."""
    joints, cols2d, lengths = [], {k: [] for k in MOTION2D_KEYS}, []
    for cid in tqdm(ids, desc="reading clips", unit="clip", disable=not progress):
        p3, p2 = src / MOTION3D_DIR / f"{cid}.npy", src / MOTION2D_DIR / f"{cid}.npz"
        if not p3.is_file() or not p2.is_file():
            raise DatasetError(f"{src}: clip {cid!r} has no {'3D' if not p3.is_file() else '2D'} "
                               "motion file")
        try:  # a damaged file is named, not numpy's message about pickles alone
            x = np.load(p3, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DatasetError(f"{p3}: not a readable .npy array ({e})") from None
        try:
            with np.load(p2, allow_pickle=False) as z:
                if sorted(z.files) != sorted(MOTION2D_KEYS):
                    raise DatasetError(f"{p2}: arrays {sorted(z.files)}, expected {sorted(MOTION2D_KEYS)}")
                arrays = {k: z[k] for k in MOTION2D_KEYS}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{p2}: not a readable .npz file ({e})") from None
        t, j = (x.shape[0], x.shape[1]) if x.ndim == 3 else (-1, -1)
        want = {"joints": (x, np.float32, (t, j, 3)),
                "trajectory": (arrays["trajectory"], np.float32, (t, 2)),
                "limbs": (arrays["limbs"], np.float32, (t, j - 1, 2)),
                "confidence": (arrays["confidence"], np.float32, (t, j)),
                **{k: (arrays[k], np.float64, ()) for k in _CAMERA_SCALARS},
                "camera_translation": (arrays["camera_translation"], np.float64, (2,))}
        for what, (a, dtype, shape) in want.items():
            if a.dtype != dtype or a.shape != shape or t < 1:
                raise DatasetError(f"{src}: clip {cid!r}: {what} is {a.dtype} {a.shape}, expected "
                                   f"{np.dtype(dtype)} {shape} (3D {x.shape})")
        joints.append(x)
        for k in MOTION2D_KEYS:
            cols2d[k].append(arrays[k])
        lengths.append(len(x))
    if len({x.shape[1] for x in joints}) != 1:
        raise DatasetError(f"{src}: clips have different numbers of joints")
    out = {"joints": np.concatenate(joints), "lengths": np.array(lengths, dtype=np.int64)}
    for k in ("trajectory", "limbs", "confidence"):
        out[k] = np.concatenate(cols2d[k])
    for k in _CAMERA:
        out[k] = np.stack(cols2d[k])
    return out


def _encode(m: dict[str, np.ndarray], parents: np.ndarray,
            progress: bool) -> tuple[dict[str, bytes], dict]:
    """Coded arrays (tar members) and their part of the manifest; checks they decode exactly."""
    lengths, joints = m["lengths"], m["joints"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    bones = np.stack([codec.bone_lengths(joints[s:s + n], parents) for s, n in zip(starts, lengths)])
    views = codec.view_matrices(m["camera_azimuth_deg"], m["camera_elevation_deg"], m["camera_scale"])
    res3d = codec.encode_joints(joints, lengths, parents, bones)
    traj2d, limbs2d = codec.predict_2d(joints, lengths, views, m["camera_translation"], parents)
    res2d = {"trajectory": codec.residual(m["trajectory"], traj2d),
             "limbs": codec.residual(m["limbs"], limbs2d),
             "confidence": codec.residual(m["confidence"], np.ones(m["confidence"].shape))}

    # a decoder that disagreed with the encoder would corrupt silently: prove it here
    with _bar(progress, len(joints), "checking", "frame") as bar:
        back = codec.decode_joints(res3d, lengths, parents, bones, progress=bar.update)
    if not _same(back, joints) or not all(
            _same(codec.restore(res2d[k], p), m[k])
            for k, p in (("trajectory", traj2d), ("limbs", limbs2d),
                         ("confidence", np.ones(m["confidence"].shape)))):
        raise RuntimeError("free3d.data.motion_codec did not restore the motion exactly (a bug)")

    coded = {"motion3d": res3d, **res2d}
    raw = {"bone_length": bones, "view": views,
           **{k: m[k] for k in _CAMERA}}
    members = {f"arrays/{k}.npy": _npy(codec.to_planes(v)) for k, v in coded.items()}
    members |= {f"arrays/{k}.npy": _npy(v) for k, v in raw.items()}
    how = {
        "motion3d": "distance in float32 steps from the joint's parent plus its bone continued "
                    "from the last two frames, the bone's largest part from its length; "
                    "zigzag uint32 byte planes",
        "trajectory": "distance in float32 steps from the 3D root seen by the clip's camera "
                      "(arrays/view.npy, camera_translation); zigzag uint32 byte planes",
        "limbs": "distance in float32 steps from the 3D limbs seen by the clip's camera; "
                 "zigzag uint32 byte planes",
        "confidence": "distance in float32 steps from 1; zigzag uint32 byte planes",
    }
    original = {"motion3d": joints, "trajectory": m["trajectory"], "limbs": m["limbs"],
                "confidence": m["confidence"]}
    manifest = {
        "frames": lengths.tolist(),
        "parents": parents.tolist(),
        "arrays": {k: {"dtype": "float32", "shape": list(original[k].shape), "coding": how[k],
                       "sha256": _sha256(original[k])} for k in coded}
        | {k: {"dtype": str(v.dtype), "shape": list(v.shape), "coding": "as is"}
           for k, v in raw.items()},
    }
    return members, manifest


def _write_tar(raw, members: dict[str, bytes], progress: bool) -> None:
    total = sum(len(b) for b in members.values())
    with (_bar(progress, total, "compressing", "B") as bar,
          lzma.LZMAFile(raw, "w", preset=XZ_PRESET) as xz,
          tarfile.open(fileobj=xz, mode="w|", format=tarfile.PAX_FORMAT) as tar):
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644  # same input, same bytes
            tar.addfile(info, _Counting(io.BytesIO(data), bar.update))


# ---------------------------------------------------------------------------------------
# unpack


def unpack_dataset(src: str | os.PathLike, dst: str | os.PathLike, *,
                   progress: bool = True) -> Path:
    """Write the pack ``src`` out as the prepared dataset folder ``dst`` and return it.

    ``dst`` must not exist or be empty; it appears only when complete. Every array is
    checked against the checksum it was packed with. Raises :class:`PackError` for a file
    that is not a free3d pack, or is truncated or corrupt.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such pack file")
    if dst.exists() and not (dst.is_dir() and not any(dst.iterdir())):
        raise FileExistsError(f"{dst} already exists and is not empty; unpack into a new folder")
    with open(src, "rb") as f:
        if f.read(len(_XZ_MAGIC)) != _XZ_MAGIC:
            raise PackError(f"{src} is not a free3d pack (not an xz file)")
    members = _read_tar(src, progress)
    manifest = _read_manifest(src, members)
    files, ids = manifest["files"], manifest["clips"]
    lengths = np.asarray(manifest["frames"], dtype=np.int64)
    parents = np.asarray(manifest["parents"], dtype=np.int64)
    arrays = {}
    for name in manifest["arrays"]:
        data = members.get(f"arrays/{name}.npy")
        if data is None:
            raise PackError(f"{src} is damaged: arrays/{name}.npy is missing")
        try:
            arrays[name] = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise PackError(f"{src} is damaged: arrays/{name}.npy cannot be read ({e})") from None
    for name in files:
        if name not in members:
            raise PackError(f"{src} is damaged: {name} is missing")

    shape = tuple(manifest["arrays"]["motion3d"]["shape"])
    with _bar(progress, shape[0], "decoding", "frame") as bar:
        joints = codec.decode_joints(codec.from_planes(arrays["motion3d"], shape), lengths,
                                     parents, arrays["bone_length"], progress=bar.update)
    traj2d, limbs2d = codec.predict_2d(joints, lengths, arrays["view"],
                                       arrays["camera_translation"], parents)
    motion = {"motion3d": joints}
    for name, pred in (("trajectory", traj2d), ("limbs", limbs2d), ("confidence", 1.0)):
        spec = manifest["arrays"][name]
        res = codec.from_planes(arrays[name], tuple(spec["shape"]))
        motion[name] = codec.restore(res, np.broadcast_to(pred, res.shape))
    for name, values in motion.items():
        if _sha256(values) != manifest["arrays"][name]["sha256"]:
            raise PackError(f"{src}: the unpacked {name} differs from what was packed "
                            "(checksum); the file is damaged, or this machine decodes differently")

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(members[name])
        _write_motion(tmp, ids, lengths, motion, arrays, progress)
        usual_mode(tmp)
        if dst.exists():
            dst.rmdir()  # empty, checked above
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def _read_tar(src: Path, progress: bool) -> dict[str, bytes]:
    """Every member of the pack, read to the end of the xz stream so its checksums are checked."""
    members: dict[str, bytes] = {}
    try:
        with (open(src, "rb") as raw,
              _bar(progress, src.stat().st_size, "decompressing", "B") as bar,
              lzma.LZMAFile(_Counting(raw, bar.update)) as xz):
            with tarfile.open(fileobj=xz, mode="r|") as tar:
                for info in tar:
                    if not members and info.name != MANIFEST:  # e.g. some other .tar.xz
                        raise PackError(f"{src} is not a free3d pack (it does not start "
                                        f"with {MANIFEST})")
                    if info.isfile():
                        members[info.name] = tar.extractfile(info).read()
            while xz.read(1 << 20):
                pass
    except (tarfile.TarError, lzma.LZMAError, EOFError) as e:
        raise PackError(f"{src} is truncated or corrupt ({e})") from None
    return members


def _read_manifest(src: Path, members: dict[str, bytes]) -> dict:
    if MANIFEST not in members:
        raise PackError(f"{src} is not a free3d pack (an empty archive)")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as e:
        raise PackError(f"{src}: {MANIFEST} is malformed ({e})") from None
    if manifest.get("format") != PACK_FORMAT:
        raise PackError(f"{src} is not a free3d pack ({MANIFEST} says {manifest.get('format')!r})")
    if manifest.get("format_version") != PACK_VERSION:
        raise PackError(f"{src}: pack format version {manifest.get('format_version')}, this free3d "
                        f"reads {PACK_VERSION}; use the free3d that packed it "
                        f"({manifest.get('free3d_version')})")
    missing = [k for k in ("dataset", "clips", "frames", "parents", "arrays", "files")
               if k not in manifest]
    if missing or len(manifest.get("clips", ())) != len(manifest.get("frames", ())):
        raise PackError(f"{src}: {MANIFEST} is damaged (missing {missing or 'frames'})")
    if manifest["dataset"].get("format_version") != FORMAT_VERSION:
        raise PackError(f"{src} holds a prepared dataset of format version "
                        f"{manifest['dataset']['format_version']}, this free3d reads {FORMAT_VERSION}")
    for name in manifest["files"]:
        _check_relative(src, name)
    for cid in manifest["clips"]:
        check_clip_id(cid)
    return manifest


def _check_relative(src: Path, name: str) -> None:
    """A text file's name must land inside the dataset: top level, splits/ or texts/."""
    parts = name.split("/")
    ok = (len(parts) == 1 and name in _TOP_FILES) or (
        len(parts) == 2 and parts[0] in _TEXT_DIRS and parts[1].endswith(".txt")
        and not parts[1].startswith(".") and "\\" not in parts[1])
    if not ok:
        raise PackError(f"{src}: refusing to write {name!r} (outside a prepared dataset's layout)")


def _write_motion(root: Path, ids: list[str], lengths: np.ndarray, motion: dict[str, np.ndarray],
                  arrays: dict[str, np.ndarray], progress: bool) -> None:
    (root / MOTION3D_DIR).mkdir(exist_ok=True)
    (root / MOTION2D_DIR).mkdir(exist_ok=True)
    ends = np.cumsum(lengths)
    for c, (cid, end, n) in enumerate(tqdm(list(zip(ids, ends, lengths)), desc="writing clips",
                                           unit="clip", disable=not progress)):
        rows = slice(end - n, end)
        np.save(root / MOTION3D_DIR / f"{cid}.npy", motion["motion3d"][rows])
        camera = Camera(*(float(arrays[k][c]) for k in _CAMERA_SCALARS),
                        tuple(float(v) for v in arrays["camera_translation"][c]))
        save_motion2d(root / MOTION2D_DIR / f"{cid}.npz",
                      Motion2D(motion["trajectory"][rows], motion["limbs"][rows],
                               motion["confidence"][rows], camera))


# ---------------------------------------------------------------------------------------
# helpers


class _Counting:
    """A file wrapper that reports how many bytes pass through ``read``."""

    def __init__(self, f, report: Callable[[int], object]) -> None:
        self.f, self.report = f, report

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.report(len(data))
        return data


def _bar(progress: bool, total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", disable=not progress,
                leave=False)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == np.ascontiguousarray(b).tobytes()
