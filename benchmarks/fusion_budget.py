"""Error budget of multi-frame fusion: what the frames of a cine hold, and what fusing them can reach.

Same cases as ``bench_dynamic.py`` (synthetic seeds 2,000,000+, real CT trees
of ``../shared/data/asoca-centerlines`` Normal_16-20 driven by the heartbeat
model, seeds 2,100,000+; never in training), ``--frames`` frames per view,
view B lagging 2-6 % of the cycle. Each case is reconstructed once with the
shipped dynamic pipeline (mask input: lag compensation, per-pair epipolar
alignment, position fusion); its static frame trees, its tracked tree and the
masks it used are then put through oracle stages, in which one thing is taken
from the truth:

======================  =====================================================
stage                   what it is
======================  =====================================================
static best / mean      each frame pair reconstructed on its own; the best
                        frame (chosen with the truth) and the mean frame
dynamic                 the shipped dynamic result, mean over frames
consensus tracked       one tree rebuilt from ALL frames' static trees: each
                        frame's centre line carried to the reference frame
                        by the motion of the tracked tree, a point kept when
                        at least ``--votes`` other frames put a centre line
                        within 1 mm of it, the kept points voxelised (0.5 mm,
                        dilated 1 mm) and skeletonised
                        (:func:`autocar.geometry.volume_graph.graph_from_volume`), then
                        carried to every frame by the same motion
consensus true-motion   the same with the TRUE motion (node correspondences
                        of the true trees)
select oracle           an upper bound for any selection among the frames'
                        candidates: the union of all frames' static centre
                        lines at the reference frame (true motion), every
                        point further than 1 mm from the truth removed (so
                        precision 1): F1 = 2R / (1 + R) with R the union's
                        recall
prob single / fused     the network's voxel probabilities at the reference frame alone
                        (``prob_single``), then averaged over all frames: every
                        reference hull voxel carried to each frame (true or
                        tracked motion) takes that frame's probability at the
                        nearest hull voxel (0 off its hull); the mean goes
                        through the default static pipeline (reference frame
                        only, F1 there)
carve ghosts / vessel   temporal space carving: the reference frame's
                        two-view hull voxels carried to every frame (true or
                        tracked motion) and kept only when their centre
                        projects into both views' masks (within 1 px) in all
                        frames. Printed: the share of clear ghost voxels
                        (more than 2 mm outside the true lumen) and of true
                        lumen voxels that survive. A useful fusion test
                        needs the first near 0 and the second near 1.
======================  =====================================================

Motion between frames (tracked or true) is interpolated from node
correspondences with Gaussian weights (sigma 5 mm, 8 nearest nodes).

Run (about 4 min for the default 4 + 5 cases on 2 cores):

    python benchmarks/fusion_budget.py
    python benchmarks/fusion_budget.py --cases 6 --real-cases 10 --frames 8 --json budget.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import binary_dilation, distance_transform_edt, map_coordinates
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.pipeline.dynamic import reconstruct_dynamic
from autocar.dynamic.track import TrackConfig
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import ReconstructConfig, default_model
from autocar.sbp.carve import SBPConfig, carve
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.geometry.volume_graph import graph_from_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dynamic import benchmark_jobs  # noqa: E402

STEP_MM = 0.5  # centre-line sampling
VOTE_MM = 1.0  # a vote: another frame's centre line within this distance


def motion(src: np.ndarray, dst: np.ndarray, *, k: int = 8, sigma_mm: float = 5.0):
    """Point mover from node correspondences: (N, 3) positions in one frame -> (N, 3) in another, mm.

    The displacement at a point is the Gaussian-weighted mean (``sigma_mm``) of its ``k``
    nearest nodes' displacements."""
    tree = cKDTree(src)
    kk = min(k, len(src))

    def move(points: np.ndarray) -> np.ndarray:
        if len(points) == 0:
            return points
        d, j = tree.query(points, k=kk)
        if kk == 1:
            d, j = d[:, None], j[:, None]
        w = np.exp(-0.5 * (d / sigma_mm) ** 2) + 1e-12
        w /= w.sum(axis=1, keepdims=True)
        return points + np.einsum("nk,nkc->nc", w, dst[j] - src[j])

    return move


def samples(graph: CenterlineGraph) -> np.ndarray:
    return graph.sample_segments(STEP_MM)[0] if graph.num_edges else np.zeros((0, 3))


def carried(static: list[CenterlineGraph], positions: list[np.ndarray], ref: int) -> list[np.ndarray]:
    """Every frame's static centre-line samples carried to frame ``ref`` (positions: per-frame nodes)."""
    return [samples(g) if k == ref else motion(positions[k], positions[ref])(samples(g))
            for k, g in enumerate(static)]


def consensus_tree(clouds: list[np.ndarray], votes: int, *, voxel_mm: float = 0.5,
                   dilate_mm: float = 1.0) -> CenterlineGraph:
    """One centre-line tree from the frames' clouds (all at one phase): points other frames vote for,
    voxelised, dilated and skeletonised."""
    trees = [cKDTree(c) if len(c) else None for c in clouds]
    kept = []
    for k, c in enumerate(clouds):
        if len(c) == 0:
            continue
        support = sum((t.query(c)[0] <= VOTE_MM).astype(int) for j, t in enumerate(trees) if j != k and t is not None)
        kept.append(c[np.asarray(support) >= votes])
    pts = np.concatenate(kept) if kept else np.zeros((0, 3))
    if len(pts) == 0:
        return CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64))
    lo = pts.min(axis=0) - 3.0
    idx = np.round((pts - lo) / voxel_mm).astype(np.int64)
    vol = np.zeros(tuple(idx.max(axis=0) + 4), bool)
    vol[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    r = int(np.ceil(dilate_mm / voxel_mm))
    g = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    vol = binary_dilation(vol, (g**2).sum(axis=0) * voxel_mm**2 <= dilate_mm**2)
    return graph_from_volume(vol, (voxel_mm,) * 3, lo)


def mean_f1(graphs: list[CenterlineGraph], truths: list[CenterlineGraph]) -> float:
    return float(np.mean([centerline_scores(g, t).f1_1mm for g, t in zip(graphs, truths)]))


def _mask_distance(dmap: np.ndarray, view, points: np.ndarray) -> np.ndarray:
    rc, _ = view.project(points)
    out = np.full(len(points), 1e3)
    ok = np.all(np.isfinite(rc), axis=1)
    out[ok] = map_coordinates(dmap, rc[ok].T, order=1, mode="constant", cval=1e3)
    return out


def carving(views, masks, truths, positions, ref: int) -> tuple[float, float]:
    """Share of clear-ghost and of true-lumen hull voxels of frame ``ref`` that project into both
    views' masks (within 1 px) in every frame when carried by ``positions``' motion."""
    hull = carve([masks[0][ref], masks[1][ref]], list(views), SBPConfig())
    centres = hull.centers_mm.astype(np.float64)
    pts, rad, _ = truths[ref].sample_segments(0.25)
    d, j = cKDTree(pts).query(centres)
    outside = d - rad[j]
    ghost, lumen = outside > 2.0, outside <= 0.0
    inside_all = np.ones(len(centres), bool)
    for k in range(len(truths)):
        c = centres if k == ref else motion(positions[ref], positions[k])(centres)
        for v in range(2):
            inside_all &= _mask_distance(distance_transform_edt(~masks[v][k]), views[v], c) <= 1.0
    share = lambda sel: float(np.mean(inside_all[sel])) if sel.any() else float("nan")  # noqa: E731
    return share(ghost), share(lumen)


class _FixedLogits:
    """Stands in for the network with given logits (N,) for the hull it is called with."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits

    def __call__(self, dist, hull, views):
        if len(hull.coords) != len(self.logits):
            raise ValueError(f"{len(self.logits)} logits for a hull of {len(hull.coords)} voxels")
        return torch.as_tensor(self.logits, dtype=torch.float32), None


def probability_fusion(model, views, masks, truth_ref, positions: dict[str, list[np.ndarray]], ref: int) -> dict:
    """F1 @1 mm at the reference frame: the network alone there, and its probabilities averaged over
    the frames with each motion in ``positions`` (see the module doc)."""
    from autocar.pipeline.static import reconstruct_pair
    from autocar.sbp.carve import distance_maps

    config = ReconstructConfig(align_views=False)  # the masks are already aligned
    sbp = SBPConfig(margin_px=config.sbp_margin_px)
    hulls, probs = [], []
    for k in range(len(masks[0])):
        pair = [masks[0][k], masks[1][k]]
        hull = carve(pair, list(views), sbp)
        with torch.no_grad():
            logit, _ = model(torch.as_tensor(distance_maps(pair), dtype=torch.float32), hull, list(views))
        hulls.append(hull)
        probs.append(torch.sigmoid(logit).numpy().astype(np.float64))
    pair = [masks[0][ref], masks[1][ref]]
    score = lambda g: centerline_scores(g, truth_ref).f1_1mm if g.num_edges else 0.0  # noqa: E731
    out = {"prob_single": score(reconstruct_pair(pair, list(views), model, config).graph)}
    centres = hulls[ref].centers_mm.astype(np.float64)
    for name, pos in positions.items():
        taken = []
        for k, (hull, prob) in enumerate(zip(hulls, probs)):
            c = centres if k == ref else motion(pos[ref], pos[k])(centres)
            if len(hull.coords) == 0:
                taken.append(np.zeros(len(c)))
                continue
            d, j = cKDTree(hull.centers_mm.astype(np.float64)).query(c)
            taken.append(np.where(d <= 0.75 * hull.voxel_mm / 0.5, prob[np.minimum(j, len(prob) - 1)], 0.0))
        p = np.clip(np.mean(taken, axis=0), 1e-4, 1 - 1e-4)
        fused = _FixedLogits(np.log(p / (1 - p)))
        out[f"prob_fused_{name}"] = score(reconstruct_pair(pair, list(views), fused, config).graph)
    return out


def budget(synth, model, config, votes: int) -> dict:
    t0 = time.perf_counter()
    res = reconstruct_dynamic(synth.case, model, config, TrackConfig(), progress=False)
    seconds = time.perf_counter() - t0
    truths = [synth.truth[int(k)] for k in res.pairing.index_a]
    static = [r.graph for r in res.static]
    dyn = list(res.reconstruction.frames)
    views = [cv.view for cv in synth.case.views[:2]]
    ref = res.track.reference if res.track else 0
    static_f1 = [centerline_scores(g, t).f1_1mm for g, t in zip(static, truths)]
    fused = probability_fusion(model, views, res.masks, truths[ref],
                               {"true": [t.nodes for t in truths], "tracked": [g.nodes for g in dyn]}, ref)
    out = {"static_best": float(np.max(static_f1)), "static_mean": float(np.mean(static_f1)),
           "dynamic": mean_f1(dyn, truths), "seconds": seconds, **fused}
    for name, positions in (("tracked", [g.nodes for g in dyn]), ("true", [t.nodes for t in truths])):
        clouds = carried(static, positions, ref)
        tree = consensus_tree(clouds, max(1, min(votes, len(clouds) - 1)))  # at most every other frame
        moved = [tree if k == ref else tree.with_nodes(motion(positions[ref], positions[k])(tree.nodes))
                 for k in range(len(truths))]
        out[f"consensus_{name}"] = mean_f1(moved, truths) if tree.num_nodes else 0.0
        out[f"carve_ghost_{name}"], out[f"carve_vessel_{name}"] = carving(views, res.masks, truths, positions, ref)
        if name == "true":
            union = np.concatenate([c for c in clouds if len(c)])
            recall = float(np.mean(cKDTree(union).query(samples(truths[ref]))[0] <= 1.0))
            out["select_oracle"] = 2 * recall / (1 + recall)
    return out


COLUMNS = ("static_best", "static_mean", "dynamic", "consensus_tracked", "consensus_true", "select_oracle",
           "prob_single", "prob_fused_true", "prob_fused_tracked", "carve_ghost_true", "carve_vessel_true", "carve_ghost_tracked", "carve_vessel_tracked")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=4, help="synthetic cases")
    ap.add_argument("--real-cases", type=int, default=5, help="real-tree cases (0: none)")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--votes", type=int, default=2, help="other frames that must support a consensus point")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = default_model()
    config = ReconstructConfig(threads=args.threads)
    jobs = benchmark_jobs(args.cases, args.real_cases, args.data)
    short = {c: c.replace("consensus_", "cons ").replace("carve_", "").replace("_tracked", " trk")
             .replace("_true", " true").replace("static_", "st ").replace("prob_fused", "pfuse")
             .replace("prob_single", "p single") for c in COLUMNS}
    print(f"{'case':34s} " + " ".join(f"{short[c]:>11s}" for c in COLUMNS))
    rows: dict[str, list[dict]] = {}
    for cls, label, seed, side, tree in jobs:
        synth = synthesize_case(SynthCaseConfig(side=side, frames=args.frames, lag_range=(0.02, 0.06)),
                                rng=seed, tree=tree)
        row = budget(synth, model, config, args.votes)
        rows.setdefault(cls, []).append({"case": label, **row})
        print(f"{cls[:4] + ' ' + label:34s} " + " ".join(f"{row[c]:11.3f}" for c in COLUMNS), flush=True)
    report = {}
    print("\nmean F1 @1 mm per stage (carve: share of voxels kept by temporal carving):")
    for cls, rs in rows.items():
        means = {c: float(np.nanmean([r[c] for r in rs])) for c in COLUMNS}
        report[cls] = {"cases": rs, "mean": means}
        print(f"{cls:10s} ({len(rs)} cases x {args.frames} frames): " + ", ".join(f"{short[c]} {v:.3f}" for c, v in means.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
