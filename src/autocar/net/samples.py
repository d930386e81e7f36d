"""Pose-adapted synthetic training samples (METHOD.md sections 1-3).

One sample: a random coronary tree, two views from two different clusters of
the clinical pose distribution, view B rendered from a slightly deformed tree
(heartbeat at a small phase lag plus a periodic scaling of a few percent, as
in the paper) so that the network learns to tolerate weak synchronisation,
the sparse two-view hull carved from the two masks, and per-voxel targets
from the tree view A saw. A share of the samples can come from real CT trees
instead of the generator (``SampleConfig.real_trees``), so that the network
also sees anatomy the generator does not make.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.net.targets import tube_targets
from autocar.sbp.carve import SBPConfig, SparseHull, carve, distance_maps

__all__ = ["Sample", "SampleConfig", "make_sample", "hull_sample", "scene_transform", "real_tree_pool",
           "segmented_masks"]


@dataclass(frozen=True)
class SampleConfig:
    """How training samples are drawn.

    Attributes
    ----------
    sides : trees to draw from ("left", "right"), uniformly.
    max_lag : view B's phase lag is uniform in [0, max_lag] of the cycle.
    scaling : amplitude of the extra periodic scaling of view B's tree.
    n_stenoses_max : each tree gets 0..n_stenoses_max planted stenoses.
    sbp : carving configuration (its ``margin_px`` absorbs weak synchronisation).
    rotate_deg : the whole scene (both views' trees) is rotated about the
        heart centre by an angle uniform in [0, rotate_deg] degrees about an
        axis uniform on the sphere, so the network cannot learn the one
        orientation the tree generator draws (real hearts, and real CT trees,
        are oriented differently). 0 keeps the generator's orientation.
    size_jitter : the tree's positions are scaled about the heart centre by a
        factor uniform in [1 - size_jitter, 1 + size_jitter] (radii kept).
    real_trees : centre-line files of real coronary trees (any format
        :func:`autocar.io.trees.load_tree` reads: .vtp, .nii.gz label volume, ...);
        each file gives its left and right trees (:func:`autocar.synth.trees.left_and_right`).
    real_fraction : share of the samples drawn from ``real_trees`` instead of the
        generator (a real tree, turned and scaled as above, beaten by a random
        heartbeat, seen from a random clinical view pair; ``sides`` is ignored for them).
    segmented_fraction : share of the samples whose two masks are not the rendered
        vessel masks but the shipped 2D U-Net's segmentation
        (:func:`autocar.seg2d.segment.segment_angiograms`, pixel size given) of
        grey angiograms rendered from the same trees (:func:`autocar.synth.angiogram.
        render_angiogram` with a catheter and a contrast factor uniform in 0.7-1.3,
        as ``autocar synth --kind image``): the masks users' angiograms give, with
        false pixels, missed thin vessels and edges 1-2 px too wide (what those
        cost: ``benchmarks/grey_budget.py``). The targets stay the true tree.

    The rotation and scale, then the segmented-mask draw, come after everything
    else, so a seed gives the same tree, heartbeat and poses whatever these
    settings are.
    """

    sides: tuple[str, ...] = ("left", "right")
    max_lag: float = 0.08
    scaling: float = 0.03
    n_stenoses_max: int = 2
    sbp: SBPConfig = SBPConfig()
    rotate_deg: float = 0.0
    size_jitter: float = 0.0
    real_trees: tuple[str, ...] = ()
    real_fraction: float = 0.0
    segmented_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.real_fraction) <= 1.0:
            raise ValueError(f"real_fraction must be in [0, 1], got {self.real_fraction!r}")
        if not 0.0 <= float(self.segmented_fraction) <= 1.0:
            raise ValueError(f"segmented_fraction must be in [0, 1], got {self.segmented_fraction!r}")
        if self.real_fraction > 0 and not self.real_trees:
            raise ValueError("real_fraction > 0 needs at least one file in real_trees")
        object.__setattr__(self, "real_trees", tuple(str(p) for p in self.real_trees))


@functools.lru_cache(maxsize=4)
def real_tree_pool(paths: tuple[str, ...]) -> tuple[Any, ...]:
    """The left and right trees of every file, each with a heart frame (:class:`SynthTree`), cached."""
    from autocar.io.trees import load_tree
    from autocar.synth.trees import left_and_right, tree_from_graph

    pool = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: real tree file not found")
        for side, graph in left_and_right(load_tree(path).graph):
            pool.append(tree_from_graph(graph, side))
    return tuple(pool)


@dataclass(frozen=True)
class Sample:
    """One training or validation sample.

    masks : (V, H, W) bool; distances : (V, H, W) float32 px;
    hull : the carved voxels; occupancy (N,) bool and centerness (N,)
    float32 targets per hull voxel; truth : the tree of view A.
    """

    views: tuple[CArmView, ...]
    masks: np.ndarray
    distances: np.ndarray
    hull: SparseHull
    occupancy: np.ndarray
    centerness: np.ndarray
    truth: CenterlineGraph


def hull_sample(
    masks: np.ndarray, views: tuple[CArmView, ...], truth: CenterlineGraph | None, sbp: SBPConfig = SBPConfig()
) -> Sample:
    """Carve the hull of ``masks`` (V, H, W) and, if ``truth`` is given, its targets."""
    hull = carve(list(masks), list(views), sbp)
    dist = distance_maps(list(masks))
    n = len(hull.centers_mm)
    if truth is not None and n:
        occ, ctr = tube_targets(hull.centers_mm.astype(np.float64), truth, min_radius_mm=hull.voxel_mm / 2)
    else:
        occ, ctr = np.zeros(n, bool), np.zeros(n, np.float32)
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64))
    return Sample(tuple(views), np.asarray(masks, bool), dist, hull, occ, ctr, truth if truth is not None else empty)


def scene_transform(gen: np.random.Generator, rotate_deg: float, size_jitter: float) -> np.ndarray:
    """A random (3, 3) linear map: scale uniform in [1 - size_jitter, 1 + size_jitter] times a
    rotation by an angle uniform in [0, rotate_deg] degrees about an axis uniform on the sphere."""
    from scipy.spatial.transform import Rotation

    axis = gen.normal(size=3)
    axis /= max(float(np.linalg.norm(axis)), 1e-12)
    angle = np.deg2rad(float(gen.uniform(0.0, rotate_deg)))
    scale = float(gen.uniform(1.0 - size_jitter, 1.0 + size_jitter))
    return scale * Rotation.from_rotvec(axis * angle).as_matrix()


def make_sample(rng: np.random.Generator | int, config: SampleConfig = SampleConfig()) -> Sample:
    """Draw one two-view sample with targets (deterministic for an int seed).

    With ``config.real_fraction`` 0 (default) the tree comes from the generator and the
    random stream is the one it always was (same seed, same sample)."""
    from autocar.synth.heartbeat import HeartbeatModel, periodic_scaling
    from autocar.synth.poses import PoseDistribution
    from autocar.synth.render import render_mask
    from autocar.synth.trees import generate_tree

    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if config.real_fraction > 0 and gen.uniform() < config.real_fraction:
        pool = real_tree_pool(config.real_trees)
        tree = pool[int(gen.integers(len(pool)))]
    else:
        side = config.sides[int(gen.integers(len(config.sides)))]
        tree = generate_tree(side, rng=gen, n_stenoses=int(gen.integers(config.n_stenoses_max + 1)))
    heart = HeartbeatModel.random(gen, tree.heart_center, tree.long_axis)
    phase = float(gen.uniform(0, 1))
    lag = float(gen.uniform(0, config.max_lag))
    graph_a = heart.deform(tree.graph, phase)
    moved_b = heart.displace(tree.graph.nodes, (phase - lag) % 1.0)
    moved_b = periodic_scaling(moved_b, tree.heart_center, float(gen.uniform(0, 1)), amplitude=config.scaling)
    graph_b = tree.graph.with_nodes(moved_b)
    views = PoseDistribution.clinical().sample_pair(gen)
    if config.rotate_deg > 0 or config.size_jitter > 0:
        move = scene_transform(gen, config.rotate_deg, config.size_jitter)
        centre = np.asarray(tree.heart_center, np.float64)
        graph_a = graph_a.with_nodes((graph_a.nodes - centre) @ move.T + centre)
        graph_b = graph_b.with_nodes((graph_b.nodes - centre) @ move.T + centre)
    if config.segmented_fraction > 0 and gen.uniform() < config.segmented_fraction:
        masks = segmented_masks((graph_a, graph_b), views, gen)
    else:
        masks = np.stack([render_mask(graph_a, views[0]), render_mask(graph_b, views[1])])
    return hull_sample(masks, views, graph_a, config.sbp)


def segmented_masks(graphs: tuple[CenterlineGraph, ...], views: tuple[CArmView, ...],
                    gen: np.random.Generator) -> np.ndarray:
    """(V, H, W) bool: the shipped U-Net's masks of grey angiograms of ``graphs`` seen from ``views``
    (one contrast factor for the pair, a catheter in each view; see SampleConfig.segmented_fraction)."""
    from autocar.seg2d.segment import default_model, segment_angiograms
    from autocar.synth.angiogram import render_angiogram

    contrast = float(gen.uniform(0.7, 1.3))
    model = default_model()
    out = []
    for graph, view in zip(graphs, views):
        image = render_angiogram(graph, view, rng=gen, contrast=contrast, catheter=True)
        out.append(segment_angiograms([image], model, spacing_mm=float(np.mean(view.isocenter_spacing_mm)))[0])
    return np.stack(out)
