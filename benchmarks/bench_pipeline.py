"""End-to-end accuracy from DICOM angiograms: what a user of ``autocar reconstruct DICOM_DIR`` gets.

For each held-out seed (2,300,000 + i, left/right alternating) the synthetic world
makes a weakly synchronised two-view case of ``--frames`` grey-level angiograms
per view (``autocar synth --kind image`` defaults: catheter, noise, one planted
stenosis), exactly as the bundled demo is made. Three inputs of the same case
go through :func:`autocar.pipeline.workflow.run` (read, segment, dynamic reconstruction,
measurements, report, snapshot; the default options, tree side given):

- ``unet``: the two multi-frame XA DICOM files (RLE), segmented by the shipped U-Net;
- ``frangi``: the same DICOM files, segmented by the classical Frangi baseline;
- ``masks``: the true vessel masks of the same frames (a mask case folder): the
  baseline that shows what segmentation costs;
- any of them with ``-previous`` (e.g. ``unet-previous``): the same run without
  lag compensation, per-pair alignment and multi-frame fusion
  (``--no-lag-compensation --no-fusion``, frame alignment off: the release before them);
  with ``-aligned`` / ``-unaligned``: each frame pair's B mask warped / not
  warped across its epipolar lines (``RunOptions(frame_alignment=...)``; by
  default warped for mask input, not for segmented angiograms); with ``-maskwidth``:
  the diameters of the measurements read off the masks' width instead of the grey
  images' profiles (``RunOptions(grey_diameters=False)``, the release before them);
  with ``-tT`` (e.g. ``unet-t0.3``): the U-Net thresholded at T
  (``RunOptions(unet_threshold=T)``).

Printed per input, means over cases: segmentation Dice of views A / B against
the true masks, centre-line F1 within 1 and 2 mm, mean distance and HD95 (mm)
of every frame against the truth of view A's frame it was paired with
(``autocar evaluate``), length of the measured tree over the true one,
median distance of its ostium (first node of the main vessel) from the true
ostium (mm), planted stenoses (severity >= 0.4) found within 3 mm of their place in the
measured frame, their position error (mm) and severity error (points), false
positive stenosis findings, and seconds per case; then the ratios of the
image inputs to the ``masks`` baseline of the same run.

Run: ``python benchmarks/bench_pipeline.py [--cases 8] [--frames 6] [--threads 2]
[--inputs unet,frangi,masks]``
(about 80 s per case, three runs, on the 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quant import match_findings  # noqa: E402

SEED0 = 2_300_000
INPUTS = ("unet", "frangi", "masks")


def one_case(i: int, frames: int, work: Path, model, inputs: tuple[str, ...] = INPUTS,
             seg_weights: str | None = None) -> dict[str, dict]:
    """Run the inputs of case ``i``; returns their scores by input name."""
    import torch

    from autocar.evaluation.evaluate import evaluate_reconstruction
    from autocar.io.case import write_case
    from autocar.io.dicom import write_case_xa
    from autocar.io.results import Reconstruction, read_reconstruction
    from autocar.evaluation.metrics import mask_scores
    from autocar.synth.cases import SynthCaseConfig, synthesize_case
    from autocar.synth.angiogram import ostium_node
    from autocar.pipeline.workflow import RunOptions, run, segment_case

    side = "left" if i % 2 == 0 else "right"
    seed = SEED0 + i
    image = synthesize_case(SynthCaseConfig(side=side, frames=frames, kind="image", n_stenoses=1), rng=seed)
    masks = synthesize_case(SynthCaseConfig(side=side, frames=frames, kind="mask", n_stenoses=1), rng=seed)
    dicom_dir = work / f"dicom_{i}"
    write_case_xa(image.case, dicom_dir, compress=True)
    mask_dir = write_case(masks.case, work / f"masks_{i}")
    true_masks = [np.asarray(cv.frames, bool) for cv in masks.case.views]
    out: dict[str, dict] = {}
    for label in inputs:
        scores: dict = {}
        name, _, variant = label.partition("-")  # "unet-previous": the dynamic run without lag compensation / fusion
        previous = variant == "previous"
        threshold = float(variant[1:]) if variant.startswith("t") else 0.5  # "unet-t0.3": U-Net threshold 0.3
        aligned = {"aligned": True, "unaligned": False}.get(variant)
        if name != "masks":
            with torch.no_grad():
                segmented, _ = segment_case(image.case, name, progress=False, unet_threshold=threshold,
                                            unet_weights=seg_weights)
            scores["dice_a"], scores["dice_b"] = (mask_scores(cv.frames, t)["dice"]
                                                  for cv, t in zip(segmented.views, true_masks))
        t0 = time.perf_counter()
        summary = run(mask_dir if name == "masks" else dicom_dir, work / f"out_{label}_{i}",
                      RunOptions(segmenter="unet" if name == "masks" else name, tree=side,
                                 lag_compensation=not previous, fuse=not previous,
                                 frame_alignment=False if previous else aligned,
                                 grey_diameters=variant != "maskwidth", unet_threshold=threshold,
                                 unet_weights=seg_weights),
                      model=model, progress=False)
        scores["seconds"] = time.perf_counter() - t0
        rec = read_reconstruction(summary.out)
        pairs = rec.extra.get("frame_pairs", [[k, k] for k in range(rec.num_frames)])
        truth = Reconstruction(frames=tuple(image.truth[int(a)] for a, _ in pairs))
        mean = evaluate_reconstruction(rec, truth=truth)["mean"]
        for key in ("f1_1mm", "f1_2mm", "mean_distance_mm", "hd95_mm"):
            scores[key] = float(mean.get(key, np.nan))
        ref_truth = image.truth[int(pairs[summary.reference_frame][0])]
        scores["length_ratio"] = summary.length_mm / ref_truth.total_length_mm
        graph = rec.frames[summary.reference_frame]
        if summary.segments and graph.num_nodes:
            ostium = graph.nodes[int(summary.segments[0]["nodes"][0])]
            scores["ostium_mm"] = float(np.linalg.norm(ostium - ref_truth.nodes[ostium_node(ref_truth)]))
        where = np.array([s["position_mm"] for s in summary.stenoses], float).reshape(-1, 3)
        percent = np.array([s["diameter_stenosis_percent"] for s in summary.stenoses], float)
        places = ref_truth.nodes[[st.node for st in image.stenoses]].reshape(-1, 3)
        scores.update(match_findings(where, percent, places, [st.severity for st in image.stenoses]))
        out[label] = scores
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="3D network weights (model.pt of autocar train); "
                    "default: the shipped ones")
    ap.add_argument("--seg-weights", default=None, help="2D U-Net weights (model.pt of autocar train-seg2d); "
                    "default: the shipped ones")
    ap.add_argument("--inputs", default=",".join(INPUTS),
                    help="comma-separated inputs to run, of unet, frangi, masks (ratios are to masks when run, else to the "
                         "first named); NAME-previous runs it without lag compensation and fusion (the dynamic run "
                         "before them), NAME-aligned / NAME-unaligned with / without each frame pair's B mask warped "
                         "across its epipolar lines (default: with for masks, without for segmented angiograms), "
                         "NAME-maskwidth with the diameters read off the masks instead of the grey profiles, "
                         "unet-tT with the U-Net thresholded at T (e.g. unet-t0.3)")
    args = ap.parse_args()
    if args.cases < 1 or args.frames < 2:
        ap.error("--cases must be >= 1 and --frames >= 2")
    inputs = tuple(n.strip() for n in args.inputs.split(",") if n.strip())
    def known(n: str) -> bool:
        name, _, variant = n.partition("-")
        if variant.startswith("t") and name == "unet":
            try:
                return 0.0 < float(variant[1:]) < 1.0
            except ValueError:
                return False
        return name in INPUTS and variant in ("", "previous", "aligned", "unaligned", "maskwidth")

    if not inputs or not all(known(n) for n in inputs):
        ap.error(f"--inputs must name some of {', '.join(INPUTS)} (each optionally with -previous, -aligned, -unaligned, "
                 f"-maskwidth, or unet-tT), got {args.inputs!r}")
    import torch

    from autocar.pipeline.static import default_model

    torch.set_num_threads(args.threads)
    if args.model is not None:
        from autocar.net.train import load_model

        model = load_model(args.model)
    else:
        model = default_model()
    rows: dict[str, list[dict]] = {n: [] for n in inputs}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        for i in range(args.cases):
            res = one_case(i, args.frames, Path(tmp), model, inputs, args.seg_weights)
            for n in inputs:
                rows[n].append(res[n])
            line = "  ".join(f"{n} F1 {res[n]['f1_1mm']:.3f} ostium {res[n].get('ostium_mm', np.nan):.1f} "
                             f"found {len(res[n]['pos'])}/{res[n]['planted']} FP {res[n]['false_positives']}"
                             for n in inputs)
            print(f"case {i} (seed {SEED0 + i}, {'left' if i % 2 == 0 else 'right'}): {line}", flush=True)

    def avg(n: str, key: str) -> float:
        vals = [r[key] for r in rows[n] if key in r and np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    def med(n: str, key: str) -> float:
        vals = [r[key] for r in rows[n] if key in r]
        return float(np.median(vals)) if vals else float("nan")

    print(f"\n{args.cases} cases x {args.frames} frames, seeds {SEED0}+, weak sync, dynamic, shipped weights")
    print(f"{'input':<7} {'Dice A/B':>11} {'F1@1':>6} {'F1@2':>6} {'mean mm':>8} {'HD95':>6} {'len':>5} "
          f"{'ostium':>6} {'found':>6} {'pos mm':>7} {'sev pts':>8} {'FP':>3} {'s/case':>7}")
    summary: dict[str, dict] = {}
    for n in inputs:
        pos = [p for r in rows[n] for p in r["pos"]]
        err = [abs(e) for r in rows[n] for e in r["err"]]
        found, planted = len(pos), sum(r["planted"] for r in rows[n])
        summary[n] = {k: avg(n, k) for k in ("f1_1mm", "f1_2mm", "mean_distance_mm", "seconds")}
        summary[n]["found"] = found / planted if planted else float("nan")
        seg = f"{avg(n, 'dice_a'):.3f}/{avg(n, 'dice_b'):.3f}" if n != "masks" else "(truth)"
        print(f"{n:<7} {seg:>11} {avg(n, 'f1_1mm'):>6.3f} {avg(n, 'f1_2mm'):>6.3f} "
              f"{avg(n, 'mean_distance_mm'):>8.2f} {avg(n, 'hd95_mm'):>6.1f} {avg(n, 'length_ratio'):>5.2f} "
              f"{med(n, 'ostium_mm'):>6.1f} {found:>2}/{planted:<3} {np.mean(pos) if pos else float('nan'):>7.2f} "
              f"{np.mean(err) if err else float('nan'):>8.1f} {sum(r['false_positives'] for r in rows[n]):>3} "
              f"{avg(n, 'seconds'):>7.1f}")
    base_name = "masks" if "masks" in inputs else inputs[0]
    base = summary[base_name]
    for n in (n for n in inputs if n != base_name):
        s = summary[n]
        print(f"{n} / {base_name}: F1@1 x{s['f1_1mm'] / base['f1_1mm']:.2f}, F1@2 x{s['f1_2mm'] / base['f1_2mm']:.2f}, "
              f"mean distance x{s['mean_distance_mm'] / base['mean_distance_mm']:.2f}, "
              f"lesions found x{s['found'] / base['found'] if base['found'] else float('nan'):.2f}, "
              f"time x{s['seconds'] / base['seconds']:.2f}")


if __name__ == "__main__":
    main()
