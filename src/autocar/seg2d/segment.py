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
]

WEIGHTS_FORMAT = "autocar-seg2d/1"
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


def predict_probabilities(
    images: Sequence[np.ndarray], model: SegUNet2d | None = None, *, batch_size: int = 4, flips: bool = False
) -> list[np.ndarray]:
    """Vessel probability of each image, a list of (H_i, W_i) float32 in [0, 1].

    Images of the same shape are run together in batches of ``batch_size``.
    With ``flips`` the probability is the mean over the image and its
    horizontal, vertical and double mirror images (test-time augmentation,
    4x the time). See :func:`segment_angiogram` for the accepted images and
    errors.
    """
    model = default_model() if model is None else model
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    norm = [normalise_image(im, name=f"images[{i}]") for i, im in enumerate(images)]
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
                        p = torch.sigmoid(model(t.flip(dims) if dims else t))
                        runs.append(p.flip(dims) if dims else p)
                    prob = torch.stack(runs).mean(0)[:, 0].float().cpu().numpy()
                    prob = prob[:, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
                    for j, i in enumerate(part):
                        out[i] = np.ascontiguousarray(prob[j])
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def predict_probability(image: np.ndarray, model: SegUNet2d | None = None, *, flips: bool = False) -> np.ndarray:
    """Vessel probability of one (H, W) image, (H, W) float32 in [0, 1] (``flips``: see predict_probabilities)."""
    return predict_probabilities([image], model, flips=flips)[0]


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return t


def segment_angiogram(
    image: np.ndarray, model: SegUNet2d | None = None, threshold: float = 0.5, *, flips: bool = False
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
    return predict_probability(image, model, flips=flips) > t


def segment_angiograms(
    images: Sequence[np.ndarray] | np.ndarray,
    model: SegUNet2d | None = None,
    threshold: float = 0.5,
    *,
    flips: bool = False,
) -> list[np.ndarray]:
    """Vessel masks of several angiograms (a sequence of (H_i, W_i) or a (B, H, W) array).

    Returns a list of (H_i, W_i) bool masks; same rules as :func:`segment_angiogram`.
    """
    t = _check_threshold(threshold)
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            raise ShapeError(f"images must be a (B, H, W) array or a sequence of (H, W) images, got shape {images.shape}")
        images = list(images)
    return [p > t for p in predict_probabilities(list(images), model, flips=flips)]
