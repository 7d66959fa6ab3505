import pytest
import torch

from free3d.losses import (
    bone_length_loss,
    depth_isotropy_loss,
    feature_loss,
    knee_hinge_loss,
    loss_2d,
    orientation_loss,
    project_view,
    view_prior_loss,
)
from free3d.models.autoencoders import ConvVQConfig, MotionLifter, Prior2D
from free3d.representation import rotate, rotation_x, rotation_y, to_free3d
from free3d.skeleton import get_skeleton

S = get_skeleton("bandai21")
TINY = ConvVQConfig(width=16, code_dim=8, num_layers=2, codebook_size=16, depth=1)


def walking_rest_pose(frames: int = 8, batch: int = 2) -> torch.Tensor:
    rest = torch.from_numpy(S.rest_pose()).float()
    steps = torch.arange(frames, dtype=torch.float32)[:, None, None] * torch.tensor([0.0, 0.0, 0.05])
    return (rest + steps).expand(batch, frames, -1, -1).clone()


def test_l2d_is_zero_for_an_exact_projection_and_positive_otherwise():
    traj3, limbs3 = to_free3d(walking_rest_pose(), S)
    traj3 = traj3 + torch.tensor([0.3, -0.2, 5.0])  # depth and offsets are invisible to L2D
    limbs_depth = limbs3.clone()
    limbs_depth[..., 2] += torch.randn(limbs3.shape[:-1])  # any depth, same projection
    assert loss_2d(traj3, limbs_depth, traj3[..., :2], limbs3[..., :2]) == 0
    wrong = limbs3.clone()
    wrong[..., 0] += 0.1
    assert loss_2d(traj3, wrong, traj3[..., :2], limbs3[..., :2]) > 0
    # a confidence of zero on every joint silences the limb term
    conf = torch.zeros(*limbs3.shape[:2], S.num_joints)
    assert loss_2d(traj3, wrong, traj3[..., :2], limbs3[..., :2], confidence=conf, skeleton=S) == 0


def test_orientation_loss_zero_for_forward_feet_positive_for_backward_feet():
    _, limbs = to_free3d(walking_rest_pose(), S)
    assert orientation_loss(limbs, S) == 0  # toes point along +Z, the hips' forward
    turned = rotate(walking_rest_pose(), rotation_y(torch.tensor(2.0)))
    assert orientation_loss(to_free3d(turned, S)[1], S) == 0  # any heading
    backwards = limbs.clone()
    for side in ("left_toe", "right_toe"):
        backwards[..., S.limb(side), 2] *= -1
    assert orientation_loss(backwards, S) > 0.05
    # mirroring depth (the 2D ambiguity) makes the feet point backwards: Lori sees it
    mirrored = limbs * torch.tensor([1.0, 1.0, -1.0])
    assert orientation_loss(mirrored, S) > 0.05


def test_knee_hinge_loss_zero_for_knees_bent_backwards_positive_when_bent_forwards():
    def knees_moved(dz: float) -> torch.Tensor:  # knee forward (+Z) of the hip-ankle line by dz
        joints = walking_rest_pose()
        for side in ("left_knee", "right_knee"):
            joints[..., S.index(side), 2] += dz
        return joints

    bent = knees_moved(0.1)
    assert knee_hinge_loss(to_free3d(bent, S)[1], S) == 0
    turned = rotate(bent, rotation_y(torch.tensor(2.0)))
    assert knee_hinge_loss(to_free3d(turned, S)[1], S) == 0  # any heading
    assert knee_hinge_loss(to_free3d(knees_moved(0.0), S)[1], S) == 0  # straight legs
    _, hyper = to_free3d(knees_moved(-0.1), S)
    assert knee_hinge_loss(hyper, S) > 0.05  # sine of the bend, about 0.2 per knee
    # mirroring depth (the 2D ambiguity) bends the knees forwards: Lknee sees it
    _, limbs = to_free3d(bent, S)
    mirrored = (limbs * torch.tensor([1.0, 1.0, -1.0])).requires_grad_(True)
    loss = knee_hinge_loss(mirrored, S)
    assert loss > 0.05
    loss.backward()
    assert mirrored.grad[..., S.limb("left_knee"), 2].abs().sum() > 0
    # masked-out frames do not count: bent frames kept, hyperextended ones masked out
    both = torch.cat([to_free3d(bent, S)[1], hyper], dim=1)
    mask = torch.arange(both.shape[1]) < bent.shape[1]
    assert knee_hinge_loss(both, S) > 0.02
    assert knee_hinge_loss(both, S, mask.expand(both.shape[:2])) == 0


def test_project_view_matches_the_data_normalisation():
    traj, limbs = to_free3d(walking_rest_pose(), S)
    t2, l2 = project_view(traj, limbs, torch.eye(3).expand(2, 3, 3), S)
    assert torch.allclose(l2, limbs[..., :2], atol=1e-6)  # rest torso: scale already 1
    t2, l2 = project_view(traj * 2, limbs * 2, torch.eye(3).expand(2, 3, 3), S)
    assert torch.allclose(l2, limbs[..., :2], atol=1e-5)  # twice the size: normalised back


def test_lrec_gradient_reaches_the_decoder_and_never_the_prior():
    torch.manual_seed(0)
    prior = Prior2D(skeleton=S, arch=ConvVQConfig(width=16, code_dim=8, num_layers=1,
                                                   codebook_size=16, depth=1)).eval()
    for p in prior.parameters():
        p.requires_grad_(False)
    lifter = MotionLifter(skeleton=S, arch=TINY).train()
    traj, limbs = to_free3d(walking_rest_pose(frames=16), S)
    out = lifter(traj[..., :2], limbs[..., :2])
    loss = view_prior_loss(out.trajectory, out.limbs, prior, S,
                           generator=torch.Generator().manual_seed(1))
    loss.backward()
    assert all(p.grad is None for p in prior.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lifter.decoder.parameters())


def test_feature_loss_zero_for_exact_projection_and_uses_the_given_encoder():
    torch.manual_seed(0)
    lifter = MotionLifter(skeleton=S, arch=TINY).eval()
    traj, limbs = to_free3d(walking_rest_pose(frames=16), S)
    assert feature_loss(lifter.encode, traj, limbs, traj[..., :2], limbs[..., :2]) == 0
    other = limbs.clone()
    other[..., 1] += 0.05
    assert feature_loss(lifter.encode, traj, other, traj[..., :2], limbs[..., :2]) > 0


def test_commitment_term_is_reported_and_differentiable():
    torch.manual_seed(0)
    lifter = MotionLifter(skeleton=S, arch=TINY).train()
    traj, limbs = to_free3d(walking_rest_pose(frames=16), S)
    out = lifter(traj[..., :2], limbs[..., :2])
    assert out.commit_loss.ndim == 0 and out.commit_loss >= 0
    out.commit_loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lifter.encoder.parameters())


def test_upright_rotation_stands_a_tilted_clip_up():
    from free3d.losses import upright_rotation
    from free3d.representation import rotation_x

    joints = walking_rest_pose()
    tilted = rotate(joints, rotation_x(torch.tensor(0.4)))
    _, limbs = to_free3d(tilted, S)
    r = upright_rotation(limbs, S)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5)
    upright = rotate(tilted, r.unsqueeze(1))
    spine = upright[..., S.index("neck"), :] - upright[..., S.index("pelvis"), :]
    assert torch.allclose(spine[..., [0, 2]], torch.zeros_like(spine[..., [0, 2]]), atol=1e-5)
    assert (spine[..., 1] > 0).all()


def test_bone_length_loss_zero_for_a_turning_rigid_body_positive_when_flattened():
    frames = 12
    angles = torch.linspace(0, 1.5, frames)  # the body turns by ~86 degrees
    posed = rotate(walking_rest_pose(frames, batch=1), rotation_y(angles)[None])
    _, limbs3 = to_free3d(posed, S)
    assert bone_length_loss(limbs3) < 1e-10
    assert bone_length_loss(3.0 * limbs3) < 1e-10  # no preferred size
    flat = limbs3.clone()
    flat[..., 2] = 0  # flattened onto the image plane: exact 2D, shrinking limbs
    assert loss_2d(posed[..., 0, :], flat, posed[..., 0, :2], limbs3[..., :2]) == 0
    assert bone_length_loss(flat) > 1e-3
    # masked-out frames do not count: only the first, barely turned frames are kept
    mask = torch.zeros(1, frames, dtype=torch.bool)
    mask[:, :2] = True
    assert bone_length_loss(flat, mask) < 0.1 * bone_length_loss(flat)


def test_depth_isotropy_loss_zero_for_views_all_around_positive_when_flattened():
    # one walking clip seen from 8 cameras evenly around it, each tilted by its elevation
    azimuths = torch.arange(8) * (torch.pi / 4)
    walk = walking_rest_pose(frames=6, batch=1)
    walk[..., S.index("left_wrist"), 2] += 0.3  # something sticks out in depth
    views = rotate(walk.expand(8, -1, -1, -1), rotation_y(azimuths)[:, None])
    tilt = rotate(views, rotation_x(torch.tensor(0.2)))  # a camera looking down a little
    _, limbs = to_free3d(tilt, S)
    assert depth_isotropy_loss(limbs, S) < 1e-6  # stood up first: the tilt does not count
    assert depth_isotropy_loss(limbs * 2.0, S) < 1e-6  # no preferred size
    shallow = limbs * torch.tensor([1.0, 1.0, 0.4])
    assert depth_isotropy_loss(shallow, S) > 0.5  # (log 0.16)^2 = 3.4 on limbs off the vertical
    assert depth_isotropy_loss(limbs * torch.tensor([1.0, 1.0, 2.5]), S) > 0.5  # too deep
    shallow.requires_grad_(True)
    depth_isotropy_loss(shallow, S).backward()
    assert shallow.grad[..., 2].abs().sum() > 0


def test_shared_l2d_units_price_a_millimetre_on_the_hand_as_on_the_spine():
    from free3d.training.lifting import l2d_limb_scale

    traj3, limbs3 = to_free3d(walking_rest_pose(), S)
    spread = torch.full((S.num_joints - 1, 2), 0.1)
    spine, forearm = S.limb("Spine"), S.limb("left_wrist")
    spread[spine], spread[forearm] = 0.005, 0.3  # still spine, busy forearm

    def cost(limb: int, units: str) -> float:
        wrong = limbs3.clone()
        wrong[..., limb, 0] += 0.02
        return float(loss_2d(traj3, wrong, traj3[..., :2], limbs3[..., :2],
                             limb_std=l2d_limb_scale(spread, units)))

    assert cost(spine, "limb") > 1000 * cost(forearm, "limb")  # each limb's own spread: (0.3/0.005)^2
    assert abs(cost(spine, "shared") - cost(forearm, "shared")) < 1e-6 * cost(spine, "shared")
    shared = l2d_limb_scale(spread, "shared")
    assert torch.allclose(shared, spread.square().mean().sqrt().expand_as(spread))
    with pytest.raises(ValueError, match="L2D units"):
        l2d_limb_scale(spread, "joint")


def test_joint_2d_loss_counts_a_limb_error_at_every_joint_it_moves():
    from free3d.losses import joint_2d_loss

    _, limbs3 = to_free3d(walking_rest_pose(), S)
    limbs2 = limbs3[..., :2]
    deeper = limbs3.clone()
    deeper[..., 2] += 1.0  # depth is invisible to it
    assert joint_2d_loss(deeper, limbs2, S, scale=0.1) == 0

    def cost(limb: int) -> float:
        wrong = limbs3.clone()
        wrong[..., limb, 0] += 0.02
        return float(joint_2d_loss(wrong, limbs2, S, scale=0.1))

    moved = S.chain_matrix().sum(0)  # joints each limb moves
    below = {name: moved[S.limb(name)] for name in ("Spine", "Hand_L")}
    assert below["Spine"] >= 12 and below["Hand_L"] == 1
    # one unit per joint moved: the spine's limb moves the whole upper body, the hand's one joint
    assert abs(cost(S.limb("Spine")) / cost(S.limb("Hand_L")) - below["Spine"]) < 1e-3
    conf = torch.ones(*limbs3.shape[:2], S.num_joints)
    conf[..., S.index("Hand_L")] = 0
    wrong = limbs3.clone()
    wrong[..., S.limb("Hand_L"), 0] += 0.02
    assert joint_2d_loss(wrong, limbs2, S, scale=0.1, confidence=conf) == 0
