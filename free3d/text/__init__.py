"""Frozen sentence encoders that turn captions and prompts into one vector each."""

from .cache import EmbeddingCache
from .encoders import CLIPTextEncoder, MiniLMTextEncoder, TextEncoder, get_text_encoder

__all__ = ["CLIPTextEncoder", "EmbeddingCache", "MiniLMTextEncoder", "TextEncoder", "get_text_encoder"]
