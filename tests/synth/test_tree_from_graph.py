"""A given (e.g. real CT) tree driven by the heartbeat model: synthesize_case(tree=...)."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.trees import TYPICAL_LONG_AXIS, generate_tree, tree_from_graph


def _y_tree(offset=(100.0, -40.0, 250.0)) -> CenterlineGraph:
    trunk = np.stack([np.linspace(0, 30, 31), np.zeros(31), np.zeros(31)], axis=1)
    branch = np.stack([30 + np.arange(1, 21) * 0.7, np.arange(1, 21) * 0.7, np.zeros(20)], axis=1)
    nodes = np.vstack([trunk, branch]) + np.asarray(offset)
    edges = [(i, i + 1) for i in range(30)] + [(30, 31)] + [(31 + i, 32 + i) for i in range(19)]
    return CenterlineGraph(nodes, np.full(len(nodes), 1.5), np.asarray(edges))


def test_the_tree_is_centred_and_given_a_heart_frame():
    g = _y_tree()
    t = tree_from_graph(g, "left")
    lo, hi = t.graph.bounds()
    assert np.allclose((lo + hi) / 2, 0.0)
    assert np.allclose(t.graph.nodes - t.graph.nodes[0], g.nodes - g.nodes[0])  # a pure translation
    assert np.allclose(t.long_axis, TYPICAL_LONG_AXIS) and np.linalg.norm(t.long_axis) == pytest.approx(1.0)
    assert np.allclose(t.heart_center, t.graph.nodes.mean(axis=0) + 15.0 * TYPICAL_LONG_AXIS)
    assert t.stenoses == () and t.side == "left"
    kept = tree_from_graph(g, "right", centre=False, long_axis=[0.0, 0.0, -2.0])
    assert np.allclose(kept.graph.nodes, g.nodes) and np.allclose(kept.long_axis, [0.0, 0.0, -1.0])


@pytest.mark.parametrize("kwargs", [{"side": "middle"}, {"long_axis": [0.0, 0.0, 0.0]}, {"long_axis": [1.0, 2.0]}])
def test_bad_arguments_are_refused(kwargs):
    args = {"side": "left", **kwargs}
    side = args.pop("side")
    with pytest.raises(ValueError):
        tree_from_graph(_y_tree(), side, **args)


def test_a_given_tree_beats_and_is_rendered_in_both_views():
    tree = tree_from_graph(generate_tree("right", rng=3, n_stenoses=0).graph, "right")
    sc = synthesize_case(SynthCaseConfig(frames=3, side="left", lag_range=(0.03, 0.03)), rng=9, tree=tree)
    assert sc.case.tree == "right" and sc.stenoses == ()
    assert all(t.num_nodes == tree.graph.num_nodes for t in sc.truth)
    moved = [np.abs(t.nodes - tree.graph.nodes).max() for t in sc.truth]
    assert max(moved) > 0.5  # the heart moves the given tree
    for cv in sc.case.views:
        assert all(np.asarray(f).any() for f in cv.frames)
    again = synthesize_case(SynthCaseConfig(frames=3, lag_range=(0.03, 0.03)), rng=9, tree=tree)
    assert np.allclose(again.truth[2].nodes, sc.truth[2].nodes)  # same seed, same case
