"""Bridge short gaps between the pieces of a reconstructed tree where both masks show vessel.

A coronary tree is one connected tree per ostium, but the reconstruction's
graph often is a forest: the network's occupancy dips below threshold for a
voxel or two (at crossings, where the vessel runs along a ray, at a
bifurcation), and ghost pruning removes short pieces between junctions. The
pieces then lie a millimetre or two apart, and everything that reads the tree
as vessels (:mod:`autocar.quant`: ostium, LM length, segments, stenoses)
reads them as separate trees.

:func:`bridge_gaps` joins such pieces the way the images allow: for every two
components, their closest pair of nodes is a candidate bridge when it is at
most ``max_gap_mm`` long; it is accepted only when the straight line between
the two nodes projects onto vessel pixels in every view (each mask dilated by
``tolerance_px``), i.e. the gap lies inside the two-view hull, so two vessels
that merely pass near each other in 3D (not along one ray in either view) stay
apart. Candidates are taken shortest first, one per pair of components, and a
bridge is only added between two pieces not yet joined (Kruskal's rule), so
the result stays a forest. Each bridge gets intermediate nodes at most
``step_mm`` apart; their radii are measured in the masks like every other
node's (:func:`autocar.graph.extract.radii_from_masks`: smallest over the
views), so a narrowing inside the gap, often the reason the network lost the
vessel there, stays measurable; where a node falls off a mask the radius is
interpolated between the bridge's two ends.

Units: mm (world, DICOM LPS), tolerances in pixels. Shapes: N nodes, E edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.cluster.hierarchy import DisjointSet
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView, masks_for_views

__all__ = ["bridge_gaps"]


def _inside_all(points: np.ndarray, masks: Sequence[np.ndarray], views: Sequence[CArmView]) -> bool:
    """True when every point (K, 3) mm projects onto a True pixel of every mask."""
    for mask, view in zip(masks, views):
        rc, _ = view.project(points)
        if not np.all(np.isfinite(rc)):
            return False
        ij = np.rint(rc).astype(np.int64)
        h, w = mask.shape
        if np.any((ij[:, 0] < 0) | (ij[:, 0] >= h) | (ij[:, 1] < 0) | (ij[:, 1] >= w)):
            return False
        if not mask[ij[:, 0], ij[:, 1]].all():
            return False
    return True


def bridge_gaps(
    graph: CenterlineGraph,
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    *,
    max_gap_mm: float = 12.0,
    tolerance_px: int = 1,
    step_mm: float = 1.0,
) -> tuple[CenterlineGraph, int]:
    """Join the components of ``graph`` across gaps the masks fill (module doc).

    Parameters
    ----------
    graph : reconstructed centre-line forest (N nodes, mm).
    masks : one (H, W) vessel mask per view (the masks the graph was made from).
    views : the matching C-arm views.
    max_gap_mm : longest bridge, mm (0 disables bridging).
    tolerance_px : each mask is dilated by this many pixels before the test.
    step_mm : largest spacing of the nodes placed along a bridge, mm.

    Returns
    -------
    (graph, bridges) : the bridged graph (the input's nodes first, in order, then the
        new intermediate nodes) and the number of bridges added.
    """
    if not (np.isfinite(max_gap_mm) and max_gap_mm >= 0):
        raise ValueError(f"max_gap_mm must be finite and >= 0, got {max_gap_mm}")
    if not step_mm > 0:
        raise ValueError(f"step_mm must be > 0, got {step_mm}")
    masks = masks_for_views(masks, views)
    if graph.num_edges == 0 or max_gap_mm == 0:
        return graph, 0
    comp = graph.components()
    if comp.max() == 0:
        return graph, 0
    raw_masks = masks
    if tolerance_px > 0:
        masks = [ndimage.binary_dilation(m, iterations=int(tolerance_px)) for m in masks]
    # Nodes on edges only (isolated nodes carry nothing to join).
    on_edge = np.zeros(graph.num_nodes, bool)
    on_edge[graph.edges.ravel()] = True
    idx = np.flatnonzero(on_edge)
    pairs = cKDTree(graph.nodes[idx]).query_pairs(max_gap_mm, output_type="ndarray")
    if len(pairs) == 0:
        return graph, 0
    i, j = idx[pairs[:, 0]], idx[pairs[:, 1]]
    cross = comp[i] != comp[j]
    i, j = i[cross], j[cross]
    if len(i) == 0:
        return graph, 0
    dist = np.linalg.norm(graph.nodes[i] - graph.nodes[j], axis=1)
    # One candidate per pair of components: its closest node pair.
    ca, cb = np.minimum(comp[i], comp[j]), np.maximum(comp[i], comp[j])
    order = np.lexsort((dist, cb, ca))
    first = np.ones(len(order), bool)
    first[1:] = (ca[order][1:] != ca[order][:-1]) | (cb[order][1:] != cb[order][:-1])
    cand = order[first]
    cand = cand[np.argsort(dist[cand], kind="stable")]

    joined = DisjointSet(range(int(comp.max()) + 1))
    nodes = [graph.nodes]
    radii = [graph.radii]
    labels = None if graph.labels is None else [graph.labels]
    edges = [graph.edges]
    count = graph.num_nodes
    added = 0
    for k in cand.tolist():
        a, b = int(i[k]), int(j[k])
        if joined.connected(int(comp[a]), int(comp[b])):
            continue
        pa, pb = graph.nodes[a], graph.nodes[b]
        samples = max(2, int(np.ceil(dist[k] / 0.25)) + 1)
        t = np.linspace(0.0, 1.0, samples)[:, None]
        if not _inside_all(pa + t * (pb - pa), masks, views):
            continue
        joined.merge(int(comp[a]), int(comp[b]))
        added += 1
        inner = int(np.ceil(dist[k] / step_mm)) - 1
        if inner <= 0:
            edges.append(np.array([[a, b]], np.int64))
            continue
        s = np.arange(1, inner + 1)[:, None] / (inner + 1)
        nodes.append(pa + s * (pb - pa))
        radii.append(graph.radii[a] + s[:, 0] * (graph.radii[b] - graph.radii[a]))
        if labels is not None:
            labels.append(np.full(inner, graph.labels[a], dtype=graph.labels.dtype))
        chain = np.concatenate([[a], count + np.arange(inner), [b]])
        edges.append(np.stack([chain[:-1], chain[1:]], axis=1))
        count += inner
    if added == 0:
        return graph, 0
    all_nodes = np.vstack(nodes)
    all_radii = np.concatenate(radii)
    if count > graph.num_nodes:
        from autocar.graph.extract import radii_from_masks

        new = CenterlineGraph(all_nodes[graph.num_nodes:], all_radii[graph.num_nodes:], np.zeros((0, 2), np.int64))
        all_radii[graph.num_nodes:] = radii_from_masks(new, raw_masks, views)
    out = CenterlineGraph(
        all_nodes, all_radii, np.vstack(edges),
        None if labels is None else np.concatenate(labels), graph.label_names,
    )
    return out, added
