"""The generator's tokens seen from one camera (free3d.data.single_view.canonical_view)."""

from __future__ import annotations

import numpy as np
import pytest

from free3d.data.canonical import canonicalize
from free3d.data.ground_truth import world_to_camera
from free3d.data.single_view import CANONICAL_CAMERA, Camera, canonical_view, project_clip
from free3d.data.sources.procedural import procedural_motion
from free3d.skeleton import get_skeleton


@pytest.mark.parametrize("kind", ["walk", "wave"])
def test_canonical_view_does_not_depend_on_the_camera_a_clip_was_filmed_from(kind):
    s = get_skeleton("bandai21")
    world = canonicalize(procedural_motion(kind, s, seconds=3.0, speed="normal",
                                           rng=np.random.default_rng(1)), s)
    expected = canonical_view(world, s)
    # a clip already upright keeps its pose: the canonical camera's own view of it (the
    # floor levelling of upright_transform may move it a few millimetres)
    direct = project_clip(world, CANONICAL_CAMERA, s)
    assert np.abs(expected.limbs - direct.limbs).max() < 1e-2
    assert np.abs(expected.trajectory - direct.trajectory).max() < 1e-2
    for az, el in [(0.0, 0.0), (130.0, 15.0), (250.0, -5.0)]:
        # an exact lift is the clip in its camera's frame: tilted, turned, anywhere
        cam_frame = world_to_camera(world, Camera(az, el, 1.7, (0.3, -0.2)))
        seen = canonical_view(cam_frame, s)
        assert np.abs(seen.trajectory - expected.trajectory).max() < 1e-4, (kind, az, el)
        assert np.abs(seen.limbs - expected.limbs).max() < 1e-4, (kind, az, el)


def test_the_canonical_camera_sees_facing_travel_and_sides():
    """Three-quarter front: a forward walk moves in the image, and the body's left and
    right are apart (a side view would stack them, a front view would hide travel)."""
    s = get_skeleton("bandai21")
    world = canonicalize(procedural_motion("walk", s, seconds=3.0, speed="normal",
                                           rng=np.random.default_rng(2)), s)
    seen = project_clip(world, CANONICAL_CAMERA, s)
    assert np.linalg.norm(seen.trajectory[-1] - seen.trajectory[0]) > 0.3
    joints2d = world_to_camera(world, CANONICAL_CAMERA)[..., :2]
    shoulders = joints2d[:, s.index("left_shoulder"), 0] - joints2d[:, s.index("right_shoulder"), 0]
    assert np.abs(shoulders).min() > 0.1
