"""Tests of autocar.sbp.carve: coarse-to-fine visual hull carving."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError, ShapeError
from autocar.geometry import CArmView
from autocar.sbp.carve import SBPConfig, SparseHull, _ViewOps, carve, distance_maps
from autocar.synth.render import render_mask

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)
LAO90 = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)


def chain(points: np.ndarray, radius: float) -> CenterlineGraph:
    points = np.asarray(points, dtype=float)
    n = len(points)
    return CenterlineGraph(points, np.full(n, radius), np.stack([np.arange(n - 1), np.arange(1, n)], axis=1))


def hand_tree(seed: int = 3) -> CenterlineGraph:
    """A small branching 3D polyline tree (a random walk that forks), ~100 mm across."""
    rng = np.random.default_rng(seed)
    nodes = [np.array([-10.0, 0.0, 40.0])]
    radii = [1.8]
    edges: list[tuple[int, int]] = []

    def grow(start: int, direction: np.ndarray, radius: float, steps: int) -> None:
        cur = start
        d = direction / np.linalg.norm(direction)
        for s in range(steps):
            d = d + rng.normal(0.0, 0.2, 3)
            d /= np.linalg.norm(d)
            nodes.append(nodes[cur] + 2.5 * d)
            radii.append(radius)
            edges.append((cur, len(nodes) - 1))
            cur = len(nodes) - 1
            radius *= 0.985
            if rng.random() < 0.12 and radius > 0.8 and steps - s > 6:
                grow(cur, d + rng.normal(0.0, 0.9, 3), 0.75 * radius, steps - s - 4)

    grow(0, np.array([0.4, 0.2, -1.0]), 1.8, 36)
    return CenterlineGraph(np.array(nodes), np.array(radii), np.array(edges))


def realistic_tree() -> CenterlineGraph:
    """The synthetic left tree when autocar.synth.trees exists, else the hand-made one."""
    try:
        from autocar.synth.trees import generate_tree
    except ImportError:
        return hand_tree()
    return generate_tree("left", rng=0).graph


# ----------------------------------------------------------------- config / errors
def test_config_validation_and_grid():
    cfg = SBPConfig()
    assert cfg.grid_shape == (400, 400, 400)
    np.testing.assert_allclose(cfg.origin_mm, [-99.75] * 3)
    small = SBPConfig(box_mm=40.0, center_mm=(1.0, 2.0, 3.0), levels_mm=(4.0, 2.0, 1.0))
    assert small.grid_shape == (40, 40, 40)
    np.testing.assert_allclose(small.origin_mm, [-18.5, -17.5, -16.5])
    with pytest.raises(GeometryError, match="halve"):
        SBPConfig(levels_mm=(8.0, 3.0))
    with pytest.raises(GeometryError, match="box_mm"):
        SBPConfig(box_mm=-1.0)
    with pytest.raises(GeometryError, match="margin_px"):
        SBPConfig(margin_px=float("nan"))
    with pytest.raises(GeometryError, match="center_mm"):
        SBPConfig(center_mm=(0.0, 0.0))


def test_bad_inputs_raise():
    m = np.zeros((256, 256), bool)
    with pytest.raises(ShapeError, match="2 masks and 1 views"):
        carve([m, m], [AP])
    with pytest.raises(ShapeError, match=r"mask 1 .*\(256, 256\).*\(255, 256\)"):
        carve([m, np.zeros((255, 256), bool)], [AP, LAO90])
    with pytest.raises(ShapeError, match="mask 0"):
        carve([np.zeros((256, 256, 3))], [AP])
    with pytest.raises(ShapeError, match="none"):
        carve([], [])
    with pytest.raises(GeometryError, match="views\\[1\\]"):
        carve([m, m], [AP, "LAO"])


def test_empty_and_disjoint_masks_give_empty_hulls():
    full = np.zeros((256, 256), bool)
    full[100:150, 100:150] = True
    empty = np.zeros((256, 256), bool)
    h = carve([full, empty], [AP, LAO90], SBPConfig(box_mm=40.0, levels_mm=(4.0, 2.0)))
    assert len(h) == 0 and h.reason == "view 1 mask is empty"
    assert h.coords.shape == (0, 3) and h.centers_mm.shape == (0, 3)
    assert h.kept_per_level == (0, 0)
    # Rows map to -z in both AP and LAO 90: bands of rows far apart cannot meet.
    top = np.zeros((256, 256), bool)
    top[10:20, 100:150] = True
    bottom = np.zeros((256, 256), bool)
    bottom[200:210, 100:150] = True
    h = carve([top, bottom], [AP, LAO90], SBPConfig(box_mm=100.0, levels_mm=(4.0, 2.0, 1.0)))
    assert len(h) == 0 and h.reason == "no voxel projects onto every mask"
    assert h.dense().shape == (100, 100, 100) and not h.dense().any()


def test_numeric_masks_accepted():
    cyl = chain([[0.0, 0.0, -20.0], [0.0, 0.0, 20.0]], 2.0)
    ma, mb = render_mask(cyl, AP), render_mask(cyl, LAO90)
    cfg = SBPConfig(box_mm=48.0, levels_mm=(4.0, 2.0, 1.0))
    ref = carve([ma, mb], [AP, LAO90], cfg)
    num = carve([ma.astype(np.float32) * 255.0, mb.astype(np.uint8)], [AP, LAO90], cfg)
    np.testing.assert_array_equal(ref.coords, num.coords)


def test_distance_maps():
    m = np.zeros((5, 6), bool)
    m[2, 3] = True
    d = distance_maps([m, m.astype(float)])
    assert d.shape == (2, 5, 6) and d.dtype == np.float32
    assert d[0, 2, 3] == 0 and d[0, 0, 0] == pytest.approx(math.hypot(2, 3))
    np.testing.assert_array_equal(d[0], d[1])
    e = distance_maps([np.zeros((5, 6))])
    assert np.all(e == np.float32(math.hypot(5, 6)))


# ----------------------------------------------------------------- geometry
def test_radius_bound_contains_every_projected_point_of_the_sphere():
    rng = np.random.default_rng(0)
    view = CArmView(-35.0, 25.0, 1100.0, 720.0, (0.3, 0.3), 512, 512)
    ops = _ViewOps(view, np.zeros((512, 512), np.float32))
    centres = rng.uniform(-100, 100, (200, 3))
    r = math.sqrt(3.0) / 2.0 * 8.0
    row, col, w = ops.project(*(centres.T.astype(np.float32)))
    bound = ops.radius_bound(row, col, w, r)
    rc_c, _ = view.project(centres)
    dirs = rng.normal(size=(200, 500, 3))
    dirs = r * dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)  # sphere surface
    rc_s, _ = view.project(centres[:, None, :] + dirs)
    worst = np.linalg.norm(rc_s - rc_c[:, None, :], axis=-1).max(axis=1)
    assert np.all(worst <= bound)
    # ... and it is not loose: within 15 % of the sampled worst case.
    assert np.all(bound <= 1.15 * worst)
    # It reduces to view.radius_px at the axis, up to the w / (w - r) factor.
    rp = view.radius_px(r, centres)
    np.testing.assert_allclose(bound, rp * w / (w - r) * np.sqrt(1 + ((col - 255.5) ** 2 + (row - 255.5) ** 2) * (0.3 / 1100) ** 2), rtol=1e-4)


# ----------------------------------------------------------------- known answers
def test_vertical_cylinder_two_orthogonal_views():
    r = 2.0
    cyl = chain(np.stack([np.zeros(41), np.zeros(41), np.linspace(-30, 30, 41)], 1), r)
    ma, mb = render_mask(cyl, AP), render_mask(cyl, LAO90)
    cfg = SBPConfig(box_mm=64.0, levels_mm=(4.0, 2.0, 1.0, 0.5))
    hull = carve([ma, mb], [AP, LAO90], cfg)
    assert hull.reason == "" and len(hull) > 0
    assert hull.coords.dtype == np.int32 and hull.centers_mm.dtype == np.float32
    np.testing.assert_allclose(hull.centers_mm, hull.origin_mm + hull.coords * 0.5, atol=1e-4)
    c = hull.centers_mm.astype(float)
    # Stays within the projected width: AP columns are x, LAO 90 columns are y.
    assert np.abs(c[:, 0]).max() <= r + 0.3
    assert np.abs(c[:, 1]).max() <= r + 0.3
    assert np.abs(c[:, 2]).max() <= 30.0 + r + 0.3
    # Contains every voxel whose centre is inside the cylinder (away from the wall).
    g = np.arange(-20.0, 20.0, 0.5) + 0.25
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    inside = (x**2 + y**2 <= (r - 0.35) ** 2) & (np.abs(z) <= 25)
    pts = np.stack([x[inside], y[inside], z[inside]], 1)
    idx = np.rint((pts - hull.origin_mm) / 0.5).astype(int)
    dense = hull.dense()
    assert dense[idx[:, 0], idx[:, 1], idx[:, 2]].all()
    # Two orthogonal silhouettes of a cylinder carve a square prism of side 2r.
    slab = np.abs(c[:, 2] - 0.25) < 0.1
    assert 0.85 * (2 * r / 0.5) ** 2 <= slab.sum() <= 1.25 * (2 * r / 0.5) ** 2
    # Per-level bookkeeping.
    assert hull.tested_per_level[0] == 16**3
    for lvl in range(1, 4):
        assert hull.tested_per_level[lvl] == 8 * hull.kept_per_level[lvl - 1]
    assert hull.kept_per_level[-1] == len(hull)


def blob_mask(view: CArmView, rng: np.random.Generator, frac: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.normal(size=view.shape), 4.0)
    return noise > np.quantile(noise, 1.0 - frac)


def brute_force(masks, views, cfg: SBPConfig) -> tuple[np.ndarray, np.ndarray]:
    """Dense centre test on the full finest grid, float64: (keep, ambiguous) bool grids."""
    shape = cfg.grid_shape
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    centres = cfg.origin_mm + idx * cfg.levels_mm[-1]
    dist = distance_maps(masks)
    keep = np.ones(len(idx), bool)
    ambiguous = np.zeros(len(idx), bool)
    for v, d in zip(views, dist):
        rc, w = v.project(centres)
        inside = v.contains(rc) & (w > 0)
        r = np.clip(np.rint(rc[:, 0]), 0, v.rows - 1).astype(int)
        col = np.clip(np.rint(rc[:, 1]), 0, v.columns - 1).astype(int)
        keep &= inside & (d[r, col] <= 0.5 + cfg.margin_px)
        # float32 in carve may round differently within 1e-3 px of a pixel edge.
        frac = np.abs(np.abs(rc - np.floor(rc)) - 0.5)
        ambiguous |= (frac < 1e-3).any(axis=1)
    return keep.reshape(shape), ambiguous.reshape(shape)


def case_masks(case: int):
    rng = np.random.default_rng(10 + case)
    poses = [(0.0, 0.0), (90.0, 0.0), (-35.0, 25.0), (40.0, -30.0)]
    if case == 2:
        views = [CArmView(a, b, 1000.0, 750.0, (0.4, 0.4), 128, 128) for a, b in poses[1:]]
    else:
        views = [CArmView(a, b, 1000.0, 750.0, (0.4, 0.4), 128, 128) for a, b in poses[2 * (case % 2) : 2 * (case % 2) + 2]]
    if case == 3:  # isolated random pixels: the hardest case for the coarse bounds
        masks = [rng.random(v.shape) < 0.06 for v in views]
    else:
        masks = [blob_mask(v, rng, 0.3 if case == 2 else 0.12) for v in views]
    return masks, views


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_matches_dense_brute_force(case):
    masks, views = case_masks(case)
    margin = 1.5 if case == 1 else 0.0
    cfg = SBPConfig(box_mm=40.0, levels_mm=(4.0, 2.0, 1.0), margin_px=margin)  # 40 mm > field of view
    ref, amb = brute_force(masks, views, cfg)
    hull = carve(masks, views, cfg)
    got = hull.dense()
    assert ref.sum() > 100  # the test is not vacuous
    assert not np.any((got != ref) & ~amb)
    loose = carve(masks, views, SBPConfig(box_mm=40.0, levels_mm=(4.0, 2.0, 1.0), margin_px=margin,
                                          final_centre_test=False)).dense()
    assert np.all(loose[ref & ~amb])
    assert loose.sum() > got.sum()


def test_brute_force_check_has_power(monkeypatch):
    """A too small coarse bound (0.4 R, no slack) must be caught by the brute-force comparison."""
    import autocar.sbp.carve as carve_mod

    bound = carve_mod._ViewOps.radius_bound
    monkeypatch.setattr(carve_mod, "_SLACK_PX", 0.0)
    monkeypatch.setattr(carve_mod._ViewOps, "radius_bound", lambda self, *a: 0.4 * bound(self, *a))
    masks, views = case_masks(3)
    cfg = SBPConfig(box_mm=40.0, levels_mm=(4.0, 2.0, 1.0))
    ref, amb = brute_force(masks, views, cfg)
    assert np.sum((carve(masks, views, cfg).dense() != ref) & ~amb) > 0


def test_tree_centrelines_inside_hull():
    tree = realistic_tree()
    va = CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    vb = CArmView(-30.0, -20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    masks = [render_mask(tree, va), render_mask(tree, vb)]
    hull = carve(masks, [va, vb])
    assert len(hull) > 0
    pts, _, _ = tree.sample_segments(0.25)
    dist, _ = cKDTree(hull.centers_mm.astype(float)).query(pts)
    v = hull.voxel_mm
    assert dist.max() <= math.sqrt(3.0) * v  # within one voxel
    assert np.mean(dist <= math.sqrt(3.0) / 2 * v) > 0.99  # the point's own voxel, nearly always
    # Sparsity: far less than the dense grid is touched.
    assert sum(hull.tested_per_level) < 0.02 * 400**3
    print("kept per level", hull.kept_per_level, "tested", hull.tested_per_level)


def test_sparse_hull_dense_small():
    h = SparseHull(np.array([[0, 1, 2]], np.int32), np.zeros((1, 3), np.float32), 1.0, np.zeros(3), (1,), (8,),
                   grid_shape=(2, 3, 4))
    d = h.dense()
    assert d.shape == (2, 3, 4) and d.sum() == 1 and d[0, 1, 2]
    assert len(h) == 1 and "1 voxels" in repr(h)
