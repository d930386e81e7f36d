"""Carry one centre-line tree through every frame pair (METHOD.md section 4, dynamic).

One reference frame's static reconstruction gives the topology: its nodes,
edges and radii are kept for every frame, and only the node positions move,
through one embedded deformation graph (:class:`DeformationGraph`, control
nodes on a ``grid_mm`` grid) built on the reference nodes. Frame by frame,
outwards from the reference in both directions, starting from the previous
frame's deformation:

1. Initialisation by optical flow: the current tree is projected into each
   view; the 2D points move by the dense DIS flow between the previous and
   the current frame of that view (:mod:`autocar.dynamic.flow`), and the
   deformation is fitted to these 2D targets in both views at once (two
   views pin the 3D motion, as in triangulation).
2. ``rounds`` matching-optimisation rounds: every unbranched path of the
   deformed tree is matched, keeping the order along the path
   (:func:`autocar.dynamic.matching.match_graph`), to the current frame's
   static 3D reconstruction and to each view's 2D centre-line pixels (the
   skeleton of the vessel mask); then the deformation minimises the squared
   3D distances and the squared reprojected 2D distances to the matches plus
   the as-rigid-as-possible regulariser, with L-BFGS. The matching radius
   shrinks from round to round.

2D distances are measured in pixels and converted to mm at the isocentre
(``px * isocentre spacing``), so 3D and 2D terms share the unit mm^2.
Because the deformation is always relative to the reference shape, a node's
position in frame k does not accumulate the errors of earlier frames beyond
the starting guess, and a still heart gives still nodes.

Shapes: N reference nodes, T frames, views (H, W) masks; positions world mm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from skimage.morphology import skeletonize

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic.deformation import DeformationGraph
from autocar.dynamic.flow import flow_targets
from autocar.dynamic.matching import match_graph
from autocar.errors import GeometryError, ShapeError
from autocar.geometry import CArmView
from autocar.geometry.torch_ops import project_points, projection_matrices

__all__ = ["TrackConfig", "TrackFrame", "TrackResult", "track_tree", "centreline_pixels"]


@dataclass(frozen=True)
class TrackConfig:
    """Options of the tracker.

    grid_mm : control-node spacing of the deformation graph, mm.
    k : control nodes per point.
    rounds : matching-optimisation rounds per frame.
    match_3d_mm : 3D matching radii per round (the last value repeats), mm.
    match_2d_px : 2D matching radii per round, px.
    weight_3d, weight_2d, weight_flow : weights of the 3D, 2D and flow terms.
    reg_weight, rot_weight : regulariser weights (see DeformationGraph.fit_loss).
    iterations : L-BFGS iterations per fit.
    use_flow : False skips the optical-flow initialisation.
    refine_reference : also run the matching rounds on the reference frame
        (sub-voxel 2D alignment of the static result), else it stays as is.
    """

    grid_mm: float = 5.0
    k: int = 4
    rounds: int = 3
    match_3d_mm: tuple[float, ...] = (4.0, 3.0, 2.0)
    match_2d_px: tuple[float, ...] = (10.0, 6.0, 4.0)
    weight_3d: float = 0.25
    weight_2d: float = 1.0
    weight_flow: float = 1.0
    reg_weight: float = 0.5
    rot_weight: float = 0.1
    iterations: int = 30
    use_flow: bool = True
    refine_reference: bool = True

    def __post_init__(self) -> None:
        for name in ("grid_mm", "weight_2d"):
            if not float(getattr(self, name)) > 0:
                raise GeometryError(f"TrackConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_3d", "weight_flow", "reg_weight", "rot_weight"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v >= 0):
                raise GeometryError(f"TrackConfig.{name} must be finite and >= 0, got {v}")
        if int(self.rounds) < 0 or int(self.iterations) < 1 or int(self.k) < 1:
            raise GeometryError("TrackConfig.rounds must be >= 0, iterations and k >= 1")
        for name in ("match_3d_mm", "match_2d_px"):
            vals = tuple(float(x) for x in getattr(self, name))
            if not vals or not all(np.isfinite(x) and x > 0 for x in vals):
                raise GeometryError(f"TrackConfig.{name} must be a non-empty tuple of positive numbers")


@dataclass
class TrackFrame:
    """What happened in one frame: matched fractions, final data loss (mm^2), seconds."""

    matched_3d: float = 0.0
    matched_2d: tuple[float, ...] = ()
    flow_points: int = 0
    loss: float = float("nan")
    seconds: float = 0.0


@dataclass
class TrackResult:
    """The tracked tree: one graph per frame (same topology) and the deformations.

    ``parameters[k]`` holds the deformation graph's (affine_delta, translation)
    of frame k, so any rest point (e.g. mesh vertices) can be moved to frame
    k with :meth:`move_points`.
    """

    graphs: list[CenterlineGraph]
    reference: int
    deformation: DeformationGraph
    parameters: list[tuple[torch.Tensor, torch.Tensor]]
    frames: list[TrackFrame] = field(default_factory=list)

    def move_points(self, points: np.ndarray, frame: int) -> np.ndarray:
        """(M, 3) rest points (reference frame, mm) moved to ``frame``."""
        _load_parameters(self.deformation, self.parameters[frame])
        return self.deformation.apply(points)

    def move_points_all(self, points: np.ndarray) -> np.ndarray:
        """(T, M, 3): rest points moved to every frame (one skinning for all frames)."""
        dg = self.deformation
        sk = dg.skin(points)
        out = []
        for p in self.parameters:
            _load_parameters(dg, p)
            with torch.no_grad():
                out.append(dg.deform(points, sk).numpy())
        return np.stack(out)

    def peak_to_peak_mm(self) -> np.ndarray:
        """(N,) largest distance between a node's positions in any two frames, mm."""
        x = np.stack([g.nodes for g in self.graphs])  # (T, N, 3)
        best = np.zeros(x.shape[1])
        for k in range(len(x)):
            best = np.maximum(best, np.linalg.norm(x - x[k], axis=2).max(axis=0))
        return best


def _load_parameters(dg: DeformationGraph, params: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Set the deformation graph's (affine_delta, translation) to a stored frame's values."""
    with torch.no_grad():
        dg.affine_delta.copy_(params[0])
        dg.translation.copy_(params[1])


def centreline_pixels(mask: np.ndarray) -> np.ndarray:
    """(K, 2) float (row, col) pixels of the 2D skeleton of a vessel mask."""
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise ShapeError(f"mask must be 2D, got shape {m.shape}")
    return np.argwhere(skeletonize(m)).astype(np.float64)


def _per_round(values: tuple[float, ...], r: int) -> float:
    return float(values[min(r, len(values) - 1)])


class _Problem:
    """The loss of one frame for one deformation graph (torch, float64)."""

    def __init__(self, views: Sequence[CArmView]) -> None:
        self.mats = projection_matrices(list(views), dtype=torch.float64)  # (V, 3, 4)
        self.scale2 = torch.tensor([float(np.mean(v.isocenter_spacing_mm)) ** 2 for v in views], dtype=torch.float64)

    def loss(
        self,
        targets_2d: list[tuple[np.ndarray, np.ndarray]],
        weight_2d: float,
        target_3d: tuple[np.ndarray, np.ndarray] | None,
        weight_3d: float,
    ) -> Any:
        terms2 = []
        for v, (t, ok) in enumerate(targets_2d):
            if ok.sum() == 0:
                continue
            idx = torch.as_tensor(np.flatnonzero(ok))
            terms2.append((v, idx, torch.as_tensor(t[ok], dtype=torch.float64)))
        t3 = None
        if target_3d is not None and target_3d[1].sum() > 0:
            ok3 = target_3d[1]
            t3 = (torch.as_tensor(np.flatnonzero(ok3)), torch.as_tensor(target_3d[0][ok3], dtype=torch.float64))
        mats, scale2 = self.mats, self.scale2

        def fn(x: torch.Tensor) -> torch.Tensor:
            total = x.new_zeros(())
            for v, idx, t in terms2:
                rc, _ = project_points(x[idx], mats[v])
                total = total + weight_2d * scale2[v] * ((rc - t) ** 2).sum(-1).mean()
            if t3 is not None:
                total = total + weight_3d * ((x[t3[0]] - t3[1]) ** 2).sum(-1).mean()
            return total

        return fn, bool(terms2) or t3 is not None


def track_tree(
    reference: CenterlineGraph,
    reference_frame: int,
    views: Sequence[CArmView],
    masks: Sequence[np.ndarray],
    *,
    static_graphs: Sequence[CenterlineGraph | None] | None = None,
    flow_frames: Sequence[np.ndarray] | None = None,
    config: TrackConfig = TrackConfig(),
) -> TrackResult:
    """Move ``reference`` (the tree of frame ``reference_frame``) to every frame.

    Parameters
    ----------
    reference : the reference frame's centre-line graph (N >= 1 nodes).
    reference_frame : its frame index in [0, T).
    views : the two (or more) views, V of them.
    masks : V arrays (T, H, W): each view's vessel mask of each paired frame
        (frame k of the result pairs masks[0][k], masks[1][k], ...).
    static_graphs : T static reconstructions (3D evidence; None or empty
        entries are skipped).
    flow_frames : V arrays (T, H, W) to compute optical flow on (e.g. the
        grey-level angiograms); the masks when None.
    config : see :class:`TrackConfig`.

    Returns
    -------
    TrackResult with T graphs sharing the reference's edges and radii.

    Raises
    ------
    ShapeError : inconsistent frame counts or sizes, empty reference.
    """
    if not isinstance(reference, CenterlineGraph) or reference.num_nodes == 0:
        raise ShapeError("the reference tree must be a CenterlineGraph with at least one node")
    views = list(views)
    mask_arrays = [np.asarray(m) for m in masks]
    if len(mask_arrays) != len(views) or not views:
        raise ShapeError(f"need one mask sequence per view, got {len(mask_arrays)} for {len(views)} views")
    t_count = mask_arrays[0].shape[0] if mask_arrays[0].ndim == 3 else -1
    for v, (m, view) in enumerate(zip(mask_arrays, views)):
        if m.ndim != 3 or m.shape[0] != t_count or m.shape[1:] != (view.rows, view.columns):
            raise ShapeError(
                f"masks[{v}] must have shape (T, {view.rows}, {view.columns}) with the same T for every view, "
                f"got {m.shape}"
            )
    if not 0 <= int(reference_frame) < t_count:
        raise ShapeError(f"reference_frame {reference_frame} is outside [0, {t_count})")
    flows = mask_arrays if flow_frames is None else [np.asarray(f) for f in flow_frames]
    if len(flows) != len(views) or any(f.shape != m.shape for f, m in zip(flows, mask_arrays)):
        raise ShapeError("flow_frames must hold one (T, H, W) array per view, shaped like the masks")
    if static_graphs is not None and len(static_graphs) != t_count:
        raise ShapeError(f"static_graphs has {len(static_graphs)} entries for {t_count} frames")

    ref = int(reference_frame)
    dg = DeformationGraph.from_graph(reference, spacing_mm=config.grid_mm, k=config.k)
    problem = _Problem(views)
    skeletons: dict[tuple[int, int], np.ndarray] = {}

    def skeleton(v: int, k: int) -> np.ndarray:
        if (v, k) not in skeletons:
            skeletons[(v, k)] = centreline_pixels(mask_arrays[v][k])
        return skeletons[(v, k)]

    def snapshot() -> tuple[torch.Tensor, torch.Tensor]:
        return dg.affine_delta.detach().clone(), dg.translation.detach().clone()

    def restore(p: tuple[torch.Tensor, torch.Tensor]) -> None:
        _load_parameters(dg, p)

    def current_graph() -> CenterlineGraph:
        return reference.with_nodes(dg.apply(reference.nodes))

    params: list[Any] = [None] * t_count
    stats: list[TrackFrame] = [TrackFrame() for _ in range(t_count)]
    params[ref] = snapshot()

    def step(prev: int, k: int) -> None:
        t0 = time.perf_counter()
        st = stats[k]
        restore(params[prev])
        if prev != k and config.use_flow and config.weight_flow > 0:
            g = current_graph()
            targets = []
            for v, view in enumerate(views):
                rc, _ = view.project(g.nodes)
                tg, ok = flow_targets(flows[v][prev], flows[v][k], rc, on_mask=mask_arrays[v][prev])
                targets.append((tg, ok))
            st.flow_points = int(sum(int(ok.sum()) for _, ok in targets))
            fn, has = problem.loss(targets, config.weight_flow, None, 0.0)
            if has:
                dg.fit_loss(fn, reg_weight=config.reg_weight, rot_weight=config.rot_weight,
                            iterations=config.iterations)
        static = None if static_graphs is None else static_graphs[k]
        if static is not None and static.num_nodes == 0:
            static = None
        for r in range(int(config.rounds)):
            g = current_graph()
            t3 = None
            if static is not None and config.weight_3d > 0:
                t3 = match_graph(g, static, max_distance_mm=_per_round(config.match_3d_mm, r))
                st.matched_3d = float(t3[1].mean())
            t2 = []
            for v, view in enumerate(views):
                pix = skeleton(v, k)
                if len(pix) == 0:
                    t2.append((np.zeros((g.num_nodes, 2)), np.zeros(g.num_nodes, bool)))
                    continue
                t2.append(match_graph(g, pix, max_distance_mm=_per_round(config.match_2d_px, r), project=view))
            st.matched_2d = tuple(float(ok.mean()) for _, ok in t2)
            fn, has = problem.loss(t2, config.weight_2d, t3, config.weight_3d)
            if not has:
                break
            res = dg.fit_loss(fn, reg_weight=config.reg_weight, rot_weight=config.rot_weight,
                              iterations=config.iterations)
            st.loss = res.data
        params[k] = snapshot()
        st.seconds = time.perf_counter() - t0

    if config.refine_reference:
        step(ref, ref)
    for k in range(ref + 1, t_count):
        step(k - 1, k)
    for k in range(ref - 1, -1, -1):
        step(k + 1, k)

    graphs = []
    for k in range(t_count):
        restore(params[k])
        graphs.append(current_graph())
    return TrackResult(graphs=graphs, reference=ref, deformation=dg, parameters=params, frames=stats)
