"""2D U-Net: shapes at any image size, loss values, a tiny overfit, weights round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autocar.errors import AutocarError, ShapeError
from autocar.seg2d.segment import (
    load_model,
    predict_probability,
    save_model,
    segment_angiogram,
    segment_angiograms,
)
from autocar.seg2d.unet import SegUNet2d, UNetConfig, seg_loss


def small_model(seed: int = 0) -> SegUNet2d:
    torch.manual_seed(seed)
    return SegUNet2d(UNetConfig(base_channels=4, depth=4, max_channels=8)).eval()


def test_default_architecture_fits_the_size_budget():
    model = SegUNet2d()
    assert model.multiple == 16
    assert model.channels == [16, 32, 64, 64, 64]
    assert model.num_parameters() * 4 <= 2.0e6  # <= 2 MB of float32 weights
    out = model(torch.zeros(2, 1, 32, 48))
    assert out.shape == (2, 1, 32, 48)


@pytest.mark.parametrize("shape", [(300, 300), (37, 53), (64, 64), (17, 200), (3, 5)])
def test_segment_any_size_keeps_the_shape(shape):
    model = small_model()
    gen = np.random.default_rng(0)
    image = gen.integers(0, 255, shape).astype(np.uint8)
    prob = predict_probability(image, model)
    assert prob.shape == shape and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1))
    mask = segment_angiogram(image, model)
    assert mask.shape == shape and mask.dtype == bool
    np.testing.assert_array_equal(mask, prob > 0.5)


def test_module_rejects_shapes_it_cannot_pool():
    model = small_model()
    with pytest.raises(ShapeError, match="multiples of 16"):
        model(torch.zeros(1, 1, 40, 48))
    with pytest.raises(ShapeError, match=r"\(B, 1, H, W\)"):
        model(torch.zeros(1, 2, 32, 32))


def test_batch_equals_single_and_normalisation_is_window_invariant():
    model = small_model(1)
    gen = np.random.default_rng(1)
    a = gen.integers(20, 230, (48, 40)).astype(np.uint8)
    b = gen.integers(20, 230, (30, 30)).astype(np.uint8)
    c = gen.integers(20, 230, (48, 40)).astype(np.uint8)
    probs = [predict_probability(x, model) for x in (a, b, c)]
    masks = segment_angiograms([a, b, c], model, threshold=0.4)
    for p, m in zip(probs, masks):
        np.testing.assert_array_equal(m, p > 0.4)
    stacked = segment_angiograms(np.stack([a, c]), model, threshold=0.4)
    np.testing.assert_array_equal(stacked[1], masks[2])
    # The same picture as uint16 with another window, or as float: same probabilities.
    as16 = a.astype(np.uint16) * 200 + 1000
    np.testing.assert_allclose(predict_probability(as16, model), probs[0], atol=1e-5)
    np.testing.assert_allclose(predict_probability(a / 255.0, model), probs[0], atol=1e-5)


def test_bad_inputs_are_rejected():
    model = small_model()
    ok = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)
    with pytest.raises(ShapeError, match="2D"):
        segment_angiogram(np.zeros((2, 32, 32)), model)
    with pytest.raises(ShapeError, match="2D"):
        segment_angiogram(np.zeros(32), model)
    with pytest.raises(ShapeError, match="at least 2 x 2"):
        segment_angiogram(np.zeros((0, 5)), model)
    nan = ok.astype(float)
    nan[0, 0] = np.nan
    with pytest.raises(AutocarError, match="NaN"):
        segment_angiogram(nan, model)
    with pytest.raises(AutocarError, match="constant"):
        segment_angiogram(np.full((32, 32), 3.0), model)
    with pytest.raises(AutocarError, match="dtype"):
        segment_angiogram(ok > 100, model)
    with pytest.raises(ValueError, match="threshold"):
        segment_angiogram(ok, model, threshold=1.0)
    with pytest.raises(AutocarError, match=r"images\[1\]"):
        segment_angiograms([ok, np.full((8, 8), 1)], model)
    with pytest.raises(ShapeError, match="B, H, W"):
        segment_angiograms(ok, model)


def test_loss_known_values():
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1:3, 1:3] = 1.0
    perfect = (target * 2 - 1) * 30.0  # confident and right
    assert float(seg_loss(perfect, target)) < 1e-3
    # Zero logits: BCE = log 2, soft Dice = (2 * 2 + 1) / (8 + 4 + 1).
    expected = np.log(2.0) + 1.0 - 5.0 / 13.0
    assert float(seg_loss(torch.zeros(1, 1, 4, 4), target)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ShapeError):
        seg_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_tiny_overfit_on_one_sample():
    torch.manual_seed(0)
    model = SegUNet2d(UNetConfig(base_channels=8, depth=2, max_channels=16))
    yy, xx = np.mgrid[0:32, 0:32]
    target = (np.abs(yy - 0.5 * xx - 8) < 2.5).astype(np.float32)  # a dark oblique bar
    image = 0.4 - 0.6 * target + np.random.default_rng(0).normal(0, 0.05, target.shape)
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    y = torch.from_numpy(target)[None, None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        loss = seg_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.15 * losses[0]


def test_weights_round_trip_and_bad_files(tmp_path):
    model = small_model(3)
    path = save_model(model, tmp_path / "m.pt")
    again = load_model(path)
    assert again.config == model.config
    image = np.random.default_rng(3).integers(0, 255, (40, 40)).astype(np.uint8)
    np.testing.assert_array_equal(predict_probability(image, again), predict_probability(image, model))
    with pytest.raises(AutocarError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(AutocarError, match="autocar-seg2d/1"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(AutocarError, match="cannot be read"):
        load_model(tmp_path / "junk.pt")


def test_flip_averaging_is_mirror_equivariant():
    model = small_model(2)
    image = np.random.default_rng(2).integers(0, 255, (48, 40)).astype(np.uint8)  # pads evenly to 48 x 48
    plain = predict_probability(image, model)
    tta = predict_probability(image, model, flips=True)
    assert not np.allclose(plain, tta)  # an untrained net is not mirror symmetric
    mirrored = predict_probability(image[:, ::-1], model, flips=True)
    np.testing.assert_allclose(mirrored, tta[:, ::-1], atol=1e-6)
    expected = np.mean(
        [plain, predict_probability(image[:, ::-1], model)[:, ::-1], predict_probability(image[::-1], model)[::-1],
         predict_probability(image[::-1, ::-1], model)[::-1, ::-1]], axis=0)
    np.testing.assert_allclose(tta, expected, atol=1e-6)
    np.testing.assert_array_equal(segment_angiogram(image, model, flips=True), tta > 0.5)
