"""Learnable parts: sparse 3D convolutions and networks."""
