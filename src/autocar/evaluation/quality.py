"""Quality signals of a result that has no ground truth: is this a coronary tree that explains the images?

A reconstruction can be written, look like a tree and still be wrong: built
from the catheter and the image border, from a pre-contrast frame, from a view
pair with a wrong geometry. These signals are measured on every result and
every one that falls outside its range becomes a *flag* with the reason. A
flagged result is written (the user may want to look at it) but says so in
``reconstruction.json`` (``"quality"``), the report's banner and the command's
output; it is never to be mistaken for a good result.

Signals (on the reference frame; :func:`quality_signals`):

- ``coverage``: per view, the share of the mask's centre line (skeleton pixels)
  within ``coverage_tol_px`` of the projected tree centre line. A right tree
  explains the vessels it was made from (0.85-1.0 on the benchmark cases);
  a tree of ghosts and stray pieces leaves most of them unexplained.
- ``largest_piece_share``: length of the largest connected piece over the whole
  length, and ``pieces``: a coronary tree is one piece from its ostium.
- ``length_mm``: total centre-line length against the range of one coronary
  tree (``length_range_mm``).
- ``motion_max_mm`` (dynamic results): the largest node motion over the cycle;
  coronary arteries move 5-25 mm, more is a tracking failure.
- ``pairing``: the verdict of the epipolar pairing check
  (:func:`autocar.sbp.calibration.check_pairing`) when it ran.

Thresholds are in :class:`QualityConfig`. These signals cannot prove a result
right (ghosts project inside the masks too); they catch results that are
clearly wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph

__all__ = ["QualityConfig", "QualityReport", "quality_signals", "view_coverage"]


@dataclass(frozen=True)
class QualityConfig:
    """Ranges of :func:`quality_signals`; a signal outside its range is a flag.

    coverage_tol_px : a mask centre-line pixel is explained within this distance (px).
    min_coverage : least share of each view's vessel centre line the tree must explain.
    min_largest_piece_share : least share of the length in the largest piece.
    length_range_mm : total centre-line length of one coronary tree (a right tree can be 80 mm
        in a short run; a whole left tree of CT is 300-900 mm).
    max_motion_mm : largest node motion over the heart cycle.
    """

    coverage_tol_px: float = 3.0
    min_coverage: float = 0.6
    min_largest_piece_share: float = 0.6
    length_range_mm: tuple[float, float] = (60.0, 1500.0)
    max_motion_mm: float = 35.0


@dataclass(frozen=True)
class QualityReport:
    """signals : name -> value; flags : one sentence per signal out of range (empty when none)."""

    signals: dict[str, Any]
    flags: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        """The ``quality`` entry of a result."""
        return {"ok": self.ok, "flags": list(self.flags), "signals": self.signals}


def view_coverage(graph: CenterlineGraph, view: CArmView, mask: np.ndarray, tol_px: float = 3.0) -> float:
    """Share (0-1) of the skeleton pixels of ``mask`` (H, W) within ``tol_px`` of ``graph``'s centre line
    projected into ``view``; NaN when the mask has no vessel."""
    from skimage.morphology import skeletonize

    m = np.asarray(mask) > 0
    if m.shape != view.shape:
        raise ShapeError(f"mask shape {m.shape} does not match the view's {view.shape}")
    sk = np.argwhere(skeletonize(m)).astype(float)
    if len(sk) == 0:
        return float("nan")
    if graph.num_nodes == 0:
        return 0.0
    pts = graph.sample_segments(0.25)[0] if graph.num_edges else graph.nodes
    rc, _ = view.project(pts)
    rc = rc[np.all(np.isfinite(rc), axis=1)]
    if len(rc) == 0:
        return 0.0
    d, _ = cKDTree(rc).query(sk, distance_upper_bound=tol_px + 1e-9)
    return float(np.mean(d <= tol_px))


def _pieces(graph: CenterlineGraph) -> tuple[int, float]:
    """(number of connected pieces with an edge, share of the length in the largest)."""
    if graph.num_edges == 0:
        return 0, 0.0
    comp = graph.components()
    lengths = np.bincount(comp[graph.edges[:, 0]], weights=graph.edge_lengths(), minlength=int(comp.max()) + 1)
    total = float(lengths.sum())
    return int(np.count_nonzero(lengths > 0)), (float(lengths.max()) / total if total > 0 else 0.0)


def quality_signals(graph: CenterlineGraph, views: Sequence[CArmView], masks: Sequence[np.ndarray], *,
                    motion_max_mm: float | None = None, pairing: Mapping[str, Any] | None = None,
                    config: QualityConfig = QualityConfig()) -> QualityReport:
    """The quality signals and flags of one frame's tree (module doc).

    graph : the reference frame's centre-line graph (world mm).
    views, masks : the two views and that frame's (H, W) vessel masks the tree was made from.
    motion_max_mm : the result's largest node motion (dynamic results), if any.
    pairing : :meth:`PairingCheck.to_dict` of the pairing check, if it ran.
    """
    if len(views) != len(masks):
        raise ShapeError(f"{len(views)} views but {len(masks)} masks")
    names = ("A", "B")
    cov = {names[k]: view_coverage(graph, v, m, config.coverage_tol_px) for k, (v, m) in enumerate(zip(views, masks))}
    pieces, share = _pieces(graph)
    length = float(graph.total_length_mm)
    signals: dict[str, Any] = {"coverage": {k: round(v, 3) for k, v in cov.items()}, "pieces": pieces,
                               "largest_piece_share": round(share, 3), "length_mm": round(length, 1)}
    flags = []
    low = [f"{k} {v:.0%}" for k, v in cov.items() if np.isfinite(v) and v < config.min_coverage]
    if low:
        flags.append(f"the tree explains too little of the vessels seen ({', '.join(low)} of the vessel centre line "
                     f"within {config.coverage_tol_px:g} px; a right tree explains over {config.min_coverage:.0%})")
    if graph.num_edges and share < config.min_largest_piece_share:
        flags.append(f"the tree is broken into {pieces} pieces, the largest holding {share:.0%} of its length "
                     f"(a coronary tree is one piece from its ostium)")
    lo, hi = config.length_range_mm
    if not lo <= length <= hi:
        flags.append(f"{length:.0f} mm of centre line is outside the range of one coronary tree "
                     f"({lo:.0f}-{hi:.0f} mm)")
    if motion_max_mm is not None:
        signals["motion_max_mm"] = round(float(motion_max_mm), 2)
        if motion_max_mm > config.max_motion_mm:
            flags.append(f"nodes move up to {motion_max_mm:.0f} mm over the cycle (coronary arteries move "
                         f"under {config.max_motion_mm:.0f} mm): the motion tracking failed")
    if pairing is not None:
        signals["pairing"] = pairing.get("verdict")
        signals["epipolar_mismatch"] = pairing.get("mismatch", {}).get("as given")
        if pairing.get("verdict") in ("mirrored", "swapped", "inconsistent"):
            flags.append(str(pairing.get("message", "the view pairing check failed")))
    return QualityReport(signals, tuple(flags))
