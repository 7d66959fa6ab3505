"""The CPU inference path of the transformers (oneDNN-packed weights) matches the modules."""

from __future__ import annotations

import copy

import pytest
import torch

from free3d.models.token_transformer import TokenTransformer, _PackedEncoder, transformer_preset

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")


def small_body() -> TokenTransformer:
    torch.manual_seed(0)
    cfg = transformer_preset("cpu", code_dim=16, latent_dim=32, num_layers=2, num_heads=4, ff_dim=48,
                             max_tokens=12)
    return TokenTransformer(cfg, num_prefix=1).eval()


def inputs(b: int = 3, n: int = 10):
    g = torch.Generator().manual_seed(1)
    prefix, x = torch.randn(b, 1, 32, generator=g), torch.randn(b, n, 16, generator=g)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask[1, 7:] = True
    return prefix, x, mask


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 0.1)])
def test_packed_path_matches_the_encoder(dtype, tol):
    body = small_body().to(dtype)
    prefix, x, mask = (t.to(dtype) if t.is_floating_point() else t for t in inputs())
    for m in (None, mask):
        with torch.inference_mode():
            fast = body(prefix, x, m)
            assert _PackedEncoder._table.get(body.encoder) is not None  # the packed path ran
            _PackedEncoder._available = False
            try:
                slow = body(prefix, x, m)
            finally:
                _PackedEncoder._available = None
        keep = slice(None) if m is None else ~m
        assert fast.dtype == dtype
        torch.testing.assert_close(fast[keep].float(), slow[keep].float(), atol=tol, rtol=tol)


def test_packed_weights_follow_weight_changes_and_copies():
    body = small_body()
    prefix, x, mask = inputs()
    with torch.inference_mode():
        before = body(prefix, x, mask)
    with torch.no_grad():
        body.encoder.layers[0].linear1.weight.mul_(2.0)  # e.g. an optimiser step
    with torch.inference_mode():
        after = body(prefix, x, mask)
        _PackedEncoder._available = False
        try:
            reference = body(prefix, x, mask)
        finally:
            _PackedEncoder._available = None
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, atol=1e-5, rtol=1e-5)
    twin = copy.deepcopy(body)  # packed tensors live outside the module: copying still works
    with torch.inference_mode():
        torch.testing.assert_close(twin(prefix, x, mask), after)


def test_training_and_autograd_use_the_modules():
    body = small_body()
    prefix, x, mask = inputs()
    _PackedEncoder._table.pop(body.encoder, None)
    out = body(prefix, x, mask)  # eval mode, but autograd on: gradients must flow
    out.sum().backward()
    assert body.encoder.layers[0].linear1.weight.grad is not None
    assert _PackedEncoder._table.get(body.encoder) is None
    body.train()
    with torch.no_grad():
        body(prefix, x, mask)
    assert _PackedEncoder._table.get(body.encoder) is None
