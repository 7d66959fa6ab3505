"""Pins the MoMask quantizer behaviours free3d relies on (DESIGN.md section 3)."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from free3d.models.quantizer import ResidualQuantizer


def rq(**kw):
    args = dict(dim=4, num_layers=3, codebook_size=8, dropout_prob=0.2, sample_temperature=0.5)
    return ResidualQuantizer(**{**args, **kw})


def one_layer(codebook, *, decay):
    """A 1-layer argmax quantizer whose codebook is already set (EMA counts of 1)."""
    q = ResidualQuantizer(dim=2, num_layers=1, codebook_size=2, decay=decay, dropout_prob=0.0,
                          sample_temperature=0.0).train()
    layer = q.layers[0]
    layer.codebook.copy_(torch.tensor(codebook))
    layer.code_sum.copy_(layer.codebook)
    layer.code_count.fill_(1.0)
    layer.initialised.fill_(True)
    return q, layer


def test_first_batch_initialises_codebooks_from_batch_vectors():
    torch.manual_seed(0)
    q = rq(dropout_prob=0.0).train()
    z = torch.randn(2, 16, 4)
    q(z)
    rows = z.reshape(-1, 4)
    # layer 0's codes (before its EMA step) were rows of z: check via the code sums,
    # which start equal to the initial codebook and then decay towards the batch means
    assert bool(q.layers[0].initialised)
    init_q = rq(dropout_prob=0.0).train()
    torch.manual_seed(0)
    init_q.layers[0].initialise(rows)
    assert all((init_q.codebook(0)[k] == rows).all(-1).any() for k in range(8))


def test_eval_codes_are_nearest_codes_layer_by_layer_and_deterministic():
    torch.manual_seed(0)
    q = rq().train()
    q(torch.randn(4, 8, 4))  # initialise and update
    q.eval()
    z = torch.randn(3, 5, 4)
    out = q(z)
    assert torch.equal(out.codes, q(z).codes)
    residual = z.reshape(-1, 4)
    total = torch.zeros_like(residual)
    for layer in range(3):
        cb = q.codebook(layer)
        idx = torch.cdist(residual, cb).argmin(-1)
        assert torch.equal(out.codes.reshape(-1, 3)[:, layer], idx)
        total = total + cb[idx]
        residual = residual - cb[idx]
    assert torch.allclose(out.quantized.reshape(-1, 4), total, atol=1e-6)
    assert torch.allclose(q.codes_to_latent(out.codes), out.quantized, atol=1e-6)


def test_ema_update_follows_the_formula():
    q, layer = one_layer([[0.0, 0.0], [10.0, 10.0]], decay=0.9)
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]])
    q(z)
    # code 0: sum 0.9*(0,0) + 0.1*(1,1), count 0.9 + 0.1*2 = 1.1
    assert torch.allclose(layer.codebook[0], torch.tensor([0.1, 0.1]) / 1.1)
    # code 1: sum 0.9*(10,10) + 0.1*(9,9), count 0.9 + 0.1*1 = 1.0
    assert torch.allclose(layer.codebook[1], torch.tensor([9.9, 9.9]))


def test_dead_code_is_reset_to_a_batch_vector():
    torch.manual_seed(0)
    q, layer = one_layer([[0.0, 0.0], [100.0, 100.0]], decay=0.5)
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
    q(z)  # code 1 unused: its EMA count falls to 0.5 < 1
    assert layer.code_count[1] == pytest.approx(0.5)
    assert (layer.codebook[1] == z[0]).all(-1).any()


def test_quantize_dropout_probability_and_kept_layers():
    torch.manual_seed(0)
    q = rq(num_layers=4).train()
    z = torch.randn(2, 4, 4)
    kept = []
    for _ in range(3000):
        codes = q(z).codes
        kept.append(int((codes[0, 0] >= 0).sum()))
    kept = torch.tensor(kept)
    # with probability 0.2 keep 1..4 layers uniformly; otherwise all 4
    assert (kept < 4).float().mean() == pytest.approx(0.2 * 3 / 4, abs=0.02)
    for k in (1, 2, 3):
        assert (kept == k).float().mean() == pytest.approx(0.05, abs=0.015)
    q.eval()
    assert all(int((q(z).codes >= 0).all()) for _ in range(50))


def test_straight_through_and_commitment_loss():
    torch.manual_seed(0)
    q = rq(dropout_prob=0.0).train()
    q(torch.randn(2, 8, 4))
    q.eval()
    z = torch.randn(2, 8, 4, requires_grad=True)
    out = q(z)
    g = torch.randn_like(out.quantized)
    (out.quantized * g).sum().backward()
    assert torch.allclose(z.grad, g)
    residual, losses = z.detach().reshape(-1, 4), []
    for layer in range(3):
        c = q.codebook(layer)[out.codes.reshape(-1, 3)[:, layer]]
        losses.append((residual - c).square().mean())
        residual = residual - c
    assert torch.allclose(out.commit_loss, torch.stack(losses).mean())


def test_training_codes_are_sampled_but_repeatable_under_a_seed():
    torch.manual_seed(0)
    q = rq(dropout_prob=0.0, codebook_size=32).train()
    z = torch.randn(4, 16, 4)
    q(z)
    state = {k: v.clone() for k, v in q.state_dict().items()}

    def codes(seed):
        q.load_state_dict(state)
        q.train()
        torch.manual_seed(seed)
        return q(z).codes

    assert torch.equal(codes(1), codes(1))
    assert not torch.equal(codes(1), codes(2))
    q.load_state_dict(state)
    nearest = q.eval()(z).codes
    assert not torch.equal(codes(1), nearest)


def test_state_round_trips_through_safetensors(tmp_path):
    torch.manual_seed(0)
    q = rq().train()
    q(torch.randn(4, 8, 4))
    save_file({k: v.contiguous() for k, v in q.state_dict().items()}, tmp_path / "q.safetensors")
    other = rq()
    other.load_state_dict(load_file(tmp_path / "q.safetensors"))
    z = torch.randn(2, 6, 4)
    assert torch.equal(q.eval()(z).codes, other.eval()(z).codes)


def test_dead_code_threshold_comes_from_the_model_sizes():
    """A lower threshold keeps a rarely used code that MoMask's 1 would reset."""
    from free3d.models.autoencoders import ConvVQConfig, MotionLifter, Prior2D
    from free3d.skeleton import get_skeleton

    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])
    for threshold, kept in ((1.0, False), (0.4, True)):
        q, layer = one_layer([[0.0, 0.0], [100.0, 100.0]], decay=0.5)
        for lay in q.layers:
            lay.dead_code_threshold = threshold
        q(z)  # code 1 unused: its EMA count falls to 0.5
        assert torch.equal(layer.codebook[1], torch.tensor([100.0, 100.0])) == kept
    arch = ConvVQConfig(width=8, code_dim=4, num_layers=2, codebook_size=8, depth=1,
                        dead_code_threshold=0.25)
    skeleton = get_skeleton("bandai21")
    for model in (MotionLifter(skeleton=skeleton, arch=arch), Prior2D(skeleton=skeleton, arch=arch)):
        assert all(lay.dead_code_threshold == 0.25 for lay in model.quantizer.layers)
