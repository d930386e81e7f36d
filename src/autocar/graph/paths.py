"""Branch paths of a centre-line graph: sampling along a path, its length, the subgraph of
chosen paths, and the union of two graphs with the loose ends joined.

Used by ghost pruning (:mod:`autocar.graph.prune`), the ghost score's labels
(:mod:`autocar.graph.ghost_score`), the catheter finder and the dynamic completion. A path is
an array of node indices along edges of the graph; positions and lengths in mm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph

__all__ = ["densify", "path_length", "edges_of", "subgraph", "join_graphs"]


def densify(nodes: np.ndarray, radii: np.ndarray, path: np.ndarray, step_mm: float, trim_mm: float):
    """Points (M, 3) mm and radii (M,) mm every ``step_mm`` along the node path ``path`` (node
    indices), leaving out ``trim_mm`` at either end."""
    p = nodes[path]
    r = radii[path]
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(s[-1])
    if total <= 0:
        return p[:1], r[:1]
    lo, hi = min(trim_mm, total / 2), max(total - trim_mm, total / 2)
    t = np.arange(lo, hi + 1e-9, step_mm) if hi > lo else np.array([total / 2])
    pts = np.stack([np.interp(t, s, p[:, k]) for k in range(3)], axis=1)
    return pts, np.interp(t, s, r)


def path_length(graph: CenterlineGraph, path: np.ndarray) -> float:
    """Length (mm) of the node path ``path`` (node indices) of ``graph``."""
    return float(np.linalg.norm(np.diff(graph.nodes[path], axis=0), axis=1).sum())


def edges_of(graph: CenterlineGraph, paths: Sequence[np.ndarray]) -> np.ndarray:
    """(E,) bool: the edges of ``graph`` that run along any of ``paths`` (node index arrays)."""
    eid = {(min(i, j), max(i, j)): e for e, (i, j) in enumerate(graph.edges.tolist())}
    keep = np.zeros(graph.num_edges, bool)
    for p in paths:
        for i, j in zip(p[:-1].tolist(), p[1:].tolist()):
            keep[eid[(min(i, j), max(i, j))]] = True
    return keep


def subgraph(graph: CenterlineGraph, keep_edges: np.ndarray) -> CenterlineGraph:
    """The graph of the edges where ``keep_edges`` (E,) bool is True and their nodes (renumbered)."""
    edges = graph.edges[keep_edges]
    used = np.unique(edges)
    remap = -np.ones(graph.num_nodes, np.int64)
    remap[used] = np.arange(len(used))
    labels = None if graph.labels is None else graph.labels[used]
    return CenterlineGraph(graph.nodes[used], graph.radii[used], remap[edges], labels, graph.label_names)


def join_graphs(base: CenterlineGraph, extra: CenterlineGraph, join_mm: float) -> CenterlineGraph:
    """Union of two graphs; every end node of ``extra`` within ``join_mm`` of a node of ``base``
    gets an edge to the nearest one (so added branches hang on the tree instead of floating)."""
    if base.num_nodes == 0:
        return extra
    if extra.num_nodes == 0:
        return base
    nodes = np.vstack([base.nodes, extra.nodes])
    radii = np.concatenate([base.radii, extra.radii])
    edges = [base.edges, extra.edges + base.num_nodes]
    ends = np.flatnonzero(extra.degrees() <= 1)
    if len(ends) and join_mm > 0:
        d, j = cKDTree(base.nodes).query(extra.nodes[ends])
        near = d <= join_mm
        if near.any():
            edges.append(np.stack([j[near], ends[near] + base.num_nodes], axis=1))
    return CenterlineGraph(nodes, radii, np.vstack(edges))
