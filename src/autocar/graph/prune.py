"""Two-view ghost pruning: drop branches that explain nothing the rest of the tree does not.

A two-view visual hull holds "ghosts": pieces of 3D curve that lie where the
back-projection of one vessel in view A crosses the back-projection of a
*different* vessel in view B. A ghost projects onto real vessel pixels in both
views, so reprojection alone cannot reject it; but those pixels are already
explained by the two real vessels it borrows them from. A real branch, in
contrast, is the only explanation of its own pixels in at least one view
(vessels rarely overlap in both of two views with different angles).

:func:`prune_redundant_branches` applies that test greedily. The 2D centre
line of each mask (its skeleton pixels) is what must be explained. Every
unbranched path of the graph (:meth:`CenterlineGraph.branches`) *covers* the
skeleton pixels within its projected radius plus ``tolerance_px`` of its
projected centre line, per view. A branch's *unique share* in a view is the
fraction of the pixels it covers that no other remaining branch covers.
A branch is *redundant* while that share is below ``max_unique_share`` in
every view. Repeatedly one redundant branch is removed and the shares of the
branches that shared pixels with it are recomputed, until none is redundant.
The order matters where a real branch and the ghosts crossing it cover each
other: the redundant branch whose 2D-measured widths disagree most between
the views goes first (median over its nodes of ``|log(r_A / r_B)|``; a ghost
pairs two different vessels, a real branch has one width), the shorter
first among equals. Afterwards pieces shorter than ``min_component_mm``
that lost their connection to the tree are dropped.

:func:`complete_from_hull` is the step before it for a network's result:
the network may drop real vessels, and the hull's own centre-line graph has
them; its branches that explain pixels left unexplained in every view are
added, and the pruning then removes the ghosts among them. The reconstruction
(:func:`autocar.pipeline.static.reconstruct_pair`) completes from the hull graph
after pruning it on its own, which adds fewer ghosts.

The defaults (``max_unique_share`` 0.25, ``tolerance_px`` 2, ``min_new_share``
0.2, completing from the *pruned* hull graph) were chosen on synthetic seeds
1,500,000-1,500,007, apart from the benchmark's held-out seeds. Measured on
10 held-out synchronised pairs (``python benchmarks/bench_reconstruct.py``,
README "Accuracy"): the hull's centre-line F1 @1 mm rises from 0.344 to
0.598 with pruning alone; the base network's from 0.721 to 0.763 with
completion + pruning.

Units: positions and radii in mm (world, DICOM LPS), tolerances in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView, masks_for_views
from autocar.graph.paths import densify, edges_of, join_graphs, path_length, subgraph

if TYPE_CHECKING:
    from autocar.graph.ghost_score import GhostScorer

__all__ = ["PruneConfig", "PruneReport", "branch_coverage", "complete_from_hull", "prune_redundant_branches"]


@dataclass(frozen=True)
class PruneConfig:
    """Options of :func:`prune_redundant_branches`.

    max_unique_share : a branch is redundant when, in every view, less than
        this fraction of the skeleton pixels it covers is covered by it alone.
    tolerance_px : added to the projected radius (px) when a branch collects
        the skeleton pixels it covers.
    end_trim_mm : the points of a branch closer than this to one of its end
        nodes are ignored (junction neighbourhoods are shared by every branch
        that meets there).
    step_mm : sampling step along each branch.
    min_component_mm : isolated pieces shorter than this are dropped after pruning.
    """

    max_unique_share: float = 0.25
    tolerance_px: float = 2.0
    end_trim_mm: float = 1.0
    step_mm: float = 0.25
    min_component_mm: float = 8.0
    max_ghost_probability: float = 1.0


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_redundant_branches` did: branches before, removed, and their length (mm)."""

    branches: int
    removed: int
    removed_length_mm: float


def branch_coverage(
    graph: CenterlineGraph,
    branches: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    config: PruneConfig = PruneConfig(),
) -> list[list[np.ndarray]]:
    """Skeleton pixels covered by each branch in each view.

    Returns ``cover[v][b]``: sorted unique int indices into view ``v``'s
    skeleton pixel list (row-major order of ``skeletonize(mask)``).
    """
    out: list[list[np.ndarray]] = []
    samples = [densify(graph.nodes, graph.radii, b, config.step_mm, config.end_trim_mm) for b in branches]
    for mask, view in zip(masks, views):
        sk = np.argwhere(skeletonize(np.asarray(mask, bool)))
        per_branch: list[np.ndarray] = []
        if len(sk) == 0:
            out.append([np.zeros(0, np.int64) for _ in branches])
            continue
        tree = cKDTree(sk.astype(np.float64))
        for pts, rad in samples:
            rc, _ = view.project(pts)
            r_px = view.radius_px(rad, pts)
            ok = np.all(np.isfinite(rc), axis=1) & np.isfinite(r_px)
            if not ok.any():
                per_branch.append(np.zeros(0, np.int64))
                continue
            hits = tree.query_ball_point(rc[ok], r_px[ok] + config.tolerance_px)
            idx = np.unique(np.concatenate([np.asarray(h, np.int64) for h in hits])) if len(hits) else np.zeros(0, np.int64)
            per_branch.append(idx)
        out.append(per_branch)
    return out


def _drop_small_components(graph: CenterlineGraph, min_mm: float) -> CenterlineGraph:
    if graph.num_nodes == 0 or min_mm <= 0:
        return graph
    comp = graph.components()
    lengths = np.zeros(comp.max() + 1)
    np.add.at(lengths, comp[graph.edges[:, 0]], graph.edge_lengths())
    keep_node = lengths[comp] >= min_mm
    return subgraph(graph, keep_node[graph.edges[:, 0]])


def _radius_mismatch(spread_log: np.ndarray, branches: Sequence[np.ndarray]) -> np.ndarray:
    """Per branch: median over its nodes of |log(r_A / r_B)| (``spread_log``, (N,), NaN
    where fewer than two views measured the node); 0 when unmeasured."""
    out = np.zeros(len(branches))
    for k, b in enumerate(branches):
        v = spread_log[b]
        v = v[np.isfinite(v)]
        out[k] = float(np.median(v)) if len(v) else 0.0
    return out


def _log_radius_spread(per_view: np.ndarray) -> np.ndarray:
    lr = np.log(per_view)  # radii are >= 0.5 px: finite or NaN
    measured = np.isfinite(lr)
    hi = np.where(measured, lr, -np.inf).max(axis=0)
    lo = np.where(measured, lr, np.inf).min(axis=0)
    return np.where(measured.sum(axis=0) >= 2, hi - lo, np.nan)


def prune_redundant_branches(
    graph: CenterlineGraph,
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    config: PruneConfig = PruneConfig(),
    *,
    scorer: "GhostScorer | None" = None,
    node_prob: np.ndarray | None = None,
    examples: list | None = None,
) -> tuple[CenterlineGraph, PruneReport]:
    """Remove ghost branches (see the module doc); returns the pruned graph and a report.

    Parameters
    ----------
    graph : the reconstructed centre-line graph (mm), radii set.
    masks : one (H, W) vessel mask per view, the masks the graph was made from.
    views : the matching C-arm views.
    scorer : learned ghost score (:mod:`autocar.graph.ghost_score`); when given, the
        redundant branch it finds most likely a ghost goes first instead of the one with
        the largest width disagreement.
    node_prob : (N,) network occupancy probability at the nodes (a scorer feature);
        None = 1 everywhere (no network).
    examples : when a list, ``(features (B, F), branches, graph)`` of the branches
        before pruning is appended to it (training data of the scorer).
    """
    masks = masks_for_views(masks, views)
    if graph.num_edges == 0:
        return graph, PruneReport(0, 0, 0.0)
    branches = graph.branches()
    cover = branch_coverage(graph, branches, masks, views, config)
    nb = len(branches)
    alive = np.ones(nb, bool)
    counts = []
    for v, per in enumerate(cover):
        c = np.zeros(max((int(x.max()) + 1 for x in per if len(x)), default=0), np.int64)
        for x in per:
            c[x] += 1
        counts.append(c)

    def view_shares(b: int) -> np.ndarray:
        """(V,) share of branch b's covered pixels no other live branch covers; NaN where it covers none."""
        out = np.full(len(cover), np.nan)
        for v in range(len(cover)):
            x = cover[v][b]
            if len(x):
                out[v] = np.count_nonzero(counts[v][x] == 1) / len(x)
        return out

    def unique_share(b: int) -> float:
        sh = view_shares(b)
        # A branch that covers nothing in any view explains nothing.
        return float(np.nanmax(sh)) if np.isfinite(sh).any() else 0.0

    share = np.array([unique_share(b) for b in range(nb)])
    from autocar.graph.extract import radii_per_view

    # Order key among redundant branches: largest first.
    order_key = _radius_mismatch(_log_radius_spread(radii_per_view(graph, masks, views)), branches)
    if scorer is not None or examples is not None:
        from autocar.graph.ghost_score import branch_features

        shares = np.stack([view_shares(b) for b in range(nb)], axis=1)  # (V, B)
        feats = branch_features(graph, branches, masks, views, shares, order_key, node_prob)
        if examples is not None:
            examples.append((feats, branches, graph))
        if scorer is not None:
            order_key = scorer.ghost_probability(feats)  # most likely ghost first
    sure_ghost = (order_key > config.max_ghost_probability) if scorer is not None else np.zeros(nb, bool)
    lengths = np.array([path_length(graph, b) for b in branches])
    # Per view, which branch covers each (pixel, branch) pair: the branches whose share a
    # removal can change are those covering one of the removed branch's pixels.
    pair_pixel = [np.concatenate(per) if nb else np.zeros(0, np.int64) for per in cover]
    pair_branch = [np.repeat(np.arange(nb), [len(x) for x in per]) for per in cover]
    while True:
        cand = np.flatnonzero(alive & ((share < config.max_unique_share) | sure_ghost))
        if len(cand) == 0:
            break
        # Among the redundant branches, the one whose widths disagree most between the views
        # (a ghost pairs two different vessels), or the likeliest ghost by the scorer, first;
        # then the shorter one.
        b = int(cand[np.lexsort((lengths[cand], -order_key[cand]))[0]])
        alive[b] = False
        touched: set[int] = set()
        for v in range(len(cover)):
            x = cover[v][b]
            counts[v][x] -= 1
            if len(x):
                touched.update(pair_branch[v][np.isin(pair_pixel[v], x)].tolist())
        for o in touched:
            if alive[o]:
                share[o] = unique_share(o)
    if alive.all():
        return graph, PruneReport(nb, 0, 0.0)
    kept = subgraph(graph, edges_of(graph, [branches[b] for b in np.flatnonzero(alive)]))
    pruned = _drop_small_components(kept, config.min_component_mm)
    return pruned, PruneReport(nb, int((~alive).sum()), float(lengths[~alive].sum()))


def complete_from_hull(
    graph: CenterlineGraph,
    hull_graph: CenterlineGraph,
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    config: PruneConfig = PruneConfig(),
    *,
    min_new_share: float = 0.2,
    min_branch_mm: float = 3.0,
    join_mm: float = 2.0,
) -> tuple[CenterlineGraph, int]:
    """Add to ``graph`` the branches of ``hull_graph`` that explain what it leaves unexplained.

    A branch of ``hull_graph`` (the centre-line graph of the whole two-view
    hull) is added when at least ``min_new_share`` of the skeleton pixels it
    covers (:func:`branch_coverage`) in EVERY view are covered by no branch
    of ``graph``, and it is at least ``min_branch_mm`` long. Its free ends
    within ``join_mm`` of ``graph`` are joined to it. Returns the completed
    graph and the number of branches added. Meant to be followed by
    :func:`prune_redundant_branches`, which removes the ghosts among them.
    """
    if hull_graph.num_edges == 0:
        return graph, 0
    hb = hull_graph.branches()
    hcov = branch_coverage(hull_graph, hb, masks, views, config)
    if graph.num_edges:
        gb = graph.branches()
        gcov = branch_coverage(graph, gb, masks, views, config)
        covered = [np.unique(np.concatenate(per)) if per else np.zeros(0, np.int64) for per in gcov]
    else:
        covered = [np.zeros(0, np.int64) for _ in views]
    take = []
    for k, b in enumerate(hb):
        if path_length(hull_graph, b) < min_branch_mm:
            continue
        ok = True
        for v in range(len(views)):
            x = hcov[v][k]
            if len(x) == 0 or np.isin(x, covered[v], assume_unique=True).mean() > 1 - min_new_share:
                ok = False
                break
        if ok:
            take.append(k)
    if not take:
        return graph, 0
    added = subgraph(hull_graph, edges_of(hull_graph, [hb[k] for k in take]))
    return join_graphs(graph, added, join_mm), len(take)

