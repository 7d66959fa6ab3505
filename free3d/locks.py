"""Advisory locks on folders (flock), for writers that share a folder or leave scratch behind.

A lock is taken on the folder itself, so there is no lock file to leave behind, and the
kernel drops it when its process ends, however it ends: a scratch folder whose lock is
free belongs to no live process and may be removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so writers of one folder must not overlap there
    fcntl = None


@contextmanager
def locked(folder: str | os.PathLike, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on ``folder`` while the block runs; yields whether it was taken
    (always, when ``wait``)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
        yield True
    finally:
        os.close(fd)


def hold(folder: str | os.PathLike) -> int:
    """Lock ``folder`` until the returned descriptor is closed (or the process ends)."""
    fd = os.open(folder, os.O_RDONLY)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def remove_abandoned(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the folders in ``parent`` named ``prefix...`` that no live process holds."""
    removed = []
    for path in Path(parent).iterdir():
        if path.name.startswith(prefix) and path.is_dir() and not path.is_symlink():
            with locked(path, wait=False) as free:
                if free:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed
