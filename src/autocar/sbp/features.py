"""Per-voxel features of the sparse hull: 2D maps sampled at each voxel's projection.

METHOD.md section 2: at the finest level every hull voxel gets, per view,
values of 2D feature maps (the distance map, CNN features of the mask)
read at its projection, then fused across views.

Pixel convention (shared/GEOMETRY.md): pixel (row, col) has its centre at
integer indices, so ``grid_sample`` is used with ``align_corners=True``
(normalised -1 and +1 are the centres of the first and last pixels).
Shape letters: V views, C channels, H x W image, N voxels, F features.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.geometry.torch_ops import project_points, projection_matrices
from autocar.sbp.carve import SparseHull, check_masks, distance_maps

__all__ = ["sample_maps", "hull_features", "hull_feature_names"]

_PADDING = ("border", "zeros", "reflection")


def sample_maps(
    maps: torch.Tensor,
    centers_mm: torch.Tensor,
    views: Sequence[CArmView],
    *,
    padding_mode: str = "border",
) -> torch.Tensor:
    """Bilinear samples of per-view 2D maps at the projections of 3D points.

    Parameters
    ----------
    maps : shape (V, C, H, W)
        Any per-view feature maps (distance maps in px, CNN features), one
        per view, H x W = (view.rows, view.columns) for every view.
    centers_mm : shape (N, 3)
        World points (voxel centres), mm. Converted to the dtype and device
        of ``maps``.
    views : V :class:`~autocar.geometry.CArmView`.
    padding_mode : {"border", "zeros", "reflection"}
        Value for projections off the image (``grid_sample``'s modes). The
        default "border" repeats the edge pixel, which suits distance maps
        (an off-image point is not read as vessel unless the edge is).

    Returns
    -------
    shape (N, V, C), dtype and device of ``maps``
        ``out[n, v, c]`` is ``maps[v, c]`` bilinearly interpolated at the
        (row, col) projection of point n in view v. Differentiable with
        respect to ``maps`` (and ``centers_mm``).

    Examples
    --------
    >>> view = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 8, 8)
    >>> cols = torch.arange(8.0).expand(1, 1, 8, 8)
    >>> sample_maps(cols, torch.zeros(1, 3), [view])   # isocentre -> col 3.5
    tensor([[[3.5000]]])
    """
    if maps.ndim != 4:
        raise ShapeError(f"maps must have shape (V, C, H, W), got {tuple(maps.shape)}")
    views = list(views)
    if maps.shape[0] != len(views):
        raise ShapeError(f"maps has {maps.shape[0]} views (dim 0), views has {len(views)}")
    h, w = int(maps.shape[2]), int(maps.shape[3])
    for i, v in enumerate(views):
        if (v.rows, v.columns) != (h, w):
            raise ShapeError(f"maps are {h}x{w} px but view {i} is {v.rows}x{v.columns} px")
    if centers_mm.ndim != 2 or centers_mm.shape[1] != 3:
        raise ShapeError(f"centers_mm must have shape (N, 3), got {tuple(centers_mm.shape)}")
    if padding_mode not in _PADDING:
        raise ValueError(f"padding_mode must be one of {_PADDING}, got {padding_mode!r}")
    dtype = maps.dtype if maps.is_floating_point() else torch.float32
    pts = centers_mm.to(dtype=dtype, device=maps.device)
    mats = projection_matrices(views, dtype=dtype, device=maps.device)  # (V, 3, 4)
    rc, _ = project_points(pts.unsqueeze(0), mats)  # (V, N, 2) (row, col)
    # align_corners=True: -1 and +1 are the centres of pixels 0 and size-1.
    gx = rc[..., 1] * (2.0 / max(w - 1, 1)) - 1.0
    gy = rc[..., 0] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(1)  # (V, 1, N, 2) as (x, y)
    out = F.grid_sample(maps.to(dtype), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    return out[:, :, 0, :].permute(2, 0, 1)  # (V, C, N) -> (N, V, C)


def hull_feature_names(n_views: int) -> tuple[str, ...]:
    """Column names of :func:`hull_features` for ``n_views`` views."""
    per = ("dist_px", "exp_neg_dist", "radius_px")
    names = [f"v{v}_{p}" for v in range(n_views) for p in per]
    names += [f"min_{p}" for p in per] + [f"max_{p}" for p in per]
    return tuple(names)


def hull_features(
    hull: SparseHull, masks: Sequence[np.ndarray], views: Sequence[CArmView]
) -> np.ndarray:
    """Basic per-voxel features of a carved hull.

    Parameters
    ----------
    hull : SparseHull with N voxels.
    masks : V masks (H, W), bool or numeric (> 0 is vessel), as given to
        :func:`~autocar.sbp.carve.carve`.
    views : V views.

    Returns
    -------
    (N, 3 V + 6) float32
        Per view v (columns ``3v .. 3v+2``): the distance map (px) bilinearly
        sampled at the voxel centre's projection, ``exp(-distance)``, and
        the projected radius of the voxel (half its edge, px, via
        :meth:`CArmView.radius_px`); then the minimum over views of those
        three, then the maximum. Names: :func:`hull_feature_names`.
    """
    mask_list = check_masks(masks, views)
    views = list(views)
    n_feat = 3 * len(views) + 6
    n = len(hull)
    if n == 0:
        return np.zeros((0, n_feat), dtype=np.float32)
    shapes = {m.shape for m in mask_list}
    centres = np.asarray(hull.centers_mm, dtype=np.float32)
    if len(shapes) == 1:
        dist = torch.from_numpy(distance_maps(mask_list)).unsqueeze(1)  # (V, 1, H, W)
        with torch.no_grad():
            d = sample_maps(dist, torch.from_numpy(centres), views)[:, :, 0].numpy()  # (N, V)
    else:  # views of different sizes: one at a time
        cols = []
        for m, v in zip(mask_list, views):
            dm = torch.from_numpy(distance_maps([m])).unsqueeze(1)
            with torch.no_grad():
                cols.append(sample_maps(dm, torch.from_numpy(centres), [v])[:, 0, 0].numpy())
        d = np.stack(cols, axis=1)
    pts = centres.astype(np.float64)
    rad = np.stack([v.radius_px(0.5 * hull.voxel_mm, pts) for v in views], axis=1)  # (N, V)
    per = np.stack([d, np.exp(-d), rad], axis=2).astype(np.float32)  # (N, V, 3)
    fused = np.concatenate([per.min(axis=1), per.max(axis=1)], axis=1)
    return np.concatenate([per.reshape(n, -1), fused], axis=1).astype(np.float32)
