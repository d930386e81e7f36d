"""Centre-line refinement onto the 2D vessel midlines (autocar.graph.refine)."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.graph.refine import RefineConfig, centre_offsets, node_tangents, refine_centerline
from autocar.evaluation.metrics import centerline_scores
from autocar.synth.render import render_mask

# Two orthogonal views (AP and LAO 90), 0.3 mm pixels, isocentre at the image centre.
AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)
LAT = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)
VIEWS = [AP, LAT]


def chain(points: np.ndarray, radius: float = 1.2) -> CenterlineGraph:
    n = len(points)
    return CenterlineGraph(np.asarray(points, float), np.full(n, radius),
                           np.stack([np.arange(n - 1), np.arange(1, n)], 1))


def oblique_line(n: int = 41) -> CenterlineGraph:
    """A straight vessel 20 mm long through the isocentre, oblique to both views."""
    t = np.linspace(-10.0, 10.0, n)[:, None]
    return chain(t * np.array([0.6, 0.5, 0.62]) / np.linalg.norm([0.6, 0.5, 0.62]))


def arc(n: int = 61) -> CenterlineGraph:
    """A quarter circle of radius 15 mm tilted out of both image planes."""
    a = np.linspace(0, np.pi / 2, n)
    p = np.stack([15 * np.cos(a) - 7, 15 * np.sin(a) - 7, 4 * np.sin(2 * a)], 1)
    return chain(p)


def test_centre_offset_of_a_band_is_its_hand_computed_midline():
    # A horizontal band, rows 100..109 set: its edges (0.5 crossings between pixel
    # centres) lie at rows 99.5 and 109.5, midline 104.5, width 10 px.
    mask = np.zeros((256, 256), np.float32)
    mask[100:110, :] = 1.0
    view = AP
    # A node whose AP projection lies at row 102, running along the columns.
    rc0, w = view.project(np.zeros((1, 3)))
    node = view.unproject(np.array([[102.0, 128.0]]), w)
    tangent = np.array([view.axes[0]])  # image column direction
    normals, jac, off, width = centre_offsets(mask, view, node, tangent, np.array([1.0]))
    assert abs(abs(normals[0, 0]) - 1.0) < 1e-9  # normal along the rows
    assert off[0] * normals[0, 0] == pytest.approx(2.5, abs=1e-6)
    assert width[0] == pytest.approx(10.0, abs=1e-6)
    # Widths beyond max_width_ratio x the expected diameter (+1.5 px) give no offset.
    thin = centre_offsets(mask, view, node, tangent, np.array([0.2]))[2]
    assert np.isnan(thin[0])
    # Far from any vessel pixel (beyond snap_px): no offset.
    far = view.unproject(np.array([[60.0, 128.0]]), w)
    assert np.isnan(centre_offsets(mask, view, far, tangent, np.array([1.0]))[2][0])


def test_tangents_of_a_chain_follow_it_and_ignore_edge_orientation():
    g = oblique_line(5)
    d = g.nodes[-1] - g.nodes[0]
    d /= np.linalg.norm(d)
    flipped = np.array([[1, 0], [1, 2], [3, 2], [3, 4]])
    for edges in (g.edges, flipped):
        t = node_tangents(g.nodes, edges)
        assert np.allclose(np.abs(t @ d), 1.0, atol=1e-9)


@pytest.mark.parametrize("make", [oblique_line, arc])
def test_a_displaced_centre_line_returns_onto_the_vessel(make):
    truth = make()
    masks = [render_mask(truth, v) for v in VIEWS]
    rng = np.random.default_rng(0)
    shifted = truth.with_nodes(truth.nodes + np.array([0.5, -0.6, 0.4]) + rng.normal(0, 0.15, truth.nodes.shape))
    before = centerline_scores(shifted, truth).mean_distance_mm
    refined, report = refine_centerline(shifted, masks, VIEWS)
    after = centerline_scores(refined, truth).mean_distance_mm
    assert before > 0.5
    assert after < 0.15
    assert report.mean_shift_mm > 0.5 and report.measured_share > 0.8
    # Topology, order and labels kept; radii remeasured close to the truth (1.2 mm).
    assert np.array_equal(refined.edges, shifted.edges) and refined.num_nodes == shifted.num_nodes
    assert np.median(np.abs(refined.radii - 1.2)) < 0.2


def test_the_true_centre_line_stays_put():
    truth = arc()
    masks = [render_mask(truth, v) for v in VIEWS]
    refined, report = refine_centerline(truth, masks, VIEWS)
    # The rendered band's midline is within ~0.3 px of the projected axis (1/16 px
    # polygons, pixel-centre sampling): the line moves by about 0.1 mm.
    assert report.mean_shift_mm < 0.15 and report.max_shift_mm < 0.5
    assert centerline_scores(refined, truth).mean_distance_mm < 0.1


def test_nodes_without_evidence_do_not_move_and_shifts_are_bounded():
    truth = oblique_line()
    masks = [render_mask(truth, v) for v in VIEWS]
    # 10 mm away from the vessel: no view gives an offset, nothing moves.
    away = truth.with_nodes(truth.nodes + np.array([0.0, 0.0, 10.0]))
    refined, report = refine_centerline(away, masks, VIEWS)
    assert report.measured_share == 0.0
    assert np.abs(refined.nodes - away.nodes).max() < 1e-6
    # Every node moves at most max_shift_mm however far the vessel is.
    near = truth.with_nodes(truth.nodes + np.array([1.0, 0.0, -1.0]))
    cfg = RefineConfig(max_shift_mm=0.4, snap_px=8.0)
    moved = np.linalg.norm(refine_centerline(near, masks, VIEWS, cfg)[0].nodes - near.nodes, axis=1)
    assert moved.max() <= 0.4 + 1e-9 and moved.max() > 0.3


def test_a_vessel_in_the_epipolar_plane_keeps_its_unseen_depth():
    # Along the AP view's columns and the lateral view's rays: LAT sees only a dot, AP sees
    # the vessel, so the depth along AP's ray is constrained by neither; the bending and
    # prior terms keep it, and the seen offset is still corrected.
    t = np.linspace(-8, 8, 33)[:, None]
    truth = chain(t * np.asarray(AP.axes[0])[None, :])
    masks = [render_mask(truth, v) for v in VIEWS]
    ray = np.asarray(AP.detector_direction)
    seen = np.asarray(AP.axes[1])
    start = truth.with_nodes(truth.nodes + 0.6 * seen + 2.0 * ray)
    refined, _ = refine_centerline(start, masks, VIEWS)
    off = refined.nodes - truth.nodes
    assert np.all(np.isfinite(refined.nodes))
    assert np.abs(off @ seen).max() < 0.15
    assert np.abs(off @ ray - 2.0).max() < 0.1


def test_empty_and_edgeless_graphs_and_bad_inputs():
    truth = oblique_line()
    masks = [render_mask(truth, v) for v in VIEWS]
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64))
    assert refine_centerline(empty, masks, VIEWS)[0] is empty
    lone = CenterlineGraph(truth.nodes[:3], truth.radii[:3], np.zeros((0, 2), np.int64))
    assert refine_centerline(lone, masks, VIEWS)[0] is lone
    with pytest.raises(ValueError, match="bending_weight"):
        RefineConfig(bending_weight=0.0)
    with pytest.raises(ValueError, match="prior_weight"):
        RefineConfig(prior_weight=float("nan"))
    with pytest.raises(ValueError, match="iterations"):
        RefineConfig(iterations=-1)
    with pytest.raises(ValueError):
        refine_centerline(truth, [masks[0][:100]], VIEWS)  # one mask, wrong size
