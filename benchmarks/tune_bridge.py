"""How the gap-bridging length (``ReconstructConfig.bridge_gap_mm``) was chosen, on tuning seeds.

For each tuning set (synthetic seeds never used in training, validation or the
benchmarks: 1,500,000 + i weakly synchronised and synchronised, 1,800,000 + i
weakly synchronised; left/right alternating, one frame) every pair is
reconstructed by :func:`autocar.pipeline.static.reconstruct_pair` with the shipped
network and each bridging length (0 = no bridging). Printed per set and
length, means over pairs: centre-line F1 within 1 mm, number of connected
components (the truth is one tree), and how often the ostium that
:func:`autocar.quant.segments.split_segments` picks (side known) lies within
5 mm of the true ostium, with the median of that distance (mm).

Run: ``python benchmarks/tune_bridge.py [--gaps 0,4,8,12] [--cases 16,12,12]``
(about 10 min on 2 cores).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from autocar.evaluation.metrics import centerline_scores
from autocar.quant.segments import split_segments
from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.angiogram import ostium_node

SETS = (("weak 1.5e6+", 1_500_000, False), ("sync 1.5e6+", 1_500_000, True), ("weak 1.8e6+", 1_800_000, False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaps", default="0,4,8,12", help="bridging lengths to compare, mm")
    ap.add_argument("--cases", default="16,12,12", help="pairs per set (weak 1.5e6+, sync 1.5e6+, weak 1.8e6+)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    gaps = [float(x) for x in args.gaps.split(",")]
    counts = [int(x) for x in args.cases.split(",")]
    if len(counts) != len(SETS) or min(counts) < 1 or min(gaps) < 0:
        ap.error("--cases needs three counts >= 1 and --gaps lengths >= 0")
    torch.set_num_threads(args.threads)
    model = default_model()
    print(f"{'set':<12} {'gap mm':>6} {'F1@1':>7} {'pieces':>7} {'ostium<=5mm':>12} {'median mm':>10}")
    for (name, seed0, sync), n in zip(SETS, counts):
        rows: dict[float, dict[str, list[float]]] = {g: {"f1": [], "pieces": [], "ostium": []} for g in gaps}
        for i in range(n):
            side = "left" if i % 2 == 0 else "right"
            kw = dict(lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)) if sync else {}
            sc = synthesize_case(SynthCaseConfig(side=side, frames=1, **kw), rng=seed0 + i)
            a, b = sc.case.views
            truth = sc.truth[0]
            true_ostium = truth.nodes[ostium_node(truth)]
            for gap in gaps:
                g = reconstruct_pair([a.frames[0], b.frames[0]], [a.view, b.view], model,
                                     ReconstructConfig(bridge_gap_mm=gap, threads=args.threads)).graph
                r = rows[gap]
                r["f1"].append(centerline_scores(g, truth).f1_1mm)
                if g.num_edges == 0:
                    r["ostium"].append(np.inf)
                    continue
                r["pieces"].append(float(g.components().max() + 1))
                root = split_segments(g, side=side).roots[0]
                r["ostium"].append(float(np.linalg.norm(g.nodes[root] - true_ostium)))
        for gap in gaps:
            r = rows[gap]
            o = np.asarray(r["ostium"])
            print(f"{name:<12} {gap:>6.0f} {np.mean(r['f1']):>7.4f} {np.mean(r['pieces']):>7.2f} "
                  f"{np.mean(o <= 5.0):>12.3f} {np.median(o):>10.1f}", flush=True)


if __name__ == "__main__":
    main()
