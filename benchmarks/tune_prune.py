"""How the ghost-pruning and hull-completion settings were chosen, on tuning seeds.

The defaults of :mod:`autocar.graph.prune` and of
:func:`autocar.pipeline.static.reconstruct_pair` (complete from the pruned hull,
``min_new_share`` 0.2, occupancy threshold 0.2) were chosen on synthetic
seeds 1,500,000 + i: never used in training (< 1e6), validation (1e6 + i,
i < 8) or ``bench_reconstruct.py`` (2e6 + i). This script reruns that
comparison with the shipped network and prints, per variant and for
synchronised and weakly synchronised pairs, the mean centre-line precision,
recall, F1 within 1 mm and mean distance (mm):

- ``network-raw``: the network's voxels skeletonised, nothing after;
- ``complete raw hull, ns X``: completed from the hull graph as it is, then pruned;
- ``complete pruned hull, ns X``: completed from the ghost-pruned hull graph, then pruned;
- ``hand-made order``: :func:`reconstruct_pair` with its defaults (both prunings
  remove the redundant branch with the largest width disagreement first);
- ``learned order, remove P>X``: the learned ghost score (:mod:`autocar.graph.ghost_score`)
  orders the prunings and the final one also removes branches scored above X
  (``learned order``: nothing removed for its score alone);
- ``default, threshold T``: :func:`reconstruct_pair` with its defaults at occupancy threshold T.

Run: ``python benchmarks/tune_prune.py [--cases 8] [--only-order] [--scorer S] [--model M]``
(``--only-order``, the four pruning orders only: about 3 min on 2 cores).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from autocar.graph.extract import extract_graph
from autocar.graph.ghost_score import GhostScorer
from autocar.graph.prune import complete_from_hull, prune_redundant_branches
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.sbp.carve import SBPConfig, carve
from autocar.synth.cases import SynthCaseConfig, synthesize_case

TUNING_SEED_BASE = 1_500_000


def _scores(graph, truth) -> tuple[float, float, float, float]:
    if graph.num_nodes == 0:
        return 0.0, 0.0, 0.0, float("nan")
    s = centerline_scores(graph, truth)
    return s.precision_1mm, s.recall_1mm, s.f1_1mm, s.mean_distance_mm


def variants(masks, views, model, truth, scorer=None, only_order=False) -> dict[str, tuple[float, float, float, float]]:
    out = {}
    for name, cfg in (("hand-made order", ReconstructConfig(learned_ghost_order=False)),
                      ("learned order", ReconstructConfig(learned_ghost_order=True)),
                      ("learned order, remove P>0.8", ReconstructConfig(learned_ghost_order=True, max_ghost_probability=0.8)),
                      ("learned order, remove P>0.7", ReconstructConfig(learned_ghost_order=True, max_ghost_probability=0.7))):
        out[name] = _scores(reconstruct_pair(masks, views, model, cfg, scorer=scorer).graph, truth)
    if only_order:
        return out
    raw_cfg = ReconstructConfig(prune_ghosts=False, complete_from_hull=False)
    net = reconstruct_pair(masks, views, model, raw_cfg).graph
    hull = carve(masks, views, SBPConfig(margin_px=raw_cfg.sbp_margin_px))
    hull_graph = extract_graph(hull, np.ones(len(hull.coords), np.float32), masks, views, threshold=0.5)
    pruned_hull, _ = prune_redundant_branches(hull_graph, masks, views)
    out["network-raw"] = _scores(net, truth)
    for name, source in (("raw hull", hull_graph), ("pruned hull", pruned_hull)):
        for ns in (0.2, 0.5):
            done, _ = complete_from_hull(net, source, masks, views, min_new_share=ns)
            out[f"complete {name}, ns {ns}"] = _scores(prune_redundant_branches(done, masks, views)[0], truth)
    for t in (0.35, 0.5):
        out[f"default, threshold {t}"] = _scores(reconstruct_pair(masks, views, model, ReconstructConfig(threshold=t)).graph, truth)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--scorer", help="ghost scorer JSON for the learned order (default: the shipped one)")
    ap.add_argument("--only-order", action="store_true", help="compare only the hand-made and learned orders")
    ap.add_argument("--model", help="static network weights (default: the shipped ones)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.model:
        from autocar.net.train import load_model

        model = load_model(args.model)
    else:
        model = default_model()
    scorer = GhostScorer.load(args.scorer) if args.scorer else None
    for synchronised in (True, False):
        sync = {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)} if synchronised else {}
        rows: dict[str, list] = {}
        for i in range(args.cases):
            side = "left" if i % 2 == 0 else "right"
            sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, **sync), rng=TUNING_SEED_BASE + i)
            a, b = sc.case.views
            for k, v in variants([a.frames[0], b.frames[0]], [a.view, b.view], model, sc.truth[0],
                                 scorer, args.only_order).items():
                rows.setdefault(k, []).append(v)
        print(f"\n{'synchronised' if synchronised else 'weakly synchronised'} pairs, seeds {TUNING_SEED_BASE}+ ({args.cases})")
        print(f"{'variant':<32s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'mean mm':>8s}")
        for k, v in rows.items():
            p, r, f, d = np.nanmean(np.array(v, float), axis=0)
            print(f"{k:<32s} {p:9.3f} {r:7.3f} {f:6.3f} {d:8.2f}")


if __name__ == "__main__":
    main()
