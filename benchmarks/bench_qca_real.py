"""False stenoses on healthy real trees: where the invented lesions come from.

The 10 real coronary trees of ``../shared/data/asoca-centerlines`` (Normal_16-20, left and
right; ASOCA "Normal" cases: no lesion is known, and none is planted) are each seen in one
synchronised clinical view pair (seeds 2,100,000 + i, as ``error_budget.py``). Their CT radii
(maximum inscribed sphere) dip by 40-50 % in places, away from any junction; with
``--healthy-sigma S`` (default 8 mm) every unbranched path's radii are replaced by their
Gaussian smoothing over S mm of arc, so the tree that is rendered and scored is healthy by
construction (0: the CT radii as they are). The trees are measured by
:func:`autocar.quant.measure` three ways:

- ``truth``: the true tree itself (CT centre line and CT radii): what the measurement code
  reads on real anatomy with no reconstruction error;
- ``mask radii``: the true centre line with its radii measured on the masks as the pipeline
  measures them (:func:`autocar.graph.extract.radii_from_masks`): the radius measurement alone;
- ``geometry``: the reconstructed centre line (shipped pipeline, clean masks) with every
  node's radius taken from the nearest true node: reconstruction errors of position and
  topology only;
- ``reconstructed``: the reconstruction as a user gets it (radii measured on the masks);
- ``..., both views``: what ``autocar reconstruct`` reports from masks
  (:func:`autocar.quant.evidence.measure_with_evidence`): radii where another vessel overlaps in
  every view bridged along the vessel (:func:`autocar.quant.overlaps.bridge_overlaps`), findings kept
  only when both views' masks show the narrowing (:func:`autocar.quant.evidence.confirm_stenoses`);
- ``grey radii``: the true centre line with its radii measured in grey angiograms of the same
  frame (``render_angiogram`` with catheter, background and noise;
  :func:`autocar.quant.lumen.lumen_radii`), every finding;
- ``reconstructed, both views + grey``: what ``autocar reconstruct`` reports from angiograms: the
  reconstruction's findings kept when both views' masks and the grey profiles show them
  (:func:`autocar.quant.evidence.measure_with_evidence`).

Prints, per tree and in total, the stenosis findings >= 40 % and >= 30 % diameter (every
one is false: the trees are healthy) and, for the reconstruction, the centre-line F1 @1 mm.
The issue-27 target is at most 0.1 findings >= 40 % per healthy tree from masks, 0.3 from grey angiograms.

Run (about 1 min on 2 cores): ``python benchmarks/bench_qca_real.py [--trees 10]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from autocar.evaluation.metrics import centerline_scores
from autocar.geometry.centerline import CenterlineGraph
from autocar.pipeline.static import default_model, reconstruct_pair
from autocar.quant import measure
from autocar.quant.evidence import measure_with_evidence
from autocar.quant.lumen import lumen_radii
from autocar.synth.angiogram import render_angiogram
from autocar.synth.cases import SynthCaseConfig, synthesize_case

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dynamic import REAL_SEED0, real_trees  # noqa: E402


def findings(graph: CenterlineGraph, views, side: str, masks=None, images=None) -> list[float]:
    """The %DS of every stenosis the measurement reports on ``graph`` (empty when it cannot measure);
    with ``masks``, what ``autocar reconstruct`` reports from masks (overlaps bridged, only what both
    views show: :func:`autocar.quant.evidence.measure_with_evidence`); with ``images`` too, only those the grey profiles also show, measured there (what ``autocar
    reconstruct`` reports from angiograms, :func:`autocar.quant.evidence.measure_with_evidence`)."""
    if graph.num_nodes < 2:
        return []
    try:
        if masks is not None:
            m = measure_with_evidence(graph, views, side=side, masks=masks, images=images)
        else:
            m = measure(graph, views, side=side, optimal_views=0)
    except ValueError:  # a graph the measurement refuses (e.g. a cycle) reports nothing
        return []
    return [float(s["diameter_stenosis_percent"]) for s in m["stenoses"]]


def healthy(tree, sigma_mm: float):
    """``tree`` (a SynthTree) with each unbranched path's radii smoothed over ``sigma_mm`` of arc."""
    import dataclasses

    from autocar.quant.profiles import arc_length, smooth_profile

    if sigma_mm <= 0:
        return tree
    g = tree.graph
    total = np.zeros(g.num_nodes)
    count = np.zeros(g.num_nodes)
    for path in g.branches():
        if len(path) < 2:
            continue
        smooth = smooth_profile(arc_length(g.nodes[path]), g.radii[path], sigma_mm)
        np.add.at(total, path, smooth)  # junction nodes average the paths that meet there
        np.add.at(count, path, 1.0)
    radii = np.where(count > 0, total / np.maximum(count, 1.0), g.radii)
    return dataclasses.replace(tree, graph=g.with_nodes(g.nodes, radii))


def with_true_radii(graph: CenterlineGraph, truth: CenterlineGraph) -> CenterlineGraph:
    pts, rad, _ = truth.sample_segments(0.25)
    _, j = cKDTree(pts).query(graph.nodes)
    return graph.with_nodes(graph.nodes, rad[j])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--healthy-sigma", type=float, default=8.0,
                    help="smooth each path's CT radii over this many mm of arc (0: the CT radii as they are)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    trees = [(name, healthy(tree, args.healthy_sigma)) for name, tree in real_trees(args.data)[: args.trees]]
    if not trees:
        raise SystemExit(f"no real trees: {args.data / 'asoca-centerlines'} is absent")
    model = default_model()
    from autocar.graph.extract import radii_from_masks

    totals = {k: [0, 0] for k in ("truth", "mask radii", "geometry", "reconstructed", "mask radii, both views",
                                  "reconstructed, both views", "grey radii", "reconstructed, both views + grey")}
    f1s = []
    print(f"{'tree':22s} {'truth':>8s} {'mask radii':>11s} {'geometry':>9s} {'reconstructed':>14s} {'F1@1mm':>7s}  largest"
          "   (findings >= 40 % / >= 30 %)")
    for i, (name, tree) in enumerate(trees):
        sc = synthesize_case(SynthCaseConfig(side=tree.side, frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)),
                             rng=REAL_SEED0 + i, tree=tree)
        a, b = sc.case.views[:2]
        views, truth = [a.view, b.view], sc.truth[0]
        rec = reconstruct_pair([a.frames[0], b.frames[0]], views, model).graph
        masks = [a.frames[0], b.frames[0]]
        mask_radii = truth.with_nodes(truth.nodes, radii_from_masks(truth, masks, views))
        # Grey angiograms of the same frame (catheter, background, noise; seeded per tree and view).
        images = [render_angiogram(truth, v, rng=REAL_SEED0 + 1000 * i + k, catheter=True)
                  for k, v in enumerate(views)]
        grey_radii = truth.with_nodes(truth.nodes, lumen_radii(truth, images, views).filled(mask_radii.radii))
        found = {"truth": findings(truth, views, tree.side),
                 "mask radii": findings(mask_radii, views, tree.side),
                 "geometry": findings(with_true_radii(rec, truth), views, tree.side),
                 "reconstructed": findings(rec, views, tree.side),
                 "mask radii, both views": findings(mask_radii, views, tree.side, masks),
                 "reconstructed, both views": findings(rec, views, tree.side, masks),
                 "grey radii": findings(grey_radii, views, tree.side),
                 "reconstructed, both views + grey": findings(rec, views, tree.side, masks, images)}
        f1 = centerline_scores(rec, truth).f1_1mm if rec.num_edges else 0.0
        f1s.append(f1)
        cells = []
        for k, v in found.items():
            n40, n30 = sum(x >= 40 for x in v), sum(x >= 30 for x in v)
            totals[k][0] += n40
            totals[k][1] += n30
            cells.append(f"{n40:d} / {n30:d}")
        largest = max(found["reconstructed"], default=0.0)
        print(f"{name:22s} {cells[0]:>8s} {cells[1]:>11s} {cells[2]:>9s} {cells[3]:>14s} {f1:7.3f}  {largest:.0f} %"
              f"   both views: mask radii {cells[4]}, reconstructed {cells[5]}; grey radii {cells[6]}, "
              f"reconstructed + grey {cells[7]}", flush=True)
    n = len(trees)
    print(f"\nfalse stenoses per healthy tree (>= 40 % / >= 30 %), {n} trees, mean F1 @1 mm {np.mean(f1s):.3f}:")
    for k, (n40, n30) in totals.items():
        print(f"  {k:34s} {n40 / n:.2f} / {n30 / n:.2f}")


if __name__ == "__main__":
    main()
