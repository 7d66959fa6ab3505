"""The Python API: text in, 3D motion out.

    from free3d import Free3D
    model = Free3D.from_pretrained()            # the bundled model, on CUDA when present
    motions = model.generate(["a tired person walks forward"], seconds=4, seed=0, num_samples=3)
    motions[0].joints                            # (80, 21, 3) metres, Y up, 20 fps
    edited = model.edit(motions[0], 1.0, 2.5, "a person jumps")

A model folder holds the four trained parts (``mlrq``, ``masked``, ``residual``,
``length``; each its config.json + model.safetensors) and ``generator.json``, which names
the text encoder and the default sampling settings.

Weights are stored device-free (CPU tensors) and moved to the chosen device on loading
(``from_pretrained(device="cpu")`` to choose); results always come back as NumPy arrays.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .checkpoints import CONFIG, load_autoencoder, load_generator_part, read_config
from .data.canonical import FPS, MAX_FRAMES, MIN_FRAMES, upright_transform
from .data.single_view import CANONICAL_CAMERA, project_clip
from .device import resolve_device, tf32_scope
from .foot_lock import lock_feet
from .grounding import ground
from .ik import with_bone_lengths
from .models.autoencoders import MotionLifter
from .models.length_estimator import LengthEstimator
from .models.masked_transformer import MaskedTransformer
from .models.residual_transformer import ResidualTransformer
from .precision import auto_precision_for
from .representation import from_free3d, to_free3d
from .sampling import SamplingConfig, sample_base_tokens, sample_residual_tokens
from .skeleton import Skeleton
from .text import TextEncoder, get_text_encoder

DEFAULT_MODEL = Path(__file__).parent / "pretrained" / "bandai21-cpu"
MANIFEST = "generator.json"
PARTS = ("mlrq", "masked", "residual", "length")
MIN_SECONDS, MAX_SECONDS = MIN_FRAMES / FPS, MAX_FRAMES / FPS


PRECISIONS = ("auto", "fp32", "bf16")


class ModelError(RuntimeError):
    """A model folder that is missing, incomplete or corrupt."""


@dataclass
class Motion:
    """One generated (or edited) motion."""

    joints: np.ndarray  # (T, J, 3) metres, Y up, 20 fps, floor at y = 0
    skeleton: Skeleton
    text: str
    seed: int
    codes: np.ndarray  # (ceil(T / 4), L) ML-RQ tokens it decodes from (what edit() starts from)
    # (A, t): joints = decoded @ A.T + t, before grounding and foot locking
    frame: tuple[np.ndarray, np.ndarray]
    fps: float = FPS

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def save_bvh(self, path: str | os.PathLike) -> Path:
        """Write the motion as BVH (centimetres, Y up; see free3d.export.bvh)."""
        from .export.bvh import write_bvh

        return write_bvh(path, self.joints, self.skeleton, fps=self.fps)


def seconds_to_frames(seconds: float | str) -> int:
    """A length in seconds (number or numeric string) -> frames at 20 fps, checked."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"length {seconds!r} is not a number of seconds") from None
    if not math.isfinite(value) or not MIN_SECONDS - 1e-9 <= value <= MAX_SECONDS + 1e-9:
        raise ValueError(f"length {seconds} s is outside {MIN_SECONDS:g} to {MAX_SECONDS:g} s")
    return min(max(round(value * FPS), MIN_FRAMES), MAX_FRAMES)


MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds; a signed range keeps them portable


def check_seed(seed: object, count: int = 1, label: str = "seed") -> int:
    """``seed`` checked: a whole number such that ``seed .. seed + count - 1`` are all valid seeds."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{label} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if not 0 <= seed <= MAX_SEED - (count - 1):
        uses = f"{count} samples use seeds {seed} to {seed + count - 1}, and " if count > 1 else ""
        raise ValueError(f"{label} {seed} is out of range: {uses}seeds run from 0 to {MAX_SEED}")
    return int(seed)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a batch on ``device`` now (None when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:  # MemAvailable counts the page cache the kernel can give back
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_prompt(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty prompt: describe the motion, e.g. 'a person walks forward'")
    return text.strip()


class Free3D:
    """A text-to-motion generator on one device.

    ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; the parts
    are moved there (in place). ``precision``: ``fp32``, ``bf16`` (transformer weights
    in bfloat16) or ``auto``: on CUDA fp32 weights with TF32 matmuls (resolved as
    ``tf32``), on the CPU bf16 where the CPU computes it natively, else fp32.
    ``fix_bone_lengths``: decoded bodies get the skeleton's bone lengths, each hand and
    foot kept where the decoder put it (:func:`free3d.ik.with_bone_lengths`).
    ``ground``: every decoded frame is stood on the floor, not only the lowest one
    (:func:`free3d.grounding.ground`); False keeps the decoder's own vertical path.
    """

    def __init__(self, *, lifter: MotionLifter, masked: MaskedTransformer, residual: ResidualTransformer,
                 length_estimator: LengthEstimator, text_encoder: TextEncoder,
                 sampling: SamplingConfig | None = None, precision: str = "auto",
                 fix_bone_lengths: bool = True, ground: bool = True,
                 device: str | torch.device = "auto") -> None:
        if masked.config.num_tokens != lifter.arch.codebook_size or \
                residual.config.num_quantizers != lifter.arch.num_layers:
            raise ValueError("the transformers were built for another ML-RQ (codebook size or layers differ)")
        if masked.config.text_dim != text_encoder.dim:
            raise ValueError(f"the transformers expect {masked.config.text_dim}-d text features, the "
                             f"text encoder {text_encoder.name!r} gives {text_encoder.dim}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = resolve_device(device)
        if precision == "auto" and self.device.type == "cuda":
            precision = "tf32"  # fp32 weights, TF32 matmuls: near-fp32 samples, fast on any recent GPU
        if precision == "auto":
            precision = auto_precision_for(masked.config)  # bf16 only where measured faster
        parts = (lifter, masked, residual)
        self.lifter, self.masked, self.residual = (m.eval().to(self.device) for m in parts)
        if precision == "bf16":  # weights cast (not autocast, which turns off the fused inference path)
            self.masked.to(torch.bfloat16)
            self.residual.to(torch.bfloat16)
        self.length_estimator = length_estimator.eval().to(self.device)
        # the encoder may stay elsewhere (a shared CPU one): its embeddings are moved here
        self.text_encoder, self.skeleton = text_encoder, lifter.skeleton
        self.sampling = sampling or SamplingConfig()
        self.precision, self.fix_bone_lengths = precision, fix_bone_lengths  # the resolved precision
        self.ground = ground

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, *, text_encoder: str | None = None,
                        device: str | torch.device = "auto", **kwargs) -> Free3D:
        """Load a model folder; ``None`` or ``"default"`` is the bundled model (bandai21-cpu).

        ``device``: where it computes (``auto``: CUDA when present); the weights on disk
        are CPU tensors, so a folder trained anywhere loads anywhere. ``kwargs`` go to
        the constructor (``precision=...``).
        """
        device = resolve_device(device)  # a bad or absent device fails before any loading
        root = DEFAULT_MODEL if path in (None, "default") else Path(path)
        manifest = read_manifest(root)
        sampling = manifest_sampling(root, manifest)
        try:
            check_part_skeletons(root, manifest["skeleton"])
            lifter, _, _ = load_autoencoder(root / "mlrq")
            masked, _ = load_generator_part(root / "masked")
            residual, _ = load_generator_part(root / "residual")
            length, _ = load_generator_part(root / "length")
        except (OSError, ValueError, KeyError, RuntimeError) as e:  # safetensors raises several
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise ModelError(f"cannot load the model in {root}: {msg}") from e
        encoder = get_text_encoder(text_encoder or manifest["text_encoder"], device=device)
        return cls(lifter=lifter, masked=masked, residual=residual, length_estimator=length,
                   text_encoder=encoder, sampling=sampling, device=device, **kwargs)

    # ---------------------------------------------------------------------------- generate

    def generate(self, texts: str | list[str], seconds: float | list[float | None] | None = None, *,
                 seed: int = 0, num_samples: int = 1, foot_lock: bool = True,
                 **sampling) -> list[Motion]:
        """3D motions for each prompt, ``num_samples`` each (prompt-major order).

        ``foot_lock``: pin planted feet to the floor (:mod:`free3d.foot_lock`); False gives
        the model's own output (what ``free3d eval generation`` scores).

        ``seconds``: one length for all, one per prompt, or None for the length
        estimator to choose (2 to 9.8 s). Sample k of every prompt uses seed ``seed + k``;
        the same prompt, length and seed give the same motion (whatever else is batched,
        up to float rounding; ``precision="fp32"`` for the same samples on every machine).
        ``sampling`` overrides :class:`SamplingConfig` fields (guidance=..., ...).
        """
        if isinstance(texts, str):
            texts = [texts]
        elif not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a prompt or a list of prompts, got {type(texts).__name__}")
        if not texts:
            raise ValueError("no prompts given")
        texts = [check_prompt(t) for t in texts]
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        seed = check_seed(seed, int(num_samples))
        lengths = seconds if isinstance(seconds, (list, tuple)) else [seconds] * len(texts)
        if len(lengths) != len(texts):
            raise ValueError(f"{len(lengths)} lengths for {len(texts)} prompts")
        frames = [None if s is None else seconds_to_frames(s) for s in lengths]
        config = self._sampling_config(sampling)
        # before any allocation: a batch far beyond memory would crash deep inside torch
        self.check_batch(len(texts) * num_samples, max(MAX_FRAMES if f is None else f for f in frames),
                         label=f"num_samples={num_samples} for {len(texts)} prompt(s)")

        rows = [(p, k) for p in range(len(texts)) for k in range(num_samples)]
        # CPU generators on every device (their draws are moved): a seed means the same noise everywhere
        gens = [torch.Generator().manual_seed(seed + k) for _, k in rows]
        with self._compute():
            emb = self.encode_text(texts)[[p for p, _ in rows]]
            row_frames = [frames[p] for p, _ in rows]
            for i, f in enumerate(row_frames):
                if f is None:
                    row_frames[i] = 4 * self._estimate_tokens(emb[i:i + 1], gens[i])
            tokens = torch.tensor([math.ceil(f / 4) for f in row_frames])
            codes = self._sample(emb, tokens, gens, config)
            raws = self._decode(codes, tokens)
        motions = []
        for (p, k), raw, f, c, n in zip(rows, raws, row_frames, codes, tokens):
            raw = raw[:f]
            rot, t = upright_transform(raw, self.skeleton)
            joints = self._grounded(raw @ rot.T + t)
            if foot_lock:
                joints = lock_feet(joints, self.skeleton)
            motions.append(Motion(joints, self.skeleton, texts[p], seed + k, c[:n].numpy(), (rot, t)))
        return motions

    def bytes_per_sample(self, frames: int = MAX_FRAMES) -> int:
        """A generous estimate of one motion's peak memory while it is sampled and decoded.

        Sampling holds (both guidance branches of) float32 logits over the codebook for
        every token, and about a dozen temporaries of that size (guidance mix, top-k,
        Gumbel noise, softmax); the transformers' activations and the decoder's come on top.
        Measured on the bundled model: 1 to 2.5 MB at 9.8 s, estimated here as about 3.5 MB.
        """
        cfg = self.masked.config
        n = math.ceil(frames / 4) + 1  # tokens and the text prefix
        logits = 4 * n * cfg.num_tokens
        layers = 2 * 4 * n * (4 * cfg.latent_dim + cfg.ff_dim) + 2 * 4 * cfg.num_heads * n * n
        decoder = 4 * frames * (8 * self.lifter.arch.width + 12 * self.skeleton.num_joints)
        return 16 * logits + layers + decoder

    def max_batch(self, frames: int = MAX_FRAMES) -> tuple[int, int | None]:
        """(most motions of ``frames`` frames that one call may sample, the free bytes it follows from).

        Half the memory free on this model's device now (the rest is left for everything
        else), at least 64 motions (a small call is never refused on a guess).
        """
        free = available_memory(self.device)
        if free is None:
            return 1 << 62, None
        return max(64, free // 2 // self.bytes_per_sample(frames)), free

    def check_batch(self, count: int, frames: int = MAX_FRAMES, label: str = "num_samples") -> None:
        """A ValueError naming ``label`` when ``count`` motions of ``frames`` frames would not fit."""
        limit, free = self.max_batch(frames)
        if count > limit:
            each = self.bytes_per_sample(frames)
            where = "this machine" if self.device.type == "cpu" else str(self.device)
            raise ValueError(
                f"{label}: {count} motions of {frames / FPS:g} s in one call would need about "
                f"{format_bytes(count * each)} of memory ({format_bytes(each)} each), and "
                f"{where} has {format_bytes(free)} free: at most {limit} per call here, so ask for "
                "fewer or split them over several calls")

    @torch.inference_mode()
    def reconstruct(self, trajectory: np.ndarray, limbs: np.ndarray) -> np.ndarray:
        """The tokeniser's round trip of one clip, post-processed exactly like generated motion.

        Input in the tokeniser's own representation: for the ML-RQ a single-view 2D clip,
        trajectory (T, 2) and limbs (T, K, 2) as stored in ``motion2d/``; for a 3D RVQ-VAE
        (the 3D-supervised baseline) trajectory (T, 3) and limbs (T, K, 3). Returns canonical
        (T, J, 3) joints. Scoring these shows what the decoder alone allows any generator
        built on it (MoMask reports its RVQ-VAE's reconstruction the same way).
        """
        trajectory, limbs = np.asarray(trajectory, np.float32), np.asarray(limbs, np.float32)
        dim = self.lifter.input_dim
        if trajectory.ndim != 2 or trajectory.shape[1] != dim or limbs.shape != (
                len(trajectory), self.skeleton.num_joints - 1, dim):
            raise ValueError(f"this tokeniser reads {dim}D: trajectory (T, {dim}) and limbs "
                             f"(T, {self.skeleton.num_joints - 1}, {dim}); got {trajectory.shape} "
                             f"and {limbs.shape}")
        with self._compute():
            codes = self.lifter.tokenize(torch.from_numpy(trajectory)[None].to(self.device),
                                         torch.from_numpy(limbs)[None].to(self.device))
            raw = self._decode(codes, torch.tensor([codes.shape[1]]))[0][:len(trajectory)]
        rot, t = upright_transform(raw, self.skeleton)
        return self._grounded(raw @ rot.T + t)

    def edit(self, motion: Motion | np.ndarray, start_s: float, end_s: float, text: str, *,
             seed: int = 0, **sampling) -> Motion:
        """Regenerate [start_s, end_s) of ``motion`` from ``text``; frames outside stay exactly.

        ``motion`` is a :class:`Motion` or any (T, J, 3) clip on this skeleton (metres,
        Y up), which is first tokenised through the canonical view and the ML-RQ. The new
        span's joins to the kept frames are made continuous by spreading the decoder's
        mismatch at the two boundary frames linearly across the span.
        """
        text = check_prompt(text)
        config = self._sampling_config(sampling)
        seed = check_seed(seed)
        # every check before the clip is tokenised: a bad clip or span is one clear error
        joints = self._check_clip(motion.joints if isinstance(motion, Motion) else motion)
        n_frames = len(joints)
        try:
            start_s, end_s = float(start_s), float(end_s)
        except (TypeError, ValueError):
            raise ValueError(f"span {start_s!r}..{end_s!r} is not numbers of seconds") from None
        if not 0 <= start_s < end_s <= n_frames / FPS + 1e-9:
            raise ValueError(f"span {start_s:g}..{end_s:g} s is not inside the motion "
                             f"(0..{n_frames / FPS:g} s)")
        if isinstance(motion, Motion):
            codes, frame = torch.from_numpy(motion.codes), motion.frame
        else:
            try:
                with self._compute():
                    codes, frame = self._tokenize(joints)
            except ValueError as e:  # e.g. a clip whose torso projects to a point
                raise ValueError(f"motion: {e}") from None
        f0, f1 = int(math.floor(start_s * FPS)), min(n_frames, int(math.ceil(end_s * FPS)))
        t0, t1 = f0 // 4, math.ceil(f1 / 4)
        known = codes.clone()[None]
        known[:, t0:t1] = -1
        tokens = torch.tensor([len(codes)])
        gen = [torch.Generator().manual_seed(seed)]
        with self._compute():
            emb = self.encode_text([text])
            new_codes = self._sample(emb, tokens, gen, config, known=known)
            raw = self._decode(new_codes, tokens)[0][:n_frames]
        # levelled frame by frame but left at its height: the joins below meet the kept frames
        new = self._grounded(raw @ frame[0].T + frame[1], keep_level=True)
        out = joints.copy()
        out[f0:f1] = _join(joints, new, f0, f1)
        return Motion(out, self.skeleton, text, seed, new_codes[0].numpy(), frame)

    # ------------------------------------------------------------------------------ pieces

    def _check_clip(self, motion: object) -> np.ndarray:
        """A clip to edit as (T, J, 3) float64, checked: shape, finite, a length the model knows."""
        try:
            joints = np.asarray(motion, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"motion must be (T, {self.skeleton.num_joints}, 3) joint positions, "
                             f"got {type(motion).__name__}") from None
        if joints.ndim != 3 or joints.shape[1:] != (self.skeleton.num_joints, 3):
            raise ValueError(f"motion must be (T, {self.skeleton.num_joints}, 3) joints of "
                             f"{self.skeleton.name}, got {joints.shape}")
        # the transformers know 2 to 9.8 s (their position table); outside it they fail in tokens
        longest = min(MAX_FRAMES, 4 * self.masked.config.max_tokens)
        if not MIN_FRAMES <= len(joints) <= longest:
            raise ValueError(f"motion is {len(joints) / FPS:g} s long ({len(joints)} frames at {FPS:g} fps); "
                             f"this model edits clips of {MIN_SECONDS:g} to {longest / FPS:g} s")
        if not np.isfinite(joints).all():
            raise ValueError("motion has NaN or infinite joint positions")
        return joints

    def _grounded(self, joints: np.ndarray, *, keep_level: bool = False) -> np.ndarray:
        """An upright decoded clip with each frame on the floor, when ``ground`` is on
        (``keep_level``: on the floor's lowest height in the clip, not at y = 0)."""
        if not self.ground:
            return joints
        out = ground(joints)
        return out + np.array([0.0, (joints - out)[:, 0, 1].min(), 0.0]) if keep_level else out

    def _sampling_config(self, overrides: dict) -> SamplingConfig:
        unknown = sorted(set(overrides) - set(self.sampling.to_dict()))
        if unknown:
            raise ValueError(f"unknown sampling option(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(self.sampling.to_dict())}")
        return replace(self.sampling, **overrides)

    def encode_text(self, texts: list[str]) -> Tensor:
        """(N, dim) float32 text embeddings on this model's device."""
        return self.text_encoder.encode(texts).to(self.device)

    def _compute(self) -> AbstractContextManager[None]:
        """TF32 on CUDA unless the precision is ``fp32`` (then IEEE fp32, whatever the global flags).

        (``enable_fast_math``'s cudnn benchmark stays off: it would re-tune the decoder's
        convolutions for every new motion length.)
        """
        return tf32_scope(self.device, enabled=self.precision != "fp32")

    @torch.inference_mode()
    def _estimate_tokens(self, emb: Tensor, gen: torch.Generator) -> int:
        # drawn on the CPU with the sample's CPU generator: the same length on every device
        logits = self.length_estimator(emb)[0].float().cpu()
        lo, hi = MIN_FRAMES // 4, MAX_FRAMES // 4
        allowed = torch.full_like(logits, float("-inf"))
        allowed[lo:hi + 1] = 0.0
        probs = (logits + allowed).softmax(-1)
        return int(torch.multinomial(probs, 1, generator=gen))

    @torch.inference_mode()
    def _sample(self, emb: Tensor, tokens: Tensor, gens: list[torch.Generator], config: SamplingConfig,
                known: Tensor | None = None) -> Tensor:
        """Codes (B, n, L) on the CPU, sampled on this model's device."""
        tokens = tokens.to(self.device)
        known = None if known is None else known.to(self.device)
        base = sample_base_tokens(self.masked, emb, tokens, config, gens,
                                  None if known is None else known[..., 0])
        return sample_residual_tokens(self.residual, base, emb, tokens, config, gens, known).cpu()

    @torch.inference_mode()
    def _decode(self, codes: Tensor, tokens: Tensor) -> list[np.ndarray]:
        """Codes (B, n, L) on any device -> per sample raw (4 n_b, J, 3) joints in the model's frame."""
        out: list[np.ndarray | None] = [None] * len(codes)
        tokens = tokens.cpu()
        for n in tokens.unique().tolist():  # equal lengths decode together, unpadded
            rows = (tokens == n).nonzero().flatten()
            traj, limbs = self.lifter.decode_codes(codes[rows.to(codes.device), :n].to(self.device))
            joints = from_free3d(traj, limbs, self.skeleton).cpu().double().numpy()
            for i, r in enumerate(rows.tolist()):
                # the skeleton's bone lengths, hands and feet kept where decoded (free3d.ik)
                out[r] = with_bone_lengths(joints[i], self.skeleton) if self.fix_bone_lengths else joints[i]
        return out

    @torch.inference_mode()
    def _tokenize(self, joints: np.ndarray) -> tuple[Tensor, tuple[np.ndarray, np.ndarray]]:
        """A 3D clip -> ML-RQ codes (on the CPU) through the canonical view, and the frame that maps back.

        (MoMask's 3D RVQ-VAE, the 3D-supervised baseline, reads the 3D clip itself.)
        """
        n = len(joints)
        if self.lifter.input_dim == 3:
            traj, limbs = to_free3d(torch.from_numpy(joints).float().to(self.device), self.skeleton)
            codes = self.lifter.tokenize(traj[None], limbs[None])[0].cpu()
            raw = self._decode(codes[None], torch.tensor([len(codes)]))[0][:n]
            return codes, (np.eye(3), joints[0, 0] - raw[0, 0])
        # seen as the transformers' training clips were (data.single_view.canonical_view)
        up, _ = upright_transform(joints, self.skeleton)
        view = project_clip(joints @ up.T, CANONICAL_CAMERA, self.skeleton)
        codes = self.lifter.tokenize(torch.from_numpy(view.trajectory)[None].to(self.device),
                                     torch.from_numpy(view.limbs)[None].to(self.device))[0].cpu()
        # camera frame -> world (ground_truth.camera_to_world), then the stand-up undone
        rot = up.T @ CANONICAL_CAMERA.rotation().T / view.camera.scale
        raw = self._decode(codes[None], torch.tensor([len(codes)]))[0][:n]
        return codes, (rot, joints[0, 0] - raw[0, 0] @ rot.T)


def _join(old: np.ndarray, new: np.ndarray, f0: int, f1: int) -> np.ndarray:
    """new[f0:f1], shifted so it meets old at frames f0-1 and f1 (linear in between)."""
    span = new[f0:f1]
    before = old[f0 - 1] - new[f0 - 1] if f0 > 0 else None
    after = old[f1] - new[f1] if f1 < len(old) else None
    if before is None and after is None:
        return span
    w = ((np.arange(f0, f1) - (f0 - 1)) / (f1 - f0 + 1))[:, None, None]
    before = after if before is None else before
    after = before if after is None else after
    return span + (1 - w) * before + w * after


# ---------------------------------------------------------------------------------- folders


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise ModelError(f"no model folder at {root}")
    if not path.is_file():
        raise ModelError(f"{root} is not a free3d model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path} is corrupt: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("text_encoder"), str) or \
            not isinstance(manifest.get("skeleton"), str):
        raise ModelError(f"{path} is corrupt: not a free3d generator manifest (it needs "
                         "\"skeleton\" and \"text_encoder\")")
    missing = [p for p in PARTS if not (Path(root) / p / "model.safetensors").is_file()]
    if missing:
        raise ModelError(f"{root} lacks the weights of {', '.join(missing)}")
    return manifest


def check_part_skeletons(root: Path, skeleton: str) -> None:
    """Every part's config names the manifest's skeleton (else its weights fit another body)."""
    for part in PARTS:
        dataset = read_config(Path(root) / part).get("dataset")
        name = dataset.get("skeleton") if isinstance(dataset, dict) else None
        if name != skeleton:
            raise ValueError(f"{Path(root) / part / CONFIG} is for skeleton {name}, but "
                             f"{Path(root) / MANIFEST} says {skeleton}")


def manifest_sampling(root: Path, manifest: dict) -> SamplingConfig:
    """The default sampling settings of a model folder's manifest, checked (errors name the file)."""
    path = Path(root) / MANIFEST
    sampling = manifest.get("sampling", {})
    if not isinstance(sampling, dict):
        raise ModelError(f"{path}: \"sampling\" must be an object of settings, got {sampling!r}")
    known = [f.name for f in fields(SamplingConfig)]
    unknown = sorted(set(sampling) - set(known))
    if unknown:
        raise ModelError(f"{path}: unknown sampling setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    try:
        return SamplingConfig(**sampling)
    except ValueError as e:
        raise ModelError(f"{path}: {e}") from None


def assemble_model(*, mlrq: str | os.PathLike, masked: str | os.PathLike, residual: str | os.PathLike,
                   length: str | os.PathLike, out: str | os.PathLike,
                   sampling: SamplingConfig | None = None, card: str | None = None) -> Path:
    """Copy four trained runs (config + weights only) into one model folder."""
    out = Path(out)
    sources = {"mlrq": Path(mlrq), "masked": Path(masked), "residual": Path(residual), "length": Path(length)}
    configs = {}
    for name, src in sources.items():
        configs[name] = read_config(src)
        if not (src / "model.safetensors").is_file():
            raise FileNotFoundError(f"{src} has no model.safetensors")
    stages = {name: configs[name]["train"]["stage"] for name in sources}
    expected = {"mlrq": ("mlrq", "rvq3d"), "masked": ("masked",), "residual": ("residual",),
                "length": ("length",)}
    for name, stage in stages.items():
        if stage not in expected[name]:
            raise ValueError(f"{sources[name]} is a {stage} run, not {name}")
    encoders = {configs[n]["text_encoder"]["name"] for n in ("masked", "residual", "length")}
    if len(encoders) != 1:
        raise ValueError(f"the parts were trained with different text encoders: {sorted(encoders)}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, src in sources.items():
        (tmp / name).mkdir(parents=True)
        shutil.copy2(src / "config.json", tmp / name / "config.json")
        shutil.copy2(src / "model.safetensors", tmp / name / "model.safetensors")
        if (src / "log.csv").is_file():
            shutil.copy2(src / "log.csv", tmp / name / "log.csv")
    manifest = {"format": "free3d-generator/1", "skeleton": configs["mlrq"]["dataset"]["skeleton"],
                "text_encoder": encoders.pop(), "sampling": (sampling or SamplingConfig()).to_dict()}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if card:
        (tmp / "MODEL_CARD.md").write_text(card)
    if out.exists():
        if not (out / MANIFEST).is_file():
            shutil.rmtree(tmp)
            raise FileExistsError(f"{out} exists and is not a model folder; not replacing it")
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def read_prompts(path: str | os.PathLike) -> list[tuple[str, float | None]]:
    """A prompt file: one ``text#seconds`` per line (MoMask's format).

    ``text#`` or ``text#NA`` (or no ``#``) lets the length estimator choose; blank lines
    are skipped. Any other malformed line is an error naming its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no prompt file {path}")
    data = path.read_bytes()
    if b"\0" in data:
        raise ValueError(f"{path} is not a text file (it holds NUL bytes)")
    try:  # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first prompt
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file "
                         "as UTF-8") from None
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        text, sep, length = line.rpartition("#") if "#" in line else (line, "", "")
        where = f"{path}:{number}"
        if "#" in text:
            raise ValueError(f"{where}: more than one '#' in {line!r}; write text#seconds")
        if not text.strip():
            raise ValueError(f"{where}: empty prompt in {line!r}; write text#seconds")
        length = length.strip()
        if length in ("", "NA"):
            prompts.append((text.strip(), None))
            continue
        try:
            seconds_to_frames(length)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        prompts.append((text.strip(), float(length)))
    if not prompts:
        raise ValueError(f"{path} holds no prompts")
    return prompts
