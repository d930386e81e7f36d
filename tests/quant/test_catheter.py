"""The guiding catheter at the ostium (autocar.quant.catheter) on hand-made trees.

Tree: trunk (0,0,0) -> (0,0,-20) r 2 (the LM, nodes 0..20), A 30 mm along
(1,0,-1) r 0.8 (nodes 21..50), B 15 mm along (-1,0,-1) r 0.6 (nodes 51..65);
the catheter, when attached, runs 20 mm from the ostium (node 0), up +z unless
said otherwise, with radius 0.9 mm (nodes 66..85, 85 its free end).
"""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError
from autocar.geometry import CArmView
from autocar.quant.catheter import find_catheter, without_nodes
from autocar.quant.measurements import measure, validate_measurements
from autocar.quant.segments import split_segments
from autocar.quant.views import ViewSearchOptions
from autocar.synth.trees import generate_tree
from test_measurements import y_tree  # the same directory is on sys.path (pytest's rootdir insertion)

AP = CArmView(0.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
LAO90 = CArmView(90.0, 0.0, 1100.0, 750.0, (0.3, 0.3), 512, 512)
CATHETER = list(range(85, 65, -1))  # free end first


def tree(catheter: bool = True, up=(0.0, 0.0, 1.0)) -> CenterlineGraph:
    """test_measurements' Y tree with thinner children, and the catheter (module doc)."""
    y = y_tree()
    radii = y.radii.copy()
    radii[21:51], radii[51:66] = 0.8, 0.6
    if not catheter:
        return CenterlineGraph(y.nodes, radii, y.edges)
    u = np.asarray(up, float) / np.linalg.norm(up)
    tube = u * np.arange(1, 21)[:, None]
    chain = np.concatenate([[0], np.arange(66, 86)])
    return CenterlineGraph(np.vstack([y.nodes, tube]), np.concatenate([radii, np.full(20, 0.9)]),
                           np.vstack([y.edges, np.stack([chain[:-1], chain[1:]], axis=1)]))


@pytest.mark.parametrize("direction", [(0.0, 0.0, 1.0), (0.0, 1.0, 0.3), (-1.0, 0.0, 0.5)])
def test_the_catheter_piece_and_the_ostium_are_found(direction):
    c = find_catheter(tree(up=direction))
    assert c is not None
    assert c.nodes.tolist() == CATHETER and c.ostium == 0
    assert c.length_mm == pytest.approx(20.0)
    assert c.radius_mm == pytest.approx(0.9) and c.ostium_radius_mm == pytest.approx(2.0)
    d = c.to_dict()
    assert d["nodes"] == CATHETER and d["ostium_node"] == 0 and d["length_mm"] == 20.0


def test_a_gradual_rise_to_the_ostium_places_it_half_way():
    g = tree()
    radii = g.radii.copy()
    radii[[0, 1, 2]] = [1.0, 1.3, 1.8]  # the lumen opens over 2 mm past the catheter tip
    c = find_catheter(CenterlineGraph(g.nodes, radii, g.edges))
    # Past node 0 the next 3 mm have median 1.8 >= 1.6 x 0.9; half-way is 1.35: node 2.
    assert c is not None and c.ostium == 2 and c.nodes.tolist() == CATHETER + [0, 1]
    assert c.ostium_radius_mm == pytest.approx(1.8)


@pytest.mark.parametrize("case", ["no catheter", "tapering tip", "side branch", "wide piece", "short piece",
                                  "pointing down"])
def test_what_is_not_a_catheter(case):
    up = (0.0, 1.0, -0.3) if case == "pointing down" else (0.0, 0.0, 1.0)
    g = tree(catheter=case in ("wide piece", "pointing down"), up=up)
    radii = g.radii.copy()
    if case == "tapering tip":
        # Read from its tip, a vessel widens slowly: A from 0.6 to 2.0 over 30 mm.
        radii[21:51] = np.linspace(2.0, 0.6, 30)
    elif case == "side branch":
        # B (r 0.6) meets a much wider trunk (r 3) at a junction, not inside one path.
        radii[:21] = 3.0
    elif case == "wide piece":
        # An end piece as wide as a vessel (r 1.8) before a wider one (r 3.5) is no catheter.
        radii[:21] = 3.5
        radii[66:] = 1.8
    elif case == "pointing down":
        # A narrow piece that opens into the LM but whose free end lies below the ostium
        # (here level with it and falling): no catheter comes up from the apex.
        pass
    elif case == "short piece":
        # 3 mm of narrow centre line at the trunk's end is too short to tell.
        radii[[0, 1, 2]] = 0.9
    assert find_catheter(CenterlineGraph(g.nodes, radii, g.edges)) is None


def test_synthetic_truth_trees_hold_no_catheter():
    for side in ("left", "right"):
        for seed in range(12):
            assert find_catheter(generate_tree(side, rng=seed, n_stenoses=3).graph) is None


def test_segments_start_at_the_ostium_and_leave_the_catheter_out():
    with_cath = split_segments(tree(), side="left")
    plain = split_segments(tree(catheter=False), side="left")
    assert with_cath.roots[0] == 0 and with_cath.catheter is not None
    assert with_cath.catheter.nodes.tolist() == CATHETER
    assert [s.nodes.tolist() for s in with_cath.segments] == [s.nodes.tolist() for s in plain.segments]
    assert [s.name for s in with_cath.segments] == ["LM", "LAD", "LCX"]
    assert np.all(with_cath.owner[66:] == -1)
    assert with_cath.graph.num_edges == tree().num_edges - 20  # the 20 catheter edges
    assert plain.catheter is None
    # Without the search the catheter's free end is the ostium and the LM runs through it.
    blind = split_segments(tree(), side="left", catheter=False)
    assert blind.roots[0] == 85 and blind.segments[0].length_mm == pytest.approx(40.0)
    # A given root is used as it is.
    assert split_segments(tree(), root=85).catheter is None


def test_measurements_report_the_catheter_and_no_ostial_stenosis():
    data = measure(tree(), [AP, LAO90], side="left", view_search=ViewSearchOptions(step_deg=15.0))
    assert data["catheter"]["nodes"] == CATHETER and data["catheter"]["ostium_node"] == 0
    lm = next(s for s in data["segments"] if s["name"] == "LM")
    assert lm["nodes"][0] == 0 and lm["length_mm"] == pytest.approx(20.0, abs=1e-3)
    assert data["stenoses"] == []
    assert measure(tree(catheter=False), [AP, LAO90], optimal_views=0)["catheter"] is None
    # The validator checks the key when it is there.
    bad = dict(data, catheter=dict(data["catheter"], nodes=[]))
    with pytest.raises(CaseFormatError, match="catheter.nodes"):
        validate_measurements(bad, source="m.json")
    bad = dict(data, catheter=dict(data["catheter"], length_mm=-1.0))
    with pytest.raises(CaseFormatError, match="catheter.length_mm"):
        validate_measurements(bad, source="m.json")
    legacy = {k: v for k, v in data.items() if k != "catheter"}
    assert validate_measurements(legacy) is legacy


def test_without_nodes_keeps_indices():
    g = tree()
    cut = without_nodes(g, np.array(CATHETER))
    assert cut.num_nodes == g.num_nodes and np.array_equal(cut.nodes, g.nodes)
    assert cut.num_edges == g.num_edges - 20 and cut.degrees()[0] == 1


def test_a_short_stub_on_the_catheter_does_not_hide_it():
    # A 3 mm stub off catheter node 75 (10 mm from the free end), as the dynamic completion
    # leaves where an added piece overlaps the end it continues: the path from the free end
    # now meets a junction before the ostium.
    g = tree()
    stub = g.nodes[75] + np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    n = g.num_nodes
    edges = np.vstack([g.edges, [[75, n], [n, n + 1], [n + 1, n + 2]]])
    g = CenterlineGraph(np.vstack([g.nodes, stub]), np.concatenate([g.radii, [0.9, 0.9, 0.9]]), edges)
    c = find_catheter(g)
    assert c is not None and c.ostium == 0
    assert c.nodes[:20].tolist() == CATHETER and sorted(c.nodes[20:].tolist()) == [n, n + 1, n + 2]
    assert c.length_mm == pytest.approx(20.0)
    # Scanned with every junction (max_spur_mm=0) the catheter is not seen.
    assert find_catheter(g, max_spur_mm=0) is None
    # A longer side piece (8 mm) is a branch, not a stub: no catheter.
    long_piece = g.nodes[75] + np.arange(1, 9)[:, None] * np.array([1.0, 0.0, 0.0])
    m = CenterlineGraph(np.vstack([tree().nodes, long_piece]), np.concatenate([tree().radii, np.full(8, 0.9)]),
                        np.vstack([tree().edges, [[75, n]], np.stack([np.arange(n, n + 7), np.arange(n + 1, n + 8)], 1)]))
    assert find_catheter(m) is None
