from __future__ import annotations

import numpy as np
import pytest

from autocar.dynamic.track import TrackConfig, centreline_pixels, track_tree
from autocar.errors import GeometryError, ShapeError
from autocar.geometry import CArmView
from autocar.synth.heartbeat import HeartbeatModel
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

VIEWS = [CArmView(30.0, 0.0, 1000.0, 750.0, (0.4, 0.4), 384, 384),
         CArmView(-30.0, 25.0, 1000.0, 750.0, (0.4, 0.4), 384, 384)]
FAST = TrackConfig(iterations=20)


@pytest.fixture(scope="module")
def synth():
    return generate_tree("left", rng=7, n_stenoses=0)


def _masks(graphs, dilate=None):
    out = []
    for v in VIEWS:
        out.append(np.stack([render_mask(g, v, dilate_px=0.0 if dilate is None else float(dilate[k]))
                             for k, g in enumerate(graphs)]))
    return out


def test_known_translation_is_recovered_node_by_node(synth):
    tree = synth.graph
    shifts = [np.array([0.0, 0.0, 0.0]), np.array([1.5, -1.0, 2.0]), np.array([3.0, -2.0, 3.5])]
    truth = [tree.with_nodes(tree.nodes + s) for s in shifts]
    result = track_tree(tree, 0, VIEWS, _masks(truth), config=FAST)
    assert len(result.graphs) == 3
    for g, t in zip(result.graphs, truth):
        assert np.array_equal(g.edges, tree.edges) and np.array_equal(g.radii, tree.radii)
        err = np.linalg.norm(g.nodes - t.nodes, axis=1)
        assert np.median(err) < 0.3, np.median(err)
    moved = np.linalg.norm(result.graphs[2].nodes - result.graphs[0].nodes, axis=1)
    assert np.median(moved) == pytest.approx(np.linalg.norm(shifts[2]), abs=0.4)


def test_cardiac_motion_tracked_backwards_and_forwards(synth):
    heart = HeartbeatModel(center=synth.heart_center, long_axis=synth.long_axis, respiration_mm=(0.0, 0.0, 0.0))
    phases = [0.0, 0.08, 0.16, 0.24]
    truth = [heart.deform(synth.graph, p) for p in phases]
    true_motion = np.linalg.norm(truth[3].nodes - truth[0].nodes, axis=1)
    assert true_motion.mean() > 2.0
    # Reference in the middle: frames 0 and 1 are tracked backwards, 3 forwards.
    result = track_tree(truth[2], 2, VIEWS, _masks(truth), config=FAST)
    for k, t in enumerate(truth):
        err = np.linalg.norm(result.graphs[k].nodes - t.nodes, axis=1)
        assert np.mean(err) < 0.5, (k, np.mean(err))
    assert result.reference == 2
    p2p = result.peak_to_peak_mm()
    assert p2p.shape == (synth.graph.num_nodes,)
    assert np.mean(np.abs(p2p - np.linalg.norm(truth[3].nodes - truth[0].nodes, axis=1))) < 0.6


def test_still_tree_with_noisy_masks_barely_moves(synth):
    tree = synth.graph
    dilate = np.array([0.0, 0.5, 0.2, 0.6, 0.1])
    result = track_tree(tree, 0, VIEWS, _masks([tree] * 5, dilate), config=FAST)
    x = np.stack([g.nodes for g in result.graphs])
    jitter = np.sqrt(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=2)))
    assert jitter < 0.3, jitter


def test_mesh_points_follow_the_deformation(synth):
    tree = synth.graph
    shift = np.array([2.0, 1.0, -1.0])
    result = track_tree(tree, 0, VIEWS, _masks([tree, tree.with_nodes(tree.nodes + shift)]),
                        config=TrackConfig(iterations=20, refine_reference=False))
    off_axis = tree.nodes[::10] + np.array([0.5, 0.0, 0.0])
    moved = result.move_points_all(off_axis)
    assert moved.shape == (2, len(off_axis), 3)
    assert np.allclose(moved[0], off_axis)  # reference frame unrefined: identity
    assert np.median(np.linalg.norm(moved[1] - off_axis - shift, axis=1)) < 0.3


def test_centreline_pixels_of_a_line():
    m = np.zeros((20, 30), bool)
    m[9:12, 5:25] = True
    px = centreline_pixels(m)
    assert np.mean(px[:, 0] == 10) > 0.9 and np.all(np.abs(px[:, 0] - 10) <= 1)
    assert px[:, 1].min() <= 6 and px[:, 1].max() >= 23


def test_bad_inputs_are_rejected(synth):
    tree = synth.graph
    masks = _masks([tree, tree])
    with pytest.raises(ShapeError, match="reference_frame"):
        track_tree(tree, 2, VIEWS, masks)
    with pytest.raises(ShapeError, match="one mask sequence per view"):
        track_tree(tree, 0, VIEWS, masks[:1])
    with pytest.raises(ShapeError, match="shape"):
        track_tree(tree, 0, VIEWS, [masks[0], masks[1][:, :100]])
    with pytest.raises(ShapeError, match="static_graphs"):
        track_tree(tree, 0, VIEWS, masks, static_graphs=[tree])
    with pytest.raises(ShapeError, match="at least one node"):
        track_tree(_empty(), 0, VIEWS, masks)
    with pytest.raises(GeometryError, match="grid_mm"):
        TrackConfig(grid_mm=0)
    with pytest.raises(GeometryError, match="match_2d_px"):
        TrackConfig(match_2d_px=())


def _empty():
    from autocar.graph.extract import EMPTY_GRAPH

    return EMPTY_GRAPH
