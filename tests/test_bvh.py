import math

import numpy as np
import pytest

from free3d.bvh import BVHError, bvh_to_positions, parse_bvh, read_bvh


def chain_bvh(frames: list[list[float]], *, root_rot="Zrotation Xrotation Yrotation",
              child_rot="Zrotation Xrotation Yrotation", frame_time=1 / 30) -> str:
    """Root (6 channels) -> Mid (3 rotation channels, offset (0,-1,0)) -> Tip (offset (0,0,2))."""
    body = "\n".join(" ".join(f"{v:g}" for v in f) for f in frames)
    return f"""HIERARCHY
ROOT Root
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {root_rot}
  JOINT Mid
  {{
    OFFSET 0 -1 0
    CHANNELS 3 {child_rot}
    JOINT Tip
    {{
      OFFSET 0 0 2
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {{
        OFFSET 0 0 0.5
      }}
    }}
  }}
}}
MOTION
Frames: {len(frames)}
Frame Time: {frame_time:.7f}
{body}
"""


def positions(text, **kw):
    return bvh_to_positions(parse_bvh(text), **kw)


def test_rest_pose_is_the_offsets():
    p = positions(chain_bvh([[1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(p[0], [[1, 2, 3], [1, 1, 3], [1, 1, 5]], atol=1e-12)


def test_root_rotation_about_z_swings_the_chain():
    # Rz(90 deg) maps (0,-1,0) to (1,0,0) and leaves (0,0,2) alone
    p = positions(chain_bvh([[0, 0, 0, 90, 0, 0, 0, 0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(p[0], [[0, 0, 0], [1, 0, 0], [1, 0, 2]], atol=1e-12)


def test_channel_order_is_respected():
    # intrinsic Z then X (R = Rz Rx) vs X then Z (R = Rx Rz), both 90 degrees, on the Tip offset
    zx = positions(chain_bvh([[0, 0, 0, 0, 0, 0, 90, 90, 0, 0, 0, 0]]))
    # Mid: R = Rz Rx; Rx(90)(0,0,2) = (0,-2,0); Rz(90)(0,-2,0) = (2,0,0)
    np.testing.assert_allclose(zx[0, 2], [2, -1, 0], atol=1e-12)
    xz = positions(chain_bvh([[0, 0, 0, 0, 0, 0, 90, 90, 0, 0, 0, 0]],
                             child_rot="Xrotation Zrotation Yrotation"))
    # Mid: R = Rx(90) Rz(90); Rz(90)(0,0,2) = (0,0,2); Rx(90)(0,0,2) = (0,-2,0)
    np.testing.assert_allclose(xz[0, 2], [0, -3, 0], atol=1e-12)


def test_rotations_compose_down_the_chain():
    # root yaw 90 (Y), Mid pitch 90 (X): Tip = root + Ry(Mid offset) + Ry Rx (Tip offset)
    p = positions(chain_bvh([[0, 0, 0, 0, 0, 90, 0, 90, 0, 0, 0, 0]]))
    # Ry(90)(0,-1,0) = (0,-1,0); Rx(90)(0,0,2) = (0,-2,0); Ry(90)(0,-2,0) = (0,-2,0)
    np.testing.assert_allclose(p[0], [[0, 0, 0], [0, -1, 0], [0, -3, 0]], atol=1e-12)
    # root yaw 90 alone: Ry(90)(0,0,2) = (2,0,0)
    p = positions(chain_bvh([[0, 0, 0, 0, 0, 90, 0, 0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(p[0, 2], [2, -1, 0], atol=1e-12)


def test_resampling_30_to_20_fps_slerps_and_keeps_bone_lengths():
    frames = [[0.1 * i, 0, 0, 0, 0, 0, 0, 9.0 * i, 0, 0, 0, 0] for i in range(31)]
    m = parse_bvh(chain_bvh(frames))
    assert m.fps == 30
    p = bvh_to_positions(m, fps=20)
    assert p.shape == (21, 3, 3)  # 1 s at 30 fps (31 frames) -> 21 frames at 20 fps
    # frame 1 at 20 fps = frame 1.5 at 30 fps: root x 0.15, Mid pitch 13.5 degrees
    np.testing.assert_allclose(p[1, 0], [0.15, 0, 0], atol=1e-12)
    a = math.radians(13.5)
    np.testing.assert_allclose(p[1, 2] - p[1, 1], [0, -2 * math.sin(a), 2 * math.cos(a)], atol=1e-9)
    bones = np.linalg.norm(p[:, 1:] - p[:, :-1], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to([1.0, 2.0], bones.shape), atol=1e-12)


def test_position_channels_replace_the_offset():
    text = chain_bvh([[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]).replace(
        "CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT Tip",
        "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n    JOINT Tip", 1)
    text = text.replace("\n0 0 0 0 0 0 0 0 0 0 0 0\n", "\n0 0 0 0 0 0 0 -3 0 0 0 0 0 0 0\n")
    p = positions(text)
    np.testing.assert_allclose(p[0, 1], [0, -3, 0])


def test_selecting_joints_by_name():
    p = positions(chain_bvh([[0] * 12]), joints=["Tip", "Root"])
    np.testing.assert_allclose(p[0], [[0, -1, 2], [0, 0, 0]])
    with pytest.raises(BVHError, match="no joints named \\['Nose'\\]"):
        positions(chain_bvh([[0] * 12]), joints=["Nose"])


@pytest.mark.parametrize("cut, message", [
    (lambda t: t[: t.index("MOTION")], "no MOTION section"),
    (lambda t: t[: len(t) - 12], "truncated or corrupt MOTION data"),
    (lambda t: t[: t.index("JOINT Tip")], "MOTION"),
    (lambda t: t.replace("Frames: 2", "Frames: 3"), "header says 3 frames"),
    (lambda t: t.replace("OFFSET 0 -1 0", "OFFSET 0 -1 zz"), "HIERARCHY"),
    (lambda t: t.replace("Yrotation\n  JOINT Mid", "Yrotation Wrotation\n  JOINT Mid"),
     "HIERARCHY"),
    (lambda t: "", "no MOTION section"),
])
def test_bad_bvh_gives_one_clear_error(tmp_path, cut, message):
    path = tmp_path / "bad.bvh"
    path.write_text(cut(chain_bvh([[0] * 12, [0] * 12])))
    with pytest.raises(BVHError, match=message) as e:
        read_bvh(path)
    assert str(path) in str(e.value)
