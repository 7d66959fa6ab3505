"""Frozen sentence encoders that turn captions and prompts into one vector each."""

from .cache import EmbeddingCache, default_cache_path
from .encoders import CLIPTextEncoder, MiniLMTextEncoder, TextEncoder, get_text_encoder

__all__ = ["CLIPTextEncoder", "EmbeddingCache", "MiniLMTextEncoder", "TextEncoder", "default_cache_path",
           "get_text_encoder"]
