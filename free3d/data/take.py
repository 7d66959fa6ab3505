"""What every data source produces: whole takes, before cutting and canonicalising."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Take:
    """One source recording, before cutting: (T, J, 3) metres, Y up, at 20 fps."""

    take_id: str
    joints: np.ndarray
    source: str
    labels: dict[str, str] = field(default_factory=dict)
    captions: list[str] | None = None  # None: built from the content and style labels
    split: str | None = None  # None: the seeded stratified split decides
    max_frames: int | None = None  # set to keep only the start of a long take (captioned data)
