"""Score a reconstruction against 3D ground truth and/or against its input masks.

``evaluate_reconstruction(rec, truth=..., case=...)`` returns a JSON-ready
report: per frame the centre-line scores (:func:`autocar.evaluation.metrics.centerline_scores`)
clDice and voxel Dice (0.5 mm grid) against the true tree of that frame, and per view the
reprojection Dice/precision/recall of the predicted tubes against the
input mask (useful on real cases, which have no 3D truth; a view the epipolar
alignment warped, ``view_warp_px`` in the frame, is scored against its warped
mask, the one the reconstruction was made from); plus the mean of every score
over frames. Frames are matched by index (frame k of the result
with frame k of the truth and with frame k of every view).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autocar.errors import CaseFormatError
from autocar.io.case import Case
from autocar.io.results import Reconstruction
from autocar.evaluation.metrics import centerline_scores, cl_dice, reprojection_scores, voxel_dice
from autocar.sbp.epipolar import frame_view_warps, warp_mask

__all__ = ["evaluate_reconstruction", "summarise"]


def summarise(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Mean over frames of every numeric score present in all frames (NaN-free)."""
    if not per_frame:
        return {}
    keys = set(per_frame[0])
    for f in per_frame[1:]:
        keys &= set(f)
    out = {}
    for k in sorted(keys):
        vals = np.array([f[k] for f in per_frame], dtype=float)
        vals = vals[np.isfinite(vals)]
        if len(vals):
            out[k] = float(vals.mean())
    return out


def evaluate_reconstruction(
    rec: Reconstruction, *, truth: Reconstruction | None = None, case: Case | None = None
) -> dict[str, Any]:
    """Scores of ``rec`` against ``truth`` (3D) and/or ``case`` masks (2D reprojection).

    Raises CaseFormatError when the frame counts disagree or when neither
    truth nor case is given.
    """
    if truth is None and case is None:
        raise CaseFormatError("nothing to evaluate against: give a ground truth, a case with masks, or both")
    n = len(rec.frames)
    if truth is not None and len(truth.frames) != n:
        raise CaseFormatError(f"the result has {n} frames but the ground truth has {len(truth.frames)}")
    views = []
    if case is not None:
        for cv in case.views:
            if cv.kind != "mask":
                continue
            if cv.frames.shape[0] < n:
                raise CaseFormatError(
                    f"{case.path}: view {cv.name} has {cv.frames.shape[0]} frames, the result has {n}"
                )
            views.append(cv)
        if not views and truth is None:
            raise CaseFormatError(f"{case.path}: no view holds vessel masks, nothing to reproject against")
    frames: list[dict[str, float]] = []
    for k, pred in enumerate(rec.frames):
        scores: dict[str, float] = {"nodes": float(pred.num_nodes), "length_mm": float(pred.total_length_mm)}
        if truth is not None:
            gt = truth.frames[k]
            if pred.num_nodes == 0:
                scores.update({"precision_1mm": 0.0, "recall_1mm": 0.0, "f1_1mm": 0.0, "precision_2mm": 0.0,
                               "recall_2mm": 0.0, "f1_2mm": 0.0, "cl_dice": 0.0, "voxel_dice": 0.0})
            else:
                scores.update(centerline_scores(pred, gt).to_dict())
                scores["cl_dice"] = float(cl_dice(pred, gt))
                scores["voxel_dice"] = float(voxel_dice(pred, gt))
        warps = frame_view_warps(rec.frame_extra[k] if rec.frame_extra else None, k)
        for cv in views:
            mask = cv.frames[k]
            if cv.name in warps:  # the mask the reconstruction was made from (epipolar alignment)
                mask = warp_mask(mask, warps[cv.name])
            r = reprojection_scores(pred, cv.view, mask) if pred.num_nodes else {
                "dice": 0.0, "precision": 0.0, "recall": 0.0}
            scores.update({f"reprojection_{cv.name}_{key}": float(v) for key, v in r.items()})
        frames.append(scores)
    return {"frames": frames, "mean": summarise(frames)}
