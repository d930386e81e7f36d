"""Dynamic reconstruction against the static per-frame result, same cases, same run.

Two case classes, each a beating heart (the project's heartbeat model) seen
in two weakly synchronised views (view B lags A by ``--lag-range`` of the
cycle, default 2-6 %, and is recorded 3-8 s later, so the breathing differs),
``--frames`` frames per view, clinical view pairs drawn as ``autocar synth``
draws them:

- ``synthetic``: the project's generated trees (seeds 2,000,000+i, never used
  in training; left and right alternating);
- ``real``: real coronary anatomy from CT, the left trees of
  ``../shared/data/asoca-centerlines`` Normal_16-20 then their right trees
  (never used in training; seeds 2,100,000+i draw the heartbeat, the poses and
  the lag). Skipped when the folder is absent.

Each case is run with every ``--variants`` entry: ``default`` (the shipped
options for mask input: lag compensation :mod:`autocar.dynamic.lag`, each
frame pair's B mask warped across its epipolar lines, multi-frame position
fusion :mod:`autocar.dynamic.fuse`), ``previous`` (none of the three: the
release before them), ``no-align`` (what ``autocar reconstruct`` does on
masks it segmented from angiograms), ``lag-only``, ``fuse-only``,
``align-only``, ``seq-align`` (one warp for the sequence instead of one per
pair) and ``nearest`` (lag interpolation from the closer frame only). Per case it prints
the static frames' F1 (best, median, mean), each variant's mean F1 over the
frames and the default's gain over the best static frame.

- static: every phase-paired frame reconstructed independently (shipped
  network, :func:`autocar.pipeline.static.reconstruct_pair`);
- dynamic: the best static frame tracked through all frames and completed
  with what the other frames found (:func:`autocar.pipeline.dynamic.reconstruct_dynamic`);
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

    python benchmarks/bench_dynamic.py                  # 4 synthetic + 5 real cases x 6 frames
    python benchmarks/bench_dynamic.py --cases 6 --real-cases 10 --json dyn.json
    python benchmarks/bench_dynamic.py --lags 0,0.02,0.04,0.06,0.08 --still 0   # F1 against lag
    python benchmarks/bench_dynamic.py --variants default,no-align,previous,lag-only,fuse-only,align-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.pipeline.dynamic import reconstruct_dynamic
from autocar.dynamic.track import TrackConfig
from autocar.io.case import Case, CaseView
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, default_model
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.render import render_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))

SEED0 = 2_000_000
REAL_SEED0 = 2_100_000


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


def real_trees(data: Path) -> list[tuple[str, "SynthTree"]]:
    """The left then the right trees of asoca-centerlines Normal_16-20 (0.5 mm node spacing), each
    cut out, centred and resampled (:func:`autocar.synth.trees.left_and_right`) and given a heart frame."""
    from autocar.io.trees import load_tree
    from autocar.synth.trees import left_and_right, tree_from_graph

    folder = data / "asoca-centerlines"
    files = sorted(folder.glob("Normal_*.vtp")) if folder.is_dir() else []
    out: dict[str, list] = {"left": [], "right": []}
    for f in files:
        for side, graph in left_and_right(load_tree(f).graph):
            out[side].append((f"{f.stem} {side}", tree_from_graph(graph, side)))
    return out["left"] + out["right"]


def benchmark_jobs(cases: int, real_cases: int, data: Path) -> list[tuple]:
    """(class, label, seed, side, tree or None) of the benchmark's cases: ``cases`` synthetic trees
    (seeds 2,000,000+, left / right alternating), then up to ``real_cases`` real CT trees
    (seeds 2,100,000+); says so when the real trees are absent."""
    reals = real_trees(data) if real_cases > 0 else []
    if real_cases > 0 and not reals:
        print(f"(no real trees: {data / 'asoca-centerlines'} is absent; real class skipped)")
    jobs = [("synthetic", f"seed {SEED0 + i}", SEED0 + i, "left" if i % 2 == 0 else "right", None)
            for i in range(cases)]
    jobs += [("real", f"{reals[i][0]} (seed {REAL_SEED0 + i})", REAL_SEED0 + i, reals[i][1].side, reals[i][1])
             for i in range(min(real_cases, len(reals)))]
    return jobs



def budget_scores(graph, truth) -> dict[str, float]:
    """Centre-line P / R / F1 @1 mm, F1 @2 mm and mean distance (mm) of ``graph`` against ``truth``;
    zeros (mean distance NaN) for an empty graph."""
    s = centerline_scores(graph, truth) if graph.num_edges else None
    return {"f1_1mm": s.f1_1mm if s else 0.0, "precision_1mm": s.precision_1mm if s else 0.0,
            "recall_1mm": s.recall_1mm if s else 0.0, "f1_2mm": s.f1_2mm if s else 0.0,
            "mean_distance_mm": s.mean_distance_mm if s else float("nan")}


def add_budget_options(ap, cases: int = 6, real_cases: int = 10) -> None:
    """The options the error budgets share: the case set (:func:`benchmark_jobs`), threads, other
    3D weights, a JSON copy of the figures and the shared data folder."""
    ap.add_argument("--cases", type=int, default=cases, help="synthetic cases")
    ap.add_argument("--real-cases", type=int, default=real_cases, help="real-tree cases (0: none; at most 10)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="3D network weights (model.pt of autocar train); "
                    "default: the shipped ones")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")


def network(path: Path | None):
    """The 3D network of ``path`` (a model.pt of ``autocar train``), or the shipped one when None."""
    if path is None:
        from autocar.pipeline.static import default_model

        return default_model()
    from autocar.net.train import load_model

    return load_model(path)

VARIANTS = {
    "default": {},
    "previous": {"fuse": None, "lag_compensation": False, "frame_alignment": False},
    "no-align": {"frame_alignment": False},
    "lag-only": {"fuse": None, "frame_alignment": False},
    "fuse-only": {"lag_compensation": False, "frame_alignment": False},
    "align-only": {"fuse": None, "lag_compensation": False},
    "seq-align": {"align_views": True},
    "nearest": {"lag_interpolation": "nearest"},
}


def run_variant(synth, model, config, track, variant: str) -> dict:
    """One dynamic run of a case: per-frame static and dynamic scores, costs."""
    options = dict(VARIANTS[variant])
    if options.pop("align_views", False):
        config = dataclasses.replace(config, align_views=True)
    t0 = time.perf_counter()
    res = reconstruct_dynamic(synth.case, model, config, track, progress=False, **options)
    total = time.perf_counter() - t0
    rec = res.reconstruction
    truths = [synth.truth[int(k)] for k in res.pairing.index_a]
    static = [_scores(r.graph, t) for r, t in zip(res.static, truths)]
    dynamic = [_scores(g, t) for g, t in zip(rec.frames, truths)]
    ref_only = [_scores(_first_nodes(g, getattr(res, "reference_nodes", None)), t) for g, t in zip(rec.frames, truths)]
    track_s = [f.seconds for k, f in enumerate(res.track.frames) if k != res.track.reference] if res.track else []
    static_f1 = [s["f1_1mm"] for s in static]
    return {
        "frames": rec.num_frames, "reference": res.track.reference if res.track else None,
        "same_topology": bool(rec.is_dynamic),
        "static": {k: float(np.mean([s[k] for s in static])) for k in static[0]},
        "static_f1_best": float(np.max(static_f1)), "static_f1_median": float(np.median(static_f1)),
        "static_f1_per_frame": [round(x, 4) for x in static_f1],
        "dynamic": {k: float(np.mean([s[k] for s in dynamic])) for k in dynamic[0]},
        "dynamic_f1_per_frame": [round(s["f1_1mm"], 4) for s in dynamic],
        "ref_only": {k: float(np.mean([s[k] for s in ref_only])) for k in ref_only[0]},
        "added": rec.extra.get("branches_added_from_frames", 0),
        "fusion": rec.extra.get("fusion"),
        "track_s_per_frame": float(np.mean(track_s)) if track_s else 0.0,
        "total_s": total,
        "static_s": res.seconds.get("static", 0.0),
        "error_std_mm": error_std_mm(list(rec.frames), truths, res.track.reference) if res.track else float("nan"),
        "motion_mean_mm": rec.extra.get("motion", {}).get("mean_mm", float("nan")),
    }


def summarise(name: str, rows: list[dict], variants: list[str]) -> dict:
    """Print one case class's table; returns its means."""
    if not rows:
        return {}
    first = variants[0]
    print(f"\n{name}: {len(rows)} cases x {rows[0][first]['frames']} frames")
    print(f"{'':26s} {'static':>8s} " + " ".join(f"{v:>10s}" for v in variants) + f" {'ratio':>7s}")
    out: dict = {"cases": len(rows)}
    for key in ("precision_1mm", "recall_1mm", "f1_1mm", "mean_distance_mm"):
        s = float(np.mean([r[first]["static"][key] for r in rows]))
        vals = [float(np.mean([r[v]["dynamic"][key] for r in rows])) for v in variants]
        ratio = vals[0] / vals[-1] if vals[-1] else float("nan")
        print(f"{key:26s} {s:8.3f} " + " ".join(f"{x:10.3f}" for x in vals) + f" {ratio:7.3f}")
        out[key] = {"static": s, **dict(zip(variants, vals))}
    best = float(np.mean([r[first]["static_f1_best"] for r in rows]))
    med = float(np.mean([r[first]["static_f1_median"] for r in rows]))
    gains = {v: [r[v]["dynamic"]["f1_1mm"] - r[v]["static_f1_best"] for r in rows] for v in variants}
    print(f"static F1 per case: best frame {best:.3f}, median frame {med:.3f} (mean over cases; {first}'s static frames)")
    print("static F1 @1 mm, mean frame, of each variant's own static frames: "
          + ", ".join(f"{v} {np.mean([r[v]['static']['f1_1mm'] for r in rows]):.3f}" for v in variants))
    for v in variants:
        g = gains[v]
        print(f"{v:>10s}: dynamic - best static frame F1 {np.mean(g):+.3f} mean, {np.min(g):+.3f} worst case;"
              f" same topology {sum(r[v]['same_topology'] for r in rows)}/{len(rows)};"
              f" cost per frame beyond the first {np.mean([(r[v]['total_s'] - r[v]['total_s'] / r[v]['frames']) / max(r[v]['frames'] - 1, 1) for r in rows]):.2f} s"
              f" (static step {np.mean([r[v]['static_s'] / r[v]['frames'] for r in rows]):.2f} s of it)")
    out["static_best"], out["static_median"] = best, med
    out["static_mean_by_variant"] = {v: float(np.mean([r[v]["static"]["f1_1mm"] for r in rows])) for v in variants}
    out["gain_over_best"] = {v: float(np.mean(g)) for v, g in gains.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=4, help="synthetic cases")
    ap.add_argument("--real-cases", type=int, default=5, help="real-tree cases (0: none)")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--lag-range", default="0.02,0.06", help="view B's lag, fraction of the cycle: LOW,HIGH")
    ap.add_argument("--lags", default=None,
                    help="comma list of fixed lags (e.g. 0,0.02,0.04,0.06,0.08): F1 against lag, default variant")
    ap.add_argument("--variants", default="default,previous", help=f"comma list of {sorted(VARIANTS)}")
    ap.add_argument("--still", type=int, default=2, help="still-heart jitter cases")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed0", type=int, default=SEED0, help="first synthetic seed (default: the held-out 2,000,000)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--align-views", choices=("on", "off"), default=None,
                    help="one epipolar warp of view B per sequence (default: off for dynamic runs)")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    config = ReconstructConfig(threads=args.threads)
    if args.align_views is not None:
        config = ReconstructConfig(threads=args.threads, align_views=args.align_views == "on")
    torch.set_num_threads(args.threads)
    model = default_model()
    track = TrackConfig()
    lo, hi = (float(x) for x in args.lag_range.split(","))
    lags = [float(x) for x in args.lags.split(",")] if args.lags else None
    reals = real_trees(args.data) if args.real_cases > 0 else []
    if args.real_cases > 0 and not reals:
        print(f"(no real trees: {args.data / 'asoca-centerlines'} is absent; real class skipped)")

    def cases(lag_range):
        for i in range(args.cases):
            side = "left" if i % 2 == 0 else "right"
            seed = args.seed0 + i
            yield "synthetic", f"seed {seed} {side}", seed, synthesize_case(
                SynthCaseConfig(side=side, frames=args.frames, lag_range=lag_range), rng=seed)
        for i in range(min(args.real_cases, len(reals))):
            seed = REAL_SEED0 + i
            name, tree = reals[i]
            yield "real", f"{name} (seed {seed})", seed, synthesize_case(
                SynthCaseConfig(side=tree.side, frames=args.frames, lag_range=lag_range), rng=seed, tree=tree)

    report: dict = {}
    if lags:
        table = {}
        for lag in lags:
            rows: dict[str, list] = {"synthetic": [], "real": []}
            for cls, label, seed, synth in cases((lag, lag)):
                r = run_variant(synth, model, config, track, variants[0])
                rows[cls].append(r)
                print(f"lag {lag:.3f} {cls:9s} {label}: static best {r['static_f1_best']:.3f}"
                      f" mean {r['static']['f1_1mm']:.3f}, dynamic {r['dynamic']['f1_1mm']:.3f}", flush=True)
            table[lag] = {c: (float(np.mean([r["dynamic"]["f1_1mm"] for r in v])),
                              float(np.mean([r["static_f1_best"] for r in v])),
                              float(np.mean([r["static"]["f1_1mm"] for r in v]))) for c, v in rows.items() if v}
        print(f"\nF1 @1 mm against view B's lag ({variants[0]}; dynamic / best static frame / mean static frame):")
        for lag, per in table.items():
            print(f"  lag {lag:.3f}: " + "; ".join(f"{c} {d:.3f} / {b:.3f} / {m:.3f}" for c, (d, b, m) in per.items()))
        report["lags"] = {str(k): v for k, v in table.items()}
    else:
        rows = {"synthetic": [], "real": []}
        for cls, label, seed, synth in cases((lo, hi)):
            row = {"class": cls, "case": label, "seed": seed, "lag": synth.lag}
            for v in variants:
                row[v] = run_variant(synth, model, config, track, v)
            rows[cls].append(row)
            r0 = row[variants[0]]
            print(f"{cls:9s} {label} lag {synth.lag:.3f}: static F1 best {r0['static_f1_best']:.3f} median"
                  f" {r0['static_f1_median']:.3f} mean {r0['static']['f1_1mm']:.3f} | "
                  + ", ".join(f"{v} {row[v]['dynamic']['f1_1mm']:.3f}" for v in variants)
                  + f" | mean dist {r0['static']['mean_distance_mm']:.2f} -> {r0['dynamic']['mean_distance_mm']:.2f} mm,"
                  f" ref {r0['reference']}, motion {r0['motion_mean_mm']:.1f} mm", flush=True)
        for cls, rs in rows.items():
            report[cls] = {"summary": summarise(cls, rs, variants), "cases": rs}
    if args.still and not lags:
        still = [still_jitter_mm(args.seed0 + 500 + i, args.frames, model, track) for i in range(args.still)]
        print(f"still-heart jitter: {np.mean([s[0] for s in still]):.3f} mm (max {max(s[0] for s in still):.3f}),"
              f" F1@1 {np.mean([s[1] for s in still]):.3f}")
        report["still"] = still
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
