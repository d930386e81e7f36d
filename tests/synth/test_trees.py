"""Tests of autocar.synth.trees: random labelled coronary trees."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.errors import GeometryError
from autocar.synth.angiogram import ostium_node
from autocar.synth.trees import (
    FIT_CUBE_MM,
    LEFT_VESSELS,
    RIGHT_VESSELS,
    Stenosis,
    generate_tree,
)


def _vessel(graph, name):
    return np.flatnonzero(graph.labels == graph.label_names.index(name))


def _arc_length(graph, ids):
    pts = graph.nodes[ids]
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_tree_is_one_labelled_tree_rooted_at_the_ostium(side, seed):
    tree = generate_tree(side, rng=seed)
    g = tree.graph
    names = LEFT_VESSELS if side == "left" else RIGHT_VESSELS
    assert g.label_names == names
    assert g.is_forest() and g.components().max() == 0
    assert g.num_edges == g.num_nodes - 1
    # Every named vessel is present and node 0 (the ostium) is what the renderer calls the ostium.
    assert set(np.unique(g.labels)) == set(range(len(names)))
    assert ostium_node(g) == 0 and g.degrees()[0] == 1
    # Fits the documented cube, centred near the isocentre.
    lo, hi = g.bounds()
    assert np.all(hi - lo <= FIT_CUBE_MM)
    assert np.all(np.abs((lo + hi) / 2) <= 3.0)


def test_same_seed_same_tree_and_different_seed_different_tree():
    a = generate_tree("left", rng=5, n_stenoses=1)
    b = generate_tree("left", rng=5, n_stenoses=1)
    c = generate_tree("left", rng=6, n_stenoses=1)
    np.testing.assert_array_equal(a.graph.nodes, b.graph.nodes)
    np.testing.assert_array_equal(a.graph.radii, b.graph.radii)
    assert a.stenoses == b.stenoses
    assert a.graph.num_nodes != c.graph.num_nodes or not np.allclose(a.graph.nodes, c.graph.nodes)


def test_anatomy_is_adult_sized():
    for seed in range(5):
        g = generate_tree("left", rng=seed).graph
        lm, lad, lcx = (_vessel(g, n) for n in ("LM", "LAD", "LCX"))
        assert 8.0 <= _arc_length(g, lm) <= 30.0
        assert 80.0 <= _arc_length(g, lad) <= 170.0
        assert 40.0 <= _arc_length(g, lcx) <= 140.0
        # Dodge et al. 1992: LM ~4.5 mm, proximal LAD ~3.6 mm diameter.
        assert 3.6 <= 2 * g.radii[0] <= 5.0
        assert 2.6 <= 2 * g.radii[lad[0]] <= 4.2
        assert g.radii.min() >= 0.3
        r = generate_tree("right", rng=seed).graph
        assert 3.4 <= 2 * r.radii[0] <= 4.4
        assert 100.0 <= _arc_length(r, _vessel(r, "RCA")) <= 220.0


def test_long_axis_points_left_anterior_inferior():
    for seed in range(5):
        a = generate_tree("left", rng=seed).long_axis
        assert abs(np.linalg.norm(a) - 1.0) < 1e-9
        assert a[0] > 0.3 and a[1] < -0.2 and a[2] < -0.3  # LPS: +x left, -y anterior, -z inferior


def test_node_spacing_is_respected():
    for spacing in (0.5, 1.0, 2.0):
        g = generate_tree("left", rng=2, node_spacing_mm=spacing).graph
        med = float(np.median(g.edge_lengths()))
        assert abs(med - spacing) <= 0.2 * spacing


def test_murray_law_at_the_left_main_bifurcation():
    for seed in range(4):
        g = generate_tree("left", rng=seed).graph
        lm, lad, lcx = (_vessel(g, n) for n in ("LM", "LAD", "LCX"))
        parent = g.radii[lm[-1]] ** 3
        children = g.radii[lad[0]] ** 3 + g.radii[lcx[0]] ** 3
        assert children == pytest.approx(parent, rel=0.05)


def test_murray_law_at_side_branches():
    g = generate_tree("left", rng=3, node_spacing_mm=0.5).graph
    nbrs = g.neighbours()
    for branch, parent_name in (("D1", "LAD"), ("OM1", "LCX")):
        first = _vessel(g, branch)[0]
        (anchor,) = [j for j in nbrs[first] if g.labels[j] == g.label_names.index(parent_name)]
        parent_ids = _vessel(g, parent_name)
        k = int(np.flatnonzero(parent_ids == anchor)[0])
        before, after = g.radii[parent_ids[k]], g.radii[parent_ids[k + 1]]
        assert after < before
        assert after**3 + g.radii[first] ** 3 == pytest.approx(before**3, rel=0.05)


def test_stenosis_narrows_the_lumen_by_its_severity():
    clean = generate_tree("left", rng=11, n_stenoses=0).graph
    tree = generate_tree("left", rng=11, n_stenoses=2, severity_range=(0.5, 0.7))
    g = tree.graph
    np.testing.assert_array_equal(clean.nodes, g.nodes)  # only radii change
    assert len(tree.stenoses) == 2
    assert len({s.label for s in tree.stenoses}) == 2
    for s in tree.stenoses:
        assert isinstance(s, Stenosis)
        assert 0.5 <= s.severity <= 0.7 and 4.0 <= s.length_mm <= 12.0
        assert g.label_names[g.labels[s.node]] == s.label
        assert g.radii[s.node] == pytest.approx(clean.radii[s.node] * (1 - s.severity), rel=1e-9)
        np.testing.assert_allclose(s.position_mm, g.nodes[s.node])
        assert Stenosis.from_dict(s.to_dict()).node == s.node
    # Outside every stenosed segment the radii are untouched.
    changed = np.flatnonzero(~np.isclose(g.radii, clean.radii))
    for i in changed:
        assert min(np.linalg.norm(g.nodes[i] - np.array(s.position_mm)) for s in tree.stenoses) <= 7.0


def test_stenosis_distance_is_the_path_length_from_the_ostium():
    tree = generate_tree("right", rng=4, n_stenoses=1)
    (s,) = tree.stenoses
    assert s.label == "RCA"  # the only right vessel with a >= 1 mm lumen mid-way
    rca = _vessel(tree.graph, "RCA")
    k = int(np.flatnonzero(rca == s.node)[0])
    assert rca[0] == 0
    assert s.distance_mm == pytest.approx(_arc_length(tree.graph, rca[: k + 1]), rel=1e-9)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"side": "middle"}, ValueError),
        ({"side": "left", "node_spacing_mm": 0.0}, GeometryError),
        ({"side": "left", "severity_range": (0.8, 0.3)}, ValueError),
        ({"side": "left", "severity_range": (0.3, 1.0)}, ValueError),
        ({"side": "left", "n_stenoses": -1}, ValueError),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error):
    side = kwargs.pop("side")
    with pytest.raises(error):
        generate_tree(side, rng=0, **kwargs)
