"""Dynamic reconstruction of a multi-frame case: one tree that moves with the heart.

Steps (METHOD.md section 4, CASE_FORMAT v1 "Dynamic reconstructions"):

1. Pair the frames of the two views by cardiac phase
   (:func:`autocar.dynamic.phase.pair_case_views`).
2. With ``ReconstructConfig(align_views=True)`` (not by default), warp view B's masks
   across the epipolar lines, one warp for the sequence (:func:`sequence_alignment`). Reconstruct every
   frame pair statically (:func:`autocar.reconstruct.reconstruct_pair`).
3. Pick the reference frame: the static result that reprojects best onto both
   views' masks (mean reprojection Dice) times its agreement with the other
   frames' results (share of its centre line within 3 mm of theirs), among
   the best-synchronised pairs; ties to the earliest.
4. Track the reference tree through all frames (:func:`autocar.dynamic.track.track_tree`).
5. Drop the reference's leaf branches that no other frame's static tree
   shows (:func:`autocar.dynamic.complete.drop_unsupported_branches`), then
   complete the tracked tree with the branches other frames' static trees
   found and the reference lost, and bridge its gaps
   (:func:`autocar.dynamic.complete.complete_from_frames`).
6. Measure every node's radius on the masks of every frame at its tracked
   position; the median over frames is the radius in all frames.

The result has the same nodes, edges and radii in every frame; per-node
motion (peak-to-peak displacement over the frames, mm) goes into the
result's ``motion`` key, and :func:`deformed_meshes` moves one reference
mesh to every frame so the mesh vertices correspond too.
"""

from __future__ import annotations

import time
from dataclasses import replace as dc_replace
from typing import Any

import numpy as np

from autocar.dynamic.complete import complete_from_frames, drop_unsupported_branches
from autocar.dynamic.phase import FramePairing
from autocar.dynamic.track import TrackConfig, TrackResult, track_tree
from autocar.errors import CaseFormatError
from autocar.graph.extract import radii_from_masks
from autocar.io.case import Case
from autocar.io.results import Reconstruction
from autocar.metrics import reprojection_scores
from autocar.reconstruct import (
    FrameResult,
    ReconstructConfig,
    default_model,
    paired_frames,
    reconstruct_pair,
)
from autocar.sbp.epipolar import EpipolarAlignment, estimate_alignment, warp_record

__all__ = ["reconstruct_dynamic", "pick_reference", "deformed_meshes", "DynamicResult", "sequence_alignment"]


class DynamicResult:
    """Everything the dynamic run produced (the Reconstruction plus its working parts)."""

    def __init__(self, reconstruction: Reconstruction, track: TrackResult | None, static: list[FrameResult],
                 pairing: FramePairing, seconds: dict[str, float], reference_nodes: int | None = None) -> None:
        self.reconstruction = reconstruction
        # nodes of the reference's own tree that were kept: the first ones of every frame
        # (the rest came from other frames, step 5)
        self.reference_nodes = reference_nodes
        self.track = track
        self.static = static
        self.pairing = pairing
        self.seconds = seconds


def sequence_alignment(masks: list[np.ndarray], views: list[Any]) -> EpipolarAlignment | None:
    """One epipolar warp of view B's masks for the whole sequence, or None.

    ``masks``: the paired (T, H, W) masks of views A and B. Every frame pair is
    aligned on its own (:func:`autocar.sbp.epipolar.estimate_alignment`); when at least
    half of them accept a warp, the median offset and stretch of the accepted ones are
    used for all frames (breathing drift is shared by the frames of a few heartbeats, and
    one warp keeps the tracked tree from jumping between frames); otherwise none.

    One warp per frame pair follows the cardiac part of the drift too (it changes by up
    to 5 px within a held-out sequence) and lifts the static frames (F1 @1 mm 0.687 ->
    0.715, ``benchmarks/bench_dynamic.py --cases 6 --frames 8``), but the tracked result
    gains little (0.703 -> 0.707), its mean distance grows (1.46 -> 2.02 mm) and the
    still-heart jitter breaks its 0.3 mm target (0.20 -> 0.25 mm, max 0.33): spurious
    small warps of single frames move the tree. So one warp for the sequence.
    """
    found = [estimate_alignment([ma, mb], views) for ma, mb in zip(masks[0], masks[1])]
    taken = [f for f in found if f.accepted]
    if not found or 2 * len(taken) < len(found):
        return None
    return dc_replace(taken[0], offset_px=float(np.median([f.offset_px for f in taken])),
                      scale=float(np.median([f.scale for f in taken])))


def _check_mask_views(case: Case) -> None:
    if len(case.views) < 2:
        raise CaseFormatError(f"{case.path}: a reconstruction needs two views, got {len(case.views)}")
    for cv in case.views[:2]:
        if cv.kind != "mask":
            raise CaseFormatError(
                f"{case.path}: view {cv.name} has kind '{cv.kind}'; segment the angiograms into vessel masks first"
            )


def _agreement(static: list[FrameResult], tol_mm: float = 3.0) -> np.ndarray:
    """(K,) share of each static tree's centre line within ``tol_mm`` of the other frames' trees
    (mean over the other frames; 1 with a single frame). Real vessels are found in every frame,
    ghosts come and go with the pose of the heart."""
    from scipy.spatial import cKDTree

    pts = [r.graph.sample_segments(0.5)[0] if r.graph.num_edges else np.zeros((0, 3)) for r in static]
    trees = [cKDTree(p) if len(p) else None for p in pts]
    out = np.ones(len(static))
    for k, p in enumerate(pts):
        if len(p) == 0:
            out[k] = 0.0
            continue
        shares = [float(np.mean(t.query(p)[0] <= tol_mm)) for j, t in enumerate(trees) if j != k and t is not None]
        if shares:
            out[k] = float(np.mean(shares))
    return out


def pick_reference(
    static: list[FrameResult], masks: list[np.ndarray], views: list[Any], lag: np.ndarray | None = None,
    *, lag_tolerance: float = 0.01,
) -> tuple[int, list[float]]:
    """Index of the best static frame and every frame's mean reprojection Dice.

    ``masks`` holds one (K, H, W) array per view, paired with the static
    frames. A frame's score is its mean reprojection Dice times its
    agreement with the other frames (the share of its centre line within
    3 mm of theirs): after ghost pruning and hull completion every frame
    reprojects almost equally well, and the ghosts a frame keeps are what
    the other frames do not have. With the pairs' residual phase ``lag``
    (K,) known, only the pairs within ``lag_tolerance`` of the
    best-synchronised one are candidates: a lagging pair reconstructs a tree
    that is at no single phase, and every tracked frame inherits the
    reference's errors.
    """
    scores = []
    for k, r in enumerate(static):
        if r.graph.num_nodes == 0:
            scores.append(0.0)
            continue
        scores.append(float(np.mean([reprojection_scores(r.graph, v, m[k])["dice"] for v, m in zip(views, masks)])))
    order = np.asarray(scores) * _agreement(static)
    if lag is not None and np.all(np.isfinite(lag)) and len(lag) == len(scores):
        a = np.abs(np.asarray(lag, dtype=np.float64))
        order = np.where(a <= a.min() + lag_tolerance, order, -1.0 + order * 1e-3)
    return int(np.argmax(order)), scores


def reconstruct_dynamic(
    case: Case,
    model: Any = None,
    config: ReconstructConfig = ReconstructConfig(),
    track: TrackConfig = TrackConfig(),
    *,
    frames: int | None = None,
    use_network: bool = True,
    complete_frames: bool = True,
    progress: bool = True,
) -> DynamicResult:
    """Reconstruct a mask case over the heartbeat with one topology (see the module doc).

    ``frames`` limits the number of frame pairs; ``use_network=False`` uses
    the no-network hull for the static frames; ``complete_frames=False`` skips
    step 5 (the reference's topology only). A case whose frames are all
    empty after the static step returns the static (empty) frames.
    """
    from tqdm import tqdm

    _check_mask_views(case)
    a, b = case.views[0], case.views[1]
    pairing = paired_frames(case, frames)
    n = len(pairing.index_a)
    if not use_network:
        model = None
    elif model is None:
        model = default_model()
    views = [a.view, b.view]
    masks = [np.asarray(a.frames)[pairing.index_a] > 0, np.asarray(b.frames)[pairing.index_b] > 0]
    seconds: dict[str, float] = {}
    warp_extra: dict[str, Any] = {}
    if config.align_views is True:
        t0 = time.perf_counter()
        alignment = sequence_alignment(masks, views)
        if alignment is not None:
            masks[1] = np.stack([alignment.warp(m) for m in masks[1]])
            warp_extra = warp_record(b.name, alignment.matrix)
        seconds["align"] = time.perf_counter() - t0
    config = dc_replace(config, align_views=False)  # (static frames: warped here or not at all)
    t0 = time.perf_counter()
    static = [reconstruct_pair([masks[0][k], masks[1][k]], views, model, config)
              for k in tqdm(range(n), desc="static frames", unit="frame", disable=not progress)]
    seconds["static"] = time.perf_counter() - t0
    ref, scores = pick_reference(static, masks, views, pairing.lag)
    extra: dict[str, Any] = {
        "method": "autocar dynamic (static reference frame tracked with an embedded deformation graph)",
        "views": {cv.name: cv.view.to_dict() for cv in (a, b)},
        "frame_pairs": pairing.to_list(),
        "frame_pairing": {"source": pairing.source, **({"note": pairing.note} if pairing.note else {}),
                          "lag_fraction": [None if not np.isfinite(x) else round(float(x), 4) for x in pairing.lag]},
    }
    if static[ref].graph.num_nodes == 0:
        extra["method"] = "nothing reconstructed in any frame"
        rec = Reconstruction(frames=tuple(r.graph for r in static), extra=extra,
                             frame_extra=tuple({"empty_reason": r.reason, **warp_extra} for r in static))
        return DynamicResult(rec, None, static, pairing, seconds)
    t0 = time.perf_counter()
    result = track_tree(static[ref].graph, ref, views, masks, static_graphs=[r.graph for r in static],
                        config=track)
    seconds["track"] = time.perf_counter() - t0
    reference_nodes = static[ref].graph.num_nodes
    if complete_frames and n > 1:
        t0 = time.perf_counter()
        statics = [r.graph for r in static]
        result, rest, dropped = drop_unsupported_branches(result, static[ref].graph, statics)
        reference_nodes = rest.num_nodes
        others = [k for k in np.argsort(-np.asarray(scores), kind="stable").tolist() if k != ref]
        result, _, added = complete_from_frames(result, rest, statics, masks, views,
                                                order=others, bridge_gap_mm=config.bridge_gap_mm)
        extra["branches_dropped_unseen_in_other_frames"] = dropped
        extra["branches_added_from_frames"] = added
        seconds["complete"] = time.perf_counter() - t0
    # One lumen: each node's radius is measured on the masks of every frame at its tracked
    # position and the median kept for all frames (less noise than one frame's 2D EDT).
    per_frame = np.stack([radii_from_masks(g, [masks[0][k], masks[1][k]], views) for k, g in enumerate(result.graphs)])
    radii = np.median(per_frame, axis=0)
    result.graphs = [g.with_nodes(g.nodes, radii) for g in result.graphs]
    motion = result.peak_to_peak_mm()
    extra["reference_frame"] = ref
    extra["motion"] = {
        "description": "per node: largest distance between its positions in any two frames (mm)",
        "peak_to_peak_mm": [round(float(x), 3) for x in motion],
        "max_mm": round(float(motion.max()), 3),
        "mean_mm": round(float(motion.mean()), 3),
    }
    frame_extra = tuple(
        {"static_reprojection_dice": round(scores[k], 4),
         "matched_2d": [round(x, 3) for x in result.frames[k].matched_2d],
         "matched_3d": round(result.frames[k].matched_3d, 3),
         "seconds": {**{key: round(v, 4) for key, v in static[k].seconds.items()},
                     "track": round(result.frames[k].seconds, 4)},
         **warp_extra}
        for k in range(n)
    )
    rec = Reconstruction(frames=tuple(result.graphs), extra=extra, frame_extra=frame_extra)
    return DynamicResult(rec, result, static, pairing, seconds, reference_nodes)


def deformed_meshes(result: DynamicResult, *, sections: int = 12) -> list[Any]:
    """One trimesh per frame: the reference frame's tube mesh moved by each frame's deformation.

    Every mesh has the same faces; vertex i is the same surface point in every frame.
    """
    import trimesh

    from autocar.tubes import tube_mesh

    track = result.track
    if track is None:
        return [tube_mesh(r.graph, sections=sections) for r in result.static]
    base = tube_mesh(track.graphs[track.reference], sections=sections)
    rest = np.asarray(base.vertices, dtype=np.float64)
    # The mesh is built on the (refined) reference frame; each frame adds the
    # difference between its displacement field and the reference frame's.
    moved = track.move_points_all(rest)  # (T, M, 3)
    faces = np.asarray(base.faces)
    return [trimesh.Trimesh(vertices=rest + moved[k] - moved[track.reference], faces=faces, process=False)
            for k in range(len(track.graphs))]
