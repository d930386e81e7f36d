from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from autocar.dynamic.phase import (
    circular_difference,
    estimate_phase,
    frame_descriptors,
    pair_frames,
    phase_from_case_view,
)
from autocar.errors import CaseFormatError, ShapeError
from autocar.synth.cases import SynthCaseConfig, synthesize_case

FPS = 15.0


@pytest.fixture(scope="module")
def synth_cases():
    """Two synthetic 30-frame (2 s at 15 fps) mask cases with known phases."""
    cfg = SynthCaseConfig(frames=30, frame_rate_hz=FPS, n_stenoses=0)
    return [synthesize_case(cfg, rng=seed) for seed in (11, 12)]


@pytest.fixture(scope="module")
def estimates(synth_cases):
    """estimate_phase of both views of each synthetic case."""
    return [[estimate_phase(v.frames, v.frame_times_ms) for v in c.case.views] for c in synth_cases]


def test_period_and_phase_of_synthetic_mask_sequences(synth_cases, estimates):
    for case, ests in zip(synth_cases, estimates):
        true_period_ms = 60000.0 / case.info["heart_rate_bpm"]
        for est, truth in zip(ests, case.phases):
            assert abs(est.period_ms / true_period_ms - 1) < 0.10
            assert abs(est.heart_rate_bpm - case.info["heart_rate_bpm"]) < 0.1 * case.info["heart_rate_bpm"]
            assert est.periodicity > 0.5
            assert est.phase.shape == (30,) and np.all((est.phase >= 0) & (est.phase < 1))
            # Phase 0 = end-diastole: the estimated phases track the truth.
            err = circular_difference(truth, est.phase)
            assert np.max(np.abs(err)) < 0.1
            # The synthetic heart's systole ends at 0.35 of the cycle.
            assert abs(est.end_systole_phase - 0.35) < 0.1


def test_phase_from_case_view_prefers_the_recorded_phase(synth_cases):
    view = synth_cases[0].case.views[0]
    np.testing.assert_array_equal(phase_from_case_view(view), view.cardiac_phase)
    bare = dataclasses.replace(view, cardiac_phase=None)
    est = phase_from_case_view(bare)
    assert np.max(np.abs(circular_difference(view.cardiac_phase, est))) < 0.1
    no_times = dataclasses.replace(bare, frame_times_ms=None)
    with pytest.raises(CaseFormatError, match="frame_rate_hz"):
        phase_from_case_view(no_times)
    np.testing.assert_allclose(phase_from_case_view(no_times, frame_rate_hz=FPS), est, atol=1e-6)
    with pytest.raises(CaseFormatError, match="estimate=False"):
        phase_from_case_view(bare, estimate=False)
    with pytest.raises(ValueError, match="frame_rate_hz"):
        phase_from_case_view(no_times, frame_rate_hz=0.0)


def test_pairing_with_known_phases_recovers_the_nearest_frames(synth_cases):
    case = synth_cases[0]
    pa, pb = case.phases
    idx, lag = pair_frames(pa, pb)
    # Brute force over the circle.
    for i in range(len(pa)):
        d = np.abs(circular_difference(pa[i], pb))
        assert d[idx[i]] == d.min()
        assert lag[i] == pytest.approx(circular_difference(pa[i], pb[idx[i]]))
    # The sequence covers more than a cycle, so some B frame is within half a
    # frame step of every A frame's phase.
    step = case.info["heart_rate_bpm"] / 60.0 / FPS  # phase advance per frame
    assert np.all(np.abs(lag) <= step / 2 + 1e-9)


def test_pairing_regular_sequences_with_a_known_lag():
    pa = np.arange(10) * 0.1  # one cycle, 10 frames
    idx, lag = pair_frames(pa, np.mod(pa - 0.03, 1.0))
    np.testing.assert_array_equal(idx, np.arange(10))
    np.testing.assert_allclose(lag, -0.03, atol=1e-12)
    # B lags by 0.07 (more than half a frame): A's frame i pairs with B's i + 1,
    # and the last A frame wraps to B's first (phase 0.93).
    idx, lag = pair_frames(pa, np.mod(pa - 0.07, 1.0))
    np.testing.assert_array_equal(idx, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
    np.testing.assert_allclose(lag, 0.03, atol=1e-12)


@pytest.mark.parametrize("which", [0, 1])
def test_pairing_estimated_phases_agrees_with_the_truth(synth_cases, estimates, which):
    case = synth_cases[which]
    est_a, est_b = (e.phase for e in estimates[which])
    idx_est, _ = pair_frames(est_a, est_b)
    _, best_lag = pair_frames(*case.phases)
    # The true phase lag of the estimated pairs: never worse than one frame
    # step, and on average within a quarter step of the best possible pairing.
    true_lag = np.abs(circular_difference(case.phases[0], case.phases[1][idx_est]))
    step = case.info["heart_rate_bpm"] / 60.0 / FPS
    assert np.all(true_lag <= step)
    assert np.mean(true_lag) <= np.mean(np.abs(best_lag)) + 0.25 * step


def test_wrap_around_is_circular():
    idx, lag = pair_frames([0.98, 0.02, 0.5], [0.5, 0.01, 0.9, 0.97])
    assert idx.tolist() == [3, 1, 0]
    np.testing.assert_allclose(lag, [-0.01, -0.01, 0.0], atol=1e-12)
    idx, lag = pair_frames([0.98], [0.5, 0.01])
    assert idx.tolist() == [1] and lag[0] == pytest.approx(0.03)
    idx, lag = pair_frames([0.01], [0.5, 0.98])
    assert idx.tolist() == [1] and lag[0] == pytest.approx(-0.03)
    assert pair_frames([1.0], [0.0, 0.5])[0].tolist() == [0]  # 1 is the same as 0
    np.testing.assert_allclose(circular_difference([0.0, 0.25, 0.75], [0.5, 0.0, 0.0]), [-0.5, -0.25, 0.25])


def test_pair_frames_rejects_bad_input():
    with pytest.raises(ShapeError, match="empty"):
        pair_frames([], [0.1])
    with pytest.raises(ShapeError, match="empty"):
        pair_frames([0.1], np.zeros(0))
    with pytest.raises(ShapeError, match=r"shape \(T,\)"):
        pair_frames(np.zeros((2, 2)), [0.1])
    with pytest.raises(ValueError, match="NaN"):
        pair_frames([0.1, np.nan], [0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pair_frames([0.1], [1.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pair_frames([-0.1], [0.2])
    with pytest.raises(ShapeError):
        pair_frames("abc", [0.2])


def pulsing_ellipses(times_ms, period_ms, *, drift_px_per_s=(0.0, 0.0), size=96):
    """Masks of an ellipse outline (a ring) whose radii pulse with a cardiac-like waveform.

    The ring is largest at phase 0 (end-diastole) and smallest at 0.35 (end-systole);
    it drifts linearly (respiration-like translation). Returns (frames, true phase).
    """
    phase = np.mod(np.asarray(times_ms) / period_ms + 0.3, 1.0)
    # Fast contraction to 0.35, slower relaxation: activation 0..1.
    act = np.where(phase < 0.35, 0.5 - 0.5 * np.cos(np.pi * phase / 0.35),
                   0.5 + 0.5 * np.cos(np.pi * (phase - 0.35) / 0.65))
    rr, cc = np.mgrid[0:size, 0:size].astype(float)
    frames = []
    for t, a in zip(times_ms, act):
        r0 = size / 2 + drift_px_per_s[0] * t / 1000.0
        c0 = size / 2 + drift_px_per_s[1] * t / 1000.0
        ra, rb = 30.0 * (1 - 0.15 * a), 20.0 * (1 - 0.1 * a)
        e = np.sqrt(((rr - r0) / ra) ** 2 + ((cc - c0) / rb) ** 2)
        frames.append(np.abs(e - 1.0) < 0.08)
    return np.stack(frames), phase


@pytest.mark.parametrize("period_ms", [450.0, 800.0, 1100.0])
def test_period_with_irregular_frame_times_and_drift(period_ms):
    rng = np.random.default_rng(int(period_ms))
    times = np.arange(40) * (1000.0 / FPS) + rng.uniform(-10, 10, 40)
    frames, truth = pulsing_ellipses(times, period_ms, drift_px_per_s=(3.0, -2.0))
    est = estimate_phase(frames, times)
    assert abs(est.period_ms / period_ms - 1) < 0.03
    assert np.max(np.abs(circular_difference(truth, est.phase))) < 0.05


def test_masks_given_as_numbers_are_detected():
    times = np.arange(30) * (1000.0 / FPS)
    frames, _ = pulsing_ellipses(times, 700.0)
    ref = estimate_phase(frames, times)
    for other in (frames.astype(np.uint8) * 255, frames.astype(np.float32)):
        est = estimate_phase(other, times)
        np.testing.assert_allclose(est.phase, ref.phase, atol=1e-9)
    np.testing.assert_allclose(frame_descriptors(frames)[:, 1:], frame_descriptors(frames.astype(float))[:, 1:])


def test_estimate_phase_rejects_bad_input():
    times = np.arange(30) * (1000.0 / FPS)
    frames, _ = pulsing_ellipses(times, 700.0)
    with pytest.raises(ShapeError, match=r"\(T, H, W\)"):
        estimate_phase(frames[0], times)
    with pytest.raises(ShapeError, match="empty"):
        estimate_phase(frames[:0], times[:0])
    with pytest.raises(ShapeError, match="at least 4 frames"):
        estimate_phase(frames[:3], times[:3])
    with pytest.raises(ShapeError, match="frame_times_ms must have shape"):
        estimate_phase(frames, times[:-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        estimate_phase(frames, times[::-1])
    with pytest.raises(ValueError, match="NaN"):
        estimate_phase(frames, np.where(np.arange(30) == 4, np.nan, times))
    with pytest.raises(ValueError, match="too short"):
        estimate_phase(frames[:5], times[:5])
    with pytest.raises(ValueError, match="bpm_range"):
        estimate_phase(frames, times, bpm_range=(150, 40))
    with pytest.raises(ValueError, match="kind"):
        estimate_phase(frames, times, kind="xray")
    with pytest.raises(ValueError, match="do not change"):
        estimate_phase(np.repeat(frames[:1], 30, axis=0), times)
    with pytest.raises(ValueError, match="vessel pixels"):
        estimate_phase(np.zeros_like(frames), times)
    noise = np.random.default_rng(0).random((30, 64, 64)) < 0.05
    with pytest.raises(ValueError, match="periodicity|no period"):
        estimate_phase(noise, times)
