"""Training runs under careless use (issue 15): bad numbers, killed and damaged runs.

Each bad value is one ``free3d: error:`` line naming the option, with nothing left on
disk; a run that died before its first checkpoint starts again cleanly; a damaged run
folder is refused rather than silently retrained.
"""

from __future__ import annotations

import csv

import pytest
import torch

from free3d.cli import main

TINY = ["--preset", "cpu", "--width", "16", "--code-dim", "8", "--codebook-size", "16",
        "--finetune-iters", "0", "--batch-size", "4", "--window", "16", "--log-every", "1",
        "--checkpoint-every", "2", "--quiet", "--device", "cpu"]


def _prior(data, out, *extra: str) -> int:
    return main(["train", "prior", "--data", str(data), "--out", str(out), "--iters", "4", *TINY, *extra])


def _steps(run) -> list[int]:
    with open(run / "log.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("flag, value", [("--iters", "-1"), ("--batch-size", "0"),
                                         ("--checkpoint-every", "0"), ("--log-every", "0"),
                                         ("--window", "0"), ("--lr", "nan"), ("--lr", "-1")])
def test_a_bad_number_is_one_error_naming_it_and_leaves_nothing(procedural_dataset, tmp_path, capsys,
                                                                 flag, value):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out, flag, value) == 2
    err = capsys.readouterr().err
    assert err.startswith("free3d: error:") and flag in err and err.count("\n") == 1
    assert not out.exists()


def test_the_corrected_command_then_runs_in_the_same_folder(procedural_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out, "--batch-size", "0") == 2
    assert _prior(procedural_dataset, out) == 0
    assert _steps(out) == [1, 2, 3, 4]


def test_a_run_killed_before_its_first_checkpoint_logs_each_step_once(procedural_dataset, tmp_path):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out) == 0
    # what a kill after step 1 leaves: the config and a log row, no checkpoint
    for name in ("model.safetensors", "state.pt"):
        (out / name).unlink()
    lines = (out / "log.csv").read_text().splitlines()
    (out / "log.csv").write_text("\n".join(lines[:2]) + "\n")
    assert _prior(procedural_dataset, out) == 0
    assert _steps(out) == [1, 2, 3, 4]


def test_a_finished_run_without_its_state_is_refused_not_retrained(procedural_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out) == 0
    (out / "state.pt").unlink()
    before = (out / "model.safetensors").read_bytes()
    assert _prior(procedural_dataset, out, "--iters", "8") == 2
    assert "no state.pt" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before


def test_a_damaged_or_hostile_state_file_is_one_clear_error(procedural_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out, "--iters", "2") == 0
    (out / "state.pt").write_bytes(b"\x80\x04garbage" * 10)
    assert _prior(procedural_dataset, out) == 2
    err = capsys.readouterr().err
    assert "state.pt" in err and "Traceback" not in err

    class Payload:  # a pickle that would run code when loaded with weights_only=False
        def __reduce__(self):
            return (print, ("HOSTILE CODE RAN",))

    torch.save({"step": 2, "evil": Payload()}, out / "state.pt")
    assert _prior(procedural_dataset, out) == 2
    captured = capsys.readouterr()
    assert "HOSTILE CODE RAN" not in captured.out and "state.pt" in captured.err


def test_fewer_steps_than_done_is_refused_and_a_different_config_is_named(procedural_dataset, tmp_path,
                                                                         capsys):
    out = tmp_path / "run"
    assert _prior(procedural_dataset, out) == 0
    config = (out / "config.json").read_text()
    assert _prior(procedural_dataset, out, "--iters", "2") == 2
    assert "already at step 4" in capsys.readouterr().err
    assert (out / "config.json").read_text() == config  # still says what the weights are
    assert _prior(procedural_dataset, out, "--seed", "5") == 2
    assert "seed 0 -> 5" in capsys.readouterr().err
