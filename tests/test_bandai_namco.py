"""The Bandai-Namco reader on a tiny dataset written here, as folders and as .tar.xz."""

import json
import math
import tarfile

import numpy as np
import pytest

from free3d.data.prepare import prepare_dataset
from free3d.data.prepared import read_records
from free3d.data.sources.bandai_namco import load_bandai_namco
from free3d.skeleton import BANDAI21

CHANNELS = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"


def bandai_bvh(frames: int, *, yaw_deg: float = 0.0, knee_deg: float = 0.0) -> str:
    """A BVH with Bandai-Namco's hierarchy (ground node + 21 joints, 6 channels, cm, 30 fps)."""
    s = BANDAI21
    children = {j: [c for c in range(s.num_joints) if s.parents[c] == j] for j in range(s.num_joints)}
    lines = ["HIERARCHY", "ROOT joint_Root", "{", "OFFSET 0 0 0", f"CHANNELS 6 {CHANNELS}"]

    def emit(j: int) -> None:
        off = np.asarray(s.rest_offsets[j]) * 100
        lines.extend([f"JOINT {s.joint_names[j]}", "{", "OFFSET {:g} {:g} {:g}".format(*off),
                      f"CHANNELS 6 {CHANNELS}"])
        for c in children[j]:
            emit(c)
        if not children[j]:
            lines.extend(["End Site", "{", "OFFSET 0 0 0", "}"])
        lines.append("}")

    emit(0)
    lines.append("}")
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    hips_height = 100.0
    for f in range(frames):
        vals = [0, 0, 0, 0, 0, 0]  # ground node
        for j in range(s.num_joints):
            pos = np.asarray(s.rest_offsets[j]) * 100
            if j == 0:
                pos = [0.0, hips_height, 2.0 * f]  # walks 60 cm/s along +Z
            rot = [0.0, 0.0, yaw_deg if j == 0 else 0.0]  # Z X Y
            if s.joint_names[j] == "LowerLeg_L":
                rot[1] = knee_deg * math.sin(f / 5)
            vals += [*pos, *rot]
        lines.append(" ".join(f"{v:g}" for v in vals))
    return "\n".join(lines) + "\n"


def write_dataset(root, n: int, takes: dict[str, tuple[int, int, int]]):
    """takes: name -> (frames, content id, style id)."""
    ds = root / f"Bandai-Namco-Research-Motiondataset-{n}"
    (ds / "data").mkdir(parents=True)
    (ds / "cfg").mkdir()
    (ds / "cfg" / "content_label.txt").write_text(f"dataset-{n}_walk\ndataset-{n}_bow\n")
    (ds / "cfg" / "style_label.txt").write_text(f"dataset-{n}_normal\ndataset-{n}_happy\n")
    for name, (frames, content, style) in takes.items():
        (ds / "data" / f"{name}.bvh").write_text(bandai_bvh(frames, yaw_deg=37.0, knee_deg=40.0))
        (ds / "data" / f"{name}.json").write_text(json.dumps({"content": content, "style": style}))
    return ds


@pytest.fixture
def mini(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, 1, {"dataset-1_walk_normal_001": (90, 0, 0),
                           "dataset-1_bow_happy_001": (45, 1, 1)})  # 1.5 s: dropped
    write_dataset(src, 2, {"dataset-2_walk_happy_001": (400, 0, 1)})  # 13.3 s: two pieces
    return src


def check_takes(takes):
    assert [t.take_id for t in takes] == ["dataset-1_bow_happy_001", "dataset-1_walk_normal_001",
                                          "dataset-2_walk_happy_001"]
    t = takes[1]
    assert t.labels == {"dataset": "dataset-1", "content": "walk", "style": "normal"}
    assert takes[2].labels["style"] == "happy" and takes[0].labels["content"] == "bow"
    assert t.joints.shape == (60, 21, 3)  # 90 frames at 30 fps -> 60 at 20 fps
    # metres: hips at 1 m, moving 0.6 m/s
    assert t.joints[0, 0, 1] == pytest.approx(1.0)
    assert t.joints[20, 0, 2] - t.joints[0, 0, 2] == pytest.approx(0.6, rel=1e-3)
    bones = np.linalg.norm(t.joints[:, 1:] - t.joints[:, BANDAI21.limb_parents], axis=-1)
    assert np.allclose(bones, BANDAI21.bone_lengths(), atol=1e-5)


def test_reads_dataset_folders(mini):
    check_takes(load_bandai_namco(mini, workers=1, progress=False))


def test_reads_tar_xz_archives_without_unpacking(mini, tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    for d in sorted(mini.iterdir()):
        with tarfile.open(archives / f"{d.name}.tar.xz", "w:xz") as tf:
            tf.add(d, arcname=f"dataset/{d.name}")
    check_takes(load_bandai_namco(archives, workers=2, progress=False))
    one = load_bandai_namco(archives / "Bandai-Namco-Research-Motiondataset-2.tar.xz",
                            progress=False)
    assert [t.take_id for t in one] == ["dataset-2_walk_happy_001"]


def test_prepared_clips_and_summary(mini, tmp_path):
    out = tmp_path / "out"
    summary = prepare_dataset(load_bandai_namco(mini, progress=False), out, skeleton=BANDAI21,
                              source="bandai-namco", progress=False)
    assert sorted(r.id for r in read_records(out)) == [
        "dataset-1_walk_normal_001", "dataset-2_walk_happy_001_p0", "dataset-2_walk_happy_001_p1"]
    assert summary["dropped"] == {"shorter than 2 s": 1}
    assert summary["labels"]["style"] == {"happy": 2, "normal": 1}
    captions = (out / "texts" / "dataset-2_walk_happy_001_p1.txt").read_text().splitlines()
    assert len(set(captions)) >= 5 and all("walk" in c or "stroll" in c or "step" in c
                                           or "pace" in c for c in captions)


def test_missing_labels_are_named(mini):
    label = mini / "Bandai-Namco-Research-Motiondataset-1" / "data" / "dataset-1_bow_happy_001.json"
    text = label.read_text()
    label.unlink()
    with pytest.raises(ValueError, match="dataset-1_bow_happy_001 has no label JSON"):
        load_bandai_namco(mini, progress=False)
    label.write_text(text)
    (mini / "Bandai-Namco-Research-Motiondataset-2" / "cfg" / "style_label.txt").unlink()
    with pytest.raises(ValueError, match="style_label.txt is missing"):
        load_bandai_namco(mini, progress=False)
