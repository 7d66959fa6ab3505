"""The evaluator's training loop and the table-1 evaluation on the procedural dataset."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from free3d.cli import main
from free3d.evaluation.generation import EvaluatorEmbedder, GenerationEvalConfig, evaluate_generation
from free3d.models.evaluator import position_features
from free3d.training.evaluator import EvaluatorTrainConfig, contrastive_loss, train_evaluator


@pytest.fixture(scope="module")
def evaluator_run(procedural_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "evaluator"
    cfg = EvaluatorTrainConfig(data=str(procedural_dataset), iters=60, batch_size=16, hidden=32,
                               embed_dim=16, warmup_iters=5, log_every=5, checkpoint_every=30)
    train_evaluator(cfg, out, progress=False)
    return out


def test_evaluator_training_lowers_its_loss(evaluator_run):
    with open(evaluator_run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    first = np.mean([float(r["loss"]) for r in rows[:3]])
    last = np.mean([float(r["loss"]) for r in rows[-3:]])
    assert last < 0.8 * first
    config = json.loads((evaluator_run / "config.json").read_text())
    assert config["evaluator"]["contents"] == ["jump", "walk", "wave"]


def test_contrastive_loss_ignores_same_label_pairs():
    t = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    same = torch.eye(4, dtype=torch.bool)
    base = contrastive_loss(t, t, same, 0.1)
    same[0, 1] = same[1, 0] = True  # 0 and 1 share labels: no longer pushed apart
    assert contrastive_loss(t, t, same, 0.1) <= base


def test_position_features_are_root_relative():
    joints = torch.randn(2, 10, 21, 3)
    f = position_features(joints)
    assert f.shape == (2, 10, 63)
    shifted = joints + torch.tensor([5.0, 0.0, -3.0])  # a horizontal shift changes nothing
    torch.testing.assert_close(position_features(shifted), f)


def test_real_row_is_its_own_sanity_check(procedural_dataset, evaluator_run):
    cfg = GenerationEvalConfig(split="train", repeats=2, pool=8)
    rows = evaluate_generation(procedural_dataset, evaluator_run, {}, cfg, progress=False)
    real = rows[0]
    assert real["model"] == "Real" and abs(real["fid"][0]) < 1e-6
    assert real["top1"][0] <= real["top2"][0] <= real["top3"][0] <= 1.0
    assert real["multimodality"] is None and rows[-1]["model"] == "_meta"


def test_generated_rows_have_every_column(procedural_dataset, evaluator_run):
    from test_generation import tiny_model  # tests/ is on sys.path (rootdir-less test modules)

    cfg = GenerationEvalConfig(split="train", repeats=2, pool=8, mm_texts=3, mm_generations=10)
    rows = evaluate_generation(procedural_dataset, evaluator_run, {"tiny": tiny_model()}, cfg, progress=False)
    tiny = rows[1]
    assert tiny["model"] == "tiny" and tiny["fid"][0] > 0
    assert tiny["multimodality"][0] > 0 and tiny["qm"][0] > 0
    assert 0 <= tiny["content_acc"][0] <= 1


def test_tokeniser_reconstruction_rows(procedural_dataset, evaluator_run):
    from test_generation import tiny_model

    cfg = GenerationEvalConfig(split="train", repeats=2, pool=8, mm_texts=3, mm_generations=10)
    rows = evaluate_generation(procedural_dataset, evaluator_run, {}, cfg, progress=False,
                               reconstructions={"tiny ML-RQ": tiny_model()})
    assert [r["model"] for r in rows] == ["Real", "tiny ML-RQ", "_meta"]
    recon = rows[1]
    assert recon["fid"][0] > 0 and recon["multimodality"] is None  # fixed motions: nothing sampled
    assert recon["fid"][1] == 0.0  # the same motions in every repeat; only captions and pools vary
    with pytest.raises(ValueError, match="used twice"):
        evaluate_generation(procedural_dataset, evaluator_run, {"x": tiny_model()}, cfg, progress=False,
                            reconstructions={"x": tiny_model()})
    with pytest.raises(ValueError, match="'Real' is used twice"):
        evaluate_generation(procedural_dataset, evaluator_run, {"Real": tiny_model()}, cfg, progress=False)


def test_interrupted_evaluation_resumes_to_the_same_table(procedural_dataset, evaluator_run, tmp_path):
    from test_generation import tiny_model

    cfg = GenerationEvalConfig(split="train", repeats=3, pool=8, mm_texts=3, mm_generations=10)
    progress = tmp_path / "table.progress.json"
    full = evaluate_generation(procedural_dataset, evaluator_run, {"tiny": tiny_model()}, cfg,
                               progress=False, resume=progress, fingerprint={"tiny": "a"})
    saved = json.loads(progress.read_text())
    assert sorted(saved["steps"]) == sorted(f"{n}/{r}" for n in ("Real", "tiny") for r in range(3))
    # Interrupted after repeat 0: only its steps survive; resuming redoes the rest identically.
    saved["steps"] = {k: v for k, v in saved["steps"].items() if k.endswith("/0")}
    progress.write_text(json.dumps(saved))
    resumed = evaluate_generation(procedural_dataset, evaluator_run, {"tiny": tiny_model()}, cfg,
                                  progress=False, resume=progress, fingerprint={"tiny": "a"})
    assert resumed[:-1] == full[:-1]

    class Refuses:  # every step is recorded now, so no generation may run
        def generate(self, *args, **kwargs):
            raise AssertionError("a finished step was recomputed")

    again = evaluate_generation(procedural_dataset, evaluator_run, {"tiny": Refuses()}, cfg,
                                progress=False, resume=progress, fingerprint={"tiny": "a"})
    assert again[:-1] == full[:-1]
    with pytest.raises(ValueError, match="other settings"):
        evaluate_generation(procedural_dataset, evaluator_run, {"tiny": tiny_model()}, cfg,
                            progress=False, resume=progress, fingerprint={"tiny": "b"})


def test_eval_generation_command(procedural_dataset, evaluator_run, tmp_path, capsys):
    embed = EvaluatorEmbedder(evaluator_run)
    emb, preds = embed.motions([np.zeros((40, 21, 3), np.float32), np.ones((44, 21, 3), np.float32)])
    assert emb.shape == (2, 16) and set(preds) == {"content", "style"}
    out = tmp_path / "table"
    assert main(["eval", "generation", "--data", str(procedural_dataset), "--evaluator", str(evaluator_run),
                 "--split", "train", "--repeats", "2", "--out", str(out), "--quiet"]) == 2
    assert "needs 32" in capsys.readouterr().err  # 19 train clips cannot fill a pool of 32
    assert main(["eval", "generation", "--data", str(procedural_dataset), "--evaluator", str(evaluator_run),
                 "--model", "bad-spec"]) == 2
    assert "LABEL=DIR" in capsys.readouterr().err


def test_bundled_evaluator_loads_and_embeds():
    embed = EvaluatorEmbedder()  # the bundled one
    assert embed.config.num_joints == 21 and "walk" in embed.config.contents
    emb, preds = embed.motions([np.zeros((60, 21, 3), np.float32)])
    assert emb.shape == (1, 256) and np.isclose(np.linalg.norm(emb), 1.0)
    t = embed.texts(["a person walks forward"])
    assert t.shape == (1, 256)
