"""2D vessel segmentation of grey-level X-ray angiograms.

- :func:`segment_angiogram` / :func:`segment_angiograms`: the learned
  segmenter (a small 2D U-Net, :mod:`autocar.seg2d.unet`, with shipped
  weights ``autocar/weights/seg2d.pt``);
- :func:`frangi_segment`: the classical baseline (multiscale Frangi
  vesselness + hysteresis, :mod:`autocar.seg2d.frangi`);
- :func:`dice_2d`, :func:`cl_dice_2d`: mask scores (:mod:`autocar.seg2d.scores`);
- :func:`autocar.seg2d.train.train_seg2d`: training on synthetic and DCA1
  training images (``python -m autocar.seg2d.train``; data in
  :mod:`autocar.seg2d.data`). Not imported here, so that ``-m`` runs it cleanly.

Images are (H, W) arrays of uint8, uint16 or float with vessels dark;
masks are (H, W) bool.
"""

from __future__ import annotations

from autocar.seg2d.frangi import FrangiParams, frangi_segment
from autocar.seg2d.image import normalise_image
from autocar.seg2d.scores import cl_dice_2d, dice_2d
from autocar.seg2d.segment import (
    load_model,
    predict_probability,
    segment_angiogram,
    segment_angiograms,
)
from autocar.seg2d.unet import SegUNet2d, UNetConfig

__all__ = [
    "FrangiParams",
    "SegUNet2d",
    "UNetConfig",
    "cl_dice_2d",
    "dice_2d",
    "frangi_segment",
    "load_model",
    "normalise_image",
    "predict_probability",
    "segment_angiogram",
    "segment_angiograms",
]
