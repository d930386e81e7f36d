"""Benchmark of sparse backward projection (METHOD.md section 2) on one CPU.

Two 512 x 512 masks of a whole coronary tree at clinical poses (LAO 30 CRA 20
and RAO 30 CAU 20, SID 1100 mm, SOD 750 mm, 0.3 mm pixels), the paper's
carving (200 mm cube, levels 8, 4, 2, 1, 0.5 mm). Prints the median time of
distance maps + carving, the voxels per level, the fraction of the 400^3
grid touched, and the same hull computed by a dense baseline: the finest
0.5 mm grid inside the bounding box of the coarse (8 mm) survivors, every
voxel given the same final centre test in chunks.

Run: ``python benchmarks/bench_sbp.py [--runs 7] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.sbp.carve import (
    _FINAL_TOL_PX,
    SBPConfig,
    _ViewOps,
    carve,
    check_masks,
    distance_maps,
)
from autocar.synth.render import render_mask


def drawn_tree(seed: int = 1) -> CenterlineGraph:
    """A left-coronary-like tree: LM splitting into LAD and LCX with side branches (mm)."""
    rng = np.random.default_rng(seed)
    nodes = [np.array([-15.0, 10.0, 45.0])]
    radii = [2.2]
    edges: list[tuple[int, int]] = []

    def grow(start: int, direction: np.ndarray, radius: float, steps: int, p_branch: float) -> None:
        cur = start
        d = direction / np.linalg.norm(direction)
        for s in range(steps):
            d = d + rng.normal(0.0, 0.12, 3)
            d /= np.linalg.norm(d)
            nodes.append(nodes[cur] + 2.0 * d)
            radii.append(radius)
            edges.append((cur, len(nodes) - 1))
            cur = len(nodes) - 1
            radius = max(0.5, radius * 0.99)
            if rng.random() < p_branch and steps - s > 8:
                side = np.cross(d, rng.normal(size=3))
                grow(cur, d + 1.2 * side / np.linalg.norm(side), 0.7 * radius, int(0.5 * (steps - s)), 0.0)

    lm_end = 0
    for _ in range(5):  # left main
        nodes.append(nodes[lm_end] + np.array([1.6, -0.6, -0.8]))
        radii.append(2.2)
        edges.append((lm_end, len(nodes) - 1))
        lm_end = len(nodes) - 1
    grow(lm_end, np.array([0.6, -0.5, -1.0]), 1.8, 60, 0.12)  # LAD: down the front
    grow(lm_end, np.array([0.3, 1.0, -0.6]), 1.6, 45, 0.12)  # LCX: round the back
    return CenterlineGraph(np.array(nodes), np.array(radii), np.array(edges))


def tree() -> tuple[CenterlineGraph, str]:
    try:
        from autocar.synth.trees import generate_tree
    except ImportError:
        return drawn_tree(), "hand-drawn left-like tree (autocar.synth.trees not available)"
    return generate_tree("left", rng=0).graph, "autocar.synth.trees.generate_tree('left', rng=0)"


def dense_baseline(masks, views, cfg: SBPConfig, box_lo: np.ndarray, box_hi: np.ndarray, chunk: int = 1 << 21):
    """Final centre test on every finest voxel with index in [box_lo, box_hi); returns (coords, count tested)."""
    dist = distance_maps(check_masks(masks, views))
    ops = [_ViewOps(v, d) for v, d in zip(views, dist)]
    e = np.float32(cfg.levels_mm[-1])
    base = cfg.origin_mm.astype(np.float32)
    shape = box_hi - box_lo
    total = int(np.prod(shape))
    kept = []
    for start in range(0, total, chunk):
        lin = np.arange(start, min(start + chunk, total), dtype=np.int64)
        i = (lin // (shape[1] * shape[2]) + box_lo[0]).astype(np.int32)
        j = ((lin // shape[2]) % shape[1] + box_lo[1]).astype(np.int32)
        k = (lin % shape[2] + box_lo[2]).astype(np.int32)
        ok = np.ones(len(lin), bool)
        for op in ops:
            row, col, w = op.project(i.astype(np.float32) * e + base[0], j.astype(np.float32) * e + base[1],
                                     k.astype(np.float32) * e + base[2])
            inside = (w > 0) & (row >= -0.5) & (row <= op.rows - 0.5) & (col >= -0.5) & (col <= op.cols - 0.5)
            ok &= inside & (op.lookup(row, col) <= np.float32(_FINAL_TOL_PX) + np.float32(cfg.margin_px))
        kept.append(np.stack([i[ok], j[ok], k[ok]], 1))
    return np.concatenate(kept), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    graph, source = tree()
    views = [
        CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512),
        CArmView(-30.0, -20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512),
    ]
    masks = [render_mask(graph, v) for v in views]
    cfg = SBPConfig()
    print(f"tree: {source}: {graph.num_nodes} nodes, {graph.num_edges} edges")
    print(f"views: {[v.label for v in views]}, masks 512x512, vessel fraction "
          f"{[round(float(m.mean()), 4) for m in masks]}")
    print(f"config: box {cfg.box_mm} mm, levels {cfg.levels_mm} mm, grid {cfg.grid_shape}")

    times, t_edt = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        distance_maps(masks)
        t1 = time.perf_counter()
        hull = carve(masks, views, cfg)  # includes its own distance maps
        t2 = time.perf_counter()
        t_edt.append(t1 - t0)
        times.append(t2 - t1)
    med = statistics.median(times)
    print(f"SBP (distance maps + carve), median of {args.runs}: {med * 1000:.1f} ms "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); "
          f"distance maps alone {statistics.median(t_edt) * 1000:.1f} ms")
    print(f"tested per level: {hull.tested_per_level}")
    print(f"kept per level:   {hull.kept_per_level}")
    print(f"finest-level survivors: {len(hull)} voxels of {hull.voxel_mm} mm "
          f"({len(hull) * hull.voxel_mm ** 3 / 1000:.1f} cm^3)")
    n_full = int(np.prod(cfg.grid_shape))
    print(f"fraction of the {cfg.grid_shape[0]}^3 grid touched (tested at the finest level): "
          f"{hull.tested_per_level[-1] / n_full:.5f}; all levels' tests / 400^3: "
          f"{sum(hull.tested_per_level) / n_full:.5f}")
    loose = carve(masks, views, SBPConfig(final_centre_test=False))
    print(f"without the final centre test: {len(loose)} voxels")

    # Baseline: dense finest grid inside the bounding box of the coarse survivors.
    one = carve(masks, views, SBPConfig(levels_mm=(8.0,), final_centre_test=False))
    f = 2 ** (len(cfg.levels_mm) - 1)
    lo = one.coords.min(axis=0) * f
    hi = (one.coords.max(axis=0) + 1) * f
    bt = []
    for _ in range(max(1, min(3, args.runs))):
        t0 = time.perf_counter()
        dense_coords, n_dense = dense_baseline(masks, views, cfg, lo, hi)
        bt.append(time.perf_counter() - t0)
    bmed = statistics.median(bt)
    print(f"baseline: dense 0.5 mm carving of the 8 mm survivors' bounding box "
          f"{tuple(int(x) for x in hi - lo)} = {n_dense} voxels (same final centre test, numpy float32, "
          f"chunks of 2^21), median of {len(bt)}: {bmed * 1000:.0f} ms (excluding the 8 mm pass)")
    same = len(dense_coords) == len(hull) and np.array_equal(
        dense_coords[np.lexsort(dense_coords.T[::-1])], hull.coords)
    print(f"baseline kept {len(dense_coords)} voxels; identical to SBP: {same}")
    print(f"speed-up of SBP over the baseline: {bmed / med:.1f}x")
    print(f"target < 300 ms: {'met' if med < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
