"""Epipolar alignment of a weakly synchronised view pair: warp view B's mask until both views agree.

Two views of one 3D tree obey the epipolar constraint: every plane through
both X-ray sources (an *epipolar plane*) cuts the same vessels in 3D, so its
line in view A crosses as many vessels as its line in view B (apart from
overlaps). View B is recorded seconds after view A, at another point of the
breathing cycle and a slightly different cardiac phase, so its vessels are
displaced; the part of that displacement across the epipolar lines breaks
the constraint: the hull (:mod:`autocar.sbp.carve`) then loses real vessel
and keeps ghosts. The part along the lines only moves the reconstruction in
depth and cannot be seen from two views.

:func:`estimate_alignment` counts the vessel crossings of every epipolar line
in both masks (lines 0.5 px apart in the denser view; a crossing is a run of
vessel pixels along the line) and searches the warp of view B across its
lines, an offset plus a stretch (u -> u + offset + scale * u, u the
across-line pixel coordinate from the image centre; breathing drift plus
heart contraction between the two phases), whose count profile differs
least from view A's (mean absolute difference over the lines that cross a
vessel; a parabola refines the offset below one line). On C-arm pairs the
lines are nearly parallel over the image, so the warp is an affine map of
the image along one direction (:attr:`EpipolarAlignment.matrix`).

It is used only when it lowers the profile difference by at least
``min_gain`` (relative), its offset is at most ``max_shift_px`` and its
stretch is not at the end of the range tried: a flat or shallow minimum
(many overlaps, few vessels) gives no reliable warp. These gates were set on
weakly synchronised tuning pairs (seeds 1,500,000+, 1,800,000+, 1,900,000+),
where they rejected the three warps that moved B the wrong way and every
one of 24 synchronised pairs.

Measured by ``python benchmarks/bench_align.py`` on 20 held-out weakly
synchronised pairs: 18 warped, the RMS across-line drift of view B's tree
falls from 2.23 to 0.84 px (warped pairs 2.10 -> 0.56 px); 1 of 20
synchronised pairs is warped (0.39 px RMS left). About 0.1 s per pair.

Units: pixels in the images, radians for epipolar plane angles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry import CArmView

__all__ = ["AlignConfig", "EpipolarAlignment", "EpipolarFrame", "angle_gradient", "apply_view_warp",
           "crossing_counts", "epipolar_angles", "epipolar_frame", "estimate_alignment", "frame_view_warps",
           "unapply_view_warp", "warp_image", "warp_mask", "warp_record"]


@dataclass(frozen=True)
class AlignConfig:
    """Options of :func:`estimate_alignment`.

    line_spacing_px : spacing of the epipolar lines in the view where they are densest (px).
    sample_px : sampling step along each line (px).
    max_shift_px : larger offsets at the image centre are rejected (px).
    max_scale, scale_step : the across-line stretches tried (dimensionless): 0 and
        multiples of ``scale_step`` up to ``max_scale`` either way (0 = offsets only);
        a best stretch at either end of that range is rejected.
    min_gain : the best warp must lower the mean profile difference by this fraction.
    """

    line_spacing_px: float = 0.5
    sample_px: float = 0.5
    max_shift_px: float = 10.0
    max_scale: float = 0.035
    scale_step: float = 0.005
    min_gain: float = 0.04


@dataclass(frozen=True)
class EpipolarFrame:
    """The baseline of a view pair and two unit vectors across it (world, mm-free directions).

    The angle of an epipolar plane is the angle of its direction perpendicular to the
    baseline in the (e1, e2) basis (radians).
    """

    baseline: np.ndarray
    e1: np.ndarray
    e2: np.ndarray


@dataclass(frozen=True)
class EpipolarAlignment:
    """What :func:`estimate_alignment` found: a warp of view B across its epipolar lines.

    View B's content at across-line coordinate u (px from the image centre along
    ``across``, the direction in which the epipolar angle grows) belongs at u' with
    u = u' + offset_px + scale * u'. :meth:`warp` resamples view B's mask so, and
    :attr:`matrix` maps a pixel (row, col) of the warped image to the original image.

    offset_px : across-line offset at the image centre (px).
    scale : across-line stretch (dimensionless; heart contraction between the views).
    across : unit (row, col) direction across view B's epipolar lines at its centre.
    centre_rc : view B's image centre (row, col).
    cost_before, cost_after : mean |count_A - count_B| over the lines that cross a
        vessel in either view, without and with the best warp.
    accepted : whether the warp is used (otherwise it is the identity).
    reason : why not, when not.
    """

    offset_px: float
    scale: float
    across: tuple[float, float]
    centre_rc: tuple[float, float]
    cost_before: float
    cost_after: float
    accepted: bool
    reason: str = ""

    @classmethod
    def identity(cls, reason: str) -> "EpipolarAlignment":
        return cls(0.0, 0.0, (1.0, 0.0), (0.0, 0.0), 0.0, 0.0, False, reason)

    @property
    def gain(self) -> float:
        """Relative decrease of the profile difference with the best warp."""
        return (self.cost_before - self.cost_after) / self.cost_before if self.cost_before > 0 else 0.0

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3): original pixel = M[:, :2] @ warped pixel + M[:, 2] (row, col); identity if not accepted."""
        out = np.eye(2, 3)
        if not self.accepted:
            return out
        a = np.asarray(self.across, float)
        c = np.asarray(self.centre_rc, float)
        out[:, :2] += self.scale * np.outer(a, a)
        out[:, 2] = a * (self.offset_px - self.scale * float(a @ c))
        return out

    def warp(self, mask: np.ndarray) -> np.ndarray:
        """View B's (H, W) mask resampled into agreement with view A (bilinear, threshold 0.5)."""
        if not self.accepted:
            return np.asarray(mask) > 0
        return warp_mask(mask, self.matrix)


def _warp_matrix(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    m = np.asarray(matrix, float)
    if m.shape != (2, 3):
        raise ShapeError(f"a view warp is a (2, 3) matrix, got shape {m.shape}")
    return m


def warp_image(image: np.ndarray, matrix: Sequence[Sequence[float]], *, mode: str = "nearest") -> np.ndarray:
    """A (H, W) image resampled through a view warp (2, 3): output pixel q takes the image at M q + t
    (bilinear; beyond the image ``mode`` of :func:`scipy.ndimage.affine_transform`), float32."""
    m = _warp_matrix(matrix)
    return ndimage.affine_transform(np.asarray(image, np.float32), m[:, :2], offset=m[:, 2], order=1, mode=mode)


def warp_mask(mask: np.ndarray, matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """A (H, W) mask resampled through a view warp (2, 3) (:attr:`EpipolarAlignment.matrix`,
    the ``view_warp_px`` of a result): output pixel q takes the mask at M q + t (bilinear,
    threshold 0.5, zeros beyond the image)."""
    return warp_image(np.asarray(mask) > 0, matrix, mode="constant") > 0.5


def apply_view_warp(rc: np.ndarray, matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Pixels (..., 2) of a warped view mapped to its original image with an :attr:`EpipolarAlignment.matrix`."""
    m = _warp_matrix(matrix)
    return np.asarray(rc, float) @ m[:, :2].T + m[:, 2]


def unapply_view_warp(rc: np.ndarray, matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Inverse of :func:`apply_view_warp`: pixels (..., 2) of the original image mapped into the warped one."""
    m = _warp_matrix(matrix)
    return (np.asarray(rc, float) - m[:, 2]) @ np.linalg.inv(m[:, :2]).T


def warp_record(view_name: str, matrix: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The ``view_warp_px`` entry of a result frame for one warped view (matrix rounded to 1e-6)."""
    return {"view_warp_px": {view_name: [[round(float(x), 6) for x in row] for row in _warp_matrix(matrix)]}}


def frame_view_warps(frame_extra: Mapping[str, Any] | None, k: int) -> dict[str, np.ndarray]:
    """View name -> (2, 3) warp from the ``view_warp_px`` of result frame ``k`` (``frame_extra``: that
    frame's extra keys, or None); CaseFormatError when one is not a (2, 3) matrix."""
    warps = (frame_extra or {}).get("view_warp_px") or {}
    if not isinstance(warps, Mapping):
        raise CaseFormatError(f"frame {k}: view_warp_px must map view names to (2, 3) matrices, got {warps!r}")
    out = {}
    for name, matrix in warps.items():
        try:
            out[name] = _warp_matrix(matrix)
        except (ShapeError, TypeError, ValueError) as exc:
            raise CaseFormatError(f"frame {k}: view_warp_px of view {name}: {exc}") from exc
    return out


def epipolar_frame(views: Sequence[CArmView]) -> EpipolarFrame:
    """The :class:`EpipolarFrame` of two views (their sources must differ)."""
    if len(views) != 2:
        raise ShapeError(f"epipolar alignment needs exactly two views, got {len(views)}")
    base = views[1].source_position - views[0].source_position
    norm = float(np.linalg.norm(base))
    if norm < 1e-6:
        raise ShapeError("the two views have the same X-ray source position: no epipolar geometry")
    b = base / norm
    # Angle 0 is the plane through view A's central ray, so the angles of both images stay far
    # from the +-pi cut (a fixed helper axis put that cut inside the images of some pose pairs,
    # e.g. two near-horizontal views, and made every epipolar line span the whole image).
    e1 = views[0].detector_direction - (views[0].detector_direction @ b) * b
    if np.linalg.norm(e1) < 1e-6:
        helper = np.array([0.0, 0.0, 1.0]) if abs(b[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        e1 = np.cross(b, helper)
    e1 /= np.linalg.norm(e1)
    return EpipolarFrame(b, e1, np.cross(b, e1))


def epipolar_angles(view: CArmView, rc: np.ndarray, frame: EpipolarFrame) -> np.ndarray:
    """Angle (radians, (...)) of the epipolar plane through each pixel (..., 2) (row, col) of ``view``.

    A 3D point has the same angle in both views (its plane holds both sources and it).
    """
    _, d = view.pixel_rays(rc)
    w = d - (d @ frame.baseline)[..., None] * frame.baseline
    return np.arctan2(w @ frame.e2, w @ frame.e1)


def _centre(view: CArmView) -> np.ndarray:
    """(row, col) of the image centre (px)."""
    return np.array([(view.rows - 1) / 2.0, (view.columns - 1) / 2.0])


def angle_gradient(view: CArmView, frame: EpipolarFrame) -> np.ndarray:
    """(2,) d(angle)/d(row, col) at the image centre (radians per px)."""
    c = _centre(view)
    t = epipolar_angles(view, np.stack([c, c + [1.0, 0.0], c + [0.0, 1.0]]), frame)
    return np.array([t[1] - t[0], t[2] - t[0]])


def _line_points(view: CArmView, angles: np.ndarray, frame: EpipolarFrame, step_px: float):
    """Rows and cols (K, S) of samples ``step_px`` apart along the epipolar line of each angle."""
    u, v, d = view.axes
    w = np.cos(angles)[:, None] * frame.e1 + np.sin(angles)[:, None] * frame.e2
    n = np.cross(frame.baseline, w)  # plane normals (K, 3)
    # Pixel (r, c) lies on the plane iff n . (SID d + x u + y v) = 0 with x, y detector mm.
    a = (n @ u) * view.spacing_mm[1]
    b = (n @ v) * view.spacing_mm[0]
    c0 = view.sid_mm * (n @ d)
    nn = np.maximum(np.hypot(a, b), 1e-12)
    half = 0.5 * float(np.hypot(view.rows, view.columns))
    s = np.arange(-half, half + step_px, step_px)
    pr, pc = -c0 * b / nn**2, -c0 * a / nn**2  # foot of the line from the image centre
    dr, dc = a / nn, -b / nn
    c = _centre(view)
    rows = c[0] + pr[:, None] + s * dr[:, None]
    cols = c[1] + pc[:, None] + s * dc[:, None]
    return rows, cols


def crossing_counts(mask: np.ndarray, view: CArmView, angles: np.ndarray, frame: EpipolarFrame,
                    step_px: float = 0.5) -> np.ndarray:
    """(K,) number of vessel runs each epipolar line (one per angle) crosses in ``mask`` (H, W)."""
    rows, cols = _line_points(view, np.asarray(angles, float), frame, step_px)
    ri, ci = np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64)
    inside = (ri >= 0) & (ri < mask.shape[0]) & (ci >= 0) & (ci < mask.shape[1])
    on = np.zeros(rows.shape, bool)
    on[inside] = mask[ri[inside], ci[inside]]
    return on[:, 0].astype(np.int64) + np.count_nonzero(on[:, 1:] & ~on[:, :-1], axis=1)


def _warp_costs(ca: np.ndarray, cb: np.ndarray, offsets: np.ndarray, slopes: np.ndarray,
                centre: float) -> np.ndarray:
    """cost[s, k]: mean |ca[i] - cb[i + offsets[k] + slopes[s] (i - centre)]| over the lines
    where either profile crosses a vessel (cb interpolated linearly, 0 beyond its ends)."""
    i = np.arange(len(ca), dtype=float)
    grid = np.arange(len(cb), dtype=float)
    cbf = cb.astype(float)
    out = np.empty((len(slopes), len(offsets)))
    for si, slope in enumerate(slopes):
        j = i[None, :] + offsets[:, None] + slope * (i - centre)[None, :]
        b = np.interp(j, grid, cbf, left=0.0, right=0.0)
        on = (ca[None, :] > 0) | (b > 0.5)
        out[si] = (np.abs(ca[None, :] - b) * on).sum(axis=1) / np.maximum(on.sum(axis=1), 1)
    return out


def estimate_alignment(masks: Sequence[np.ndarray], views: Sequence[CArmView],
                       config: AlignConfig = AlignConfig()) -> EpipolarAlignment:
    """The warp of view B's mask that makes the pair epipolar-consistent (module doc).

    masks : two (H, W) vessel masks, in the order of ``views``.
    Returns an :class:`EpipolarAlignment`; :meth:`EpipolarAlignment.warp` applies it to
    ``masks[1]``.
    """
    if len(masks) != 2 or len(views) != 2:
        raise ShapeError(f"epipolar alignment needs two masks and two views, got {len(masks)} and {len(views)}")
    ms = [np.asarray(m) > 0 for m in masks]
    for k, (m, v) in enumerate(zip(ms, views)):
        if m.shape != v.shape:
            raise ShapeError(f"mask {k} has shape {m.shape} but its view has {v.shape}")
    if not (ms[0].any() and ms[1].any()):
        return EpipolarAlignment.identity("an empty mask")
    frame = epipolar_frame(views)
    grads = [angle_gradient(v, frame) for v in views]
    per_px = [float(np.linalg.norm(g)) for g in grads]
    if min(per_px) <= 0 or not np.all(np.isfinite(per_px)):
        return EpipolarAlignment.identity("degenerate epipolar geometry")
    step = min(per_px) * config.line_spacing_px  # radians between lines
    lo, hi = np.inf, -np.inf
    for v in views:
        corners = np.array([[0, 0], [0, v.columns - 1], [v.rows - 1, 0], [v.rows - 1, v.columns - 1]], float)
        t = epipolar_angles(v, corners, frame)
        lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
    angles = np.arange(lo, hi + step, step)
    ca = crossing_counts(ms[0], views[0], angles, frame, config.sample_px)
    cb = crossing_counts(ms[1], views[1], angles, frame, config.sample_px)
    vb = views[1]
    centre_rc = _centre(vb)
    centre = (float(epipolar_angles(vb, centre_rc[None], frame)[0]) - lo) / step  # line index of B's centre
    px_per_line = step / per_px[1]
    max_offset = int(np.ceil(config.max_shift_px / px_per_line)) + 2
    offsets = np.arange(-max_offset, max_offset + 1, dtype=float)
    n_slopes = int(round(config.max_scale / config.scale_step)) if config.max_scale > 0 else 0
    slopes = config.scale_step * np.arange(-n_slopes, n_slopes + 1, dtype=float)
    costs = _warp_costs(ca, cb, offsets, slopes, centre)
    si, ki = np.unravel_index(int(np.argmin(costs)), costs.shape)
    before, after = float(costs[n_slopes, max_offset]), float(costs[si, ki])
    sub = 0.0  # parabola through the best offset and its neighbours: sub-line offset
    if 0 < ki < len(offsets) - 1:
        cm, c0, cp = costs[si, ki - 1], costs[si, ki], costs[si, ki + 1]
        if cm - 2 * c0 + cp > 0:
            sub = float(np.clip(0.5 * (cm - cp) / (cm - 2 * c0 + cp), -0.5, 0.5))
    offset_px, scale = float((offsets[ki] + sub) * px_per_line), float(slopes[si])
    across = grads[1] / per_px[1]
    found = dict(offset_px=round(offset_px, 3), scale=round(scale, 4), across=(float(across[0]), float(across[1])),
                 centre_rc=(float(centre_rc[0]), float(centre_rc[1])), cost_before=before, cost_after=after)
    if not np.isfinite(before) or before <= 0 or (ki == max_offset and si == n_slopes):
        return EpipolarAlignment(accepted=False, reason="already consistent", **found)
    if (before - after) / before < config.min_gain:
        return EpipolarAlignment(accepted=False, reason="no clear best warp", **found)
    if abs(offset_px) > config.max_shift_px:
        return EpipolarAlignment(accepted=False, reason=f"offset beyond {config.max_shift_px} px", **found)
    if n_slopes and abs(si - n_slopes) == n_slopes:
        # A best stretch at the end of the range tried is a sign of a spurious fit.
        return EpipolarAlignment(accepted=False, reason=f"stretch at the limit of +-{config.max_scale}", **found)
    return EpipolarAlignment(accepted=True, **found)

