"""Readers that turn a source format into :class:`free3d.data.prepare.Take` objects."""
