"""free3d: text to 3D human motion, learned from single-view 2D motion only."""

__version__ = "0.1.0"
