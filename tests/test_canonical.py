import math

import numpy as np
import pytest
import torch

from free3d.data.canonical import MAX_FRAMES, MIN_FRAMES, canonicalize, clip_windows, resample_positions
from free3d.representation import facing_direction, rotation_y
from free3d.skeleton import get_skeleton


def test_clip_windows():
    assert clip_windows(MIN_FRAMES - 1) == []
    assert clip_windows(MIN_FRAMES) == [(0, MIN_FRAMES)]
    assert clip_windows(MAX_FRAMES) == [(0, MAX_FRAMES)]
    w = clip_windows(MAX_FRAMES + 1)
    assert len(w) == 2 and w[0][0] == 0 and w[-1][1] == MAX_FRAMES + 1
    for n in range(MIN_FRAMES, 2000, 7):
        w = clip_windows(n)
        assert w[0][0] == 0 and w[-1][1] == n
        assert all(b == c for (_, b), (c, _) in zip(w[:-1], w[1:]))  # contiguous, nothing lost
        assert all(MIN_FRAMES <= b - a <= MAX_FRAMES for a, b in w)


def test_canonicalize_puts_the_body_on_the_floor_at_the_origin_facing_z():
    s = get_skeleton("humanml3d22")
    rest = s.rest_pose()
    t = np.arange(30)[:, None, None]
    clip = rest[None] + np.array([0.03, 0.0, 0.0]) * t  # drift along +X
    turned = (torch.from_numpy(clip) @ rotation_y(torch.tensor(2.0, dtype=torch.float64)).T).numpy()
    moved = turned + np.array([5.0, 0.7, -3.0])
    c = canonicalize(moved, s)
    assert abs(c[..., 1].min()) < 1e-12
    assert np.allclose(c[0, 0, [0, 2]], 0)
    assert np.allclose(facing_direction(torch.from_numpy(c[0]), s).numpy(), [0, 0, 1], atol=1e-9)
    # the rigid motion is preserved: the clip still drifts to the body's left (+X)
    assert c[-1, 0, 0] == pytest.approx(29 * 0.03) and abs(c[-1, 0, 2]) < 1e-9


def test_resample_positions_keeps_bone_lengths():
    s = get_skeleton("kit21")
    rest = s.rest_pose()
    n = 25  # 2 s at 12.5 fps
    ang = np.linspace(0, math.pi / 2, n)
    frames = []
    for a in ang:  # rotate the left arm about Z through 90 degrees
        pose = rest.copy()
        sh = s.index("left_shoulder")
        rel = pose[[sh, s.index("left_elbow"), s.index("left_wrist")]] - pose[sh]
        rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        pose[[sh, s.index("left_elbow"), s.index("left_wrist")]] = pose[sh] + rel @ rot.T
        frames.append(pose)
    out = resample_positions(np.stack(frames), 12.5, 20.0, s)
    assert out.shape == (int((n - 1) * 20 / 12.5) + 1, 21, 3)
    bones = np.linalg.norm(out[:, 1:] - out[:, s.limb_parents], axis=-1)
    assert np.abs(bones - s.bone_lengths()).max() < 1e-9
    np.testing.assert_allclose(out[0], frames[0], atol=1e-12)
    np.testing.assert_allclose(out[8], frames[5], atol=1e-12)  # 8 / 20 s = 5 / 12.5 s
