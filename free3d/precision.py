"""``precision="auto"`` on the CPU: bfloat16 transformers only where measured faster.

Native bfloat16 does not mean faster. On an AMD EPYC (Zen 4, AVX-512 BF16, no AMX) a
bf16 transformer layer runs about 2.2x faster than fp32; on an Intel Xeon with AVX-512
BF16 but no AMX the whole ``generate`` was 1.4x *slower* in bf16 (issue 14). No rule on
CPU flags alone covers both, so ``auto`` decides by measuring:

- a CPU without bf16 instructions (no ``avx512_bf16``, ``amx_bf16`` or Arm ``bf16``)
  gets fp32 without measuring (bf16 is emulated there);
- otherwise one transformer encoder layer of the model's own sizes (width, heads,
  feed-forward) runs in fp32 and in bf16, interleaved, on the inference path that
  sampling uses (``models.token_transformer``), at a 1-prompt and an 8-prompt batch
  (with guidance: 2 and 16 sequences). bf16 is chosen only if it takes at most
  ``BF16_MAX_RATIO`` of fp32's time at both sizes, in both of two passes. This costs
  about half a second, once.

The verdict is cached per CPU model, torch version, thread count and layer sizes in
``precision.json`` in free3d's cache folder (``$FREE3D_CACHE``, else
``$XDG_CACHE_HOME/free3d``, else ``~/.cache/free3d``); delete the file to measure again.
An unwritable cache only means measuring again next time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

CACHE_FILE = "precision.json"
BF16_MAX_RATIO = 0.9  # bf16 must save at least 10 % at every measured size
CALIBRATION_BATCHES = (2, 16)  # sequences: 1 and 8 prompts, guided
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 / AMX; Arm "bf16" feature


def cache_dir() -> Path:
    """``$FREE3D_CACHE``, else ``$XDG_CACHE_HOME/free3d``, else ``~/.cache/free3d``."""
    if os.environ.get("FREE3D_CACHE"):
        return Path(os.environ["FREE3D_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "free3d"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The first processor's feature flags (x86 ``flags``, Arm ``Features``); empty if unknown."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str:
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model name", "CPU part"):
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def has_native_bf16(flags: set[str]) -> bool:
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def machine_key(threads: int | None = None) -> str:
    """What the verdict depends on besides the layer sizes: CPU, torch and thread count."""
    threads = torch.get_num_threads() if threads is None else threads
    return f"{cpu_model()} | torch {torch.__version__} | {threads} threads"


def _layer(width: int, heads: int, ff: int, dtype: torch.dtype):
    """One encoder layer as sampling runs it (packed CPU inference path where available)."""
    from .models.token_transformer import _PackedEncoder

    torch.manual_seed(0)  # the layer's values do not matter, only its speed
    layer = nn.TransformerEncoderLayer(width, heads, ff, 0.0, activation="gelu", batch_first=True,
                                       norm_first=False)
    encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).to(dtype).eval()
    with torch.inference_mode():
        packed = _PackedEncoder.of(encoder, torch.zeros(1, 1, width, dtype=dtype))
    return (lambda x: packed(x, None)) if packed else encoder


def measure_bf16_speedup(width: int, heads: int, ff: int, *, tokens: int = 51,
                         batches: tuple[int, ...] = CALIBRATION_BATCHES, repeats: int = 5,
                         passes: int = 2) -> dict:
    """bf16 time / fp32 time of one encoder layer per batch size: the median of
    ``repeats`` interleaved pairs, in each of ``passes`` passes over the sizes, and the
    largest of those (a burst of other load in one pass cannot make bf16 look faster)."""
    fp32, bf16 = _layer(width, heads, ff, torch.float32), _layer(width, heads, ff, torch.bfloat16)
    ratios = {}
    state = torch.random.get_rng_state()
    try:
        with torch.inference_mode():
            for _ in range(passes):
                for b in batches:
                    x = torch.randn(b, tokens, width, generator=torch.Generator().manual_seed(b))
                    xb = x.to(torch.bfloat16)
                    pairs = []
                    for i in range(repeats + 2):  # 2 warm-up pairs
                        t = []
                        for model, inp in ((fp32, x), (bf16, xb)) if i % 2 else ((bf16, xb), (fp32, x)):
                            t0 = time.perf_counter()
                            model(inp)
                            t.append(time.perf_counter() - t0)
                        if i >= 2:
                            pairs.append(t[1] / t[0] if i % 2 else t[0] / t[1])  # bf16 / fp32
                    ratio = round(statistics.median(pairs), 3)
                    ratios[str(b)] = max(ratio, ratios.get(str(b), 0.0))
    finally:
        torch.random.set_rng_state(state)
    return ratios


def verdict(ratios: dict) -> str:
    """bf16 only if it was measured clearly faster at every size."""
    ok = ratios and all(r <= BF16_MAX_RATIO for r in ratios.values())
    return "bf16" if ok else "fp32"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home, full disk...: measure again next time


def auto_precision(width: int, heads: int, ff: int, *, cache: Path | None = None,
                   cpuinfo: str | None = None) -> str:
    """``"bf16"`` or ``"fp32"`` for transformers of these sizes on this CPU (see module doc)."""
    if not has_native_bf16(cpu_flags(cpuinfo)):
        return "fp32"
    path = cache or cache_dir() / CACHE_FILE
    data = _read_cache(path)
    key, shape = machine_key(), f"{width}x{heads}x{ff}"
    entry = data.get(key, {}).get(shape)
    if isinstance(entry, dict) and entry.get("precision") in ("bf16", "fp32"):
        return entry["precision"]
    try:
        ratios = measure_bf16_speedup(width, heads, ff)
    except RuntimeError:  # a bf16 kernel this build lacks
        ratios = {}
    choice = verdict(ratios)
    data.setdefault(key, {})[shape] = {"precision": choice, "bf16_over_fp32": ratios}
    _write_cache(path, data)
    return choice


def auto_precision_for(config) -> str:
    """:func:`auto_precision` for a TransformerConfig (latent_dim, num_heads, ff_dim)."""
    return auto_precision(config.latent_dim, config.num_heads, config.ff_dim)
