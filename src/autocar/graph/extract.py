"""Centre-line graph from the network's per-voxel predictions (METHOD.md section 4, static).

Steps:

1. Voxels with occupancy probability >= ``threshold`` form a binary volume on
   the finest SBP grid (0.5 mm by default).
2. Connected components shorter than ``min_component_mm`` of centre line are
   dropped: leftover ghosts of the two-view hull are small and isolated,
   real vessels are long.
3. The volume is skeletonised into a centre-line graph
   (:func:`autocar.geometry.volume_graph.graph_from_volume`: spur pruning, cycles
   broken, node spacing <= 1 mm).
4. Radii are measured in 2D, where the images have their full resolution:
   for each view the distance from the projected node to the nearest
   background pixel of that view's mask (its maximum within +-2 px, the
   medial ridge, so a node a voxel off-centre still reads the full radius),
   converted to mm at the node's depth
   (``r = d_px * spacing * w / SID``); the smaller of the views is kept,
   since overlapping vessels can only widen a view's apparent width. Nodes
   that project outside a mask fall back to the 3D distance-transform radius.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.sbp.carve import SparseHull
from autocar.geometry.volume_graph import graph_from_volume

__all__ = ["occupied_volume", "extract_graph", "radii_from_masks", "EMPTY_GRAPH"]

EMPTY_GRAPH = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64))


def occupied_volume(hull: SparseHull, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense bool volume (X, Y, Z) of the kept hull voxels and its origin (3,) mm.

    The volume spans the kept voxels' bounding box plus a 2-voxel border.
    """
    coords = hull.coords[np.asarray(keep, bool)].astype(np.int64)
    if len(coords) == 0:
        return np.zeros((1, 1, 1), bool), np.asarray(hull.origin_mm, float)
    lo = coords.min(axis=0) - 2
    hi = coords.max(axis=0) + 3
    vol = np.zeros(tuple(hi - lo), bool)
    c = coords - lo
    vol[c[:, 0], c[:, 1], c[:, 2]] = True
    origin = np.asarray(hull.origin_mm, float) + lo * hull.voxel_mm
    return vol, origin


def radii_per_view(
    graph: CenterlineGraph, masks: Sequence[np.ndarray], views: Sequence[CArmView]
) -> np.ndarray:
    """Radius (V, N) mm of each node measured in each view's 2D mask; NaN where a node
    projects on background or outside the image (see module doc)."""
    per_view = []
    for mask, view in zip(masks, views):
        m = np.asarray(mask, bool)
        # px to the nearest background; the local maximum within +-2 px finds the
        # vessel's medial ridge even when the 3D node sits a voxel off-centre.
        inside = ndimage.maximum_filter(ndimage.distance_transform_edt(m), size=5) * m
        rc, w = view.project(graph.nodes)
        r = np.round(rc).astype(np.int64, copy=False) if np.all(np.isfinite(rc)) else np.full(rc.shape, -1)
        ok = (r[:, 0] >= 0) & (r[:, 0] < view.rows) & (r[:, 1] >= 0) & (r[:, 1] < view.columns)
        d_px = np.full(graph.num_nodes, np.nan)
        d_px[ok] = inside[r[ok, 0], r[ok, 1]]
        d_px[d_px == 0] = np.nan  # node projects on background: no 2D evidence
        # EDT to the nearest background pixel centre overestimates the edge
        # distance by half a pixel on average.
        spacing = 0.5 * (view.spacing_mm[0] + view.spacing_mm[1])
        per_view.append(np.maximum(d_px - 0.5, 0.5) * spacing * w / view.sid_mm)
    return np.stack(per_view) if per_view else np.zeros((0, graph.num_nodes))


def radii_from_masks(
    graph: CenterlineGraph, masks: Sequence[np.ndarray], views: Sequence[CArmView]
) -> np.ndarray:
    """Radius (N,) mm of each node measured in the 2D masks (min over views, see module doc)."""
    if graph.num_nodes == 0:
        return np.zeros(0)
    per_view = radii_per_view(graph, masks, views)
    r2d = np.fmin.reduce(per_view, axis=0) if len(per_view) else np.full(graph.num_nodes, np.nan)
    return np.where(np.isfinite(r2d), r2d, graph.radii)


def extract_graph(
    hull: SparseHull,
    probability: np.ndarray,
    masks: Sequence[np.ndarray] | None = None,
    views: Sequence[CArmView] | None = None,
    *,
    threshold: float = 0.5,
    min_component_mm: float = 8.0,
    min_branch_mm: float = 3.0,
) -> CenterlineGraph:
    """Centre-line graph (world mm) from per-voxel occupancy probabilities (N,)."""
    keep = np.asarray(probability) >= threshold
    if not keep.any():
        return EMPTY_GRAPH
    vol, origin = occupied_volume(hull, keep)
    # Drop small components: fewer voxels than a tube of min_component_mm
    # length one voxel wide could hold.
    lab, n = ndimage.label(vol, structure=np.ones((3, 3, 3), bool))
    if n > 1:
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]  # voxels per component (sum_labels is ~100x slower)
        small = np.flatnonzero(sizes * hull.voxel_mm < min_component_mm) + 1
        vol[np.isin(lab, small)] = False
    graph = graph_from_volume(vol, (hull.voxel_mm,) * 3, origin, min_branch_mm=min_branch_mm)
    if graph.num_nodes and masks is not None and views is not None:
        graph = graph.with_nodes(graph.nodes, radii_from_masks(graph, masks, views))
    return graph
