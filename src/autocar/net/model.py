"""The reconstruction network: 2D mask encoder + sparse 3D U-Net (METHOD.md 2-3).

Per view, a small dilated 2D CNN encodes the signed distance of the vessel
mask: ``exp(-outside / 4 px)`` and the inside distance (to the nearest
background pixel, i.e. the local half-width) / 10 (the paper uses a
stacked-hourglass encoder on exp(-distance)). Its feature maps, the outside
and inside distances, the voxel's projected size, and the local vessel
radius converted to mm at the voxel's depth (``inside * spacing * w / SID``)
are sampled at every hull voxel's projection. The radius in mm is what
makes ghosts visible: a true vessel voxel sees the same 3D vessel, hence the
same radius, in both views, while a ghost at the crossing of the
back-projections of two different vessels usually does not. The per-view
vectors are fused by their element-wise max and min over views, which makes
the network independent of the order of the two views, and fed to the
sparse U-Net that predicts occupancy (logit) and centerness per voxel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from autocar.geometry import CArmView
from autocar.net.sparse import SparseVoxels
from autocar.net.unet import SparseUNet
from autocar.sbp.carve import SparseHull
from autocar.sbp.features import sample_maps

__all__ = ["NetConfig", "MaskEncoder2d", "AutocarNet", "inside_distances"]


def inside_distances(distances: torch.Tensor) -> torch.Tensor:
    """Distance (px) from every vessel pixel to the nearest background pixel, 0 elsewhere.

    ``distances`` (V, H, W) are outside distance maps (0 on vessel pixels, as
    :func:`autocar.sbp.carve.distance_maps`); returns (V, H, W), same dtype
    and device (scipy's exact EDT on the CPU, a few ms per 512 x 512 view).
    """
    from scipy import ndimage

    vessel = (distances <= 0).detach().cpu().numpy()
    out = np.stack([ndimage.distance_transform_edt(m) if m.any() else np.zeros(m.shape) for m in vessel])
    return torch.as_tensor(out, dtype=distances.dtype, device=distances.device)


@dataclass(frozen=True)
class NetConfig:
    """Network hyper-parameters (saved beside every trained model).

    encoder_channels : channels of the 2D mask encoder's output per view.
    base_channels : channels of the sparse U-Net's first level.
    depth : number of down-sampling levels of the U-Net.
    distance_scale_px : ``exp(-d / scale)`` input of the 2D encoder.
    """

    encoder_channels: int = 8
    base_channels: int = 16
    depth: int = 4
    distance_scale_px: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)


class MaskEncoder2d(nn.Module):
    """Dilated CNN on the signed distance channels: (V, 2, H, W) -> (V, C, H, W).

    Dilations 1, 2, 4, 8 give a 31 px receptive field (vessel width and its
    surroundings) at full resolution, so features sampled at a voxel's
    projection see the local vessel shape, not just the distance value.
    """

    def __init__(self, out_channels: int = 8, width: int = 12, in_channels: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for dil in (1, 2, 4, 8):
            layers += [nn.Conv2d(c_in, width, 3, padding=dil, dilation=dil), nn.ReLU(inplace=True)]
            c_in = width
        layers.append(nn.Conv2d(width, out_channels, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class AutocarNet(nn.Module):
    """Occupancy and centerness of every hull voxel from the two views' distance maps."""

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = MaskEncoder2d(config.encoder_channels)
        per_view = config.encoder_channels + 5
        self.unet = SparseUNet(2 * per_view, base_channels=config.base_channels, depth=config.depth)

    def voxel_features(
        self, distances: torch.Tensor, centers_mm: torch.Tensor, views: Sequence[CArmView], voxel_mm: float
    ) -> torch.Tensor:
        """Fused per-voxel features (N, 2 (C + 5)) from outside distance maps (V, H, W) px."""
        d = distances.unsqueeze(1)  # (V, 1, H, W)
        inside = inside_distances(distances).unsqueeze(1)  # (V, 1, H, W) px, 0 off the vessel
        enc = self.encoder(torch.cat([torch.exp(-d / self.config.distance_scale_px), inside / 10.0], dim=1))
        maps = torch.cat([enc, torch.exp(-d), d / 10.0, inside / 10.0], dim=1)
        per_view = sample_maps(maps, centers_mm, views)  # (N, V, C + 3)
        pts = centers_mm.detach().cpu().numpy().astype(np.float64)
        extra = []
        for v in views:
            _, w = v.project(pts)
            px_mm = 0.5 * (v.spacing_mm[0] + v.spacing_mm[1]) * w / v.sid_mm  # mm per px at the voxel's depth
            extra.append(np.stack([v.radius_px(voxel_mm / 2, pts), px_mm], axis=1))
        extra_t = torch.as_tensor(np.stack(extra, axis=1), dtype=per_view.dtype, device=per_view.device)  # (N, V, 2)
        # Local vessel radius in mm at the voxel's depth (inside px x mm per px).
        radius_mm = per_view[..., -1:] * 10.0 * extra_t[..., 1:2]
        per_view = torch.cat([per_view, extra_t[..., :1], radius_mm], dim=-1)
        return torch.cat([per_view.max(dim=1).values, per_view.min(dim=1).values], dim=-1)

    def forward(
        self,
        distances: torch.Tensor,
        hull: SparseHull,
        views: Sequence[CArmView],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Occupancy logits (N,) and centerness (N,) for the voxels of ``hull``.

        ``distances`` (V, H, W) are the 2D distance maps (px) of the views' masks.
        """
        device = distances.device
        centers = torch.as_tensor(hull.centers_mm, dtype=distances.dtype, device=device)
        feats = self.voxel_features(distances, centers, views, hull.voxel_mm)
        coords = torch.as_tensor(hull.coords, dtype=torch.int32, device=device)
        indices = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32, device=device), coords], dim=1)
        # Grid extent rounded up to a multiple of 2**depth so every level halves exactly.
        mult = 2 ** self.config.depth
        top = hull.coords.max(axis=0) + 1 if len(coords) else np.ones(3, dtype=int)
        shape = tuple(int(-(-x // mult) * mult) for x in top)
        sparse = SparseVoxels(features=feats, indices=indices, spatial_shape=shape, batch_size=1)
        return self.unet(sparse)
