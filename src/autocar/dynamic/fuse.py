"""Multi-frame position fusion: every frame pair's static tree votes on where each node is.

The dynamic reconstruction takes its nodes from one reference frame's static
tree (:mod:`autocar.pipeline.dynamic`) and moves them to every frame with the
tracked deformation (:mod:`autocar.dynamic.track`). The reference's errors
that the tracking cannot see are carried to every frame: a vessel placed
1-3 mm off in depth still projects onto both views' masks, so the 2D matching
keeps it there. Each frame pair's static reconstruction makes *its own* such
errors (the network's occupancy, the overlaps and the phase lag of the pair
differ from frame to frame), so the frames together hold the information to
settle them.

:func:`fuse_positions` lets every frame vote. For node i and frame k, the
nearest point of frame k's static tree to the node's tracked position in frame
k (within ``reach_mm``) proposes a correction vector ``c_ik`` (mm, world
frame). The node's correction is the component-wise median of its proposals
over the frames (the reference's own proposal is ~0: it is where the node came
from, so it counts as one vote for "stay"), taken only when at least
``min_votes`` frames proposed one; it is smoothed along the tree (mean with the
graph neighbours within ``smooth_hops`` edges) so that one vessel moves as a
piece, and added to the node's position in every frame (the deformation
between frames is close to a translation at the scale of a correction). A
couple of ``rounds`` let nodes that moved pick up closer proposals.

A median of independent estimates is the point: one frame's ghost or depth
error is outvoted by the frames that put the vessel elsewhere, where a single
reference frame has no one to outvote it.

Measured (``benchmarks/bench_dynamic.py``, the module's note in README's
dynamic table): see :data:`FuseConfig`.

Shapes: N nodes, T frames; positions and corrections world mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError

__all__ = ["FuseConfig", "FusionResult", "fuse_positions", "vote_corrections"]


@dataclass(frozen=True)
class FuseConfig:
    """Options of :func:`fuse_positions`.

    reach_mm : a frame proposes a correction for a node only when its static tree
        passes within this distance of the node's tracked position (mm).
    min_votes : frames that must propose a correction for a node to move.
    rounds : vote rounds (each from the positions the previous one gave).
    smooth_hops : corrections averaged over the graph neighbours within this
        many edges (0: none).
    step_mm : sampling step of the static trees' centre lines (mm).
    """

    reach_mm: float = 3.0
    min_votes: int = 2
    rounds: int = 2
    smooth_hops: int = 1
    step_mm: float = 0.25

    def __post_init__(self) -> None:
        if not (np.isfinite(self.reach_mm) and self.reach_mm > 0):
            raise ValueError(f"reach_mm must be > 0, got {self.reach_mm}")
        if not (np.isfinite(self.step_mm) and self.step_mm > 0):
            raise ValueError(f"step_mm must be > 0, got {self.step_mm}")
        for name in ("min_votes", "rounds", "smooth_hops"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be >= 1, got {self.min_votes}")


@dataclass
class FusionResult:
    """The fused frames and what the vote did.

    graphs : T graphs, the input's topology and radii, nodes moved by ``correction``.
    correction : (N, 3) mm, the correction added to every frame's node positions.
    votes : (N,) frames that proposed a correction for each node (last round).
    """

    graphs: list[CenterlineGraph]
    correction: np.ndarray
    votes: np.ndarray

    def summary(self) -> dict[str, float | int]:
        """JSON-ready: nodes moved, mean and largest correction (mm)."""
        size = np.linalg.norm(self.correction, axis=1) if len(self.correction) else np.zeros(0)
        return {"nodes_moved": int(np.sum(size > 1e-6)),
                "mean_correction_mm": round(float(size.mean()), 3) if len(size) else 0.0,
                "max_correction_mm": round(float(size.max()), 3) if len(size) else 0.0}


def vote_corrections(positions: np.ndarray, clouds: Sequence[np.ndarray | None], *, reach_mm: float,
                     min_votes: int) -> tuple[np.ndarray, np.ndarray]:
    """Median correction per node over the frames that propose one.

    Parameters
    ----------
    positions : (T, N, 3) node positions in each frame, mm.
    clouds : T point clouds (M_k, 3) mm, each frame's static centre line sampled
        densely (None or empty: the frame does not vote).
    reach_mm, min_votes : see :class:`FuseConfig`.

    Returns
    -------
    correction : (N, 3) mm, zero where fewer than ``min_votes`` frames voted.
    votes : (N,) int, frames that proposed a correction.
    """
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ShapeError(f"positions must have shape (T, N, 3), got {x.shape}")
    if len(clouds) != x.shape[0]:
        raise ShapeError(f"{len(clouds)} point clouds for {x.shape[0]} frames")
    t_count, n = x.shape[:2]
    proposals = np.full((t_count, n, 3), np.nan)
    for k, cloud in enumerate(clouds):
        if cloud is None or len(cloud) == 0 or n == 0:
            continue
        pts = np.asarray(cloud, dtype=np.float64)
        dist, idx = cKDTree(pts).query(x[k], distance_upper_bound=reach_mm)
        ok = np.isfinite(dist)
        proposals[k, ok] = pts[idx[ok]] - x[k, ok]
    votes = np.sum(np.isfinite(proposals[:, :, 0]), axis=0)
    correction = np.zeros((n, 3))
    enough = votes >= min_votes
    if enough.any():
        correction[enough] = np.nanmedian(proposals[:, enough], axis=0)
    return correction, votes


def _smooth_along(graph: CenterlineGraph, values: np.ndarray, hops: int) -> np.ndarray:
    """Mean of ``values`` (N, 3) over each node and its neighbours within ``hops`` edges."""
    out = np.asarray(values, dtype=np.float64)
    if hops <= 0 or graph.num_edges == 0:
        return out
    n = graph.num_nodes
    e = graph.edges
    for _ in range(hops):
        total = out.copy()
        count = np.ones(n)
        np.add.at(total, e[:, 0], out[e[:, 1]])
        np.add.at(total, e[:, 1], out[e[:, 0]])
        np.add.at(count, e[:, 0], 1.0)
        np.add.at(count, e[:, 1], 1.0)
        out = total / count[:, None]
    return out


def fuse_positions(graphs: Sequence[CenterlineGraph], static_graphs: Sequence[CenterlineGraph | None],
                   config: FuseConfig = FuseConfig()) -> FusionResult:
    """Move the nodes of a tracked tree where the frames' static trees put them (module doc).

    Parameters
    ----------
    graphs : T graphs of one tracked tree (same nodes and edges, positions per frame, mm).
    static_graphs : T static reconstructions, one per frame (None or empty: no vote).
    config : the options.

    Returns
    -------
    :class:`FusionResult`; with no graph, no node or fewer than ``min_votes``
    voting frames the input positions come back unchanged.
    """
    graphs = list(graphs)
    if len(graphs) != len(static_graphs):
        raise ShapeError(f"{len(static_graphs)} static graphs for {len(graphs)} tracked frames")
    if not graphs:
        return FusionResult([], np.zeros((0, 3)), np.zeros(0, np.int64))
    first = graphs[0]
    for k, g in enumerate(graphs):
        if g.num_nodes != first.num_nodes or not np.array_equal(g.edges, first.edges):
            raise ShapeError(f"tracked frame {k} does not share frame 0's nodes and edges")
    n = first.num_nodes
    clouds = [s.sample_segments(config.step_mm)[0] if s is not None and s.num_edges else None
              for s in static_graphs]
    total = np.zeros((n, 3))
    votes = np.zeros(n, np.int64)
    if n == 0 or sum(c is not None for c in clouds) < config.min_votes:
        return FusionResult(graphs, total, votes)
    positions = np.stack([g.nodes for g in graphs])
    for _ in range(config.rounds):
        step, votes = vote_corrections(positions + total, clouds, reach_mm=config.reach_mm,
                                       min_votes=config.min_votes)
        step = _smooth_along(first, step, config.smooth_hops)
        total = total + step
    fused = [g.with_nodes(g.nodes + total) for g in graphs]
    return FusionResult(fused, total, votes)
