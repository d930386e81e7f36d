"""autocar-reconstruction/1 files and ground truth (autocar.io.results)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError
from autocar.io.results import (
    COORDINATE_SYSTEM,
    RECONSTRUCTION_FORMAT,
    Reconstruction,
    read_ground_truth,
    read_reconstruction,
    write_ground_truth,
    write_reconstruction,
)


def y_tree(shift: float = 0.0) -> CenterlineGraph:
    """A bifurcation: root 0 -> 1, then 1 -> 2 and 1 -> 3 (values on a 1e-4 mm grid)."""
    nodes = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 1.8], [-0.5, 0.25, 1.8]]) + shift
    return CenterlineGraph(nodes, np.array([1.5, 1.25, 1.0, 0.875]), np.array([[0, 1], [1, 2], [1, 3]]))


def dynamic_rec() -> Reconstruction:
    return Reconstruction(
        frames=(y_tree(), y_tree(0.125), y_tree(-0.0625)),
        extra={"stenoses": [{"node": 2, "severity": 0.5}], "lag": 0.1, "motion": {"model": "x"}},
        frame_extra=({"phase": 0.0}, {"phase": 0.25}, {"phase": 0.5, "note": "diastole"}),
    )


def test_round_trip_folder_and_file(tmp_path):
    rec = dynamic_rec()
    p = write_reconstruction(rec, tmp_path / "out")
    assert p == tmp_path / "out" / "reconstruction.json"
    for source in (tmp_path / "out", p):
        back = read_reconstruction(source)
        assert back.extra == rec.extra and back.frame_extra == rec.frame_extra
        assert back.num_frames == 3 and back.is_dynamic
        for a, b in zip(rec.frames, back.frames):
            np.testing.assert_array_equal(a.nodes, b.nodes)
            np.testing.assert_array_equal(a.radii, b.radii)
            np.testing.assert_array_equal(a.edges, b.edges)
    q = write_reconstruction(rec, tmp_path / "r.json")
    assert q == tmp_path / "r.json" and read_reconstruction(q).num_frames == 3


def test_written_json_matches_format(tmp_path):
    p = write_reconstruction(dynamic_rec(), tmp_path)
    data = json.loads(p.read_text())
    assert data["format"] == "autocar-reconstruction/1" == RECONSTRUCTION_FORMAT
    assert data["coordinate_system"] == "DICOM LPS, mm, origin at isocentre" == COORDINATE_SYSTEM
    assert set(data) == {"format", "coordinate_system", "frames", "stenoses", "lag", "motion"}
    f1 = data["frames"][1]
    assert set(f1) == {"index", "nodes", "edges", "phase"} and f1["index"] == 1
    assert f1["nodes"][0] == [0.125, 0.125, 0.125, 1.5]
    assert f1["edges"] == [[0, 1], [1, 2], [1, 3]]
    # One node row per line keeps the file readable.
    assert "        [0.125, 0.125, 0.125, 1.5]," in p.read_text()


def test_rounding_to_tenth_micrometre(tmp_path):
    g = CenterlineGraph(np.array([[1.23456789, 0.0, 0.0], [2.0, 0.0, 0.0]]), np.array([0.5, 0.5]), np.array([[0, 1]]))
    back = read_reconstruction(write_reconstruction(Reconstruction(frames=(g,)), tmp_path))
    assert back.frames[0].nodes[0, 0] == 1.2346
    assert back.frame_extra is None and back.extra == {}


def test_is_dynamic():
    assert dynamic_rec().is_dynamic
    assert Reconstruction(frames=(y_tree(),)).is_dynamic
    fewer = CenterlineGraph(np.zeros((3, 3)) + [[0, 0, 0], [0, 0, 1], [0, 0, 2]], np.ones(3), np.array([[0, 1], [1, 2]]))
    assert not Reconstruction(frames=(y_tree(), fewer)).is_dynamic
    g = y_tree()
    rewired = CenterlineGraph(g.nodes, g.radii, np.array([[0, 1], [1, 2], [2, 3]]))
    assert not Reconstruction(frames=(g, rewired)).is_dynamic
    reordered = CenterlineGraph(g.nodes, g.radii, np.array([[0, 1], [1, 3], [1, 2]]))
    assert not Reconstruction(frames=(g, reordered)).is_dynamic


def test_empty_frame_graph_round_trip(tmp_path):
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    rec = Reconstruction(frames=(empty, y_tree()), frame_extra=({"empty_reason": "no vessel"}, {}))
    back = read_reconstruction(write_reconstruction(rec, tmp_path))
    assert back.frames[0].num_nodes == 0 and back.frames[1].num_nodes == 4
    assert back.frame_extra == ({"empty_reason": "no vessel"}, {})
    assert not back.is_dynamic


def test_ground_truth(tmp_path):
    (tmp_path / "case").mkdir()
    p = write_ground_truth(dynamic_rec(), tmp_path / "case")
    assert p == tmp_path / "case" / "ground_truth.json"
    assert read_ground_truth(tmp_path / "case").extra["lag"] == 0.1
    assert read_ground_truth(p).is_dynamic
    with pytest.raises(CaseFormatError, match="case folder not found"):
        write_ground_truth(dynamic_rec(), tmp_path / "missing")
    with pytest.raises(CaseFormatError, match=r"ground_truth\.json: file not found"):
        read_ground_truth(tmp_path)


def test_construction_errors():
    with pytest.raises(CaseFormatError, match="at least one frame"):
        Reconstruction(frames=())
    with pytest.raises(CaseFormatError, match="reserved"):
        Reconstruction(frames=(y_tree(),), extra={"frames": []})
    with pytest.raises(CaseFormatError, match="reserved"):
        Reconstruction(frames=(y_tree(),), frame_extra=({"nodes": 1},))
    with pytest.raises(CaseFormatError, match="2 entries for 1 frames"):
        Reconstruction(frames=(y_tree(),), frame_extra=({}, {}))


def test_unserialisable_extra_leaves_nothing(tmp_path):
    rec = Reconstruction(frames=(y_tree(),), extra={"bad": float("nan")})
    with pytest.raises(CaseFormatError, match="cannot write as JSON"):
        write_reconstruction(rec, tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


BAD = [
    ("format-v2", lambda d: d.update(format="autocar-reconstruction/2"),
     r"format must be 'autocar-reconstruction/1', got \"autocar-reconstruction/2\""),
    ("coords", lambda d: d.update(coordinate_system="RAS"), r"coordinate_system must be"),
    ("no-frames", lambda d: d.update(frames=[]), r"frames must be a non-empty list"),
    ("index", lambda d: d["frames"][1].update(index=2), r"frames\[1\]\.index must be 1, got 2"),
    ("missing-edges", lambda d: d["frames"][0].pop("edges"), r"frames\[0\]\.edges is missing"),
    ("short-row", lambda d: d["frames"][0]["nodes"].__setitem__(2, [1.0, 2.0, 3.0]),
     r"frames\[0\]\.nodes\[2\] must be \[x, y, z, radius_mm\] \(4 numbers\)"),
    ("string", lambda d: d["frames"][0]["nodes"].__setitem__(1, [1.0, "2", 3.0, 1.0]), r"frames\[0\]\.nodes\[1\] must be"),
    ("neg-radius", lambda d: d["frames"][2]["nodes"][3].__setitem__(3, -0.5), r"frames\[2\]\.nodes\[3\] radius must be >= 0, got -0.5"),
    ("edge-range", lambda d: d["frames"][1]["edges"].append([3, 4]), r"frames\[1\]\.edges\[3\] must hold node indices in \[0, 3\], got \[3\.0, 4\.0\]"),
    ("edge-neg", lambda d: d["frames"][1]["edges"].append([-1, 0]), r"frames\[1\]\.edges\[3\] must hold node indices"),
    ("edge-frac", lambda d: d["frames"][1]["edges"].append([0.5, 2]), r"frames\[1\]\.edges\[3\] must hold node indices"),
    ("self-loop", lambda d: d["frames"][0]["edges"].append([2, 2]), r"frames\[0\]\.edges\[3\] joins node 2 to itself"),
]


@pytest.mark.parametrize("name,fn,pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_reconstruction_rejected(tmp_path, name, fn, pattern):
    p = write_reconstruction(dynamic_rec(), tmp_path)
    _edit(p, fn)
    with pytest.raises(CaseFormatError, match=pattern) as info:
        read_reconstruction(tmp_path)
    assert str(p) in str(info.value)


def test_nan_node_rejected(tmp_path):
    p = write_reconstruction(dynamic_rec(), tmp_path)
    text = p.read_text().replace("[0.125, 0.125, 0.125, 1.5]", "[NaN, 0.125, 0.125, 1.5]", 1)
    assert "NaN" in text
    p.write_text(text)
    with pytest.raises(CaseFormatError, match=r"reconstruction\.json: NaN is not valid JSON"):
        read_reconstruction(p)


def test_bad_json_and_top_level(tmp_path):
    p = tmp_path / "r.json"
    p.write_text('{\n  "format": "autocar-reconstruction/1",\n  "frames": [\n}\n')
    with pytest.raises(CaseFormatError, match=r"r\.json: invalid JSON at line 4"):
        read_reconstruction(p)
    p.write_text("[]")
    with pytest.raises(CaseFormatError, match="top level must be a JSON object"):
        read_reconstruction(p)
    with pytest.raises(CaseFormatError, match=r"reconstruction\.json: file not found"):
        read_reconstruction(tmp_path)


def test_a_result_with_a_cycle_is_refused_and_nothing_is_written(tmp_path):
    from autocar.geometry.centerline import CenterlineGraph
    from autocar.errors import ShapeError
    from autocar.io.results import Reconstruction, write_reconstruction

    nodes = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], float)
    loop = CenterlineGraph(nodes, np.ones(4), np.array([[0, 1], [1, 2], [2, 3], [3, 0]]))
    tree = CenterlineGraph(nodes, np.ones(4), np.array([[0, 1], [1, 2], [2, 3]]))
    out = tmp_path / "res"
    with pytest.raises(ShapeError, match="frame 1's centre-line graph has a cycle"):
        write_reconstruction(Reconstruction(frames=(tree, loop)), out)
    assert not out.exists()
    assert write_reconstruction(Reconstruction(frames=(tree, tree)), out).is_file()
