"""Tests of autocar.sbp.features: sampling 2D maps at voxel projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.sbp.carve import SBPConfig, carve, distance_maps
from autocar.sbp.features import hull_feature_names, hull_features, sample_maps
from autocar.synth.render import render_mask

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 64, 80)
LAO90 = CArmView(90.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 64, 80)
PX_PER_MM = 1000.0 / (750.0 * 0.3)  # magnification / spacing at the isocentre


def index_maps(h: int, w: int) -> torch.Tensor:
    """(1, 2, H, W): channel 0 = column index, channel 1 = row index."""
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    return torch.stack([cols, rows]).unsqueeze(0)


def test_sample_maps_reads_the_projected_pixel():
    maps = index_maps(64, 80).repeat(2, 1, 1, 1)  # (2, 2, 64, 80)
    pts = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, -3.0], [1.3, -2.0, 4.1]], dtype=torch.float64)
    out = sample_maps(maps, pts, [AP, LAO90])
    assert out.shape == (4, 2, 2) and out.dtype == torch.float64
    # Isocentre: principal point ((rows-1)/2, (cols-1)/2) = (31.5, 39.5).
    np.testing.assert_allclose(out[0].numpy(), [[39.5, 31.5], [39.5, 31.5]], atol=1e-9)
    # AP: +x goes to increasing columns at 1000/750/0.3 px per mm.
    assert out[1, 0, 0].item() == pytest.approx(39.5 + 5.0 * PX_PER_MM)
    assert out[1, 0, 1].item() == pytest.approx(31.5)
    # AP: -z goes down the rows, depth 750 - y; LAO 90: +y to the columns, depth 750 + x.
    assert out[2, 0, 1].item() == pytest.approx(31.5 + 3.0 * 1000.0 / (745.0 * 0.3))
    assert out[2, 1, 0].item() == pytest.approx(39.5 + 5.0 * 1000.0 / (750.0 * 0.3))
    # Any point: equals CArmView.project (the index maps are linear, so bilinear is exact).
    for v, view in enumerate([AP, LAO90]):
        rc, _ = view.project(pts.numpy())
        np.testing.assert_allclose(out[:, v, 0].numpy(), rc[:, 1], atol=1e-9)
        np.testing.assert_allclose(out[:, v, 1].numpy(), rc[:, 0], atol=1e-9)


def test_sample_maps_bilinear_between_pixel_centres():
    maps = torch.zeros(1, 1, 64, 80)
    maps[0, 0, 31, 39] = 1.0
    # The isocentre projects to (31.5, 39.5): a quarter of each of 4 pixels.
    out = sample_maps(maps, torch.zeros(1, 3), [AP])
    assert out.item() == pytest.approx(0.25)


def test_sample_maps_gradient_flows():
    maps = torch.rand(2, 3, 64, 80, dtype=torch.float64, requires_grad=True)
    pts = torch.rand(5, 3, dtype=torch.float64) * 10 - 5
    out = sample_maps(maps, pts, [AP, LAO90])
    out.sum().backward()
    assert maps.grad is not None
    # Bilinear weights of one sample sum to 1: total gradient = N per (view, channel).
    np.testing.assert_allclose(maps.grad.sum(dim=(2, 3)).numpy(), np.full((2, 3), 5.0))
    tiny = [AP.replace(rows=8, columns=10), LAO90.replace(rows=8, columns=10)]
    small = torch.rand(2, 1, 8, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: sample_maps(m, pts * 0.1, tiny), (small,))


def test_sample_maps_bad_inputs():
    with pytest.raises(ShapeError, match="V, C, H, W"):
        sample_maps(torch.zeros(2, 64, 80), torch.zeros(1, 3), [AP, LAO90])
    with pytest.raises(ShapeError, match="2 views"):
        sample_maps(torch.zeros(2, 1, 64, 80), torch.zeros(1, 3), [AP])
    with pytest.raises(ShapeError, match="view 1"):
        sample_maps(torch.zeros(2, 1, 64, 80), torch.zeros(1, 3), [AP, LAO90.replace(rows=65)])
    with pytest.raises(ShapeError, match="centers_mm"):
        sample_maps(torch.zeros(2, 1, 64, 80), torch.zeros(1, 2), [AP, LAO90])


def test_hull_features():
    n = 21
    cyl = CenterlineGraph(np.stack([np.zeros(n), np.zeros(n), np.linspace(-10, 10, n)], 1), np.full(n, 1.5),
                          np.stack([np.arange(n - 1), np.arange(1, n)], 1))
    views = [AP, LAO90]
    masks = [render_mask(cyl, v) for v in views]
    hull = carve(masks, views, SBPConfig(box_mm=32.0, levels_mm=(4.0, 2.0, 1.0)))
    feats = hull_features(hull, masks, views)
    names = hull_feature_names(2)
    assert feats.shape == (len(hull), 12) == (len(hull), len(names)) and feats.dtype == np.float32
    d = feats[:, [0, 3]]
    # Centres carved with the final centre test lie on (or right beside) the vessel in both views.
    assert d.min() >= 0 and d.max() <= 1.0
    np.testing.assert_allclose(feats[:, [1, 4]], np.exp(-d), rtol=1e-5)
    rad = AP.radius_px(0.5, hull.centers_mm.astype(float))
    np.testing.assert_allclose(feats[:, 2], rad, rtol=1e-5)
    np.testing.assert_allclose(feats[:, names.index("min_dist_px")], d.min(axis=1))
    np.testing.assert_allclose(feats[:, names.index("max_radius_px")], feats[:, [2, 5]].max(axis=1))
    # A point carved away from the vessel in one view reads its distance there.
    dm = distance_maps(masks)
    rc, _ = AP.project(hull.centers_mm[:1].astype(float))
    r, c = np.rint(rc[0]).astype(int)
    assert abs(feats[0, 0] - dm[0, r, c]) <= 1.0
    empty = hull_features(carve([np.zeros((64, 80)), masks[1]], views), [np.zeros((64, 80)), masks[1]], views)
    assert empty.shape == (0, 12)
