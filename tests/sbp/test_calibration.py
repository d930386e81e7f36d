"""Pairing check and view-B geometry correction from the epipolar consistency of two vessel masks."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.sbp.calibration import (
    CalibrationConfig,
    across_line_drift_px,
    _corrected_view,
    _rigid,
    check_pairing,
    epipolar_mismatch,
    estimate_correction,
    skeleton_curve,
)
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask


@pytest.fixture(scope="module")
def real_like_pair():
    # Seed 2,000,000 is the first held-out pair of bench_calibration.py (RAO 60 CRA 57 / RAO 63 CAU 58).
    sc = synthesize_case(SynthCaseConfig(side="left", frames=1, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=2_000_000)
    a, b = sc.case.views
    return [a.frames[0] > 0, b.frames[0] > 0], [a.view, b.view], sc.truth[0]


def test_skeleton_curve_of_an_l_shaped_vessel_is_one_path():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 18:23] = True   # vertical limb, 5 px wide
    mask[45:50, 18:50] = True   # horizontal limb
    pts, edges = skeleton_curve(mask)
    n = len(pts)
    assert n > 40 and len(edges) == n - 1  # a path: no triangle at the corner, nothing doubled
    deg = np.bincount(edges.ravel(), minlength=n)
    assert np.count_nonzero(deg == 1) == 2 and deg.max() == 2
    # The ends stay where the skeleton ends (smoothing moves only points with two neighbours).
    raw, _ = skeleton_curve(mask, smooth_iterations=0)
    np.testing.assert_array_equal(pts[deg == 1], raw[deg == 1])
    # The vertical limb's centre line runs down the middle of its 5 px (columns 18-22).
    limb = pts[(pts[:, 0] > 15) & (pts[:, 0] < 40)]
    assert len(limb) > 20 and np.all(np.abs(limb[:, 1] - 20) < 1.0)


def test_mismatch_is_lower_for_the_right_pairing_than_for_a_mirrored_view(real_like_pair):
    masks, views, _ = real_like_pair
    right = epipolar_mismatch(masks, views)
    mirrored = epipolar_mismatch([masks[0], masks[1][:, ::-1]], views)
    assert right < 0.6 and mirrored > 2 * right


def test_mismatch_of_an_empty_mask_is_infinite_and_bad_shapes_are_named(real_like_pair):
    masks, views, _ = real_like_pair
    assert epipolar_mismatch([masks[0], np.zeros_like(masks[1])], views) == float("inf")
    with pytest.raises(ShapeError, match="mask 1 has shape"):
        epipolar_mismatch([masks[0], masks[1][:100]], views)
    with pytest.raises(ShapeError, match="two masks"):
        epipolar_mismatch([masks[0]], views[:1])


def test_zero_correction_is_the_nominal_view_and_the_identity_warp(real_like_pair):
    _, views, _ = real_like_pair
    rot, shift, axes_t, base = _rigid(views, np.zeros(5))
    view, warp, rms = _corrected_view(views[1], rot, shift)
    assert view.primary_deg == pytest.approx(views[1].primary_deg, abs=1e-9)
    assert view.secondary_deg == pytest.approx(views[1].secondary_deg, abs=1e-9)
    np.testing.assert_allclose(warp, np.eye(2, 3), atol=1e-9)
    assert rms < 1e-9
    # The shift axes and the baseline are orthonormal.
    frame = np.stack([base, *axes_t])
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)


def test_a_corrected_view_and_warp_reproduce_the_moved_projection():
    # View B's recorded image is its nominal projection of R x + t; the corrected view plus the
    # image warp must put a point where that image has it (up to the depth parallax of a shift).
    va = CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    vb = CArmView(-35.0, -25.0, 1000.0, 780.0, (0.28, 0.28), 512, 512)
    params = np.array([2.0, -1.5, 1.0, 3.0, -2.0])  # deg about the baseline / shift axes; mm
    rot, shift, _, _ = _rigid([va, vb], params)
    view, warp, rms = _corrected_view(vb, rot, shift)
    pts = np.random.default_rng(1).uniform(-50, 50, (40, 3))
    recorded, _ = vb.project(pts @ rot.T + shift)
    model, _ = view.project(pts)
    model = model @ np.asarray(warp)[:, :2].T + np.asarray(warp)[:, 2]
    err = np.linalg.norm(model - recorded, axis=1)
    # A 2D warp cannot hold the depth parallax of a shifted source: about a pixel over a 12 cm cube.
    assert rms < 1.0 and np.median(err) < 1.0 and err.max() < 2.5
    assert abs(view.primary_deg - vb.primary_deg) + abs(view.secondary_deg - vb.secondary_deg) > 0.5


def test_a_consistent_pair_is_left_alone(real_like_pair):
    masks, views, _ = real_like_pair
    corr = estimate_correction(masks, views)
    assert not corr.accepted and corr.reason
    check = check_pairing(masks, views)
    assert check.verdict == "consistent" and check.ok
    assert check.mismatch["B mirrored"] > check.mismatch["as given"]
    record = check.to_dict()
    assert record["verdict"] == "consistent" and len(record["correction"]["view_b_warp_px"]) == 2


def test_a_view_stored_mirrored_is_named(real_like_pair):
    masks, views, _ = real_like_pair
    check = check_pairing([masks[0], masks[1][:, ::-1]], views)
    assert check.verdict == "mirrored" and not check.ok
    assert "mirrored" in check.message and "--mirror-b" in check.message


def test_a_large_pose_error_of_view_b_is_corrected():
    # Normal_19-like behaviour on a synthetic pair: view B turned by 3 deg about the baseline
    # and shifted 4 mm across it. Drift across the epipolar lines must fall to about a pixel.
    sc = synthesize_case(SynthCaseConfig(side="right", frames=1, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=2_000_011)
    a, b = sc.case.views
    views = [a.view, b.view]
    truth = sc.truth[0]
    rot, shift, _, _ = _rigid(views, np.array([3.0, 0.0, 0.0, 4.0, 0.0]))
    moved = render_mask(truth.transformed(lambda p: p @ rot.T + shift), views[1]) > 0
    corr = estimate_correction([a.frames[0] > 0, moved], views, CalibrationConfig())
    assert corr.accepted, corr.reason
    assert corr.gain >= 0.35 and corr.tips_after > corr.tips_before
    r_est, t_est = corr.world_motion()
    from scipy.spatial.transform import Rotation

    assert np.degrees(Rotation.from_matrix(r_est.T @ rot).magnitude()) < 1.5
    # What breaks the hull is the distance across the epipolar lines between where view B recorded
    # the tree and where the geometry puts it: from 10+ px to about one.
    assert _across_drift(views, truth, rot, shift, views[1], np.eye(2, 3)) > 8.0
    assert _across_drift(views, truth, rot, shift, corr.view, corr.warp) < 2.0


def _across_drift(views, truth, rot, shift, view_b, warp) -> float:
    seen, _ = views[1].project(truth.nodes @ rot.T + shift)
    return across_line_drift_px(truth.nodes, views[0], seen, view_b, warp)


def test_a_mirror_that_keeps_every_epipolar_line_is_reported_as_undetectable():
    # Two views with no cranial / caudal angle, 40 deg apart: the epipolar lines run along the
    # image rows and barely converge, so a left-right mirror of view B moves its pixels across
    # the lines by under 3 px: no epipolar test can see it.
    from autocar.sbp.calibration import _mirror_detectable

    flat = [CArmView(20.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256),
            CArmView(-20.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)]
    assert not _mirror_detectable(flat)
    steep = [CArmView(30.0, 25.0, 1000.0, 750.0, (0.3, 0.3), 256, 256),
             CArmView(-30.0, -25.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)]
    assert _mirror_detectable(steep)
    mask = np.zeros((256, 256), bool)
    for r in (60, 120, 180):
        mask[r:r + 4, 40:220] = True
    mask[40:220, 128:132] = True
    check = check_pairing([mask, mask], flat)
    assert "B mirrored" not in check.mismatch and "mirror_check" in check.to_dict()
    assert check.verdict != "mirrored"
