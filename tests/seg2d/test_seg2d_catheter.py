"""The guiding catheter as a class of its own in the 2D segmenter (issue 22): labels, loss, inference."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from autocar.geometry import CArmView
from autocar.synth.angiogram import catheter_path, render_angiogram
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree
from autocar.seg2d.data import LabelledImage, SynthConfig, augment, synthetic_angiogram
from autocar.seg2d.segment import load_model, predict_probability, save_model
from autocar.seg2d.train import CATHETER_START_LOGIT, train_seg2d
from autocar.seg2d.unet import SegUNet2d, UNetConfig, catheter_loss, seg_loss


def test_the_catheter_path_is_the_one_the_angiogram_draws():
    # render_angiogram(catheter=True) draws catheter_path first from its generator: a copy of the
    # generator's state gives the catheter of the image. Without background and noise the image
    # darkens there (elsewhere only the later draws, e.g. the vignetting, differ a little).
    tree = generate_tree("left", rng=4).graph
    view = CArmView(30.0, 20.0, 1000.0, 750.0, (0.5, 0.5), 256, 256)
    gen = np.random.default_rng(9)
    copy = np.random.default_rng()
    copy.bit_generator.state = gen.bit_generator.state
    cath = render_mask(catheter_path(tree, copy), view)
    plain = dict(contrast=1.0, background=False, noise=False)
    with_c = render_angiogram(tree, view, rng=gen, catheter=True, **plain).astype(float)
    without = render_angiogram(tree, view, rng=np.random.default_rng(9), catheter=False, **plain).astype(float)
    darker = without - with_c
    near = cv2.dilate(cath.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    on = cath & ~render_mask(tree, view)
    assert on.sum() > 100
    assert np.median(darker[on]) > 5 * max(np.median(np.abs(darker[~near])), 1.0)


def test_synthetic_angiograms_carry_their_catheter_label():
    labelled = 0
    for seed in range(6):
        it = synthetic_angiogram(seed, SynthConfig(size=160, collimator_p=0.0, max_wires=0))
        assert it.catheter is not None and it.catheter.shape == it.mask.shape
        assert not (it.catheter & it.mask).any()  # a pixel is catheter or vessel, not both
        labelled += int(it.catheter.any())
    assert labelled >= 3  # catheter_p 0.8
    none = synthetic_angiogram(0, SynthConfig(size=160, catheter_p=0.0))
    assert none.catheter is not None and not none.catheter.any()  # known: there is none


def test_augment_warps_the_catheter_label_with_the_image_and_draws_the_same():
    it = synthetic_angiogram(2, SynthConfig(size=160, collimator_p=0.0, max_wires=0))
    with_c = augment(it, np.random.default_rng(5))
    without = augment(LabelledImage(it.name, it.image, it.mask), np.random.default_rng(5))
    assert np.array_equal(with_c[0], without[0]) and np.array_equal(with_c[1], without[1])
    assert without[2] is None
    c = with_c[2]
    assert c.shape == with_c[1].shape and set(np.unique(c)) <= {0.0, 1.0}
    if c.any():
        assert with_c[0][c > 0].mean() < np.median(with_c[0])  # still on the dark tube


def test_catheter_loss_counts_only_labelled_images():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 8, generator=gen)
    target = (torch.rand(3, 1, 8, 8, generator=gen) > 0.8).float()
    assert catheter_loss(logits, target, torch.tensor([False, False, False])).item() == 0.0
    full = catheter_loss(logits, target, torch.tensor([True, True, True]))
    assert full.item() == pytest.approx(seg_loss(logits, target).item())
    part = catheter_loss(logits, target, torch.tensor([True, False, False]))
    assert part.item() == pytest.approx(seg_loss(logits[:1], target[:1]).item())


def test_a_pixel_called_catheter_is_no_vessel(tmp_path):
    torch.manual_seed(0)
    model = SegUNet2d(UNetConfig(4, 2, 8, catheter_channel=True)).eval()
    assert model(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)
    image = np.random.default_rng(0).uniform(0, 255, (32, 32)).astype(np.uint8)
    with torch.no_grad():
        model.head.bias[:] = torch.tensor([8.0, -8.0])  # vessel everywhere, catheter nowhere
    assert predict_probability(image, model).min() > 0.99
    with torch.no_grad():
        model.head.bias[1] = 8.0  # now catheter everywhere
    assert predict_probability(image, model).max() < 0.01
    back = load_model(save_model(model, tmp_path / "m.pt"))
    assert back.config.catheter_channel and np.allclose(predict_probability(image, back), predict_probability(image, model))


def test_fine_tuning_a_one_channel_model_adds_the_catheter_head(tmp_path):
    torch.manual_seed(1)
    base = SegUNet2d(UNetConfig(4, 2, 8))
    init = save_model(base, tmp_path / "base.pt")
    out = tmp_path / "run"
    # lr 0: the weights stay where they started, so the head can be compared.
    train_seg2d(out, epochs=1, steps=1, batch_size=2, crop=32, val_synth=4, seed=0, lr=0.0, log=False,
                init_weights=init, catheter_channel=True)
    assert json.loads((out / "config.json").read_text())["unet"]["catheter_channel"] is True
    trained = load_model(out / "last.pt")
    assert trained.config.catheter_channel and trained.head.weight.shape[0] == 2
    assert torch.equal(trained.head.weight[:1], base.head.weight) and torch.equal(trained.head.bias[:1], base.head.bias)
    assert not trained.head.weight[1:].any() and trained.head.bias[1].item() == CATHETER_START_LOGIT
    lines = [json.loads(s) for s in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]
    # It starts where the one-channel model was: the same vessel probability to 0.25 %.
    image = synthetic_angiogram(1_000_003).image
    assert np.abs(predict_probability(image, trained) - predict_probability(image, base)).max() < 0.003
    # The validation logs how much of the labelled catheter is called vessel.
    assert all(0.0 <= r["synth_val_catheter_as_vessel"] <= 1.0 for r in lines)
