"""Pose-adapted synthetic training samples (METHOD.md sections 1-3).

One sample: a random coronary tree, two views from two different clusters of
the clinical pose distribution, view B rendered from a slightly deformed tree
(heartbeat at a small phase lag plus a periodic scaling of a few percent, as
in the paper) so that the network learns to tolerate weak synchronisation,
the sparse two-view hull carved from the two masks, and per-voxel targets
from the tree view A saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autocar.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.net.targets import tube_targets
from autocar.sbp.carve import SBPConfig, SparseHull, carve, distance_maps

__all__ = ["Sample", "SampleConfig", "make_sample", "hull_sample", "scene_transform"]


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

    The rotation and scale are drawn after everything else, so a seed gives
    the same tree, heartbeat and poses whatever these two settings are.
    """

    sides: tuple[str, ...] = ("left", "right")
    max_lag: float = 0.08
    scaling: float = 0.03
    n_stenoses_max: int = 2
    sbp: SBPConfig = SBPConfig()
    rotate_deg: float = 0.0
    size_jitter: float = 0.0


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
    """Draw one synthetic two-view sample with targets (deterministic for an int seed)."""
    from autocar.synth.heartbeat import HeartbeatModel, periodic_scaling
    from autocar.synth.poses import PoseDistribution
    from autocar.synth.render import render_mask
    from autocar.synth.trees import generate_tree

    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
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
    masks = np.stack([render_mask(graph_a, views[0]), render_mask(graph_b, views[1])])
    return hull_sample(masks, views, graph_a, config.sbp)
