"""A learned score of how likely a centre-line branch is a two-view ghost.

Ghost pruning (:func:`autocar.graph.prune.prune_redundant_branches`) decides
which of the redundant branches goes first; where a real branch and the
ghosts crossing it cover each other's 2D pixels the order decides which
survives. The hand-made order (largest disagreement of the 2D widths
between the views first) uses one cue. This module combines several cues
of a branch into one probability of being a ghost with a logistic
regression trained on synthetic pairs with known truth
(:func:`autocar.pipeline.ghost_training.train_ghost_scorer`, ``autocar train-ghost-scorer``).

Features of a branch (an unbranched path of the graph, :data:`FEATURES`):

- ``width_mismatch``: median over its nodes of ``|log(r_A / r_B)|`` of the
  radii measured in each view's mask (a ghost pairs two different vessels);
- ``prob_mean``, ``prob_low``: mean and 10th percentile of the network's
  occupancy probability at its nodes (the hull voxel each node lies in; 0 off
  the hull, 1 for every node when there is no network);
- ``log_length``: ``log(1 + length / 1 mm)``;
- ``radius_mm``: median radius (fused ghost blobs are wide);
- ``share_max``, ``share_min``: largest and smallest over the views of the
  share of the 2D skeleton pixels it covers that no other branch covers;
- ``tips``: how many of its two ends are free ends (degree 1);
- ``off_ridge_px``: mean over views and samples of the distance (px) from
  its projection to the nearest 2D skeleton pixel (skeletons of fused hull
  blobs run off-centre; real centre lines project onto the 2D centre line);
- ``depth_spread``: largest over the views of the standard deviation of the
  node depths along the view's axis, divided by the length (how much the
  branch runs along a ray, where two-view triangulation is ill-conditioned).

Units: mm for positions, radii and lengths, pixels in the images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView

__all__ = [
    "FEATURES",
    "GhostScorer",
    "node_probability",
    "branch_features",
    "fit_logistic",
    "default_scorer",
    "branch_labels",
    "weighted_auc",
    "SCORER_FILE",
]

FEATURES = (
    "width_mismatch",
    "prob_mean",
    "prob_low",
    "log_length",
    "radius_mm",
    "share_max",
    "share_min",
    "tips",
    "off_ridge_px",
    "depth_spread",
)

SCORER_FILE = "ghost_scorer.json"


@dataclass(frozen=True)
class GhostScorer:
    """Logistic regression over standardised branch features.

    ``P(ghost) = sigmoid(bias + sum_f coef_f (x_f - mean_f) / scale_f)``.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    bias: float

    def __post_init__(self) -> None:
        f = len(self.features)
        for name in ("mean", "scale", "coef"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (f,) or not np.all(np.isfinite(a)):
                raise ValueError(f"GhostScorer.{name} must hold {f} finite numbers, got shape {a.shape}")
            object.__setattr__(self, name, a)
        if np.any(self.scale <= 0):
            raise ValueError("GhostScorer.scale must be > 0")
        if not math.isfinite(self.bias):
            raise ValueError("GhostScorer.bias must be finite")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"GhostScorer has unknown features {sorted(unknown)}; known: {FEATURES}")

    def ghost_probability(self, x: np.ndarray) -> np.ndarray:
        """(B, len(FEATURES)) features (columns in :data:`FEATURES` order) -> (B,) P(ghost)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES):
            raise ValueError(f"features must have shape (B, {len(FEATURES)}), got {x.shape}")
        cols = [FEATURES.index(f) for f in self.features]
        z = (x[:, cols] - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.bias)))

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "bias": float(self.bias),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GhostScorer":
        try:
            return cls(tuple(d["features"]), np.asarray(d["mean"]), np.asarray(d["scale"]),
                       np.asarray(d["coef"]), float(d["bias"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a ghost scorer: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "GhostScorer":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read a ghost scorer: {e}") from None
        try:
            return cls.from_dict(data.get("scorer", data) if isinstance(data, dict) else data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


_DEFAULT: GhostScorer | None = None


def default_scorer() -> GhostScorer:
    """The scorer shipped in the package (``weights/ghost_scorer.json``, trained by
    ``autocar train-ghost-scorer``; see weights/README.md)."""
    global _DEFAULT
    if _DEFAULT is None:
        ref = resources.files("autocar") / "weights" / SCORER_FILE
        with resources.as_file(ref) as path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"shipped ghost scorer {path} is missing from the installed package")
            _DEFAULT = GhostScorer.load(path)
    return _DEFAULT


def node_probability(hull, probability: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Occupancy probability (N,) of the hull voxel each node (N, 3) mm lies in; 0 off the hull.

    ``hull`` is a :class:`autocar.sbp.carve.SparseHull` (coords sorted
    lexicographically), ``probability`` its per-voxel (M,) values.
    """
    nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, 3)
    out = np.zeros(len(nodes))
    if len(nodes) == 0 or len(hull.coords) == 0:
        return out
    idx = np.round((nodes - np.asarray(hull.origin_mm)) / hull.voxel_mm).astype(np.int64)
    c = hull.coords.astype(np.int64)
    lo = np.minimum(c.min(axis=0), idx.min(axis=0))
    span = np.maximum(c.max(axis=0), idx.max(axis=0)) - lo + 1
    key = lambda a: ((a[:, 0] - lo[0]) * span[1] + (a[:, 1] - lo[1])) * span[2] + (a[:, 2] - lo[2])  # noqa: E731
    hk = key(c)
    order = np.argsort(hk, kind="stable")
    hk = hk[order]
    nk = key(idx)
    pos = np.clip(np.searchsorted(hk, nk), 0, len(hk) - 1)
    hit = hk[pos] == nk
    out[hit] = np.asarray(probability, dtype=np.float64)[order[pos[hit]]]
    return out


def _skeleton_distance(mask: np.ndarray) -> np.ndarray:
    sk = skeletonize(np.asarray(mask, bool))
    if not sk.any():
        return np.full(np.shape(mask), np.inf)
    return ndimage.distance_transform_edt(~sk)


def branch_features(
    graph: CenterlineGraph,
    branches: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    shares: np.ndarray,
    width_mismatch: np.ndarray,
    node_prob: np.ndarray | None = None,
) -> np.ndarray:
    """Features (B, len(FEATURES)) of each branch, columns in :data:`FEATURES` order.

    Parameters
    ----------
    graph : the graph the branches index, mm.
    branches : B node-index paths (:meth:`CenterlineGraph.branches`).
    masks, views : one (H, W) mask and C-arm view per view.
    shares : (V, B) unique share of each branch's covered skeleton pixels per view
        (NaN where it covers none).
    width_mismatch : (B,) median ``|log(r_A / r_B)|`` of each branch's 2D-measured radii.
    node_prob : (N,) network probability at the nodes; None = 1 everywhere.
    """
    nb = len(branches)
    x = np.zeros((nb, len(FEATURES)))
    if nb == 0:
        return x
    prob = np.ones(graph.num_nodes) if node_prob is None else np.asarray(node_prob, dtype=np.float64)
    deg = graph.degrees()
    sdist = [_skeleton_distance(m) for m in masks]
    sh = np.asarray(shares, dtype=np.float64)
    for k, b in enumerate(branches):
        p = graph.nodes[b]
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        length = float(seg.sum())
        x[k, 0] = float(width_mismatch[k])
        x[k, 1] = float(prob[b].mean())
        x[k, 2] = float(np.percentile(prob[b], 10))
        x[k, 3] = math.log1p(length)
        x[k, 4] = float(np.median(graph.radii[b]))
        s = sh[:, k][np.isfinite(sh[:, k])]
        x[k, 5] = float(s.max()) if len(s) else 0.0
        x[k, 6] = float(s.min()) if len(s) else 0.0
        x[k, 7] = float(int(deg[b[0]] == 1) + int(deg[b[-1]] == 1))
        off = []
        for dmap, view in zip(sdist, views):
            rc, _ = view.project(p)
            r = np.round(rc)
            ok = np.all(np.isfinite(r), axis=1)
            r = r[ok].astype(np.int64)
            inside = (r[:, 0] >= 0) & (r[:, 0] < dmap.shape[0]) & (r[:, 1] >= 0) & (r[:, 1] < dmap.shape[1])
            d = np.full(len(r), 20.0)
            d[inside] = np.minimum(dmap[r[inside, 0], r[inside, 1]], 20.0)
            if len(d):
                off.append(float(d.mean()))
        x[k, 8] = float(np.mean(off)) if off else 20.0
        x[k, 9] = max(float(np.std(view.depth(p))) for view in views) / max(length, 1.0)
    return x


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, l2: float = 1e-2,
                 iterations: int = 50, features: Sequence[str] = FEATURES) -> GhostScorer:
    """Weighted L2-regularised logistic regression by Newton's method (IRLS).

    x : (B, len(FEATURES)) features; y : (B,) 1 = ghost, 0 = real; w : (B,) sample
    weights (e.g. branch length), None = 1. ``features`` picks the columns used.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or y.shape != (len(x),):
        raise ValueError(f"x must have shape (B, {len(FEATURES)}) and y shape (B,), got {x.shape} and {y.shape}")
    if len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError("fit_logistic needs at least one example and finite features")
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.mean()
    cols = [FEATURES.index(f) for f in features]
    xs = x[:, cols]
    mean = np.average(xs, axis=0, weights=w)
    scale = np.sqrt(np.average((xs - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.concatenate([(xs - mean) / scale, np.ones((len(xs), 1))], axis=1)
    beta = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2 * len(xs))
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        g = z.T @ (w * (p - y)) + reg * beta
        h = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(h, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return GhostScorer(tuple(features), mean, scale, beta[:-1], float(beta[-1]))


# ------------------------------------------------------------------ training
def branch_labels(graph: CenterlineGraph, branches: Sequence[np.ndarray], truth: CenterlineGraph,
                  tol_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(B,) label 1 = ghost (fewer than half its points within ``tol_mm`` of the true centre
    line, sampled every 0.25 mm) and (B,) weight = branch length (mm)."""
    from scipy.spatial import cKDTree

    from autocar.graph.paths import densify, path_length

    tree = cKDTree(truth.sample_segments(0.25)[0])
    y = np.zeros(len(branches))
    w = np.zeros(len(branches))
    for k, b in enumerate(branches):
        q, _ = densify(graph.nodes, graph.radii, b, 0.25, 0.0)
        y[k] = float(np.mean(tree.query(q)[0] <= tol_mm) < 0.5)
        w[k] = max(path_length(graph, b), 0.25)
    return y, w


def weighted_auc(score: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for label ``y`` (1 = positive), examples weighted by ``w``."""
    score, y, w = (np.asarray(a, dtype=np.float64) for a in (score, y, w))
    pos, neg = w * (y == 1), w * (y == 0)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    s, pos, neg = score[order], pos[order], neg[order]
    # Ties count half: group equal scores.
    _, start = np.unique(s, return_index=True)
    ends = np.append(start[1:], len(s))
    below = 0.0
    area = 0.0
    for a, b in zip(start, ends):
        p, n = pos[a:b].sum(), neg[a:b].sum()
        area += p * (below + 0.5 * n)
        below += n
    return float(area / (pos.sum() * neg.sum()))
