"""Dense 2D optical flow between consecutive frames of one view.

The initialisation step of the dynamic reconstruction (METHOD.md section 4)
moves the projection of the current tree by the image motion between two
frames of each view. Flow is computed with OpenCV's DIS (dense inverse
search, Kroeger et al. ECCV 2016), which runs in milliseconds at 512 x 512.

Vessel masks carry motion only at their edges, and a thin vessel is a few
pixels wide: a binary mask is smoothed into a soft ridge (Gaussian, sigma a
few pixels) before the flow so that the whole vessel and a margin around it
has texture to track. Grey-level angiograms are rescaled to 8 bits from
robust percentiles.

Conventions: images are (H, W); flow is (H, W, 2) in pixels as
(d_row, d_col), so a pixel at (r, c) in the first frame is found at
``(r, c) + flow[r, c]`` in the second (forward flow).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from autocar.errors import ShapeError

__all__ = ["prepare_for_flow", "dense_flow", "sample_flow", "flow_targets"]


def _frame(name: str, image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ShapeError(f"{name} must be a 2D image of at least 8 x 8 pixels, got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise ShapeError(f"{name} must be numeric or boolean, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ShapeError(f"{name} contains NaN or infinite values")
    return arr


def prepare_for_flow(image: Any, *, is_mask: bool | None = None, sigma_px: float = 3.0) -> np.ndarray:
    """8-bit (H, W) image for DIS flow.

    Parameters
    ----------
    image : (H, W) vessel mask (bool or 0/1) or grey-level angiogram.
    is_mask : treat as a mask; guessed from the values when None (bool
        dtype, or only the values 0 and one other).
    sigma_px : Gaussian smoothing of a mask into a soft ridge, px.
    """
    arr = _frame("image", image)
    if is_mask is None:
        is_mask = arr.dtype == bool or np.unique(arr[:: max(1, arr.shape[0] // 64), :: max(1, arr.shape[1] // 64)]).size <= 2
    if is_mask:
        soft = ndimage.gaussian_filter((arr > 0).astype(np.float32), sigma_px)
        peak = float(soft.max())
        if peak > 0:
            soft /= peak
        return np.clip(np.round(255.0 * soft), 0, 255).astype(np.uint8)
    x = arr.astype(np.float32)
    lo, hi = np.percentile(x, [0.5, 99.5])
    if not hi > lo:
        return np.zeros(arr.shape, np.uint8)
    return np.clip(np.round(255.0 * (x - lo) / (hi - lo)), 0, 255).astype(np.uint8)


def dense_flow(first: Any, second: Any, *, is_mask: bool | None = None, preset: str = "medium") -> np.ndarray:
    """Forward optical flow (H, W, 2) as (d_row, d_col) pixels from ``first`` to ``second``.

    Both frames are prepared with :func:`prepare_for_flow`; ``preset`` is one
    of DIS's "ultrafast", "fast" or "medium".
    """
    import cv2

    a = _frame("first", first)
    b = _frame("second", second)
    if a.shape != b.shape:
        raise ShapeError(f"frames must have the same shape, got {a.shape} and {b.shape}")
    presets = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }
    if preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    dis = cv2.DISOpticalFlow_create(presets[preset])
    fa = prepare_for_flow(a, is_mask=is_mask)
    fb = prepare_for_flow(b, is_mask=is_mask)
    xy = dis.calc(fa, fb, None)  # (H, W, 2) as (dx = d_col, dy = d_row)
    return np.ascontiguousarray(xy[..., ::-1]).astype(np.float64)


def sample_flow(flow: np.ndarray, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear flow (N, 2) at (N, 2) (row, col) positions, and (N,) validity (inside, finite)."""
    f = np.asarray(flow, dtype=np.float64)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ShapeError(f"flow must have shape (H, W, 2), got {f.shape}")
    p = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    h, w = f.shape[:2]
    ok = np.all(np.isfinite(p), axis=1) & (p[:, 0] >= 0) & (p[:, 0] <= h - 1) & (p[:, 1] >= 0) & (p[:, 1] <= w - 1)
    out = np.full((p.shape[0], 2), np.nan)
    if ok.any():
        coords = p[ok].T
        for c in range(2):
            out[ok, c] = ndimage.map_coordinates(f[..., c], coords, order=1, mode="nearest")
    return out, ok


def flow_targets(
    first: Any, second: Any, rc: np.ndarray, *, is_mask: bool | None = None, on_mask: Any | None = None,
    tolerance_px: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the (N, 2) points ``rc`` of ``first`` moved to in ``second``.

    Returns ``(targets (N, 2) row/col px, valid (N,) bool)``. A point is valid
    when it lies inside the image and, if ``on_mask`` (an (H, W) vessel mask
    of ``first``) is given, within ``tolerance_px`` of that mask: flow away
    from the vessels says nothing about them.
    """
    flow = dense_flow(first, second, is_mask=is_mask)
    d, ok = sample_flow(flow, rc)
    p = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    if on_mask is not None:
        m = _frame("on_mask", on_mask) > 0
        if m.shape != flow.shape[:2]:
            raise ShapeError(f"on_mask has shape {m.shape}, the frames {flow.shape[:2]}")
        dist = ndimage.distance_transform_edt(~m)
        near = np.zeros(p.shape[0], dtype=bool)
        if ok.any():
            idx = np.round(p[ok]).astype(np.int64)
            near[ok] = dist[idx[:, 0], idx[:, 1]] <= tolerance_px
        ok = ok & near
    return p + np.where(ok[:, None], d, np.nan), ok
