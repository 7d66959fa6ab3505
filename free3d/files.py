"""Writing output files whole or not at all, with the permissions a plain open() gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def usual_mode(path: str | os.PathLike) -> None:
    """The mode a plain open() or mkdir() would give (mkstemp and mkdtemp make it private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed at the end:
    a failure or a kill leaves the old file (or none), never half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
