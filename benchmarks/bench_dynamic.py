"""Dynamic reconstruction against the static per-frame result, same cases, same run.

For each held-out synthetic beating-heart case (seeds 2,000,000+i, never used
in training; left and right trees alternating; weakly synchronised views as
``autocar synth`` makes them: B lags 2-8 % of the cycle and is recorded 3-8 s
later) with ``--frames`` frames per view:

- static: every phase-paired frame reconstructed independently (shipped
  network, :func:`autocar.reconstruct.reconstruct_pair`);
- dynamic: the best static frame tracked through all frames and completed
  with what the other frames found (:func:`autocar.dynamic.pipeline.reconstruct_dynamic`);
- ref-only: the same result restricted to the reference frame's own nodes
  (what the dynamic result was before :mod:`autocar.dynamic.complete`).

Both are scored per frame against the true tree of that frame (view A's
phase): centre-line precision / recall / F1 within 1 mm and mean distance.
Also printed:

- topology: whether every frame of the dynamic result has the same nodes and
  edges (must always hold);
- track s/frame: tracking cost per additional frame (flow + matching +
  L-BFGS), and the whole dynamic cost per frame including its static step;
- still-heart jitter: the same tree in every frame (no motion) but each
  frame's masks re-rendered with a random boundary dilation of 0-0.6 px
  (segmentation noise); jitter = RMS over nodes of each node's standard
  deviation of position over the frames (mm). Truth: 0;
- error std (moving heart): for nodes within 2 mm of the truth in the
  reference frame, the standard deviation over frames of the error vector to
  the same anatomical truth point, RMS over nodes (mm): the part of the
  error that moves from frame to frame.

Run:

    python benchmarks/bench_dynamic.py                  # 4 cases x 8 frames (~3 min on 2 cores)
    python benchmarks/bench_dynamic.py --cases 10 --json dyn.json
    python benchmarks/bench_dynamic.py --align-views on    # with one epipolar warp of view B per sequence
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from autocar.centerline import CenterlineGraph
from autocar.dynamic.pipeline import reconstruct_dynamic
from autocar.dynamic.track import TrackConfig
from autocar.io.case import Case, CaseView
from autocar.metrics import centerline_scores
from autocar.reconstruct import ReconstructConfig, default_model
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask

SEED0 = 2_000_000


def _scores(graph, truth) -> dict[str, float]:
    s = centerline_scores(graph, truth)
    return {"precision_1mm": s.precision_1mm, "recall_1mm": s.recall_1mm, "f1_1mm": s.f1_1mm,
            "mean_distance_mm": s.mean_distance_mm}


def _first_nodes(graph: CenterlineGraph, n: int | None) -> CenterlineGraph:
    """The subgraph of the first ``n`` nodes (all when None)."""
    if n is None or n >= graph.num_nodes:
        return graph
    keep = np.all(graph.edges < n, axis=1)
    return CenterlineGraph(graph.nodes[:n], graph.radii[:n], graph.edges[keep])


def error_std_mm(graphs, truths, reference: int, tol_mm: float = 2.0) -> float:
    """RMS over matched nodes of the per-node std over frames of (tracked - true anatomical point)."""
    d, j = cKDTree(truths[reference].nodes).query(graphs[reference].nodes)
    ok = d <= tol_mm
    if not ok.any():
        return float("nan")
    err = np.stack([g.nodes[ok] - t.nodes[j[ok]] for g, t in zip(graphs, truths)])  # (T, M, 3)
    dev = err - err.mean(axis=0, keepdims=True)
    return float(np.sqrt(np.mean(np.sum(dev**2, axis=2))))


def still_jitter_mm(seed: int, frames: int, model, track: TrackConfig) -> tuple[float, float]:
    """Jitter (mm) of the dynamic result on a still heart with per-frame mask noise; and its F1@1mm."""
    synth = synthesize_case(SynthCaseConfig(frames=1, view_b_delay_s=(0, 0), lag_range=(0, 0)), rng=seed)
    truth = synth.truth[0]
    gen = np.random.default_rng(seed)
    views = []
    for cv in synth.case.views:
        masks = np.stack([render_mask(truth, cv.view, dilate_px=float(gen.uniform(0.0, 0.6))) for _ in range(frames)])
        views.append(CaseView(name=cv.name, view=cv.view, kind="mask", frames=masks,
                              frame_times_ms=np.arange(frames) * 66.7))
    case = Case(views=tuple(views), tree=synth.case.tree)
    res = reconstruct_dynamic(case, model, track=track, progress=False)
    x = np.stack([g.nodes for g in res.reconstruction.frames])
    jitter = float(np.sqrt(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=2))))
    return jitter, float(np.mean([centerline_scores(g, truth).f1_1mm for g in res.reconstruction.frames]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--still", type=int, default=2, help="still-heart jitter cases")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed0", type=int, default=SEED0, help="first seed (default: the held-out 2,000,000)")
    ap.add_argument("--align-views", choices=("on", "off"), default=None,
                    help="epipolar alignment of view B (default: ReconstructConfig's default, off for dynamic runs)")
    args = ap.parse_args()
    config = ReconstructConfig(threads=args.threads)
    if args.align_views is not None:
        config = ReconstructConfig(threads=args.threads, align_views=args.align_views == "on")
    torch.set_num_threads(args.threads)
    model = default_model()
    track = TrackConfig()
    rows = []
    for i in range(args.cases):
        seed = args.seed0 + i
        side = "left" if i % 2 == 0 else "right"
        synth = synthesize_case(SynthCaseConfig(side=side, frames=args.frames), rng=seed)
        t0 = time.perf_counter()
        res = reconstruct_dynamic(synth.case, model, config, track, progress=False)
        total = time.perf_counter() - t0
        rec = res.reconstruction
        truths = [synth.truth[int(k)] for k in res.pairing.index_a]
        static = [_scores(r.graph, t) for r, t in zip(res.static, truths)]
        dynamic = [_scores(g, t) for g, t in zip(rec.frames, truths)]
        ref_only = [_scores(_first_nodes(g, getattr(res, "reference_nodes", None)), t) for g, t in zip(rec.frames, truths)]
        n = rec.num_frames
        track_s = [f.seconds for k, f in enumerate(res.track.frames) if k != res.track.reference]
        row = {
            "seed": seed, "side": side, "frames": n, "reference": res.track.reference,
            "same_topology": bool(rec.is_dynamic),
            "static": {k: float(np.mean([s[k] for s in static])) for k in static[0]},
            "dynamic": {k: float(np.mean([s[k] for s in dynamic])) for k in dynamic[0]},
            "ref_only": {k: float(np.mean([s[k] for s in ref_only])) for k in ref_only[0]},
            "added": rec.extra.get("branches_added_from_frames", 0),
            "track_s_per_frame": float(np.mean(track_s)) if track_s else 0.0,
            "total_s_per_frame": total / n,
            "error_std_mm": error_std_mm(list(rec.frames), truths, res.track.reference),
            "motion_mean_mm": rec.extra["motion"]["mean_mm"],
        }
        rows.append(row)
        print(f"seed {seed} {side:5s}: topology same {row['same_topology']}, F1@1 static {row['static']['f1_1mm']:.3f}"
              f" dynamic {row['dynamic']['f1_1mm']:.3f} (ref-only {row['ref_only']['f1_1mm']:.3f}, {row['added']} added), mean dist {row['static']['mean_distance_mm']:.2f} ->"
              f" {row['dynamic']['mean_distance_mm']:.2f} mm, track {row['track_s_per_frame']:.2f} s/frame,"
              f" error std {row['error_std_mm']:.2f} mm, motion {row['motion_mean_mm']:.1f} mm", flush=True)
    still = [still_jitter_mm(args.seed0 + 500 + i, args.frames, model, track) for i in range(args.still)]

    def mean(path: tuple[str, str]) -> float:
        return float(np.mean([r[path[0]][path[1]] for r in rows]))

    print()
    print(f"{args.cases} cases x {args.frames} frames, weakly synchronised, seeds {args.seed0}+")
    print(f"{'':24s} {'static':>8s} {'ref-only':>8s} {'dynamic':>8s} {'ratio':>7s}")
    for key in ("precision_1mm", "recall_1mm", "f1_1mm", "mean_distance_mm"):
        s, r, d = mean(("static", key)), mean(("ref_only", key)), mean(("dynamic", key))
        print(f"{key:24s} {s:8.3f} {r:8.3f} {d:8.3f} {d / s if s else float('nan'):7.3f}")
    print(f"same topology in every frame: {sum(r['same_topology'] for r in rows)}/{len(rows)} cases")
    print(f"tracking cost per additional frame: {np.mean([r['track_s_per_frame'] for r in rows]):.2f} s "
          f"(whole dynamic run incl. static step: {np.mean([r['total_s_per_frame'] for r in rows]):.2f} s/frame)")
    print(f"error std over frames (moving heart): {np.nanmean([r['error_std_mm'] for r in rows]):.3f} mm")
    if still:
        print(f"still-heart jitter: {np.mean([s[0] for s in still]):.3f} mm (max {max(s[0] for s in still):.3f}),"
              f" F1@1 {np.mean([s[1] for s in still]):.3f}")
    if args.json:
        args.json.write_text(json.dumps({"cases": rows, "still": still}, indent=2))


if __name__ == "__main__":
    main()
