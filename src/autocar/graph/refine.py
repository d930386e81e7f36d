"""Move a reconstructed centre line onto the vessel centres seen in both views.

The centre line that comes out of the hull skeleton (:mod:`autocar.graph.extract`)
sits on a 0.5 mm voxel grid, inside a two-view hull whose cross-section is a
quadrilateral rather than a disc, so its nodes are often a few tenths of a
millimetre to a millimetre beside the vessel's axis. Each view measures that
offset directly: the projection of a tube's axis is the midline of its 2D
band. :func:`refine_centerline` measures, for every node and view, how far the
node's projection lies from the midpoint of the two vessel edges met along
the 2D normal of the projected centre line (sub-pixel, on the mask smoothed
with a Gaussian of ``smooth_px``), and solves for the node displacements that
cancel those offsets, in the least-squares sense, together with

- a bending term (second difference of the positions along each vessel) that
  ties the direction no view constrains (a vessel running along the
  epipolar plane; where the two views' normals coincide) to its neighbours,
  and
- a weak pull towards the start position, so nodes without evidence stay.

The linearised problem is sparse (3N unknowns) and solved exactly; a few
Gauss-Newton iterations re-measure the offsets at the moved positions. The
topology never changes; only node positions and, remeasured in the masks at
the new positions, radii.

Offsets are not used where the measurement is unreliable: the node's 2D
band is wider than ``max_width_ratio`` times the diameter expected from its
radius (overlapping vessels, bifurcations), the band is open within the
search window, no vessel pixel lies within ``snap_px`` of the projection, or
the vessel runs nearly along the view's rays (its projected direction, and so
its normal, is ill-defined).

Units: node positions mm (world, DICOM LPS); offsets and widths px.
Shapes: N nodes, E edges, V views, S samples along a normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sparse
from scipy import ndimage
from scipy.sparse.linalg import spsolve

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView, masks_for_views
from autocar.graph.extract import radii_from_masks

__all__ = ["RefineConfig", "RefineReport", "node_tangents", "centre_offsets", "refine_centerline"]


@dataclass(frozen=True)
class RefineConfig:
    """Options of :func:`refine_centerline`.

    iterations : Gauss-Newton steps (offsets re-measured after each).
    bending_weight : weight of a node's second difference (mm) against a 2D offset (px).
    prior_weight : weight of a node's displacement from its start (mm).
    max_step_mm : largest move of one node in one iteration.
    max_shift_mm : largest total move of one node.
    search_px : half length of the 2D normal searched for the vessel's edges (px; wide
        vessels search up to twice as far: half their expected diameter + snap_px + 3 px).
    snap_px : a node projecting on background uses the nearest vessel pixel on its
        normal within this distance; farther, that view gives no offset.
    max_width_ratio : a band wider than this times the expected diameter (plus 1.5 px)
        is an overlap or bifurcation and gives no offset.
    smooth_px : Gaussian sigma applied to each mask before sub-pixel edge finding.
    """

    iterations: int = 4
    bending_weight: float = 1.0
    prior_weight: float = 0.05
    max_step_mm: float = 1.0
    max_shift_mm: float = 3.0
    search_px: float = 8.0
    snap_px: float = 2.0
    max_width_ratio: float = 1.25
    smooth_px: float = 0.7

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("bending_weight", "max_step_mm", "max_shift_mm", "search_px", "max_width_ratio"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        for name in ("prior_weight", "snap_px", "smooth_px"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")


@dataclass(frozen=True)
class RefineReport:
    """What :func:`refine_centerline` did: mean and largest node move (mm), and the
    share of node-view pairs that gave an offset in the last iteration."""

    mean_shift_mm: float
    max_shift_mm: float
    measured_share: float


def node_tangents(nodes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Unit direction (N, 3) of the centre line at each node.

    The principal axis of the unit directions of the node's edges (sign-free, so a
    node between two edges gets their mean direction whatever their orientation);
    isolated nodes get (1, 0, 0).
    """
    n = len(nodes)
    scatter = np.zeros((n, 3, 3))
    if len(edges):
        d = nodes[edges[:, 1]] - nodes[edges[:, 0]]
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        outer = d[:, :, None] * d[:, None, :]
        np.add.at(scatter, edges[:, 0], outer)
        np.add.at(scatter, edges[:, 1], outer)
    lone = np.trace(scatter, axis1=1, axis2=2) == 0
    scatter[lone] = np.diag([1.0, 0.0, 0.0])
    return np.linalg.eigh(scatter)[1][:, :, -1]


def _projection_jacobian(view: CArmView, nodes: np.ndarray, h_mm: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Projected (N, 2) px and d(row, col)/d(x, y, z) (N, 2, 3) px/mm by central differences."""
    rc, _ = view.project(nodes)
    cols = []
    for e in np.eye(3) * h_mm:
        cols.append((view.project(nodes + e)[0] - view.project(nodes - e)[0]) / (2 * h_mm))
    return rc, np.stack(cols, axis=-1)


def centre_offsets(
    soft_mask: np.ndarray,
    view: CArmView,
    nodes: np.ndarray,
    tangents: np.ndarray,
    radii: np.ndarray,
    config: RefineConfig = RefineConfig(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signed offset of each node's projection from the 2D vessel midline of one view.

    Parameters
    ----------
    soft_mask : (H, W) float mask in [0, 1] (the vessel mask smoothed; edges at 0.5).
    view : the C-arm view of the mask.
    nodes, tangents : (N, 3) positions (mm) and unit centre-line directions.
    radii : (N,) mm, for the expected 2D width.

    Returns
    -------
    normals : (N, 2) unit 2D normal (row, col) of the projected centre line.
    jacobian : (N, 2, 3) px/mm of the projection at each node.
    offset : (N,) px along ``normals`` from the projection to the midpoint of the two
        edges; NaN where the view gives no reliable measurement (module doc).
    width : (N,) px between the two edges (NaN where no band was found).
    """
    n = len(nodes)
    rc, jac = _projection_jacobian(view, nodes)
    tau = np.einsum("nij,nj->ni", jac, tangents)
    tau_len = np.linalg.norm(tau, axis=1)
    tau = tau / np.maximum(tau_len[:, None], 1e-12)
    normals = np.stack([-tau[:, 1], tau[:, 0]], axis=1)
    offset = np.full(n, np.nan)
    width = np.full(n, np.nan)
    finite = np.isfinite(rc).all(axis=1) & np.isfinite(tau_len)
    if n == 0 or not finite.any():
        return normals, jac, offset, width
    # Full-length jacobian columns are ~magnification / spacing px per mm; a centre
    # line whose projection is much shorter runs along the rays of this view.
    along_ray = tau_len < 0.3 * np.median(tau_len[finite])
    expected = 2.0 * np.nan_to_num(np.asarray(view.radius_px(radii, nodes), float), nan=0.0)
    # Each node searches its normal over search_px, or farther for vessels wide enough
    # that an offset band would not fit (half a diameter + snap + 3 px), at most 2x.
    reach = np.clip(0.5 * expected + config.snap_px + 3.0, config.search_px, 2.0 * config.search_px)
    step = 0.25
    t = np.arange(-2.0 * config.search_px, 2.0 * config.search_px + 1e-9, step)
    s = len(t)
    mid = s // 2
    pts = np.where(finite[:, None, None], rc[:, None, :] + t[None, :, None] * normals[:, None, :], -1e6)
    vals = ndimage.map_coordinates(soft_mask, pts.reshape(-1, 2).T, order=1, cval=0.0).reshape(n, s)
    window = np.abs(t)[None, :] <= reach[:, None] + 1e-9
    inside = (vals > 0.5) & window
    idx = np.broadcast_to(np.arange(s), (n, s))
    # Sample on the band nearest to the projection (within snap_px).
    gap = np.where(inside, np.abs(idx - mid), s)
    k = np.argmin(gap, axis=1)
    near = gap[np.arange(n), k] * step <= config.snap_px
    last_out = np.maximum.accumulate(np.where(inside, -1, idx), axis=1)
    next_out = np.minimum.accumulate(np.where(inside, s, idx)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(n)
    lo = last_out[rows, k] + 1  # first inside sample of the band
    hi = next_out[rows, k] - 1  # last inside sample
    lo_c, hi_c = np.clip(lo, 1, s - 1), np.clip(hi, 0, s - 2)
    # The band is closed when the background samples bounding it lie inside the window.
    closed = (lo > 0) & (hi < s - 1) & window[rows, lo_c - 1] & window[rows, hi_c + 1]
    ok = finite & ~along_ray & near & closed
    v_lo0, v_lo1 = vals[rows, lo_c - 1], vals[rows, lo_c]
    v_hi0, v_hi1 = vals[rows, hi_c], vals[rows, hi_c + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = t[lo_c - 1] + np.clip((0.5 - v_lo0) / (v_lo1 - v_lo0), 0, 1) * step
        e2 = t[hi_c] + np.clip((v_hi0 - 0.5) / (v_hi0 - v_hi1), 0, 1) * step
    w = e2 - e1
    ok &= np.isfinite(w) & (w <= config.max_width_ratio * expected + 1.5)
    offset[ok] = 0.5 * (e1[ok] + e2[ok])
    width[finite & near & closed] = w[finite & near & closed]
    return normals, jac, offset, width


def _bending_rows(graph: CenterlineGraph) -> np.ndarray:
    """(K, 3) node triples (i, a, b): i has exactly the two neighbours a and b."""
    nb = graph.neighbours()
    return np.asarray([(i, a[0], a[1]) for i, a in enumerate(nb) if len(a) == 2], np.int64).reshape(-1, 3)


def refine_centerline(
    graph: CenterlineGraph,
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    config: RefineConfig = RefineConfig(),
) -> tuple[CenterlineGraph, RefineReport]:
    """Move the nodes of ``graph`` onto the vessel midlines of every view (module doc).

    Parameters
    ----------
    graph : centre-line graph (N nodes, mm) reconstructed from ``masks``.
    masks : one (H, W) vessel mask per view (the masks the graph was made from,
        warped ones included).
    views : the matching C-arm views.
    config : :class:`RefineConfig`.

    Returns
    -------
    (graph, report) : same nodes, edges and labels in the same order, new positions,
        radii remeasured in the masks (:func:`autocar.graph.extract.radii_from_masks`).
    """
    masks = masks_for_views(masks, views)
    if graph.num_nodes == 0 or graph.num_edges == 0 or config.iterations == 0:
        return graph, RefineReport(0.0, 0.0, 0.0)
    soft = [ndimage.gaussian_filter(np.asarray(m, np.float32), config.smooth_px) if config.smooth_px
            else np.asarray(m, np.float32) for m in masks]
    x0 = np.asarray(graph.nodes, float)
    x = x0.copy()
    n = len(x)
    bend = _bending_rows(graph)
    coord = np.arange(3)
    # Bending rows: alpha * (x_i - (x_a + x_b) / 2) = 0 per coordinate.
    kb = len(bend) * 3
    b_rows = np.repeat(np.arange(kb), 3)
    b_cols = (3 * bend[:, None, :] + coord[None, :, None]).reshape(-1)  # (K, 3 coords, 3 nodes)
    b_vals = np.tile(np.array([1.0, -0.5, -0.5]) * config.bending_weight, kb)
    measured = 0.0
    for _ in range(config.iterations):
        tangents = node_tangents(x, graph.edges)
        rows, cols, vals, rhs = [], [], [], []
        r0 = 0
        for m, view in zip(soft, views):
            normals, jac, off, _ = centre_offsets(m, view, x, tangents, graph.radii, config)
            ok = np.flatnonzero(np.isfinite(off))
            a = np.einsum("ni,nij->nj", normals[ok], jac[ok])  # px per mm along the normal
            rows.append(np.repeat(np.arange(r0, r0 + len(ok)), 3))
            cols.append((3 * ok[:, None] + coord).reshape(-1))
            vals.append(a.reshape(-1))
            rhs.append(off[ok])
            r0 += len(ok)
        measured = r0 / (n * len(views))  # (so far, one row per measured node-view pair)
        if kb:
            cur = x[bend[:, 0]] - 0.5 * (x[bend[:, 1]] + x[bend[:, 2]])
            rows.append(b_rows + r0)
            cols.append(b_cols)
            vals.append(b_vals)
            rhs.append(-config.bending_weight * cur.reshape(-1))
            r0 += kb
        if config.prior_weight > 0:
            rows.append(np.arange(r0, r0 + 3 * n))
            cols.append(np.arange(3 * n))
            vals.append(np.full(3 * n, config.prior_weight))
            rhs.append(-config.prior_weight * (x - x0).reshape(-1))
            r0 += 3 * n
        a_mat = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=(r0, 3 * n))
        # Unknowns no row touches (no offset, no bending, no prior) get a tiny
        # diagonal so the normal equations stay solvable; they then stay put.
        normal = (a_mat.T @ a_mat + sparse.identity(3 * n) * 1e-9).tocsc()
        delta = spsolve(normal, a_mat.T @ np.concatenate(rhs)).reshape(n, 3)
        if not np.all(np.isfinite(delta)):
            break
        step = np.linalg.norm(delta, axis=1, keepdims=True)
        delta *= np.minimum(1.0, config.max_step_mm / np.maximum(step, 1e-12))
        x = x + delta
        moved = x - x0
        dist = np.linalg.norm(moved, axis=1, keepdims=True)
        x = x0 + moved * np.minimum(1.0, config.max_shift_mm / np.maximum(dist, 1e-12))
    shift = np.linalg.norm(x - x0, axis=1)
    out = graph.with_nodes(x)
    out = out.with_nodes(x, radii_from_masks(out, masks, views))
    return out, RefineReport(float(shift.mean()), float(shift.max()), float(measured))
