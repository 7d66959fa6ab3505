"""DDP under torchrun (gloo, 2 CPU processes) against one process with the same global batch.

Each launch trains the whole chain on tiny procedural data: the 2D prior, the ML-RQ
(Lrec, Lcycle and their random views, the quantizer's Gumbel noise, quantize dropout
and EMA codebooks) and the masked and residual transformers (random masks, layers and
text dropout). Dropout layers are off: their masks are the one draw that is per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = textwrap.dedent('''
    import sys
    from free3d.models.token_transformer import transformer_preset
    from free3d.training.generation import make_generator_config, train_generator
    from free3d.training.lifting import make_config, train

    data, out, steps, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
    # resume: each stage first runs to half its steps, then is started again to the end
    lengths = (steps // 2, steps) if resume else (steps,)
    vq = {"width": 32, "code_dim": 16, "num_layers": 3, "codebook_size": 32, "depth": 1,
          "dropout": 0.0, "quantize_dropout": 0.5, "sample_temperature": 0.5, "down": 2}
    # a large learning rate, so that a wrong gradient would move the weights far apart
    fast = dict(arch=vq, batch_size=8, window=16, warmup_iters=2, log_every=1, checkpoint_every=2,
                finetune_iters=0, lr=1e-2)
    for n in lengths:
        train(make_config("prior", data, iters=n, **fast), out + "/prior", progress=False, device="cpu")
    for n in lengths:
        train(make_config("mlrq", data, prior=out + "/prior", iters=n, **fast), out + "/mlrq",
              progress=False, device="cpu")
    for stage in ("masked", "residual"):
        for n in lengths:
            cfg = make_generator_config(stage, data, out + "/mlrq", iters=n, batch_size=8, lr=1e-2,
                                        warmup_iters=2, log_every=1, checkpoint_every=2)
            cfg.arch = transformer_preset("cpu", num_tokens=32, num_quantizers=3, code_dim=16,
                                          latent_dim=32, num_layers=1, num_heads=2, ff_dim=64,
                                          text_dim=768, dropout=0.0,
                                          cond_drop_prob=0.1 if stage == "masked" else 0.2).to_dict()
            train_generator(cfg, out + "/" + stage, progress=False, device="cpu")
''')
STAGES = ("prior", "mlrq", "masked", "residual")


def _launch(tmp_path, data, out, steps: int, procs: int, resume: bool = False) -> None:
    script = tmp_path / "chain.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if procs == 1:
        cmd = [sys.executable, str(script)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
               "--standalone", str(script)]
    done = subprocess.run([*cmd, str(data), str(out), str(steps), "resume" if resume else "once"],
                          env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(run):
    """The run's weights, less the attention's key bias: softmax ignores it, so its
    gradient is rounding noise, which Adam scales up to full steps in any run."""
    weights = load_file(str(run / "model.safetensors"))
    for name, w in weights.items():
        if name.endswith("self_attn.in_proj_bias"):
            d = len(w) // 3
            weights[name] = torch.cat([w[:d], w[2 * d:]])
    return weights


@pytest.fixture(scope="module")
def runs(procedural_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    _launch(tmp, procedural_dataset, tmp / "one", 6, procs=1)
    _launch(tmp, procedural_dataset, tmp / "two", 6, procs=2)
    # two processes again, each stage stopped at step 3 and resumed (checkpoints every 2
    # steps, and at the end)
    _launch(tmp, procedural_dataset, tmp / "resumed", 6, procs=2, resume=True)
    return tmp


@pytest.mark.parametrize("stage", STAGES)
def test_two_processes_equal_one_with_the_same_global_batch(runs, stage):
    one, two = _weights(runs / "one" / stage), _weights(runs / "two" / stage)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=2e-4, rtol=1e-3, msg=f"{stage} {name}")


@pytest.mark.parametrize("stage", STAGES)
def test_a_resumed_two_process_run_ends_where_an_unbroken_one_does(runs, stage):
    one, resumed = _weights(runs / "one" / stage), _weights(runs / "resumed" / stage)
    for name in one:
        torch.testing.assert_close(resumed[name], one[name], atol=2e-4, rtol=1e-3, msg=f"{stage} {name}")
    rows = (runs / "resumed" / stage / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [str(i) for i in range(1, 7)]  # each step once
