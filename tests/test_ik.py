"""free3d.ik: two-bone IK, and decoded bodies put on the skeleton's lengths with hands and
feet kept, on hand-built clips."""

import numpy as np
import pytest

from free3d.data.canonical import canonicalize
from free3d.data.sources.procedural import procedural_motion
from free3d.ik import two_bone_ik, with_bone_lengths
from free3d.skeleton import get_skeleton

PARENTS = {name: np.array(get_skeleton(name).parents[1:]) for name in ("bandai21", "humanml3d22")}


def walk(name: str = "bandai21") -> np.ndarray:
    s = get_skeleton(name)
    return canonicalize(procedural_motion("walk", s, seconds=2.0, speed="normal",
                                          rng=np.random.default_rng(0)), s)


def bones(joints: np.ndarray, name: str = "bandai21") -> np.ndarray:
    return np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[name]], axis=-1)


def shrink_in_depth(joints: np.ndarray, factor: float) -> np.ndarray:
    """What a lifter with flattened depth decodes: the body squashed along z about the root."""
    out = joints.copy()
    out[..., 2] = out[:, :1, 2] + factor * (out[..., 2] - out[:, :1, 2])
    return out


@pytest.mark.parametrize("name", ["bandai21", "humanml3d22"])
def test_a_body_already_on_its_lengths_is_unchanged(name):
    clip = walk(name)
    # (a straight knee may bend by half a millimetre: IK keeps a hair short of full reach)
    np.testing.assert_allclose(with_bone_lengths(clip, get_skeleton(name)), clip, atol=1e-3)


@pytest.mark.parametrize("name", ["bandai21", "humanml3d22"])
def test_flattened_limbs_get_their_lengths_and_keep_hands_and_feet(name):
    s = get_skeleton(name)
    flat = shrink_in_depth(walk(name), 0.6)
    assert np.abs(bones(flat, name) - s.bone_lengths()).max() > 0.02  # the decoder's wandering lengths
    fixed = with_bone_lengths(flat, s)
    lengths = bones(fixed, name)
    np.testing.assert_allclose(lengths, np.broadcast_to(s.bone_lengths(), lengths.shape), atol=1e-9)
    # each wrist and ankle is where it was relative to its shoulder or hip
    for upper, end in (("left_hip", "left_ankle"), ("right_hip", "right_ankle"),
                       ("left_shoulder", "left_wrist"), ("right_shoulder", "right_wrist")):
        u, e = s.index(upper), s.index(end)
        np.testing.assert_allclose(fixed[:, e] - fixed[:, u], flat[:, e] - flat[:, u], atol=1e-6)
    # scaling every bone instead moves the feet: what with_bone_lengths avoids
    scaled = flat.copy()
    for j, p in enumerate(s.parents[1:], start=1):
        bone = flat[:, j] - flat[:, p]
        scaled[:, j] = scaled[:, p] + s.bone_lengths()[j - 1] * bone / np.linalg.norm(bone, axis=-1)[:, None]
    ankle, hip = s.index("left_ankle"), s.index("left_hip")
    drift = np.linalg.norm((scaled[:, ankle] - scaled[:, hip]) - (flat[:, ankle] - flat[:, hip]), axis=-1)
    assert drift.max() > 0.01


def test_two_bone_ik_reaches_a_reachable_target_and_straightens_towards_a_far_one():
    t = 4
    hip, knee, ankle = np.zeros((t, 3)), np.tile([0.0, -0.4, 0.05], (t, 1)), np.tile([0.0, -0.8, 0.0], (t, 1))
    forward = np.tile([0.0, 0.0, 1.0], (t, 1))
    target = np.array([[0.0, -0.7, 0.1], [0.2, -0.6, 0.0], [0.0, -0.5, 0.3], [0.0, -2.0, 0.0]])
    new_knee, new_ankle = two_bone_ik(hip, knee, ankle, target, forward)
    l1, l2 = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip, axis=-1), l1, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(new_ankle - new_knee, axis=-1), l2, atol=1e-9)
    np.testing.assert_allclose(new_ankle[:3], target[:3], atol=1e-9)
    # out of reach: the straight leg points at the target
    np.testing.assert_allclose(new_ankle[3], [0.0, -(l1[3] + l2[3]), 0.0], atol=1e-5)
    # the knee bends to the same side of the hip-to-target line as before
    u = target / np.linalg.norm(target, axis=-1, keepdims=True)
    side = lambda k: k - (k * u).sum(-1, keepdims=True) * u  # noqa: E731
    assert ((side(new_knee) * side(knee))[:3].sum(-1) > 0).all()


def test_bad_shapes_are_one_clear_error():
    with pytest.raises(ValueError, match=r"expected \(T, 21, 3\) joints"):
        with_bone_lengths(np.zeros((10, 22, 3)), get_skeleton("bandai21"))
