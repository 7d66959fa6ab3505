"""Data: sources (BVH mocap, HumanML3D/KIT, procedural), canonical 3D clips, single-view
2D training data, captions and splits. 3D ground truth lives apart, in ground_truth."""
