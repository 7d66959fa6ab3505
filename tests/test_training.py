"""Training stages on the procedural dataset: tiny models, a few steps each."""

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from free3d.cli import main
from free3d.evaluation.lift import evaluate_lifting
from free3d.training.lifting import load_run, make_config, train

TINY = {"width": 32, "code_dim": 16, "num_layers": 3, "codebook_size": 32, "depth": 2,
        "dropout": 0.0, "quantize_dropout": 0.2, "sample_temperature": 0.5,
        "down": 2}
FAST = {"arch": TINY, "batch_size": 16, "window": 40, "warmup_iters": 5, "log_every": 5}


def read_log(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def prior_run(procedural_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "prior"
    cfg = make_config("prior", procedural_dataset, iters=80, finetune_iters=20, **FAST)
    train(cfg, out, progress=False)
    return out


def test_prior_run_folder(prior_run):
    files = sorted(p.name for p in prior_run.iterdir())
    assert files == ["config.json", "log.csv", "model.safetensors", "state.pt"]
    rows = read_log(prior_run)
    assert int(rows[-1]["step"]) == 100 and float(rows[-1]["rec"]) < float(rows[0]["rec"])
    model, cfg, skeleton = load_run(prior_run)
    assert cfg.stage == "prior" and skeleton.name == "bandai21" and not model.training
    assert any(k.startswith("quantizer.") for k in load_file(prior_run / "model.safetensors"))


def test_killed_and_restarted_run_resumes_and_matches(procedural_dataset, tmp_path):
    kw = dict(finetune_iters=0, checkpoint_every=10, **FAST)
    straight = train(make_config("prior", procedural_dataset, iters=30, **kw), tmp_path / "a",
                     progress=False)
    train(make_config("prior", procedural_dataset, iters=20, **kw), tmp_path / "b", progress=False)
    resumed = train(make_config("prior", procedural_dataset, iters=30, **kw), tmp_path / "b",
                    progress=False)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [int(r["step"]) for r in read_log(resumed)]
    assert steps == sorted(set(steps)) and steps[-1] == 30
    # a different config in the same folder is refused
    with pytest.raises(ValueError, match="different config"):
        train(make_config("prior", procedural_dataset, iters=30, prior_kind="ae", **kw),
              tmp_path / "b", progress=False)


@pytest.mark.parametrize("recipe, gain", [("paper", 0.6), ("free3d", 0.7)])
def test_tiny_mlrq_lowers_mpjpe(procedural_dataset, prior_run, tmp_path, recipe, gain):
    def mpjpe_after(iters):
        cfg = make_config("mlrq", procedural_dataset, prior=str(prior_run), iters=iters,
                          finetune_iters=0, seed=1, recipe=recipe, **FAST)
        out = train(cfg, tmp_path / f"mlrq{iters}", progress=False)
        return evaluate_lifting(procedural_dataset, model_path=out, split="train",
                                progress=False)["mpjpe_mm"]

    before, after = mpjpe_after(1), mpjpe_after(150)
    # the free3d recipe's extra terms slow the first steps of a tiny model a little
    assert after < gain * before, (before, after)


@pytest.mark.parametrize("stage, extra", [
    ("rvq3d", ["--input-dim", "3"]),
    ("rvq3d", ["--input-dim", "2", "--mirror-clips"]),
    ("mlrq", ["--no-rec", "--no-feat", "--representation", "joints", "--lambda-bone", "10",
              "--lambda-iso", "1", "--lambda-knee", "1"]),
])
def test_cli_trains_and_evaluates(procedural_dataset, tmp_path, capsys, stage, extra):
    out = tmp_path / "run"
    assert main(["train", stage, "--data", str(procedural_dataset), "--out", str(out),
                 "--iters", "4", "--finetune-iters", "2", "--batch-size", "8", "--quiet",
                 *extra]) == 0
    assert ("lbone" in read_log(out)[0]) == ("--lambda-bone" in extra)
    assert ("liso" in read_log(out)[0]) == ("--lambda-iso" in extra)
    assert ("lknee" in read_log(out)[0]) == ("--lambda-knee" in extra)
    keep = ["--keep-2d", "--rigid-depth", "--mirror-average"] if extra != ["--input-dim", "3"] else []
    assert main(["eval", "lift", "--data", str(procedural_dataset), "--model", str(out),
                 "--reference", "zero-depth", "--reference", "rigid-random-signs", "--quiet",
                 *keep]) == 0
    text = capsys.readouterr().out
    assert "| reference:zero-depth |" in text and f"| {stage}:run |" in text
    assert "| reference:rigid-random-signs |" in text
    assert (f"| {stage}:run (observed 2D + its depth) |" in text) == bool(keep)
    assert (f"| {stage}:run + mirror average |" in text) == bool(keep)
    assert (f"| {stage}:run (observed 2D + rigid depth, its signs) |" in text) == bool(keep)
    assert (f"| {stage}:run (observed 2D + its depth) + mirror average |" in text) == bool(keep)


def test_keep_observed_2d_reprojects_exactly_and_keeps_relative_depth():
    from free3d.evaluation.lift import keep_observed_2d

    lifted = torch.randn(5, 21, 3, dtype=torch.float64)
    joints2d = torch.randn(5, 21, 2, dtype=torch.float64)
    out = keep_observed_2d(lifted, joints2d)
    torch.testing.assert_close(out[..., :2], joints2d)  # the view is the measurement
    torch.testing.assert_close(out[..., 2] - out[..., :1, 2], lifted[..., 2] - lifted[..., :1, 2])


class _DepthFromImage(torch.nn.Module):
    """A stand-in lifter: x and y as observed, each limb's depth a function of its image x."""

    downsampling = 4

    def __init__(self, depth_of_x):
        super().__init__()
        self.depth_of_x = depth_of_x

    def forward(self, traj, limbs):
        from types import SimpleNamespace

        pad = torch.nn.functional.pad
        return SimpleNamespace(trajectory=pad(traj, (0, 1)),
                               limbs=torch.cat([limbs, self.depth_of_x(limbs[..., :1])], dim=-1))


def test_mirror_average_cancels_depth_that_flips_with_the_mirror():
    from free3d.evaluation.lift import lift_clip
    from free3d.representation import from_free3d, mirror_motion, to_free3d
    from free3d.skeleton import get_skeleton

    s = get_skeleton("bandai21")
    joints = torch.randn(6, s.num_joints, 2)
    traj, limbs = to_free3d(joints, s)
    back = from_free3d(*mirror_motion(*mirror_motion(traj, limbs, s), s), s)
    torch.testing.assert_close(back, joints)  # a mirror twice is the identity
    once = from_free3d(*mirror_motion(traj, limbs, s), s)
    torch.testing.assert_close(once[:, s.index("left_wrist"), 0], -joints[:, s.index("right_wrist"), 0])
    # depth = image x: the mirrored clip's guess is the opposite one, so they cancel;
    # depth = |image x| is mirror-symmetric and survives; x and y are untouched
    flips = lift_clip(_DepthFromImage(lambda x: x), traj, limbs, s, mirror_average=True)
    keeps = lift_clip(_DepthFromImage(torch.abs), traj, limbs, s, mirror_average=True)
    plain = lift_clip(_DepthFromImage(torch.abs), traj, limbs, s)
    torch.testing.assert_close(flips[..., :2], joints.double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(flips[..., 2], torch.zeros_like(flips[..., 2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(keeps, plain)
    assert plain[..., 2].abs().max() > 0.1


def test_mirror_clips_adds_each_clip_seen_in_a_mirror(procedural_dataset):
    from free3d.representation import from_free3d
    from free3d.skeleton import get_skeleton
    from free3d.training.lifting import load_training_clips

    s = get_skeleton("bandai21")
    plain = load_training_clips(make_config("rvq3d", procedural_dataset, input_dim=2), s)
    both = load_training_clips(make_config("rvq3d", procedural_dataset, input_dim=2,
                                           mirror_clips=True), s)
    n = len(plain.lengths)
    assert (both.lengths == np.concatenate([plain.lengths, plain.lengths])).all()
    half = int(plain.lengths.sum())
    for d in ("2", "3"):
        joints = from_free3d(plain.arrays[f"traj{d}"], plain.arrays[f"limbs{d}"], s)
        mirrored = from_free3d(both.arrays[f"traj{d}"][half:], both.arrays[f"limbs{d}"][half:], s)
        lw, rw = s.index("left_wrist"), s.index("right_wrist")
        torch.testing.assert_close(mirrored[:, lw, 0], -joints[:, rw, 0], atol=1e-5, rtol=0)
        torch.testing.assert_close(mirrored[:, lw, 1:], joints[:, rw, 1:], atol=1e-5, rtol=0)
    assert n > 0 and torch.equal(both.arrays["conf"][half:], plain.arrays["conf"][:, s.mirror_indices])


def test_mlrq_without_prior_is_refused(procedural_dataset, tmp_path, capsys):
    assert main(["train", "mlrq", "--data", str(procedural_dataset), "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "needs --prior" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_single_sizes_of_a_preset_can_be_changed(procedural_dataset, tmp_path):
    cfg = make_config("mlrq", procedural_dataset, prior="p", arch={"width": 256, "code_dim": None})
    assert cfg.arch["width"] == 256 and cfg.arch["code_dim"] == 128 and cfg.arch["num_layers"] == 6
    with pytest.raises(ValueError, match="sizes must be positive.*codebook_size=0"):
        make_config("prior", procedural_dataset, arch={"codebook_size": 0})
    with pytest.raises(ValueError, match="unknown size.*heigth"):
        make_config("prior", procedural_dataset, arch={"heigth": 3})
    out = tmp_path / "wide"
    assert main(["train", "rvq3d", "--data", str(procedural_dataset), "--out", str(out),
                 "--width", "48", "--code-dim", "24", "--codebook-size", "32", "--down", "3",
                 "--iters", "2", "--finetune-iters", "0", "--batch-size", "4", "--quiet"]) == 0
    model, cfg, _ = load_run(out)
    assert (cfg.arch["width"], cfg.arch["code_dim"], cfg.arch["codebook_size"]) == (48, 24, 32)
    assert model.quantizer.dim == 24 and model.downsampling == 8


def test_a_window_the_downsampling_cannot_divide_is_refused(procedural_dataset, tmp_path, capsys):
    out = tmp_path / "odd"
    assert main(["train", "prior", "--data", str(procedural_dataset), "--out", str(out),
                 "--window", "42", "--iters", "1", "--finetune-iters", "0", "--quiet"]) == 2
    assert "--window 42 must be a multiple of 4" in capsys.readouterr().err
    assert not out.exists()


def test_loss_weights_reach_the_saved_config(procedural_dataset, prior_run, tmp_path):
    out = tmp_path / "weights"
    assert main(["train", "mlrq", "--data", str(procedural_dataset), "--out", str(out),
                 "--prior", str(prior_run), "--lambda-rec", "0.3", "--lambda-ori", "2",
                 "--lambda-feat", "0", "--no-cycle-fixed-root", "--iters", "2", "--finetune-iters", "0",
                 "--batch-size", "4", "--quiet"]) == 0
    _, cfg, _ = load_run(out)
    assert (cfg.lambda_rec, cfg.lambda_ori, cfg.lambda_feat) == (0.3, 2.0, 0.0)
    assert not cfg.cycle_fixed_root  # the free3d recipe's default, turned off


def test_init_from_starts_at_an_earlier_runs_weights(procedural_dataset, prior_run, tmp_path):
    kw = dict(finetune_iters=0, lr=1e-9, warmup_iters=1,
              **{k: v for k, v in FAST.items() if k != "warmup_iters"})
    out = train(make_config("prior", procedural_dataset, iters=1, init_from=str(prior_run), **kw),
                tmp_path / "ft", progress=False)
    start, fresh = load_file(prior_run / "model.safetensors"), load_file(out / "model.safetensors")
    weights = [k for k in start if k.endswith("weight") and "quantizer" not in k]
    assert weights and all(torch.allclose(start[k], fresh[k], atol=1e-6) for k in weights)
    with pytest.raises(ValueError, match="other sizes"):
        train(make_config("prior", procedural_dataset, iters=1, init_from=str(prior_run),
                          **{**kw, "arch": {**TINY, "width": 48}}), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # refused before anything is written
    # what counts as a dead code steers training only: it may differ from the earlier run's
    other = train(make_config("prior", procedural_dataset, iters=1, init_from=str(prior_run),
                              **{**kw, "arch": {**TINY, "dead_code_threshold": 0.15}}),
                  tmp_path / "dct", progress=False)
    assert load_run(other)[1].arch["dead_code_threshold"] == 0.15


def test_a_run_saved_before_a_size_was_added_still_resumes_and_seeds(procedural_dataset, tmp_path):
    """Runs written before ``dead_code_threshold`` existed: their config lacks it."""
    import json

    # such runs all used MoMask's threshold of 1 (the cpu preset's is 0.15 since)
    kw = dict(finetune_iters=0, checkpoint_every=2, **{**FAST, "arch": {**TINY, "dead_code_threshold": 1.0}})
    old = train(make_config("prior", procedural_dataset, iters=2, **kw), tmp_path / "old", progress=False)
    config = json.loads((old / "config.json").read_text())
    del config["train"]["arch"]["dead_code_threshold"]
    (old / "config.json").write_text(json.dumps(config))
    train(make_config("prior", procedural_dataset, iters=4, **kw), old, progress=False)  # resumes
    assert int(read_log(old)[-1]["step"]) == 4
    seeded = train(make_config("prior", procedural_dataset, iters=1, init_from=str(old), **kw),
                   tmp_path / "seeded", progress=False)
    assert (seeded / "model.safetensors").exists()


def test_grad_clip_bounds_a_runaway_step_and_logs_the_norm(tmp_path):
    from free3d.distributed import Context
    from free3d.training.loop import fit
    from free3d.training.run import RunDir

    x = torch.ones(1, 4)

    def one_step(grad_clip: float, out) -> tuple[torch.Tensor, list[dict]]:
        model = torch.nn.Linear(4, 1, bias=False)
        torch.nn.init.zeros_(model.weight)

        class Step(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, batch):
                loss = 1e6 * self.model(batch).sum()  # a runaway batch: gradient norm 2e6
                return loss, {"loss": loss}

        out.mkdir()
        fit(run=RunDir(out), ctx=Context(), model=model, step=Step(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), learning_rate=lambda i: 0.1,
            next_batch=lambda: x, sampler=torch.Generator(), start=0, total=1, log_every=1,
            checkpoint_every=1, progress=False, grad_clip=grad_clip)
        with open(out / "log.csv") as f:
            return model.weight.detach().clone(), list(csv.DictReader(f))

    clipped, log = one_step(1.0, tmp_path / "clipped")
    assert float(clipped.norm()) == pytest.approx(0.1, rel=1e-5)  # lr x the clipped norm
    assert float(log[0]["grad_norm"]) == pytest.approx(2e6, rel=1e-5)  # the norm before clipping
    free, log = one_step(0.0, tmp_path / "free")
    assert float(free.norm()) == pytest.approx(0.1 * 2e6, rel=1e-5) and "grad_norm" not in log[0]


def test_skip_spikes_drops_the_gradient_of_a_spiking_step(tmp_path):
    from free3d.distributed import Context
    from free3d.training.loop import fit
    from free3d.training.run import RunDir

    def run(skip: float, out) -> tuple[list[float], list[dict]]:
        model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.ones_(model.weight)
        scales = iter([1.0, 1.1, 0.9, 1.0, 1000.0, 1.0])  # step 5 is a runaway batch
        weights = []

        class Step(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, batch):
                weights.append(model.weight.item())
                loss = next(scales) * self.model(batch).sum()
                return loss, {"loss": loss}

        out.mkdir()
        fit(run=RunDir(out), ctx=Context(), model=model, step=Step(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01), learning_rate=lambda i: 0.01,
            next_batch=lambda: torch.ones(1, 1), sampler=torch.Generator(), start=0, total=6,
            log_every=3, checkpoint_every=6, progress=False, skip_spikes=5.0 if skip else 0.0)
        weights.append(model.weight.item())
        with open(out / "log.csv") as f:
            return weights, list(csv.DictReader(f))

    guarded, log = run(True, tmp_path / "guarded")
    steps = [b - a for a, b in zip(guarded, guarded[1:])]
    assert steps[4] == 0.0 and all(s < 0 for s in steps[:4] + steps[5:])  # only the spike is dropped
    assert [float(r["skipped"]) for r in log] == [0.0, pytest.approx(1 / 3)]
    free, log = run(False, tmp_path / "free")
    assert free[5] - free[4] == pytest.approx(-10.0) and "skipped" not in log[0]


def test_window_max_trains_on_windows_of_many_lengths(procedural_dataset, prior_run, tmp_path, monkeypatch):
    from free3d.training.lifting import ClipArrays

    seen = []
    real = ClipArrays.sample

    def spy(self, batch, window, generator, rows=None):
        seen.append(window)
        return real(self, batch, window, generator, rows)

    monkeypatch.setattr(ClipArrays, "sample", spy)
    kw = dict(FAST, window=16, window_max=48, iters=12, finetune_iters=0, prior=str(prior_run))
    train(make_config("mlrq", procedural_dataset, **kw), tmp_path / "long", progress=False)
    assert seen[:2] == [16, 16]  # the input normaliser and L2D's units are fitted at --window
    lengths = seen[2:]
    assert len(lengths) == 12 and set(lengths) <= set(range(16, 49, 4)) and len(set(lengths)) > 3
    seen.clear()
    train(make_config("mlrq", procedural_dataset, **{**kw, "window_max": 0}), tmp_path / "one",
          progress=False)
    assert set(seen) == {16}  # off: as before, one length
    for bad, message in ((42, "--window-max 42 must be a multiple of 4"),
                         (12, "--window-max 12 is shorter than --window 16")):
        with pytest.raises(ValueError, match=message):
            train(make_config("mlrq", procedural_dataset, **{**kw, "window_max": bad}),
                  tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
    seen.clear()  # lengths no clip reaches are not drawn
    train(make_config("mlrq", procedural_dataset, **{**kw, "window_max": 4000}), tmp_path / "huge",
          progress=False)
    from free3d.data.motion2d import Motion2DDataset
    longest = max(len(c.trajectory) for c in Motion2DDataset(procedural_dataset, "train").clips)
    assert max(seen[2:]) <= longest
