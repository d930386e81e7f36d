"""Choose the centre-line refinement's options on tuning pairs, apart from the benchmark's.

Synthetic pairs of seeds 1,500,000+i (left/right alternating, clinical poses;
never the held-out 2,000,000+ of ``bench_reconstruct.py``), once perfectly
synchronised and once weakly synchronised, are reconstructed by the default
pipeline without its last step (``ReconstructConfig(refine_centerline=False)``);
each result is then refined (:func:`autocar.graph.refine.refine_centerline`) with
the shipped options and with each variant, on the masks the reconstruction used
(view B warped by the epipolar alignment when it was). Prints F1 @1 mm, mean
distance and HD95 (mm) per variant, and the ratio of each to the unrefined
result measured in the same run.

    python benchmarks/tune_refine.py                 # 10 + 10 pairs (~2 min on 2 cores)
    python benchmarks/tune_refine.py --pairs 20 --variant "bending_weight=3" --variant "max_shift_mm=1.5"
    python benchmarks/tune_refine.py --model runs/static/model.pt --variant ""   # another network, shipped options only
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from autocar.graph.refine import RefineConfig, refine_centerline
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.sbp.epipolar import warp_mask
from autocar.synth.cases import SynthCaseConfig, synthesize_case

SEED0 = 1_500_000
DEFAULT_VARIANTS = ("max_width_ratio=1.5", "search_px=16", "bending_weight=0.3", "bending_weight=3",
                    "prior_weight=0.3", "max_shift_mm=1.5", "iterations=8")


def parse_variant(text: str) -> tuple[str, RefineConfig]:
    """``"name=value,name=value"`` -> (label, RefineConfig with those fields changed)."""
    changes = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in RefineConfig.__dataclass_fields__:
            raise SystemExit(f"--variant {text!r}: {key!r} is not a RefineConfig field")
        changes[key] = type(getattr(RefineConfig(), key))(float(value))
    return text, replace(RefineConfig(), **changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10, help="pairs per synchronisation")
    ap.add_argument("--first", type=int, default=0, help="first pair index (seed 1,500,000 + first)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=str, default=None, help="model.pt from autocar train (default: the shipped one)")
    ap.add_argument("--variant", action="append", default=None,
                    help="RefineConfig changes, e.g. 'bending_weight=3,prior_weight=0.1' (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        from autocar.net.train import load_model

        model = load_model(args.model)
    else:
        model = default_model()
    variants = [("unrefined", None), ("shipped", RefineConfig())]
    chosen = DEFAULT_VARIANTS if args.variant is None else args.variant
    variants += [parse_variant(v) for v in chosen if v]  # (--variant "": the shipped options only)
    for label, sync in (("synchronised", {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)}),
                        ("weakly synchronised", {})):
        scores = {name: [] for name, _ in variants}
        seconds = []
        for i in range(args.first, args.first + args.pairs):
            side = "left" if i % 2 == 0 else "right"
            sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, **sync), rng=SEED0 + i)
            a, b = sc.case.views
            masks, views = [a.frames[0], b.frames[0]], [a.view, b.view]
            res = reconstruct_pair(masks, views, model,
                                   ReconstructConfig(threads=args.threads, refine_centerline=False))
            used = [masks[0], masks[1] if res.view_warp is None else warp_mask(masks[1], res.view_warp)]
            for name, cfg in variants:
                graph = res.graph
                if cfg is not None and graph.num_edges:
                    t = time.perf_counter()
                    graph = refine_centerline(graph, used, views, cfg)[0]
                    if name == "shipped":
                        seconds.append(time.perf_counter() - t)
                if graph.num_nodes == 0:
                    scores[name].append((0.0, np.nan, np.nan))
                    continue
                s = centerline_scores(graph, sc.truth[0])
                scores[name].append((s.f1_1mm, s.mean_distance_mm, s.hd95_mm))
        print(f"\n{label}, {args.pairs} tuning pairs (seeds {SEED0 + args.first}+); refinement {np.mean(seconds):.2f} s/pair")
        print(f"{'variant':>36s} {'F1@1mm':>8s} {'mean mm':>8s} {'HD95 mm':>8s}   ratios to unrefined")
        base = np.nanmean(scores["unrefined"], axis=0)
        for name, _ in variants:
            m = np.nanmean(scores[name], axis=0)
            r = m / base
            print(f"{name:>36s} {m[0]:8.3f} {m[1]:8.3f} {m[2]:8.2f}   {r[0]:.3f}x {r[1]:.3f}x {r[2]:.3f}x")


if __name__ == "__main__":
    main()
