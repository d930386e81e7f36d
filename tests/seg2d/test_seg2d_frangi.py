"""Frangi baseline and 2D scores on hand-built images with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from autocar.errors import AutocarError, ShapeError
from autocar.seg2d.frangi import (
    DEFAULT_PARAMS,
    FrangiParams,
    frangi_segment,
    tune_frangi,
)
from autocar.seg2d.field import field_of_view
from autocar.seg2d.image import normalise_image
from autocar.seg2d.scores import cl_dice_2d, dice_2d


def dark_curve_image(seed: int = 0, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A bright noisy background with a dark, 7-px wide smooth curve; returns (uint8 image, true mask)."""
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    centre = 100.0 + 30.0 * np.sin(xx / 40.0)  # row of the curve centre at each column
    dist = np.abs(yy - centre) / np.sqrt(1.0 + (30.0 / 40.0 * np.cos(xx / 40.0)) ** 2)
    truth = dist <= 3.5
    profile = np.clip(1.0 - (dist / 3.5) ** 2, 0.0, 1.0)  # circular-lumen-like depth
    image = 180.0 + 15.0 * np.sin(yy / 70.0) - 80.0 * profile + gen.normal(0.0, 4.0, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_frangi_finds_a_known_dark_curve():
    image, truth = dark_curve_image()
    mask = frangi_segment(image)
    assert mask.shape == truth.shape and mask.dtype == bool
    assert dice_2d(mask, truth) > 0.75
    # Hysteresis + component removal: no speckle far from the curve.
    far = cv2.dilate(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) == 0
    assert mask[far].sum() == 0


def test_frangi_ignores_a_bright_curve_and_rejects_bad_input():
    image, truth = dark_curve_image(1)
    inverted = 255 - image  # the vessel is now bright: not a contrast-filled vessel
    assert dice_2d(frangi_segment(inverted), truth) < 0.2
    with pytest.raises(ShapeError, match="2D"):
        frangi_segment(np.zeros((4, 4, 3)))
    with pytest.raises(AutocarError, match="constant"):
        frangi_segment(np.full((50, 50), 7, np.uint8))
    bad = image.astype(float)
    bad[3, 4] = np.nan
    with pytest.raises(AutocarError, match="NaN"):
        frangi_segment(bad)
    with pytest.raises(ValueError, match="low"):
        frangi_segment(image, FrangiParams(low=3.0, high=2.0))


def test_field_of_view_excludes_a_black_collimated_border():
    image, _ = dark_curve_image(2)
    yy, xx = np.mgrid[0:200, 0:200]
    r = np.hypot(yy - 100, xx - 100)
    outside = r > 90
    img = image.copy()
    img[outside] = 12
    fov = field_of_view(normalise_image(img), margin_px=0)
    assert not fov[0, 0] and not fov[-1, -1]
    # Outside regions thinner than the 11 px opening (the slivers at the
    # image sides) may be kept; the corners beyond them are found.
    assert fov[r > 100].mean() < 0.05
    assert fov[r < 88].mean() > 0.98  # the dark vessel stays inside the field
    grown = field_of_view(normalise_image(img), margin_px=10)
    assert grown[(r > 84) & (r < 88) & (np.abs(yy - xx) < 3)].sum() == 0  # the margin reaches inside
    # Without the field mask the circle edge would be segmented; with it, only the curve.
    _, truth = dark_curve_image(2)
    assert dice_2d(frangi_segment(img), truth & ~outside) > 0.7


def test_tune_frangi_recovers_a_good_threshold():
    images, truths = zip(*(dark_curve_image(s) for s in range(2)))
    params, score = tune_frangi(images, truths, highs=(2.0, 50.0), low_fractions=(0.15,), min_sizes=(0, 800))
    assert params.high == 2.0  # a threshold of 50 x the 95th percentile keeps nothing
    assert score == pytest.approx(np.mean([dice_2d(frangi_segment(i, params), t) for i, t in zip(images, truths)]))
    assert DEFAULT_PARAMS.low <= DEFAULT_PARAMS.high


def test_dice_and_cl_dice_known_answers():
    truth = np.zeros((40, 60), bool)
    truth[18:23, 5:55] = True  # a 5 x 50 bar
    assert dice_2d(truth, truth) == 1.0 and cl_dice_2d(truth, truth) == 1.0
    half = truth.copy()
    half[:, 30:] = False  # 5 x 25
    assert dice_2d(half, truth) == pytest.approx(2 * 125 / (125 + 250))
    # Topology precision 1 (the half's skeleton lies in the bar), sensitivity
    # about 1/2 (half of the bar's skeleton is covered): clDice ~ 2/3.
    assert cl_dice_2d(half, truth) == pytest.approx(2 / 3, abs=0.05)
    empty = np.zeros_like(truth)
    assert dice_2d(empty, empty) == 1.0 and cl_dice_2d(empty, empty) == 1.0
    assert cl_dice_2d(empty, truth) == 0.0
    with pytest.raises(ShapeError, match="same shape"):
        dice_2d(truth, truth[:, :10])
