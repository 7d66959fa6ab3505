"""HumanML3D / KIT-ML reader against small fixtures written here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from free3d.data.sources.humanml3d import load_humanml3d, parse_text_file
from free3d.skeleton import get_skeleton

TOKENS = "a/DET person/NOUN walk/VERB"


def motion(skeleton_name: str, frames: int, fps: float, *, seed: int = 0) -> np.ndarray:
    """(T, J, 3) metres: the rest pose walking along +Z with small swinging limbs."""
    sk = get_skeleton(skeleton_name)
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    offsets = np.asarray(sk.rest_offsets)
    phase = rng.uniform(0, 2 * math.pi, sk.num_joints)
    angles = 0.15 * np.sin(2 * math.pi * 1.0 * t[:, None] + phase[None, :])  # (T, J)
    local = Rotation.from_euler("x", angles.reshape(-1, 1)).as_matrix().reshape(frames, -1, 3, 3)
    glob = np.empty_like(local)
    pos = np.zeros((frames, sk.num_joints, 3))
    pos[:, 0] = np.stack([np.zeros_like(t), 0.95 + 0.02 * np.sin(4 * math.pi * t), t], -1)
    glob[:, 0] = local[:, 0]
    for j in range(1, sk.num_joints):
        p = sk.parents[j]
        pos[:, j] = pos[:, p] + np.einsum("tab,b->ta", glob[:, p], offsets[j])
        glob[:, j] = glob[:, p] @ local[:, j]
    return pos


def write_clip(root: Path, clip_id: str, joints: np.ndarray | None, lines: list[str] | None):
    (root / "new_joints").mkdir(parents=True, exist_ok=True)
    (root / "texts").mkdir(parents=True, exist_ok=True)
    if joints is not None:
        np.save(root / "new_joints" / f"{clip_id}.npy", joints.astype(np.float32))
    if lines is not None:
        (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n")


def write_splits(root: Path, **splits: list[str]) -> None:
    for name, ids in splits.items():
        (root / f"{name}.txt").write_text("".join(i + "\n" for i in ids))


def line(caption: str, start="0.0", end="0.0") -> str:
    return f"{caption}#{TOKENS}#{start}#{end}"


@pytest.fixture
def hml(tmp_path: Path) -> Path:
    root = tmp_path / "HumanML3D"
    write_clip(root, "000001", motion("humanml3d22", 240, 20.0), [
        line("a person walks forward."),
        line("someone walks ahead.", "0", "0"),
        line("a person raises an arm.", "1.0", "3.5"),
        line("the person swings an arm.", "1.0", "3.5"),
        line("walking straight", "nan", "nan"),
        line("   "),  # empty caption: skipped
    ])
    write_clip(root, "M000001", motion("humanml3d22", 240, 20.0, seed=1),
               [line("a person walks forward, mirrored.")])
    write_clip(root, "000002", motion("humanml3d22", 60, 20.0, seed=2), [
        line("a person steps.", "0.5", "2.75"),
        line("bad crop, end before start.", "2.0", "1.0"),
        line("bad crop, past the end.", "5.0", "7.0"),
    ])
    write_clip(root, "000003", motion("humanml3d22", 80, 20.0, seed=3), [line(" ")])
    write_splits(root, train=["000001", "000003"], val=["M000001", "000004"], test=["000002"])
    return root


def test_parse_text_file():
    lines = parse_text_file(
        "a man walks.#a/DET man/NOUN#0.0#0.0\n\nhe jumps#he/PRON#1.5#3\nx#nan#nan\n"
        "#empty/NOUN#0#0\nno tokens#2#4\n", "t.txt")
    assert lines == [("a man walks.", None, None), ("he jumps", 1.5, 3.0), ("x", None, None),
                     ("no tokens", 2.0, 4.0)]


def test_whole_clips_and_crops(hml: Path):
    takes, dropped, skeleton = load_humanml3d(hml, progress=False)
    assert skeleton.name == "humanml3d22"
    by_id = {t.take_id: t for t in takes}
    assert sorted(by_id) == ["000001", "000001_20_70", "000002_10_55", "M000001"]
    whole = by_id["000001"]
    assert whole.captions == ["a person walks forward.", "someone walks ahead.", "walking straight"]
    assert whole.split == "train" and whole.source == "humanml3d" and whole.labels == {}
    assert whole.max_frames == 196 and whole.joints.shape == (240, 22, 3)
    crop = by_id["000001_20_70"]
    assert crop.captions == ["a person raises an arm.", "the person swings an arm."]
    assert crop.split == "train" and crop.joints.shape == (50, 22, 3)
    np.testing.assert_allclose(crop.joints, whole.joints[20:70])
    assert by_id["M000001"].split == "val"
    assert by_id["000002_10_55"].split == "test"
    assert by_id["000002_10_55"].captions == ["a person steps."]
    np.testing.assert_allclose(whole.joints, motion("humanml3d22", 240, 20.0), atol=1e-6)
    assert dropped == {"bad crop": 2, "no captions": 1, "missing files": 1}


def test_kit_resampled_and_converted(tmp_path: Path):
    root = tmp_path / "KIT-ML"
    frames = 50  # 4 s at 12.5 fps
    write_clip(root, "00001", motion("kit21", frames, 12.5) * 1000.0,
               [line("a person walks."), line("a person walks on.", "1.0", "3.0")])
    write_clip(root, "00002", motion("kit21", frames, 12.5, seed=4) * 1000.0,
               [line("someone walks.")])
    write_splits(root, train=["00001"], test=["00002"])
    takes, dropped, skeleton = load_humanml3d(root, progress=False)
    assert skeleton.name == "kit21" and not dropped
    by_id = {t.take_id: t for t in takes}
    assert sorted(by_id) == ["00001", "00001_20_60", "00002"]
    whole = by_id["00001"]
    assert whole.source == "kit" and whole.split == "train"
    assert whole.joints.shape == (math.floor((frames - 1) * 20 / 12.5) + 1, 21, 3)  # 79
    height = np.median(whole.joints[..., 1].max(1) - whole.joints[..., 1].min(1))
    assert 1.2 < height < 2.0
    # the 20 fps clip passes through the same poses as the source at shared instants
    src = motion("kit21", frames, 12.5)
    np.testing.assert_allclose(whole.joints[::8], src[::5], atol=1e-5)
    assert by_id["00001_20_60"].joints.shape == (40, 21, 3)

    # explicit units and frame rate override the defaults
    takes, _, _ = load_humanml3d(root, dataset="kit", units="m", fps=20.0, progress=False)
    whole = {t.take_id: t for t in takes}["00001"]
    assert whole.joints.shape[0] == frames and whole.joints[..., 1].max() > 100


def test_prepare_end_to_end(hml: Path, tmp_path: Path):
    from free3d.data.prepare import prepare_dataset
    from free3d.data.prepared import read_captions, read_records, read_split

    takes, dropped, skeleton = load_humanml3d(hml, progress=False)
    out = tmp_path / "prepared"
    summary = prepare_dataset(takes, out, skeleton=skeleton, source="humanml3d",
                              dropped=dropped, progress=False)
    assert read_split(out, "train") == ["000001", "000001_20_70"]
    assert read_split(out, "val") == ["M000001"]
    assert read_split(out, "test") == ["000002_10_55"]
    assert read_captions(out, "000001_20_70") == ["a person raises an arm.",
                                                  "the person swings an arm."]
    assert read_captions(out, "M000001") == ["a person walks forward, mirrored."]
    frames = {r.id: r.frames for r in read_records(out)}
    assert frames == {"000001": 196, "M000001": 196, "000001_20_70": 50, "000002_10_55": 45}
    assert summary["truncated_to_max_length"] == 2
    assert summary["dropped"] == {"bad crop": 2, "no captions": 1, "missing files": 1}
    assert np.load(out / "motion3d" / "000001.npy").shape == (196, 22, 3)


@pytest.mark.parametrize("bad", ["only a caption", "caption#tokens#zero#1.0", "c#t#0.0#"])
def test_malformed_line(hml: Path, tmp_path: Path, bad: str, capsys):
    from free3d.cli import main

    (hml / "texts" / "000002.txt").write_text(line("fine.", "0.5", "2.75") + "\n" + bad + "\n")
    with pytest.raises(ValueError, match=r"texts/000002\.txt:2: malformed line"):
        load_humanml3d(hml, progress=False)
    out = tmp_path / "prepared"
    rc = main(["data", "prepare", "humanml3d", "--src", str(hml), "--out", str(out), "--quiet"])
    assert rc == 2 and "texts/000002.txt:2" in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_wrong_joint_count(tmp_path: Path):
    root = tmp_path / "d"
    write_clip(root, "a", np.zeros((50, 20, 3)), [line("x")])
    write_splits(root, train=["a"])
    with pytest.raises(ValueError, match=r"new_joints/a\.npy"):
        load_humanml3d(root, progress=False)
    write_clip(root, "a", motion("humanml3d22", 50, 20.0), [line("x")])
    with pytest.raises(ValueError, match=r"new_joints/a\.npy: 22 joints.*kit"):
        load_humanml3d(root, dataset="kit", progress=False)
    write_clip(root, "b", motion("kit21", 50, 12.5), [line("x")])
    write_splits(root, train=["a", "b"])
    with pytest.raises(ValueError, match=r"new_joints/b\.npy: 21 joints"):
        load_humanml3d(root, progress=False)
    write_clip(root, "b", motion("humanml3d22", 50, 20.0)[..., :2], [line("x")])
    with pytest.raises(ValueError, match=r"new_joints/b\.npy.*shape"):
        load_humanml3d(root, progress=False)


def test_non_finite_joints(tmp_path: Path):
    root = tmp_path / "d"
    j = motion("humanml3d22", 50, 20.0)
    j[10, 3, 1] = np.nan
    write_clip(root, "a", j, [line("x")])
    write_splits(root, train=["a"])
    with pytest.raises(ValueError, match=r"new_joints/a\.npy: joints contain NaN"):
        load_humanml3d(root, progress=False)


def test_missing_split_ids_are_dropped(tmp_path: Path):
    root = tmp_path / "d"
    write_clip(root, "a", motion("humanml3d22", 50, 20.0), [line("x")])
    write_clip(root, "b", motion("humanml3d22", 50, 20.0), None)  # joints but no texts
    write_clip(root, "c", None, [line("y")])  # texts but no joints
    write_splits(root, train=["a", "b", "c", "zzz"], val=[], test=[])
    takes, dropped, _ = load_humanml3d(root, progress=False)
    assert [t.take_id for t in takes] == ["a"]
    assert dropped == {"missing files": 3}


def test_missing_layout(tmp_path: Path):
    with pytest.raises(ValueError, match="not a folder"):
        load_humanml3d(tmp_path / "nope", progress=False)
    root = tmp_path / "d"
    root.mkdir()
    with pytest.raises(ValueError, match="new_joints/ and texts/"):
        load_humanml3d(root, progress=False)
    (root / "new_joints").mkdir()
    (root / "texts.zip").write_bytes(b"")
    with pytest.raises(ValueError, match=r"texts/.*unzip texts\.zip"):
        load_humanml3d(root, progress=False)
    (root / "texts").mkdir()
    with pytest.raises(ValueError, match="no split files"):
        load_humanml3d(root, progress=False)
    write_splits(root, train=["a"])
    with pytest.raises(ValueError, match="no .npy files"):
        load_humanml3d(root, progress=False)
    with pytest.raises(ValueError, match="dataset must be"):
        load_humanml3d(root, dataset="amass", progress=False)
    with pytest.raises(ValueError, match="units must be"):
        load_humanml3d(root, units="cm", progress=False)
