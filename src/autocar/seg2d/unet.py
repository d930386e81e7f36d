"""Small 2D U-Net for vessel segmentation of grey-level angiograms.

Ronneberger et al., "U-Net: convolutional networks for biomedical image
segmentation", MICCAI 2015: an encoder of ``depth`` down-sampling levels
(2 x 2 max pooling + two 3 x 3 convolutions), a mirror decoder (bilinear
2x up-sampling + 1 x 1 convolution, concatenation with the skip, two 3 x 3
convolutions) and a 1 x 1 head giving one logit per pixel. Every 3 x 3
convolution is followed by BatchNorm and ReLU.

Channels double per level from ``base_channels`` and are capped at
``max_channels`` so the weights stay small: the defaults (16, 32, 64, 64,
64 channels over 4 down-sampling levels) hold 0.49 M parameters, 1.95 MB
in float32; the receptive field spans about 140 px. The input height
and width must be multiples of ``2 ** depth`` (:meth:`SegUNet2d.multiple`);
:func:`autocar.seg2d.segment.segment_angiogram` pads any image to that.

Shapes: B batch, C channels, H x W image (px).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autocar.errors import ShapeError

__all__ = ["SegUNet2d", "UNetConfig", "catheter_loss", "seg_loss"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`SegUNet2d` (saved beside the weights).

    Attributes
    ----------
    base_channels : channels of the full-resolution level.
    depth : number of 2x down-sampling levels (inputs padded to ``2 ** depth``).
    max_channels : cap of the channel count at the coarse levels.
    catheter_channel : a second output channel, the guiding catheter's logit
        (issue 22: the catheter is its own class, never a vessel); weight files
        without the key have one channel.
    """

    base_channels: int = 16
    depth: int = 4
    max_channels: int = 64
    catheter_channel: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = {k: int(d[k]) for k in ("base_channels", "depth", "max_channels") if k in d}
        return cls(**known, catheter_channel=bool(d.get("catheter_channel", False)))


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SegUNet2d(nn.Module):
    """2D U-Net: normalised grey image (B, 1, H, W) -> vessel logit (B, 1, H, W), or (B, 2, H, W)
    with the catheter's logit second when ``config.catheter_channel``.

    ``H`` and ``W`` must be multiples of ``2 ** depth``. Apply a sigmoid to
    the output for the probabilities.
    """

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        if config.base_channels < 1 or config.depth < 1 or config.max_channels < config.base_channels:
            raise ValueError(f"invalid UNetConfig {config}")
        self.config = config
        ch = [min(config.base_channels * 2**i, config.max_channels) for i in range(config.depth + 1)]
        self.channels = ch
        self.stem = _double_conv(1, ch[0])
        self.down = nn.ModuleList(_double_conv(ch[i], ch[i + 1]) for i in range(config.depth))
        self.reduce = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 1) for i in range(config.depth))
        self.up = nn.ModuleList(_double_conv(2 * ch[i], ch[i]) for i in range(config.depth))
        self.head = nn.Conv2d(ch[0], 2 if config.catheter_channel else 1, 1)

    @property
    def multiple(self) -> int:
        """Height and width of the input must be multiples of this (``2 ** depth``)."""
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ShapeError(f"SegUNet2d input must have shape (B, 1, H, W), got {tuple(x.shape)}")
        m = self.multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise ShapeError(
                f"SegUNet2d input height and width must be multiples of {m}, got {tuple(x.shape[2:])}"
            )
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for i in reversed(range(self.config.depth)):
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = self.up[i](torch.cat([self.reduce[i](y), skips[i]], dim=1))
        return self.head(y)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def seg_loss(logits: torch.Tensor, target: torch.Tensor, *, dice_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice loss (Milletari et al. 2016), averaged over the batch.

    Parameters
    ----------
    logits : (B, 1, H, W) raw network output.
    target : (B, 1, H, W) vessel labels in {0, 1} (float).
    dice_weight : weight of the soft Dice term.

    Returns
    -------
    scalar tensor: ``BCE + dice_weight * (1 - soft Dice)``, the soft Dice
    computed per image (``2 sum(p t) + 1`` over ``sum(p) + sum(t) + 1``).
    """
    if logits.shape != target.shape:
        raise ShapeError(f"logits and target must have the same shape, got {tuple(logits.shape)} and {tuple(target.shape)}")
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2.0 * (p * t).sum(1) + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + dice_weight * (1.0 - dice.mean())


def catheter_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """:func:`seg_loss` (BCE + soft Dice) of the catheter channel over the images whose catheter label is known.

    logits, target : (B, 1, H, W) catheter logit and label in {0, 1}; known : (B,) bool (DCA1 images
    have no catheter label). Zero when no image of the batch is labelled.
    """
    if logits.shape != target.shape or known.shape != logits.shape[:1]:
        raise ShapeError(f"catheter logits {tuple(logits.shape)}, target {tuple(target.shape)} and known "
                         f"{tuple(known.shape)} do not match")
    if not bool(known.any()):
        return logits.sum() * 0.0
    return seg_loss(logits[known], target[known])
