"""Foot locking (free3d.foot_lock) on hand-built clips: still, floating, sliding, flying."""

import numpy as np
import pytest

from free3d.data.canonical import canonicalize
from free3d.data.sources.procedural import procedural_motion
from free3d.evaluation.physics import clip_physics
from free3d.foot_lock import FootLockConfig, foot_contacts, lock_feet
from free3d.skeleton import get_skeleton

S = get_skeleton("bandai21")
PARENTS = np.array(S.parents[1:])


def clip(kind: str, seed: int = 0, seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return canonicalize(procedural_motion(kind, S, seconds=seconds, speed="normal", rng=rng), S)


def bones(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[:, 1:] - joints[:, PARENTS], axis=-1)


def standing() -> np.ndarray:
    """Waving on the spot: the procedural wave without its root's sway, feet still."""
    wave = clip("wave")
    wave[..., [0, 2]] -= wave[:, :1, [0, 2]] - wave[:1, :1, [0, 2]]
    return wave


def test_feet_standing_still_on_the_floor_are_left_alone():
    still = standing()
    assert foot_contacts(still, S).all()
    assert np.abs(lock_feet(still, S) - still).max() < 1e-3


def test_a_body_gliding_over_still_legs_stops_where_its_feet_are():
    glide = standing()
    glide[..., 2] += 0.1 * np.arange(len(glide))[:, None] / 20  # the whole body, 0.1 m/s forwards
    travel = lambda j: np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]])  # noqa: E731
    assert travel(glide) > 0.25 and foot_contacts(glide, S).all()
    locked = lock_feet(glide, S)
    assert travel(locked) < 0.01 and clip_physics(locked, S)["skating_m_s"] < 0.01
    np.testing.assert_allclose(locked - locked[:, :1], glide - glide[:, :1], atol=2e-3)  # the pose is kept
    kept = lock_feet(glide, S, config=FootLockConfig(body_follows_feet=False))
    assert travel(kept) > 0.25  # the root's path kept: only the legs move


def test_a_body_floating_over_the_floor_comes_down_onto_its_feet():
    floating = standing()
    floating[..., 1] += 0.06  # the feet 6 cm over the floor, all along
    locked = lock_feet(floating, S)
    before, after = clip_physics(floating, S), clip_physics(locked, S)
    assert before["contact_height_m"] == pytest.approx(0.06, abs=0.01)
    assert after["contact_height_m"] < 0.005
    assert after["root_height_m"] == pytest.approx(before["root_height_m"] - 0.06, abs=0.01)
    np.testing.assert_allclose(bones(locked), bones(floating), atol=1e-9)  # only joints moved
    # the arms are carried down with the body, not bent
    arm = [S.index(n) for n in ("left_wrist", "right_wrist")]
    np.testing.assert_allclose(locked[:, arm] - locked[:, :1], floating[:, arm] - floating[:, :1], atol=1e-9)


def test_feet_sliding_under_a_walk_slide_less_and_keep_their_bones():
    walk = clip("walk")  # the procedural walk swings its legs while the root glides
    locked = lock_feet(walk, S)
    assert foot_contacts(walk, S).any()
    before, after = clip_physics(walk, S), clip_physics(locked, S)
    assert after["skating_m_s"] < 0.95 * before["skating_m_s"]
    assert after["contact_height_m"] < 0.5 * before["contact_height_m"]
    np.testing.assert_allclose(bones(locked), bones(walk), atol=1e-9)
    assert np.isfinite(locked).all() and locked[..., 1].min() >= -1e-9  # nothing under the floor
    # the upper body keeps its pose
    head = S.index("head")
    assert np.abs((locked - locked[:, :1])[:, head] - (walk - walk[:, :1])[:, head]).max() < 1e-9


def test_feet_in_the_air_are_not_pinned():
    jump = clip("jump", seconds=4.0)
    planted = foot_contacts(jump, S)
    flight = jump[:, [S.index("left_toe"), S.index("right_toe")], 1].min(1) > 0.15
    assert flight.any() and not planted[flight].any()
    # the feet in the air stay up (a pinned foot would be pulled to the floor)
    feet = [S.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    locked = lock_feet(jump, S)
    lifted = jump[flight][:, feet, 1].min(1) - jump[flight][:, 0, 1]  # below the hips
    assert (locked[flight][:, feet, 1].min(1) - locked[flight][:, 0, 1] > lifted - 0.02).all()
    assert (locked[flight][:, feet, 1].min(1) > 0.1).all()


def test_a_bad_clip_is_refused():
    with pytest.raises(ValueError, match="expected a clip"):
        lock_feet(np.zeros((10, 3)), S)
