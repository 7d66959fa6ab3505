"""Previews: GIF/PNG output, atomic writes, side colouring, the 3D view's orientation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import proj3d
from PIL import Image

from free3d.export import preview
from free3d.export.preview import joint_sides, preview_prepared_clip, render_preview
from free3d.skeleton import SKELETONS, get_skeleton

FPS = 20.0


def walking_clip(frames: int = 30, name: str = "bandai21") -> np.ndarray:
    """(T, J, 3): the rest pose standing on y = 0, walking along +Z at 1.2 m/s, the arms
    hanging down and swinging forward and back (left and right in opposition)."""
    sk = get_skeleton(name)
    rest = sk.rest_pose()
    rest = rest - np.array([0.0, rest[:, 1].min(), 0.0])
    joints = np.repeat(rest[None], frames, axis=0)
    t = np.arange(frames) / FPS
    joints[:, :, 2] += 1.2 * t[:, None]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = sk.index(f"{side}_shoulder")
        swing = sign * 0.6 * np.sin(2 * np.pi * t)
        for role in (f"{side}_elbow", f"{side}_wrist"):
            k = sk.index(role)
            r = np.linalg.norm(rest[k] - rest[shoulder])
            joints[:, k, 0] = joints[:, shoulder, 0] + sign * 0.15 * r
            joints[:, k, 1] = joints[:, shoulder, 1] - r * np.cos(swing)
            joints[:, k, 2] = joints[:, shoulder, 2] + r * np.sin(swing)
    return joints


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return walking_clip()


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_gif_is_an_animation_in_real_time(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, clip[..., :2], sk, tmp_path / "walk.gif", title="a walk", fps=FPS)
    assert out == tmp_path / "walk.gif"
    assert _files(tmp_path) == ["walk.gif"]  # no temporary file left behind
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 15  # 30 frames at 20 fps, subsampled to 10 fps
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert im.size[0] > 400 and im.size[1] > 200
    assert sum(durations) == pytest.approx(1000 * 30 / FPS, abs=10)


def test_gif_max_frames_and_single_panel(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, None, sk, tmp_path / "a.gif", fps=FPS, max_frames=10)
    with Image.open(out) as im:
        assert im.n_frames == 5
    out = render_preview(None, clip[..., :2], sk, tmp_path / "b.gif", fps=FPS, max_frames=4)
    with Image.open(out) as im:
        assert im.n_frames == 2


@pytest.mark.parametrize("fps", [10.0, 20.0, 24.0, 25.0, 30.0, 60.0])
def test_gif_durations_follow_the_clock(fps):
    step = max(1, int(np.ceil(fps / preview.MAX_GIF_FPS - 1e-9)))
    assert fps / step <= preview.MAX_GIF_FPS
    frames = 37
    durations = preview._gif_durations(frames, step / fps)
    assert all(d % 10 == 0 and d >= 20 for d in durations)
    assert sum(durations) == pytest.approx(1000 * frames * step / fps, abs=10)


def test_png_keyframe_sheet(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, clip[..., :2], sk, tmp_path / "walk.png", title="a walk", fps=FPS)
    assert _files(tmp_path) == ["walk.png"]
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert 900 <= w <= 3000 and 400 <= h <= 2000
        assert np.asarray(im.convert("L")).std() > 5  # something was drawn


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_png_for_each_skeleton_3d_only(tmp_path, name):
    sk = get_skeleton(name)
    out = render_preview(walking_clip(12, name), None, sk, tmp_path / f"{name}.png", fps=FPS)
    with Image.open(out) as im:
        assert im.size[0] > 300


@pytest.mark.parametrize("name", [".jpg", ".GIFF", ""])
def test_bad_extension_raises_and_writes_nothing(tmp_path, clip, name):
    sk = get_skeleton("bandai21")
    target = tmp_path / f"out{name}"
    with pytest.raises(ValueError, match="use one of") as err:
        render_preview(clip, None, sk, target)
    assert (name or "no extension") in str(err.value)
    assert _files(tmp_path) == []


def test_bad_inputs(tmp_path, clip):
    sk = get_skeleton("bandai21")
    with pytest.raises(ValueError, match="needs joints3d, joints2d or both"):
        render_preview(None, None, sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\(T, 21, 3\)"):
        render_preview(clip[:, :20], None, sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="differ in length"):
        render_preview(clip, clip[:10, :, :2], sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        render_preview(clip, None, sk, tmp_path / "x.gif", fps=0)
    assert _files(tmp_path) == []


def test_mp4_needs_imageio_ffmpeg(tmp_path, clip):
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install imageio-ffmpeg"):
            render_preview(clip, None, get_skeleton("bandai21"), tmp_path / "x.mp4")
        assert _files(tmp_path) == []
    else:
        out = render_preview(clip[:6], None, get_skeleton("bandai21"), tmp_path / "x.mp4")
        assert out.stat().st_size > 1000
        assert _files(tmp_path) == ["x.mp4"]


def test_crash_leaves_no_partial_file(tmp_path, clip, monkeypatch):
    (tmp_path / "walk.gif").write_bytes(b"old preview")

    def broken(path, *args):
        path.write_bytes(b"GIF89a half a file")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(preview, "_write_gif", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        render_preview(clip, None, get_skeleton("bandai21"), tmp_path / "walk.gif")
    assert _files(tmp_path) == ["walk.gif"]
    assert (tmp_path / "walk.gif").read_bytes() == b"old preview"


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_joint_sides(name):
    sk = get_skeleton(name)
    sides = joint_sides(sk)
    for side in ("left", "right"):
        for role in ("hip", "knee", "ankle", "toe", "shoulder", "elbow", "wrist"):
            assert sides[sk.index(f"{side}_{role}")] == side, (name, side, role)
    for role in ("pelvis", "neck", "head"):
        assert sides[sk.index(role)] == "centre"
    # left and right are mirror images: as many joints on each side
    assert sides.count("left") == sides.count("right") > 0


def test_bandai_clavicles_take_the_arms_side():
    sides = joint_sides(get_skeleton("bandai21"))
    names = get_skeleton("bandai21").joint_names
    assert sides[names.index("Shoulder_L")] == "left"
    assert sides[names.index("Shoulder_R")] == "right"
    assert sides[names.index("Chest")] == "centre"


def test_3d_view_is_upright_unmirrored_and_sees_the_front(clip):
    """The (x, z, y) plotting swap is a reflection; the panel must undo it. With the body
    facing +Z, the camera must be on the front side, the head above the feet and the
    body's left (+X) on the right of the picture, as in a photograph of its front."""
    sk = get_skeleton("bandai21")
    fig = Figure(figsize=(5, 4), dpi=80)
    canvas = FigureCanvasAgg(fig)
    panel = preview._Panel3D(fig, fig.add_gridspec(1, 1)[0, 0], clip, sk, ["k"] * sk.num_limbs)
    panel.update(0)
    canvas.draw()
    proj = panel.ax.get_proj()

    def screen(p):  # world (x, y, z) -> screen (u, v)
        u, v, _ = proj3d.proj_transform(p[0], p[2], p[1], proj)
        return np.array([u, v])

    pose = clip[0]
    head, toe = screen(pose[sk.index("head")]), screen(pose[sk.index("left_toe")])
    assert head[1] > toe[1]
    left, right = screen(pose[sk.index("left_wrist")]), screen(pose[sk.index("right_wrist")])
    assert left[0] > right[0]
    # perspective: a metre along x looks longer on the side nearer the camera
    (_, _), (z0, z1) = panel.ax.get_xlim(), sorted(panel.ax.get_ylim())
    front = np.linalg.norm(screen((0.5, 0.0, z1)) - screen((-0.5, 0.0, z1)))
    back = np.linalg.norm(screen((0.5, 0.0, z0)) - screen((-0.5, 0.0, z0)))
    assert front > back
    fig.clear()


# ---------------------------------------------------------------------------------------
# prepared datasets


def _write_prepared(root, clip_id: str, joints3d: np.ndarray) -> None:
    sk = get_skeleton("bandai21")
    for d in ("motion2d", "motion3d", "texts"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"format_version": 1, "skeleton": "bandai21",
                                                "fps": FPS}))
    np.save(root / "motion3d" / f"{clip_id}.npy", joints3d.astype(np.float32))
    j2 = joints3d[..., :2].astype(np.float32)  # a camera on +Z: drop depth
    np.savez(root / "motion2d" / f"{clip_id}.npz", trajectory=j2[:, 0],
             limbs=j2[:, 1:] - j2[:, sk.limb_parents],
             confidence=np.ones(j2.shape[:2], np.float32),
             camera_azimuth_deg=np.float64(0.0), camera_elevation_deg=np.float64(0.0),
             camera_scale=np.float64(1.0), camera_translation=np.zeros(2))
    (root / "texts" / f"{clip_id}.txt").write_text("a person walks forward\nsomeone walks\n")


def test_preview_prepared_clip_writes_to_the_current_folder(tmp_path, clip, monkeypatch):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = preview_prepared_clip(root, "walk_000")
    assert out.resolve() == (work / "walk_000.gif").resolve()
    with Image.open(out) as im:
        assert im.n_frames > 1
    out = preview_prepared_clip(root, "walk_000", tmp_path / "sheet.png", fmt="gif")
    assert out == tmp_path / "sheet.png" and out.is_file()
    out = preview_prepared_clip(root, "walk_000", fmt=".PNG")
    assert out.name == "walk_000.png" and out.is_file()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_preview_prepared_clip_2d_only(tmp_path, clip):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    (root / "motion3d" / "walk_000.npy").unlink()
    out = preview_prepared_clip(root, "walk_000", tmp_path / "walk.png")
    assert out.is_file()


def test_preview_prepared_clip_unknown_id(tmp_path, clip):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    _write_prepared(root, "walk_001", clip[:5])
    with pytest.raises(FileNotFoundError, match="no clip 'nope'") as err:
        preview_prepared_clip(root, "nope", tmp_path / "x.gif")
    assert "walk_000" in str(err.value) and "walk_001" in str(err.value)
    assert not (tmp_path / "x.gif").exists()
