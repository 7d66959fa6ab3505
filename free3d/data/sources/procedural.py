"""A tiny procedural motion dataset: walk-, wave- and jump-like clips with captions.

Built in memory on any registered skeleton by rotating the joints its roles name
(hips, knees, shoulders, elbows) away from the rest T-pose, so tests and demos run
without any downloaded data. Clips are smooth and periodic, with per-clip random speed,
amplitude, length and heading; they are for plumbing and sanity checks, not realism.
"""

from __future__ import annotations

import math
import random

import numpy as np
from scipy.spatial.transform import Rotation

from ...bvh import forward_kinematics
from ...skeleton import Skeleton, get_skeleton
from ..canonical import FPS
from ..take import Take

SOURCE = "procedural"
KINDS = ("walk", "wave", "jump")

_CAPTIONS = {
    "walk": ["a person walks forward{adv}.", "someone takes steps straight ahead{adv}.",
             "a man walks in a straight line{adv}.", "the character strolls forward{adv}.",
             "a woman walks ahead{adv}.", "a figure moves forward on foot{adv}."],
    "wave": ["a person waves {hand}{adv}.", "someone stands still and waves {hand}{adv}.",
             "a man raises {hand} and waves{adv}.", "the character greets someone, waving {hand}{adv}.",
             "a woman waves hello with {hand}{adv}.", "a figure lifts {hand} and waves it{adv}."],
    "jump": ["a person jumps up and down{adv}.", "someone hops in place{adv}.",
             "a man jumps on the spot{adv}.", "the character bends the knees and jumps{adv}.",
             "a woman leaps into the air{adv}.", "a figure does a few jumps in place{adv}."],
}
_ADVERBS = {"slow": [" slowly", " at a slow pace"], "normal": ["", ""],
            "fast": [" quickly", " at a brisk pace"]}
_HANDS = {"left": "the left hand", "right": "the right hand", "both": "both hands"}


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    return Rotation.from_euler(axis, np.asarray(angle, dtype=np.float64)[:, None]).as_matrix()


def procedural_motion(
    kind: str, skeleton: Skeleton, *, seconds: float, speed: str, rng: np.random.Generator,
    hand: str = "right",
) -> np.ndarray:
    """(T, J, 3) metres, Y up, at 20 fps, facing a random heading."""
    if kind not in KINDS:
        raise ValueError(f"unknown procedural motion {kind!r}; choose from {KINDS}")
    n = int(round(seconds * FPS))
    t = np.arange(n) / FPS
    pace = {"slow": 0.7, "normal": 1.0, "fast": 1.4}[speed] * rng.uniform(0.9, 1.1)
    j = skeleton.num_joints
    rot = np.broadcast_to(np.eye(3), (n, j, 3, 3)).copy()
    trans = np.broadcast_to(np.asarray(skeleton.rest_offsets), (n, j, 3)).copy()
    root = np.zeros((n, 3))

    def turn(role: str, r: np.ndarray) -> None:
        rot[:, skeleton.index(role)] = r @ rot[:, skeleton.index(role)]

    # arms hang down unless the motion raises them
    arm_down = math.radians(80)
    turn("left_shoulder", _rot("z", np.full(n, -arm_down)))
    turn("right_shoulder", _rot("z", np.full(n, arm_down)))
    if kind == "walk":
        phase = 2 * math.pi * 0.9 * pace * t
        amp = math.radians(25) * rng.uniform(0.8, 1.2) * min(pace, 1.2)
        for side, sign in (("left", 1.0), ("right", -1.0)):
            swing = sign * np.sin(phase)
            turn(f"{side}_hip", _rot("x", -amp * swing))
            bend = np.maximum(0.0, np.sin(phase + sign * math.pi / 2))
            turn(f"{side}_knee", _rot("x", 1.1 * amp * bend))
            turn(f"{side}_shoulder", _rot("x", 0.8 * amp * swing))
        root[:, 2] = 1.2 * pace * t
        root[:, 1] = 0.02 * np.cos(2 * phase)
    elif kind == "wave":
        freq = 1.5 * pace
        sides = ("left", "right") if hand == "both" else (hand,)
        for side in sides:
            s = 1.0 if side == "left" else -1.0
            # undo the hang and lift the upper arm above shoulder height
            turn(f"{side}_shoulder", _rot("z", np.full(n, s * (arm_down + math.radians(50)))))
            wave = np.sin(2 * math.pi * freq * t) * math.radians(30) * rng.uniform(0.8, 1.2)
            turn(f"{side}_elbow", _rot("z", s * (math.radians(40) + wave)))
        root[:, 0] = 0.02 * np.sin(2 * math.pi * 0.3 * t)
    else:  # jump
        period = 1.1 / pace
        u = (t % period) / period  # 0..0.35 crouch, 0.35..0.75 flight, then land
        crouch = np.where(u < 0.35, np.sin(math.pi * u / 0.35), 0.0)
        crouch += np.where(u > 0.8, np.sin(math.pi * (u - 0.8) / 0.2) * 0.6, 0.0)
        flight = np.where((u >= 0.35) & (u <= 0.8), np.sin(math.pi * (u - 0.35) / 0.45), 0.0)
        bend = math.radians(50) * crouch * rng.uniform(0.8, 1.2)
        for side in ("left", "right"):
            turn(f"{side}_hip", _rot("x", -bend))
            turn(f"{side}_knee", _rot("x", 2 * bend))
            turn(f"{side}_ankle", _rot("x", -bend))
            turn(f"{side}_shoulder", _rot("x", -1.5 * bend))
        leg = float(sum(skeleton.bone_lengths()[[skeleton.limb(f"left_{r}") for r in ("knee", "ankle")]]))
        root[:, 1] = -leg * (1 - np.cos(bend)) + 0.35 * pace * flight
    heading = rng.uniform(0, 2 * math.pi)
    rot[:, 0] = _rot("y", np.full(n, heading)) @ rot[:, 0]
    trans[:, 0] = root @ _rot("y", np.array([heading]))[0].T
    return forward_kinematics(list(skeleton.parents), rot, trans)


def procedural_takes(
    *, skeleton: str | Skeleton = "bandai21", clips_per_kind: int = 8, seed: int = 0
) -> list[Take]:
    """``clips_per_kind`` clips of each kind, captioned, deterministic for a seed."""
    skel = get_skeleton(skeleton)
    rng = np.random.default_rng(seed)
    takes = []
    for kind in KINDS:
        for i in range(clips_per_kind):
            speed = ("slow", "normal", "fast")[i % 3]
            hand = ("right", "left", "both")[(i // 3) % 3]
            seconds = float(rng.uniform(2.5, 8.0))
            joints = procedural_motion(kind, skel, seconds=seconds, speed=speed, rng=rng, hand=hand)
            pick = random.Random(seed * 1000 + len(takes))
            captions = [c.format(adv=pick.choice(_ADVERBS[speed]), hand=_HANDS[hand])
                        for c in _CAPTIONS[kind]]
            labels = {"content": kind, "style": speed}
            takes.append(Take(f"{kind}_{i:03d}", joints.astype(np.float32), SOURCE, labels,
                              captions=captions))
    return takes
