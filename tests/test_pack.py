"""free3d data pack / unpack: one file for a prepared dataset, exactly, and back."""

from __future__ import annotations

import io
import json
import lzma
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from free3d.cli import main
from free3d.data import motion_codec as codec
from free3d.data import pack as pack_module
from free3d.data.ground_truth import load_camera, load_motion3d
from free3d.data.motion2d import Motion2DDataset
from free3d.data.pack import MANIFEST, PackError, pack_dataset, unpack_dataset
from free3d.data.prepared import SPLITS, DatasetError, read_captions, read_meta, read_records, read_split


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture(scope="module")
def packed(procedural_dataset, tmp_path_factory) -> Path:
    return pack_dataset(procedural_dataset, tmp_path_factory.mktemp("pack") / "proc.f3d",
                        progress=False).path


def rewrite(src: Path, dst: Path, change) -> Path:
    """A copy of the pack ``src`` with ``change(name, bytes) -> bytes`` applied to its members."""
    with tarfile.open(src, "r:xz") as tin, tarfile.open(dst, "w:xz") as tout:
        for info in tin:
            data = change(info.name, tin.extractfile(info).read())
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return dst


def test_round_trip_gives_back_every_file_byte_for_byte(procedural_dataset, packed, tmp_path):
    out = unpack_dataset(packed, tmp_path / "back", progress=False)
    assert out == tmp_path / "back"
    assert tree(out) == tree(procedural_dataset)
    assert listing(tmp_path) == ["back", *[f"back/{n}" for n in listing(out)]]  # no scratch left


def test_readers_see_the_same_dataset(procedural_dataset, packed, tmp_path):
    a, b = procedural_dataset, unpack_dataset(packed, tmp_path / "back", progress=False)
    assert read_meta(b) == read_meta(a)
    assert read_records(b) == read_records(a)
    for split in SPLITS:
        assert read_split(b, split) == read_split(a, split)
    for r in read_records(a):
        assert read_captions(b, r.id) == read_captions(a, r.id)
        x, y = load_motion3d(a, r.id), load_motion3d(b, r.id)
        assert x.dtype == y.dtype == np.float32 and x.tobytes() == y.tobytes()  # bit-identical
        assert load_camera(b, r.id) == load_camera(a, r.id)
    for split in SPLITS:
        da, db = Motion2DDataset(a, split), Motion2DDataset(b, split)
        assert len(da) == len(db)
        for ia, ib in zip(da, db):
            for key in ("trajectory", "limbs", "confidence"):
                assert torch.equal(ia[key], ib[key])  # 2D is exact too: tolerance 0
            assert (ia["clip_id"], ia["captions"], ia["length"]) == \
                   (ib["clip_id"], ib["captions"], ib["length"])


def test_pack_report_manifest_and_reproducibility(procedural_dataset, packed, tmp_path):
    report = pack_dataset(procedural_dataset, tmp_path / "again.f3d", progress=False)
    assert report.path.read_bytes() == packed.read_bytes()  # same dataset, same bytes
    n = len(read_records(procedural_dataset))
    assert report.clips == n and report.left_out == ()
    assert report.size_bytes < report.dataset_bytes / 4
    assert "exact" in report.precision and "exact" in report.describe()
    with tarfile.open(packed, "r:xz") as tar:
        assert tar.getnames()[0] == MANIFEST
        manifest = json.load(tar.extractfile(MANIFEST))
    assert manifest["format"] == "free3d-pack" and manifest["format_version"] == 1
    assert len(manifest["clips"]) == len(manifest["frames"]) == n
    assert manifest["arrays"]["motion3d"]["dtype"] == "float32"
    assert "nothing dropped" in manifest["precision"]


def test_files_outside_the_format_are_left_out_and_named(procedural_dataset, tmp_path):
    src = shutil.copytree(procedural_dataset, tmp_path / "src")
    (src / "notes.md").write_text("mine\n")
    report = pack_dataset(src, tmp_path / "p.f3d", progress=False)
    assert report.left_out == ("notes.md",)
    assert "notes.md" in report.describe()
    back = unpack_dataset(report.path, tmp_path / "back", progress=False)
    assert not (back / "notes.md").exists()


def test_codec_restores_awkward_floats_exactly():
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0],
                       dtype=np.float32)
    values = np.concatenate([special, rng.standard_normal(200).astype(np.float32) * 1e3])
    for prediction in (np.zeros(len(values)), values.astype(np.float64) * -7.0,
                       np.full(len(values), np.nan), np.full(len(values), 1e300)):
        back = codec.restore(codec.residual(values, prediction), prediction)
        assert back.tobytes() == values.tobytes()
    res = codec.residual(values, np.zeros(len(values)))
    assert np.array_equal(codec.from_planes(codec.to_planes(res), res.shape), res)


def test_joint_coding_is_exact_for_any_clip_lengths():
    rng = np.random.default_rng(1)
    parents = np.array([-1, 0, 1, 1, 3])
    lengths = np.array([1, 2, 3, 17])
    joints = np.cumsum(rng.standard_normal((lengths.sum(), 5, 3)), axis=0).astype(np.float32)
    joints[5, 2] = [0.0, -0.0, np.inf]
    bones = np.stack([codec.bone_lengths(joints[s - n:s], parents)
                      for s, n in zip(np.cumsum(lengths), lengths)])
    res = codec.encode_joints(joints, lengths, parents, bones)
    back = codec.decode_joints(res, lengths, parents, bones)
    assert back.tobytes() == joints.tobytes()


def test_cli_round_trip(procedural_dataset, tmp_path, capsys):
    assert main(["data", "pack", str(procedural_dataset), str(tmp_path / "p.f3d"), "--quiet"]) == 0
    out = capsys.readouterr().out
    n = len(read_records(procedural_dataset))
    assert f"packed {n} clips" in out and " MB " in out and "precision: exact" in out
    assert main(["data", "unpack", str(tmp_path / "p.f3d"), str(tmp_path / "back"), "--quiet"]) == 0
    assert f"unpacked {n} clips" in capsys.readouterr().out
    assert tree(tmp_path / "back") == tree(procedural_dataset)


def cli_error(argv: list[str], capsys) -> str:
    assert main([*argv, "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("free3d: error: "), captured.err
    return lines[0]


def test_pack_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.txt").write_text("x")
    before = listing(tmp_path)
    with pytest.raises(DatasetError, match="not a prepared free3d dataset"):
        pack_dataset(tmp_path / "stuff", tmp_path / "p.f3d", progress=False)
    line = cli_error(["data", "pack", str(tmp_path / "stuff"), str(tmp_path / "p.f3d")], capsys)
    assert "stuff" in line
    assert listing(tmp_path) == before


def test_pack_refuses_a_dataset_with_a_clip_missing(procedural_dataset, tmp_path, capsys):
    src = shutil.copytree(procedural_dataset, tmp_path / "src")
    clip = read_records(src)[3].id
    (src / "motion3d" / f"{clip}.npy").unlink()
    before = listing(tmp_path)
    line = cli_error(["data", "pack", str(src), str(tmp_path / "p.f3d")], capsys)
    assert clip in line and "3D" in line
    assert listing(tmp_path) == before


def test_pack_refuses_an_existing_file_and_cleans_up_after_a_failure(
        procedural_dataset, tmp_path, monkeypatch, capsys):
    dst = tmp_path / "p.f3d"
    dst.write_text("keep me")
    line = cli_error(["data", "pack", str(procedural_dataset), str(dst)], capsys)
    assert str(dst) in line and "--overwrite" in line
    assert dst.read_text() == "keep me"

    def broken(raw, members, progress):
        raw.write(b"half a pack")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pack_module, "_write_tar", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        pack_dataset(procedural_dataset, dst, overwrite=True, progress=False)
    assert listing(tmp_path) == ["p.f3d"] and dst.read_text() == "keep me"


def test_unpack_refuses_files_that_are_not_packs(packed, tmp_path, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    other = tmp_path / "other.tar.xz"
    with tarfile.open(other, "w:xz") as tar:
        tar.add(plain, arcname="plain.txt")
    garbage = tmp_path / "garbage.xz"
    garbage.write_bytes(lzma.compress(b"not a tar at all" * 100))
    truncated = tmp_path / "truncated.f3d"
    truncated.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    corrupt = tmp_path / "corrupt.f3d"
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    before = listing(tmp_path)
    for path, why in ((plain, "not a free3d pack"), (other, "not a free3d pack"),
                      (garbage, "truncated or corrupt"), (truncated, "truncated or corrupt"),
                      (corrupt, "corrupt"), (tmp_path / "missing.f3d", "no such pack file")):
        with pytest.raises((PackError, FileNotFoundError), match=why):
            unpack_dataset(path, tmp_path / "out", progress=False)
        line = cli_error(["data", "unpack", str(path), str(tmp_path / "out")], capsys)
        assert str(path) in line and why in line
    assert listing(tmp_path) == before


def test_unpack_checks_versions_and_checksums(packed, tmp_path):
    def version(name, data):
        if name != MANIFEST:
            return data
        return json.dumps({**json.loads(data), "format_version": 99}).encode()

    def camera(name, data):  # the 2D prediction's input: the decoded 2D comes out wrong
        if name != "arrays/view.npy":
            return data
        buf = io.BytesIO()
        np.save(buf, np.load(io.BytesIO(data)) * np.float32(1.01))
        return buf.getvalue()

    newer = rewrite(packed, tmp_path / "newer.f3d", version)
    bad = rewrite(packed, tmp_path / "bad.f3d", camera)
    before = listing(tmp_path)
    with pytest.raises(PackError, match="format version 99, this free3d reads 1"):
        unpack_dataset(newer, tmp_path / "out", progress=False)
    with pytest.raises(PackError, match="trajectory differs from what was packed"):
        unpack_dataset(bad, tmp_path / "out", progress=False)
    assert listing(tmp_path) == before


def test_unpack_refuses_a_non_empty_folder_and_cleans_up_after_a_failure(
        packed, tmp_path, monkeypatch, capsys):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "mine.txt").write_text("keep me")
    line = cli_error(["data", "unpack", str(packed), str(dst)], capsys)
    assert str(dst) in line and "not empty" in line
    assert listing(tmp_path) == ["out", "out/mine.txt"]

    (dst / "mine.txt").unlink()  # an empty folder is fine
    assert unpack_dataset(packed, dst, progress=False) == dst and (dst / "meta.json").is_file()

    def broken(root, *args):
        (root / "motion3d").mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(pack_module, "_write_motion", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        unpack_dataset(packed, tmp_path / "second", progress=False)
    assert not (tmp_path / "second").exists()
    assert [p for p in listing(tmp_path) if not p.startswith("out")] == []


def test_a_damaged_motion_file_is_named(procedural_dataset, tmp_path):
    import shutil

    from free3d.data.pack import pack_dataset
    from free3d.data.prepared import DatasetError

    src = tmp_path / "src"
    shutil.copytree(procedural_dataset, src)
    victim = sorted((src / "motion3d").glob("*.npy"))[0]
    victim.write_bytes(b"not an array")
    with pytest.raises(DatasetError, match=victim.name):
        pack_dataset(src, tmp_path / "x.f3d", progress=False)
    assert not (tmp_path / "x.f3d").exists()
