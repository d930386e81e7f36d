"""Stenosis detection: hand-made profiles and planted stenoses of synthetic trees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError, TreeFormatError
from autocar.quant.segments import split_segments
from autocar.quant.stenosis import (
    StenosisOptions,
    detect_stenoses,
    estimate_noise_mm,
    find_lesions,
    reference_diameter,
)
from autocar.synth.trees import generate_tree

S = np.arange(0.0, 80.0001, 0.5)  # arc positions, mm


def tapered() -> np.ndarray:
    return 3.0 - 0.01 * S  # healthy 3.0 mm -> 2.2 mm over 80 mm


def cosine_dip(s0: float, half: float, severity: float) -> np.ndarray:
    """1 - severity * w with w = (1 + cos(pi (s - s0) / half)) / 2 inside |s - s0| < half."""
    x = np.abs(S - s0)
    w = np.where(x < half, 0.5 * (1 + np.cos(np.pi * x / half)), 0.0)
    return 1.0 - severity * w


def test_one_lesion_on_a_tapered_vessel_by_hand():
    d = tapered() * cosine_dip(40.0, 5.0, 0.5)
    (les,) = find_lesions(S, d, noise_mm=0.0)
    # Reference at 40 mm is the taper, 2.6 mm; the minimum is half of it.
    assert les.arc_mm == pytest.approx(40.0, abs=0.5)
    assert les.reference_diameter_mm == pytest.approx(2.6, abs=0.03)
    assert les.minimal_diameter_mm == pytest.approx(1.3, abs=0.03)
    assert les.diameter_stenosis_percent == pytest.approx(50.0, abs=1.5)
    # Below the reference by > 10 %: 0.5 w > 0.1, |x| < 5 acos(-0.6) / pi = 3.52 mm each side.
    assert les.length_mm == pytest.approx(2 * 5 * math.acos(-0.6) / math.pi, abs=0.5)


def test_a_narrowing_that_runs_into_the_vessel_tip_is_not_a_lesion():
    # The last 12 mm fall from 2.2 to 1.1 mm (a reconstruction whose tip thins out): nothing
    # distal recovers, so it is no focal stenosis; the same dip with 6 mm of vessel after it is one.
    x = np.clip((S - 68.0) / 12.0, 0.0, 1.0)
    tip = tapered() * (1.0 - 0.5 * x)
    assert find_lesions(S, tip, noise_mm=0.0) == []
    recovered = tapered() * cosine_dip(68.0, 6.0, 0.5)
    (les,) = find_lesions(S, recovered, noise_mm=0.0)
    assert les.arc_mm == pytest.approx(68.0, abs=0.5)


def test_the_lesion_uncertainty_follows_the_profile_noise():
    d = tapered() * cosine_dip(40.0, 5.0, 0.5)
    (quiet,) = find_lesions(S, d, noise_mm=0.05)
    (noisy,) = find_lesions(S, d, noise_mm=0.10)
    assert quiet.minimal_sd_mm > 0 and quiet.reference_sd_mm > 0
    # Both SDs are linear in the noise; the reference averages many more samples than the MLD.
    assert noisy.minimal_sd_mm == pytest.approx(2 * quiet.minimal_sd_mm, rel=1e-6)
    assert noisy.reference_sd_mm == pytest.approx(2 * quiet.reference_sd_mm, rel=0.05)
    assert quiet.reference_sd_mm < 0.5 * quiet.minimal_sd_mm
    # Checked by simulation: the spread of the minimum of the smoothed profile over noise draws.
    from autocar.quant.segments import smoothing_matrix

    rng = np.random.default_rng(0)
    w = smoothing_matrix(S, StenosisOptions().profile_smooth_mm, degree=2)
    i = int(np.argmin(np.abs(S - 40.0)))
    draws = [(w @ (d + rng.normal(0.0, 0.05, S.shape)))[i] for _ in range(400)]
    assert float(np.std(draws)) == pytest.approx(quiet.minimal_sd_mm, rel=0.15)


def test_stenosis_percent_sd_propagates_both_diameters():
    from autocar.quant.stenosis import stenosis_percent_sd

    assert stenosis_percent_sd(1.0, 2.0, 0.1, 0.0) == pytest.approx(5.0)  # 100 * 0.1 / 2
    assert stenosis_percent_sd(1.0, 2.0, 0.0, 0.2) == pytest.approx(5.0)  # 100 * 1 * 0.2 / 4
    assert stenosis_percent_sd(1.0, 2.0, 0.1, 0.2) == pytest.approx(5.0 * math.sqrt(2))


def test_mild_narrowing_is_not_reported_and_threshold_is_configurable():
    d = tapered() * cosine_dip(40.0, 5.0, 0.25)
    assert find_lesions(S, d, noise_mm=0.0) == []
    (les,) = find_lesions(S, d, noise_mm=0.0, options=StenosisOptions(min_percent=20.0))
    assert les.diameter_stenosis_percent == pytest.approx(25.0, abs=1.5)


def test_healthy_noisy_vessels_give_no_lesion():
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = tapered() + rng.normal(0.0, 0.14, S.shape)  # 0.07 mm radius noise
        assert find_lesions(S, d) == []


def test_noise_estimate_recovers_the_sd():
    rng = np.random.default_rng(4)
    profiles = [tapered() + rng.normal(0.0, 0.14, S.shape) for _ in range(5)]
    assert estimate_noise_mm(profiles) == pytest.approx(0.14, rel=0.1)
    assert estimate_noise_mm([tapered()]) == pytest.approx(0.0, abs=1e-9)


def test_junction_step_is_not_a_lesion_when_the_junction_is_known():
    # The lumen drops by 35 % where a big side branch leaves (at 40 mm) and stays there.
    d = np.where(S <= 40.0, 3.0, 1.95)
    # A smooth fit reads the step as disease...
    assert len(find_lesions(S, d, noise_mm=0.0, options=StenosisOptions(min_shoulder_percent=0.0))) == 1
    # ...unless the junction is known, or the lumen past the "lesion" is checked: it is as
    # wide as the minimum, so the narrowing is no narrowing.
    assert find_lesions(S, d, steps_mm=[40.0], noise_mm=0.0) == []
    assert find_lesions(S, d, noise_mm=0.0) == []
    ref = reference_diameter(S, d, steps_mm=[40.0])
    np.testing.assert_allclose(ref, d, atol=0.02)  # the small ridge on the step costs < 1 %


def test_a_bulge_does_not_make_the_lumen_beside_it_a_lesion():
    # Reconstructed diameters bulge 70 % over 5 mm where two vessels overlap in both views;
    # the lumen either side is the vessel's normal 1.2 mm. The bulge lifts the reference,
    # but neither side is narrower than the lumen next to it.
    d = np.full(S.shape, 1.2) + 0.84 * np.exp(-0.5 * ((S - 40.0) / 2.0) ** 2)
    assert len(find_lesions(S, d * 1.5, noise_mm=0.0, options=StenosisOptions(min_shoulder_percent=0.0))) >= 1
    assert find_lesions(S, d * 1.5, noise_mm=0.0) == []
    # A real 50 % lesion next to the bulge is still found.
    lesion = 1.0 - 0.5 * np.clip(np.cos(np.pi * (S - 60.0) / 8.0), 0, None) * (np.abs(S - 60.0) <= 4.0)
    found = find_lesions(S, d * 1.5 * lesion, noise_mm=0.0)
    assert len(found) == 1 and abs(found[0].arc_mm - 60.0) <= 0.5
    assert found[0].diameter_stenosis_percent == pytest.approx(50.0, abs=6.0)


def test_bad_profiles_are_rejected():
    with pytest.raises(TreeFormatError, match="finite"):
        find_lesions(S, np.full(S.shape, np.nan))
    with pytest.raises(ShapeError, match=r"\(K,\)"):
        find_lesions(S, np.ones(5))
    with pytest.raises(TreeFormatError, match="non-decreasing"):
        find_lesions(S[::-1], tapered())
    with pytest.raises(ValueError, match="min_percent"):
        StenosisOptions(min_percent=120.0)


# ------------------------------------------------------------ synthetic trees
def perturbed(graph: CenterlineGraph, seed: int) -> CenterlineGraph:
    """Unlabelled copy with radii + N(0, 0.07 mm) and nodes jittered by N(0, 0.3 mm)."""
    rng = np.random.default_rng(10_000 + seed)
    radii = np.maximum(graph.radii + rng.normal(0.0, 0.07, graph.num_nodes), 0.05)
    nodes = graph.nodes + rng.normal(0.0, 0.3, graph.nodes.shape)
    return CenterlineGraph(nodes, radii, graph.edges)


def score(truth, findings):
    """(matched (severity pts error, position mm error) pairs, missed planted >= 0.4, false positives)."""
    pos = np.array([f.position_mm for f in findings]).reshape(-1, 3)
    used: set[int] = set()
    matched, missed = [], []
    for st in truth.stenoses:
        dist = np.linalg.norm(pos - np.asarray(st.position_mm), axis=1) if len(pos) else np.zeros(0)
        j = int(np.argmin(dist)) if len(dist) else -1
        hit = j >= 0 and dist[j] <= 3.0
        if hit:
            used.add(j)
        if st.severity < 0.4:
            continue  # may or may not be reported (it is still a true lesion, not a false positive)
        if hit:
            matched.append((findings[j].diameter_stenosis_percent - 100 * st.severity, float(dist[j])))
        else:
            missed.append(st)
    return matched, missed, len(findings) - len(used)


CASES = [("left", s) for s in (0, 1, 2, 3)] + [("right", s) for s in (0, 1, 2)]


@pytest.mark.parametrize("noisy", [False, True], ids=["truth", "noisy"])
@pytest.mark.parametrize("side,seed", CASES)
def test_planted_stenoses_are_found(side, seed, noisy):
    truth = generate_tree(side, rng=seed, n_stenoses=3)
    graph = perturbed(truth.graph, seed) if noisy else truth.graph
    tree = split_segments(graph, side=side)
    findings = detect_stenoses(tree)
    matched, missed, false_pos = score(truth, findings)
    assert not missed, f"missed {missed}; found {findings}"
    for sev_err, pos_err in matched:
        assert abs(sev_err) <= 10.0 and pos_err <= 3.0
    assert false_pos <= 1
    # Every finding names the segment that owns its node, and sits on it.
    for f in findings:
        seg = tree.segments[f.segment]
        assert f.name == seg.name and f.node in set(seg.owned_nodes.tolist())
        assert f.minimal_diameter_mm < f.reference_diameter_mm


def test_healthy_synthetic_trees_have_no_stenosis():
    for side, seed in (("left", 5), ("right", 5)):
        truth = generate_tree(side, rng=seed)
        assert detect_stenoses(split_segments(truth.graph)) == []
        assert detect_stenoses(split_segments(perturbed(truth.graph, seed), side=side)) == []
