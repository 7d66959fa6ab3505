"""Writing generated motions to disk: joints as .npy, previews as .gif / .mp4 / .png, and
``generations.json`` listing what each file is (prompt, seed, length)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .preview import render_preview

OUTPUT_FORMATS = ("npy", "gif", "mp4", "png")


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


def save_motions(motions, out: str | os.PathLike, formats: list[str], *, prompt_numbers=None) -> list[Path]:
    """Write every motion in each format into ``out``; all files appear together at the end.

    Files are ``<prompt number>_<slug>_seed<seed>.<ext>``. Everything is rendered into a
    scratch folder first, so a failure leaves no partial output behind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".free3d-", dir=out))
    entries, written = [], []
    try:
        for i, m in enumerate(motions):
            number = prompt_numbers[i] if prompt_numbers is not None else i
            stem = f"{number:02d}_{slug(m.text)}_seed{m.seed}"
            files = {}
            for fmt in formats:
                path = scratch / f"{stem}.{fmt}"
                if fmt == "npy":
                    np.save(path, m.joints.astype(np.float32))
                else:
                    render_preview(m.joints, None, m.skeleton, path, title=f"{m.text} (seed {m.seed})",
                                   fps=m.fps)
                files[fmt] = path.name
            entries.append({"text": m.text, "seed": m.seed, "frames": m.num_frames,
                            "seconds": round(m.seconds, 2), "fps": m.fps, "skeleton": m.skeleton.name,
                            "files": files})
        manifest = out / "generations.json"
        old = json.loads(manifest.read_text()) if manifest.is_file() else []
        (scratch / "generations.json").write_text(json.dumps(old + entries, indent=2) + "\n")
        for path in sorted(scratch.iterdir()):
            os.replace(path, out / path.name)
            if path.name != "generations.json":
                written.append(out / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written
