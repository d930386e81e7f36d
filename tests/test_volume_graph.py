"""Tests of autocar.geometry.volume_graph: centre lines from binary volumes."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.errors import ShapeError
from autocar.geometry.volume_graph import graph_from_volume, voxel_affine


def _grid(shape, spacing, origin=(0.0, 0.0, 0.0)):
    axes = [o + np.arange(n) * s for n, s, o in zip(shape, spacing, origin)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _capsules(shape, spacing, segments):
    """Union of capsules (p0, p1, r) in mm; voxel centres at index * spacing."""
    g = _grid(shape, spacing)
    m = np.zeros(shape, dtype=bool)
    for p0, p1, r in segments:
        p0 = np.asarray(p0, float)
        d = np.asarray(p1, float) - p0
        t = np.clip(((g - p0) @ d) / (d @ d), 0.0, 1.0)
        m |= np.linalg.norm(g - (p0 + t[..., None] * d), axis=-1) <= r
    return m


def _cylinder(spacing=(0.5, 0.5, 0.5), origin=(0.0, 0.0, 0.0)):
    """Flat-ended cylinder of radius 2 mm along x from 5 to 35 mm, axis y = z = 6 mm (grid frame)."""
    g = _grid((80, 24, 24), spacing)
    return (np.hypot(g[..., 1] - 6, g[..., 2] - 6) <= 2.0) & (g[..., 0] >= 5) & (g[..., 0] <= 35)


def test_straight_cylinder_gives_one_path_on_the_axis():
    g = graph_from_volume(_cylinder(), (0.5, 0.5, 0.5))
    assert g.is_forest() and g.components().max() == 0
    assert np.bincount(g.degrees()).tolist() == [0, 2, g.num_nodes - 2]
    # On the axis within half a voxel, length within 2 mm, radius within 0.5 mm.
    assert np.abs(g.nodes[:, 1:] - 6.0).max() <= 0.25
    assert abs(g.total_length_mm - 30.0) <= 2.0
    assert abs(np.median(g.radii) - 2.0) <= 0.5
    assert g.edge_lengths().max() <= 1.0 + 1e-9


def test_origin_and_affine_place_nodes_in_world():
    m = _cylinder()
    base = graph_from_volume(m, (0.5, 0.5, 0.5))
    moved = graph_from_volume(m, (0.5, 0.5, 0.5), (10.0, -20.0, 5.0))
    np.testing.assert_allclose(moved.nodes, base.nodes + [10.0, -20.0, 5.0], atol=1e-9)
    # Affine swapping x and y with a flip: world = (-(j*0.5), i*0.5, k*0.5) + t.
    a = np.array([[0, -0.5, 0, 1.0], [0.5, 0, 0, 2.0], [0, 0, 0.5, 3.0], [0, 0, 0, 1]])
    rot = graph_from_volume(m, (1.0, 1.0, 1.0), affine=a)
    expected = np.stack([-base.nodes[:, 1] + 1.0, base.nodes[:, 0] + 2.0, base.nodes[:, 2] + 3.0], axis=1)
    np.testing.assert_allclose(np.sort(rot.nodes, axis=0), np.sort(expected, axis=0), atol=1e-6)
    np.testing.assert_allclose(np.sort(rot.radii), np.sort(base.radii), atol=1e-9)


def test_anisotropic_spacing_keeps_length_and_radius():
    g = _grid((60, 24, 16), (0.5, 0.5, 0.75))
    m = np.hypot(g[..., 1] - 6, g[..., 2] - 6) <= 2.0
    m &= (g[..., 0] >= 5) & (g[..., 0] <= 25)
    out = graph_from_volume(m, (0.5, 0.5, 0.75))
    assert abs(out.total_length_mm - 20.0) <= 2.0
    assert abs(np.median(out.radii) - 2.0) <= 0.5


def test_y_bifurcation_has_one_junction_near_the_truth():
    m = _capsules(
        (80, 60, 24),
        (0.5, 0.5, 0.5),
        [((5, 15, 6), (20, 15, 6), 2.0), ((20, 15, 6), (35, 25, 6), 1.5), ((20, 15, 6), (35, 5, 6), 1.5)],
    )
    g = graph_from_volume(m, (0.5, 0.5, 0.5))
    deg = g.degrees()
    assert (deg == 3).sum() == 1
    assert (deg == 1).sum() == 3
    assert deg.max() == 3
    assert g.is_forest()
    junction = g.nodes[deg == 3][0]
    assert np.linalg.norm(junction - [20.0, 15.0, 6.0]) <= 2.0
    leaves = g.nodes[deg == 1]
    for tip in ([5, 15, 6], [35, 25, 6], [35, 5, 6]):
        assert np.linalg.norm(leaves - tip, axis=1).min() <= 3.0


def test_ring_becomes_a_forest():
    g = _grid((60, 60, 20), (0.5, 0.5, 0.5))
    m = np.hypot(np.hypot(g[..., 0] - 15, g[..., 1] - 15) - 10, g[..., 2] - 5) <= 2.0
    out = graph_from_volume(m, (0.5, 0.5, 0.5))
    assert out.num_nodes > 0
    assert out.is_forest()
    assert out.components().max() == 0
    # Nearly the whole circumference (2 pi 10 = 62.8 mm) survives the cut.
    assert 50.0 <= out.total_length_mm <= 64.0


def test_short_spur_is_pruned_and_tiny_blob_dropped():
    m = _capsules((80, 40, 24), (0.5, 0.5, 0.5), [((5, 10, 6), (35, 10, 6), 2.0), ((20, 10, 6), (20, 12.5, 6), 1.0)])
    m[70:72, 30:32, 18:20] = True  # speckle far away
    g = graph_from_volume(m, (0.5, 0.5, 0.5), min_branch_mm=3.0)
    assert g.degrees().max() == 2
    assert g.components().max() == 0
    # A side branch reaching 5 mm beyond the wall is a real branch and stays.
    m = _capsules((80, 40, 24), (0.5, 0.5, 0.5), [((5, 10, 6), (35, 10, 6), 2.0), ((20, 10, 6), (20, 16, 6), 1.0)])
    g2 = graph_from_volume(m, (0.5, 0.5, 0.5), min_branch_mm=3.0)
    assert (g2.degrees() == 3).sum() == 1 and (g2.degrees() == 1).sum() == 3


def test_node_spacing_respected():
    g = graph_from_volume(_cylinder(), (0.5, 0.5, 0.5), max_node_spacing_mm=0.3)
    assert g.edge_lengths().max() <= 0.3 + 1e-9


def test_empty_mask_gives_empty_graph():
    g = graph_from_volume(np.zeros((8, 9, 10), dtype=bool), (1.0, 1.0, 1.0))
    assert g.num_nodes == 0 and g.num_edges == 0


def test_single_voxel_gives_a_single_node():
    m = np.zeros((5, 5, 5), dtype=bool)
    m[2, 3, 1] = True
    g = graph_from_volume(m, (1.0, 2.0, 3.0), (1.0, 1.0, 1.0))
    assert g.num_nodes == 1
    np.testing.assert_allclose(g.nodes[0], [3.0, 7.0, 4.0])


@pytest.mark.parametrize("shape", [(10, 10), (2, 3, 4, 5)])
def test_wrong_ndim_raises(shape):
    with pytest.raises(ShapeError, match="3D"):
        graph_from_volume(np.ones(shape, dtype=bool), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, np.nan, 1.0)])
def test_bad_spacing_raises(spacing):
    with pytest.raises(ShapeError, match="spacing_mm"):
        graph_from_volume(np.ones((3, 3, 3), dtype=bool), spacing)


def test_bad_affine_raises():
    with pytest.raises(ShapeError, match="affine"):
        graph_from_volume(np.ones((3, 3, 3), dtype=bool), (1, 1, 1), affine=np.eye(3))


def test_voxel_affine_maps_index_to_world():
    a = voxel_affine((0.5, 1.0, 2.0), (1.0, 2.0, 3.0))
    np.testing.assert_allclose(a @ [2, 3, 4, 1], [2.0, 5.0, 11.0, 1.0])
