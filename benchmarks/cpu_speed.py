"""CPU speed of free3d side by side with MoMask's own code, in one run (issue 14, items 6-7).

    MOMASK_REF=path/to/momask-codes python benchmarks/cpu_speed.py \\
        --momask-bench path/to/momask_ref.py [--threads 2] [--rounds 5] [--profile]

Both sides have random weights at the ``paper`` sizes (RVQ-VAE / ML-RQ width 512,
6 x 512 x 512 codes; transformers 8 layers, width 384, ff 1024, 6 heads).

- generate 1 and 32 prompts: 196 frames, 10 unmasking iterations, guidance 4 / 5.
  MoMask: ``MaskTransformer.generate`` -> ``ResidualTransformer.generate`` ->
  ``RVQVAE.forward_decoder`` (what momask_ref.py times). free3d: whole ``Free3D.generate``
  calls (sampling, decoding to joints, post-processing). Text encoding is excluded on
  both sides (MoMask: CLIP stubbed, its time subtracted; free3d: embeddings memoised
  after the warm-up call).
- one training step (forward, loss, backward, optimiser step) on a batch of 32 x 64
  frames: MoMask's RVQ-VAE (its trainer's loss and AdamW, transcribed in momask_ref.py);
  free3d's ``rvq3d --input-dim 3`` (the same network on 3D input) and ML-RQ with
  ``StageStep`` and Adam as ``free3d train`` runs them, data sampling excluded. ML-RQ:
  the free3d recipe (the default: L2D, Lrec through a frozen paper-size 2D prior, Lori,
  Lfeat, Lbone, Lknee, Lcycle) and the paper recipe (eq. 15 only). The ML-RQ's losses run
  its encoder and decoder, or the prior's, several times per step (Lrec, Lfeat, Lcycle):
  the GFLOP column shows how much more arithmetic that is than MoMask's step.

Variants are interleaved round by round (the order rotating) and each cell is the median
of the rounds that no other process disturbed (``momask_ref``'s /proc/stat check).
``momask_ref.py`` and MoMask's code come from ``--momask-bench`` (or ``$MOMASK_BENCH``)
and ``$MOMASK_REF`` / ``$MOMASK_MIRROR`` as its README says; without them only free3d's
columns are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generation_speed import random_model  # noqa: E402

from free3d.precision import auto_precision, cache_dir, cpu_flags, cpu_model, machine_key  # noqa: E402

TARGETS = {"gen1": 0.5, "gen32": 0.7, "rvq3d": 1.0, "mlrq": 1.5}  # free3d / MoMask, issue 14 item 7
FRAMES, BATCH, WINDOW = 196, 32, 64


# ------------------------------------------------------------------------------ MoMask side


def load_momask(bench_path: str | None):
    """momask_ref.py as a module with MoMask's code on sys.path, or None."""
    if not bench_path or not Path(bench_path).is_file():
        return None
    spec = importlib.util.spec_from_file_location("momask_ref", bench_path)
    mm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mm)
    ref = os.environ.get("MOMASK_REF", mm.DEFAULT_REF)
    mm.INFO = mm.ensure_momask_ref(ref, os.environ.get("MOMASK_MIRROR", mm.DEFAULT_MIRROR))
    sys.path.insert(0, ref)
    mm.install_clip_stub(torch, torch.nn)
    return mm


def momask_generate(mm, batch: int):
    """A callable timing momask_ref.bench_generation's three stages; returns seconds."""
    cfg, c = mm.CONFIGS["paper"], mm.COMMON
    mm.seed_all(torch, 1234)
    models = mm.build_models(torch, cfg, c)
    vq, mt, rt = models["vq"].eval(), models["mtrans"].eval(), models["rtrans"].eval()
    g = torch.Generator().manual_seed(1234)
    for layer in vq.quantizer.layers:
        layer.codebook = torch.randn(cfg["nb_code"], cfg["code_dim"], generator=g)
    n_tok = c["motion_frames"] // c["unit_length"]
    captions = mm.captions_for(batch)
    lens = torch.full((batch,), n_tok, dtype=torch.long)

    def run() -> float:
        mm.TEXT_STUB_TIME[0] = 0.0
        t0 = time.perf_counter()
        with torch.inference_mode():
            mids = mt.generate(captions, lens, timesteps=c["time_steps"], cond_scale=c["cond_scale"],
                               temperature=c["temperature"], topk_filter_thres=c["topkr"],
                               gsample=c["gsample"])
            ids = rt.generate(mids, captions, lens, temperature=1, cond_scale=c["res_cond_scale"])
            vq.forward_decoder(ids)
        return time.perf_counter() - t0 - mm.TEXT_STUB_TIME[0]
    return run


def momask_vq_step(mm):
    """MoMask's RVQ-VAE training step as momask_ref.bench_training transcribes it."""
    cfg, c = mm.CONFIGS["paper"], mm.COMMON
    mm.seed_all(torch, 1234)
    vq = mm.build_models(torch, cfg, c, ("vq",))["vq"].train()
    opt = torch.optim.AdamW(vq.parameters(), lr=c["vq_lr"], betas=(0.9, 0.99),
                            weight_decay=c["vq_weight_decay"])
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c["vq_milestones"], gamma=c["vq_gamma"])
    crit = torch.nn.SmoothL1Loss()
    motions = torch.randn(BATCH, WINDOW, cfg["dim_pose"])
    J = c["joints_num"]

    def step() -> None:
        pred, commit, _ = vq(motions)
        loss = (crit(pred, motions) + c["loss_vel"] * crit(pred[..., 4:(J - 1) * 3 + 4],
                                                            motions[..., 4:(J - 1) * 3 + 4])
                + c["commit"] * commit)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
    return step


# ------------------------------------------------------------------------------ free3d side


def free3d_generate(precision: str, batch: int):
    model = random_model("paper", precision)
    memo: dict[tuple[str, ...], torch.Tensor] = {}
    encode = model.encode_text

    def cached(texts):  # text encoding excluded, as momask_ref excludes CLIP
        key = tuple(texts)
        if key not in memo:
            memo[key] = encode(texts)
        return memo[key]
    model.encode_text = cached
    prompts = [f"a person walks forward, turns around and sits down #{i}" for i in range(batch)]
    seed = [0]

    def run() -> float:
        seed[0] += 1
        t0 = time.perf_counter()
        model.generate(prompts, seconds=FRAMES / 20, seed=seed[0])
        return time.perf_counter() - t0
    run.precision = model.precision
    return run


def _random_clips(skeleton, n: int = 8, length: int = 200) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    k = skeleton.num_joints - 1
    clips = []
    for _ in range(n):
        limbs3 = rng.normal(size=(length, k, 3)).astype(np.float32)
        limbs3 /= np.linalg.norm(limbs3, axis=-1, keepdims=True)
        limbs3 *= skeleton.bone_lengths()[:, None].astype(np.float32)
        traj3 = np.cumsum(rng.normal(scale=0.01, size=(length, 3)), 0).astype(np.float32)
        clips.append({"traj2": traj3[:, :2].copy(), "limbs2": limbs3[..., :2].copy(),
                      "conf": np.ones((length, skeleton.num_joints), np.float32),
                      "traj3": traj3, "limbs3": limbs3})
    return clips


def free3d_step(stage: str, recipe: str = "free3d"):
    """One ``free3d train`` step of ``stage`` (rvq3d with 3D input, or mlrq with ``recipe``)
    at paper sizes."""
    from free3d.models.autoencoders import Prior2D, get_preset
    from free3d.skeleton import get_skeleton
    from free3d.training.lifting import ClipArrays, StageStep, build_model, make_config

    torch.manual_seed(0)
    skeleton = get_skeleton("bandai21")
    kw = {"prior": "random"} if stage == "mlrq" else {"input_dim": 3}
    cfg = make_config(stage, "unused", preset="paper", recipe=recipe, batch_size=BATCH, window=WINDOW, **kw)
    arrays = ClipArrays.stack(_random_clips(skeleton))
    prior = None
    if stage == "mlrq":
        prior = Prior2D(skeleton=skeleton, arch=get_preset("paper"))  # a prior run's representation
        prior.train()
        with torch.no_grad():  # initialise its codebook, then freeze it as load_frozen_prior does
            k = skeleton.num_joints - 1
            prior.reconstruct(prior.features(torch.randn(BATCH, WINDOW, 2), torch.randn(BATCH, WINDOW, k, 2)))
        for p in prior.parameters():
            p.requires_grad_(False)
        prior.eval()
    model = build_model(cfg, skeleton)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                 betas=(0.9, 0.99))
    step_fn = StageStep(cfg, model, skeleton, arrays, prior)
    model.train()
    batch = arrays.sample(BATCH, WINDOW, torch.Generator().manual_seed(1))

    def step() -> None:
        # as `free3d train` runs on a CPU (free3d.device.enable_fast_math); MoMask's step
        # keeps PyTorch's default
        torch.set_flush_denormal(True)
        try:
            loss, _ = step_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        finally:
            torch.set_flush_denormal(False)
    return step


# -------------------------------------------------------------------------------- timing


class Monitor:
    """/proc/stat check for other processes' CPU use during a timed call (momask_ref's rule)."""

    def __init__(self, mm) -> None:
        self.mm = mm

    def __call__(self, fn):
        if self.mm is None:
            t0 = time.perf_counter()
            out = fn()
            return (time.perf_counter() - t0 if out is None else out), False
        a = self.mm.CPUMON.snap()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0 if out is None else out
        return dt, self.mm.disturbed(self.mm.CPUMON.diff(a, self.mm.CPUMON.snap()))


def interleaved(variants: dict, rounds: int, warmup: int, monitor: Monitor, max_extra: int) -> dict:
    """Median seconds per variant over undisturbed rounds; the order rotates each round."""
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            variants[n]()
    clean = {n: [] for n in names}
    everything = {n: [] for n in names}
    r = 0
    while r < rounds + max_extra and min(len(v) for v in clean.values()) < rounds:
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            if len(clean[n]) >= rounds:
                continue
            dt, bad = monitor(variants[n])
            everything[n].append(dt)
            if not bad:
                clean[n].append(dt)
        r += 1
    return {n: statistics.median(clean[n] or everything[n]) for n in names} | {
        f"{n}#runs": f"{len(clean[n])}/{len(everything[n])}" for n in names}


def count_gflop(fn, mm) -> float:
    """Forward + backward FLOPs of one call (matmuls, convolutions, attention), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode, shape_wrapper

    def packed_linear(x, w, *args, out_shape=None, **kwargs):  # free3d's packed inference path
        return 2 * math.prod(x[:-1]) * w[0] * w[1]

    counter = mm.make_flop_counter(torch)() if mm is not None else FlopCounterMode(display=False)
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        counter.flop_registry[torch.ops.mkldnn._linear_pointwise] = shape_wrapper(packed_linear)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def profile(name: str, fn, rows: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    fn()
    with prof(activities=[ProfilerActivity.CPU]) as p:
        fn()
    print(f"\n--- profile: {name} (self CPU time, top {rows}) ---")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48))


# ---------------------------------------------------------------------------------- main


def print_table(results: list, threads: int, header: bool = True) -> None:
    if header:
        print(f"\nmedian of undisturbed rounds (variants interleaved); {threads} threads; "
              f"ratio = free3d / MoMask (issue 14 target)\n")
        print("| measure | MoMask | free3d | ratio | target | met | GFLOP MoMask / free3d |\n"
              "|---|---|---|---|---|---|---|")
    for title, key, res in results:
        base = res.get("MoMask")
        rows = ([(f"{title}, {k.split()[1]}", k, TARGETS[key]) for k in res
                 if k.startswith("free3d") and "#" not in k] if key != "train" else
                [("train step, rvq3d --input-dim 3", "free3d rvq3d", TARGETS["rvq3d"]),
                 ("train step, ML-RQ (free3d recipe, the default)", "free3d mlrq", TARGETS["mlrq"]),
                 ("train step, ML-RQ (paper recipe: no Lcycle, Lbone, Lknee)", "free3d mlrq-paper",
                  TARGETS["mlrq"])])
        for label, k, target in rows:
            mine = res[k]
            if key == "train":
                label += f", batch {BATCH} x {WINDOW}"
            fmt = (lambda s: f"{s * 1000:.0f} ms") if key != "gen32" else (lambda s: f"{s:.2f} s")
            ratio = mine / base if base else float("nan")
            met = "-" if base is None else ("yes" if ratio <= target else "no")
            flops = f"{res['MoMask#gflop']:.0f} / " if base else ""
            print(f"| {label} | {fmt(base) if base else '-'} | {fmt(mine)} | {ratio:.2f} | "
                  f"<= {target} | {met} | {flops}{res[k + '#gflop']:.0f} |", flush=True)
    if header:
        print("\nundisturbed/all rounds: " + "; ".join(
            f"{key} {n.split('#')[0]}: {v}" for _, key, res in results for n, v in res.items()
            if "#runs" in n))


def describe_machine() -> str:
    flags = cpu_flags()
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return (f"{cpu_model()}, {os.cpu_count()} CPUs, flags: {' '.join(shown) or '-'}; "
            f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
            f"{torch.get_num_threads()} threads; python {platform.python_version()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (1 prompt, training steps)")
    p.add_argument("--rounds-32", type=int, default=3, help="timed rounds for 32 prompts")
    p.add_argument("--what", nargs="+", default=["gen1", "gen32", "train"],
                   choices=("gen1", "gen32", "train"))
    p.add_argument("--momask-bench", default=os.environ.get("MOMASK_BENCH"), help="path of momask_ref.py")
    p.add_argument("--no-fp32", action="store_true", help="only free3d's auto precision")
    p.add_argument("--profile", action="store_true", help="also print torch.profiler tables")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    mm = load_momask(args.momask_bench)
    monitor = Monitor(mm)
    cfg = random_model("paper", "fp32").masked.config
    auto = auto_precision(cfg.latent_dim, cfg.num_heads, cfg.ff_dim)
    print(f"machine: {describe_machine()}")
    print(f"precision auto -> {auto} (verdict cached in {cache_dir() / 'precision.json'} "
          f"under '{machine_key()}')")
    if mm is None:
        print("MoMask: not found (--momask-bench / $MOMASK_BENCH, $MOMASK_REF); free3d only")
    else:
        where = mm.INFO.get("commit") or os.environ.get("MOMASK_REF")
        print(f"MoMask: {where} (momask_ref.py, CLIP stubbed)")
    precisions = ["fp32"] if auto == "fp32" else (["bf16"] if args.no_fp32 else ["fp32", "bf16"])
    results = []  # (measure, key, {variant: seconds}, runs)

    for what in ("gen1", "gen32"):
        if what not in args.what:
            continue
        b = 1 if what == "gen1" else 32
        variants = {} if mm is None else {"MoMask": momask_generate(mm, b)}
        for prec in precisions:
            variants[f"free3d {prec}"] = free3d_generate(prec, b)
        rounds = args.rounds if b == 1 else args.rounds_32
        res = interleaved(variants, rounds, 1, monitor, 2 * rounds)
        res |= {f"{n}#gflop": count_gflop(fn, mm) for n, fn in variants.items()}
        results.append((f"generate {b} prompt{'s' * (b > 1)}, {FRAMES} frames", what, res))
        print_table(results[-1:], args.threads, header=False)
        if args.profile:
            for n, fn in variants.items():
                profile(f"{n}, {b} prompt(s)", fn, 25)
        del variants
    if "train" in args.what:
        variants = {} if mm is None else {"MoMask": momask_vq_step(mm)}
        variants["free3d rvq3d"] = free3d_step("rvq3d")
        variants["free3d mlrq"] = free3d_step("mlrq")
        variants["free3d mlrq-paper"] = free3d_step("mlrq", "paper")
        res = interleaved(variants, args.rounds, 2, monitor, 2 * args.rounds)
        res |= {f"{n}#gflop": count_gflop(fn, mm) for n, fn in variants.items()}
        results.append((f"train step, batch {BATCH} x {WINDOW} frames", "train", res))
        print_table(results[-1:], args.threads, header=False)
        if args.profile:
            for n, fn in variants.items():
                profile(n, fn, 25)

    print_table(results, args.threads)


if __name__ == "__main__":
    main()
