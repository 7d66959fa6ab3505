"""free3d: text to 3D human motion, learned from single-view 2D motion only."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from free3d import Free3D` without importing torch for every `free3d` command
    if name in ("Free3D", "Motion"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'free3d' has no attribute {name!r}")
