"""`free3d edit`: a time span of a saved motion regenerated from new text, every format."""

import numpy as np
import pytest

from free3d import Free3D
from free3d.bvh import read_bvh
from free3d.cli import main


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    path = tmp_path_factory.mktemp("edit") / "walk.npy"
    model = Free3D.from_pretrained(precision="fp32")
    np.save(path, model.generate("a person walks", seconds=3, seed=1)[0].joints)
    return path


def test_edit_keeps_the_frames_outside_the_span_and_writes_bvh(walk, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["edit", str(walk), "--start", "1", "--end", "2", "--text", "a person waves both hands",
                 "--out", str(out), "--format", "npy,bvh", "--precision", "fp32"]) == 0
    before, after = np.load(walk), np.load(out / "00_a-person-waves-both-hands_seed0.npy")
    assert after.shape == before.shape
    np.testing.assert_allclose(after[:20], before[:20], atol=1e-6)  # 0-1 s and 2-3 s stay (float32)
    np.testing.assert_allclose(after[40:], before[40:], atol=1e-6)
    assert np.abs(after[20:40] - before[20:40]).max() > 0.01  # the span was regenerated
    assert read_bvh(out / "00_a-person-waves-both-hands_seed0.bvh").num_frames == len(before)
    assert "edited 1-2 s" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--start", "2", "--end", "9"], "span 2..9 s is not inside the motion"),
    (["--start", "1", "--end", "2", "--top-k", "2"], "--top-k"),
])
def test_edit_bad_input_is_one_error_and_writes_nothing(walk, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["edit", str(walk), "--text", "a person bows", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_edit_refuses_what_is_not_an_npy_of_joints(tmp_path, capsys):
    bad = tmp_path / "walk.npy"
    bad.write_bytes(b"not numpy")
    for path in (tmp_path / "missing.npy", bad):
        assert main(["edit", str(path), "--start", "0", "--end", "1", "--text", "x",
                     "--out", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err.count("free3d: error:") == 1
    assert not (tmp_path / "o").exists()
