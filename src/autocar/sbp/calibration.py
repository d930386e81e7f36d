"""Check and correct view B's C-arm geometry from the epipolar consistency of the two vessel images.

The DICOM angles, distances and isocentre of a real C-arm are off by a few
degrees and millimetres, and one run may be stored mirrored. Any of these
breaks the two-view reconstruction without a sign: every epipolar plane (a
plane through both X-ray sources) still cuts the 3D vessels, but the lines the
geometry predicts no longer cut the same vessels in the two images.

**The signal.** A plane through both sources cuts a vessel centre line in 3D
exactly where its line cuts the vessel's projection in each view, so the
number of centre-line crossings of an epipolar line is the same in both
images (apart from overlaps). :func:`epipolar_mismatch` skeletonises both
masks (the skeleton is smoothed along itself so its pixel staircase does not
add crossings), gives every skeleton point the angle of its epipolar plane and
counts, for each plane angle (0.5 px apart in view A), the skeleton edges it
cuts; the profiles are smoothed by ``sigma_px`` and compared: the mean absolute
count difference over the planes that cut a vessel in either view
(dimensionless; 0 for a perfect pair; the pairs of the tuning set lie at
0.1-0.35 as given and 0.5-2.3 when view B is stored mirrored).

**The correction** (:func:`estimate_correction`). View B's true pose is the
nominal pose moved by a small rigid motion: three rotations about view B's
own axes (column, row and detector direction; degrees) and a translation
across the baseline (two components, mm). The translation along the baseline
changes no epipolar plane and cannot be seen from two views: it moves the
whole reconstruction along the baseline (with a negligible scale change), so
it is not estimated and is reported as an uncertainty
(:attr:`ViewCorrection.unobservable_direction`). The five parameters are found
by minimising the mismatch coarse to fine (``sigma_px`` 8, 3, 1; Powell),
with a weak pull towards no correction. A corrected pose is expressed as a
:class:`~autocar.geometry.CArmView` (new primary / secondary angles) and a
similarity warp of view B's images (the roll about the detector direction,
the image shift and the magnification change), fitted on a 120 mm cube about
the isocentre: a mask resampled with :func:`autocar.sbp.epipolar.warp_mask`
and :attr:`ViewCorrection.warp` is the image the corrected view would have
taken.

The mismatch always falls a little when five parameters are fitted to
overlap noise (7-37 % on consistent tuning pairs, moving view B by up to
4 px), so a correction is used only when it lowers the mismatch by at least
``min_gain`` (50 %): on the tuning set (seeds 1,500,000+) that accepted
no consistent pair, 8 of 10 pairs with a 3 deg / 5 mm error and 6 of 10 with
1 deg / 2 mm. ``python benchmarks/bench_calibration.py`` measures it on
held-out synthetic pairs and real CT trees.

**Impossible pairings** (:func:`check_pairing`). When even the corrected pair
stays inconsistent, the same search runs on view B mirrored left-right and on
the two views' images exchanged; an alternative that explains the images
clearly better (``alternative_ratio``) is reported as the likely cause. A
pairing check never changes the input on its own; the caller decides (the
workflow stops with that message and the options that fix it).

Units: pixels in the images, degrees for rotations, mm for translations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sparse
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation

from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.geometry.carm import angles_from_direction
from autocar.sbp.epipolar import (EpipolarFrame, angle_gradient, epipolar_angles, epipolar_frame,
                                  unapply_view_warp)

__all__ = ["CalibrationConfig", "ViewCorrection", "PairingCheck", "epipolar_mismatch", "estimate_correction",
           "check_pairing", "skeleton_curve", "across_line_drift_px"]

# Parameter scales of the pull towards no correction: rotations (deg) about B's u, v, d; shifts (mm).
_PARAM_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 3.0])
# Points on which a rigid correction is turned into a CArmView plus an image similarity (mm).
_CUBE = np.stack(np.meshgrid(*(np.linspace(-60.0, 60.0, 5),) * 3, indexing="ij"), -1).reshape(-1, 3)


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of :func:`estimate_correction` and :func:`check_pairing`.

    stages : (sigma_px, max_evaluations, use the vessel ends) of the coarse-to-fine search; sigma is
        the smoothing of the crossing profiles (and the tolerance of the vessel-end agreement) in
        view A's pixels.
    grid_sigma_px : sigma of the first grid search over the turn about the baseline.
    tip_weight : weight of the vessel-end agreement (subtracted from the mismatch).
    pull : weight of the pull towards no correction (per squared parameter scale).
    min_gain : a correction is used only when it lowers the mismatch by at least this fraction ...
    min_tip_gain : ... and raises the vessel-end agreement by at least this much.
    max_rotation_deg, max_shift_mm : larger corrections are rejected (a sign of a wrong pairing,
        not a calibration error).
    check_above : :func:`check_pairing` tries the alternative pairings only when the (corrected)
        mismatch stays above this.
    alternative_ratio : an alternative pairing is reported when its mismatch is below this
        fraction of the pair's as given.
    smooth_iterations : passes of the smoothing of the skeleton along itself.
    """

    stages: tuple[tuple[float, int, bool], ...] = ((8.0, 300, False), (3.0, 300, True), (1.5, 300, True))
    grid_sigma_px: float = 6.0
    tip_weight: float = 0.3
    pull: float = 0.0005
    min_gain: float = 0.35
    min_tip_gain: float = 0.2
    max_rotation_deg: float = 8.0
    max_shift_mm: float = 20.0
    check_above: float = 0.25
    alternative_ratio: float = 0.75
    smooth_iterations: int = 6


@dataclass(frozen=True)
class ViewCorrection:
    """A rigid correction of view B's pose, as found by :func:`estimate_correction`.

    rotation_deg : (3,) rotation (deg) about ``rotation_axes``: the baseline, then the two shift axes.
    shift_mm : (2,) translation of view B across the baseline, along ``shift_axes``.
    shift_axes : (2, 3) the two world directions of ``shift_mm`` (unit, perpendicular to the baseline).
    unobservable_direction : (3,) the baseline (unit, world): a shift of view B along it is invisible.
    view : the corrected view B (nominal SID, SOD and pixel size; corrected angles).
    warp : (2, 3) maps a pixel (row, col) of the corrected image to view B's recorded image
        (:func:`autocar.sbp.epipolar.warp_mask` takes it).
    warp_residual_px : RMS error of expressing the rigid correction as ``view`` + ``warp`` (px).
    cost_before, cost_after : the mismatch (:func:`epipolar_mismatch`) as given and corrected.
    accepted : whether the correction is meant to be used.
    reason : why not, when not.
    """

    rotation_deg: tuple[float, float, float]
    shift_mm: tuple[float, float]
    shift_axes: tuple[tuple[float, float, float], tuple[float, float, float]]
    unobservable_direction: tuple[float, float, float]
    view: CArmView
    warp: tuple[tuple[float, float, float], tuple[float, float, float]]
    warp_residual_px: float
    cost_before: float
    cost_after: float
    accepted: bool
    reason: str = ""
    tips_before: float = float("nan")
    tips_after: float = float("nan")

    @property
    def gain(self) -> float:
        """Relative fall of the mismatch, ``1 - after / before`` (0 when nothing was found)."""
        return 0.0 if self.cost_before <= 0 else 1.0 - self.cost_after / self.cost_before

    @property
    def rotation_axes(self) -> np.ndarray:
        """(3, 3) world unit axes of ``rotation_deg``: the baseline and the two shift axes."""
        return np.stack([np.asarray(self.unobservable_direction), *np.asarray(self.shift_axes)])

    def world_motion(self) -> tuple[np.ndarray, np.ndarray]:
        """(R (3, 3), t (3,) mm): view B's recorded image is its nominal projection of ``R x + t``."""
        rot = Rotation.from_rotvec(np.radians(np.asarray(self.rotation_deg)) @ self.rotation_axes).as_matrix()
        return rot, np.asarray(self.shift_mm) @ np.asarray(self.shift_axes)

    @property
    def rotation_angle_deg(self) -> float:
        """Angle of the rotation (deg)."""
        return float(np.linalg.norm(self.rotation_deg))

    @property
    def shift_norm_mm(self) -> float:
        """Length of the observable translation (mm)."""
        return float(np.linalg.norm(self.shift_mm))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the ``calibration`` entry of a result)."""
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "rotation_deg": [round(float(x), 3) for x in self.rotation_deg],
            "rotation_axes": [[round(float(x), 6) for x in a] for a in self.rotation_axes],
            "shift_mm": [round(float(x), 3) for x in self.shift_mm],
            "shift_axes": [[round(float(x), 6) for x in a] for a in self.shift_axes],
            "unobservable_direction": [round(float(x), 6) for x in self.unobservable_direction],
            "corrected_view_b": self.view.to_dict(),
            "view_b_warp_px": [[round(float(x), 6) for x in row] for row in self.warp],
            "warp_residual_px": round(float(self.warp_residual_px), 3),
            "mismatch_before": round(float(self.cost_before), 4),
            "mismatch_after": round(float(self.cost_after), 4),
            "vessel_end_agreement_before": round(float(self.tips_before), 4),
            "vessel_end_agreement_after": round(float(self.tips_after), 4),
        }


@dataclass(frozen=True)
class PairingCheck:
    """What :func:`check_pairing` concluded about a view pair.

    verdict : "consistent" (no geometry error found), "corrected" (a geometry correction makes it
        consistent), "mirrored" (view B's images look stored mirrored left-right), "swapped"
        (the two runs' images look exchanged) or "inconsistent" (nothing to compare: empty masks).
    mismatch : the mismatch of each hypothesis tried after its best correction
        ("as given", "B mirrored", "views swapped").
    correction : the correction of the pair as given.
    message : one sentence for the user.
    """

    verdict: str
    mismatch: dict[str, float]
    correction: ViewCorrection
    message: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the pair can be reconstructed (as given or corrected)."""
        return self.verdict in ("consistent", "corrected")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the ``pairing_check`` entry of a result)."""
        return {"verdict": self.verdict, "message": self.message,
                "mismatch": {k: round(float(v), 4) for k, v in self.mismatch.items()},
                "correction": self.correction.to_dict(), "seconds": round(float(self.seconds), 2),
                **({"mirror_check": self.extra["mirror_check"]} if "mirror_check" in self.extra else {})}


def across_line_drift_px(points: np.ndarray, view_a: CArmView, recorded_b_rc: np.ndarray, view_b: CArmView,
                         warp: Sequence[Sequence[float]] | None = None) -> float:
    """RMS (px of view B) across the epipolar lines between where view B recorded 3D points and where
    the geometry used puts them: what breaks the two-view hull (the part along the lines only moves
    the reconstruction in depth). A benchmark measure: it needs the true points.

    points : (N, 3) mm, world; their view-A pixels are ``view_a.project(points)``.
    recorded_b_rc : (N, 2) where view B's recorded image has them (row, col).
    view_b, warp : the view B used and its image warp (corrected pixel -> recorded pixel; default identity).
    """
    frame = epipolar_frame([view_a, view_b])
    per_px = float(np.hypot(*angle_gradient(view_b, frame)))
    used = np.asarray(recorded_b_rc, float) if warp is None else unapply_view_warp(recorded_b_rc, warp)
    d = epipolar_angles(view_b, used, frame) - epipolar_angles(view_a, view_a.project(points)[0], frame)
    return float(np.sqrt(np.mean((d / per_px) ** 2)))


def skeleton_curve(mask: np.ndarray, smooth_iterations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The centre-line skeleton of a (H, W) mask as points (N, 2) (row, col; px) and edges (E, 2).

    Neighbouring skeleton pixels are joined (a diagonal step only where no two-step path through
    a shared neighbour exists, so a corner adds no triangle); points with two neighbours are then
    moved ``smooth_iterations`` times halfway to their neighbours' mean, which removes the pixel
    staircase of a curve and keeps its ends and junctions in place.
    """
    from skimage.morphology import skeletonize

    sk = skeletonize(np.asarray(mask) > 0)
    pts = np.argwhere(sk)
    if len(pts) < 2:
        return pts.astype(float), np.zeros((0, 2), np.int64)
    index = -np.ones(sk.shape, np.int64)
    index[pts[:, 0], pts[:, 1]] = np.arange(len(pts))
    pad = np.pad(sk, 1)
    idx_pad = np.pad(index, 1, constant_values=-1)
    r, c = pts[:, 0] + 1, pts[:, 1] + 1
    edges = []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ok = pad[r + dr, c + dc].copy()
        if dr and dc:
            ok &= ~pad[r + dr, c] & ~pad[r, c + dc]
        edges.append(np.stack([np.nonzero(ok)[0], idx_pad[r[ok] + dr, c[ok] + dc]], 1))
    e = np.concatenate(edges).astype(np.int64)
    x = pts.astype(float)
    if len(e) and smooth_iterations > 0:
        n = len(pts)
        adj = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                                shape=(n, n)).tocsr()
        deg = np.asarray(adj.sum(axis=1)).ravel()
        move = deg == 2
        for _ in range(smooth_iterations):
            mean = (adj @ x) / np.maximum(deg, 1)[:, None]
            x[move] = 0.5 * x[move] + 0.5 * mean[move]
    return x, e


def _crossing_profile(theta: np.ndarray, edges: np.ndarray, start: float, step: float, n: int,
                      sigma: float) -> np.ndarray:
    """(n,) number of edges whose plane-angle interval holds each grid angle, smoothed by ``sigma`` samples."""
    a, b = theta[edges[:, 0]], theta[edges[:, 1]]
    lo = np.clip(np.ceil((np.minimum(a, b) - start) / step), 0, n).astype(np.int64)
    hi = np.clip(np.ceil((np.maximum(a, b) - start) / step), 0, n).astype(np.int64)
    diff = np.bincount(lo, minlength=n + 1)[: n + 1] - np.bincount(hi, minlength=n + 1)[: n + 1]
    prof = np.cumsum(diff)[:n].astype(float)
    return ndimage.gaussian_filter1d(prof, sigma) if sigma > 0 else prof


def _rigid(views: Sequence[CArmView], params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World rotation (3, 3), translation (3,), shift axes (2, 3) and baseline (3,) of parameters (5,).

    The world is moved by ``x -> R x + t`` before view B's nominal projection: that is the
    recorded image of a view B whose pose is the nominal one moved by the inverse motion.
    """
    va, vb = views
    base = vb.source_position - va.source_position
    base = base / np.linalg.norm(base)
    e1 = np.cross(base, vb.axes[2])
    if np.linalg.norm(e1) < 1e-6:  # view B looks along the baseline (cannot happen for two C-arm poses)
        e1 = np.cross(base, vb.axes[0])
    e1 /= np.linalg.norm(e1)
    axes_t = np.stack([e1, np.cross(base, e1)])
    rot = Rotation.from_rotvec(np.radians(params[:3]) @ np.stack([base, *axes_t])).as_matrix()
    return rot, params[3:] @ axes_t, axes_t, base


def _corrected_view(vb: CArmView, rot: np.ndarray, shift: np.ndarray) -> tuple[CArmView, np.ndarray, float]:
    """The corrected view, its image warp (2, 3) (corrected pixel -> recorded pixel) and the fit RMS (px)."""
    a, b = angles_from_direction(rot.T @ vb.axes[2])
    view = vb.replace(primary_deg=a, secondary_deg=b)
    src, _ = view.project(_CUBE)
    dst, _ = vb.project(_CUBE @ rot.T + shift)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s = (src - ms) @ np.array([1.0, 1j])
    d = (dst - md) @ np.array([1.0, 1j])
    z = np.vdot(s, d) / np.vdot(s, s)  # least-squares similarity d = z s (rotation and scale)
    lin = np.array([[z.real, -z.imag], [z.imag, z.real]])
    off = md - lin @ ms
    rms = float(np.sqrt(np.mean(np.sum((src @ lin.T + off - dst) ** 2, axis=1))))
    return view, np.concatenate([lin, off[:, None]], axis=1), rms


class _Problem:
    """The two skeletons of a pair and the mismatch of any correction of view B."""

    def __init__(self, masks: Sequence[np.ndarray], views: Sequence[CArmView], config: CalibrationConfig):
        self.views = list(views)
        self.config = config
        self.curves = [skeleton_curve(m, config.smooth_iterations) for m in masks]
        self.tips = []
        for pts, e in self.curves:
            deg = np.bincount(e.ravel(), minlength=len(pts)) if len(e) else np.zeros(len(pts), np.int64)
            self.tips.append(pts[deg == 1])

    @property
    def usable(self) -> bool:
        return all(len(e) >= 10 for _, e in self.curves)

    def cost(self, params: np.ndarray, sigma_px: float, pull: float = 0.0, tip_weight: float = 0.0) -> float:
        va, vb = self.views
        rot, shift, _, _ = _rigid(self.views, params)
        view, warp, _ = _corrected_view(vb, rot, shift)
        c = self.mismatch([va, view], warp, sigma_px) + pull * float(np.sum((params / _PARAM_SCALE) ** 2))
        if tip_weight > 0:
            c -= tip_weight * self.tip_agreement([va, view], warp, sigma_px)
        return c

    def tip_agreement(self, views: Sequence[CArmView], warp: np.ndarray | None, sigma_px: float) -> float:
        """Mean over the vessel ends of both views of exp(-d^2 / 2 sigma^2), d the distance (px of
        view A) from an end's epipolar plane to the nearest end of the other view: 1 when every end
        has its partner on its plane."""
        (ta_px, tb_px) = self.tips
        if len(ta_px) == 0 or len(tb_px) == 0:
            return 0.0
        frame = epipolar_frame(views)
        if warp is not None:  # recorded pixel -> corrected pixel
            tb_px = unapply_view_warp(tb_px, warp)
        per_px = float(np.hypot(*angle_gradient(views[0], frame)))
        ta = epipolar_angles(views[0], ta_px, frame) / per_px
        tb = epipolar_angles(views[1], tb_px, frame) / per_px
        d = np.abs(ta[:, None] - tb[None, :])
        k = lambda x: np.exp(-0.5 * (x / sigma_px) ** 2)  # noqa: E731
        return 0.5 * float(k(d.min(axis=1)).mean() + k(d.min(axis=0)).mean())

    def mismatch(self, views: Sequence[CArmView], warp: np.ndarray | None, sigma_px: float) -> float:
        frame: EpipolarFrame = epipolar_frame(views)
        (pa, ea), (pb, eb) = self.curves
        if warp is not None:  # recorded pixel -> corrected pixel
            pb = unapply_view_warp(pb, warp)
        ta = epipolar_angles(views[0], pa, frame)
        tb = epipolar_angles(views[1], pb, frame)
        per_px = float(np.hypot(*angle_gradient(views[0], frame)))
        if not np.isfinite(per_px) or per_px <= 0:
            return float("inf")
        step = 0.5 * per_px
        lo = min(ta.min(), tb.min()) - 4 * sigma_px * per_px
        hi = max(ta.max(), tb.max()) + 4 * sigma_px * per_px
        n = int(min((hi - lo) / step + 1, 200_000))
        sig = sigma_px / 0.5
        a = _crossing_profile(ta, ea, lo, step, n, sig)
        b = _crossing_profile(tb, eb, lo, step, n, sig)
        on = (a > 0.05) | (b > 0.05)
        return float(np.abs(a - b)[on].mean()) if on.any() else float("inf")


def _check_inputs(masks: Sequence[np.ndarray], views: Sequence[CArmView]) -> list[np.ndarray]:
    if len(masks) != 2 or len(views) != 2:
        raise ShapeError(f"a pairing check needs two masks and two views, got {len(masks)} and {len(views)}")
    out = []
    for k, (m, v) in enumerate(zip(masks, views)):
        m = np.asarray(m)
        if m.shape != v.shape:
            raise ShapeError(f"mask {k} has shape {m.shape} but its view has {v.shape}")
        out.append(m > 0)
    return out


def epipolar_mismatch(masks: Sequence[np.ndarray], views: Sequence[CArmView], *, sigma_px: float = 1.0,
                      config: CalibrationConfig = CalibrationConfig()) -> float:
    """Mean absolute difference of the two views' epipolar crossing profiles (module doc); inf when
    a mask has (almost) no vessel."""
    ms = _check_inputs(masks, views)
    prob = _Problem(ms, views, config)
    return prob.mismatch(views, None, sigma_px) if prob.usable else float("inf")


def _identity(views: Sequence[CArmView], reason: str) -> ViewCorrection:
    """No correction, with ``reason``; the axes are NaN when the two sources coincide."""
    with np.errstate(invalid="ignore", divide="ignore"):
        _, _, axes_t, base = _rigid(views, np.zeros(5))
    nan = float("nan")
    return ViewCorrection((0.0, 0.0, 0.0), (0.0, 0.0), tuple(map(tuple, axes_t)), tuple(base), views[1],
                          ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), 0.0, nan, nan, False, reason)


def _search(prob: _Problem) -> tuple[np.ndarray, float, float]:
    """Best parameters (5,), mismatch as given and corrected (at the finest sigma, without the tips)."""
    cfg = prob.config
    x = np.zeros(5)
    # The largest effect of a pose error is a turn of all epipolar planes about the baseline:
    # try it on a grid first, so the local search starts in the right basin.
    grid = np.arange(-cfg.max_rotation_deg, cfg.max_rotation_deg + 1e-9, 0.25)
    costs = [prob.cost(np.array([g, 0.0, 0.0, 0.0, 0.0]), cfg.grid_sigma_px, cfg.pull, cfg.tip_weight) for g in grid]
    x[0] = grid[int(np.argmin(costs))]
    for sigma, evaluations, tips in cfg.stages:
        res = optimize.minimize(lambda p: prob.cost(p, sigma, cfg.pull, cfg.tip_weight if tips else 0.0), x,
                                method="Powell", options={"xtol": 0.01, "ftol": 1e-5, "maxfev": int(evaluations)})
        if np.all(np.isfinite(res.x)):
            x = np.asarray(res.x, float)
    finest = cfg.stages[-1][0]
    return x, prob.cost(np.zeros(5), finest), prob.cost(x, finest)


def estimate_correction(masks: Sequence[np.ndarray], views: Sequence[CArmView],
                        config: CalibrationConfig = CalibrationConfig()) -> ViewCorrection:
    """The rigid correction of view B's pose that makes the two vessel masks epipolar-consistent.

    masks : two (H, W) vessel masks in the order of ``views`` (view A is the reference).
    Returns a :class:`ViewCorrection`; it is ``accepted`` only when it lowers the mismatch by
    ``config.min_gain`` and stays within the correction range (module doc).
    """
    ms = _check_inputs(masks, views)
    if np.linalg.norm(views[1].source_position - views[0].source_position) < 1e-6:
        return _identity(views, "the two views have the same X-ray source: no epipolar geometry")
    prob = _Problem(ms, views, config)
    if not prob.usable:
        return _identity(views, "a mask has too little vessel to check the geometry")
    return _correction(prob, config)


def _correction(prob: _Problem, config: CalibrationConfig) -> ViewCorrection:
    views = prob.views
    x, before, after = _search(prob)
    rot, shift, axes_t, base = _rigid(views, x)
    view, warp, rms = _corrected_view(views[1], rot, shift)
    found = dict(rotation_deg=tuple(float(v) for v in x[:3]), shift_mm=tuple(float(v) for v in x[3:]),
                 shift_axes=tuple(tuple(float(v) for v in a) for a in axes_t),
                 unobservable_direction=tuple(float(v) for v in base), view=view,
                 warp=tuple(tuple(float(v) for v in row) for row in warp), warp_residual_px=rms,
                 cost_before=before, cost_after=after,
                 tips_before=prob.tip_agreement(views, None, 1.0),
                 tips_after=prob.tip_agreement([views[0], view], warp, 1.0))
    gain = 0.0 if not before > 0 else 1.0 - after / before
    if not math.isfinite(before) or not math.isfinite(after):
        return ViewCorrection(accepted=False, reason="no epipolar crossings to compare", **found)
    if np.linalg.norm(x[:3]) > config.max_rotation_deg or np.linalg.norm(x[3:]) > config.max_shift_mm:
        return ViewCorrection(accepted=False, reason=f"the best correction is beyond {config.max_rotation_deg:g} deg"
                              f" / {config.max_shift_mm:g} mm", **found)
    if gain < config.min_gain or found["tips_after"] - found["tips_before"] < config.min_tip_gain:
        return ViewCorrection(accepted=False, reason=f"no small correction is clearly more consistent (mismatch "
                              f"{before:.3f} -> {after:.3f}, vessel ends {found['tips_before']:.2f} -> "
                              f"{found['tips_after']:.2f})", **found)
    return ViewCorrection(accepted=True, **found)


def _best(corr: ViewCorrection) -> tuple[float, float]:
    """(mismatch, vessel-end agreement) of a hypothesis: as given, or corrected where that is better."""
    if corr.accepted or (math.isfinite(corr.cost_after) and corr.cost_after < corr.cost_before
                         and corr.tips_after >= corr.tips_before):
        return float(corr.cost_after), float(corr.tips_after)
    return float(corr.cost_before), float(corr.tips_before)


def _mirror_detectable(views: Sequence[CArmView], min_px: float = 3.0) -> bool:
    """False when a left-right mirror of view B moves its pixels across the epipolar lines by less
    than ``min_px`` (RMS over the image): then every line keeps (nearly) its crossings and no
    epipolar test can tell the mirror. That happens when the lines run along the image rows and
    barely converge (two views with small cranial / caudal angles, not far apart)."""
    frame = epipolar_frame(views)
    vb = views[1]
    rr, cc = np.meshgrid(np.linspace(0, vb.rows - 1, 17), np.linspace(0, vb.columns - 1, 17), indexing="ij")
    pts = np.stack([rr.ravel(), cc.ravel()], axis=1)
    mirrored = pts * [1.0, -1.0] + [0.0, vb.columns - 1.0]
    d = epipolar_angles(vb, pts, frame) - epipolar_angles(vb, mirrored, frame)
    per_px = float(np.hypot(*angle_gradient(vb, frame)))
    if not np.isfinite(per_px) or per_px <= 0:
        return False
    return float(np.sqrt(np.mean(d ** 2))) / per_px >= min_px


def check_pairing(masks: Sequence[np.ndarray], views: Sequence[CArmView],
                  config: CalibrationConfig = CalibrationConfig()) -> PairingCheck:
    """Is this a possible view pair, does view B's geometry need a correction, and what is wrong if
    nothing fits (module doc)? ``masks``: two (H, W) vessel masks in the order of ``views``.

    View B mirrored left-right is tried (one more search) unless its epipolar lines run along its
    image rows, where a left-right mirror keeps every line and cannot be seen (``extra
    ["mirror_check"]`` says so); the two images exchanged only when the pair as given stays
    inconsistent. An alternative wins when its mismatch is below
    ``alternative_ratio`` times the pair's and its vessel ends agree better.
    """
    import time

    t0 = time.perf_counter()
    ms = _check_inputs(masks, views)
    corr = estimate_correction(ms, views, config)
    given, given_tips = _best(corr)
    mismatch = {"as given": given}
    if not math.isfinite(given):
        return PairingCheck("inconsistent", mismatch, corr, f"pairing not checked: {corr.reason}",
                            time.perf_counter() - t0)
    alternatives = {"B mirrored": [ms[0], ms[1][:, ::-1]]}
    if not corr.accepted and given > config.check_above and ms[0].shape == ms[1].shape:
        alternatives["views swapped"] = [ms[1], ms[0]]
    tips = {"as given": given_tips}
    extra: dict[str, Any] = {"vessel_end_agreement": tips}
    if not _mirror_detectable(views):
        # A left-right mirror maps each epipolar line of view B (nearly) onto itself when the
        # lines run along the image rows: no epipolar test can see it.
        del alternatives["B mirrored"]
        extra["mirror_check"] = ("not possible: view B's epipolar lines run along its image rows, so a "
                                 "left-right mirror keeps them")
    for name, alt_masks in alternatives.items():
        alt = estimate_correction(alt_masks, views, config)
        mismatch[name], tips[name] = _best(alt)
    wins = [k for k in alternatives if mismatch[k] < config.alternative_ratio * given and tips[k] > tips["as given"]]
    if wins:
        alt = min(wins, key=lambda k: mismatch[k])
        verdict = "mirrored" if alt == "B mirrored" else "swapped"
        what = ("view B's images look stored mirrored left-right (rerun with --mirror-b if so)"
                if verdict == "mirrored" else
                "the two runs' images look exchanged: view A's geometry fits view B's images "
                "(check which DICOM file is which view)")
        msg = f"impossible view pairing: {what}; epipolar mismatch {given:.2f} as given, {mismatch[alt]:.2f} {alt}"
        return PairingCheck(verdict, mismatch, corr, msg, time.perf_counter() - t0, extra)
    if corr.accepted:
        msg = (f"view B's geometry corrected by {corr.rotation_angle_deg:.1f} deg / {corr.shift_norm_mm:.1f} mm "
               f"(epipolar mismatch {corr.cost_before:.2f} -> {corr.cost_after:.2f}); a shift along the "
               f"baseline cannot be seen from two views, so the tree's position along it is uncertain")
        return PairingCheck("corrected", mismatch, corr, msg, time.perf_counter() - t0, extra)
    note = "; a mirrored view B cannot be detected in this pose pair" if "mirror_check" in extra else ""
    return PairingCheck("consistent", mismatch, corr,
                        f"no geometry error found (epipolar mismatch {given:.2f}, vessel ends agree "
                        f"{given_tips:.2f}){note}", time.perf_counter() - t0, extra)
