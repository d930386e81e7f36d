"""Sparse 3D U-Net over hull voxels and its loss (METHOD.md section 3).

MinkUNet-style (Choy et al. 2019, "4D spatio-temporal ConvNets: Minkowski
convolutional neural networks"): a submanifold stem, ``depth`` levels of
[kernel-2 stride-2 down-sampling + residual block], then the mirror path of
[inverse convolution onto the skip level's sites + concatenation with the
skip + residual block]. Two per-voxel heads give the occupancy logit and the
centerness in [0, 1].

Channels double per level from ``base_channels`` and are capped at
``max_channels`` so the weights stay small: 1.70 M parameters (6.8 MB in
float32) for ``SparseUNet(22, 16, 4)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autocar.errors import ShapeError
from autocar.net.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseInverseConv3d,
    SparseVoxels,
    SubMConv3d,
)

__all__ = ["ResidualBlock", "SparseUNet", "unet_loss"]


class ResidualBlock(nn.Module):
    """Two submanifold 3x3x3 convolutions with BN, ReLU and a residual shortcut.

    ``out = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; the shortcut is a
    linear map of the features (1x1x1 convolution) when the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = SubMConv3d(in_channels, out_channels, bias=False)
        self.bn1 = SparseBatchNorm(out_channels)
        self.conv2 = SubMConv3d(out_channels, out_channels, bias=False)
        self.bn2 = SparseBatchNorm(out_channels)
        self.shortcut = nn.Linear(in_channels, out_channels, bias=False) if in_channels != out_channels else None

    def forward(self, x: SparseVoxels) -> SparseVoxels:
        y = self.bn1(self.conv1(x))
        y = self.bn2(self.conv2(y.replace_features(F.relu(y.features))))
        skip = x.features if self.shortcut is None else self.shortcut(x.features)
        return y.replace_features(F.relu(y.features + skip))


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = SparseConv3d(cin, cout, bias=False)
        self.bn = SparseBatchNorm(cout)
        self.block = ResidualBlock(cout, cout)

    def forward(self, x: SparseVoxels) -> SparseVoxels:
        y = self.bn(self.conv(x))
        return self.block(y.replace_features(F.relu(y.features)))


class _Up(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = SparseInverseConv3d(cin, cout, bias=False)
        self.bn = SparseBatchNorm(cout)
        self.block = ResidualBlock(cout + cskip, cout)

    def forward(self, x: SparseVoxels, skip: SparseVoxels) -> SparseVoxels:
        y = self.bn(self.conv(x, skip))
        return self.block(skip.replace_features(torch.cat([F.relu(y.features), skip.features], dim=1)))


class SparseUNet(nn.Module):
    """Sparse U-Net: voxel features (N, C_in) -> occupancy logit (N,) and centerness (N,).

    Parameters
    ----------
    in_channels : int
        Feature channels C_in of the input voxels.
    base_channels : int
        Channels of the full-resolution level.
    depth : int
        Number of stride-2 levels (the coarsest grid is ``2**depth`` voxels wide).
    max_channels : int
        Cap on the channels of the deeper levels (``base * 2**level``).

    Notes
    -----
    The input's ``spatial_shape`` need not be a multiple of ``2**depth``:
    every level's grid is ``ceil(previous / 2)``.
    """

    def __init__(self, in_channels: int, base_channels: int = 16, depth: int = 4, *, max_channels: int = 64) -> None:
        super().__init__()
        if in_channels < 1 or base_channels < 1 or depth < 0 or max_channels < base_channels:
            raise ShapeError(
                f"SparseUNet: need in_channels >= 1, base_channels >= 1, depth >= 0 and "
                f"max_channels >= base_channels, got {in_channels}, {base_channels}, {depth}, {max_channels}"
            )
        self.in_channels = in_channels
        self.depth = depth
        chans = [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]
        self.channels = tuple(chans)
        self.stem = ResidualBlock(in_channels, chans[0])
        self.down = nn.ModuleList(_Down(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(_Up(chans[i + 1], chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Linear(chans[0], 2)

    def forward(self, x: SparseVoxels) -> tuple[torch.Tensor, torch.Tensor]:
        """Occupancy logits (N,) and centerness (N,) in [0, 1] for the N sites of ``x``."""
        if x.features.shape[1] != self.in_channels:
            raise ShapeError(
                f"SparseUNet expects {self.in_channels} feature channels, got {x.features.shape[1]}"
            )
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y, skips.pop())
        out = self.head(y.features)
        return out[:, 0], torch.sigmoid(out[:, 1])


def unet_loss(
    occ_logit: torch.Tensor,
    centerness: torch.Tensor,
    occ_target: torch.Tensor,
    ctr_target: torch.Tensor,
    *,
    dice_eps: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """BCE + soft Dice on occupancy plus MSE on centerness (METHOD.md section 3).

    Parameters
    ----------
    occ_logit, centerness : (N,) tensors
        Network outputs (logit; centerness in [0, 1]).
    occ_target, ctr_target : (N,) tensors
        Occupancy in {0, 1} (bool or float) and centerness target in [0, 1].
    dice_eps : float
        Smoothing of the soft Dice ``1 - (2 sum(p t) + eps) / (sum p + sum t + eps)``.

    Returns
    -------
    total : scalar tensor
        ``bce + dice + mse``.
    terms : dict
        Detached ``"bce"``, ``"dice"``, ``"mse"``.
    """
    n = occ_logit.shape
    for name, t in (("centerness", centerness), ("occ_target", occ_target), ("ctr_target", ctr_target)):
        if t.shape != n:
            raise ShapeError(f"unet_loss: {name} has shape {tuple(t.shape)}, occ_logit has {tuple(n)}")
    target = occ_target.to(occ_logit.dtype)
    bce = F.binary_cross_entropy_with_logits(occ_logit, target)
    p = torch.sigmoid(occ_logit)
    dice = 1.0 - (2.0 * (p * target).sum() + dice_eps) / (p.sum() + target.sum() + dice_eps)
    mse = F.mse_loss(centerness, ctr_target.to(centerness.dtype))
    total = bce + dice + mse
    return total, {"bce": bce.detach(), "dice": dice.detach(), "mse": mse.detach()}
