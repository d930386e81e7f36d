"""The collimated field of an angiogram: where the image can hold vessels at all.

Outside the X-ray field (collimator iris, shutter blades, the dark frame that
many systems store around the image) there is no anatomy, but its edge is a
dark band beside bright background, which a vessel segmenter readily takes
for a vessel; the ghosts this makes in 3D are long and straight. Both
segmenters (:mod:`autocar.seg2d.frangi`, :mod:`autocar.seg2d.segment`) zero
their output outside :func:`field_of_view`.

Two kinds of outside region are found, on the normalised image ``norm``
(:func:`~autocar.seg2d.image.normalise_image`; 1st / 99th percentiles at
-0.5 / 0.5):

1. **Flat black** (behind a lead collimator, no noise): a region that touches
   the image border, covers at least 0.2 % of the image, survives an
   opening by a 5 px disc (so dark vessels never qualify), and whose pixels
   are within 0.06 of the 0.5th percentile with a local (5 x 5) standard
   deviation below 0.01.
2. **Dark beyond the field's hull** (a noisy frame or shutter band of any
   width, e.g. the 4-12 px octagonal frame of a GE system): the X-ray field
   is convex (a disc cut by straight blades), and bright background surrounds
   every vessel inside it. On the image smoothed by a Gaussian of
   ``SMOOTH_SIGMA_PX``, with ``lo`` its 0.5th percentile and ``mid`` its
   median, the field is the convex hull of the background (pixels above
   ``lo + 0.5 (mid - lo)``, in connected pieces of at least 1 % of the
   image, so burnt-in text in the frame does not count); outside are the
   dark pixels (below ``lo + 0.3 (mid - lo)``) beyond that hull in regions
   that run along the image border (:data:`BORDER_CONTACT_MIN`) and whose
   edge towards the field is sharp (median slope at least
   :data:`EDGE_SLOPE_MIN`; dark anatomy such as the diaphragm fades out). A
   vessel that leaves the image has background on both sides at the border,
   so it stays inside the hull; one that leaves it over dark anatomy only
   crosses the border. Beyond the hull, pixels within :data:`GAP_BRIDGE_PX`
   of such a region are outside too (gaps of a thin noisy band).

The union is grown by ``margin_px`` (the edge's penumbra and the
segmenters' reach).

Shapes: (H, W) images, px.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BORDER_CONTACT_MIN", "EDGE_SLOPE_MIN", "GAP_BRIDGE_PX", "SMOOTH_SIGMA_PX", "field_of_view"]

#: Least median slope of the smoothed image across an outside region's edge, in units of
#: (median - 0.5th percentile) per px: the edge of a collimator, shutter or stored frame is sharp
#: (0.10-0.32 on the GE phantom runs, DCA1 and synthetic collimators), a dark band of anatomy
#: (the diaphragm at the image bottom) is not (0.01-0.03 on ``bench_pipeline.py`` case 0).
EDGE_SLOPE_MIN = 0.05
#: Least length of image border an outside region runs along, as a share of the image's smaller
#: side: a frame, shutter or iris runs along the border, a dark vessel leaving the image (over dark
#: anatomy, beyond the background's hull) only crosses it.
BORDER_CONTACT_MIN = 0.1
#: Beyond the hull, pixels this close (px) to a found outside region are outside too: a 3-px
#: noisy frame band is, after smoothing, not dark enough everywhere (the GE phantom's first frames).
GAP_BRIDGE_PX = 12
#: Gaussian smoothing (px) before the background and dark levels are read: it
#: averages the quantum noise of the frame band out.
SMOOTH_SIGMA_PX = 2.0


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _touching_border(mask: np.ndarray, min_area_px: float = 0.0) -> np.ndarray:
    """The 8-connected components of ``mask`` (H, W, uint8) that touch the image border and cover at
    least ``min_area_px`` pixels, (H, W) bool."""
    k, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(k, dtype=bool)
    keep[np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))] = True
    keep[0] = False
    keep &= stats[:, cv2.CC_STAT_AREA] >= min_area_px
    return keep[lab]


def _flat_black(x: np.ndarray) -> np.ndarray:
    lo = float(np.percentile(x, 0.5))
    mean = cv2.blur(x, (5, 5))
    sd = np.sqrt(np.maximum(cv2.blur(x * x, (5, 5)) - mean * mean, 0.0))
    cand = ((x <= lo + 0.06) & (sd < 0.01)).astype(np.uint8)
    cand = cv2.morphologyEx(cand, cv2.MORPH_CLOSE, _disc(2))
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, _disc(5))
    return _touching_border(cand, 0.002 * x.size)


def _dark_beyond_hull(x: np.ndarray) -> np.ndarray:
    s = cv2.GaussianBlur(x, (0, 0), SMOOTH_SIGMA_PX)
    lo, mid = float(np.percentile(s, 0.5)), float(np.median(s))
    if mid - lo < 1e-3:
        return np.zeros(x.shape, dtype=bool)
    bright = (s > lo + 0.5 * (mid - lo)).astype(np.uint8)
    k, lab, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 0.01 * x.size)
    big = big[big > 0]
    if big.size == 0:
        return np.zeros(x.shape, dtype=bool)
    points = cv2.findNonZero(np.isin(lab, big).astype(np.uint8))
    hull = np.zeros(x.shape, dtype=np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    dark = _touching_border(((s < lo + 0.3 * (mid - lo)) & (hull == 0)).astype(np.uint8))
    # Pieces of one noisy band that the threshold broke apart are judged together.
    k, lab = cv2.connectedComponents(cv2.dilate(dark.astype(np.uint8), _disc(3)), connectivity=8)
    if k < 2:
        return dark
    lab = lab * dark
    gy, gx = np.gradient(s)
    slope = np.hypot(gx, gy) / (mid - lo)
    # Each region's edge towards the field (its outer ring, the image border left out).
    ring = (cv2.dilate(lab.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)) * (lab == 0)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = 0
    border_px = np.concatenate([lab[0], lab[-1], lab[1:-1, 0], lab[1:-1, -1]])
    contact = np.bincount(border_px, minlength=k)
    keep = np.zeros(k, dtype=bool)
    for c in range(1, k):
        edge = slope[ring == c]
        keep[c] = (contact[c] >= BORDER_CONTACT_MIN * min(x.shape) and edge.size > 0
                   and float(np.median(edge)) >= EDGE_SLOPE_MIN)
    outside = keep[lab]
    # Where a thin noisy band is not dark enough after smoothing, the gap is beyond the hull all the same.
    near = cv2.dilate(outside.astype(np.uint8), _disc(GAP_BRIDGE_PX)) > 0
    return outside | (near & (hull == 0))


def field_of_view(norm: np.ndarray, *, margin_px: int = 6) -> np.ndarray:
    """Pixels inside the collimated field, (H, W) bool (module doc).

    ``norm``: the normalised image, (H, W) float; ``margin_px``: the outside
    region is grown by this many pixels.
    """
    x = np.asarray(norm, dtype=np.float32)
    outside = (_flat_black(x) | _dark_beyond_hull(x)).astype(np.uint8)
    if margin_px > 0:
        outside = cv2.dilate(outside, _disc(int(margin_px)))
    return outside == 0
