from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError, TreeFormatError


def y_tree() -> CenterlineGraph:
    # Trunk 0-1-2 along +x, then two 2-edge branches from node 2.
    nodes = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 1, 0], [4, 2, 0], [3, -1, 0], [4, -2, 0]], float)
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [2, 5], [5, 6]])
    return CenterlineGraph(nodes, np.linspace(2, 1, 7), edges)


def test_degrees_branches_and_forest():
    g = y_tree()
    np.testing.assert_array_equal(g.degrees(), [1, 2, 3, 2, 1, 2, 1])
    paths = sorted(tuple(p.tolist()) for p in g.branches())
    assert paths == [(0, 1, 2), (2, 3, 4), (2, 5, 6)]
    assert g.is_forest()
    assert g.components().max() == 0


def test_cycle_is_not_a_forest_and_branches_cover_it():
    nodes = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    g = CenterlineGraph(nodes, np.ones(4), [[0, 1], [1, 2], [2, 3], [3, 0]])
    assert not g.is_forest()
    (path,) = g.branches()
    assert len(path) == 5 and path[0] == path[-1]


def test_resampled_spacing_and_interpolation():
    g = CenterlineGraph([[0, 0, 0], [10, 0, 0]], [2.0, 1.0], [[0, 1]])
    r = g.resampled(1.0)
    assert r.num_nodes == 11 and r.num_edges == 10
    assert r.edge_lengths().max() <= 1.0 + 1e-12
    assert r.total_length_mm == pytest.approx(10.0)
    # The node at x = 3 has radius 2 - 0.3.
    k = int(np.argmin(np.abs(r.nodes[:, 0] - 3)))
    assert r.radii[k] == pytest.approx(1.7)
    np.testing.assert_array_equal(r.nodes[:2], g.nodes)  # old nodes keep their indices


def test_sample_segments_step():
    g = y_tree()
    pts, rad, edge = g.sample_segments(0.25)
    assert pts.shape[1] == 3 and len(pts) == len(rad) == len(edge)
    # The first edge (length 1) is sampled at 0, .25, .5, .75, 1.
    np.testing.assert_allclose(pts[edge == 0][:, 0], [0, 0.25, 0.5, 0.75, 1.0])


def test_frame_round_trip():
    g = y_tree()
    back = CenterlineGraph.from_frame(g.to_frame(3))
    np.testing.assert_allclose(back.nodes, g.nodes)
    np.testing.assert_allclose(back.radii, g.radii, atol=5e-5)  # JSON keeps 1e-4 mm
    np.testing.assert_array_equal(back.edges, g.edges)
    assert g.to_frame(3)["index"] == 3


def test_arrays_are_read_only_and_with_nodes_keeps_topology():
    g = y_tree()
    with pytest.raises(ValueError):
        g.nodes[0, 0] = 5
    moved = g.with_nodes(g.nodes + 1)
    np.testing.assert_array_equal(moved.edges, g.edges)
    np.testing.assert_allclose(moved.nodes - g.nodes, 1)


@pytest.mark.parametrize(
    "nodes,radii,edges,err,match",
    [
        (np.zeros((3, 2)), np.ones(3), [[0, 1]], ShapeError, r"nodes must have shape \(N, 3\)"),
        (np.zeros((3, 3)), np.ones(2), [[0, 1]], ShapeError, "radii must have shape"),
        (np.zeros((3, 3)), np.ones(3), [[0, 3]], TreeFormatError, "edge indices"),
        (np.zeros((3, 3)), np.ones(3), [[1, 1]], TreeFormatError, "itself"),
        (np.full((3, 3), np.nan), np.ones(3), [[0, 1]], TreeFormatError, "NaN"),
        (np.zeros((3, 3)), -np.ones(3), [[0, 1]], TreeFormatError, "radii"),
        (np.zeros((3, 3)), np.ones(3), [[0, 1.5]], TreeFormatError, "integer"),
    ],
)
def test_bad_graphs_rejected(nodes, radii, edges, err, match):
    with pytest.raises(err, match=match):
        CenterlineGraph(nodes, radii, edges)


def test_from_frame_rejects_bad_rows():
    with pytest.raises(TreeFormatError):
        CenterlineGraph.from_frame({"nodes": [[0, 0, 0]], "edges": []})
    with pytest.raises(TreeFormatError, match="nodes"):
        CenterlineGraph.from_frame({"edges": []})


def test_forest_edges_drop_the_longest_edge_of_each_cycle():
    from autocar.geometry.centerline import CenterlineGraph

    # a 10 x 10 mm square (edges 0-1, 1-2, 2-3) closed by a 10.5 mm edge 3-0 skewed out of plane,
    # and a separate tree 4-5-6
    nodes = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0], [50, 0, 0], [51, 0, 0], [52, 0, 0]], float)
    nodes[3, 2] = 3.2  # 3-0 becomes the longest edge of the loop
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6]])
    g = CenterlineGraph(nodes, np.ones(7), edges)
    assert not g.is_forest()
    keep = g.forest_edges()
    assert keep.tolist() == [True, True, True, False, True, True]
    assert CenterlineGraph(nodes, np.ones(7), edges[keep]).is_forest()
    tree = CenterlineGraph(nodes, np.ones(7), edges[keep])
    assert tree.forest_edges().all()
