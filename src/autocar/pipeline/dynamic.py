"""Dynamic reconstruction of a multi-frame case: one tree that moves with the heart.

Steps (METHOD.md section 4, CASE_FORMAT v1 "Dynamic reconstructions"):

1. Leave out the frames of either run that hold too little contrast
   (:func:`autocar.dynamic.contrast.contrast_frames`; said in the result's
   ``frames_used``). Pair the other frames of the two views by cardiac phase
   (:func:`autocar.dynamic.phase.pair_case_views`), then, when both views
   have phases (given or estimated), synthesise view B's mask at view A's
   exact phase from the two B frames that bracket it (dense-flow
   interpolation, :func:`autocar.dynamic.lag.compensate_lag`; a frame with no
   bracket keeps its paired B frame and its lag).
2. Reconstruct every frame pair statically (:func:`autocar.pipeline.static.reconstruct_pair`),
   by default with its own epipolar alignment of view B (``frame_alignment``; the warped B
   masks are then used by every later step); with ``ReconstructConfig(align_views=True)``
   instead one warp for the sequence (:func:`sequence_alignment`), with ``False`` none.
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
6. Let every frame pair's static tree vote on where each node lies: the
   median, over the frames, of the correction from the node's tracked
   position to the nearest point of that frame's static tree
   (:func:`autocar.dynamic.fuse.fuse_positions`).
7. Measure every node's radius on the masks of every frame at its tracked
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

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic.complete import complete_from_frames, drop_unsupported_branches
from autocar.dynamic.contrast import contrast_frames
from autocar.dynamic.fuse import FuseConfig, fuse_positions
from autocar.dynamic.lag import compensate_lag
from autocar.dynamic.phase import FramePairing
from autocar.dynamic.track import TrackConfig, TrackResult, track_tree
from autocar.errors import CaseFormatError
from autocar.graph.extract import radii_from_masks
from autocar.io.case import Case
from autocar.io.results import Reconstruction
from autocar.evaluation.metrics import reprojection_scores
from autocar.pipeline.static import (
    FrameResult,
    ReconstructConfig,
    default_model,
    paired_frames,
    reconstruct_pair,
)
from autocar.sbp.epipolar import EpipolarAlignment, estimate_alignment, warp_mask, warp_record

__all__ = ["reconstruct_dynamic", "pick_reference", "deformed_meshes", "DynamicResult", "sequence_alignment"]


class DynamicResult:
    """Everything the dynamic run produced (the Reconstruction plus its working parts)."""

    def __init__(self, reconstruction: Reconstruction, track: TrackResult | None, static: list[FrameResult],
                 pairing: FramePairing, seconds: dict[str, float], reference_nodes: int | None = None,
                 masks: list[np.ndarray] | None = None) -> None:
        self.reconstruction = reconstruction
        # the (K, H, W) masks of views A and B the frames were reconstructed from (view B's
        # after the lag compensation and the epipolar warp)
        self.masks = masks
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


def _frame_warp(view_name: str, frame: FrameResult) -> dict[str, Any]:
    """The ``view_warp_px`` record of a frame whose B mask its own epipolar alignment warped, else {}."""
    return warp_record(view_name, frame.view_warp) if frame.view_warp is not None else {}


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
    frame_alignment: bool = True,
    fuse: FuseConfig | None = FuseConfig(),
    lag_compensation: bool = True,
    lag_interpolation: str = "blend",
    min_contrast: float | None = 0.5,
) -> DynamicResult:
    """Reconstruct a mask case over the heartbeat with one topology (see the module doc).

    ``frames`` limits the number of frame pairs; ``use_network=False`` uses
    the no-network hull for the static frames; ``complete_frames=False`` skips
    step 5 (the reference's topology only); ``lag_compensation=False`` skips
    the interpolation of step 1 (``lag_interpolation``: "blend" both
    bracketing frames or warp only the "nearest",
    :func:`autocar.dynamic.lag.interpolate_frame`) and ``fuse=None`` step 6 (the dynamic run as
    it was before them); ``min_contrast`` leaves out the frames of either run
    whose vessel area is below that share of the run's peak (contrast wash-in
    and wash-out, :func:`autocar.dynamic.contrast.contrast_frames`; None: every
    frame); ``frame_alignment`` (default) warps each frame pair's B mask
    across its epipolar lines (the static reconstruction's alignment, after
    the lag compensation) before the static step and the tracking, unless
    ``config.align_views`` is True (one warp for the sequence instead) or
    False (no warp). Measured on true masks it gains (``bench_dynamic``
    0.764 -> 0.799 synthetic, 0.575 -> 0.631 real CT trees; ``bench_pipeline``
    masks 0.651 -> 0.761); on the shipped U-Net's masks of grey images it
    does not (0.642 -> 0.633 F1 and 7 -> 12 false stenoses), so
    :func:`autocar.pipeline.workflow.run` turns it off for masks it segmented. A case
    whose frames are all empty after the static step returns the static
    (empty) frames.
    """
    from tqdm import tqdm

    _check_mask_views(case)
    a, b = case.views[0], case.views[1]
    selection: dict[str, Any] = {}
    usable: list[np.ndarray | None] = [None, None]
    if min_contrast is not None:
        for v, cv in enumerate((a, b)):
            found = contrast_frames(np.asarray(cv.frames), min_fraction=min_contrast)
            if not found.usable.any():
                raise CaseFormatError(f"{case.path}: view {cv.name}: every frame has an empty vessel mask")
            usable[v] = found.usable
            selection[cv.name] = {"used": np.flatnonzero(found.usable).tolist(),
                                  "left_out": {str(k): r for k, r in found.reasons.items()}}
    pairing = paired_frames(case, frames, usable_a=usable[0], usable_b=usable[1])
    n = len(pairing.index_a)
    if not use_network:
        model = None
    elif model is None:
        model = default_model()
    views = [a.view, b.view]
    masks = [np.asarray(a.frames)[pairing.index_a] > 0, np.asarray(b.frames)[pairing.index_b] > 0]
    seconds: dict[str, float] = {}
    lag = pairing.lag
    lag_record: dict[str, Any] | None = None
    if lag_compensation and pairing.phase_a is not None and pairing.phase_b is not None and b.num_frames > 1:
        t0 = time.perf_counter()
        keep_b = np.arange(b.num_frames) if usable[1] is None else np.flatnonzero(usable[1])
        comp = compensate_lag(np.asarray(b.frames)[keep_b] > 0, pairing.phase_b[keep_b],
                              pairing.phase_a[pairing.index_a], is_mask=True, mode=lag_interpolation)
        comp = dc_replace(comp, source=keep_b[comp.source])  # frame numbers of B's whole run
        made = comp.frames.reshape(len(comp.frames), -1).any(axis=1)
        masks[1] = np.where(made[:, None, None], comp.frames, masks[1])  # an empty result keeps the paired frame
        lag = np.where(made, comp.residual_lag, pairing.lag)
        lag_record = {**comp.to_dict(), "used": made.tolist()}
        seconds["lag_compensation"] = time.perf_counter() - t0
    warp_extra: dict[str, Any] = {}
    if config.align_views is True:
        t0 = time.perf_counter()
        alignment = sequence_alignment(masks, views)
        if alignment is not None:
            masks[1] = np.stack([alignment.warp(m) for m in masks[1]])
            warp_extra = warp_record(b.name, alignment.matrix)
        seconds["align"] = time.perf_counter() - t0
    per_frame_warp = frame_alignment and config.align_views is None
    config = dc_replace(config, align_views=None if per_frame_warp else False)
    t0 = time.perf_counter()
    static = [reconstruct_pair([masks[0][k], masks[1][k]], views, model, config)
              for k in tqdm(range(n), desc="static frames", unit="frame", disable=not progress)]
    if per_frame_warp:
        masks[1] = np.stack([warp_mask(m, r.view_warp) if r.view_warp is not None else m
                             for m, r in zip(masks[1], static)])
    seconds["static"] = time.perf_counter() - t0
    ref, scores = pick_reference(static, masks, views, lag)
    extra: dict[str, Any] = {
        "method": "autocar dynamic (static reference frame tracked with an embedded deformation graph)",
        "views": {cv.name: cv.view.to_dict() for cv in (a, b)},
        "frame_pairs": pairing.to_list(),
        "frame_pairing": {"source": pairing.source, **({"note": pairing.note} if pairing.note else {}),
                          "lag_fraction": [None if not np.isfinite(x) else round(float(x), 4) for x in pairing.lag]},
    }
    extra["view_alignment"] = ("one epipolar warp of view B per frame pair" if per_frame_warp else
                               "one epipolar warp of view B for the sequence" if warp_extra else "none")
    if selection:
        extra["frames_used"] = {
            "description": f"frames whose vessel area is at least {100 * min_contrast:.0f} % of their run's peak "
                           "(the others: contrast wash-in or wash-out, not paired)",
            **selection}
    if lag_record is not None:
        extra["lag_compensation"] = {
            "description": "view B's masks synthesised at view A's phase from B's two bracketing frames "
                           "(dense-flow interpolation); residual_lag_fraction is the lag left",
            **lag_record}
    if static[ref].graph.num_nodes == 0:
        extra["method"] = "nothing reconstructed in any frame"
        rec = Reconstruction(frames=tuple(r.graph for r in static), extra=extra,
                             frame_extra=tuple({"empty_reason": r.reason, **warp_extra, **_frame_warp(b.name, r)}
                                               for r in static))
        return DynamicResult(rec, None, static, pairing, seconds, masks=masks)
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
    # One tree: a join or bridge that closes a loop (two pieces each attached to the tree at both ends,
    # or a crossing read as a junction) would make a cycle, which no vessel tree has and no writer takes:
    # the longest edge of each cycle goes (shortest spanning forest, the same edges in every frame).
    keep = result.graphs[result.reference].forest_edges()
    if not keep.all():
        result.graphs = [CenterlineGraph(g.nodes, g.radii, g.edges[keep], g.labels, g.label_names)
                         for g in result.graphs]
        extra["cycle_edges_removed"] = int(np.sum(~keep))
    if fuse is not None and n > 1:
        fused = fuse_positions(result.graphs, [r.graph for r in static], fuse)
        result.graphs = fused.graphs
        extra["fusion"] = fused.summary()
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
         **warp_extra, **_frame_warp(b.name, static[k])}
        for k in range(n)
    )
    rec = Reconstruction(frames=tuple(result.graphs), extra=extra, frame_extra=frame_extra)
    return DynamicResult(rec, result, static, pairing, seconds, reference_nodes, masks=masks)


def deformed_meshes(result: DynamicResult, *, sections: int = 12) -> list[Any]:
    """One trimesh per frame: the reference frame's tube mesh moved by each frame's deformation.

    Every mesh has the same faces; vertex i is the same surface point in every frame.
    """
    import trimesh

    from autocar.io.meshes import tube_mesh

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
