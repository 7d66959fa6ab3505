"""``free3d eval physics``: is a motion grounded? Floating, sliding and sinking, measured.

For canonical clips (metres, Y up, floor at y = 0; see :mod:`free3d.data.canonical`),
whatever made them: real mocap, generated, or lifted from 2D. Per clip:

- ``root_drift_m``: the root's height over the last 0.5 s minus over the first 0.5 s
  (a walk that rises into the air drifts up; real clips drift about 0).
- ``root_height_m``: the root's mean height (real Bandai-Namco hips: about 0.9 m).
- ``hover_m``: the lowest joint's height in the median frame. Real clips touch the floor
  in nearly every frame (about 0); a body hovering over the floor does not, even where
  its feet are never still enough to count as planted.
- ``contact_height_m``: how high a foot is while it is planted. A foot is planted when
  its lowest joint (ankle or toe) moves slower than ``contact_speed`` m/s horizontally;
  its height is that joint's height above the floor. A body floating over the floor plants its
  feet in mid-air, and this says how high.
- ``skating_m_s``: horizontal speed of a foot joint while it is on the floor (lower
  than ``floor_height`` m), the usual foot-skating measure: a sliding foot is on the
  floor and moving.
- ``penetration_m``: mean depth of the lowest joint below the floor, per frame.

Every number is a median over clips (per content label, and over all), so a few odd
clips do not decide it. The thresholds are fixed, not fitted to any model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..data.canonical import FPS, check_clip
from ..foot_lock import lock_feet
from ..grounding import ground
from ..skeleton import Skeleton

METRICS = ("root_drift_m", "root_height_m", "hover_m", "contact_height_m", "skating_m_s", "penetration_m")


@dataclass(frozen=True)
class PhysicsThresholds:
    contact_speed: float = 0.25  # m/s: a foot slower than this horizontally is planted
    floor_height: float = 0.05  # m: a foot joint lower than this is on the floor
    edge_seconds: float = 0.5  # root drift compares the first and last this long


def clip_physics(joints: np.ndarray, skeleton: Skeleton, *, fps: float = FPS,
                 thresholds: PhysicsThresholds = PhysicsThresholds()) -> dict[str, float]:
    """The metrics above for one (T, J, 3) canonical clip (T >= 2). NaN where a clip
    has no planted foot (contact height) or no foot on the floor (skating)."""
    joints = check_clip(joints, skeleton)
    th = thresholds
    root_y = joints[:, 0, 1]
    edge = max(1, min(len(joints) // 2, round(th.edge_seconds * fps)))
    heights, planted_heights, skate = [], [], []
    for side in ("left", "right"):
        foot = joints[:, [skeleton.index(f"{side}_ankle"), skeleton.index(f"{side}_toe")]]  # (T, 2, 3)
        vel = np.diff(foot, axis=0) * fps  # (T-1, 2, 3)
        low = foot[1:, :, 1].argmin(1)  # the foot's lower joint in each frame
        t = np.arange(len(vel))
        speed = np.linalg.norm(vel[t, low][:, [0, 2]], axis=-1)
        height = foot[1:, :, 1][t, low]
        planted_heights.append(height[speed < th.contact_speed])
        on_floor = foot[1:, :, 1] < th.floor_height  # (T-1, 2)
        skate.append(np.linalg.norm(vel[..., [0, 2]], axis=-1)[on_floor])
        heights.append(height)
    planted = np.concatenate(planted_heights)
    sliding = np.concatenate(skate)
    return {
        "root_drift_m": float(root_y[-edge:].mean() - root_y[:edge].mean()),
        "root_height_m": float(root_y.mean()),
        "hover_m": float(np.median(joints[..., 1].min(1))),
        "contact_height_m": float(planted.mean()) if planted.size else float("nan"),
        "skating_m_s": float(sliding.mean()) if sliding.size else float("nan"),
        "penetration_m": float(np.maximum(0.0, -joints[..., 1].min(1)).mean()),
    }


def output_stage_rows(label: str, ungrounded: list[np.ndarray], skeleton: Skeleton
                      ) -> list[tuple[str, list[np.ndarray]]]:
    """Labelled clips for a model's rows: as decoded and stood on the lowest frame (``not
    grounded``), as ``generate`` returns them (every frame on the floor,
    :mod:`free3d.grounding`), and with the feet locked too (:mod:`free3d.foot_lock`)."""
    grounded = [ground(m) for m in ungrounded]
    return [(f"{label}, not grounded", ungrounded), (label, grounded),
            (f"{label}, feet locked", [lock_feet(m, skeleton) for m in grounded])]


def summarize(clips: list[dict[str, float]], groups: list[str]) -> dict[str, dict[str, float]]:
    """Median of each metric over the clips of each group, and over "all"; root drift
    also as the median of its size (``abs_root_drift_m``)."""
    by = defaultdict(list)
    for c, g in zip(clips, groups):
        by[g].append(c)
        by["all"].append(c)
    out = {}
    for g, cs in sorted(by.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        row = {m: float(np.nanmedian([c[m] for c in cs])) if any(np.isfinite(c[m]) for c in cs)
               else float("nan") for m in METRICS}
        row["abs_root_drift_m"] = float(np.median([abs(c["root_drift_m"]) for c in cs]))
        row["clips"] = len(cs)
        out[g] = row
    return out


def format_rows(name: str, summary: dict[str, dict[str, float]]) -> list[str]:
    return [f"| {name} | {g} | {r['clips']} | {r['root_drift_m']:+.3f} | {r['abs_root_drift_m']:.3f} | "
            f"{r['root_height_m']:.2f} | {r['hover_m']:.3f} | {r['contact_height_m']:.3f} | "
            f"{r['skating_m_s']:.3f} | {r['penetration_m']:.3f} |" for g, r in summary.items()]


TABLE_HEADER = ("| motion | content | clips | root drift (m) | abs. root drift (m) | root height (m) "
                "| hover (m) | planted-foot height (m) | skating (m/s) | penetration (m) |\n"
                "|---|---|---|---|---|---|---|---|---|---|")
