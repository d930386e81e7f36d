"""The report page built in Python: embedded data, escaping, images, bad input."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry import CArmView
from autocar.io.results import Reconstruction
from autocar.report import REPORT_FILE, report_payload, write_report

DATA_RE = re.compile(r'<script type="application/json" id="autocar-data">(.*?)</script>', re.DOTALL)


def _no_nan(token: str) -> float:
    raise AssertionError(f"non-strict JSON constant {token} in the page data")


def page_data(text: str) -> dict:
    """The JSON the page embeds, parsed strictly (NaN/Infinity fail)."""
    m = DATA_RE.search(text)
    assert m is not None, "no autocar-data script in the page"
    return json.loads(m.group(1), parse_constant=_no_nan)


def ap_view(n: int = 100) -> CArmView:
    return CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), n, n)


def lao_view(n: int = 100) -> CArmView:
    return CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), n, n)


def y_graph(shift=(0.0, 0.0, 0.0)) -> CenterlineGraph:
    """A Y: stem 0-1-2, branches 2-3-4 and 2-5-6 (mm), radius 1.5 mm on the stem, 1 mm on the branches."""
    nodes = np.array(
        [[0, 0, 0], [5, 0, 0], [10, 0, 0], [15, 0, 4], [20, 0, 8], [15, 0, -4], [20, 0, -8]], dtype=float
    ) + np.asarray(shift)
    radii = np.array([1.5, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0])
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [2, 5], [5, 6]])
    return CenterlineGraph(nodes, radii, edges)


def measurements_for(graph: CenterlineGraph) -> dict:
    """A hand-made autocar-measurements/1 dict: stem, upper branch and a stem-to-tip path overlapping both."""
    return {
        "format": "autocar-measurements/1",
        "frame": 0,
        "tree_side": "left",
        "views": [{"name": "A", "primary_deg": 0.0, "secondary_deg": 0.0}],
        "segments": [
            {"id": 10, "name": "LM", "nodes": [0, 1, 2], "length_mm": 10.0,
             "foreshortening_percent": {"A": 0.0, "B": 100.0}, "mean_diameter_mm": 3.0,
             "optimal_view": {"primary_deg": -20.0, "secondary_deg": 25.0,
                              "foreshortening_percent": 1.234, "overlap_percent": 3.0}},
            {"id": 11, "name": "LAD", "nodes": [2, 3, 4], "length_mm": 12.806248,
             "foreshortening_percent": {"A": float("nan"), "B": 37.5}, "mean_diameter_mm": 2.0,
             "diameter_profile": {"arc_mm": [0.0, 6.4, 12.8], "diameter_mm": [2.0, 1.2, 2.0]},
             "optimal_view": None},
            {"id": 12, "name": "ostium to LAD tip", "nodes": [0, 1, 2, 3, 4], "length_mm": 22.81},
        ],
        "stenoses": [
            {"segment": 11, "name": "LAD", "node": 3, "position_mm": [15.0, 0.0, 4.0],
             "distance_from_ostium_mm": 16.4, "diameter_stenosis_percent": 40.0,
             "minimal_diameter_mm": 1.2, "reference_diameter_mm": 2.0, "lesion_length_mm": float("inf")}
        ],
    }


# ------------------------------------------------------------------ geometry
def test_projections_hand_computed():
    # AP view: u = +x (columns), v = -z (rows), d = -y; a point on the y = 0
    # plane sits at depth SOD = 750 mm, magnified by SID/SOD = 4/3, 0.3 mm pixels.
    rec = Reconstruction(frames=(y_graph(),))
    data = report_payload(rec, [ap_view(), lao_view()])
    rc = np.asarray(data["frames"][0]["proj"]["A"], dtype=float).reshape(-1, 2)
    assert rc[0].tolist() == [49.5, 49.5]  # isocentre -> principal point ((100-1)/2)
    assert rc[4, 1] == pytest.approx(round(49.5 + 20 * (4 / 3) / 0.3, 2), abs=1e-9)  # 138.39
    assert rc[4, 0] == pytest.approx(round(49.5 - 8 * (4 / 3) / 0.3, 2), abs=1e-9)  # 13.94
    assert rc[6, 0] == pytest.approx(round(49.5 + 8 * (4 / 3) / 0.3, 2), abs=1e-9)  # 85.06
    # Node positions and radii are embedded in mm, rounded to 0.01.
    assert data["frames"][0]["xyz"][12:15] == [20.0, 0.0, 8.0]
    assert data["radius"] == [1.5, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0]
    assert data["center"] == [10.0, 0.0, 0.0]
    assert data["initialAxes"][0] == [1.0, 0.0, 0.0]


def test_projections_match_projection_matrix_every_frame():
    # A moving tree seen in two oblique views: every embedded (row, col) is
    # P @ (x, y, z, 1) of that frame, within the 0.01 px rounding.
    frames = tuple(y_graph(shift=(0.0, 2.0 * k, -1.5 * k)) for k in range(3))
    views = [CArmView(-30.0, 20.0, 1100.0, 780.0, (0.28, 0.3), 120, 140),
             CArmView(45.0, -15.0, 1000.0, 700.0, (0.3, 0.3), 128, 128)]
    data = report_payload(Reconstruction(frames=frames), views)
    for k, g in enumerate(frames):
        for name, view in zip(("A", "B"), views):
            h = np.concatenate([g.nodes, np.ones((g.num_nodes, 1))], axis=1) @ view.projection_matrix.T
            expected = np.stack([h[:, 1] / h[:, 2], h[:, 0] / h[:, 2]], axis=1)
            got = np.asarray(data["frames"][k]["proj"][name], dtype=float).reshape(-1, 2)
            np.testing.assert_allclose(got, expected, atol=0.005 + 1e-9)
    assert data["numFrames"] == 3 and data["dynamic"] is True
    assert all(f["sameTopology"] for f in data["frames"])
    assert "radius" not in data["frames"][1]  # radii unchanged: stored once


def test_epipolar_shift_of_view_b_moves_its_overlay():
    # reconstruct_pair(align_views=True) warped view B's mask; here the warp is a pure
    # (row, col) (2, -3) px move: the tree is drawn on B's image moved with it, A's
    # overlay is untouched.
    g = y_graph()
    plain = report_payload(Reconstruction(frames=(g,)), [ap_view(), lao_view()])
    moved = report_payload(Reconstruction(frames=(g,), frame_extra=({"view_warp_px": {"B": [[1.0, 0.0, 2.0], [0.0, 1.0, -3.0]]}},)),
                           [ap_view(), lao_view()])
    a0, a1 = (np.asarray(d["frames"][0]["proj"]["A"], float) for d in (plain, moved))
    b0, b1 = (np.asarray(d["frames"][0]["proj"]["B"], float).reshape(-1, 2) for d in (plain, moved))
    np.testing.assert_array_equal(a0, a1)
    np.testing.assert_allclose(b1 - b0, np.tile([2.0, -3.0], (len(b0), 1)), atol=0.011)
    with pytest.raises(CaseFormatError, match="view_warp_px of view B"):
        report_payload(Reconstruction(frames=(g,), frame_extra=({"view_warp_px": {"B": [1.0, 2.0]}},)),
                       [ap_view(), lao_view()])


def test_point_behind_source_is_null_not_nan(tmp_path):
    g = CenterlineGraph(np.array([[0.0, 0.0, 0.0], [0.0, 800.0, 0.0]]), np.ones(2), np.array([[0, 1]]))
    # AP source at y = +750 mm (d = -y): the node at y = 800 mm is behind it.
    out = write_report(tmp_path, Reconstruction(frames=(g,)), [ap_view(), lao_view()])
    data = page_data(out.read_text(encoding="utf-8"))
    assert data["frames"][0]["proj"]["A"][2:] == [None, None]
    assert data["frames"][0]["proj"]["A"][:2] == [49.5, 49.5]


# ------------------------------------------------------------------ segments
def test_segments_derived_from_branches_without_labels():
    g = y_graph()
    data = report_payload(Reconstruction(frames=(g,)), [ap_view(), lao_view()])
    segs = data["segments"]
    assert [s["name"] for s in segs] == [f"segment {k}" for k in range(3)]
    assert sorted(tuple(sorted(s["nodes"])) for s in segs) == [(0, 1, 2), (2, 3, 4), (2, 5, 6)]
    # Every edge belongs to exactly the segment whose path holds it.
    for e, (i, j) in enumerate(data["edges"]):
        seg = next(s for s in segs if s["id"] == data["edgeSegment"][e])
        assert i in seg["nodes"] and j in seg["nodes"]
        assert e in seg["edges"]
    stem = next(s for s in segs if 0 in s["nodes"])
    assert stem["length_mm"] == 10.0
    branch = next(s for s in segs if 4 in s["nodes"])
    assert branch["length_mm"] == round(2 * np.hypot(5.0, 4.0), 2)
    assert data["measurements"] is None and data["stenoses"] == []


def test_segments_named_after_vessel_labels():
    g = y_graph()
    labelled = CenterlineGraph(g.nodes, g.radii, g.edges, labels=np.array([0, 0, 0, 1, 1, 1, 1]),
                               label_names=("LM", "LAD"))
    data = report_payload(Reconstruction(frames=(labelled,)), [ap_view(), lao_view()])
    by_nodes = {tuple(sorted(s["nodes"])): s["name"] for s in data["segments"]}
    assert by_nodes[(0, 1, 2)] == "LM"
    assert sorted([by_nodes[(2, 3, 4)], by_nodes[(2, 5, 6)]]) == ["LAD 1", "LAD 2"]
    # The same labels read back from a ground-truth file's extra keys.
    plain = Reconstruction(frames=(g,), extra={"label_names": ["LM", "LAD"], "node_labels": [0, 0, 0, 1, 1, 1, 1]})
    names = sorted(s["name"] for s in report_payload(plain, [ap_view(), lao_view()])["segments"])
    assert names == ["LAD 1", "LAD 2", "LM"]


def test_measurements_cleaned_and_overlapping_segments():
    g = y_graph()
    data = report_payload(Reconstruction(frames=(g,)), [ap_view(), lao_view()], measurements=measurements_for(g))
    segs = {s["id"]: s for s in data["segments"]}
    assert list(segs) == [10, 11, 12]
    # Edge 0-1 lies in LM (3 nodes) and in the ostium-to-tip path (5 nodes): the shorter one owns it.
    assert data["edgeSegment"] == [10, 10, 11, 11, -1, -1]
    assert segs[12]["edges"] == [0, 1, 2, 3]
    # NaN/inf become null, other numbers are rounded to 0.01.
    assert segs[11]["foreshortening_percent"] == {"A": None, "B": 37.5}
    assert segs[11]["length_mm"] == 12.81
    assert segs[10]["optimal_view"]["foreshortening_percent"] == 1.23
    assert segs[11]["optimal_view"] is None
    assert segs[11]["diameter_profile"]["diameter_mm"] == [2.0, 1.2, 2.0]
    st = data["stenoses"][0]
    assert st["segment"] == 11 and st["node"] == 3 and st["lesion_length_mm"] is None
    assert data["measurements"] == {"frame": 0, "treeSide": "left"}


# ------------------------------------------------------------------ the page
def test_page_is_self_contained_strict_json_and_atomic(tmp_path):
    g = y_graph()
    frames = (g, y_graph(shift=(0.0, 0.0, 1.0)))
    masks = np.zeros((2, 100, 100), dtype=bool)
    masks[:, 40:60, 20:80] = True
    out_dir = tmp_path / "new" / "folder"
    out = write_report(out_dir, Reconstruction(frames=frames), [ap_view(), lao_view()], masks=[masks, masks],
                       measurements=measurements_for(g))
    assert out == out_dir / REPORT_FILE
    assert [p.name for p in out_dir.iterdir()] == [REPORT_FILE]  # no temporary file left behind
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # No address to fetch: no URL, no <link>, no src/href attribute or CSS url() other than data:.
    assert re.search(r"https?://|<link\b|\b(?:src|href)=[\"']?(?!data:)|url\((?!data:)", text, re.IGNORECASE) is None
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert 'id="frame-slider"' in text and 'type="range"' in text
    assert "window.autocarViewer" in text
    data = page_data(text)
    assert data["views"][0]["imageKind"] == "mask"
    assert sorted(data["views"][1]["images"]) == ["0", "1"]
    # Writing again replaces the page in place.
    out2 = write_report(out_dir, Reconstruction(frames=(g,)), [ap_view(), lao_view()])
    assert out2 == out and page_data(out.read_text(encoding="utf-8"))["numFrames"] == 1


def test_user_text_is_escaped(tmp_path):
    evil = '</script><script>alert("x")</script> & <b>'
    g = y_graph()
    meas = measurements_for(g)
    meas["segments"][0]["name"] = evil
    out = write_report(tmp_path, Reconstruction(frames=(g,)), [ap_view(), lao_view()], measurements=meas,
                       title=evil)
    text = out.read_text(encoding="utf-8")
    assert text.lower().count("</script") == 2  # the data and the viewer script, nothing injected
    assert "<b>" not in text
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;</title>" in text
    data = page_data(text)
    assert data["title"] == evil and data["segments"][0]["name"] == evil


def test_images_downscaled_jpeg_only_used_frames(tmp_path):
    from PIL import Image

    big = CArmView(0.0, 0.0, 1000.0, 750.0, (0.15, 0.15), 1024, 768)
    rng = np.random.default_rng(0)
    stack = (rng.random((4, 1024, 768)) * 4000).astype(np.uint16)
    stack[:, 500:520, :] = 0  # a dark band: the stretch maps it to black
    pairs = np.array([[1, 3], [2, 3]])
    frames = (y_graph(), y_graph(shift=(1.0, 0.0, 0.0)))
    data = report_payload(Reconstruction(frames=frames), [big, big], images=[stack, stack], frame_pairs=pairs)
    assert sorted(data["views"][0]["images"]) == ["1", "2"]
    assert sorted(data["views"][1]["images"]) == ["3"]
    assert [f["pair"] for f in data["frames"]] == [[1, 3], [2, 3]]
    uri = data["views"][0]["images"]["1"]
    assert uri.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert img.format == "JPEG" and img.mode == "L" and img.size == (384, 512)  # (W, H), longest side 512
    arr = np.asarray(img)
    assert arr[255, :].mean() < 30 and arr[100, :].mean() > 60
    assert data["views"][0]["numImageFrames"] == 4 and data["views"][0]["imageKind"] == "image"


# --------------------------------------------------------------- bad inputs
def _rec():
    return Reconstruction(frames=(y_graph(), y_graph(shift=(0, 1, 0))))


def test_bad_views_rejected():
    with pytest.raises(CaseFormatError, match="exactly 2 views"):
        report_payload(_rec(), [ap_view()])
    with pytest.raises(CaseFormatError, match=r"views\['B'\] must be a CArmView"):
        report_payload(_rec(), [ap_view(), "LAO 90"])
    with pytest.raises(CaseFormatError, match="reconstruction must be a Reconstruction"):
        report_payload(y_graph(), [ap_view(), lao_view()])


def test_bad_frames_rejected():
    ok = np.zeros((2, 100, 100), dtype=np.uint8)
    with pytest.raises(ShapeError, match=r"images\['B'\] frames are 90 x 100 px but view B has rows x columns = 100"):
        report_payload(_rec(), [ap_view(), lao_view()], images=[ok, np.zeros((2, 90, 100), np.uint8)])
    with pytest.raises(ShapeError, match=r"masks\['A'\] must have shape \(T, H, W\)"):
        report_payload(_rec(), [ap_view(), lao_view()], masks=[np.zeros((1, 2, 100, 100)), ok])
    with pytest.raises(CaseFormatError, match=r"images has view name\(s\) \['C'\]"):
        report_payload(_rec(), [ap_view(), lao_view()], images={"A": ok, "C": ok})


def test_bad_frame_pairs_rejected():
    ok = np.zeros((2, 100, 100), dtype=np.uint8)
    views = [ap_view(), lao_view()]
    with pytest.raises(ShapeError, match=r"frame_pairs must have shape \(2, 2\)"):
        report_payload(_rec(), views, frame_pairs=np.zeros((3, 2), int))
    with pytest.raises(ShapeError, match=r"frame_pairs\[1\] asks for frame 2 of view B, which has 2 frame"):
        report_payload(_rec(), views, images=[ok, ok], frame_pairs=np.array([[0, 0], [1, 2]]))
    with pytest.raises(ShapeError, match="integer frame indices"):
        report_payload(_rec(), views, frame_pairs=np.array([[0, 0], [0.5, 1]]))
    with pytest.raises(ShapeError, match=r"frame_pairs \(default: identity\)\[1\] asks for frame 1 of view A"):
        report_payload(_rec(), views, images=[ok[:1], ok])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(format="autocar-measurements/0"), "format must be 'autocar-measurements/1'"),
        (lambda m: m["segments"][1].update(nodes=[2, 3, 7]), r"segments\[1\].nodes holds 7, not a node of frame 0"),
        (lambda m: m["segments"][1].update(id=10), r"segments\[1\].id 10 is used twice"),
        (lambda m: m["segments"][0].update(length_mm="10 mm"), r"segments\[0\].length_mm must be a number"),
        (lambda m: m["stenoses"][0].update(segment=99), r"stenoses\[0\].segment 99 is not the id of a segment"),
        (lambda m: m["stenoses"][0].update(node=-1), r"stenoses\[0\].node -1 is not a node of frame 0"),
    ],
)
def test_bad_measurements_rejected(change, message):
    meas = measurements_for(y_graph())
    change(meas)
    with pytest.raises(CaseFormatError, match=message):
        report_payload(_rec(), [ap_view(), lao_view()], measurements=meas)


def test_topology_changing_frames_carry_their_own_edges(tmp_path):
    g0 = y_graph()
    nodes = np.concatenate([g0.nodes, [[25.0, 0.0, 12.0]]])
    g1 = CenterlineGraph(nodes, np.append(g0.radii, 0.5), np.concatenate([g0.edges, [[4, 7]]]))
    rec = Reconstruction(frames=(g0, g1))
    assert not rec.is_dynamic
    out = write_report(tmp_path, rec, [ap_view(), lao_view()])
    data = page_data(out.read_text(encoding="utf-8"))
    assert data["dynamic"] is False
    assert data["frames"][0]["sameTopology"] is True and "edges" not in data["frames"][0]
    assert data["frames"][1]["sameTopology"] is False
    assert data["frames"][1]["edges"][-1] == [4, 7] and len(data["frames"][1]["radius"]) == 8


def test_out_dir_that_is_a_file_rejected(tmp_path):
    f = tmp_path / "report"
    f.write_text("x")
    with pytest.raises(CaseFormatError, match="exists and is not a folder"):
        write_report(f, _rec(), [ap_view(), lao_view()])


def test_view_names_from_mapping_and_case_views():
    from autocar.io.case import CaseView

    rec = Reconstruction(frames=(y_graph(),))
    data = report_payload(rec, {"RAO": ap_view(), "LAO": lao_view()})
    assert [v["name"] for v in data["views"]] == ["RAO", "LAO"]
    assert sorted(data["frames"][0]["proj"]) == ["LAO", "RAO"]
    frames = np.zeros((1, 100, 100), dtype=np.uint8)
    cvs = [CaseView(name="first", view=ap_view(), kind="image", frames=frames),
           CaseView(name="second", view=lao_view(), kind="image", frames=frames)]
    data = report_payload(rec, cvs, images={"second": frames + 50})
    assert [v["label"] for v in data["views"]] == ["LAO 0.0 CRA 0.0", "LAO 90.0 CRA 0.0"]
    assert [v["imageKind"] for v in data["views"]] == [None, "image"]
    # LAO 90: u = +y, v = -z, d = +x; node 4 (20, 0, 8) lies at depth 750 + 20 mm, on the centre column.
    assert data["frames"][0]["proj"]["second"][8:10] == [round(49.5 - 8 * (1000 / 770) / 0.3, 2), 49.5]
