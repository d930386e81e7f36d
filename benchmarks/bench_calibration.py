"""C-arm calibration errors and impossible view pairings: detected, corrected, and what they cost in 3D.

For every case (one synchronised frame pair of clean vessel masks; the
error-budget cases: held-out synthetic trees, seeds 2,000,000 + i, and the
real CT trees of ``../shared/data/asoca-centerlines`` Normal_16-20, seeds
2,100,000 + i), view B's image is remade under five conditions:

==========  ================================================================
clean       the geometry is right
1deg/2mm    view B's true pose is the nominal one turned by 1 deg about a
            random axis through the isocentre and shifted by 2 mm in a random
            direction (what the pipeline is told is the nominal pose)
3deg/5mm    the same with 3 deg and 5 mm
mirrored    view B's images stored mirrored left-right
swapped     the two runs' images exchanged (each with the other's geometry)
==========  ================================================================

Each condition goes through :func:`autocar.sbp.calibration.check_pairing`
(what ``autocar reconstruct`` runs first). Printed per set and condition:

- the verdicts (consistent / corrected / inconsistent / mirrored / swapped):
  a wrong pairing must never come out consistent or corrected, a clean pair
  should come out consistent;
- for the perturbed poses: the error of view B's pose left after the
  correction (rotation angle, deg; the translation across the baseline, mm:
  the part two views can see), against the error as given, and the RMS
  distance across the epipolar lines between where view B recorded the tree
  and where the geometry used puts it (px; what breaks the two-view hull);
- F1 @ 1 mm of the default static reconstruction (shipped network): plain, and
  after removing one global translation (the shape; a shift along the baseline
  cannot be seen from two views), for the clean pair, the perturbed pair as
  given and the perturbed pair after the check (corrected when it says so).

Last, with ``../shared/data`` present, the real two-view clinical RCA masks
(``clinical-rca-masks``, geometry as recorded; no truth) go through the same check: its
verdict, mismatches and the correction it found.

Run (about 25 min on 2 cores for the default 6 + 10 cases):
    python benchmarks/bench_calibration.py [--cases 6] [--real-cases 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from autocar.evaluation.metrics import centerline_scores, translation_free_scores
from autocar.pipeline.static import default_model, reconstruct_pair
from autocar.sbp.calibration import across_line_drift_px, check_pairing
from autocar.sbp.epipolar import warp_mask
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dynamic import benchmark_jobs  # noqa: E402

CONDITIONS = ("clean", "1deg/2mm", "3deg/5mm", "mirrored", "swapped")
PERTURB = {"1deg/2mm": (1.0, 2.0), "3deg/5mm": (3.0, 5.0)}


def random_motion(rng: np.random.Generator, deg: float, mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A rotation (3, 3) of ``deg`` about a random axis through the isocentre and a shift (3,) of ``mm``."""
    axis = rng.normal(size=3)
    shift = rng.normal(size=3)
    rot = Rotation.from_rotvec(np.radians(deg) * axis / np.linalg.norm(axis)).as_matrix()
    return rot, mm * shift / np.linalg.norm(shift)


def pose_error(corr, applied: bool, rot: np.ndarray, shift: np.ndarray) -> tuple[float, float]:
    """Rotation (deg) and across-baseline translation (mm) between view B's true pose and the one used
    (the nominal pose, or corrected by ``corr`` when ``applied``)."""
    r_est, t_est = corr.world_motion() if applied else (np.eye(3), np.zeros(3))
    ang = float(np.degrees(Rotation.from_matrix(r_est.T @ rot).magnitude()))
    axes = np.asarray(corr.shift_axes)
    return ang, float(np.linalg.norm(axes @ (shift - t_est)))


def across_drift_px(views, truth, rot, shift, view_b, warp) -> float:
    """RMS across-line distance (px of view B) between where view B recorded the tree's nodes and
    where the geometry used puts them (:func:`autocar.sbp.calibration.across_line_drift_px`)."""
    seen, _ = views[1].project(truth.nodes @ rot.T + shift)
    return across_line_drift_px(truth.nodes, views[0], seen, view_b, warp)


def scores(graph, truth) -> dict:
    plain = centerline_scores(graph, truth) if graph.num_edges else None
    shape, shift = translation_free_scores(graph, truth) if graph.num_edges else (None, np.zeros(3))
    return {"f1": plain.f1_1mm if plain else 0.0, "shape_f1": shape.f1_1mm if shape else 0.0,
            "shift_mm": float(np.linalg.norm(shift))}


def run_case(synth, model, rng) -> dict:
    a, b = synth.case.views[:2]
    views = [a.view, b.view]
    ma, mb = a.frames[0] > 0, b.frames[0] > 0
    truth = synth.truth[0]
    out: dict = {}
    for cond in CONDITIONS:
        rot, shift = np.eye(3), np.zeros(3)
        if cond in PERTURB:
            rot, shift = random_motion(rng, *PERTURB[cond])
            masks = [ma, render_mask(truth.transformed(lambda p: p @ rot.T + shift), views[1]) > 0]
        elif cond == "mirrored":
            masks = [ma, mb[:, ::-1]]
        elif cond == "swapped":
            masks = [mb, ma] if ma.shape == mb.shape else None
        else:
            masks = [ma, mb]
        if masks is None:
            continue
        t0 = time.perf_counter()
        check = check_pairing(masks, views)
        row = {"verdict": check.verdict, "seconds": time.perf_counter() - t0,
               "mismatch": check.mismatch}
        if cond in PERTURB:
            row["error_before"] = pose_error(check.correction, False, rot, shift)
            row["error_after"] = pose_error(check.correction, check.verdict == "corrected", rot, shift)
            corr = check.correction
            row["drift_before"] = across_drift_px(views, truth, rot, shift, views[1], np.eye(2, 3))
            row["drift_after"] = (across_drift_px(views, truth, rot, shift, corr.view, corr.warp)
                                  if check.verdict == "corrected" else row["drift_before"])
        if cond in ("clean", "3deg/5mm"):
            row["given"] = scores(reconstruct_pair(masks, views, model).graph, truth)
            if check.verdict == "corrected":
                corr = check.correction
                fixed = reconstruct_pair([masks[0], warp_mask(masks[1], corr.warp)], [views[0], corr.view], model)
                row["checked"] = scores(fixed.graph, truth)
            else:
                row["checked"] = row["given"]
        out[cond] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=6, help="synthetic cases")
    ap.add_argument("--real-cases", type=int, default=10, help="real-tree cases (0: none; at most 10)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = default_model()
    sync = dict(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0))
    rows = []
    for cls, label, seed, side, tree in benchmark_jobs(args.cases, args.real_cases, args.data):
        synth = synthesize_case(SynthCaseConfig(side=side, **sync), rng=seed, tree=tree)
        res = run_case(synth, model, np.random.default_rng(seed))
        rows.append({"set": cls, "case": label, **res})
        c, p = res["clean"], res["3deg/5mm"]
        print(f"{cls:9s} {label:28s} " + " ".join(f"{k}:{v['verdict']}" for k, v in res.items())
              + f" | 3deg/5mm drift {p['drift_before']:.1f}->{p['drift_after']:.1f} px, pose error "
              f"{p['error_before'][0]:.1f}->{p['error_after'][0]:.1f} deg, "
              f"{p['error_before'][1]:.1f}->{p['error_after'][1]:.1f} mm | F1 clean {c['given']['f1']:.3f}, "
              f"perturbed {p['given']['f1']:.3f} (shape {p['given']['shape_f1']:.3f}) -> checked "
              f"{p['checked']['f1']:.3f} (shape {p['checked']['shape_f1']:.3f})", flush=True)
    for cls in dict.fromkeys(r["set"] for r in rows):
        sel = [r for r in rows if r["set"] == cls]
        print(f"\n{cls} ({len(sel)} cases)")
        for cond in CONDITIONS:
            got = [r[cond] for r in sel if cond in r]
            if not got:
                continue
            verdicts = Counter(g["verdict"] for g in got)
            line = f"  {cond:9s} " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
            line += f"; {np.median([g['seconds'] for g in got]):.1f} s median"
            if "error_after" in got[0]:
                eb = np.array([g["error_before"] for g in got])
                ea = np.array([g["error_after"] for g in got])
                line += (f"; pose error as given {eb[:, 0].mean():.2f} deg / {eb[:, 1].mean():.2f} mm, after "
                         f"{ea[:, 0].mean():.2f} deg / {ea[:, 1].mean():.2f} mm (median {np.median(ea[:, 0]):.2f} / "
                         f"{np.median(ea[:, 1]):.2f}; within 0.5 deg and 1 mm: "
                         f"{int(np.sum((ea[:, 0] <= 0.5) & (ea[:, 1] <= 1.0)))}/{len(ea)})")
                line += (f"; across-line drift {np.mean([g['drift_before'] for g in got]):.1f} -> "
                         f"{np.mean([g['drift_after'] for g in got]):.1f} px")
            if "given" in got[0]:
                for key in ("given", "checked"):
                    line += (f"; F1@1mm {key} {np.mean([g[key]['f1'] for g in got]):.3f} "
                             f"(shape {np.mean([g[key]['shape_f1'] for g in got]):.3f})")
            print(line)
    clinical = args.data / "clinical-rca-masks"
    if clinical.is_dir():
        from autocar.io.masks import case_from_mask_files

        case = case_from_mask_files([clinical / "xray0.png", clinical / "xray1.png"],
                                    [clinical / "params0.json", clinical / "params1.json"])
        a, b = case.views[:2]
        check = check_pairing([a.frames[0], b.frames[0]], [a.view, b.view])
        corr = check.correction
        print(f"\nreal clinical RCA pair ({a.view.label} / {b.view.label}): {check.verdict}; mismatch "
              + ", ".join(f"{k} {v:.3f}" for k, v in check.mismatch.items())
              + f"; correction found {corr.rotation_angle_deg:.1f} deg / {corr.shift_norm_mm:.1f} mm, gain "
              f"{corr.gain:.0%}, vessel ends {corr.tips_before:.2f} -> {corr.tips_after:.2f}"
              + ("" if corr.accepted else f" (not used: {corr.reason})"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
