"""Overlap and topology scores of 2D binary vessel masks.

- :func:`dice_2d`: ``2 |P & T| / (|P| + |T|)``.
- :func:`cl_dice_2d`: centre-line Dice (Shit et al., "clDice - a novel
  topology-preserving loss function for tubular structure segmentation",
  CVPR 2021): with ``S(.)`` the morphological skeleton
  (:func:`skimage.morphology.skeletonize`), topology precision
  ``Tprec = |S(P) & T| / |S(P)|`` and sensitivity
  ``Tsens = |S(T) & P| / |S(T)|``, clDice is their harmonic mean.

(:func:`autocar.evaluation.metrics.cl_dice` is the 3D version on centre-line graphs;
these work on (H, W) pixel masks.)
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize

from autocar.errors import ShapeError

__all__ = ["cl_dice_2d", "dice_2d"]


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred).astype(bool)
    t = np.asarray(truth).astype(bool)
    if p.ndim != 2 or p.shape != t.shape:
        raise ShapeError(f"pred and truth must be 2D masks of the same shape, got {p.shape} and {t.shape}")
    return p, t


def dice_2d(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two (H, W) masks; 1.0 when both are empty."""
    p, t = _pair(pred, truth)
    total = int(p.sum()) + int(t.sum())
    return 2.0 * float(np.logical_and(p, t).sum()) / total if total else 1.0


def cl_dice_2d(pred: np.ndarray, truth: np.ndarray) -> float:
    """Centre-line Dice of two (H, W) masks, in [0, 1].

    Both empty gives 1.0; exactly one empty gives 0.0.
    """
    p, t = _pair(pred, truth)
    if not p.any() and not t.any():
        return 1.0
    if not p.any() or not t.any():
        return 0.0
    sp = skeletonize(p)
    st = skeletonize(t)
    tprec = float(np.logical_and(sp, t).sum()) / max(int(sp.sum()), 1)
    tsens = float(np.logical_and(st, p).sum()) / max(int(st.sum()), 1)
    return 2.0 * tprec * tsens / (tprec + tsens) if tprec + tsens > 0 else 0.0
