"""Text-to-motion generation with tiny randomly initialised models (issue 4, item 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from free3d.api import Free3D, read_prompts, seconds_to_frames
from free3d.models.autoencoders import ConvVQConfig, MotionLifter
from free3d.models.length_estimator import LengthEstimator
from free3d.models.masked_transformer import MaskedTransformer
from free3d.models.residual_transformer import ResidualTransformer
from free3d.models.token_transformer import transformer_preset
from free3d.sampling import SamplingConfig, cosine_schedule, sample_base_tokens, top_k_filter
from free3d.skeleton import get_skeleton
from free3d.text import get_text_encoder

TINY_VQ = ConvVQConfig(width=32, code_dim=16, num_layers=3, codebook_size=32, depth=2)


def tiny_transformer_config():
    return transformer_preset("cpu", num_tokens=32, num_quantizers=3, code_dim=16, latent_dim=32,
                              num_layers=2, num_heads=2, ff_dim=64)


def tiny_model() -> Free3D:
    """A randomly initialised Free3D with tiny parts (fp32: exact reproducibility)."""
    torch.manual_seed(0)
    cfg = tiny_transformer_config()
    lifter = MotionLifter(skeleton=get_skeleton("bandai21"), arch=TINY_VQ, input_dim=2)
    for layer in lifter.quantizer.layers:  # untrained codebooks are zeros: give codes distinct meanings
        layer.codebook.normal_()
        layer.initialised.fill_(True)
    return Free3D(lifter=lifter, masked=MaskedTransformer(cfg), residual=ResidualTransformer(cfg),
                  length_estimator=LengthEstimator(), text_encoder=get_text_encoder(), precision="fp32")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_shapes_and_requested_lengths(model):
    out = model.generate(["a person walks forward", "someone waves"], seconds=[2.0, 4.15], seed=1,
                         num_samples=2)
    assert [m.text for m in out] == ["a person walks forward"] * 2 + ["someone waves"] * 2
    assert [m.seed for m in out] == [1, 2, 1, 2]
    assert [m.num_frames for m in out] == [40, 40, 83, 83]  # round(4.15 * 20) = 83
    for m in out:
        assert m.joints.shape == (m.num_frames, 21, 3) and np.isfinite(m.joints).all()
        assert m.codes.shape == (int(np.ceil(m.num_frames / 4)), 3)
        assert m.skeleton.name == "bandai21" and m.fps == 20.0
        assert abs(m.joints[..., 1].min()) < 1e-9  # on the floor
        bones = np.linalg.norm(m.joints[:, 1:] - m.joints[:, m.skeleton.parents[1:]], axis=-1)
        np.testing.assert_allclose(bones, np.broadcast_to(m.skeleton.bone_lengths(), bones.shape), atol=1e-6)


def test_length_estimator_picks_valid_lengths(model):
    out = model.generate(["a person jumps"], seed=0, num_samples=4)
    assert all(40 <= m.num_frames <= 196 and m.num_frames % 4 == 0 for m in out)


def test_same_seed_same_motion_and_batch_independence(model):
    a = model.generate(["a person runs"], seconds=3, seed=7)[0]
    b = model.generate(["someone bows", "a person runs"], seconds=[6, 3], seed=7)[1]  # longer neighbour
    np.testing.assert_array_equal(a.codes, b.codes)
    # batched float kernels differ in ulps, which IK near a straight knee turns into up to 0.1 mm
    np.testing.assert_allclose(a.joints, b.joints, atol=1e-4)
    np.testing.assert_array_equal(a.joints, model.generate(["a person runs"], seconds=3, seed=7)[0].joints)
    c = model.generate(["a person runs"], seconds=3, seed=8)[0]
    assert not np.array_equal(a.codes, c.codes)


def test_guidance_scale_one_is_conditional_only(model, monkeypatch):
    """With scale 1 the unconditional branch is never run: poisoning it changes nothing."""
    body = model.masked.body
    real = body.condition

    def poisoned(text, drop=None):
        out = real(text, drop)
        return out if drop is None else out * float("nan")

    reference = model.generate(["a person walks"], seconds=2, seed=3, guidance=1.0)[0]
    batch_sizes = []
    hook = model.masked.body.register_forward_hook(lambda m, args, out: batch_sizes.append(out.shape[0]))
    monkeypatch.setattr(body, "condition", poisoned)
    try:
        poisoned_run = model.generate(["a person walks"], seconds=2, seed=3, guidance=1.0)[0]
    finally:
        hook.remove()
    np.testing.assert_array_equal(reference.codes[:, 0], poisoned_run.codes[:, 0])
    assert set(batch_sizes) == {1}
    batch_sizes.clear()
    hook = model.masked.body.register_forward_hook(lambda m, args, out: batch_sizes.append(out.shape[0]))
    try:
        model.generate(["a", "b"], seconds=2, seed=3, guidance=4.0)
    finally:
        hook.remove()
    assert set(batch_sizes) == {4}  # 2 prompts x (cond, uncond) in one pass
    assert len(batch_sizes) == model.sampling.iterations


def test_edit_keeps_frames_outside_the_span_exactly(model):
    m = model.generate(["a person walks"], seconds=4, seed=0)[0]
    e = model.edit(m, 1.0, 2.5, "a person jumps", seed=5)
    assert e.joints.shape == m.joints.shape
    np.testing.assert_array_equal(e.joints[:20], m.joints[:20])
    np.testing.assert_array_equal(e.joints[50:], m.joints[50:])
    assert not np.allclose(e.joints[20:50], m.joints[20:50])
    np.testing.assert_array_equal(e.codes[:5], m.codes[:5])  # tokens outside the span kept too
    np.testing.assert_array_equal(e.codes[13:], m.codes[13:])
    raw = model.edit(m.joints, 0.0, 1.0, "a person waves")  # any (T, J, 3) clip
    np.testing.assert_array_equal(raw.joints[20:], m.joints[20:])


def test_bfloat16_generation_runs_and_stays_close():
    torch.manual_seed(0)
    cfg = tiny_transformer_config()
    lifter = MotionLifter(skeleton=get_skeleton("bandai21"), arch=TINY_VQ, input_dim=2)
    masked, residual = MaskedTransformer(cfg), ResidualTransformer(cfg)
    parts = dict(lifter=lifter, length_estimator=LengthEstimator(), text_encoder=get_text_encoder())
    fp32 = Free3D(masked=masked, residual=residual, precision="fp32", **parts)
    a = fp32.generate(["a person walks"], seconds=3, seed=0, guidance=1.0, residual_guidance=1.0)[0]
    import copy

    bf16 = Free3D(masked=copy.deepcopy(masked), residual=copy.deepcopy(residual), precision="bf16", **parts)
    assert bf16.masked.head.weight.dtype == torch.bfloat16
    b = bf16.generate(["a person walks"], seconds=3, seed=0, guidance=1.0, residual_guidance=1.0)[0]
    assert b.joints.shape == a.joints.shape and np.isfinite(b.joints).all()
    assert (a.codes == b.codes).mean() > 0.5  # same noise; bf16 rounding flips a few near-ties
    with pytest.raises(ValueError, match="precision"):
        Free3D(masked=masked, residual=residual, precision="fp16", **parts)


def test_sampling_building_blocks():
    assert float(cosine_schedule(0.0)) == pytest.approx(1.0)
    assert float(cosine_schedule(1.0)) == pytest.approx(0.0, abs=1e-7)
    logits = torch.arange(100.0).repeat(2, 1)
    kept = torch.isfinite(top_k_filter(logits, 0.9))
    assert kept.sum(-1).tolist() == [10, 10] and kept[:, 90:].all()
    with pytest.raises(ValueError, match="iterations"):
        SamplingConfig(iterations=0)


def test_every_generated_token_is_a_code_and_padding_is_minus_one():
    torch.manual_seed(0)
    masked = MaskedTransformer(tiny_transformer_config()).eval()
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    ids = sample_base_tokens(masked, torch.randn(3, 384), torch.tensor([10, 4, 7]), SamplingConfig(), gens)
    assert ids.shape == (3, 10)
    assert (ids[1, 4:] == -1).all() and (ids[2, 7:] == -1).all()
    valid = ids[ids >= 0]
    assert ((valid >= 0) & (valid < 32)).all()


def test_residual_transformer_shares_input_and_output_tables():
    res = ResidualTransformer(transformer_preset("cpu", num_tokens=32, num_quantizers=6, code_dim=16,
                                                 latent_dim=32, num_layers=1, num_heads=2, ff_dim=64))
    for j in range(1, 5):  # layer j's embedding is the head that predicts layer j
        assert res.head_table(j).data_ptr() == res.embed_table(j).data_ptr()
    assert res.head_table(5).shape == (32, 16)


@pytest.mark.parametrize("bad, message", [
    ("", "empty prompt"), ("   ", "empty prompt"),
])
def test_empty_prompt_is_refused(model, bad, message):
    with pytest.raises(ValueError, match=message):
        model.generate([bad], seconds=3)


@pytest.mark.parametrize("seconds, message", [
    (1.5, "outside 2 to 9.8 s"), (10, "outside 2 to 9.8 s"), ("four", "not a number"),
    (float("nan"), "outside"),
])
def test_bad_lengths_are_refused(model, seconds, message):
    with pytest.raises(ValueError, match=message):
        model.generate(["a person walks"], seconds=seconds)


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_bad_sample_counts_are_refused(model, n):
    with pytest.raises(ValueError, match="num_samples"):
        model.generate(["a person walks"], seconds=3, num_samples=n)


def test_edit_span_must_be_inside_the_motion(model):
    m = model.generate(["a person walks"], seconds=2, seed=0)[0]
    with pytest.raises(ValueError, match="not inside the motion"):
        model.edit(m, 1.5, 3.0, "jumps")
    with pytest.raises(ValueError, match="joints of bandai21"):
        model.edit(np.zeros((40, 22, 3)), 0, 1, "jumps")


def test_seconds_to_frames():
    assert seconds_to_frames(2) == 40 and seconds_to_frames("9.8") == 196 and seconds_to_frames(4.01) == 80


def test_prompt_file(tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("a person walks#4\n\nsomeone waves#NA\na person bows#\na person kicks\n")
    assert read_prompts(f) == [("a person walks", 4.0), ("someone waves", None), ("a person bows", None),
                               ("a person kicks", None)]
    for line, message in [("walks#abc", r"prompts.txt:2: length 'abc' is not a number"),
                          ("walks#12", "prompts.txt:2: length 12 s is outside"),
                          ("#4", "prompts.txt:2: empty prompt"),
                          ("a#b#3", "prompts.txt:2: more than one '#'")]:
        f.write_text(f"a person walks#4\n{line}\n")
        with pytest.raises(ValueError, match=message):
            read_prompts(f)


def test_unknown_sampling_option_is_refused(model):
    with pytest.raises(ValueError, match="unknown sampling option.*guidence"):
        model.generate(["a person walks"], seconds=2, guidence=3)


def test_reconstruct_round_trips_a_2d_clip_into_canonical_3d(model):
    from free3d.data.single_view import Camera, project_clip
    from free3d.data.sources.procedural import procedural_motion

    rng = np.random.default_rng(0)
    joints = procedural_motion("walk", model.skeleton, seconds=3.1, speed="normal", rng=rng)
    view = project_clip(joints, Camera(0.7, 0.1), model.skeleton)
    out = model.reconstruct(view.trajectory, view.limbs)
    assert out.shape == (62, 21, 3) and np.isfinite(out).all()  # 62 frames: not a whole number of tokens
    assert abs(out[..., 1].min()) < 1e-9 and np.abs(out[0, 0, [0, 2]]).max() < 1e-9  # canonical
    bones = np.linalg.norm(out[:, 1:] - out[:, model.skeleton.parents[1:]], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(model.skeleton.bone_lengths(), bones.shape), atol=1e-6)
    np.testing.assert_array_equal(model.reconstruct(view.trajectory, view.limbs), out)  # deterministic
    with pytest.raises(ValueError, match="reads 2D"):
        model.reconstruct(np.zeros((40, 3)), np.zeros((40, 20, 3)))
