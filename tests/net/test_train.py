"""Tests of autocar.net.train: a tiny CPU run, its files, resuming and load_model."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from autocar.net.model import AutocarNet, NetConfig
from autocar.net.train import TrainConfig, load_model, train

TINY_NET = NetConfig(encoder_channels=4, base_channels=4, depth=2)


def tiny_config(**kw) -> TrainConfig:
    base = dict(epochs=2, steps_per_epoch=2, val_samples=1, threads=1, device="cpu", net=TINY_NET)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(autouse=True)
def _keep_threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 2-epoch run (shared; tests that change it work on a copy)."""
    old = torch.get_num_threads()
    out = tmp_path_factory.mktemp("train") / "run"
    try:
        model_path = train(tiny_config(), out, progress=False)
    finally:
        torch.set_num_threads(old)
    assert model_path == out / "model.pt"
    return out


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_tiny_run_writes_its_files(trained: Path):
    assert sorted(p.name for p in trained.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "model.pt",
        "train_log.jsonl",
    ]
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["epochs"] == 2 and cfg["steps_per_epoch"] == 2 and cfg["val_samples"] == 1
    assert cfg["net"] == TINY_NET.to_dict()
    assert TrainConfig.from_dict(cfg) == tiny_config()
    log = read_log(trained)
    assert [r["epoch"] for r in log] == [1, 2]
    for r in log:
        for key in ("train_loss", "val_loss", "val_voxel_dice", "val_voxel_precision", "val_voxel_recall", "lr"):
            assert math.isfinite(r[key]), key
        assert 0 <= r["val_voxel_dice"] <= 1
        assert 0 < r["val_hull_precision"] < 1
    # Cosine decay: the learning rate goes down.
    assert log[1]["lr"] < log[0]["lr"] <= tiny_config().lr
    ckpt = torch.load(trained / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 2
    assert set(ckpt) >= {"model", "optim", "sched", "epoch", "config"}


def test_load_model_returns_the_trained_weights(trained: Path):
    model = load_model(trained / "model.pt")
    assert isinstance(model, AutocarNet)
    assert not model.training
    assert model.config == TINY_NET
    ckpt = torch.load(trained / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert_same_state(model.state_dict(), ckpt["model"])
    # Training moved the weights away from a fresh initialisation with the same seed.
    torch.manual_seed(0)
    fresh = AutocarNet(TINY_NET)
    assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in model.state_dict().items())


def test_resume_appends_exactly_one_epoch(trained: Path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = read_log(out)
    ckpt_before = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    train(tiny_config(epochs=3), out, resume=True, progress=False)
    after = read_log(out)
    assert len(after) == len(before) + 1
    assert after[:2] == before
    assert after[2]["epoch"] == 3
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 3
    assert ckpt["config"]["epochs"] == 3
    assert json.loads((out / "config.json").read_text())["epochs"] == 3  # config.json follows the run
    # The third epoch continued from the saved weights and changed them.
    assert any(not torch.equal(v, ckpt_before["model"][k]) for k, v in ckpt["model"].items())
    assert_same_state(load_model(out / "model.pt").state_dict(), ckpt["model"])


def test_resume_of_a_finished_run_adds_nothing(trained: Path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = (out / "train_log.jsonl").read_text()
    train(tiny_config(), out, resume=True, progress=False)
    assert (out / "train_log.jsonl").read_text() == before


def test_load_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.pt")


def test_load_model_truncated_file(trained: Path, tmp_path):
    blob = (trained / "model.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_model(bad)


def test_load_model_foreign_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="foreign.pt"):
        load_model(path)
    text = tmp_path / "text.pt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="text.pt"):
        load_model(text)


def test_fine_tuning_starts_from_the_given_weights(trained: Path, tmp_path):
    import hashlib

    init = trained / "model.pt"
    out = tmp_path / "ft"
    # lr 0: the weights cannot move (BatchNorm running statistics still do), so the
    # learned parameters are exactly the starting model's.
    train(tiny_config(epochs=1, steps_per_epoch=1, lr=0.0, seed=5, init_weights=str(init)), out, progress=False)
    assert_same_state(dict(load_model(out / "model.pt").named_parameters()), dict(load_model(init).named_parameters()))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["init_weights"] == str(init)
    assert cfg["init_sha256"] == hashlib.sha256(init.read_bytes()).hexdigest()
    # Without --init the same run starts elsewhere.
    train(tiny_config(epochs=1, steps_per_epoch=1, lr=0.0, seed=5), tmp_path / "fresh", progress=False)
    fresh = dict(load_model(tmp_path / "fresh" / "model.pt").named_parameters())
    assert any(not torch.equal(v, fresh[k]) for k, v in load_model(init).named_parameters())
    with pytest.raises(ValueError, match="differs"):
        other = NetConfig(encoder_channels=4, base_channels=8, depth=2)
        train(tiny_config(net=other, init_weights=str(init)), tmp_path / "bad", progress=False)
