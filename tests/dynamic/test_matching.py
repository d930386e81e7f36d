from __future__ import annotations


import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic.matching import (
    match_graph,
    match_path,
    match_points,
    match_polyline,
    matched_distances,
    path_arc_length_projection,
)
from autocar.errors import ShapeError


def planar_curve(n: int, length_scale: float = 1.0) -> np.ndarray:
    """A smooth S-shaped curve in the z = 0 plane, ~110 mm long, n samples."""
    t = np.linspace(0.0, 1.0, n)
    return np.stack([80.0 * t, 15.0 * np.sin(2.5 * np.pi * t), np.zeros(n)], axis=1) * length_scale


def arc_length(p: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])


SHIFT = np.array([0.0, 0.0, 1.5])  # perpendicular to the curve's plane: distance exactly 1.5


def monotone(idx: np.ndarray, sense: int = 1) -> bool:
    m = idx[idx >= 0]
    return bool(np.all(sense * np.diff(m) >= 0))


@pytest.mark.parametrize("how", ["path", "polyline", "points"])
def test_shifted_resampled_copy_matches_at_the_known_shift(how):
    path = planar_curve(150)
    target = planar_curve(2500) + SHIFT  # a denser resampling of the same curve
    rng = np.random.default_rng(0)
    if how == "path":
        idx = match_path(path, target, max_distance_mm=3.0)
        ordered = target
    elif how == "polyline":
        idx = match_polyline(path, target, max_distance_mm=3.0)
        ordered = target
    else:
        perm = rng.permutation(len(target))
        idx_p = match_points(path, target[perm], max_distance_mm=3.0)
        assert np.all(idx_p >= 0)
        idx = perm[idx_p]  # back to curve order
        ordered = target
    assert np.all(idx >= 0)
    assert monotone(idx)
    d = matched_distances(path, ordered, idx)
    np.testing.assert_allclose(d, 1.5, atol=2e-3)
    # The match is the corresponding point of the copy, not just any point at 1.5 mm.
    np.testing.assert_allclose(ordered[idx] - SHIFT, path, atol=0.05)


def test_sparser_target_is_shared_by_several_path_points():
    path = planar_curve(400)
    target = planar_curve(40) + SHIFT
    idx = match_path(path, target, max_distance_mm=5.0)
    assert np.all(idx >= 0) and monotone(idx)
    assert len(np.unique(idx)) == 40  # every target vertex used, many to one
    np.testing.assert_array_equal(idx, np.argmin(np.linalg.norm(path[:, None] - target[None], axis=2), axis=1))


@pytest.mark.parametrize("how", ["path", "points"])
def test_points_near_a_gap_in_the_target_are_unmatched(how):
    path = planar_curve(300)
    target = planar_curve(3000) + np.array([0.0, 0.0, 1.0])
    s_t = arc_length(planar_curve(3000))
    target = target[(s_t < 40.0) | (s_t > 55.0)]
    dmax = 2.0
    if how == "path":
        idx = match_path(path, target, max_distance_mm=dmax)
    else:
        idx = match_points(path, target, max_distance_mm=dmax)
    s = arc_length(path)
    # Inside the gap, farther than sqrt(2^2 - 1^2) = 1.73 mm (along the curve) from
    # both ends, nothing lies within 2 mm.
    inner = (s > 40.0 + 1.8) & (s < 55.0 - 1.8)
    outer = (s < 40.0 - 0.5) | (s > 55.0 + 0.5)
    assert inner.sum() > 20
    assert np.all(idx[inner] == -1)
    assert np.all(idx[outer] >= 0)
    d = matched_distances(path, target, idx)
    np.testing.assert_allclose(d[outer], 1.0, atol=2e-3)
    assert np.nanmax(d) <= dmax


def test_reversed_target_polyline():
    path = planar_curve(120)
    target = planar_curve(1500) + SHIFT
    fwd = match_polyline(path, target, max_distance_mm=3.0)
    rev_target = target[::-1]
    # "either" (default): indices refer to the reversed array as given and are
    # non-increasing along the path; the same geometric matches as forward.
    rev = match_polyline(path, rev_target, max_distance_mm=3.0)
    assert np.all(rev >= 0)
    assert monotone(rev, sense=-1)
    np.testing.assert_array_equal(rev, len(target) - 1 - fwd)
    # "forward" / match_path insist on non-decreasing indices: against a
    # reversed curve only a short stretch of the path can be matched.
    only_fwd = match_polyline(path, rev_target, max_distance_mm=3.0, direction="forward")
    assert monotone(only_fwd)
    assert np.count_nonzero(only_fwd >= 0) < 0.2 * len(path)
    np.testing.assert_array_equal(only_fwd, match_path(path, rev_target, max_distance_mm=3.0))
    # Unordered matching does not care about the target's order at all.
    pts = match_points(path, rev_target, max_distance_mm=3.0)
    np.testing.assert_array_equal(pts, rev)


def test_order_beats_nearest_neighbour_on_a_hairpin():
    # Two legs 2 mm apart joined by a bend; the target is shifted 1.2 mm towards
    # the other leg, so every path point's nearest target point is on the wrong leg.
    leg = np.linspace(0.0, 30.0, 61)
    bend = np.linspace(np.pi / 2, -np.pi / 2, 9)[1:-1]
    hair = np.concatenate(
        [
            np.stack([leg, np.full_like(leg, 1.0), np.zeros_like(leg)], 1),
            np.stack([30.0 + np.cos(bend), np.sin(bend), np.zeros_like(bend)], 1),
            np.stack([leg[::-1], np.full_like(leg, -1.0), np.zeros_like(leg)], 1),
        ]
    )
    first_leg = np.arange(61)
    target = hair.copy()
    target[first_leg, 1] -= 1.2
    target[len(hair) - 61 :, 1] += 1.2
    nn = np.argmin(np.linalg.norm(hair[:, None] - target[None], axis=2), axis=1)
    assert np.all(nn[first_leg[5:-5]] >= len(hair) - 61)  # nearest neighbour crosses over
    idx = match_path(hair, target, max_distance_mm=3.0)
    assert monotone(idx)
    ok = np.concatenate([first_leg[:50], np.arange(len(hair) - 50, len(hair))])
    np.testing.assert_array_equal(idx[ok], ok)


def test_outliers_beyond_max_distance_are_never_matched():
    rng = np.random.default_rng(3)
    path = planar_curve(200)
    target = planar_curve(800) + SHIFT
    # Outliers 2.6-10 mm off the curve's plane: all beyond max_distance = 2.5.
    out = planar_curve(800)[rng.integers(0, 800, 300)] + np.c_[
        rng.normal(0, 0.5, (300, 2)), rng.choice([-1, 1], 300) * rng.uniform(2.6, 10, 300)
    ]
    cloud = np.concatenate([target, out])
    for pts in (cloud, cloud[::-1]):
        idx = match_points(path, pts, max_distance_mm=2.5)
        assert np.all(idx >= 0)
        assert np.nanmax(matched_distances(path, pts, idx)) <= 2.5
    idx = match_points(path, cloud, max_distance_mm=2.5)
    assert np.all(idx < len(target))  # no outlier index
    # A cheap skip never lets a match beyond max_distance through either.
    far = path + np.array([0.0, 0.0, 4.0])
    for skip in (0.0, 1.0, 100.0):
        assert np.all(match_path(path, far, max_distance_mm=3.0, skip_cost=skip) == -1)
        assert np.all(match_points(path, far, max_distance_mm=3.0, skip_cost=skip) == -1)


def test_skip_cost_zero_still_prefers_matching_on_ties():
    path = planar_curve(50)
    idx = match_path(path, path.copy(), max_distance_mm=1.0, skip_cost=0.0)
    np.testing.assert_array_equal(idx, np.arange(50))


def test_bad_input_is_rejected():
    p = planar_curve(10)
    with pytest.raises(ShapeError, match="path is empty"):
        match_path(np.zeros((0, 3)), p, max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="candidates is empty"):
        match_path(p, np.zeros((0, 3)), max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="points is empty"):
        match_points(p, np.zeros((0, 3)), max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="target is empty"):
        match_polyline(p, np.zeros((0, 3)), max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="expected 3"):
        match_path(p, p[:, :2], max_distance_mm=1.0)
    with pytest.raises(ShapeError, match=r"shape \(n, D\)"):
        match_path(p[0], p, max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="NaN"):
        match_points(np.where(np.arange(10)[:, None] == 3, np.nan, p), p, max_distance_mm=1.0)
    for bad in (0.0, -1.0, np.inf, np.nan, "x"):
        with pytest.raises(ValueError, match="max_distance_mm"):
            match_path(p, p, max_distance_mm=bad)
    with pytest.raises(ValueError, match="skip_cost"):
        match_path(p, p, max_distance_mm=1.0, skip_cost=-1.0)
    with pytest.raises(ValueError, match="direction"):
        match_polyline(p, p, max_distance_mm=1.0, direction="backward")
    with pytest.raises(ShapeError, match="index must have shape"):
        matched_distances(p, p, np.zeros(3, dtype=int))


def test_single_point_inputs():
    p = planar_curve(10)
    assert match_path(p[:1], p, max_distance_mm=0.5).tolist() == [0]
    idx = match_points(p, p[4:5], max_distance_mm=0.5)
    assert idx.tolist() == [-1] * 4 + [0] + [-1] * 5
    s, d = path_arc_length_projection(p[:1], p)
    assert np.all(s == 0) and d[0] == 0


def test_arc_length_projection_is_exact_and_shares_vertex_keys():
    path = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    pts = np.array([[5.0, 1.0], [12.0, -2.0], [13.0, -1.0], [9.0, 4.0], [-3.0, 0.0]])
    s, d = path_arc_length_projection(path, pts)
    np.testing.assert_allclose(s, [5.0, 10.0, 10.0, 14.0, 0.0])
    np.testing.assert_allclose(d, [1.0, np.hypot(2, 2), np.hypot(3, 1), 1.0, 3.0])
    assert s[1] == s[2] == 10.0  # beyond the corner: one key, exactly


def y_graph() -> CenterlineGraph:
    # Trunk along +x (0..20 mm), two branches from its end; ~1 mm spacing; one isolated node.
    trunk = np.stack([np.arange(21.0), np.zeros(21), np.zeros(21)], 1)
    up = np.stack([20 + np.arange(1, 16.0) * 0.8, np.arange(1, 16.0) * 0.6, np.zeros(15)], 1)
    down = np.stack([20 + np.arange(1, 16.0) * 0.8, -np.arange(1, 16.0) * 0.6, np.zeros(15)], 1)
    nodes = np.concatenate([trunk, up, down, [[0.0, 30.0, 0.0]]])
    edges = (
        [(i, i + 1) for i in range(20)]
        + [(20, 21)]
        + [(21 + i, 22 + i) for i in range(14)]
        + [(20, 36)]
        + [(36 + i, 37 + i) for i in range(14)]
    )
    return CenterlineGraph(nodes, np.ones(len(nodes)), np.asarray(edges))


def test_match_graph_3d_and_2d():
    g = y_graph()
    shift = np.array([0.0, 0.0, 0.7])
    dense = g.resampled(0.05)
    b_nodes = dense.nodes + shift
    rng = np.random.default_rng(5)
    b = b_nodes[rng.permutation(len(b_nodes))]
    targets, valid = match_graph(g, b, max_distance_mm=2.0)
    assert targets.shape == (g.num_nodes, 3) and valid.shape == (g.num_nodes,)
    assert valid.all()
    np.testing.assert_allclose(targets, g.nodes + shift, atol=1e-9)
    # The isolated node (the last one; resampled() keeps old indices first)
    # with nothing near stays unmatched.
    others = np.delete(b_nodes, g.num_nodes - 1, axis=0)
    targets, valid = match_graph(g, others, max_distance_mm=2.0)
    assert not valid[-1] and np.all(np.isnan(targets[-1])) and valid[:-1].all()
    # A CenterlineGraph as the target.
    t2, v2 = match_graph(g, dense.with_nodes(b_nodes), max_distance_mm=2.0)
    np.testing.assert_allclose(t2, g.nodes + shift, atol=1e-9)
    assert v2.all()
    # 2D: centre-line "pixels" in (row, col) = (y, x), with a projection.
    # (The 3D shift is along z, so it vanishes in this projection.)
    px = np.c_[b_nodes[:, 1], b_nodes[:, 0]]

    def proj(x):  # returns (rc, depth) like CArmView.project
        return np.c_[x[:, 1], x[:, 0]], x[:, 2]

    t2d, v2d = match_graph(g, px, max_distance_mm=1.0, project=proj)
    assert t2d.shape == (g.num_nodes, 2) and v2d.all()
    np.testing.assert_allclose(t2d, np.c_[g.nodes[:, 1], g.nodes[:, 0]], atol=1e-9)
    # Nodes that project to NaN (behind the source) stay unmatched.

    def nan_proj(x):
        return np.where(x[:, :1] < 5, np.nan, np.c_[x[:, 1], x[:, 0]])

    t2d, v2d = match_graph(g, px, max_distance_mm=1.0, project=nan_proj)
    assert not v2d[:5].any() and v2d[5:-1].all() and not v2d[-1]  # the isolated node has x = 0


def test_match_graph_bad_input():
    g = y_graph()
    with pytest.raises(ShapeError, match="project"):
        match_graph(g, np.zeros((5, 2)), max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="points_b is empty"):
        match_graph(g, np.zeros((0, 3)), max_distance_mm=1.0)
    with pytest.raises(ShapeError, match="3 coordinates"):
        match_graph(g, np.zeros((5, 4)), max_distance_mm=1.0)
    with pytest.raises(TypeError):
        match_graph(g.nodes, g.nodes, max_distance_mm=1.0)
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    t, v = match_graph(empty, g.nodes, max_distance_mm=1.0)
    assert t.shape == (0, 3) and v.shape == (0,)


def test_200_points_against_2000_candidates_match_their_shifted_copies():
    path = planar_curve(200)
    cand = planar_curve(2000) + SHIFT
    rng = np.random.default_rng(0)
    order = rng.permutation(2000)
    cloud = cand[order]
    idx = match_path(path, cand, max_distance_mm=3.0)
    assert np.all(idx >= 0) and monotone(idx)
    assert np.abs(np.linalg.norm(cand[idx] - path, axis=1) - 1.5).max() < 0.1  # nearest copy, 1.5 mm away
    free = match_points(path, cloud, max_distance_mm=3.0)
    assert np.all(free >= 0)
    assert np.linalg.norm(cloud[free] - path, axis=1).max() < 1.6
