import json

import pytest

from free3d.cli import main


def test_prepare_procedural_and_show(tmp_path, monkeypatch, capsys):
    out = tmp_path / "proc"
    assert main(["data", "prepare", "procedural", "--out", str(out), "--clips-per-kind", "2",
                 "--skeleton", "kit21", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "prepared 6 clips" in text and "splits: train" in text
    assert json.loads((out / "meta.json").read_text())["skeleton"] == "kit21"
    monkeypatch.chdir(tmp_path)
    assert main(["data", "show", str(out), "walk_000", "--format", "png"]) == 0
    assert (tmp_path / "walk_000.png").stat().st_size > 10_000


def test_demo_writes_dataset_and_previews(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    files = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert "dataset" in files and "walk_000.gif" in files and "jump_001.png" in files
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0  # re-running is fine


@pytest.mark.parametrize("argv, message", [
    (["data", "prepare", "procedural", "--out", "X", "--skeleton", "smplx"], "unknown skeleton"),
    (["data", "prepare", "bandai-namco", "--src", "EMPTY", "--out", "X", "--quiet"],
     "no BVH files found"),
    (["data", "prepare", "bandai-namco", "--src", "MISSING", "--out", "X"], "does not exist"),
    (["data", "show", "MISSING", "clip"], "not a prepared free3d dataset"),
])
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path, capsys, argv, message):
    (tmp_path / "EMPTY").mkdir()
    argv = [str(tmp_path / a) if a in ("X", "EMPTY", "MISSING") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("free3d: error:") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EMPTY"]


def test_truncated_bvh_in_a_dataset_folder(tmp_path, capsys):
    data = tmp_path / "src" / "dataset-1" / "data"
    data.mkdir(parents=True)
    (data / "dataset-1_walk_normal_001.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0")
    assert main(["data", "prepare", "bandai-namco", "--src", str(tmp_path / "src"),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dataset-1_walk_normal_001.bvh" in err and "MOTION" in err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
