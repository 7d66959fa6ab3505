"""Writing motions as one self-contained HTML file: the data and a 3D viewer (orbit camera,
floor grid, sides coloured, play/pause/scrub/speed, the root path; free3d/viewer/) inline,
so it opens from disk with no network. A Content-Security-Policy in the file forbids any
request, so it cannot depend on one by accident.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..files import write_text_atomic
from ..skeleton import Skeleton
from ..viewer import read_asset
from .preview import joint_sides

NOTE = ("Joints in metres, Y up; drag to orbit, wheel to zoom, double-click to reset the view. "
        "Written by free3d; opens offline.")


def motion_payload(joints: np.ndarray, skeleton: Skeleton, *, label: str, fps: float) -> dict:
    """One motion as the viewer reads it: joints flat in millimetre steps (T * J * 3 numbers,
    metres, Y up), the skeleton's parents, its left and right joints and its head."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3) or len(joints) < 1:
        raise ValueError(f"the viewer needs joints of shape (frames, {skeleton.num_joints}, 3) for "
                         f"skeleton {skeleton.name!r}, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("the viewer needs finite joint positions (NaN or infinite found)")
    sides = joint_sides(skeleton)
    return {
        "label": str(label), "fps": float(fps), "frames": int(len(joints)), "skeleton": skeleton.name,
        "names": list(skeleton.joint_names), "parents": list(skeleton.parents),
        "left": [j for j, s in enumerate(sides) if s == "left"],
        "right": [j for j, s in enumerate(sides) if s == "right"],
        "head": skeleton.index("head"),
        # a millimetre is far below what the eye sees and keeps the file about a third the size
        "joints": np.round(joints, 3).ravel().tolist(),
    }


def _script_json(data: object) -> str:
    """JSON that cannot end the <script> element holding it, whatever the prompts say."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_text(motions: Sequence[dict], *, title: str = "free3d motions") -> str:
    """The HTML file for ``motions`` (each from :func:`motion_payload`)."""
    if not motions:
        raise ValueError("an HTML file needs at least one motion")
    fields = {"CSS": read_asset("viewer.css"), "JS": read_asset("viewer.js"),
              "DATA": _script_json({"motions": list(motions)}), "TITLE": html.escape(title),
              "NOTE": html.escape(NOTE), "VERSION": __version__}
    # one pass over the template: a prompt that spells a placeholder stays as it is
    return re.sub(r"__(CSS|JS|DATA|TITLE|NOTE|VERSION)__", lambda m: fields[m.group(1)],
                  read_asset("export.html"))


def write_html(path: str | os.PathLike, motions: Sequence[dict], *, title: str = "free3d motions") -> Path:
    """Write :func:`html_text` to ``path`` atomically (a temporary file beside it, renamed)."""
    text = html_text(motions, title=title)
    return write_text_atomic(path, text)


__all__ = ["html_text", "motion_payload", "write_html"]
