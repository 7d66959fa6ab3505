"""``free3d lift``: a person's 2D keypoints in, 3D joints out, with a model folder's ML-RQ.

The keypoints are normalised like the training 2D (:func:`free3d.keypoints.prepare_2d`),
lifted by the ML-RQ (:func:`free3d.evaluation.lift.lift_clip`), given one length per bone,
stood upright (:func:`free3d.data.canonical.upright_transform`, without turning the body
to level the floor) and put on a level floor by moving frames vertically
(:func:`free3d.data.canonical.remove_floor_slope`; why: docs/lift.md), and each frame
stood on that floor (:func:`free3d.grounding.ground`).
Outputs are written into a hidden scratch folder and moved into place at the end, so a
failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import load_autoencoder
from ..data.canonical import remove_floor_slope, upright_transform
from ..evaluation.lift import lift_clip
from ..foot_lock import lock_feet
from ..grounding import ground
from ..keypoints import TARGET_FPS, Keypoints, prepare_2d
from ..representation import to_free3d
from ..skeleton import Skeleton
from .bvh import rigidify
from .generated import write_motion_file

MANIFEST = "lifted.json"


@dataclass
class LiftedMotion:
    joints: np.ndarray  # (T, J, 3) metres, Y up, 20 fps, floor at y = 0
    joints2d: np.ndarray  # (T, J, 2) the normalised input it was lifted from (y up)
    confidence: np.ndarray  # (T, J); 0 where the input joint was missing or guessed
    skeleton: Skeleton
    fps: float = TARGET_FPS
    feet_locked: bool = False  # planted feet pinned by free3d.foot_lock


def load_lifter(model: str | os.PathLike | None = None):
    """The ML-RQ of a model folder (None: the bundled one), in eval mode on the CPU."""
    from ..api import DEFAULT_MODEL, ModelError

    root = DEFAULT_MODEL if model in (None, "default") else Path(model)
    folder = root / "mlrq" if (root / "mlrq").is_dir() else root
    try:
        lifter, cfg, skeleton = load_autoencoder(folder)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise ModelError(f"cannot load an ML-RQ from {root}: {msg}") from e
    if getattr(lifter, "input_dim", 2) != 2:
        raise ModelError(f"{folder} is a {cfg.get('stage')} run; lifting needs an ML-RQ (2D in)")
    return lifter, skeleton


@torch.no_grad()
def lift_keypoints(kp: Keypoints, lifter, skeleton: Skeleton, *, foot_lock: bool = True) -> LiftedMotion:
    """Lift one person's keypoints to canonical 3D (metres, Y up, floor at 0, 20 fps, each
    bone at its median length over the clip; planted feet pinned unless ``foot_lock`` is
    False, :mod:`free3d.foot_lock`)."""
    xy, conf = prepare_2d(kp, skeleton)
    traj, limbs = to_free3d(torch.from_numpy(xy).float(), skeleton)
    # one length per bone (the clip's median), as a body has and as BVH stores it: the
    # npy and the bvh of one lift then hold the same joints
    raw = rigidify(lift_clip(lifter, traj, limbs, skeleton).numpy(), skeleton)
    # stood up by the ankle-to-hip direction, then the floor levelled by moving frames
    # vertically, not by turning the body: on lifted training clips, turning it to level
    # the floor left it leaning more (mean error 5.0 against 3.7 degrees, docs/lift.md)
    rot, t = upright_transform(raw, skeleton, level_floor=False)
    joints = ground(remove_floor_slope(raw @ rot.T + t, skeleton))
    return LiftedMotion(lock_feet(joints, skeleton) if foot_lock else joints, xy, conf, skeleton,
                        feet_locked=foot_lock)


def output_names(stem: str, formats: list[str]) -> list[str]:
    return [f"{stem}.{fmt}" for fmt in formats] + [f"{stem}_2d.npz", MANIFEST]


def save_lifted(motion: LiftedMotion, out: str | os.PathLike, stem: str, formats: list[str], *,
                source: str, layout: str, input_fps: float, notes: list[str]) -> list[Path]:
    """Write ``<stem>.<fmt>`` for each format, ``<stem>_2d.npz`` (the normalised 2D and its
    confidence) and ``lifted.json`` into ``out``; all or nothing."""
    out = Path(out)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".free3d-lift-", dir=out))
    written = []
    try:
        files = {}
        for fmt in formats:
            path = scratch / f"{stem}.{fmt}"
            write_motion_file(path, fmt, motion.joints, motion.skeleton, fps=motion.fps,
                              title=f"{Path(source).name}: lifted", joints2d=motion.joints2d)
            files[fmt] = path.name
        np.savez(scratch / f"{stem}_2d.npz", joints2d=motion.joints2d.astype(np.float32),
                 confidence=motion.confidence.astype(np.float32), fps=motion.fps)
        files["2d"] = f"{stem}_2d.npz"
        manifest = {"source": str(source), "layout": layout, "input_fps": input_fps,
                    "fps": motion.fps, "frames": int(len(motion.joints)),
                    "seconds": round(len(motion.joints) / motion.fps, 2),
                    "skeleton": motion.skeleton.name,
                    "missing_fraction": round(float((motion.confidence == 0).mean()), 4),
                    "feet_locked": motion.feet_locked,
                    "notes": notes, "files": files}
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for path in sorted(scratch.iterdir()):
            os.replace(path, out / path.name)
            written.append(out / path.name)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    return written


__all__ = ["LiftedMotion", "lift_keypoints", "load_lifter", "save_lifted"]
