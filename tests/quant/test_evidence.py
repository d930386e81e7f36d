"""A stenosis is kept only when every view's mask shows the narrowing (or the view is overlapped there)."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.quant.evidence import confirm_stenoses, overlapped_in_view, view_narrowing
from autocar.synth.render import render_mask

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 384, 384)
LAO = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 384, 384)


def tube(narrow: float = 0.0) -> CenterlineGraph:
    """A straight vessel along z (seen along its length in both views), radius 1.5 mm, with a 6 mm
    long cosine narrowing of ``narrow`` (fraction of the radius) at z = 0."""
    z = np.arange(-30.0, 30.01, 0.5)
    r = 1.5 * (1.0 - narrow * np.where(np.abs(z) < 3.0, 0.5 * (1 + np.cos(np.pi * z / 3.0)), 0.0))
    nodes = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    return CenterlineGraph(nodes, r, np.stack([np.arange(len(z) - 1), np.arange(1, len(z))], 1))


def measurements(graph: CenterlineGraph) -> dict:
    k = int(np.argmin(np.abs(graph.nodes[:, 2])))
    return {"views": [{"name": "A"}, {"name": "B"}],
            "segments": [{"id": 0, "nodes": list(range(graph.num_nodes))}],
            "stenoses": [{"segment": 0, "name": "LAD", "node": k, "lesion_length_mm": 6.0,
                          "diameter_stenosis_percent": 50.0}]}


def test_view_narrowing_of_a_known_profile():
    arc = np.arange(0.0, 30.01, 0.5)
    r = np.full(arc.shape, 2.0)
    r[np.abs(arc - 15.0) <= 1.0] = 1.0
    assert view_narrowing(r, arc, 30, 4.0) == pytest.approx(50.0)
    r[arc > 20] = np.nan  # one shoulder without evidence: the other one still gives the reference
    assert view_narrowing(r, arc, 30, 4.0) == pytest.approx(50.0)
    assert np.isnan(view_narrowing(np.full(arc.shape, np.nan), arc, 30, 4.0))


def test_a_narrowing_both_views_show_is_kept():
    seen = tube(0.5)
    masks = [render_mask(seen, AP) > 0, render_mask(seen, LAO) > 0]
    out = confirm_stenoses(measurements(seen), seen, masks, [AP, LAO])
    assert len(out["stenoses"]) == 1 and out["withheld_stenoses"] == []
    v = out["stenoses"][0]["view_narrowing_percent"]
    assert v["A"] > 30 and v["B"] > 30


def test_a_narrowing_only_one_view_shows_is_withheld_with_the_reason():
    narrowed, healthy = tube(0.5), tube(0.0)
    masks = [render_mask(narrowed, AP) > 0, render_mask(healthy, LAO) > 0]  # B sees a healthy lumen
    meas = measurements(narrowed)
    out = confirm_stenoses(meas, narrowed, masks, [AP, LAO])
    assert out["stenoses"] == [] and len(out["withheld_stenoses"]) == 1
    w = out["withheld_stenoses"][0]
    assert "not seen in every view" in w["reason"] and w["view_narrowing_percent"]["B"] < 15
    assert len(meas["stenoses"]) == 1  # the input is not changed


def test_a_view_overlapped_at_the_lesion_does_not_veto():
    # A second vessel 20 mm behind the first in AP (same x, y shifted in depth) covers the
    # lesion in AP only; in the lateral view the two are 20 mm apart.
    narrowed = tube(0.5)
    other = CenterlineGraph([[-15.0, 20.0, 0.0], [15.0, 20.0, 0.0]], [1.5, 1.5], [[0, 1]]).resampled(0.5)
    both = CenterlineGraph(np.vstack([narrowed.nodes, other.nodes]), np.concatenate([narrowed.radii, other.radii]),
                           np.vstack([narrowed.edges, other.edges + narrowed.num_nodes]))
    core = np.flatnonzero(np.abs(narrowed.nodes[:, 2]) <= 3.0)
    assert overlapped_in_view(both, AP, core) and not overlapped_in_view(both, LAO, core)
    masks = [render_mask(both, AP) > 0, render_mask(both, LAO) > 0]
    out = confirm_stenoses(measurements(narrowed), both, masks, [AP, LAO])
    assert len(out["stenoses"]) == 1 and out["stenoses"][0]["overlapped_in"] == ["A"]


def test_confirm_in_grey_keeps_what_the_grey_reading_shows_and_takes_its_numbers():
    from autocar.quant.evidence import confirm_in_grey

    def finding(pos, ds, mld):
        return {"segment": 0, "name": "LAD", "node": 1, "position_mm": pos, "distance_from_ostium_mm": 20.0,
                "diameter_stenosis_percent": ds, "minimal_diameter_mm": mld, "reference_diameter_mm": 3.0,
                "lesion_length_mm": 6.0}

    masks_reading = {"stenoses": [finding([0, 0, 0], 45.0, 1.65), finding([30, 0, 0], 41.0, 1.8)],
                     "withheld_stenoses": []}
    grey_reading = {"stenoses": [finding([1.5, 1.0, 0], 52.0, 1.44), finding([30, 9, 0], 60.0, 1.2)]}
    out = confirm_in_grey(masks_reading, grey_reading)
    # The first is 1.8 mm from a grey finding: kept, with the grey MLD and %DS; the second's nearest
    # grey finding is 9 mm away: withheld, with the reason.
    assert [s["diameter_stenosis_percent"] for s in out["stenoses"]] == [52.0]
    assert out["stenoses"][0]["minimal_diameter_mm"] == 1.44
    assert out["stenoses"][0]["mask_reading"]["diameter_stenosis_percent"] == 45.0
    assert len(out["withheld_stenoses"]) == 1 and "grey-level profiles" in out["withheld_stenoses"][0]["reason"]
    assert masks_reading["stenoses"][0]["diameter_stenosis_percent"] == 45.0  # the input is not changed



def test_a_grey_finding_no_view_measured_is_withheld_unless_a_mask_breaks_there():
    from autocar.quant.evidence import mask_gap

    narrowed = tube(0.5)
    masks = [render_mask(narrowed, AP) > 0, render_mask(narrowed, LAO) > 0]
    per_view = np.tile(narrowed.radii, (2, 1))
    out = confirm_stenoses(measurements(narrowed), narrowed, masks, [AP, LAO], per_view_radii=per_view,
                           min_views_measured=1)
    assert len(out["stenoses"]) == 1
    # No view's profile fit read the lesion's core (overlaps, failed fits): the finding's MLD would be
    # the mask's radius under another name.
    blind = per_view.copy()
    z = narrowed.nodes[:, 2]
    blind[:, np.abs(z) < 1.5] = np.nan
    out = confirm_stenoses(measurements(narrowed), narrowed, masks, [AP, LAO], per_view_radii=blind,
                           min_views_measured=1)
    assert out["stenoses"] == [] and "in 0 view(s), 1 needed" in out["withheld_stenoses"][0]["reason"]
    assert len(confirm_stenoses(measurements(narrowed), narrowed, masks, [AP, LAO], per_view_radii=blind)[
        "stenoses"]) == 1  # the rule is off by default
    # View A's mask breaks at the lesion (a lumen too narrow for the segmenter): that view saw it.
    broken = [masks[0].copy(), masks[1]]
    rc, _ = AP.project(narrowed.nodes[np.abs(z) < 1.5])
    broken[0][int(rc[:, 0].min()) - 2:int(rc[:, 0].max()) + 3, :] = False
    arc = z + 30.0
    at = int(np.argmin(np.abs(z)))
    from autocar.graph.extract import radii_per_view

    mask_mm = radii_per_view(narrowed, broken, [AP, LAO])
    assert mask_gap(mask_mm[0], arc, at, 6.0) and not mask_gap(mask_mm[1], arc, at, 6.0)
    out = confirm_stenoses(measurements(narrowed), narrowed, broken, [AP, LAO], per_view_radii=blind,
                           min_views_measured=1)
    assert len(out["stenoses"]) == 1


def test_resolution_widens_each_finding_by_pixels_at_its_node():
    from autocar.quant.evidence import RESOLUTION_SD_PX, with_resolution

    narrowed = tube(0.5)
    meas = measurements(narrowed)
    meas["stenoses"][0].update(minimal_diameter_mm=1.5, reference_diameter_mm=3.0,
                               uncertainty={"minimal_diameter_mm": 0.03, "reference_diameter_mm": 0.04,
                                            "diameter_stenosis_percent": 1.2})
    out = with_resolution(meas, narrowed, [AP, LAO], "grey profiles")
    # The lesion sits at the isocentre: a 0.3 mm detector pixel is 0.3 * 750 / 1000 mm there.
    px = 0.3 * 750.0 / 1000.0
    k_mld, k_ref = RESOLUTION_SD_PX["grey profiles"]
    unc = out["stenoses"][0]["uncertainty"]
    assert unc["minimal_diameter_mm"] == pytest.approx(np.hypot(0.03, k_mld * px), abs=1e-3)
    assert unc["reference_diameter_mm"] == pytest.approx(np.hypot(0.04, k_ref * px), abs=1e-3)
    expect = 100 * np.hypot(unc["minimal_diameter_mm"] / 3.0, 1.5 * unc["reference_diameter_mm"] / 9.0)
    assert unc["diameter_stenosis_percent"] == pytest.approx(expect, abs=0.03)  # from the unrounded SDs
    assert meas["stenoses"][0]["uncertainty"]["minimal_diameter_mm"] == 0.03  # the input is not changed
