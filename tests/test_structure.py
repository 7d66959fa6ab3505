"""The package's layout rules: inference never imports training code."""

from __future__ import annotations

import subprocess
import sys


def test_generating_and_evaluating_import_no_training_code():
    code = (
        "import sys\n"
        "import free3d.evaluation.generation, free3d.evaluation.lift, free3d.evaluation.physics\n"
        "from free3d import Free3D\n"
        "Free3D.from_pretrained(device='cpu').generate('a person walks', seconds=2, seed=0)\n"
        "print(sorted(m for m in sys.modules if m.startswith('free3d.training')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
