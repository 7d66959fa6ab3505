"""Bundled trained models (see each folder's MODEL_CARD.md)."""
