"""Lag compensation: flow interpolation on a known motion, bracketing by phase, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.dynamic.lag import compensate_lag, interpolate_frame
from autocar.errors import ShapeError


def _disk(col: float, row: float = 64.0, radius: float = 9.0, shape: tuple[int, int] = (128, 160)) -> np.ndarray:
    r, c = np.mgrid[0:shape[0], 0:shape[1]]
    return (r - row) ** 2 + (c - col) ** 2 <= radius**2


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def test_interpolated_mask_lies_where_linear_motion_puts_it():
    a, b = _disk(60.0), _disk(72.0)  # 12 px to the right
    for f in (0.25, 0.5, 0.75):
        mid = interpolate_frame(a, b, f)
        assert mid.dtype == bool
        row, col = _centroid(mid)
        assert col == pytest.approx(60.0 + 12.0 * f, abs=0.8)
        assert row == pytest.approx(64.0, abs=0.5)
        # a blend without motion compensation would give a wider, two-lobed shape
        assert abs(int(mid.sum()) - int(a.sum())) <= 0.15 * a.sum()


def test_interpolated_grey_image_keeps_its_values_and_moves():
    a = np.where(_disk(50.0, 60.0), 40.0, 200.0)
    b = np.where(_disk(50.0, 70.0), 40.0, 200.0)  # 10 px down; vessels are dark
    mid = interpolate_frame(a, b, 0.5, is_mask=False)
    assert mid.dtype == np.float32
    dark = mid < 120.0
    assert _centroid(dark)[0] == pytest.approx(65.0, abs=0.8)
    assert float(mid.min()) >= 39.0 and float(mid.max()) <= 201.0


def test_fraction_ends_return_the_frames_and_bad_fractions_are_refused():
    a, b = _disk(60.0), _disk(70.0)
    assert np.array_equal(interpolate_frame(a, b, 0.0), a)
    assert np.array_equal(interpolate_frame(a, b, 1.0), b)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fraction"):
            interpolate_frame(a, b, bad)
    with pytest.raises(ShapeError):
        interpolate_frame(a, b[:, :100], 0.5)


def test_b_is_synthesised_at_a_phase_from_the_bracketing_frames():
    # B's disk moves 4 px per 0.1 of the cycle; B sampled at phases 0.90, 0.00, 0.10, 0.20
    # (the run crosses end-diastole), A wants 0.95, 0.15 and 0.50 (not covered by B).
    phase_b = np.array([0.9, 0.0, 0.1, 0.2])
    unwrapped = np.array([-0.1, 0.0, 0.1, 0.2])
    frames_b = np.stack([_disk(80.0 + 40.0 * p) for p in unwrapped])
    comp = compensate_lag(frames_b, phase_b, np.array([0.95, 0.15, 0.5]))
    assert comp.source.tolist() == [[0, 1], [2, 3], [3, 3]]
    assert comp.fraction[:2] == pytest.approx([0.5, 0.5], abs=1e-9)
    assert comp.residual_lag[:2] == pytest.approx([0.0, 0.0])
    assert comp.residual_lag[2] == pytest.approx(-0.3)  # nearest frame (0.2) is 0.3 of the cycle before 0.5
    assert _centroid(comp.frames[0])[1] == pytest.approx(80.0 - 2.0, abs=0.8)
    assert _centroid(comp.frames[1])[1] == pytest.approx(80.0 + 6.0, abs=0.8)
    assert np.array_equal(comp.frames[2], frames_b[3])
    record = comp.to_dict()
    assert record["source_frames_b"] == [[0, 1], [2, 3], [3, 3]]


def test_the_closest_bracket_over_several_beats_wins_and_gaps_are_not_bridged():
    frames_b = np.stack([_disk(60.0 + 5.0 * k) for k in range(5)])
    # frames 0-1 are 0.3 of the cycle apart (a gap: no bracket), frames 2-3 are 0.05 apart
    phase_b = np.array([0.10, 0.40, 0.20, 0.25, 0.30])
    comp = compensate_lag(frames_b, phase_b, np.array([0.22]))
    assert comp.source.tolist() == [[2, 3]]
    assert comp.fraction[0] == pytest.approx(0.4)


@pytest.mark.parametrize("frames_b, phase_b, phase_a, error", [
    (np.zeros((3, 32, 32), bool), np.array([0.1, 0.2]), np.array([0.1]), ShapeError),
    (np.zeros((32, 32), bool), np.array([0.1]), np.array([0.1]), ShapeError),
    (np.zeros((0, 32, 32), bool), np.zeros(0), np.array([0.1]), ShapeError),
    (np.zeros((2, 32, 32), bool), np.array([0.1, np.nan]), np.array([0.1]), ValueError),
])
def test_bad_input_is_refused(frames_b, phase_b, phase_a, error):
    with pytest.raises(error):
        compensate_lag(frames_b, phase_b, phase_a)


def test_nearest_mode_warps_only_the_closer_frame():
    a, b = _disk(60.0), _disk(72.0)
    near_a = interpolate_frame(a, b, 0.25, mode="nearest")
    near_b = interpolate_frame(a, b, 0.75, mode="nearest")
    assert _centroid(near_a)[1] == pytest.approx(63.0, abs=0.8)
    assert _centroid(near_b)[1] == pytest.approx(69.0, abs=0.8)
    with pytest.raises(ValueError, match="mode"):
        interpolate_frame(a, b, 0.5, mode="cubic")
