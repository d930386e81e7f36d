"""Where the static reconstruction's error is: misplaced points or wrong branches.

On synchronised synthetic tuning pairs (seeds 1,500,000 + i, as tune_prune.py),
prints for the default pipeline:

- the share of the predicted centre line (precision side) and of the true
  centre line (recall side) whose distance to the other lies in 0-0.5, 0.5-1,
  1-1.5, 1.5-2, 2-4 and > 4 mm (samples every 0.25 mm): > 4 mm is ghosts and
  missed vessels, 1-2 mm misplaced points;
- a branch-level oracle: the branches of the network's graph and of the raw
  hull's graph that have more than half of their points within 1 mm of the
  truth, joined (``autocar.graph.prune`` helpers), against the default's
  precision / recall @1 mm. It bounds what choosing among today's candidate
  branches could give.

Run: ``python benchmarks/diagnose_static.py [--cases 6]`` (about 30 s on 2 cores).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.spatial import cKDTree

from autocar.graph.extract import extract_graph
from autocar.graph.ghost_score import branch_labels
from autocar.graph.paths import edges_of, join_graphs, subgraph
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.sbp.carve import SBPConfig, carve
from autocar.synth.cases import SynthCaseConfig, synthesize_case

TUNING_SEED_BASE = 1_500_000
BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 4.0, np.inf)


def _split(a, b) -> np.ndarray:
    """Share of graph a's samples in each distance bin to graph b."""
    pa, pb = a.sample_segments(0.25)[0], b.sample_segments(0.25)[0]
    return np.histogram(cKDTree(pb).query(pa)[0], BINS)[0] / len(pa)


def _oracle(graph, truth):
    branches = graph.branches()
    ghost, _ = branch_labels(graph, branches, truth)
    return subgraph(graph, edges_of(graph, [b for b, g in zip(branches, ghost) if g == 0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = default_model()
    head = " ".join(f"{f'{lo:g}-{hi:g}':>7s}" for lo, hi in zip(BINS[:-1], BINS[1:]))
    print(f"{'pair':<12s} {'side':<10s} {head}   default P/R @1mm   oracle P/R @1mm")
    splits = {"predicted": [], "true": []}
    for i in range(args.cases):
        side = "left" if i % 2 == 0 else "right"
        sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, lag_range=(0.0, 0.0),
                                             view_b_delay_s=(0.0, 0.0)), rng=TUNING_SEED_BASE + i)
        a, b = sc.case.views
        masks, views, truth = [a.frames[0], b.frames[0]], [a.view, b.view], sc.truth[0]
        g = reconstruct_pair(masks, views, model).graph
        net = reconstruct_pair(masks, views, model, ReconstructConfig(prune_ghosts=False, complete_from_hull=False)).graph
        hull = carve(masks, views, SBPConfig(margin_px=ReconstructConfig().sbp_margin_px))
        hull_graph = extract_graph(hull, np.ones(len(hull.coords), np.float32), masks, views, threshold=0.5)
        oracle = join_graphs(_oracle(net, truth), _oracle(hull_graph, truth), 2.0)
        s, o = centerline_scores(g, truth), centerline_scores(oracle, truth)
        for name, x in (("predicted", _split(g, truth)), ("true", _split(truth, g))):
            splits[name].append(x)
            cols = " ".join(f"{v:7.3f}" for v in x)
            tail = (f"   {s.precision_1mm:.2f} / {s.recall_1mm:.2f}        {o.precision_1mm:.2f} / {o.recall_1mm:.2f}"
                    if name == "predicted" else "")
            print(f"{TUNING_SEED_BASE + i:<12d} {name:<10s} {cols}{tail}")
    for name, rows in splits.items():
        print(f"{'mean':<12s} {name:<10s} " + " ".join(f"{v:7.3f}" for v in np.mean(rows, axis=0)))


if __name__ == "__main__":
    main()
