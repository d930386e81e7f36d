"""Cardiac and respiratory motion of a coronary tree with known 3D truth.

The heart is modelled as a smooth, periodic deformation of space about a
centre ``c`` and a unit long axis ``a`` (base -> apex). For a point ``p`` let
``r = p - c``, ``h = r . a`` (axial coordinate, positive towards the apex) and
``q = r - h a`` (radial vector). With the activation ``A(phase)`` in [0, 1]
(0 at end-diastole, 1 at end-systole) the cardiac displacement is the
composition of three classic components of left-ventricular motion:

1. radial contraction towards the long axis: ``q <- (1 - contraction A) q``;
2. torsion about the long axis, linear in ``h`` between the base plane
   (``h = -half_length_mm``) and the apex plane (``h = +half_length_mm``) and
   constant beyond them: ``theta(h) = A twist / 2 * clip(h / half_length, -1, 1)``
   (right-handed about ``a``), so apex and base turn in opposite senses and
   their difference is ``A twist``;
3. longitudinal shortening, a uniform axial scaling by ``1 - longitudinal A``
   about an anchor plane one half length beyond the apex
   (``h_anchor = 2 half_length``): ``h <- h + longitudinal A max(h_anchor - h, 0)``.
   The base-to-apex distance shortens by the fraction ``longitudinal A``; the
   base descends three times as far as the apex, as the mitral annulus moves
   towards a nearly stationary apex (annular excursion 10-15 mm, apex a few
   mm; e.g. Rogers et al., Circulation 84, 1991, MRI tagging).

Respiration adds a rigid translation ``respiration_mm * R(t)`` with
``R(t) = (1 - cos(2 pi t / T_resp)) / 2`` (0 at ``t = 0``, 1 at half a
breath). Time zero is taken at end-inspiration, where the diaphragm and the
heart are lowest, so the default shift is cranial (+z in LPS).

Physiology the defaults follow:

- Systole lasts about 35 % of the cycle at rest; contraction is fast, the
  relaxation of diastole slower, with rapid early filling, a diastasis
  plateau and the atrial kick at the end (Wiggers diagram; e.g. Guyton &
  Hall, Textbook of Medical Physiology, ch. 9).
- Coronary arteries move about 5-15 mm over the cardiac cycle, most at
  end-systole (Shechter et al., "Three-dimensional motion tracking of
  coronary arteries in biplane cineangiograms", IEEE TMI 22(4), 2003;
  Shechter et al., "Displacement and velocity of the coronary arteries:
  cardiac and respiratory motion", IEEE TMI 25(3), 2006).
- Left-ventricular torsion is roughly 10-20 deg apex-versus-base, the apex
  rotating counter-clockwise as seen from the apex and the base clockwise
  (Buchalter et al., Circulation 81(4), 1990, MRI tagging; Ruessel et al.,
  "Left ventricular torsion: an expanding role in the analysis of myocardial
  dysfunction", JACC Cardiovasc Imaging 2(5), 2009). The default 8 deg is
  lower because the coronaries ride on the epicardium, where torsion is
  smaller than in the endocardial layers these studies report.
- Respiratory motion of the heart is mostly cranio-caudal, about 5-10 mm in
  free breathing and much less in a breath-hold, with a smaller
  antero-posterior part (Wang et al., "Respiratory motion of the heart:
  kinematics and the implications for the spatial resolution in coronary
  imaging", Magn Reson Med 33, 1995; Shechter et al., "Respiratory motion of
  the heart from free breathing coronary angiograms", IEEE TMI 23(8), 2004).

Shapes: N points (or any leading shape ``...``); positions in world mm
(DICOM LPS, origin at the C-arm isocentre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError, ShapeError
from autocar.geometry.carm import finite_number

__all__ = ["HeartbeatModel", "cardiac_activation", "periodic_scaling"]

# Activation curve knots, as fractions of the diastolic interval (after the
# end of systole): rapid filling until _FILL_END, diastasis until _ATRIAL_START,
# then the atrial kick. _DIASTASIS_LEVEL is the residual activation during
# diastasis (the ventricle is not yet fully filled before the atrial kick,
# which adds roughly 20 % of the filling). Relaxation to diastasis spans half
# of diastole (0.325 of the cycle at the default systole), so its mean rate
# (0.8 / 0.325) stays below the systolic one (1 / 0.35): fast contraction,
# slower relaxation.
_FILL_END = 0.5
_ATRIAL_START = 0.8
_DIASTASIS_LEVEL = 0.2


def _ramp(s: np.ndarray) -> np.ndarray:
    """Cosine ramp from 0 at s = 0 to 1 at s = 1 with zero slope at both ends (C1)."""
    s = np.clip(s, 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(math.pi * s))


def _check_phase(phase: Any, name: str = "phase") -> np.ndarray:
    try:
        p = np.asarray(phase, dtype=float)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be a number or an array of numbers, got {phase!r}") from None
    if not np.all(np.isfinite(p)):
        raise GeometryError(f"{name} must be finite, got {phase!r}")
    return p


def cardiac_activation(phase: float | np.ndarray, systole_fraction: float = 0.35) -> np.ndarray:
    """Contraction state over the cardiac cycle.

    Parameters
    ----------
    phase : float or array (...)
        Fraction of the cardiac cycle since the ECG R wave (end-diastole);
        any real value, taken modulo 1.
    systole_fraction : float
        Length of systole as a fraction of the cycle (about 0.35 at rest).

    Returns
    -------
    (...) array of float in [0, 1]: 0 at end-diastole (phase 0), 1 at
    end-systole (phase ``systole_fraction``). Piecewise cosine ramps with zero
    slope at every knot, hence periodic and continuously differentiable (C1):
    a fast systolic rise, rapid early filling down to a diastasis plateau,
    then the atrial kick back to 0 at the next R wave.
    """
    p = np.mod(_check_phase(phase), 1.0)
    ts = float(systole_fraction)
    if not 0.05 <= ts <= 0.8:
        raise GeometryError(f"systole_fraction must be in [0.05, 0.8], got {systole_fraction!r}")
    s = (p - ts) / (1.0 - ts)  # position inside diastole, 0..1
    systole = _ramp(p / ts)
    filling = 1.0 - (1.0 - _DIASTASIS_LEVEL) * _ramp(s / _FILL_END)
    atrial = _DIASTASIS_LEVEL * (1.0 - _ramp((s - _ATRIAL_START) / (1.0 - _ATRIAL_START)))
    out = np.where(p <= ts, systole, np.where(s <= _ATRIAL_START, filling, atrial))
    return np.asarray(out, dtype=float)


def _check_points(points: Any, name: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 0 or p.shape[-1] != 3:
        raise ShapeError(f"{name} must have shape (..., 3) in mm, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise GeometryError(f"{name} must be finite (no NaN or inf)")
    return p


def _vector3(name: str, value: Any) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be a 3-vector of numbers, got {value!r}") from None
    if v.shape != (3,):
        raise ShapeError(f"{name} must have shape (3,), got {np.shape(value)}")
    if not np.all(np.isfinite(v)):
        raise GeometryError(f"{name} must be finite, got {v.tolist()}")
    return v


def _scalar(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    x = finite_number(name, value)
    if (x <= lo if lo_open else x < lo) or x > hi:
        left = "(" if lo_open else "["
        raise GeometryError(f"{name} must be in {left}{lo}, {hi}], got {x}")
    return x


@dataclass(frozen=True, eq=False)
class HeartbeatModel:
    """Smooth periodic cardiac + respiratory deformation of space.

    Parameters
    ----------
    center : (3,) array, mm
        Heart centre (mid-ventricle on the long axis), world LPS.
    long_axis : (3,) array
        Direction base -> apex; normalised on construction (must be non-zero).
    contraction : float
        Peak fractional radial shrink towards the long axis at end-systole,
        in [0, 0.5].
    longitudinal : float
        Peak fractional long-axis shortening (the base moves towards the
        apex, which moves a third as far), in [0, 0.5].
    twist_deg : float
        Peak torsion apex versus base, deg, in [0, 45]; the apex turns by
        +twist/2 and the base by -twist/2 (right-handed about ``long_axis``).
    respiration_mm : (3,) tuple, mm
        Rigid respiratory shift at half a breath (signed vector; mostly
        cranio-caudal, z).
    respiration_period_s : float
        Breathing period, s (> 0).
    heart_period_s : float
        R-R interval, s (> 0); used by :meth:`phase_at`.
    systole_fraction : float
        Systole as a fraction of the cycle (end-systole phase), in [0.05, 0.8].
    half_length_mm : float
        Distance from the centre to the apex plane (and to the base plane)
        along the long axis, mm (> 0); sets the torsion gradient and the
        anchor plane of the longitudinal shortening (``2 half_length_mm``
        towards the apex).
    """

    center: np.ndarray
    long_axis: np.ndarray
    contraction: float = 0.10
    longitudinal: float = 0.06
    twist_deg: float = 8.0
    respiration_mm: tuple[float, float, float] = (0.0, 0.0, 3.0)
    respiration_period_s: float = 4.0
    heart_period_s: float = 0.8
    systole_fraction: float = 0.35
    half_length_mm: float = 45.0

    def __post_init__(self) -> None:
        center = _vector3("center", self.center)
        axis = _vector3("long_axis", self.long_axis)
        n = float(np.linalg.norm(axis))
        if n < 1e-9:
            raise GeometryError(f"long_axis must be non-zero, got {axis.tolist()}")
        axis = axis / n
        center.setflags(write=False)
        axis.setflags(write=False)
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "long_axis", axis)
        object.__setattr__(self, "contraction", _scalar("contraction", self.contraction, 0.0, 0.5))
        object.__setattr__(self, "longitudinal", _scalar("longitudinal", self.longitudinal, 0.0, 0.5))
        object.__setattr__(self, "twist_deg", _scalar("twist_deg", self.twist_deg, 0.0, 45.0))
        resp = _vector3("respiration_mm", self.respiration_mm)
        object.__setattr__(self, "respiration_mm", tuple(float(x) for x in resp))
        object.__setattr__(
            self, "respiration_period_s",
            _scalar("respiration_period_s", self.respiration_period_s, 0.0, 60.0, lo_open=True),
        )
        object.__setattr__(
            self, "heart_period_s", _scalar("heart_period_s", self.heart_period_s, 0.0, 10.0, lo_open=True)
        )
        object.__setattr__(
            self, "systole_fraction", _scalar("systole_fraction", self.systole_fraction, 0.05, 0.8)
        )
        object.__setattr__(
            self, "half_length_mm", _scalar("half_length_mm", self.half_length_mm, 0.0, 1000.0, lo_open=True)
        )

    # ------------------------------------------------------------ timing
    def activation(self, phase: float | np.ndarray) -> np.ndarray:
        """Contraction state in [0, 1] at ``phase`` (...); see :func:`cardiac_activation`."""
        return cardiac_activation(phase, self.systole_fraction)

    def respiration(self, time_s: float | np.ndarray) -> np.ndarray:
        """Respiratory state in [0, 1] at ``time_s`` (...) s: ``(1 - cos(2 pi t / T)) / 2``."""
        t = _check_phase(time_s, "time_s")
        return 0.5 * (1.0 - np.cos(2.0 * math.pi * t / self.respiration_period_s))

    def phase_at(self, time_s: float | np.ndarray, phase0: float = 0.0) -> np.ndarray:
        """Cardiac phase in [0, 1) at ``time_s`` s for a regular rhythm starting at ``phase0``."""
        t = _check_phase(time_s, "time_s")
        p0 = float(_check_phase(phase0, "phase0"))
        return np.mod(p0 + t / self.heart_period_s, 1.0)

    # ------------------------------------------------------------ motion
    def displace(
        self, points: np.ndarray, phase: float | np.ndarray, time_s: float | np.ndarray = 0.0
    ) -> np.ndarray:
        """Move points to their position at a cardiac phase and time.

        Parameters
        ----------
        points : (..., 3) array, mm
            Positions at end-diastole (phase 0) and time 0.
        phase : float or array broadcastable to (...)
            Fraction of the cardiac cycle since the R wave; periodic with
            period 1.
        time_s : float or array broadcastable to (...)
            Time in s for the respiratory component (0: end-inspiration).

        Returns
        -------
        (..., 3) array, mm. The identity at phase 0 and time 0.
        """
        p = _check_points(points)
        act = self.activation(phase)
        resp = self.respiration(time_s)
        lead = p.shape[:-1]
        try:
            act = np.broadcast_to(act, lead)
            resp = np.broadcast_to(resp, lead)
        except ValueError:
            raise ShapeError(
                f"phase {np.shape(phase)} and time_s {np.shape(time_s)} must broadcast to the "
                f"points' leading shape {lead}"
            ) from None
        a = self.long_axis
        r = p - self.center
        h = r @ a
        q = r - h[..., None] * a
        # 1. radial contraction towards the long axis
        q = q * (1.0 - self.contraction * act)[..., None]
        # 2. torsion: Rodrigues rotation of q (perpendicular to a) about a
        theta = np.radians(self.twist_deg) * 0.5 * act * np.clip(h / self.half_length_mm, -1.0, 1.0)
        q = q * np.cos(theta)[..., None] + np.cross(a, q) * np.sin(theta)[..., None]
        # 3. longitudinal shortening: axial scaling about the anchor plane
        h_anchor = 2.0 * self.half_length_mm
        h = h + self.longitudinal * act * np.maximum(h_anchor - h, 0.0)
        out = self.center + h[..., None] * a + q
        return out + resp[..., None] * np.asarray(self.respiration_mm)

    def deform(self, graph: CenterlineGraph, phase: float, time_s: float = 0.0) -> CenterlineGraph:
        """The tree at ``phase`` and ``time_s``: same topology, labels and radii, moved nodes."""
        if not isinstance(graph, CenterlineGraph):
            raise TypeError(f"graph must be a CenterlineGraph, got {type(graph).__name__}")
        return graph.with_nodes(self.displace(graph.nodes, phase, time_s))

    # ------------------------------------------------------- construction
    @classmethod
    def random(
        cls,
        rng: np.random.Generator | int | None,
        center: np.ndarray,
        long_axis: np.ndarray,
        **overrides: Any,
    ) -> "HeartbeatModel":
        """Plausible random motion parameters around a heart.

        Ranges: contraction 0.06-0.14, longitudinal 0.03-0.09, twist 5-14 deg,
        respiration 4-10 mm cranio-caudal (+z) with up to 30 % antero-posterior
        and 15 % left-right, breathing period 3-6 s, heart rate 55-100 bpm,
        systole 32-40 % of the cycle, half length 40-55 mm. ``overrides``
        replace any field (checked as usual); unknown names raise TypeError.
        """
        names = {f.name for f in fields(cls)} - {"center", "long_axis"}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown HeartbeatModel field(s): {sorted(unknown)}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        cc = float(gen.uniform(4.0, 10.0))
        params: dict[str, Any] = {
            "contraction": float(gen.uniform(0.06, 0.14)),
            "longitudinal": float(gen.uniform(0.03, 0.09)),
            "twist_deg": float(gen.uniform(5.0, 14.0)),
            "respiration_mm": (
                float(gen.uniform(-0.15, 0.15) * cc),
                float(gen.uniform(0.0, 0.3) * cc),
                cc,
            ),
            "respiration_period_s": float(gen.uniform(3.0, 6.0)),
            "heart_period_s": 60.0 / float(gen.uniform(55.0, 100.0)),
            "systole_fraction": float(gen.uniform(0.32, 0.40)),
            "half_length_mm": float(gen.uniform(40.0, 55.0)),
        }
        params.update(overrides)
        return cls(center=center, long_axis=long_axis, **params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (lists for vectors)."""
        return {
            "center": [float(x) for x in self.center],
            "long_axis": [float(x) for x in self.long_axis],
            "contraction": self.contraction,
            "longitudinal": self.longitudinal,
            "twist_deg": self.twist_deg,
            "respiration_mm": [float(x) for x in self.respiration_mm],
            "respiration_period_s": self.respiration_period_s,
            "heart_period_s": self.heart_period_s,
            "systole_fraction": self.systole_fraction,
            "half_length_mm": self.half_length_mm,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HeartbeatModel":
        """Inverse of :meth:`to_dict`; missing optional keys take the defaults.

        Raises GeometryError naming a missing required key (``center``,
        ``long_axis``) or an unknown key.
        """
        if not isinstance(data, dict):
            raise GeometryError(f"heartbeat parameters must be a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise GeometryError(f"unknown heartbeat key(s) {sorted(unknown)}")
        missing = [k for k in ("center", "long_axis") if k not in data]
        if missing:
            raise GeometryError(f"missing heartbeat key(s) {missing}")
        kw = dict(data)
        if "respiration_mm" in kw:
            kw["respiration_mm"] = tuple(np.asarray(kw["respiration_mm"], dtype=float).reshape(-1).tolist())
        return cls(**kw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeartbeatModel):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def periodic_scaling(
    points: np.ndarray,
    center: np.ndarray,
    phase: float | np.ndarray,
    amplitude: float = 0.03,
) -> np.ndarray:
    """Isotropic periodic scaling about a centre (weak-synchronisation augmentation).

    AutoCAR renders the second training view from a tree scaled by a few
    percent with a periodic factor, so that the network tolerates views that
    are not taken at exactly the same cardiac phase (Zhu et al., Nat Mach
    Intell 7, 2025). Here ``p' = c + (1 + amplitude sin(2 pi phase)) (p - c)``.

    Parameters
    ----------
    points : (..., 3) array, mm.
    center : (3,) array, mm, fixed point of the scaling.
    phase : float or array broadcastable to (...), any real (period 1).
    amplitude : float in [0, 0.5), peak fractional scale change.

    Returns
    -------
    (..., 3) array, mm; the identity at phase 0 and 0.5.
    """
    p = _check_points(points)
    c = _vector3("center", center)
    amp = _scalar("amplitude", amplitude, 0.0, 0.5)
    if amp >= 0.5:
        raise GeometryError(f"amplitude must be < 0.5, got {amp}")
    ph = _check_phase(phase)
    try:
        s = np.broadcast_to(1.0 + amp * np.sin(2.0 * math.pi * ph), p.shape[:-1])
    except ValueError:
        raise ShapeError(
            f"phase {np.shape(phase)} must broadcast to the points' leading shape {p.shape[:-1]}"
        ) from None
    return c + s[..., None] * (p - c)
