"""Checking and normalising grey-level angiograms for 2D vessel segmentation.

Angiograms come as uint8, uint16 or float arrays with any window. Both
segmenters first map them to a common scale with robust percentiles:
``(image - p1) / (p99 - p1) - 0.5``, clipped to [-1, 1], so the darkest
1 % (contrast-filled vessels, collimator) sits near -0.5 and the brightest
1 % near +0.5 whatever the bit depth or display window.
"""

from __future__ import annotations

import numpy as np

from autocar.errors import AutocarError, ShapeError

__all__ = ["HIGH_PERCENTILE", "LOW_PERCENTILE", "check_image", "normalise_image"]

LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.0


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Validate one grey-level image and return it as float64 (H, W).

    Raises
    ------
    ShapeError
        Not a 2D array, or an empty one.
    AutocarError
        Non-numeric dtype, NaN or infinite pixels, or a constant image
        (no contrast to segment).
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be a 2D grey-level array (H, W), got {arr.ndim}D with shape {arr.shape}")
    if arr.size == 0 or min(arr.shape) < 2:
        raise ShapeError(f"{name} must be at least 2 x 2 pixels, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise AutocarError(f"{name} must hold integer or float grey levels, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise AutocarError(f"{name} has {bad} NaN or infinite pixels")
    if float(out.max()) == float(out.min()):
        raise AutocarError(f"{name} is constant (every pixel {float(out.min())!r}): nothing to segment")
    return out


def normalise_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Robustly normalised copy of ``image``, (H, W) float32 in [-1, 1].

    ``(image - p1) / (p99 - p1) - 0.5`` clipped to [-1, 1], with ``p1``,
    ``p99`` the 1st and 99th percentiles (the full range when they
    coincide, e.g. a mostly flat image). Vessels (dark) map low.
    """
    x = check_image(image, name)
    lo, hi = np.percentile(x, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    out = (x - lo) / (hi - lo) - 0.5
    return np.clip(out, -1.0, 1.0).astype(np.float32)
