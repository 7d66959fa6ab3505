"""Training the text-to-token generator (paper section 4.2, MoMask's recipe, DESIGN.md 3).

Tokens come from the trained ML-RQ *encoder applied to the 2D training clips*, so the
generator never sees 3D. (Given MoMask's 3D RVQ-VAE instead, ``rvq3d --input-dim 3``,
the same recipe trains the 3D-supervised baseline on tokens of the 3D clips.) Each clip
is tokenised at 4 frame offsets (MoMask crops a random 0..3 frames before tokenising).
Stages:

- ``masked``: layer-0 tokens. Mask round(n cos(pi tau / 2)) tokens (tau ~ U(0, 1), at
  least one); of those 10% become random tokens, 88% of the rest [MASK], the others stay;
  cross-entropy (label smoothing 0.1) on the masked positions; the text is dropped with
  probability 0.1 for classifier-free guidance.
- ``residual``: layer j from the summed embeddings of layers < j, j in 1..L-1 drawn with a
  bias to low j; the text is dropped with probability 0.2.
- ``length``: the length estimator, cross-entropy on tokens = frames // 4.

AdamW (0.9, 0.99), lr 2e-4 with linear warm-up, x0.1 for the last ``decay_frac`` of the
steps; checkpoints resume; caption embeddings are cached (``free3d.text.cache``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .. import __version__
from ..data.ground_truth import load_motion3d
from ..data.motion2d import load_clip2d
from ..data.prepared import read_captions, read_meta, read_split
from ..models.length_estimator import LengthEstimator
from ..models.masked_transformer import MaskedTransformer
from ..models.residual_transformer import ResidualTransformer
from ..models.token_transformer import TransformerConfig, transformer_preset
from ..representation import to_free3d
from ..text import EmbeddingCache, default_cache_path, get_text_encoder
from .run import RunDir, check_run_folder, resume_from, seed_everything, write_json

STAGES = ("masked", "residual", "length")
COND_DROP = {"masked": 0.1, "residual": 0.2, "length": 0.0}
PRESET_TRAINING = {  # (iters, batch size, warm-up)
    "cpu": dict(iters=4000, batch_size=64, warmup_iters=400),
    "paper": dict(iters=50000, batch_size=64, warmup_iters=2000),
}


@dataclass
class GeneratorTrainConfig:
    stage: str
    data: str
    mlrq: str  # run folder of the trained ML-RQ whose tokens are modelled
    preset: str = "cpu"
    arch: dict = field(default_factory=dict)  # TransformerConfig fields (masked / residual)
    text_encoder: str = "minilm"
    iters: int = 4000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_iters: int = 400
    decay_frac: float = 0.2
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    offsets: int = 4
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorTrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def make_generator_config(stage: str, data: str, mlrq: str, *, preset: str = "cpu",
                          **overrides) -> GeneratorTrainConfig:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    if preset not in PRESET_TRAINING:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESET_TRAINING)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return GeneratorTrainConfig(stage=stage, data=str(data), mlrq=str(mlrq), preset=preset,
                                **{**PRESET_TRAINING[preset], **overrides})


def learning_rate(cfg: GeneratorTrainConfig, step: int) -> float:
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / cfg.warmup_iters
    return cfg.lr * (0.1 if step >= cfg.iters * (1 - cfg.decay_frac) else 1.0)


# ---------------------------------------------------------------------------------------
# data: token sequences of the 2D training clips + their captions


@dataclass
class TokenData:
    codes: list[list[Tensor]]  # per clip, per offset: (n, L) codes
    captions: list[list[str]]
    num_frames: list[int]


def tokeniser_input(lifter, data: str | Path, clip_id: str) -> tuple[Tensor, Tensor]:
    """A clip as ``lifter`` reads it: trajectory (T, D) and limbs (T, K, D).

    An ML-RQ reads the clip's stored single view (D = 2); only MoMask's 3D RVQ-VAE
    (``rvq3d --input-dim 3``, the 3D-supervised baseline) reads the 3D ground truth.
    """
    if lifter.input_dim == 3:
        return to_free3d(torch.from_numpy(load_motion3d(data, clip_id)).float(), lifter.skeleton)
    clip = load_clip2d(data, clip_id)
    return torch.from_numpy(clip.trajectory), torch.from_numpy(clip.limbs)


@torch.no_grad()
def tokenize_clips(lifter, data: str | Path, clip_ids: list[str], offsets: int = 4,
                   progress: bool = True) -> TokenData:
    """Codes (argmax, eval mode) of each clip at frame offsets 0..offsets-1.

    An ML-RQ (2D in) tokenises the 2D clips; only MoMask's 3D RVQ-VAE (``rvq3d
    --input-dim 3``, the 3D-supervised baseline) reads the 3D ground truth.
    """
    lifter.eval()
    down = lifter.downsampling
    codes, captions, frames = [], [], []
    for cid in tqdm(clip_ids, desc="tokenising", unit="clip", disable=not progress):
        traj_all, limbs_all = tokeniser_input(lifter, data, cid)
        num_frames = len(traj_all)
        per_offset = []
        for o in range(offsets):
            n = (num_frames - o) // down * down
            if n < down:
                continue
            traj, limbs = traj_all[o:o + n][None], limbs_all[o:o + n][None]
            per_offset.append(lifter.quantizer(lifter.encode(traj, limbs)).codes[0])
        codes.append(per_offset)
        captions.append(read_captions(data, cid))
        frames.append(num_frames)
    return TokenData(codes, captions, frames)


def pad_codes(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(B, n_max, L) codes padded with -1, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max()), seqs[0].shape[-1]), -1, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


class TokenBatches:
    """Random (codes, lengths, text embedding) batches from tokenised clips."""

    def __init__(self, tokens: TokenData, embed: EmbeddingCache) -> None:
        self.tokens = tokens
        all_caps = sorted({c for caps in tokens.captions for c in caps})
        self.caption_index = {c: i for i, c in enumerate(all_caps)}
        self.embeddings = embed(all_caps)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        pick = torch.randint(len(self.tokens.codes), (batch,), generator=generator).tolist()
        seqs, texts = [], []
        for i in pick:
            versions, caps = self.tokens.codes[i], self.tokens.captions[i]
            seqs.append(versions[int(torch.randint(len(versions), (1,), generator=generator))])
            texts.append(self.caption_index[caps[int(torch.randint(len(caps), (1,), generator=generator))]])
        codes, lengths = pad_codes(seqs)
        return codes, lengths, self.embeddings[texts]


# ---------------------------------------------------------------------------------------
# the three losses


def _subset(mask: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    return mask & (torch.rand(mask.shape, generator=generator) < prob)


def masked_token_loss(model: MaskedTransformer, codes: Tensor, lengths: Tensor, text: Tensor,
                      generator: torch.Generator, label_smoothing: float = 0.1,
                      cond_drop_prob: float = 0.1) -> tuple[Tensor, dict]:
    """MoMask's masked-token objective on layer-0 codes (B, n)."""
    ids = codes[..., 0] if codes.dim() == 3 else codes
    b, n = ids.shape
    pad = torch.arange(n)[None] >= lengths[:, None]
    frac = torch.cos(torch.rand(b, generator=generator) * math.pi / 2)
    num_masked = (lengths * frac).round().clamp(min=1)
    ranks = torch.rand(b, n, generator=generator).masked_fill(pad, 2.0).argsort(1).argsort(1)
    mask = (ranks < num_masked[:, None]) & ~pad
    labels = torch.where(mask, ids, -100)
    randomised = _subset(mask, 0.1, generator)
    masked_out = _subset(mask & ~randomised, 0.88, generator)
    x = torch.where(pad, model.pad_id, ids)
    x = torch.where(randomised, torch.randint(model.config.num_tokens, (b, n), generator=generator), x)
    x = torch.where(masked_out, model.mask_id, x)
    drop = torch.rand(b, generator=generator) < cond_drop_prob
    logits = model(x, model.body.condition(text, drop), pad)
    loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, label_smoothing=label_smoothing)
    acc = (logits.argmax(-1) == ids)[mask].float().mean()
    return loss, {"loss": loss.item(), "acc": acc.item()}


def residual_layer_schedule(b: int, layers: int, generator: torch.Generator) -> Tensor:
    """Layers j in 1..layers-1, biased to low j (MoMask's q_schedule)."""
    u = torch.rand(b, generator=generator)
    return (1 - torch.cos(u * math.pi / 2)).mul(layers - 2).round().long() + 1


def residual_token_loss(model: ResidualTransformer, codes: Tensor, lengths: Tensor, text: Tensor,
                        generator: torch.Generator, label_smoothing: float = 0.1,
                        cond_drop_prob: float = 0.2) -> tuple[Tensor, dict]:
    b, n, layers = codes.shape
    pad = torch.arange(n)[None] >= lengths[:, None]
    layer = residual_layer_schedule(b, layers, generator)
    history = model.history(codes, layer)
    drop = torch.rand(b, generator=generator) < cond_drop_prob
    logits = model(history, layer, model.body.condition(text, drop), pad)
    target = codes.gather(2, layer[:, None, None].expand(b, n, 1)).squeeze(-1)
    labels = torch.where(pad | (target < 0), -100, target)
    loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, label_smoothing=label_smoothing)
    acc = (logits.argmax(-1) == labels)[labels >= 0].float().mean()
    return loss, {"loss": loss.item(), "acc": acc.item()}


def length_loss(model: LengthEstimator, lengths: Tensor, text: Tensor) -> tuple[Tensor, dict]:
    logits = model(text)
    target = lengths.clamp(max=model.max_tokens)
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(-1) == target).float().mean()
    return loss, {"loss": loss.item(), "acc": acc.item()}


# ---------------------------------------------------------------------------------------
# the loop


def build_generator_model(cfg: GeneratorTrainConfig, text_dim: int, num_tokens: int,
                          num_quantizers: int) -> nn.Module:
    if cfg.stage == "length":
        return LengthEstimator(text_dim=text_dim, max_tokens=TransformerConfig().max_tokens)
    arch = TransformerConfig(**cfg.arch)
    return (MaskedTransformer if cfg.stage == "masked" else ResidualTransformer)(arch)


def train_generator(cfg: GeneratorTrainConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Train (or resume) a masked / residual transformer or length estimator in ``out``."""
    from .lifting import load_run

    run = RunDir(out)
    lifter, mlrq_cfg, skeleton = load_run(cfg.mlrq)
    if mlrq_cfg.stage == "prior":
        raise ValueError(f"{cfg.mlrq} is a 2D prior, not an ML-RQ run")
    meta = read_meta(cfg.data)
    if meta["skeleton"] != skeleton.name:
        raise ValueError(f"the ML-RQ is for {skeleton.name}, the data is {meta['skeleton']}")
    encoder = get_text_encoder(cfg.text_encoder)
    if cfg.stage != "length" and not cfg.arch:
        cfg.arch = transformer_preset(
            cfg.preset, num_tokens=lifter.arch.codebook_size, num_quantizers=lifter.arch.num_layers,
            text_dim=encoder.dim, cond_drop_prob=COND_DROP[cfg.stage]).to_dict()
    run_config = {"free3d_version": __version__, "train": cfg.to_dict(),
                  "dataset": {"path": str(cfg.data), "skeleton": skeleton.name, "source": meta.get("source")},
                  "text_encoder": {"name": encoder.name, "dim": encoder.dim}}
    resume = check_run_folder(run, cfg.to_dict(), lambda d: GeneratorTrainConfig.from_dict(d).to_dict(),
                              keep=("iters", "checkpoint_every", "log_every"))
    seed_everything(cfg.seed)
    tokens = tokenize_clips(lifter, cfg.data, read_split(cfg.data, "train"), cfg.offsets, progress)
    run.path.mkdir(parents=True, exist_ok=True)
    batches = TokenBatches(tokens, EmbeddingCache(default_cache_path(encoder.name), encoder))
    model = build_generator_model(cfg, encoder.dim, lifter.arch.codebook_size, lifter.arch.num_layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99),
                                  weight_decay=cfg.weight_decay)
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    start = resume_from(run, model, optimizer, sampler) if resume else 0
    write_json(run.path / "config.json", run_config)
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, desc=f"train {cfg.stage}",
               unit="it", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        codes, lengths, text = batches.sample(cfg.batch_size, sampler)
        if cfg.stage == "masked":
            loss, logs = masked_token_loss(model, codes, lengths, text, sampler, cfg.label_smoothing,
                                           model.config.cond_drop_prob)
        elif cfg.stage == "residual":
            loss, logs = residual_token_loss(model, codes, lengths, text, sampler, cfg.label_smoothing,
                                             model.config.cond_drop_prob)
        else:
            loss, logs = length_loss(model, lengths, text)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; "
                                     f"last checkpoint is kept in {run.path}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.iters:
            run.log({"step": done, "lr": optimizer.param_groups[0]["lr"],
                     "seconds": round(time.perf_counter() - t0, 2),
                     **{k: round(v, 6) for k, v in logs.items()}})
            bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['acc']:.3f}")
        if done % cfg.checkpoint_every == 0 or done == cfg.iters:
            run.save_checkpoint(model, optimizer, done, {"sampler_rng": sampler.get_state()})
    return run.path


def load_generator_part(path: str | Path) -> tuple[nn.Module, GeneratorTrainConfig]:
    """(model in eval mode, config) of a trained masked / residual / length run."""
    from .run import load_weights

    config = RunDir(path).read_config()
    cfg = GeneratorTrainConfig.from_dict(config["train"])
    if cfg.stage not in STAGES:
        raise ValueError(f"{path} is a {cfg.stage} run, not a generator part")
    dim = config["text_encoder"]["dim"]
    arch = TransformerConfig(**cfg.arch) if cfg.arch else TransformerConfig(text_dim=dim)
    model = build_generator_model(cfg, dim, arch.num_tokens, arch.num_quantizers)
    load_weights(Path(path) / "model.safetensors", model)
    return model.eval(), cfg
