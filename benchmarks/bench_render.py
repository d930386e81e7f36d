"""Benchmark of autocar.synth.render at 512 x 512 on a whole coronary tree.

Run: ``python benchmarks/bench_render.py [--runs N] [--seed S]``.

Prints the tree size, the median time of N runs of ``render_mask``,
``render_thickness`` and ``render_angiogram``, and compares ``render_mask``
with a naive baseline measured in the same run: the per-pixel
distance-to-segment rasteriser written with NumPy broadcasting (every pixel
against every edge, in blocks of edges), timed on a subset of edges and
extrapolated linearly to the whole tree.

The tree comes from ``autocar.synth.trees.generate_tree`` when that module is
available, else from a stand-in random branching tree of similar size built
here (the output says which).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask, render_thickness


def standin_tree(seed: int = 0, spacing_mm: float = 0.5) -> CenterlineGraph:
    """A random branching tree on a ~50 mm sphere (a heart-like surface).

    Vessels start at an ostium, wander smoothly over the sphere with radius
    tapering from 2 mm, and branch every 12-25 mm (two levels); about 2000 nodes at 0.5 mm.
    """
    gen = np.random.default_rng(seed)
    centre = np.array([0.0, 10.0, -10.0])
    sphere = 50.0
    nodes: list[np.ndarray] = []
    radii: list[float] = []
    edges: list[tuple[int, int]] = []

    def grow(start_idx: int | None, pos: np.ndarray, direction: np.ndarray, radius: float, depth: int) -> None:
        length = gen.uniform(50.0, 110.0) * (0.8**depth)
        steps = int(length / spacing_mm)
        prev = start_idx
        next_branch = gen.uniform(12.0, 25.0)
        travelled = 0.0
        for _ in range(steps):
            # Keep on the sphere: project direction onto the tangent plane.
            normal = (pos - centre) / np.linalg.norm(pos - centre)
            direction = direction + gen.normal(0.0, 0.08, 3)
            direction -= normal * (direction @ normal)
            direction /= np.linalg.norm(direction)
            pos = centre + (pos + direction * spacing_mm - centre) * sphere / np.linalg.norm(
                pos + direction * spacing_mm - centre
            )
            radius = max(0.4, radius * (1 - 0.004))
            nodes.append(pos.copy())
            radii.append(radius)
            idx = len(nodes) - 1
            if prev is not None:
                edges.append((prev, idx))
            prev = idx
            travelled += spacing_mm
            if depth < 2 and travelled >= next_branch:
                travelled = 0.0
                next_branch = gen.uniform(12.0, 25.0)
                side = np.cross(normal, direction) * gen.choice([-1.0, 1.0])
                child_dir = direction * 0.5 + side
                grow(idx, pos, child_dir / np.linalg.norm(child_dir), radius * 0.7, depth + 1)

    start = centre + np.array([-0.3, -0.6, 0.75]) / np.linalg.norm([-0.3, -0.6, 0.75]) * sphere
    grow(None, start, np.array([1.0, 0.0, -0.4]) / np.linalg.norm([1.0, 0.0, -0.4]), 2.2, 0)
    return CenterlineGraph(np.asarray(nodes), np.asarray(radii), np.asarray(edges, dtype=np.int64))


def load_tree(seed: int) -> tuple[CenterlineGraph, str]:
    """The benchmark tree and where it came from."""
    try:
        from autocar.synth.trees import generate_tree
    except ImportError as exc:
        return standin_tree(seed), f"stand-in tree (autocar.synth.trees unavailable: {exc})"
    return generate_tree("left", rng=seed, node_spacing_mm=0.5).graph, "generate_tree('left')"


def naive_mask(graph: CenterlineGraph, view: CArmView, edges: np.ndarray) -> np.ndarray:
    """Baseline: per-pixel distance to every projected segment (NumPy broadcasting)."""
    h, w = view.shape
    rr, cc = np.mgrid[0:h, 0:w]
    pix = np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.float64)  # (P, 2)
    mask = np.zeros(h * w, dtype=bool)
    pa, _ = view.project(graph.nodes[edges[:, 0]])
    pb, _ = view.project(graph.nodes[edges[:, 1]])
    ra = view.radius_px(graph.radii[edges[:, 0]], graph.nodes[edges[:, 0]])
    rb = view.radius_px(graph.radii[edges[:, 1]], graph.nodes[edges[:, 1]])
    block = 8
    for s in range(0, len(edges), block):
        a, b = pa[s : s + block], pb[s : s + block]  # (B, 2)
        d = b - a
        dd = np.maximum((d * d).sum(1), 1e-12)
        t = np.clip(((pix[:, None, :] - a[None]) * d[None]).sum(-1) / dd[None], 0.0, 1.0)  # (P, B)
        close = a[None] + t[..., None] * d[None]
        dist = np.sqrt(((pix[:, None, :] - close) ** 2).sum(-1))
        rad = np.maximum(ra[s : s + block][None] * (1 - t) + rb[s : s + block][None] * t, 0.5)
        mask |= (dist <= rad).any(axis=1)
    return mask.reshape(h, w)


def polyline_mask(graph: CenterlineGraph, view: CArmView) -> np.ndarray:
    """Reference point: 1-px ``cv2.line`` centre lines only (no radius)."""
    import cv2

    img = np.zeros(view.shape, dtype=np.uint8)
    rc, _ = view.project(graph.nodes)
    xy = np.round(rc[:, ::-1] * 16).astype(np.int64)
    for i, j in graph.edges.tolist():
        cv2.line(img, (int(xy[i, 0]), int(xy[i, 1])), (int(xy[j, 0]), int(xy[j, 1])), 1, 1, cv2.LINE_8, 4)
    return img.astype(bool)


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    graph, origin = load_tree(args.seed)
    view = CArmView(30.0, 20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    print(f"tree: {origin}")
    print(f"tree size: {graph.num_nodes} nodes, {graph.num_edges} edges, {graph.total_length_mm:.0f} mm")
    print(f"view: {view!r}")

    render_mask(graph, view)  # warm-up (imports, caches)
    t_mask = median_time(lambda: render_mask(graph, view), args.runs)
    t_thick = median_time(lambda: render_thickness(graph, view), max(3, args.runs // 2))
    t_angio = median_time(lambda: render_angiogram(graph, view, rng=1, catheter=True), max(3, args.runs // 2))

    # Baseline on a subset of edges, extrapolated to all edges.
    sub = graph.edges[: min(48, graph.num_edges)]
    t_sub = median_time(lambda: naive_mask(graph, view, sub), 3)
    t_base = t_sub * graph.num_edges / len(sub)

    t_poly = median_time(lambda: polyline_mask(graph, view), args.runs)

    print(f"render_mask:      {1e3 * t_mask:8.1f} ms (median of {args.runs})")
    print(f"render_thickness: {1e3 * t_thick:8.1f} ms")
    print(f"render_angiogram: {1e3 * t_angio:8.1f} ms (with catheter)")
    print(
        f"baseline (naive NumPy per-pixel distance, {len(sub)} edges timed, extrapolated to "
        f"{graph.num_edges}): {1e3 * t_base:.0f} ms"
    )
    print(f"(for reference: plain cv2.line centre lines without radii: {1e3 * t_poly:.1f} ms)")
    print(f"mask: {1e3 * t_mask:.1f} ms (target 200 ms), {t_base / t_mask:.0f}x faster than baseline")


if __name__ == "__main__":
    main()
