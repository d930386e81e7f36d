"""Sparse convolutions against dense torch convolutions on the same voxels (float64)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autocar.errors import ShapeError
from autocar.net.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseInverseConv3d,
    SparseReLU,
    SparseVoxels,
    SubMConv3d,
    sparse_conv3d,
    sparse_inverse_conv3d,
    subm_conv3d,
)

SHAPE = (12, 11, 10)  # odd sizes exercise the ceil(shape / 2) parent grid
REPEATS = 4


def random_voxels(seed: int, channels: int = 3, fraction: float = 0.3, batch: int = 2) -> SparseVoxels:
    g = torch.Generator().manual_seed(seed)
    occ = torch.rand((batch, *SHAPE), generator=g) < fraction
    ind = occ.nonzero().to(torch.int32)
    ind = ind[torch.randperm(len(ind), generator=g)]  # unsorted input order
    feats = torch.randn((len(ind), channels), generator=g, dtype=torch.float64)
    return SparseVoxels(feats.requires_grad_(True), ind, SHAPE, batch)


def at(dense: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """Rows (N, C) of a dense (B, C, I, J, K) tensor at sites (N, 4)."""
    i = ind.long()
    return dense.permute(0, 2, 3, 4, 1)[i[:, 0], i[:, 1], i[:, 2], i[:, 3]]


def grads(out: torch.Tensor, inputs: list[torch.Tensor], probe: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad((out * probe).sum(), inputs))


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_subm_matches_dense_conv3d_at_active_sites():
    for rep in range(REPEATS):
        x = random_voxels(rep)
        conv = SubMConv3d(3, 5).double()
        out = conv(x)
        assert torch.equal(out.indices, x.indices)
        # Dense reference: zeros off the sites, compare only at the sites.
        w_dense = conv.weight.reshape(3, 3, 3, 3, 5).permute(4, 3, 0, 1, 2)
        ref = at(F.conv3d(x.dense(), w_dense, conv.bias, padding=1), x.indices)
        torch.testing.assert_close(out.features, ref, rtol=1e-10, atol=1e-10)
        probe = torch.randn_like(ref)
        got = grads(out.features, [x.features, conv.weight, conv.bias], probe)
        exp = grads(ref, [x.features, conv.weight, conv.bias], probe)
        for a, b in zip(got, exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_strided_conv_matches_dense_at_occupied_parents():
    for rep in range(REPEATS):
        x = random_voxels(10 + rep)
        conv = SparseConv3d(3, 4).double()
        out = conv(x)
        assert out.spatial_shape == (6, 6, 5)
        # Output sites are exactly the occupied parents.
        parents = torch.cat([x.indices[:, :1], x.indices[:, 1:] // 2], 1)
        assert set(map(tuple, out.indices.tolist())) == set(map(tuple, parents.tolist()))
        assert out.num_sites == len(set(map(tuple, parents.tolist())))
        w_dense = conv.weight.reshape(2, 2, 2, 3, 4).permute(4, 3, 0, 1, 2)
        dense_in = F.pad(x.dense(), (0, 0, 0, 1, 0, 0))  # 11 -> 12 so stride 2 covers the last row
        ref = at(F.conv3d(dense_in, w_dense, conv.bias, stride=2), out.indices)
        torch.testing.assert_close(out.features, ref, rtol=1e-10, atol=1e-10)
        probe = torch.randn_like(ref)
        got = grads(out.features, [x.features, conv.weight, conv.bias], probe)
        exp = grads(ref, [x.features, conv.weight, conv.bias], probe)
        for a, b in zip(got, exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cached", [True, False])
def test_inverse_conv_matches_conv_transpose3d_at_fine_sites(cached: bool):
    for rep in range(REPEATS):
        fine = random_voxels(20 + rep)
        coarse = sparse_conv3d(fine, torch.randn(8, 3, 6, dtype=torch.float64))
        if not cached:
            # Same sites built independently, and a coarse tensor missing some parents.
            keep = torch.arange(coarse.num_sites) % 3 != 0
            coarse = SparseVoxels(coarse.features[keep].detach().clone(), coarse.indices[keep].clone(),
                                  coarse.spatial_shape, coarse.batch_size)
            fine = SparseVoxels(fine.features, fine.indices.clone(), fine.spatial_shape, fine.batch_size)
        y = coarse.features.detach().clone().requires_grad_(True)
        coarse = coarse.replace_features(y)
        up = SparseInverseConv3d(6, 2).double()
        out = up(coarse, fine)
        assert torch.equal(out.indices, fine.indices)
        ref_full = F.conv_transpose3d(coarse.dense(), up.weight.reshape(2, 2, 2, 6, 2).permute(3, 4, 0, 1, 2),
                                      up.bias, stride=2)
        ref = at(ref_full, fine.indices)
        torch.testing.assert_close(out.features, ref, rtol=1e-10, atol=1e-10)
        probe = torch.randn_like(ref)
        got = grads(out.features, [y, up.weight, up.bias], probe)
        exp = grads(ref, [y, up.weight, up.bias], probe)
        for a, b in zip(got, exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_deterministic_and_thread_count_untouched():
    x = random_voxels(5, channels=8, fraction=0.5)
    w = torch.randn(27, 8, 8, dtype=torch.float64, requires_grad=True)
    outs = []
    for _ in range(3):
        y = subm_conv3d(x, w)
        z = sparse_inverse_conv3d(sparse_conv3d(y, torch.randn(8, 8, 8, dtype=torch.float64,
                                                              generator=torch.Generator().manual_seed(1))),
                                  y, torch.ones(8, 8, 4, dtype=torch.float64))
        g = torch.autograd.grad(z.features.square().sum(), [x.features, w])
        outs.append((z.features.detach(), *g))
        assert torch.get_num_threads() == 2
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            assert torch.equal(a, b)


def test_bn_relu_and_float32_follow_input():
    x = random_voxels(3)
    x32 = x.replace_features(x.features.detach().float())
    y = SparseReLU()(SparseBatchNorm(3)(x32))
    assert y.features.dtype == torch.float32 and y.features.shape == (x.num_sites, 3)
    assert (y.features >= 0).all()
    torch.testing.assert_close(y.features.mean(0) * 0, torch.zeros(3))
    out = SubMConv3d(3, 2)(x32)
    assert out.features.dtype == torch.float32


def test_known_answer_single_site_and_pair():
    # Two sites one step apart along k: a 1-channel all-ones kernel sums the neighbourhood.
    ind = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 2]], dtype=torch.int32)
    x = SparseVoxels(torch.tensor([[1.0], [10.0]]), ind, (4, 4, 4), 1)
    y = subm_conv3d(x, torch.ones(27, 1, 1))
    assert y.features.flatten().tolist() == [11.0, 11.0]
    down = sparse_conv3d(x, torch.arange(8.0).view(8, 1, 1))
    # Site (1,1,1) is offset (1,1,1) -> weight 7; (1,1,2) is parent (0,0,1) offset (1,1,0) -> 6.
    assert down.indices.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1]]
    assert down.features.flatten().tolist() == [7.0, 60.0]


def test_bad_inputs_rejected():
    ind = torch.tensor([[0, 1, 1, 1]], dtype=torch.int32)
    with pytest.raises(ShapeError, match="int32"):
        SparseVoxels(torch.ones(1, 2), ind.long(), (4, 4, 4), 1)
    with pytest.raises(ShapeError, match="out of range"):
        SparseVoxels(torch.ones(1, 2), ind, (4, 4, 1), 1)
    with pytest.raises(ShapeError, match="duplicate"):
        SparseVoxels(torch.ones(2, 2), torch.cat([ind, ind]), (4, 4, 4), 1)
    with pytest.raises(ShapeError, match="rows"):
        SparseVoxels(torch.ones(2, 2), ind, (4, 4, 4), 1)
    x = SparseVoxels(torch.ones(1, 2), ind, (4, 4, 4), 1)
    with pytest.raises(ShapeError, match="weight"):
        subm_conv3d(x, torch.ones(27, 3, 1))
    with pytest.raises(ShapeError, match="parent"):
        sparse_inverse_conv3d(x, SparseVoxels(torch.ones(1, 2), ind, (16, 16, 16), 1), torch.ones(8, 2, 1))


def test_empty_input_gives_empty_outputs():
    x = SparseVoxels(torch.zeros(0, 3), torch.zeros(0, 4, dtype=torch.int32), (4, 4, 4), 1)
    assert subm_conv3d(x, torch.ones(27, 3, 2)).features.shape == (0, 2)
    down = sparse_conv3d(x, torch.ones(8, 3, 2))
    assert down.features.shape == (0, 2) and down.spatial_shape == (2, 2, 2)
    assert sparse_inverse_conv3d(down, x, torch.ones(8, 2, 5)).features.shape == (0, 5)
