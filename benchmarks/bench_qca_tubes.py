"""Diameter accuracy of 3D-QCA on tube phantoms of known lumen (issue 27, item 1's phantoms).

Straight and curved tubes, 60 mm long, 1.5-5 mm in diameter, two thirds with one planted
concentric lesion (20-80 % diameter stenosis, 3-20 mm long, a cosine-shaped narrowing),
are rendered into two grey X-ray angiograms (``autocar.synth.angiogram.render_angiogram``:
anatomical background, quantum and electronic noise, detector blur, log display with a
random gamma) at isocentre pixel sizes of 0.2, 0.25 and 0.3 mm, in two views 60-100 deg
apart chosen so that the tube is foreshortened by less than 25 % in both. The true centre
line is measured (``autocar.quant.measure``, the stenosis table of ``autocar reconstruct``)
with its radii taken two ways, in the same run:

- ``mask width``: the vessel masks (true masks, ``render_mask``) as the pipeline measures
  radii (:func:`autocar.graph.extract.radii_from_masks`), findings as ``autocar reconstruct``
  reports them from masks (:func:`autocar.quant.evidence.measure_with_evidence` without images);
- ``grey profiles``: the grey images' cross-section profiles fitted by the lumen model of
  :mod:`autocar.quant.lumen`, every finding of the profile (a diagnostic row: its uncertainty is
  the profile noise alone);
- ``mask + grey``: what ``autocar reconstruct`` reports from angiograms
  (:func:`autocar.quant.evidence.measure_with_evidence`): narrowings of the mask widths from 20 %
  that both views' masks show, each kept only when the grey reading has a stenosis (>= 30 %)
  there and then measured in it; the diameter profile is the masks'.

Printed per pixel size and method:

- healthy diameter error (measured - true, mm, mean +- SD over every tube's healthy part,
  3 mm or more from the ends and the lesion);
- profile MLD error (mm, mean +- SD): the smallest diameter of the reported diameter profile
  within the planted lesion against the true minimum (every lesion);
- lesions found (a reported stenosis >= 30 % whose narrowest point is within 5 mm of the
  planted one) of those planted with >= 30 % and of those >= 50 %;
- MLD and reference-diameter errors of the lesions found (the stenosis table's against the true
  ones, mm, mean +- SD),
  %DS error (points, mean absolute) and lesion-length error (mm, mean +- SD; the true length
  is where the true diameter is >= 10 % below the tube's, the stenosis detector's boundary)
  over the lesions found;
- false stenoses per tube (a finding >= 30 % / >= 40 % away from any planted lesion);
- how often the true MLD and %DS of a found lesion lie within two of the finding's own
  standard deviations (its ``uncertainty``): about 95 % when the uncertainty is honest.

The issue-27 targets on these phantoms: MLD error within 0.1 +- 0.2 mm, length within 1 mm.
Run (about 2 min on 2 cores): ``python benchmarks/bench_qca_tubes.py [--tubes 24] [--seed 0] [--pixel-sizes 0.2,0.25,0.3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.graph.extract import radii_from_masks
from autocar.quant import measure
from autocar.quant.evidence import measure_with_evidence
from autocar.quant.lumen import lumen_radii
from autocar.synth.angiogram import render_angiogram
from autocar.synth.render import render_mask

STEP_MM = 0.3
LENGTH_MM = 60.0


def tube(gen: np.random.Generator, curved: bool, diameter: float, lesion: tuple[float, float, float] | None):
    """A tube along a random direction through the isocentre; lesion = (centre arc mm, length mm, %DS)."""
    s = np.arange(0.0, LENGTH_MM + 1e-9, STEP_MM)
    d = gen.normal(size=3)
    d /= np.linalg.norm(d)
    e = np.cross(d, gen.normal(size=3))
    e /= np.linalg.norm(e)
    if curved:
        bend = gen.uniform(30.0, 60.0)  # radius of curvature, mm
        ang = (s - LENGTH_MM / 2) / bend
        pts = np.outer(bend * np.sin(ang), d) + np.outer(bend * (1 - np.cos(ang)), e)
    else:
        pts = np.outer(s - LENGTH_MM / 2, d)
    radius = np.full(len(s), diameter / 2.0)
    if lesion is not None:
        c, length, ds = lesion
        u = np.abs(s - c) / (length / 2.0)
        radius = radius * (1.0 - ds / 100.0 * np.where(u < 1.0, 0.5 * (1.0 + np.cos(np.pi * u)), 0.0))
    edges = np.stack([np.arange(len(s) - 1), np.arange(1, len(s))], axis=1)
    return CenterlineGraph(pts, radius, edges), s


def views_for(gen: np.random.Generator, graph: CenterlineGraph, px_mm: float) -> list[CArmView] | None:
    """Two views 60-100 deg apart seeing the tube foreshortened by < 25 %; None if none found."""
    sid, sod = gen.uniform(950.0, 1150.0), 750.0
    det = px_mm * sid / sod
    true_len = float(np.sum(np.linalg.norm(np.diff(graph.nodes, axis=0), axis=1)))
    for _ in range(200):
        a1, b1 = gen.uniform(-50, 50), gen.uniform(-30, 30)
        sep = gen.uniform(60, 100) * gen.choice([-1, 1])
        a2, b2 = float(np.clip(a1 + sep, -120, 120)), gen.uniform(-30, 30)
        vs = [CArmView(a1, b1, sid, sod, (det, det), 512, 512), CArmView(a2, b2, sid, sod, (det, det), 512, 512)]
        ok = True
        for v in vs:
            rc, _ = v.project(graph.nodes)
            app = np.sum(np.linalg.norm(np.diff(rc, axis=0), axis=1)) * px_mm
            inside = np.all((rc > 20) & (rc < 491))
            ok &= bool(inside and app > 0.75 * true_len)
        if ok:
            return vs
    return None


def true_lesion(s: np.ndarray, radius: np.ndarray, diameter: float) -> tuple[float, float, float]:
    """(MLD mm, arc of MLD mm, length mm where the diameter is >= 10 % below the tube's)."""
    d = 2.0 * radius
    k = int(np.argmin(d))
    low = d <= 0.9 * diameter
    length = float(np.count_nonzero(low) * STEP_MM)
    return float(d[k]), float(s[k]), length


def read(m: dict, graph: CenterlineGraph, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The reported diameter profile as (arc of the tube node mm, diameter mm) and the findings."""
    seg = m["segments"][0]
    nodes = np.asarray(seg["nodes"], int)
    diam = np.asarray(seg["diameter_profile"]["diameter_mm"], float)
    return s[nodes], diam, list(m["stenoses"])


def run(args: argparse.Namespace) -> None:
    pixel_sizes = [float(x) for x in args.pixel_sizes.split(",")]
    print(f"{args.tubes} tubes per pixel size (2/3 with a lesion), seed {args.seed}\n")
    header = (f"{'pixel':>6} {'method':<14} {'healthy d err':>16} {'profile MLD err':>16} {'found>=30':>9} "
              f"{'found>=50':>9} {'MLD err (found)':>16} {'ref err (found)':>16} "
              f"{'%DS MAE':>8} {'length err':>16} {'FP>=30/tube':>11} {'FP>=40/tube':>11} {'s/tube':>7} "
              f"{'MLD, %DS within 2 SD':>20}")
    print(header)
    for px in pixel_sizes:
        gen = np.random.default_rng([args.seed, int(round(px * 1000))])
        stats = {k: {"healthy": [], "mld": [], "found30": [0, 0], "found50": [0, 0], "ds": [], "len": [], "mld_found": [], "ref": [],
                     "fp30": 0, "fp40": 0, "time": 0.0, "z_mld": [], "z_ds": []} for k in ("mask width", "grey profiles", "mask + grey")}
        made = 0
        while made < args.tubes:
            diameter = gen.uniform(1.5, 5.0)
            has = made % 3 != 0
            lesion = (gen.uniform(20.0, 40.0), gen.uniform(3.0, 20.0), gen.uniform(20.0, 80.0)) if has else None
            graph, s = tube(gen, curved=bool(made % 2), diameter=diameter, lesion=lesion)
            views = views_for(gen, graph, px)
            if views is None:
                continue
            made += 1
            seed = int(gen.integers(1 << 30))
            images = [render_angiogram(graph, v, rng=seed + k, contrast=float(gen.uniform(0.7, 1.3)))
                      for k, v in enumerate(views)]
            masks = [render_mask(graph, v) for v in views]
            for method in stats:
                st = stats[method]
                t0 = time.perf_counter()
                mask_radii = radii_from_masks(graph, masks, views)
                mask_graph = graph.with_nodes(graph.nodes, radii=mask_radii)
                if method == "mask width":
                    m = measure_with_evidence(mask_graph, views, masks=masks)
                elif method == "grey profiles":
                    radii = lumen_radii(graph, images, views).filled(mask_radii)
                    m = measure(graph.with_nodes(graph.nodes, radii=radii), views, optimal_views=0)
                else:
                    m = measure_with_evidence(mask_graph, views, masks=masks, images=images)
                st["time"] += time.perf_counter() - t0
                arc, diam, found = read(m, graph, s)
                far_from_ends = (arc > 3.0) & (arc < LENGTH_MM - 3.0)
                if lesion is not None:
                    mld, at, length = true_lesion(s, graph.radii, diameter)
                    healthy = far_from_ends & (np.abs(arc - lesion[0]) > lesion[1] / 2 + 3.0)
                    inside = np.abs(arc - lesion[0]) <= lesion[1] / 2
                    if np.any(inside):
                        st["mld"].append(float(diam[inside].min()) - mld)
                    ds_true = 100.0 * (1.0 - mld / diameter)
                    hit = [f for f in found if abs(f["distance_from_ostium_mm"] - at) <= 5.0
                           or abs((LENGTH_MM - f["distance_from_ostium_mm"]) - at) <= 5.0]
                    for key, level in (("found30", 30.0), ("found50", 50.0)):
                        if ds_true >= level:
                            st[key][1] += 1
                            st[key][0] += bool(hit)
                    if hit and ds_true >= 30.0:
                        best = max(hit, key=lambda f: f["diameter_stenosis_percent"])
                        st["ds"].append(abs(best["diameter_stenosis_percent"] - ds_true))
                        st["mld_found"].append(best["minimal_diameter_mm"] - mld)
                        st["ref"].append(best["reference_diameter_mm"] - diameter)
                        st["len"].append(best["lesion_length_mm"] - length)
                        unc = best["uncertainty"]  # the finding's own standard deviations
                        st["z_mld"].append((best["minimal_diameter_mm"] - mld) / max(unc["minimal_diameter_mm"], 1e-6))
                        st["z_ds"].append((best["diameter_stenosis_percent"] - ds_true)
                                          / max(unc["diameter_stenosis_percent"], 1e-6))
                    others = [f for f in found if f not in hit]
                else:
                    healthy = far_from_ends
                    others = found
                st["healthy"].extend((diam[healthy] - diameter).tolist())
                st["fp30"] += sum(f["diameter_stenosis_percent"] >= 30.0 for f in others)
                st["fp40"] += sum(f["diameter_stenosis_percent"] >= 40.0 for f in others)
        for method, st in stats.items():
            def ms(x: list[float]) -> str:
                return f"{np.mean(x):+.3f} +- {np.std(x):.3f}" if x else "-"
            f30 = f"{st['found30'][0]}/{st['found30'][1]}"
            f50 = f"{st['found50'][0]}/{st['found50'][1]}"
            mae = f"{np.mean(st['ds']):.1f}" if st["ds"] else "-"
            cover = (f"{np.mean(np.abs(st['z_mld']) <= 2):.0%}, {np.mean(np.abs(st['z_ds']) <= 2):.0%}"
                     if st["z_mld"] else "-")
            print(f"{px:>6.2f} {method:<14} {ms(st['healthy']):>16} {ms(st['mld']):>16} {f30:>9} {f50:>9} "
                  f"{ms(st['mld_found']):>16} {ms(st['ref']):>16} {mae:>8} "
                  f"{ms(st['len']):>16} {st['fp30'] / args.tubes:>11.2f} {st['fp40'] / args.tubes:>11.2f} "
                  f"{st['time'] / args.tubes:>7.2f} {cover:>20}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tubes", type=int, default=24, help="tubes per pixel size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pixel-sizes", default="0.2,0.25,0.3", help="isocentre pixel sizes, mm, comma-separated")
    args = ap.parse_args()
    if args.tubes < 1:
        ap.error("--tubes must be >= 1")
    run(args)


if __name__ == "__main__":
    main()
