"""Centre-line graph from a binary 3D volume (a label map or a predicted occupancy).

Pipeline: crop to the foreground, thin to a curve skeleton (Lee et al. 1994,
as implemented by :func:`skimage.morphology.skeletonize` in 3D), radius as the
world distance from each skeleton voxel to the nearest background voxel
centre (an exact Euclidean distance transform evaluated only where needed,
with a k-d tree of the background shell), 26-connected voxel graph,
minimum spanning forest on edge length (removes the small triangles that
26-connectivity creates at diagonal steps and breaks true cycles), iterative
spur pruning, collapse of junction clusters, then per-branch smoothing and
resampling to the requested node spacing.

Shapes: X, Y, Z volume axes; N nodes, E edges; positions in world mm.

References
----------
T.-C. Lee, R. L. Kashyap, C.-N. Chu, "Building skeleton models via 3-D medial
surface/axis thinning algorithms", CVGIP: Graphical Models and Image
Processing 56(6):462-478, 1994.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError

__all__ = ["graph_from_volume", "voxel_affine"]

# The 13 "forward" offsets of the 26-neighbourhood: each undirected voxel pair once.
_HALF_OFFSETS = np.array(
    [
        (di, dj, dk)
        for di in (-1, 0, 1)
        for dj in (-1, 0, 1)
        for dk in (-1, 0, 1)
        if (di, dj, dk) > (0, 0, 0)
    ],
    dtype=np.int64,
)


def voxel_affine(spacing_mm: Sequence[float], origin_mm: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 voxel -> world matrix of an axis-aligned grid.

    Parameters
    ----------
    spacing_mm : (3,) voxel size along the volume axes, mm, > 0.
    origin_mm : (3,) world position of voxel (0, 0, 0)'s centre, mm.

    Returns
    -------
    (4, 4) float array mapping homogeneous (i, j, k, 1) to (x, y, z, 1) mm.
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    origin = np.asarray(origin_mm, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ShapeError(f"spacing_mm must be 3 finite values > 0, got {spacing_mm!r}")
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise ShapeError(f"origin_mm must be 3 finite values, got {origin_mm!r}")
    a = np.eye(4)
    a[:3, :3] = np.diag(spacing)
    a[:3, 3] = origin
    return a


def _empty_graph() -> CenterlineGraph:
    return CenterlineGraph(nodes=np.zeros((0, 3)), radii=np.zeros(0), edges=np.zeros((0, 2), dtype=np.int64))


def _trace(adj: list[set[int]], start: int, nxt: int) -> list[int]:
    """Follow degree-2 voxels from ``start`` through ``nxt`` to the next end or junction."""
    path = [start, nxt]
    prev, cur = start, nxt
    while len(adj[cur]) == 2:
        a, b = adj[cur]
        step = b if a == prev else a
        if step == start:  # a pure cycle (cannot happen on a forest, kept for safety)
            break
        path.append(step)
        prev, cur = cur, step
    return path


def _path_length(pos: np.ndarray, path: Sequence[int]) -> float:
    p = pos[np.asarray(path)]
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def _smooth(values: np.ndarray, iterations: int) -> np.ndarray:
    """Laplacian smoothing of a polyline's rows with both ends fixed."""
    v = values.copy()
    if len(v) < 3:
        return v
    for _ in range(iterations):
        v[1:-1] = 0.5 * v[1:-1] + 0.25 * (v[:-2] + v[2:])
    return v


def _resample(points: np.ndarray, radii: np.ndarray, max_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform arc-length resampling; the two end points are kept exactly."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    pieces = max(1, int(np.ceil(total / max_step - 1e-9)))
    t = np.linspace(0.0, total, pieces + 1)
    if total <= 0:
        return points[[0, -1]], radii[[0, -1]]
    out = np.stack([np.interp(t, s, points[:, c]) for c in range(3)], axis=1)
    out[0], out[-1] = points[0], points[-1]
    return out, np.interp(t, s, radii)


def graph_from_volume(
    mask: np.ndarray,
    spacing_mm: Sequence[float],
    origin_mm: Sequence[float] = (0.0, 0.0, 0.0),
    *,
    affine: np.ndarray | None = None,
    min_branch_mm: float = 3.0,
    max_node_spacing_mm: float = 1.0,
) -> CenterlineGraph:
    """Extract a centre-line forest from a binary volume.

    Parameters
    ----------
    mask : (X, Y, Z) array of bool (non-zero = vessel).
    spacing_mm : (3,) voxel size along X, Y, Z, mm. Ignored when ``affine`` is
        given (the column norms of the affine are used instead).
    origin_mm : (3,) world position (mm) of voxel (0, 0, 0)'s centre.
        Ignored when ``affine`` is given.
    affine : (4, 4) array or None
        Voxel -> world (LPS mm) map; voxel (i, j, k) has its centre at
        ``affine @ (i, j, k, 1)``. Use for oblique or flipped grids.
    min_branch_mm : float
        Spurs (a branch from a leaf to a junction) shorter than
        ``max(min_branch_mm, 1.5 * radius at the junction)`` are pruned,
        iteratively; components shorter than this are dropped when a
        longer component exists.
    max_node_spacing_mm : float
        No edge of the result is longer than this, mm.

    Returns
    -------
    CenterlineGraph
        A forest in world mm; radii in mm (distance to the nearest
        background voxel centre). An empty mask gives a
        graph with 0 nodes.

    Raises
    ------
    ShapeError
        ``mask`` is not 3D, or spacing/origin/affine have bad shapes/values.
    """
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial import cKDTree
    from skimage.morphology import skeletonize

    m = np.asarray(mask)
    if m.ndim != 3:
        raise ShapeError(f"mask must be a 3D (X, Y, Z) array, got {m.ndim}D with shape {m.shape}")
    if not (np.isfinite(min_branch_mm) and min_branch_mm >= 0):
        raise ShapeError(f"min_branch_mm must be finite and >= 0, got {min_branch_mm!r}")
    if not (np.isfinite(max_node_spacing_mm) and max_node_spacing_mm > 0):
        raise ShapeError(f"max_node_spacing_mm must be finite and > 0, got {max_node_spacing_mm!r}")
    if affine is None:
        a = voxel_affine(spacing_mm, origin_mm)
    else:
        a = np.asarray(affine, dtype=np.float64)
        if a.shape != (4, 4) or not np.all(np.isfinite(a)):
            raise ShapeError(f"affine must be a finite (4, 4) array, got shape {a.shape}")
        if abs(np.linalg.det(a[:3, :3])) < 1e-12:
            raise ShapeError("affine must have an invertible 3x3 part")
    sampling = np.linalg.norm(a[:3, :3], axis=0)
    m = m != 0
    if not m.any():
        return _empty_graph()

    # Crop to the foreground (+1 voxel of background all round) so the
    # skeleton only touches what matters.
    nz = np.nonzero(m.any(axis=(1, 2)))[0], np.nonzero(m.any(axis=(0, 2)))[0], np.nonzero(m.any(axis=(0, 1)))[0]
    lo = np.array([n[0] for n in nz])
    hi = np.array([n[-1] + 1 for n in nz])
    sub = np.pad(m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 1)
    skel = skeletonize(sub) > 0
    if not skel.any():  # a tiny blob thinned away: keep its most central voxel
        skel = np.zeros_like(sub)
        skel[np.unravel_index(np.argmax(ndimage.distance_transform_edt(sub, sampling=sampling)), sub.shape)] = True
    idx = np.argwhere(skel)
    nvox = len(idx)
    ijk = idx - 1 + lo
    pos = ijk @ a[:3, :3].T + a[:3, 3]
    # Radius = world distance to the nearest background voxel centre. On an
    # orthogonal grid that voxel always has a foreground face neighbour (one
    # step towards the skeleton voxel along any differing axis gets closer),
    # so a k-d tree of the background shell gives the same numbers as a full
    # distance transform, several times faster on large crops. On real lumen
    # surfaces voxelised by centre-inside tests this matches VMTK's maximum
    # inscribed sphere radius best (ASOCA Normal_1: median difference
    # -0.06 mm at 0.4 mm voxels, versus -0.26 mm when subtracting half a voxel).
    shell = np.argwhere(ndimage.binary_dilation(sub) & ~sub) - 1 + lo
    dist, _ = cKDTree(shell @ a[:3, :3].T + a[:3, 3]).query(pos)
    rad = np.maximum(dist, 0.5 * sampling.min())

    # 26-connected voxel graph, then a minimum spanning forest on length.
    lab = np.full(skel.shape, -1, dtype=np.int64)
    lab[skel] = np.arange(nvox)
    src, dst = [], []
    for off in _HALF_OFFSETS:
        nb = lab[idx[:, 0] + off[0], idx[:, 1] + off[1], idx[:, 2] + off[2]]
        ok = nb >= 0
        src.append(np.nonzero(ok)[0])
        dst.append(nb[ok])
    src_a = np.concatenate(src)
    dst_a = np.concatenate(dst)
    w = np.linalg.norm(pos[src_a] - pos[dst_a], axis=1)
    mst = minimum_spanning_tree(coo_matrix((w, (src_a, dst_a)), shape=(nvox, nvox)).tocsr()).tocoo()
    adj: list[set[int]] = [set() for _ in range(nvox)]
    for i, j in zip(mst.row.tolist(), mst.col.tolist()):
        adj[i].add(j)
        adj[j].add(i)
    alive = np.ones(nvox, dtype=bool)

    # Iterative spur pruning: per pass, at each junction drop its shortest spur
    # if that spur is short; the junction may then become a plain chain node.
    for _ in range(1000):
        best: dict[int, tuple[float, list[int]]] = {}
        for leaf in np.nonzero(alive)[0].tolist():
            if len(adj[leaf]) != 1:
                continue
            path = _trace(adj, leaf, next(iter(adj[leaf])))
            end = path[-1]
            if len(adj[end]) < 3:
                continue
            length = _path_length(pos, path)
            if length < max(min_branch_mm, 1.5 * rad[end]) and (end not in best or length < best[end][0]):
                best[end] = (length, path)
        if not best:
            break
        for end, (_, path) in best.items():
            for v in path[:-1]:
                for u in adj[v]:
                    adj[u].discard(v)
                adj[v] = set()
                alive[v] = False

    # Branches between end/junction voxels.
    deg = np.array([len(s) for s in adj])
    keys = np.nonzero(alive & (deg != 2))[0].tolist()
    seen: set[tuple[int, int]] = set()
    branches: list[list[int]] = []
    for k in keys:
        for nxt in adj[k]:
            if (k, nxt) in seen:
                continue
            path = _trace(adj, k, nxt)
            seen.add((path[-1], path[-2]))
            seen.add((k, nxt))
            branches.append(path)
    isolated = [k for k in keys if deg[k] == 0]

    # Collapse junction clusters: junctions joined by a branch shorter than
    # their radius (or than two voxel diagonals) are one junction.
    parent = {k: k for k in keys}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    lengths = [_path_length(pos, b) for b in branches]
    diag = float(np.linalg.norm(sampling))
    for b, length in zip(branches, lengths):
        s, e = b[0], b[-1]
        if deg[s] >= 3 and deg[e] >= 3 and length <= max(rad[s], rad[e], 2.0 * diag):
            parent[find(s)] = find(e)
    clusters: dict[int, list[int]] = {}
    for k in keys:
        clusters.setdefault(find(k), []).append(k)
    key_pos = {r: pos[v].mean(axis=0) for r, v in clusters.items()}
    key_rad = {r: float(rad[v].mean()) for r, v in clusters.items()}

    # Drop short isolated pieces when something longer exists.
    kept = [(b, L) for b, L in zip(branches, lengths) if find(b[0]) != find(b[-1])]
    comp_parent = {r: r for r in clusters}

    def cfind(x: int) -> int:
        while comp_parent[x] != x:
            comp_parent[x] = comp_parent[comp_parent[x]]
            x = comp_parent[x]
        return x

    for b, _ in kept:
        comp_parent[cfind(find(b[0]))] = cfind(find(b[-1]))
    comp_len: dict[int, float] = {}
    for b, L in kept:
        c = cfind(find(b[0]))
        comp_len[c] = comp_len.get(c, 0.0) + L
    for k in isolated:
        comp_len.setdefault(cfind(find(k)), 0.0)
    longest = max(comp_len.values()) if comp_len else 0.0
    keep_comp = {c for c, L in comp_len.items() if L >= min_branch_mm or L >= longest}

    out_nodes: list[np.ndarray] = []
    out_radii: list[np.ndarray] = []
    out_edges: list[np.ndarray] = []
    node_of: dict[int, int] = {}
    count = 0

    def key_node(r: int) -> int:
        nonlocal count
        if r not in node_of:
            node_of[r] = count
            out_nodes.append(key_pos[r][None])
            out_radii.append(np.array([key_rad[r]]))
            count += 1
        return node_of[r]

    for k in isolated:
        r = find(k)
        if cfind(r) in keep_comp:
            key_node(r)
    inv = np.linalg.inv(a)
    leaf_roots = {r for r, v in clusters.items() if len(v) == 1 and deg[v[0]] == 1}

    def extend(p: np.ndarray, r_end: float) -> np.ndarray:
        # A thinning skeleton stops about one radius short of a vessel's
        # end; march on along the end direction while still inside the mask.
        tail = p[max(0, len(p) - 6)]
        d = p[-1] - tail
        n = np.linalg.norm(d)
        if n == 0:
            return p[-1]
        d /= n
        step = 0.25 * sampling.min()
        best = p[-1]
        for t in np.arange(step, 1.5 * r_end + step, step):
            q = p[-1] + t * d
            v = np.rint(inv[:3, :3] @ q + inv[:3, 3]).astype(np.int64) - lo + 1
            if np.any(v < 0) or np.any(v >= sub.shape) or not sub[tuple(v)]:
                return best
            best = q
        # Still inside after 1.5 radii: the end is a cut (e.g. a broken
        # cycle), not a vessel tip; leave it where it is.
        return p[-1]

    for b, _ in kept:
        rs, re = find(b[0]), find(b[-1])
        if cfind(rs) not in keep_comp:
            continue
        p = pos[np.asarray(b)].copy()
        r = rad[np.asarray(b)].copy()
        p[0], p[-1] = key_pos[rs], key_pos[re]
        r[0], r[-1] = key_rad[rs], key_rad[re]
        if re in leaf_roots and len(p) > 1:
            key_pos[re] = p[-1] = extend(p, r[-1])
        if rs in leaf_roots and len(p) > 1:
            key_pos[rs] = p[0] = extend(p[::-1], r[0])
        p = _smooth(p, 4)
        r = _smooth(r, 4)
        p, r = _resample(p, r, max_node_spacing_mm)
        a_idx, b_idx = key_node(rs), key_node(re)
        inner = len(p) - 2
        chain = np.concatenate([[a_idx], np.arange(count, count + inner), [b_idx]])
        if inner:
            out_nodes.append(p[1:-1])
            out_radii.append(r[1:-1])
            count += inner
        out_edges.append(np.stack([chain[:-1], chain[1:]], axis=1))
    if count == 0:
        return _empty_graph()
    return CenterlineGraph(
        nodes=np.concatenate(out_nodes),
        radii=np.concatenate(out_radii),
        edges=np.concatenate(out_edges) if out_edges else np.zeros((0, 2), dtype=np.int64),
    )
