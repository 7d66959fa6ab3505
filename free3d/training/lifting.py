"""Training stages of the motion autoencoders (paper sections 4.2, 4.3 and 5.1).

- ``prior``: the 2D motion prior (VQ-VAE, or the VAE / AE ablations) on 2D clips.
- ``mlrq``: the ML-RQ, 2D in, 3D out, trained with the 3D-free losses only.
- ``rvq3d``: the 3D-supervised baseline, the one path that reads 3D: with
  ``input_dim=3`` it is MoMask's RVQ-VAE (3D in, 3D out); with ``input_dim=2`` it is
  the same network lifting 2D to 3D under 3D supervision (the supervised upper bound).

All three share one loop: random fixed-length windows, Adam, linear warm-up, a
pretraining phase and a fine-tuning phase at a lower learning rate, checkpoints that a
restarted run resumes from, a CSV log and a progress bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__, distributed
from ..checkpoints import build_autoencoder, load_autoencoder
from ..data.balance import caption_rarity_weights
from ..data.motion2d import Motion2DDataset
from ..data.prepared import read_meta
from ..device import enable_fast_math, to_device
from ..losses import (
    bone_length_loss,
    cycle_loss,
    depth_isotropy_loss,
    feature_loss,
    floor_loss,
    foot_skate_loss,
    joint_2d_loss,
    knee_hinge_loss,
    limb_proportion_loss,
    loss_2d,
    orientation_loss,
    view_prior_loss,
)
from ..models.autoencoders import ConvVQConfig, Prior2D, get_preset
from ..models.features import encode_motion, floored_std
from ..representation import mirror_motion, to_free3d
from ..skeleton import Skeleton, get_skeleton
from .loop import fit
from .run import (
    RunDir,
    check_run_folder,
    resume_from,
    seed_everything,
    start_fresh,
    write_json,
)

STAGES = ("prior", "mlrq", "rvq3d")


@dataclass
class TrainConfig:
    stage: str
    data: str
    preset: str = "cpu"
    arch: dict = field(default_factory=dict)  # ConvVQConfig fields; filled from the preset
    representation: str = "limbs"  # "joints" (table 5's w.j.c ablation), "limbs-velocity" (ours)
    # prior
    prior_kind: str = "vq"  # "vq" | "vae" | "ae" (table 4)
    # mlrq
    prior: str | None = None  # run folder of the frozen 2D prior
    use_rec: bool = True
    use_ori: bool = True
    use_feat: bool = True
    feat_encoder: str = "shared"  # "shared" (ML-RQ's own E) or "separate" (the prior's E)
    lambda_rec: float = 1.0
    lambda_ori: float = 1.0
    lambda_feat: float = 1.0
    lambda_bone: float = 0.0  # Lbone, our addition (losses.bone_length_loss); 0 = the paper
    lambda_knee: float = 0.0  # Lknee, our addition (losses.knee_hinge_loss); 0 = the paper
    lambda_prop: float = 0.0  # Lprop, our addition (losses.limb_proportion_loss); 0 = the paper
    # L2D's limb units: "limb" = each limb coordinate in its own spread over the data (weighs
    # the still spine over the arms, whose hands then came back 150 mm off in 2D);
    # "shared" = one spread for all limbs, as eq. 10 (unweighted) and the rvq3d loss
    l2d_units: str = "limb"
    # weight of L2D on root-relative joint positions in the shared unit (losses.joint_2d_loss),
    # our addition beside the limb term; 0 = the paper
    lambda_joints2d: float = 0.0
    lambda_iso: float = 0.0  # Liso, our addition (losses.depth_isotropy_loss); 0 = the paper
    lambda_cycle: float = 0.0  # Lcycle, our addition (losses.cycle_loss); 0 = the paper
    cycle_fixed_root: bool = False  # Lcycle does not move the first lift's root (cycle_loss)
    lambda_floor: float = 0.0  # Lfloor, our addition (losses.floor_loss); 0 = the paper
    lambda_skate: float = 0.0  # Lskate, our addition (losses.foot_skate_loss); 0 = the paper
    recipe: str = "paper"  # the named set of ML-RQ terms the run started from (RECIPES)
    beta: float = 2.0  # commitment weight (paper: 2 for ML-RQ; MoMask 0.02)
    max_tilt_deg: float = 10.0
    upright_views: bool = False  # Lrec turns about the body's vertical, not the camera's
    mirror_clips: bool = False  # also train on every clip's mirror image (our addition)
    # rvq3d
    input_dim: int = 3
    # optimisation
    init_from: str | None = None  # start from this run's weights (same stage and sizes)
    iters: int = 3000  # pretraining steps
    finetune_iters: int = 1000  # then fine-tuning steps at finetune_lr
    lr: float = 2e-4
    finetune_lr: float = 2e-5
    warmup_iters: int = 200
    batch_size: int = 64
    window: int = 40
    # > window: each step's windows are window..window_max frames long (one length per step,
    # a multiple of the downsampling; lengths no clip reaches are skipped). A lifter trained
    # on one length learns the edges' effect and lifts long clips wrongly (docs/results.md:
    # travel 29% too long at 120 frames after training at 40); 0 = every window ``window``
    # frames (paper). The free3d recipe's ML-RQ: 3 x window, at half the batch
    window_max: int = 0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    precision: str = "fp32"  # "bf16": autocast on the device (the quantizer stays fp32)
    grad_clip: float = 0.0  # > 0: clip each step's gradient to this global norm (free3d: 1)
    # > 0: every input feature's and L2D unit's std at least this fraction of the median
    # one (models.features.floored_std; free3d recipe and its prior: 0.25); 0 = a 1e-3
    # floor (paper). docs/results.md compares 0, 0.25 and 1
    std_floor: float = 0.0
    # > 0: drop the gradient of a step whose loss is over this many times the recent median
    # (training.loop.fit; ML-RQ losses spike on rare windows, docs/results.md; free3d: 5)
    skip_spikes: float = 0.0
    # > 0: draw clips whose captions few others share more often, weight neighbours ** -balance
    # (free3d.data.balance; 0.5 = square-root balancing); 0 = uniformly over clips (paper)
    balance: float = 0.0

    @property
    def total_iters(self) -> int:
        return self.iters + self.finetune_iters

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("arch"):  # sizes added since a run was saved take their defaults
            d["arch"] = {**ConvVQConfig().to_dict(), **d["arch"]}
        return cls(**d)


# what a resumed run may change: its length, its cadence, its arithmetic
RESUMABLE_CHANGES = ("iters", "finetune_iters", "checkpoint_every", "log_every", "precision")

# training-budget defaults of each preset (the sizes come from models.autoencoders.PRESETS)
PRESET_TRAINING = {
    "cpu": {"batch_size": 64, "window": 40, "iters": 3000, "finetune_iters": 1000,
            "warmup_iters": 200},
    "paper": {"batch_size": 256, "window": 64, "iters": 20000, "finetune_iters": 5000,
              "warmup_iters": 1000},
}


# ML-RQ recipes: named sets of 3D-free terms. "paper" is eq. 15 as published (the
# dataclass defaults); "free3d" adds ours, each of which has an ablation row in
# docs/results.md. Single flags given with a recipe override it.
RECIPES: dict[str, dict] = {
    "paper": {},
    "free3d": {"lambda_cycle": 1.0, "upright_views": True, "lambda_knee": 10.0,
               "lambda_bone": 10.0, "lambda_prop": 10.0, "lambda_joints2d": 4.0,
               "representation": "limbs-velocity", "grad_clip": 1.0,
               "skip_spikes": 5.0, "std_floor": 0.25, "balance": 0.5, "cycle_fixed_root": True},
}


def make_config(stage: str, data: str, *, preset: str = "cpu", arch: dict | None = None,
                recipe: str = "free3d", **overrides) -> TrainConfig:
    """A config with the preset's sizes and budget, the ML-RQ ``recipe`` (RECIPES; other
    stages ignore it), then ``overrides`` (None = keep).

    ``arch`` changes single sizes of the preset (for example ``{"width": 256}``).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {STAGES}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    sizes = get_preset(preset).to_dict()
    unknown = sorted(set(arch or {}) - set(sizes))
    if unknown:
        raise ValueError(f"unknown size(s) {', '.join(unknown)}; choose from {', '.join(sizes)}")
    sizes.update({k: v for k, v in (arch or {}).items() if v is not None})
    smallest = {"width": 1, "code_dim": 1, "num_layers": 1, "codebook_size": 1, "depth": 1, "down": 0}
    small = [f"{k}={sizes[k]}" for k, least in smallest.items() if sizes[k] < least]
    if small:
        raise ValueError(f"sizes must be positive (down at least 0): {', '.join(small)}")
    base = {"stage": stage, "data": str(data), "preset": preset,
            "arch": sizes, **PRESET_TRAINING[preset]}
    if stage in ("prior", "rvq3d"):
        base["beta"] = 0.02  # MoMask's commitment weight for its (3D) RVQ-VAE
        if stage == "prior":  # the prior reads the views ML-RQ makes: the same input units
            base["std_floor"] = RECIPES[recipe].get("std_floor", 0.0)
    else:
        base.update(RECIPES[recipe], recipe=recipe)
    base.update({k: v for k, v in overrides.items() if v is not None})
    if stage == "mlrq" and recipe == "free3d" and overrides.get("window_max") is None:
        # windows of 1 to 3 x the preset's length, half as many: the same frames per step
        base["window_max"] = 3 * base["window"]
        if overrides.get("batch_size") is None:
            base["batch_size"] = max(1, base["batch_size"] // 2)
    cfg = TrainConfig.from_dict(base)
    if cfg.stage == "mlrq" and not cfg.prior and (cfg.use_rec or cfg.feat_encoder == "separate"):
        raise ValueError("ML-RQ training needs --prior (a trained 2D prior run) for Lrec "
                         "or the separate Lfeat encoder")
    return cfg


# ---------------------------------------------------------------------------------------
# data


@dataclass
class ClipArrays:
    """Training clips concatenated along time, for fast vectorised window sampling.

    ``arrays`` may live on a GPU (the Bandai 2D set is tens of MB): windows are then
    gathered there, and only the batch's start frames travel from the host.
    """

    arrays: dict[str, torch.Tensor]
    starts: np.ndarray
    lengths: np.ndarray
    weights: np.ndarray | None = None  # per clip, how often it is drawn (None: uniformly)

    @classmethod
    def stack(cls, clips: list[dict[str, np.ndarray]]) -> ClipArrays:
        lengths = np.array([len(next(iter(c.values()))) for c in clips])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return cls({k: torch.from_numpy(np.concatenate([c[k] for c in clips])) for k in clips[0]},
                   starts, lengths)

    @property
    def device(self) -> torch.device:
        return next(iter(self.arrays.values())).device

    def to(self, device: torch.device | str) -> ClipArrays:
        return ClipArrays({k: v.to(device) for k, v in self.arrays.items()}, self.starts, self.lengths,
                          self.weights)

    def draw(self, batch: int, window: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """First frames and clip indices of ``batch`` random windows (a CPU ``generator``)."""
        ok = np.flatnonzero(self.lengths >= window)
        if self.weights is None:
            pick = ok[torch.randint(len(ok), (batch,), generator=generator).numpy()]
        else:
            w = torch.from_numpy(np.asarray(self.weights, dtype=np.float64)[ok])
            pick = ok[torch.multinomial(w, batch, replacement=True, generator=generator).numpy()]
        room = self.lengths[pick] - window + 1
        offset = (torch.rand(batch, generator=generator).numpy() * room).astype(np.int64)
        return self.starts[pick] + offset, pick

    def sample(self, batch: int, window: int, generator: torch.Generator,
               rows: slice | None = None) -> dict[str, torch.Tensor]:
        """``batch`` random windows (:meth:`draw`); ``rows``: keep only those rows of them
        (this process's share under DDP)."""
        first, _ = self.draw(batch, window, generator)
        first = to_device(torch.from_numpy(first)[rows if rows is not None else slice(None)], self.device)
        idx = first[:, None] + torch.arange(window, device=self.device)
        return {k: v[idx] for k, v in self.arrays.items()}


def _mirrored(clip: dict[str, np.ndarray], skeleton: Skeleton) -> dict[str, np.ndarray]:
    out = {"conf": clip["conf"][:, skeleton.mirror_indices]}
    for d in ("2", "3"):
        if f"traj{d}" in clip:
            traj, limbs = mirror_motion(torch.from_numpy(clip[f"traj{d}"]),
                                        torch.from_numpy(clip[f"limbs{d}"]), skeleton)
            out[f"traj{d}"], out[f"limbs{d}"] = traj.numpy(), limbs.numpy()
    return out


def _caption_embedder():
    """The default text encoder behind the on-disk caption cache (for --balance only)."""
    from ..text import EmbeddingCache, default_cache_path, get_text_encoder

    encoder = get_text_encoder("minilm")
    return EmbeddingCache(default_cache_path(encoder.name), encoder)


def load_training_clips(cfg: TrainConfig, skeleton: Skeleton) -> ClipArrays:
    """2D clips for prior/mlrq; 3D (world or camera frame) and 2D for rvq3d."""
    ds = Motion2DDataset(cfg.data, "train")
    clips = []
    if cfg.stage != "rvq3d":
        for c in ds.clips:
            clips.append({"traj2": c.trajectory, "limbs2": c.limbs, "conf": c.confidence})
    else:
        from ..data.ground_truth import load_camera, load_motion3d, require_3d, world_to_camera

        require_3d(cfg.data, "rvq3d training (3D-supervised)")
        for c in ds.clips:
            j3 = load_motion3d(cfg.data, c.clip_id).astype(np.float64)
            if cfg.input_dim == 2:  # supervised lifting: the 3D target in the 2D's camera frame
                j3 = world_to_camera(j3, load_camera(cfg.data, c.clip_id))
            traj3, limbs3 = to_free3d(torch.from_numpy(j3), skeleton)
            clips.append({"traj2": c.trajectory, "limbs2": c.limbs, "conf": c.confidence,
                          "traj3": traj3.float().numpy(), "limbs3": limbs3.float().numpy()})
    weights = None
    if cfg.balance > 0:  # rare kinds of motion drawn more often (free3d.data.balance)
        weights = caption_rarity_weights([c.captions for c in ds.clips], _caption_embedder(),
                                         power=cfg.balance)
    if cfg.mirror_clips:  # each clip once more, seen in a mirror (a valid body too)
        clips += [_mirrored(c, skeleton) for c in clips]
        weights = None if weights is None else np.concatenate([weights, weights])
    arrays = ClipArrays.stack(clips)
    arrays.weights = weights
    if not (arrays.lengths >= cfg.window).any():
        raise ValueError(f"no training clip is at least {cfg.window} frames long")
    return arrays


# ---------------------------------------------------------------------------------------
# models


def build_model(cfg: TrainConfig, skeleton: Skeleton):
    return build_autoencoder(cfg.to_dict(), skeleton)


def load_run(path: str | Path):
    """(model in eval mode, its TrainConfig, skeleton) from a run folder."""
    model, train, skeleton = load_autoencoder(path)
    return model, TrainConfig.from_dict(train), skeleton


def load_frozen_prior(path: str, skeleton: Skeleton) -> Prior2D:
    prior, cfg, prior_skel = load_run(path)
    if cfg.stage != "prior":
        raise ValueError(f"{path} is a {cfg.stage} run, not a 2D prior")
    if prior_skel.name != skeleton.name:
        raise ValueError(f"the prior at {path} is for skeleton {prior_skel.name}, "
                         f"the data is {skeleton.name}")
    for p in prior.parameters():
        p.requires_grad_(False)
    return prior.eval()


# ---------------------------------------------------------------------------------------
# one step of each stage


L2D_UNITS = ("limb", "shared")


def shared_2d_scale(limb_std: torch.Tensor) -> torch.Tensor:
    """One unit for every 2D coordinate: the root mean square of the limbs' spreads."""
    return limb_std.square().mean().sqrt()


def l2d_limb_scale(limb_std: torch.Tensor, units: str) -> torch.Tensor:
    """(K, 2) divisors of L2D's limb errors: each coordinate's own spread (``limb``), or
    :func:`shared_2d_scale` for all (``shared``), so that a millimetre costs the same on a
    hand as on the spine, as in eq. 10 and the rvq3d loss."""
    if units not in L2D_UNITS:
        raise ValueError(f"unknown L2D units {units!r}; choose from {', '.join(L2D_UNITS)}")
    if units == "limb":
        return limb_std.clone()
    return shared_2d_scale(limb_std).expand_as(limb_std).clone()


def _loss_scales(arrays: ClipArrays, window: int, std_floor: float = 0.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread of 2D limbs and window-relative trajectories (the L2D units)."""
    limbs = arrays.arrays["limbs2"].double()
    g = torch.Generator().manual_seed(0)
    traj = arrays.sample(256, window, g)["traj2"].double()
    traj = traj - traj[:, :1]
    limb_std = floored_std(limbs.flatten(1), std_floor).reshape(limbs.shape[1:])
    return limb_std.float(), floored_std(traj.reshape(-1, 2)).float()


class StageStep(nn.Module):
    """One batch's losses for a stage: forward(batch) -> (total, {name: tensor}).

    The model (and the frozen prior) are submodules, so under DDP this module is what
    ``DistributedDataParallel`` wraps. Logged values stay tensors: reading them would
    make the host wait for the device on every step.
    """

    def __init__(self, cfg: TrainConfig, model, skeleton: Skeleton, arrays: ClipArrays,
                 prior: Prior2D | None) -> None:
        super().__init__()
        self.cfg, self.model, self.skeleton, self.prior = cfg, model, skeleton, prior
        limb_std, traj_std = _loss_scales(arrays, cfg.window, cfg.std_floor)
        self.register_buffer("limb_std", limb_std, persistent=False)
        self.register_buffer("l2d_limb_std", l2d_limb_scale(limb_std, cfg.l2d_units), persistent=False)
        self.register_buffer("traj_std", traj_std, persistent=False)

    def _lift(self, traj2: torch.Tensor, limbs2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(traj2, limbs2)
        return out.trajectory, out.limbs

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, model, s = self.cfg, self.model, self.skeleton
        if cfg.stage == "prior":
            x = model.features(batch["traj2"], batch["limbs2"])
            recon, aux = model.reconstruct(x)
            rec = (recon - x).square().mean()
            total = rec + (cfg.beta * aux if model.kind == "vq" else aux)
            return total, {"loss": total, "rec": rec, "aux": aux}
        if cfg.stage == "rvq3d":
            if cfg.input_dim == 3:
                out = model(batch["traj3"], batch["limbs3"])
            else:
                out = model(batch["traj2"], batch["limbs2"])
            # MoMask's reconstruction loss, on the Free3D representation, in 3D
            limb = (out.limbs - batch["limbs3"]).square().mean()
            traj = ((out.trajectory - out.trajectory[:, :1])
                    - (batch["traj3"] - batch["traj3"][:, :1])).square().mean()
            rec = (limb / self.limb_std.square().mean() + traj / self.traj_std.square().mean())
            total = rec + cfg.beta * out.commit_loss
            return total, {"loss": total, "rec3d": rec, "commit": out.commit_loss,
                           "perplexity": out.perplexity.mean()}
        # ML-RQ: 2D in, 3D out, 3D-free losses only (eq. 9 to 15)
        out = model(batch["traj2"], batch["limbs2"])
        terms = {"l2d": loss_2d(out.trajectory, out.limbs, batch["traj2"], batch["limbs2"],
                                limb_std=self.l2d_limb_std, traj_std=self.traj_std,
                                confidence=batch["conf"], skeleton=s)}
        total = terms["l2d"] + cfg.beta * out.commit_loss
        if cfg.lambda_joints2d > 0:
            terms["l2dj"] = joint_2d_loss(out.limbs, batch["limbs2"], s,
                                          scale=shared_2d_scale(self.limb_std),
                                          confidence=batch["conf"])
            total = total + cfg.lambda_joints2d * terms["l2dj"]
        if cfg.use_rec:
            terms["lrec"] = view_prior_loss(out.trajectory, out.limbs, self.prior, s,
                                            max_tilt_deg=cfg.max_tilt_deg,
                                            upright=cfg.upright_views)
            total = total + cfg.lambda_rec * terms["lrec"]
        if cfg.use_ori:
            terms["lori"] = orientation_loss(out.limbs, s)
            total = total + cfg.lambda_ori * terms["lori"]
        if cfg.use_feat:
            encode = model.encode if cfg.feat_encoder == "shared" else self.prior.encode
            terms["lfeat"] = feature_loss(encode, out.trajectory, out.limbs, batch["traj2"],
                                          batch["limbs2"])
            total = total + cfg.lambda_feat * terms["lfeat"]
        if cfg.lambda_bone > 0:
            terms["lbone"] = bone_length_loss(out.limbs)
            total = total + cfg.lambda_bone * terms["lbone"]
        if cfg.lambda_prop > 0:
            terms["lprop"] = limb_proportion_loss(out.limbs, s)
            total = total + cfg.lambda_prop * terms["lprop"]
        if cfg.lambda_knee > 0:
            terms["lknee"] = knee_hinge_loss(out.limbs, s)
            total = total + cfg.lambda_knee * terms["lknee"]
        if cfg.lambda_iso > 0:
            terms["liso"] = depth_isotropy_loss(out.limbs, s)
            total = total + cfg.lambda_iso * terms["liso"]
        if cfg.lambda_cycle > 0:
            terms["lcycle"] = cycle_loss(self._lift, out.trajectory, out.limbs, s,
                                         limb_scale=self.limb_std.mean(-1),
                                         traj_scale=self.traj_std.mean(),
                                         max_tilt_deg=cfg.max_tilt_deg, upright=cfg.upright_views,
                                         fixed_root=cfg.cycle_fixed_root)
            total = total + cfg.lambda_cycle * terms["lcycle"]
        if cfg.lambda_floor > 0:
            terms["lfloor"] = floor_loss(out.trajectory, out.limbs, s) / self.traj_std.mean().square()
            total = total + cfg.lambda_floor * terms["lfloor"]
        if cfg.lambda_skate > 0:
            terms["lskate"] = foot_skate_loss(out.trajectory, out.limbs, s)
            total = total + cfg.lambda_skate * terms["lskate"]
        return total, {"loss": total, **terms, "commit": out.commit_loss,
                       "perplexity": out.perplexity.mean()}


def learning_rate(cfg: TrainConfig, step: int) -> float:
    if step < cfg.iters:
        return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_iters))
    return cfg.finetune_lr


# ---------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig, out: str | Path, *, progress: bool = True,
          device: str | torch.device = "auto") -> Path:
    """Train (or resume) a run in ``out`` on ``device``; returns the run folder.

    Under ``torchrun`` the processes share the work (``free3d.distributed``):
    ``cfg.batch_size`` is the global batch and rank 0 writes the run folder. Weights and
    checkpoints are saved device-free: a run trained on a GPU loads and resumes on a
    CPU and the other way round.
    """
    ctx = distributed.setup(device)
    device = ctx.device
    enable_fast_math(device, fixed_shapes=not cfg.window_max)  # batch x window frames
    if cfg.batch_size % ctx.world:
        raise ValueError(f"--batch-size {cfg.batch_size} must be a multiple of the "
                         f"{ctx.world} processes")
    run = RunDir(out)
    meta = read_meta(cfg.data)
    skeleton = get_skeleton(meta["skeleton"])
    run_config = {"free3d_version": __version__, "train": cfg.to_dict(),
                  "dataset": {"path": str(cfg.data), "skeleton": skeleton.name,
                              "source": meta.get("source"), "seed": meta.get("seed")}}
    resume = check_run_folder(run, cfg.to_dict(), lambda d: TrainConfig.from_dict(d).to_dict(),
                              keep=RESUMABLE_CHANGES)
    distributed.barrier()  # every rank has looked at the folder before rank 0 writes to it
    seed_everything(cfg.seed)
    arrays = load_training_clips(cfg, skeleton)
    model = build_model(cfg, skeleton)
    prior = load_frozen_prior(cfg.prior, skeleton) if cfg.stage == "mlrq" and cfg.prior else None
    for name, net in (("this model", model), ("the 2D prior", prior)):
        for flag, frames in (("--window", cfg.window), ("--window-max", cfg.window_max)):
            if net is not None and frames % 2 ** net.arch.down:
                raise ValueError(f"{flag} {frames} must be a multiple of {2 ** net.arch.down}, "
                                 f"the temporal downsampling of {name}")
    if cfg.window_max and cfg.window_max < cfg.window:
        raise ValueError(f"--window-max {cfg.window_max} is shorter than --window {cfg.window}")
    if not resume and cfg.init_from:  # weights and normaliser of an earlier run
        init_model, init_cfg, _ = load_run(cfg.init_from)
        # when a code counts as dead only steers training: it may change between the runs
        sizes = lambda arch: {k: v for k, v in arch.items() if k != "dead_code_threshold"}  # noqa: E731
        if (init_cfg.stage, sizes(init_cfg.arch), init_cfg.representation, init_cfg.input_dim) != (
                cfg.stage, sizes(cfg.arch), cfg.representation, cfg.input_dim):
            raise ValueError(f"--init-from {cfg.init_from}: a {init_cfg.stage} run with other sizes "
                             f"or inputs than this {cfg.stage} run")
        model.load_state_dict(init_model.state_dict())
    elif not resume:  # the input normaliser is fitted once, on training data
        fit_batch = arrays.sample(1024, cfg.window, torch.Generator().manual_seed(cfg.seed))
        key = "traj3" if cfg.stage == "rvq3d" and cfg.input_dim == 3 else "traj2"
        limbs = fit_batch["limbs3" if key == "traj3" else "limbs2"]
        model.normalizer.fit(encode_motion(fit_batch[key], limbs, skeleton, cfg.representation),
                             relative_floor=cfg.std_floor)
    step = StageStep(cfg, model, skeleton, arrays, prior).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                 betas=(0.9, 0.99), fused=device.type == "cuda")
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    start = resume_from(run, model, optimizer, sampler, device, total=cfg.total_iters) if resume else 0
    if not resume and ctx.is_main:
        start_fresh(run)
    if ctx.is_main:
        write_json(run.path / "config.json", run_config)
    arrays = arrays.to(device)  # the whole training set on the device; windows are cut there
    rows = ctx.rows(cfg.batch_size)
    # window lengths no clip reaches are never drawn
    lengths = [n for n in range(cfg.window, max(cfg.window, cfg.window_max) + 1, 2 ** model.arch.down)
               if n == cfg.window or (arrays.lengths >= n).any()]

    def next_batch() -> dict[str, torch.Tensor]:
        frames = cfg.window
        if len(lengths) > 1:  # one length for the whole (global) batch, from the run's sampler
            frames = lengths[int(torch.randint(len(lengths), (1,), generator=sampler))]
        return arrays.sample(cfg.batch_size, frames, sampler, rows)

    model.train()
    fit(run=run, ctx=ctx, model=model, step=step, optimizer=optimizer,
        learning_rate=lambda i: learning_rate(cfg, i), next_batch=next_batch,
        sampler=sampler, start=start, total=cfg.total_iters, log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, precision=cfg.precision,
        desc=f"train {cfg.stage}", progress=progress, grad_clip=cfg.grad_clip,
        skip_spikes=cfg.skip_spikes)
    return run.path
