"""Writing generated motions to disk: joints as .npy, motion capture as .bvh, previews as
.gif / .mp4 / .png, a 3D viewer as .html, and ``generations.json`` listing what each file
is (prompt, seed, length).

Several processes may save into one folder at once: the manifest is read, merged and
replaced under a lock on the folder, and every file appears by an atomic rename.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..files import write_text_atomic
from ..locks import hold, locked, remove_abandoned
from .bvh import write_bvh
from .html import motion_payload, write_html
from .preview import render_preview

OUTPUT_FORMATS = ("npy", "bvh", "gif", "mp4", "png", "html")
MANIFEST = "generations.json"
HTML_NAME = "generations.html"  # `generate --format html`: one viewer file for the whole call
SCRATCH = ".free3d-"  # prefix of the hidden folder each save renders into


def write_motion_file(path: Path, fmt: str, joints: np.ndarray, skeleton, *, fps: float, title: str,
                      joints2d: np.ndarray | None = None) -> None:
    """One motion as ``fmt``: npy (float32 joints), bvh, html (the 3D viewer), or a gif / mp4 /
    png preview (beside ``joints2d``, the 2D it came from, when given)."""
    if fmt == "npy":
        np.save(path, joints.astype(np.float32))
    elif fmt == "bvh":
        write_bvh(path, joints, skeleton, fps=fps)
    elif fmt == "html":
        write_html(path, [motion_payload(joints, skeleton, label=title, fps=fps)], title=title)
    else:
        render_preview(joints, joints2d, skeleton, path, title=title, fps=fps)


def parse_formats(spec: str) -> list[str]:
    """``"npy,gif"`` -> ["npy", "gif"], checked (mp4 also needs imageio-ffmpeg)."""
    formats = [f.strip().lower().lstrip(".") for f in spec.split(",") if f.strip()]
    bad = [f for f in formats if f not in OUTPUT_FORMATS]
    if not formats or bad:
        raise ValueError(f"unknown output format {', '.join(bad) or spec!r}; choose from "
                         f"{', '.join(OUTPUT_FORMATS)} (comma separated)")
    if "mp4" in formats:
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ValueError("--format mp4 needs the imageio-ffmpeg package "
                             "(pip install imageio-ffmpeg); or use gif") from None
    return list(dict.fromkeys(formats))


def slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-") or "motion"


def output_stem(number: int, text: str, seed: int) -> str:
    """The name (without extension) of a generated motion's files."""
    return f"{number:02d}_{slug(text)}_seed{seed}"


def read_generations(out: str | os.PathLike) -> list[dict]:
    """The entries of ``out/generations.json`` ([] when there is none), or a ValueError naming
    the file when it is not a list of entries with their files."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable free3d manifest ({e}); move it away or give "
                         "--overwrite") from None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("files"), dict) for e in entries):
        raise ValueError(f"{path} is not a free3d manifest (a list of entries, each with its "
                         "\"files\"); move it away or give --overwrite")
    return entries


def check_output_dir(out: str | os.PathLike, names: list[str], *, overwrite: bool = False,
                     label: str = "--out") -> None:
    """Before any generating: ``out`` is (or can be made) a writable folder and, without
    ``overwrite``, holds no earlier outputs (no entries in generations.json, none of ``names``).

    Nothing is left behind: the probe it writes is removed again.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{label} {out} exists and is not a folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"{label} {out}: {existing} is a file, not a folder")
    try:  # the only sure test (root writes where permissions say no; /proc refuses whatever they say)
        if existing == out:
            fd, probe = tempfile.mkstemp(prefix=".free3d-probe-", dir=out)
            os.close(fd)
            os.unlink(probe)
        else:  # a private folder where --out's first missing one would go: no race with another run
            os.rmdir(tempfile.mkdtemp(prefix=".free3d-probe-", dir=existing))
    except OSError as e:
        raise ValueError(f"{label} {out} cannot be made or written: {e.strerror or e}") from None
    if overwrite:
        return
    entries = read_generations(out)
    if entries:
        raise FileExistsError(f"{label} {out} already holds {len(entries)} generated motion(s) "
                              f"(listed in {out / MANIFEST}); give --overwrite to replace them, or "
                              f"choose another {label}")
    clash = [n for n in names if (out / n).exists()]
    if clash:
        more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
        raise FileExistsError(f"{label} {out} already holds {clash[0]}{more}; give --overwrite to "
                              f"replace, or choose another {label}")


def _clean_leftovers(out: Path) -> None:
    """Remove what killed saves left in ``out``: scratch folders no live process holds, and
    manifest temporaries (written only under the folder lock, which the caller holds)."""
    remove_abandoned(out, SCRATCH)
    for path in out.glob(f".{MANIFEST}.*"):
        path.unlink(missing_ok=True)


def _entry_files(entry: dict) -> set[str]:
    # plain names inside the folder only: a hand-edited manifest must not point elsewhere
    return {f for f in entry.get("files", {}).values()
            if isinstance(f, str) and f == Path(f).name and f not in ("", ".", "..")}


def save_html(motions, out: str | os.PathLike, *, prompt_numbers=None) -> Path:
    """``out/generations.html``: every motion of a call in one self-contained 3D viewer."""
    items = [motion_payload(m.joints, m.skeleton, fps=m.fps,
                            label=f"[{prompt_numbers[i] if prompt_numbers is not None else i}] "
                                  f"{m.text} (seed {m.seed})")
             for i, m in enumerate(motions)]
    return write_html(Path(out) / HTML_NAME, items, title=f"free3d: {len(items)} generated motion(s)")


def save_motions(motions, out: str | os.PathLike, formats: list[str], *, prompt_numbers=None,
                 replace: bool = False) -> list[Path]:
    """Write every motion in each format into ``out`` and list them in ``generations.json``.

    Files are ``<prompt number>_<slug>_seed<seed>.<ext>``. They are rendered into a hidden
    scratch folder first (a failure leaves no partial output; one left by a kill is removed
    by the next save), then moved in, and the manifest is rewritten atomically under a lock
    on ``out``: saves from several processes at once all keep their entries. An earlier
    entry for a file written again is replaced by the new one; ``replace`` drops every
    earlier entry and removes its files (``--overwrite``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with locked(out):  # made and locked before another save can take it for a dead one's
        _clean_leftovers(out)
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH, dir=out))
        held = hold(scratch)
    written = []
    try:
        entries = []
        for i, m in enumerate(motions):
            stem = output_stem(prompt_numbers[i] if prompt_numbers is not None else i, m.text, m.seed)
            files = {}
            for fmt in formats:
                path = scratch / f"{stem}.{fmt}"
                write_motion_file(path, fmt, m.joints, m.skeleton, fps=m.fps,
                                  title=f"{m.text} (seed {m.seed})")
                files[fmt] = path.name
            entries.append({"text": m.text, "seed": m.seed, "frames": m.num_frames,
                            "seconds": round(m.seconds, 2), "fps": m.fps, "skeleton": m.skeleton.name,
                            "files": files})
        new = set().union(*(_entry_files(e) for e in entries))
        with locked(out):  # read, merge and replace the manifest as one step
            try:
                old = read_generations(out)
            except ValueError:
                if not replace:
                    raise
                old = []  # --overwrite replaces an unreadable manifest
            kept = [] if replace else [e for e in old if not _entry_files(e) & new]
            for path in sorted(scratch.iterdir()):
                os.replace(path, out / path.name)
                written.append(out / path.name)
            write_text_atomic(out / MANIFEST, json.dumps(kept + entries, indent=2) + "\n")
            if replace:  # after the new manifest: a kill here leaves unlisted files, never missing ones
                for name in set().union(*(_entry_files(e) for e in old)) - new:
                    (out / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.close(held)
    return written
