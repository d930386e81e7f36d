"""Training samples for the 2D vessel segmenter: synthetic and real angiograms.

Two sources, mixed by :mod:`autocar.seg2d.train`:

- **synthetic** (:func:`synthetic_angiogram`): a random coronary tree
  (:func:`autocar.synth.trees.generate_tree`), a C-arm view from the
  clinical pose mixture (:class:`autocar.synth.poses.PoseDistribution`)
  rendered at ``SynthConfig.size`` px with the pixel spacing enlarged
  1-2x (real frames are often zoomed crops: vessels of the DCA1 images
  are 4-9 px wide, those of a 512-px synthetic frame 7-11 px), an
  angiogram by :func:`autocar.synth.angiogram.render_angiogram` with random
  contrast (faint vessels), catheter, collimator and wires, labelled by
  :func:`autocar.synth.render.render_mask` (the catheter and wires are not
  vessels);
- **real** (:func:`load_dca1`): the DCA1 database (Cervantes-Sanchez et al.,
  "Automatic segmentation of coronary arteries in X-ray angiograms using
  multiscale analysis and artificial neural networks", Appl. Sci. 9, 2019):
  300 x 300 8-bit angiograms ``N.png`` with hand-drawn masks ``N_gt.png``.
  Only its TRAINING half is ever used for training and tuning; images
  :data:`DCA1_VALIDATION_IDS` of that half are held out for validation.

:func:`augment` applies random geometry (rotation, scale, flips, crop) and
intensity changes (gamma, contrast, blur, noise) to either source, then the
same robust normalisation as inference
(:func:`autocar.seg2d.image.normalise_image`).

Shapes: H x W image (px); S the square crop side (px).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from autocar.errors import AutocarError
from autocar.geometry import CArmView
from autocar.seg2d.image import normalise_image
from autocar.synth.poses import PoseDistribution
from autocar.synth.angiogram import catheter_path, render_angiogram
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

__all__ = [
    "DCA1_TRAINING_IDS",
    "DCA1_VALIDATION_IDS",
    "AugmentConfig",
    "LabelledImage",
    "SynthConfig",
    "augment",
    "load_dca1",
    "synthetic_angiogram",
]

#: Every fifth image of Angios_40_training: the held-out validation part.
DCA1_VALIDATION_IDS: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 35, 40)
#: The other 32 images of Angios_40_training: used for training.
DCA1_TRAINING_IDS: tuple[int, ...] = tuple(i for i in range(1, 41) if i not in DCA1_VALIDATION_IDS)


class LabelledImage(NamedTuple):
    """One angiogram with its vessel mask.

    name : where it comes from (file stem or synthetic seed).
    image : (H, W) uint8 or uint16 raw grey levels, vessels dark.
    mask : (H, W) bool vessel label.
    catheter : (H, W) bool guiding-catheter label where it is known (synthetic
        angiograms: all False when there is none), None where it is not (DCA1).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    catheter: np.ndarray | None = None


def load_dca1(folder: str | Path, ids: Sequence[int] | None = None) -> list[LabelledImage]:
    """Read DCA1 angiograms ``N.png`` and masks ``N_gt.png`` from ``folder``.

    Parameters
    ----------
    folder : a DCA1 half, e.g. ``.../dca1-angiograms/Angios_40_training``.
    ids : image numbers to read (default: every ``N.png`` with a mask, sorted).

    Returns
    -------
    list of LabelledImage (uint8 images, bool masks ``N_gt.png > 127``).

    Raises
    ------
    AutocarError
        The folder, an image or a mask is missing or unreadable, or an image
        and its mask differ in shape.
    """
    root = Path(folder)
    if not root.is_dir():
        raise AutocarError(f"DCA1 folder {root} does not exist")
    if ids is None:
        ids = sorted(int(p.stem) for p in root.glob("*.png") if p.stem.isdigit())
        if not ids:
            raise AutocarError(f"DCA1 folder {root} holds no N.png images")
    out = []
    for i in ids:
        img_path, gt_path = root / f"{int(i)}.png", root / f"{int(i)}_gt.png"
        img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE) if img_path.is_file() else None
        if img is None:
            raise AutocarError(f"DCA1 image {img_path} is missing or not a readable image")
        gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE) if gt_path.is_file() else None
        if gt is None:
            raise AutocarError(f"DCA1 mask {gt_path} is missing or not a readable image")
        if gt.shape != img.shape:
            raise AutocarError(f"DCA1 mask {gt_path} has shape {gt.shape}, its image {img.shape}")
        out.append(LabelledImage(f"dca1/{root.name}/{int(i)}", img, gt > 127))
    return out


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic training angiograms are made (:func:`synthetic_angiogram`).

    Attributes
    ----------
    size : rendered image side, px.
    spacing_scale : range of the factor applied to the sampled pixel spacing
        (> 1 shows more of the tree with thinner vessels).
    contrast : range of the contrast multiplier of render_angiogram.
    catheter_p, collimator_p : probabilities of a catheter and a collimator.
    max_wires : wires drawn uniformly from 0..max_wires.
    bit16_p : probability of a 16-bit rendering (else 8-bit).
    """

    size: int = 288
    spacing_scale: tuple[float, float] = (1.0, 2.0)
    contrast: tuple[float, float] = (0.4, 1.3)
    catheter_p: float = 0.8
    collimator_p: float = 0.5
    max_wires: int = 2
    bit16_p: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)


def synthetic_angiogram(seed: int, config: SynthConfig = SynthConfig()) -> LabelledImage:
    """One synthetic angiogram and its vessel mask, fully determined by ``seed``.

    The tree side (left/right), pose, spacing, contrast and realism options
    are drawn from ``config``; see the module docstring.

    Returns
    -------
    LabelledImage with a (size, size) uint8 or uint16 image and bool mask.
    """
    gen = np.random.default_rng(int(seed))
    side = "left" if gen.uniform() < 0.6 else "right"
    tree = generate_tree(side, rng=gen)
    view = PoseDistribution.clinical().sample_view(gen)
    scale = gen.uniform(*config.spacing_scale)
    spacing = (view.spacing_mm[0] * scale, view.spacing_mm[1] * scale)
    view = CArmView(view.primary_deg, view.secondary_deg, view.sid_mm, view.sod_mm, spacing, config.size, config.size)
    contrast = float(gen.uniform(*config.contrast))
    catheter = bool(gen.uniform() < config.catheter_p)
    collimator = bool(gen.uniform() < config.collimator_p)
    wires = int(gen.integers(0, config.max_wires + 1))
    bit_depth = 16 if gen.uniform() < config.bit16_p else 8
    mask = render_mask(tree.graph, view)
    cath = np.zeros_like(mask)
    if catheter:
        # render_angiogram draws its catheter first: the same path from a copy of the generator.
        copy = np.random.default_rng()
        copy.bit_generator.state = gen.bit_generator.state
        cath = render_mask(catheter_path(tree.graph, copy), view) & ~mask
    image = render_angiogram(tree.graph, view, rng=gen, contrast=contrast, catheter=catheter,
                             collimator=collimator, wires=wires, bit_depth=bit_depth)
    return LabelledImage(f"synth/{int(seed)}", image, mask, cath)


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes applied by :func:`augment`.

    Attributes
    ----------
    crop : side S of the square output, px.
    scale : range of the zoom factor.
    rotate_p : probability of a rotation by a uniform angle (else none).
    gamma : range of the gamma applied to the [0, 1] image (log-uniform).
    blur_p, blur_sigma : probability and range (px) of a Gaussian blur.
    noise_sigma : range of the added Gaussian noise std (on [0, 1]).
    contrast : range of a contrast factor around the image mean.
    """

    crop: int = 192
    scale: tuple[float, float] = (0.75, 1.33)
    rotate_p: float = 0.5
    gamma: tuple[float, float] = (0.6, 1.7)
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.5, 1.3)
    noise_sigma: tuple[float, float] = (0.0, 0.03)
    contrast: tuple[float, float] = (0.6, 1.4)

    def to_dict(self) -> dict:
        return asdict(self)


def _unit_range(image: np.ndarray) -> np.ndarray:
    """Raw grey levels to float32 [0, 1] by the dtype's range (floats by min/max)."""
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    x = image.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def augment(
    sample: LabelledImage, gen: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A randomly transformed, normalised crop of ``sample``.

    Geometry: zoom in ``config.scale``, a rotation (probability
    ``rotate_p``, any angle) about a random centre, mirrored borders,
    horizontal / vertical flips; the label is warped bilinearly and
    thresholded at 0.5. Intensity (on the [0, 1] image): gamma, contrast
    about the mean, blur, Gaussian noise. Then the robust normalisation of
    inference on the whole warped image, then a random S x S crop (the image
    is reflect-padded when smaller than S).

    Returns
    -------
    image : (S, S) float32 normalised (vessels low)
    mask : (S, S) float32 in {0, 1}
    catheter : (S, S) float32 in {0, 1}, the catheter label warped alike, or None
        when the sample has none (the random draws are the same either way)
    """
    x = _unit_range(np.asarray(sample.image))
    y = np.asarray(sample.mask, dtype=np.float32)
    c = None if sample.catheter is None else np.asarray(sample.catheter, dtype=np.float32)
    h, w = x.shape
    s = config.crop
    zoom = math.exp(gen.uniform(math.log(config.scale[0]), math.log(config.scale[1])))
    angle = gen.uniform(0.0, 360.0) if gen.uniform() < config.rotate_p else 0.0
    out_h, out_w = max(s, round(h * zoom)), max(s, round(w * zoom))
    mat = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, zoom)
    mat[0, 2] += (out_w - w) / 2.0
    mat[1, 2] += (out_h - h) / 2.0
    x = cv2.warpAffine(x, mat, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    y = cv2.warpAffine(y, mat, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if c is not None:
        c = cv2.warpAffine(c, mat, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if gen.uniform() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
        c = None if c is None else c[:, ::-1]
    if gen.uniform() < 0.5:
        x, y = x[::-1], y[::-1]
        c = None if c is None else c[::-1]
    x = np.clip(x, 0.0, 1.0)
    x = x ** math.exp(gen.uniform(math.log(config.gamma[0]), math.log(config.gamma[1])))
    x = (x - x.mean()) * gen.uniform(*config.contrast) + x.mean()
    if gen.uniform() < config.blur_p:
        x = cv2.GaussianBlur(np.ascontiguousarray(x), (0, 0), gen.uniform(*config.blur_sigma))
    x = x + gen.normal(size=x.shape).astype(np.float32) * gen.uniform(*config.noise_sigma)
    if float(x.max()) <= float(x.min()):
        x = x + gen.normal(size=x.shape).astype(np.float32) * 1e-3  # a flat crop stays valid
    x = normalise_image(x)
    r0 = int(gen.integers(0, x.shape[0] - s + 1))
    c0 = int(gen.integers(0, x.shape[1] - s + 1))
    x = np.ascontiguousarray(x[r0 : r0 + s, c0 : c0 + s])
    y = (y[r0 : r0 + s, c0 : c0 + s] > 0.5).astype(np.float32)
    if c is not None:
        c = (c[r0 : r0 + s, c0 : c0 + s] > 0.5).astype(np.float32)
    return x, y, c
