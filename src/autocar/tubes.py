"""Watertight tubular surfaces from centre-line graphs.

The surface is the exact union (manifold3d) of one sphere-swept segment per
edge (the convex hull of its two end spheres: a truncated cone tangent to both
spheres, closed by spherical caps) and a sphere per isolated node, so it is
closed and 2-manifold by construction.
Positions in world mm; N nodes, E edges.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autocar.centerline import CenterlineGraph
from autocar.errors import ShapeError, TreeFormatError

if TYPE_CHECKING:
    import trimesh

__all__ = ["tube_mesh", "write_ply"]


def tube_mesh(graph: CenterlineGraph, *, sections: int = 12, min_radius_mm: float = 0.2) -> "trimesh.Trimesh":
    """Closed tubular surface around a centre-line graph.

    Parameters
    ----------
    graph : CenterlineGraph with N nodes (mm) and radii (mm).
    sections : int
        Segments around the sphere tessellation (>= 3; manifold3d rounds up
        to a multiple of 4).
    min_radius_mm : float
        Radii below this are raised to it (> 0) so no part vanishes.

    Returns
    -------
    trimesh.Trimesh
        Watertight mesh in world mm (empty mesh for an empty graph).

    Notes
    -----
    The solid is the union over edges of the convex hull of the two end
    spheres, so every node's sphere is inside it. Spheres are tessellated
    (inscribed polyhedra), so volumes are slightly below the analytic ones.
    """
    import manifold3d
    import trimesh

    if int(sections) != sections or sections < 3:
        raise ShapeError(f"sections must be an integer >= 3, got {sections!r}")
    if not (np.isfinite(min_radius_mm) and min_radius_mm > 0):
        raise ShapeError(f"min_radius_mm must be finite and > 0, got {min_radius_mm!r}")
    sections = int(sections)
    if graph.num_nodes == 0:
        return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64))
    nodes = graph.nodes
    radii = np.maximum(graph.radii, min_radius_mm)
    # Unit geodesic sphere vertices, scaled per node.
    unit = np.asarray(manifold3d.Manifold.sphere(1.0, sections).to_mesh().vert_properties, dtype=np.float64)[:, :3]
    parts: list[manifold3d.Manifold] = []
    # Each edge is the convex hull of its two end spheres: a cone tangent to
    # both spheres with spherical caps (exact sphere-swept segment up to the
    # tessellation). Nodes without edges get a plain sphere.
    for i, j in graph.edges.tolist():
        pts = np.concatenate([unit * radii[i] + nodes[i], unit * radii[j] + nodes[j]])
        parts.append(manifold3d.Manifold.hull_points(pts))
    lonely = np.nonzero(graph.degrees() == 0)[0]
    for i in lonely.tolist():
        parts.append(manifold3d.Manifold.hull_points(unit * radii[i] + nodes[i]))
    solid = manifold3d.Manifold.batch_boolean(parts, manifold3d.OpType.Add)
    mesh = solid.to_mesh()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=verts, faces=faces, process=False)


def write_ply(mesh: "trimesh.Trimesh", path: str | os.PathLike[str]) -> Path:
    """Write ``mesh`` as binary PLY atomically (temp file + ``os.replace``).

    Parameters
    ----------
    mesh : trimesh.Trimesh, vertices in mm.
    path : destination file; its folder must exist.

    Returns
    -------
    Path of the written file.
    """
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh):
        raise TreeFormatError(f"write_ply needs a trimesh.Trimesh, got {type(mesh).__name__}")
    dest = Path(path)
    if not dest.parent.is_dir():
        raise TreeFormatError(f"cannot write {dest}: folder {dest.parent} does not exist")
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest
