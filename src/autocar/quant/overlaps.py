"""Radii read where another vessel overlaps in every view are not lumen measurements.

A node's radius from the masks is the smaller of the views' 2D half-widths
(:func:`autocar.graph.extract.radii_from_masks`): a crossing in one view is harmless, the
other view reads the lumen. Where another part of the tree projects onto the node in every
view, every reading is the width of two vessels side by side, and the profile bulges. A
bulge lifts the stenosis reference (:mod:`autocar.quant.stenosis`), and the normal lumen
beside it, seen clear in one view, reads as a lesion: on the 10 healthy real CT trees of
``benchmarks/bench_qca_real.py`` these were all 4 false findings of the true centre lines
with mask radii (Normal_18 left, whose LCX runs beside its own marginal branch in both views).

:func:`bridge_overlaps` replaces the radius of every node overlapped in every view
(:func:`overlapped_nodes`) by the linear interpolation, along its unbranched path, of the
nearest nodes some view sees clear on either side, as a QCA analyst skips an overlapped
stretch. A lesion under an overlap in both views is not measurable from these two views; it
is bridged, not invented. Hidden nodes at a path's end (an ostium, a tip, a junction) keep
their readings: there is nothing to interpolate from on one side. The bridged radii are for
diameters only: the catheter, the ostium and each vessel's continuation are read on the
radii as measured (:func:`autocar.quant.measure` with ``measured_radii_mm``); bridged, the
overlapped step from a catheter into the ostium hid the catheter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.quant.profiles import arc_length

__all__ = ["BridgedRadii", "bridge_overlaps", "overlapped_nodes"]


def overlapped_nodes(graph: CenterlineGraph, view: CArmView, *, overlap_gap_mm: float = 5.0) -> np.ndarray:
    """(N,) bool: whether another part of ``graph`` projects onto each node in ``view``.

    "Another part": nodes more than ``overlap_gap_mm`` (3D) from the node, except those of the same
    vessel running on nearly straight (along the tree at most 1.2 times their 3D distance, and that
    within three times the two radii: a thick vessel a little foreshortened projects its own nodes
    that far on within the sum of the radii). "Onto": projected centres
    closer than the sum of the two projected radii (from ``graph.radii``) plus one pixel, the rule of
    :func:`autocar.quant.evidence.overlapped_in_view` applied node by node.
    """
    n = graph.num_nodes
    out = np.zeros(n, bool)
    if n < 2:
        return out
    pts = graph.nodes
    rc, _ = view.project(pts)
    r_px = np.nan_to_num(view.radius_px(graph.radii, pts), nan=0.0)
    ok = np.all(np.isfinite(rc), axis=1)
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return out
    reach = 2.0 * float(r_px[idx].max()) + 1.0
    radii = np.asarray(graph.radii, float)
    hits: dict[int, np.ndarray] = {}
    for k, near in zip(idx, cKDTree(rc[idx]).query_ball_point(rc[idx], reach)):
        j = idx[np.asarray(near, np.int64)]
        j = j[np.linalg.norm(pts[j] - pts[k], axis=1) > overlap_gap_mm]
        j = j[np.linalg.norm(rc[j] - rc[k], axis=1) < r_px[j] + r_px[k] + 1.0]
        if len(j):
            hits[int(k)] = j
    if not hits:
        return out
    # A thick vessel seen a little foreshortened projects onto its own nodes a few mm on: those
    # (within three times the two radii, and joined by a nearly straight stretch of the tree) are
    # the same lumen, not another part.
    rows = np.fromiter(hits, np.int64)
    limit = 1.2 * 6.0 * float(radii.max())
    lengths = np.linalg.norm(pts[graph.edges[:, 0]] - pts[graph.edges[:, 1]], axis=1)
    adj = coo_matrix((lengths, (graph.edges[:, 0], graph.edges[:, 1])), shape=(n, n)).tocsr()
    along = dijkstra(adj, directed=False, indices=rows, limit=limit)
    for r, k in enumerate(rows):
        j = hits[int(k)]
        d3 = np.linalg.norm(pts[j] - pts[k], axis=1)
        same = (d3 <= 3.0 * (radii[j] + radii[k])) & (along[r, j] <= 1.2 * d3)
        out[k] = bool(np.any(~same))
    return out


@dataclass(frozen=True)
class BridgedRadii:
    """Radii with the stretches overlapped in every view bridged.

    radii_mm : (N,) the radii, bridged where ``hidden`` (mm).
    hidden : (N,) bool, nodes overlapped in every view.
    bridged : (N,) bool, the hidden nodes whose radius was replaced (their path has a clear node).
    """

    radii_mm: np.ndarray
    hidden: np.ndarray
    bridged: np.ndarray


def bridge_overlaps(graph: CenterlineGraph, views: Sequence[CArmView], *,
                    overlap_gap_mm: float = 5.0) -> BridgedRadii:
    """``graph.radii`` (mm, read in the views' masks) with every node that another part of the tree
    overlaps in every view given the radius interpolated along its path (module doc)."""
    radii = np.asarray(graph.radii, float).copy()
    n = graph.num_nodes
    hidden = np.ones(n, bool) if len(views) else np.zeros(n, bool)
    for view in views:
        hidden &= overlapped_nodes(graph, view, overlap_gap_mm=overlap_gap_mm)
    bridged = np.zeros(n, bool)
    if not hidden.any():
        return BridgedRadii(radii, hidden, bridged)
    original = radii.copy()
    for path in graph.branches():
        h = hidden[path]
        clear = np.flatnonzero(~h)
        if len(clear) < 2:
            continue
        # Only between two clear nodes: an end (an ostium, a tip, a junction) is not extrapolated.
        inner = h & (np.arange(len(path)) > clear[0]) & (np.arange(len(path)) < clear[-1])
        if not inner.any():
            continue
        s = arc_length(graph.nodes[path])
        radii[path[inner]] = np.interp(s[inner], s[clear], original[path[clear]])
        bridged[path[inner]] = True
    return BridgedRadii(radii, hidden, bridged)
