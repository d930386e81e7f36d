"""Synthetic two-view cine cases with known 3D truth at every frame.

A case is one coronary tree (``generate_tree``) beating (``HeartbeatModel``)
seen from two C-arm poses drawn from the clinical pose distribution
(``PoseDistribution``). As in the cath lab the two sequences are acquired one
after the other, so they are only weakly synchronised: view B's frame k is
taken ``lag`` (a fraction of the cardiac cycle) earlier in the cycle than
view A's frame k. The truth of output frame k is the tree at view A's phase
of frame k (CASE_FORMAT v1: frame k pairs A[k] with B[k]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.io.case import Case, CaseView, write_case
from autocar.io.results import Reconstruction, write_ground_truth
from autocar.synth.heartbeat import HeartbeatModel
from autocar.synth.poses import PoseDistribution
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask
from autocar.synth.trees import Stenosis, SynthTree, generate_tree

__all__ = ["SynthCaseConfig", "SynthCase", "synthesize_case", "write_synth_case"]


@dataclass(frozen=True)
class SynthCaseConfig:
    """How to synthesise one case.

    Attributes
    ----------
    side : which coronary tree is injected ("left" or "right").
    frames : frames per view (T >= 1).
    kind : "mask" writes binary vessel masks, "image" realistic angiograms.
    n_stenoses : planted focal stenoses (known place and severity).
    frame_rate_hz : cine frame rate (clinical 7.5-30 fps).
    heart_rate_range_bpm : heart rate drawn uniformly from this range.
    lag_range : view B lags view A by a fraction of the cycle drawn from this range
        (0 = perfectly synchronised; ECG-gated acquisitions keep a few percent).
    breath_hold : if True the respiratory shift is 1/5 of the model's amplitude.
    view_b_delay_s : view B is recorded this many seconds after view A (drawn
        uniformly), so it sees another point of the breathing cycle; (0, 0)
        with lag_range (0, 0) makes B see exactly A's tree (perfect sync).
    """

    side: Literal["left", "right"] = "left"
    frames: int = 8
    kind: Literal["mask", "image"] = "mask"
    n_stenoses: int = 1
    frame_rate_hz: float = 15.0
    heart_rate_range_bpm: tuple[float, float] = (60.0, 85.0)
    lag_range: tuple[float, float] = (0.02, 0.08)
    breath_hold: bool = True
    view_b_delay_s: tuple[float, float] = (3.0, 8.0)

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {self.side!r}")
        if self.kind not in ("mask", "image"):
            raise ValueError(f"kind must be 'mask' or 'image', got {self.kind!r}")
        if int(self.frames) < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if not self.frame_rate_hz > 0:
            raise ValueError(f"frame_rate_hz must be > 0, got {self.frame_rate_hz}")
        lo, hi = self.heart_rate_range_bpm
        if not 20 <= lo <= hi <= 250:
            raise ValueError(f"heart_rate_range_bpm must satisfy 20 <= low <= high <= 250, got {(lo, hi)}")
        lo, hi = self.lag_range
        if not 0 <= lo <= hi < 0.5:
            raise ValueError(f"lag_range must satisfy 0 <= low <= high < 0.5, got {(lo, hi)}")
        if self.n_stenoses < 0:
            raise ValueError(f"n_stenoses must be >= 0, got {self.n_stenoses}")
        lo, hi = self.view_b_delay_s
        if not 0 <= lo <= hi <= 600:
            raise ValueError(f"view_b_delay_s must satisfy 0 <= low <= high <= 600 s, got {(lo, hi)}")


@dataclass(frozen=True)
class SynthCase:
    """A synthesised case held in memory.

    ``truth[k]`` is the tree at view A's phase of frame k; ``truth_b[k]`` the
    tree view B actually saw in its frame k. ``phases`` is (2, T): the
    cardiac phase of every frame of A and B.
    """

    case: Case
    truth: tuple[CenterlineGraph, ...]
    truth_b: tuple[CenterlineGraph, ...]
    stenoses: tuple[Stenosis, ...]
    phases: np.ndarray
    lag: float
    heartbeat: HeartbeatModel
    seed: int | None = None
    info: dict = field(default_factory=dict)


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def synthesize_case(
    config: SynthCaseConfig = SynthCaseConfig(),
    *,
    rng: np.random.Generator | int | None = None,
    poses: PoseDistribution | None = None,
    views: tuple[CArmView, CArmView] | None = None,
    tree: SynthTree | None = None,
) -> SynthCase:
    """Synthesise one weakly synchronised two-view case with its 3D truth.

    Parameters
    ----------
    config : what to make.
    rng : Generator or int seed; the same seed gives the same case.
    poses : the pose distribution to sample the two views from (default: the
        clinical 9-cluster mixture). Ignored when ``views`` is given.
    views : fixed (A, B) views instead of sampled ones.
    tree : a given tree at rest with its heart frame (e.g. a real CT tree,
        :func:`autocar.synth.trees.tree_from_graph`) instead of a generated one;
        ``config.side`` and ``config.n_stenoses`` are then not used.
    """
    seed = rng if isinstance(rng, (int, np.integer)) else None
    gen = _rng(rng)
    synth = tree if tree is not None else generate_tree(config.side, rng=gen, n_stenoses=config.n_stenoses)
    heart = HeartbeatModel.random(gen, synth.heart_center, synth.long_axis)
    if config.breath_hold:
        heart = HeartbeatModel.from_dict(
            {**heart.to_dict(), "respiration_mm": tuple(float(x) / 5 for x in heart.respiration_mm)}
        )
    if views is None:
        views = (poses or PoseDistribution.clinical()).sample_pair(gen)
    bpm = float(gen.uniform(*config.heart_rate_range_bpm))
    period_s = 60.0 / bpm
    lag = float(gen.uniform(*config.lag_range))
    t = np.arange(config.frames) / config.frame_rate_hz  # s, within each sequence
    phase0 = float(gen.uniform(0, 1))
    phase_a = np.mod(phase0 + t / period_s, 1.0)
    phase_b = np.mod(phase_a - lag, 1.0)
    # View B is recorded after A (a few seconds later), so respiration differs too.
    t_offset_b = float(gen.uniform(*config.view_b_delay_s))

    truth = tuple(heart.deform(synth.graph, float(p), float(tt)) for p, tt in zip(phase_a, t))
    truth_b = tuple(heart.deform(synth.graph, float(p), float(tt + t_offset_b)) for p, tt in zip(phase_b, t))

    case_views = []
    for name, view, graphs, phases in (("A", views[0], truth, phase_a), ("B", views[1], truth_b, phase_b)):
        if config.kind == "mask":
            frames = np.stack([render_mask(g, view) for g in graphs])
        else:
            contrast = float(gen.uniform(0.7, 1.3))
            frames = np.stack(
                [render_angiogram(g, view, rng=gen, contrast=contrast, catheter=True) for g in graphs]
            )
        case_views.append(
            CaseView(
                name=name,
                view=view,
                kind=config.kind,
                frames=frames,
                frame_times_ms=np.round(t * 1000.0, 3),
                cardiac_phase=np.round(phases, 6),
            )
        )
    info = {
        "generator": "autocar.synth.cases",
        "seed": None if seed is None else int(seed),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "lag_fraction": round(lag, 6),
        "heart_rate_bpm": round(bpm, 3),
        "view_b_time_offset_s": round(t_offset_b, 3),
        "heartbeat": heart.to_dict(),
        "stenoses": [s.to_dict() for s in synth.stenoses],
    }
    case = Case(views=tuple(case_views), tree=synth.side, metadata={"synthetic": info})
    return SynthCase(
        case=case,
        truth=truth,
        truth_b=truth_b,
        stenoses=synth.stenoses,
        phases=np.stack([phase_a, phase_b]),
        lag=lag,
        heartbeat=heart,
        seed=None if seed is None else int(seed),
        info=info,
    )


def write_synth_case(synth: SynthCase, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the case folder (CASE_FORMAT v1) and ``ground_truth.json`` inside it.

    The ground truth is an autocar-reconstruction/1 file whose frame k is the
    tree at view A's phase of frame k, with the planted stenoses, the lag and
    the phases of both views as extra top-level keys.
    """
    out = write_case(synth.case, path, overwrite=overwrite)
    rec = Reconstruction(
        frames=synth.truth,
        extra={
            "truth_of": "view A phase of each frame",
            "stenoses": [s.to_dict() for s in synth.stenoses],
            "lag_fraction": synth.info["lag_fraction"],
            "cardiac_phase": {"A": synth.phases[0].round(6).tolist(), "B": synth.phases[1].round(6).tolist()},
            "label_names": list(synth.truth[0].label_names),
            "node_labels": [] if synth.truth[0].labels is None else synth.truth[0].labels.tolist(),
        },
    )
    write_ground_truth(rec, out)
    return out
