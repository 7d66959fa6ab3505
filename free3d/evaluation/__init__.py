"""Evaluation of free3d against hidden 3D ground truth: lifting metrics and references."""
