import builtins
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from free3d.data.ground_truth import load_motion3d
from free3d.data.motion2d import Motion2DDataset, pad_collate
from free3d.data.prepare import Take, prepare_dataset
from free3d.data.prepared import SPLITS, read_meta, read_records, read_split
from free3d.data.single_view import Camera
from free3d.data.sources.procedural import procedural_takes
from free3d.representation import from_free3d, project
from free3d.skeleton import get_skeleton


def test_layout_meta_and_splits(procedural_dataset):
    root = procedural_dataset
    meta = read_meta(root)
    assert meta["skeleton"] == "bandai21" and meta["fps"] == 20
    records = read_records(root)
    assert len(records) == 21
    ids = [i for s in SPLITS for i in read_split(root, s)]
    assert sorted(ids) == sorted(r.id for r in records)
    assert len(read_split(root, "train")) > len(read_split(root, "test")) > 0
    summary = json.loads((root / "summary.json").read_text())
    assert summary["clips"] == 21 and summary["labels"]["content"] == {"jump": 7, "walk": 7, "wave": 7}
    for r in records:
        captions = (root / "texts" / f"{r.id}.txt").read_text().splitlines()
        assert len(set(captions)) >= 5


def test_prepared_3d_clips_are_canonical_with_constant_bones(procedural_dataset):
    s = get_skeleton("bandai21")
    for r in read_records(procedural_dataset):
        j = load_motion3d(procedural_dataset, r.id).astype(np.float64)
        assert j.shape == (r.frames, 21, 3) and 40 <= r.frames <= 196
        assert abs(j[..., 1].min()) < 1e-6
        assert np.allclose(j[0, 0, [0, 2]], 0, atol=1e-6)
        bones = np.linalg.norm(j[:, 1:] - j[:, s.limb_parents], axis=-1)
        assert (bones.max(0) - bones.min(0)).max() < 1e-5


def test_stored_camera_reproduces_the_2d_view(procedural_dataset):
    s = get_skeleton("bandai21")
    for r in read_records(procedural_dataset)[:6]:
        with np.load(procedural_dataset / "motion2d" / f"{r.id}.npz") as z:
            cam = Camera(float(z["camera_azimuth_deg"]), float(z["camera_elevation_deg"]),
                         float(z["camera_scale"]), tuple(z["camera_translation"]))
            traj, limbs = torch.from_numpy(z["trajectory"]), torch.from_numpy(z["limbs"])
            assert np.all(z["confidence"] == 1)
        j3 = torch.from_numpy(load_motion3d(procedural_dataset, r.id)).double()
        j2 = project(j3, torch.from_numpy(cam.rotation()), cam.scale,
                     torch.tensor(cam.translation, dtype=torch.float64))
        assert torch.allclose(from_free3d(traj, limbs, s).double(), j2, atol=1e-4)
        assert torch.allclose(traj[0], torch.zeros(2), atol=1e-6)
        # scale normalisation: the median 2D torso is the rest torso length
        torso = (j2[:, s.index("neck")] - j2[:, s.index("pelvis")]).norm(dim=-1).median()
        assert float(torso) == pytest.approx(s.torso_length, rel=1e-3)


def test_cameras_are_drawn_once_per_clip_and_vary_between_clips(procedural_dataset, tmp_path):
    # preparing again gives the very same cameras (a function of seed and clip id)
    s = get_skeleton("bandai21")
    again = tmp_path / "again"
    prepare_dataset(procedural_takes(skeleton=s, clips_per_kind=7, seed=3), again, skeleton=s,
                    source="procedural", seed=3, progress=False)
    az = []
    for r in read_records(procedural_dataset):
        a = np.load(procedural_dataset / "motion2d" / f"{r.id}.npz")
        b = np.load(again / "motion2d" / f"{r.id}.npz")
        assert float(a["camera_azimuth_deg"]) == float(b["camera_azimuth_deg"])
        assert np.array_equal(a["limbs"], b["limbs"])
        az.append(float(a["camera_azimuth_deg"]))
    assert np.ptp(az) > 180  # spread over the circle


def test_2d_dataset_has_no_route_to_3d(procedural_dataset, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(procedural_dataset, root)
    opened: list[str] = []
    real_open, real_io_open = builtins.open, io.open

    def spy(file, *a, **k):
        opened.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    ds = Motion2DDataset(root, "train")
    item = ds[0]
    batch = pad_collate([ds[i] for i in range(len(ds))])
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(io, "open", real_io_open)
    assert opened and not any("motion3d" in p for p in opened)
    assert set(item) == {"clip_id", "trajectory", "limbs", "confidence", "captions", "length"}
    assert item["limbs"].shape[-1] == 2 and item["trajectory"].shape[-1] == 2
    assert batch["limbs"].shape == (len(ds), int(batch["length"].max()), 20, 2)
    assert batch["mask"].sum() == batch["length"].sum()
    # and it works with the 3D removed altogether
    shutil.rmtree(root / "motion3d")
    assert len(Motion2DDataset(root, "train")) == len(ds)
    # the module itself never names the 3D folder
    import free3d.data.motion2d as m2d
    assert "MOTION3D" not in Path(m2d.__file__).read_text()


def test_bad_input_leaves_nothing_behind(tmp_path):
    s = get_skeleton("bandai21")
    good = procedural_takes(skeleton=s, clips_per_kind=1, seed=0)
    bad = Take("broken", np.full((50, 21, 3), np.nan, dtype=np.float32), "test",
               {"content": "walk", "style": "normal"})
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="broken: joints contain NaN"):
        prepare_dataset([*good, bad], out, skeleton=s, source="test", progress=False)
    assert list(tmp_path.iterdir()) == []
    wrong = Take("wrong", np.zeros((50, 22, 3), dtype=np.float32), "test", {})
    with pytest.raises(ValueError, match="do not match skeleton bandai21"):
        prepare_dataset([wrong], out, skeleton=s, source="test", progress=False)
    with pytest.raises(ValueError, match="no usable clips"):
        prepare_dataset([Take("short", np.zeros((10, 21, 3)), "test", {})], out, skeleton=s,
                        source="test", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_unless_overwrite(procedural_dataset, tmp_path):
    s = get_skeleton("bandai21")
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    takes = procedural_takes(skeleton=s, clips_per_kind=1, seed=0)
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_dataset(takes, out, skeleton=s, source="t", progress=False)
    assert (out / "precious.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="not a prepared free3d dataset"):
        prepare_dataset(takes, out, skeleton=s, source="t", progress=False, overwrite=True)
    assert (out / "precious.txt").read_text() == "keep me"
    (out / "precious.txt").unlink()
    prepare_dataset(takes, out, skeleton=s, source="t", progress=False)
    prepare_dataset(takes[:2], out, skeleton=s, source="t", progress=False, overwrite=True)
    assert len(read_records(out)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_long_takes_are_cut_and_short_ones_counted(tmp_path):
    s = get_skeleton("bandai21")
    base = procedural_takes(skeleton=s, clips_per_kind=1, seed=0)[0]
    long = Take("long", np.concatenate([base.joints] * 8)[:500], "t", base.labels, base.captions)
    short = Take("short", base.joints[:30], "t", base.labels, base.captions)
    summary = prepare_dataset([long, short, base], tmp_path / "o", skeleton=s, source="t",
                              progress=False)
    ids = sorted(r.id for r in read_records(tmp_path / "o"))
    assert ids == sorted([base.take_id, "long_p0", "long_p1", "long_p2"])
    assert summary["dropped"] == {"shorter than 2 s": 1}
    recs = {r.id: r for r in read_records(tmp_path / "o")}
    assert sum(recs[f"long_p{i}"].frames for i in range(3)) == 500
    assert len({recs[f"long_p{i}"].split for i in range(3)}) == 1  # one take, one split


def test_camera_frame_round_trip_matches_the_2d_view(procedural_dataset):
    from free3d.data.ground_truth import camera_to_world, load_camera, world_to_camera
    from free3d.data.motion2d import load_clip2d

    s = get_skeleton("bandai21")
    for r in read_records(procedural_dataset)[:5]:
        world = load_motion3d(procedural_dataset, r.id).astype(np.float64)
        cam = load_camera(procedural_dataset, r.id)
        in_cam = world_to_camera(world, cam)
        assert np.allclose(camera_to_world(in_cam, cam), world, atol=1e-9)
        clip = load_clip2d(procedural_dataset, r.id)
        j2 = from_free3d(torch.from_numpy(clip.trajectory), torch.from_numpy(clip.limbs), s).numpy()
        xy = in_cam[..., :2] - in_cam[:1, :1, :2]
        assert np.allclose(xy, j2, atol=1e-4)  # x, y are the 2D view; z is the hidden depth
