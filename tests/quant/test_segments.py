"""Vessel decomposition of hand-made T/Y trees and synthetic coronary trees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import TreeFormatError
from autocar.quant.segments import (
    arc_length,
    diameter_profile,
    smooth_polyline,
    smoothing_matrix,
    split_segments,
    thin_by_arc,
)
from autocar.synth.trees import generate_tree


def _chain(start: np.ndarray, direction: np.ndarray, length: float, radius: float, step: float = 1.0):
    """Points after ``start`` every ``step`` mm along ``direction`` (start excluded)."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    k = int(round(length / step))
    return [start + d * step * (i + 1) for i in range(k)], [radius] * k


def y_tree(spur: bool = True, labels: bool = False) -> CenterlineGraph:
    """Trunk 20 mm down -z (r 2), then child A 30 mm along (1,0,-1) (r 1.5) and child B
    15 mm along (-1,0,-1) (r 1.0); optionally a 3 mm spur (r 0.5) along +y at z = -10.

    Node ids: trunk 0..20 (junction 20), A 21..50, B 51..65, spur 66..68.
    """
    nodes = [np.array([0.0, 0.0, -float(z)]) for z in range(21)]
    radii = [2.0] * 21
    edges = [(i, i + 1) for i in range(20)]
    groups = [0] * 21

    def add(parent: int, pts, rs, group):
        first = len(nodes)
        nodes.extend(pts)
        radii.extend(rs)
        groups.extend([group] * len(pts))
        chain = [parent] + list(range(first, first + len(pts)))
        edges.extend(zip(chain[:-1], chain[1:]))

    add(20, *_chain(nodes[20], [1, 0, -1], 30, 1.5), 1)
    add(20, *_chain(nodes[20], [-1, 0, -1], 15, 1.0), 2)
    if spur:
        add(10, *_chain(nodes[10], [0, 1, 0], 3, 0.5), 3)
    kw = {}
    if labels:
        kw = dict(labels=np.asarray(groups), label_names=("LM", "LAD", "LCX", "S"))
    return CenterlineGraph(np.asarray(nodes), np.asarray(radii), np.asarray(edges), **kw)


def test_y_tree_unlabelled_follows_the_wider_child_and_drops_the_spur():
    tree = split_segments(y_tree())
    assert tree.roots == (0,)  # the endpoint of largest radius is the ostium
    assert [s.name for s in tree.segments] == ["segment 0", "segment 1"]
    main, side = tree.segments
    np.testing.assert_array_equal(main.nodes, list(range(21)) + list(range(21, 51)))
    np.testing.assert_array_equal(side.nodes, [20] + list(range(51, 66)))
    assert main.parent is None and side.parent == 0
    assert main.length_mm == pytest.approx(50.0) and side.length_mm == pytest.approx(15.0)
    np.testing.assert_array_equal(side.owned_nodes, range(51, 66))
    # Spur nodes belong to no kept segment; everything else has its owner.
    assert np.all(tree.owner[66:] == -1) and np.all(tree.owner[:51] == 0) and np.all(tree.owner[51:66] == 1)
    # The spur stays in the list when the threshold is below its 3 mm.
    assert len(split_segments(y_tree(), min_length_mm=2.0).segments) == 3


def test_t_tree_equal_radii_goes_on_along_the_longer_child():
    # Same radius for both children: the tie goes to the longer downstream path (B made longer).
    g = y_tree(spur=False)
    radii = g.radii.copy()
    radii[21:] = 1.2
    nodes = g.nodes.copy()
    nodes[51:66] = nodes[20] + (nodes[51:66] - nodes[20]) * 3.0  # B now 45 mm, edges 3 mm
    tree = split_segments(CenterlineGraph(nodes, radii, g.edges))
    assert tree.segments[0].nodes[-1] == 65
    assert tree.segments[1].nodes[-1] == 50


def _fork(straight_radius: float, side_radius: float) -> CenterlineGraph:
    """Trunk 20 mm down -z (r 2); child S goes straight on 30 mm (nodes 21..50), child T
    turns 60 deg towards +x for 30 mm (nodes 51..80)."""
    nodes = [np.array([0.0, 0.0, -float(z)]) for z in range(21)]
    s_pts, s_r = _chain(nodes[20], [0, 0, -1], 30, straight_radius)
    t_pts, t_r = _chain(nodes[20], [math.sin(math.radians(60)), 0, -math.cos(math.radians(60))], 30, side_radius)
    edges = [(i, i + 1) for i in range(20)]
    edges += list(zip([20] + list(range(21, 50)), range(21, 51)))
    edges += list(zip([20] + list(range(51, 80)), range(51, 81)))
    return CenterlineGraph(np.asarray(nodes + s_pts + t_pts), np.asarray([2.0] * 21 + s_r + t_r), np.asarray(edges))


def test_children_of_nearly_equal_lumen_go_on_along_the_straighter_one():
    # T reads 8 % wider than S: within the 15 % tolerance, so the straight child continues.
    tree = split_segments(_fork(1.3, 1.4))
    assert tree.segments[0].nodes[-1] == 50
    assert tree.segments[1].nodes[-1] == 80
    # 38 % wider: lumen decides, the turning child continues.
    assert split_segments(_fork(1.3, 1.8)).segments[0].nodes[-1] == 80
    # With no tolerance the wider child always wins, as in plain QCA.
    assert split_segments(_fork(1.3, 1.4), branch_radius_tolerance=0.0).segments[0].nodes[-1] == 80
    with pytest.raises(ValueError, match="branch_radius_tolerance"):
        split_segments(_fork(1.3, 1.4), branch_radius_tolerance=1.0)
    with pytest.raises(ValueError, match="direction_probe_mm"):
        split_segments(_fork(1.3, 1.4), direction_probe_mm=float("nan"))


def test_left_side_names_lm_lad_lcx_by_the_apex_rule():
    tree = split_segments(y_tree(), side="left")
    names = {s.name: s for s in tree.segments}
    assert set(names) == {"LM", "LAD", "LCX"}
    np.testing.assert_array_equal(names["LM"].nodes, range(21))
    # A ends at (21.2, 0, -41.2): towards +x and -z, i.e. towards the apex (1,-1,-1)/sqrt(3);
    # B ends at (-10.6, 0, -30.6), with no apex-ward component past the junction.
    assert names["LAD"].nodes[-1] == 50 and names["LCX"].nodes[-1] == 65
    assert names["LAD"].parent == names["LM"].id == 0
    assert tree.side == "left"
    # The LM is judged along LM + its continuation; the junction is a branch point there.
    path = tree.analysis_path(names["LM"].id)
    np.testing.assert_array_equal(path, list(range(51)))
    np.testing.assert_array_equal(tree.branch_points(path), [20])
    np.testing.assert_array_equal(tree.analysis_path(names["LCX"].id), list(range(21)) + list(range(51, 66)))


def test_right_side_names_the_main_vessel_rca():
    tree = split_segments(y_tree(), side="right")
    assert [s.name for s in tree.segments] == ["RCA", "segment 1"]


def test_labels_are_used_directly():
    tree = split_segments(y_tree(labels=True), min_length_mm=2.0)
    assert sorted(s.name for s in tree.segments) == ["LAD", "LCX", "LM", "S"]
    assert tree.by_name("LM").nodes.tolist() == list(range(21))
    assert tree.by_name("LAD").nodes.tolist() == [20] + list(range(21, 51))
    assert tree.by_name("S").nodes.tolist() == [10, 66, 67, 68]
    assert tree.side == "left"  # inferred from the label names


def test_root_override_and_forest():
    g = y_tree(spur=False)
    # A second, separate 10 mm vessel: its own root and segment, after the main tree.
    extra = np.array([[50.0, 0, z] for z in range(11)], float)
    nodes = np.concatenate([g.nodes, extra])
    radii = np.concatenate([g.radii, np.full(11, 1.0)])
    n0 = g.num_nodes
    edges = np.concatenate([g.edges, [(n0 + i, n0 + i + 1) for i in range(10)]])
    tree = split_segments(CenterlineGraph(nodes, radii, edges))
    assert len(tree.roots) == 2 and tree.roots[0] == 0
    assert tree.segments[-1].nodes.tolist() in (list(range(n0, n0 + 11)), list(range(n0 + 10, n0 - 1, -1)))
    forced = split_segments(g, root=50)
    assert forced.roots == (50,) and forced.segments[0].nodes[0] == 50


def test_bad_graphs_are_rejected_with_clear_errors():
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    with pytest.raises(TreeFormatError, match="empty"):
        split_segments(empty)
    no_edges = CenterlineGraph(np.zeros((3, 3)), np.ones(3), np.zeros((0, 2), int))
    with pytest.raises(TreeFormatError, match="empty"):
        split_segments(no_edges)
    ring = CenterlineGraph(np.eye(3), np.ones(3), np.array([[0, 1], [1, 2], [2, 0]]))
    with pytest.raises(TreeFormatError, match="cycle"):
        split_segments(ring)
    with pytest.raises(TreeFormatError, match="root"):
        split_segments(y_tree(), root=999)
    with pytest.raises(ValueError, match="side"):
        split_segments(y_tree(), side="middle")  # type: ignore[arg-type]


def test_smoothing_keeps_straight_lines_and_ends_and_removes_jitter():
    line = np.stack([np.linspace(-20, 20, 81), np.zeros(81), np.linspace(0, 10, 81)], axis=1)
    np.testing.assert_allclose(smooth_polyline(line, 1.0), line, atol=1e-12)
    assert arc_length(line)[-1] == pytest.approx(math.hypot(40, 10))
    rng = np.random.default_rng(0)
    noisy = line + rng.normal(0, 0.3, line.shape)
    sm = smooth_polyline(noisy, 1.0)
    np.testing.assert_allclose(sm[[0, -1]], noisy[[0, -1]], atol=1e-12)
    raw_excess = arc_length(noisy)[-1] / math.hypot(40, 10) - 1
    smooth_excess = arc_length(sm)[-1] / math.hypot(40, 10) - 1
    assert raw_excess > 0.3 and abs(smooth_excess) < 0.05
    with pytest.raises(TreeFormatError, match="NaN"):
        smooth_polyline(np.array([[0, 0, 0], [np.nan, 0, 0.0]]), 1.0)


def test_local_quadratic_smoother_keeps_parabolas_and_gaussian_keeps_constants():
    s = np.linspace(0, 10, 41)
    par = 1.0 + 0.3 * (s - 5) ** 2
    np.testing.assert_allclose(smoothing_matrix(s, 1.0, degree=2) @ par, par, atol=1e-6)
    np.testing.assert_allclose(smoothing_matrix(s, 1.0) @ np.full(41, 2.5), 2.5)


def test_diameter_profile_of_a_straight_vessel():
    g = y_tree(spur=False)
    arc, d = diameter_profile(g, np.arange(21))
    np.testing.assert_allclose(arc, np.arange(21.0))
    np.testing.assert_allclose(d, 4.0)


@pytest.mark.parametrize("side,main", [("left", ("LM", "LAD", "LCX")), ("right", ("RCA",))])
def test_synthetic_trees_unlabelled_get_the_right_main_vessels(side, main):
    for seed in (0, 1, 2):
        truth = generate_tree(side, rng=seed, n_stenoses=2)
        g = truth.graph
        tree = split_segments(CenterlineGraph(g.nodes, g.radii, g.edges), side=side)
        assert tree.roots[0] == 0  # node 0 is the generator's ostium
        for name in main:
            seg = tree.by_name(name)
            # Its first own node carries the truth label of the same name.
            assert g.label_names[g.labels[seg.owned_nodes[0]]] == name
        labelled = split_segments(g)
        assert sorted(s.name for s in labelled.segments) == sorted(g.label_names)



def test_branches_of_the_lad_and_lcx_are_named_diagonals_and_marginals_from_the_ostium_out():
    # The Y tree (LM 0..20, LAD 21..50 along (1,0,-1), LCX 51..65) with two branches off the
    # LAD (at nodes 25 and 40) and one off the LCX (at node 58), each 12 mm along +y.
    g = y_tree(spur=False)
    nodes, radii, edges = list(g.nodes), list(g.radii), [tuple(e) for e in g.edges.tolist()]
    for at in (40, 25, 58):  # added out of order: numbering must follow the vessel, not the ids
        pts, rs = _chain(nodes[at], [0, 1, 0], 12, 0.6)
        first = len(nodes)
        nodes += pts
        radii += rs
        chain = [at] + list(range(first, first + len(pts)))
        edges += list(zip(chain[:-1], chain[1:]))
    graph = CenterlineGraph(np.asarray(nodes), np.asarray(radii), np.asarray(edges))
    tree = split_segments(graph, side="left")
    by = {s.name: s for s in tree.segments}
    assert set(by) == {"LM", "LAD", "LCX", "D1", "D2", "OM1"}
    assert by["D1"].nodes[0] == 25 and by["D2"].nodes[0] == 40 and by["OM1"].nodes[0] == 58
    assert by["D1"].parent == by["D2"].parent == by["LAD"].id and by["OM1"].parent == by["LCX"].id
    # A right tree's branches keep their "segment N" names; so does a branch of a diagonal:
    # a 6 mm twig (r 0.4) off the 4th node of D2 (node 69; D2 goes on 8 mm with r 0.6).
    right = split_segments(graph, side="right")
    assert [s.name for s in right.segments[1:]] == [f"segment {s.id}" for s in right.segments[1:]]
    pts, rs = _chain(nodes[69], [0, 0, 1], 6, 0.4)
    chain = [69] + list(range(len(nodes), len(nodes) + len(pts)))
    twig = CenterlineGraph(np.asarray(nodes + pts), np.asarray(radii + rs),
                           np.asarray(edges + list(zip(chain[:-1], chain[1:]))))
    tree = split_segments(twig, side="left")
    other = [s for s in tree.segments if s.name.startswith("segment ")]
    assert len(other) == 1 and other[0].nodes[0] == 69 and tree.segments[other[0].parent].name == "D2"
    assert {s.name for s in tree.segments} - {other[0].name} == {"LM", "LAD", "LCX", "D1", "D2", "OM1"}


def test_synthetic_left_trees_unlabelled_name_their_diagonals_and_marginals():
    for seed in (0, 1, 2, 3):
        g = generate_tree("left", rng=seed, n_stenoses=2).graph
        tree = split_segments(CenterlineGraph(g.nodes, g.radii, g.edges), side="left")
        for name in ("D1", "D2", "OM1", "OM2"):
            seg = tree.by_name(name)
            votes = np.bincount(g.labels[seg.owned_nodes], minlength=len(g.label_names))
            assert g.label_names[int(np.argmax(votes))] == name

def test_thin_by_arc_keeps_ends_and_spacing():
    s = np.arange(0.0, 10.01, 0.1)  # 101 samples every 0.1 mm
    k = thin_by_arc(s, 0.5)
    assert k[0] == 0 and k[-1] == 100
    assert np.all(np.diff(s[k]) >= 0.5 - 1e-9) and len(k) == 21
    np.testing.assert_array_equal(thin_by_arc(np.array([0.0, 1.0, 2.0]), 0.4), [0, 1, 2])
    np.testing.assert_array_equal(thin_by_arc(np.array([0.0, 1.0, 1.1]), 1.0), [0, 2])


def test_real_ct_centre_lines(shared_data):
    """ASOCA Normal_1: a real, dense (~0.07 mm) two-component CT centre-line forest."""
    from autocar.io.trees import read_vtp_centerlines

    path = shared_data / "asoca-normal-1" / "Normal_1.vtp"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    g = read_vtp_centerlines(path)
    tree = split_segments(g)
    assert len(tree.roots) == 2  # left and right coronary trees
    # Each ostium is the widest end of its tree.
    for r in tree.roots:
        ends = np.flatnonzero((g.degrees() == 1) & (g.components() == g.components()[r]))
        assert g.radii[r] >= np.percentile(g.radii[ends], 90)
    # Segments cover the forest but for the dropped spurs; every node is on at most one.
    covered = sum(s.length_mm for s in tree.segments)
    assert 0.95 * g.total_length_mm <= covered <= g.total_length_mm + 1e-6
    owned = np.concatenate([s.owned_nodes for s in tree.segments])
    assert len(owned) == len(np.unique(owned))
