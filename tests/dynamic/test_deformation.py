"""Embedded deformation graph (autocar.dynamic.deformation)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic import DeformationGraph, FitResult
from autocar.errors import GeometryError, ShapeError
from autocar.geometry.carm import CArmView
from autocar.geometry.torch_ops import project_points, projection_matrices
from autocar.synth.heartbeat import HeartbeatModel
from autocar.synth.trees import generate_tree


@pytest.fixture(scope="module")
def tree():
    return generate_tree("left", rng=0, node_spacing_mm=1.0)


@pytest.fixture(scope="module")
def points(tree) -> np.ndarray:
    return np.array(tree.graph.nodes)


def rotation(axis, angle_deg: float) -> np.ndarray:
    """Rodrigues rotation matrix about ``axis`` (right-handed)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    t = math.radians(angle_deg)
    return np.eye(3) + math.sin(t) * k + (1.0 - math.cos(t)) * (k @ k)


def heartbeat_targets(tree, points: np.ndarray, seed: int) -> np.ndarray:
    """End-systolic positions half a breath in: the largest cardiac + respiratory motion."""
    hb = HeartbeatModel.random(seed, tree.heart_center, tree.long_axis)
    return hb.displace(points, hb.systole_fraction, time_s=hb.respiration_period_s / 2.0)


# ------------------------------------------------------------------ building
def test_nodes_are_cell_means_and_weights_normalised():
    pts = np.array(
        [[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [6.0, 1.0, 1.0], [7.0, 2.0, 1.0], [-0.5, 0.2, 0.3]], dtype=float
    )
    g = DeformationGraph.build(pts, spacing_mm=5.0, k=2)
    expected = {(1.0, 0.5, 0.5), (6.5, 1.5, 1.0), (-0.5, 0.2, 0.3)}
    got = {tuple(np.round(n, 12)) for n in g.nodes.numpy()}
    assert got == expected
    sk = g.rest_skinning
    assert sk.index.shape == (5, 2)
    assert torch.allclose(sk.weight.sum(1), torch.ones(5, dtype=torch.float64), atol=1e-15)
    # nearest node first, Gaussian ratio between the two weights
    nodes = g.nodes.numpy()
    d = np.linalg.norm(pts[:, None] - nodes[sk.index.numpy()], axis=-1)
    assert np.all(d[:, 0] <= d[:, 1])
    ratio = sk.weight[:, 1] / sk.weight[:, 0]
    assert np.allclose(ratio.numpy(), np.exp(-(d[:, 1] ** 2 - d[:, 0] ** 2) / (2 * 5.0**2)), rtol=1e-12)


def test_neighbours_symmetric_within_radius(points):
    g = DeformationGraph.build(points, spacing_mm=5.0, k=4)
    e = g.edges.numpy()
    pairs = {tuple(x) for x in e.tolist()}
    assert all((b, a) in pairs for a, b in pairs)
    assert np.all(np.bincount(e[:, 0], minlength=g.num_nodes) > 0)  # nobody unregularised
    nodes = g.nodes.numpy()
    length = np.linalg.norm(nodes[e[:, 0]] - nodes[e[:, 1]], axis=1)
    assert np.all(length <= 10.0)  # no lonely node here, so all pairs are within 2 spacing
    assert 50 < g.num_nodes < 200
    assert g.num_pairs * 2 == e.shape[0]


def test_lonely_node_joined_to_nearest():
    pts = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [50.0, 0.0, 0.0]])
    g = DeformationGraph.build(pts, spacing_mm=2.0)
    assert g.num_nodes == 3
    assert g.num_pairs == 2  # (0, 1) within the radius, the far one joined to its nearest
    single = DeformationGraph.build(pts[:1])
    assert single.num_nodes == 1 and single.num_pairs == 0 and single.k == 1
    assert float(single.regulariser().detach()) == 0.0


# ------------------------------------------------------------------ identity and rigid motion
def test_identity_at_zero_parameters(points, tree):
    g = DeformationGraph.build(points)
    out = g.deform()
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.as_tensor(points))
    # new points (e.g. mesh vertices around the centre line) too
    rng = np.random.default_rng(1)
    verts = points + rng.normal(0.0, 2.0, points.shape)
    assert np.array_equal(g.apply(verts), verts)
    assert np.array_equal(g.deform_graph(tree.graph).nodes, tree.graph.nodes)
    assert float(g.regulariser().detach()) == 0.0
    assert torch.equal(g.affine(), torch.eye(3, dtype=torch.float64).expand(g.num_nodes, 3, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regulariser_zero_for_rigid_motion(points, seed):
    rng = np.random.default_rng(seed)
    r = rotation(rng.normal(size=3), rng.uniform(-60.0, 60.0))
    t = rng.normal(0.0, 20.0, 3)
    g = DeformationGraph.build(points)
    g.set_rigid(r, t)
    assert float(g.regulariser().detach()) < 1e-10
    assert float(g.smoothness(reduction="sum").detach()) < 1e-10
    assert float(g.rotation_penalty(reduction="sum").detach()) < 1e-10
    assert np.allclose(g.apply(points), points @ r.T + t, atol=1e-9)
    # the same by hand: A_j = R, g_j + t_j = R g_j + T
    nodes = g.nodes.numpy()
    h = DeformationGraph.build(points)
    h.set_affine(np.broadcast_to(r, (h.num_nodes, 3, 3)), nodes @ r.T + t - nodes)
    assert float(h.regulariser().detach()) < 1e-10
    assert torch.allclose(h.deformed_nodes(), torch.as_tensor(nodes @ r.T + t), atol=1e-10)
    # a non-rigid change is penalised
    with torch.no_grad():
        h.translation[0] += 1.0
    assert float(h.smoothness().detach()) > 1e-3
    h.set_affine(1.1 * r)
    assert float(h.rotation_penalty().detach()) > 1e-3


def test_deform_is_differentiable(points):
    g = DeformationGraph.build(points)
    loss = g.deform().sum() + g.regulariser()
    loss.backward()
    assert g.translation.grad is not None and torch.all(torch.isfinite(g.translation.grad))
    assert g.affine_delta.grad is not None
    # d(sum of deformed coordinates)/dt_j = sum of the weights of node j, per axis
    w = torch.zeros(g.num_nodes, dtype=torch.float64)
    w.index_add_(0, g.rest_skinning.index.reshape(-1), g.rest_skinning.weight.reshape(-1))
    assert torch.allclose(g.translation.grad, w[:, None].expand(-1, 3), atol=1e-12)


def test_float32_graph(points):
    g = DeformationGraph.build(points, dtype=torch.float32)
    assert g.deform().dtype == torch.float32
    g64 = DeformationGraph.build(points).float()
    g64.set_rigid(rotation([0, 0, 1], 5.0), [1.0, 2.0, 3.0])
    assert g64.deform().dtype == torch.float32
    assert float(g64.regulariser().detach()) < 1e-6


# ------------------------------------------------------------------ fitting
def test_fit_recovers_rigid_motion(points):
    r = rotation([1.0, 2.0, 3.0], 10.0)
    t = np.array([3.0, 0.0, 0.0])
    c = points.mean(0)
    targets = (points - c) @ r.T + c + t
    g = DeformationGraph.build(points)
    res = g.fit(targets)
    assert isinstance(res, FitResult)
    err = np.linalg.norm(g.apply(points) - targets, axis=1)
    assert err.max() < 0.05, err.max()
    # points near (not on) the centre line, e.g. tube mesh vertices, follow the same motion;
    # only the twist of a straight stretch about its own axis is unobservable from
    # centre-line points (a branch tip's node can keep a few degrees of twist).
    # Those off-line components converge more slowly: continue the fit (warm start).
    g.fit(targets, iterations=150)
    rng = np.random.default_rng(3)
    verts = points + rng.normal(0.0, 1.5, points.shape)
    err_v = np.linalg.norm(g.apply(verts) - ((verts - c) @ r.T + c + t), axis=1)
    assert err_v.mean() < 0.05 and err_v.max() < 0.6, (err_v.mean(), err_v.max())
    dev = np.abs(g.affine().detach().numpy() - r).max(axis=(1, 2))
    assert np.mean(dev < 0.05) > 0.9


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_heartbeat(tree, points, seed):
    targets = heartbeat_targets(tree, points, seed)
    assert np.linalg.norm(targets - points, axis=1).mean() > 3.0  # a real motion
    g = DeformationGraph.build(points)
    g.fit(targets)
    err = np.linalg.norm(g.apply(points) - targets, axis=1)
    assert err.mean() < 0.3, err.mean()
    moved = g.deform_graph(tree.graph)
    assert isinstance(moved, CenterlineGraph)
    assert np.array_equal(moved.edges, tree.graph.edges)
    assert np.allclose(moved.nodes, g.apply(points))


def test_partial_targets(tree, points):
    targets = heartbeat_targets(tree, points, 0)
    rng = np.random.default_rng(7)
    mask = np.zeros(len(points), dtype=bool)
    mask[rng.permutation(len(points))[: len(points) // 2]] = True
    hidden = targets.copy()
    hidden[~mask] = np.nan  # masked targets may be missing
    g = DeformationGraph.build(points)
    g.fit(hidden, mask=mask)
    err = np.linalg.norm(g.apply(points) - targets, axis=1)
    assert err[~mask].mean() < 1.0, err[~mask].mean()  # points without a target
    assert err[mask].mean() < 1.0, err[mask].mean()
    # confidence weights: zero weight is the same as masking
    h = DeformationGraph.build(points)
    h.fit(np.where(mask[:, None], targets, 0.0), weights=mask.astype(float))
    assert np.allclose(h.apply(points), g.apply(points), atol=1e-6)


def test_fit_loss_with_reprojection(tree, points):
    """The generic hook: fit to 2D targets in two views through the torch projection."""
    views = [
        CArmView(30.0, 20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512),
        CArmView(-30.0, -20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512),
    ]
    mats = projection_matrices(views, dtype=torch.float64)
    targets = heartbeat_targets(tree, points, 1)
    target_px, _ = project_points(torch.as_tensor(targets), mats)  # (2, N, 2)

    def loss_fn(deformed: torch.Tensor) -> torch.Tensor:
        px, _ = project_points(deformed, mats)
        return ((px - target_px) ** 2).sum(-1).mean()

    g = DeformationGraph.build(points)
    res = g.fit_loss(loss_fn, reg_weight=0.5, rot_weight=0.1)
    assert res.data < 0.01  # px^2
    err = np.linalg.norm(g.apply(points) - targets, axis=1)
    assert err.mean() < 0.3, err.mean()


def test_fit_timing(tree):
    """About 1000 points, about 200 control nodes: the fit reaches the targets (the time is printed, not asserted)."""
    t = generate_tree("left", rng=0, node_spacing_mm=0.4)
    pts = t.graph.nodes
    targets = heartbeat_targets(t, pts, 0)
    t0 = time.perf_counter()
    g = DeformationGraph.build(pts, spacing_mm=3.2)
    build_s = time.perf_counter() - t0
    res = g.fit(targets)
    err = np.linalg.norm(g.apply(pts) - targets, axis=1)
    print(
        f"\nfit timing: {len(pts)} points, {g.num_nodes} nodes, {g.num_pairs} pairs: build {build_s:.3f} s, "
        f"fit {res.seconds:.3f} s ({res.iterations} iterations, {res.evaluations} evaluations), "
        f"error mean {err.mean():.4f} max {err.max():.4f} mm"
    )
    assert 800 < len(pts) < 1300 and 150 < g.num_nodes < 260
    assert err.mean() < 0.3


def test_fit_on_other_points(points):
    """fit(points=...) uses given rest points instead of the cached ones."""
    g = DeformationGraph.build(points)
    sub = points[::3]
    targets = sub + np.array([1.0, -2.0, 0.5])
    g.fit(targets, points=sub)
    assert np.abs(g.apply(sub) - targets).max() < 0.05


# ------------------------------------------------------------------ bad input
def test_bad_points():
    with pytest.raises(ShapeError, match="empty"):
        DeformationGraph.build(np.zeros((0, 3)))
    with pytest.raises(ShapeError, match=r"shape \(N, 3\)"):
        DeformationGraph.build(np.zeros((4, 2)))
    with pytest.raises(ShapeError, match=r"shape \(N, 3\)"):
        DeformationGraph.build(np.zeros(3))
    bad = np.zeros((5, 3))
    bad[3, 1] = np.nan
    with pytest.raises(GeometryError, match="1 of 5 points contain NaN or inf.*index 3"):
        DeformationGraph.build(bad)
    bad[3, 1] = np.inf
    with pytest.raises(GeometryError, match="finite"):
        DeformationGraph.build(torch.as_tensor(bad))


@pytest.mark.parametrize("spacing", [0.0, -5.0, float("nan"), float("inf"), "x"])
def test_bad_spacing(spacing):
    with pytest.raises(GeometryError, match="spacing_mm"):
        DeformationGraph.build(np.zeros((3, 3)), spacing_mm=spacing)


def test_bad_settings(points):
    with pytest.raises(GeometryError, match="k must be an integer >= 1"):
        DeformationGraph.build(points, k=0)
    with pytest.raises(GeometryError, match="sigma_mm"):
        DeformationGraph.build(points, sigma_mm=-1.0)
    with pytest.raises(GeometryError, match="neighbour_radius_mm"):
        DeformationGraph.build(points, neighbour_radius_mm=0.0)
    g = DeformationGraph.build(points)
    with pytest.raises(GeometryError, match="iterations"):
        g.fit(points, iterations=0)
    with pytest.raises(GeometryError, match="reg_weight"):
        g.fit(points, reg_weight=-1.0)
    with pytest.raises(ShapeError, match="skinning is for"):
        g.deform(points[:10], skinning=g.rest_skinning)


def test_bad_targets(points):
    g = DeformationGraph.build(points)
    n = len(points)
    with pytest.raises(ShapeError, match=rf"targets must have shape \({n}, 3\)"):
        g.fit(points[:-1])
    bad = points.copy()
    bad[7] = np.nan
    with pytest.raises(GeometryError, match="finite where mask is True.*index 7"):
        g.fit(bad)
    with pytest.raises(ShapeError, match="mask must have shape"):
        g.fit(points, mask=np.ones(n - 1, dtype=bool))
    with pytest.raises(ShapeError, match="boolean"):
        g.fit(points, mask=np.ones(n))
    with pytest.raises(GeometryError, match="no valid target"):
        g.fit(points, mask=np.zeros(n, dtype=bool))
    with pytest.raises(GeometryError, match="weights must be finite and >= 0"):
        g.fit(points, weights=-np.ones(n))
    with pytest.raises(ShapeError, match="scalar"):
        g.fit_loss(lambda d: d.sum(0))
    with pytest.raises(GeometryError, match="not finite"):
        g.fit_loss(lambda d: d.sum() * float("nan"))
    # nothing above changed the parameters
    assert float(g.regulariser().detach()) == 0.0
