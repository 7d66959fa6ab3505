"""Exact, compressible coding of a prepared dataset's float32 motion.

Each float32 is stored as its distance, counted in representable float32 values, from a
prediction that the decoder can repeat bit for bit. Decoding adds the distance back, so
every value returns bit-identical whatever the prediction; a good prediction only makes
the distances small, and small integers are what xz compresses well (raw mocap float32
barely shrinks: its low mantissa bits are noise).

Predictions use only float64 ``+ - * sqrt`` on float32 inputs, one element at a time:
IEEE 754 rounds those the same on every machine, unlike BLAS products or ``sin``/``cos``.

- 3D joints (T, J, 3): the root continues its last two frames in a straight line; every
  other joint is its parent this frame plus its bone continued the same way; then the
  bone's largest component is set from the bone's (per-clip) length and its other two
  components, since a bone is rigid. On Bandai-Namco this stores 43 % of the raw bytes.
- 2D (trajectory, limbs): the clip's stored 3D seen through the clip's stored camera
  (``scale * R[:2] @ x + translation``), which is how the 2D was made, from float64
  joints. What remains is the float32 rounding of the 3D, a few units in the last place.
- confidence: 1.
"""

from __future__ import annotations

import functools

import numpy as np

_SIGN = np.uint32(0x80000000)


def _ordered(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys in the floats' order, so key differences count floats between."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _unordered(keys: np.ndarray) -> np.ndarray:
    return np.where(keys & _SIGN, keys & ~_SIGN, ~keys).astype(np.uint32).view(np.float32)


def _quiet(f):
    """Data with inf (or predictions that overflow) warns in numpy; the coding stays exact."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return f(*args, **kwargs)
    return wrapper


def _to_float32(prediction: np.ndarray) -> np.ndarray:
    # a non-finite prediction would be a NaN whose bits differ between CPUs: predict 0 there
    return np.where(np.isfinite(prediction), prediction, 0.0).astype(np.float32)


@_quiet
def residual(values: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Zigzag-coded uint32 distance from ``prediction`` (rounded to float32) to ``values``."""
    d = (_ordered(values) - _ordered(_to_float32(prediction))).view(np.int32)  # wraps mod 2**32
    return ((d << 1) ^ (d >> 31)).view(np.uint32)


@_quiet
def restore(res: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Inverse of :func:`residual`: the exact float32 values."""
    res = np.asarray(res, dtype=np.uint32)
    d = (res >> 1) ^ (np.uint32(0) - (res & 1))
    return _unordered(_ordered(_to_float32(prediction)) + d)


def to_planes(res: np.ndarray) -> np.ndarray:
    """(N, ...) uint32 -> (4, C, N) uint8: byte planes, each channel's frames together.

    Most distances are small, so the high planes are nearly all zero and each plane's
    bytes look alike: xz does far better on this than on the interleaved words.
    """
    by_channel = np.ascontiguousarray(res.reshape(len(res), -1).T.astype("<u4"))
    return np.ascontiguousarray(by_channel.view(np.uint8).reshape(*by_channel.shape, 4)
                                .transpose(2, 0, 1))


def from_planes(planes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_planes`, back to uint32 of ``shape``."""
    words = np.ascontiguousarray(planes.transpose(1, 2, 0)).view("<u4")[..., 0]
    return np.ascontiguousarray(words.T.astype(np.uint32)).reshape(shape)


# ---------------------------------------------------------------------------------------
# 3D joints


@_quiet
def bone_lengths(joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(T, J, 3) -> (J - 1,) mean bone lengths as float32 (stored; the 3D prediction uses them)."""
    bones = joints[:, 1:].astype(np.float64) - joints[:, parents[1:]]
    return np.linalg.norm(bones, axis=-1).mean(axis=0).astype(np.float32)


def _continue(last: np.ndarray, before: np.ndarray, t1, t2) -> np.ndarray:
    """Straight-line continuation of two earlier frames (one: stay; none: 0)."""
    return np.where(t2, 2.0 * last - before, np.where(t1, last, 0.0))


def _predict_joint(parent_now, own1, own2, parent1, parent2, t1, t2) -> np.ndarray:
    """(n, 3) float64 prediction of a joint from earlier frames and its parent this frame."""
    if parent_now is None:  # the root
        return _continue(own1, own2, t1, t2)
    return parent_now + _continue(own1 - parent1, own2 - parent2, t1, t2)


def _from_length(prediction, joint_now, parent_now, own1, parent1, length, t1):
    """``prediction`` with the bone's largest component (last frame) set from its length.

    Reads only the other two components of ``joint_now``, which the decoder has already
    restored when it comes here.
    """
    last = own1 - parent1
    axis = np.argmax(np.abs(last), axis=-1)[..., None]
    is_axis = np.arange(3) == axis
    bone = np.where(is_axis, 0.0, joint_now.astype(np.float64) - parent_now)
    square = length * length - (bone[:, 0] * bone[:, 0] + bone[:, 1] * bone[:, 1]
                                + bone[:, 2] * bone[:, 2])
    side = np.where(np.take_along_axis(last, axis, -1)[:, 0] < 0, -1.0, 1.0)
    along = parent_now + (side * np.sqrt(np.maximum(square, 0.0)))[:, None]
    return np.where(is_axis & np.asarray(t1)[..., None], along, prediction)


def _frame_positions(lengths: np.ndarray) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


@_quiet
def encode_joints(joints: np.ndarray, lengths: np.ndarray, parents: np.ndarray,
                  bone_length: np.ndarray) -> np.ndarray:
    """(N, J, 3) float32 joints of clips laid end to end -> (N, J, 3) uint32 residuals.

    ``bone_length`` is (clips, J - 1) float32, from :func:`bone_lengths`.
    """
    x = joints.astype(np.float64)
    pos = _frame_positions(lengths)
    t1, t2 = (pos >= 1)[:, None], (pos >= 2)[:, None]
    x1, x2 = np.roll(x, 1, axis=0), np.roll(x, 2, axis=0)  # masked where they cross clips
    length = np.repeat(bone_length.astype(np.float64), lengths, axis=0)
    out = np.empty(joints.shape, dtype=np.uint32)
    for j, p in enumerate(parents):
        if p < 0:
            pred = _predict_joint(None, x1[:, j], x2[:, j], None, None, t1, t2)
        else:
            pred = _predict_joint(x[:, p], x1[:, j], x2[:, j], x1[:, p], x2[:, p], t1, t2)
            pred = _from_length(pred, joints[:, j], x[:, p], x1[:, j], x1[:, p],
                                length[:, j - 1], t1[:, 0])
        out[:, j] = residual(joints[:, j], pred)
    return out


@_quiet
def decode_joints(res: np.ndarray, lengths: np.ndarray, parents: np.ndarray,
                  bone_length: np.ndarray, *, progress=None) -> np.ndarray:
    """Inverse of :func:`encode_joints`. Frame t needs frames t-1 and t-2 restored, so
    this steps through frame positions, all clips at once. ``progress(n)`` is told each step."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    x = np.zeros(res.shape, dtype=np.float32)
    length = bone_length.astype(np.float64)
    for t in range(int(lengths.max(initial=0))):
        live = lengths > t
        rows = starts[live] + t
        r1, r2 = rows - min(t, 1), rows - min(t, 2)  # unused (masked) before frames 1 and 2
        t1, t2 = t >= 1, t >= 2
        x64, x1, x2 = x[rows].astype(np.float64), x[r1].astype(np.float64), x[r2].astype(np.float64)
        for j, p in enumerate(parents):
            if p < 0:
                pred = _predict_joint(None, x1[:, j], x2[:, j], None, None, t1, t2)
                x64[:, j] = restore(res[rows, j], pred)
                continue
            pred = _predict_joint(x64[:, p], x1[:, j], x2[:, j], x1[:, p], x2[:, p], t1, t2)
            first = restore(res[rows, j], pred)  # right except the length-predicted component
            pred = _from_length(pred, first, x64[:, p], x1[:, j], x1[:, p], length[live, j - 1],
                                np.full(len(rows), t1))
            x64[:, j] = restore(res[rows, j], pred)
        x[rows] = x64
        if progress is not None:
            progress(int(live.sum()))
    return x


# ---------------------------------------------------------------------------------------
# 2D, predicted from the 3D


def view_matrices(azimuth_deg: np.ndarray, elevation_deg: np.ndarray,
                  scale: np.ndarray) -> np.ndarray:
    """(clips, 2, 3) float32 ``scale * R[:2]`` (stored: the 2D prediction reads these)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
    # rows x and y of rotation_x(el) @ rotation_y(-az) (free3d.representation.camera_rotation)
    rows = np.stack([np.stack([ca, 0 * ca, -sa], -1),
                     np.stack([-se * sa, ce, -se * ca], -1)], -2)
    return (scale[:, None, None] * rows).astype(np.float32)


@_quiet
def predict_2d(joints: np.ndarray, lengths: np.ndarray, views: np.ndarray,
               translation: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, J, 3) float32 joints -> float64 (trajectory (N, 2), limbs (N, J - 1, 2)) as the
    clips' cameras would see them."""
    a = np.repeat(views.astype(np.float64), lengths, axis=0)[:, None]  # (N, 1, 2, 3)
    x = joints.astype(np.float64)
    seen = a[..., 0] * x[..., 0:1] + a[..., 1] * x[..., 1:2] + a[..., 2] * x[..., 2:3]
    seen = seen + np.repeat(translation, lengths, axis=0)[:, None]
    return seen[:, 0], seen[:, 1:] - seen[:, parents[1:]]
