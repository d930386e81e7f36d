"""Batched projection in torch (device and dtype follow the input).

Kept apart from :mod:`autocar.geometry.carm` so that importing the geometry
does not import torch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from autocar.errors import ShapeError
from autocar.geometry.carm import CArmView

__all__ = ["projection_matrices", "project_points"]


def projection_matrices(
    views: Sequence[CArmView], *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Stack the 3x4 matrices of ``views``: shape (V, 3, 4)."""
    import numpy as np

    mats = np.stack([v.projection_matrix for v in views])
    return torch.as_tensor(mats, dtype=dtype, device=device)


def project_points(points: torch.Tensor, matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project points with 3x4 matrices.

    Parameters
    ----------
    points : shape (*, N, 3) mm.
    matrices : shape (*, 3, 4) as from :func:`projection_matrices` (same batch
        dimensions as ``points``, or broadcastable: e.g. points (N, 3) with
        matrices (V, 3, 4) gives (V, N, 2)).

    Returns
    -------
    rc : shape (*, N, 2), (row, col) pixels.
    w : shape (*, N), the third homogeneous coordinate
        ``P[2] . (p, 1) = p . d + SOD``, i.e. the depth in mm.
    """
    if points.shape[-1] != 3:
        raise ShapeError(f"points must have shape (*, N, 3), got {tuple(points.shape)}")
    if matrices.shape[-2:] != (3, 4):
        raise ShapeError(f"matrices must have shape (*, 3, 4), got {tuple(matrices.shape)}")
    m = matrices.to(dtype=points.dtype, device=points.device)
    rot = m[..., :, :3]  # (*, 3, 3)
    trans = m[..., :, 3]  # (*, 3)
    h = torch.matmul(points, rot.transpose(-1, -2)) + trans.unsqueeze(-2)  # (*, N, 3)
    w = h[..., 2]
    col = h[..., 0] / w
    row = h[..., 1] / w
    return torch.stack([row, col], dim=-1), w
