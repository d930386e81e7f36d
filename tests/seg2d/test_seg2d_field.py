"""The X-ray field: noisy dark frames and shutters are outside, vessels that leave the image are not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from autocar.geometry import CArmView
from autocar.seg2d.field import field_of_view
from autocar.seg2d.image import normalise_image
from autocar.seg2d import segment
from autocar.seg2d.segment import FIELD_MARGIN_PX, segment_angiogram
from autocar.synth.angiogram import render_angiogram
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree


def framed_image(seed: int = 0, size: int = 240, band: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright noisy field inside a noisy dark octagonal frame ``band`` px deep (corners cut at 45 deg,
    like the GE phantom runs), with a dark 7-px vessel that leaves the field through the top edge.

    Returns (float image, frame mask, vessel mask)."""
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    edge = np.minimum.reduce([yy, xx, size - 1 - yy, size - 1 - xx])
    corner = np.minimum.reduce([yy + xx, yy + size - 1 - xx, size - 1 - yy + xx, 2 * (size - 1) - yy - xx])
    frame = (edge < band) | (corner < 5 * band)
    vessel = (np.abs(xx - (120 + 40 * np.sin(yy / 50.0))) <= 3.5) & ~frame
    image = 110.0 + 10 * np.sin(xx / 60.0) + gen.normal(0, 12.0, (size, size))
    image[vessel] -= 60.0
    image[frame] = 15.0 + gen.normal(0, 12.0, int(frame.sum()))
    return image, frame, vessel


def test_a_noisy_dark_frame_is_outside_and_the_vessel_is_inside():
    image, frame, vessel = framed_image()
    fov = field_of_view(normalise_image(image), margin_px=0)
    assert (~fov[frame]).mean() > 0.8  # the smoothing leaves 1-2 px of the frame's inner edge ...
    assert fov[vessel].mean() > 0.97  # the vessel meets the frame at both ends and stays inside (up to the blur)
    assert fov[~frame].mean() > 0.99
    grown = field_of_view(normalise_image(image), margin_px=3)
    assert not grown[frame].any()  # ... which the margin covers


def test_a_vessel_leaving_an_unframed_image_and_dark_anatomy_stay_inside():
    gen = np.random.default_rng(1)
    size = 200
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    image = 150.0 + gen.normal(0, 6.0, (size, size))
    # A band of dark anatomy (the diaphragm) along the whole bottom edge, as dark as the vessel,
    # fading in over ~20 px: beyond the background's hull, but no collimator edge.
    image -= 90.0 / (1.0 + np.exp(-(yy - 160.0) / 6.0))
    vessel = np.abs(xx - 60 - 0.3 * yy) <= 4
    image[vessel] -= 90.0  # crossing the image from the top edge to the bottom edge
    assert field_of_view(normalise_image(image), margin_px=FIELD_MARGIN_PX).all()
    # A shutter blade in the top right corner is still found.
    blade = xx - yy > 150
    image[blade] = 20.0 + gen.normal(0, 6.0, int(blade.sum()))
    fov = field_of_view(normalise_image(image), margin_px=0)
    assert (~fov[xx - yy > 153]).mean() > 0.95 and fov[~blade & ~vessel & (yy < 150)].all()


def test_the_diaphragm_of_a_rendered_angiogram_is_inside():
    # bench_pipeline.py case 0, view A frame 1: a dark diaphragm along the bottom edge; before the
    # edge-slope rule 11,461 pixels of it were called outside.
    sc = synthesize_case(SynthCaseConfig(side="left", frames=2, kind="image", n_stenoses=1), rng=2_300_000)
    for cv in sc.case.views:
        for frame in cv.frames:
            assert field_of_view(normalise_image(frame), margin_px=0).all()


def test_burnt_in_text_in_the_frame_does_not_widen_the_field():
    image, frame, _ = framed_image(2)
    image[2:6, 60:180] = 250.0  # a bright label inside the dark top band
    fov = field_of_view(normalise_image(image), margin_px=3)
    assert (~fov[frame]).mean() > 0.85 and (~fov[6:, :]).mean() < 0.2  # the field is not widened


@pytest.mark.parametrize("band", [4, 10])
def test_the_unet_marks_no_vessel_along_a_dark_frame(band, monkeypatch):
    view = CArmView(30.0, 20.0, 1000.0, 750.0, (0.4, 0.4), 256, 256)
    tree = generate_tree("left", rng=3).graph
    image = render_angiogram(tree, view, rng=3).astype(float)
    # A noisy octagonal frame at 15 % of the background, like the GE phantom runs' (module doc).
    yy, xx = np.mgrid[0:256, 0:256]
    edge = np.minimum.reduce([yy, xx, 255 - yy, 255 - xx])
    corner = np.minimum.reduce([yy + xx, yy + 255 - xx, 255 - yy + xx, 510 - yy - xx])
    frame = (edge < band) | (corner < 5 * band)
    med = float(np.median(image))
    image[frame] = 0.15 * med + np.random.default_rng(4).normal(0, 0.1 * med, int(frame.sum()))
    truth = cv2.dilate(render_mask(tree, view).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    ring = edge < band + FIELD_MARGIN_PX
    mask = segment_angiogram(image)
    assert (mask & ring & ~truth).sum() == 0  # nothing but the tree's own vessels near the frame
    assert (mask & ~ring & truth).sum() > 500  # the tree inside is still segmented
    # Without the field the network marks the frame's edge as vessel.
    monkeypatch.setattr(segment, "field_of_view", lambda x, margin_px: np.ones(x.shape, bool))
    assert (segment_angiogram(image) & ring & ~truth).sum() > 50
