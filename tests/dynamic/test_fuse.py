"""Multi-frame position fusion: a depth error of the reference is outvoted, one frame's is not."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic.fuse import FuseConfig, fuse_positions, vote_corrections
from autocar.errors import ShapeError

MOTION = np.array([0.0, 1.5, -0.5])  # mm per frame


def _line(offset=(0.0, 0.0, 0.0), n: int = 21, bend: bool = False) -> CenterlineGraph:
    x = np.arange(n, dtype=float)
    nodes = np.stack([x, 0.2 * x if bend else np.zeros(n), np.zeros(n)], axis=1) + np.asarray(offset)
    return CenterlineGraph(nodes, np.full(n, 1.5), np.stack([np.arange(n - 1), np.arange(1, n)], axis=1))


def _frames(error=(0.0, 0.0, 0.0), t_count: int = 5) -> list[CenterlineGraph]:
    return [_line(np.asarray(error) + k * MOTION) for k in range(t_count)]


def test_a_depth_error_of_the_reference_is_outvoted_by_the_other_frames():
    wrong = np.array([0.0, 0.0, 2.0])
    tracked = _frames(wrong)  # the reference's 2 mm depth error carried to every frame
    statics = [_line(wrong)] + [_line(k * MOTION) for k in range(1, 5)]  # frame 0 = the reference
    fused = fuse_positions(tracked, statics)
    for k, g in enumerate(fused.graphs):
        truth = _line(k * MOTION)
        assert np.abs(g.nodes - truth.nodes).max() < 0.05
        assert np.array_equal(g.edges, truth.edges)
        assert np.array_equal(g.radii, tracked[k].radii)
    assert np.allclose(fused.correction, -wrong, atol=0.05)
    assert fused.votes.min() == 5
    assert fused.summary()["nodes_moved"] == 21
    assert fused.summary()["max_correction_mm"] == pytest.approx(2.0, abs=0.05)


def test_one_frame_that_disagrees_does_not_move_the_tree():
    tracked = _frames()
    statics = [_line(k * MOTION) for k in range(5)]
    statics[3] = _line(3 * MOTION + np.array([0.0, 0.0, 2.0]))  # one frame's own depth error
    fused = fuse_positions(tracked, statics)
    for g, t in zip(fused.graphs, tracked):
        assert np.abs(g.nodes - t.nodes).max() < 1e-9


def test_frames_far_away_or_too_few_do_not_vote():
    tracked = _frames()
    far = [_line(k * MOTION + np.array([0.0, 0.0, 5.0])) for k in range(5)]  # beyond reach (3 mm)
    fused = fuse_positions(tracked, far)
    assert np.all(fused.votes == 0) and np.all(fused.correction == 0)
    # only one frame within reach, min_votes 2: nothing moves
    one = [None, None, _line(2 * MOTION + [0.0, 0.0, 1.0]), None, CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))]
    fused = fuse_positions(tracked, one)
    assert np.all(fused.correction == 0)
    fused = fuse_positions(tracked, one, FuseConfig(min_votes=1, smooth_hops=0))
    assert np.allclose(fused.correction, [0.0, 0.0, 1.0], atol=1e-6)


def test_vote_is_the_component_wise_median_and_needs_min_votes():
    positions = np.zeros((3, 2, 3))
    clouds = [np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 0.0, 2.0]]), np.array([[0.0, 0.5, 2.5]])]
    corr, votes = vote_corrections(positions, clouds, reach_mm=3.0, min_votes=3)
    assert votes.tolist() == [3, 3]
    assert corr[0] == pytest.approx([0.0, 0.0, 2.0])
    corr, votes = vote_corrections(positions, clouds, reach_mm=2.2, min_votes=3)  # the 2.55 mm one is out
    assert votes.tolist() == [2, 2] and np.all(corr == 0)


def test_bad_input_is_refused():
    tracked = _frames(t_count=3)
    with pytest.raises(ShapeError, match="static graphs"):
        fuse_positions(tracked, [None, None])
    with pytest.raises(ShapeError, match="frame 1"):
        fuse_positions([tracked[0], _line(n=10), tracked[2]], [None] * 3)
    with pytest.raises(ShapeError):
        vote_corrections(np.zeros((2, 3)), [None, None], reach_mm=1.0, min_votes=1)
    for bad in ({"reach_mm": 0.0}, {"min_votes": 0}, {"rounds": -1}, {"smooth_hops": 1.5}, {"step_mm": float("nan")}):
        with pytest.raises(ValueError):
            FuseConfig(**bad)
    assert fuse_positions([], []).graphs == []
