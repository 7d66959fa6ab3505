"""Training the text-to-token generator (paper section 4.2, MoMask's recipe, DESIGN.md 3).

Tokens come from the trained ML-RQ *encoder applied to the 2D training clips*, so the
generator never sees 3D. By default (``token_view="canonical"``, ours) each clip is first
lifted by the ML-RQ, stood up and seen again from one fixed camera, so that its tokens do
not carry the random camera it was filmed from, which no caption can predict; the 3D
baseline's tokens are of 3D in one canonical frame too. (Given MoMask's 3D RVQ-VAE,
``rvq3d --input-dim 3``, the same recipe trains the 3D-supervised baseline on tokens of
the 3D clips.) Each clip is tokenised at 4 frame offsets (MoMask crops a random 0..3
frames before tokenising). Clips whose captions few others share are drawn more often
(``balance``, :mod:`free3d.data.balance`). ``mirror`` (off by default) adds each clip's
mirror image with its captions' left and right swapped, as HumanML3D does.
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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .. import __version__, distributed
from ..checkpoints import build_generator_part
from ..data.balance import caption_rarity_weights
from ..data.ground_truth import tokeniser_input
from ..data.prepared import read_captions, read_meta, read_split
from ..data.single_view import canonical_view
from ..device import enable_fast_math, to_device
from ..evaluation.lift import lift_clip
from ..models.length_estimator import LengthEstimator
from ..models.masked_transformer import MaskedTransformer
from ..models.residual_transformer import ResidualTransformer
from ..models.token_transformer import transformer_preset
from ..representation import mirror_motion
from ..text import EmbeddingCache, default_cache_path, get_text_encoder
from ..text.mirror import mirror_caption
from .loop import fit
from .run import RunDir, check_run_folder, resume_from, seed_everything, start_fresh, write_json

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
    text_encoder: str = "minilm-sided"  # left and right made loud (free3d.text.encoders)
    iters: int = 4000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_iters: int = 400
    decay_frac: float = 0.2
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    offsets: int = 4
    # which 2D an ML-RQ tokenises: "clip" = each clip's own single view (the paper);
    # "canonical" = the clip lifted, stood up and seen from one fixed camera
    # (free3d.data.single_view.canonical_view), so that tokens do not carry the view
    token_view: str = "canonical"
    # > 0: clips whose captions few others share drawn more often (free3d.data.balance)
    balance: float = 0.5
    # each clip also in a mirror, its captions' left and right swapped (HumanML3D's
    # augmentation; a sentence encoder tells "left" from "right" only faintly). Off: one
    # run with it did not follow "right" better and scored lower (docs/results.md, stop 23)
    mirror: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25
    precision: str = "fp32"  # "bf16": autocast on the device

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorTrainConfig:
        names = {f.name for f in fields(cls)}
        # runs saved before these choices existed: the clip's own view, uniform drawing
        d = {"token_view": "clip", "balance": 0.0, **d}
        return cls(**{k: v for k, v in d.items() if k in names})


TOKEN_VIEWS = ("clip", "canonical")


def make_generator_config(stage: str, data: str, mlrq: str, *, preset: str = "cpu",
                          **overrides) -> GeneratorTrainConfig:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    if preset not in PRESET_TRAINING:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESET_TRAINING)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.get("token_view", "canonical") not in TOKEN_VIEWS:
        raise ValueError(f"unknown token view {overrides['token_view']!r}; "
                         f"choose from {', '.join(TOKEN_VIEWS)}")
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


@torch.no_grad()
def tokenize_clips(lifter, data: str | Path, clip_ids: list[str], offsets: int = 4,
                   progress: bool = True, batch_size: int = 128, view: str = "clip",
                   mirror: bool = False) -> TokenData:
    """Codes (argmax, eval mode) of each clip at frame offsets 0..offsets-1.

    An ML-RQ (2D in) tokenises the 2D clips: with ``view="clip"`` each clip's own view;
    with ``view="canonical"`` the clip lifted by the ML-RQ itself and seen again from
    :data:`~free3d.data.single_view.CANONICAL_CAMERA` (no 3D but the ML-RQ's own).
    ``mirror``: each clip is followed by its mirror image (the lift mirrored before the
    canonical camera sees it; otherwise the input mirrored), captioned by
    :func:`~free3d.text.mirror.mirror_caption`.
    Only MoMask's 3D RVQ-VAE (``rvq3d --input-dim 3``, the 3D-supervised baseline)
    reads the 3D ground truth, whatever ``view`` says. Windows of
    one length go through the network together, ``batch_size`` at a time: in eval mode
    nothing mixes the rows of a batch, and one call per length instead of one per
    window is what makes tokenising fast on a GPU.
    """
    lifter.eval()
    device = next(lifter.parameters()).device
    down = lifter.downsampling
    # one entry per clip (and per mirror image): its captions, frames and windows
    windows, captions, frames = [], [], []  # windows: (entry index, trajectory, limbs)
    sk = lifter.skeleton
    for cid in tqdm(clip_ids, desc="reading clips", unit="clip", disable=not progress):
        traj_all, limbs_all = tokeniser_input(lifter, data, cid)
        texts = read_captions(data, cid)
        versions = [(traj_all, limbs_all)]
        if view == "canonical" and lifter.input_dim == 2:
            lifted = lift_clip(lifter, traj_all, limbs_all, sk).numpy()
            seen = [lifted] + ([lifted[:, sk.mirror_indices] * [-1.0, 1.0, 1.0]] if mirror else [])
            versions = [(torch.from_numpy(v.trajectory), torch.from_numpy(v.limbs))
                        for v in (canonical_view(j, sk) for j in seen)]
        elif mirror:
            versions.append(tuple(mirror_motion(traj_all, limbs_all, sk)))
        for (traj, limbs), caps in zip(versions, (texts, [mirror_caption(c) for c in texts])):
            i = len(captions)
            for o in range(offsets):
                n = (len(traj) - o) // down * down
                if n >= down:
                    windows.append((i, traj[o:o + n], limbs[o:o + n]))
            captions.append(caps)
            frames.append(len(traj))
    by_length: dict[int, list[int]] = {}
    for k, (_, traj, _) in enumerate(windows):
        by_length.setdefault(len(traj), []).append(k)
    found: list[Tensor | None] = [None] * len(windows)
    with tqdm(total=len(windows), desc="tokenising", unit="window", disable=not progress) as bar:
        for ks in by_length.values():
            for start in range(0, len(ks), batch_size):
                chunk = ks[start:start + batch_size]
                traj = torch.stack([windows[k][1] for k in chunk]).to(device)
                limbs = torch.stack([windows[k][2] for k in chunk]).to(device)
                for k, c in zip(chunk, lifter.quantizer(lifter.encode(traj, limbs)).codes.cpu()):
                    found[k] = c
                bar.update(len(chunk))
    codes: list[list[Tensor]] = [[] for _ in captions]
    for (i, _, _), c in zip(windows, found):  # offsets stay in order within a clip
        codes[i].append(c)
    return TokenData(codes, captions, frames)


def pad_codes(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(B, n_max, L) codes padded with -1, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max()), seqs[0].shape[-1]), -1, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


class TokenBatches:
    """Random (codes, lengths, text embedding) batches from tokenised clips.

    Every (clip, offset) code sequence is padded into one tensor on the training
    device, with the caption embeddings; a batch is drawn on the host from a CPU
    generator (the same batches on any device) and gathered on the device.
    """

    def __init__(self, tokens: TokenData, embed: EmbeddingCache,
                 device: torch.device | str = "cpu", balance: float = 0.0) -> None:
        self.tokens, self.device = tokens, torch.device(device)
        # how often each clip is drawn (None: uniformly; free3d.data.balance)
        self.weights = torch.from_numpy(caption_rarity_weights(tokens.captions, embed, power=balance)) \
            if balance > 0 else None
        all_caps = sorted({c for caps in tokens.captions for c in caps})
        self.caption_index = {c: i for i, c in enumerate(all_caps)}
        self.embeddings = embed(all_caps).to(self.device)
        seqs = [v for versions in tokens.codes for v in versions]
        self.codes, self.seq_lengths = pad_codes(seqs)
        self.codes = self.codes.to(self.device)
        self.num_versions = torch.tensor([len(v) for v in tokens.codes])
        self.first_version = torch.cumsum(self.num_versions, 0) - self.num_versions
        caps = [[self.caption_index[c] for c in clip_caps] for clip_caps in tokens.captions]
        self.num_captions = torch.tensor([len(c) for c in caps])
        self.first_caption = torch.cumsum(self.num_captions, 0) - self.num_captions
        self.caption_ids = torch.tensor([c for clip_caps in caps for c in clip_caps])

    def sample(self, batch: int, generator: torch.Generator,
               rows: slice | None = None) -> dict[str, Tensor]:
        """``codes`` (b, n, L) padded with -1 and ``text`` (b, text_dim) on the device,
        ``lengths`` (b,) on the host, for the rows ``rows`` of a global batch; n is the
        global batch's longest, so every process pads alike, and ``global_lengths`` are
        the whole batch's (the masking plans are drawn for it)."""
        if self.weights is None:
            pick = torch.randint(len(self.tokens.codes), (batch,), generator=generator)
        else:
            pick = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        version = self.first_version[pick] + (
            torch.rand(batch, generator=generator) * self.num_versions[pick]).long()
        caption = self.caption_ids[self.first_caption[pick] + (
            torch.rand(batch, generator=generator) * self.num_captions[pick]).long()]
        lengths = self.seq_lengths[version]
        n = int(lengths.max())
        rows = rows if rows is not None else slice(None)
        return {"codes": self.codes[to_device(version[rows], self.device), :n],
                "text": self.embeddings[to_device(caption[rows], self.device)],
                "lengths": lengths[rows], "global_lengths": lengths}


# ---------------------------------------------------------------------------------------
# the three losses
#
# Random choices (which tokens to mask, which layer, which captions to drop) are drawn
# on the host for the whole global batch from the step's CPU generator, then cut to
# this process's rows: the same choices on any device and with any number of processes.


def _subset(mask: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    return mask & (torch.rand(mask.shape, generator=generator) < prob)


def masking_plan(lengths: Tensor, n: int, num_tokens: int, generator: torch.Generator, *,
                 cond_drop_prob: float = 0.1, rows: slice | None = None) -> dict[str, Tensor]:
    """MoMask's masking of layer 0 for a global batch of ``lengths`` (host tensors).

    Mask round(n cos(pi tau / 2)) tokens (at least one); of those 10% become random
    tokens, 88% of the rest [MASK], the others stay; drop the text with
    ``cond_drop_prob``. Returns the rows ``rows`` of pad, mask, randomised, masked_out,
    random_ids (b, n) and drop (b,).
    """
    b = len(lengths)
    pad = torch.arange(n)[None] >= lengths[:, None]
    frac = torch.cos(torch.rand(b, generator=generator) * math.pi / 2)
    num_masked = (lengths * frac).round().clamp(min=1)
    ranks = torch.rand(b, n, generator=generator).masked_fill(pad, 2.0).argsort(1).argsort(1)
    mask = (ranks < num_masked[:, None]) & ~pad
    randomised = _subset(mask, 0.1, generator)
    masked_out = _subset(mask & ~randomised, 0.88, generator)
    random_ids = torch.randint(num_tokens, (b, n), generator=generator)
    drop = torch.rand(b, generator=generator) < cond_drop_prob
    rows = rows if rows is not None else slice(None)
    return {"pad": pad[rows], "mask": mask[rows], "randomised": randomised[rows],
            "masked_out": masked_out[rows], "random_ids": random_ids[rows], "drop": drop[rows]}


def _token_cross_entropy(logits: Tensor, labels: Tensor, label_smoothing: float) -> tuple[Tensor, dict]:
    """Cross-entropy over the scored tokens (``labels`` >= 0) and their accuracy.

    The sum is divided by the count of scored tokens over all processes and scaled by
    their number, so that DDP's gradient average is the gradient of the global batch's
    mean (each process scores a different number of tokens).
    """
    ce = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100,
                         label_smoothing=label_smoothing, reduction="sum")
    scored = labels >= 0
    count = distributed.all_sum(scored.sum()).clamp_min(1)
    loss = ce * distributed.world_size() / count
    hits = ((logits.argmax(-1) == labels) & scored).sum()
    return loss, {"loss": loss, "acc": distributed.all_sum(hits) / count}


def masked_loss_from_plan(model: MaskedTransformer, codes: Tensor, text: Tensor,
                          plan: dict[str, Tensor], label_smoothing: float = 0.1) -> tuple[Tensor, dict]:
    """Cross-entropy on the masked positions of layer-0 codes (b, n[, L]), on the device."""
    ids = codes[..., 0] if codes.dim() == 3 else codes
    plan = {k: to_device(v, ids.device) for k, v in plan.items()}
    mask = plan["mask"]
    labels = torch.where(mask, ids, -100)
    x = torch.where(plan["pad"], model.pad_id, ids)
    x = torch.where(plan["randomised"], plan["random_ids"], x)
    x = torch.where(plan["masked_out"], model.mask_id, x)
    logits = model(x, model.body.condition(text, plan["drop"]), plan["pad"])
    return _token_cross_entropy(logits, labels, label_smoothing)


def masked_token_loss(model: MaskedTransformer, codes: Tensor, lengths: Tensor, text: Tensor,
                      generator: torch.Generator, label_smoothing: float = 0.1,
                      cond_drop_prob: float = 0.1) -> tuple[Tensor, dict]:
    """MoMask's masked-token objective on layer-0 codes (B, n) of one whole batch."""
    plan = masking_plan(lengths.cpu(), codes.shape[1], model.config.num_tokens, generator,
                        cond_drop_prob=cond_drop_prob)
    return masked_loss_from_plan(model, codes, text, plan, label_smoothing)


def residual_layer_schedule(b: int, layers: int, generator: torch.Generator) -> Tensor:
    """Layers j in 1..layers-1, biased to low j (MoMask's q_schedule)."""
    u = torch.rand(b, generator=generator)
    return (1 - torch.cos(u * math.pi / 2)).mul(layers - 2).round().long() + 1


def residual_plan(lengths: Tensor, n: int, layers: int, generator: torch.Generator, *,
                  cond_drop_prob: float = 0.2, rows: slice | None = None) -> dict[str, Tensor]:
    """The layer each row predicts, its padding and text dropout (host tensors, ``rows``)."""
    b = len(lengths)
    pad = torch.arange(n)[None] >= lengths[:, None]
    layer = residual_layer_schedule(b, layers, generator)
    drop = torch.rand(b, generator=generator) < cond_drop_prob
    rows = rows if rows is not None else slice(None)
    return {"pad": pad[rows], "layer": layer[rows], "drop": drop[rows],
            "upto": torch.tensor(int(layer.max()))}


def residual_loss_from_plan(model: ResidualTransformer, codes: Tensor, text: Tensor,
                            plan: dict[str, Tensor], label_smoothing: float = 0.1) -> tuple[Tensor, dict]:
    b, n, _ = codes.shape
    upto = int(plan["upto"])  # a host number: the loop over layers needs no device read
    plan = {k: to_device(v, codes.device) for k, v in plan.items() if k != "upto"}
    layer, pad = plan["layer"], plan["pad"]
    history = model.history(codes, layer, max_layer=upto)
    logits = model(history, layer, model.body.condition(text, plan["drop"]), pad)
    target = codes.gather(2, layer[:, None, None].expand(b, n, 1)).squeeze(-1)
    labels = torch.where(pad | (target < 0), -100, target)
    return _token_cross_entropy(logits, labels, label_smoothing)


def residual_token_loss(model: ResidualTransformer, codes: Tensor, lengths: Tensor, text: Tensor,
                        generator: torch.Generator, label_smoothing: float = 0.1,
                        cond_drop_prob: float = 0.2) -> tuple[Tensor, dict]:
    """MoMask's residual objective: layer j from the summed embeddings of layers < j."""
    plan = residual_plan(lengths.cpu(), codes.shape[1], codes.shape[2], generator,
                         cond_drop_prob=cond_drop_prob)
    return residual_loss_from_plan(model, codes, text, plan, label_smoothing)


def length_loss(model: LengthEstimator, lengths: Tensor, text: Tensor) -> tuple[Tensor, dict]:
    logits = model(text)
    target = to_device(lengths.clamp(max=model.max_tokens), text.device)
    loss = F.cross_entropy(logits.float(), target)
    acc = (logits.argmax(-1) == target).float().mean()
    return loss, {"loss": loss, "acc": acc}


class GeneratorStep(nn.Module):
    """One batch's loss for a generator stage (what DDP wraps)."""

    def __init__(self, stage: str, model: nn.Module, label_smoothing: float) -> None:
        super().__init__()
        self.stage, self.model, self.label_smoothing = stage, model, label_smoothing

    def forward(self, batch: dict) -> tuple[Tensor, dict]:
        if self.stage == "masked":
            return masked_loss_from_plan(self.model, batch["codes"], batch["text"], batch["plan"],
                                         self.label_smoothing)
        if self.stage == "residual":
            return residual_loss_from_plan(self.model, batch["codes"], batch["text"], batch["plan"],
                                           self.label_smoothing)
        return length_loss(self.model, batch["lengths"], batch["text"])


# ---------------------------------------------------------------------------------------
# the loop


def build_generator_model(cfg: GeneratorTrainConfig, text_dim: int) -> nn.Module:
    return build_generator_part(cfg.stage, cfg.arch, text_dim)


def train_generator(cfg: GeneratorTrainConfig, out: str | Path, *, progress: bool = True,
                    device: str | torch.device = "auto") -> Path:
    """Train (or resume) a masked / residual transformer or length estimator in ``out``.

    As ``lifting.train``: any device, DDP under ``torchrun`` (``cfg.batch_size`` is the
    global batch), device-free checkpoints.
    """
    from .lifting import load_run

    ctx = distributed.setup(device)
    device = ctx.device
    enable_fast_math(device)
    if cfg.batch_size % ctx.world:
        raise ValueError(f"--batch-size {cfg.batch_size} must be a multiple of the "
                         f"{ctx.world} processes")
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
    if cfg.stage != "length" and cfg.arch.get("text_dim", encoder.dim) != encoder.dim:
        raise ValueError(f"the transformer's text_dim {cfg.arch['text_dim']} does not match the text "
                         f"encoder {encoder.name!r} ({encoder.dim}-d)")
    run_config = {"free3d_version": __version__, "train": cfg.to_dict(),
                  "dataset": {"path": str(cfg.data), "skeleton": skeleton.name, "source": meta.get("source")},
                  "text_encoder": {"name": encoder.name, "dim": encoder.dim}}
    resume = check_run_folder(run, cfg.to_dict(), lambda d: GeneratorTrainConfig.from_dict(d).to_dict(),
                              keep=("iters", "checkpoint_every", "log_every", "precision"))
    distributed.barrier()  # every rank has looked at the folder before rank 0 writes to it
    seed_everything(cfg.seed)
    tokens = tokenize_clips(lifter.to(device), cfg.data, read_split(cfg.data, "train"), cfg.offsets,
                            progress and ctx.is_main,
                            view=cfg.token_view if cfg.stage != "length" else "clip",  # lengths only
                            mirror=cfg.mirror and cfg.stage != "length")
    if ctx.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
    batches = TokenBatches(tokens, EmbeddingCache(default_cache_path(encoder.name), encoder), device,
                           balance=cfg.balance)
    model = build_generator_model(cfg, encoder.dim)
    del lifter
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99),
                                  weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    start = resume_from(run, model, optimizer, sampler, device, total=cfg.iters) if resume else 0
    if not resume and ctx.is_main:
        start_fresh(run)
    if ctx.is_main:
        write_json(run.path / "config.json", run_config)
    rows = ctx.rows(cfg.batch_size)

    def next_batch() -> dict:
        batch = batches.sample(cfg.batch_size, sampler, rows)
        _, n, layers = batch["codes"].shape
        if cfg.stage == "masked":
            batch["plan"] = masking_plan(batch["global_lengths"], n, model.config.num_tokens, sampler,
                                         cond_drop_prob=model.config.cond_drop_prob, rows=rows)
        elif cfg.stage == "residual":
            batch["plan"] = residual_plan(batch["global_lengths"], n, layers, sampler,
                                          cond_drop_prob=model.config.cond_drop_prob, rows=rows)
        return batch

    model.train()
    fit(run=run, ctx=ctx, model=model, step=GeneratorStep(cfg.stage, model, cfg.label_smoothing),
        optimizer=optimizer, learning_rate=lambda i: learning_rate(cfg, i), next_batch=next_batch,
        sampler=sampler, start=start, total=cfg.iters, log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, precision=cfg.precision, desc=f"train {cfg.stage}",
        progress=progress)
    return run.path
