"""Classical baseline: multiscale Frangi vesselness + hysteresis thresholding.

Frangi et al., "Multiscale vessel enhancement filtering", MICCAI 1998
(:func:`skimage.filters.frangi` with ``black_ridges=True``: contrast-filled
vessels are dark on a brighter background). Steps of :func:`frangi_segment`:

1. robust normalisation (:func:`autocar.seg2d.image.normalise_image`);
2. vesselness over ``sigmas`` (px), divided by its 95th percentile in the
   image (about the vessel fraction of a coronary angiogram: 4-8 %), so the
   thresholds do not depend on contrast or window;
3. zero vesselness outside the collimated field and ``field_margin_px``
   around it (:func:`autocar.seg2d.field.field_of_view`): the sharp edge of the collimator or
   of the shutters otherwise looks like a ridge;
4. hysteresis thresholding (:func:`skimage.filters.apply_hysteresis_threshold`,
   ``low`` and ``high`` in units of that percentile);
5. removal of 8-connected components smaller than ``min_size_px``.

Tuned values (:data:`DEFAULT_PARAMS`): a grid search by
:func:`tune_frangi` over ``sigmas`` in {(1..6), (1.5..6), (2..6), (2..8)} px,
``high`` in {1, 1.5, 2, 2.5, 3, 4}, ``low / high`` in {0.1, 0.15, 0.2,
0.3, 0.5}, ``min_size_px`` in {0, 100, 200, 400, 800, 1200, 1600} and
``field_margin_px`` in {6, 10}, maximising the mean Dice on the 40 images
of the DCA1 TRAINING half (Angios_40_training, Cervantes-Sanchez et al.,
Appl. Sci. 2019) only, gave ``sigmas = (2, 3, 4, 5, 6)``, ``gamma = 0.02``,
``high = 2.0``, ``low = 0.3``, ``min_size_px = 800``,
``field_margin_px = 6``: mean Dice 0.715 on that training half (0.675
with sigmas from 1.5 px, 0.604 from 1 px: small scales mostly answer to
noise; 0.656 with the tuned sigmas but no field-of-view mask, which leaves
the collimator edge in the mask).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np
from skimage.filters import apply_hysteresis_threshold, frangi

from autocar.errors import ShapeError
from autocar.seg2d.field import field_of_view
from autocar.seg2d.image import normalise_image
from autocar.seg2d.scores import dice_2d

__all__ = ["DEFAULT_PARAMS", "FrangiParams", "frangi_segment", "tune_frangi", "vesselness"]


@dataclass(frozen=True)
class FrangiParams:
    """Parameters of :func:`frangi_segment`.

    Attributes
    ----------
    sigmas : Gaussian scales of the Hessian, px (vessel radius ~ sigma).
    beta : Frangi's blob-versus-line sensitivity.
    gamma : Frangi's structureness sensitivity (on the normalised image).
    high, low : hysteresis thresholds in units of the image's 95th
        percentile of vesselness (``low <= high``).
    min_size_px : smallest kept 8-connected component, px.
    field_margin_px : vesselness is zeroed this far around the area
        outside the collimated field, px.
    """

    sigmas: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0)
    beta: float = 0.5
    gamma: float = 0.02
    high: float = 2.0
    low: float = 0.3
    min_size_px: int = 800
    field_margin_px: int = 6

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_PARAMS = FrangiParams()


def vesselness(image: np.ndarray, params: FrangiParams = DEFAULT_PARAMS) -> np.ndarray:
    """Frangi vesselness of dark vessels, scaled by its 95th percentile, (H, W) float64.

    Zero outside the field of view (:func:`autocar.seg2d.field.field_of_view`).
    """
    norm = normalise_image(image)
    v = frangi(norm, sigmas=params.sigmas, beta=params.beta, gamma=params.gamma, black_ridges=True)
    v[~field_of_view(norm, margin_px=params.field_margin_px)] = 0.0
    scale = float(np.percentile(v, 95))
    if scale <= 0:
        scale = float(v.max()) if v.max() > 0 else 1.0
    return v / scale


def _threshold(v: np.ndarray, params: FrangiParams) -> np.ndarray:
    mask = apply_hysteresis_threshold(v, params.low, params.high)
    if params.min_size_px > 0 and mask.any():
        _, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= params.min_size_px
        keep[0] = False
        mask = keep[lab]
    return mask


def frangi_segment(image: np.ndarray, params: FrangiParams = DEFAULT_PARAMS) -> np.ndarray:
    """Vessel mask of a grey-level angiogram by tuned Frangi filtering.

    Parameters
    ----------
    image : (H, W) array of uint8, uint16 or float
        Vessels dark on a brighter background, any window.
    params : FrangiParams
        Defaults: the values tuned on the DCA1 training half (module docstring).

    Returns
    -------
    mask : (H, W) ndarray of bool

    Raises
    ------
    ShapeError, AutocarError
        Not 2D, empty, NaN/infinite or constant image
        (:func:`~autocar.seg2d.image.check_image`).
    """
    if params.low > params.high:
        raise ValueError(f"FrangiParams.low must be <= high, got low={params.low}, high={params.high}")
    return _threshold(vesselness(image, params), params)


def tune_frangi(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    base: FrangiParams = DEFAULT_PARAMS,
    highs: Iterable[float] = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    low_fractions: Iterable[float] = (0.1, 0.15, 0.2, 0.3, 0.5),
    min_sizes: Iterable[int] = (0, 100, 200, 400, 800, 1200, 1600),
) -> tuple[FrangiParams, float]:
    """Grid search of the thresholds maximising the mean Dice over ``images``.

    The vesselness (``base.sigmas``, ``beta``, ``gamma``,
    ``field_margin_px``) is computed once per image; ``high``,
    ``low = high * fraction`` and ``min_size_px`` are searched.
    Use training images only.

    Returns
    -------
    (best params, its mean Dice)
    """
    if len(images) != len(masks) or not len(images):
        raise ShapeError(f"need as many masks as images (>= 1), got {len(images)} and {len(masks)}")
    vs = [vesselness(im, base) for im in images]
    truths = [np.asarray(m, dtype=bool) for m in masks]
    best, best_score = base, -1.0
    for hi, frac, ms in itertools.product(list(highs), list(low_fractions), list(min_sizes)):
        p = replace(base, high=float(hi), low=float(hi) * float(frac), min_size_px=int(ms))
        score = float(np.mean([dice_2d(_threshold(v, p), t) for v, t in zip(vs, truths)]))
        if score > best_score:
            best, best_score = p, score
    return best, best_score
