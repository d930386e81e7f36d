from __future__ import annotations

import numpy as np
import pytest

from autocar.dynamic.flow import dense_flow, flow_targets, prepare_for_flow, sample_flow
from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

VIEW = CArmView(30.0, 10.0, 1000.0, 750.0, (0.4, 0.4), 384, 384)


@pytest.fixture(scope="module")
def tree():
    return generate_tree("left", rng=3, n_stenoses=0).graph


def test_flow_follows_a_known_3d_translation_of_the_tree(tree):
    moved = tree.with_nodes(tree.nodes + np.array([2.0, -1.0, 1.5]))
    m0, m1 = render_mask(tree, VIEW), render_mask(moved, VIEW)
    rc0, _ = VIEW.project(tree.nodes)
    rc1, _ = VIEW.project(moved.nodes)
    shift = np.linalg.norm(rc1 - rc0, axis=1)
    assert shift.mean() > 2.0  # the motion is visible
    targets, ok = flow_targets(m0, m1, rc0, on_mask=m0)
    assert ok.mean() > 0.95
    err = np.linalg.norm(targets[ok] - rc1[ok], axis=1)
    assert np.median(err) < 0.6 * np.median(shift)
    assert np.median(err) < 1.0


def test_identical_frames_give_zero_flow(tree):
    m = render_mask(tree, VIEW)
    flow = dense_flow(m, m)
    assert flow.shape == (384, 384, 2)
    assert np.abs(flow).max() < 1e-3


def test_flow_direction_is_row_col():
    # A bright square moved 3 rows down and 1 column left.
    a = np.zeros((64, 64), np.uint8)
    a[20:30, 20:30] = 1
    b = np.roll(np.roll(a, 3, axis=0), -1, axis=1)
    flow = dense_flow(a, b, is_mask=True)
    d, ok = sample_flow(flow, np.array([[25.0, 25.0]]))
    assert ok.all()
    assert d[0] == pytest.approx([3.0, -1.0], abs=0.5)


def test_sample_flow_marks_points_outside_the_image():
    flow = np.ones((10, 12, 2))
    d, ok = sample_flow(flow, np.array([[0.0, 0.0], [9.0, 11.0], [-0.5, 3.0], [3.0, 11.5], [np.nan, 1.0]]))
    assert ok.tolist() == [True, True, False, False, False]
    assert np.allclose(d[ok], 1.0) and np.all(np.isnan(d[~ok]))


def test_points_away_from_the_mask_are_not_flow_targets(tree):
    from scipy import ndimage

    m = render_mask(tree, VIEW)
    dist = ndimage.distance_transform_edt(~m)
    far = np.array([np.unravel_index(np.argmax(dist), dist.shape)], dtype=float)  # farthest from any vessel
    rc = np.concatenate([VIEW.project(tree.nodes[:1])[0], far])
    _, ok = flow_targets(m, m, rc, on_mask=m)
    assert ok.tolist() == [True, False]


def test_prepare_for_flow_scales_images_and_smooths_masks():
    img = np.linspace(100, 4000, 64 * 64).reshape(64, 64)
    out = prepare_for_flow(img)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    mask = np.zeros((64, 64), bool)
    mask[30:33, :] = True
    soft = prepare_for_flow(mask)
    assert soft[31, 10] == 255 and 0 < soft[36, 10] < 255  # a soft ridge around the vessel


def test_bad_inputs_are_rejected():
    with pytest.raises(ShapeError, match="same shape"):
        dense_flow(np.zeros((32, 32)), np.zeros((32, 30)))
    with pytest.raises(ShapeError, match="NaN"):
        dense_flow(np.full((32, 32), np.nan), np.zeros((32, 32)))
    with pytest.raises(ShapeError, match="2D image"):
        prepare_for_flow(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match="preset"):
        dense_flow(np.zeros((32, 32)), np.zeros((32, 32)), preset="slow")
