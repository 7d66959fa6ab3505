"""Text encoders: the bundled all-MiniLM-L6-v2 offline, its sided form, the embedding cache,
CLIP's errors."""

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


def test_sided_minilm_splits_what_a_mirror_keeps_from_what_it_flips():
    sided, plain = get_text_encoder("minilm-sided"), get_text_encoder("minilm")
    texts = ["a person waves the right hand", "a person waves the left hand", "a person walks forward",
             "someone raises his right arm", "a man turns left"]
    e = sided.encode(texts)
    assert e.shape == (5, 768) and sided.dim == 768 and e.dtype == torch.float32
    keep, flip = e[:, :384], e[:, 384:]
    torch.testing.assert_close(keep.norm(dim=-1), torch.ones(5))
    # a mirror keeps the first half and negates the second
    torch.testing.assert_close(keep[0], keep[1])
    torch.testing.assert_close(flip[0], -flip[1])
    # no side named: no side feature, and the first half is the plain embedding
    assert float(flip[2].abs().max()) == 0.0
    torch.testing.assert_close(keep[2], plain.encode([texts[2]])[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(flip[[0, 1, 3, 4]].norm(dim=-1), torch.ones(4))
    # the side is loud: "right" in other words points the same way, "left" the other way
    p = plain.encode(texts[:2])
    assert float(p[0] @ p[1]) > 0.95  # what the plain feature gives the generator to tell them apart
    assert float(flip[0] @ flip[3]) > 0.5 and float(flip[0] @ flip[4]) < -0.3


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
