"""Load vessel trees from the files users have.

Supported:

- surfaces ``.ply``, ``.stl``, ``.obj``, ``.vtp`` (polygons): voxelised by ray
  parity, then :func:`autocar.geometry.volume_graph.graph_from_volume`;
- label volumes ``.nii``/``.nii.gz`` (NIfTI, RAS world converted to LPS) and
  ``.nrrd`` (its ``space``, ``space directions`` and ``space origin``);
- centre lines ``.vtp`` (VTK XML PolyData ``Lines`` with the point array
  ``MaximumInscribedSphereRadius``, as written by VMTK), read without VTK.

Every graph is in world LPS mm (DICOM patient coordinates). Errors are
:class:`autocar.errors.TreeFormatError` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import TreeFormatError
from autocar.io.vtk import existing_file, read_vtp

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "LoadedTree",
    "load_tree",
    "tree_from_mesh",
    "tree_from_label_volume",
    "read_vtp_centerlines",
    "read_vtp",
]

_MESH_SUFFIXES = (".ply", ".stl", ".obj")
_VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd")
_RADIUS_NAMES = ("MaximumInscribedSphereRadius", "Radius", "radius", "Radii")


@dataclass(frozen=True)
class LoadedTree:
    """A vessel tree read from a file.

    Attributes
    ----------
    graph : CenterlineGraph
        Centre lines, world LPS mm.
    surface : trimesh.Trimesh or None
        Lumen surface in the same frame, when the file gives or implies one.
    source : str
        The file it was read from.
    """

    graph: CenterlineGraph
    surface: "trimesh.Trimesh | None"
    source: str


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()



def _centered(graph: CenterlineGraph, surface: "trimesh.Trimesh | None") -> tuple[CenterlineGraph, "trimesh.Trimesh | None"]:
    if graph.num_nodes == 0:
        return graph, surface
    lo, hi = graph.bounds()
    shift = -(lo + hi) / 2.0
    graph = graph.with_nodes(graph.nodes + shift)
    if surface is not None:
        surface = surface.copy()
        surface.apply_translation(shift)
    return graph, surface


def load_tree(path: str | Path, *, voxel_mm: float = 0.4, center: bool = False) -> LoadedTree:
    """Read a vessel tree, choosing the reader by the file suffix.

    Parameters
    ----------
    path : a ``.vtp`` (centre lines if it has lines, else a surface),
        ``.ply``/``.stl``/``.obj`` surface, or ``.nii``/``.nii.gz``/``.nrrd``
        label volume.
    voxel_mm : voxel size (mm) used to voxelise surfaces.
    center : bool
        Translate graph (and surface) so the centre of the graph's bounding
        box is at the origin (the C-arm isocentre).

    Returns
    -------
    LoadedTree in world LPS mm.
    """
    p = existing_file(path)
    suffix = _suffix(p)
    if suffix == ".vtp":
        poly = read_vtp(p)
        if len(poly["lines"]):
            tree = LoadedTree(graph=_graph_from_polylines(poly, p), surface=None, source=str(p))
        elif len(poly["polys"]):
            tree = tree_from_mesh(p, voxel_mm=voxel_mm)
        else:
            raise TreeFormatError(f"{p}: VTK PolyData has neither Lines nor Polys")
    elif suffix in _MESH_SUFFIXES:
        tree = tree_from_mesh(p, voxel_mm=voxel_mm)
    elif suffix in _VOLUME_SUFFIXES:
        tree = tree_from_label_volume(p)
    else:
        raise TreeFormatError(
            f"{p}: unknown tree file suffix {suffix!r}; expected one of "
            f"{', '.join(('.vtp',) + _MESH_SUFFIXES + _VOLUME_SUFFIXES)}"
        )
    if center:
        g, s = _centered(tree.graph, tree.surface)
        tree = LoadedTree(graph=g, surface=s, source=tree.source)
    return tree


def _graph_from_polylines(poly: dict[str, object], path: Path, merge_mm: float = 1e-3) -> CenterlineGraph:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
    from scipy.spatial import cKDTree

    points = np.asarray(poly["points"], dtype=np.float64)
    lines: list[np.ndarray] = poly["lines"]  # type: ignore[assignment]
    pdata: dict[str, np.ndarray] = poly["point_data"]  # type: ignore[assignment]
    radius = None
    for name in _RADIUS_NAMES:
        if name in pdata and np.ndim(pdata[name]) == 1:
            radius = np.asarray(pdata[name], dtype=np.float64)
            break
    if radius is None:
        raise TreeFormatError(
            f"{path}: centre lines need a point array named MaximumInscribedSphereRadius "
            f"(found {sorted(pdata)})"
        )
    if not np.all(np.isfinite(radius)) or np.any(radius < 0):
        raise TreeFormatError(f"{path}: MaximumInscribedSphereRadius has negative or non-finite values")
    used = np.unique(np.concatenate(lines)) if lines else np.zeros(0, dtype=np.int64)
    if len(used) == 0:
        raise TreeFormatError(f"{path}: the centre lines are empty")
    # Merge coincident points (different lines sharing a branch point).
    n = len(points)
    pairs = cKDTree(points[used]).query_pairs(merge_mm, output_type="ndarray")
    merge = coo_matrix((np.ones(len(pairs)), (used[pairs[:, 0]], used[pairs[:, 1]])), shape=(n, n))
    _, rep = connected_components(merge, directed=False)
    # Compact ids over the used points.
    uniq, new_id = np.unique(rep[used], return_inverse=True)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = new_id
    m = len(uniq)
    counts = np.bincount(new_id, minlength=m).astype(np.float64)
    nodes = np.stack([np.bincount(new_id, weights=points[used, c], minlength=m) for c in range(3)], axis=1)
    nodes /= counts[:, None]
    radii = np.bincount(new_id, weights=radius[used], minlength=m) / counts
    edges = np.concatenate(
        [np.stack([remap[c[:-1]], remap[c[1:]]], axis=1) for c in lines if len(c) > 1] or [np.zeros((0, 2), np.int64)]
    )
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    if len(edges):
        # Overlapping lines may close loops; keep a forest (shortest edges).
        w = np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1) + 1e-12
        mst = minimum_spanning_tree(coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(m, m)).tocsr()).tocoo()
        edges = np.stack([mst.row, mst.col], axis=1).astype(np.int64)
    return CenterlineGraph(nodes=nodes, radii=radii, edges=edges)


def read_vtp_centerlines(path: str | Path) -> CenterlineGraph:
    """Centre lines of a VTK XML PolyData file (e.g. from VMTK).

    Each ``Lines`` cell becomes a polyline; points of different lines closer
    than 1e-3 mm are merged so branches connect; loops are broken (minimum
    spanning forest on edge length). Radii come from the point array
    ``MaximumInscribedSphereRadius``.

    Parameters
    ----------
    path : ``.vtp`` file (ascii, inline base64 or appended raw/base64 data,
        optionally zlib-compressed; UInt32 or UInt64 headers).

    Returns
    -------
    CenterlineGraph in the file's frame (mm), assumed LPS.
    """
    p = existing_file(path)
    poly = read_vtp(p)
    if not poly["lines"]:
        raise TreeFormatError(f"{p}: VTK PolyData has no Lines (is it a surface? use tree_from_mesh)")
    return _graph_from_polylines(poly, p)


# -------------------------------------------------------------------- surfaces
def _read_surface(p: Path) -> "trimesh.Trimesh":
    import trimesh

    if _suffix(p) == ".vtp":
        poly = read_vtp(p)
        tris = []
        for c in poly["polys"]:  # type: ignore[union-attr]
            if len(c) >= 3:  # fan-triangulate polygons
                tris.append(np.stack([np.full(len(c) - 2, c[0]), c[1:-1], c[2:]], axis=1))
        if not tris:
            raise TreeFormatError(f"{p}: VTK PolyData has no polygons to use as a surface")
        return trimesh.Trimesh(vertices=poly["points"], faces=np.concatenate(tris), process=True)
    try:
        mesh = trimesh.load(str(p), force="mesh")
    except Exception as exc:  # trimesh raises many types on bad files
        raise TreeFormatError(f"{p}: cannot read surface mesh ({type(exc).__name__}: {exc})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise TreeFormatError(f"{p}: the file holds no triangle surface")
    return mesh


def _voxelise(mesh: "trimesh.Trimesh", voxel_mm: float, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Inside-voxels of a closed surface by ray parity along +z.

    Returns the (X, Y, Z) bool mask and the (3,) world position of voxel 0.
    """
    lo, hi = mesh.bounds
    origin = lo - voxel_mm
    shape = np.ceil((hi - lo) / voxel_mm).astype(np.int64) + 3
    if np.prod(shape) > 600_000_000:
        raise TreeFormatError(f"{path}: voxel_mm={voxel_mm} gives a {tuple(shape)} grid; use a larger voxel_mm")
    # A tiny irrational offset keeps rays off mesh edges/vertices of grid-aligned meshes.
    xs = origin[0] + np.arange(shape[0]) * voxel_mm + 1.3e-4 * voxel_mm
    ys = origin[1] + np.arange(shape[1]) * voxel_mm + 0.7e-4 * voxel_mm
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    ray_o = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, lo[2] - 1.0)], axis=1)
    # Only rays whose (x, y) lies in the footprint of some triangle can hit.
    tri = mesh.triangles
    i0 = np.floor((tri[:, :, 0].min(1) - origin[0]) / voxel_mm).astype(np.int64)
    i1 = np.ceil((tri[:, :, 0].max(1) - origin[0]) / voxel_mm).astype(np.int64)
    j0 = np.floor((tri[:, :, 1].min(1) - origin[1]) / voxel_mm).astype(np.int64)
    j1 = np.ceil((tri[:, :, 1].max(1) - origin[1]) / voxel_mm).astype(np.int64)
    diff = np.zeros((shape[0] + 2, shape[1] + 2), dtype=np.int64)
    np.add.at(diff, (i0, j0), 1)
    np.add.at(diff, (i1 + 1, j0), -1)
    np.add.at(diff, (i0, j1 + 1), -1)
    np.add.at(diff, (i1 + 1, j1 + 1), 1)
    cols = diff.cumsum(0).cumsum(1)[: shape[0], : shape[1]] > 0
    sel = np.nonzero(cols.ravel())[0]
    dirs = np.tile([0.0, 0.0, 1.0], (len(sel), 1))
    locs, ray_idx, _ = mesh.ray.intersects_location(ray_o[sel], dirs, multiple_hits=True)
    mask = np.zeros(shape, dtype=bool)
    if len(ray_idx) == 0:
        return mask, origin
    order = np.lexsort((locs[:, 2], ray_idx))
    ray_idx = ray_idx[order]
    zs = locs[order, 2]
    starts = np.searchsorted(ray_idx, np.unique(ray_idx))
    counts = np.diff(np.append(starts, len(ray_idx)))
    odd = 0
    for s, c in zip(starts.tolist(), counts.tolist()):
        if c % 2:
            odd += 1
            continue  # a grazing or duplicated hit: skip this column
        r = sel[ray_idx[s]]
        ix, iy = divmod(int(r), int(shape[1]))
        z = zs[s : s + c]
        for a, b in zip(z[0::2], z[1::2]):
            k0 = int(np.ceil((a - origin[2]) / voxel_mm))
            k1 = int(np.floor((b - origin[2]) / voxel_mm))
            if k1 >= k0:
                mask[ix, iy, k0 : k1 + 1] = True
    if odd > 0.05 * max(1, len(starts)):
        raise TreeFormatError(f"{path}: surface is not closed ({odd} of {len(starts)} rays cross it an odd number of times)")
    return mask, origin


def tree_from_mesh(path: str | Path, *, voxel_mm: float = 0.4) -> LoadedTree:
    """Centre lines of a closed lumen surface (``.ply``, ``.stl``, ``.obj``, ``.vtp``).

    The surface is voxelised at ``voxel_mm`` by ray parity along +z, then
    :func:`autocar.geometry.volume_graph.graph_from_volume` extracts the centre lines.
    Holes are filled (trimesh) when the surface is not watertight.

    Parameters
    ----------
    path : surface file, coordinates in mm (taken as world LPS).
    voxel_mm : voxel size for the voxelisation, mm (> 0).

    Returns
    -------
    LoadedTree with the surface as read.

    Raises
    ------
    TreeFormatError
        Missing/unreadable file, or a surface that stays open after filling.
    """
    import trimesh

    from autocar.geometry.volume_graph import graph_from_volume

    if not (np.isfinite(voxel_mm) and voxel_mm > 0):
        raise TreeFormatError(f"voxel_mm must be finite and > 0, got {voxel_mm!r}")
    p = existing_file(path)
    mesh = _read_surface(p)
    if not mesh.is_watertight:
        mesh = mesh.copy()
        mesh.merge_vertices()
        trimesh.repair.fill_holes(mesh)
        if not mesh.is_watertight:
            raise TreeFormatError(f"{p}: surface is not watertight and its holes could not be filled")
    mask, origin = _voxelise(mesh, float(voxel_mm), p)
    if not mask.any():
        raise TreeFormatError(f"{p}: surface encloses no voxel at voxel_mm={voxel_mm}")
    graph = graph_from_volume(mask, (voxel_mm,) * 3, origin)
    return LoadedTree(graph=graph, surface=mesh, source=str(p))


# -------------------------------------------------------------- label volumes
def _read_label_volume(p: Path) -> tuple[np.ndarray, np.ndarray]:
    """Label array (X, Y, Z) and its voxel -> LPS mm affine (4, 4)."""
    suffix = _suffix(p)
    if suffix in (".nii", ".nii.gz"):
        import nibabel

        try:
            img = nibabel.load(str(p))
            data = np.asanyarray(img.dataobj)
        except Exception as exc:  # nibabel/gzip/zlib raise many types on bad files
            raise TreeFormatError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
        # NIfTI world is RAS+; LPS = diag(-1, -1, 1) @ RAS.
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(img.affine, dtype=np.float64)
    elif suffix == ".nrrd":
        import nrrd

        try:
            data, header = nrrd.read(str(p))
        except Exception as exc:  # pynrrd raises several types on bad files
            raise TreeFormatError(f"{p}: cannot read NRRD ({type(exc).__name__}: {exc})") from None
        affine = _nrrd_affine(header, data.ndim, p)
    else:
        raise TreeFormatError(f"{p}: unknown label volume suffix {suffix!r}")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise TreeFormatError(f"{p}: label volume must be 3D, got shape {data.shape}")
    return np.asarray(data), affine


def _nrrd_affine(header: dict, ndim: int, p: Path) -> np.ndarray:
    space = str(header.get("space", "left-posterior-superior")).lower()
    flips = {
        "left-posterior-superior": (1.0, 1.0, 1.0),
        "lps": (1.0, 1.0, 1.0),
        "right-anterior-superior": (-1.0, -1.0, 1.0),
        "ras": (-1.0, -1.0, 1.0),
        "left-anterior-superior": (1.0, -1.0, 1.0),
        "las": (1.0, -1.0, 1.0),
    }
    if space not in flips:
        raise TreeFormatError(f"{p}: unsupported NRRD space {space!r} (need LPS, RAS or LAS)")
    a = np.eye(4)
    if "space directions" in header:
        dirs = np.asarray(
            [d for d in header["space directions"] if d is not None and np.all(np.isfinite(np.asarray(d, float)))],
            dtype=np.float64,
        )
        if dirs.shape != (3, 3):
            raise TreeFormatError(f"{p}: NRRD 'space directions' must give 3 vectors of 3, got {dirs.shape}")
        a[:3, :3] = dirs.T  # column i = world step of index i
    elif "spacings" in header:
        a[:3, :3] = np.diag(np.asarray(header["spacings"], dtype=np.float64)[:3])
    else:
        raise TreeFormatError(f"{p}: NRRD header has neither 'space directions' nor 'spacings'")
    if "space origin" in header:
        a[:3, 3] = np.asarray(header["space origin"], dtype=np.float64)
    if abs(np.linalg.det(a[:3, :3])) < 1e-12 or not np.all(np.isfinite(a)):
        raise TreeFormatError(f"{p}: NRRD geometry is singular or not finite")
    return np.diag(list(flips[space]) + [1.0]) @ a


def tree_from_label_volume(
    path: str | Path,
    *,
    labels: Sequence[int] | Iterable[int] | None = None,
    min_component_voxels: int = 20,
) -> LoadedTree:
    """Centre lines and surface of a label volume (``.nii``, ``.nii.gz``, ``.nrrd``).

    Parameters
    ----------
    path : label volume file.
    labels : label values that count as vessel; default every label > 0.
    min_component_voxels : 26-connected components with fewer voxels are
        dropped (speckle).

    Returns
    -------
    LoadedTree in world LPS mm; ``surface`` from marching cubes at the
    0.5 level of the foreground mask.

    Raises
    ------
    TreeFormatError
        Missing/unreadable file, or no foreground voxel.
    """
    import trimesh
    from scipy import ndimage
    from skimage.measure import marching_cubes

    from autocar.geometry.volume_graph import graph_from_volume

    p = existing_file(path)
    data, affine = _read_label_volume(p)
    fg = data > 0 if labels is None else np.isin(data, np.asarray(list(labels)))
    if not fg.any():
        raise TreeFormatError(f"{p}: label volume has no foreground voxel (labels={labels!r})")
    # Work on the foreground's bounding box (+1 voxel) only: labelling,
    # marching cubes and the skeleton are then fast on 512^2 x Z volumes.
    nzs = [np.nonzero(fg.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
    lo = np.array([n[0] for n in nzs])
    hi = np.array([n[-1] + 1 for n in nzs])
    sub = np.pad(fg[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 1)
    shift = np.eye(4)
    shift[:3, 3] = lo - 1
    sub_affine = affine @ shift  # voxel of ``sub`` -> world LPS mm
    comp, ncomp = ndimage.label(sub, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(comp.ravel(), minlength=ncomp + 1)
    sizes[0] = 0
    keep = sizes >= min_component_voxels
    if not keep.any():
        keep[np.argmax(sizes)] = True
    sub = keep[comp]
    verts, faces, _, _ = marching_cubes(sub.astype(np.float32), level=0.5)
    verts = verts @ sub_affine[:3, :3].T + sub_affine[:3, 3]
    surface = trimesh.Trimesh(vertices=verts, faces=faces, process=True)
    if surface.volume < 0:  # a left-handed voxel -> world map flips the winding
        surface.invert()
    graph = graph_from_volume(sub, np.linalg.norm(affine[:3, :3], axis=0), affine=sub_affine)
    return LoadedTree(graph=graph, surface=surface, source=str(p))
