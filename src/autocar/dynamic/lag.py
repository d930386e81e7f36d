"""Lag compensation: view B's frames synthesised at view A's exact cardiac phase.

The two cine runs of a case are acquired one after the other, so after the
phase pairing (:func:`autocar.dynamic.phase.pair_frames`) each frame pair is
still up to half a frame apart in the cycle (at 15 fps and 75 bpm one frame is
8 % of the cycle). The heart moves up to several mm in that time, and a pair
whose views see the tree at two different phases reconstructs a tree that is
at neither: depth errors, broken vessels, ghosts.

:func:`interpolate_frame` makes the frame between two consecutive frames of
one view by motion-compensated interpolation with dense optical flow
(OpenCV DIS, :func:`autocar.dynamic.flow.dense_flow`). With the forward flow
``F`` (frame j -> j+1, pixels), the backward flow ``G`` (j+1 -> j) and the
fraction ``f`` in [0, 1], pixel p of the frame at j + f is read from frame j
at ``p - f F(p)`` and from frame j+1 at ``p - (1 - f) G(p)``, and the two are
blended with weights ``1 - f`` and ``f``. This assumes linear motion between
the two frames and lets the flow at p stand in for the flow at the source
pixel, which holds where the motion is smooth over the displacement. Masks
are blended as 0/1 and cut at 0.5; grey images keep their values. Mode
"nearest" warps only the closer of the two frames (frame j by ``-f F`` when
f <= 0.5, else frame j+1 by ``-(1 - f) G``): no blend, so a thin vessel that
the flow misplaces in one of the frames is not cut at the threshold.

:func:`compensate_lag` does it for every frame of A: it finds the two
consecutive frames of B whose phases bracket A's phase (on the unwrapped
phase of B's run, so any heartbeat of B can serve, and the pair closest in
phase wins), interpolates, and reports the residual lag left (0 where a
bracket was found, else the nearest frame's lag: the start or end of a run
that covers less than a cycle).

Shapes: frames (T, H, W); phases in [0, 1), fractions of the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from autocar.dynamic.flow import dense_flow
from autocar.dynamic.phase import circular_difference
from autocar.errors import ShapeError

__all__ = ["LagCompensation", "interpolate_frame", "compensate_lag"]


def _remap(image: np.ndarray, flow_rc: np.ndarray, scale: float) -> np.ndarray:
    """``image`` sampled at ``p + scale * flow_rc[p]`` (bilinear, edges clamped), float32."""
    import cv2

    h, w = image.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    map_r = rows + np.float32(scale) * flow_rc[..., 0].astype(np.float32)
    map_c = cols + np.float32(scale) * flow_rc[..., 1].astype(np.float32)
    return cv2.remap(image.astype(np.float32), map_c, map_r, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def interpolate_frame(first: Any, second: Any, fraction: float, *, is_mask: bool | None = None,
                      mode: str = "blend") -> np.ndarray:
    """The (H, W) frame at ``fraction`` of the way from ``first`` to ``second`` (module doc).

    ``fraction`` 0 returns ``first``, 1 ``second`` (as given: bool for masks).
    ``mode``: "blend" (both frames, weighted) or "nearest" (the closer frame only).
    Masks (bool, or two values; ``is_mask`` forces it) come back as bool,
    grey images as float32.
    """
    a = np.asarray(first)
    b = np.asarray(second)
    if a.ndim != 2 or a.shape != b.shape:
        raise ShapeError(f"frames must be two (H, W) images of one shape, got {a.shape} and {b.shape}")
    f = float(fraction)
    if not (np.isfinite(f) and 0.0 <= f <= 1.0):
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if is_mask is None:
        is_mask = a.dtype == bool or (np.unique(a).size <= 2 and np.unique(b).size <= 2)
    if is_mask:
        a = a > 0
        b = b > 0
    if f == 0.0:
        return a.copy() if is_mask else a.astype(np.float32)
    if f == 1.0:
        return b.copy() if is_mask else b.astype(np.float32)
    if mode not in ("blend", "nearest"):
        raise ValueError(f"mode must be 'blend' or 'nearest', got {mode!r}")
    if mode == "nearest":
        if f <= 0.5:
            out = _remap(a.astype(np.float32), dense_flow(a, b, is_mask=is_mask), -f)
        else:
            out = _remap(b.astype(np.float32), dense_flow(b, a, is_mask=is_mask), -(1.0 - f))
        return out >= 0.5 if is_mask else out
    forward = dense_flow(a, b, is_mask=is_mask)
    backward = dense_flow(b, a, is_mask=is_mask)
    from_a = _remap(a.astype(np.float32), forward, -f)
    from_b = _remap(b.astype(np.float32), backward, -(1.0 - f))
    out = (1.0 - f) * from_a + f * from_b
    return out >= 0.5 if is_mask else out


@dataclass(frozen=True)
class LagCompensation:
    """View B's frames at view A's phases.

    frames : (K, H, W) B frames, one per A frame asked for (bool for masks).
    source : (K, 2) int, the two B frames each was made from (equal: taken as is).
    fraction : (K,) how far between them, 0-1.
    residual_lag : (K,) phase lag left (fraction of the cycle; 0 when bracketed).
    """

    frames: np.ndarray
    source: np.ndarray
    fraction: np.ndarray
    residual_lag: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of what was interpolated."""
        return {"source_frames_b": self.source.tolist(),
                "fraction": [round(float(x), 4) for x in self.fraction],
                "residual_lag_fraction": [round(float(x), 4) for x in self.residual_lag]}


def compensate_lag(frames_b: Any, phase_b: Any, phase_a: Any, *, max_span: float = 0.2,
                   is_mask: bool | None = None, mode: str = "blend") -> LagCompensation:
    """Synthesise view B at each of view A's phases from B's neighbouring frames (module doc).

    Parameters
    ----------
    frames_b : (S, H, W) B frames in acquisition order.
    phase_b : (S,) B's cardiac phases, in [0, 1].
    phase_a : (K,) the phases wanted (A's frames).
    max_span : two consecutive B frames are used only when their phases are at
        most this far apart (a larger step is a gap or a phase jump).
    is_mask : see :func:`interpolate_frame`.
    """
    fb = np.asarray(frames_b)
    pb = np.asarray(phase_b, dtype=np.float64).reshape(-1)
    pa = np.asarray(phase_a, dtype=np.float64).reshape(-1)
    if fb.ndim != 3 or fb.shape[0] != pb.size:
        raise ShapeError(f"frames_b must be (S, H, W) with one phase per frame, got {fb.shape} and {pb.size} phases")
    if pb.size == 0 or pa.size == 0:
        raise ShapeError("compensate_lag needs at least one frame of each view")
    if not (np.all(np.isfinite(pb)) and np.all(np.isfinite(pa))):
        raise ValueError("phases must be finite")
    step = np.mod(np.diff(pb), 1.0)  # phase advance between consecutive B frames
    usable = (step > 0) & (step <= max_span)
    out, source, frac, residual = [], [], [], []
    for phase in pa:
        best = None
        for j in np.flatnonzero(usable):
            ahead = float(np.mod(phase - pb[j], 1.0))  # A's phase is this far after frame j
            if ahead <= step[j] + 1e-9 and (best is None or step[j] < best[2]):
                best = (int(j), ahead / step[j], float(step[j]))
        if best is None:
            lags = circular_difference(phase, pb)
            j = int(np.argmin(np.abs(lags)))
            out.append(fb[j] > 0 if (is_mask or fb.dtype == bool) else fb[j].astype(np.float32))
            source.append((j, j))
            frac.append(0.0)
            residual.append(float(lags[j]))
            continue
        j, f, _ = best
        out.append(interpolate_frame(fb[j], fb[j + 1], min(max(f, 0.0), 1.0), is_mask=is_mask, mode=mode))
        source.append((j, j + 1))
        frac.append(f)
        residual.append(0.0)
    return LagCompensation(np.stack(out), np.asarray(source, np.int64), np.asarray(frac), np.asarray(residual))
