"""Evaluation: lifting errors against the hidden 3D, and (later) generation metrics."""
