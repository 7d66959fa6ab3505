"""Free3D's 3D-free losses (paper eq. 10 to 15) and ours (Lbone, Lknee, Liso, Lcycle, Lfloor).

Predicted 3D motion (trajectory (B,T,3), limbs (B,T,K,3)) is in the camera frame of its
2D input, so the weak-perspective projection Phi is "drop z" (the 2D data is already
scale-normalised). Every term takes an optional (B, T) ``mask`` of valid frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .representation import (
    body_orientation,
    foot_directions,
    from_free3d,
    random_view_rotations,
    rotate,
)
from .skeleton import Skeleton


def _masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over all elements of x (B, T, ...) counting only frames where mask is true."""
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype).reshape(*mask.shape, *([1] * (x.ndim - 2))).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1)


def loss_2d(traj3: Tensor, limbs3: Tensor, traj2: Tensor, limbs2: Tensor, *,
            limb_std: Tensor | None = None, traj_std: Tensor | None = None,
            confidence: Tensor | None = None, skeleton: Skeleton | None = None,
            mask: Tensor | None = None) -> Tensor:
    """L2D (eq. 10): ||Phi(v3D) - v2D||^2 + ||Phi(tau) - tau||^2, trajectories relative to
    frame 0.

    ``limb_std`` (K, 2) and ``traj_std`` (2,) express the errors in units of the training
    data's spread, as MoMask's losses on normalised features do, so the terms of eq. 15
    are on comparable scales. ``confidence`` (B, T, J) weights each limb by the lower
    confidence of its two joints (ones for mocap; detector scores for video keypoints).
    """
    limb_err = limbs3[..., :2] - limbs2
    if limb_std is not None:
        limb_err = limb_err / limb_std
    limb_err = limb_err.square().mean(-1)  # (B, T, K)
    if confidence is not None:
        if skeleton is None:
            raise ValueError("loss_2d needs the skeleton to weight limbs by joint confidence")
        parents = torch.as_tensor(skeleton.limb_parents, device=confidence.device)
        limb_err = limb_err * torch.minimum(confidence[..., 1:], confidence[..., parents])
    traj_err = (traj3[..., :2] - traj3[:, :1, :2]) - (traj2 - traj2[:, :1])
    if traj_std is not None:
        traj_err = traj_err / traj_std
    return _masked_mean(limb_err, mask) + _masked_mean(traj_err.square().mean(-1), mask)


def joint_2d_loss(limbs3: Tensor, limbs2: Tensor, skeleton: Skeleton, *, scale: Tensor | float,
                  confidence: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    """L2D on joints (our addition): eq. 10 on root-relative joint positions, not limbs.

    An error in a limb moves every joint below it, so the spine's few millimetres count
    once per joint of the upper body and a hand's error counts as MPJPE sees it; L2D on
    limb vectors in each limb's own spread weighs the still spine thousands of times
    over the arms. ``scale``: one divisor for every coordinate (L2D's units).
    ``confidence`` (B, T, J) weights each joint (ones for mocap).
    """
    zero = limbs2.new_zeros(*limbs2.shape[:-2], 2)
    err = (from_free3d(zero, limbs3[..., :2], skeleton) - from_free3d(zero, limbs2, skeleton))[..., 1:, :]
    err = (err / scale).square().mean(-1)  # (B, T, J - 1)
    if confidence is not None:
        err = err * confidence[..., 1:]
    return _masked_mean(err, mask)


def orientation_loss(limbs3: Tensor, skeleton: Skeleton, mask: Tensor | None = None) -> Tensor:
    """Lori (eq. 12): max(0, -v_foot . v_ori), for both feet, averaged over frames."""
    v_ori = body_orientation(limbs3, skeleton)  # (B, T, 3)
    feet = foot_directions(limbs3, skeleton)  # (B, T, 2, 3)
    return _masked_mean(torch.relu(-(feet * v_ori.unsqueeze(-2)).sum(-1)), mask)


def knee_bend(limbs3: Tensor, skeleton: Skeleton) -> Tensor:
    """(..., 2) signed sine of the left and right knee's bend: c = (t x s) . l, with unit
    thigh t (hip -> knee), shin s (knee -> ankle) and lateral axis l (right hip -> left
    hip). Positive when the shin swings behind the thigh, as a human knee bends."""
    lateral = limbs3[..., skeleton.limb("left_hip"), :] - limbs3[..., skeleton.limb("right_hip"), :]
    lateral = lateral / lateral.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    bends = []
    for side in ("left", "right"):
        thigh = limbs3[..., skeleton.limb(f"{side}_knee"), :]
        shin = limbs3[..., skeleton.limb(f"{side}_ankle"), :]
        axis = torch.linalg.cross(thigh / thigh.norm(dim=-1, keepdim=True).clamp_min(1e-6),
                                  shin / shin.norm(dim=-1, keepdim=True).clamp_min(1e-6), dim=-1)
        bends.append((axis * lateral).sum(-1))
    return torch.stack(bends, dim=-1)


def knee_hinge_loss(limbs3: Tensor, skeleton: Skeleton, mask: Tensor | None = None) -> Tensor:
    """Lknee (our addition, not in the paper): knees bend only one way.

    A knee is a hinge about the pelvis' left-right axis: the shin swings behind the
    thigh, never in front of it, so :func:`knee_bend` is >= 0 (true of every frame of
    the Bandai-Namco test clips; ``benchmarks/lift_depth_checks.py --per-limb`` counts).
    Loss: max(0, -bend), both knees, averaged over frames. Like Lori it is 3D-free and
    sees depth mirroring: a knee flipped in depth bends forwards.
    """
    return _masked_mean(torch.relu(-knee_bend(limbs3, skeleton)), mask)


def bone_length_loss(limbs3: Tensor, mask: Tensor | None = None) -> Tensor:
    """Lbone (our addition, not in the paper): each limb keeps its length over time.

    The squared coefficient of variation of every limb's 3D length across the frames of
    a clip, averaged over limbs and clips. It is 3D-free (a rigid skeleton, no 3D data)
    and fixes what L2D leaves open: a body flattened onto the image plane matches the 2D
    exactly, but its limbs then seem to shrink whenever they turn towards the camera.
    Keeping lengths constant forces the depth that explains the shrinking.
    """
    length = limbs3.norm(dim=-1)  # (B, T, K)
    w = torch.ones_like(length[..., :1]) if mask is None else mask.to(length.dtype)[..., None]
    n = w.sum(1).clamp_min(1)  # (B, 1)
    mean = (length * w).sum(1) / n  # (B, K)
    var = ((length - mean[:, None]).square() * w).sum(1) / n
    return (var / mean.square().clamp_min(1e-8)).mean()


def limb_proportion_loss(limbs3: Tensor, skeleton: Skeleton, mask: Tensor | None = None) -> Tensor:
    """Lprop (our addition, not in the paper): limbs have the skeleton's lengths.

    Lbone keeps each limb's length constant but leaves its size open, and a lift that
    hedges between a limb's two depth signs shrinks it (the stop-22 ML-RQ's forearms are
    0.6 of their length in its own 3D). The 2D data are normalised to the skeleton's
    torso length, so in the lift's units every limb should have the skeleton's length
    (the true 3D of the Bandai-Namco clips: 1.01 to 1.03 times it, the torso leaning in
    depth a little). Squared relative error, averaged over limbs and frames. It reads
    no 3D motion, only the skeleton's proportions, which decoding assumes anyway
    (:func:`free3d.ik.with_bone_lengths`). (A per-clip scale taken from the lift's own
    spine let the lifter grow whole runs to 1.6 times their size; docs/results.md.)
    """
    length = limbs3.norm(dim=-1)  # (B, T, K)
    template = torch.as_tensor(skeleton.bone_lengths(), dtype=length.dtype, device=length.device)
    return _masked_mean((length / template - 1).square(), mask)


def project_view(traj3: Tensor, limbs3: Tensor, rotation: Tensor, skeleton: Skeleton
                 ) -> tuple[Tensor, Tensor]:
    """Rotate a predicted 3D motion by (B, 3, 3) rotations and project it like the data.

    The 2D data's scale is normalised (median pelvis-neck length = rest torso), so the
    new view is normalised the same way before the prior judges it. The factor carries
    no gradient and stays within [0.5, 2]: early predictions have torsos near zero length,
    and a differentiable 1/torso would let Lrec grow without bound.
    """
    traj = rotate(traj3, rotation)[..., :2]  # (B, T, 3) @ (B, 3, 3)
    limbs = rotate(limbs3, rotation.unsqueeze(1))[..., :2]  # (B, T, K, 3) @ (B, 1, 3, 3)
    scale = _view_scale(limbs3, rotation, skeleton)
    return traj * scale[:, None, None], limbs * scale[:, None, None, None]


def _view_scale(limbs3: Tensor, rotation: Tensor, skeleton: Skeleton) -> Tensor:
    """(B,) factor giving a turned, projected clip the 2D data's median torso length."""
    limbs = rotate(limbs3.detach(), rotation.unsqueeze(1))[..., :2]
    joints = from_free3d(torch.zeros_like(limbs[..., 0, :]), limbs, skeleton)
    torso = (joints[..., skeleton.index("neck"), :] - joints[..., skeleton.index("pelvis"), :]).norm(dim=-1)
    scale = skeleton.torso_length / torso.median(dim=1).values.clamp_min(1e-6)
    return scale.clamp(0.5, 2.0)


def upright_rotation(limbs3: Tensor, skeleton: Skeleton) -> Tensor:
    """(B, 3, 3) rotations taking each clip's mean pelvis-to-neck direction to +Y.

    A prediction lives in its camera's frame, whose "up" is tilted by the (unknown)
    camera elevation; turning it about that tilted axis shows the body leaning
    sideways, which the prior rightly dislikes. Standing the clip up first makes the
    random turns of Lrec turn about the body's vertical. No gradient flows through it.
    """
    joints = from_free3d(torch.zeros_like(limbs3[..., 0, :]), limbs3.detach(), skeleton)
    spine = (joints[..., skeleton.index("neck"), :] - joints[..., skeleton.index("pelvis"), :]).mean(1)
    u = spine / spine.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    y = torch.zeros_like(u)
    y[:, 1] = 1.0
    v = torch.linalg.cross(u, y, dim=-1)
    c = (u * y).sum(-1).clamp_min(-1 + 1e-6)
    vx = torch.zeros(u.shape[0], 3, 3, dtype=u.dtype, device=u.device)
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx = vx - vx.transpose(1, 2)
    eye = torch.eye(3, dtype=u.dtype, device=u.device).expand_as(vx)
    return eye + vx + vx @ vx / (1 + c)[:, None, None]


def depth_isotropy_loss(limbs3: Tensor, skeleton: Skeleton, mask: Tensor | None = None,
                        eps: float = 1e-6) -> Tensor:
    """Liso (our addition, not in the paper): depth varies as much as image x, over a batch.

    When the 2D clips are filmed from cameras at uniformly random azimuths around the
    subject (true of the prepared Bandai data; a stronger assumption than Lrec's "every
    view is natural"), a limb's depth, once the clip is stood up
    (:func:`upright_rotation`), is spread like its horizontal image coordinate: per limb,
    the batch's mean z^2 equals its mean x^2. L2D pins x, so this sets the size of the
    depth, which Lrec's score leaves open (``benchmarks/prior_depth_checks.py``). Squared
    log-ratio per limb, averaged over limbs; it constrains the batch's statistics, never
    one clip's depth. Measured in docs/results.md: it deepens the lift without improving it.
    """
    upright = rotate(limbs3, upright_rotation(limbs3, skeleton).unsqueeze(1))  # (B, T, K, 3)
    w = (torch.ones_like(upright[..., 0, 0]) if mask is None else mask.to(upright.dtype))[..., None]
    n = w.sum().clamp_min(1)
    x2 = (upright[..., 0].square() * w).sum((0, 1)) / n  # (K,)
    z2 = (upright[..., 2].square() * w).sum((0, 1)) / n
    return (torch.log(z2 + eps) - torch.log(x2 + eps)).square().mean()


def view_prior_loss(traj3: Tensor, limbs3: Tensor, prior, skeleton: Skeleton, *,
                    max_tilt_deg: float = 10.0, upright: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
    """Lrec (eq. 11): the frozen 2D prior's reconstruction error of a random new view.

    The prior's parameters must be frozen (requires_grad False) and it in eval mode:
    the gradient flows through it to the prediction, never into it. ``upright`` first
    stands the clip up (:func:`upright_rotation`) so that the turns are about its vertical.
    """
    rotation = random_view_rotations(traj3.shape[0], max_tilt_deg=max_tilt_deg, generator=generator,
                                     dtype=traj3.dtype, device=traj3.device)
    if upright:
        rotation = rotation @ upright_rotation(limbs3, skeleton)
    traj2, limbs2 = project_view(traj3, limbs3, rotation, skeleton)
    return prior.reconstruction_error(traj2, limbs2)


def feature_loss(encode, traj3: Tensor, limbs3: Tensor, traj2: Tensor, limbs2: Tensor) -> Tensor:
    """Lfeat (eq. 14): ||E(projected prediction) - E(input)||^2 with encoder ``encode``."""
    projected = encode(traj3[..., :2], limbs3[..., :2])
    # the input's features are the target: no gradient through them, or the encoder
    # could meet the projection half-way by forgetting the input
    return (projected - encode(traj2, limbs2).detach()).square().mean()


def cycle_loss(lift, traj3: Tensor, limbs3: Tensor, skeleton: Skeleton, *,
               limb_scale: Tensor | None = None, traj_scale: Tensor | None = None,
               max_tilt_deg: float = 10.0, upright: bool = True, fixed_root: bool = False,
               generator: torch.Generator | None = None) -> Tensor:
    """Lcycle (our addition, after Chen et al., CVPR 2019): lift, turn, project, lift again.

    The predicted 3D motion is turned to a random new view (as Lrec turns it, stood up
    first when ``upright``), projected and scale-normalised like the 2D data
    (:func:`project_view`), and lifted again with ``lift`` (a callable (traj2, limbs2) ->
    (traj3, limbs3), the same network). The second lift must equal the first seen from
    the new view: limbs and trajectory (relative to frame 0), in the 2D data's units
    (``limb_scale`` (K,), ``traj_scale`` scalar). A lift with depth flattened or mirrored
    fails it: turned a quarter, its flat depth becomes image x that the second lift must
    turn back into the depth the first never had. It reads no 3D data. Zero for a lifter
    that is exact on every view.

    ``fixed_root``: the term does not move the first lift's root trajectory (it is
    detached), only the second lift learns from it. Without it, the lifter's own bias
    about where a body travels (forwards, along its facing) pulls first lifts towards it
    against L2D: on walk-back windows the term is 6x lower for a lift that travels half
    as far as the 2D says than for one that follows the 2D (docs/results.md, stop 23).
    """
    rotation = random_view_rotations(traj3.shape[0], max_tilt_deg=max_tilt_deg, generator=generator,
                                     dtype=traj3.dtype, device=traj3.device)
    if upright:
        rotation = rotation @ upright_rotation(limbs3, skeleton)
    # the new view in 3D, scaled as project_view scales its 2D; its x, y are that 2D
    scale = _view_scale(limbs3, rotation, skeleton)
    turned_traj = rotate(traj3, rotation) * scale[:, None, None]
    if fixed_root:
        turned_traj = turned_traj.detach()
    target_limbs = rotate(limbs3, rotation.unsqueeze(1)) * scale[:, None, None, None]
    target_traj = turned_traj - turned_traj[:, :1]
    again_traj, again_limbs = lift(turned_traj[..., :2], target_limbs[..., :2])
    limb_err = again_limbs - target_limbs
    if limb_scale is not None:
        limb_err = limb_err / limb_scale[:, None]
    traj_err = (again_traj - again_traj[:, :1]) - target_traj
    if traj_scale is not None:
        traj_err = traj_err / traj_scale
    return limb_err.square().mean() + traj_err.square().mean()


def floor_loss(traj3: Tensor, limbs3: Tensor, skeleton: Skeleton, *, delta: float = 0.05) -> Tensor:
    """Lfloor (our addition): the floor is level; the lowest foot stays on it.

    The clip is stood up (:func:`upright_rotation`, no gradient), and the height of its
    lowest foot joint in each frame is compared with the clip's median of it (Huber
    with ``delta``, in the data's metre-like units). In a camera's frame, an elevated
    camera turns a walk away from it into a climb in the image; a lift that leaves the
    trajectory's depth flat keeps that climb, and this term charges it, so the depth
    that explains it is what is left. It assumes people stand on level ground (jumps
    pay a little, for a few frames).
    """
    rel = traj3 - traj3[:, :1]
    joints = from_free3d(rel, limbs3, skeleton)
    feet = [skeleton.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    up = rotate(joints[..., feet, :], upright_rotation(limbs3, skeleton).unsqueeze(1))[..., 1]
    lowest = up.min(-1).values  # (B, T)
    drift = lowest - lowest.median(dim=1, keepdim=True).values
    return torch.nn.functional.huber_loss(drift, torch.zeros_like(drift), delta=delta)


def foot_skate_loss(traj3: Tensor, limbs3: Tensor, skeleton: Skeleton, *, fps: float = 20.0,
                    contact_height: float = 0.05, softness: float = 0.01) -> Tensor:
    """Lskate (our addition): a foot on the floor does not slide.

    The clip is stood up (:func:`upright_rotation`, no gradient) and its floor taken as
    the median over frames of the lowest foot joint (ankles and toes). In each frame the
    lowest joint is the planted one, while it is within ``contact_height`` of that floor
    (soft, gradient-free weights), and its horizontal speed between two frames in which it
    is planted (m/s, squared) is charged.
    The image fixes a planted foot's x and y, so what the term moves is depth: the root's
    depth velocity must cancel the planted foot's motion relative to the root, which is
    how a walk seen from the front tells forwards from backwards. It reads no 3D data.
    """
    rel = traj3 - traj3[:, :1]
    joints = from_free3d(rel, limbs3, skeleton)
    feet = [skeleton.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    up = rotate(joints[..., feet, :], upright_rotation(limbs3, skeleton).unsqueeze(1))  # (B, T, 4, 3)
    height = up[..., 1].detach()
    lowest = height.min(-1).values  # (B, T)
    floor = lowest.median(dim=1).values  # (B,)
    # the planted joint is the lowest one (a soft choice among the four), and only while it
    # touches the floor (not in a run's flight phase)
    pick = torch.softmax(-height / softness, dim=-1) * torch.sigmoid(
        (floor[:, None] + contact_height - lowest) / softness)[..., None]
    planted = pick[:, 1:] * pick[:, :-1]  # (B, T-1, 4)
    speed2 = ((up[:, 1:] - up[:, :-1])[..., [0, 2]] * fps).square().sum(-1)
    return (planted * speed2).sum() / planted.sum().clamp_min(1.0)
