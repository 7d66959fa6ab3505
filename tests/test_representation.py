import math

import pytest
import torch

from free3d.representation import (
    body_orientation,
    camera_rotation,
    facing_direction,
    foot_directions,
    from_free3d,
    limb_vectors,
    project,
    random_view_rotations,
    rotate,
    rotation_y,
    to_free3d,
)
from free3d.skeleton import SKELETONS, get_skeleton


def random_motion(skeleton, *, batch=3, frames=17, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    rest = torch.from_numpy(skeleton.rest_pose()).to(dtype)
    return rest + 0.1 * torch.randn(batch, frames, skeleton.num_joints, 3, generator=g, dtype=dtype)


@pytest.mark.parametrize("name", sorted(SKELETONS))
@pytest.mark.parametrize("dim", [2, 3])
def test_round_trip_is_exact(name, dim):
    s = get_skeleton(name)
    joints = random_motion(s)[..., :dim] + torch.tensor([3.0, -1.0, 2.0][:dim])
    traj, limbs = to_free3d(joints, s)
    assert traj.shape == (3, 17, dim) and limbs.shape == (3, 17, s.num_limbs, dim)
    assert (from_free3d(traj, limbs, s) - joints).abs().max() < 1e-5


def test_limb_vectors_are_child_minus_parent():
    s = get_skeleton("bandai21")
    joints = random_motion(s, batch=1, frames=1)[0, 0]
    v = limb_vectors(joints, s)
    k = s.limb("left_knee")
    assert torch.allclose(v[k], joints[s.index("left_knee")] - joints[s.index("left_hip")])


def test_round_trip_is_differentiable():
    s = get_skeleton("humanml3d22")
    limbs = torch.randn(2, 5, s.num_limbs, 3, requires_grad=True)
    traj = torch.zeros(2, 5, 3, requires_grad=True)
    from_free3d(traj, limbs, s)[..., s.index("left_wrist"), :].sum().backward()
    on_chain = limbs.grad[0, 0].abs().sum(-1) > 0
    chain = {s.limb(r) for r in ("left_wrist", "left_elbow", "left_shoulder")}
    assert chain <= set(torch.nonzero(on_chain).flatten().tolist())
    assert not on_chain[s.limb("right_knee")]
    assert traj.grad.abs().sum() > 0


def test_bad_shapes_name_the_skeleton():
    s = get_skeleton("kit21")
    with pytest.raises(ValueError, match="kit21"):
        to_free3d(torch.zeros(4, 22, 3), s)
    with pytest.raises(ValueError, match="kit21"):
        from_free3d(torch.zeros(4, 3), torch.zeros(4, 21, 3), s)


def test_projection_front_camera_drops_depth():
    pts = torch.tensor([[1.0, 2.0, 3.0], [-0.5, 0.1, -7.0]])
    r = camera_rotation(torch.tensor(0.0), torch.tensor(0.0))
    assert torch.allclose(project(pts, r), pts[:, :2])
    assert torch.allclose(project(pts, r, 2.0, torch.tensor([1.0, -1.0])),
                          pts[:, :2] * 2 + torch.tensor([1.0, -1.0]))


def test_camera_at_azimuth_90_sees_the_left_side():
    # the camera sits on +X; depth of a point on +X is towards the camera (+z cam)
    r = camera_rotation(torch.tensor(math.pi / 2), torch.tensor(0.0))
    assert torch.allclose(rotate(torch.tensor([1.0, 0.0, 0.0]), r), torch.tensor([0.0, 0.0, 1.0]),
                          atol=1e-6)
    # world +Z (the body's front) appears to the image's left
    assert torch.allclose(project(torch.tensor([0.0, 0.0, 1.0]), r), torch.tensor([-1.0, 0.0]),
                          atol=1e-6)


def test_elevated_camera_looks_down():
    r = camera_rotation(torch.tensor(0.0), torch.tensor(math.radians(30)))
    cam_dir = torch.tensor([0.0, math.sin(math.radians(30)), math.cos(math.radians(30))])
    assert torch.allclose(rotate(cam_dir, r), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    # a point above the subject appears lower than its height (foreshortened)
    y = project(torch.tensor([0.0, 1.0, 0.0]), r)[1]
    assert 0 < y < 1


def test_projection_preserves_lengths_in_the_image_plane():
    g = torch.Generator().manual_seed(1)
    r = random_view_rotations(8, generator=g)
    v = torch.randn(8, 5, 3, generator=g)
    cam = rotate(v, r.unsqueeze(1))
    assert torch.allclose(cam.norm(dim=-1), v.norm(dim=-1), atol=1e-5)
    assert torch.allclose(project(v, r.unsqueeze(1)), cam[..., :2])


def test_random_view_rotations_are_rotations_about_vertical_with_small_tilts():
    g = torch.Generator().manual_seed(0)
    r = random_view_rotations(2000, max_tilt_deg=10.0, generator=g, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand_as(r)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(2000, dtype=torch.float64))
    up = rotate(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), r)
    tilt = torch.rad2deg(torch.arccos(up[:, 1].clamp(-1, 1)))
    assert tilt.max() <= 10.0 * math.sqrt(2) + 1e-6 and tilt.max() > 5
    # yaw covers the whole circle
    fwd = rotate(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), r)
    yaw = torch.atan2(fwd[:, 0], fwd[:, 2])
    hist = torch.histc(yaw, bins=8, min=-math.pi, max=math.pi)
    assert hist.min() > 150
    # seeded: the same generator state gives the same rotations
    assert torch.equal(random_view_rotations(4, generator=torch.Generator().manual_seed(5)),
                       random_view_rotations(4, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_body_orientation_of_the_rest_pose_is_forward(name):
    s = get_skeleton(name)
    rest = torch.from_numpy(s.rest_pose())
    _, limbs = to_free3d(rest, s)
    assert torch.allclose(body_orientation(limbs, s), torch.tensor([0.0, 0.0, 1.0], dtype=rest.dtype),
                          atol=1e-6)
    assert torch.allclose(facing_direction(rest, s), torch.tensor([0.0, 0.0, 1.0], dtype=rest.dtype),
                          atol=1e-6)
    feet = foot_directions(limbs, s)
    assert feet.shape == (2, 3) and (feet[:, 2] > 0).all()


def test_orientation_turns_with_the_body():
    s = get_skeleton("bandai21")
    rest = torch.from_numpy(s.rest_pose())
    angles = torch.linspace(-3.0, 3.0, 7, dtype=rest.dtype)
    turned = rotate(rest, rotation_y(angles))  # (7, J, 3)
    _, limbs = to_free3d(turned, s)
    expected = torch.stack([torch.sin(angles), torch.zeros(7, dtype=rest.dtype), torch.cos(angles)], -1)
    assert torch.allclose(body_orientation(limbs, s), expected, atol=1e-6)
    assert torch.allclose(facing_direction(turned, s), expected, atol=1e-6)
