"""Frozen sentence encoders that turn captions and prompts into one vector each."""

from .cache import EmbeddingCache, default_cache_path
from .encoders import (
    CLIPTextEncoder,
    MiniLMTextEncoder,
    SidedMiniLMTextEncoder,
    TextEncoder,
    get_text_encoder,
)
from .mirror import mirror_caption

__all__ = ["CLIPTextEncoder", "EmbeddingCache", "MiniLMTextEncoder", "SidedMiniLMTextEncoder", "TextEncoder",
           "default_cache_path", "get_text_encoder", "mirror_caption"]
