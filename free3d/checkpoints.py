"""Trained parts in their folders: ``config.json`` beside ``model.safetensors``.

Everything that *uses* a trained model (``Free3D``, the evaluation) loads it through
this module, which builds each network from the settings its run saved. Training
(``free3d.training``) writes these folders and reads them back through here too, so
both sides agree on the layout and inference never imports training code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .models.autoencoders import ConvVQConfig, MotionLifter, Prior2D
from .models.evaluator import Evaluator, EvaluatorConfig
from .models.length_estimator import LengthEstimator
from .models.masked_transformer import MaskedTransformer
from .models.residual_transformer import ResidualTransformer
from .models.token_transformer import TransformerConfig
from .skeleton import Skeleton, get_skeleton

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
AUTOENCODER_STAGES = ("prior", "mlrq", "rvq3d")
GENERATOR_STAGES = ("masked", "residual", "length")


def read_config(folder: str | os.PathLike) -> dict:
    """A run folder's config.json (its train settings, dataset, text encoder)."""
    p = Path(folder) / CONFIG
    if not p.is_file():
        raise FileNotFoundError(f"{folder} is not a free3d run (no {CONFIG})")
    try:
        config = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p} is corrupt: {e}") from None
    if not isinstance(config, dict) or not isinstance(config.get("train"), dict):
        raise ValueError(f"{p} is corrupt: not a free3d run config (no \"train\" settings)")
    return config


def load_weights(path: str | os.PathLike, model: nn.Module) -> None:
    """``path``'s weights into ``model``: finite, of the model's shapes, nothing missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path}: cannot read the weights ({e})") from None
    # a diverged or damaged file would load and give finite-looking garbage (all tokens 0)
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values "
                         f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the file is damaged "
                         "or from a run that diverged")
    own = model.state_dict()
    wrong = [(k, tuple(t.shape), tuple(own[k].shape)) for k, t in tensors.items()
             if k in own and t.shape != own[k].shape]
    if wrong:  # (load_state_dict would raise a long size-mismatch RuntimeError)
        k, file_shape, model_shape = wrong[0]
        raise ValueError(f"{path}: weights do not match the model its config.json builds ({k} is "
                         f"{file_shape} in the file, {model_shape} in the model); was it trained with "
                         "another config or skeleton?")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}); was it trained with another config?")


def skeleton_of(config: dict, folder: str | os.PathLike) -> Skeleton:
    try:
        return get_skeleton(config["dataset"]["skeleton"])
    except (KeyError, TypeError) as e:  # an unknown name, or no dataset entry
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise ValueError(f"{Path(folder) / CONFIG}: {msg}") from None


def build_autoencoder(train: dict, skeleton: Skeleton) -> Prior2D | MotionLifter:
    """The network a prior / mlrq / rvq3d run's train settings describe (untrained)."""
    arch = ConvVQConfig(**train["arch"])
    representation = train.get("representation", "limbs")
    if train["stage"] == "prior":
        return Prior2D(skeleton=skeleton, arch=arch, kind=train.get("prior_kind", "vq"),
                       representation=representation)
    input_dim = 2 if train["stage"] == "mlrq" else train.get("input_dim", 3)
    return MotionLifter(skeleton=skeleton, arch=arch, input_dim=input_dim,
                        representation=representation)


def load_autoencoder(folder: str | os.PathLike) -> tuple[Prior2D | MotionLifter, dict, Skeleton]:
    """(model in eval mode, its train settings, skeleton) of a prior / mlrq / rvq3d run."""
    config = read_config(folder)
    train = config["train"]
    if train.get("stage") not in AUTOENCODER_STAGES:
        raise ValueError(f"{folder} is a {train.get('stage')} run, not a prior, ML-RQ or RVQ-VAE")
    skeleton = skeleton_of(config, folder)
    model = build_autoencoder(train, skeleton)
    load_weights(Path(folder) / WEIGHTS, model)
    return model.eval(), train, skeleton


def build_generator_part(stage: str, arch: dict, text_dim: int) -> nn.Module:
    """An untrained masked / residual transformer or length estimator."""
    if stage == "length":
        return LengthEstimator(text_dim=text_dim, max_tokens=TransformerConfig().max_tokens)
    config = TransformerConfig(**arch) if arch else TransformerConfig(text_dim=text_dim)
    return (MaskedTransformer if stage == "masked" else ResidualTransformer)(config)


def load_generator_part(folder: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(model in eval mode, its train settings) of a masked / residual / length run."""
    config = read_config(folder)
    train = config["train"]
    if train.get("stage") not in GENERATOR_STAGES:
        raise ValueError(f"{folder} is a {train.get('stage')} run, not a generator part")
    model = build_generator_part(train["stage"], train.get("arch") or {}, config["text_encoder"]["dim"])
    load_weights(Path(folder) / WEIGHTS, model)
    return model.eval(), train


def load_evaluator(folder: str | os.PathLike) -> tuple[Evaluator, dict]:
    """(evaluator in eval mode, its run config) from a run or bundled folder."""
    config = read_config(folder)
    if config["train"].get("stage") != "evaluator":
        raise ValueError(f"{folder} is not an evaluator run")
    model = Evaluator(EvaluatorConfig(**config["evaluator"]))
    load_weights(Path(folder) / WEIGHTS, model)
    return model.eval(), config
