"""Tests of autocar.io.trees: vessel trees from users' files."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import TreeFormatError
from autocar.io.trees import (
    LoadedTree,
    load_tree,
    read_vtp,
    read_vtp_centerlines,
    tree_from_label_volume,
    tree_from_mesh,
)
from autocar.io.meshes import tube_mesh

# ----------------------------------------------------------- a tiny VTP writer
_TYPES = {np.dtype("float32"): "Float32", np.dtype("float64"): "Float64", np.dtype("int64"): "Int64", np.dtype("int32"): "Int32"}


def _encode(arr, mode, header="UInt32"):
    """Return (format attr, inline text or appended bytes) for one array."""
    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    h = "<u4" if header == "UInt32" else "<u8"
    if mode == "ascii":
        return "ascii", " ".join(repr(float(x)) if arr.dtype.kind == "f" else str(int(x)) for x in arr.ravel())
    if mode == "binary":
        return "binary", base64.b64encode(np.array([len(raw)], h).tobytes() + raw).decode()
    if mode == "zlib":
        block = 64  # several blocks, the last one partial
        chunks = [raw[i : i + block] for i in range(0, len(raw), block)] or [b""]
        comp = [zlib.compress(c) for c in chunks]
        head = np.array([len(chunks), block, len(chunks[-1])] + [len(c) for c in comp], h).tobytes()
        return "binary", base64.b64encode(head).decode() + base64.b64encode(b"".join(comp)).decode()
    if mode == "appended":
        return "appended", np.array([len(raw)], h).tobytes() + raw
    raise ValueError(mode)


def _write_vtp(path, points, lines=(), polys=(), radius=None, mode="zlib", header="UInt32"):
    points = np.asarray(points, np.float32)

    def cells(cs):
        conn = np.concatenate([np.asarray(c, np.int64) for c in cs]) if cs else np.zeros(0, np.int64)
        offs = np.cumsum([len(c) for c in cs]).astype(np.int64)
        return conn, offs

    lc, lo = cells(list(lines))
    pc, po = cells(list(polys))
    arrays = [("pd", "MaximumInscribedSphereRadius", np.asarray(radius, np.float64), 1)] if radius is not None else []
    arrays += [("pts", "Points", points.ravel(), 3), ("lines", "connectivity", lc, 1), ("lines", "offsets", lo, 1)]
    arrays += [("polys", "connectivity", pc, 1), ("polys", "offsets", po, 1)]
    appended = b""
    xml = {}
    for group, name, arr, ncomp in arrays:
        fmt, payload = _encode(arr, mode, header)
        if fmt == "appended":
            extra = f'offset="{len(appended)}"'
            appended += payload
            body = ""
        else:
            extra, body = "", payload
        xml.setdefault(group, []).append(
            f'<DataArray type="{_TYPES[arr.dtype]}" Name="{name}" NumberOfComponents="{ncomp}" format="{fmt}" {extra}>{body}</DataArray>'
        )
    comp = ' compressor="vtkZLibDataCompressor"' if mode == "zlib" else ""
    text = (
        f'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="{header}"{comp}>\n'
        f'<PolyData><Piece NumberOfPoints="{len(points)}" NumberOfVerts="0" NumberOfLines="{len(lines)}" NumberOfStrips="0" NumberOfPolys="{len(polys)}">\n'
        f'<PointData>{"".join(xml.get("pd", []))}</PointData>\n'
        f'<Points>{"".join(xml["pts"])}</Points>\n'
        f'<Lines>{"".join(xml["lines"])}</Lines>\n<Polys>{"".join(xml["polys"])}</Polys>\n'
        "</Piece></PolyData>\n"
    ).encode()
    if mode == "appended":
        text += b'<AppendedData encoding="raw">\n_' + appended + b"\n</AppendedData>\n"
    text += b"</VTKFile>\n"
    path.write_bytes(text)
    return path


def _two_lines():
    """Two centre lines sharing their first 11 points (a VMTK-style bifurcation at x=10)."""
    trunk = np.stack([np.arange(11.0), np.zeros(11), np.zeros(11)], axis=1)
    a = np.stack([10 + np.arange(1, 9.0), np.arange(1, 9.0), np.zeros(8)], axis=1)
    b = np.stack([10 + np.arange(1, 7.0), -np.arange(1, 7.0), np.zeros(6)], axis=1)
    pts = np.concatenate([trunk, a, trunk, b])
    n1 = 11 + 8
    lines = [np.arange(n1), np.arange(n1, n1 + 11 + 6)]
    radius = np.concatenate([np.full(11, 2.0), np.full(8, 1.5), np.full(11, 2.0), np.full(6, 1.0)])
    return pts, lines, radius


@pytest.mark.parametrize("mode", ["ascii", "binary", "zlib", "appended"])
@pytest.mark.parametrize("header", ["UInt32", "UInt64"])
def test_vtp_centerlines_all_encodings(tmp_path, mode, header):
    pts, lines, radius = _two_lines()
    path = _write_vtp(tmp_path / "c.vtp", pts, lines, radius=radius, mode=mode, header=header)
    g = read_vtp_centerlines(path)
    # 11 shared trunk points merged: 11 + 8 + 6 nodes, one tree, one junction.
    assert g.num_nodes == 25 and g.num_edges == 24
    assert g.components().max() == 0
    deg = g.degrees()
    assert (deg == 3).sum() == 1 and (deg == 1).sum() == 3
    np.testing.assert_allclose(g.nodes[deg == 3][0], [10, 0, 0], atol=1e-6)
    assert g.total_length_mm == pytest.approx(10 + 8 * np.sqrt(2) + 6 * np.sqrt(2), rel=1e-6)
    assert sorted(np.unique(g.radii).tolist()) == [1.0, 1.5, 2.0]


def test_vtp_surface_polys_become_a_mesh_and_a_graph(tmp_path):
    tube = tube_mesh(CenterlineGraph(nodes=[[0, 0, 0], [20, 0, 0]], radii=[2.0, 2.0], edges=[[0, 1]]), sections=24)
    path = _write_vtp(tmp_path / "s.vtp", tube.vertices, polys=list(tube.faces), mode="appended")
    poly = read_vtp(path)
    assert len(poly["polys"]) == len(tube.faces) and len(poly["lines"]) == 0
    tree = load_tree(path, voxel_mm=0.5)
    assert tree.surface is not None and tree.surface.is_watertight
    assert abs(tree.graph.total_length_mm - 24.0) <= 2.5  # 20 mm + the two caps of 2 mm
    assert np.abs(tree.graph.nodes[:, 1:]).max() <= 0.5
    with pytest.raises(TreeFormatError, match="no Lines"):
        read_vtp_centerlines(path)


def test_vtp_without_radius_is_rejected(tmp_path):
    pts, lines, _ = _two_lines()
    path = _write_vtp(tmp_path / "c.vtp", pts, lines, radius=None)
    with pytest.raises(TreeFormatError, match="MaximumInscribedSphereRadius"):
        read_vtp_centerlines(path)


@pytest.mark.parametrize("mode", ["zlib", "appended", "binary"])
def test_truncated_vtp_is_rejected(tmp_path, mode):
    pts, lines, radius = _two_lines()
    good = _write_vtp(tmp_path / "c.vtp", pts, lines, radius=radius, mode=mode).read_bytes()
    bad = tmp_path / "bad.vtp"
    bad.write_bytes(good[: len(good) * 2 // 3])
    with pytest.raises(TreeFormatError, match="bad.vtp"):
        read_vtp_centerlines(bad)


def test_short_appended_data_is_rejected(tmp_path):
    pts, lines, radius = _two_lines()
    good = _write_vtp(tmp_path / "c.vtp", pts, lines, radius=radius, mode="appended").read_bytes()
    end = good.rfind(b"\n</AppendedData>")
    bad = tmp_path / "short.vtp"
    bad.write_bytes(good[: end - 60] + good[end:])  # tags intact, data cut
    with pytest.raises(TreeFormatError, match="short.vtp.*shorter than its size header"):
        read_vtp_centerlines(bad)


def test_corrupt_zlib_is_rejected(tmp_path):
    pts, lines, radius = _two_lines()
    path = _write_vtp(tmp_path / "c.vtp", pts, lines, radius=radius, mode="zlib")
    text = path.read_text()
    i = text.index("<DataArray", text.index("<Points>"))
    j = text.index(">", i) + 1
    bad = text[: j + 60] + ("A" * 40) + text[j + 100 :]
    path.write_text(bad)
    with pytest.raises(TreeFormatError, match="c.vtp.*zlib block does not decompress"):
        read_vtp_centerlines(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(TreeFormatError, match="no such file"):
        load_tree(tmp_path / "nope.vtp")
    other = tmp_path / "tree.xyz"
    other.write_text("1 2 3")
    with pytest.raises(TreeFormatError, match="unknown tree file suffix"):
        load_tree(other)
    junk = tmp_path / "junk.stl"
    junk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(TreeFormatError, match="junk.stl"):
        load_tree(junk)
    junk_nii = tmp_path / "junk.nii.gz"
    junk_nii.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(TreeFormatError, match="junk.nii.gz"):
        load_tree(junk_nii)


# ------------------------------------------------------------------- surfaces
def _y_graph():
    return CenterlineGraph(
        nodes=[[0, 0, 0], [15, 0, 0], [30, 10, 0], [30, -10, 2]],
        radii=[2.0, 1.8, 1.2, 1.2],
        edges=[[0, 1], [1, 2], [1, 3]],
    ).resampled(1.0)


@pytest.mark.parametrize("suffix", [".stl", ".ply", ".obj"])
def test_mesh_round_trip_recovers_the_centre_line(tmp_path, suffix):
    truth = _y_graph()
    path = tmp_path / f"y{suffix}"
    tube_mesh(truth, sections=24).export(path)
    tree = load_tree(path, voxel_mm=0.4)
    assert isinstance(tree, LoadedTree) and tree.source == str(path)
    g = tree.graph
    assert (g.degrees() == 3).sum() == 1 and (g.degrees() == 1).sum() == 3
    d, i = cKDTree(truth.nodes).query(g.nodes)
    assert d.mean() < 0.5
    interior = g.degrees() == 2
    assert np.median(np.abs(g.radii[interior] - truth.radii[i[interior]])) < 0.3


def test_open_mesh_is_filled_or_rejected(tmp_path):
    tube = tube_mesh(CenterlineGraph(nodes=[[0, 0, 0], [20, 0, 0]], radii=[2.0, 2.0], edges=[[0, 1]]), sections=24)
    one_hole = tube.copy()
    one_hole.update_faces(np.arange(len(one_hole.faces)) != 0)
    one_hole.remove_unreferenced_vertices()
    path = tmp_path / "hole.stl"
    one_hole.export(path)
    tree = tree_from_mesh(path, voxel_mm=0.5)  # a single missing triangle is filled
    assert tree.surface.is_watertight and tree.graph.num_nodes > 0
    # Cut off one whole end cap: no longer fillable into a closed surface.
    half = tube.copy()
    half.update_faces(tube.triangles_center[:, 0] < 19.0)
    half.remove_unreferenced_vertices()
    path2 = tmp_path / "open.ply"
    half.export(path2)
    with pytest.raises(TreeFormatError, match="open.ply"):
        tree_from_mesh(path2, voxel_mm=0.5)


def test_center_moves_bbox_centre_to_origin(tmp_path):
    path = tmp_path / "y.stl"
    tube_mesh(_y_graph().with_nodes(_y_graph().nodes + [100, -50, 30])).export(path)
    tree = load_tree(path, voxel_mm=0.5, center=True)
    lo, hi = tree.graph.bounds()
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-9)
    # The surface moved with the graph.
    assert tree.surface.contains(tree.graph.nodes[tree.graph.degrees() == 2][::5]).all()


# -------------------------------------------------------------- label volumes
def _label_cylinder(shape=(40, 30, 20)):
    """Cylinder along axis 0 at (j, k) = (15, 10), radius 4 voxels, i in [5, 34]."""
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lab = ((j - 15) ** 2 + (k - 10) ** 2 <= 16) & (i >= 5) & (i <= 34)
    out = lab.astype(np.int16) * 2
    out[0, 0, 0] = 7  # a one-voxel speckle with another label
    return out


def test_nifti_ras_is_converted_to_lps(tmp_path):
    import nibabel

    lab = _label_cylinder()
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [10.0, 20.0, 30.0]  # RAS
    path = tmp_path / "lab.nii.gz"
    nibabel.save(nibabel.Nifti1Image(lab, affine), path)
    tree = tree_from_label_volume(path)
    g = tree.graph
    # Voxel (i, 15, 10) -> RAS (10 + i/2, 27.5, 35) -> LPS (-10 - i/2, -27.5, 35).
    np.testing.assert_allclose(np.median(g.nodes[:, 1:], axis=0), [-27.5, 35.0], atol=0.3)
    assert -28.5 <= g.nodes[:, 0].min() and g.nodes[:, 0].max() <= -11.5
    assert abs(g.total_length_mm - 15.0) <= 2.0
    assert abs(np.median(g.radii) - 2.0) <= 0.5
    assert g.components().max() == 0  # speckle dropped
    assert tree.surface.is_watertight and tree.surface.volume > 0
    # Surface matches the same frame: the centre line lies inside it.
    assert tree.surface.contains(g.nodes[g.degrees() == 2]).all()
    # Only label 7 selected: just the speckle, still one node, no crash.
    assert tree_from_label_volume(path, labels=[7]).graph.num_nodes == 1


def test_nrrd_space_is_honoured(tmp_path):
    import nrrd

    lab = _label_cylinder()
    dirs = np.diag([0.5, 0.5, 0.5])
    for space, sign in (("left-posterior-superior", 1.0), ("right-anterior-superior", -1.0)):
        path = tmp_path / f"{space}.nrrd"
        nrrd.write(str(path), lab, {"space": space, "space directions": dirs, "space origin": np.array([10.0, 20.0, 30.0])})
        g = load_tree(path).graph
        np.testing.assert_allclose(
            np.median(g.nodes[:, 1:], axis=0), [sign * (20 + 7.5), 35.0], atol=0.3
        )


def test_empty_label_volume_is_rejected(tmp_path):
    import nibabel

    path = tmp_path / "empty.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4)), path)
    with pytest.raises(TreeFormatError, match="empty.nii.*no foreground"):
        load_tree(path)


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def asoca(shared_data):
    folder = shared_data / "asoca-normal-1"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.fixture(scope="module")
def asoca_vtp(asoca):
    return read_vtp_centerlines(asoca / "Normal_1.vtp")


def test_real_vtp_centerlines(asoca_vtp):
    g = asoca_vtp
    assert 5000 <= g.num_nodes <= 20000
    assert g.is_forest()
    assert g.components().max() + 1 <= 3  # left and right coronary trees
    assert 0.15 <= g.radii.min() and g.radii.max() <= 2.5
    assert 400 <= g.total_length_mm <= 900
    assert (g.degrees() >= 3).sum() >= 5


def test_real_vtp_lies_inside_the_stl(asoca, asoca_vtp):
    surface = trimesh.load(asoca / "Normal_1.stl")
    sub = np.arange(0, asoca_vtp.num_nodes, 15)
    signed = trimesh.proximity.signed_distance(surface, asoca_vtp.nodes[sub])  # > 0 inside
    assert np.mean(signed > 0) > 0.95
    ratio = signed / asoca_vtp.radii[sub]
    assert 0.8 <= np.median(ratio) <= 1.2


def test_real_stl_graph_matches_vtp(asoca, asoca_vtp):
    tree = load_tree(asoca / "Normal_1.stl", voxel_mm=0.5)
    d, i = cKDTree(asoca_vtp.nodes).query(tree.graph.nodes)
    assert d.mean() < 1.0
    assert abs(tree.graph.total_length_mm - asoca_vtp.total_length_mm) < 0.15 * asoca_vtp.total_length_mm
    assert abs(np.median(tree.graph.radii - asoca_vtp.radii[i])) < 0.3


def test_real_nrrd_loads_in_lps(asoca, asoca_vtp):
    tree = load_tree(asoca / "Normal_1.nrrd")
    lo, hi = tree.surface.bounds
    # Foreground voxels i 147..399, j 129..366, k 33..177 of an LPS grid with
    # origin (-116.8, -120, -196.875) and spacing (0.416016, 0.416016, 0.625).
    np.testing.assert_allclose(lo, [-116.8 + 146.5 * 0.416016, -120 + 128.5 * 0.416016, -196.875 + 32.5 * 0.625], atol=0.2)
    np.testing.assert_allclose(hi, [-116.8 + 399.5 * 0.416016, -120 + 366.5 * 0.416016, -196.875 + 177.5 * 0.625], atol=0.2)
    assert 500 <= tree.graph.total_length_mm <= 900
    # The STL/VTP frame is this LPS frame shifted by (-2 ox, -2 oy, 0) =
    # (233.6, 240.0, 0) mm (x/y origin sign flipped by the exporter).
    shift = np.array([233.6, 240.0, 0.0])
    d, _ = cKDTree(asoca_vtp.nodes).query(tree.graph.nodes + shift)
    assert np.median(d) < 1.0


def test_real_imagecas_nifti(shared_data):
    path = shared_data / "imagecas-label" / "example.label.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    tree = load_tree(path)
    g = tree.graph
    assert 300 <= g.total_length_mm <= 2000
    assert 0.5 <= np.median(g.radii) <= 2.5 and g.radii.max() < 4.0
    assert g.is_forest() and g.components().max() + 1 <= 4
    # RAS affine (-0.33, 0.33, 0.5; origin 51.3, 88.2, 34.0) -> LPS x = 0.33 i - 51.3, y = -0.33 j - 88.2.
    lo, hi = g.bounds()
    assert -51.4 <= lo[0] and hi[0] <= -51.3 + 512 * 0.3301
    assert -88.1 - 512 * 0.3301 <= lo[1] and hi[1] <= -88.1
    assert tree.surface.is_watertight
