"""Two-bone IK, and a decoded body put on its skeleton's bone lengths with its hands and
feet kept where the decoder put them.

The ML-RQ decodes limbs whose lengths wander over a clip: a shin leaning in depth comes
out short, because the lifter's depth is flattened. Giving every bone its length by
scaling it along its own direction moves each bone's far end by however short it was,
so a foot's path gains a wobble that the motion never had: in generated walks the
planted foot then slid more (docs/results.md, stop 24). Animation tools fix lengths
the other way round: the ends of the limbs, which touch the floor and carry a gesture,
stay; the elbow and knee move to make the lengths right (two-bone IK).
"""

from __future__ import annotations

import numpy as np

from .skeleton import Skeleton

SIDES = ("left", "right")
# the two-bone chains whose far end is kept: (upper, middle, end) roles, and which way a
# straight one bends (+1: the middle joint forwards, as a knee; -1: backwards, as an elbow)
LIMB_CHAINS = tuple(((f"{s}_{a}", f"{s}_{b}", f"{s}_{c}"), bend) for s in SIDES
                    for a, b, c, bend in (("hip", "knee", "ankle", 1.0),
                                          ("shoulder", "elbow", "wrist", -1.0)))


def descendants(skeleton: Skeleton, joint: int) -> set[int]:
    """Every joint below ``joint`` in the skeleton's tree (parents come before children)."""
    found: set[int] = set()
    for j, p in enumerate(skeleton.parents):
        if p == joint or p in found:
            found.add(j)
    return found


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
                forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New (knee, ankle), (T, 3) each: thigh and shin keep their lengths (as given by the
    three joints), the ankle goes to ``target`` (or as near as the straight limb reaches),
    the knee bends as before (a limb that was straight bends towards ``forward``). Any
    two-bone chain: shoulder, elbow, wrist as well."""
    l1 = np.linalg.norm(knee - hip, axis=-1)
    l2 = np.linalg.norm(ankle - knee, axis=-1)
    axis = target - hip
    d = np.linalg.norm(axis, axis=-1)
    u = axis / np.maximum(d, 1e-9)[:, None]
    d = np.clip(d, np.abs(l1 - l2) + 1e-6, (l1 + l2) * (1 - 1e-6))
    pole = (knee - hip) - ((knee - hip) * u).sum(-1, keepdims=True) * u
    norm = np.linalg.norm(pole, axis=-1)
    # a straight limb has no bend direction: it bends towards `forward`
    ahead = forward - (forward * u).sum(-1, keepdims=True) * u
    pole = np.where((norm > 1e-6)[:, None], pole, ahead)
    pole = pole / np.maximum(np.linalg.norm(pole, axis=-1), 1e-9)[:, None]
    a = (l1 ** 2 - l2 ** 2 + d ** 2) / (2 * d)
    h = np.sqrt(np.maximum(l1 ** 2 - a ** 2, 0.0))
    return hip + a[:, None] * u + h[:, None] * pole, hip + d[:, None] * u


def _chain_down(out: np.ndarray, raw: np.ndarray, joints: list[int], parents, lengths: np.ndarray) -> None:
    """Place ``joints`` (parents first) at their length along the raw bone's direction."""
    for j in joints:
        p = parents[j]
        bone = raw[:, j] - raw[:, p]
        unit = bone / np.maximum(np.linalg.norm(bone, axis=-1), 1e-9)[:, None]
        out[:, j] = out[:, p] + lengths[j - 1] * unit


def with_bone_lengths(raw: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """A (T, J, 3) clip on ``skeleton``'s bone lengths: each bone keeps its direction,
    except that each wrist and ankle stays where it was relative to its shoulder or hip
    (the elbow or knee moves instead, as far as the limb's length allows)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 3 or raw.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"expected (T, {skeleton.num_joints}, 3) joints, got {raw.shape}")
    lengths, parents = skeleton.bone_lengths(), skeleton.parents
    out = raw.copy()
    _chain_down(out, raw, list(range(1, skeleton.num_joints)), parents, lengths)
    # the way the body faces, in whatever frame it is given (the decoder's is a camera's)
    hips = out[:, skeleton.index("left_hip")] - out[:, skeleton.index("right_hip")]
    forward = np.cross(hips, out[:, skeleton.index("neck")] - out[:, skeleton.index("pelvis")])
    for chain, bend in LIMB_CHAINS:
        upper, middle, end = (skeleton.index(r) for r in chain)
        if parents[end] != middle or parents[middle] != upper:
            raise ValueError(f"skeleton {skeleton.name!r}: its limbs are not two-bone chains")
        target = out[:, upper] + raw[:, end] - raw[:, upper]
        out[:, middle], out[:, end] = two_bone_ik(out[:, upper], out[:, middle], out[:, end], target,
                                                     bend * forward)
        below = sorted(descendants(skeleton, middle) - {end})  # the hand or the foot, and anything on it
        _chain_down(out, raw, below, parents, lengths)
    return out
