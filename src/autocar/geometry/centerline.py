"""The centre-line graph: the object passed between every stage.

A vessel tree (or forest) is a set of centre-line nodes with radii joined by
undirected edges. Shapes: N nodes, E edges; positions in world mm (DICOM LPS,
origin at the isocentre), radii in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autocar.errors import ShapeError, TreeFormatError

__all__ = ["CenterlineGraph"]


@dataclass(frozen=True, eq=False)
class CenterlineGraph:
    """Vessel centre lines with radii.

    Parameters
    ----------
    nodes : (N, 3) float array, mm.
    radii : (N,) float array, mm, >= 0.
    edges : (E, 2) int array of node indices; undirected, no self loops.
    labels : (N,) int array or None
        Index into ``label_names`` of the named vessel each node belongs to
        (e.g. ``LAD``); -1 for unlabelled.
    label_names : tuple of str
        Names of the labelled vessels.
    """

    nodes: np.ndarray
    radii: np.ndarray
    edges: np.ndarray
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        nodes = np.asarray(self.nodes, dtype=np.float64)
        radii = np.asarray(self.radii, dtype=np.float64)
        edges = np.asarray(self.edges)
        if nodes.ndim != 2 or nodes.shape[1] != 3:
            raise ShapeError(f"nodes must have shape (N, 3), got {nodes.shape}")
        n = nodes.shape[0]
        if radii.shape != (n,):
            raise ShapeError(f"radii must have shape ({n},) to match nodes, got {radii.shape}")
        if edges.size == 0:
            edges = np.zeros((0, 2), dtype=np.int64)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ShapeError(f"edges must have shape (E, 2), got {edges.shape}")
        if not np.issubdtype(edges.dtype, np.integer):
            if not np.all(np.isfinite(edges)) or not np.all(edges == np.round(edges)):
                raise TreeFormatError("edges must hold integer node indices")
        edges = edges.astype(np.int64)
        if not np.all(np.isfinite(nodes)):
            raise TreeFormatError("nodes contain NaN or infinite coordinates")
        if not np.all(np.isfinite(radii)) or np.any(radii < 0):
            raise TreeFormatError("radii must be finite and >= 0")
        if edges.size and (edges.min() < 0 or edges.max() >= n):
            raise TreeFormatError(
                f"edge indices must be in [0, {n - 1}], got range [{edges.min()}, {edges.max()}]"
            )
        if edges.size and np.any(edges[:, 0] == edges[:, 1]):
            raise TreeFormatError("edges must not join a node to itself")
        labels = self.labels
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (n,):
                raise ShapeError(f"labels must have shape ({n},), got {labels.shape}")
            if labels.size and (labels.max() >= len(self.label_names) or labels.min() < -1):
                raise TreeFormatError("labels must index label_names or be -1")
            labels.setflags(write=False)
        for a in (nodes, radii, edges):
            a.setflags(write=False)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "radii", radii)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_names", tuple(self.label_names))

    # --------------------------------------------------------------- basics
    @property
    def num_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def degrees(self) -> np.ndarray:
        """Number of edges at each node, shape (N,)."""
        return np.bincount(self.edges.ravel(), minlength=self.num_nodes)

    def neighbours(self) -> list[list[int]]:
        """Adjacency lists, one per node."""
        adj: list[list[int]] = [[] for _ in range(self.num_nodes)]
        for i, j in self.edges.tolist():
            adj[i].append(j)
            adj[j].append(i)
        return adj

    def edge_lengths(self) -> np.ndarray:
        """Length of each edge in mm, shape (E,)."""
        if self.num_edges == 0:
            return np.zeros(0)
        d = self.nodes[self.edges[:, 0]] - self.nodes[self.edges[:, 1]]
        return np.linalg.norm(d, axis=1)

    @property
    def total_length_mm(self) -> float:
        return float(self.edge_lengths().sum())

    def components(self) -> np.ndarray:
        """Connected-component id of every node, shape (N,), ids 0..K-1."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.num_nodes
        e = self.edges
        a = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        _, comp = connected_components(a, directed=False)
        return comp

    def is_forest(self) -> bool:
        """True when the graph has no cycle (E == N - number of components)."""
        if self.num_nodes == 0:
            return True
        return self.num_edges == self.num_nodes - int(self.components().max() + 1)

    def branches(self) -> list[np.ndarray]:
        """Split into unbranched paths.

        Each path is an int array of node indices running between two nodes
        whose degree is not 2 (end points or junctions); junction nodes are
        shared by the paths that meet there. Isolated cycles are returned
        once, starting and ending at the same node.
        """
        adj = self.neighbours()
        deg = self.degrees()
        used = set()
        paths: list[np.ndarray] = []
        for start in range(self.num_nodes):
            if deg[start] == 2:
                continue
            for nxt in adj[start]:
                key = (min(start, nxt), max(start, nxt))
                if key in used:
                    continue
                path = [start, nxt]
                used.add(key)
                prev, cur = start, nxt
                while deg[cur] == 2:
                    a, b = adj[cur]
                    step = b if a == prev else a
                    k = (min(cur, step), max(cur, step))
                    if k in used:
                        break
                    used.add(k)
                    path.append(step)
                    prev, cur = cur, step
                paths.append(np.asarray(path, dtype=np.int64))
        # Cycles made only of degree-2 nodes.
        for i, j in self.edges.tolist():
            key = (min(i, j), max(i, j))
            if key in used:
                continue
            path = [i, j]
            used.add(key)
            prev, cur = i, j
            while cur != i:
                a, b = adj[cur]
                step = b if a == prev else a
                used.add((min(cur, step), max(cur, step)))
                path.append(step)
                prev, cur = cur, step
            paths.append(np.asarray(path, dtype=np.int64))
        return paths

    # ------------------------------------------------------------ transforms
    def forest_edges(self) -> np.ndarray:
        """(E,) bool: the edges of a shortest spanning forest (Kruskal on edge length, ties by index).

        All True when the graph is a forest already; where there is a cycle its longest edge is False.
        """
        from scipy.cluster.hierarchy import DisjointSet

        keep = np.zeros(self.num_edges, bool)
        sets = DisjointSet(range(self.num_nodes))
        for e in np.argsort(self.edge_lengths(), kind="stable"):
            a, b = (int(x) for x in self.edges[e])
            if sets.merge(a, b):
                keep[e] = True
        return keep

    def with_nodes(self, nodes: np.ndarray, radii: np.ndarray | None = None) -> "CenterlineGraph":
        """Same topology and labels, new positions (and optionally radii)."""
        return CenterlineGraph(
            nodes=nodes,
            radii=self.radii if radii is None else radii,
            edges=self.edges,
            labels=self.labels,
            label_names=self.label_names,
        )

    def transformed(self, fn: Callable[[np.ndarray], np.ndarray]) -> "CenterlineGraph":
        """Apply a point map ``fn((N, 3)) -> (N, 3)`` to the nodes."""
        return self.with_nodes(fn(self.nodes.copy()))

    def resampled(self, max_spacing_mm: float = 1.0) -> "CenterlineGraph":
        """Insert nodes on long edges so that no edge is longer than ``max_spacing_mm``.

        New nodes lie on the straight edge, with linearly interpolated radius
        and the label of the edge's first node. Existing nodes keep their
        indices; new ones are appended.
        """
        if not max_spacing_mm > 0:
            raise ValueError(f"max_spacing_mm must be > 0, got {max_spacing_mm}")
        lengths = self.edge_lengths()
        pieces = np.maximum(1, np.ceil(lengths / max_spacing_mm - 1e-9).astype(np.int64))
        if np.all(pieces == 1):
            return self
        nodes = [self.nodes]
        radii = [self.radii]
        labels = [self.labels] if self.labels is not None else None
        edges = []
        nxt = self.num_nodes
        for (i, j), k in zip(self.edges.tolist(), pieces.tolist()):
            if k == 1:
                edges.append((i, j))
                continue
            t = np.arange(1, k)[:, None] / k
            nodes.append(self.nodes[i] * (1 - t) + self.nodes[j] * t)
            radii.append(self.radii[i] * (1 - t[:, 0]) + self.radii[j] * t[:, 0])
            if labels is not None:
                labels.append(np.full(k - 1, self.labels[i]))
            chain = [i] + list(range(nxt, nxt + k - 1)) + [j]
            edges.extend(zip(chain[:-1], chain[1:]))
            nxt += k - 1
        return CenterlineGraph(
            nodes=np.concatenate(nodes),
            radii=np.concatenate(radii),
            edges=np.asarray(edges, dtype=np.int64),
            labels=None if labels is None else np.concatenate(labels),
            label_names=self.label_names,
        )

    def sample_segments(self, step_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points along every edge, at most ``step_mm`` apart, ends included.

        Returns
        -------
        points : (M, 3) mm; radii : (M,) mm; edge : (M,) index of the edge.
        """
        lengths = self.edge_lengths()
        pieces = np.maximum(1, np.ceil(lengths / step_mm).astype(np.int64))
        counts = pieces + 1
        edge = np.repeat(np.arange(self.num_edges), counts)
        offsets = np.cumsum(counts) - counts
        t = (np.arange(counts.sum()) - np.repeat(offsets, counts)) / np.repeat(pieces, counts)
        a = self.edges[edge, 0]
        b = self.edges[edge, 1]
        pts = self.nodes[a] * (1 - t)[:, None] + self.nodes[b] * t[:, None]
        rad = self.radii[a] * (1 - t) + self.radii[b] * t
        return pts, rad, edge

    # ---------------------------------------------------------- conversions
    def to_frame(self, index: int) -> dict[str, Any]:
        """A frame entry of autocar-reconstruction/1: ``nodes`` [x, y, z, r] and ``edges``.

        Values are rounded to 1e-4 mm (0.1 micrometre), far below any
        imaging resolution, to keep the JSON small.
        """
        nodes = np.concatenate([self.nodes, self.radii[:, None]], axis=1)
        return {
            "index": int(index),
            "nodes": [[round(float(x), 4) for x in row] for row in nodes],
            "edges": self.edges.tolist(),
        }

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> "CenterlineGraph":
        """Inverse of :meth:`to_frame`; raises TreeFormatError on bad content."""
        try:
            raw_nodes = frame["nodes"]
            raw_edges = frame["edges"]
        except (KeyError, TypeError):
            raise TreeFormatError("a frame needs 'nodes' and 'edges'") from None
        try:
            arr = np.asarray(raw_nodes, dtype=np.float64).reshape(-1, 4) if len(raw_nodes) else np.zeros((0, 4))
            edges = np.asarray(raw_edges, dtype=np.float64).reshape(-1, 2) if len(raw_edges) else np.zeros((0, 2))
        except (TypeError, ValueError) as exc:
            raise TreeFormatError(f"frame nodes must be [x, y, z, r] rows and edges [i, j] rows: {exc}") from None
        return cls(nodes=arr[:, :3], radii=arr[:, 3], edges=edges)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box (min (3,), max (3,)) of the nodes, mm."""
        if self.num_nodes == 0:
            raise TreeFormatError("an empty graph has no bounds")
        return self.nodes.min(axis=0), self.nodes.max(axis=0)

    def __repr__(self) -> str:
        return (
            f"CenterlineGraph({self.num_nodes} nodes, {self.num_edges} edges, "
            f"{self.total_length_mm:.1f} mm, labels={list(self.label_names)})"
        )
