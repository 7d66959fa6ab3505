"""``free3d data prepare keypoints``: a 2D-only dataset from COCO-17 JSON files written
here from procedural clips (2 % noise, 10 % of joints dropped), every 2D training stage
on it, fine-tuning with --init-from, the 3D-needing commands refusing it, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_generation_training import TINY_TF, TINY_VQ
from test_lift_command import pixels

from free3d.checkpoints import WEIGHTS
from free3d.cli import main
from free3d.data.motion2d import Motion2DDataset
from free3d.data.prepared import read_records
from free3d.data.single_view import Camera
from free3d.data.sources.procedural import KINDS, procedural_motion
from free3d.keypoints import COCO17
from free3d.models.token_transformer import transformer_preset
from free3d.skeleton import get_skeleton
from free3d.training.generation import make_generator_config, train_generator
from free3d.training.lifting import make_config, train

SK = get_skeleton("bandai21")
FAST = {"arch": TINY_VQ, "batch_size": 8, "window": 40, "warmup_iters": 2, "log_every": 2}


def write_coco(path: Path, j3: np.ndarray, rng: np.random.Generator, *, azimuth: float) -> None:
    """A clip as COCO-17 JSON at 20 fps: 2 % of body height Gaussian noise, 10 % of the
    joints dropped (score 0, as detectors write them)."""
    xy = pixels(j3, COCO17, Camera(azimuth, 5.0))
    height = float(np.median(np.ptp(xy[..., 1], axis=1)))
    xy = xy + rng.normal(0.0, 0.02 * height, xy.shape)
    score = np.where(rng.random(xy.shape[:2]) < 0.10, 0.0, 0.9)
    frames = [[{"keypoints": np.concatenate([xy[t], score[t, :, None]], 1).ravel().tolist(),
                "score": 0.9}] for t in range(len(xy))]
    path.write_text(json.dumps({"fps": 20, "frames": frames}))


@pytest.fixture(scope="module")
def keypoint_src(tmp_path_factory) -> tuple[Path, Path]:
    """12 captioned clips (one 1.5 s, one 12 s), plus one file nobody captioned."""
    src = tmp_path_factory.mktemp("kp") / "src"
    src.mkdir()
    rng = np.random.default_rng(7)
    lines = []
    for k in range(13):
        kind = KINDS[k % 3]
        seconds = 1.5 if k == 0 else 12.0 if k == 1 else float(rng.uniform(2.5, 5.0))
        j3 = procedural_motion(kind, SK, seconds=seconds, speed="normal", rng=rng)
        write_coco(src / f"clip {k:02d}.json", j3, rng, azimuth=float(rng.uniform(0, 360)))
        if k < 12:  # clip 12 has no caption
            lines += [f"clip {k:02d}#a person does a {kind}", f"clip {k:02d}#someone {kind}s"]
    captions = src.parent / "captions.txt"
    captions.write_text("\n".join(lines) + "\n")
    return src, captions


@pytest.fixture(scope="module")
def kp_dataset(keypoint_src, tmp_path_factory) -> Path:
    src, captions = keypoint_src
    out = tmp_path_factory.mktemp("kpdata") / "prepared"
    assert main(["data", "prepare", "keypoints", "--src", str(src), "--captions", str(captions),
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_prepared_keypoint_dataset_is_2d_only(kp_dataset, capsys):
    assert not (kp_dataset / "motion3d").exists()
    meta = json.loads((kp_dataset / "meta.json").read_text())
    assert meta["motion3d"] is False and meta["camera"] is None
    summary = json.loads((kp_dataset / "summary.json").read_text())
    assert summary["dropped"] == {"shorter than 2 s": 1, "without captions": 1}
    assert summary["skipped"] == {"clip 12.json": "no caption"}
    records = read_records(kp_dataset)
    assert len({r.take for r in records}) == 11
    assert any(r.id.startswith("clip_01_p") for r in records)  # 12 s: cut into pieces
    assert all(40 <= r.frames <= 196 for r in records)
    ds = Motion2DDataset(kp_dataset, "train")
    item = ds[0]
    assert item["limbs"].shape[1:] == (SK.num_limbs, 2)
    assert item["captions"][0].startswith("a person does a")
    with np.load(kp_dataset / "motion2d" / f"{ds.clips[0].clip_id}.npz") as z:
        assert sorted(z.files) == ["confidence", "limbs", "trajectory"]
    conf = np.concatenate([c.confidence for c in ds.clips])
    # dropped COCO joints (and the bandai21 joints derived from them) carry no weight
    assert 0.05 < float((conf == 0).mean()) < 0.6
    assert np.isfinite(np.concatenate([c.limbs for c in ds.clips])).all()


def test_every_2d_stage_trains_and_fine_tunes(kp_dataset, tmp_path):
    train(make_config("prior", kp_dataset, iters=4, finetune_iters=0, **FAST), tmp_path / "prior",
          progress=False)
    train(make_config("mlrq", kp_dataset, iters=4, finetune_iters=0, prior=str(tmp_path / "prior"),
                      **FAST), tmp_path / "mlrq", progress=False)
    for stage in ("masked", "residual", "length"):
        cfg = make_generator_config(stage, kp_dataset, tmp_path / "mlrq", iters=3, batch_size=8,
                                    warmup_iters=1, log_every=1, checkpoint_every=3)
        if stage != "length":
            cfg.arch = transformer_preset("cpu", **TINY_TF).to_dict()
        train_generator(cfg, tmp_path / stage, progress=False)
    for stage in ("prior", "mlrq", "masked", "residual", "length"):
        assert (tmp_path / stage / WEIGHTS).is_file(), stage
    # a user's clips fine-tune a trained ML-RQ: its weights are the starting point
    train(make_config("mlrq", kp_dataset, iters=3, finetune_iters=0, prior=str(tmp_path / "prior"),
                      init_from=str(tmp_path / "mlrq"), **FAST), tmp_path / "ft", progress=False)
    assert (tmp_path / "ft" / WEIGHTS).is_file()


@pytest.mark.parametrize("argv", [
    ["train", "rvq3d", "--iters", "2"],
    ["train", "evaluator", "--iters", "2"],
])
def test_3d_commands_refuse_a_2d_only_dataset(kp_dataset, tmp_path, capsys, argv):
    out = tmp_path / "run"
    assert main([*argv, "--data", str(kp_dataset), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no motion3d/" in err and "3D" in err, err
    assert not out.exists()


def test_eval_lift_refuses_a_2d_only_dataset(kp_dataset, capsys):
    assert main(["eval", "lift", "--data", str(kp_dataset), "--reference", "zero-depth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no motion3d/" in err, err


def test_bad_keypoint_inputs_are_one_error_and_leave_nothing(keypoint_src, tmp_path, capsys):
    src, captions = keypoint_src
    empty = tmp_path / "empty"
    empty.mkdir()
    only_uncaptioned = tmp_path / "uncaptioned"
    only_uncaptioned.mkdir()
    (only_uncaptioned / "clip 12.json").write_bytes((src / "clip 12.json").read_bytes())
    other_caps = tmp_path / "caps.json"
    other_caps.write_text(json.dumps({"nobody": ["a person waves"]}))
    for s, c, message in ((empty, captions, "no keypoint files"),
                          (src, tmp_path / "missing.txt", "no such file"),
                          (only_uncaptioned, other_caps, "clip 12.json: no caption")):
        out = tmp_path / "out"
        assert main(["data", "prepare", "keypoints", "--src", str(s), "--captions", str(c),
                     "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("free3d: error:"), err
        assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
