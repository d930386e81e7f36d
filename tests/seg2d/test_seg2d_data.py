"""Training samples (synthetic, DCA1, augmentation), the training loop and the new render options."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from autocar.errors import AutocarError
from autocar.geometry import CArmView
from autocar.seg2d.data import (
    DCA1_TRAINING_IDS,
    DCA1_VALIDATION_IDS,
    AugmentConfig,
    LabelledImage,
    SynthConfig,
    augment,
    load_dca1,
    synthetic_angiogram,
)
from autocar.seg2d.segment import load_model
from autocar.seg2d.train import resolve_dca1_training, train_seg2d
from autocar.seg2d.unet import UNetConfig
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

SMALL = SynthConfig(size=96)


def test_dca1_split_is_a_partition_of_the_training_half():
    assert len(DCA1_TRAINING_IDS) == 32 and len(DCA1_VALIDATION_IDS) == 8
    assert sorted(DCA1_TRAINING_IDS + DCA1_VALIDATION_IDS) == list(range(1, 41))


def test_synthetic_angiogram_is_seeded_and_labelled():
    a = synthetic_angiogram(7, SMALL)
    b = synthetic_angiogram(7, SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.image.shape == a.mask.shape == (96, 96) and a.mask.dtype == bool
    assert a.mask.any()
    # Vessels are darker than the background around them.
    m = a.mask.astype(np.uint8)
    ring = (cv2.dilate(m, np.ones((7, 7), np.uint8)) > 0) & (cv2.dilate(m, np.ones((3, 3), np.uint8)) == 0)
    scale = float(np.iinfo(a.image.dtype).max)
    assert a.image[a.mask].mean() / scale < a.image[ring].mean() / scale
    assert not np.array_equal(synthetic_angiogram(8, SMALL).mask, a.mask)


def test_augment_shapes_labels_and_determinism():
    yy, xx = np.mgrid[0:120, 0:100]
    mask = np.abs(yy - xx) < 4
    image = np.where(mask, 60, 190).astype(np.uint8)
    sample = LabelledImage("bar", image, mask)
    cfg = AugmentConfig(crop=64)
    x, y, _ = augment(sample, np.random.default_rng(0), cfg)
    assert x.shape == y.shape == (64, 64) and x.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    x2, y2, _ = augment(sample, np.random.default_rng(0), cfg)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # The label follows the image: labelled pixels are dark after any warp.
    for seed in range(5):
        x, y, _ = augment(sample, np.random.default_rng(seed), cfg)
        if y.any() and (y == 0).any():
            assert x[y > 0].mean() < x[y == 0].mean()
    # A small image is padded up to the crop.
    x, y, _ = augment(LabelledImage("s", image[:40, :30], mask[:40, :30]), np.random.default_rng(1), cfg)
    assert x.shape == (64, 64)


def test_load_dca1_errors(tmp_path):
    with pytest.raises(AutocarError, match="does not exist"):
        load_dca1(tmp_path / "nope")
    with pytest.raises(AutocarError, match="no N.png"):
        load_dca1(tmp_path)
    cv2.imwrite(str(tmp_path / "1.png"), np.full((20, 20), 100, np.uint8))
    with pytest.raises(AutocarError, match="1_gt.png"):
        load_dca1(tmp_path)
    cv2.imwrite(str(tmp_path / "1_gt.png"), np.zeros((20, 21), np.uint8))
    with pytest.raises(AutocarError, match="shape"):
        load_dca1(tmp_path)
    gt = np.zeros((20, 20), np.uint8)
    gt[5:8] = 255
    cv2.imwrite(str(tmp_path / "1_gt.png"), gt)
    (item,) = load_dca1(tmp_path)
    assert item.mask.sum() == 60 and item.image.dtype == np.uint8


def test_training_refuses_the_testing_half(tmp_path):
    testing = tmp_path / "Angios_40_testing"
    testing.mkdir()
    with pytest.raises(AutocarError, match="testing half"):
        resolve_dca1_training(testing)
    with pytest.raises(AutocarError, match="testing half"):
        train_seg2d(tmp_path / "run", epochs=1, steps=1, dca1_dir=testing)
    with pytest.raises(AutocarError, match="neither"):
        resolve_dca1_training(tmp_path)


def test_tiny_training_run_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    path = train_seg2d(
        out, epochs=2, steps=1, batch_size=2, crop=32, val_synth=1, seed=3, log=False,
        unet=UNetConfig(4, 2, 8),
        synth=SynthConfig(size=48),
    )
    assert path == out / "model.pt" and path.is_file() and (out / "last.pt").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["synth_fraction"] == 1.0 and cfg["unet"]["depth"] == 2
    lines = [json.loads(s) for s in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert all(0.0 <= r["synth_val_dice"] <= 1.0 and r["synthetic_share"] == 1.0 for r in lines)
    assert lines[0]["best"]  # the first epoch is always the best so far
    assert load_model(path).config.depth == 2
    with pytest.raises(ValueError, match="synth_fraction"):
        train_seg2d(out, epochs=1, steps=1, synth_fraction=1.5)
    with pytest.raises(ValueError, match="crop"):
        train_seg2d(out, epochs=1, steps=1, crop=40)


def _tiny(out, **kw):
    args = dict(epochs=3, steps=2, batch_size=2, crop=32, val_synth=1, seed=5, log=False,
                unet=UNetConfig(4, 2, 8), synth=SynthConfig(size=48))
    args.update(kw)
    return train_seg2d(out, **args)


def _weights(path):
    return {k: v.clone() for k, v in load_model(path).state_dict().items()}


def test_a_stopped_and_resumed_run_ends_with_the_uninterrupted_weights(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _tiny(whole)
    # session_limit_s=0 ends each call after one epoch; the schedule still spans 3 epochs.
    _tiny(parts, session_limit_s=0.0)
    assert [json.loads(s)["epoch"] for s in (parts / "train_log.jsonl").read_text().splitlines()] == [1]
    _tiny(parts, session_limit_s=0.0, resume=True)
    _tiny(parts, resume=True)
    a, b = _weights(whole / "last.pt"), _weights(parts / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log_whole = [json.loads(s) for s in (whole / "train_log.jsonl").read_text().splitlines()]
    log_parts = [json.loads(s) for s in (parts / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log_parts] == [1, 2, 3]
    assert [(r["lr"], r["train_loss"], r["best"]) for r in log_parts] == [(r["lr"], r["train_loss"], r["best"]) for r in log_whole]
    # A finished run resumed adds nothing; more epochs continue it.
    _tiny(parts, resume=True)
    assert len((parts / "train_log.jsonl").read_text().splitlines()) == 3
    _tiny(parts, resume=True, epochs=4)
    assert [json.loads(s)["epoch"] for s in (parts / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    # Without resume the folder starts afresh.
    _tiny(parts, epochs=1)
    assert len((parts / "train_log.jsonl").read_text().splitlines()) == 1


def test_resume_refuses_another_configuration_and_a_broken_checkpoint(tmp_path):
    out = tmp_path / "run"
    _tiny(out, epochs=1)
    with pytest.raises(AutocarError, match=r"differs in lr, seed"):
        _tiny(out, resume=True, lr=1e-3, seed=6)
    with pytest.raises(AutocarError, match="differs in unet"):
        _tiny(out, resume=True, unet=UNetConfig(4, 2, 16))
    ckpt = out / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(AutocarError, match=r"checkpoint\.pt: not a readable seg2d training checkpoint"):
        _tiny(out, resume=True)
    torch.save({"config": {}}, ckpt)
    with pytest.raises(AutocarError, match="missing model, optim"):
        _tiny(out, resume=True)

# ------------------------------------------------------------------ render options
VIEW = CArmView(20.0, 10.0, 1000.0, 750.0, (0.5, 0.5), 96, 96)

def test_fine_tuning_starts_from_the_given_weights_and_keeps_the_better(tmp_path):
    import hashlib

    import torch

    first = train_seg2d(
        tmp_path / "a", epochs=1, steps=1, batch_size=2, crop=32, val_synth=1, seed=3, log=False,
        unet=UNetConfig(4, 2, 8), synth=SynthConfig(size=48),
    )
    out = tmp_path / "b"
    # A different architecture is asked for: the starting weights' own config wins.
    path = train_seg2d(
        out, epochs=1, steps=1, batch_size=2, crop=32, val_synth=1, seed=4, lr=5.0, log=False,
        unet=UNetConfig(8, 3, 16), synth=SynthConfig(size=48), init_weights=first,
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["init_weights"] == str(first)
    assert cfg["init_sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert cfg["unet"]["depth"] == 2 and cfg["unet"]["base_channels"] == 4
    lines = [json.loads(s) for s in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and lines[0]["best"]
    start = load_model(first).state_dict()
    # Epoch 0 is the starting model, scored like any epoch.
    first_log = [json.loads(s) for s in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    assert lines[0]["synth_val_dice"] == pytest.approx(first_log[-1]["synth_val_dice"], abs=1e-5)
    kept = load_model(path).state_dict()
    last = load_model(out / "last.pt").state_dict()
    expected = last if lines[1]["best"] else start
    assert all(torch.equal(kept[k], expected[k]) for k in kept)
    assert not all(torch.equal(start[k], last[k]) for k in start)  # the epoch did train


def test_collimator_blacks_out_the_outside_and_keeps_the_inside():
    tree = generate_tree("left", rng=0).graph
    plain = render_angiogram(tree, VIEW, rng=4)
    found = False
    for seed in range(6):
        col = render_angiogram(tree, VIEW, rng=seed, collimator=True)
        dark = col <= 12  # near black (the floor of the display is 0.03 * 255 = 8)
        if dark.mean() > 0.02:
            found = True
            # Outside the field touches the border.
            assert dark[0].any() or dark[-1].any() or dark[:, 0].any() or dark[:, -1].any()
    assert found
    assert (plain <= 12).mean() < 0.01
    np.testing.assert_array_equal(render_angiogram(tree, VIEW, rng=9, collimator=True),
                                  render_angiogram(tree, VIEW, rng=9, collimator=True))


def test_wires_darken_pixels_outside_the_vessel_mask():
    tree = generate_tree("right", rng=1).graph
    mask = render_mask(tree, VIEW)
    base = render_angiogram(tree, VIEW, rng=2, noise=False, background=False, contrast=1.0).astype(int)
    wired = render_angiogram(tree, VIEW, rng=2, noise=False, background=False, contrast=1.0, wires=3).astype(int)
    darker = (wired - base) < -5
    assert darker[~mask].sum() > 30  # the wires are visible where there is no vessel
    # Same seed: everything but the wires is unchanged (they come from a
    # child generator), and wires only darken.
    assert (wired == base).mean() > 0.6
    assert darker.mean() < 0.3  # thin lines (1-2 px, blurred), not a veil
    assert ((wired - base) > 1).sum() == 0
    with pytest.raises(ValueError, match="wires"):
        render_angiogram(tree, VIEW, wires=-1)
    with pytest.raises(ValueError, match="wires"):
        render_angiogram(tree, VIEW, wires=1.5)
