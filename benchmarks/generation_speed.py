"""Generation latency (issue 4, item 7): one prompt and a batch of 32, 196 frames,
10 unmasking iterations, classifier-free guidance on (4 masked, 5 residual).

    python benchmarks/generation_speed.py [--repeats 7] [--threads N] [--precision fp32 bf16]

Rows: the bundled ``cpu`` model (when present) and a randomly initialised ``paper``
preset (MoMask's sizes: 8 layers, width 384, 6 x 512 x 512 ML-RQ). Times are whole
``Free3D.generate`` calls (text encoding, sampling, decoding, post-processing), median
of ``--repeats`` after one warm-up call. Target on the 2-core dev machine, paper preset:
one prompt <= 260 ms, 32 prompts <= 4.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from free3d.api import DEFAULT_MODEL, Free3D
from free3d.models.autoencoders import MotionLifter, get_preset
from free3d.models.length_estimator import LengthEstimator
from free3d.models.masked_transformer import MaskedTransformer
from free3d.models.residual_transformer import ResidualTransformer
from free3d.models.token_transformer import transformer_preset
from free3d.skeleton import get_skeleton
from free3d.text import get_text_encoder

PROMPT = "a tired person walks forward"


def random_model(preset: str, precision: str) -> Free3D:
    torch.manual_seed(0)
    lifter = MotionLifter(skeleton=get_skeleton("bandai21"), arch=get_preset(preset), input_dim=2)
    for layer in lifter.quantizer.layers:
        layer.codebook.normal_()
    cfg = transformer_preset(preset)
    return Free3D(lifter=lifter, masked=MaskedTransformer(cfg), residual=ResidualTransformer(cfg),
                  length_estimator=LengthEstimator(), text_encoder=get_text_encoder(), precision=precision)


def time_call(model: Free3D, batch: int, repeats: int) -> float:
    prompts = [f"{PROMPT} {i}" if i else PROMPT for i in range(batch)]
    model.generate(prompts, seconds=9.8, seed=0)  # warm-up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        model.generate(prompts, seconds=9.8, seed=r)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.inference_mode()
def bf16_fidelity(model: Free3D, prompts: list[str]) -> tuple[float, float]:
    """Mean KL(fp32 || bf16) of the masked transformer's token distributions, and top-1
    agreement, on the same half-masked inputs (what bf16 changes in one sampling step)."""
    import copy

    fp32 = model.masked
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    text = model.encode_text(prompts)
    g = torch.Generator().manual_seed(0)
    n = fp32.config.max_tokens
    ids = torch.randint(fp32.config.num_tokens, (len(prompts), n), generator=g)
    ids = torch.where(torch.rand(ids.shape, generator=g) < 0.5, fp32.mask_id, ids)
    a = fp32(ids, fp32.body.condition(text), None).float().log_softmax(-1)
    b = bf16(ids, bf16.body.condition(text), None).float().log_softmax(-1)
    kl = (a.exp() * (a - b)).sum(-1).mean()
    return float(kl), float((a.argmax(-1) == b.argmax(-1)).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; 196 frames, 10 iterations, "
          f"guidance 4/5; median of {args.repeats}")
    print(f"| model | precision | 1 prompt (ms) | {args.batch} prompts (s) |\n|---|---|---|---|")
    rows = []
    if (DEFAULT_MODEL / "generator.json").is_file():
        rows.append(("bundled cpu", lambda prec: Free3D.from_pretrained(precision=prec)))
    rows.append(("random cpu preset", lambda prec: random_model("cpu", prec)))
    rows.append(("random paper preset", lambda prec: random_model("paper", prec)))
    for name, build in rows:
        for prec in args.precision:
            model = build(prec)
            one = time_call(model, 1, args.repeats)
            many = time_call(model, args.batch, max(3, args.repeats // 2))
            print(f"| {name} | {prec} | {one * 1000:.0f} | {many:.2f} |", flush=True)
    print("\nbf16 fidelity (masked transformer, 32 prompts, half-masked inputs):")
    for name, build in rows:
        kl, agree = bf16_fidelity(build("fp32"), [f"{PROMPT} {i}" for i in range(32)])
        print(f"  {name}: mean KL(fp32 || bf16) = {kl:.2e} nats, top-1 agreement {agree:.4f}")


if __name__ == "__main__":
    main()
