"""Each known source of invented stenoses, planted on a healthy vessel: none may be reported there.

The scenes are rendered (vessel masks and grey angiograms, 0.25 mm pixels at the isocentre)
and measured the way ``autocar reconstruct`` measures a frame
(:func:`autocar.quant.evidence.measure_with_evidence`), from the masks alone and from masks and
grey images. ``benchmarks/bench_qca_real.py`` counts the same on whole reconstructed real trees.
"""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.graph.extract import radii_from_masks, radii_per_view
from autocar.quant import measure
from autocar.quant.evidence import measure_with_evidence
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask

PX_ISO = 0.25  # mm per pixel at the isocentre
VIEWS = [CArmView(0.0, 0.0, 1000.0, 750.0, (PX_ISO * 1000 / 750,) * 2, 384, 384),  # AP: looks along y
         CArmView(0.0, 40.0, 1000.0, 750.0, (PX_ISO * 1000 / 750,) * 2, 384, 384)]


def polyline(points, radii, step: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (K, 3) every ``step`` mm along the corners ``points`` and their radii, linear between."""
    pts, rad = np.asarray(points, float), np.asarray(radii, float)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    t = np.arange(0.0, s[-1] + 1e-9, step)
    return np.stack([np.interp(t, s, pts[:, k]) for k in range(3)], axis=1), np.interp(t, s, rad)


def tree(*paths) -> CenterlineGraph:
    """A tree of polylines ``(points, radii)``; each path after the first starts at the existing node
    nearest its first point."""
    nodes, radii, edges = np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64)
    for k, (points, rad) in enumerate(paths):
        p, r = polyline(points, rad)
        n = len(nodes)
        if k:
            attach = int(np.argmin(np.linalg.norm(nodes - p[0], axis=1)))
            p, r = p[1:], r[1:]
            edges = np.vstack([edges, [[attach, n]]])
        idx = np.arange(n, n + len(p))
        nodes, radii = np.vstack([nodes, p]), np.concatenate([radii, r])
        edges = np.vstack([edges, np.stack([idx[:-1], idx[1:]], axis=1)])
    return CenterlineGraph(nodes, radii, edges)


MAIN = ([(-35, 0, 0), (0, 0, 0), (35, 0, 0)], [1.75, 1.68, 1.5])
SIDE_BRANCH = ([(0, 0, 0), (20, 5, -24), (30, 5, -36)], [1.1, 1.05, 1.0])  # down, as a diagonal runs


def findings(graph: CenterlineGraph, scene: CenterlineGraph, *, grey: bool, seed: int = 31) -> list[dict]:
    """What ``autocar reconstruct`` reports on ``graph`` (radii from the masks) when the frame shows
    ``scene``: masks (and grey angiograms) rendered from ``scene``. No vessel of these scenes is
    taken for a catheter (which would leave it unmeasured)."""
    masks = [render_mask(scene, v) for v in VIEWS]
    images = [render_angiogram(scene, v, rng=seed + k, contrast=1.0) for k, v in enumerate(VIEWS)] if grey else None
    measured = graph.with_nodes(graph.nodes, radii_from_masks(graph, masks, VIEWS))
    out = measure_with_evidence(measured, VIEWS, masks=masks, images=images)
    assert out["catheter"] is None
    return out["stenoses"]


@pytest.mark.parametrize("grey", [False, True], ids=["masks", "masks+grey"])
def test_a_vessel_crossing_in_one_view_is_not_a_stenosis(grey):
    # A branch that leaves the main vessel at x = -30 and crosses over it at x = 0, 15 mm in front
    # in the AP view; in the other view the two stay apart. The centre line carries 0.4 mm of
    # reconstruction noise.
    scene = tree(([(-35, 0, 0), (35, 0, 0)], [1.5, 1.4]),
                 ([(-30, 0, 0), (-12, -15, -5), (0, -15, -5), (0, -15, 25)], [1.2, 1.1, 1.1, 1.0]))
    noisy = scene.with_nodes(scene.nodes + np.random.default_rng(0).normal(0.0, 0.4, scene.nodes.shape),
                             scene.radii)
    # The trap is real: read in the AP view's mask alone, the crossing invents a lesion.
    masks = [render_mask(scene, v) for v in VIEWS]
    ap = radii_per_view(noisy, masks, VIEWS)[0]
    ap_only = noisy.with_nodes(noisy.nodes, np.where(np.isfinite(ap), ap, radii_from_masks(noisy, masks, VIEWS)))
    assert max(s["diameter_stenosis_percent"] for s in measure(ap_only, VIEWS, optimal_views=0)["stenoses"]) >= 40
    assert findings(noisy, scene, grey=grey) == []


@pytest.mark.parametrize("grey", [False, True], ids=["masks", "masks+grey"])
def test_a_branch_ostium_is_not_a_stenosis(grey):
    # The lumen steps down at the junction (Murray's law) and widens into the side branch's mouth.
    scene = tree(MAIN, SIDE_BRANCH)
    assert findings(scene, scene, grey=grey) == []
    # The side branch missing from the tree (not reconstructed): its mouth widens the masks next
    # to the main vessel, and the main vessel still reads healthy.
    assert findings(tree(MAIN), scene, grey=grey) == []


@pytest.mark.parametrize("grey", [False, True], ids=["masks", "masks+grey"])
def test_a_foreshortened_stretch_is_not_a_stenosis(grey):
    # 16 mm of the vessel run within 15 degrees of the AP view's rays: there it projects to a blob.
    scene = tree(([(-35, 0, 0), (-8, 0, 0), (-5, -4, 0), (-2, -16, 0), (1, -20, 0), (30, -20, 0)],
                  [1.5, 1.5, 1.5, 1.45, 1.45, 1.4]))
    assert findings(scene, scene, grey=grey) == []


@pytest.mark.parametrize("grey", [False, True], ids=["masks", "masks+grey"])
def test_a_catheter_tip_at_the_ostium_is_not_a_stenosis(grey):
    # The reconstructed tree goes on past the ostium into the guiding catheter (lumen 1.8 mm),
    # which the masks show too, as a segmenter does.
    main = ([(-30, 0, 0), (0, 0, 0), (35, 0, -5)], [1.75, 1.7, 1.6])
    scene = tree(main, ([(0, 0, 0), (20, 6, -25)], [1.2, 1.0]), ([(-30, 0, 0), (-40, 2, 8), (-44, 2, 45)], [0.9] * 3))
    masks = [render_mask(scene, v) for v in VIEWS]
    measured = scene.with_nodes(scene.nodes, radii_from_masks(scene, masks, VIEWS))
    out = measure_with_evidence(measured, VIEWS, masks=masks,
                                images=[render_angiogram(scene, v, rng=41 + k) for k, v in enumerate(VIEWS)]
                                if grey else None)
    assert out["catheter"] is not None and out["catheter"]["length_mm"] > 40
    assert out["stenoses"] == []
