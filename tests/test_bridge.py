"""Gap bridging (autocar.graph.bridge) on hand-built scenes.

A straight vessel along z at (x, y) = (0, 0), radius 1 mm, seen in AP (x, z)
and LAO 90 (y, z). Its graph is cut into pieces; the masks are rendered from
the whole vessel (the gap is vessel in both views) or from the cut graph (the
gap is background).
"""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.graph.bridge import bridge_gaps
from autocar.synth.render import render_mask

VIEWS = [CArmView(0.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 256, 256),
         CArmView(90.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 256, 256)]


def chain(points: np.ndarray, radius: float = 1.0, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(points)
    return points, np.full(n, radius), np.stack([np.arange(n - 1), np.arange(1, n)], axis=1) + start


def pieces(z_ranges: list[tuple[float, float]], x: float = 0.0, y: float = 0.0) -> CenterlineGraph:
    """Vertical chains (nodes 0.5 mm apart) at (x, y) over each z range."""
    nodes, radii, edges = [], [], []
    count = 0
    for lo, hi in z_ranges:
        z = np.arange(lo, hi + 1e-9, 0.5)
        p, r, e = chain(np.stack([np.full_like(z, x), np.full_like(z, y), z], axis=1), start=count)
        nodes.append(p)
        radii.append(r)
        edges.append(e)
        count += len(z)
    return CenterlineGraph(np.vstack(nodes), np.concatenate(radii), np.vstack(edges))


def whole_masks() -> list[np.ndarray]:
    whole = pieces([(-20.0, 20.0)])
    return [render_mask(whole, v) for v in VIEWS]


def test_a_gap_inside_both_masks_is_bridged_with_nodes_at_most_1mm_apart():
    cut = pieces([(-20.0, -1.5), (1.5, 20.0)])  # a 3 mm gap
    assert cut.components().max() == 1
    out, n = bridge_gaps(cut, whole_masks(), VIEWS)
    assert n == 1
    assert out.components().max() == 0 and out.is_forest()
    # Input nodes first and unchanged; the 3 mm bridge gets 2 intermediate nodes.
    assert np.array_equal(out.nodes[: cut.num_nodes], cut.nodes)
    assert out.num_nodes == cut.num_nodes + 2 and out.num_edges == cut.num_edges + 3
    assert out.edge_lengths().max() <= 1.0 + 1e-9
    new = out.nodes[cut.num_nodes:]
    assert np.allclose(new[:, :2], 0.0) and np.allclose(sorted(new[:, 2]), [-0.5, 0.5])
    assert np.allclose(out.radii[cut.num_nodes:], 1.0, atol=0.15)  # measured in the 2D masks
    assert out.total_length_mm == pytest.approx(40.0)


def test_a_gap_the_masks_show_as_background_stays_open():
    cut = pieces([(-20.0, -1.5), (1.5, 20.0)])
    masks = [render_mask(cut, v) for v in VIEWS]  # the gap is background in both views
    out, n = bridge_gaps(cut, masks, VIEWS)
    assert n == 0 and out is cut
    # Background in one view is enough to refuse.
    out, n = bridge_gaps(cut, [whole_masks()[0], masks[1]], VIEWS)
    assert n == 0


def test_gaps_longer_than_the_limit_stay_open():
    cut = pieces([(-20.0, -3.0), (3.0, 20.0)])  # 6 mm
    assert bridge_gaps(cut, whole_masks(), VIEWS, max_gap_mm=4.0)[1] == 0
    assert bridge_gaps(cut, whole_masks(), VIEWS, max_gap_mm=7.0)[1] == 1
    assert bridge_gaps(cut, whole_masks(), VIEWS, max_gap_mm=0.0)[1] == 0


def test_two_vessels_apart_in_3d_are_not_joined_through_a_crossing_in_one_view():
    # A second vessel at x = 3.5 mm, y = 0 (a candidate: 3.5 mm < 12 mm): in AP the
    # walls are 1.5 mm (about 7 px at the detector) apart; in LAO 90 it projects onto
    # the first vessel. The straight line between them crosses background in AP.
    a = pieces([(-20.0, 20.0)])
    b = pieces([(-20.0, 20.0)], x=3.5)
    both = CenterlineGraph(np.vstack([a.nodes, b.nodes]), np.concatenate([a.radii, b.radii]),
                           np.vstack([a.edges, b.edges + a.num_nodes]))
    masks = [render_mask(both, v) for v in VIEWS]
    assert bridge_gaps(both, masks, VIEWS)[1] == 0


def test_three_pieces_become_one_tree_without_a_cycle():
    cut = pieces([(-20.0, -6.0), (-4.0, 4.0), (6.0, 20.0)])
    out, n = bridge_gaps(cut, whole_masks(), VIEWS, max_gap_mm=12.0)
    # Pieces 0-1 and 1-2 are 2 mm apart, 0-2 are 12 mm apart: the two short bridges win.
    assert n == 2 and out.components().max() == 0 and out.is_forest()
    assert out.total_length_mm == pytest.approx(40.0)


def test_one_piece_and_bad_input():
    whole = pieces([(-20.0, 20.0)])
    out, n = bridge_gaps(whole, whole_masks(), VIEWS)
    assert n == 0 and out is whole
    with pytest.raises(ValueError, match="max_gap_mm"):
        bridge_gaps(whole, whole_masks(), VIEWS, max_gap_mm=float("nan"))
    with pytest.raises(ValueError, match="step_mm"):
        bridge_gaps(whole, whole_masks(), VIEWS, step_mm=0.0)
    with pytest.raises(ShapeError):
        bridge_gaps(whole, whole_masks()[:1], VIEWS)


def test_reconstruct_pair_bridges_pieces_of_a_synthetic_tree():
    # Tuning seed 1,500,003 (right tree, weakly synchronised): its pruned reconstruction
    # falls into 4 pieces, two of them a fraction of a millimetre apart.
    from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
    from autocar.synth.cases import SynthCaseConfig, synthesize_case

    sc = synthesize_case(SynthCaseConfig(side="right", frames=1), rng=1_500_003)
    a, b = sc.case.views
    masks, views = [a.frames[0], b.frames[0]], [a.view, b.view]
    model = default_model()
    plain = reconstruct_pair(masks, views, model, ReconstructConfig(bridge_gap_mm=0.0))
    bridged = reconstruct_pair(masks, views, model)
    assert "gaps_bridged" not in plain.postprocess
    n = bridged.postprocess["gaps_bridged"]
    assert n >= 1
    assert bridged.graph.components().max() == plain.graph.components().max() - n
    assert bridged.graph.is_forest() and bridged.graph.edge_lengths().max() <= 1.5
    assert ReconstructConfig().raw_hull().bridge_gap_mm == 0.0


def test_bridge_nodes_take_their_radius_from_the_masks():
    # The vessel narrows to r 0.5 mm over the gap (a tight lesion the network lost): the
    # bridge's nodes read the narrow lumen, not the 1 mm of its two ends.
    z = np.arange(-20.0, 20.01, 0.5)
    narrow = np.where(np.abs(z) <= 2.0, 0.5, 1.0)
    whole = CenterlineGraph(np.stack([0 * z, 0 * z, z], axis=1), narrow,
                            np.stack([np.arange(len(z) - 1), np.arange(1, len(z))], axis=1))
    masks = [render_mask(whole, v) for v in VIEWS]
    cut = pieces([(-20.0, -2.5), (2.5, 20.0)])
    out, n = bridge_gaps(cut, masks, VIEWS)
    assert n == 1
    new = out.radii[cut.num_nodes:]
    assert len(new) == 4 and np.all(np.abs(new - 0.5) <= 0.2)
