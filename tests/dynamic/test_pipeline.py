from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from autocar.dynamic.phase import pair_case_views, pair_frames
from autocar.pipeline.dynamic import deformed_meshes, reconstruct_dynamic
from autocar.dynamic.track import TrackConfig
from autocar.errors import CaseFormatError
from autocar.io.case import Case, CaseView
from autocar.io.results import read_reconstruction
from autocar.evaluation.metrics import centerline_scores
from autocar.pipeline.static import write_result
from autocar.synth.cases import SynthCaseConfig, synthesize_case


@pytest.fixture(scope="module")
def synth():
    return synthesize_case(SynthCaseConfig(frames=4, lag_range=(0.04, 0.08)), rng=2_100_003)


@pytest.fixture(scope="module")
def dynamic(synth):
    return reconstruct_dynamic(synth.case, track=TrackConfig(iterations=20), progress=False)


def test_one_topology_in_every_frame_and_motion_per_node(synth, dynamic):
    rec = dynamic.reconstruction
    assert rec.num_frames == 4 and rec.is_dynamic
    first = rec.frames[0]
    assert first.num_nodes > 50
    for g in rec.frames[1:]:
        assert np.array_equal(g.edges, first.edges) and np.array_equal(g.radii, first.radii)
    motion = rec.extra["motion"]["peak_to_peak_mm"]
    assert len(motion) == first.num_nodes
    x = np.stack([g.nodes for g in rec.frames])
    assert rec.extra["motion"]["max_mm"] == pytest.approx(
        max(np.linalg.norm(x[i] - x[j], axis=1).max() for i in range(4) for j in range(4)), abs=2e-3)
    assert 0 <= rec.extra["reference_frame"] < 4


def test_frames_are_paired_by_cardiac_phase(synth, dynamic):
    a, b = synth.case.views
    expected, _ = pair_frames(a.cardiac_phase, b.cardiac_phase)
    assert dynamic.reconstruction.extra["frame_pairs"] == [[k, int(expected[k])] for k in range(4)]
    assert dynamic.pairing.source == "cardiac_phase"


def test_dynamic_is_not_worse_than_static_on_the_same_frames(synth, dynamic):
    f_static = np.mean([centerline_scores(r.graph, t).f1_1mm for r, t in zip(dynamic.static, synth.truth)])
    f_dynamic = np.mean([centerline_scores(g, t).f1_1mm for g, t in zip(dynamic.reconstruction.frames, synth.truth)])
    assert f_dynamic >= f_static - 0.03, (f_static, f_dynamic)


def test_meshes_deform_with_the_graph_and_round_trip(tmp_path, dynamic):
    meshes = deformed_meshes(dynamic)
    assert len(meshes) == 4
    assert all(np.array_equal(m.faces, meshes[0].faces) for m in meshes)
    ref = dynamic.track.reference
    assert meshes[ref].is_watertight
    out = write_result(dynamic.reconstruction, tmp_path / "out", meshes=meshes)
    back = read_reconstruction(out)
    assert back.is_dynamic and back.num_frames == 4
    # process=False: the union can leave two vertices at one position (where two tubes
    # touch); trimesh's default loading would merge them, the file holds them all.
    ply = [trimesh.load(out / f"frame_{k:03d}.ply", process=False) for k in range(4)]
    assert all(len(p.vertices) == len(meshes[0].vertices) for p in ply)
    # Vertices move like the nearest centre-line node.
    rec = dynamic.reconstruction
    k = 3 if ref != 3 else 0
    node_shift = np.linalg.norm(rec.frames[k].nodes - rec.frames[ref].nodes, axis=1).mean()
    vert_shift = np.linalg.norm(ply[k].vertices - ply[ref].vertices, axis=1).mean()
    assert vert_shift == pytest.approx(node_shift, rel=0.35)
    data = json.loads((out / "reconstruction.json").read_text())
    assert len(data["frames"]) == 4 and "motion" in data


def test_pairing_falls_back_to_frame_index_without_phase():
    synth = synthesize_case(SynthCaseConfig(frames=3), rng=5)
    views = [CaseView(name=cv.name, view=cv.view, kind="mask", frames=cv.frames) for cv in synth.case.views]
    pairing = pair_case_views(*views)
    assert pairing.source == "index" and pairing.to_list() == [[0, 0], [1, 1], [2, 2]]
    assert "no cardiac phase" in pairing.note


def test_empty_mask_frame_is_rejected(synth):
    a, b = synth.case.views
    frames = np.array(b.frames, copy=True)
    frames[:] = 0
    bad = Case(views=(a, CaseView(name="B", view=b.view, kind="mask", frames=frames,
                                  cardiac_phase=b.cardiac_phase)), tree="left")
    with pytest.raises(CaseFormatError, match="empty vessel mask"):
        reconstruct_dynamic(bad, progress=False)


def test_image_views_are_refused_with_advice(synth):
    a, b = synth.case.views
    img = CaseView(name="A", view=a.view, kind="image", frames=np.asarray(a.frames, np.uint8) * 200)
    with pytest.raises(CaseFormatError, match="segment"):
        reconstruct_dynamic(Case(views=(img, b), tree="left"), progress=False)


@pytest.mark.slow  # long: runs in CI after the default tests (.ci/run)
@pytest.mark.parametrize("lag", [0.0, 0.10])
def test_tracking_tolerates_lags_up_to_a_tenth_of_the_cycle(lag):
    synth = synthesize_case(SynthCaseConfig(frames=3, lag_range=(lag, lag), view_b_delay_s=(0.0, 0.0)),
                            rng=2_100_031)
    res = reconstruct_dynamic(synth.case, track=TrackConfig(iterations=15), progress=False)
    assert res.reconstruction.is_dynamic
    truths = [synth.truth[int(k)] for k in res.pairing.index_a]
    f_static = np.mean([centerline_scores(r.graph, t).f1_1mm for r, t in zip(res.static, truths)])
    f_dynamic = np.mean([centerline_scores(g, t).f1_1mm for g, t in zip(res.reconstruction.frames, truths)])
    assert f_dynamic >= f_static - 0.03, (lag, f_static, f_dynamic)
    assert f_dynamic > 0.3


def test_radii_are_measured_over_all_frames_and_match_the_truth(synth, dynamic):
    from scipy.spatial import cKDTree

    rec = dynamic.reconstruction
    ref = dynamic.track.reference
    g = rec.frames[ref]
    pts, rad, _ = synth.truth[int(dynamic.pairing.index_a[ref])].sample_segments(0.25)
    d, i = cKDTree(pts).query(g.nodes)
    ok = d <= 1.0
    assert ok.sum() > 50
    assert np.mean(np.abs(g.radii[ok] - rad[i[ok]])) < 0.12
    # The static reference's own radii are replaced by the per-node median over frames.
    assert not np.array_equal(g.radii, dynamic.static[ref].graph.radii)


@pytest.mark.slow  # long: runs in CI after the default tests (.ci/run)
def test_completion_from_other_frames_keeps_the_reference_tree_as_prefix(synth):
    # Without the position fusion (which votes over the completed tree) the reference's nodes keep their
    # tracked positions whether the tree is completed or not; without the per-pair warp nothing is
    # dropped in this case.
    options = dict(track=TrackConfig(iterations=20), fuse=None, frame_alignment=False, progress=False)
    completed = reconstruct_dynamic(synth.case, **options)
    rec = completed.reconstruction
    ref = rec.extra["reference_frame"]
    n = completed.reference_nodes
    static_ref = completed.static[ref].graph
    assert n <= rec.frames[0].num_nodes
    assert rec.extra["branches_added_from_frames"] >= 0
    assert rec.extra["branches_dropped_unseen_in_other_frames"] == 0  # (nothing to drop in this case)
    assert n == static_ref.num_nodes
    # The reference's own edges come first and unchanged; whatever was added hangs on new nodes or joins.
    assert np.array_equal(rec.frames[0].edges[: static_ref.num_edges], static_ref.edges)
    assert (rec.extra["branches_added_from_frames"] == 0) == (rec.frames[0].num_edges == static_ref.num_edges)
    plain = reconstruct_dynamic(synth.case, complete_frames=False, **options)
    assert "branches_added_from_frames" not in plain.reconstruction.extra
    assert plain.reconstruction.frames[0].num_nodes == n
    for g, h in zip(plain.reconstruction.frames, rec.frames):
        assert np.allclose(g.nodes, h.nodes[:n])


def test_view_b_is_synthesised_at_view_a_phase_on_a_known_lag(synth, dynamic):
    """B lags A by a known fraction of the cycle: each B frame is interpolated between the two
    B frames that bracket A's phase, at the fraction the phases give; the last A frame has no
    later B frame and keeps the paired one with its lag."""
    a, b = synth.case.views
    rec = dynamic.reconstruction.extra["lag_compensation"]
    pa, pb = np.asarray(a.cardiac_phase), np.asarray(b.cardiac_phase)
    step = np.mod(np.diff(pb), 1.0)
    for k, ((j0, j1), f, left) in enumerate(zip(rec["source_frames_b"], rec["fraction"], rec["residual_lag_fraction"])):
        if j1 == j0 + 1:
            assert np.mod(pb[j0] + f * step[j0] - pa[k] + 0.5, 1.0) - 0.5 == pytest.approx(0.0, abs=1e-3)
            assert left == 0.0
        else:
            assert j0 == j1 and left == pytest.approx(np.mod(pb[j0] - pa[k] + 0.5, 1.0) - 0.5, abs=1e-3)
    assert rec["source_frames_b"][0] == [0, 1]  # B lags: A's first phase lies between B's frames 0 and 1
    assert rec["fraction"][0] == pytest.approx(synth.lag / step[0], abs=2e-3)
    assert rec["residual_lag_fraction"][-1] == pytest.approx(-synth.lag, abs=1e-3)
    assert dynamic.reconstruction.extra["fusion"]["nodes_moved"] >= 0


def test_lag_compensation_and_fusion_can_be_switched_off(synth):
    res = reconstruct_dynamic(synth.case, track=TrackConfig(iterations=10), progress=False, use_network=False,
                              lag_compensation=False, fuse=None)
    assert "lag_compensation" not in res.reconstruction.extra and "fusion" not in res.reconstruction.extra
    assert res.reconstruction.is_dynamic


def test_a_one_frame_view_b_falls_back_without_interpolation(synth):
    a, b = synth.case.views
    one = CaseView(name=b.name, view=b.view, kind="mask", frames=np.asarray(b.frames)[:1],
                   frame_times_ms=np.asarray(b.frame_times_ms)[:1], cardiac_phase=np.asarray(b.cardiac_phase)[:1])
    res = reconstruct_dynamic(Case(views=(a, one), tree="left"), track=TrackConfig(iterations=10), progress=False,
                              use_network=False)
    assert all(p[1] == 0 for p in res.reconstruction.extra["frame_pairs"])
    assert "lag_compensation" not in res.reconstruction.extra
    assert res.reconstruction.frames[0].num_nodes > 0


def test_a_wash_in_frame_is_left_out_and_said_so(synth):
    """View A's first frame holds a tenth of the tree (contrast arriving): it is not reconstructed."""
    a, b = synth.case.views
    frames = np.asarray(a.frames).copy()
    rows = np.flatnonzero(frames[0].any(axis=1))
    frames[0, rows[len(rows) // 10]:] = 0  # keep the top tenth of the vessel rows only
    washed = CaseView(name=a.name, view=a.view, kind="mask", frames=frames, frame_times_ms=a.frame_times_ms,
                      cardiac_phase=a.cardiac_phase)
    res = reconstruct_dynamic(Case(views=(washed, b), tree="left"), track=TrackConfig(iterations=10),
                              progress=False, use_network=False)
    rec = res.reconstruction
    used = rec.extra["frames_used"]
    assert used["A"]["used"] == [1, 2, 3] and list(used["A"]["left_out"]) == ["0"]
    assert "wash-in" in used["A"]["left_out"]["0"] and used["B"]["used"] == [0, 1, 2, 3]
    assert [p[0] for p in rec.extra["frame_pairs"]] == [1, 2, 3] and rec.num_frames == 3


def test_frame_alignment_records_each_frame_warp(synth):
    res = reconstruct_dynamic(synth.case, track=TrackConfig(iterations=5), progress=False, use_network=False,
                              frame_alignment=True, fuse=None)
    warped = [r.view_warp is not None for r in res.static]
    assert any(warped)  # (this case's B drifts enough to be warped)
    assert [("view_warp_px" in fe) for fe in res.reconstruction.frame_extra] == warped
    for fe, r in zip(res.reconstruction.frame_extra, res.static):
        if r.view_warp is not None:
            assert np.allclose(fe["view_warp_px"]["B"], r.view_warp, atol=1e-6)


def test_a_join_that_closes_a_loop_is_cut_and_the_result_stays_a_forest(synth, monkeypatch, tmp_path):
    """A completion step that joins two far parts of the tree (a crossing read as a junction) would close
    a loop: the loop's longest edge goes, in every frame, and the result is written."""
    import autocar.pipeline.dynamic as pipeline
    from autocar.geometry.centerline import CenterlineGraph
    from autocar.io.results import write_reconstruction

    real = pipeline.complete_from_frames
    planted = {}

    def closing_a_loop(track, rest, *args, **kwargs):
        track, rest, added = real(track, rest, *args, **kwargs)
        g = track.graphs[track.reference]
        depth = np.full(g.num_nodes, -1)
        depth[0] = 0
        order, nbrs = [0], g.neighbours()
        for i in order:  # breadth-first from node 0: join it to a node 12 edges away on its own component
            for j in nbrs[i]:
                if depth[j] < 0:
                    depth[j] = depth[i] + 1
                    order.append(j)
        far = int(np.flatnonzero(depth == 12)[0])
        planted["edge"] = (0, far)
        extra_edge = np.array([[0, far]])
        track.graphs = [CenterlineGraph(h.nodes, h.radii, np.vstack([h.edges, extra_edge])) for h in track.graphs]
        return track, rest, added

    monkeypatch.setattr(pipeline, "complete_from_frames", closing_a_loop)
    res = reconstruct_dynamic(synth.case, track=TrackConfig(iterations=5), progress=False, use_network=False)
    rec = res.reconstruction
    assert planted and rec.extra["cycle_edges_removed"] == 1
    assert all(g.is_forest() for g in rec.frames)
    assert all(np.array_equal(g.edges, rec.frames[0].edges) for g in rec.frames)
    assert write_reconstruction(rec, tmp_path / "out").is_file()
