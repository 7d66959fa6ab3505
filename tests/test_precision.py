"""precision="auto": bf16 only where measured faster, the verdict cached per machine."""

from __future__ import annotations

import json
import os

import pytest
import torch

from free3d import precision as P

XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Fake\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
AMX = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Amx\nflags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile\n"
OLD = "processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU part\t: 0xd4f\n"


@pytest.fixture
def measured(monkeypatch):
    """Fake calibration results; records how often it was asked."""
    calls = []

    def install(ratios):
        def fake(width, heads, ff, **kw):
            calls.append((width, heads, ff))
            if isinstance(ratios, Exception):
                raise ratios
            return dict(ratios)
        monkeypatch.setattr(P, "measure_bf16_speedup", fake)
        return calls
    return install


def test_cpu_flags_and_model_parsing():
    assert "avx512_bf16" in P.cpu_flags(XEON) and P.cpu_model(XEON) == "Intel(R) Xeon(R) Fake"
    assert P.has_native_bf16(P.cpu_flags(XEON)) and P.has_native_bf16(P.cpu_flags(AMX))
    assert P.has_native_bf16(P.cpu_flags(ARM))
    assert not P.has_native_bf16(P.cpu_flags(OLD)) and P.cpu_flags("") == set()


def test_no_native_bf16_means_fp32_without_measuring(tmp_path, measured):
    calls = measured({"2": 0.1, "16": 0.1})
    assert P.auto_precision(384, 6, 1024, cache=tmp_path / "p.json", cpuinfo=OLD) == "fp32"
    assert calls == [] and not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("ratios, expected", [
    ({"2": 0.45, "16": 0.44}, "bf16"),  # AMD EPYC Zen 4 (AVX-512 BF16, no AMX): ~2.2x faster
    ({"2": 1.4, "16": 1.3}, "fp32"),  # the Xeon (AVX-512 BF16, no AMX): slower
    ({"2": 0.8, "16": 0.95}, "fp32"),  # faster at one size only
    ({"2": 0.92, "16": 0.91}, "fp32"),  # within noise of fp32: not worth the rounding
    ({}, "fp32"),
])
def test_verdict_follows_the_measurement(tmp_path, measured, ratios, expected):
    measured(ratios)
    assert P.auto_precision(384, 6, 1024, cache=tmp_path / "p.json", cpuinfo=XEON) == expected


def test_measurement_errors_mean_fp32(tmp_path, measured):
    measured(RuntimeError("no bf16 kernel"))
    assert P.auto_precision(384, 6, 1024, cache=tmp_path / "p.json", cpuinfo=XEON) == "fp32"


def test_verdict_is_cached_per_machine_and_sizes(tmp_path, measured, monkeypatch):
    path = tmp_path / "sub" / "p.json"
    calls = measured({"2": 0.5, "16": 0.5})
    assert P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON) == "bf16"
    assert P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON) == "bf16"
    assert len(calls) == 1  # the second call read the cache
    data = json.loads(path.read_text())
    (key, entry), = data.items()
    assert torch.__version__ in key and f"{torch.get_num_threads()} threads" in key
    assert entry["384x6x1024"] == {"precision": "bf16", "bf16_over_fp32": {"2": 0.5, "16": 0.5}}
    P.auto_precision(256, 4, 768, cache=path, cpuinfo=XEON)  # other sizes: measured again
    assert len(calls) == 2
    monkeypatch.setattr(P, "machine_key", lambda threads=None: "another machine")
    P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON)
    assert len(calls) == 3 and len(json.loads(path.read_text())) == 2


def test_corrupt_cache_is_measured_again(tmp_path, measured):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    calls = measured({"2": 1.5, "16": 1.5})
    assert P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON) == "fp32"
    assert len(calls) == 1 and json.loads(path.read_text())


def test_unwritable_cache_never_fails(tmp_path, measured):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    calls = measured({"2": 0.5, "16": 0.5})
    path = blocker / "free3d" / "p.json"
    assert P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON) == "bf16"
    assert P.auto_precision(384, 6, 1024, cache=path, cpuinfo=XEON) == "bf16"
    assert len(calls) == 2  # nothing cached: measured each time, no error


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders")
def test_read_only_cache_folder_never_fails(tmp_path, measured):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        measured({"2": 0.5, "16": 0.5})
        assert P.auto_precision(384, 6, 1024, cache=folder / "p.json", cpuinfo=XEON) == "bf16"
    finally:
        folder.chmod(0o700)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FREE3D_CACHE", str(tmp_path / "f3d"))
    assert P.cache_dir() == tmp_path / "f3d"
    monkeypatch.delenv("FREE3D_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert P.cache_dir() == tmp_path / "xdg" / "free3d"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert P.cache_dir() == P.Path.home() / ".cache" / "free3d"


def test_real_measurement_is_a_ratio_per_batch():
    ratios = P.measure_bf16_speedup(32, 2, 64, batches=(2, 3), repeats=1)
    assert set(ratios) == {"2", "3"} and all(r > 0 for r in ratios.values())


def test_free3d_auto_uses_the_measured_verdict(monkeypatch, measured):
    from free3d.api import Free3D
    from free3d.models.autoencoders import ConvVQConfig, MotionLifter
    from free3d.models.length_estimator import LengthEstimator
    from free3d.models.masked_transformer import MaskedTransformer
    from free3d.models.residual_transformer import ResidualTransformer
    from free3d.models.token_transformer import transformer_preset
    from free3d.skeleton import get_skeleton
    from free3d.text import get_text_encoder

    monkeypatch.setattr(P, "_cpuinfo", lambda: XEON)
    cfg = transformer_preset("cpu", code_dim=16, latent_dim=32, num_layers=1, num_heads=2, ff_dim=32)
    lifter = MotionLifter(skeleton=get_skeleton("bandai21"),
                          arch=ConvVQConfig(width=16, code_dim=16, num_layers=cfg.num_quantizers,
                                            codebook_size=cfg.num_tokens), input_dim=2)
    parts = dict(lifter=lifter, length_estimator=LengthEstimator(), text_encoder=get_text_encoder())
    root = P.Path(os.environ["FREE3D_CACHE"])
    cases = (({"2": 1.4, "16": 1.4}, "fp32"), ({"2": 0.5, "16": 0.5}, "bf16"))
    for n, (ratios, expected) in enumerate(cases):
        monkeypatch.setenv("FREE3D_CACHE", str(root / expected))
        calls = measured(ratios)
        model = Free3D(masked=MaskedTransformer(cfg), residual=ResidualTransformer(cfg), **parts)
        assert model.precision == expected and calls == [(32, 2, 32)] * (n + 1)
        dtype = torch.bfloat16 if expected == "bf16" else torch.float32
        assert model.masked.head.weight.dtype == dtype
