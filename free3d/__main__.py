"""``python -m free3d``: the same as the ``free3d`` command."""

import sys

from .cli import main

sys.exit(main())
