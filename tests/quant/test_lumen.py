"""Lumen diameters from grey angiograms: the profile model, the fit, the rendered tubes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.graph.extract import radii_from_masks
from autocar.quant.evidence import confirm_stenoses
from autocar.quant.lumen import (
    LumenOptions,
    blurred_absorption,
    blurred_chord,
    fit_profiles,
    lumen_radii,
    node_normals_2d,
)
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask

PX_ISO = 0.25  # mm per pixel at the isocentre
VIEWS = [CArmView(0.0, 0.0, 1000.0, 750.0, (PX_ISO * 1000 / 750,) * 2, 384, 384),
         CArmView(0.0, 40.0, 1000.0, 750.0, (PX_ISO * 1000 / 750,) * 2, 384, 384)]


def tube(diameter: float, stenosis: float = 0.0, lesion_mm: float = 8.0) -> tuple[CenterlineGraph, np.ndarray]:
    """A 50 mm tube along x through the isocentre, a cosine narrowing of ``stenosis`` at its middle."""
    s = np.arange(-25.0, 25.0 + 1e-9, 0.3)
    u = np.abs(s) / (lesion_mm / 2)
    r = diameter / 2 * (1 - stenosis * np.where(u < 1, 0.5 * (1 + np.cos(np.pi * u)), 0.0))
    edges = np.stack([np.arange(len(s) - 1), np.arange(1, len(s))], axis=1)
    return CenterlineGraph(np.stack([s, 0 * s, 0 * s], axis=1), r, edges), s


def test_blurred_chord_integrates_to_the_disc_area_and_is_the_chord_without_blur():
    u = np.linspace(-12, 12, 2401)
    for r, s in ((2.0, 1.0), (4.5, 0.7), (0.6, 1.5)):
        g = blurred_chord(u, np.array(r), np.array(s))
        assert np.trapezoid(g, u) == pytest.approx(math.pi * r * r, rel=2e-3)
    # Against a brute-force convolution on a fine grid, for a disc far wider than the blur too.
    v = np.linspace(-30, 30, 60001)
    for r, s in ((8.0, 0.3), (2.0, 1.2)):
        chord = 2 * np.sqrt(np.clip(r * r - v * v, 0, None))
        x = np.array([0.0, 0.5 * r, r - 0.5, r, r + 0.7])
        ref = [np.trapezoid(chord * np.exp(-0.5 * ((xi - v) / s) ** 2), v) / (math.sqrt(2 * math.pi) * s) for xi in x]
        assert blurred_chord(x, np.array(r), np.array(s)) == pytest.approx(ref, rel=2e-3, abs=2e-3)


def test_faint_absorption_is_attenuation_times_the_chord_and_saturates_when_thick():
    u = np.linspace(-6, 6, 61)
    r, s = np.array(3.0), np.array(1.0)
    faint = blurred_absorption(u, r, s, np.array(1e-4))
    assert faint == pytest.approx(1e-4 * blurred_chord(u, r, s), rel=1e-3)
    # A thick, dense lumen absorbs nearly everything at its middle, never more than all.
    dense = blurred_absorption(np.array([0.0]), np.array(20.0), np.array(1.0), np.array(1.0))
    assert 0.99 < float(dense[0]) <= 1.0


def test_fit_recovers_the_radius_of_profiles_drawn_from_the_model():
    rng = np.random.default_rng(0)
    k = 0.05
    for r in (1.2, 2.0, 3.5, 6.0):
        radii = np.full(40, r)
        t = np.linspace(-1, 1, 41)[None, :] * (2.5 * radii[:, None] + 4)
        h = blurred_absorption(t - 0.3, radii[:, None], np.array(1.1), np.array(k))
        # Display: 240 grey levels per log unit of attenuation, noise SD 0.5 grey level.
        y = 180.0 - 240.0 * (-np.log1p(-h)) + rng.normal(0, 0.5, t.shape)
        # The contrast per pixel of chord of a faint vessel is 240 k = 12 grey levels; a profile
        # whose radius is near the blur needs it as its prior, as lumen_radii gives it from wider ones.
        fit = fit_profiles(t, y, r0=radii * 0.7, blur_px=1.1, attenuation_px=k,
                           contrast_ref=np.full(40, 12.0), contrast_prior=LumenOptions().contrast_prior)
        assert np.mean(fit["radius_px"]) == pytest.approx(r, rel=0.03)
        assert np.std(fit["radius_px"]) < 0.08 * r
        assert np.median(fit["center_px"]) == pytest.approx(0.3, abs=0.1)
        assert np.all(fit["explained"] > 0.9)


def test_normals_are_perpendicular_to_the_projected_vessel():
    g, _ = tube(3.0)
    _, normal, ok = node_normals_2d(g, VIEWS[0])
    assert ok.all()
    # The tube runs along x (patient left) = image columns in the AP view: normals along rows.
    assert np.abs(normal[:, 0]) == pytest.approx(np.ones(g.num_nodes), abs=1e-9)
    # Seen end-on, there is no normal.
    # (The AP view looks along y, anterior to posterior.)
    end_on = CenterlineGraph(np.array([[0, -5.0, 0], [0, 0, 0], [0, 5.0, 0]]), np.ones(3), np.array([[0, 1], [1, 2]]))
    assert not node_normals_2d(end_on, VIEWS[0])[2].any()


@pytest.mark.parametrize("diameter", [2.0, 3.5])
def test_rendered_tube_diameter_within_fifteen_hundredths_of_a_millimetre(diameter):
    g, s = tube(diameter)
    images = [render_angiogram(g, v, rng=3 + k, contrast=1.0) for k, v in enumerate(VIEWS)]
    lm = lumen_radii(g, images, VIEWS)
    mid = np.abs(s) < 20
    assert lm.measured.min() > 0.9 * g.num_nodes
    # (24 tubes per pixel size in benchmarks/bench_qca_tubes.py: mean error 0.00, SD 0.09 mm.)
    assert abs(2 * np.nanmedian(lm.radii_mm[mid]) - diameter) < 0.15
    assert np.all(np.isfinite(lm.blur_px)) and np.all((lm.blur_px > 0.5) & (lm.blur_px < 2.5))


def test_a_planted_lesion_has_its_minimal_diameter_where_the_mask_width_misses_it():
    g, s = tube(3.0, stenosis=0.6)  # MLD 1.2 mm
    images = [render_angiogram(g, v, rng=11 + k, contrast=1.0) for k, v in enumerate(VIEWS)]
    lm = lumen_radii(g, images, VIEWS)
    core = np.abs(s) < 0.5
    grey_mld = 2 * float(np.nanmedian(lm.radii_mm[core]))
    # (One tube; over 24 per pixel size, benchmarks/bench_qca_tubes.py: MLD error SD about 0.2 mm.)
    assert abs(grey_mld - 1.2) < 0.25
    # Healthy part: the same diameter as the tube.
    assert abs(2 * np.nanmedian(lm.radii_mm[np.abs(s) > 8]) - 3.0) < 0.12


def test_a_crossing_vessel_is_not_measured_through():
    g, s = tube(3.0)
    # A second vessel crossing the tube's middle 15 mm in front of it (an overlap in the AP view,
    # which looks along y).
    y = np.arange(-20.0, 20.0 + 1e-9, 0.5)
    cross = np.stack([0 * y, 0 * y - 15.0, y], axis=1)
    n = g.num_nodes
    nodes = np.concatenate([g.nodes, cross])
    radii = np.concatenate([g.radii, np.full(len(y), 1.5)])
    edges = np.concatenate([g.edges, np.stack([np.arange(len(y) - 1), np.arange(1, len(y))], axis=1) + n])
    both = CenterlineGraph(nodes, radii, edges)
    images = [render_angiogram(both, v, rng=5, contrast=1.0) for v in VIEWS[:1]]
    lm = lumen_radii(both, images, VIEWS[:1])
    under = np.flatnonzero(np.abs(s) < 1.0)
    assert np.all(np.isnan(lm.per_view_mm[0, under]))
    assert np.isfinite(lm.per_view_mm[0, np.flatnonzero(np.abs(s) > 8)]).mean() > 0.9


def test_confirm_stenoses_reads_the_grey_evidence_when_given():
    g, s = tube(3.0, stenosis=0.6)
    masks = [render_mask(g, v) for v in VIEWS]
    mid = int(np.argmin(np.abs(s)))
    finding = {"segment": 0, "name": "tube", "node": mid, "diameter_stenosis_percent": 60.0, "lesion_length_mm": 6.0}
    meas = {"views": [{"name": "A"}, {"name": "B"}], "stenoses": [finding],
            "segments": [{"id": 0, "nodes": list(range(g.num_nodes))}]}
    flat = np.tile(radii_from_masks(tube(3.0)[0], masks, VIEWS), (2, 1)) * 0 + 1.5  # no narrowing anywhere
    out = confirm_stenoses(meas, g, masks, VIEWS, per_view_radii=flat)
    assert out["stenoses"] == [] and len(out["withheld_stenoses"]) == 1
    kept = confirm_stenoses(meas, g, masks, VIEWS, per_view_radii=np.tile(g.radii, (2, 1)))
    assert len(kept["stenoses"]) == 1
    with pytest.raises(ValueError, match="per_view_radii"):
        confirm_stenoses(meas, g, masks, VIEWS, per_view_radii=np.ones((2, 3)))


def test_bad_images_are_refused_with_the_reason():
    g, _ = tube(3.0)
    good = np.full(VIEWS[0].shape, 200, np.uint8)
    with pytest.raises(ShapeError, match="one image per view"):
        lumen_radii(g, [good], VIEWS)
    with pytest.raises(ShapeError, match=r"image 1 has shape \(10, 10\)"):
        lumen_radii(g, [good, np.zeros((10, 10))], VIEWS)
    bad = good.astype(float)
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="image 0 holds NaN"):
        lumen_radii(g, [bad, good], VIEWS)
    with pytest.raises(ValueError, match="samples"):
        LumenOptions(samples=5)


def test_a_flat_image_measures_nothing_rather_than_inventing_a_lumen():
    g, _ = tube(3.0)
    flat = [np.full(v.shape, 128.0) + np.random.default_rng(k).normal(0, 2, v.shape) for k, v in enumerate(VIEWS)]
    lm = lumen_radii(g, flat, VIEWS)
    assert np.isfinite(lm.radii_mm).mean() < 0.2


def test_a_planted_lesion_is_reported_with_the_grey_mld_and_a_healthy_tube_with_none():
    from autocar.quant.evidence import measure_with_evidence

    for stenosis in (0.6, 0.0):
        g, _ = tube(3.0, stenosis=stenosis)
        images = [render_angiogram(g, v, rng=21 + k, contrast=1.0) for k, v in enumerate(VIEWS)]
        masks = [render_mask(g, v) for v in VIEWS]
        m = measure_with_evidence(g, VIEWS, masks=masks, images=images)
        assert m["diameter_source"]["method"].endswith("measured in the grey profiles")
        if stenosis:
            assert len(m["stenoses"]) == 1, m["stenoses"]
            st = m["stenoses"][0]
            assert st["measured_in"] == "grey profiles"
            assert abs(st["minimal_diameter_mm"] - 1.2) < 0.3  # this view A's dark background compresses
            assert abs(st["diameter_stenosis_percent"] - 60.0) < 10.0
            assert st["mask_reading"]["minimal_diameter_mm"] != st["minimal_diameter_mm"]
            assert abs(st["reference_diameter_mm"] - 3.0) < 0.2
        else:
            assert m["stenoses"] == []
