"""End to end from angiograms of several pixel sizes: the U-Net told the pixel size or not.

For each held-out tree (seeds 2,300,000 + i, left / right alternating, synchronised views,
``--frames`` frames, one planted stenosis) both views are rendered as grey angiograms with a
catheter at each isocentre pixel size of ``--spacings`` (a 140 mm field of view: 0.15 mm gives
928 x 928 px), written as an image case and reconstructed by :func:`autocar.pipeline.workflow.run`
(default options, tree side given) twice: ``as is`` (``RunOptions(segment_in_mm=False)``, the
release before) and ``in mm`` (the default: the U-Net adds the wide vessels it finds at 0.4 mm per
pixel, :mod:`autocar.seg2d.segment`). Printed: centre-line F1 @1 mm of every frame against its
truth, per case and mean, and the ratio in mm / as is, in the same run.

Run (about 1 min per case and pixel size on 2 cores):
    python benchmarks/bench_pixel_size.py [--cases 4] [--frames 2] [--spacings 0.15,0.2,0.25]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

from autocar.evaluation.evaluate import evaluate_reconstruction
from autocar.io.case import write_case
from autocar.io.results import Reconstruction, read_reconstruction
from autocar.pipeline.workflow import RunOptions, run
from autocar.synth.angiogram import render_angiogram
from autocar.synth.cases import SynthCaseConfig, synthesize_case

SEED0 = 2_300_000
FIELD_MM = 140.0


def image_case(i: int, iso_mm: float, frames: int):
    """The synthetic case of seed SEED0 + i with both views rendered as angiograms at ``iso_mm``."""
    side = "left" if i % 2 == 0 else "right"
    sc = synthesize_case(SynthCaseConfig(side=side, frames=frames, n_stenoses=1, lag_range=(0, 0),
                                         view_b_delay_s=(0, 0)), rng=SEED0 + i)
    views = []
    for cv in sc.case.views:
        det = iso_mm * cv.view.magnification
        size = int(round(FIELD_MM / iso_mm)) // 16 * 16
        view = cv.view.replace(spacing_mm=(det, det), rows=size, columns=size)
        trees = sc.truth if cv.name == sc.case.views[0].name else sc.truth_b
        images = np.stack([render_angiogram(trees[k], view, rng=100 * i + k, catheter=True)
                           for k in range(cv.num_frames)])
        views.append(dataclasses.replace(cv, view=view, kind="image", frames=images))
    return dataclasses.replace(sc.case, views=tuple(views)), sc, side


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--spacings", default="0.15,0.2,0.25")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_pixel_size-"))
    for iso in (float(x) for x in args.spacings.split(",")):
        f1 = {"as is": [], "in mm": []}
        for i in range(args.cases):
            case, sc, side = image_case(i, iso, args.frames)
            folder = write_case(case, work / f"case_{iso}_{i}")
            cells = []
            for label, in_mm in (("as is", False), ("in mm", True)):
                summary = run(folder, work / f"out_{iso}_{i}_{label.replace(' ', '_')}",
                              RunOptions(tree=side, segment_in_mm=in_mm, report=False, measurements=False,
                                         snapshot=False), progress=False)
                rec = read_reconstruction(summary.out)
                pairs = rec.extra.get("frame_pairs", [[k, k] for k in range(rec.num_frames)])
                truth = Reconstruction(frames=tuple(sc.truth[int(a)] for a, _ in pairs))
                f1[label].append(float(evaluate_reconstruction(rec, truth=truth)["mean"]["f1_1mm"]))
                cells.append(f"{label} {f1[label][-1]:.3f}")
            print(f"{iso:.2f} mm/px case {i} ({side}): " + ", ".join(cells), flush=True)
        a, b = np.mean(f1["as is"]), np.mean(f1["in mm"])
        better = sum(y > x for x, y in zip(f1["as is"], f1["in mm"]))
        print(f"{iso:.2f} mm/px: F1 @1 mm as is {a:.3f}, in mm {b:.3f} (ratio {b / a:.3f}; better on "
              f"{better}/{args.cases})", flush=True)


if __name__ == "__main__":
    main()
