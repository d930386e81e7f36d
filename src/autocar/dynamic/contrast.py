"""Which frames of a cine run hold the contrast: wash-in and wash-out frames are left out.

A cine run starts before the contrast reaches the arteries and often ends as it
washes out; in those frames the vessel mask holds a fraction of the tree (or
nothing). Reconstructed, such a frame gives a truncated tree; chosen as the
reference of a dynamic run it truncates every frame; paired with a full frame
of the other view it breaks the two-view hull.

:func:`contrast_frames` measures each frame's vessel area (mask pixels) against
the run's peak (the 90th percentile of the areas, so one odd frame does not set
it) and keeps the frames at or above ``min_fraction`` of it. The result says
which frames were left out and why; nothing is dropped silently.

Shapes: masks (T, H, W); areas in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autocar.errors import ShapeError

__all__ = ["ContrastFrames", "contrast_frames"]


@dataclass(frozen=True)
class ContrastFrames:
    """usable : (T,) bool; share : (T,) vessel area over the run's peak area; reasons : frame -> why left out."""

    usable: np.ndarray
    share: np.ndarray
    reasons: dict[int, str]


def contrast_frames(masks: np.ndarray, *, min_fraction: float = 0.5) -> ContrastFrames:
    """Frames of a run of (T, H, W) vessel masks whose vessel area is at least ``min_fraction`` of the peak.

    A run whose masks are all empty has no usable frame (every reason says so).
    """
    m = np.asarray(masks)
    if m.ndim != 3 or m.shape[0] == 0:
        raise ShapeError(f"masks must have shape (T, H, W) with T >= 1, got {m.shape}")
    if not (0.0 <= float(min_fraction) <= 1.0):
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
    area = (m > 0).reshape(m.shape[0], -1).sum(axis=1).astype(np.float64)
    peak = float(np.percentile(area, 90))
    if peak <= 0:
        return ContrastFrames(np.zeros(len(area), bool), np.zeros(len(area)),
                              {k: "empty vessel mask" for k in range(len(area))})
    share = area / peak
    usable = share >= min_fraction
    reasons = {int(k): (f"vessel area {100 * share[k]:.0f} % of the run's peak (< {100 * min_fraction:.0f} %): "
                        "contrast wash-in or wash-out") for k in np.flatnonzero(~usable)}
    return ContrastFrames(usable, share, reasons)
