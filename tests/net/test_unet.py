"""Sparse U-Net: shapes, loss values, and a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

from autocar.errors import ShapeError
from autocar.net.sparse import SparseVoxels
from autocar.net.unet import SparseUNet, unet_loss


def sphere_sample(seed: int, n: int = 300, grid: int = 12, batch: int = 1):
    """``n`` random sites per grid; occupancy = inside a sphere of radius 5 about the centre."""
    g = torch.Generator().manual_seed(seed)
    inds = []
    for b in range(batch):
        ijk = torch.randperm(grid**3, generator=g)[:n]
        ijk = torch.stack([ijk // grid**2, (ijk // grid) % grid, ijk % grid], dim=1)
        inds.append(torch.cat([torch.full((n, 1), b), ijk], dim=1))
    ind = torch.cat(inds).to(torch.int32)
    pos = ind[:, 1:].float() - (grid - 1) / 2
    dist = pos.norm(dim=1)
    occ = dist <= 5.0
    ctr = (1 - dist / 5.0).clamp(0, 1)
    feats = torch.cat([pos / grid, torch.ones(len(ind), 1)], dim=1)
    return SparseVoxels(feats, ind, (grid,) * 3, batch), occ, ctr


def test_output_shapes_batch_of_two():
    x, _, _ = sphere_sample(0, n=200, grid=13, batch=2)
    net = SparseUNet(4, base_channels=8, depth=3)
    logit, ctr = net(x)
    assert logit.shape == (400,) and ctr.shape == (400,)
    assert ((ctr >= 0) & (ctr <= 1)).all()
    assert net.channels == (8, 16, 32, 64)
    # Samples of a batch do not see each other: changing sample 1 leaves sample 0's output alone.
    net.eval()
    a, _ = net(x)
    f = x.features.clone()
    f[200:] += 5.0
    b, _ = net(x.replace_features(f))
    torch.testing.assert_close(a[:200], b[:200])
    assert not torch.allclose(a[200:], b[200:])


def test_parameter_count_of_default_is_small():
    net = SparseUNet(22)
    n = sum(p.numel() for p in net.parameters())
    assert 1_000_000 < n < 2_000_000  # < 8 MB of float32 weights


def test_loss_known_values():
    logit = torch.tensor([0.0, 0.0])
    tgt = torch.tensor([1.0, 0.0])
    total, terms = unet_loss(logit, torch.tensor([0.5, 0.5]), tgt, torch.tensor([1.0, 0.0]))
    assert terms["bce"].item() == pytest.approx(math.log(2))
    # p = (0.5, 0.5): dice = 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3
    assert terms["dice"].item() == pytest.approx(1 / 3)
    assert terms["mse"].item() == pytest.approx(0.25)
    assert total.item() == pytest.approx(math.log(2) + 1 / 3 + 0.25)
    with pytest.raises(ShapeError, match="ctr_target"):
        unet_loss(logit, logit, tgt, torch.zeros(3))


def test_wrong_channels_rejected():
    x, _, _ = sphere_sample(0, n=20)
    with pytest.raises(ShapeError, match="channels"):
        SparseUNet(5, base_channels=4, depth=1)(x)


def test_tiny_overfit_sphere():
    torch.manual_seed(0)
    x, occ, ctr = sphere_sample(1, n=300)
    assert 0.2 < occ.float().mean() < 0.8  # both classes present
    net = SparseUNet(4, base_channels=8, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(120):
        logit, c = net(x)
        loss, _ = unet_loss(logit, c, occ, ctr)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        logit, c = net(x)
        final, _ = unet_loss(logit, c, occ, ctr)
    assert final.item() < 0.2 * first
    assert ((logit > 0) == occ).float().mean() > 0.95
