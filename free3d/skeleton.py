"""Skeletons: ordered joint names, parents, named roles and a canonical rest pose.

Every motion array in free3d is (..., T, J, D) with joints in the skeleton's order.
Parents always come before their children, so a single pass from joint 0 visits the
tree top-down (forward kinematics and the limb-vector round trip rely on it).

Canonical frame: metres, Y up, right-handed, the body facing +Z, so the body's left
side is +X. ``rest_offsets`` is a T-pose in that frame (arms along +-X, legs down) for a
person of the dataset's usual size; it gives the canonical scale of 2D data and the pose
that procedural motions rotate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Roles name the joints that losses, canonicalisation and procedural motion need.
REQUIRED_ROLES = (
    "pelvis", "neck", "head",
    "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_toe", "right_toe",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    roles: dict[str, str]
    rest_offsets: tuple[tuple[float, float, float], ...]
    description: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n or len(self.rest_offsets) != n:
            raise ValueError(f"skeleton {self.name!r}: names, parents and offsets differ in length")
        if self.parents[0] != -1:
            raise ValueError(f"skeleton {self.name!r}: joint 0 must be the root (parent -1)")
        for j, p in enumerate(self.parents[1:], start=1):
            if not 0 <= p < j:
                raise ValueError(
                    f"skeleton {self.name!r}: joint {self.joint_names[j]!r} has parent {p}; "
                    "parents must come before children")
        index = {name: i for i, name in enumerate(self.joint_names)}
        if len(index) != n:
            raise ValueError(f"skeleton {self.name!r}: duplicate joint names")
        missing = [r for r in REQUIRED_ROLES if r not in self.roles]
        unknown = [j for j in self.roles.values() if j not in index]
        if missing or unknown:
            raise ValueError(f"skeleton {self.name!r}: missing roles {missing}, unknown joints {unknown}")
        object.__setattr__(self, "_index", index)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_limbs(self) -> int:
        """One limb (bone) per non-root joint, named by its child joint."""
        return len(self.joint_names) - 1

    @property
    def limb_parents(self) -> np.ndarray:
        """Parent joint index of limbs 0..K-1 (limb k ends at joint k + 1)."""
        return np.asarray(self.parents[1:], dtype=np.int64)

    @property
    def limb_children(self) -> np.ndarray:
        return np.arange(1, self.num_joints, dtype=np.int64)

    def index(self, joint_or_role: str) -> int:
        """Joint index of a joint name or a role ("left_hip", ...)."""
        name = self.roles.get(joint_or_role, joint_or_role)
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"skeleton {self.name!r} has no joint or role {joint_or_role!r}") from None

    def limb(self, joint_or_role: str) -> int:
        """Limb index of the bone that ends at this joint (the root has none)."""
        j = self.index(joint_or_role)
        if j == 0:
            raise KeyError(f"the root joint {self.joint_names[0]!r} ends no limb")
        return j - 1

    def chain_matrix(self) -> np.ndarray:
        """(J, K) 0/1 matrix: entry [j, k] is 1 when limb k lies on the path root -> joint j.

        joints = root + chain_matrix @ limbs, which makes the limb-vector round trip one
        matrix product instead of a Python loop over the tree.
        """
        a = np.zeros((self.num_joints, self.num_limbs), dtype=np.float32)
        for j in range(1, self.num_joints):
            a[j] = a[self.parents[j]]
            a[j, j - 1] = 1.0
        return a

    def rest_pose(self) -> np.ndarray:
        """(J, 3) joint positions of the T-pose, pelvis at the origin."""
        offsets = np.asarray(self.rest_offsets, dtype=np.float64)
        pos = np.zeros_like(offsets)
        for j in range(1, self.num_joints):
            pos[j] = pos[self.parents[j]] + offsets[j]
        return pos

    def bone_lengths(self) -> np.ndarray:
        return np.linalg.norm(np.asarray(self.rest_offsets[1:], dtype=np.float64), axis=-1)

    @property
    def mirror_indices(self) -> np.ndarray:
        """(J,) each joint's left-right counterpart (itself on the midline).

        Found from the rest pose mirrored in x (left = +X), so a skeleton whose rest pose
        is not left-right symmetric has none and raises.
        """
        rest = self.rest_pose()
        dist = np.linalg.norm((rest * [-1.0, 1.0, 1.0])[:, None] - rest[None], axis=-1)
        idx = dist.argmin(1)
        if dist.min(1).max() > 1e-6 or len(set(idx.tolist())) != self.num_joints:
            raise ValueError(f"skeleton {self.name!r}: its rest pose is not left-right symmetric")
        return idx

    @property
    def torso_length(self) -> float:
        """Rest distance pelvis -> neck: the length 2D clips are normalised to."""
        rest = self.rest_pose()
        return float(np.linalg.norm(rest[self.index("neck")] - rest[self.index("pelvis")]))


def _build(name: str, description: str, joints: list[tuple[str, str | None, tuple]],
           roles: dict[str, str]) -> Skeleton:
    names = tuple(j[0] for j in joints)
    idx = {n: i for i, n in enumerate(names)}
    parents = tuple(-1 if p is None else idx[p] for _, p, _ in joints)
    offsets = tuple(tuple(float(x) for x in o) for _, _, o in joints)
    return Skeleton(name=name, joint_names=names, parents=parents, roles=roles,
                    rest_offsets=offsets, description=description)


def _mirror(joints: list[tuple[str, str | None, tuple]], left: str, right: str):
    """Right-side copies of left-side joints (x negated)."""
    out = []
    for n, p, (x, y, z) in joints:
        out.append((n.replace(left, right), p.replace(left, right) if p else p, (-x, y, z)))
    return out


# Bandai-Namco Research Motion Dataset: the 21 body joints under its ground node
# (joint_Root). Bone lengths are the BVH hierarchy's, in metres.
_BANDAI_LEFT = [
    ("Shoulder_L", "Chest", (0.050, 0.130, 0.0)),
    ("UpperArm_L", "Shoulder_L", (0.053, 0.0, 0.0)),
    ("LowerArm_L", "UpperArm_L", (0.243, 0.0, 0.0)),
    ("Hand_L", "LowerArm_L", (0.223, 0.0, 0.0)),
]
_BANDAI_LEG_L = [
    ("UpperLeg_L", "Hips", (0.065, -0.022, 0.0)),
    ("LowerLeg_L", "UpperLeg_L", (0.0, -0.391, 0.0)),
    ("Foot_L", "LowerLeg_L", (0.0, -0.410, 0.0)),
    ("Toes_L", "Foot_L", (0.0, -0.045, 0.109)),
]
BANDAI21 = _build(
    "bandai21",
    "Bandai-Namco Research Motion Dataset body (21 joints, Hips root).",
    [
        ("Hips", None, (0.0, 0.0, 0.0)),
        ("Spine", "Hips", (0.0, 0.157, 0.0)),
        ("Chest", "Spine", (0.0, 0.090, 0.0)),
        ("Neck", "Chest", (0.0, 0.164, 0.0)),
        ("Head", "Neck", (0.0, 0.065, 0.0)),
        *_BANDAI_LEFT, *_mirror(_BANDAI_LEFT, "_L", "_R"),
        *_BANDAI_LEG_L, *_mirror(_BANDAI_LEG_L, "_L", "_R"),
    ],
    roles={
        "pelvis": "Hips", "neck": "Neck", "head": "Head",
        "left_hip": "UpperLeg_L", "right_hip": "UpperLeg_R",
        "left_knee": "LowerLeg_L", "right_knee": "LowerLeg_R",
        "left_ankle": "Foot_L", "right_ankle": "Foot_R",
        "left_toe": "Toes_L", "right_toe": "Toes_R",
        "left_shoulder": "UpperArm_L", "right_shoulder": "UpperArm_R",
        "left_elbow": "LowerArm_L", "right_elbow": "LowerArm_R",
        "left_wrist": "Hand_L", "right_wrist": "Hand_R",
    },
)

# HumanML3D: the first 22 SMPL joints in SMPL order (its new_joints files). Rest
# lengths are rounded from the SMPL neutral body.
HUMANML3D22 = _build(
    "humanml3d22",
    "HumanML3D / SMPL body, 22 joints in SMPL order.",
    [
        ("pelvis", None, (0.0, 0.0, 0.0)),
        ("left_hip", "pelvis", (0.06, -0.09, 0.0)),
        ("right_hip", "pelvis", (-0.06, -0.09, 0.0)),
        ("spine1", "pelvis", (0.0, 0.11, 0.0)),
        ("left_knee", "left_hip", (0.0, -0.38, 0.0)),
        ("right_knee", "right_hip", (0.0, -0.38, 0.0)),
        ("spine2", "spine1", (0.0, 0.14, 0.0)),
        ("left_ankle", "left_knee", (0.0, -0.40, 0.0)),
        ("right_ankle", "right_knee", (0.0, -0.40, 0.0)),
        ("spine3", "spine2", (0.0, 0.06, 0.0)),
        ("left_foot", "left_ankle", (0.0, -0.05, 0.12)),
        ("right_foot", "right_ankle", (0.0, -0.05, 0.12)),
        ("neck", "spine3", (0.0, 0.21, 0.0)),
        ("left_collar", "spine3", (0.08, 0.12, 0.0)),
        ("right_collar", "spine3", (-0.08, 0.12, 0.0)),
        ("head", "neck", (0.0, 0.09, 0.0)),
        ("left_shoulder", "left_collar", (0.12, 0.0, 0.0)),
        ("right_shoulder", "right_collar", (-0.12, 0.0, 0.0)),
        ("left_elbow", "left_shoulder", (0.26, 0.0, 0.0)),
        ("right_elbow", "right_shoulder", (-0.26, 0.0, 0.0)),
        ("left_wrist", "left_elbow", (0.25, 0.0, 0.0)),
        ("right_wrist", "right_elbow", (-0.25, 0.0, 0.0)),
    ],
    roles={
        "pelvis": "pelvis", "neck": "neck", "head": "head",
        "left_hip": "left_hip", "right_hip": "right_hip",
        "left_knee": "left_knee", "right_knee": "right_knee",
        "left_ankle": "left_ankle", "right_ankle": "right_ankle",
        "left_toe": "left_foot", "right_toe": "right_foot",
        "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
        "left_elbow": "left_elbow", "right_elbow": "right_elbow",
        "left_wrist": "left_wrist", "right_wrist": "right_wrist",
    },
)

# KIT-ML (HumanML3D's processing of the KIT Motion-Language data), 21 joints in its
# order: torso chain, right arm, left arm, right leg, left leg.
KIT21 = _build(
    "kit21",
    "KIT-ML body as processed by HumanML3D, 21 joints.",
    [
        ("root", None, (0.0, 0.0, 0.0)),
        ("BP", "root", (0.0, 0.10, 0.0)),
        ("BT", "BP", (0.0, 0.20, 0.0)),
        ("BLN", "BT", (0.0, 0.20, 0.0)),
        ("BUN", "BLN", (0.0, 0.12, 0.0)),
        ("RS", "BLN", (-0.18, 0.0, 0.0)),
        ("RE", "RS", (-0.28, 0.0, 0.0)),
        ("RW", "RE", (-0.25, 0.0, 0.0)),
        ("LS", "BLN", (0.18, 0.0, 0.0)),
        ("LE", "LS", (0.28, 0.0, 0.0)),
        ("LW", "LE", (0.25, 0.0, 0.0)),
        ("RH", "root", (-0.09, -0.05, 0.0)),
        ("RK", "RH", (0.0, -0.42, 0.0)),
        ("RA", "RK", (0.0, -0.42, 0.0)),
        ("RMrot", "RA", (0.0, -0.06, 0.08)),
        ("RF", "RMrot", (0.0, 0.0, 0.07)),
        ("LH", "root", (0.09, -0.05, 0.0)),
        ("LK", "LH", (0.0, -0.42, 0.0)),
        ("LA", "LK", (0.0, -0.42, 0.0)),
        ("LMrot", "LA", (0.0, -0.06, 0.08)),
        ("LF", "LMrot", (0.0, 0.0, 0.07)),
    ],
    roles={
        "pelvis": "root", "neck": "BLN", "head": "BUN",
        "left_hip": "LH", "right_hip": "RH",
        "left_knee": "LK", "right_knee": "RK",
        "left_ankle": "LA", "right_ankle": "RA",
        "left_toe": "LF", "right_toe": "RF",
        "left_shoulder": "LS", "right_shoulder": "RS",
        "left_elbow": "LE", "right_elbow": "RE",
        "left_wrist": "LW", "right_wrist": "RW",
    },
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (BANDAI21, HUMANML3D22, KIT21)}
DEFAULT_SKELETON = "bandai21"


def get_skeleton(name: str | Skeleton = DEFAULT_SKELETON) -> Skeleton:
    """Look a skeleton up by name (a Skeleton passes through)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(
            f"unknown skeleton {name!r}; registered: {', '.join(sorted(SKELETONS))}") from None


def register_skeleton(skeleton: Skeleton, *, overwrite: bool = False) -> None:
    if skeleton.name in SKELETONS and not overwrite:
        raise ValueError(f"a skeleton named {skeleton.name!r} is already registered")
    SKELETONS[skeleton.name] = skeleton
