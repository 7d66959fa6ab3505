"""Exporting motions: quick-look previews (GIF/PNG/MP4) for people to inspect."""
