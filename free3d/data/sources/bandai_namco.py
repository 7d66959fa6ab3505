"""Bandai-Namco Research Motion Dataset: BVH takes with content and style labels.

Reads the extracted dataset folders or the .tar.xz archives directly (streamed, never
unpacked to disk). BVH parsing and forward kinematics run in worker processes while the
main process decompresses.
"""

from __future__ import annotations

import json
import os
import tarfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from ...bvh import bvh_to_positions, parse_bvh
from ...skeleton import BANDAI21
from ..canonical import FPS
from ..captions import label_from_cfg
from ..take import Take

SOURCE = "bandai-namco"
CM_TO_M = 0.01


def bvh_bytes_to_joints(data: bytes, source: str) -> np.ndarray:
    """One Bandai-Namco BVH file -> (T, 21, 3) float32 metres at 20 fps."""
    motion = parse_bvh(data, source=source)
    pos = bvh_to_positions(motion, fps=FPS, joints=list(BANDAI21.joint_names))
    return (pos * CM_TO_M).astype(np.float32)


def _label_json(data: bytes, name: str) -> dict:
    """A take's label JSON (its content and style ids); a ValueError naming the file."""
    try:
        labels = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{name}: not a label JSON ({e})") from None
    if not isinstance(labels, dict):
        raise ValueError(f"{name}: not a label JSON (expected an object with content and style ids)")
    return labels


def _die_with_parent(parent: int) -> None:
    """In each worker: exit as soon as the main process is gone (killed: no one else would
    end the workers, which would wait on their queue for ever)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _Progress:
    """File wrapper that advances a byte progress bar as an archive is read."""

    def __init__(self, f, bar: tqdm) -> None:
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.bar.update(len(b))
        return b


def _iter_files(src: Path, bar: tqdm) -> Iterator[tuple[str, bytes]]:
    """(posix path, bytes) of every .bvh, .json and cfg .txt file under ``src``."""
    wanted = (".bvh", ".json", ".txt")
    archives = [src] if src.is_file() else sorted(src.glob("*.tar.xz"))
    if src.is_file() and not src.name.endswith((".tar.xz", ".tar")):
        raise ValueError(f"{src}: expected a folder or a .tar.xz archive of the dataset")
    if archives:
        bar.reset(total=sum(a.stat().st_size for a in archives))
        for archive in archives:
            with open(archive, "rb") as raw:
                try:
                    with tarfile.open(fileobj=_Progress(raw, bar), mode="r|*") as tf:
                        for m in tf:
                            if m.isfile() and m.name.endswith(wanted):
                                yield m.name, tf.extractfile(m).read()
                except (tarfile.TarError, EOFError, OSError) as e:
                    raise ValueError(f"{archive}: cannot read the archive ({e})") from None
        return
    files = sorted(p for p in src.rglob("*") if p.suffix in wanted and p.is_file())
    bar.reset(total=sum(p.stat().st_size for p in files))
    for p in files:
        data = p.read_bytes()
        bar.update(len(data))
        yield p.relative_to(src).as_posix(), data


def load_bandai_namco(
    src: str | os.PathLike, *, workers: int | None = None, progress: bool = True
) -> list[Take]:
    """All takes of the dataset under ``src`` (folder, archive, or folder of archives)."""
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist")
    workers = workers or os.cpu_count() or 1
    joints: dict[str, Future] = {}
    json_labels: dict[str, dict] = {}
    cfg: dict[tuple[str, str], list[str]] = {}  # (dataset folder, kind) -> names by index
    take_dataset: dict[str, str] = {}
    pending: deque[Future] = deque()
    bar = tqdm(desc="reading Bandai-Namco", unit="B", unit_scale=True, disable=not progress)
    with bar, ProcessPoolExecutor(workers, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        for name, data in _iter_files(src, bar):
            path = PurePosixPath(name)
            folder = str(path.parent.parent)  # <dataset>/data/x.bvh, <dataset>/cfg/x.txt
            if path.suffix == ".bvh":
                if path.stem in joints:
                    raise ValueError(f"{src}: take {path.stem} appears twice")
                take_dataset[path.stem] = folder
                joints[path.stem] = pool.submit(bvh_bytes_to_joints, data, name)
                pending.append(joints[path.stem])
                # bound memory: keep a few files in flight, not the whole 550 MB
                while len(pending) > 4 * workers:
                    pending.popleft().result()
            elif path.suffix == ".json" and path.parent.name == "data":
                json_labels[path.stem] = _label_json(data, name)
            elif path.parent.name == "cfg" and path.stem in ("content_label", "style_label"):
                try:
                    cfg[(folder, path.stem.split("_")[0])] = data.decode().split()
                except UnicodeDecodeError:
                    raise ValueError(f"{name}: not UTF-8 text") from None
        if not joints:
            raise ValueError(f"{src}: no BVH files found (expected the Bandai-Namco dataset "
                             "folders or its .tar.xz archives)")
        takes = []
        for take_id in sorted(joints):
            folder = take_dataset[take_id]
            j = joints[take_id].result()
            if take_id not in json_labels:
                raise ValueError(f"{src}: take {take_id} has no label JSON beside it")
            labels = {"dataset": take_id.split("_")[0]}
            for kind in ("content", "style"):
                names = cfg.get((folder, kind))
                if names is None:
                    raise ValueError(f"{src}: {folder}/cfg/{kind}_label.txt is missing")
                idx = json_labels[take_id].get(kind)
                if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(names):
                    raise ValueError(f"{take_id}: {kind} id {idx} not in {kind}_label.txt")
                labels[kind] = label_from_cfg(names[idx])
            takes.append(Take(take_id, j, SOURCE, labels))
    return takes
