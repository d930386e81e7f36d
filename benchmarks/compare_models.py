"""Two sets of static-network weights on the same held-out synthetic pairs, default pipeline.

The pairs are those of ``bench_reconstruct.py`` (seeds 2,000,000 + i, left and right trees
alternating, one stenosis, one frame): once weakly synchronised as ``autocar synth`` makes them
(view B lags 2-8 % of the cycle and is recorded 3-8 s later) and once perfectly synchronised.
Printed per set: mean F1 @ 1 mm of each model and on how many pairs the candidate beats the
baseline. Use it with ``error_budget.py --model`` (real CT trees) before shipping new weights.

Run (about 4 min on 2 cores for 20 + 20 pairs):
    python benchmarks/compare_models.py training/static_real_2026-12-07/model.pt [--baseline W] [--cases 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from autocar.evaluation.metrics import centerline_scores
from autocar.net.train import load_model
from autocar.pipeline.static import default_model, reconstruct_pair
from autocar.synth.cases import SynthCaseConfig, synthesize_case

SEED0 = 2_000_000
SETS = {"weak": {}, "sync": {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("candidate", type=Path, help="model.pt of autocar train")
    ap.add_argument("--baseline", type=Path, default=None, help="default: the shipped weights")
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {"baseline": load_model(args.baseline) if args.baseline else default_model(),
              "candidate": load_model(args.candidate)}
    for name, extra in SETS.items():
        f1 = {k: [] for k in models}
        for i in range(args.cases):
            synth = synthesize_case(SynthCaseConfig(side="left" if i % 2 == 0 else "right", frames=1, n_stenoses=1,
                                                    **extra), rng=SEED0 + i)
            a, b = synth.case.views
            for k, model in models.items():
                g = reconstruct_pair([a.frames[0] > 0, b.frames[0] > 0], [a.view, b.view], model).graph
                f1[k].append(centerline_scores(g, synth.truth[0]).f1_1mm if g.num_edges else 0.0)
        base, cand = np.array(f1["baseline"]), np.array(f1["candidate"])
        print(f"{name}: F1@1mm baseline {base.mean():.3f}, candidate {cand.mean():.3f} "
              f"(ratio {cand.mean() / base.mean():.3f}); candidate better on {int((cand > base).sum())}/{len(base)}",
              flush=True)


if __name__ == "__main__":
    main()
