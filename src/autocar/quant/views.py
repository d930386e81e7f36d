"""Foreshortening in a view, and the C-arm angles that show a segment best.

A vessel segment looks shorter on the image than it is when it runs partly
along the X-ray beam (foreshortening) and may hide behind other vessels
(overlap). Both are read off the projection of the 3D centre line, with the
geometry of ``autocar.geometry`` (shared/GEOMETRY.md): a world point ``p``
seen from pose ``(alpha, beta)`` lands at isocentre-plane millimetres

    ``x = (p . u) SOD / w``, ``y = (p . v) SOD / w``, ``w = p . d + SOD``,

which is the pixel position times the view's isocentre pixel spacing
(``CArmView.isocenter_spacing_mm``), so lengths read on the image at the
isocentre plane are directly comparable with 3D lengths:
``foreshortening % = 100 (1 - apparent / true)``. Perspective makes it
slightly negative for a segment between the isocentre and the source.

The optimal view of a segment (Chen & Carroll, "3-D reconstruction of
coronary arterial tree to optimize angiographic visualization", IEEE TMI
19(4), 2000) minimises, over a grid of primary x secondary angles,

    ``score = |foreshortening %| + overlap_weight * overlap %``

where overlap % is the share of the segment's samples whose projected lumen
touches the projected lumen of another vessel of the tree (projected centre
distance below the sum of the two projected radii); vessels within
``exclusion_mm`` along the tree of the segment (its own junctions, where
parent and daughter always touch) are left out. With the default weight 1
one percent of lost length costs as much as one percent of the segment
hidden. Ties (within 1e-6) go to the pose nearest to AP (smallest
``alpha^2 + beta^2``), then to the smaller primary angle. Angles are multiples of ``step_deg`` inside the
ranges, so AP 0/0 is always on the grid. The search is exact but lazy:
foreshortening is computed for the whole grid at once, overlap only for
poses whose foreshortening alone does not already exceed the best score.

Shape letters: K points of a segment, M points of other vessels, A poses,
P primary and S secondary angles.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError, ShapeError, TreeFormatError
from autocar.geometry import CArmView, view_axes
from autocar.quant.segments import (
    VesselTree,
    check_points,
    arc_length,
    smooth_polyline,
    thin_by_arc,
)

__all__ = [
    "ViewSearchOptions",
    "OptimalView",
    "isocenter_polyline_mm",
    "apparent_length_mm",
    "foreshortening_percent",
    "angle_grid",
    "foreshortening_map",
    "overlap_percent",
    "optimal_view",
    "segment_view_samples",
    "segment_optimal_view",
]


@dataclass(frozen=True)
class ViewSearchOptions:
    """Settings of the optimal-view search."""

    primary_range_deg: tuple[float, float] = (-90.0, 90.0)
    """Primary angles searched (RAO negative, LAO positive), deg."""
    secondary_range_deg: tuple[float, float] = (-45.0, 45.0)
    """Secondary angles searched (caudal negative, cranial positive), deg."""
    step_deg: float = 2.0
    """Grid step; the grid holds the multiples of it inside the ranges, deg."""
    overlap_weight: float = 1.0
    """Weight of overlap % against |foreshortening %| in the score."""
    sample_mm: float = 1.0
    """Spacing of the samples used for overlap, mm."""
    exclusion_mm: float = 5.0
    """Vessels closer than this along the tree to the segment do not count as overlap, mm."""

    def __post_init__(self) -> None:
        for name in ("step_deg", "sample_mm"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"ViewSearchOptions.{name} must be a finite number > 0, got {v!r}")
        for name in ("overlap_weight", "exclusion_mm"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"ViewSearchOptions.{name} must be a finite number >= 0, got {v!r}")
        for name, lim in (("primary_range_deg", 180.0), ("secondary_range_deg", 90.0)):
            r = getattr(self, name)
            ok = (
                isinstance(r, (tuple, list))
                and len(r) == 2
                and all(isinstance(x, (int, float)) and math.isfinite(x) for x in r)
                and -lim <= r[0] <= r[1] <= lim
            )
            if not ok:
                raise ValueError(f"ViewSearchOptions.{name} must be (low, high) within [-{lim}, {lim}], got {r!r}")


@dataclass(frozen=True)
class OptimalView:
    """The best pose found for a segment, with its foreshortening and overlap (percent)."""

    primary_deg: float
    secondary_deg: float
    foreshortening_percent: float
    overlap_percent: float
    score: float


# ------------------------------------------------------------ single view
def _points(points: np.ndarray, name: str = "points") -> np.ndarray:
    return check_points(points, name)


def _polyline_length(xy: np.ndarray) -> np.ndarray:
    """Length of polylines along axis -2: (..., K, D) -> (...)."""
    return np.linalg.norm(np.diff(xy, axis=-2), axis=-1).sum(axis=-1)


def isocenter_polyline_mm(points: np.ndarray, view: CArmView) -> np.ndarray:
    """Projection of points in a view, in isocentre-plane mm: (row, col) pixels times
    ``view.isocenter_spacing_mm``. Shapes: points (K, 3) mm -> (K, 2) mm."""
    if not isinstance(view, CArmView):
        raise TypeError(f"view must be a CArmView, got {type(view).__name__}")
    p = _points(points)
    rc, w = view.project(p)
    if np.any(~(w > 0)):
        raise GeometryError(f"points lie behind the X-ray source of view {view.label}")
    return rc * np.asarray(view.isocenter_spacing_mm)


def apparent_length_mm(points: np.ndarray, view: CArmView) -> float:
    """Length of the projected polyline at the isocentre plane, mm (points (K, 3) mm)."""
    return float(_polyline_length(isocenter_polyline_mm(points, view)))


def foreshortening_percent(points: np.ndarray, view: CArmView) -> float:
    """``100 (1 - apparent / true)`` of a polyline (K, 3) mm in a view; 0 for a zero-length one."""
    p = _points(points)
    true = float(_polyline_length(p))
    if true <= 0:
        return 0.0
    return 100.0 * (1.0 - apparent_length_mm(p, view) / true)


# -------------------------------------------------------------- pose grid
def angle_grid(options: ViewSearchOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Primary (P,) and secondary (S,) angles searched, deg: multiples of the step inside the ranges."""
    opt = options or ViewSearchOptions()

    def axis(lo: float, hi: float) -> np.ndarray:
        k0 = math.ceil(lo / opt.step_deg - 1e-9)
        k1 = math.floor(hi / opt.step_deg + 1e-9)
        return np.arange(k0, k1 + 1) * opt.step_deg

    return axis(*opt.primary_range_deg), axis(*opt.secondary_range_deg)


def _axes_for(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Detector axes (A, 3, 3), rows (u, v, d), from ``autocar.geometry.view_axes``."""
    if len(primary) == 0:
        return np.zeros((0, 3, 3))
    return np.stack([view_axes(float(a), float(b)) for a, b in zip(primary, secondary)])


@functools.lru_cache(maxsize=8)
def _grid(
    primary_range: tuple[float, float], secondary_range: tuple[float, float], step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flattened search grid: primary (A,), secondary (A,), axes (A, 3, 3); read-only, cached."""
    prim, sec = angle_grid(ViewSearchOptions(tuple(primary_range), tuple(secondary_range), step))
    aa, bb = np.meshgrid(prim, sec, indexing="ij")
    aa, bb = aa.ravel(), bb.ravel()
    axes = _axes_for(aa, bb)
    for arr in (aa, bb, axes):
        arr.setflags(write=False)
    return aa, bb, axes


def _project_iso(points: np.ndarray, axes: np.ndarray, sod_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (K, 3) through poses (A, 3, 3) -> isocentre-plane mm (A, K, 2) and scale SOD/w (A, K)."""
    cam = np.einsum("aij,kj->aki", axes, points)
    w = cam[..., 2] + sod_mm
    if np.any(w <= 0):
        raise GeometryError("points lie behind the X-ray source for some searched pose")
    scale = sod_mm / w
    return cam[..., :2] * scale[..., None], scale


def foreshortening_map(
    points: np.ndarray, primary_deg: np.ndarray, secondary_deg: np.ndarray, *, sod_mm: float
) -> np.ndarray:
    """Foreshortening % of a polyline for many poses.

    Parameters
    ----------
    points : (K, 3) mm.
    primary_deg, secondary_deg : (A,) pose angles, deg.
    sod_mm : source-isocentre distance of the C-arm, mm.

    Returns
    -------
    (A,) percent.
    """
    p = _points(points)
    a = np.asarray(primary_deg, dtype=np.float64).reshape(-1)
    b = np.asarray(secondary_deg, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ShapeError(f"primary_deg and secondary_deg must have the same shape, got {a.shape} and {b.shape}")
    return _foreshortening(p, _axes_for(a, b), float(sod_mm))


def _foreshortening(p: np.ndarray, axes: np.ndarray, sod_mm: float, chunk: int = 512) -> np.ndarray:
    """Foreshortening % of polyline p (K, 3) for poses given by their axes (A, 3, 3)."""
    true = float(_polyline_length(p))
    out = np.zeros(len(axes))
    if true <= 0:
        return out
    for start in range(0, len(axes), chunk):
        xy, _ = _project_iso(p, axes[start : start + chunk], sod_mm)
        out[start : start + chunk] = 100.0 * (1.0 - _polyline_length(xy) / true)
    return out


def overlap_percent(
    points: np.ndarray,
    radii: np.ndarray,
    others: np.ndarray,
    other_radii: np.ndarray,
    primary_deg: np.ndarray,
    secondary_deg: np.ndarray,
    *,
    sod_mm: float,
    chunk: int | None = None,
) -> np.ndarray:
    """Share of a segment's samples whose projected lumen touches another vessel's, percent.

    Parameters
    ----------
    points, radii : (K, 3), (K,) samples of the segment, mm.
    others, other_radii : (M, 3), (M,) samples of the other vessels, mm.
    primary_deg, secondary_deg : (A,) poses, deg.
    sod_mm : source-isocentre distance, mm.
    chunk : poses processed at once; None keeps the (chunk, K, M) block near 4 M values.

    Returns
    -------
    (A,) percent.
    """
    p = _points(points)
    o = _points(others, "others") if len(others) else np.zeros((0, 3))
    rp = np.asarray(radii, dtype=np.float64)
    ro = np.asarray(other_radii, dtype=np.float64)
    if rp.shape != (len(p),) or ro.shape != (len(o),):
        raise ShapeError(f"radii must match the points: got {rp.shape} for {len(p)} and {ro.shape} for {len(o)}")
    a = np.asarray(primary_deg, dtype=np.float64).reshape(-1)
    b = np.asarray(secondary_deg, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ShapeError(f"primary_deg and secondary_deg must have the same shape, got {a.shape} and {b.shape}")
    return _overlap(p, rp, o, ro, _axes_for(a, b), float(sod_mm), chunk)


def _overlap(
    p: np.ndarray, rp: np.ndarray, o: np.ndarray, ro: np.ndarray, axes: np.ndarray, sod_mm: float, chunk: int | None
) -> np.ndarray:
    """Overlap % (A,) of samples p (K, 3), radii rp (K,) against o (M, 3), ro (M,) for poses (A, 3, 3)."""
    out = np.zeros(len(axes))
    if len(p) == 0 or len(o) == 0:
        return out
    if chunk is None:
        chunk = max(1, min(64, 4_000_000 // (len(p) * len(o))))
    for start in range(0, len(axes), chunk):
        xp, sp = _project_iso(p, axes[start : start + chunk], sod_mm)
        xo, so = _project_iso(o, axes[start : start + chunk], sod_mm)
        # Lumens touch when |x_i - y_j| < a_i + b_j (projected centres x, y and radii a, b),
        # i.e. (|x_i|^2 - a_i^2) + (|y_j|^2 - b_j^2) - 2 (x_i . y_j + a_i b_j) < 0: one
        # batched product of augmented 5-vectors per pose. Centring on the segment keeps
        # the squares small enough for float32 (errors ~1e-3 mm^2).
        centre = xp.mean(axis=1, keepdims=True)
        xp = xp - centre
        xo = xo - centre
        ap = rp[None, :] * sp  # (A, K)
        ao = ro[None, :] * so  # (A, M)
        one_p = np.ones_like(ap)
        one_o = np.ones_like(ao)
        lhs = np.stack([xp[..., 0], xp[..., 1], ap, (xp**2).sum(axis=-1) - ap**2, one_p], axis=-1)
        rhs = np.stack([-2 * xo[..., 0], -2 * xo[..., 1], -2 * ao, one_o, (xo**2).sum(axis=-1) - ao**2], axis=1)
        gap = np.matmul(lhs.astype(np.float32), rhs.astype(np.float32))  # (A, K, M)
        out[start : start + chunk] = 100.0 * np.mean(np.any(gap < 0.0, axis=2), axis=1)
    return out


def optimal_view(
    points: np.ndarray,
    radii: np.ndarray,
    others: np.ndarray | None = None,
    other_radii: np.ndarray | None = None,
    *,
    sod_mm: float,
    options: ViewSearchOptions | None = None,
    overlap_points: np.ndarray | None = None,
    overlap_radii: np.ndarray | None = None,
) -> OptimalView:
    """Best pose for a segment (module docstring).

    Parameters
    ----------
    points : (K, 3) the segment's course, mm (foreshortening is measured on it).
    radii : (K,) its lumen radii, mm.
    others, other_radii : (M, 3), (M,) samples of the vessels it must not overlap; None for none.
    sod_mm : source-isocentre distance of the C-arm, mm.
    options : search settings.
    overlap_points, overlap_radii : (K', 3), (K',) samples of the segment used for the overlap
        test (default: ``points`` and ``radii``).

    Returns
    -------
    OptimalView
    """
    opt = options or ViewSearchOptions()
    p = _points(points)
    r = np.asarray(radii, dtype=np.float64)
    if r.shape != (len(p),):
        raise ShapeError(f"radii must have shape ({len(p)},), got {r.shape}")
    if len(p) < 2:
        raise TreeFormatError(f"a segment needs at least 2 points for a view search, got {len(p)}")
    if not (math.isfinite(sod_mm) and sod_mm > 0):
        raise GeometryError(f"sod_mm must be a finite number > 0, got {sod_mm}")
    o = np.zeros((0, 3)) if others is None else _points(others, "others")
    ro = np.zeros(0) if other_radii is None else np.asarray(other_radii, dtype=np.float64)
    sp = p if overlap_points is None else _points(overlap_points, "overlap_points")
    sr = r if overlap_radii is None else np.asarray(overlap_radii, dtype=np.float64)

    aa, bb, axes = _grid(tuple(opt.primary_range_deg), tuple(opt.secondary_range_deg), float(opt.step_deg))
    if len(aa) == 0:
        raise ValueError(f"the angle ranges hold no multiple of step_deg={opt.step_deg}")
    fs = _foreshortening(p, axes, float(sod_mm))
    near_ap = aa**2 + bb**2
    order = np.lexsort((near_ap, np.abs(fs)))
    ov = np.full(len(aa), np.nan)
    best = math.inf
    tol = 1e-6
    chunk = 64
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        if abs(fs[idx[0]]) > best + tol:
            break  # overlap >= 0: no later pose can beat the best score
        if len(o) and opt.overlap_weight > 0:
            ov[idx] = _overlap(sp, sr, o, ro, axes[idx], float(sod_mm), None)
        else:
            ov[idx] = 0.0
        best = min(best, float(np.min(np.abs(fs[idx]) + opt.overlap_weight * ov[idx])))
    score = np.abs(fs) + opt.overlap_weight * ov
    done = np.flatnonzero(np.isfinite(score))
    ties = done[score[done] <= best + tol]
    k = int(ties[np.argmin(near_ap[ties])])
    return OptimalView(
        primary_deg=float(aa[k]),
        secondary_deg=float(bb[k]),
        foreshortening_percent=float(fs[k]),
        overlap_percent=float(ov[k]),
        score=float(score[k]),
    )


# ------------------------------------------------------------------- tree
def _resample(points: np.ndarray, radii: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A polyline (K, 3) with radii (K,) resampled every <= ``step_mm`` of arc, ends kept."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    if s[-1] <= 0:
        return points[:1].copy(), radii[:1].copy()
    t = np.linspace(0.0, s[-1], int(math.ceil(s[-1] / step_mm)) + 1)
    pts = np.stack([np.interp(t, s, points[:, j]) for j in range(3)], axis=1)
    return pts, np.interp(t, s, radii)


def segment_view_samples(
    tree: VesselTree, segment_id: int, *, sample_mm: float = 1.0, exclusion_mm: float = 5.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Samples for the overlap test of one segment.

    Returns
    -------
    points, radii : (K, 3), (K,) along the segment's raw centre line every <= ``sample_mm``, mm.
    others, other_radii : (M, 3), (M,) every <= ``sample_mm`` along the rest of the tree,
        leaving out edges with a node within ``exclusion_mm`` along the tree of the segment, mm.
    """
    g = tree.graph
    nodes = np.asarray(tree.segments[segment_id].nodes, dtype=np.int64)
    pts, rad = _resample(g.nodes[nodes], g.radii[nodes], sample_mm)
    lengths = g.edge_lengths()
    n = g.num_nodes
    adj = coo_matrix(
        (np.concatenate([lengths, lengths]) + 1e-12, (np.concatenate(g.edges.T[::-1]), np.concatenate(g.edges.T))),
        shape=(n, n),
    ).tocsr()
    near = dijkstra(adj, directed=False, indices=nodes, limit=exclusion_mm, min_only=True)
    far_edge = (near[g.edges[:, 0]] > exclusion_mm) & (near[g.edges[:, 1]] > exclusion_mm)
    if not np.any(far_edge):
        return pts, rad, np.zeros((0, 3)), np.zeros(0)
    rest = CenterlineGraph(g.nodes, g.radii, g.edges[far_edge])
    pieces = [_resample(g.nodes[b], g.radii[b], sample_mm) for b in rest.branches()]
    return pts, rad, np.concatenate([p for p, _ in pieces]), np.concatenate([r for _, r in pieces])


def segment_optimal_view(
    tree: VesselTree,
    segment_id: int,
    *,
    sod_mm: float,
    options: ViewSearchOptions | None = None,
    course_smooth_mm: float = 1.0,
) -> OptimalView:
    """:func:`optimal_view` of one segment of a tree against all the other vessels.

    Foreshortening is measured on the segment's course smoothed with
    ``course_smooth_mm`` (as in measurements.json; nodes closer than
    ``options.sample_mm / 2`` thinned out), overlap on samples every
    ``options.sample_mm`` of the raw centre lines.
    """
    opt = options or ViewSearchOptions()
    seg = tree.segments[segment_id]
    g = tree.graph
    course = smooth_polyline(g.nodes[seg.nodes], course_smooth_mm)
    keep = thin_by_arc(arc_length(course), 0.5 * opt.sample_mm)  # dense CT centre lines
    pts, rad, others, orad = segment_view_samples(
        tree, segment_id, sample_mm=opt.sample_mm, exclusion_mm=opt.exclusion_mm
    )
    return optimal_view(
        course[keep],
        g.radii[seg.nodes][keep],
        others,
        orad,
        sod_mm=sod_mm,
        options=opt,
        overlap_points=pts,
        overlap_radii=rad,
    )
