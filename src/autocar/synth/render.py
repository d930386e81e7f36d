"""Projecting a centre-line graph: vessel masks and lumen thickness (angiograms: ``angiogram``).

Vessels are tubes: the centre line with a radius at every node, both
linearly interpolated along each edge. All three renderers share one
preparation step (:func:`_segments`): edges are clipped in front of the
source, split so that every piece spans at most a few pixels on the
detector, and pieces that cannot touch the image are dropped.

- :func:`render_mask` rasterises each piece as the projected tube (the
  convex hull of its two end discs) with OpenCV sub-pixel drawing, and
  always draws the 1-pixel centre line so thin vessels never vanish.
- :func:`render_thickness` computes, for every pixel, the length of its ray
  inside the lumen (the Beer-Lambert path length) in closed form per piece,
  with the pieces of one vessel partitioning the tube (no double counting)
  and different vessels adding up.
- :func:`autocar.synth.angiogram.render_angiogram` turns that path length
  into a realistic X-ray image.

Geometry follows shared/GEOMETRY.md (see :class:`autocar.geometry.CArmView`).
Shape letters: N nodes, E edges, K pieces, H x W image (rows x columns).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView

__all__ = ["render_mask", "render_thickness", "DRAW_SHIFT", "DRAW_ONE"]

# Sub-pixel precision of OpenCV drawing: coordinates are given in 1/16 px.
DRAW_SHIFT = 4
DRAW_ONE = 1 << DRAW_SHIFT
# OpenCV's filled shapes include the pixels their outline passes through:
# drawing this much smaller makes a pixel vessel when its centre is inside.
_FILL_INSET_PX = 0.4
# Vertices of each half disc drawn at the ends of a piece (the polygon's
# radial error is r (1 - cos(pi / (2 (n - 1)))): 0.5 % of r for n = 12).
_ARC_VERTICES = 12
# Longest projected piece (px). Short pieces keep the linear radius and the
# straight projected outline accurate under perspective.
_MAX_PIECE_PX = 6.0
# Points closer than this fraction of SOD to the source plane are clipped away
# (they would project to near-infinite coordinates).
_MIN_DEPTH_FRACTION = 0.02
# Largest number of (piece, pixel) pairs evaluated at once (memory bound).
_CHUNK_PAIRS = 1 << 21


# --------------------------------------------------------------------------- pieces
def _slab_geometry(graph: CenterlineGraph) -> dict[str, np.ndarray]:
    """Per-edge geometry that makes the pieces of a tree partition its lumen.

    Slab planes: each edge's lumen is the part of its (infinite) cylinder
    between two planes. At a node the two *main* incident edges (the two of
    largest radius; the only two at a degree-2 node) share the mitre
    (bisector) plane, so the slabs of one vessel partition the bent tube
    without gaps or overlaps. Other edges (side branches, ends) are closed
    by the plane perpendicular to them.

    Parent cylinders: near a junction a side branch starts inside its
    parent's lumen. The edges of a side branch closer to the junction than
    four parent radii get the parent's local cylinder (through the junction
    node, along the parent's tangent, with the junction node's radius) so
    that the part of their chord inside it is not counted twice.

    Returns a dict of (E, 3) ``na``, ``nb`` (slab normals at the first and
    second node, along the edge), ``pc_point``, ``pc_axis`` (E, 3) and
    ``pc_radius`` (E,) mm (0 where an edge has no parent cylinder).
    """
    nodes, edges, radii = graph.nodes, graph.edges, graph.radii
    n_edges = len(edges)
    vec = nodes[edges[:, 1]] - nodes[edges[:, 0]]
    length = np.linalg.norm(vec, axis=1)
    axis = vec / np.maximum(length, 1e-12)[:, None]
    n = graph.num_nodes
    deg = graph.degrees()
    # Incidence entries: entry e is edge e seen from edges[e, 0], entry E + e
    # from edges[e, 1]; ``inc_out`` is the unit direction leaving the node.
    inc_node = np.concatenate([edges[:, 0], edges[:, 1]])
    inc_out = np.concatenate([axis, -axis])
    edge_radius = 0.5 * (radii[edges[:, 0]] + radii[edges[:, 1]])
    inc_rad = np.concatenate([edge_radius, edge_radius])
    order = np.lexsort((-inc_rad, inc_node))  # by node, then largest radius first
    first = np.searchsorted(inc_node[order], np.arange(n))
    rank = np.empty(2 * n_edges, dtype=np.int64)
    rank[order] = np.arange(2 * n_edges) - first[inc_node[order]]
    is_main = (rank < 2) & (deg[inc_node] >= 2)
    # Tangent through each node of degree >= 2 along its main pair: o2 - o1.
    tangent = np.zeros((n, 3))
    two = np.flatnonzero(deg >= 2)
    tangent[two] = inc_out[order[first[two] + 1]] - inc_out[order[first[two]]]
    tnorm = np.linalg.norm(tangent, axis=1)
    tangent = tangent / np.maximum(tnorm, 1e-12)[:, None]
    has_tangent = tnorm > 1e-6

    out: dict[str, np.ndarray] = {}
    for side, key in ((0, "na"), (1, "nb")):
        idx = edges[:, side]
        t = tangent[idx]
        dot = np.einsum("ij,ij->i", t, axis)
        # A hairpin (dot ~ 0) would give a plane almost parallel to the edge:
        # keep the perpendicular plane there.
        use = is_main[side * n_edges : (side + 1) * n_edges] & has_tangent[idx] & (np.abs(dot) > 0.2)
        normal = axis.copy()
        normal[use] = t[use] * np.sign(dot[use])[:, None]
        out[key] = normal

    pc_point = np.zeros((n_edges, 3))
    pc_axis = np.zeros((n_edges, 3))
    pc_radius = np.zeros(n_edges)
    side_entries = np.flatnonzero(~is_main & (deg[inc_node] >= 3))
    if len(side_entries):
        adj = graph.neighbours()
        edge_id = {}
        for e, (i, j) in enumerate(edges.tolist()):
            edge_id[(i, j)] = e
            edge_id[(j, i)] = e
        for entry in side_entries.tolist():
            e = entry % n_edges
            junction = int(inc_node[entry])
            if not has_tangent[junction]:
                continue
            reach = 4.0 * radii[junction]
            prev, cur = junction, int(edges[e, 1] if entry < n_edges else edges[e, 0])
            while True:
                pc_point[e] = nodes[junction]
                pc_axis[e] = tangent[junction]
                pc_radius[e] = radii[junction]
                if deg[cur] != 2 or np.linalg.norm(nodes[cur] - nodes[junction]) > reach:
                    break
                a_, b_ = adj[cur]
                nxt = b_ if a_ == prev else a_
                prev, cur = cur, nxt
                e = edge_id[(prev, cur)]
    out.update(pc_point=pc_point, pc_axis=pc_axis, pc_radius=pc_radius)
    return out


def _segments(
    graph: CenterlineGraph, view: CArmView, margin_px: float, with_planes: bool = False
) -> dict[str, np.ndarray]:
    """Clip, split and cull the edges of ``graph`` for ``view``.

    Returns a dict of per-piece arrays (K pieces): ``a``, ``b`` (K, 3) mm end
    points, ``ra``, ``rb`` (K,) mm radii, ``pa``, ``pb`` (K, 2) (row, col) px,
    ``rpa``, ``rpb`` (K,) px projected radii, and when ``with_planes`` the
    slab normals ``na``, ``nb`` (K, 3) and the parent cylinder
    ``pc_point``, ``pc_axis`` (K, 3), ``pc_radius`` (K,) of
    :func:`_slab_geometry`.
    """
    edges = graph.edges
    empty = {k: np.zeros((0, 3)) for k in ("a", "b", "na", "nb", "pc_point", "pc_axis")}
    empty.update({k: np.zeros(0) for k in ("ra", "rb", "rpa", "rpb", "pc_radius")})
    empty.update({k: np.zeros((0, 2)) for k in ("pa", "pb")})
    if graph.num_nodes == 0 or len(edges) == 0:
        return empty
    a = graph.nodes[edges[:, 0]]
    b = graph.nodes[edges[:, 1]]
    ra = graph.radii[edges[:, 0]]
    rb = graph.radii[edges[:, 1]]
    if with_planes:
        slab = _slab_geometry(graph)
    wa, wb = view.depth(a), view.depth(b)
    wmin = _MIN_DEPTH_FRACTION * view.sod_mm
    keep = (wa > wmin) | (wb > wmin)
    # Clip edges crossing the near plane w = wmin: move the end behind it.
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((wmin - wa) / (wb - wa), 0.0, 1.0)
    fix_a = keep & (wa <= wmin)
    fix_b = keep & (wb <= wmin)
    a_new = np.where(fix_a[:, None], a + t[:, None] * (b - a), a)
    ra_new = np.where(fix_a, ra + t * (rb - ra), ra)
    b_new = np.where(fix_b[:, None], a + t[:, None] * (b - a), b)
    rb_new = np.where(fix_b, ra + t * (rb - ra), rb)
    a, b, ra, rb = a_new[keep], b_new[keep], ra_new[keep], rb_new[keep]
    if with_planes:
        slab = {key: val[keep] for key, val in slab.items()}
    if len(a) == 0:
        return empty
    pa, _ = view.project(a)
    pb, _ = view.project(b)
    length_px = np.linalg.norm(pb - pa, axis=1)
    pieces = np.clip(np.ceil(length_px / _MAX_PIECE_PX), 1, 4096).astype(np.int64)
    # Split edge e into pieces[e] pieces; the inner cut planes of a straight
    # edge are perpendicular to it, the outer ones keep the edge's normals.
    edge = np.repeat(np.arange(len(a)), pieces)
    first = np.cumsum(pieces) - pieces
    k = np.arange(pieces.sum()) - np.repeat(first, pieces)
    t0 = (k / pieces[edge])[:, None]
    t1 = ((k + 1) / pieces[edge])[:, None]
    seg_a = a[edge] * (1 - t0) + b[edge] * t0
    seg_b = a[edge] * (1 - t1) + b[edge] * t1
    seg_ra = ra[edge] * (1 - t0[:, 0]) + rb[edge] * t0[:, 0]
    seg_rb = ra[edge] * (1 - t1[:, 0]) + rb[edge] * t1[:, 0]
    out = {"a": seg_a, "b": seg_b, "ra": seg_ra, "rb": seg_rb}
    if with_planes:
        axis = b - a
        axis = axis / np.maximum(np.linalg.norm(axis, axis=1), 1e-12)[:, None]
        is_first = k == 0
        is_last = k == pieces[edge] - 1
        out["na"] = np.where(is_first[:, None], slab["na"][edge], axis[edge])
        out["nb"] = np.where(is_last[:, None], slab["nb"][edge], axis[edge])
        for key in ("pc_point", "pc_axis", "pc_radius"):
            out[key] = slab[key][edge]
    out["pa"], _ = view.project(seg_a)
    out["pb"], _ = view.project(seg_b)
    big = 2.0 * max(view.rows, view.columns)
    out["rpa"] = np.minimum(view.radius_px(seg_ra, seg_a), big)
    out["rpb"] = np.minimum(view.radius_px(seg_rb, seg_b), big)
    # Cull pieces whose projected outline misses the image.
    reach = np.maximum(out["rpa"], out["rpb"]) + margin_px + 1.0
    lo = np.minimum(out["pa"], out["pb"]) - reach[:, None]
    hi = np.maximum(out["pa"], out["pb"]) + reach[:, None]
    vis = (hi[:, 0] >= -0.5) & (lo[:, 0] <= view.rows - 0.5) & (hi[:, 1] >= -0.5) & (lo[:, 1] <= view.columns - 0.5)
    return {key: val[vis] for key, val in out.items()}


# ----------------------------------------------------------------------------- mask
def render_mask(graph: CenterlineGraph, view: CArmView, *, dilate_px: float = 0.0) -> np.ndarray:
    """Binary vessel mask: pixels whose ray passes through a vessel tube.

    Each edge is a truncated cone between its two nodes' discs (radius
    linear along the edge); its projection is drawn as one convex polygon,
    the hull of the two projected discs (round joints between edges), at
    1/16-pixel precision, inset so that a pixel is set when its centre is
    inside the projected tube.
    The 1-pixel centre line is always drawn as well, so vessels thinner than
    a pixel stay connected and every node's nearest pixel is set.

    Parameters
    ----------
    graph : CenterlineGraph
        N nodes (mm, world LPS), radii (N,) mm, E edges. An empty graph gives
        an empty mask; isolated nodes (no edge) are drawn as discs.
    view : CArmView
        The pose and detector; the mask has shape ``view.shape``.
    dilate_px : float
        Extra radius in pixels added to every projected radius (>= 0).

    Returns
    -------
    mask : (H, W) ndarray of bool

    Notes
    -----
    A radius ``r`` mm at depth ``w`` mm projects to ``r SID / (w s)`` px
    (GEOMETRY.md); parts behind the source are clipped, parts off the image
    ignored.
    """
    if not (math.isfinite(dilate_px) and dilate_px >= 0):
        raise ValueError(f"dilate_px must be finite and >= 0, got {dilate_px!r}")
    img = np.zeros(view.shape, dtype=np.uint8)
    seg = _segments(graph, view, margin_px=dilate_px)
    if len(seg["a"]):
        # (row, col) -> OpenCV (x=col, y=row) fixed point.
        pa = np.round(seg["pa"][:, ::-1] * DRAW_ONE).astype(np.int64)
        pb = np.round(seg["pb"][:, ::-1] * DRAW_ONE).astype(np.int64)
        # OpenCV's filled shapes include every pixel their outline passes
        # through, i.e. pixels whose centre lies within ~0.5 px outside the
        # shape; drawing slightly smaller (0.4 px, which also covers the
        # inscribed polygon's radial error) makes the test "pixel centre
        # inside the projected tube".
        rpa = seg["rpa"] + dilate_px
        rpb = seg["rpb"] + dilate_px
        rda = np.maximum(rpa - _FILL_INSET_PX, 0.0)
        rdb = np.maximum(rpb - _FILL_INSET_PX, 0.0)
        # Each piece is drawn as one convex "stadium": the half discs at both
        # ends (on the far sides) joined by the tube's straight sides, i.e.
        # the projected truncated cone with round joints.
        d = (seg["pb"] - seg["pa"])[:, ::-1]
        dn = np.linalg.norm(d, axis=1)
        ang0 = np.arctan2(d[:, 1], d[:, 0])
        ang0 = np.where(dn > 1e-9, ang0, 0.0)
        half = np.linspace(0.5 * np.pi, 1.5 * np.pi, _ARC_VERTICES)
        ang_a = ang0[:, None] + half[None, :]  # arc around A, away from B
        ang_b = ang0[:, None] + half[None, :] + np.pi  # arc around B, away from A
        xy_a = seg["pa"][:, None, ::-1] + rda[:, None, None] * np.stack([np.cos(ang_a), np.sin(ang_a)], -1)
        xy_b = seg["pb"][:, None, ::-1] + rdb[:, None, None] * np.stack([np.cos(ang_b), np.sin(ang_b)], -1)
        polys = np.round(np.concatenate([xy_a, xy_b], axis=1) * DRAW_ONE).astype(np.int32)
        # Centre lines: one batched call (1-px, 8-connected), so thin
        # vessels stay connected and every node's pixel is set.
        lines = np.stack([pa, pb], axis=1).astype(np.int32)
        cv2.polylines(img, list(lines), False, 1, 1, cv2.LINE_8, DRAW_SHIFT)
        for i in np.flatnonzero(np.maximum(rpa, rpb) >= 0.5).tolist():
            cv2.fillConvexPoly(img, polys[i], 1, cv2.LINE_8, DRAW_SHIFT)
    # Isolated nodes: discs (or single pixels).
    if graph.num_nodes:
        lonely = np.flatnonzero(graph.degrees() == 0)
        if len(lonely):
            pts = graph.nodes[lonely]
            rc, w = view.project(pts)
            rp = np.minimum(view.radius_px(graph.radii[lonely], pts), 2.0 * max(view.shape)) + dilate_px
            with np.errstate(invalid="ignore"):
                ok = (
                    (w > _MIN_DEPTH_FRACTION * view.sod_mm)
                    & (rc[:, 0] + rp > -0.5) & (rc[:, 0] - rp < view.rows - 0.5)
                    & (rc[:, 1] + rp > -0.5) & (rc[:, 1] - rp < view.columns - 0.5)
                )
            for (r, c), rr in zip(rc[ok].tolist(), rp[ok].tolist()):
                ang = np.linspace(0.0, 2.0 * np.pi, 2 * _ARC_VERTICES, endpoint=False)
                rad = max(rr - _FILL_INSET_PX, 0.0)
                poly = np.stack([c + rad * np.cos(ang), r + rad * np.sin(ang)], axis=1)
                cv2.fillConvexPoly(img, np.round(poly * DRAW_ONE).astype(np.int32), 1, cv2.LINE_8, DRAW_SHIFT)
    return img.astype(bool)


# ------------------------------------------------------------------------ thickness
def _thickness(graph: CenterlineGraph, view: CArmView) -> np.ndarray:
    """Sum over pieces of the ray path length in the lumen, (H, W) float32 mm."""
    h, w = view.shape
    out = np.zeros(h * w, dtype=np.float64)
    if graph.num_nodes == 0 or graph.num_edges == 0:
        return out.reshape(h, w).astype(np.float32)
    seg = _segments(graph, view, margin_px=0.0, with_planes=True)
    k = len(seg["a"])
    if k == 0:
        return out.reshape(h, w).astype(np.float32)
    # Pixel bounding box of each piece (projected tube + 1 px).
    reach = np.maximum(seg["rpa"], seg["rpb"]) + 1.0
    lo = np.floor(np.minimum(seg["pa"], seg["pb"]) - reach[:, None]).astype(np.int64)
    hi = np.ceil(np.maximum(seg["pa"], seg["pb"]) + reach[:, None]).astype(np.int64)
    lo[:, 0] = np.clip(lo[:, 0], 0, h - 1)
    lo[:, 1] = np.clip(lo[:, 1], 0, w - 1)
    hi[:, 0] = np.clip(hi[:, 0], 0, h - 1)
    hi[:, 1] = np.clip(hi[:, 1], 0, w - 1)
    nrow = hi[:, 0] - lo[:, 0] + 1
    ncol = hi[:, 1] - lo[:, 1] + 1
    npair = nrow * ncol

    src = view.source_position
    u_ax, v_ax, d_ax = view.axes
    length = np.linalg.norm(seg["b"] - seg["a"], axis=1)
    axis = (seg["b"] - seg["a"]) / np.maximum(length, 1e-12)[:, None]
    w0 = src[None, :] - seg["a"]  # source relative to piece start
    e2_all = np.einsum("ij,ij->i", axis, w0)

    # Process pieces in chunks bounded by the number of pairs.
    csum = np.cumsum(npair)
    start = 0
    while start < k:
        base = csum[start - 1] if start else 0
        stop = int(np.searchsorted(csum, base + _CHUNK_PAIRS, side="right"))
        stop = max(stop, start + 1)
        idx = np.arange(start, stop)
        cnt = npair[idx]
        sid = np.repeat(idx, cnt)
        off = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        row = lo[sid, 0] + off // ncol[sid]
        col = lo[sid, 1] + off % ncol[sid]
        # Unit ray direction through each pixel centre.
        x_mm = (col - (w - 1) / 2.0) * view.spacing_mm[1]
        y_mm = (row - (h - 1) / 2.0) * view.spacing_mm[0]
        ray = view.sid_mm * d_ax[None, :] + x_mm[:, None] * u_ax[None, :] + y_mm[:, None] * v_ax[None, :]
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        ax = axis[sid]
        w0s = w0[sid]
        bcos = np.einsum("ij,ij->i", ray, ax)  # cos(theta)
        dd = np.einsum("ij,ij->i", ray, w0s)
        e2 = e2_all[sid]
        sin2 = 1.0 - bcos * bcos
        parallel = sin2 < 1e-10
        den = np.where(parallel, 1.0, sin2)
        lam_c = (bcos * e2 - dd) / den  # ray parameter of the closest approach
        s_c = (e2 - bcos * dd) / den  # axial coordinate there
        # Parallel rays: distance from the axis is the distance of A to the ray.
        lam_c = np.where(parallel, -dd, lam_c)
        s_c = np.where(parallel, 0.0, s_c)
        close = w0s + lam_c[:, None] * ray - s_c[:, None] * ax
        dist2 = np.einsum("ij,ij->i", close, close)
        lg = length[sid]
        frac = np.clip(s_c / np.maximum(lg, 1e-12), 0.0, 1.0)
        rad = seg["ra"][sid] * (1 - frac) + seg["rb"][sid] * frac
        # Only rays passing within the radius go on (typically half the box).
        sel = np.flatnonzero(dist2 < rad * rad)
        sid, row, col, ray = sid[sel], row[sel], col[sel], ray[sel]
        rad, dist2, sin2, lam_c = rad[sel], dist2[sel], sin2[sel], lam_c[sel]
        # Half chord in the infinite cylinder: sqrt(r^2 - d^2) / sin(theta).
        half = np.sqrt(np.maximum(rad * rad - dist2, 0.0) / np.maximum(sin2, 1e-10))
        half = np.where(parallel[sel], np.inf, half)
        # Clip the chord [lam_c - half, lam_c + half] to the piece's slab:
        # (P - A).na >= 0 and (P - B).nb <= 0 with P = S + lam * ray.
        t_lo = -half
        t_hi = half.copy()
        pc = w0[sid] + lam_c[:, None] * ray  # closest point relative to A
        for normal, rel, sign in (
            (seg["na"][sid], pc, 1.0),
            (seg["nb"][sid], pc - (seg["b"][sid] - seg["a"][sid]), -1.0),
        ):
            g0 = sign * np.einsum("ij,ij->i", rel, normal)  # constraint value at t = 0, need >= 0
            g1 = sign * np.einsum("ij,ij->i", ray, normal)  # its slope in t
            safe = np.abs(g1) > 1e-12
            tb = np.where(safe, -g0 / np.where(safe, g1, 1.0), 0.0)
            t_lo = np.where(safe & (g1 > 0), np.maximum(t_lo, tb), t_lo)
            t_hi = np.where(safe & (g1 < 0), np.minimum(t_hi, tb), t_hi)
            t_hi = np.where(~safe & (g0 < 0), -np.inf, t_hi)
        chord = np.maximum(t_hi - t_lo, 0.0)
        chord = np.where(np.isfinite(chord), chord, 0.0)
        # Side branches near a junction: remove the part of the chord inside
        # the parent's lumen (counted by the parent's own pieces).
        pr = seg["pc_radius"][sid]
        near = np.flatnonzero((pr > 0) & (chord > 0))
        if len(near):
            chord[near] -= _overlap_with_cylinder(
                src - seg["pc_point"][sid[near]],
                seg["pc_axis"][sid[near]],
                pr[near],
                ray[near],
                lam_c[near] + t_lo[near],
                lam_c[near] + t_hi[near],
            )
        out += np.bincount(row * w + col, weights=chord, minlength=h * w)
        start = stop
    return out.reshape(h, w).astype(np.float32)


def _overlap_with_cylinder(
    w0: np.ndarray, axis: np.ndarray, radius: np.ndarray, ray: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Length of the ray interval ``[lo, hi]`` lying inside an infinite cylinder.

    Rays ``S + lam * ray`` (unit ``ray`` (M, 3)), ``w0 = S - P`` (M, 3) with
    ``P`` a point on the cylinder axis (unit ``axis`` (M, 3)), ``radius``
    (M,) mm. Returns (M,) mm, >= 0.
    """
    b = np.einsum("ij,ij->i", ray, axis)
    dd = np.einsum("ij,ij->i", ray, w0)
    e2 = np.einsum("ij,ij->i", axis, w0)
    sin2 = np.maximum(1.0 - b * b, 1e-10)
    lam = (b * e2 - dd) / sin2
    s = (e2 - b * dd) / sin2
    close = w0 + lam[:, None] * ray - s[:, None] * axis
    dist2 = np.einsum("ij,ij->i", close, close)
    half = np.sqrt(np.maximum(radius * radius - dist2, 0.0) / sin2)
    ov = np.minimum(hi, lam + half) - np.maximum(lo, lam - half)
    return np.where(dist2 < radius * radius, np.clip(ov, 0.0, np.maximum(hi - lo, 0.0)), 0.0)


def render_thickness(graph: CenterlineGraph, view: CArmView) -> np.ndarray:
    """Length of each pixel's ray inside the vessel lumen (Beer-Lambert path), mm.

    For a straight tube of radius ``r`` whose axis makes the angle ``theta``
    with a ray passing at distance ``d`` from the axis, the chord is
    ``2 sqrt(r^2 - d^2) / sin(theta)``. Each edge piece contributes only the
    part of that chord lying in its own slab, bounded by the planes closing
    the piece: the mitre (bisector) plane at nodes of degree 2 and the
    perpendicular plane at ends and junctions. The slabs of one vessel thus
    partition its tube, so consecutive pieces never double count, and a
    vessel seen end-on gets its true (foreshortened, long) path instead of a
    blow-up. Contributions of different vessels crossing the same ray add,
    as separate lumens do in Beer-Lambert attenuation. At a junction the two
    largest incident edges continue the vessel (shared mitre plane) and a
    side branch's pieces within four parent radii of the junction drop the
    part of their chord inside the parent's local cylinder, so the side
    branch is counted only where it has left its parent. Free ends are cut
    flat (the mask draws them round).

    Parameters
    ----------
    graph : CenterlineGraph
        N nodes (mm), radii (N,) mm, E edges.
    view : CArmView

    Returns
    -------
    thickness : (H, W) ndarray of float32, mm (>= 0)
    """
    return _thickness(graph, view)


