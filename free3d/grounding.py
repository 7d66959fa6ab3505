"""Grounding: a decoded clip's floor at y = 0 in every frame, not only in its lowest one.

An output stage for upright clips (metres, Y up). Standing a decoded clip up puts its
lowest point of all frames on the floor (:func:`free3d.data.canonical.upright_transform`).
A decoder's vertical trajectory is its least reliable part (in single-view 2D, height and
depth mix through the camera's elevation), and one frame that dips, often the last few
of a generated clip, then leaves every other frame hovering: the stop-24 bundle's walks
had their lowest joint 4 to 17 cm above the floor in the median frame (docs/results.md,
"Stop 25").

Here the floor under each frame is the lower envelope of the clip's lowest joint over a
short window: the lowest point within +-``window_s`` / 2, averaged over the same window.
Every frame moves down by it. Nothing goes under the floor (each window minimum it
averages covers that frame), the clip's lowest frame still touches it, and the
correction is a smooth (piecewise linear) function of time. A walk or a run always has a
foot down within a window of 0.7 s; a jump's flight of up to about that long keeps its
height. Real mocap, whose floor is already at 0, moves by under 2.5 cm (Bandai-Namco
clips of every content). The floor is assumed flat: a clip that climbs stairs is
flattened.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .data.canonical import FPS

WINDOW_S = 0.7


def floor_heights(joints: np.ndarray, *, fps: float = FPS, window_s: float = WINDOW_S) -> np.ndarray:
    """(T,) the floor's height under each frame of an upright (T, J, 3) clip (see above)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 3 or len(joints) < 1:
        raise ValueError(f"expected an upright clip (T, J, 3); got {joints.shape}")
    # the lower envelope is the upper envelope of the negated curve
    return -smooth_upper(-joints[..., 1].min(1), max(0, round(window_s * fps / 2)))


def smooth_upper(x: np.ndarray, width: int) -> np.ndarray:
    """A smooth curve at or above ``x`` (T,): the running maximum over +-width frames, then a
    moving average over the same window (each maximum it averages covers the frame, so it
    never falls below x). Shared with :mod:`free3d.foot_lock`'s lowering of the body."""
    if width < 1:
        return x
    pad = np.pad(x, width, mode="edge")
    high = sliding_window_view(pad, 2 * width + 1).max(-1)
    return np.maximum(sliding_window_view(np.pad(high, width, mode="edge"), 2 * width + 1).mean(-1), x)


def ground(joints: np.ndarray, *, fps: float = FPS, window_s: float = WINDOW_S) -> np.ndarray:
    """A copy of an upright (T, J, 3) clip with every frame moved down onto the floor."""
    out = np.array(joints, dtype=np.float64)
    out[..., 1] -= floor_heights(out, fps=fps, window_s=window_s)[:, None]
    return out
