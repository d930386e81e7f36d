"""Training on pose-adapted synthetic samples generated on the fly.

``autocar train OUT`` (or ``torchrun --nproc-per-node K -m autocar.cli train
OUT``) trains :class:`AutocarNet`. Every step draws a fresh sample (tree,
poses, weakly synchronised masks, hull, targets); the validation set is a
fixed list of seeds so epochs are comparable. Outputs in OUT:

- ``checkpoint.pt``: model, optimiser, epoch and step, for ``--resume``;
- ``model.pt``: the weights alone (what the package ships);
- ``config.json``: the full training configuration;
- ``train_log.jsonl``: one JSON line per epoch (losses and validation scores).

With ``init_weights`` (``--init``) the run starts from a trained model.pt
instead of a random initialisation (fine-tuning with its own schedule).

Under torch.distributed (environment variable WORLD_SIZE > 1, as set by
torchrun) each rank draws its own samples, gradients are averaged by
DistributedDataParallel, and only rank 0 validates and writes files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autocar.io.atomic import atomic_write_bytes, atomic_write_json
from autocar.net.model import AutocarNet, NetConfig
from autocar.net.samples import Sample, SampleConfig, make_sample
from autocar.net.unet import unet_loss
from autocar.sbp.carve import SBPConfig

__all__ = ["TrainConfig", "train", "load_model", "sample_tensors", "validate"]

VALIDATION_SEED_BASE = 1_000_000  # validation seeds never overlap training seeds (< 1e6)


@dataclass(frozen=True)
class TrainConfig:
    """Training configuration (saved as config.json beside the weights).

    Attributes
    ----------
    sides : trees to train on.
    epochs, steps_per_epoch : length of training (one sample per step).
    val_samples : size of the fixed validation set.
    lr, weight_decay : AdamW parameters; the learning rate follows a cosine decay.
    seed : seed of the model initialisation and of the sample stream.
    threads : torch intra-op threads on CPU.
    device : "cpu", "cuda" or "auto".
    max_voxels : skip samples whose hull is larger (memory guard).
    rotate_deg, size_jitter : scene augmentation of every sample (see
        :class:`~autocar.net.samples.SampleConfig`; 0 = none).
    segmented_fraction : share of samples whose masks are the 2D U-Net's segmentation of
        rendered grey angiograms (:class:`~autocar.net.samples.SampleConfig`).
    real_trees, real_fraction : real centre-line files and the share of samples drawn
        from them (:class:`~autocar.net.samples.SampleConfig`); ``real_trees_sha256``
        is filled in by :func:`train` (the files are not shipped, their hashes are).
    init_weights : a model.pt the run starts from (fine-tuning; its network
        config must equal ``net``), or None for a random initialisation;
        ``init_sha256`` is the SHA-256 of that file, filled in by :func:`train`.
    """

    sides: tuple[str, ...] = ("left", "right")
    epochs: int = 10
    steps_per_epoch: int = 100
    val_samples: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    max_voxels: int = 400_000
    net: NetConfig = field(default_factory=NetConfig)
    sbp_margin_px: float = 1.0
    init_weights: str | None = None
    init_sha256: str | None = None
    rotate_deg: float = 0.0
    size_jitter: float = 0.0
    real_trees: tuple[str, ...] = ()
    real_fraction: float = 0.0
    segmented_fraction: float = 0.0
    real_trees_sha256: tuple[str, ...] = ()

    def sample_config(self) -> SampleConfig:
        return SampleConfig(sides=tuple(self.sides), sbp=SBPConfig(margin_px=self.sbp_margin_px),
                            rotate_deg=self.rotate_deg, size_jitter=self.size_jitter,
                            real_trees=tuple(self.real_trees), real_fraction=self.real_fraction,
                            segmented_fraction=self.segmented_fraction)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sides"] = list(self.sides)
        d["real_trees"] = list(self.real_trees)
        d["real_trees_sha256"] = list(self.real_trees_sha256)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["net"] = NetConfig(**d.get("net", {}))
        d["sides"] = tuple(d.get("sides", ("left", "right")))
        d["real_trees"] = tuple(d.get("real_trees", ()))
        d["real_trees_sha256"] = tuple(d.get("real_trees_sha256", ()))
        return cls(**d)


def sample_tensors(sample: Sample, device: torch.device) -> dict[str, torch.Tensor]:
    """Torch tensors of one sample on ``device``."""
    return {
        "distances": torch.as_tensor(sample.distances, dtype=torch.float32, device=device),
        "occupancy": torch.as_tensor(sample.occupancy, dtype=torch.float32, device=device),
        "centerness": torch.as_tensor(sample.centerness, dtype=torch.float32, device=device),
    }


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def validate(model: AutocarNet, samples: list[Sample], device: torch.device) -> dict[str, float]:
    """Loss and voxel occupancy scores (threshold 0.5) over fixed samples."""
    model.eval()
    tot = {"loss": 0.0, "tp": 0.0, "fp": 0.0, "fn": 0.0, "hull_precision": 0.0}
    with torch.no_grad():
        for s in samples:
            t = sample_tensors(s, device)
            logit, ctr = model(t["distances"], s.hull, s.views)
            loss, _ = unet_loss(logit, ctr, t["occupancy"], t["centerness"])
            pred = logit > 0
            gt = t["occupancy"] > 0.5
            tot["loss"] += float(loss)
            tot["tp"] += float((pred & gt).sum())
            tot["fp"] += float((pred & ~gt).sum())
            tot["fn"] += float((~pred & gt).sum())
            tot["hull_precision"] += float(gt.float().mean())
    n = max(1, len(samples))
    tp, fp, fn = tot["tp"], tot["fp"], tot["fn"]
    model.train()
    return {
        "val_loss": tot["loss"] / n,
        "val_voxel_precision": tp / max(1.0, tp + fp),
        "val_voxel_recall": tp / max(1.0, tp + fn),
        "val_voxel_dice": 2 * tp / max(1.0, 2 * tp + fp + fn),
        "val_hull_precision": tot["hull_precision"] / n,
    }


def train(config: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> Path:
    """Train and write checkpoint.pt, model.pt, config.json and train_log.jsonl into ``out``."""
    import torch.distributed as dist
    from tqdm import tqdm

    out = Path(out)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _device(config.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = AutocarNet(config.net).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * config.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, total_steps) / max(1, total_steps)))
    )
    start_epoch = 0
    if config.init_weights is not None:
        init_path = Path(config.init_weights)
        start = load_model(init_path, device=device)
        if start.config != config.net:
            raise ValueError(f"{init_path}: its network {start.config} differs from the run's {config.net}")
        model.load_state_dict(start.state_dict())
        config = replace(config, init_sha256=hashlib.sha256(init_path.read_bytes()).hexdigest())
    if config.real_trees:
        config = replace(config, real_trees_sha256=tuple(hashlib.sha256(Path(p).read_bytes()).hexdigest()
                                                         for p in config.real_trees))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optim"])
        sched.load_state_dict(ckpt["sched"])
        start_epoch = int(ckpt["epoch"])
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    sample_cfg = config.sample_config()
    val = [make_sample(VALIDATION_SEED_BASE + i, sample_cfg) for i in range(config.val_samples)] if rank == 0 else []
    if rank == 0:
        # config.json always describes the run that wrote the latest weights
        # (a resumed run may extend the number of epochs).
        atomic_write_json(out / "config.json", config.to_dict())
        if start_epoch == 0 and (out / "train_log.jsonl").exists():
            (out / "train_log.jsonl").unlink()
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        losses: list[float] = []
        parts: dict[str, list[float]] = {}
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not progress or rank != 0, unit="sample")
        for step in bar:
            seed = (epoch * config.steps_per_epoch + step) * world + rank + config.seed * 7919
            sample = make_sample(seed % VALIDATION_SEED_BASE, sample_cfg)
            n = len(sample.occupancy)
            if n == 0 or n > config.max_voxels:
                continue
            t = sample_tensors(sample, device)
            logit, ctr = net(t["distances"], sample.hull, sample.views)
            loss, terms = unet_loss(logit, ctr, t["occupancy"], t["centerness"])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            sched.step()
            losses.append(float(loss.detach()))
            for k, v in terms.items():
                parts.setdefault(k, []).append(float(v))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", voxels=n)
        if rank != 0:
            continue
        record = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **{f"train_{k}": float(np.mean(v)) for k, v in parts.items()},
            **validate(model, val, device),
            "lr": float(sched.get_last_lr()[0]),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        with open(out / "train_log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if progress:
            tqdm.write(json.dumps(record))
        import io

        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "optim": optim.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch + 1, "config": config.to_dict()}, buf)
        atomic_write_bytes(ckpt_path, buf.getvalue())
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "config": config.to_dict()}, buf)
        atomic_write_bytes(out / "model.pt", buf.getvalue())
    if world > 1:
        dist.destroy_process_group()
    return out / "model.pt"


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> AutocarNet:
    """Load weights written by :func:`train` (no network access)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise ValueError(f"{path}: not a readable autocar model ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or "model" not in blob or "config" not in blob:
        raise ValueError(f"{path}: not an autocar model (expected keys 'model' and 'config')")
    config = TrainConfig.from_dict(blob["config"])
    model = AutocarNet(config.net)
    model.load_state_dict(blob["model"])
    model.eval()
    return model.to(device)

