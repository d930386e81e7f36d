"""Tests of autocar.synth.cases: synthetic two-view cine cases and their truth on disk."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.io.case import read_case
from autocar.io.results import read_ground_truth
from autocar.synth.cases import (
    SynthCase,
    SynthCaseConfig,
    synthesize_case,
    write_synth_case,
)
from autocar.synth.poses import named_view
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

# Node coordinates are written rounded to 4 decimals (CenterlineGraph.to_frame).
ROUND_MM = 0.5e-4 + 1e-9


def small(**kw) -> SynthCaseConfig:
    """A quick mask case (2 frames unless told otherwise)."""
    return SynthCaseConfig(**{"frames": 2, "kind": "mask", **kw})


@pytest.fixture(scope="module")
def case2() -> SynthCase:
    return synthesize_case(small(frames=3, n_stenoses=2), rng=11)


def same_graph(a: CenterlineGraph, b: CenterlineGraph) -> bool:
    return (
        np.array_equal(a.nodes, b.nodes)
        and np.array_equal(a.radii, b.radii)
        and np.array_equal(a.edges, b.edges)
    )


def circular_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed difference a - b of phases, wrapped into [-0.5, 0.5)."""
    return np.mod(np.asarray(a) - np.asarray(b) + 0.5, 1.0) - 0.5


# ----------------------------------------------------------------- determinism
def test_same_seed_gives_identical_case():
    a = synthesize_case(small(), rng=5)
    b = synthesize_case(small(), rng=5)
    assert a.seed == b.seed == 5
    assert a.lag == b.lag
    np.testing.assert_array_equal(a.phases, b.phases)
    for va, vb in zip(a.case.views, b.case.views):
        assert va.view == vb.view
        np.testing.assert_array_equal(va.frames, vb.frames)
        np.testing.assert_array_equal(va.cardiac_phase, vb.cardiac_phase)
    assert all(same_graph(x, y) for x, y in zip(a.truth, b.truth))
    assert all(same_graph(x, y) for x, y in zip(a.truth_b, b.truth_b))
    assert a.stenoses == b.stenoses
    assert a.info == b.info


def test_generator_and_int_seed_agree_and_other_seed_differs():
    a = synthesize_case(small(), rng=5)
    g = synthesize_case(small(), rng=np.random.default_rng(5))
    assert g.seed is None and g.info["seed"] is None and a.info["seed"] == 5
    assert all(same_graph(x, y) for x, y in zip(a.truth, g.truth))
    np.testing.assert_array_equal(a.case.views[1].frames, g.case.views[1].frames)
    c = synthesize_case(small(), rng=6)
    assert not same_graph(a.truth[0], c.truth[0])


# ---------------------------------------------------------------- structure
def test_frames_count_shape_kind(case2: SynthCase):
    case = case2.case
    assert [v.name for v in case.views] == ["A", "B"]
    assert case.tree == "left"
    assert case.num_frames == 3
    for cv in case.views:
        assert cv.kind == "mask"
        assert cv.frames.dtype == np.bool_
        assert cv.frames.shape == (3, cv.view.rows, cv.view.columns)
        assert cv.frames.any(axis=(1, 2)).all(), "every frame shows some vessel"
        np.testing.assert_allclose(cv.frame_times_ms, [0.0, 1000 / 15, 2000 / 15], atol=1e-3)
    assert len(case2.truth) == len(case2.truth_b) == 3
    assert case2.phases.shape == (2, 3)
    assert len(case2.stenoses) == 2
    # One topology over time, in both views.
    for g in case2.truth + case2.truth_b:
        np.testing.assert_array_equal(g.edges, case2.truth[0].edges)
        np.testing.assert_array_equal(g.radii, case2.truth[0].radii)


def test_truth_is_the_beating_rest_tree(case2: SynthCase):
    """truth[k] = rest tree deformed to A's phase at A's time; truth_b[k] likewise for B."""
    # The tree is the first thing drawn from the seed's generator.
    rest = generate_tree("left", rng=np.random.default_rng(11), n_stenoses=2)
    assert rest.stenoses == case2.stenoses
    np.testing.assert_array_equal(rest.graph.edges, case2.truth[0].edges)
    offset = case2.info["view_b_time_offset_s"]  # rounded to 1 ms
    for k in range(3):
        t = k / 15.0
        want_a = case2.heartbeat.deform(rest.graph, float(case2.phases[0, k]), t)
        np.testing.assert_allclose(case2.truth[k].nodes, want_a.nodes, rtol=0, atol=1e-9)
        want_b = case2.heartbeat.deform(rest.graph, float(case2.phases[1, k]), t + offset)
        np.testing.assert_allclose(case2.truth_b[k].nodes, want_b.nodes, rtol=0, atol=0.05)


def test_mask_frames_are_renders_of_the_truth(case2: SynthCase):
    a, b = case2.case.views
    for k in range(3):
        np.testing.assert_array_equal(a.frames[k], render_mask(case2.truth[k], a.view))
        np.testing.assert_array_equal(b.frames[k], render_mask(case2.truth_b[k], b.view))
    # View B really shows a different tree state than view A's truth (lag and breathing).
    assert not np.array_equal(case2.truth[0].nodes, case2.truth_b[0].nodes)


def test_phases_lag_and_heart_rate(case2: SynthCase):
    cfg = small(frames=3)
    lo, hi = cfg.lag_range
    assert lo <= case2.lag <= hi
    pa = case2.case.views[0].cardiac_phase
    pb = case2.case.views[1].cardiac_phase
    # Written phases are the SynthCase phases rounded to 6 decimals, all in [0, 1].
    np.testing.assert_allclose(pa, case2.phases[0], atol=5.1e-7)
    np.testing.assert_allclose(pb, case2.phases[1], atol=5.1e-7)
    assert ((pa >= 0) & (pa <= 1) & (pb >= 0) & (pb <= 1)).all()
    # B = A - lag (mod 1).
    assert np.abs(circular_diff(pa - case2.lag, pb)).max() < 2e-6
    assert case2.info["lag_fraction"] == pytest.approx(case2.lag, abs=5.1e-7)
    # A advances by (frame interval / heart period) per frame.
    bpm = case2.info["heart_rate_bpm"]
    lo_bpm, hi_bpm = cfg.heart_rate_range_bpm
    assert lo_bpm <= bpm <= hi_bpm
    step = (1.0 / cfg.frame_rate_hz) * bpm / 60.0
    np.testing.assert_allclose(circular_diff(np.diff(pa), step), 0.0, atol=1e-5)


def test_zero_lag_range_gives_equal_phases():
    s = synthesize_case(small(lag_range=(0.0, 0.0)), rng=2)
    assert s.lag == 0.0
    np.testing.assert_array_equal(s.phases[0], s.phases[1])


def test_breath_hold_divides_respiration_by_five():
    held = synthesize_case(small(frames=1, breath_hold=True), rng=4)
    free = synthesize_case(small(frames=1, breath_hold=False), rng=4)
    np.testing.assert_allclose(
        np.asarray(held.heartbeat.respiration_mm) * 5, np.asarray(free.heartbeat.respiration_mm), rtol=1e-12
    )
    assert np.abs(free.heartbeat.respiration_mm).max() > 0


def test_right_side_and_no_stenosis():
    s = synthesize_case(small(side="right", n_stenoses=0, frames=1), rng=8)
    assert s.case.tree == "right"
    assert s.stenoses == ()
    assert s.info["config"]["side"] == "right"
    assert s.info["config"]["lag_range"] == [0.02, 0.08]


# --------------------------------------------------------------- fixed views
def test_fixed_views_are_used_as_given():
    va = named_view("LAO 30 CRA 20", rows=256, columns=256)
    vb = named_view("RAO 30 CAU 20", rows=200, columns=240, spacing_mm=0.35)
    s = synthesize_case(small(), rng=3, views=(va, vb))
    a, b = s.case.views
    assert a.view == va and b.view == vb
    assert a.frames.shape == (2, 256, 256)
    assert b.frames.shape == (2, 200, 240)
    np.testing.assert_array_equal(b.frames[1], render_mask(s.truth_b[1], vb))


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kw",
    [
        {"side": "middle"},
        {"frames": 0},
        {"kind": "x"},
        {"lag_range": (0.3, 0.1)},
        {"lag_range": (0.1, 0.5)},
        {"lag_range": (-0.1, 0.1)},
        {"frame_rate_hz": 0.0},
        {"heart_rate_range_bpm": (90.0, 60.0)},
        {"n_stenoses": -1},
    ],
)
def test_bad_config_raises_value_error(kw):
    with pytest.raises(ValueError):
        SynthCaseConfig(**kw)


# ---------------------------------------------------------------- writing
def test_write_and_read_back(case2: SynthCase, tmp_path):
    out = write_synth_case(case2, tmp_path / "case")
    assert out == tmp_path / "case"
    read = read_case(out)
    assert [v.name for v in read.views] == ["A", "B"]
    assert read.tree == "left"
    for orig, back in zip(case2.case.views, read.views):
        assert back.kind == "mask"
        assert back.view == orig.view
        np.testing.assert_array_equal(back.frames, orig.frames)
        np.testing.assert_array_equal(back.cardiac_phase, orig.cardiac_phase)
        np.testing.assert_array_equal(back.frame_times_ms, orig.frame_times_ms)
    assert read.metadata["synthetic"]["seed"] == 11
    assert read.metadata["synthetic"]["lag_fraction"] == case2.info["lag_fraction"]

    gt = read_ground_truth(out)
    assert gt.num_frames == 3
    assert gt.is_dynamic
    for g, truth in zip(gt.frames, case2.truth):
        assert g.num_nodes == truth.num_nodes
        np.testing.assert_allclose(g.nodes, truth.nodes, rtol=0, atol=ROUND_MM)
        np.testing.assert_allclose(g.radii, truth.radii, rtol=0, atol=ROUND_MM)
        np.testing.assert_array_equal(g.edges, truth.edges)
    # Frame k's truth is view A's tree, not view B's.
    assert np.abs(gt.frames[0].nodes - case2.truth_b[0].nodes).max() > 10 * ROUND_MM
    extra = gt.extra
    assert extra["stenoses"] == [s.to_dict() for s in case2.stenoses]
    assert len(extra["stenoses"]) == 2
    assert extra["lag_fraction"] == case2.info["lag_fraction"]
    np.testing.assert_array_equal(extra["cardiac_phase"]["A"], read.views[0].cardiac_phase)
    np.testing.assert_array_equal(extra["cardiac_phase"]["B"], read.views[1].cardiac_phase)
    assert extra["label_names"] == list(case2.truth[0].label_names)
    np.testing.assert_array_equal(extra["node_labels"], case2.truth[0].labels)


def test_write_into_existing_folder(case2: SynthCase, tmp_path):
    target = tmp_path / "case"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_synth_case(case2, target)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "mine"
    # No stray temporary folder is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]

    write_synth_case(case2, target, overwrite=True)
    assert not (target / "keep.txt").exists()
    assert read_case(target).num_frames == 3
    assert read_ground_truth(target).num_frames == 3


# ----------------------------------------------------------------- images
def test_image_case_one_frame(tmp_path):
    s = synthesize_case(SynthCaseConfig(frames=1, kind="image"), rng=21)
    again = synthesize_case(SynthCaseConfig(frames=1, kind="image"), rng=21)
    for cv, cv2_ in zip(s.case.views, again.case.views):
        assert cv.kind == "image"
        assert cv.frames.dtype in (np.uint8, np.uint16)
        assert cv.frames.shape == (1, cv.view.rows, cv.view.columns)
        assert cv.frames.std() > 1.0, "an angiogram is not a flat image"
        np.testing.assert_array_equal(cv.frames, cv2_.frames)
        # Vessels are dark: mean grey inside the true mask is below the mean outside.
        mask = render_mask(s.truth[0] if cv.name == "A" else s.truth_b[0], cv.view)
        img = cv.frames[0].astype(float)
        assert img[mask].mean() < img[~mask].mean()
    out = write_synth_case(s, tmp_path / "img")
    read = read_case(out)
    for orig, back in zip(s.case.views, read.views):
        assert back.kind == "image"
        assert back.frames.dtype == orig.frames.dtype
        np.testing.assert_array_equal(back.frames, orig.frames)
    assert read_ground_truth(out).num_frames == 1


def test_perfectly_synchronised_case_shows_the_same_tree_in_both_views():
    from autocar.synth.cases import SynthCaseConfig as Config
    from autocar.synth.cases import synthesize_case as make

    sc = make(Config(frames=2, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)), rng=4)
    for a, b in zip(sc.truth, sc.truth_b):
        np.testing.assert_allclose(a.nodes, b.nodes, atol=1e-12)
    drift = make(Config(frames=1, lag_range=(0.0, 0.0)), rng=4)  # B a few seconds later: breathing moved it
    assert np.abs(drift.truth[0].nodes - drift.truth_b[0].nodes).max() > 0.05
    with pytest.raises(ValueError, match="view_b_delay_s"):
        Config(view_b_delay_s=(5.0, 1.0))
