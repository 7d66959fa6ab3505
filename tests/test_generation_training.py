"""Training the generator parts on the procedural dataset, assembling them, and the
``free3d generate`` command end to end (tiny models, a few steps)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from free3d import Free3D
from free3d.cli import main
from free3d.models.masked_transformer import MaskedTransformer
from free3d.models.residual_transformer import ResidualTransformer
from free3d.models.token_transformer import transformer_preset
from free3d.training.generation import (
    make_generator_config,
    masked_token_loss,
    residual_layer_schedule,
    residual_token_loss,
    train_generator,
)
from free3d.training.lifting import make_config, train

TINY_VQ = {"width": 32, "code_dim": 16, "num_layers": 3, "codebook_size": 32, "depth": 2,
           "dropout": 0.0, "quantize_dropout": 0.2, "sample_temperature": 0.5, "down": 2}
TINY_TF = dict(num_tokens=32, num_quantizers=3, code_dim=16, latent_dim=32, num_layers=1, num_heads=2,
               ff_dim=64, text_dim=768)  # minilm-sided


@pytest.fixture(scope="module")
def model_dir(procedural_dataset, tmp_path_factory):
    runs = tmp_path_factory.mktemp("genruns")
    fast = {"arch": TINY_VQ, "batch_size": 16, "window": 40, "warmup_iters": 5, "log_every": 5}
    train(make_config("prior", procedural_dataset, iters=20, finetune_iters=0, **fast), runs / "prior",
          progress=False)
    train(make_config("mlrq", procedural_dataset, iters=30, finetune_iters=0, prior=str(runs / "prior"),
                      **fast), runs / "mlrq", progress=False)
    for stage in ("masked", "residual", "length"):
        cfg = make_generator_config(stage, procedural_dataset, runs / "mlrq", iters=40, batch_size=16,
                                    warmup_iters=5, log_every=5, checkpoint_every=20)
        if stage != "length":
            cfg.arch = transformer_preset("cpu", **TINY_TF,
                                          cond_drop_prob=0.1 if stage == "masked" else 0.2).to_dict()
        train_generator(cfg, runs / stage, progress=False)
    assert main(["model", "assemble", "--mlrq", str(runs / "mlrq"), "--masked", str(runs / "masked"),
                 "--residual", str(runs / "residual"), "--length", str(runs / "length"),
                 "--out", str(runs / "model")]) == 0
    return runs


def test_training_lowers_the_token_losses(model_dir):
    for stage in ("masked", "residual", "length"):
        rows = [json.loads(json.dumps(r)) for r in _log(model_dir / stage)]
        first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
        assert last < first, (stage, first, last)
        cfg = json.loads((model_dir / stage / "config.json").read_text())
        assert cfg["text_encoder"] == {"name": "minilm-sided", "dim": 768} and cfg["train"]["stage"] == stage


def test_a_transformer_sized_for_another_text_encoder_is_one_clear_error(model_dir, procedural_dataset,
                                                                          tmp_path):
    cfg = make_generator_config("masked", procedural_dataset, model_dir / "mlrq", iters=2, batch_size=4)
    cfg.arch = transformer_preset("cpu", **{**TINY_TF, "text_dim": 384}).to_dict()  # plain MiniLM's width
    with pytest.raises(ValueError, match=r"text_dim 384 does not match the text encoder 'minilm-sided' "
                                         r"\(768-d\)"):
        train_generator(cfg, tmp_path / "masked", progress=False)
    assert not (tmp_path / "masked").exists()


def _log(run):
    import csv

    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_generate_command_writes_files(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person waves#2.5\nsomeone jumps#NA\n")
    assert main(["generate", "a person walks forward", "--seconds", "3", "--prompts", str(prompts),
                 "--num-samples", "2", "--seed", "4", "--out", str(out), "--format", "npy,gif",
                 "--model", str(model_dir / "model"), "--precision", "fp32"]) == 0
    text = capsys.readouterr().out
    assert "generated 6 motion(s)" in text
    manifest = json.loads((out / "generations.json").read_text())
    assert [e["text"] for e in manifest] == ["a person walks forward"] * 2 + ["a person waves"] * 2 + \
        ["someone jumps"] * 2
    assert [e["seed"] for e in manifest] == [4, 5] * 3
    assert manifest[0]["frames"] == 60 and manifest[2]["frames"] == 50
    joints = np.load(out / manifest[0]["files"]["npy"])
    assert joints.shape == (60, 21, 3)
    assert (out / manifest[3]["files"]["gif"]).stat().st_size > 1000
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no scratch left behind
    model = Free3D.from_pretrained(model_dir / "model", precision="fp32")
    again = model.generate(["a person walks forward"], seconds=3, seed=4)
    # float rounding differs with the batch; IK near a straight knee turns it into up to 0.1 mm
    np.testing.assert_allclose(again[0].joints, joints, atol=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["generate", ""], "empty prompt"),
    (["generate", "walk", "--seconds", "12"], "outside 2 to 9.8 s"),
    (["generate", "walk", "--seconds", "four"], "not a number of seconds"),
    (["generate", "walk", "--num-samples", "-2"], "--num-samples must be at least 1"),
    (["generate", "walk", "--format", "avi"], "unknown output format"),
    (["generate", "walk", "--model", "NOWHERE"], "no model folder"),
    (["generate", "--prompts", "PROMPTS"], "PROMPTS:2: length 'x' is not a number"),
])
def test_bad_generate_input_is_one_clear_error_and_no_files(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "PROMPTS").write_text("a person walks#3\na person waves#x\n")
    assert main(argv + ["--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("free3d: error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_corrupt_or_incomplete_checkpoint(model_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir / "model", broken)
    (broken / "masked" / "model.safetensors").write_bytes(b"not a safetensors file")
    assert main(["generate", "walk", "--model", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    (broken / "residual" / "model.safetensors").unlink()
    assert main(["generate", "walk", "--model", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "lacks the weights of residual" in capsys.readouterr().err
    (broken / "generator.json").write_text("{")
    assert main(["generate", "walk", "--model", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_masked_loss_only_scores_masked_positions():
    torch.manual_seed(0)
    model = MaskedTransformer(transformer_preset("cpu", **TINY_TF))
    codes = torch.randint(32, (4, 12, 3))
    lengths = torch.tensor([12, 10, 5, 1])
    loss, logs = masked_token_loss(model, codes, lengths, torch.randn(4, 768),
                                   torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and 0 <= logs["acc"] <= 1
    loss.backward()
    assert model.token_emb.weight.grad is not None


def test_residual_layers_are_biased_low_and_in_range():
    layers = residual_layer_schedule(20000, 6, torch.Generator().manual_seed(0))
    counts = torch.bincount(layers, minlength=6)
    assert counts[0] == 0 and layers.max() == 5
    assert counts[1] > counts[2] > counts[3] > counts[4] > counts[5] > 0
    model = ResidualTransformer(transformer_preset("cpu", **TINY_TF))
    codes = torch.randint(32, (3, 8, 3))
    loss, _ = residual_token_loss(model, codes, torch.tensor([8, 8, 3]), torch.randn(3, 768),
                                  torch.Generator().manual_seed(1))
    assert torch.isfinite(loss)


def test_bundled_model_is_complete_small_and_generates():
    from free3d.api import DEFAULT_MODEL

    files = [p for p in DEFAULT_MODEL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 40 * 2**20
    assert (DEFAULT_MODEL / "MODEL_CARD.md").is_file()
    for part in ("mlrq", "masked", "residual", "length"):
        config = json.loads((DEFAULT_MODEL / part / "config.json").read_text())
        assert config["train"]["stage"] == part and config["dataset"]["skeleton"] == "bandai21"
    model = Free3D.from_pretrained()
    m = model.generate(["a person walks forward"], seconds=2.5, seed=0)[0]
    assert m.joints.shape == (50, 21, 3) and np.isfinite(m.joints).all()
    travel = np.linalg.norm((m.joints[-1, 0] - m.joints[0, 0])[[0, 2]])
    assert 1.0 < travel < 10  # a 2.5 s walk covers metres


def test_eval_ablations_command(model_dir, procedural_dataset, tmp_path, capsys):
    from free3d.training.evaluator import EvaluatorTrainConfig, train_evaluator

    evaluator = tmp_path / "evaluator"
    train_evaluator(EvaluatorTrainConfig(data=str(procedural_dataset), iters=10, batch_size=8, hidden=16,
                                         embed_dim=8), evaluator, progress=False)
    out = tmp_path / "ablations"
    assert main(["eval", "ablations", "--data", str(procedural_dataset), "--evaluator", str(evaluator),
                 "--model", f"tiny={model_dir / 'model'}",
                 "--reconstruction", f"its ML-RQ={model_dir / 'model'}", "--split", "train", "--pool", "8",
                 "--repeats", "2", "--mm-texts", "2", "--mm-generations", "10", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "| MPJPE (mm) | PA-MPJPE (mm) |" in text and "| tiny |" in text and "| Real | - | - |" in text
    assert "| its ML-RQ |" in text
    assert re.search(r"\| tiny \| \d+\.\d \| \d+\.\d \| \d", text)  # lifting error: no interval
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert rows[1]["mpjpe"][0] > 0 and rows[1]["pa_mpjpe"][0] > 0 and out.with_suffix(".md").is_file()
    assert not out.with_suffix(".progress.json").exists()  # only an unfinished run leaves it


def test_batched_tokenising_gives_each_window_its_own_codes(model_dir, procedural_dataset):
    from free3d.data.ground_truth import tokeniser_input
    from free3d.data.prepared import read_split
    from free3d.training.generation import tokenize_clips
    from free3d.training.lifting import load_run

    lifter, _, _ = load_run(model_dir / "mlrq")
    ids = read_split(procedural_dataset, "train")
    tokens = tokenize_clips(lifter, procedural_dataset, ids, offsets=4, progress=False, batch_size=3)
    with torch.no_grad():
        for i, cid in enumerate(ids):
            traj, limbs = tokeniser_input(lifter, procedural_dataset, cid)
            assert len(tokens.codes[i]) == 4 and tokens.num_frames[i] == len(traj)
            for o in range(4):
                n = (len(traj) - o) // 4 * 4
                alone = lifter.quantizer(lifter.encode(traj[o:o + n][None], limbs[o:o + n][None])).codes[0]
                assert torch.equal(tokens.codes[i][o], alone), (cid, o)


def test_canonical_tokens_are_the_ml_rq_s_own_lift_seen_from_one_camera(model_dir, procedural_dataset,
                                                                        monkeypatch):
    import free3d.data.ground_truth as ground_truth
    from free3d.data.ground_truth import tokeniser_input
    from free3d.data.prepared import read_split
    from free3d.data.single_view import canonical_view
    from free3d.evaluation.lift import lift_clip
    from free3d.training.generation import GeneratorTrainConfig, tokenize_clips
    from free3d.training.lifting import load_run

    lifter, _, skeleton = load_run(model_dir / "mlrq")
    ids = read_split(procedural_dataset, "train")[:3]
    inputs = {cid: tokeniser_input(lifter, procedural_dataset, cid) for cid in ids}

    def no_3d(*args, **kwargs):
        raise AssertionError("an ML-RQ's tokens must not read the 3D")

    monkeypatch.setattr(ground_truth, "load_motion3d", no_3d)
    canonical = tokenize_clips(lifter, procedural_dataset, ids, offsets=1, progress=False, view="canonical")
    own = tokenize_clips(lifter, procedural_dataset, ids, offsets=1, progress=False, view="clip")
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(canonical.codes, own.codes))
    with torch.no_grad():
        for i, cid in enumerate(ids):
            seen = canonical_view(lift_clip(lifter, *inputs[cid], skeleton).numpy(), skeleton)
            n = len(seen.trajectory) // 4 * 4
            alone = lifter.quantizer(lifter.encode(torch.from_numpy(seen.trajectory[None, :n]),
                                                   torch.from_numpy(seen.limbs[None, :n]))).codes[0]
            assert torch.equal(canonical.codes[i][0], alone), cid
    # the default for new runs; runs saved before the choice existed used the clip's view
    saved = json.loads((model_dir / "masked" / "config.json").read_text())["train"]
    assert saved["token_view"] == "canonical"
    old = {k: v for k, v in make_generator_config("masked", procedural_dataset, "m").to_dict().items()
           if k != "token_view"}
    assert GeneratorTrainConfig.from_dict(old).token_view == "clip"
    old.pop("balance")
    assert GeneratorTrainConfig.from_dict(old).balance == 0.0
    with pytest.raises(ValueError, match="unknown token view 'top'"):
        make_generator_config("masked", procedural_dataset, "m", token_view="top")


def test_mirrored_tokens_are_the_mirrored_lift_with_left_and_right_swapped(model_dir, procedural_dataset):
    from free3d.data.ground_truth import tokeniser_input
    from free3d.data.prepared import read_captions, read_split
    from free3d.data.single_view import canonical_view
    from free3d.evaluation.lift import lift_clip
    from free3d.representation import mirror_motion
    from free3d.text.mirror import mirror_caption
    from free3d.training.generation import GeneratorTrainConfig, tokenize_clips
    from free3d.training.lifting import load_run

    lifter, _, sk = load_run(model_dir / "mlrq")
    ids = read_split(procedural_dataset, "train")[:3]
    both = tokenize_clips(lifter, procedural_dataset, ids, offsets=1, progress=False,
                          view="canonical", mirror=True)
    plain = tokenize_clips(lifter, procedural_dataset, ids, offsets=1, progress=False, view="canonical")
    assert len(both.codes) == 2 * len(ids) and both.num_frames[::2] == plain.num_frames

    def codes(traj, limbs):
        n = len(traj) // 4 * 4
        with torch.no_grad():
            return lifter.tokenize(torch.as_tensor(traj[None, :n]), torch.as_tensor(limbs[None, :n]))[0]

    for i, cid in enumerate(ids):
        assert torch.equal(both.codes[2 * i][0], plain.codes[i][0])
        assert both.captions[2 * i + 1] == [mirror_caption(c) for c in read_captions(procedural_dataset, cid)]
        with torch.no_grad():
            lifted = lift_clip(lifter, *tokeniser_input(lifter, procedural_dataset, cid), sk).numpy()
        seen = canonical_view(lifted[:, sk.mirror_indices] * [-1.0, 1.0, 1.0], sk)
        assert torch.equal(both.codes[2 * i + 1][0], codes(seen.trajectory, seen.limbs)), cid
    # the clip's own view is mirrored as it is
    own = tokenize_clips(lifter, procedural_dataset, ids[:1], offsets=1, progress=False, view="clip",
                         mirror=True)
    flipped = mirror_motion(*tokeniser_input(lifter, procedural_dataset, ids[0]), sk)
    assert torch.equal(own.codes[1][0], codes(flipped.trajectory, flipped.limbs))
    # off unless asked for; runs saved before it existed load without it
    cfg = make_generator_config("masked", procedural_dataset, "m").to_dict()
    assert not cfg["mirror"] and make_generator_config("masked", procedural_dataset, "m", mirror=True).mirror
    assert not GeneratorTrainConfig.from_dict({k: v for k, v in cfg.items() if k != "mirror"}).mirror
