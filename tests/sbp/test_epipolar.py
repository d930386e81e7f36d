"""Tests of autocar.sbp.epipolar: epipolar alignment of view B's mask."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry import CArmView
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, reconstruct_pair
from autocar.sbp.epipolar import (
    AlignConfig,
    angle_gradient,
    apply_view_warp,
    crossing_counts,
    epipolar_angles,
    epipolar_frame,
    estimate_alignment,
    warp_mask,
)
from autocar.synth.cases import SynthCaseConfig, synthesize_case

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)
LAO90 = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 256, 256)


def shift_mask(mask: np.ndarray, shift_px) -> np.ndarray:
    """``mask`` with its content moved by ``shift_px`` (row, col) px: a pure-translation view warp."""
    dr, dc = (float(x) for x in shift_px)
    return warp_mask(mask, [[1.0, 0.0, -dr], [0.0, 1.0, -dc]])


@pytest.fixture(scope="module")
def sync_pair():
    sc = synthesize_case(SynthCaseConfig(side="left", frames=1, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=424242)
    a, b = sc.case.views
    return [a.frames[0] > 0, b.frames[0] > 0], [a.view, b.view], sc.truth[0]


def test_a_3d_point_has_the_same_epipolar_angle_in_both_views():
    va = CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    vb = CArmView(-35.0, -25.0, 1000.0, 780.0, (0.28, 0.28), 512, 512)
    frame = epipolar_frame([va, vb])
    pts = np.random.default_rng(0).uniform(-60, 60, (50, 3))
    ta = epipolar_angles(va, va.project(pts)[0], frame)
    tb = epipolar_angles(vb, vb.project(pts)[0], frame)
    np.testing.assert_allclose(ta, tb, atol=1e-9)
    # ... and different points generally do not.
    assert np.ptp(ta) > 0.01


def test_crossing_counts_count_vessel_runs_on_the_line():
    # AP and LAO 90 sources both lie in the axial plane z = 0, so the epipolar plane of
    # the image centre is that plane; in AP it is the centre row (hand derivation).
    frame = epipolar_frame([AP, LAO90])
    centre = epipolar_angles(AP, np.array([[127.5, 127.5]]), frame)
    mask = np.zeros((256, 256), bool)
    for c in (40, 100, 200):
        mask[:, c:c + 5] = True  # three vertical vessels
    mask[:, 150] = True  # and a one-pixel one
    assert crossing_counts(mask, AP, centre, frame, 0.5).tolist() == [4]
    mask[120:136, :] = False  # cut them all around the centre row
    assert crossing_counts(mask, AP, centre, frame, 0.5).tolist() == [0]


def test_a_synchronised_pair_is_left_alone(sync_pair):
    masks, views, _ = sync_pair
    al = estimate_alignment(masks, views)
    assert not al.accepted
    np.testing.assert_array_equal(al.matrix, np.eye(2, 3))
    assert abs(al.offset_px) <= 0.6 and abs(al.scale) <= 0.005


def _across(views) -> np.ndarray:
    g = angle_gradient(views[1], epipolar_frame(views))
    return g / np.linalg.norm(g)


def _stretch(mask, views, offset, scale):
    """View B's mask with its content moved across the lines by offset + scale * u (u: px from the centre)."""
    a = _across(views)
    c = np.array([(views[1].rows - 1) / 2, (views[1].columns - 1) / 2])
    inv = np.eye(2) + scale * np.outer(a, a)  # content at u goes to u + offset + scale u
    mat = np.linalg.inv(inv)
    off = c - mat @ (c + offset * a)
    from scipy import ndimage
    return ndimage.affine_transform(mask.astype(np.float32), mat, offset=off, order=1) > 0.5


@pytest.mark.parametrize("offset", [-4.0, 5.0])
def test_a_known_shift_across_the_epipolar_lines_is_recovered(sync_pair, offset):
    masks, views, _ = sync_pair
    across = _across(views)
    moved = shift_mask(masks[1], offset * across)
    al = estimate_alignment([masks[0], moved], views)
    assert al.accepted, al.reason
    assert al.offset_px == pytest.approx(offset, abs=0.8)
    assert abs(al.scale) <= 0.005
    assert al.cost_after < al.cost_before
    # The warp maps the moved image back: a pixel of the aligned image sits offset px
    # further across in the moved one.
    c = np.array(al.centre_rc)
    np.testing.assert_allclose(apply_view_warp(c, al.matrix), c + al.offset_px * across, atol=1e-9)
    assert np.mean(al.warp(moved) ^ masks[1]) < 0.2 * np.mean(masks[1] ^ moved)
    # A shift along the lines is invisible to the epipolar test.
    along = np.array([-across[1], across[0]])
    assert not estimate_alignment([masks[0], shift_mask(masks[1], 4.0 * along)], views).accepted


def test_a_known_stretch_is_recovered(sync_pair):
    masks, views, _ = sync_pair
    moved = _stretch(masks[1], views, 2.0, 0.02)
    al = estimate_alignment([masks[0], moved], views)
    assert al.accepted, al.reason
    assert al.scale == pytest.approx(0.02, abs=0.006)
    assert al.offset_px == pytest.approx(2.0, abs=1.0)
    offsets_only = estimate_alignment([masks[0], moved], views, AlignConfig(max_scale=0.0))
    assert offsets_only.scale == 0.0 and offsets_only.cost_after > al.cost_after


def test_alignment_restores_the_reconstruction(sync_pair):
    masks, views, truth = sync_pair
    moved = [masks[0], shift_mask(masks[1], 5.0 * _across(views))]
    plain = reconstruct_pair(moved, views, None, ReconstructConfig(align_views=False))
    aligned = reconstruct_pair(moved, views, None)  # (the default)
    assert plain.view_warp is None
    c = np.array([(views[1].rows - 1) / 2, (views[1].columns - 1) / 2])
    moved_by = apply_view_warp(c, aligned.view_warp) - c  # at the image centre
    assert moved_by @ _across(views) == pytest.approx(5.0, abs=0.8)
    assert "align" in aligned.seconds
    f_plain = centerline_scores(plain.graph, truth).f1_1mm
    f_aligned = centerline_scores(aligned.graph, truth).f1_1mm
    f_sync = centerline_scores(reconstruct_pair(masks, views, None, ReconstructConfig(align_views=False)).graph,
                               truth).f1_1mm
    assert f_aligned > f_plain + 0.04
    assert f_aligned == pytest.approx(f_sync, abs=0.03)  # (hull graph: 0.39 moved, 0.45 both)


def test_gates_reject_large_shallow_or_limit_warps(sync_pair):
    masks, views, _ = sync_pair
    moved = [masks[0], shift_mask(masks[1], 5.0 * _across(views))]
    small = estimate_alignment(moved, views, AlignConfig(max_shift_px=3.0))
    assert not small.accepted and "beyond" in small.reason
    strict = estimate_alignment(moved, views, AlignConfig(min_gain=0.99))
    assert not strict.accepted and strict.reason == "no clear best warp"
    stretched = [masks[0], _stretch(masks[1], views, 0.0, 0.03)]
    limit = estimate_alignment(stretched, views, AlignConfig(max_scale=0.01))
    assert not limit.accepted and "limit" in limit.reason


def test_warp_mask_moves_pixels():
    m = np.zeros((20, 20), bool)
    m[5, 7] = True
    out = shift_mask(m, (2.0, -3.0))
    assert np.argwhere(out).tolist() == [[7, 4]]
    assert shift_mask(m, (0.0, 0.0)) is not m and np.array_equal(shift_mask(m, (0, 0)), m)
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        apply_view_warp(np.zeros((1, 2)), np.eye(2))
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        warp_mask(m, np.eye(2))


def test_bad_inputs():
    m = np.zeros((256, 256), bool)
    m[100:110, 100:110] = True
    with pytest.raises(ShapeError, match="two masks and two views"):
        estimate_alignment([m], [AP])
    with pytest.raises(ShapeError, match="mask 1 has shape"):
        estimate_alignment([m, m[:100]], [AP, LAO90])
    with pytest.raises(ShapeError, match="same X-ray source"):
        epipolar_frame([AP, AP])
    empty = estimate_alignment([m, np.zeros_like(m)], [AP, LAO90])
    assert not empty.accepted and empty.reason == "an empty mask"


def test_case_reconstructions_record_the_warp_of_view_b():
    # A synchronised 2-frame case whose view B frames are all moved 5 px across the lines
    # (breathing drift between the two runs): both the static and the dynamic case
    # reconstruction warp B back, say so per frame, and beat the unaligned result.
    import dataclasses

    from autocar.pipeline.dynamic import reconstruct_dynamic
    from autocar.pipeline.static import reconstruct_case

    sc = synthesize_case(SynthCaseConfig(side="left", frames=2, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=424243)
    a, b = sc.case.views
    across = _across([a.view, b.view])
    moved = np.stack([shift_mask(f > 0, 5.0 * across) for f in b.frames])
    case = dataclasses.replace(sc.case, views=(a, dataclasses.replace(b, frames=moved)))
    c = np.array([(b.view.rows - 1) / 2, (b.view.columns - 1) / 2])
    on = ReconstructConfig(align_views=True)
    rec, _ = reconstruct_case(case, config=on, use_network=False, progress=False)
    dyn = reconstruct_dynamic(case, config=on, use_network=False, progress=False).reconstruction
    off = reconstruct_dynamic(case, config=ReconstructConfig(align_views=False), use_network=False,
                              progress=False).reconstruction
    for result in (rec, dyn):
        for extra in result.frame_extra:
            warp = extra["view_warp_px"][b.name]
            assert (apply_view_warp(c, warp) - c) @ across == pytest.approx(5.0, abs=0.8)
    assert all("view_warp_px" not in e for e in off.frame_extra)
    # evaluate scores reprojection against the warped mask the result was made from.
    from autocar.evaluation.evaluate import evaluate_reconstruction

    scored = evaluate_reconstruction(rec, case=case)["frames"][0]
    unwarped = evaluate_reconstruction(dataclasses.replace(rec, frame_extra=None), case=case)["frames"][0]
    assert scored["reprojection_B_dice"] > unwarped["reprojection_B_dice"] + 0.05
    assert scored["reprojection_A_dice"] == unwarped["reprojection_A_dice"]
    broken = dataclasses.replace(rec, frame_extra=tuple({"view_warp_px": {b.name: [1, 2]}} for _ in rec.frames))
    with pytest.raises(CaseFormatError, match="view_warp_px of view B"):
        evaluate_reconstruction(broken, case=case)
    f_on = np.mean([centerline_scores(g, sc.truth[k]).f1_1mm for k, g in enumerate(dyn.frames)])
    f_off = np.mean([centerline_scores(g, sc.truth[k]).f1_1mm for k, g in enumerate(off.frames)])
    assert f_on > f_off + 0.04


def test_epipolar_angles_never_wrap_inside_the_images():
    # Two near-horizontal views (both secondary angles ~0): with the old fixed helper axis the
    # +-pi cut of the plane angle fell inside both images, so one epipolar "line" spanned the
    # whole image. Angle 0 is now view A's central plane: the images cover a small interval.
    va = CArmView(-47.4, -1.3, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    vb = CArmView(81.0, 3.6, 1100.0, 750.0, (0.3, 0.3), 512, 512)
    frame = epipolar_frame([va, vb])
    for v in (va, vb):
        rr, cc = np.meshgrid(np.arange(0, 512, 16.0), np.arange(0, 512, 16.0), indexing="ij")
        t = epipolar_angles(v, np.stack([rr.ravel(), cc.ravel()], 1), frame)
        assert np.ptp(t) < 1.0
    assert abs(float(epipolar_angles(va, np.array([[255.5, 255.5]]), frame)[0])) < 1e-9
