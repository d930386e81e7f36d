"""Do the quality flags catch wrong results and spare right ones?

For every case of the error budget (held-out synthetic trees, seeds 2,000,000 + i, and the real
CT trees Normal_16-20 left and right, seeds 2,100,000 + i; one synchronised pair of clean masks)
the default static reconstruction (shipped network) is made three ways and scored by
:func:`autocar.evaluation.quality.quality_signals` (no truth) and against the 3D truth:

- ``right``: the pair as it is;
- ``pose 3deg/5mm``: view B's true pose turned by 3 deg and shifted by 5 mm (random axis and
  direction), the pipeline told the nominal pose, no pairing check: a wrong tree;
- ``B mirrored``: view B's mask stored mirrored left-right, no pairing check: a wrong tree.

Printed per condition: how many results are flagged, their mean F1 @1 mm, and the mean F1 of
the flagged and unflagged ones; and which flags fired. A good flag fires on the wrong trees and
not on the right ones. (The pairing check itself, which stops mirrored runs before this point,
is measured by ``bench_calibration.py``.)

Run (about 3 min on 2 cores): ``python benchmarks/bench_quality.py [--cases 6] [--real-cases 10]``
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from autocar.evaluation.metrics import centerline_scores
from autocar.evaluation.quality import quality_signals
from autocar.pipeline.static import default_model, reconstruct_pair
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calibration import random_motion  # noqa: E402
from bench_dynamic import benchmark_jobs  # noqa: E402

CONDITIONS = ("right", "pose 3deg/5mm", "B mirrored")


def flag_kind(flag: str) -> str:
    """A short name of a flag sentence."""
    for key, name in (("explains too little", "coverage"), ("pieces", "pieces"), ("range of one", "length"),
                      ("tracking", "motion")):
        if key in flag:
            return name
    return "pairing"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--real-cases", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = default_model()
    sync = dict(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0))
    rows = {c: [] for c in CONDITIONS}
    for cls, label, seed, side, tree in benchmark_jobs(args.cases, args.real_cases, args.data):
        synth = synthesize_case(SynthCaseConfig(side=side, **sync), rng=seed, tree=tree)
        a, b = synth.case.views[:2]
        views, truth = [a.view, b.view], synth.truth[0]
        ma, mb = a.frames[0] > 0, b.frames[0] > 0
        rot, shift = random_motion(np.random.default_rng(seed + 1), 3.0, 5.0)
        inputs = {"right": [ma, mb],
                  "pose 3deg/5mm": [ma, render_mask(truth.transformed(lambda p: p @ rot.T + shift), views[1]) > 0],
                  "B mirrored": [ma, mb[:, ::-1]]}
        cells = []
        for cond, masks in inputs.items():
            g = reconstruct_pair(masks, views, model).graph
            f1 = centerline_scores(g, truth).f1_1mm if g.num_edges else 0.0
            rep = quality_signals(g, views, masks)
            rows[cond].append((f1, [flag_kind(f) for f in rep.flags]))
            cells.append(f"{cond} F1 {f1:.3f} flags {','.join(flag_kind(f) for f in rep.flags) or '-'}")
        print(f"{cls:9s} {label:28s} " + " | ".join(cells), flush=True)
    print()
    for cond, got in rows.items():
        f1 = np.array([g[0] for g in got])
        flagged = np.array([bool(g[1]) for g in got])
        kinds = Counter(k for g in got for k in set(g[1]))
        mf = f"{f1[flagged].mean():.3f}" if flagged.any() else "-"
        mu = f"{f1[~flagged].mean():.3f}" if (~flagged).any() else "-"
        print(f"{cond:14s} flagged {int(flagged.sum())}/{len(got)}; F1 @1 mm {f1.mean():.3f} (flagged {mf}, "
              f"unflagged {mu}); flags: " + (", ".join(f"{k} {v}" for k, v in kinds.most_common()) or "none"))


if __name__ == "__main__":
    main()
