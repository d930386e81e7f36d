"""Tests of the cardiac + respiratory motion model (autocar.synth.heartbeat)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError, ShapeError
from autocar.synth.heartbeat import HeartbeatModel, cardiac_activation, periodic_scaling

AXIS = np.array([0.5, -0.3, -0.8]) / np.linalg.norm([0.5, -0.3, -0.8])
CENTER = np.array([10.0, -20.0, 30.0])


def shell_points(n: int = 2000, seed: int = 0, lo: float = 40.0, hi: float = 60.0) -> np.ndarray:
    """Points 40-60 mm from CENTER in random directions, shape (n, 3)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return CENTER + d * rng.uniform(lo, hi, (n, 1))


def still_breathing(**kw: float) -> HeartbeatModel:
    return HeartbeatModel(CENTER, AXIS, respiration_mm=(0.0, 0.0, 0.0), **kw)


# ------------------------------------------------------------ activation
def test_activation_knots_and_range() -> None:
    m = HeartbeatModel(CENTER, AXIS)
    assert m.activation(0.0) == pytest.approx(0.0, abs=1e-12)
    assert m.activation(0.35) == pytest.approx(1.0, abs=1e-12)
    assert m.activation(0.999999) == pytest.approx(0.0, abs=1e-9)
    p = np.linspace(0, 1, 2001)
    a = m.activation(p)
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.argmax(a) == 700  # phase 0.35
    # Monotone rise in systole, monotone fall in diastole.
    assert np.all(np.diff(a[: 701]) >= -1e-12)
    assert np.all(np.diff(a[700:]) <= 1e-12)
    # Diastasis plateau: activation flat over the middle of diastole.
    mid = m.activation(np.linspace(0.70, 0.85, 20))
    assert np.ptp(mid) < 1e-9 and mid[0] == pytest.approx(0.2)


def test_activation_periodic_and_c1() -> None:
    p = np.linspace(-2, 2, 801)
    assert np.allclose(cardiac_activation(p), cardiac_activation(p + 1.0), atol=1e-12)
    # C1: the one-sided derivatives agree at every knot (and at phase 0 = 1).
    h = 1e-6
    ts = 0.35
    knots = [0.0, ts, ts + 0.5 * (1 - ts), ts + 0.8 * (1 - ts)]
    for k in knots:
        left = (cardiac_activation(k) - cardiac_activation(k - h)) / h
        right = (cardiac_activation(k + h) - cardiac_activation(k)) / h
        assert abs(float(left - right)) < 1e-4, k
    # Fast contraction, slower relaxation: steepest systolic slope beats the diastolic one.
    x = np.linspace(0, 1, 20001)
    slope = np.gradient(cardiac_activation(x), x)
    assert slope[x <= ts].max() > np.abs(slope[x > ts]).max()
    assert slope[x <= ts].max() == pytest.approx(math.pi / (2 * ts), rel=1e-3)


# ------------------------------------------------------------- displacement
def test_identity_at_phase_zero_time_zero() -> None:
    pts = shell_points(500)
    for seed in range(3):
        m = HeartbeatModel.random(seed, CENTER, AXIS)
        assert np.allclose(m.displace(pts, 0.0, 0.0), pts, atol=1e-12)
        assert np.allclose(m.displace(pts, 1.0, 0.0), pts, atol=1e-9)


def test_periodic_in_phase_and_breathing() -> None:
    m = HeartbeatModel.random(1, CENTER, AXIS)
    pts = shell_points(200)
    for p in (0.1, 0.35, 0.6, 0.93):
        assert np.allclose(m.displace(pts, p), m.displace(pts, p + 1.0), atol=1e-9)
        assert np.allclose(m.displace(pts, p), m.displace(pts, p - 3.0), atol=1e-9)
    t, T = 1.3, m.respiration_period_s
    assert np.allclose(m.displace(pts, 0.2, t), m.displace(pts, 0.2, t + T), atol=1e-9)


def test_point_on_long_axis_moves_only_along_it() -> None:
    m = still_breathing()
    for h in (-60.0, -20.0, 0.0, 25.0, 44.0):
        p = CENTER + h * AXIS
        for phase in (0.1, 0.35, 0.5):
            d = m.displace(p[None], phase)[0] - p
            assert np.linalg.norm(np.cross(d, AXIS)) < 1e-9
    # The base (h < 0) moves towards the apex at end-systole.
    p = CENTER - 45.0 * AXIS
    d = m.displace(p[None], 0.35)[0] - p
    # anchor at 2 * 45 = 90 mm: shift = 0.06 * (90 + 45) = 8.1 mm along +axis
    assert d @ AXIS == pytest.approx(0.06 * 135.0)


def test_twist_contraction_shortening_hand_computed() -> None:
    # Axis +z through the origin: rotations are about z, easy to write down.
    m = HeartbeatModel(np.zeros(3), (0.0, 0.0, 2.0), contraction=0.1, longitudinal=0.05,
                       twist_deg=10.0, respiration_mm=(0, 0, 0), half_length_mm=40.0)
    r, c5, s5 = 30.0, math.cos(math.radians(5.0)), math.sin(math.radians(5.0))
    apex = np.array([[r, 0.0, 40.0]])  # radius 30 at the apex plane
    # radius 30 * (1 - 0.1) = 27, turned +twist/2 = +5 deg about +z,
    # height 40 + 0.05 * (80 - 40) = 42.
    assert np.allclose(m.displace(apex, 0.35), [[27 * c5, 27 * s5, 42.0]], atol=1e-12)
    base = np.array([[0.0, r, -40.0]])  # base plane: -5 deg, height -40 + 0.05 * 120 = -34
    assert np.allclose(m.displace(base, 0.35), [[27 * s5, 27 * c5, -34.0]], atol=1e-12)
    # Beyond the apex plane the angle stays at the apex value; mid-ventricle does not turn.
    far = m.displace(np.array([[r, 0.0, 70.0]]), 0.35)[0]
    assert math.degrees(math.atan2(far[1], far[0])) == pytest.approx(5.0)
    mid = m.displace(np.array([[r, 0.0, 0.0]]), 0.35)[0]
    assert np.allclose(mid, [27.0, 0.0, 4.0])
    # Half activation halves every effect.
    half = 0.2  # mid-systole, 0 < A < 1
    a = float(m.activation(half))
    assert 0.3 < a < 0.9
    theta = math.radians(5.0 * a)
    rr = r * (1 - 0.1 * a)
    assert np.allclose(m.displace(apex, half), [[rr * math.cos(theta), rr * math.sin(theta), 40 + 0.05 * a * 40]])


def test_respiration_shift() -> None:
    m = HeartbeatModel(CENTER, AXIS, respiration_mm=(1.0, 2.0, 6.0), respiration_period_s=4.0)
    pts = shell_points(50)
    # Half a breath, phase 0: pure rigid shift by the full amplitude.
    assert np.allclose(m.displace(pts, 0.0, 2.0) - pts, [1.0, 2.0, 6.0])
    assert np.allclose(m.displace(pts, 0.0, 1.0) - pts, [0.5, 1.0, 3.0])
    # Cardiac and respiratory parts add.
    both = m.displace(pts, 0.3, 2.0)
    assert np.allclose(both - m.displace(pts, 0.3, 0.0), [1.0, 2.0, 6.0])


def test_end_systole_magnitudes_in_coronary_range() -> None:
    pts = shell_points(3000)
    cos = (pts - CENTER) @ AXIS / np.linalg.norm(pts - CENTER, axis=1)
    epicardial = np.abs(cos) < math.cos(math.radians(20))  # not the apex/base caps
    m = HeartbeatModel(CENTER, AXIS)
    d = np.linalg.norm(m.displace(pts, 0.35) - pts, axis=1)
    assert d[epicardial].min() >= 3.0 and d.max() <= 15.0
    for seed in range(5):
        m = HeartbeatModel.random(seed, CENTER, AXIS)
        d = np.linalg.norm(m.displace(pts, m.systole_fraction) - pts, axis=1)
        assert 3.0 <= np.median(d) <= 15.0 and d.max() <= 15.0


def test_smooth_in_phase() -> None:
    m = HeartbeatModel.random(2, CENTER, AXIS)
    pts = shell_points(300)
    phases = np.linspace(0, 1, 1001)
    xs = np.stack([m.displace(pts, p) for p in phases])
    speed = np.linalg.norm(np.diff(xs, axis=0), axis=2) / np.diff(phases)[:, None]  # mm per cycle
    assert speed.max() < 80.0
    # C1: velocity changes little between consecutive steps (no kinks).
    accel = np.abs(np.diff(speed, axis=0))
    assert accel.max() < 1.0


def test_per_point_phase_broadcast() -> None:
    m = HeartbeatModel(CENTER, AXIS)
    pts = shell_points(4)
    phases = np.array([0.0, 0.1, 0.35, 0.7])
    out = m.displace(pts, phases)
    for i, p in enumerate(phases):
        assert np.allclose(out[i], m.displace(pts[i : i + 1], float(p))[0])
    with pytest.raises(ShapeError):
        m.displace(pts, np.zeros(3))


def test_deform_keeps_topology_and_radii() -> None:
    nodes = CENTER + np.array([[40.0, 0, 0], [45, 5, 0], [50, 10, 5], [45, -5, 0]])
    g = CenterlineGraph(nodes, np.array([2.0, 1.5, 1.0, 1.0]), np.array([[0, 1], [1, 2], [1, 3]]),
                        labels=np.array([0, 0, 1, -1]), label_names=("LAD", "D1"))
    m = HeartbeatModel(CENTER, AXIS)
    out = m.deform(g, 0.35, 1.0)
    assert np.array_equal(out.edges, g.edges) and np.array_equal(out.radii, g.radii)
    assert np.array_equal(out.labels, g.labels) and out.label_names == g.label_names
    assert np.allclose(out.nodes, m.displace(nodes, 0.35, 1.0))
    assert not np.allclose(out.nodes, nodes)


# -------------------------------------------------------- construction / io
def test_random_reproducible_and_plausible() -> None:
    a = HeartbeatModel.random(5, CENTER, AXIS)
    b = HeartbeatModel.random(np.random.default_rng(5), CENTER, AXIS)
    assert a == b
    assert a != HeartbeatModel.random(6, CENTER, AXIS)
    for seed in range(20):
        m = HeartbeatModel.random(seed, CENTER, AXIS)
        assert 0.06 <= m.contraction <= 0.14 and 5 <= m.twist_deg <= 14
        assert 4.0 <= m.respiration_mm[2] <= 10.0  # mostly cranio-caudal
        assert abs(m.respiration_mm[0]) < m.respiration_mm[2] and abs(m.respiration_mm[1]) < m.respiration_mm[2]
        assert 0.6 <= m.heart_period_s <= 1.1
    m = HeartbeatModel.random(0, CENTER, AXIS, contraction=0.2, twist_deg=0.0)
    assert m.contraction == 0.2 and m.twist_deg == 0.0
    with pytest.raises(TypeError, match="nonsense"):
        HeartbeatModel.random(0, CENTER, AXIS, nonsense=1)


def test_dict_round_trip_json() -> None:
    m = HeartbeatModel.random(3, CENTER, AXIS)
    d = json.loads(json.dumps(m.to_dict()))
    back = HeartbeatModel.from_dict(d)
    assert back == m
    pts = shell_points(20)
    assert np.array_equal(back.displace(pts, 0.4, 1.0), m.displace(pts, 0.4, 1.0))
    # Optional keys fall back to defaults; a tuple respiration works too.
    small = HeartbeatModel.from_dict({"center": [0, 0, 0], "long_axis": [0, 0, 1], "respiration_mm": (0, 0, 1)})
    assert small.contraction == 0.10 and small.respiration_mm == (0.0, 0.0, 1.0)
    with pytest.raises(GeometryError, match="long_axis"):
        HeartbeatModel.from_dict({"center": [0, 0, 0]})
    with pytest.raises(GeometryError, match="bogus"):
        HeartbeatModel.from_dict({**m.to_dict(), "bogus": 1})


def test_axis_is_normalised() -> None:
    m = HeartbeatModel(CENTER, (0.0, 0.0, -5.0))
    assert np.allclose(m.long_axis, [0, 0, -1])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"long_axis": (0.0, 0.0, 0.0)}, "long_axis"),
        ({"long_axis": (np.nan, 0.0, 1.0)}, "long_axis"),
        ({"center": (0.0, 1.0)}, "center"),
        ({"contraction": -0.1}, "contraction"),
        ({"longitudinal": -0.01}, "longitudinal"),
        ({"twist_deg": -5.0}, "twist_deg"),
        ({"contraction": 0.9}, "contraction"),
        ({"heart_period_s": 0.0}, "heart_period_s"),
        ({"respiration_period_s": -4.0}, "respiration_period_s"),
        ({"respiration_mm": (0.0, np.inf, 1.0)}, "respiration_mm"),
        ({"half_length_mm": 0.0}, "half_length_mm"),
        ({"systole_fraction": 0.95}, "systole_fraction"),
    ],
)
def test_bad_parameters_rejected(kw: dict, match: str) -> None:
    args = {"center": CENTER, "long_axis": AXIS, **kw}
    with pytest.raises(ValueError, match=match):
        HeartbeatModel(**args)


def test_bad_displace_inputs_rejected() -> None:
    m = HeartbeatModel(CENTER, AXIS)
    pts = shell_points(5)
    with pytest.raises(GeometryError, match="phase"):
        m.displace(pts, float("nan"))
    with pytest.raises(GeometryError, match="phase"):
        m.activation(np.array([0.1, np.inf]))
    with pytest.raises(GeometryError, match="time_s"):
        m.displace(pts, 0.1, float("nan"))
    with pytest.raises(ShapeError, match="points"):
        m.displace(np.zeros((5, 2)), 0.1)
    with pytest.raises(GeometryError, match="points"):
        m.displace(np.full((2, 3), np.nan), 0.1)
    with pytest.raises(TypeError):
        m.deform(pts, 0.1)  # type: ignore[arg-type]


# ---------------------------------------------------------- periodic scaling
def test_periodic_scaling() -> None:
    pts = shell_points(100)
    assert np.allclose(periodic_scaling(pts, CENTER, 0.0), pts)
    assert np.allclose(periodic_scaling(pts, CENTER, 0.5), pts)
    up = periodic_scaling(pts, CENTER, 0.25, amplitude=0.03)
    assert np.allclose(up - CENTER, 1.03 * (pts - CENTER))
    down = periodic_scaling(pts, CENTER, 0.75, amplitude=0.05)
    assert np.allclose(down - CENTER, 0.95 * (pts - CENTER))
    assert np.allclose(periodic_scaling(pts, CENTER, 0.3), periodic_scaling(pts, CENTER, 2.3))
    # The centre is a fixed point; distances scale by the same factor.
    assert np.allclose(periodic_scaling(CENTER[None], CENTER, 0.25), CENTER[None])
    per_point = periodic_scaling(pts[:2], CENTER, np.array([0.25, 0.75]), amplitude=0.1)
    assert np.allclose(per_point[0] - CENTER, 1.1 * (pts[0] - CENTER))
    assert np.allclose(per_point[1] - CENTER, 0.9 * (pts[1] - CENTER))
    for bad in (-0.01, 0.5, float("nan")):
        with pytest.raises(GeometryError, match="amplitude"):
            periodic_scaling(pts, CENTER, 0.1, amplitude=bad)
    with pytest.raises(GeometryError, match="phase"):
        periodic_scaling(pts, CENTER, float("nan"))
