"""Writing joint positions as BVH motion capture (Blender: File > Import > Motion Capture).

The file is in centimetres, Y up (free3d's canonical frame scaled by 100). The hierarchy
is the skeleton's tree with its joint names; OFFSETs point along the skeleton's rest
directions with the clip's median bone lengths, so every bone keeps one length. The root
has ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, every other joint
``Zrotation Xrotation Yrotation`` (intrinsic, R = Rz Rx Ry, as free3d.bvh reads it).

Rotations come from the positions: a joint gets the minimal-twist swing that takes its
first child's rest direction (carried by the parent's frame) to the observed one; at a
branch joint that child is the chain one (spine, neck), and the twist about it is fitted
to the side children, so the pelvis turns with the hips and the chest with the shoulders.
Each side child (hip, collar) hangs from a zero-OFFSET ``<name>_base`` joint that aims it,
so reading the file back (free3d.bvh) gives the input with each bone at its median length,
to float precision; ``branch_joints=False`` keeps exactly the skeleton's joints instead,
at up to ~2 cm error where the input shrugs or tilts the hips against the spine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..files import write_text_atomic
from ..skeleton import Skeleton, get_skeleton

UNITS_PER_METRE = 100.0  # centimetres: what mocap BVH files (and Blender's importer default) use
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
_EULER = "ZXY"  # upper case: intrinsic, matching the channel order above


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) minimal rotations taking unit vectors a to unit vectors b (both (T, 3))."""
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    angle = np.arctan2(s, c)
    # antiparallel: any axis perpendicular to a will do
    perp = np.cross(a, np.array([1.0, 0.0, 0.0]))
    perp = np.where(np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-6,
                    np.cross(a, np.array([0.0, 1.0, 0.0])), perp)
    axis = np.where((s < 1e-9)[:, None], _unit(perp), axis / np.maximum(s, 1e-12)[:, None])
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


def _chain_first(skeleton: Skeleton, c: int) -> tuple[bool, int]:
    """Sort key putting first the child a branch joint's rotation follows exactly: the midline
    one (spine, neck) with the largest subtree, so errors do not pile up along the spine."""
    size, stack = 0, [c]
    while stack:
        j = stack.pop()
        size += 1
        stack += [k for k, p in enumerate(skeleton.parents) if p == j]
    return abs(skeleton.rest_offsets[c][0]) > 1e-9, -size


def _check(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3) or joints.shape[0] < 1:
        raise ValueError(f"BVH export needs joints of shape (frames, {skeleton.num_joints}, 3) for "
                         f"skeleton {skeleton.name!r}, got {joints.shape}")
    bad = ~np.isfinite(joints).all(axis=-1)
    if bad.any():
        f, j = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(f"BVH export: joint positions contain NaN or infinite values ({int(bad.sum())} "
                         f"joint-frames; first at frame {f}, joint {skeleton.joint_names[j]!r})")
    return joints


def bone_lengths(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(J,) per-clip median length of the bone ending at each joint (0 for the root), metres."""
    par = np.array(skeleton.parents)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, par[1:]], axis=-1)
    return np.concatenate([[0.0], np.median(lengths, axis=0)])


def rigidify(joints: np.ndarray, skeleton: str | Skeleton) -> np.ndarray:
    """(T, J, 3) ``joints`` with every bone set to its median length along its observed direction
    (the pose a BVH file, with one length per bone, can hold)."""
    skeleton = get_skeleton(skeleton)
    joints = _check(joints, skeleton)
    lengths = bone_lengths(joints, skeleton)
    out = joints.copy()
    for j in range(1, skeleton.num_joints):
        p = skeleton.parents[j]
        out[:, j] = out[:, p] + lengths[j] * _unit(joints[:, j] - joints[:, p])
    return out


@dataclass(frozen=True)
class BVHChannels:
    """What a BVH file holds, in metres: its joints (depth-first file order) and their motion."""

    names: tuple[str, ...]
    parents: tuple[int, ...]  # into names; -1 for the root
    offsets: np.ndarray  # (N, 3)
    root: np.ndarray  # (T, 3) root positions
    rotations: np.ndarray  # (T, N, 3, 3) local rotations


def joints_to_bvh_channels(
    joints: np.ndarray, skeleton: str | Skeleton, *, branch_joints: bool = True
) -> BVHChannels:
    """The BVH joints and channels that reproduce ``joints`` (T, J, 3) with rigid bones.

    With ``branch_joints`` each side child of a branch joint (a hip, a collar) hangs from a
    zero-OFFSET joint of its own, ``<child>_base``, that turns it: generated motion shrugs
    and tilts the hips against the spine, which one rotation of the branch joint cannot
    follow (up to 2 cm off at the hands). Without it the hierarchy is exactly the skeleton's
    and the side children follow the branch joint's fitted twist.
    """
    skeleton = get_skeleton(skeleton)
    joints = _check(joints, skeleton)
    n, jn = joints.shape[:2]
    parents = skeleton.parents
    lengths = bone_lengths(joints, skeleton)
    rest_dir = _unit(np.asarray(skeleton.rest_offsets, dtype=np.float64))
    offsets = rest_dir * lengths[:, None]
    children = [sorted((c for c in range(jn) if parents[c] == j), key=lambda c: _chain_first(skeleton, c))
                for j in range(jn)]
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    names: list[str] = []
    bparents: list[int] = []
    boffsets: list[np.ndarray] = []
    rotations: list[np.ndarray] = []

    def seen_dir(j: int, c: int) -> np.ndarray:
        return _unit(joints[:, c] - joints[:, j])

    def add(name: str, parent: int, offset: np.ndarray, carried: np.ndarray, world: np.ndarray) -> int:
        names.append(name)
        bparents.append(parent)
        boffsets.append(offset)
        rotations.append(np.swapaxes(carried, -1, -2) @ world)
        return len(names) - 1

    def visit(j: int, parent: int, carried: np.ndarray) -> None:
        kids = children[j]
        if not kids:  # an end joint: its frame moves nothing, keep the parent's (zero local rotation)
            world = carried
        else:  # the first (chain) child exactly, by the minimal-twist swing from the parent's frame
            main = kids[0]
            axis = seen_dir(j, main)
            world = _swing(np.einsum("tab,b->ta", carried, rest_dir[main]), axis) @ carried
            side = kids[1:]
            if side:  # twist about the chain child fitted to the side children (hips / shoulders)
                r = np.einsum("tab,kb->tka", world, offsets[side])
                s = lengths[side][None, :, None] * _unit(joints[:, side] - joints[:, j, None])
                r = r - np.sum(r * axis[:, None], -1, keepdims=True) * axis[:, None]
                s = s - np.sum(s * axis[:, None], -1, keepdims=True) * axis[:, None]
                angle = np.arctan2(np.sum(np.cross(r, s) * axis[:, None], axis=(-1, -2)),
                                   np.sum(r * s, axis=(-1, -2)))
                world = Rotation.from_rotvec(axis * angle[:, None]).as_matrix() @ world
        me = add(skeleton.joint_names[j], parent, offsets[j], carried, world)
        for c in kids:
            if c != kids[0] and branch_joints:
                base = _swing(np.einsum("tab,b->ta", world, rest_dir[c]), seen_dir(j, c)) @ world
                visit(c, add(f"{skeleton.joint_names[c]}_base", me, np.zeros(3), world, base), base)
            else:
                visit(c, me, world)

    visit(0, -1, eye)
    return BVHChannels(tuple(names), tuple(bparents), np.array(boffsets), joints[:, 0].copy(),
                       np.stack(rotations, axis=1))


def bvh_text(joints: np.ndarray, skeleton: str | Skeleton, *, fps: float = 20.0,
             branch_joints: bool = True) -> str:
    """The BVH file (centimetres, Y up) for ``joints`` (T, J, 3) in metres, Y up."""
    if not (isinstance(fps, (int, float)) and fps > 0 and np.isfinite(fps)):
        raise ValueError(f"BVH export: fps must be a positive number, got {fps!r}")
    ch = joints_to_bvh_channels(joints, skeleton, branch_joints=branch_joints)
    n, jn = ch.rotations.shape[:2]
    euler = Rotation.from_matrix(ch.rotations.reshape(-1, 3, 3)).as_euler(_EULER, degrees=True)
    # unwrap each angle over time: the same rotations, without 360-degree jumps in Blender's curves
    euler = np.unwrap(euler.reshape(n, jn, 3), axis=0, period=360.0)
    children = [[c for c in range(jn) if ch.parents[c] == j] for j in range(jn)]
    lines = ["HIERARCHY"]

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x * UNITS_PER_METRE:.6f}" for x in v)

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        channels = ROOT_CHANNELS if j == 0 else JOINT_CHANNELS
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {ch.names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {fmt(ch.offsets[j])}")
        lines.append(f"{pad}  CHANNELS {len(channels)} {' '.join(channels)}")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:  # a tip: BVH wants an End Site; half the incoming bone again, onward
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {fmt(ch.offsets[j] * 0.5)}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)  # joints were built depth-first, so file order is index order
    frame = np.concatenate([ch.root * UNITS_PER_METRE, euler.reshape(n, -1)], axis=1)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{x:.6f}" for x in row) for row in frame]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | os.PathLike, joints: np.ndarray, skeleton: str | Skeleton, *,
              fps: float = 20.0, branch_joints: bool = True) -> Path:
    """Write ``joints`` (T, J, 3), metres, Y up, as a BVH file in centimetres; atomic (temp + rename).

    Raises ValueError (before anything is written) on NaN/infinite input or a shape that is
    not the skeleton's.
    """
    text = bvh_text(joints, skeleton, fps=fps, branch_joints=branch_joints)
    return write_text_atomic(path, text)
