"""BVH reading and forward kinematics.

Channels are read in whatever order each joint declares. Rotation channels compose in
the listed order as intrinsic rotations (``Zrotation Xrotation Yrotation`` gives
R = Rz Rx Ry), the convention of BVH writers such as MotionBuilder and Maya. A joint
with position channels takes them as its local translation in place of its OFFSET
(Bandai-Namco writes 6 channels on every joint, positions equal to the offsets).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POSITIONS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


class BVHError(ValueError):
    """A BVH file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class BVHJoint:
    name: str
    parent: int  # -1 for the root
    offset: tuple[float, float, float]
    channels: tuple[str, ...]


@dataclass(frozen=True)
class BVHMotion:
    joints: tuple[BVHJoint, ...]
    frame_time: float
    values: np.ndarray  # (frames, channels), in file order

    @property
    def fps(self) -> float:
        # Files store a rounded frame time (0.0333333): snap to the integer rate it means.
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-3 else fps

    @property
    def num_frames(self) -> int:
        return self.values.shape[0]

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]


def parse_bvh(data: str | bytes, *, source: str = "<bvh>") -> BVHMotion:
    """Parse BVH text. Raises BVHError naming ``source`` on malformed or truncated input."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    head, sep, body = data.partition("MOTION")
    if not sep:
        raise BVHError(f"{source}: no MOTION section (file empty or truncated?)")
    joints = _parse_hierarchy(head, source)
    lines = body.lstrip().split("\n", 2)
    if len(lines) < 2:
        raise BVHError(f"{source}: MOTION section truncated before 'Frame Time'")
    try:
        key, n_frames = lines[0].split(":")
        key2, frame_time = lines[1].split(":")
        if key.strip() != "Frames" or key2.strip() != "Frame Time":
            raise ValueError
        n_frames, frame_time = int(n_frames), float(frame_time)
    except ValueError:
        raise BVHError(f"{source}: expected 'Frames: N' and 'Frame Time: dt' after MOTION") from None
    if n_frames < 1 or not frame_time > 0 or not math.isfinite(frame_time):
        raise BVHError(f"{source}: bad header, Frames={n_frames}, Frame Time={frame_time}")
    n_channels = sum(len(j.channels) for j in joints)
    text = lines[2] if len(lines) > 2 else ""
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise BVHError(f"{source}: non-numeric value in the MOTION data") from None
    expected = n_frames * n_channels
    if values.size != expected:
        raise BVHError(
            f"{source}: truncated or corrupt MOTION data: header says {n_frames} frames x "
            f"{n_channels} channels = {expected} numbers, found {values.size}")
    if not np.isfinite(values).all():  # (else it fails later, in an SVD, without the file)
        frame = int(np.argmin(np.isfinite(values).reshape(n_frames, n_channels).all(axis=1)))
        raise BVHError(f"{source}: NaN or infinite value in the MOTION data (frame {frame + 1})")
    return BVHMotion(tuple(joints), frame_time, values.reshape(n_frames, n_channels))


def read_bvh(path: str | os.PathLike) -> BVHMotion:
    with open(path, "rb") as f:
        return parse_bvh(f.read(), source=os.fspath(path))


def _parse_hierarchy(text: str, source: str) -> list[BVHJoint]:
    tokens = text.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise BVHError(f"{source}: does not start with HIERARCHY")
    joints: list[BVHJoint] = []
    stack: list[int] = []  # per open brace: the joint it belongs to (-1 until known)
    name: str | None = None
    offset: tuple[float, float, float] | None = None
    channels: tuple[str, ...] = ()
    i = 1

    def flush() -> None:
        nonlocal name, offset, channels
        if name is not None:
            if offset is None:
                raise BVHError(f"{source}: joint {name!r} has no OFFSET")
            if not all(math.isfinite(v) for v in offset):
                raise BVHError(f"{source}: joint {name!r} has a NaN or infinite OFFSET")
            parent = next((s for s in reversed(stack[:-1]) if s >= 0), -1)
            joints.append(BVHJoint(name, parent, offset, channels))
            stack[-1] = len(joints) - 1
            name, offset, channels = None, None, ()

    try:
        while i < len(tokens):
            t = tokens[i]
            if t in ("ROOT", "JOINT"):
                flush()
                if t == "ROOT" and joints:
                    raise BVHError(f"{source}: more than one ROOT")
                name = tokens[i + 1]
                i += 2
            elif t == "End":
                flush()
                name = None
                i += 2  # "End Site": skip its braced block, it adds no joint
                if tokens[i] != "{":
                    raise BVHError(f"{source}: expected '{{' after End Site")
                depth = 0
                while True:
                    if tokens[i] == "{":
                        depth += 1
                    elif tokens[i] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
                i += 1
            elif t == "{":
                stack.append(-1)
                i += 1
            elif t == "}":
                flush()
                if not stack:
                    raise BVHError(f"{source}: unbalanced '}}' in HIERARCHY")
                stack.pop()
                i += 1
            elif t == "OFFSET":
                offset = (float(tokens[i + 1]), float(tokens[i + 2]), float(tokens[i + 3]))
                i += 4
            elif t == "CHANNELS":
                n = int(tokens[i + 1])
                channels = tuple(tokens[i + 2: i + 2 + n])
                bad = [c for c in channels if c not in _AXES and c not in _POSITIONS]
                if len(channels) != n or bad:
                    raise BVHError(f"{source}: bad CHANNELS for joint {name!r}: {channels}")
                i += 2 + n
            else:
                raise BVHError(f"{source}: unexpected token {t!r} in HIERARCHY")
    except (IndexError, ValueError) as e:
        if isinstance(e, BVHError):
            raise
        raise BVHError(f"{source}: HIERARCHY truncated or malformed near token {i}") from None
    flush()
    if stack:
        raise BVHError(f"{source}: HIERARCHY has unclosed braces (truncated?)")
    if not joints:
        raise BVHError(f"{source}: HIERARCHY declares no joints")
    return joints


def local_transforms(motion: BVHMotion) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame local rotations (F, J, 3, 3) and translations (F, J, 3) of every joint."""
    f, jn = motion.num_frames, len(motion.joints)
    rot = np.broadcast_to(np.eye(3), (f, jn, 3, 3)).copy()
    trans = np.empty((f, jn, 3))
    col = 0
    for j, joint in enumerate(motion.joints):
        trans[:, j] = joint.offset
        axes = ""
        rot_cols = []
        for c in joint.channels:
            if c in _POSITIONS:
                trans[:, j, _POSITIONS[c]] = motion.values[:, col]
            else:
                axes += _AXES[c]
                rot_cols.append(col)
            col += 1
        if axes:
            angles = motion.values[:, rot_cols]
            rot[:, j] = Rotation.from_euler(axes, angles, degrees=True).as_matrix()
    return rot, trans


def forward_kinematics(
    parents: list[int] | np.ndarray, local_rot: np.ndarray, local_trans: np.ndarray
) -> np.ndarray:
    """World joint positions (F, J, 3) from local rotations and translations.

    Parents must precede children (true of every BVH file, which lists joints depth-first).
    """
    f, jn = local_rot.shape[:2]
    g_rot = np.empty_like(local_rot)
    g_pos = np.empty((f, jn, 3))
    for j, p in enumerate(parents):
        if p < 0:
            g_rot[:, j] = local_rot[:, j]
            g_pos[:, j] = local_trans[:, j]
        else:
            g_rot[:, j] = g_rot[:, p] @ local_rot[:, j]
            g_pos[:, j] = g_pos[:, p] + np.einsum("fab,fb->fa", g_rot[:, p], local_trans[:, j])
    return g_pos


def _resample_rotations(rot: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Slerp (F, J, 3, 3) rotations at fractional frame positions ``src``."""
    f, jn = rot.shape[:2]
    q = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_quat().reshape(f, jn, 4)
    i0 = np.clip(np.floor(src).astype(np.int64), 0, f - 1)
    i1 = np.clip(i0 + 1, 0, f - 1)
    a = (src - i0)[:, None, None]
    q0, q1 = q[i0], q[i1]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # shortest arc
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6
    w0 = np.where(small, 1 - a, np.sin((1 - a) * theta) / np.where(small, 1, sin))
    w1 = np.where(small, a, np.sin(a * theta) / np.where(small, 1, sin))
    out = w0 * q0 + w1 * q1
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    return Rotation.from_quat(out.reshape(-1, 4)).as_matrix().reshape(len(src), jn, 3, 3)


def bvh_to_positions(
    motion: BVHMotion, *, fps: float | None = None, joints: list[str] | None = None
) -> np.ndarray:
    """World joint positions (frames, J, 3) in the file's units.

    ``fps`` resamples first: local rotations are slerped and translations interpolated
    before forward kinematics, so bone lengths stay exactly constant (interpolating
    positions would shorten bones mid-swing). ``joints`` selects and orders joints by name.
    """
    rot, trans = local_transforms(motion)
    if fps is not None and abs(fps - motion.fps) > 1e-6:
        duration = (motion.num_frames - 1) / motion.fps
        n_out = int(np.floor(duration * fps + 1e-6)) + 1
        src = np.arange(n_out) * (motion.fps / fps)
        rot = _resample_rotations(rot, src)
        i0 = np.clip(np.floor(src).astype(np.int64), 0, motion.num_frames - 1)
        i1 = np.clip(i0 + 1, 0, motion.num_frames - 1)
        a = (src - i0)[:, None, None]
        trans = (1 - a) * trans[i0] + a * trans[i1]
    pos = forward_kinematics([j.parent for j in motion.joints], rot, trans)
    if joints is not None:
        names = motion.joint_names
        missing = [n for n in joints if n not in names]
        if missing:
            raise BVHError(f"BVH has no joints named {missing}; it has {names}")
        pos = pos[:, [names.index(n) for n in joints]]
    return pos
