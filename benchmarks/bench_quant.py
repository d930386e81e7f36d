"""Accuracy of stenosis detection (autocar.quant) on synthetic trees with planted lesions.

For each seed a left and a right tree come from
:func:`autocar.synth.trees.generate_tree` with ``n_stenoses`` planted focal
stenoses (severity = fractional diameter reduction, uniform in 0.3-0.8,
4-12 mm long, cosine profile). Two versions of each tree are measured:

- ``truth``: the labelled truth graph as generated;
- ``noisy``: unlabelled, radii + N(0, 0.07 mm) (floored at 0.05 mm) and node
  positions + N(0, 0.3 mm) per coordinate: roughly what a reconstruction
  gives; the side ("left"/"right") is passed as known.

A finding matches a planted stenosis when its node lies within 3 mm (3D) of
the planted one. Reported over planted stenoses of severity >= 0.4: how many
were found, mean and max 3D position error (mm), mean signed, mean absolute
and max absolute error of the percent diameter stenosis (points, against
100 x severity). A false positive is a finding within 3 mm of no planted
stenosis (of any severity). Also prints the time per tree of
:func:`autocar.quant.split_segments` + :func:`autocar.quant.detect_stenoses`
and of a full :func:`autocar.quant.measure` (two views, optimal views of
every segment on the default 2-degree grid).

Last, ``--reconstructed N`` (default 6) weakly synchronised 6-frame mask
cases are reconstructed (dynamic, shipped network) and the reference frame's
tree is measured the same way: the readouts as a user gets them.

Vessel names: ``names R/N`` counts the segments given an anatomical name (LM,
LAD, LCX, RCA, D<k>, OM<k>; not "segment N") and, of them, those whose nodes lie
mostly (nearest truth node, majority vote) on the truth vessel of that name.

Run: ``python benchmarks/bench_quant.py [--seeds 20] [--stenoses 3] [--reconstructed 6]``
(BLAS is limited to one thread unless OPENBLAS_NUM_THREADS is set: the
machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

from autocar.geometry.centerline import CenterlineGraph  # noqa: E402
from autocar.geometry import CArmView  # noqa: E402
from autocar.quant import detect_stenoses, measure, split_segments  # noqa: E402
from autocar.synth.trees import generate_tree  # noqa: E402


def perturbed(graph: CenterlineGraph, seed: int) -> CenterlineGraph:
    """Unlabelled copy with radii + N(0, 0.07 mm) and nodes + N(0, 0.3 mm)."""
    rng = np.random.default_rng(50_000 + seed)
    radii = np.maximum(graph.radii + rng.normal(0.0, 0.07, graph.num_nodes), 0.05)
    nodes = graph.nodes + rng.normal(0.0, 0.3, graph.nodes.shape)
    return CenterlineGraph(nodes, radii, graph.edges)


def match_findings(where: np.ndarray, percent: np.ndarray, places: np.ndarray, severities: list[float]) -> dict:
    """Match findings (F, 3) mm with planted stenoses (S, 3) mm: nearest within 3 mm.

    Returns, over planted stenoses of severity >= 0.4: ``planted`` count, ``pos``
    (distances, mm) and ``err`` (percent diameter stenosis minus 100 x severity)
    of those found, ``missed`` (their indices); and ``false_positives``:
    findings within 3 mm of no planted stenosis of any severity.
    """
    used: set[int] = set()
    out: dict = {"planted": 0, "pos": [], "err": [], "missed": []}
    for k, (p, sev) in enumerate(zip(places, severities)):
        dist = np.linalg.norm(where - p, axis=1)
        j = int(np.argmin(dist)) if len(dist) else -1
        hit = j >= 0 and dist[j] <= 3.0
        if hit:
            used.add(j)
        if sev < 0.4:
            continue
        out["planted"] += 1
        if hit:
            out["pos"].append(float(dist[j]))
            out["err"].append(float(percent[j]) - 100.0 * sev)
        else:
            out["missed"].append(k)
    out["false_positives"] = len(where) - len(used)
    return out


def name_agreement(named: list[tuple[str, np.ndarray]], nodes: np.ndarray, truth: CenterlineGraph,
                   wrong: list[str] | None = None) -> tuple[int, int]:
    """(right, named): of the segments given as (name, node indices into ``nodes``) whose
    name is anatomical (not "segment N"), how many lie mostly (majority of their nodes'
    nearest truth nodes) on the truth vessel of that name. ``wrong`` collects
    "name->truth" for the others."""
    from scipy.spatial import cKDTree

    near = cKDTree(truth.nodes)
    right = total = 0
    for name, idx in named:
        if name.startswith("segment ") or len(idx) == 0:
            continue
        lab = truth.labels[near.query(nodes[np.asarray(idx)])[1]]
        votes = np.bincount(lab[lab >= 0], minlength=len(truth.label_names))
        total += 1
        on = truth.label_names[int(np.argmax(votes))] if votes.sum() else "?"
        right += int(on == name)
        if on != name and wrong is not None:
            wrong.append(f"{name}->{on}")
    return right, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="trees per side")
    ap.add_argument("--stenoses", type=int, default=3, help="planted stenoses per tree")
    ap.add_argument("--reconstructed", type=int, default=6,
                    help="weakly synchronised 6-frame mask cases reconstructed (dynamic, shipped network) and measured")
    args = ap.parse_args()

    print(f"{'variant':<12} {'side':<6} {'found':>9} {'pos mm':>13} {'DS err pts (signed/abs/max)':>28} {'FP':>4} {'FP max/tree':>11} {'s/tree':>7}")
    for variant in ("truth", "noisy"):
        for side in ("left", "right"):
            pos, err, fps, times = [], [], [], []
            planted = found = names_right = names_total = 0
            for seed in range(args.seeds):
                truth = generate_tree(side, rng=seed, n_stenoses=args.stenoses)
                graph = truth.graph if variant == "truth" else perturbed(truth.graph, seed)
                t0 = time.perf_counter()
                split = split_segments(graph, side=side)
                findings = detect_stenoses(split)
                times.append(time.perf_counter() - t0)
                r, n = name_agreement([(s.name, s.owned_nodes) for s in split.segments], graph.nodes, truth.graph)
                names_right += r
                names_total += n
                where = np.array([f.position_mm for f in findings]).reshape(-1, 3)
                percent = np.array([f.diameter_stenosis_percent for f in findings])
                places = np.array([st.position_mm for st in truth.stenoses]).reshape(-1, 3)
                m = match_findings(where, percent, places, [st.severity for st in truth.stenoses])
                planted += m["planted"]
                found += len(m["pos"])
                pos += m["pos"]
                err += m["err"]
                fps.append(m["false_positives"])
            e = np.asarray(err)
            print(
                f"{variant:<12} {side:<6} {found:>4}/{planted:<4} "
                f"{np.mean(pos):>6.2f} / {np.max(pos):>4.2f} "
                f"{np.mean(e):>+10.2f} / {np.mean(np.abs(e)):>5.2f} / {np.max(np.abs(e)):>5.2f} "
                f"{sum(fps):>4} {max(fps):>11} {statistics.median(times):>7.2f}"
                f"   names {names_right}/{names_total}"
            )

    views = [
        CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512),
        CArmView(-30.0, -20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512),
    ]
    times = []
    for seed in range(min(args.seeds, 5)):
        g = generate_tree("left", rng=seed, n_stenoses=args.stenoses).graph
        t0 = time.perf_counter()
        measure(g, views)
        times.append(time.perf_counter() - t0)
    print(f"full measure() of a left tree (2 views, optimal views on the 2-degree grid): "
          f"median {statistics.median(times):.2f} s over {len(times)} trees")
    if args.reconstructed:
        reconstructed(args.reconstructed, args.stenoses)


def reconstructed(n_cases: int, n_stenoses: int) -> None:
    """Stenosis readouts on whole dynamic reconstructions from the vessel masks (not on truth trees).

    Held-out seeds 2,000,000+i, left/right alternating, ``autocar synth`` defaults (weak
    sync), 6 frames; the reference frame's tree is measured with the side known and compared
    with the planted stenoses moved to that frame. "missed (not reconstructed)" counts planted
    lesions with no reconstructed node within 1.5 mm.
    """
    from scipy.spatial import cKDTree

    from autocar.pipeline.dynamic import reconstruct_dynamic
    from autocar.quant import measure
    from autocar.pipeline.static import default_model
    from autocar.synth.cases import SynthCaseConfig, synthesize_case

    model = default_model()
    planted = found = absent = fps = names_right = names_total = 0
    wrong: list[str] = []
    pos, err = [], []
    for i in range(n_cases):
        side = "left" if i % 2 == 0 else "right"
        sc = synthesize_case(SynthCaseConfig(side=side, frames=6, n_stenoses=n_stenoses), rng=2_000_000 + i)
        res = reconstruct_dynamic(sc.case, model, progress=False)
        ref = res.track.reference if res.track is not None else 0
        graph = res.reconstruction.frames[ref]
        truth = sc.truth[int(res.pairing.index_a[ref])]
        if graph.num_nodes < 2:
            continue
        a, b = sc.case.views
        data = measure(graph, [a.view, b.view], side=side, optimal_views=0)
        where = np.array([s["position_mm"] for s in data["stenoses"]]).reshape(-1, 3)
        percent = np.array([s["diameter_stenosis_percent"] for s in data["stenoses"]])
        places = truth.nodes[[st.node for st in sc.stenoses]].reshape(-1, 3)
        m = match_findings(where, percent, places, [st.severity for st in sc.stenoses])
        planted += m["planted"]
        found += len(m["pos"])
        pos += m["pos"]
        err += m["err"]
        fps += m["false_positives"]
        absent += int(sum(cKDTree(graph.nodes).query(places[k])[0] > 1.5 for k in m["missed"]))
        r, n = name_agreement([(s["name"], s["nodes"]) for s in data["segments"]], graph.nodes, truth, wrong)
        names_right += r
        names_total += n
    e = np.asarray(err) if err else np.full(1, np.nan)
    print(f"reconstructed ({n_cases} weak-sync cases, dynamic, network): found {found}/{planted} planted >= 40 %, "
          f"missed because not reconstructed {absent}, position error mean {np.mean(pos) if pos else float('nan'):.2f} mm, "
          f"severity error mean abs {np.mean(np.abs(e)):.1f} points, false positives {fps}; "
          f"named segments on the true vessel of their name {names_right}/{names_total}"
          + (f" (wrong: {', '.join(wrong)})" if wrong else ""))


if __name__ == "__main__":
    main()
