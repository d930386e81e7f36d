"""C-arm geometry pinned down by hand-computed cases (shared/GEOMETRY.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autocar.errors import GeometryError, ShapeError
from autocar.geometry import CArmView, angles_from_direction, view_axes
from autocar.geometry.torch_ops import project_points, projection_matrices

SID, SOD, SP, N = 1000.0, 750.0, 0.3, 512
C = (N - 1) / 2.0  # principal point 255.5


def make(a: float, b: float, **kw) -> CArmView:
    args = dict(sid_mm=SID, sod_mm=SOD, spacing_mm=(SP, SP), rows=N, columns=N)
    args.update(kw)
    return CArmView(a, b, **args)


def test_ap_axes_are_the_documented_ones():
    u, v, d = make(0, 0).axes
    np.testing.assert_allclose(u, [1, 0, 0], atol=1e-15)   # columns grow to patient's left
    np.testing.assert_allclose(v, [0, 0, -1], atol=1e-15)  # rows grow towards the feet
    np.testing.assert_allclose(d, [0, -1, 0], atol=1e-15)  # detector anterior
    np.testing.assert_allclose(make(0, 0).source_position, [0, SOD, 0], atol=1e-12)  # source posterior


def test_lao90_detector_on_patient_left_and_cra90_above_head():
    np.testing.assert_allclose(make(90, 0).detector_direction, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(make(-90, 0).detector_direction, [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(make(0, 90).detector_direction, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(make(0, -90).detector_direction, [0, 0, -1], atol=1e-12)


def test_general_axes_match_closed_form():
    a, b = math.radians(30), math.radians(20)
    u, v, d = view_axes(30, 20)
    np.testing.assert_allclose(d, [math.sin(a) * math.cos(b), -math.cos(a) * math.cos(b), math.sin(b)], atol=1e-12)
    np.testing.assert_allclose(u, [math.cos(a), math.sin(a), 0], atol=1e-12)
    np.testing.assert_allclose(v, [math.sin(a) * math.sin(b), -math.cos(a) * math.sin(b), -math.cos(b)], atol=1e-12)
    np.testing.assert_allclose(np.cross(u, v), -d, atol=1e-12)  # left-handed: mirrored image
    assert np.linalg.det(view_axes(30, 20)) == pytest.approx(-1.0)
    np.testing.assert_allclose(view_axes(30, 20) @ view_axes(30, 20).T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("a,b", [(0, 0), (90, 0), (0, 90), (-35, 25), (120, -40)])
def test_isocentre_projects_to_image_centre(a, b):
    rc, w = make(a, b).project(np.zeros(3))
    np.testing.assert_allclose(rc, [C, C], atol=1e-9)
    assert w == pytest.approx(SOD)


def test_point_to_patient_left_moves_right_in_ap():
    rc, _ = make(0, 0).project(np.array([10.0, 0, 0]))
    assert rc[1] == pytest.approx(C + 10 * SID / SOD / SP)  # 299.944...
    assert rc[1] == pytest.approx(299.94444444444446)
    assert rc[0] == pytest.approx(C)


def test_head_is_at_the_top_in_ap():
    rc, _ = make(0, 0).project(np.array([0, 0, 10.0]))
    assert rc[0] == pytest.approx(C - 10 * SID / SOD / SP)
    assert rc[1] == pytest.approx(C)


def test_spine_on_the_right_in_lao_and_left_in_rao():
    spine = np.array([0.0, 60.0, 0.0])  # posterior of the isocentre
    rc_lao, _ = make(45, 0).project(spine)
    rc_rao, _ = make(-45, 0).project(spine)
    assert rc_lao[1] > C + 50
    assert rc_rao[1] < C - 50


def test_lao90_sees_posterior_on_the_right_and_depth():
    view = make(90, 0)
    rc, w = view.project(np.array([0.0, 10.0, 0.0]))
    # In LAO 90 u = (0, 1, 0): posterior is to the right of the image.
    assert rc[1] == pytest.approx(C + 10 * SID / SOD / SP)
    # A point 100 mm to the patient's left is 100 mm closer to the detector.
    _, w_left = view.project(np.array([100.0, 0, 0]))
    assert w_left == pytest.approx(SOD + 100)


def test_magnification_depends_on_depth():
    view = make(0, 0)
    # A point 50 mm towards the detector (anterior, -y) is magnified by SID / (SOD + 50).
    rc, w = view.project(np.array([10.0, -50.0, 0.0]))
    assert w == pytest.approx(800.0)
    assert rc[1] - C == pytest.approx(10 * SID / 800.0 / SP)


def test_anisotropic_spacing_and_non_square_image():
    view = CArmView(0, 0, SID, SOD, (0.2, 0.4), 300, 400)
    rc, _ = view.project(np.array([[10.0, 0.0, -10.0]]))
    assert rc[0, 0] == pytest.approx(149.5 + 10 * SID / SOD / 0.2)
    assert rc[0, 1] == pytest.approx(199.5 + 10 * SID / SOD / 0.4)


def test_matrix_agrees_with_project():
    view = make(-28, 17, spacing_mm=(0.25, 0.35), rows=480, columns=640)
    pts = np.random.default_rng(0).normal(scale=50, size=(20, 3))
    rc, w = view.project(pts)
    h = np.c_[pts, np.ones(len(pts))] @ view.projection_matrix.T
    np.testing.assert_allclose(h[:, 2], w, rtol=1e-12)
    np.testing.assert_allclose(np.c_[h[:, 1] / h[:, 2], h[:, 0] / h[:, 2]], rc, rtol=1e-12)


def test_unproject_round_trip_and_rays():
    view = make(33, -12)
    pts = np.random.default_rng(1).normal(scale=40, size=(50, 3))
    rc, w = view.project(pts)
    np.testing.assert_allclose(view.unproject(rc, w), pts, atol=1e-9)
    origin, direction = view.pixel_rays(rc)
    np.testing.assert_allclose(origin, np.broadcast_to(view.source_position, pts.shape))
    np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0)
    # Each point lies on its pixel's ray.
    to_pt = pts - origin
    cross = np.cross(to_pt, direction)
    np.testing.assert_allclose(np.linalg.norm(cross, axis=1), 0.0, atol=1e-9)


def test_radius_px():
    view = make(0, 0)
    assert float(view.radius_px(1.5, np.zeros(3))) == pytest.approx(1.5 * SID / (SOD * SP))


def test_point_behind_source_is_nan():
    rc, w = make(0, 0).project(np.array([0.0, 800.0, 0.0]))  # beyond the source (posterior)
    assert w < 0 and np.all(np.isnan(rc))


def test_angles_from_direction_inverts_pose():
    for a, b in [(30, 20), (-45, -25), (90, 0), (-170, 60), (0, 0)]:
        got = angles_from_direction(make(a, b).detector_direction)
        assert got == pytest.approx((a, b), abs=1e-9)


def test_labels_and_dict_round_trip():
    view = make(-30, -20)
    assert view.label == "RAO 30.0 CAU 20.0"
    assert make(45, 10).label == "LAO 45.0 CRA 10.0"
    assert CArmView.from_dict(view.to_dict()) == view
    assert "RAO 30.0 CAU 20.0" in repr(view)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(primary_deg=float("nan")), "primary_deg must be finite"),
        (dict(secondary_deg=95.0), "secondary_deg"),
        (dict(sod_mm=-5.0), "sod_mm must be > 0"),
        (dict(sid_mm=700.0), "sid_mm must be larger than sod_mm"),
        (dict(spacing_mm=(0.3, 0.0)), "spacing_mm must be > 0"),
        (dict(rows=0), "rows must be a positive integer"),
        (dict(columns=10.5), "columns must be a positive integer"),
        (dict(sid_mm="far"), "sid_mm must be a number"),
    ],
)
def test_bad_geometry_rejected(kw, match):
    args = dict(primary_deg=0.0, secondary_deg=0.0, sid_mm=SID, sod_mm=SOD, spacing_mm=(SP, SP), rows=N, columns=N)
    args.update(kw)
    with pytest.raises(GeometryError, match=match):
        CArmView(**args)


def test_from_dict_missing_key_named():
    d = make(0, 0).to_dict()
    del d["sod_mm"]
    with pytest.raises(GeometryError, match="sod_mm"):
        CArmView.from_dict(d)


def test_bad_point_shape():
    with pytest.raises(ShapeError, match=r"\(\.\.\., 3\)"):
        make(0, 0).project(np.zeros((4, 2)))


def test_torch_projection_matches_numpy_batched():
    views = [make(30, 20), make(-40, -10, spacing_mm=(0.28, 0.31))]
    pts = np.random.default_rng(2).normal(scale=40, size=(100, 3))
    mats = projection_matrices(views, dtype=torch.float64)
    rc, w = project_points(torch.as_tensor(pts), mats)  # (V, N, 2)
    assert rc.shape == (2, 100, 2)
    for k, view in enumerate(views):
        ref, ref_w = view.project(pts)
        np.testing.assert_allclose(rc[k].numpy(), ref, rtol=1e-10)
        np.testing.assert_allclose(w[k].numpy(), ref_w, rtol=1e-10)


def test_torch_projection_gradcheck():
    mats = projection_matrices([make(30, 20)], dtype=torch.float64)[0]
    pts = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: project_points(p, mats)[0], (pts,))
