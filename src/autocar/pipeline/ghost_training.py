"""Training of the learned ghost score (:class:`autocar.graph.ghost_score.GhostScorer`).

It reconstructs synthetic pairs with the whole static pipeline
(:func:`autocar.pipeline.static.reconstruct_pair`), collects the branch features of both
prunings with their ghost labels against the truth, and fits the logistic score. It lives
in the pipeline layer because it drives the pipeline; the score itself and its features
stay in :mod:`autocar.graph.ghost_score`, which imports nothing above the graph layer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autocar.graph.ghost_score import (
    FEATURES,
    SCORER_FILE,
    GhostScorer,
    branch_labels,
    fit_logistic,
    weighted_auc,
)

__all__ = ["collect_examples", "train_ghost_scorer"]


def _draw_pair(seed: int, index: int):
    """Synthetic training pair number ``index``: left/right alternate, every other pair is
    perfectly synchronised, the rest weakly synchronised as ``autocar synth`` makes them."""
    from autocar.synth.cases import SynthCaseConfig, synthesize_case

    side = "left" if index % 2 == 0 else "right"
    sync = {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)} if (index // 2) % 2 == 0 else {}
    sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, **sync), rng=seed + index)
    a, b = sc.case.views
    return [a.frames[0], b.frames[0]], [a.view, b.view], sc.truth[0]


def collect_examples(seed: int, cases: int, model, *, scorer: GhostScorer | None = None, threads: int = 2,
                     progress: bool = False):
    """Branch features, ghost labels and length weights from both prunings of ``cases``
    reconstructions of synthetic pairs ``seed + i`` (pruning order: ``scorer``'s, or the
    hand-made one when None).

    Returns x (B, F), y (B,), w (B,) and per-case counts (list of dicts).
    """
    from autocar.pipeline.static import ReconstructConfig, reconstruct_pair

    xs, ys, ws, log = [], [], [], []
    it = range(cases)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"pairs from seed {seed}", unit="pair")
    for i in it:
        masks, views, truth = _draw_pair(seed, i)
        ex: list = []
        reconstruct_pair(masks, views, model, ReconstructConfig(threads=threads, learned_ghost_order=scorer is not None),
                         scorer=scorer, examples=ex)
        ghost_mm = 0.0
        for feats, branches, graph in ex:
            y, w = branch_labels(graph, branches, truth)
            xs.append(feats)
            ys.append(y)
            ws.append(w)
            ghost_mm += float((w * y).sum())
        log.append({"seed": seed + i, "branches": int(sum(len(e[1]) for e in ex)), "ghost_mm": round(ghost_mm, 1)})
    if not xs:
        return np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0), log
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws), log


def train_ghost_scorer(
    out_dir: str | Path,
    *,
    cases: int = 64,
    val_cases: int = 16,
    seed: int = 1_600_000,
    val_seed: int = 1_700_000,
    l2: float = 1e-2,
    rounds: int = 2,
    threads: int = 2,
    model_path: str | Path | None = None,
    features: Sequence[str] = FEATURES,
    progress: bool = True,
) -> dict:
    """Fit the ghost scorer on synthetic pairs and write ``out_dir/ghost_scorer.json``
    (scorer, config, validation metrics) and ``out_dir/train_log.jsonl`` (one line per pair).

    Training pairs: seeds ``seed .. seed + cases - 1``; validation pairs ``val_seed ..``
    (both apart from the network's training seeds, its validation seeds 1,000,000+ and
    the benchmark's 2,000,000+). Round 1 collects the branches the hand-made pruning
    order meets; each further round reconstructs the same pairs again with the previous
    round's scorer ordering the pruning (the branches the learned order meets differ),
    adds them and refits on everything. Returns the JSON written.
    """
    import time

    import torch

    from autocar.io.atomic import atomic_write_json, atomic_write_text
    from autocar.net.train import load_model
    from autocar.pipeline.static import default_model

    for name, v, lo in (("cases", cases, 1), ("val_cases", val_cases, 1), ("threads", threads, 1),
                        ("rounds", rounds, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    features = tuple(features)
    if not features or not set(features) <= set(FEATURES):
        raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {features}")
    if abs(seed - val_seed) < max(cases, val_cases):
        raise ValueError(f"training seeds {seed}+ and validation seeds {val_seed}+ overlap")
    torch.set_num_threads(threads)
    model = default_model() if model_path is None else load_model(model_path)
    t0 = time.perf_counter()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    log: list[dict] = []
    scorer: GhostScorer | None = None
    history = []
    for r in range(rounds):
        x, y, w, rlog = collect_examples(seed, cases, model, scorer=scorer, threads=threads, progress=progress)
        parts.append((x, y, w))
        log += [{"round": r + 1, **row} for row in rlog]
        x, y, w = (np.concatenate([p[k] for p in parts]) for k in range(3))
        if len(np.unique(y)) < 2:
            raise ValueError("the training pairs gave only one class of branch; use more cases")
        scorer = fit_logistic(x, y, w, l2=l2, features=features)
        history.append({"round": r + 1, "train_branches": int(len(y)), "coef": [round(float(c), 4) for c in scorer.coef]})
    assert scorer is not None
    # Validation: the branches the final scorer meets when it orders the pruning.
    xv, yv, wv, vlog = collect_examples(val_seed, val_cases, model, scorer=scorer, threads=threads, progress=progress)
    pv = scorer.ghost_probability(xv)
    metrics = {
        "train_branches": int(len(y)),
        "train_ghost_length_share": round(float((w * y).sum() / w.sum()), 4),
        "val_branches": int(len(yv)),
        "val_ghost_length_share": round(float((wv * yv).sum() / wv.sum()), 4) if len(wv) else None,
        "val_auc": round(weighted_auc(pv, yv, wv), 4),
        "val_auc_width_mismatch_alone": round(weighted_auc(xv[:, 0], yv, wv), 4),
        "val_accuracy": round(float(np.sum(wv * ((pv >= 0.5) == (yv == 1))) / wv.sum()), 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "rounds": history,
    }
    config = {"cases": cases, "val_cases": val_cases, "seed": seed, "val_seed": val_seed, "l2": l2, "rounds": rounds,
              "features": list(features),
              "threads": threads, "model": "shipped autocar_static.pt" if model_path is None else str(model_path),
              "label": "ghost = fewer than half of the branch's points within 1 mm of the true centre line",
              "weight": "branch length (mm)",
              "order_during_collection": "round 1 hand-made (width mismatch), then the previous round's scorer"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"format": "autocar-ghost-scorer/1", "scorer": scorer.to_dict(), "config": config, "metrics": metrics}
    atomic_write_text(out / "train_log.jsonl",
                      "".join(json.dumps({"split": s, **r}) + "\n" for s, rows in (("train", log), ("val", vlog))
                              for r in rows))
    atomic_write_json(out / SCORER_FILE, data)
    # Every example, for refits without reconstructing again (x: FEATURES columns).
    with open(out / "examples.npz.tmp", "wb") as fh:
        np.savez_compressed(fh, x=x, y=y, w=w, x_val=xv, y_val=yv, w_val=wv, features=np.array(FEATURES))
    (out / "examples.npz.tmp").replace(out / "examples.npz")
    return data
