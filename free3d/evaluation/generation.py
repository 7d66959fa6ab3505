"""``free3d eval generation``: the paper's table 1 protocol on a prepared dataset.

Per repeat r (20 by default, each with its own seeds): every test clip contributes one
of its captions (drawn at random) and its ground-truth length; each model generates one
motion per caption; the evaluator embeds texts, real and generated motions. FID is
against the real test motions; R-precision and MM-Dist over pools of 32 pairs;
Diversity over 300 pairs; MultiModality over ``mm_texts`` captions with
``mm_generations`` motions each (10 pairs); QM = sqrt(MultiModality / FID); content and
style accuracy of the evaluator's classifiers on the generated motions. Reported as
mean +- 1.96 std / sqrt(repeats). The evaluator runs on ``device`` in IEEE fp32 (the
generators on their own device and precision); embeddings come back to the CPU, where the
metrics are computed in NumPy.

With ``resume=PATH`` every finished (repeat, model) step is written to PATH as it ends;
running again with the same settings skips those steps, and because every step's seeds
depend only on (seed, repeat), an interrupted evaluation resumed gives the same table.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoints import load_evaluator
from ..data.canonical import FPS
from ..data.ground_truth import tokeniser_input
from ..data.prepared import read_records
from ..device import resolve_device, tf32_scope
from ..models.evaluator import pad_joints
from ..text import EmbeddingCache, default_cache_path, get_text_encoder
from .metrics import diversity, fid, mean_interval, multimodality, quality_multimodality, r_precision

DEFAULT_EVALUATOR = Path(__file__).resolve().parents[1] / "pretrained" / "bandai21-evaluator"
METRICS = ("top1", "top2", "top3", "fid", "mm_dist", "diversity", "multimodality", "qm",
           "content_acc", "style_acc")


@dataclass
class GenerationEvalConfig:
    split: str = "test"
    repeats: int = 20
    mm_texts: int = 100
    mm_generations: int = 30
    pool: int = 32  # R-precision pool size (32 in the HumanML3D protocol)
    batch_size: int = 64
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class EvaluatorEmbedder:
    """Evaluator embeddings of motions and texts, plus its label predictions."""

    def __init__(self, path: str | Path | None = None, *, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        model, config = load_evaluator(DEFAULT_EVALUATOR if path in (None, "default") else path)
        self.model = model.to(self.device)
        self.config = self.model.config
        self.text_encoder = _cached(get_text_encoder(config["text_encoder"]["name"], device=self.device))

    @torch.inference_mode()
    def motions(self, clips: list[np.ndarray], batch_size: int = 64) -> tuple[np.ndarray, dict]:
        embs, preds = [], {"content": [], "style": []}
        with tf32_scope(self.device, enabled=False):  # exact fp32: the same table on every device
            for i in range(0, len(clips), batch_size):
                batch = [np.asarray(c, dtype=np.float32) for c in clips[i:i + batch_size]]
                joints, lengths = pad_joints(batch)
                raw = self.model.motion_raw(joints.to(self.device), lengths.to(self.device))
                embs.append(torch.nn.functional.normalize(raw, dim=-1).cpu())
                for name, logits in self.model.classify(raw).items():
                    preds[name].append(logits.argmax(-1).cpu())
        return torch.cat(embs).numpy(), {k: torch.cat(v).numpy() for k, v in preds.items() if v}

    @torch.inference_mode()
    def texts(self, texts: list[str]) -> np.ndarray:
        with tf32_scope(self.device, enabled=False):
            return self.model.embed_text(self.text_encoder.encode(texts).to(self.device)).cpu().numpy()


def _cached(encoder):
    """The encoder behind the on-disk caption cache: the test captions are encoded once
    (and a machine without the encoder's weights evaluates from a shipped cache)."""
    if isinstance(encoder, EmbeddingCache):
        return encoder
    return EmbeddingCache(default_cache_path(encoder.name), encoder)


def _accuracy(preds: dict, name: str, target: np.ndarray) -> float:
    if name not in preds or (target < 0).all():
        return float("nan")
    ok = target >= 0
    return float((preds[name][ok] == target[ok]).mean())


def _generate(model, captions: list[str], frames: list[int], seed: int, batch_size: int,
              num_samples: int = 1) -> list[np.ndarray]:
    out = []
    for i in range(0, len(captions), batch_size):
        motions = model.generate(captions[i:i + batch_size], [f / FPS for f in frames[i:i + batch_size]],
                                 seed=seed, num_samples=num_samples, foot_lock=False)
        out += [m.joints for m in motions]
    return out


def tokeniser_reconstructions(model, data: str | Path, ids: list[str]) -> list[np.ndarray]:
    """Each clip through ``model``'s tokeniser and back (:meth:`Free3D.reconstruct`).

    The ML-RQ reads the clip's stored single view (the 2D it was trained on); a 3D
    RVQ-VAE reads the 3D clip.
    """
    out = []
    for cid in ids:
        traj, limbs = tokeniser_input(model.lifter, data, cid)
        out.append(model.reconstruct(traj.numpy(), limbs.numpy()))
    return out


def _load_progress(path: Path | None, fingerprint: dict) -> tuple[dict, float]:
    """Finished steps ``{"model/repeat": metrics}`` and seconds already spent, from a resume file."""
    if path is None or not path.exists():
        return {}, 0.0
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable evaluation progress file ({e}); "
                         "delete it to start over") from None
    if saved.get("fingerprint") != fingerprint:
        raise ValueError(f"{path}: progress of an evaluation with other settings, models or data; "
                         "delete it or pick another --out")
    return saved["steps"], float(saved["seconds"])


def _save_progress(path: Path, fingerprint: dict, steps: dict, seconds: float) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "seconds": seconds, "steps": steps}))
    os.replace(tmp, path)  # atomic: an interruption never leaves a half-written file


def evaluate_generation(data: str | Path, evaluator: str | Path, models: dict[str, object],
                        config: GenerationEvalConfig | None = None, *, progress: bool = True,
                        resume: str | Path | None = None, fingerprint: dict | None = None,
                        reconstructions: dict[str, object] | None = None,
                        device: str | torch.device = "auto") -> list[dict]:
    """Rows (Real first, then each model) of metric -> (mean, half interval).

    ``reconstructions``: label -> model whose tokeniser's round trip of the real test
    clips is scored as one more fixed row (like Real: no sampling, no MultiModality).
    ``resume``: a JSON file recording finished steps (see the module docstring);
    ``fingerprint``: what identifies the models (e.g. their paths), checked on resume
    together with the data, the evaluator and the config. ``device``: the evaluator's
    (the models compute on the device they were loaded on). The models' text encoders
    are put behind the on-disk caption cache (``free3d.text.cache``).
    """
    from ..data.ground_truth import load_motion3d
    from ..data.prepared import read_captions

    cfg = config or GenerationEvalConfig()
    t0 = time.perf_counter()
    labels = ["Real", *(reconstructions or {}), *models]
    for label in set(labels):
        if labels.count(label) > 1:
            raise ValueError(f"row label {label!r} is used twice")
    emb = EvaluatorEmbedder(evaluator, device=device)
    for model in [*models.values(), *(reconstructions or {}).values()]:
        if hasattr(model, "text_encoder"):
            model.text_encoder = _cached(model.text_encoder)
    records = [r for r in read_records(data) if r.split == cfg.split]
    if len(records) < cfg.pool:
        raise ValueError(f"{data}: the {cfg.split} split has {len(records)} clips; R-precision needs "
                         f"{cfg.pool}")
    c_index = {c: i for i, c in enumerate(emb.config.contents)}
    s_index = {s: i for i, s in enumerate(emb.config.styles)}
    target = {"content": np.array([c_index.get(r.labels.get("content"), -1) for r in records]),
              "style": np.array([s_index.get(r.labels.get("style"), -1) for r in records])}
    real = [load_motion3d(data, r.id) for r in records]
    frames = [len(j) for j in real]
    captions = [read_captions(data, r.id) for r in records]
    fixed = {"Real": emb.motions(real, cfg.batch_size)}
    for label, model in (reconstructions or {}).items():
        fixed[label] = emb.motions(tokeniser_reconstructions(model, data, [r.id for r in records]),
                                   cfg.batch_size)
    real_emb = fixed["Real"][0]
    names = [*fixed, *models]
    resume = Path(resume) if resume is not None else None
    key = {"data": str(Path(data).resolve()), "evaluator": str(evaluator), "config": cfg.to_dict(),
           "models": fingerprint if fingerprint is not None else names}
    done, spent = _load_progress(resume, key)
    values: dict[str, dict[str, list[float]]] = {n: {m: [] for m in METRICS} for n in names}
    steps = cfg.repeats * len(names)
    bar = tqdm(total=steps, desc="evaluating", unit="step", disable=not progress)
    for r in range(cfg.repeats):
        rng = np.random.default_rng([cfg.seed, r])
        chosen = [caps[rng.integers(len(caps))] for caps in captions]
        text_emb = emb.texts(chosen)
        mm_ids = rng.choice(len(records), min(cfg.mm_texts, len(records)), replace=False)
        for name in names:
            if f"{name}/{r}" in done:
                for m, x in done[f"{name}/{r}"].items():
                    values[name][m].append(x)
                bar.update(1)
                continue
            if name in fixed:
                motion_emb, preds = fixed[name]
            else:
                gen = _generate(models[name], chosen, frames, cfg.seed * 1000 + r, cfg.batch_size)
                motion_emb, preds = emb.motions(gen, cfg.batch_size)
            metric_rng = np.random.default_rng([cfg.seed, r, 1])
            top, mm_dist = r_precision(text_emb, motion_emb, pool=cfg.pool, rng=metric_rng)
            v = values[name]
            v["top1"].append(top[0])
            v["top2"].append(top[1])
            v["top3"].append(top[2])
            v["fid"].append(fid(motion_emb, real_emb))
            v["mm_dist"].append(mm_dist)
            v["diversity"].append(diversity(motion_emb, pairs=min(300, len(records)), rng=metric_rng))
            v["content_acc"].append(_accuracy(preds, "content", target["content"]))
            v["style_acc"].append(_accuracy(preds, "style", target["style"]))
            if name not in fixed and cfg.mm_generations >= 10:
                gen = _generate(models[name], [chosen[i] for i in mm_ids], [frames[i] for i in mm_ids],
                                cfg.seed * 1000 + r, max(1, cfg.batch_size // cfg.mm_generations),
                                num_samples=cfg.mm_generations)
                mm_emb, _ = emb.motions(gen, cfg.batch_size)
                mm = multimodality(mm_emb.reshape(len(mm_ids), cfg.mm_generations, -1), rng=metric_rng)
                v["multimodality"].append(mm)
                v["qm"].append(quality_multimodality(mm, v["fid"][-1]))
            if resume is not None:
                done[f"{name}/{r}"] = {m: float(v[m][-1]) for m in METRICS if len(v[m]) == r + 1}
                _save_progress(resume, key, done, spent + time.perf_counter() - t0)
            bar.update(1)
    bar.close()
    rows = []
    for name in names:
        row = {"model": name}
        for m in METRICS:
            vals = [x for x in values[name][m] if np.isfinite(x)]
            row[m] = mean_interval(vals) if vals else None
        rows.append(row)
    seconds = round(spent + time.perf_counter() - t0, 1)
    rows.append({"model": "_meta", "seconds": seconds, "clips": len(records), **cfg.to_dict()})
    return rows


COLUMNS = [("top1", "R-prec top 1", 3), ("top2", "top 2", 3), ("top3", "top 3", 3), ("fid", "FID", 3),
           ("mm_dist", "MM-Dist", 3), ("diversity", "Diversity", 3), ("multimodality", "MModality", 3),
           ("qm", "QM", 3), ("content_acc", "content acc", 3), ("style_acc", "style acc", 3)]


ABLATION_COLUMNS = [("mpjpe", "MPJPE (mm)", 1), ("pa_mpjpe", "PA-MPJPE (mm)", 1), *COLUMNS[:7]]


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    lines = ["| model | " + " | ".join(c[1] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row in rows:
        if row["model"] == "_meta":
            continue
        cells = []
        for key, _, digits in columns:
            v = row.get(key)
            if v is None:
                cells.append("-")
            elif v[1] is None:  # one measurement, no interval (lifting error)
                cells.append(f"{v[0]:.{digits}f}")
            else:
                cells.append(f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
