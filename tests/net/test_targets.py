from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError
from autocar.net.targets import centerline_distance, tube_targets


def straight(r0: float = 2.0, r1: float = 1.0) -> CenterlineGraph:
    return CenterlineGraph([[0, 0, 0], [20, 0, 0]], [r0, r1], [[0, 1]])


def test_distance_and_interpolated_radius():
    d, r = centerline_distance(np.array([[10.0, 3.0, 0.0], [5.0, 0.0, 4.0]]), straight())
    np.testing.assert_allclose(d, [3.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(r, [1.5, 1.75], atol=0.01)  # radius tapers 2 -> 1 over 20 mm


def test_occupancy_and_centerness_known_points():
    pts = np.array([[10, 0, 0], [10, 0.75, 0], [10, 1.4, 0], [10, 1.6, 0], [-5, 0, 0]], float)
    occ, ctr = tube_targets(pts, straight())  # radius 1.5 at x = 10
    np.testing.assert_array_equal(occ, [True, True, True, False, False])
    np.testing.assert_allclose(ctr[:2], [1.0, 0.5], atol=0.01)
    assert ctr[3] == 0 and ctr[4] == 0


def test_min_radius_widens_thin_vessels():
    g = CenterlineGraph([[0, 0, 0], [10, 0, 0]], [0.1, 0.1], [[0, 1]])
    occ, _ = tube_targets(np.array([[5.0, 0.2, 0.0]]), g)
    assert not occ[0]
    occ, _ = tube_targets(np.array([[5.0, 0.2, 0.0]]), g, min_radius_mm=0.25)
    assert occ[0]


def test_empty_graph_and_bad_shape():
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    occ, ctr = tube_targets(np.zeros((3, 3)), empty)
    assert not occ.any() and not ctr.any()
    with pytest.raises(ShapeError):
        tube_targets(np.zeros((3, 2)), straight())
