"""``free3d train evaluator``: the text-motion evaluator, trained contrastively on the 3D
ground truth of the training split (evaluation is the one place 3D is used), with
content and style classifiers on the motion embedding.

Loss: symmetric InfoNCE between text and motion embeddings (temperature 0.1), where
other clips with the same labels (or the same caption) are not counted as negatives,
plus cross-entropy of the content and style heads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import __version__, distributed
from ..data.ground_truth import load_motion3d, require_3d
from ..data.prepared import read_captions, read_meta, read_records
from ..device import enable_fast_math, resolve_device
from ..models.evaluator import Evaluator, EvaluatorConfig, pad_joints, position_features
from ..skeleton import get_skeleton
from ..text import EmbeddingCache, default_cache_path, get_text_encoder
from .loop import fit
from .run import RunDir, check_run_folder, resume_from, seed_everything, start_fresh, write_json


@dataclass
class EvaluatorTrainConfig:
    data: str
    stage: str = "evaluator"
    text_encoder: str = "minilm"
    hidden: int = 256
    embed_dim: int = 256
    iters: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    warmup_iters: int = 100
    temperature: float = 0.1
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EvaluatorTrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class LabelledClips:
    joints: list[np.ndarray]
    captions: list[list[str]]
    content: np.ndarray  # label index per clip (-1: none)
    style: np.ndarray


def load_labelled_clips(data: str | Path, split: str, contents: list[str],
                        styles: list[str]) -> LabelledClips:
    records = [r for r in read_records(data) if r.split == split]
    c_index, s_index = {c: i for i, c in enumerate(contents)}, {s: i for i, s in enumerate(styles)}
    return LabelledClips(
        [load_motion3d(data, r.id).astype(np.float32) for r in records],
        [read_captions(data, r.id) for r in records],
        np.array([c_index.get(r.labels.get("content"), -1) for r in records]),
        np.array([s_index.get(r.labels.get("style"), -1) for r in records]))


def contrastive_loss(text: Tensor, motion: Tensor, same: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE; ``same`` (B, B) marks pairs that are not negatives of each other."""
    logits = text @ motion.T / temperature
    eye = torch.eye(len(text), dtype=torch.bool, device=text.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(text), device=text.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class EvaluatorStep(nn.Module):
    """One batch's loss for ``free3d.training.loop.fit``: InfoNCE between the text and
    motion embeddings plus the content and style heads' cross-entropy."""

    def __init__(self, model: Evaluator, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, batch) -> tuple[Tensor, dict[str, Tensor]]:
        cap_emb, joints, lengths, content, style, same = batch
        text = self.model.embed_text(cap_emb)
        raw = self.model.motion_raw(joints, lengths)
        loss = loss_nce = contrastive_loss(text, F.normalize(raw, dim=-1), same, self.temperature)
        logs = {"nce": loss_nce.detach()}
        for name, logits in self.model.classify(raw).items():
            target = content if name == "content" else style
            loss = loss + F.cross_entropy(logits, target, ignore_index=-1)
            logs[f"{name}_acc"] = (logits.argmax(-1) == target)[target >= 0].float().mean()
        return loss, {"loss": loss.detach(), **logs}


def train_evaluator(cfg: EvaluatorTrainConfig, out: str | Path, *, progress: bool = True,
                    device: str | torch.device = "auto") -> Path:
    """Train (or resume) the evaluator in ``out`` on ``device`` (one process: its
    contrastive loss compares every pair in a batch, which DDP's split would cut)."""
    if distributed.launched_by_torchrun():
        raise ValueError("the evaluator trains in one process; run it without torchrun")
    device = resolve_device(device)
    enable_fast_math(device)
    run = RunDir(out)
    meta = read_meta(cfg.data)
    require_3d(cfg.data, "evaluator training")
    skeleton = get_skeleton(meta["skeleton"])
    records = read_records(cfg.data)
    contents = sorted({r.labels["content"] for r in records if r.labels.get("content")})
    styles = sorted({r.labels["style"] for r in records if r.labels.get("style")})
    encoder = get_text_encoder(cfg.text_encoder)
    arch = EvaluatorConfig(num_joints=skeleton.num_joints, text_dim=encoder.dim, hidden=cfg.hidden,
                           embed_dim=cfg.embed_dim, contents=contents, styles=styles)
    resume = check_run_folder(run, cfg.to_dict(), lambda d: EvaluatorTrainConfig.from_dict(d).to_dict(),
                              keep=("iters", "checkpoint_every", "log_every"))
    seed_everything(cfg.seed)
    clips = load_labelled_clips(cfg.data, "train", contents, styles)
    if len(clips.joints) < 2:
        raise ValueError(f"{cfg.data}: the train split needs at least 2 clips")
    run.path.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(default_cache_path(encoder.name), encoder)
    all_caps = sorted({c for caps in clips.captions for c in caps})
    cap_index = {c: i for i, c in enumerate(all_caps)}
    cap_emb = cache(all_caps).to(device)
    model = Evaluator(arch)
    if not resume:
        feats = torch.cat([position_features(torch.from_numpy(j)[None])[0] for j in clips.joints])
        model.normalizer.fit(feats)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    start = resume_from(run, model, optimizer, sampler, device, total=cfg.iters) if resume else 0
    if not resume:
        start_fresh(run)
    write_json(run.path / "config.json", {
        "free3d_version": __version__, "train": cfg.to_dict(), "evaluator": arch.to_dict(),
        "dataset": {"path": str(cfg.data), "skeleton": skeleton.name, "source": meta.get("source")},
        "text_encoder": {"name": encoder.name, "dim": encoder.dim}})
    model.train()

    def next_batch():
        pick = torch.randint(len(clips.joints), (min(cfg.batch_size, len(clips.joints)),),
                             generator=sampler).tolist()
        caps = [clips.captions[i][int(torch.randint(len(clips.captions[i]), (1,), generator=sampler))]
                for i in pick]
        joints, lengths = pad_joints([clips.joints[i] for i in pick])
        content = torch.from_numpy(clips.content[pick]).to(device)
        style = torch.from_numpy(clips.style[pick]).to(device)
        if contents or styles:
            same = (content[:, None] == content[None]) & (style[:, None] == style[None])
        else:
            same = torch.tensor([[a == b for b in caps] for a in caps])
        same = same.to(device) | (torch.tensor(pick)[:, None] == torch.tensor(pick)[None]).to(device)
        return (cap_emb[[cap_index[c] for c in caps]], joints.to(device), lengths.to(device),
                content, style, same)

    def learning_rate(step: int) -> float:  # warm-up, cosine decay
        warm = min(1.0, (step + 1) / cfg.warmup_iters)
        return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * step / cfg.iters))

    fit(run=run, ctx=distributed.Context(device=device), model=model,
        step=EvaluatorStep(model, cfg.temperature), optimizer=optimizer,
        learning_rate=learning_rate, next_batch=next_batch, sampler=sampler, start=start,
        total=cfg.iters, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        desc="train evaluator", progress=progress)
    return run.path
