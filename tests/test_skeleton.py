import dataclasses

import numpy as np
import pytest

from free3d.skeleton import REQUIRED_ROLES, SKELETONS, Skeleton, get_skeleton


def test_registry_has_the_three_skeletons():
    assert {"bandai21", "humanml3d22", "kit21"} <= set(SKELETONS)
    assert get_skeleton().name == "bandai21"
    assert get_skeleton("humanml3d22").num_joints == 22
    assert get_skeleton("kit21").num_joints == 21
    assert get_skeleton("bandai21").num_joints == 21


def test_smpl_order_and_parents():
    s = get_skeleton("humanml3d22")
    assert s.joint_names[:4] == ("pelvis", "left_hip", "right_hip", "spine1")
    assert s.parents == (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_roles_and_canonical_rest_pose(name):
    s = get_skeleton(name)
    assert set(REQUIRED_ROLES) <= set(s.roles)
    rest = s.rest_pose()
    # canonical frame: left side at +X, head above pelvis above ankles, toes forward
    assert rest[s.index("left_hip"), 0] > 0 > rest[s.index("right_hip"), 0]
    assert rest[s.index("left_shoulder"), 0] > 0 > rest[s.index("right_shoulder"), 0]
    assert rest[s.index("head"), 1] > rest[s.index("pelvis"), 1] > rest[s.index("left_ankle"), 1]
    assert rest[s.index("left_toe"), 2] > rest[s.index("left_ankle"), 2]
    assert 1.2 < rest[:, 1].max() - rest[:, 1].min() < 2.1  # a person's height in metres
    assert 0.3 < s.torso_length < 0.7


def test_chain_matrix_rebuilds_rest_pose():
    s = get_skeleton("bandai21")
    limbs = np.asarray(s.rest_offsets[1:])
    assert np.allclose(s.chain_matrix() @ limbs, s.rest_pose())


def test_unknown_skeleton_names_the_problem():
    with pytest.raises(KeyError, match="unknown skeleton 'smplx'.*bandai21"):
        get_skeleton("smplx")


def test_bad_skeleton_definitions_are_refused():
    base = get_skeleton("bandai21")
    with pytest.raises(ValueError, match="parents must come before children"):
        Skeleton(name="x", joint_names=base.joint_names, parents=(-1, 2, *base.parents[2:]),
                 roles=base.roles, rest_offsets=base.rest_offsets)
    with pytest.raises(ValueError, match="missing roles"):
        Skeleton(name="x", joint_names=base.joint_names, parents=base.parents,
                 roles={"pelvis": "Hips"}, rest_offsets=base.rest_offsets)


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_mirror_indices_swap_left_and_right(name):
    s = get_skeleton(name)
    idx = s.mirror_indices
    assert (idx[idx] == np.arange(s.num_joints)).all()  # an involution
    for left in ("left_hip", "left_knee", "left_wrist", "left_shoulder", "left_toe"):
        assert idx[s.index(left)] == s.index(left.replace("left", "right"))
    for middle in ("pelvis", "neck", "head"):
        assert idx[s.index(middle)] == s.index(middle)


def test_mirror_indices_refused_for_an_asymmetric_skeleton():
    s = get_skeleton("bandai21")
    offsets = list(s.rest_offsets)
    offsets[s.index("left_wrist")] = (0.3, 0.0, 0.0)  # a longer left hand
    lopsided = dataclasses.replace(s, name="lopsided", rest_offsets=tuple(offsets))
    with pytest.raises(ValueError, match="not left-right symmetric"):
        _ = lopsided.mirror_indices
