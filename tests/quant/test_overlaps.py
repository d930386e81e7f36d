"""Radii read where another vessel overlaps in every view are bridged, not read as a bulge."""

from __future__ import annotations

import numpy as np

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.graph.extract import radii_from_masks
from autocar.quant import measure
from autocar.quant.evidence import confirm_stenoses, measure_with_evidence
from autocar.quant.overlaps import bridge_overlaps, overlapped_nodes
from autocar.synth.render import render_mask

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 384, 384)  # looks along y
LAO = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 384, 384)  # looks along x
Z = np.arange(-30.0, 30.01, 0.5)
MAIN = CenterlineGraph(np.stack([0 * Z, 0 * Z, Z], axis=1), np.full(len(Z), 1.5),
                       np.stack([np.arange(len(Z) - 1), np.arange(1, len(Z))], axis=1))


def with_crossings(heights, radius: float) -> CenterlineGraph:
    """MAIN and, at each height z, a straight vessel in the plane z from (-10, 30) to (30, -10): it
    passes 14 mm from MAIN yet projects onto it at that height in both views."""
    parts = [MAIN] + [CenterlineGraph([[-10.0, 30.0, z], [30.0, -10.0, z]], [radius, radius], [[0, 1]]).resampled(0.5)
                      for z in heights]
    offsets = np.cumsum([0] + [p.num_nodes for p in parts[:-1]])
    return CenterlineGraph(np.vstack([p.nodes for p in parts]), np.concatenate([p.radii for p in parts]),
                           np.vstack([p.edges + o for p, o in zip(parts, offsets)]))


def test_overlapped_nodes_are_those_another_vessel_projects_onto():
    g = with_crossings([0.0], 1.5)
    n = MAIN.num_nodes
    for view in (AP, LAO):
        hit = overlapped_nodes(g, view)[:n]
        # Centres closer than the two radii (3 mm) plus a pixel (about 0.23 mm at the isocentre).
        assert hit[np.abs(Z) <= 2.5].all() and not hit[np.abs(Z) >= 3.5].any()
    assert not overlapped_nodes(MAIN, AP).any()


def test_a_stretch_overlapped_in_both_views_is_bridged_and_no_longer_invents_a_lesion():
    g = with_crossings([-4.0, 4.0], 2.0)
    masks = [render_mask(g, AP) > 0, render_mask(g, LAO) > 0]
    measured = g.with_nodes(g.nodes, radii_from_masks(g, masks, [AP, LAO]))
    n = MAIN.num_nodes
    clear = float(np.median(measured.radii[:n][np.abs(Z) > 10]))
    # The trap: the two crossings widen both views' masks around z = +-4 mm; the lumen between them,
    # read clear, then sits below a lifted reference.
    assert measured.radii[:n][np.abs(np.abs(Z) - 4.0) < 0.3].min() > 1.3 * clear
    old = confirm_stenoses(measure(measured, [AP, LAO], optimal_views=0), measured, masks, [AP, LAO])
    assert [s for s in old["stenoses"] if s["diameter_stenosis_percent"] >= 30]
    bridged = bridge_overlaps(measured, [AP, LAO])
    assert bridged.bridged[:n][np.abs(np.abs(Z) - 4.0) < 1.0].all()
    assert np.allclose(bridged.radii_mm[:n], clear, atol=0.05)
    out = measure_with_evidence(measured, [AP, LAO], masks=masks)
    assert out["stenoses"] == []
    assert out["diameter_source"]["overlap_bridged_nodes"] == int(bridged.bridged.sum()) > 0


def test_a_path_hidden_from_end_to_end_keeps_its_readings():
    # Seen in the AP view alone, a vessel 20 mm behind MAIN and parallel to it hides all of it.
    behind = CenterlineGraph(MAIN.nodes + [0.0, 20.0, 0.0], MAIN.radii, MAIN.edges)
    g = CenterlineGraph(np.vstack([MAIN.nodes, behind.nodes]), np.concatenate([MAIN.radii, 1.2 * behind.radii]),
                        np.vstack([MAIN.edges, MAIN.edges + MAIN.num_nodes]))
    out = bridge_overlaps(g, [AP])
    assert out.hidden.all() and not out.bridged.any()
    assert np.array_equal(out.radii_mm, g.radii)


def test_a_thick_foreshortened_vessel_does_not_overlap_itself():
    # 4 mm wide, running 37 degrees out of the AP image plane (projected length x 0.8): its nodes
    # 5-6 mm apart project within the sum of their radii, yet they are the same lumen.
    t = np.arange(-30.0, 30.01, 0.5)
    thick = CenterlineGraph(np.stack([0.8 * t, 0.6 * t, 0 * t], axis=1), np.full(len(t), 2.0),
                            np.stack([np.arange(len(t) - 1), np.arange(1, len(t))], axis=1))
    assert not overlapped_nodes(thick, AP).any()
    # A second vessel bent back along it (a hairpin joined at one end) is another part.
    back = thick.nodes[::-1] + [0.0, 8.0, 0.0]  # 8 mm behind it in the AP view
    hairpin = CenterlineGraph(np.vstack([thick.nodes, back]), np.full(2 * len(t), 2.0),
                              np.vstack([thick.edges, thick.edges + len(t), [[len(t) - 1, len(t)]]]))
    assert overlapped_nodes(hairpin, AP)[: len(t) // 2].all()


def test_a_hidden_end_is_not_extrapolated():
    # A crossing over MAIN's last 3 mm in both views: those nodes have no clear node beyond them.
    g = with_crossings([28.5], 1.5)
    masks = [render_mask(g, AP) > 0, render_mask(g, LAO) > 0]
    measured = g.with_nodes(g.nodes, radii_from_masks(g, masks, [AP, LAO]))
    out = bridge_overlaps(measured, [AP, LAO])
    n = MAIN.num_nodes
    assert out.hidden[:n][Z >= 29.0].all() and not out.bridged[:n].any()
    assert np.array_equal(out.radii_mm[:n], measured.radii[:n])
