from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError
from autocar.evaluation.metrics import centerline_scores, cl_dice, mask_scores, voxel_dice


def line(y: float = 0.0, length: float = 20.0, r: float = 1.0) -> CenterlineGraph:
    return CenterlineGraph([[0, y, 0], [length, y, 0]], [r, r], [[0, 1]]).resampled(1.0)


def test_identical_trees_are_perfect():
    g = line()
    s = centerline_scores(g, g)
    assert s.f1_1mm == 1 and s.mean_distance_mm == pytest.approx(0, abs=1e-9) and s.hd95_mm == pytest.approx(0, abs=1e-9)
    assert voxel_dice(g, g) == 1.0
    assert cl_dice(g, g) == 1.0


def test_shifted_line_known_distances():
    s = centerline_scores(line(1.5), line(0.0))
    assert s.mean_distance_mm == pytest.approx(1.5, abs=1e-6)
    assert s.hd95_mm == pytest.approx(1.5, abs=1e-6)
    assert s.f1_1mm == 0.0 and s.f1_2mm == 1.0


def test_half_recall_when_prediction_covers_half():
    s = centerline_scores(line(length=10.0), line(length=20.0))
    assert s.precision_1mm == 1.0
    # The true centre line up to x = 11 mm is within 1 mm of the prediction: 11/20 of its length.
    assert s.recall_1mm == pytest.approx(11 / 20, abs=0.015)


def test_voxel_dice_of_two_offset_tubes_matches_analytic_overlap():
    # Two parallel cylinders r = 2 mm whose axes are 2 mm apart: the lens area
    # over the disc area is (2 acos(d/2r) - (d/2r) sqrt(4 - (d/r)^2)... ) / pi.
    r, d = 2.0, 2.0
    lens = 2 * r * r * np.arccos(d / (2 * r)) - 0.5 * d * np.sqrt(4 * r * r - d * d)
    expected = lens / (np.pi * r * r)
    got = voxel_dice(line(0.0, 40.0, r), line(d, 40.0, r), voxel_mm=0.2)
    assert got == pytest.approx(expected, abs=0.04)  # end caps and voxelisation


def test_cl_dice_detects_missing_branch():
    trunk = line(length=20.0)
    tree = CenterlineGraph(
        np.vstack([trunk.nodes, [[10, 10, 0]]]), np.r_[trunk.radii, 1.0], np.vstack([trunk.edges, [[10, 21]]])
    ).resampled(1.0)
    # Prediction misses the 10 mm side branch: precision 1, sensitivity ~ 20/30 (+ the part inside the trunk).
    v = cl_dice(trunk, tree)
    assert 0.75 < v < 0.86


def test_mask_scores_and_shape_check():
    a = np.zeros((4, 4), bool); a[:2] = True
    b = np.zeros((4, 4), bool); b[1:3] = True
    assert mask_scores(a, b) == {"dice": 0.5, "precision": 0.5, "recall": 0.5}
    with pytest.raises(ShapeError):
        mask_scores(a, np.zeros((3, 3), bool))


def test_empty_prediction():
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    s = centerline_scores(empty, line())
    assert s.f1_1mm == 0 and s.mean_distance_mm == float("inf")
    assert cl_dice(empty, line()) == 0.0


def _y_tree() -> CenterlineGraph:
    # A Y: a trunk along x and two branches (not symmetric, so no shift can slide along them).
    return CenterlineGraph([[0, 0, 0], [30, 0, 0], [50, 15, 5], [45, -20, -3]], [1.5, 1.5, 1.0, 1.0],
                           [[0, 1], [1, 2], [1, 3]]).resampled(0.5)


def test_best_translation_recovers_a_known_shift():
    from autocar.evaluation.metrics import best_translation, translation_free_scores

    truth = _y_tree()
    shift = np.array([2.5, -1.5, 3.0])
    moved = truth.transformed(lambda p: p + shift)
    np.testing.assert_allclose(best_translation(moved, truth), -shift, atol=0.05)
    plain = centerline_scores(moved, truth)
    shape, found = translation_free_scores(moved, truth)
    assert plain.f1_1mm < 0.2 and shape.f1_1mm > 0.99
    np.testing.assert_allclose(found, -shift, atol=0.05)


def test_best_translation_of_an_empty_prediction_is_zero_and_an_empty_truth_is_refused():
    from autocar.evaluation.metrics import best_translation

    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    np.testing.assert_array_equal(best_translation(empty, _y_tree()), np.zeros(3))
    with pytest.raises(ShapeError, match="ground-truth tree is empty"):
        best_translation(_y_tree(), empty)
