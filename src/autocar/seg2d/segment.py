"""Public inference API of the learned 2D vessel segmenter.

``segment_angiogram(image)`` returns the vessel mask of one grey-level
angiogram (vessels dark, any size, uint8/uint16/float) with the shipped
U-Net (:data:`DEFAULT_WEIGHTS`, read with ``torch.load(weights_only=True)``;
nothing is downloaded). The image is normalised with robust percentiles
(:func:`autocar.seg2d.image.normalise_image`), reflect-padded to a multiple
of ``2 ** depth`` (16 for the shipped model), segmented, and cropped back.

Weights file format (``autocar-seg2d/1``): a dict with ``format``,
``unet`` (the :class:`~autocar.seg2d.unet.UNetConfig` as a dict) and
``state_dict``; :func:`save_model` writes it, :func:`load_model` reads it.

**Physical units.** The network learned vessels at about 0.4 mm per pixel at the
isocentre (its synthetic training views and DCA1, where a left main is ~10 px
wide); on much finer images it misses parts of the widest vessels. Given the
pixel size (``spacing_mm``, at the isocentre), an image finer than
:data:`RESAMPLE_BELOW_MM` is also segmented resampled to
:data:`TARGET_SPACING_MM`, and the vessels that this finds wider than
2 x :data:`WIDE_RADIUS_MM` are added to the full-resolution result (their
probability is the larger of the two; nothing found at full resolution is
lost). Measured end to end (``python benchmarks/bench_pixel_size.py``, 4
synchronised two-frame cases per pixel size, centre-line F1 @1 mm): 0.15 mm
0.645 -> 0.712 (3 of 4 better), 0.20 mm 0.633 -> 0.709 (2 of 4), 0.25 mm
0.638 -> 0.695 (1 of 4: one failed case rescued, three worse); on the 8
demo-like DICOM cases of ``bench_pipeline.py`` (0.25 mm, run with
:data:`RESAMPLE_BELOW_MM` at 0.35) 0.642 -> 0.634. So it is used below 0.2 mm
only, where the gain is consistent. Resampling the
whole image instead (the default at commit 622289c) raised 2D Dice (0.824 ->
0.880 at 0.15 mm) but made worse trees (``bench_pipeline.py`` 0.642 -> 0.563);
see docs/benchmarks.md, "Pixel size and the 2D segmenter".

**Outside the X-ray field** (collimator, shutters, a stored dark frame) the
probability is zero (:func:`autocar.seg2d.field.field_of_view`, grown by
:data:`FIELD_MARGIN_PX`): the edge of a noisy dark frame beside bright
background otherwise looks like a vessel along the whole image border (the
real GE phantom runs of ``shared/data/xa-dicom-phantom``).

**A catheter class** (``UNetConfig(catheter_channel=True)``; not the shipped
model yet): the network's second channel is the guiding catheter, and a
pixel's vessel probability is multiplied by its probability of being no
catheter.

Shapes: B batch, H x W image (px).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from autocar.errors import AutocarError, ShapeError
from autocar.io.atomic import atomic_write_bytes
from autocar.seg2d.field import field_of_view
from autocar.seg2d.image import normalise_image
from autocar.seg2d.unet import SegUNet2d, UNetConfig

__all__ = [
    "DEFAULT_WEIGHTS",
    "WEIGHTS_FORMAT",
    "default_model",
    "load_model",
    "predict_probabilities",
    "predict_probability",
    "save_model",
    "segment_angiogram",
    "segment_angiograms",
    "TARGET_SPACING_MM",
    "RESAMPLE_BELOW_MM",
    "WIDE_RADIUS_MM",
    "FIELD_MARGIN_PX",
]

WEIGHTS_FORMAT = "autocar-seg2d/1"
#: Isocentre pixel size (mm) at which the shipped network sees an image finer than RESAMPLE_BELOW_MM.
TARGET_SPACING_MM = 0.4
#: Images with isocentre pixels at least this large (mm) are segmented as they are (module doc).
RESAMPLE_BELOW_MM = 0.2
#: Vessels of at least this radius (mm) in the resampled result are added (module doc).
WIDE_RADIUS_MM = 1.2
#: Probability is zeroed this far (px) around the area outside the X-ray field (module doc).
FIELD_MARGIN_PX = 6
#: The shipped weights (see src/autocar/weights/SEG2D.md).
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "seg2d.pt"


def save_model(model: SegUNet2d, path: str | Path) -> Path:
    """Write ``model`` (config and weights, CPU tensors) to ``path`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": WEIGHTS_FORMAT, "unet": model.config.to_dict(), "state_dict": state}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_model(path: str | Path = DEFAULT_WEIGHTS) -> SegUNet2d:
    """Read a :func:`save_model` file into a CPU :class:`SegUNet2d` in eval mode.

    Raises
    ------
    AutocarError
        Missing file, or not an ``autocar-seg2d/1`` weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise AutocarError(f"seg2d weights file {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise AutocarError(f"seg2d weights file {path} cannot be read: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT or "state_dict" not in blob:
        raise AutocarError(f"seg2d weights file {path} is not an {WEIGHTS_FORMAT} file")
    model = SegUNet2d(UNetConfig.from_dict(blob.get("unet", {})))
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise AutocarError(f"seg2d weights file {path} does not match its U-Net config: {exc}") from exc
    return model.eval()


@lru_cache(maxsize=1)
def default_model() -> SegUNet2d:
    """The shipped model (:data:`DEFAULT_WEIGHTS`), loaded once per process."""
    return load_model(DEFAULT_WEIGHTS)


def _pad(x: np.ndarray, multiple: int) -> np.ndarray:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)]
    # Reflection needs the pad to be smaller than the side; tiny images use edge padding.
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, pad, mode=mode)


def _check_spacing(spacing_mm: float | None) -> float | None:
    if spacing_mm is None:
        return None
    try:
        s = float(spacing_mm)
    except (TypeError, ValueError):
        raise ValueError(f"spacing_mm must be a number of mm per pixel, got {spacing_mm!r}") from None
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"spacing_mm must be a finite number of mm per pixel > 0, got {spacing_mm!r}")
    return s


def _resample(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float image resampled (bilinear, pixel areas aligned) to ``shape``."""
    from scipy import ndimage

    h, w = image.shape
    return ndimage.zoom(image, (shape[0] / h, shape[1] / w), order=1, grid_mode=True, mode="nearest")


def predict_probabilities(
    images: Sequence[np.ndarray], model: SegUNet2d | None = None, *, batch_size: int = 4, flips: bool = False,
    spacing_mm: float | None = None,
) -> list[np.ndarray]:
    """Vessel probability of each image, a list of (H_i, W_i) float32 in [0, 1].

    Images of the same shape are run together in batches of ``batch_size``.
    With ``flips`` the probability is the mean over the image and its
    horizontal, vertical and double mirror images (test-time augmentation,
    4x the time). ``spacing_mm``: the images' pixel size at the isocentre
    (mm); finer than :data:`RESAMPLE_BELOW_MM`, the wide vessels found at
    :data:`TARGET_SPACING_MM` are added (module doc). Zero outside the
    X-ray field (module doc). See
    :func:`segment_angiogram` for the accepted images and errors.
    """
    model = default_model() if model is None else model
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    spacing = _check_spacing(spacing_mm)
    norm = [normalise_image(im, name=f"images[{i}]") for i, im in enumerate(images)]
    out = _predict(norm, model, batch_size, flips)
    if spacing is not None and spacing < RESAMPLE_BELOW_MM:
        f = spacing / TARGET_SPACING_MM
        small = [_resample(x, (max(2, int(round(x.shape[0] * f))), max(2, int(round(x.shape[1] * f)))))
                 for x in norm]
        coarse = [np.clip(_resample(p, x.shape), 0.0, 1.0) for p, x in zip(_predict(small, model, batch_size, flips),
                                                                          norm)]
        out = [_add_wide_vessels(p, q, spacing) for p, q in zip(out, coarse)]
    return [np.where(field_of_view(x, margin_px=FIELD_MARGIN_PX), p, 0.0).astype(np.float32) for p, x in zip(out, norm)]


def _add_wide_vessels(fine: np.ndarray, coarse: np.ndarray, spacing: float) -> np.ndarray:
    """``fine`` (H, W) with the probability of ``coarse`` where ``coarse`` holds a vessel wider than
    2 x WIDE_RADIUS_MM (the whole cross-section of such a vessel, not only its core)."""
    from scipy import ndimage

    vessel = coarse > 0.5
    core = ndimage.distance_transform_edt(vessel) * spacing >= WIDE_RADIUS_MM
    if not core.any():
        return fine
    wide = ndimage.binary_dilation(core, iterations=max(1, int(round(WIDE_RADIUS_MM / spacing)))) & vessel
    return np.where(wide, np.maximum(fine, coarse), fine).astype(np.float32)


def _vessel_probability(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) vessel probability from the network's (B, C, H, W) logits: with a catheter
    channel, the vessel's probability times the probability that the pixel is no catheter."""
    p = torch.sigmoid(logits[:, :1])
    if logits.shape[1] > 1:
        p = p * (1.0 - torch.sigmoid(logits[:, 1:2]))
    return p


def _predict(norm: list[np.ndarray], model: SegUNet2d, batch_size: int, flips: bool) -> list[np.ndarray]:
    """The network's probability (H_i, W_i) of each normalised image."""
    out: list[np.ndarray | None] = [None] * len(norm)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, x in enumerate(norm):
        groups.setdefault(x.shape, []).append(i)
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for (h, w), idx in groups.items():
                for k in range(0, len(idx), batch_size):
                    part = idx[k : k + batch_size]
                    x = _pad(np.stack([norm[i] for i in part])[:, None], model.multiple)
                    ph, pw = x.shape[-2] - h, x.shape[-1] - w
                    t = torch.from_numpy(np.ascontiguousarray(x)).to(device=param.device, dtype=param.dtype)
                    runs = []
                    for dims in ((), (-1,), (-2,), (-2, -1)) if flips else ((),):
                        p = _vessel_probability(model(t.flip(dims) if dims else t))
                        runs.append(p.flip(dims) if dims else p)
                    prob = torch.stack(runs).mean(0)[:, 0].float().cpu().numpy()
                    prob = prob[:, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
                    for j, i in enumerate(part):
                        out[i] = np.ascontiguousarray(prob[j])
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def predict_probability(image: np.ndarray, model: SegUNet2d | None = None, *, flips: bool = False,
                        spacing_mm: float | None = None) -> np.ndarray:
    """Vessel probability of one (H, W) image, (H, W) float32 in [0, 1] (``flips``, ``spacing_mm``: see
    predict_probabilities)."""
    return predict_probabilities([image], model, flips=flips, spacing_mm=spacing_mm)[0]


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return t


def segment_angiogram(
    image: np.ndarray, model: SegUNet2d | None = None, threshold: float = 0.5, *, flips: bool = False,
    spacing_mm: float | None = None,
) -> np.ndarray:
    """Vessel mask of one grey-level angiogram.

    Parameters
    ----------
    image : (H, W) array of uint8, uint16 or float
        Vessels dark on a brighter background; any size (padded internally
        to a multiple of 16), any window (normalised by its 1st and 99th
        percentiles).
    model : SegUNet2d or None
        Default: the shipped weights (:func:`default_model`).
    threshold : float in (0, 1)
        Probability above which a pixel is vessel.
    flips : bool
        Average the probabilities of the four mirror images (test-time
        augmentation; 4x slower).
    spacing_mm : float, optional
        Pixel size at the isocentre (mm): on an image finer than
        :data:`RESAMPLE_BELOW_MM` the wide vessels found at
        :data:`TARGET_SPACING_MM` are added (module doc).

    Returns
    -------
    mask : (H, W) ndarray of bool

    Raises
    ------
    ShapeError
        ``image`` is not 2D or smaller than 2 x 2.
    AutocarError
        Non-numeric dtype, NaN/infinite pixels, or a constant image.
    """
    t = _check_threshold(threshold)
    return predict_probability(image, model, flips=flips, spacing_mm=spacing_mm) > t


def segment_angiograms(
    images: Sequence[np.ndarray] | np.ndarray,
    model: SegUNet2d | None = None,
    threshold: float = 0.5,
    *,
    flips: bool = False,
    spacing_mm: float | None = None,
) -> list[np.ndarray]:
    """Vessel masks of several angiograms (a sequence of (H_i, W_i) or a (B, H, W) array).

    Returns a list of (H_i, W_i) bool masks; same rules as :func:`segment_angiogram`.
    """
    t = _check_threshold(threshold)
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            raise ShapeError(f"images must be a (B, H, W) array or a sequence of (H, W) images, got shape {images.shape}")
        images = list(images)
    return [p > t for p in predict_probabilities(list(images), model, flips=flips, spacing_mm=spacing_mm)]
