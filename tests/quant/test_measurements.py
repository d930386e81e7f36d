"""measurements.json: assembly from a tree and two views, validation, round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError, TreeFormatError
from autocar.geometry import CArmView
from autocar.quant.measurements import (
    MEASUREMENTS_FORMAT,
    measure,
    read_measurements,
    validate_measurements,
    write_measurements,
)
from autocar.quant.views import ViewSearchOptions
from autocar.synth.trees import generate_tree

SOD = 750.0
AP = CArmView(0.0, 0.0, 1100.0, SOD, (0.3, 0.3), 512, 512)
LAO90 = CArmView(90.0, 0.0, 1100.0, SOD, (0.3, 0.3), 512, 512)
FAST = ViewSearchOptions(step_deg=10.0)


def y_tree() -> CenterlineGraph:
    """Trunk (0,0,0) -> (0,0,-20) r 2; A 30 mm along (1,0,-1) r 1.5; B 15 mm along (-1,0,-1) r 1.

    Everything lies in the plane y = 0. Node ids: trunk 0..20, A 21..50, B 51..65.
    """
    nodes = [[0.0, 0.0, -float(z)] for z in range(21)]
    radii = [2.0] * 21
    edges = [(i, i + 1) for i in range(20)]
    for direction, length, r in (((1, 0, -1), 30, 1.5), ((-1, 0, -1), 15, 1.0)):
        d = np.asarray(direction, float) / math.sqrt(2)
        first = len(nodes)
        nodes += [list(np.array([0.0, 0.0, -20.0]) + d * (k + 1)) for k in range(length)]
        radii += [r] * length
        chain = [20] + list(range(first, first + length))
        edges += list(zip(chain[:-1], chain[1:]))
    return CenterlineGraph(np.asarray(nodes), np.asarray(radii), np.asarray(edges))


def test_measure_a_y_tree_by_hand():
    data = measure(y_tree(), [AP, LAO90], side="left", frame=3, view_search=FAST)
    assert data["format"] == MEASUREMENTS_FORMAT and data["frame"] == 3 and data["tree_side"] == "left"
    assert data["views"] == [
        {"name": "A", "primary_deg": 0.0, "secondary_deg": 0.0},
        {"name": "B", "primary_deg": 90.0, "secondary_deg": 0.0},
    ]
    seg = {s["name"]: s for s in data["segments"]}
    assert set(seg) == {"LM", "LAD", "LCX"}
    assert seg["LM"]["nodes"] == list(range(21)) and seg["LCX"]["nodes"] == [20] + list(range(51, 66))
    assert seg["LM"]["length_mm"] == pytest.approx(20.0, abs=1e-3)
    assert seg["LCX"]["length_mm"] == pytest.approx(15.0, abs=1e-3)
    # AP: the tree lies in the isocentre plane y = 0 (depth SOD everywhere): no foreshortening.
    for s in seg.values():
        assert s["foreshortening_percent"]["A"] == pytest.approx(0.0, abs=2e-3)
    # LAO 90 (u = +y, v = -z, d = +x): a point sits at -z SOD / (SOD + x) on the isocentre plane.
    end = 20.0 + 15.0 / math.sqrt(2)
    apparent = end * SOD / (SOD - 15.0 / math.sqrt(2)) - 20.0
    assert seg["LCX"]["apparent_length_mm"]["B"] == pytest.approx(apparent, abs=2e-3)
    assert seg["LCX"]["foreshortening_percent"]["B"] == pytest.approx(100 * (1 - apparent / 15), abs=2e-3)
    assert seg["LM"]["apparent_length_mm"]["B"] == pytest.approx(20.0, abs=2e-3)
    # Diameter profiles: constant 4 mm on the LM; the LCX starts at the junction node.
    prof = seg["LM"]["diameter_profile"]
    np.testing.assert_allclose(prof["arc_mm"], np.arange(21.0), atol=1e-3)
    np.testing.assert_allclose(prof["diameter_mm"], 4.0, atol=1e-3)
    assert seg["LM"]["mean_diameter_mm"] == pytest.approx(4.0)
    assert 2.0 < seg["LCX"]["mean_diameter_mm"] < 2.2  # 2 mm plus the 4 mm junction node, smoothed
    # A straight LM along z: zero foreshortening needs b = 0 on the grid, nearest to AP is 0/0.
    assert seg["LM"]["optimal_view"]["secondary_deg"] == 0.0
    assert seg["LM"]["optimal_view"]["foreshortening_percent"] == pytest.approx(0.0, abs=1e-3)
    assert data["stenoses"] == []


def test_stenoses_of_a_synthetic_tree_reach_the_file(tmp_path):
    truth = generate_tree("left", rng=1, n_stenoses=2)
    data = measure(truth.graph, [AP, LAO90], view_search=FAST)
    assert data["tree_side"] == "left"  # from the labels
    assert {s["name"] for s in data["segments"]} == set(truth.graph.label_names)
    found = {(s["name"], s["node"]) for s in data["stenoses"]}
    for st in truth.stenoses:
        assert any(name == st.label and abs(node - st.node) <= 4 for name, node in found), (st, found)
    ids = {s["id"] for s in data["segments"]}
    assert all(s["segment"] in ids for s in data["stenoses"])
    path = write_measurements(data, tmp_path)
    assert path == tmp_path / "measurements.json"
    assert read_measurements(tmp_path) == data


def test_json_round_trip_is_exact_and_atomic(tmp_path):
    data = measure(y_tree(), [AP, LAO90], view_names=("front", "side"), view_search=FAST)
    assert [v["name"] for v in data["views"]] == ["front", "side"]
    out = tmp_path / "m.json"
    write_measurements(data, out)
    assert read_measurements(out) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # no temporary left behind
    assert json.loads(out.read_text())["segments"][0]["nodes"][0] == 0


def test_measured_radii_change_the_diameters_not_the_tree():
    g = y_tree()
    plain = measure(g, [AP, LAO90], optimal_views=0)
    # The trunk read 1.5 times wider (as an overlap would): which branch the vessel continues into,
    # the root and the segments are read on the graph's own radii, the diameters on these.
    wide = g.radii.copy()
    wide[:21] *= 1.5
    out = measure(g, [AP, LAO90], optimal_views=0, measured_radii_mm=wide)
    assert [(s["id"], s["name"], s["nodes"]) for s in out["segments"]] == \
        [(s["id"], s["name"], s["nodes"]) for s in plain["segments"]]
    def trunk_diameter(m: dict) -> float:  # median diameter over the trunk's first 15 mm
        prof = [s for s in m["segments"] if 0 in s["nodes"]][0]["diameter_profile"]
        return float(np.median(np.asarray(prof["diameter_mm"])[np.asarray(prof["arc_mm"]) < 15.0]))

    assert trunk_diameter(plain) == pytest.approx(4.0, abs=0.01)
    assert trunk_diameter(out) == pytest.approx(6.0, abs=0.01)
    with pytest.raises(ValueError, match="measured_radii_mm"):
        measure(g, [AP, LAO90], optimal_views=0, measured_radii_mm=wide[:5])


def test_bad_measure_inputs_are_rejected():
    g = y_tree()
    with pytest.raises(ShapeError, match="one CArmView per view name"):
        measure(g, [AP])
    with pytest.raises(ShapeError, match="one CArmView per view name"):
        measure(g, [AP, LAO90, AP])
    with pytest.raises(TypeError, match=r"views\[1\]"):
        measure(g, [AP, "LAO 90"])  # type: ignore[list-item]
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    with pytest.raises(TreeFormatError, match="empty"):
        measure(empty, [AP, LAO90])
    with pytest.raises(TreeFormatError, match="NaN"):  # a graph cannot even hold NaN coordinates
        CenterlineGraph(np.array([[0, 0, 0], [np.nan, 0, 0]]), np.ones(2), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="frame"):
        measure(g, [AP, LAO90], frame=-1)
    with pytest.raises(ValueError, match="side"):
        measure(g, [AP, LAO90], side="both")
    with pytest.raises(ValueError, match="view_names"):
        measure(g, [AP, LAO90], view_names=("A", "A"))


def _valid() -> dict:
    return measure(y_tree(), [AP, LAO90], view_search=FAST)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.update(format="autocar-measurements/9"), "format"),
        (lambda d: d.pop("segments"), "missing key"),
        (lambda d: d["segments"][0].pop("optimal_view"), r"segments\[0\]: missing key"),
        (lambda d: d["segments"][0]["apparent_length_mm"].pop("B"), r"segments\[0\].apparent_length_mm"),
        (lambda d: d["segments"][1].update(id=0), "duplicate segment id"),
        (lambda d: d["segments"][0]["diameter_profile"]["arc_mm"].pop(), "arc_mm has"),
        (lambda d: d["segments"][0].update(length_mm=True), "length_mm: must be a finite number"),
        (lambda d: d.update(tree_side="middle"), "tree_side"),
        (lambda d: d["views"].append({"name": "A", "primary_deg": 0, "secondary_deg": 0}), r"views\[2\].name"),
        (
            lambda d: d["stenoses"].append(
                {"segment": 42, "name": "X", "node": 1, "position_mm": [0, 0, 0],
                 "distance_from_ostium_mm": 1, "diameter_stenosis_percent": 50,
                 "minimal_diameter_mm": 1, "reference_diameter_mm": 2, "lesion_length_mm": 3}
            ),
            "segment id 42",
        ),
    ],
)
def test_validation_names_the_key_and_problem(edit, message):
    data = _valid()
    edit(data)
    with pytest.raises(CaseFormatError, match=message):
        validate_measurements(data, source="x.json")


def test_reading_bad_files_names_the_file(tmp_path):
    with pytest.raises(CaseFormatError, match="not found"):
        read_measurements(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CaseFormatError, match="bad.json.*invalid JSON"):
        read_measurements(bad)
    data = _valid()
    data["segments"][0]["length_mm"] = 12345.5
    text = json.dumps(data).replace("12345.5", "NaN")
    bad.write_text(text)
    with pytest.raises(CaseFormatError, match="bad.json.*NaN"):
        read_measurements(bad)
    data = _valid()
    data["frame"] = -2
    with pytest.raises(CaseFormatError, match="frame"):
        write_measurements(data, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_real_healthy_ct_tree(shared_data, tmp_path):
    """ASOCA Normal_1 (a patient without coronary artery disease): measured end to end,
    no clinically significant (>= 50 %) stenosis is reported."""
    from autocar.io.trees import read_vtp_centerlines

    path = shared_data / "asoca-normal-1" / "Normal_1.vtp"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    g = read_vtp_centerlines(path)
    lo, hi = g.bounds()
    g = g.with_nodes(g.nodes - (lo + hi) / 2)  # CT frame -> around the isocentre
    data = measure(g, [AP, LAO90], view_search=FAST)
    assert len(data["segments"]) >= 6
    for s in data["segments"]:
        assert 0.5 < s["mean_diameter_mm"] < 5.0
        assert all(-10.0 < f < 100.0 for f in s["foreshortening_percent"].values())
    assert all(st["diameter_stenosis_percent"] < 50.0 for st in data["stenoses"])
    write_measurements(data, tmp_path)
    assert read_measurements(tmp_path) == data


def test_optimal_view_search_is_limited_to_stenosed_named_and_longest_segments(tmp_path):
    truth = generate_tree("left", rng=1, n_stenoses=1)
    data = measure(truth.graph, [AP, LAO90], view_search=FAST, optimal_views=2)
    searched = [s for s in data["segments"] if s["optimal_view"] is not None]
    assert len(searched) == 2
    stenosed = {s["segment"] for s in data["stenoses"]}
    assert stenosed and stenosed <= {s["id"] for s in searched}
    write_measurements(data, tmp_path)
    assert read_measurements(tmp_path) == data  # null optimal views validate
    full = measure(truth.graph, [AP, LAO90], view_search=FAST, optimal_views=None)
    assert all(s["optimal_view"] is not None for s in full["segments"])
    with pytest.raises(ValueError, match="optimal_views"):
        measure(truth.graph, [AP, LAO90], optimal_views=-1)
