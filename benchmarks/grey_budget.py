"""Error budget of 2D segmentation: what the masks segmented from grey angiograms cost in 3D, and why.

The cases of ``error_budget.py`` (one synchronised frame pair each, clinical
view pairs; 6 generated trees, seeds 2,000,000+, and the 10 real CT trees of
``../shared/data/asoca-centerlines`` Normal_16-20, seeds 2,100,000+; none in
any training) are rendered into grey angiograms as ``autocar synth --kind
image`` renders them (background anatomy, noise, a guiding catheter). Every
row reconstructs the same pair with the shipped default static pipeline
(``pipeline.static.reconstruct_pair``), only the two masks differ:

==============  ==============================================================
true masks      the rendered vessel masks (what the 3D error budget starts from)
unet            ``seg2d.segment_angiograms`` on the grey images (pixel size given,
                as ``autocar reconstruct`` does)
unet-no-false   the U-Net masks without their false pixels: only pixels within
                ``--tolerance-px`` of a true vessel kept (an oracle of precision:
                catheter, wires, background blobs removed)
unet+missed     the U-Net masks with every missed true vessel pixel added (an
                oracle of recall: thin and faint vessels found)
no catheter     the U-Net masks of the same scene rendered without the guiding
                catheter (same renderer, other noise draws): what a segmenter
                that never calls the catheter vessel would give
unet unaligned  the U-Net masks without the epipolar alignment of view B (what
                dynamic runs on segmented angiograms do; static runs align)
widths only     the true masks plus the U-Net's false pixels within the
                tolerance: only the U-Net's too-wide vessel edges remain
unet >= T       the U-Net's probability thresholded at T instead of 0.5, for
                each T of ``--thresholds`` (a miss in one view removes the
                vessel from the two-view hull, a false pixel must also be
                matched in the other view)
==============  ==============================================================

For each row: mean 2D Dice of the two masks against the truth, and centre-line
F1 @1 mm (precision / recall), F1 @2 mm and mean distance against the 3D truth.
The gap between ``unet`` and ``true masks`` is what segmentation costs; the two
oracle rows split it into false and missed vessel, ``widths only`` shows what
the vessel edges alone cost.

Run (about 5 min on 2 cores)::

    python benchmarks/grey_budget.py
    python benchmarks/grey_budget.py --cases 10 --real-cases 10 --json grey.json
    python benchmarks/grey_budget.py --seg-weights training/seg2d_catheter/model.pt   # another segmenter
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from autocar.pipeline.static import ReconstructConfig, reconstruct_pair
from autocar.seg2d.scores import dice_2d
from autocar.seg2d.segment import default_model as default_seg_model
from autocar.seg2d.segment import load_model as load_seg_model
from autocar.seg2d.segment import predict_probabilities
from autocar.synth.angiogram import render_angiogram
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dynamic import add_budget_options, benchmark_jobs, budget_scores, network  # noqa: E402

ROWS = ("true masks", "unet", "no catheter", "unet unaligned", "unet-no-false", "unet+missed", "widths only")


def masks_of_row(row: str, truth: list[np.ndarray], prob: list[np.ndarray], tolerance_px: int,
                 no_catheter: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The two masks (H, W) bool of ``row`` from the true masks and the U-Net's probabilities (and its
    masks of the images without a catheter)."""
    if row == "true masks":
        return truth
    if row == "no catheter":
        return no_catheter
    if row.startswith("unet >= "):
        return [p > float(row.split()[-1]) for p in prob]
    unet = [p > 0.5 for p in prob]
    if row in ("unet", "unet unaligned"):
        return unet
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance_px + 1, 2 * tolerance_px + 1))
    near = [cv2.dilate(t.astype(np.uint8), kernel) > 0 for t in truth]
    if row == "unet-no-false":
        return [u & n for u, n in zip(unet, near)]
    if row == "unet+missed":
        return [u | t for u, t in zip(unet, truth)]
    if row == "widths only":
        return [t | (u & n) for u, t, n in zip(unet, truth, near)]
    raise ValueError(f"unknown row {row!r}")


def run_case(synth, model, seg_model, tolerance_px: int, rows: tuple[str, ...]) -> dict:
    a, b = synth.case.views[:2]
    views = [a.view, b.view]
    truth_graph = synth.truth[0]
    truth = [render_mask(synth.truth[0], a.view), render_mask(synth.truth_b[0], b.view)]  # B's own phase
    prob = [predict_probabilities([cv.frames[0]], seg_model, spacing_mm=float(np.mean(cv.view.isocenter_spacing_mm)))[0]
            for cv in (a, b)]
    no_catheter = None
    if "no catheter" in rows:
        gen = np.random.default_rng(synth.seed)
        contrast = float(gen.uniform(0.7, 1.3))
        no_catheter = [
            predict_probabilities([render_angiogram(g, cv.view, rng=gen, contrast=contrast)], seg_model,
                                  spacing_mm=float(np.mean(cv.view.isocenter_spacing_mm)))[0] > 0.5
            for g, cv in ((synth.truth[0], a), (synth.truth_b[0], b))]
    out = {}
    for row in rows:
        masks = masks_of_row(row, truth, prob, tolerance_px, no_catheter)
        t0 = time.perf_counter()
        config = ReconstructConfig(align_views=False) if row == "unet unaligned" else ReconstructConfig()
        g = reconstruct_pair(masks, views, model, config).graph
        out[row] = {"dice_2d": float(np.mean([dice_2d(m, t) for m, t in zip(masks, truth)])),
                    **budget_scores(g, truth_graph), "seconds": time.perf_counter() - t0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_options(ap)
    ap.add_argument("--tolerance-px", type=int, default=2, help="unet-no-false keeps pixels this close to a true vessel")
    ap.add_argument("--thresholds", default="0.3,0.4", help="comma-separated extra U-Net thresholds (rows 'unet >= T')")
    ap.add_argument("--rows", default=None, help="comma-separated rows to run (default: all)")
    ap.add_argument("--seg-weights", type=Path, default=None, help="2D segmenter weights (model.pt of autocar "
                    "train-seg2d, e.g. one with a catheter class); default: the shipped ones")
    ap.add_argument("--weak", action="store_true", help="weakly synchronised pairs (view B's cardiac phase lags and "
                    "its breathing differs, as autocar synth draws them) instead of synchronised ones")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seg_model = default_seg_model() if args.seg_weights is None else load_seg_model(args.seg_weights)
    model = network(args.model)
    rows = ROWS + tuple(f"unet >= {float(t):g}" for t in args.thresholds.split(",") if t.strip())
    if args.rows:
        wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
        unknown = [r for r in wanted if r not in rows]
        if unknown:
            ap.error(f"--rows: unknown {unknown}; choose from {list(rows)}")
        rows = tuple(r for r in rows if r in wanted)
    jobs = benchmark_jobs(args.cases, args.real_cases, args.data)
    config = dict(frames=1, kind="image") if args.weak else dict(frames=1, lag_range=(0.0, 0.0),
                                                                 view_b_delay_s=(0.0, 0.0), kind="image")
    print(f"{'set':9s} {'case':28s} " + " ".join(f"{r:>22s}" for r in rows) + "   (2D Dice / F1 @1 mm)")
    cases = []
    for cls, label, seed, side, tree in jobs:
        synth = synthesize_case(SynthCaseConfig(side=side, **config), rng=seed, tree=tree)
        res = run_case(synth, model, seg_model, args.tolerance_px, rows)
        cases.append({"set": cls, "case": label, **res})
        print(f"{cls:9s} {label:28s} " + " ".join(f"{res[r]['dice_2d']:13.3f} / {res[r]['f1_1mm']:.3f}" for r in rows),
              flush=True)
    report: dict = {"tolerance_px": args.tolerance_px, "cases": cases, "sets": {}}
    print("\nmeans per set: 2D Dice | F1 @1 mm (P / R) | F1 @2 mm | mean distance mm")
    for cls in dict.fromkeys(c["set"] for c in cases):
        sel = [c for c in cases if c["set"] == cls]
        m = {r: {k: float(np.nanmean([c[r][k] for c in sel])) for k in sel[0][r]} for r in rows}
        report["sets"][cls] = m
        for r in rows:
            print(f"{cls:9s} ({len(sel):2d}) {r:14s} {m[r]['dice_2d']:.3f} | {m[r]['f1_1mm']:.3f} "
                  f"({m[r]['precision_1mm']:.2f} / {m[r]['recall_1mm']:.2f}) | {m[r]['f1_2mm']:.3f} | "
                  f"{m[r]['mean_distance_mm']:.2f}")
        if "true masks" not in m:
            continue
        base = m["true masks"]["f1_1mm"]
        print(f"{'':15s}gap to true masks, F1 @1 mm: "
              + ", ".join(f"{r} {m[r]['f1_1mm'] - base:+.3f}" for r in rows if r != "true masks"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
