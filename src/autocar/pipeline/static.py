"""Static reconstruction: two vessel masks + geometry -> centre-line tree, radii, mesh.

Per frame pair (view A frame k, view B frame k): sparse backward projection
(:mod:`autocar.sbp`), the trained network's occupancy and centerness on the
hull voxels (:mod:`autocar.net`), then the centre-line graph and its tubular
mesh (:mod:`autocar.graph`). Frames are reconstructed independently here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry import CArmView, masks_for_views
from autocar.graph.extract import EMPTY_GRAPH, extract_graph
from autocar.graph.ghost_score import GhostScorer, default_scorer, node_probability
from autocar.graph.prune import PruneConfig, complete_from_hull, prune_redundant_branches
from autocar.io.case import Case
from autocar.io.results import Reconstruction
from autocar.net.model import AutocarNet
from autocar.net.train import load_model
from autocar.graph.bridge import bridge_gaps
from autocar.graph.refine import RefineConfig, refine_centerline
from autocar.sbp.carve import SBPConfig, carve, distance_maps
from autocar.sbp.epipolar import estimate_alignment, warp_record

__all__ = ["ReconstructConfig", "FrameResult", "default_model", "reconstruct_pair", "reconstruct_case",
           "write_result", "hull_skeleton_graph", "paired_frames"]

if TYPE_CHECKING:
    from autocar.dynamic.phase import FramePairing

WEIGHTS = "autocar_static.pt"


@dataclass(frozen=True)
class ReconstructConfig:
    """Options of the static reconstruction.

    threshold : occupancy probability above which a hull voxel is vessel (0.2: measured
        on held-out weakly synchronised pairs, F1 @1 mm 0.58 vs 0.51 at 0.5, benchmarks/bench_reconstruct.py).
    sbp_margin_px : carving tolerance for weakly synchronised views (px).
    min_component_mm : smaller isolated pieces are dropped as ghosts.
    mesh_sections : polygon sides of the tube mesh.
    threads : torch threads on CPU.
    prune_ghosts : remove branches that explain no 2D centre-line pixel the rest of the
        tree does not, in every view (:func:`autocar.graph.prune.prune_redundant_branches`).
    complete_from_hull : with a network, first add the branches of the (ghost-pruned)
        hull graph that explain pixels the network's tree leaves unexplained in every
        view (:func:`autocar.graph.prune.complete_from_hull`).
    learned_ghost_order : with a network, both prunings remove the redundant branch
        the shipped ghost scorer (:mod:`autocar.graph.ghost_score`) finds most likely a
        ghost first, instead of the hand-made order (largest width disagreement first).
        Off by default: on held-out synthetic pairs it raises F1 @1 mm (weakly
        synchronised 0.677 -> 0.686, trees turned 30 deg 0.657 -> 0.698) but lowers it on
        the real CT trees (0.498 -> 0.468), where the network's belief, its strongest
        feature, is worth less (``benchmarks/bench_reconstruct.py``, method
        ``network-learned``).
    align_views : first warp view B's mask across its epipolar lines (an offset and a
        stretch) until the two masks cross the same number of vessels on every epipolar
        line (:mod:`autocar.sbp.epipolar`; weakly synchronised views). The reconstruction
        is then consistent with view A's geometry and with view B warped by
        :attr:`FrameResult.view_warp`. True / False: always / never. None (default):
        frame pairs reconstructed on their own are aligned, dynamic reconstructions
        (:func:`autocar.pipeline.dynamic.reconstruct_dynamic`) are not. Measured
        (``benchmarks/bench_reconstruct.py``, method ``network-unaligned``): on 10 held-out
        weakly synchronised pairs F1 @1 mm 0.677 -> 0.711; synchronised, turned and real CT
        pairs are almost never warped (0.805 -> 0.803, 0.657, 0.498 -> 0.496). Dynamic runs
        (``benchmarks/bench_dynamic.py --align-views on``) gain nothing (F1 0.703 -> 0.702)
        and the demo loses (0.458 -> 0.295): the drift along the epipolar lines, which no
        pair can see, then moves the whole tracked tree in depth.
    max_ghost_probability : with the learned order, the final pruning also removes
        branches the scorer gives a higher ghost probability even when they are the only
        explanation of some pixels; 1 (default) = never. On the tuning pairs
        (``benchmarks/tune_prune.py --only-order``) 0.8 trades recall for precision:
        F1 @1 mm 0.789 -> 0.784 synchronised, 0.648 -> 0.654 weakly synchronised.
    bridge_gap_mm : last, pieces of the tree closer than this (mm) are joined where the
        straight gap between them projects onto vessel in both masks
        (:func:`autocar.graph.bridge.bridge_gaps`); 0 = never. On 40 tuning pairs
        (``benchmarks/tune_bridge.py``: seeds 1.5e6+ weak and synchronised, 1.8e6+ weak)
        the ostium :mod:`autocar.quant` picks lies within 5 mm of the true one in 30 of
        the 40 pairs without bridging, 33 / 36 / 36 with 4 / 8 / 12 mm (pieces per tree
        6.1 -> 3.6 at 12 mm); F1 @1 mm is unchanged (0.673 / 0.793 / 0.637 -> 0.675 /
        0.798 / 0.638 at 12 mm).
    refine_centerline : last, move every node onto the vessel midline of both views
        (sub-pixel edges along each node's 2D normal, with a bending term for the
        direction two views cannot see; :func:`autocar.graph.refine.refine_centerline`,
        options ``refine``). On 10 tuning pairs (seeds 1.5e6+) F1 @1 mm 0.796 -> 0.833
        synchronised, 0.645 -> 0.666 weakly synchronised, mean distance 1.38 -> 1.21 and
        2.06 -> 1.96 mm, for ~0.1 s per pair.
    refine : the options of that step (:class:`autocar.graph.refine.RefineConfig`).
    """

    threshold: float = 0.2
    sbp_margin_px: float = 1.0
    min_component_mm: float = 8.0
    mesh_sections: int = 12
    threads: int = 2
    prune_ghosts: bool = True
    complete_from_hull: bool = True
    learned_ghost_order: bool = False
    max_ghost_probability: float = 1.0
    align_views: bool | None = None
    bridge_gap_mm: float = 12.0
    refine_centerline: bool = True
    refine: RefineConfig = field(default_factory=RefineConfig)

    def raw_hull(self) -> "ReconstructConfig":
        """The same options for baseline (a), ``--method hull-skeleton``: every hull voxel's
        skeleton, no small pieces removed, no ghost pruning, no epipolar alignment, no gap bridging,
        no centre-line refinement."""
        return replace(self, min_component_mm=0.0, prune_ghosts=False, align_views=False, bridge_gap_mm=0.0,
                       refine_centerline=False)


@dataclass
class FrameResult:
    """One reconstructed frame pair: the graph, what the hull held, and timings (s).

    ``view_warp`` is the (2, 3) pixel map of the epipolar alignment of view B (warped
    (row, col) -> original image, :func:`autocar.sbp.epipolar.apply_view_warp`), None when
    view B was not warped: the graph projects onto view B's image through it.
    """

    graph: CenterlineGraph
    hull_voxels: int
    kept_voxels: int
    kept_per_level: tuple[int, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    postprocess: dict[str, float] = field(default_factory=dict)
    view_warp: tuple[tuple[float, ...], ...] | None = None


def default_model(device: str | torch.device = "cpu") -> AutocarNet:
    """The weights shipped in the package (trained by ``autocar train``; see weights/README.md)."""
    ref = resources.files("autocar") / "weights" / WEIGHTS
    with resources.as_file(ref) as path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"shipped weights {path} are missing from the installed package")
        return load_model(path, device=device)


def reconstruct_pair(
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    model: AutocarNet | None,
    config: ReconstructConfig = ReconstructConfig(),
    *,
    scorer: GhostScorer | None = None,
    examples: list | None = None,
) -> FrameResult:
    """Reconstruct one frame pair; ``model=None`` keeps every hull voxel (the no-network baseline).

    ``scorer`` replaces the shipped ghost scorer (used only when
    ``config.learned_ghost_order`` and a model is given). ``examples``, when a list,
    collects the branch features of both prunings (:func:`autocar.graph.ghost_score.
    train_ghost_scorer`'s training data; see :func:`prune_redundant_branches`).
    """
    masks = masks_for_views(masks, views)
    times: dict[str, float] = {}
    warp = None
    if config.align_views is not False and len(views) == 2:
        t = time.perf_counter()
        alignment = estimate_alignment(masks, views)
        if alignment.accepted:
            warp = tuple(tuple(row) for row in alignment.matrix)
            masks = [masks[0], alignment.warp(masks[1])]
        times["align"] = time.perf_counter() - t
    t = time.perf_counter()
    hull = carve(masks, list(views), SBPConfig(margin_px=config.sbp_margin_px))
    times["sbp"] = time.perf_counter() - t
    n = len(hull.coords)
    if n == 0:
        return FrameResult(EMPTY_GRAPH, 0, 0, tuple(hull.kept_per_level), times, hull.reason or "empty hull",
                           view_warp=warp)
    t = time.perf_counter()
    if model is None:
        prob = np.ones(n, np.float32)
    else:
        torch.set_num_threads(config.threads)
        dist = torch.as_tensor(distance_maps(masks), dtype=torch.float32)
        with torch.no_grad():
            logit, _ = model(dist, hull, list(views))
        prob = torch.sigmoid(logit).numpy()
    times["network"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = extract_graph(hull, prob, masks, views, threshold=config.threshold,
                          min_component_mm=config.min_component_mm)
    times["graph"] = time.perf_counter() - t
    post: dict[str, float] = {}
    if model is None or not config.learned_ghost_order or not (config.prune_ghosts or config.complete_from_hull):
        scorer = None  # (its features include the network's probability)
    elif scorer is None:
        scorer = default_scorer()

    def probability_at(g: CenterlineGraph) -> np.ndarray | None:
        return None if model is None else node_probability(hull, prob, g.nodes)

    if model is not None and config.complete_from_hull:
        t = time.perf_counter()
        hull_graph = extract_graph(hull, np.ones(n, np.float32), masks, views, threshold=0.5,
                                   min_component_mm=config.min_component_mm)
        # Complete from the hull graph pruned on its own: fewer ghosts to add (F1 @1 mm
        # 0.74 -> 0.78 on tuning seeds 1.5e6+, synchronised).
        hull_graph, _ = prune_redundant_branches(hull_graph, masks, views,
                                                 PruneConfig(min_component_mm=config.min_component_mm),
                                                 scorer=scorer, node_prob=probability_at(hull_graph),
                                                 examples=examples)
        graph, added = complete_from_hull(graph, hull_graph, masks, views)
        post["branches_added_from_hull"] = added
        times["complete"] = time.perf_counter() - t
    if config.prune_ghosts and graph.num_edges:
        t = time.perf_counter()
        final = PruneConfig(min_component_mm=config.min_component_mm, max_ghost_probability=config.max_ghost_probability)
        graph, report = prune_redundant_branches(graph, masks, views, final, scorer=scorer,
                                                 node_prob=probability_at(graph), examples=examples)
        post["ghost_branches_removed"] = report.removed
        post["ghost_length_removed_mm"] = round(report.removed_length_mm, 1)
        times["prune"] = time.perf_counter() - t
    if config.bridge_gap_mm > 0 and graph.num_edges:
        t = time.perf_counter()
        graph, bridged = bridge_gaps(graph, masks, views, max_gap_mm=config.bridge_gap_mm)
        post["gaps_bridged"] = bridged
        times["bridge"] = time.perf_counter() - t
    if config.refine_centerline and graph.num_edges:
        t = time.perf_counter()
        graph, moved = refine_centerline(graph, masks, views, config.refine)
        post["refine_mean_shift_mm"] = round(moved.mean_shift_mm, 3)
        times["refine"] = time.perf_counter() - t
    if model is None:
        reason = "" if graph.num_nodes else "the hull left no centre line"
    else:
        reason = "" if graph.num_nodes else "no voxel predicted as vessel"
    return FrameResult(graph, n, int((prob >= config.threshold).sum()), tuple(hull.kept_per_level), times, reason, post,
                       warp)


def hull_skeleton_graph(masks: Sequence[np.ndarray], views: Sequence[CArmView],
                        config: ReconstructConfig = ReconstructConfig()) -> FrameResult:
    """Baseline (a): the raw two-view hull skeletonised, no network, no ghost removal."""
    return reconstruct_pair(masks, views, None, config.raw_hull())


def paired_frames(case: Case, frames: int | None = None, *, usable_a: np.ndarray | None = None,
                  usable_b: np.ndarray | None = None) -> "FramePairing":
    """Pair the first two views' frames by cardiac phase and check every paired mask is non-empty.

    ``usable_a`` / ``usable_b`` restrict the frames paired (see
    :func:`autocar.dynamic.phase.pair_case_views`). Raises CaseFormatError
    naming the view and frame of an empty mask.
    """
    from autocar.dynamic.phase import pair_case_views

    a, b = case.views[0], case.views[1]
    try:
        pairing = pair_case_views(a, b, frames=frames, usable_a=usable_a, usable_b=usable_b)
    except CaseFormatError as exc:
        raise CaseFormatError(f"{case.path}: {exc}") from None
    for cv, idx in ((a, pairing.index_a), (b, pairing.index_b)):
        for k in np.unique(idx):
            if not np.any(cv.frames[k]):
                raise CaseFormatError(f"{case.path}: view {cv.name} frame {int(k)} has an empty vessel mask")
    return pairing


def reconstruct_case(
    case: Case,
    model: AutocarNet | None = None,
    config: ReconstructConfig = ReconstructConfig(),
    *,
    frames: int | None = None,
    use_network: bool = True,
    progress: bool = True,
) -> tuple[Reconstruction, list[FrameResult]]:
    """Reconstruct every frame pair of a mask case independently (static).

    ``model`` defaults to the shipped weights; ``use_network=False`` runs the
    no-network baseline (every hull voxel kept). ``frames`` limits the number
    of frame pairs.
    """
    from tqdm import tqdm

    if len(case.views) < 2:
        raise CaseFormatError(f"{case.path}: a reconstruction needs two views, got {len(case.views)}")
    a, b = case.views[0], case.views[1]
    for cv in (a, b):
        if cv.kind != "mask":
            raise CaseFormatError(
                f"{case.path}: view {cv.name} has kind '{cv.kind}'; reconstruction currently needs vessel masks "
                "(kind 'mask'); 2D segmentation of angiograms is not available yet"
            )
    if not use_network:
        model = None
    elif model is None:
        model = default_model()
    pairing = paired_frames(case, frames)
    n = len(pairing.index_a)
    results = []
    for k in tqdm(range(n), desc="reconstruct", unit="frame", disable=not progress):
        ia, ib = int(pairing.index_a[k]), int(pairing.index_b[k])
        results.append(reconstruct_pair([a.frames[ia], b.frames[ib]], [a.view, b.view], model, config))
    extra = {
        "method": ("autocar static (SBP + sparse U-Net + centre-line graph), frames independent" if model is not None
                   else "two-view hull (SBP) + centre-line graph, no network"),
        "views": {cv.name: cv.view.to_dict() for cv in (a, b)},
        "frame_pairs": pairing.to_list(),
        "frame_pairing": {"source": pairing.source, **({"note": pairing.note} if pairing.note else {})},
    }
    frame_extra = tuple(
        {"hull_voxels": r.hull_voxels, "vessel_voxels": r.kept_voxels,
         "seconds": {k: round(v, 4) for k, v in r.seconds.items()}, **r.postprocess,
         **(warp_record(b.name, r.view_warp) if r.view_warp is not None else {}),
         **({"empty_reason": r.reason} if r.reason else {})}
        for r in results
    )
    return Reconstruction(frames=tuple(r.graph for r in results), extra=extra, frame_extra=frame_extra), results


def write_result(rec: Reconstruction, out: str | Path, *, mesh_sections: int = 12, overwrite: bool = True,
                 meshes: Sequence[object] | None = None) -> Path:
    """Write reconstruction.json and frame_XXX.ply into ``out`` atomically (all or nothing).

    ``meshes`` (one trimesh per frame, e.g. the deformed reference mesh of a
    dynamic result) replaces the tube mesh built from each frame's graph.
    """
    from autocar.io.atomic import atomic_directory
    from autocar.io.results import write_reconstruction
    from autocar.io.meshes import tube_mesh, write_ply

    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_reconstruction(rec, tmp)
        if meshes is not None and len(meshes) != len(rec.frames):
            raise ShapeError(f"{len(meshes)} meshes given for {len(rec.frames)} frames")
        for k, g in enumerate(rec.frames):
            mesh = meshes[k] if meshes is not None else tube_mesh(g, sections=mesh_sections)
            write_ply(mesh, Path(tmp) / f"frame_{k:03d}.ply")
    return out
