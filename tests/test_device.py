"""Device choice for inference (issue 14, item 1): ``device=`` on the API, ``--device`` on
``generate`` and every ``eval`` command, weights that load on any device.

The CUDA tests are skipped without a GPU; on one they compare GPU samples with CPU ones
(the same seeds draw the same noise on both, so they differ only by float rounding).
"""

from __future__ import annotations

import copy
import json
import shutil
import zlib

import numpy as np
import pytest
import torch

from free3d.api import DEFAULT_MODEL, Free3D
from free3d.cli import build_parser, main
from free3d.device import resolve_device, tf32_scope
from free3d.models.autoencoders import ConvVQConfig, MotionLifter
from free3d.models.length_estimator import LengthEstimator
from free3d.models.masked_transformer import MaskedTransformer
from free3d.models.residual_transformer import ResidualTransformer
from free3d.models.token_transformer import transformer_preset
from free3d.skeleton import get_skeleton
from free3d.text import TextEncoder

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
PROMPTS = ["a person walks forward", "someone jumps", "a person waves"]


class HashTextEncoder(TextEncoder):
    """A weightless stand-in encoder: a fixed random unit vector per text."""

    name, dim = "hash", 384

    def _encode(self, texts: list[str]) -> torch.Tensor:
        gens = [torch.Generator().manual_seed(zlib.crc32(t.encode())) for t in texts]
        vectors = torch.stack([torch.randn(self.dim, generator=g) for g in gens])
        return torch.nn.functional.normalize(vectors, dim=-1)


def tiny_parts() -> dict:
    """Fresh tiny random parts (CPU), the same for every call."""
    torch.manual_seed(0)
    cfg = transformer_preset("cpu", num_tokens=32, num_quantizers=3, code_dim=16, latent_dim=32,
                             num_layers=2, num_heads=2, ff_dim=64)
    lifter = MotionLifter(skeleton=get_skeleton("bandai21"), input_dim=2,
                          arch=ConvVQConfig(width=32, code_dim=16, num_layers=3, codebook_size=32, depth=2))
    for layer in lifter.quantizer.layers:  # untrained codebooks are zeros: give codes distinct meanings
        layer.codebook.normal_()
        layer.initialised.fill_(True)
    return dict(lifter=lifter, masked=MaskedTransformer(cfg), residual=ResidualTransformer(cfg),
                length_estimator=LengthEstimator(), text_encoder=HashTextEncoder())


def devices_of(model: Free3D) -> set[torch.device]:
    parts = (model.lifter, model.masked, model.residual, model.length_estimator)
    return {t.device for m in parts for t in [*m.parameters(), *m.buffers()]}


def agreement(a: list, b: list) -> float:
    """Fraction of equal tokens over two lists of motions of the same lengths."""
    return float(np.mean(np.concatenate([(x.codes == y.codes).ravel() for x, y in zip(a, b)])))


# ------------------------------------------------------------------------------------ API


def test_resolve_device():
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad, message in (("gpu", "not a device"), ("cuda:x", "not a device"), ("mps", "cpu or cuda")):
        with pytest.raises(ValueError, match=message):
            resolve_device(bad)


@pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_one_clear_error(tmp_path):
    # checked before any loading: a missing folder would otherwise be a ModelError
    with pytest.raises(ValueError, match="CUDA is not available"):
        Free3D.from_pretrained(tmp_path / "nowhere", device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Free3D(**tiny_parts(), device="cuda:0")


def test_from_pretrained_on_the_cpu_matches_the_default():
    cpu = Free3D.from_pretrained(device="cpu", precision="fp32")
    assert cpu.device == torch.device("cpu") and devices_of(cpu) == {torch.device("cpu")}
    default = Free3D.from_pretrained(precision="fp32")
    assert default.device == resolve_device("auto")
    a = cpu.generate(PROMPTS[:2], [2.5, None], seed=3)
    b = default.generate(PROMPTS[:2], [2.5, None], seed=3)
    assert all(isinstance(m.joints, np.ndarray) and isinstance(m.codes, np.ndarray) for m in a + b)
    if not CUDA:  # auto is the CPU here: the very same samples
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.codes, y.codes)
            np.testing.assert_array_equal(x.joints, y.joints)


@pytest.mark.parametrize("src, dst", [("cpu", "cpu")] + [("cuda", "cpu"), ("cpu", "cuda")] * CUDA)
def test_weights_are_saved_device_free_and_load_anywhere(src, dst, tmp_path, monkeypatch):
    from free3d.training import run

    model = Free3D.from_pretrained(device=src, precision="fp32")
    out = tmp_path / "copy"
    shutil.copytree(DEFAULT_MODEL, out)
    saved = []
    real_save = run.save_file
    monkeypatch.setattr(run, "save_file", lambda tensors, path: (
        saved.extend(t.device for t in tensors.values()), real_save(tensors, path)))
    for part, module in (("mlrq", model.lifter), ("masked", model.masked), ("residual", model.residual),
                         ("length", model.length_estimator)):
        run.save_weights(out / part / "model.safetensors", module)
    assert saved and set(saved) == {torch.device("cpu")}  # what is written is CPU tensors
    again = Free3D.from_pretrained(out, device=dst, precision="fp32")
    assert {d.type for d in devices_of(again)} == {resolve_device(dst).type}
    a = model.generate(PROMPTS[:1], seconds=2, seed=1)[0]
    b = again.generate(PROMPTS[:1], seconds=2, seed=1)[0]
    if src == dst:
        np.testing.assert_array_equal(a.joints, b.joints)
    else:  # another device: the same noise, float rounding apart
        assert (a.codes == b.codes).mean() > 0.9


def test_cpu_inference_leaves_the_tf32_flags_alone():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with tf32_scope(torch.device("cpu"), enabled=not before[0]):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


# ------------------------------------------------------------------------------------ CLI

COMMANDS = [["generate", "a person walks"], ["eval", "lift", "--data", "nowhere"],
            ["eval", "physics", "--data", "nowhere"], ["eval", "generation", "--data", "nowhere"],
            ["eval", "ablations", "--data", "nowhere"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_inference_command_takes_device(argv, tmp_path, capsys):
    parser = build_parser()
    assert parser.parse_args(argv).device == "auto"
    assert parser.parse_args([*argv, "--device", "cuda:1"]).device == "cuda:1"
    out = tmp_path / "out"
    assert main([*argv, "--device", "gpu", *(["--out", str(out)] if argv[0] == "generate" else [])]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["free3d: error: --device 'gpu': not a device (auto, cpu, cuda or cuda:N)"]
    assert not out.exists()


def test_generate_command_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", PROMPTS[0], "--seconds", "2", "--seed", "3", "--format", "npy",
                 "--out", str(out), "--device", "cpu", "--precision", "fp32"]) == 0
    manifest = json.loads((out / "generations.json").read_text())
    joints = np.load(out / manifest[0]["files"]["npy"])
    expected = Free3D.from_pretrained(device="cpu", precision="fp32").generate(PROMPTS[0], 2, seed=3)[0]
    np.testing.assert_array_equal(joints, expected.joints.astype(joints.dtype))  # npy: float32


def test_eval_commands_on_the_cpu(procedural_dataset, tmp_path, capsys):
    data = str(procedural_dataset)
    assert main(["eval", "lift", "--data", data, "--model", str(DEFAULT_MODEL / "mlrq"),
                 "--device", "cpu", "--quiet"]) == 0
    assert "| mlrq:mlrq |" in capsys.readouterr().out
    assert main(["eval", "physics", "--data", data, "--model", "bundled=default", "--reconstruction",
                 "lifted=default", "--max-clips", "2", "--device", "cpu", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "| bundled | all | 2 |" in table and "| lifted | all | 2 |" in table
    assert main(["eval", "generation", "--data", data, "--model", "bundled=default", "--split", "train",
                 "--pool", "8", "--repeats", "1", "--mm-generations", "0", "--device", "cpu",
                 "--quiet"]) == 0
    assert "| bundled |" in capsys.readouterr().out


# ----------------------------------------------------------------------------------- CUDA


@needs_cuda
def test_cuda_generation_matches_the_cpu():
    parts = tiny_parts()
    cpu = Free3D(**copy.deepcopy(parts), precision="fp32", device="cpu")
    gpu = Free3D(**parts, precision="fp32", device="cuda")
    assert gpu.device.type == "cuda" and {d.type for d in devices_of(gpu)} == {"cuda"}
    a = cpu.generate(PROMPTS, [3.0, None, 4.1], seed=5, num_samples=2)
    b = gpu.generate(PROMPTS, [3.0, None, 4.1], seed=5, num_samples=2)
    assert [m.num_frames for m in a] == [m.num_frames for m in b]  # lengths drawn on the CPU
    assert agreement(a, b) > 0.9  # a near-tie may flip a token, no more
    same = [(x, y) for x, y in zip(a, b) if np.array_equal(x.codes, y.codes)]
    assert len(same) >= len(a) // 2
    for x, y in same:
        np.testing.assert_allclose(x.joints, y.joints, atol=1e-4)
    ea = cpu.edit(a[0], 0.5, 1.5, "a person jumps", seed=2)
    eb = gpu.edit(a[0], 0.5, 1.5, "a person jumps", seed=2)  # a CPU-made motion edits on the GPU
    np.testing.assert_array_equal(eb.joints[:10], a[0].joints[:10])
    assert (ea.codes == eb.codes).mean() > 0.9
    view_a = cpu.reconstruct(np.zeros((41, 2), np.float32), np.full((41, 20, 2), 0.1, np.float32))
    view_b = gpu.reconstruct(np.zeros((41, 2), np.float32), np.full((41, 20, 2), 0.1, np.float32))
    np.testing.assert_allclose(view_a, view_b, atol=1e-4)


@needs_cuda
def test_cuda_precision_auto_is_tf32_and_fp32_is_exact(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)  # as enable_fast_math leaves it
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    for precision, tf32 in (("fp32", False), ("auto", True)):
        model = Free3D(**tiny_parts(), precision=precision, device="cuda")
        assert model.precision == ("fp32" if precision == "fp32" else "tf32")
        seen: list[bool] = []
        hook = model.masked.body.register_forward_hook(
            lambda *_, seen=seen: seen.append(torch.backends.cuda.matmul.allow_tf32))
        try:
            model.generate(PROMPTS[:1], seconds=2, seed=0)
        finally:
            hook.remove()
        assert seen and set(seen) == {tf32}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32  # restored


@needs_cuda
def test_cuda_bundled_model_and_evaluator_match_the_cpu():
    from free3d.evaluation.generation import EvaluatorEmbedder

    cpu = Free3D.from_pretrained(device="cpu", precision="fp32")
    gpu = Free3D.from_pretrained(device="cuda", precision="fp32")
    a = cpu.generate(PROMPTS[0], seconds=3, seed=0, num_samples=4)
    b = gpu.generate(PROMPTS[0], seconds=3, seed=0, num_samples=4)
    assert agreement(a, b) > 0.9
    for x, y in zip(a, b):
        if np.array_equal(x.codes, y.codes):
            np.testing.assert_allclose(x.joints, y.joints, atol=1e-3)
    auto = Free3D.from_pretrained(device="cuda")
    assert auto.precision == "tf32" and np.isfinite(auto.generate(PROMPTS[1], seed=0)[0].joints).all()
    emb_cpu, emb_gpu = EvaluatorEmbedder(device="cpu"), EvaluatorEmbedder(device="cuda")
    clips = [m.joints.astype(np.float32) for m in a]
    (ec, pc), (eg, pg) = emb_cpu.motions(clips), emb_gpu.motions(clips)
    np.testing.assert_allclose(ec, eg, atol=1e-4)
    assert all(np.array_equal(pc[k], pg[k]) for k in pc)  # the same labels predicted
    np.testing.assert_allclose(emb_cpu.texts(PROMPTS), emb_gpu.texts(PROMPTS), atol=1e-4)
