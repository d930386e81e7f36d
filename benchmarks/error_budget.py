"""Error budget of the static reconstruction: F1 of each stage with the stage before it replaced by the truth.

One synchronised frame pair per case, clean vessel masks, clinical view pairs
drawn as ``autocar synth`` draws them. Two sets, neither used in training:

- ``synthetic``: the project's generated trees, seeds 2,000,000 + i (left and
  right alternating);
- ``real``: real coronary anatomy from CT, the left then the right trees of
  ``../shared/data/asoca-centerlines`` Normal_16-20 (seeds 2,100,000 + i draw
  the poses; skipped when the folder is absent).

Stages (all from the same masks and geometry; F1 / precision / recall of the
centre line within 1 mm, mean distance mm):

=================  ===========================================================
hull-graph         no network: the two-view hull skeletonised, with the
                   default ghost pruning, gap bridging and refinement
network-raw        the shipped network's voxels skeletonised, nothing after
default            the shipped pipeline (network, completion from the hull,
                   ghost pruning, bridging, refinement)
oracle-voxels-raw  a PERFECT voxel classifier (hull voxels inside the true
                   lumen + 0.25 mm), skeletonised, nothing after: what the
                   network could reach
oracle-voxels      the perfect classifier through the default post-processing
branch-oracle      the candidate branches of network-raw's graph and of the
                   hull's graph, each kept only when more than half of it lies
                   within 1 mm of the truth, joined: what choosing among
                   today's candidate branches could reach
=================  ===========================================================

Each case is also put in its view-pair class (RAO/LAO x CRA/CAU of each view,
sorted), and the means are printed per set and per class.

Run (about 2 min for the default 6 + 10 cases on 2 cores):

    python benchmarks/error_budget.py
    python benchmarks/error_budget.py --cases 20 --real-cases 10 --json budget.json
    python benchmarks/error_budget.py --model runs/static_real/model.pt   # other weights
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from autocar.graph.extract import extract_graph
from autocar.graph.ghost_score import branch_labels
from autocar.graph.paths import edges_of, join_graphs, subgraph
from autocar.pipeline.static import ReconstructConfig, reconstruct_pair
from autocar.sbp.carve import SBPConfig, carve
from autocar.synth.cases import SynthCaseConfig, synthesize_case

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dynamic import add_budget_options, benchmark_jobs, budget_scores, network  # noqa: E402

STAGES = ("hull-graph", "network-raw", "default", "oracle-voxels-raw", "oracle-voxels", "branch-oracle")
RAW = ReconstructConfig(prune_ghosts=False, complete_from_hull=False, refine_centerline=False)


class OracleNetwork:
    """Stands in for the network: logit +10 for hull voxels inside the true lumen (+ ``margin_mm``),
    -10 elsewhere. Called as the network is, ``(distance maps, hull, views) -> (logits, None)``."""

    def __init__(self, truth, margin_mm: float = 0.25) -> None:
        pts, rad, _ = truth.sample_segments(0.25)
        self._tree, self._radius, self.margin_mm = cKDTree(pts), rad, margin_mm

    def __call__(self, dist, hull, views):
        d, j = self._tree.query(np.asarray(hull.centers_mm, dtype=np.float64))
        inside = d - self._radius[j] <= self.margin_mm
        return torch.as_tensor(np.where(inside, 10.0, -10.0), dtype=torch.float32), None


def view_class(view) -> str:
    return ("LAO" if view.primary_deg >= 0 else "RAO") + "-" + ("CRA" if view.secondary_deg >= 0 else "CAU")


def branch_oracle(masks, views, model, truth):
    net = reconstruct_pair(masks, views, model, RAW).graph
    hull = carve(masks, views, SBPConfig(margin_px=ReconstructConfig().sbp_margin_px))
    hull_graph = extract_graph(hull, np.ones(len(hull.coords), np.float32), masks, views, threshold=0.5)

    def right(graph):
        if graph.num_edges == 0:
            return graph
        branches = graph.branches()
        ghost, _ = branch_labels(graph, branches, truth)
        return subgraph(graph, edges_of(graph, [b for b, g in zip(branches, ghost) if g == 0]))

    return join_graphs(right(net), right(hull_graph), 2.0)


def run_case(masks, views, model, truth) -> dict:
    out = {}
    oracle = OracleNetwork(truth)
    for stage in STAGES:
        t0 = time.perf_counter()
        if stage == "hull-graph":
            g = reconstruct_pair(masks, views, None).graph
        elif stage == "network-raw":
            g = reconstruct_pair(masks, views, model, RAW).graph
        elif stage == "default":
            g = reconstruct_pair(masks, views, model).graph
        elif stage == "oracle-voxels-raw":
            g = reconstruct_pair(masks, views, oracle, RAW).graph
        elif stage == "oracle-voxels":
            g = reconstruct_pair(masks, views, oracle).graph
        else:
            g = branch_oracle(masks, views, model, truth)
        out[stage] = {**budget_scores(g, truth), "seconds": time.perf_counter() - t0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_options(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = network(args.model)
    jobs = benchmark_jobs(args.cases, args.real_cases, args.data)
    sync = dict(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0))
    print(f"{'set':9s} {'case':28s} {'view pair':17s} " + " ".join(f"{s:>17s}" for s in STAGES))
    rows = []
    for cls, label, seed, side, tree in jobs:
        synth = synthesize_case(SynthCaseConfig(side=side, **sync), rng=seed, tree=tree)
        a, b = synth.case.views[:2]
        views = [a.view, b.view]
        pair = "/".join(sorted(view_class(v) for v in views))
        res = run_case([a.frames[0], b.frames[0]], views, model, synth.truth[0])
        rows.append({"set": cls, "case": label, "views": [a.view.label, b.view.label], "class": pair, **res})
        print(f"{cls:9s} {label:28s} {pair:17s} " + " ".join(f"{res[s]['f1_1mm']:17.3f}" for s in STAGES), flush=True)

    def means(sel: list[dict]) -> dict:
        return {s: {k: float(np.nanmean([r[s][k] for r in sel])) for k in sel[0][s]} for s in STAGES}

    report: dict = {"cases": rows, "sets": {}, "classes": {}}
    print("\nmean F1 @1 mm (P / R) per stage")
    for cls in dict.fromkeys(r["set"] for r in rows):
        m = means([r for r in rows if r["set"] == cls])
        report["sets"][cls] = m
        n = sum(r["set"] == cls for r in rows)
        print(f"{cls:9s} ({n:2d}) " + "  ".join(
            f"{s} {m[s]['f1_1mm']:.3f} ({m[s]['precision_1mm']:.2f}/{m[s]['recall_1mm']:.2f})" for s in STAGES))
        print(f"{'':14s} mean distance mm: " + ", ".join(f"{s} {m[s]['mean_distance_mm']:.2f}" for s in STAGES))
    print("\nmean F1 @1 mm per view-pair class (both sets)")
    for pair in sorted(set(r["class"] for r in rows)):
        sel = [r for r in rows if r["class"] == pair]
        m = means(sel)
        report["classes"][pair] = {"cases": len(sel), **m}
        print(f"{pair:17s} ({len(sel):2d}) " + " ".join(f"{s} {m[s]['f1_1mm']:.3f}" for s in STAGES))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
