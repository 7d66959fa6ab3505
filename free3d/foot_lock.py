"""Foot locking: a planted foot stays where it was put down, on the floor.

An output stage for canonical clips (metres, Y up, floor at y = 0), as animation tools
clean up mocap: generated and lifted motion plant feet a few centimetres above the
floor and let them slide. Per foot:

1. **Contacts.** The foot is planted where its lower joint (ankle or toe) is less than
   ``contact_height`` above the clip's floor (the 10th percentile of the feet's lowest
   points: a floating clip plants its feet in the air) and either is still (slower than
   ``still_speed`` horizontally) or moves backwards under the body slower than
   ``contact_speed`` (a generated foot that glides through its stance). Runs shorter than
   ``min_frames`` are dropped and gaps of up to ``max_gap`` frames are filled.
2. **Targets.** While planted, the foot's slower end (the ankle as the heel lands, the
   toes as it leaves) stays in one place, where it was on average, and the foot's lower
   end is on the floor; the rest of the foot keeps its offset (it may still roll and turn).
   A foot moving faster than ``still_speed`` is pinned only in part, less the faster it
   goes, so the ends of a real step (the foot landing, lifting) are hardly changed.
3. **Blending.** Outside the runs the correction fades to zero over ``blend_frames``
   (a cosine), and is interpolated across gaps too short to fade out and back in.
4. **Lowering.** Where a planted foot is out of the leg's reach (the body floats above
   it), the whole body comes down just enough, smoothly over time.
5. **Two-bone IK.** The knee is placed so that thigh and shin keep their lengths and
   bend towards where the knee was.

Before 2 to 5, the whole body moves along the floor with its planted feet
(:func:`follow_planted_feet`): where a decoder lets a body glide over still legs, its
root path and its legs disagree, and the legs win (``body_follows_feet=False`` to keep
the root path).

It reads only the joints (no model, no 3D data); it moves the body along the floor with
its planted feet, the legs below the hips and, where it lowers the body, everything by
that height. Bones keep their lengths.
``free3d eval physics`` reports motion with and without it; ``free3d eval generation``
scores the model's own output, without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.canonical import FPS, check_clip
from .grounding import smooth_upper
from .ik import SIDES, descendants, two_bone_ik
from .skeleton import Skeleton


@dataclass(frozen=True)
class FootLockConfig:
    contact_height: float = 0.08  # m above the clip's floor: a lower foot may be planted
    still_speed: float = 0.3  # m/s: and still (slower than this horizontally), or
    contact_speed: float = 1.2  # m/s: slower than this, moving backwards under the body
    min_frames: int = 3  # shorter planted runs are ignored (frames at 20 fps)
    max_gap: int = 2  # shorter breaks inside a planted run are filled
    blend_frames: int = 4  # the correction fades out over this many frames
    reach: float = 0.999  # a leg may straighten to this fraction of its length
    # the body first moves with its planted feet (follow_planted_feet): a whole body
    # gliding over still legs stops; False = only the legs move
    body_follows_feet: bool = True


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _runs_by_value(x: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of equal values."""
    cuts = np.flatnonzero(x[1:] != x[:-1]) + 1
    return list(zip([0, *cuts.tolist()], [*cuts.tolist(), len(x)]))


def foot_contacts(joints: np.ndarray, skeleton: Skeleton, *, fps: float = FPS,
                  config: FootLockConfig = FootLockConfig()) -> np.ndarray:
    """(T, 2) planted masks (left, right) of a canonical (T, J, 3) clip."""
    joints = check_clip(joints, skeleton)
    out = np.zeros((len(joints), 2), dtype=bool)
    t = np.arange(len(joints))
    pelvis = np.gradient(joints[:, 0, [0, 2]], axis=0) * fps  # (T, 2) the body's velocity
    lowest, speed, backward = [], [], []
    for side in SIDES:
        foot = joints[:, [skeleton.index(f"{side}_ankle"), skeleton.index(f"{side}_toe")]]
        low = foot[..., 1].argmin(1)  # the foot's lower joint in each frame
        vel = (np.gradient(foot[..., [0, 2]], axis=0) * fps)[t, low]  # (T, 2)
        lowest.append(foot[t, low, 1])
        speed.append(np.linalg.norm(vel, axis=-1))
        # a supporting foot moves backwards under the body (in the gait's stance phase),
        # even where a generator lets it glide; a swinging one overtakes the body
        backward.append(((vel - pelvis) * pelvis).sum(-1) < 0)
    # the floor the feet walk on: a floating clip plants its feet above y = 0
    floor = np.percentile(np.concatenate(lowest), 10)
    for s in range(len(SIDES)):
        low_enough = lowest[s] - floor < config.contact_height
        still = speed[s] < config.still_speed
        mask = low_enough & (still | (backward[s] & (speed[s] < config.contact_speed)))
        for a, b in _runs(~mask):  # fill short breaks between planted frames
            if a > 0 and b < len(mask) and b - a <= config.max_gap:
                mask[a:b] = True
        for a, b in _runs(mask):
            if b - a < config.min_frames:
                mask[a:b] = False
        out[:, s] = mask
    return out


def _offsets(planted: np.ndarray, target: np.ndarray, current: np.ndarray, blend: int) -> np.ndarray:
    """(T, 3) correction: target - current on planted frames, faded or bridged between."""
    n = len(planted)
    delta = np.zeros((n, 3))
    runs = _runs(planted)
    for a, b in runs:
        delta[a:b] = target[a:b] - current[a:b]
    fade = lambda d: 0.5 * (1 + np.cos(np.pi * d / (blend + 1)))  # noqa: E731  d = 1..blend
    for i, (a, b) in enumerate(runs):
        nxt = runs[i + 1][0] if i + 1 < len(runs) else None
        if nxt is not None and nxt - b <= 2 * blend:  # a short gap: bridge it linearly
            w = np.arange(1, nxt - b + 1)[:, None] / (nxt - b + 1)
            delta[b:nxt] = (1 - w) * delta[b - 1] + w * delta[nxt]
            continue
        for d in range(1, blend + 1):  # fade out after the run ...
            if b - 1 + d < n:
                delta[b - 1 + d] += fade(d) * delta[b - 1]
        if i == 0 or runs[i - 1][1] + 2 * blend < a:  # ... and in before it (unless bridged)
            for d in range(1, blend + 1):
                if a - d >= 0:
                    delta[a - d] += fade(d) * delta[a]
    return delta


def follow_planted_feet(joints: np.ndarray, skeleton: Skeleton, planted: np.ndarray) -> np.ndarray:
    """A copy of a canonical (T, J, 3) clip moved along the floor so that its planted feet
    (``planted``, (T, 2), :func:`foot_contacts`) do not slide: from each frame to the next,
    the whole body moves back by the slip of the planted feet (their mean, where both are
    planted; per foot the slower of ankle and toe, the end it turns about). Frames with no
    foot planted keep their own step, so a flight phase keeps its travel.

    A decoder that lets a standing body glide over its still legs (its root path and its
    legs disagree) gets the legs' version: the body stays. A walk whose feet stay put
    under it is not changed.
    """
    out = joints.copy()
    slips = []
    for s, side in enumerate(SIDES):
        foot = joints[:, [skeleton.index(f"{side}_ankle"), skeleton.index(f"{side}_toe")]][..., [0, 2]]
        step = np.diff(foot, axis=0)  # (T-1, 2, 2)
        slip = step[np.arange(len(step)), np.linalg.norm(step, axis=-1).argmin(1)]  # (T-1, 2)
        both = planted[1:, s] & planted[:-1, s]  # planted at both ends of the step
        slips.append(np.where(both[:, None], slip, np.nan))
    slips = np.stack(slips)  # (2, T-1, 2)
    counted = (~np.isnan(slips[..., 0])).sum(0)  # (T-1,) planted feet per step
    mean = np.nansum(slips, 0) / np.maximum(counted, 1)[:, None]  # 0 where none is planted
    out[1:, :, 0] -= np.cumsum(mean[:, 0])[:, None]
    out[1:, :, 2] -= np.cumsum(mean[:, 1])[:, None]
    return out


def lock_feet(joints: np.ndarray, skeleton: Skeleton, *, fps: float = FPS,
              config: FootLockConfig = FootLockConfig()) -> np.ndarray:
    """A copy of a canonical (T, J, 3) clip with planted feet pinned (module docstring)."""
    joints = check_clip(joints, skeleton)
    planted = foot_contacts(joints, skeleton, fps=fps, config=config)
    if not planted.any():
        return joints.copy()
    if config.body_follows_feet:
        joints = follow_planted_feet(joints, skeleton, planted)
    legs = [tuple(skeleton.index(f"{side}_{r}") for r in ("hip", "knee", "ankle", "toe")) for side in SIDES]
    wanted = []
    t = np.arange(len(joints))
    for s, (_, _, ankle, toe) in enumerate(legs):
        foot = joints[:, [ankle, toe]]
        # the foot turns about its slower end: the heel as it lands, the toes as it leaves
        speed = np.linalg.norm(np.gradient(foot[..., [0, 2]], axis=0), axis=-1)
        pivot = speed.argmin(1)
        contact = foot[t, pivot]  # (T, 3)
        target = joints[:, ankle].copy()
        target[:, 1] -= foot[..., 1].min(1)  # the foot's lower end on the floor
        for a, b in _runs(planted[:, s]):
            for c, d in _runs_by_value(pivot[a:b]):  # each pivot stays put while it turns
                r = slice(a + c, a + d)
                target[r][:, [0, 2]] += contact[r][:, [0, 2]].mean(0) - contact[r][:, [0, 2]]
        # a fast foot is only partly pinned: the ends of a real step, not its middle
        fast = np.clip((speed.min(1) * fps - config.still_speed)
                       / (config.contact_speed - config.still_speed), 0.0, 1.0)
        target = joints[:, ankle] + (1 - fast)[:, None] * (target - joints[:, ankle])
        wanted.append(joints[:, ankle] + _offsets(planted[:, s], target, joints[:, ankle],
                                                  config.blend_frames))
    # a body floating over its planted feet cannot reach them with straight legs: lower
    # the whole body just enough, smoothly
    drop = np.zeros(len(joints))
    for (hip, knee, ankle, _), want in zip(legs, wanted):
        # as far as the leg reached before, or nearly straight: a leg that stays put is not moved
        reach = np.maximum(np.linalg.norm(joints[:, ankle] - joints[:, hip], axis=-1),
                           config.reach * (np.linalg.norm(joints[:, knee] - joints[:, hip], axis=-1)
                                           + np.linalg.norm(joints[:, ankle] - joints[:, knee], axis=-1)))
        flat = np.linalg.norm((want - joints[:, hip])[:, [0, 2]], axis=-1)
        below = np.sqrt(np.maximum(reach ** 2 - flat ** 2, 0.0))
        drop = np.maximum(drop, joints[:, hip, 1] - want[:, 1] - below)
    drop = smooth_upper(np.maximum(drop, 0.0), config.blend_frames)
    out = joints.copy()
    out[..., 1] -= drop[:, None]
    left_hip, right_hip = joints[:, legs[0][0]], joints[:, legs[1][0]]
    forward = np.cross(left_hip - right_hip, [0.0, 1.0, 0.0])
    for (hip, knee, ankle, _), want in zip(legs, wanted):
        new_knee, new_ankle = two_bone_ik(out[:, hip], out[:, knee], out[:, ankle], want, forward)
        below_ankle = descendants(skeleton, ankle) | {ankle}
        shin = descendants(skeleton, knee) - below_ankle  # joints hanging off the shin, if any
        knee_shift, ankle_shift = new_knee - out[:, knee], new_ankle - out[:, ankle]
        out[:, knee] = new_knee
        for j in shin:
            out[:, j] += knee_shift
        for j in below_ankle:
            out[:, j] += ankle_shift
    # lowering the body can take a swinging foot under the floor: lift those frames back
    # by as much as it sank, easing in and out over the blend (never more than it sank)
    sunk = np.maximum(-out[..., 1].min(1), 0.0)
    if sunk.any():
        out[..., 1] += smooth_upper(sunk, config.blend_frames)[:, None]
    return out
