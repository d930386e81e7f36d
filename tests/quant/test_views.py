"""Foreshortening and optimal views, against hand computations from GEOMETRY.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError, TreeFormatError
from autocar.geometry import CArmView, view_axes
from autocar.quant.segments import split_segments
from autocar.quant.views import (
    ViewSearchOptions,
    angle_grid,
    apparent_length_mm,
    foreshortening_map,
    foreshortening_percent,
    optimal_view,
    overlap_percent,
    segment_optimal_view,
)

SID, SOD = 1100.0, 750.0


def view(a: float, b: float, spacing=(0.2, 0.3)) -> CArmView:
    # Non-square pixels: apparent lengths must not depend on them.
    return CArmView(a, b, SID, SOD, spacing, 600, 500)


def line(p0, p1, n: int = 41) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.asarray(p0, float) * (1 - t) + np.asarray(p1, float) * t


X_LINE = line([-20, 0, 0], [20, 0, 0])  # 40 mm along the patient's left (+x) through the isocentre


def test_line_in_the_isocentre_plane_of_ap_is_not_foreshortened():
    # AP: d = (0,-1,0), so every point of the x line has depth w = SOD and scale SID/SOD.
    assert apparent_length_mm(X_LINE, view(0, 0)) == pytest.approx(40.0, abs=1e-9)
    assert foreshortening_percent(X_LINE, view(0, 0)) == pytest.approx(0.0, abs=1e-9)


def test_x_line_in_lao30_by_hand():
    # LAO 30: u = (cos30, sin30, 0), d = (sin30, -cos30, 0). A point (x,0,0): p.u = x cos30,
    # w = SOD + x sin30; at the isocentre plane it sits at x cos30 SOD / w.
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    apparent = 20 * c * SOD / (SOD + 20 * s) + 20 * c * SOD / (SOD - 20 * s)
    assert apparent_length_mm(X_LINE, view(30, 0)) == pytest.approx(apparent, rel=1e-12)
    fs = 100 * (1 - apparent / 40)
    assert foreshortening_percent(X_LINE, view(30, 0)) == pytest.approx(fs, rel=1e-12)
    assert fs == pytest.approx(13.38, abs=0.01)  # ~ 1 - cos 30 plus a little perspective


def test_inclined_line_in_ap_by_hand():
    # 50 mm from the isocentre towards posterior-cranial (0, 3, 4)/5. AP: p.d = -0.6 t,
    # p.v = -0.8 t, p.u = 0; the far end lands 0.8*50*SOD/(SOD-30) mm from the centre.
    pts = line([0, 0, 0], [0, 30, 40])
    apparent = 40.0 * SOD / (SOD - 30.0)
    assert apparent_length_mm(pts, view(0, 0)) == pytest.approx(apparent, rel=1e-12)
    assert foreshortening_percent(pts, view(0, 0)) == pytest.approx(100 * (1 - 0.8 * 750 / 720), rel=1e-12)


def test_viewed_end_on_is_fully_foreshortened():
    # LAO 90: d = (1,0,0), u = (0,1,0), v = (0,0,-1): the x line projects to one point.
    assert foreshortening_percent(X_LINE, view(90, 0)) == pytest.approx(100.0, abs=1e-9)
    fs = foreshortening_map(X_LINE, np.array([90.0, 0.0, 30.0]), np.array([0.0, 0.0, 0.0]), sod_mm=SOD)
    np.testing.assert_allclose(fs, [100.0, 0.0, foreshortening_percent(X_LINE, view(30, 0))], atol=1e-9)


def test_angle_grid_holds_multiples_of_the_step():
    prim, sec = angle_grid(ViewSearchOptions())
    assert prim[0] == -90 and prim[-1] == 90 and len(prim) == 91
    assert sec[0] == -44 and sec[-1] == 44 and 0.0 in sec and len(sec) == 45


def test_optimal_view_of_a_straight_x_segment_is_ap():
    # Zero foreshortening needs d . x = sin(a) cos(b) = 0, i.e. a = 0 (any b); ties go to AP.
    best = optimal_view(X_LINE, np.full(41, 1.0), sod_mm=SOD)
    assert (best.primary_deg, best.secondary_deg) == (0.0, 0.0)
    assert best.foreshortening_percent == pytest.approx(0.0, abs=1e-9)
    assert best.overlap_percent == 0.0


def test_optimal_view_of_a_planar_arc_looks_along_its_normal():
    # A circle centred at the isocentre in the plane spanned by u, v of LAO 30 CRA 20:
    # only that pose (d = the plane normal) shows it unforeshortened; -d is outside the ranges.
    u, v, d = view_axes(30.0, 20.0)
    t = np.linspace(0, 2 * math.pi, 121)[:, None]
    pts = 30.0 * (np.cos(t) * u + np.sin(t) * v)
    best = optimal_view(pts, np.full(len(pts), 1.0), sod_mm=SOD)
    assert (best.primary_deg, best.secondary_deg) == (30.0, 20.0)
    assert best.foreshortening_percent == pytest.approx(0.0, abs=1e-9)
    # The returned angles mean the same pose in autocar.geometry: a CArmView there agrees.
    assert foreshortening_percent(pts, view(best.primary_deg, best.secondary_deg)) == pytest.approx(
        best.foreshortening_percent, abs=1e-9
    )
    assert foreshortening_percent(pts, view(-30.0, 20.0)) > 5.0  # the mirrored pose is clearly worse


def _two_parallel_lines():
    seg = line([0, 0, -30], [0, 0, 30], 61)  # along the body axis through the isocentre
    other = line([0, 20, -30], [0, 20, 30], 61)  # 20 mm posterior to it
    return seg, other


def test_overlap_of_parallel_vessels_by_hand():
    seg, other = _two_parallel_lines()
    r = np.full(61, 1.0)
    # AP: both project on the same column -> every sample overlaps.
    # Pose a (b = 0): the other line sits 20 sin(a) SOD / w_o from it, w_o = SOD - 20 cos(a);
    # lumens (1 mm each, scaled SOD/w) part when 20 sin(a) >= 1 + w_o / SOD, i.e. a > 5.66 deg.
    ov = overlap_percent(seg, r, other, r, np.array([0.0, 4.0, 6.0, 90.0]), np.zeros(4), sod_mm=SOD)
    np.testing.assert_allclose(ov, [100.0, 100.0, 0.0, 0.0])


def test_optimal_view_avoids_overlap_at_the_smallest_clear_angle():
    seg, other = _two_parallel_lines()
    r = np.full(61, 1.0)
    best = optimal_view(seg, r, other, r, sod_mm=SOD)
    # Zero foreshortening needs b = 0; the first multiple of 2 deg past 5.66 deg is 6 deg.
    assert abs(best.primary_deg) == 6.0 and best.secondary_deg == 0.0
    assert best.overlap_percent == 0.0 and best.foreshortening_percent == pytest.approx(0.0, abs=1e-6)
    # Without the other vessel the answer is AP again.
    assert optimal_view(seg, r, sod_mm=SOD).primary_deg == 0.0


def test_segment_optimal_view_on_a_forest_matches_the_array_version():
    seg, other = _two_parallel_lines()
    nodes = np.concatenate([seg, other])
    edges = [(i, i + 1) for i in range(60)] + [(61 + i, 62 + i) for i in range(60)]
    radii = np.concatenate([np.full(61, 1.2), np.full(61, 1.0)])
    tree = split_segments(CenterlineGraph(nodes, radii, np.asarray(edges)))
    best = segment_optimal_view(tree, 0, sod_mm=SOD)
    # Radii 1.2 (at w = SOD) and 1.0 (at w_o): 20 sin(a) >= 1.2 w_o / SOD + 1.0 needs a > 6.2 deg.
    assert abs(best.primary_deg) == 8.0 and best.secondary_deg == 0.0 and best.overlap_percent == 0.0


def test_bad_inputs_are_rejected():
    with pytest.raises(TreeFormatError, match="NaN"):
        foreshortening_percent(np.array([[0, 0, 0], [np.nan, 1, 1.0]]), view(0, 0))
    with pytest.raises(ShapeError, match=r"\(K, 3\)"):
        apparent_length_mm(np.zeros((4, 2)), view(0, 0))
    with pytest.raises(TypeError, match="CArmView"):
        apparent_length_mm(X_LINE, "AP")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="radii"):
        optimal_view(X_LINE, np.ones(3), sod_mm=SOD)
    with pytest.raises(ValueError, match="step_deg"):
        ViewSearchOptions(step_deg=0)
    with pytest.raises(ValueError, match="secondary_range_deg"):
        ViewSearchOptions(secondary_range_deg=(10.0, -10.0))
