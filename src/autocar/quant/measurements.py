"""measurements.json: every quantitative readout of one reconstructed frame.

Format ``"autocar-measurements/1"`` (agreed with the viewer)::

    {
      "format": "autocar-measurements/1",
      "frame": 0,
      "tree_side": "left" | "right" | null,
      "views": [{"name": "A", "primary_deg": 30.0, "secondary_deg": 0.0}, ...],
      "segments": [
        {"id": 0, "name": "LAD", "nodes": [12, 13, ...],
         "length_mm": 87.2,
         "apparent_length_mm": {"A": 70.1, "B": 80.0},
         "foreshortening_percent": {"A": 19.6, "B": 8.3},
         "diameter_profile": {"arc_mm": [0.0, 0.5, ...], "diameter_mm": [3.1, 3.0, ...]},
         "mean_diameter_mm": 2.9,
         "optimal_view": {"primary_deg": -20.0, "secondary_deg": 25.0,
                          "foreshortening_percent": 1.2, "overlap_percent": 3.0}}
      ],
      "stenoses": [
        {"segment": 0, "name": "LAD", "node": 40, "position_mm": [x, y, z],
         "distance_from_ostium_mm": 35.2, "diameter_stenosis_percent": 55.0,
         "minimal_diameter_mm": 1.3, "reference_diameter_mm": 2.9, "lesion_length_mm": 8.0,
         "uncertainty": {"minimal_diameter_mm": 0.12, "reference_diameter_mm": 0.05,
                         "diameter_stenosis_percent": 4.3}}
      ],
      "catheter": {"nodes": [301, 302, ...], "ostium_node": 12, "length_mm": 21.4,
                   "radius_mm": 0.9, "ostium_radius_mm": 1.8} | null
    }

``catheter`` (optional; null or absent when none was found) is the guiding-catheter
piece found at the ostium (:mod:`autocar.quant.catheter`): its nodes belong to no
segment, and the LM / RCA starts at ``ostium_node``.

Lengths are measured on the centre line smoothed with ``course_smooth_mm``
(1 mm; :func:`autocar.quant.segments.smooth_polyline`, which keeps straight
lines and end points exact and removes reconstruction jitter), both in 3D and
in projection. Apparent lengths are pixel lengths times the view's isocentre
pixel spacing. The optimal-view search uses the first view's source-isocentre
distance. Numbers are rounded to 1e-3 (mm, percent) to keep the file small.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry import CArmView
from autocar.io.atomic import atomic_write_json
from autocar.io.case import read_json_file
from autocar.quant.segments import (
    arc_length,
    diameter_profile,
    smooth_polyline,
    split_segments,
)
from autocar.quant.stenosis import StenosisOptions, detect_stenoses, stenosis_percent_sd
from autocar.quant.views import (
    ViewSearchOptions,
    apparent_length_mm,
    segment_optimal_view,
)

__all__ = [
    "MEASUREMENTS_FORMAT",
    "MEASUREMENTS_FILE",
    "measure",
    "validate_measurements",
    "write_measurements",
    "read_measurements",
]

MEASUREMENTS_FORMAT = "autocar-measurements/1"
MEASUREMENTS_FILE = "measurements.json"
_DIGITS = 3


def _r(x: float) -> float:
    return round(float(x), _DIGITS)


def _segments_to_search(tree: Any, findings: Sequence[Any], limit: int | None) -> set[int]:
    """Segment ids that get an optimal-view search: stenosed, then named, then longest."""
    order = [f.segment for f in findings]
    order += [seg.id for seg in tree.segments if not seg.name.startswith("segment ")]
    order += [seg.id for seg in sorted(tree.segments, key=lambda seg: -seg.length_mm)]
    chosen: list[int] = []
    for i in order:
        if i not in chosen and (limit is None or len(chosen) < int(limit)):
            chosen.append(i)
    return set(chosen)


def measure(
    graph: CenterlineGraph,
    views: Sequence[CArmView],
    *,
    view_names: Sequence[str] = ("A", "B"),
    side: str | None = None,
    frame: int = 0,
    root: int | None = None,
    min_segment_mm: float = 5.0,
    course_smooth_mm: float = 1.0,
    profile_smooth_mm: float = 0.5,
    stenosis: StenosisOptions | None = None,
    view_search: ViewSearchOptions | None = None,
    optimal_views: int | None = 8,
    measured_radii_mm: np.ndarray | None = None,
) -> dict[str, Any]:
    """All readouts of one centre-line tree, as the measurements.json dictionary.

    Parameters
    ----------
    graph : reconstructed (or truth) tree or forest, N nodes, mm; labels used when present.
    views : the case's C-arm views, one per name in ``view_names``.
    view_names : names of the views in the output (e.g. "A", "B").
    side : "left", "right" or None (unknown): anatomical names of the main vessels.
    frame : index of the reconstruction frame the graph comes from (recorded).
    root : ostium node; None finds it (:func:`autocar.quant.segments.split_segments`).
    min_segment_mm : shorter side branches (spurs) are not listed, mm.
    course_smooth_mm : Gaussian sigma of the centre-line smoothing used for lengths, mm.
    profile_smooth_mm : Gaussian sigma of the reported diameter profiles, mm.
    stenosis : stenosis detection settings (defaults: :class:`StenosisOptions`).
    view_search : optimal-view settings (defaults: :class:`ViewSearchOptions`).
    measured_radii_mm : (N,) radii (mm) the diameters and stenoses are read from, e.g. with the
        stretches overlapped in every view bridged (:func:`autocar.quant.overlaps.bridge_overlaps`);
        None: ``graph.radii``. The tree's structure (the catheter, the ostium, where each vessel
        continues) is read from ``graph.radii`` either way.
    optimal_views : the optimal-view search (about 1 s per segment on a
        2-core CPU) runs for the segments with a stenosis, the anatomically
        named ones and the longest others, up to this many in all; the rest
        get ``"optimal_view": null``. None searches every segment.

    Returns
    -------
    dict following ``"autocar-measurements/1"`` (module docstring), already validated.

    Raises
    ------
    TreeFormatError
        Empty graph, graph with a cycle, bad root.
    ShapeError
        ``views`` and ``view_names`` of different lengths, or no view.
    TypeError, ValueError
        Wrong argument types or values (each message names the argument).
    """
    if not isinstance(graph, CenterlineGraph):
        raise TypeError(f"graph must be a CenterlineGraph, got {type(graph).__name__}")
    views = list(views) if not isinstance(views, CArmView) else [views]
    names = [view_names] if isinstance(view_names, str) else list(view_names)
    if len(views) == 0 or len(views) != len(names):
        raise ShapeError(
            f"views must hold one CArmView per view name {names}: got {len(views)} view(s) for {len(names)} name(s)"
        )
    for i, v in enumerate(views):
        if not isinstance(v, CArmView):
            raise TypeError(f"views[{i}] must be a CArmView, got {type(v).__name__}")
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"view_names must be distinct non-empty strings, got {names}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be 'left', 'right' or None, got {side!r}")
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame < 0:
        raise ValueError(f"frame must be an integer >= 0, got {frame!r}")
    for name, val in (("course_smooth_mm", course_smooth_mm), ("profile_smooth_mm", profile_smooth_mm)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")

    tree = split_segments(graph, side=side, min_length_mm=min_segment_mm, root=root)  # type: ignore[arg-type]
    if measured_radii_mm is not None:
        radii = np.asarray(measured_radii_mm, dtype=float)
        if radii.shape != (graph.num_nodes,) or not np.all(np.isfinite(radii)) or np.any(radii < 0):
            raise ValueError(f"measured_radii_mm must be ({graph.num_nodes},) finite radii >= 0, "
                             f"got shape {radii.shape}")
        graph = graph.with_nodes(graph.nodes, radii)
        tree = dataclasses.replace(tree, graph=tree.graph.with_nodes(tree.graph.nodes, radii))
    sten_opt = stenosis or StenosisOptions(course_smooth_mm=course_smooth_mm)
    search = view_search or ViewSearchOptions()
    sod = views[0].sod_mm

    if optimal_views is not None and (isinstance(optimal_views, bool) or int(optimal_views) < 0):
        raise ValueError(f"optimal_views must be None or an integer >= 0, got {optimal_views!r}")
    findings = detect_stenoses(tree, sten_opt)
    searched = _segments_to_search(tree, findings, optimal_views)

    segments = []
    for seg in tree.segments:
        course = smooth_polyline(graph.nodes[seg.nodes], course_smooth_mm)
        length = float(arc_length(course)[-1])
        apparent = {n: apparent_length_mm(course, v) for n, v in zip(names, views)}
        fs = {n: (100.0 * (1.0 - a / length) if length > 0 else 0.0) for n, a in apparent.items()}
        arc, diam = diameter_profile(
            graph, seg.nodes, smooth_mm=profile_smooth_mm, course_smooth_mm=course_smooth_mm
        )
        if arc[-1] > 0:
            mean_d = float(np.sum(0.5 * (diam[1:] + diam[:-1]) * np.diff(arc)) / arc[-1])
        else:
            mean_d = float(np.mean(diam))
        best = (segment_optimal_view(tree, seg.id, sod_mm=sod, options=search, course_smooth_mm=course_smooth_mm)
                if seg.id in searched else None)
        segments.append(
            {
                "id": seg.id,
                "name": seg.name,
                "nodes": [int(i) for i in seg.nodes],
                "length_mm": _r(length),
                "apparent_length_mm": {n: _r(a) for n, a in apparent.items()},
                "foreshortening_percent": {n: _r(f) for n, f in fs.items()},
                "diameter_profile": {
                    "arc_mm": [_r(x) for x in arc],
                    "diameter_mm": [_r(x) for x in diam],
                },
                "mean_diameter_mm": _r(mean_d),
                "optimal_view": None if best is None else {
                    "primary_deg": _r(best.primary_deg),
                    "secondary_deg": _r(best.secondary_deg),
                    "foreshortening_percent": _r(best.foreshortening_percent),
                    "overlap_percent": _r(best.overlap_percent),
                },
            }
        )
    stenoses = [
        {
            "segment": f.segment,
            "name": f.name,
            "node": f.node,
            "position_mm": [_r(x) for x in f.position_mm],
            "distance_from_ostium_mm": _r(f.distance_from_ostium_mm),
            "diameter_stenosis_percent": _r(f.diameter_stenosis_percent),
            "minimal_diameter_mm": _r(f.minimal_diameter_mm),
            "reference_diameter_mm": _r(f.reference_diameter_mm),
            "lesion_length_mm": _r(f.lesion_length_mm),
            "uncertainty": {
                "minimal_diameter_mm": _r(f.minimal_sd_mm),
                "reference_diameter_mm": _r(f.reference_sd_mm),
                "diameter_stenosis_percent": _r(stenosis_percent_sd(
                    f.minimal_diameter_mm, f.reference_diameter_mm, f.minimal_sd_mm, f.reference_sd_mm)),
            },
        }
        for f in findings
    ]
    data = {
        "format": MEASUREMENTS_FORMAT,
        "frame": int(frame),
        "tree_side": tree.side,
        "views": [
            {"name": n, "primary_deg": _r(v.primary_deg), "secondary_deg": _r(v.secondary_deg)}
            for n, v in zip(names, views)
        ],
        "segments": segments,
        "stenoses": stenoses,
        "catheter": None if tree.catheter is None else tree.catheter.to_dict(),
    }
    validate_measurements(data, source="measure()")
    return data


# ---------------------------------------------------------------- checking
def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> None:
        raise CaseFormatError(f"{self.source}: {where}: {problem}")

    def obj(self, x: Any, where: str, keys: Sequence[str]) -> dict:
        if not isinstance(x, dict):
            self.fail(where, f"must be an object, got {type(x).__name__}")
        missing = [k for k in keys if k not in x]
        if missing:
            self.fail(where, f"missing key(s) {missing}")
        return x

    def number(self, x: Any, where: str, *, minimum: float | None = None) -> None:
        if not _num(x):
            self.fail(where, f"must be a finite number, got {x!r}")
        if minimum is not None and x < minimum:
            self.fail(where, f"must be >= {minimum}, got {x!r}")

    def integer(self, x: Any, where: str) -> None:
        if not _int(x) or x < 0:
            self.fail(where, f"must be an integer >= 0, got {x!r}")

    def numbers(self, x: Any, where: str) -> list:
        if not isinstance(x, list):
            self.fail(where, f"must be a list of numbers, got {type(x).__name__}")
        for i, v in enumerate(x):
            self.number(v, f"{where}[{i}]")
        return x

    def per_view(self, x: Any, where: str, names: list[str]) -> None:
        if not isinstance(x, dict) or set(x) != set(names):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            self.fail(where, f"must map exactly the view names {names} to numbers, got {got}")
        for k, v in x.items():
            self.number(v, f"{where}.{k}")


def validate_measurements(data: Any, *, source: str = "measurements") -> dict:
    """Check a measurements dictionary against ``"autocar-measurements/1"``.

    Returns ``data`` unchanged; raises CaseFormatError naming ``source``, the key
    path and the problem at the first violation.
    """
    c = _Checker(source)
    top = c.obj(data, "top level", ("format", "frame", "tree_side", "views", "segments", "stenoses"))
    if top["format"] != MEASUREMENTS_FORMAT:
        c.fail("format", f"must be {MEASUREMENTS_FORMAT!r}, got {top['format']!r}")
    c.integer(top["frame"], "frame")
    if top["tree_side"] not in ("left", "right", None):
        c.fail("tree_side", f"must be 'left', 'right' or null, got {top['tree_side']!r}")
    if not isinstance(top["views"], list) or not top["views"]:
        c.fail("views", "must be a non-empty list")
    names: list[str] = []
    for i, v in enumerate(top["views"]):
        w = f"views[{i}]"
        c.obj(v, w, ("name", "primary_deg", "secondary_deg"))
        if not isinstance(v["name"], str) or not v["name"] or v["name"] in names:
            c.fail(f"{w}.name", f"must be a distinct non-empty string, got {v['name']!r}")
        names.append(v["name"])
        c.number(v["primary_deg"], f"{w}.primary_deg")
        c.number(v["secondary_deg"], f"{w}.secondary_deg")
    if not isinstance(top["segments"], list):
        c.fail("segments", "must be a list")
    ids: set[int] = set()
    seg_keys = (
        "id", "name", "nodes", "length_mm", "apparent_length_mm", "foreshortening_percent",
        "diameter_profile", "mean_diameter_mm", "optimal_view",
    )
    for i, s in enumerate(top["segments"]):
        w = f"segments[{i}]"
        c.obj(s, w, seg_keys)
        c.integer(s["id"], f"{w}.id")
        if s["id"] in ids:
            c.fail(f"{w}.id", f"duplicate segment id {s['id']}")
        ids.add(s["id"])
        if not isinstance(s["name"], str) or not s["name"]:
            c.fail(f"{w}.name", f"must be a non-empty string, got {s['name']!r}")
        if not isinstance(s["nodes"], list) or len(s["nodes"]) < 2:
            c.fail(f"{w}.nodes", "must be a list of at least 2 node indices")
        for k, n in enumerate(s["nodes"]):
            c.integer(n, f"{w}.nodes[{k}]")
        c.number(s["length_mm"], f"{w}.length_mm", minimum=0)
        c.per_view(s["apparent_length_mm"], f"{w}.apparent_length_mm", names)
        c.per_view(s["foreshortening_percent"], f"{w}.foreshortening_percent", names)
        prof = c.obj(s["diameter_profile"], f"{w}.diameter_profile", ("arc_mm", "diameter_mm"))
        arc = c.numbers(prof["arc_mm"], f"{w}.diameter_profile.arc_mm")
        dia = c.numbers(prof["diameter_mm"], f"{w}.diameter_profile.diameter_mm")
        if len(arc) != len(dia):
            c.fail(f"{w}.diameter_profile", f"arc_mm has {len(arc)} values but diameter_mm {len(dia)}")
        if any(b < a for a, b in zip(arc[:-1], arc[1:])):
            c.fail(f"{w}.diameter_profile.arc_mm", "must be non-decreasing")
        c.number(s["mean_diameter_mm"], f"{w}.mean_diameter_mm", minimum=0)
        if s["optimal_view"] is None:
            continue
        ov = c.obj(
            s["optimal_view"],
            f"{w}.optimal_view",
            ("primary_deg", "secondary_deg", "foreshortening_percent", "overlap_percent"),
        )
        for k in ("primary_deg", "secondary_deg", "foreshortening_percent", "overlap_percent"):
            c.number(ov[k], f"{w}.optimal_view.{k}")
    if not isinstance(top["stenoses"], list):
        c.fail("stenoses", "must be a list")
    for i, s in enumerate(top["stenoses"]):
        w = f"stenoses[{i}]"
        c.obj(
            s,
            w,
            (
                "segment", "name", "node", "position_mm", "distance_from_ostium_mm",
                "diameter_stenosis_percent", "minimal_diameter_mm", "reference_diameter_mm",
                "lesion_length_mm",
            ),
        )
        c.integer(s["segment"], f"{w}.segment")
        if s["segment"] not in ids:
            c.fail(f"{w}.segment", f"refers to segment id {s['segment']}, which is not listed")
        if not isinstance(s["name"], str) or not s["name"]:
            c.fail(f"{w}.name", f"must be a non-empty string, got {s['name']!r}")
        c.integer(s["node"], f"{w}.node")
        pos = c.numbers(s["position_mm"], f"{w}.position_mm")
        if len(pos) != 3:
            c.fail(f"{w}.position_mm", f"must hold 3 numbers [x, y, z], got {len(pos)}")
        for k in ("distance_from_ostium_mm", "minimal_diameter_mm", "reference_diameter_mm", "lesion_length_mm"):
            c.number(s[k], f"{w}.{k}", minimum=0)
        c.number(s["diameter_stenosis_percent"], f"{w}.diameter_stenosis_percent")
        if s.get("uncertainty") is not None:
            spread = ("minimal_diameter_mm", "reference_diameter_mm", "diameter_stenosis_percent")
            unc = c.obj(s["uncertainty"], f"{w}.uncertainty", spread)
            for k in spread:
                c.number(unc[k], f"{w}.uncertainty.{k}", minimum=0)
    cath = top.get("catheter")
    if cath is not None:
        c.obj(cath, "catheter", ("nodes", "ostium_node", "length_mm", "radius_mm", "ostium_radius_mm"))
        if not isinstance(cath["nodes"], list) or not cath["nodes"]:
            c.fail("catheter.nodes", "must be a non-empty list of node indices")
        for k, n in enumerate(cath["nodes"]):
            c.integer(n, f"catheter.nodes[{k}]")
        c.integer(cath["ostium_node"], "catheter.ostium_node")
        for k in ("length_mm", "radius_mm", "ostium_radius_mm"):
            c.number(cath[k], f"catheter.{k}", minimum=0)
    return data


# ---------------------------------------------------------------------- I/O
def write_measurements(data: dict[str, Any], path: str | Path) -> Path:
    """Validate and write measurements.json atomically; returns the path.

    A folder as ``path`` gets ``measurements.json`` inside it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MEASUREMENTS_FILE
    validate_measurements(data, source=str(path))
    return atomic_write_json(path, data)


def read_measurements(path: str | Path) -> dict[str, Any]:
    """Read and validate measurements.json (a folder means its ``measurements.json``).

    Raises CaseFormatError naming the file, the key path and the problem.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MEASUREMENTS_FILE
    return validate_measurements(read_json_file(path), source=str(path))
