"""Tests of autocar.synth.render: masks, lumen thickness and angiograms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.synth.angiogram import ostium_node, render_angiogram
from autocar.synth.render import render_mask, render_thickness

# AP 0/0: rays run along +-y, rows along -z, columns along +x.
VIEW = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 128, 128)
MAG_PX = 1000.0 / (750.0 * 0.3)  # px per mm at the isocentre


def chain(points: np.ndarray, radii: np.ndarray | float) -> CenterlineGraph:
    """A single unbranched vessel through ``points`` (N, 3)."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    r = np.broadcast_to(np.asarray(radii, dtype=float), (n,)).copy()
    return CenterlineGraph(points, r, np.stack([np.arange(n - 1), np.arange(1, n)], axis=1))


def line(start, stop, n: int, radius) -> CenterlineGraph:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return chain(np.asarray(start) * (1 - t) + np.asarray(stop) * t, radius)


def merge(*graphs: CenterlineGraph) -> CenterlineGraph:
    nodes, radii, edges, off = [], [], [], 0
    for g in graphs:
        nodes.append(g.nodes)
        radii.append(g.radii)
        edges.append(g.edges + off)
        off += g.num_nodes
    return CenterlineGraph(np.concatenate(nodes), np.concatenate(radii), np.concatenate(edges))


def y_tree() -> CenterlineGraph:
    """Parent along +x (r 2 -> 1.6 mm) at y = 0, a 45 deg side branch (r 1.2 -> 0.3) and a thin one (0.05)."""
    parent = np.stack([np.linspace(-20, 20, 81), np.zeros(81), np.zeros(81)], axis=1)
    pr = np.linspace(2.0, 1.6, 81)
    s = np.linspace(0.5, 20, 40)[:, None]
    branch = np.array([0.0, 0.0, 0.0]) + s * np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    br = np.linspace(1.2, 0.3, 40)
    thin = np.array([-10.0, 0.0, 0.0]) + s * np.array([0.0, 0.0, -1.0])
    nodes = np.concatenate([parent, branch, thin])
    radii = np.concatenate([pr, br, np.full(40, 0.05)])
    edges = [(i, i + 1) for i in range(80)]
    edges += [(40, 81)] + [(81 + i, 82 + i) for i in range(39)]
    edges += [(20, 121)] + [(121 + i, 122 + i) for i in range(39)]
    return CenterlineGraph(nodes, radii, np.asarray(edges))


# ----------------------------------------------------------------------- mask
def test_mask_width_matches_projected_radius():
    g = line([-15, 0, 0], [15, 0, 0], 2, 2.0)  # along columns, perpendicular to the rays
    mask = render_mask(g, VIEW)
    expected = 2 * 2.0 * 1000.0 / (750.0 * 0.3)  # 2 r SID / (w s) = 17.8 px
    widths = mask[:, 40:90].sum(axis=0)
    assert np.all(np.abs(widths - expected) <= 1.0)
    # Vertical vessel nearer the source (depth 650 mm) is wider: 20.5 px.
    g2 = line([0, 100, -10], [0, 100, 10], 2, 2.0)
    mask2 = render_mask(g2, VIEW)
    widths2 = mask2[50:78, :].sum(axis=1)
    assert np.all(np.abs(widths2 - 2 * 2.0 * 1000.0 / (650.0 * 0.3)) <= 1.0)


def test_every_node_inside_mask_and_thin_vessels_connected():
    g = y_tree()
    mask = render_mask(g, VIEW)
    rc, _ = VIEW.project(g.nodes)
    idx = np.round(rc).astype(int)
    on = VIEW.contains(rc)
    assert on.sum() > 100
    assert mask[idx[on, 0], idx[on, 1]].all()
    # The 0.05 mm branch (0.2 px radius) still draws a connected 1-px line.
    assert cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] == 2  # background + tree


def test_mask_empty_graph_lonely_nodes_and_dilation():
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), dtype=int))
    m = render_mask(empty, VIEW)
    assert m.shape == (128, 128) and m.dtype == bool and not m.any()
    lonely = CenterlineGraph(np.zeros((1, 3)), np.array([1.0]), np.zeros((0, 2), dtype=int))
    area = render_mask(lonely, VIEW).sum()
    assert abs(area - np.pi * (1.0 * MAG_PX) ** 2) < 0.15 * area
    g = y_tree()
    assert render_mask(g, VIEW, dilate_px=2.0).sum() > render_mask(g, VIEW).sum()
    with pytest.raises(ValueError, match="dilate_px"):
        render_mask(g, VIEW, dilate_px=-1.0)


def test_points_behind_source_and_off_image_do_not_crash():
    # Source at y = +750 mm: a vessel from far behind it (y = 2000, depth -1250) to the isocentre.
    g = line([0, 2000, 0], [0, 0, 0], 5, 1.0)
    m = render_mask(g, VIEW)
    t = render_thickness(g, VIEW)
    assert m.any() and np.isfinite(t).all()
    # Entirely off the image, and entirely behind the source.
    off = line([500, 0, 0], [600, 0, 0], 3, 1.0)
    behind = line([0, 900, 0], [10, 900, 0], 3, 1.0)
    for gg in (off, behind):
        assert not render_mask(gg, VIEW).any()
        assert not render_thickness(gg, VIEW).any()


# ------------------------------------------------------------------ thickness
def test_thickness_straight_vessel_is_diameter_and_resampling_invariant():
    coarse = line([-15, 0, 0], [15, 0, 0], 2, 2.0)
    fine = line([-15, 0, 0], [15, 0, 0], 121, 2.0)
    tc = render_thickness(coarse, VIEW)
    tf = render_thickness(fine, VIEW)
    assert tc.dtype == np.float32 and tc.shape == (128, 128)
    centre = tc[63:65, 40:90]
    assert np.all(np.abs(centre - 4.0) < 0.05 * 4.0)
    # Consecutive pieces partition the tube: no double counting at nodes.
    np.testing.assert_allclose(tf, tc, atol=1e-3)
    # Off-axis: chord 2 sqrt(r^2 - d^2) at d = 1 mm (pixel offset d * 1000 / 750 / 0.3).
    off_px = 1.0 * MAG_PX
    rows = np.arange(128)
    prof = tc[:, 64]
    assert np.interp(63.5 + off_px, rows, prof) == pytest.approx(2 * np.sqrt(3.0), rel=0.05)


def test_thickness_crossing_vessels_add():
    a = line([-15, 0, 0], [15, 0, 0], 31, 2.0)
    b = line([0, 10, -15], [0, 10, 15], 31, 1.0)  # behind the first one, along rows
    t = render_thickness(merge(a, b), VIEW)
    ta, tb = render_thickness(a, VIEW), render_thickness(b, VIEW)
    np.testing.assert_allclose(t, ta + tb, atol=1e-4)
    assert t[63:65, 63:65].min() > 4.0 * 0.95 + 2.0 * 0.95


def test_thickness_bent_vessel_has_no_seams():
    # Half circle of radius 8 mm in the image plane, nodes every ~0.5 mm, and
    # a 50 deg kink: the mitre planes partition the tube (no double count at
    # the outer side, no gaps at the inner side of each node).
    th = np.linspace(0, np.pi, 50)
    arc = np.stack([8 * np.cos(th), np.zeros(50), 8 * np.sin(th)], axis=1)
    kink = np.array([[-8.0, 0.0, -6.0], [-14.0, 0.0, -12.0]])
    g = chain(np.concatenate([arc, kink]), 1.5)
    t = render_thickness(g, VIEW)
    assert t.max() <= 3.0 * 1.01
    core = cv2.erode(render_mask(chain(np.concatenate([arc, kink]), 1.0), VIEW).astype(np.uint8),
                     np.ones((3, 3), np.uint8)).astype(bool)
    # Away from the two flat free ends (the mask draws them round).
    ends, _ = VIEW.project(np.stack([arc[0], kink[-1]]))
    rr, cc = np.mgrid[0:128, 0:128]
    for r0, c0 in ends:
        core &= (rr - r0) ** 2 + (cc - c0) ** 2 > (2.0 * MAG_PX) ** 2
    assert core.sum() > 500
    assert t[core].min() > 1.0


def test_thickness_vessel_along_the_ray_is_its_length():
    g = line([0, -20, 0], [0, 20, 0], 41, 1.0)  # parallel to the central ray
    t = render_thickness(g, VIEW)
    assert t.max() == pytest.approx(40.0, rel=0.02)


def test_thickness_junction_not_double_counted():
    g = y_tree()
    t = render_thickness(g, VIEW)
    rc, _ = VIEW.project(np.zeros((1, 3)))
    r, c = np.round(rc[0]).astype(int)
    patch = t[r - 15 : r + 16, c - 15 : c + 16]
    # The parent's diameter at the junction is 3.6 mm; without the parent
    # cylinder correction the branch start adds ~2.4 mm on top.
    assert patch.max() < 3.6 * 1.08


# ------------------------------------------------------------------ angiogram
def test_angiogram_vessels_dark_dtype_and_seed():
    g = y_tree()
    img = render_angiogram(g, VIEW, rng=3)
    assert img.dtype == np.uint8 and img.shape == (128, 128)
    mask = render_mask(g, VIEW)
    core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    ring = near & ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert img[core].mean() < img[ring].mean() - 25
    np.testing.assert_array_equal(img, render_angiogram(g, VIEW, rng=3))
    assert not np.array_equal(img, render_angiogram(g, VIEW, rng=4))


def test_angiogram_bit_depth_contrast_and_bad_inputs():
    g = y_tree()
    img16 = render_angiogram(g, VIEW, rng=0, bit_depth=16)
    assert img16.dtype == np.uint16 and img16.max() > 40000
    with pytest.raises(ValueError, match="bit_depth"):
        render_angiogram(g, VIEW, bit_depth=12)
    with pytest.raises(ValueError, match="contrast"):
        render_angiogram(g, VIEW, contrast=-1.0)
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), dtype=int))
    assert render_angiogram(empty, VIEW, rng=0, catheter=True).shape == (128, 128)
    flat = render_angiogram(g, VIEW, rng=0, contrast=0.0, background=False, noise=False)
    assert flat.max() - flat.min() <= 2  # no contrast, no anatomy: nothing to see
    mask = render_mask(g, VIEW)
    weak = render_angiogram(g, VIEW, rng=0, contrast=0.5, background=False, noise=False).astype(float)
    strong = render_angiogram(g, VIEW, rng=0, contrast=1.5, background=False, noise=False).astype(float)
    assert (weak[~mask].mean() - weak[mask].mean()) < (strong[~mask].mean() - strong[mask].mean())


def test_angiogram_catheter_reaches_ostium():
    g = y_tree()
    g = g.with_nodes(g.nodes + np.array([12.0, 0.0, 0.0]))  # ostium on the image
    assert ostium_node(g) == 0  # degree-1 node with the largest radius
    base = render_angiogram(g, VIEW, rng=5, background=False, noise=False, contrast=1.0)
    cath = render_angiogram(g, VIEW, rng=5, background=False, noise=False, contrast=1.0, catheter=True)
    changed = (cath.astype(int) - base.astype(int)) < -20
    assert changed.sum() > 50
    rc, _ = VIEW.project(g.nodes[:1])
    r, c = np.round(rc[0]).astype(int)
    assert changed[max(r - 8, 0) : r + 9, max(c - 8, 0) : c + 9].any()
    # It reaches an image edge.
    assert changed[0].any() or changed[-1].any() or changed[:, 0].any() or changed[:, -1].any()
