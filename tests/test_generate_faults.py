"""Generation, export and model loading under careless use (issue 15).

Every bad value is one ``free3d: error:`` line naming the option or file, found before
any generating, with nothing left on disk; outputs are never overwritten silently; the
manifest keeps every entry when several processes save at once; damaged model folders
are refused at load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from free3d.api import DEFAULT_MODEL, Free3D, ModelError, Motion, read_prompts
from free3d.cli import main
from free3d.export.generated import save_motions
from free3d.locks import locked
from free3d.sampling import SamplingConfig
from free3d.skeleton import get_skeleton

BANDAI = get_skeleton("bandai21")


@pytest.fixture(scope="module")
def model() -> Free3D:
    return Free3D.from_pretrained(device="cpu", precision="fp32")


def _error(capsys) -> str:
    """The one error line a refused command printed."""
    err = capsys.readouterr().err
    assert err.startswith("free3d: error:") and err.count("\n") == 1, err
    return err


def _motion(seed: int, frames: int = 40, text: str = "a person walks") -> Motion:
    joints = np.random.default_rng(seed).normal(size=(frames, 21, 3))
    return Motion(joints, BANDAI, text, seed, np.zeros((frames // 4, 6), np.int64), (np.eye(3), np.zeros(3)))


# ----------------------------------------------------------------------------- bad items


def test_1_too_many_samples_is_refused_by_memory_before_any_work(model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "walk", "--seconds", "3", "--num-samples", "1000000", "--out", str(out),
                 "--device", "cpu"]) == 2
    err = _error(capsys)
    assert "--num-samples 1000000" in err and "memory" in err and "at most" in err
    assert not out.exists()
    with pytest.raises(ValueError, match=r"num_samples=1000000 .* memory"):
        model.generate("walk", 3, num_samples=1_000_000)
    limit, free = model.max_batch(60)
    assert 64 <= limit < 1_000_000 and free is not None
    # the estimate is generous: one motion of 9.8 s is a few MB
    assert 1e6 < model.bytes_per_sample() < 1e7


def test_2_out_with_earlier_outputs_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["generate", "walk", "--format", "npy", "--out", str(out), "--device", "cpu"]
    assert main([*base, "--seconds", "2", "--num-samples", "2"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*base, "--seconds", "3"]) == 2
    assert "--overwrite" in _error(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert main([*base, "--seconds", "3", "--overwrite"]) == 0
    manifest = json.loads((out / "generations.json").read_text())
    assert [(e["seed"], e["frames"]) for e in manifest] == [(0, 60)]  # one entry, the new length
    assert np.load(out / manifest[0]["files"]["npy"]).shape == (60, 21, 3)
    assert sorted(p.name for p in out.iterdir()) == ["00_walk_seed0.npy", "generations.json"]


@pytest.mark.parametrize("part", ["mlrq", "masked", "residual", "length"])
def test_3_non_finite_weights_are_refused_at_load(tmp_path, part):
    root = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, root)
    path = root / part / "model.safetensors"
    tensors = load_file(str(path))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("inf"))
    save_file(tensors, str(path))
    with pytest.raises(ModelError, match=f"{path}: 1 weight tensor.*NaN or infinite.*{name}"):
        Free3D.from_pretrained(root, device="cpu")


def test_3_cli_names_the_damaged_file(tmp_path, capsys):
    root = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, root)
    path = root / "masked" / "model.safetensors"
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
               for k, v in load_file(str(path)).items()}, str(path))
    assert main(["generate", "walk", "--model", str(root), "--out", str(tmp_path / "o")]) == 2
    assert str(path) in _error(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option, value", [
    ("--guidance", "nan"), ("--guidance", "-1"), ("--guidance", "1e9"), ("--residual-guidance", "inf"),
    ("--temperature", "0"), ("--temperature", "nan"), ("--top-k", "1"), ("--top-k", "-0.1"),
    ("--iterations", "0"), ("--iterations", "100000"), ("--seconds", "nan"), ("--num-samples", "0"),
    ("--seed", "-1"), ("--seed", str(2**64)),
])
def test_4_every_sampling_value_is_range_checked_naming_the_option(tmp_path, capsys, option, value):
    out = tmp_path / "out"
    assert main(["generate", "walk", option, value, "--out", str(out)]) == 2
    assert option in _error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("field, value", [
    ("guidance", float("nan")), ("guidance", -1.0), ("residual_guidance", float("inf")),
    ("temperature", 0.0), ("residual_temperature", 1e9), ("top_k", 1.0), ("iterations", 0),
    ("iterations", 2.5), ("iterations", True), ("guidance", "4"),
])
def test_4_sampling_config_and_api_refuse_bad_values(model, field, value):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        SamplingConfig(**{field: value})
    with pytest.raises(ValueError, match=f"^{field} must be"):
        model.generate("walk", 3, **{field: value})


def test_4_valid_sampling_values_still_work(model):
    assert SamplingConfig(guidance=0, iterations=np.int64(3), top_k=0.0).iterations == 3
    assert model.generate("walk", 2, guidance=1, iterations=2)[0].num_frames == 40


@pytest.mark.parametrize("clip, span, message", [
    (np.zeros((0, 21, 3)), (0, 0.1), r"motion is 0 s long \(0 frames"),
    (np.zeros((2000, 21, 3)), (0, 1), r"motion is 100 s long \(2000 frames at 20 fps\); .* 2 to 9.8 s"),
    (np.full((60, 21, 3), np.nan), (0, 1), "NaN"),
    (np.zeros((60, 20, 3)), (0, 1), "joints of bandai21"),
    ("walk", (0, 1), r"motion must be \(T, 21, 3\)"),
    (np.zeros((60, 21, 3)), (0, 1), "motion: cannot normalise"),
    (np.zeros((60, 21, 3)), (0, 4), r"span 0..4 s is not inside the motion \(0..3 s\)"),
    (np.zeros((60, 21, 3)), (float("nan"), 1), "not inside"),
])
def test_5_edit_checks_the_clip_and_span_first(model, clip, span, message):
    with pytest.raises(ValueError, match=message):
        model.edit(clip, *span, "wave")


def _save_one(out, seed, barrier) -> None:
    barrier.wait()  # all at the same moment
    save_motions([_motion(seed)], out, ["npy"], prompt_numbers=[seed])


def test_12_concurrent_saves_keep_every_entry(tmp_path):
    out = tmp_path / "out"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_save_one, args=(out, s, barrier)) for s in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    manifest = json.loads((out / "generations.json").read_text())
    assert sorted(e["seed"] for e in manifest) == list(range(8))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s:02d}_a-person-walks_seed{s}.npy" for s in range(8)] + ["generations.json"])


def test_12_saving_a_file_again_replaces_its_entry(tmp_path):
    save_motions([_motion(0, 40), _motion(1, 40)], tmp_path, ["npy"])
    save_motions([_motion(0, 60)], tmp_path, ["npy"])
    manifest = json.loads((tmp_path / "generations.json").read_text())
    assert [(e["seed"], e["frames"]) for e in manifest] == [(1, 40), (0, 60)]


# ---------------------------------------------------------------------------- weak groups


@pytest.mark.parametrize("make, message", [
    (lambda t: (t / "out").write_text("x"), "exists and is not a folder"),
    (lambda t: (t / "file").write_text("x"), "is a file, not a folder"),
    (lambda t: ((t / "out").mkdir(), (t / "out" / "generations.json").write_text("{")), "generations.json"),
    (lambda t: ((t / "out").mkdir(), (t / "out" / "generations.json").write_text('{"a": 1}')),
     "generations.json is not a free3d manifest"),
    (lambda t: ((t / "out").mkdir(), (t / "out" / "00_walk_seed0.gif").write_text("")), "00_walk_seed0.gif"),
])
def test_out_problems_are_found_before_generating(tmp_path, capsys, monkeypatch, make, message):
    make(tmp_path)
    out = tmp_path / ("file/sub" if (tmp_path / "file").exists() else "out")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.setattr(Free3D, "from_pretrained", lambda *a, **k: pytest.fail("the model loaded"))
    assert main(["generate", "walk", "--out", str(out)]) == 2
    assert message in _error(capsys)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_out_under_proc_is_refused_before_generating(capsys, monkeypatch):
    monkeypatch.setattr(Free3D, "from_pretrained", lambda *a, **k: pytest.fail("the model loaded"))
    assert main(["generate", "walk", "--out", "/proc/free3d-out"]) == 2
    assert "--out /proc/free3d-out cannot be made or written" in _error(capsys)


def test_seeds_out_of_range_name_the_seed(model):
    for seed, message in [(2**64, "seed 18446744073709551616 is out of range"),
                          (1.5, "seed must be a whole number"), (-1, "out of range")]:
        with pytest.raises(ValueError, match=message):
            model.generate("walk", 3, seed=seed)
    with pytest.raises(ValueError, match="2 samples use seeds"):
        model.generate("walk", 3, seed=2**63 - 1, num_samples=2)


def test_prompt_files_latin1_binary_and_bom(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("a person walks#3\ncafé dance#3\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt:2: not UTF-8 text \(byte 0xe9\)"):
        read_prompts(latin)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"walk\x00\x01\x02")
    with pytest.raises(ValueError, match="bin.txt is not a text file"):
        read_prompts(binary)
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffa person walks#3\n".encode())
    assert read_prompts(bom) == [("a person walks", 3.0)]


def _edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "mlrq" / "config.json").write_text("garbage"), "mlrq/config.json is corrupt"),
    (lambda r: _edit_json(r / "mlrq" / "config.json", lambda c: c["dataset"].update(skeleton="humanml3d22")),
     "mlrq/config.json is for skeleton humanml3d22, but .*generator.json says bandai21"),
    (lambda r: _edit_json(r / "generator.json", lambda c: c["sampling"].update(guidence=3)),
     "generator.json: unknown sampling setting.*guidence"),
    (lambda r: _edit_json(r / "generator.json", lambda c: c["sampling"].update(guidance=float("nan"))),
     "generator.json: guidance must be"),
    (lambda r: (r / "generator.json").write_text("[]"), "generator.json is corrupt"),
])
def test_damaged_model_folders_name_the_file(tmp_path, damage, message):
    root = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, root)
    damage(root)
    with pytest.raises(ModelError, match=message):
        Free3D.from_pretrained(root, device="cpu")


def test_generate_none_is_a_type_error(model):
    with pytest.raises(TypeError, match="texts must be a prompt or a list of prompts, got NoneType"):
        model.generate(None)


def test_eval_json_is_checked_before_evaluating(tmp_path, capsys, monkeypatch):
    import free3d.evaluation.lift as lift

    monkeypatch.setattr(lift, "evaluate_lifting", lambda *a, **k: pytest.fail("evaluated"))
    assert main(["eval", "lift", "--data", str(tmp_path), "--reference", "zero-depth",
                 "--json", str(tmp_path / "no" / "x.json")]) == 2
    assert "--json" in _error(capsys)
    assert main(["eval", "lift", "--data", str(tmp_path), "--reference", "zero-depth",
                 "--json", str(tmp_path)]) == 2
    assert "is a folder" in _error(capsys)


def test_a_scratch_folder_left_by_a_kill_is_removed_and_a_live_one_kept(tmp_path):
    dead = tmp_path / ".free3d-dead"
    dead.mkdir()
    (dead / "00_walk_seed0.npy").write_bytes(b"half")
    (tmp_path / ".generations.json.x1").write_text("[")
    live = tmp_path / ".free3d-live"
    live.mkdir()
    with locked(live):  # another process still rendering into it
        save_motions([_motion(0)], tmp_path, ["npy"])
        assert live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".free3d-live", "00_a-person-walks_seed0.npy",
                                                           "generations.json"]


def test_prompt_file_shows_progress_and_keeps_finished_batches(tmp_path, capsys, monkeypatch):
    import free3d.cli as cli

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person walks#2\na person waves#2\na person jumps#2\n")
    monkeypatch.setattr(cli, "GENERATE_BATCH", 1)  # one prompt per batch
    real = Free3D.generate
    calls = []

    def generate_then_die(self, texts, *args, **kwargs):
        calls.append(texts)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while the third prompt generates
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(Free3D, "generate", generate_then_die)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        main(["generate", "--prompts", str(prompts), "--format", "npy", "--out", str(out), "--device", "cpu"])
    assert "generating:" in capsys.readouterr().err  # the progress bar
    manifest = json.loads((out / "generations.json").read_text())
    assert [e["text"] for e in manifest] == ["a person walks", "a person waves"]
    assert sorted(p.name for p in out.iterdir()) == ["00_a-person-walks_seed0.npy",
                                                     "01_a-person-waves_seed0.npy", "generations.json"]


def test_a_full_disk_while_saving_is_one_error_and_leaves_no_scratch(tmp_path, capsys, monkeypatch):
    import errno

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", no_space)
    out = tmp_path / "out"
    assert main(["generate", "walk", "--seconds", "2", "--format", "npy", "--out", str(out),
                 "--device", "cpu"]) == 2
    assert f"cannot write to --out {out}: No space left on device" in _error(capsys)
    assert not out.exists()


def test_eval_generation_out_is_checked_before_any_work(procedural_dataset, capsys):
    from free3d.cli import main

    assert main(["eval", "generation", "--data", str(procedural_dataset), "--out", "/proc/x/table"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("free3d: error: --out /proc/x/table") and err.count("\n") == 1
