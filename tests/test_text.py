"""Text encoders: the bundled all-MiniLM-L6-v2 offline, the embedding cache, CLIP's errors."""

import numpy as np
import pytest
import torch

from free3d.text import EmbeddingCache, get_text_encoder


def test_minilm_loads_offline_and_embeds_meaning():
    enc = get_text_encoder("minilm")
    assert enc is get_text_encoder("minilm")  # loaded once per process
    e = enc.encode(["a person walks forward", "someone is walking ahead", "a man punches with his fist"])
    assert e.shape == (3, 384) and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2  # paraphrases sit closer than other actions
    # padding to the batch's longest text must not change a short text's embedding
    torch.testing.assert_close(enc.encode(["a person walks forward"])[0], e[0], atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="list of texts"):
        enc.encode("a person walks")


def test_embedding_cache_encodes_once_and_persists(tmp_path):
    enc = get_text_encoder("minilm")
    calls = []

    class Counting:
        name, dim = enc.name, enc.dim

        def encode(self, texts):
            calls.append(list(texts))
            return enc.encode(texts)

    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, Counting())
    a = cache(["walk", "run", "walk"])
    assert a.shape == (3, 384) and calls == [["run", "walk"]]
    torch.testing.assert_close(a[0], a[2])
    cache(["run"])
    assert len(calls) == 1
    again = EmbeddingCache(path, Counting())
    np.testing.assert_allclose(again(["walk", "run"]).numpy(), a[:2].numpy())
    assert len(calls) == 1


def test_clip_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("FREE3D_CLIP_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="FREE3D_CLIP_PATH"):
        get_text_encoder("clip")
    with pytest.raises(FileNotFoundError, match="no CLIP weights"):
        get_text_encoder(f"clip:{tmp_path}")
    with pytest.raises(ValueError, match="unknown text encoder"):
        get_text_encoder("bert")
