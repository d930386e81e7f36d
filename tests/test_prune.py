"""Two-view ghost pruning and hull completion (autocar.graph.prune) on hand-built scenes.

Scene: two straight vertical vessels (along z, the patient's head-foot axis),
T1 at (x, y) = (-15, +10) mm with radius 1.5 mm and T2 at (+15, -10) mm with
radius 0.6 mm. The AP view sees x and z, the LAO 90 view sees y and z, so the
two-view hull holds four vertical lines: the two vessels and two ghosts at
(-15, -10) and (+15, +10), each of which borrows T1's pixels in one view and
T2's in the other. All four explain only pixels the others explain too; the
ghosts are told apart by their widths, wide in one view and narrow in the
other.
"""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.graph.prune import PruneConfig, complete_from_hull, prune_redundant_branches
from autocar.synth.render import render_mask

Z = np.arange(-20.0, 20.01, 0.5)
VIEWS = [CArmView(0.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 256, 256), CArmView(90.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 256, 256)]


def lines(xy_r: list[tuple[float, float, float]]) -> CenterlineGraph:
    """Vertical lines at (x, y) with radius r, each a chain of nodes 0.5 mm apart."""
    nodes, radii, edges = [], [], []
    for x, y, r in xy_r:
        start = len(nodes)
        nodes += [(x, y, z) for z in Z]
        radii += [r] * len(Z)
        edges += [(start + k, start + k + 1) for k in range(len(Z) - 1)]
    return CenterlineGraph(np.array(nodes), np.array(radii), np.array(edges))


TRUTH = [(-15.0, 10.0, 1.5), (15.0, -10.0, 0.6)]
GHOSTS = [(-15.0, -10.0, 1.0), (15.0, 10.0, 1.0)]


def scene_masks() -> list[np.ndarray]:
    truth = lines(TRUTH)
    return [render_mask(truth, v) for v in VIEWS]


def line_positions(g: CenterlineGraph) -> set[tuple[int, int]]:
    return {(int(round(x)), int(round(y))) for x, y in g.nodes[:, :2]}


def test_the_scene_is_the_four_fold_ambiguity():
    # Every line, true or ghost, projects onto both masks (within 2 px: perspective
    # shifts a ghost by its depth difference): reprojection cannot tell them apart.
    from scipy import ndimage

    masks = scene_masks()
    for x, y, _ in TRUTH + GHOSTS:
        g = lines([(x, y, 1.0)])
        for m, v in zip(masks, VIEWS):
            rc, _ = v.project(g.nodes)
            r = np.round(rc).astype(int)
            assert ndimage.distance_transform_edt(~m)[r[:, 0], r[:, 1]].max() <= 2.0


def test_ghosts_are_pruned_and_the_vessels_kept():
    masks = scene_masks()
    pruned, report = prune_redundant_branches(lines(TRUTH + GHOSTS), masks, VIEWS)
    assert line_positions(pruned) == {(-15, 10), (15, -10)}
    assert report.branches == 4 and report.removed == 2
    assert report.removed_length_mm == pytest.approx(2 * (Z[-1] - Z[0]))


def test_ghost_order_does_not_matter():
    masks = scene_masks()
    pruned, _ = prune_redundant_branches(lines(GHOSTS[::-1] + TRUTH[::-1]), masks, VIEWS)
    assert line_positions(pruned) == {(-15, 10), (15, -10)}


def test_a_tree_without_ghosts_is_left_alone():
    masks = scene_masks()
    truth = lines(TRUTH)
    pruned, report = prune_redundant_branches(truth, masks, VIEWS)
    assert report.removed == 0
    assert pruned.num_nodes == truth.num_nodes and np.array_equal(pruned.edges, truth.edges)


def test_a_lone_ghost_that_is_the_only_explanation_stays():
    # Without the vessels whose pixels it borrows, a ghost is the only explanation of
    # those pixels: nothing is removed (the pruning never loses reprojected coverage).
    masks = scene_masks()
    g = lines([GHOSTS[0]])
    pruned, report = prune_redundant_branches(g, masks, VIEWS)
    assert report.removed == 0 and pruned.num_nodes == g.num_nodes


def test_short_pieces_left_floating_are_dropped():
    masks = scene_masks()
    # After a removal, pieces shorter than min_component_mm are dropped (every line is 40 mm).
    pruned, report = prune_redundant_branches(lines(TRUTH + GHOSTS), masks, VIEWS, PruneConfig(min_component_mm=100.0))
    assert report.removed == 2 and pruned.num_nodes == 0
    pruned, _ = prune_redundant_branches(lines(TRUTH + GHOSTS), masks, VIEWS, PruneConfig(min_component_mm=30.0))
    assert line_positions(pruned) == {(-15, 10), (15, -10)}


def test_completion_adds_the_missing_vessel_and_no_ghost():
    masks = scene_masks()
    network_result = lines(TRUTH[:1])  # the network found T1 only
    hull_graph = lines(TRUTH + GHOSTS)
    completed, added = complete_from_hull(network_result, hull_graph, masks, VIEWS)
    assert added == 1
    assert line_positions(completed) == {(-15, 10), (15, -10)}


def test_completion_with_nothing_missing_adds_nothing():
    masks = scene_masks()
    completed, added = complete_from_hull(lines(TRUTH), lines(TRUTH + GHOSTS), masks, VIEWS)
    assert added == 0 and completed.num_nodes == lines(TRUTH).num_nodes


def test_completed_branches_are_joined_to_the_tree():
    # The added vessel's ends are 36 mm from T1's ends: joined within 40 mm, not within 1 mm.
    masks = scene_masks()
    base = lines(TRUTH[:1])
    side = CenterlineGraph(np.array([(15.0, -10.0, z) for z in Z]), np.full(len(Z), 0.6),
                           np.array([(k, k + 1) for k in range(len(Z) - 1)]))
    completed, _ = complete_from_hull(base, side, masks, VIEWS, join_mm=40.0)
    assert completed.components().max() == 0  # one connected tree
    completed, _ = complete_from_hull(base, side, masks, VIEWS, join_mm=1.0)
    assert completed.components().max() == 1  # too far to join: two pieces


def test_bad_inputs_are_rejected():
    masks = scene_masks()
    g = lines(TRUTH)
    with pytest.raises(ShapeError, match="one mask per view"):
        prune_redundant_branches(g, masks[:1], VIEWS)
    with pytest.raises(ShapeError, match="mask 1 has shape"):
        prune_redundant_branches(g, [masks[0], masks[1][:100]], VIEWS)
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2)))
    pruned, report = prune_redundant_branches(empty, masks, VIEWS)
    assert pruned.num_nodes == 0 and report.removed == 0
