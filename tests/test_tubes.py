"""Tests of autocar.io.meshes: watertight tubes around centre-line graphs."""

from __future__ import annotations


import numpy as np
import pytest
import trimesh

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError, TreeFormatError
from autocar.io.meshes import tube_mesh, write_ply


def _edge(r=1.0, length=10.0):
    return CenterlineGraph(nodes=[[0, 0, 0], [length, 0, 0]], radii=[r, r], edges=[[0, 1]])


def _random_tree(n_branches, per_branch, seed=0):
    rng = np.random.default_rng(seed)
    nodes, radii, edges = [np.zeros(3)], [2.0], []
    for _ in range(n_branches):
        prev = int(rng.integers(0, len(nodes)))
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        for _ in range(per_branch):
            d = d + 0.2 * rng.normal(size=3)
            d /= np.linalg.norm(d)
            nodes.append(nodes[prev] + d)
            radii.append(max(0.3, radii[prev] * 0.99))
            edges.append((prev, len(nodes) - 1))
            prev = len(nodes) - 1
    return CenterlineGraph(nodes=np.array(nodes), radii=np.array(radii), edges=edges)


def test_single_edge_volume_is_cylinder_plus_caps():
    r, length = 1.0, 10.0
    mesh = tube_mesh(_edge(r, length), sections=64)
    assert mesh.is_watertight
    expected = np.pi * r**2 * length + 4.0 / 3.0 * np.pi * r**3
    # Inscribed tessellation: a little below the analytic volume.
    assert 0.97 * expected <= mesh.volume <= expected
    np.testing.assert_allclose(mesh.bounds, [[-r, -r, -r], [length + r, r, r]], atol=1e-6)


def test_cone_edge_volume_between_radii():
    g = CenterlineGraph(nodes=[[0, 0, 0], [0, 0, 10]], radii=[2.0, 1.0], edges=[[0, 1]])
    mesh = tube_mesh(g, sections=48)
    assert mesh.is_watertight
    lo = np.pi * 1.0**2 * 10
    hi = np.pi * 2.0**2 * 10 + 4.0 / 3.0 * np.pi * 8
    assert lo < mesh.volume < hi
    # Frustum volume pi h (R^2 + R r + r^2) / 3 is a lower bound of the swept solid.
    assert mesh.volume > np.pi * 10 * (4 + 2 + 1) / 3 * 0.97


def test_small_tree_is_watertight_and_contains_nodes():
    g = CenterlineGraph(
        nodes=[[0, 0, 0], [5, 0, 0], [10, 3, 0], [10, -3, 1], [5, 0, 6], [20, 20, 20]],
        radii=[1.5, 1.2, 0.8, 0.7, 0.5, 0.6],
        edges=[[0, 1], [1, 2], [1, 3], [1, 4]],
    )
    mesh = tube_mesh(g)
    assert mesh.is_watertight
    assert mesh.volume > 0
    assert mesh.contains(g.nodes).all()
    assert len(mesh.split(only_watertight=False)) == 2  # the isolated node is its own sphere


def test_min_radius_applies():
    g = CenterlineGraph(nodes=[[0, 0, 0], [4, 0, 0]], radii=[0.0, 0.0], edges=[[0, 1]])
    mesh = tube_mesh(g, min_radius_mm=0.5, sections=32)
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.bounds[1], [4.5, 0.5, 0.5], atol=1e-6)


def test_empty_graph_gives_empty_mesh():
    g = CenterlineGraph(nodes=np.zeros((0, 3)), radii=np.zeros(0), edges=np.zeros((0, 2), int))
    mesh = tube_mesh(g)
    assert len(mesh.faces) == 0 and len(mesh.vertices) == 0


@pytest.mark.parametrize("kw", [{"sections": 2}, {"sections": 3.5}, {"min_radius_mm": 0.0}])
def test_bad_arguments_raise(kw):
    with pytest.raises(ShapeError):
        tube_mesh(_edge(), **kw)


def test_tree_of_2000_nodes_is_watertight():
    g = _random_tree(20, 100)
    assert g.num_nodes == 2001
    mesh = tube_mesh(g)
    assert mesh.is_watertight
    assert mesh.contains(g.nodes[::50]).all()


def test_write_ply_round_trip_and_atomic(tmp_path):
    mesh = tube_mesh(_edge())
    out = write_ply(mesh, tmp_path / "tube.ply")
    assert out.read_bytes().startswith(b"ply\nformat binary_little_endian")
    back = trimesh.load(out)
    np.testing.assert_allclose(back.volume, mesh.volume, rtol=1e-6)
    assert back.is_watertight
    # Overwrite in place leaves no temporary files behind.
    write_ply(tube_mesh(_edge(r=2.0)), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tube.ply"]
    assert trimesh.load(out).bounds[1][1] == pytest.approx(2.0, abs=1e-5)


def test_write_ply_rejects_bad_input(tmp_path):
    with pytest.raises(TreeFormatError, match="does not exist"):
        write_ply(tube_mesh(_edge()), tmp_path / "missing" / "x.ply")
    with pytest.raises(TreeFormatError, match="trimesh"):
        write_ply("not a mesh", tmp_path / "x.ply")
