"""Scores against a truth: centre-line precision / recall / F1, distances, clDice, voxel and
reprojection Dice (``metrics``), and the evaluation of a whole result folder (``evaluate``)."""
