"""Training of the 2D vessel U-Net on synthetic and real (DCA1 training) angiograms.

``train_seg2d(out_dir, ...)`` (also ``python -m autocar.seg2d.train OUT
...``) trains :class:`~autocar.seg2d.unet.SegUNet2d` with Adam, a cosine
learning-rate decay and the BCE + soft Dice loss
(:func:`~autocar.seg2d.unet.seg_loss`). Every batch element is, with
probability ``synth_fraction``, a fresh synthetic angiogram
(:func:`~autocar.seg2d.data.synthetic_angiogram`, seeds drawn in
[0, 1e6) from the run's generator), else one of the DCA1 training images
:data:`~autocar.seg2d.data.DCA1_TRAINING_IDS`; both go through
:func:`~autocar.seg2d.data.augment`. The DCA1 testing half is refused.

Validation after every epoch, on fixed sets: the held-out DCA1 training
images :data:`~autocar.seg2d.data.DCA1_VALIDATION_IDS` (whole 300 x 300
images) and the synthetic angiograms of seeds
``VALIDATION_SEED_BASE + i`` (i < ``val_synth``). Scores are mean
per-image Dice at probability 0.5; the selection score is the mean of the
available sets' scores, and the epoch with the best one is kept.

With ``init_weights`` the run starts from a shipped-format weights file
instead of a random initialisation (fine-tuning); that starting point is
validated first (epoch 0 of the log) and counts as a candidate, so the
result is never worse on the validation score than where it started.

Outputs in ``out_dir``: ``model.pt`` (best epoch, the shipped format of
:func:`~autocar.seg2d.segment.save_model`), ``last.pt`` (last epoch),
``config.json``, ``train_log.jsonl`` (one JSON line per epoch) and
``checkpoint.pt`` (after every epoch: model, optimiser, step, best score,
the sample stream's and torch's random states, wall time so far).

Training accumulates across sessions: ``resume=True`` (``--resume``)
continues from ``checkpoint.pt`` with the same configuration (only
``epochs``, ``threads`` and ``time_limit_s`` may change), and
``session_limit_s`` (``--session-limit``) ends this invocation after the
epoch in which its own wall time passes the limit, without touching the
learning-rate schedule. Without a ``time_limit_s`` a run stopped and
resumed ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from autocar.errors import AutocarError
from autocar.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
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
from autocar.seg2d.scores import dice_2d
from autocar.seg2d.segment import load_model, predict_probabilities, save_model
from autocar.seg2d.unet import SegUNet2d, UNetConfig, catheter_loss, seg_loss

__all__ = ["CATHETER_START_LOGIT", "VALIDATION_SEED_BASE", "Seg2dTrainConfig", "main", "resolve_dca1_training", "train_seg2d"]

#: Synthetic validation seeds start here; training seeds are < 1e6, and the
#: benchmark uses seeds from 2e6 (benchmarks/bench_seg2d.py).
VALIDATION_SEED_BASE = 1_000_000


@dataclass(frozen=True)
class Seg2dTrainConfig:
    """Training configuration (saved as config.json beside the weights).

    Attributes
    ----------
    epochs, steps : epochs and optimiser steps per epoch.
    batch_size : crops per step.
    lr : initial Adam learning rate; cosine decay to ``lr * min_lr_fraction``.
    seed : seed of the initialisation, the sample stream and the augmentation.
    synth_fraction : probability that a batch element is synthetic (0-1).
    threads : torch intra-op threads.
    val_synth : number of synthetic validation images.
    dice_weight : weight of the soft Dice term of the loss.
    dca1_training : the DCA1 training folder used (None: synthetic only).
    time_limit_s : wall-time budget (None: none). The cosine schedule then
        follows ``max(step / (epochs * steps), elapsed / time_limit_s)`` and
        training stops after the epoch where that reaches 1, so a slow
        machine still ends with a decayed learning rate.
    init_weights : weights file the run starts from (a fine-tuning run), or
        None for a random initialisation; ``init_sha256`` is its SHA-256.
    """

    epochs: int = 15
    steps: int = 100
    batch_size: int = 8
    lr: float = 2e-3
    min_lr_fraction: float = 0.02
    seed: int = 0
    synth_fraction: float = 0.4
    threads: int = 1
    val_synth: int = 16
    dice_weight: float = 1.0
    dca1_training: str | None = None
    time_limit_s: float | None = None
    init_weights: str | None = None
    init_sha256: str | None = None
    unet: UNetConfig = field(default_factory=UNetConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_dca1_training(dca1_dir: str | Path) -> Path:
    """The DCA1 training folder from ``dca1_dir`` (the database folder or its training half).

    Raises
    ------
    AutocarError
        The folder is missing, or is the testing half (never trained on).
    """
    root = Path(dca1_dir)
    if "testing" in root.name.lower():
        raise AutocarError(f"dca1_dir {root} is the DCA1 testing half: training on it is not allowed")
    if (root / "Angios_40_training").is_dir():
        return root / "Angios_40_training"
    if root.is_dir() and any(root.glob("*_gt.png")):
        return root
    raise AutocarError(f"dca1_dir {root} holds neither Angios_40_training/ nor N.png + N_gt.png images")


def _validate(model: SegUNet2d, sets: dict[str, list[LabelledImage]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean Dice per validation set (the selection score), and for sets with catheter labels the
    share of catheter pixels called vessel (``<set>_catheter_as_vessel``, logged only)."""
    scores, extra = {}, {}
    for name, items in sets.items():
        probs = predict_probabilities([it.image for it in items], model)
        scores[name] = float(np.mean([dice_2d(p > 0.5, it.mask) for p, it in zip(probs, items)]))
        labelled = [(p, it.catheter) for p, it in zip(probs, items) if it.catheter is not None and it.catheter.any()]
        if labelled:
            called = sum(int(((p > 0.5) & c).sum()) for p, c in labelled)
            extra[f"{name}_catheter_as_vessel"] = round(called / sum(int(c.sum()) for _, c in labelled), 4)
    return scores, extra


def _batch(
    gen: np.random.Generator, cfg: Seg2dTrainConfig, real: Sequence[LabelledImage]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Images (B, 1, S, S), vessel labels, catheter labels (zeros where unknown), whether each
    image's catheter label is known (B,), and how many images are synthetic."""
    xs, ys, cs, known, n_synth = [], [], [], [], 0
    for _ in range(cfg.batch_size):
        if not real or gen.uniform() < cfg.synth_fraction:
            sample = synthetic_angiogram(int(gen.integers(0, VALIDATION_SEED_BASE)), cfg.synth)
            n_synth += 1
        else:
            sample = real[int(gen.integers(0, len(real)))]
        x, y, c = augment(sample, gen, cfg.augment)
        xs.append(x)
        ys.append(y)
        cs.append(np.zeros_like(y) if c is None else c)
        known.append(c is not None)
    return (torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None]),
            torch.from_numpy(np.stack(cs)[:, None]), torch.tensor(known), n_synth)


#: Catheter logit a widened model starts from (probability 0.25 %).
CATHETER_START_LOGIT = -6.0


def _load_init(model: SegUNet2d, init: SegUNet2d) -> None:
    """``init``'s weights into ``model``; a one-channel ``init`` gives a catheter-channel model its
    vessel head and a catheter head that starts at "no catheter anywhere" (weights 0, bias
    :data:`CATHETER_START_LOGIT`), so the widened model starts as good as ``init``."""
    state = init.state_dict()
    if model.config.catheter_channel and not init.config.catheter_channel:
        weight, bias = state["head.weight"], state["head.bias"]
        state["head.weight"] = torch.cat([weight, torch.zeros_like(weight)])
        state["head.bias"] = torch.cat([bias, torch.full_like(bias, CATHETER_START_LOGIT)])
    model.load_state_dict(state)


#: Configuration keys a resumed run may change.
RESUMABLE_CHANGES = ("epochs", "threads", "time_limit_s")


def _save_checkpoint(path: Path, cfg: Seg2dTrainConfig, model: SegUNet2d, opt: torch.optim.Optimizer,
                     gen: np.random.Generator, *, epoch: int, step: int, best: float, elapsed_s: float,
                     log_lines: list[str]) -> None:
    buf = io.BytesIO()
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "optim": opt.state_dict(),
                "numpy_rng": gen.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "epoch": epoch, "step": step, "best": best, "elapsed_s": elapsed_s,
                "log_lines": list(log_lines)}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, cfg: Seg2dTrainConfig) -> dict:
    """The checkpoint of ``path`` if it was written by a run of configuration ``cfg``
    (apart from :data:`RESUMABLE_CHANGES`); AutocarError naming what differs otherwise."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        saved = dict(ckpt["config"])
    except Exception as exc:  # truncated file, not a torch file, not a dict
        raise AutocarError(f"{path}: not a readable seg2d training checkpoint ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in ("model", "optim", "numpy_rng", "torch_rng", "epoch", "step", "best", "elapsed_s", "log_lines")
               if k not in ckpt]
    if missing:
        raise AutocarError(f"{path}: not a seg2d training checkpoint (missing {', '.join(missing)})")
    now = json.loads(json.dumps(cfg.to_dict()))
    saved = json.loads(json.dumps(saved))
    differ = sorted(k for k in set(now) | set(saved) if k not in RESUMABLE_CHANGES and now.get(k) != saved.get(k))
    if differ:
        raise AutocarError(f"{path}: cannot resume, the run's configuration differs in {', '.join(differ)} "
                           f"(only {', '.join(RESUMABLE_CHANGES)} may change)")
    return ckpt


def train_seg2d(
    out_dir: str | Path,
    *,
    epochs: int = 15,
    steps: int = 100,
    seed: int = 0,
    synth_fraction: float = 0.4,
    dca1_dir: str | Path | None = None,
    threads: int = 1,
    batch_size: int = 8,
    lr: float = 2e-3,
    val_synth: int = 16,
    crop: int = 192,
    time_limit_s: float | None = None,
    unet: UNetConfig | None = None,
    synth: SynthConfig | None = None,
    init_weights: str | Path | None = None,
    log: bool = True,
    resume: bool = False,
    session_limit_s: float | None = None,
    catheter_channel: bool = False,
) -> Path:
    """Train the 2D vessel U-Net; returns the path of the best ``model.pt``.

    Parameters
    ----------
    out_dir : folder for model.pt, last.pt, config.json, train_log.jsonl
        (created; existing files there are replaced).
    epochs, steps : epochs and steps per epoch (>= 1).
    seed : run seed.
    synth_fraction : share of synthetic crops (0-1); 1.0 when ``dca1_dir`` is None.
    dca1_dir : DCA1 folder (containing Angios_40_training) or its training half.
    threads : torch threads (>= 1).
    batch_size, lr, val_synth, crop : see :class:`Seg2dTrainConfig` / AugmentConfig.
    time_limit_s : wall-time budget (see :class:`Seg2dTrainConfig`).
    unet : the architecture (default ``UNetConfig()``).
    synth : how synthetic angiograms are made (default ``SynthConfig()``).
    init_weights : start from this :func:`~autocar.seg2d.segment.save_model`
        file (fine-tuning; its U-Net config replaces ``unet``) instead of a
        random initialisation.
    log : print one line per epoch.
    resume : continue from ``out_dir/checkpoint.pt`` when it exists (the
        run's configuration must match apart from ``epochs``, ``threads`` and
        ``time_limit_s``; otherwise an :class:`~autocar.errors.AutocarError`
        names the differing keys).
    session_limit_s : stop after the epoch in which this call's wall time
        passes this many seconds (None: run to the end); resume later.
    catheter_channel : train a second output, the guiding catheter (labelled on
        synthetic angiograms, unknown on DCA1); with ``init_weights`` of a
        one-channel model its vessel head is kept and the catheter head added.
    """
    if int(epochs) < 1 or int(steps) < 1 or int(batch_size) < 1 or int(threads) < 1:
        raise ValueError(f"epochs, steps, batch_size and threads must be >= 1, got {epochs}, {steps}, {batch_size}, {threads}")
    if not 0.0 <= float(synth_fraction) <= 1.0:
        raise ValueError(f"synth_fraction must be in [0, 1], got {synth_fraction}")
    init_model = None
    if init_weights is not None:
        init_model = load_model(init_weights)
        unet = replace(init_model.config, catheter_channel=init_model.config.catheter_channel or catheter_channel)
    elif catheter_channel:
        unet = replace(UNetConfig() if unet is None else unet, catheter_channel=True)
    unet = UNetConfig() if unet is None else unet
    synth = SynthConfig() if synth is None else synth
    if int(crop) < 16 or int(crop) % (2**unet.depth):
        raise ValueError(f"crop must be a multiple of {2**unet.depth} and >= 16, got {crop}")
    train_dir = resolve_dca1_training(dca1_dir) if dca1_dir is not None else None
    if train_dir is None:
        synth_fraction = 1.0
    cfg = Seg2dTrainConfig(
        epochs=int(epochs),
        steps=int(steps),
        batch_size=int(batch_size),
        lr=float(lr),
        seed=int(seed),
        synth_fraction=float(synth_fraction),
        threads=int(threads),
        val_synth=int(val_synth),
        dca1_training=None if train_dir is None else str(train_dir),
        time_limit_s=time_limit_s,
        init_weights=None if init_weights is None else str(init_weights),
        init_sha256=None if init_weights is None else hashlib.sha256(Path(init_weights).read_bytes()).hexdigest(),
        unet=unet,
        synth=synth,
        augment=AugmentConfig(crop=int(crop)),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    ckpt = _load_checkpoint(ckpt_path, cfg) if resume and ckpt_path.is_file() else None
    atomic_write_json(out / "config.json", cfg.to_dict())
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = np.random.default_rng(cfg.seed)

    real = load_dca1(train_dir, DCA1_TRAINING_IDS) if train_dir is not None else []
    val_sets: dict[str, list[LabelledImage]] = {}
    if train_dir is not None:
        val_sets["dca1_val"] = load_dca1(train_dir, DCA1_VALIDATION_IDS)
    if cfg.val_synth > 0:
        val_sets["synth_val"] = [synthetic_angiogram(VALIDATION_SEED_BASE + i, cfg.synth) for i in range(cfg.val_synth)]

    model = SegUNet2d(cfg.unet)
    if init_model is not None:
        _load_init(model, init_model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    total = cfg.epochs * cfg.steps
    log_path = out / "train_log.jsonl"
    lines: list[str] = []
    best = -1.0
    step = 0
    first_epoch = 0
    before_s = 0.0  # wall time of the earlier sessions of a resumed run
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        gen.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        step, first_epoch, best = int(ckpt["step"]), int(ckpt["epoch"]), float(ckpt["best"])
        before_s = float(ckpt["elapsed_s"])
        lines = list(ckpt["log_lines"])
    session_start = time.monotonic()
    start = session_start - before_s

    def progress(step: int) -> float:
        # Fraction of the run done: by steps, or by wall time under a time limit.
        done = step / total
        if cfg.time_limit_s is not None:
            done = max(done, (time.monotonic() - start) / cfg.time_limit_s)
        return min(done, 1.0)

    def lr_at(done: float) -> float:
        return cfg.lr * (cfg.min_lr_fraction + (1 - cfg.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * done)))

    def emit(record: dict) -> None:
        lines.append(json.dumps(record))
        atomic_write_text(log_path, "\n".join(lines) + "\n")
        if log:
            print(json.dumps(record), flush=True)

    if init_model is not None and ckpt is None:
        # Epoch 0: the starting point, so a fine-tune never ships worse than what it started from.
        scores, extra = _validate(model, val_sets)
        best = float(np.mean(list(scores.values()))) if scores else -float("inf")
        save_model(model, out / "model.pt")
        emit({"epoch": 0, "step": 0, **{f"{k}_dice": round(v, 5) for k, v in scores.items()}, **extra,
              "val_score": round(best, 5), "best": True, "init_weights": cfg.init_weights})
    elif ckpt is not None:
        atomic_write_text(log_path, "\n".join(lines) + "\n" if lines else "")
    for epoch in range(first_epoch, cfg.epochs):
        if progress(step) >= 1.0:
            break
        model.train()
        losses, n_synth, t_data, t_opt = [], 0, 0.0, 0.0
        for _ in range(cfg.steps):
            t0 = time.monotonic()
            x, y, c, known, ns = _batch(gen, cfg, real)
            t1 = time.monotonic()
            lr_now = lr_at(progress(step))
            for g in opt.param_groups:
                g["lr"] = lr_now
            logits = model(x)
            loss = seg_loss(logits[:, :1], y, dice_weight=cfg.dice_weight)
            if cfg.unet.catheter_channel:
                loss = loss + catheter_loss(logits[:, 1:], c, known)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            t_opt += time.monotonic() - t1
            t_data += t1 - t0
            losses.append(loss.detach().item())
            n_synth += ns
            step += 1
        scores, extra = _validate(model, val_sets)
        score = float(np.mean(list(scores.values()))) if scores else -float(np.mean(losses))
        improved = score > best
        if improved:
            best = score
            save_model(model, out / "model.pt")
        save_model(model, out / "last.pt")
        emit({
            "epoch": epoch + 1,
            "step": step,
            "lr": round(lr_now, 8),
            "train_loss": round(float(np.mean(losses)), 5),
            "synthetic_share": round(n_synth / (cfg.steps * cfg.batch_size), 4),
            **{f"{k}_dice": round(v, 5) for k, v in scores.items()},
            **extra,
            "val_score": round(score, 5),
            "best": improved,
            "data_s": round(t_data, 1),
            "optim_s": round(t_opt, 1),
            "elapsed_s": round(time.monotonic() - start, 1),
        })
        _save_checkpoint(ckpt_path, cfg, model, opt, gen, epoch=epoch + 1, step=step, best=best,
                         elapsed_s=time.monotonic() - start, log_lines=lines)
        if session_limit_s is not None and time.monotonic() - session_start >= session_limit_s:
            if log and epoch + 1 < cfg.epochs and progress(step) < 1.0:
                print(f"session limit reached after epoch {epoch + 1}: continue with --resume", flush=True)
            break
    return out / "model.pt"


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m autocar.seg2d.train OUT [options]``."""
    p = argparse.ArgumentParser(prog="python -m autocar.seg2d.train", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synth-fraction", type=float, default=0.4)
    p.add_argument("--dca1-dir", default=None, help="DCA1 folder with Angios_40_training/ (never the testing half)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val-synth", type=int, default=16)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--init", default=None, help="start from these seg2d weights (fine-tuning) instead of a random initialisation")
    p.add_argument("--time-limit", type=float, default=None, help="wall-time budget, s: the learning-rate schedule follows max(step, time) progress and "
        "training stops after the epoch that reaches it")
    p.add_argument("--catheter-class", action="store_true", help="a second output: the guiding catheter, never a vessel")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (same options; --epochs may grow)")
    p.add_argument("--session-limit", type=float, default=None,
                   help="stop this call after the epoch that passes this many seconds (the schedule is not changed); resume later")
    arch = UNetConfig()
    p.add_argument("--base-channels", type=int, default=arch.base_channels,
                   help="U-Net channels at full resolution (--init's model keeps its own)")
    p.add_argument("--depth", type=int, default=arch.depth, help="U-Net down-sampling levels (--init's model keeps its own)")
    p.add_argument("--max-channels", type=int, default=arch.max_channels,
                   help="cap of the U-Net channel count (--init's model keeps its own)")
    a = p.parse_args(argv)
    path = train_seg2d(
        a.out_dir,
        epochs=a.epochs,
        steps=a.steps,
        seed=a.seed,
        synth_fraction=a.synth_fraction,
        dca1_dir=a.dca1_dir,
        threads=a.threads,
        batch_size=a.batch_size,
        lr=a.lr,
        val_synth=a.val_synth,
        crop=a.crop,
        time_limit_s=a.time_limit,
        init_weights=a.init,
        unet=UNetConfig(base_channels=a.base_channels, depth=a.depth, max_channels=a.max_channels),
        resume=a.resume,
        session_limit_s=a.session_limit,
        catheter_channel=a.catheter_class,
    )
    print(f"best model: {path}")


if __name__ == "__main__":
    main()
