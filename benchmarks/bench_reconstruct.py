"""Accuracy and speed of the static reconstruction against two baselines, same run.

Methods (all from the same two vessel masks and geometry):

- ``hull-skeleton``: the raw two-view visual hull (SBP) skeletonised, no
  network, nothing removed, no epipolar alignment (baseline a);
- ``hull-graph``: the hull of the epipolar-aligned masks with small isolated pieces removed before the
  skeleton, two-view ghost pruning, gap bridging and centre-line refinement after it
  (baseline b: graph heuristics without a network; :mod:`autocar.graph.prune`);
- ``network-raw``: the shipped sparse U-Net keeps the hull voxels it believes
  are vessel, skeletonised, its pieces bridged (:mod:`autocar.graph.bridge`),
  nothing else (the method before ghost pruning);
- ``network``: the same, completed from the hull's branches that explain what
  the network left unexplained in both views, then ghost-pruned (autocar's
  default);
- ``network-learned``: the same with the learned ghost score ordering both
  prunings (``autocar reconstruct --ghost-order learned``; ``--scorer`` picks
  another scorer file);
- ``network-unaligned``: the default without its first step, the epipolar
  alignment that warps view B's mask across its epipolar lines until both views
  agree (``ReconstructConfig(align_views=False)``, ``autocar reconstruct
  --no-align-views``; :mod:`autocar.sbp.epipolar`);
- ``network-unrefined``: the default without its last step, which moves every node
  onto the vessel midline of both views (``ReconstructConfig(refine_centerline=False)``,
  ``autocar reconstruct --no-refine``; :mod:`autocar.graph.refine`).

Data:

- held-out synthetic pairs (seeds 2,000,000+i, never used in training or
  validation), left and right trees alternating, clinical pose mixture: once
  perfectly synchronised (view B sees view A's tree) and once weakly
  synchronised as ``autocar synth`` makes them (B lags 2-8 % of the cycle and
  is recorded 3-8 s later, so breath-hold drift moves it by up to ~2 mm);
- the same synchronised pairs with the whole tree turned by 30 degrees about
  a random axis (real hearts are not all oriented as the generator draws them);
- with ``../shared/data`` present: real CT coronary trees (ASOCA Normal_1's
  left tree from its centre lines, both trees of the ImageCAS example label
  volume) rendered into standard view pairs, scored in 3D; and the real two-view clinical RCA masks
  (cvlab-ai/xra-diff), scored by reprojection Dice (no 3D truth exists).

``seconds`` is the wall time of one frame pair from masks to mesh (SBP,
network, centre-line graph, radii, watertight tube mesh), 2 torch threads.
Prints one table per data set and the ratio of every score to the
hull-skeleton baseline measured in the same run. Run:

    python benchmarks/bench_reconstruct.py            # 2 x 12 synthetic pairs (~3 min on 2 cores)
    python benchmarks/bench_reconstruct.py --cases 40 --json bench.json
    python benchmarks/bench_reconstruct.py --sets ct --scorer RUN/ghost_scorer.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.evaluation.metrics import centerline_scores, cl_dice, reprojection_scores
from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.sbp.epipolar import warp_mask
from autocar.io.meshes import tube_mesh

SCORER = None  # ghost scorer of the default method (--scorer; None = the shipped one)
SETS = ("sync", "weak", "rotated", "ct", "clinical")
METHODS = ("hull-skeleton", "hull-graph", "network-raw", "network", "network-learned", "network-unaligned",
           "network-unrefined")
KEYS = ("precision_1mm", "recall_1mm", "f1_1mm", "f1_2mm", "mean_distance_mm", "hd95_mm", "cl_dice",
        "radius_error_mm", "seconds")


def radius_error(pred: CenterlineGraph, truth: CenterlineGraph, tol_mm: float = 1.0) -> float:
    """Mean |r_pred - r_true| (mm) over predicted nodes within ``tol_mm`` of the true centre line."""
    pts, rad, _ = truth.sample_segments(0.25)
    if pred.num_nodes == 0 or len(pts) == 0:
        return float("nan")
    d, i = cKDTree(pts).query(pred.nodes)
    ok = d <= tol_mm
    return float(np.mean(np.abs(pred.radii[ok] - rad[i[ok]]))) if ok.any() else float("nan")


def run_pair(masks, views, model, truth):
    out = {}
    for method in METHODS:
        t = time.perf_counter()
        if method == "hull-skeleton":
            res = reconstruct_pair(masks, views, None, ReconstructConfig().raw_hull())
        elif method == "hull-graph":
            res = reconstruct_pair(masks, views, None)
        elif method == "network-raw":
            res = reconstruct_pair(masks, views, model, ReconstructConfig(prune_ghosts=False, complete_from_hull=False,
                                                                         refine_centerline=False))
        elif method == "network":
            res = reconstruct_pair(masks, views, model)
        elif method == "network-learned":
            res = reconstruct_pair(masks, views, model, ReconstructConfig(learned_ghost_order=True), scorer=SCORER)
        elif method == "network-unaligned":
            res = reconstruct_pair(masks, views, model, ReconstructConfig(align_views=False))
        else:
            res = reconstruct_pair(masks, views, model, ReconstructConfig(refine_centerline=False))
        g = res.graph
        if g.num_nodes:
            tube_mesh(g)  # the whole static pipeline: SBP + network + graph + mesh
        sec = time.perf_counter() - t
        row = {"seconds": sec, "nodes": g.num_nodes}
        if truth is not None:
            if g.num_nodes:
                row.update(centerline_scores(g, truth).to_dict())
                row["cl_dice"] = cl_dice(g, truth)
            else:  # nothing reconstructed: no precision, no recall
                row.update({k: 0.0 for k in ("precision_1mm", "recall_1mm", "f1_1mm", "f1_2mm", "cl_dice")})
            row["radius_error_mm"] = radius_error(g, truth)
        else:
            # Against the masks the reconstruction was made from (view B moved by the alignment).
            used = [masks[0], masks[1] if res.view_warp is None else warp_mask(masks[1], res.view_warp)]
            for k, (m, v) in enumerate(zip(used, views)):
                row[f"reproj_dice_{k}"] = reprojection_scores(g, v, m)["dice"] if g.num_nodes else 0.0
        out[method] = row
    return out


def table(title: str, rows: list[dict], keys: tuple[str, ...]) -> dict:
    print(f"\n{title}  ({len(rows)} pair(s))")
    print(f"{'method':>14s} " + " ".join(f"{k:>16s}" for k in keys))
    means = {}
    for method in METHODS:
        vals = {k: float(np.nanmean([r[method].get(k, np.nan) for r in rows])) for k in keys}
        means[method] = vals
        print(f"{method:>14s} " + " ".join(f"{vals[k]:16.3f}" for k in keys))
    base = means["hull-skeleton"]
    for method in METHODS[1:]:
        ratios = [means[method][k] / base[k] if base[k] else float("nan") for k in keys]
        print(f"{'ratio ' + method:>14s} " + " ".join(f"{r:15.2f}x" for r in ratios))
    return means


def synthetic(n: int, model, *, synchronised: bool) -> list[dict]:
    from autocar.synth.cases import SynthCaseConfig, synthesize_case

    sync = {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)} if synchronised else {}
    rows = []
    for i in range(n):
        side = "left" if i % 2 == 0 else "right"
        sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, **sync), rng=2_000_000 + i)
        a, b = sc.case.views
        rows.append(run_pair([a.frames[0], b.frames[0]], [a.view, b.view], model, sc.truth[0]))
    return rows


def rotated(n: int, model, angle_deg: float = 30.0) -> list[dict]:
    """Synchronised held-out pairs whose whole tree is turned by ``angle_deg`` about a random axis
    through its centre (masks re-rendered): how much the network relies on the generator's orientation."""
    from scipy.spatial.transform import Rotation

    from autocar.synth.cases import SynthCaseConfig, synthesize_case
    from autocar.synth.render import render_mask

    rows = []
    for i in range(n):
        side = "left" if i % 2 == 0 else "right"
        sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, lag_range=(0.0, 0.0),
                                             view_b_delay_s=(0.0, 0.0)), rng=2_000_000 + i)
        axis = np.random.default_rng(3_000_000 + i).normal(size=3)
        rot = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(angle_deg)).as_matrix()
        truth = sc.truth[0]
        centre = truth.nodes.mean(axis=0)
        truth = truth.with_nodes((truth.nodes - centre) @ rot.T + centre)
        views = [cv.view for cv in sc.case.views[:2]]
        rows.append(run_pair([render_mask(truth, v) for v in views], views, model, truth))
    return rows


#: Standard view pairs (primary, secondary in degrees) used to render the real CT trees.
LEFT_PAIRS = (((-30.0, -20.0), (45.0, 20.0)), ((-30.0, 25.0), (40.0, -25.0)), ((0.0, 30.0), (60.0, 0.0)))
RIGHT_PAIRS = (((45.0, 0.0), (-30.0, 0.0)), ((30.0, 25.0), (-25.0, 0.0)), ((0.0, 30.0), (60.0, 0.0)))


def ct_trees(data: Path) -> list[tuple[str, CenterlineGraph, tuple]]:
    """Real CT coronary trees of ../shared/data, each centred on the isocentre, with its view pairs.

    ASOCA Normal_1 (centre lines, its larger tree, the left one) and the ImageCAS example label
    volume (both trees, the larger first), cut out by :func:`autocar.synth.trees.left_and_right`.
    """
    from autocar.io.trees import load_tree
    from autocar.synth.trees import left_and_right

    out = []
    if (data / "asoca-normal-1" / "Normal_1.vtp").is_file():
        parts = left_and_right(load_tree(data / "asoca-normal-1" / "Normal_1.vtp").graph)
        side, tree = max(parts, key=lambda p: p[1].num_nodes)
        out.append((f"ASOCA Normal_1 {side}", tree, LEFT_PAIRS if side == "left" else RIGHT_PAIRS))
    if (data / "imagecas-label" / "example.label.nii.gz").is_file():
        parts = left_and_right(load_tree(data / "imagecas-label" / "example.label.nii.gz").graph)
        for side, tree in sorted(parts, key=lambda p: -p[1].num_nodes):
            out.append((f"ImageCAS example {side}", tree, LEFT_PAIRS if side == "left" else RIGHT_PAIRS))
    return out


def real_ct(trees: list[tuple[str, CenterlineGraph, tuple]], model) -> list[dict]:
    from autocar.geometry import CArmView
    from autocar.synth.render import render_mask

    rows = []
    for name, g, pairs in trees:
        for (a1, b1), (a2, b2) in pairs:
            views = [CArmView(a1, b1, 1100.0, 750.0, (0.3, 0.3), 512, 512),
                     CArmView(a2, b2, 1100.0, 750.0, (0.3, 0.3), 512, 512)]
            rows.append(run_pair([render_mask(g, v) for v in views], views, model, g))
            print(f"  {name} {views[0]} / {views[1]}: network F1@1mm {rows[-1]['network'].get('f1_1mm', 0):.3f}"
                  f", hull-skeleton {rows[-1]['hull-skeleton'].get('f1_1mm', 0):.3f}", flush=True)
    return rows


def clinical(data: Path, model) -> list[dict]:
    from autocar.io.masks import case_from_mask_files

    d = data / "clinical-rca-masks"
    case = case_from_mask_files([d / "xray0.png", d / "xray1.png"], [d / "params0.json", d / "params1.json"])
    a, b = case.views
    return [run_pair([a.frames[0], b.frames[0]], [a.view, b.view], model, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--model", type=Path, default=None, help="weights (default: shipped)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--scorer", type=Path, default=None, help="ghost scorer JSON of network-learned (default: shipped)")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    args = ap.parse_args()
    sets = set(args.sets.split(","))
    if not sets <= set(SETS):
        ap.error(f"--sets: unknown {sorted(sets - set(SETS))}; choose from {','.join(SETS)}")
    import torch

    global SCORER
    if args.scorer is not None:
        from autocar.graph.ghost_score import GhostScorer

        SCORER = GhostScorer.load(args.scorer)

    torch.set_num_threads(2)
    if args.model is not None:
        from autocar.net.train import load_model

        model = load_model(args.model)
    else:
        model = default_model()
    report = {}
    if "sync" in sets:
        report["synthetic_synchronised"] = table(
            "held-out synthetic pairs, perfectly synchronised (B sees A's tree)",
            synthetic(args.cases, model, synchronised=True), KEYS)
    if "weak" in sets:
        report["synthetic_weak_sync"] = table(
            "held-out synthetic pairs, weakly synchronised (B lags 2-8 % of the cycle, recorded 3-8 s later in breath-hold)",
            synthetic(args.cases, model, synchronised=False), KEYS)
    if "rotated" in sets:
        report["synthetic_rotated"] = table(
            "held-out synthetic pairs, synchronised, whole tree turned 30 deg about a random axis",
            rotated(args.cases, model), KEYS)
    if "ct" in sets:
        trees = ct_trees(args.data)
        if trees:
            report["real_ct"] = table(
                "real CT anatomy rendered in 3 standard view pairs each: " + ", ".join(t[0] for t in trees),
                real_ct(trees, model), KEYS)
        else:
            print(f"\n(skipped the real CT trees: none under {args.data})")
    if "clinical" in sets and (args.data / "clinical-rca-masks").is_dir():
        report["clinical"] = table("real clinical RCA masks, reprojection Dice (no 3D truth)",
                                   clinical(args.data, model), ("reproj_dice_0", "reproj_dice_1", "seconds"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
