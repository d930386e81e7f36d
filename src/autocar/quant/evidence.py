"""A stenosis is reported only when both views show the narrowing (issue 27, item 3's first rule).

The 3D tree's radius at a node is the smaller of the two views' 2D radii
(:func:`autocar.graph.extract.radii_from_masks`), so a dip in one view alone,
from a node a little off the vessel's midline in that view, a crossing, a
branch ostium or mask noise, becomes a "lesion" of the 3D profile. A real
lesion narrows the lumen seen from both angles (an eccentric one less in one
view, never not at all).

:func:`confirm_stenoses` reads, for every finding of :func:`autocar.quant.measure`,
each view's own radius profile along the finding's segment
(:func:`autocar.graph.extract.radii_per_view`): the smallest radius within
``core_mm`` of the MLD node against the median over the shoulders (from half
the lesion length + 1 mm to + 5 mm on either side). The finding stays when
every view with evidence there narrows by at least ``min_view_percent``;
otherwise it moves to ``withheld_stenoses`` with each view's narrowing and the
reason. A view without evidence there (the node projects outside its mask)
does not veto, nor does a view in which another part of the tree (more than
``overlap_gap_mm`` away in 3D) projects onto the lesion (:func:`overlapped_in_view`):
a vessel crossing over a lesion widens that view's mask there.

Measured by ``python benchmarks/bench_qca_real.py`` (10 healthy real CT trees,
false findings >= 40 % / >= 30 % per tree, same run): reconstructed 0.90 / 1.20
-> 0.60 / 0.70; true centre line with mask radii 0.40 / 0.40, unchanged (those
dips sit where another vessel crosses in one view, so that view cannot veto;
in a one-off run without the overlap exception, script not kept, they went to 0
but 2 of 5 planted lesions of ``bench_pipeline.py`` were withheld). Planted lesions: ``python
benchmarks/bench_pipeline.py --inputs masks`` still finds 5 / 5 (>= 40 %) with
0 false findings. Since radii under an overlap in every view are bridged before
measuring (:mod:`autocar.quant.overlaps`), the true-centre-line row is 0.10 / 0.10.

From angiograms (:func:`measure_with_evidence` with images) the grey reading's own
findings must have been measured: a view's grey profiles read the lesion's core and
its shoulders, or its mask breaks at the lesion (``min_views_measured``). Nodes no
profile fit reads take the mask's radius, so without that rule a grey "confirmation"
was, on Normal_18 left, the mask's own reading under another name.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.quant.overlaps import bridge_overlaps
from autocar.quant.profiles import arc_length

__all__ = ["confirm_in_grey", "confirm_stenoses", "mask_gap", "measure_with_evidence", "overlapped_in_view",
           "RESOLUTION_SD_PX", "shoulder_radius", "view_narrowing", "view_profiles", "with_resolution",
           "withhold_all"]


def view_narrowing(radii: np.ndarray, arc_mm: np.ndarray, at: int, lesion_mm: float, *,
                   core_mm: float = 1.0) -> float:
    """Percent narrowing (0-100, NaN without evidence) of one view's radius profile at sample ``at``.

    radii : (K,) one view's 2D radii along a path (mm; NaN where there is no evidence).
    arc_mm : (K,) arc length along the path.
    The smallest radius within ``core_mm`` of ``at`` against the median radius over the shoulders,
    ``lesion_mm / 2 + 1`` to ``+ 5`` mm away on either side.
    """
    d = np.abs(np.asarray(arc_mm, float) - float(arc_mm[at]))
    r = np.asarray(radii, float)
    core = r[d <= core_mm]
    core = core[np.isfinite(core)]
    ref = shoulder_radius(radii, arc_mm, at, lesion_mm)
    if not len(core) or not np.isfinite(ref):
        return float("nan")
    return float(100.0 * (1.0 - core.min() / ref)) if ref > 0 else float("nan")


def mask_gap(radii: np.ndarray, arc_mm: np.ndarray, at: int, lesion_mm: float, *, core_mm: float = 1.0) -> bool:
    """Whether one view's mask breaks at a finding: no vessel within ``core_mm`` of sample ``at``
    while the shoulders hold vessel (shapes as :func:`view_narrowing`; NaN radius: no vessel)."""
    d = np.abs(np.asarray(arc_mm, float) - float(arc_mm[at]))
    core = np.asarray(radii, float)[d <= core_mm]
    return bool(len(core)) and not np.isfinite(core).any() and np.isfinite(shoulder_radius(radii, arc_mm, at, lesion_mm))


def shoulder_radius(radii: np.ndarray, arc_mm: np.ndarray, at: int, lesion_mm: float) -> float:
    """The median radius (mm; NaN without evidence) of one view's profile over a finding's shoulders:
    ``lesion_mm / 2 + 1`` to ``+ 5`` mm either side of sample ``at`` (shapes as :func:`view_narrowing`)."""
    d = np.abs(np.asarray(arc_mm, float) - float(arc_mm[at]))
    r = np.asarray(radii, float)
    shoulders = r[(d > lesion_mm / 2.0 + 1.0) & (d <= lesion_mm / 2.0 + 5.0)]
    shoulders = shoulders[np.isfinite(shoulders)]
    return float(np.median(shoulders)) if len(shoulders) else float("nan")


def view_profiles(per_view: np.ndarray, nodes: np.ndarray, arc_mm: np.ndarray, at: int, lesion_mm: float,
                  names: Sequence[str], *, margin_mm: float = 6.0) -> dict[str, Any]:
    """Each view's own diameter profile around a finding, for the reader to judge it.

    per_view : (V, N) radii per view (mm, NaN: no evidence); nodes : (K,) the segment's nodes;
    arc_mm : (K,) their arc length; at : the MLD's index in ``nodes``.
    Returns ``{"arc_mm": [...], "diameter_mm": {name: [...]}}`` over ``lesion_mm / 2 + margin_mm``
    either side of the MLD, arc relative to it (mm), diameters 2 r (None without evidence).
    """
    rel = np.asarray(arc_mm, float) - float(arc_mm[at])
    keep = np.abs(rel) <= 0.5 * lesion_mm + margin_mm
    out = {"arc_mm": [round(float(x), 2) for x in rel[keep]], "diameter_mm": {}}
    for v in range(per_view.shape[0]):
        name = names[v] if v < len(names) else f"view {v}"
        d = 2.0 * per_view[v, np.asarray(nodes)[keep]]
        out["diameter_mm"][name] = [None if not np.isfinite(x) else round(float(x), 3) for x in d]
    return out


def overlapped_in_view(graph: CenterlineGraph, view: CArmView, core: np.ndarray, *,
                       overlap_gap_mm: float = 5.0) -> bool:
    """Whether another part of ``graph`` projects onto the nodes ``core`` (indices) in ``view``.

    "Another part": nodes more than ``overlap_gap_mm`` (3D) from every core node. "Onto": their
    projected centre lines closer than the sum of the two projected radii plus one pixel.
    """
    core = np.asarray(core, np.int64)
    if not len(core):
        return False
    pts, rad = graph.nodes, graph.radii
    d3 = np.min(np.linalg.norm(pts[:, None, :] - pts[None, core, :], axis=2), axis=1)
    other = np.flatnonzero(d3 > overlap_gap_mm)
    if not len(other):
        return False
    rc, _ = view.project(pts)
    r_px = view.radius_px(rad, pts)
    d2 = np.linalg.norm(rc[other][:, None, :] - rc[core][None, :, :], axis=2)
    reach = r_px[other][:, None] + r_px[core][None, :] + 1.0
    return bool(np.any(d2 < reach))


def confirm_stenoses(measurements: dict[str, Any], graph: CenterlineGraph, masks: Sequence[np.ndarray],
                     views: Sequence[CArmView], *, min_view_percent: float = 15.0,
                     per_view_radii: np.ndarray | None = None, min_views_measured: int = 0) -> dict[str, Any]:
    """``measurements`` (``autocar-measurements/1``) with the findings not seen in every view moved to
    ``withheld_stenoses`` (module doc); each kept finding gets ``view_narrowing_percent``.

    graph : the measured tree (N nodes, mm); masks : (H, W) masks of the measured frame, one per view.
    per_view_radii : (V, N) each view's radius per node measured otherwise (e.g. in the grey images,
    :func:`autocar.quant.lumen.lumen_radii`; NaN: no evidence); None reads them off the masks.
    min_views_measured : a finding is withheld unless this many views measured it: their radii at
    the lesion and on its shoulders (:func:`view_narrowing` is a number), or their mask breaks at it
    between two shoulders (:func:`mask_gap`: a lumen too narrow for the segmenter, which no profile
    fit reads either). Without it a grey reading whose lesion no view measured is the mask's
    reading under another name (unmeasured nodes take the mask's radius).
    Returns a new dictionary; the input is not changed.
    """
    from autocar.graph.extract import radii_per_view

    out = copy.deepcopy(measurements)
    findings = out.get("stenoses") or []
    if not findings:
        out.setdefault("withheld_stenoses", [])
        return out
    names = [v.get("name", f"view {k}") for k, v in enumerate(out.get("views", []))] or ["A", "B"]
    per_view = radii_per_view(graph, masks, views) if per_view_radii is None else np.asarray(per_view_radii, float)
    if per_view.shape != (len(views), graph.num_nodes):
        raise ValueError(f"per_view_radii must be ({len(views)}, {graph.num_nodes}), got {per_view.shape}")
    segments = {s["id"]: s for s in out.get("segments", [])}
    mask_mm = None if per_view_radii is not None else per_view
    kept, withheld = [], list(out.get("withheld_stenoses", []))
    for st in findings:
        seg = segments.get(st["segment"])
        nodes = np.asarray(seg["nodes"], np.int64) if seg is not None else np.zeros(0, np.int64)
        where = np.flatnonzero(nodes == st["node"])
        if not len(where):
            kept.append(st)
            continue
        arc = arc_length(graph.nodes[nodes])
        at = int(where[0])
        core = nodes[np.abs(arc - arc[at]) <= max(1.0, 0.5 * float(st["lesion_length_mm"]))]
        narrowing, overlapped = {}, []
        for v in range(per_view.shape[0]):
            name = names[v] if v < len(names) else f"view {v}"
            narrowing[name] = view_narrowing(per_view[v, nodes], arc, at, float(st["lesion_length_mm"]))
            if overlapped_in_view(graph, views[v], core):
                overlapped.append(name)
        record = {k: (None if not np.isfinite(x) else round(x, 1)) for k, x in narrowing.items()}
        profiles = view_profiles(per_view, nodes, arc, at, float(st["lesion_length_mm"]), names)
        weak = [k for k, x in narrowing.items()
                if np.isfinite(x) and x < min_view_percent and k not in overlapped]
        read = sum(np.isfinite(x) for x in narrowing.values())
        if read < min_views_measured:  # a view whose mask breaks at the lesion counts too
            mask_mm = radii_per_view(graph, masks, views) if mask_mm is None else mask_mm
            read += sum(mask_gap(mask_mm[v, nodes], arc, at, float(st["lesion_length_mm"]))
                        for v in range(len(views)))
        if read < min_views_measured:
            withheld.append({**st, "view_narrowing_percent": record, "overlapped_in": overlapped,
                             "view_profiles": profiles,
                             "reason": f"measured at the lesion and beside it in {read} view(s), "
                                       f"{min_views_measured} needed"})
        elif weak:
            seen = ", ".join(f"{k} {x:.0f} %" for k, x in narrowing.items() if np.isfinite(x))
            withheld.append({**st, "view_narrowing_percent": record, "overlapped_in": overlapped,
                             "view_profiles": profiles,
                             "reason": f"not seen in every view ({seen}; each view must narrow by at least "
                                       f"{min_view_percent:.0f} %)"})
        else:
            kept.append({**st, "view_narrowing_percent": record, "overlapped_in": overlapped,
                         "view_profiles": profiles})
    out["stenoses"] = kept
    out["withheld_stenoses"] = withheld
    return out


def confirm_in_grey(measurements: dict[str, Any], grey: dict[str, Any], *, match_mm: float = 3.0,
                    report_percent: float = 30.0) -> dict[str, Any]:
    """``measurements`` with each stenosis re-read in the grey-level profiles, or withheld.

    measurements : ``autocar-measurements/1`` of the tree with its radii from the masks (where
        the findings are detected: a mask's width is smooth, so it invents few lesions).
    grey : the measurements of the same tree with its radii measured in the grey images
        (:func:`autocar.quant.lumen.lumen_radii`; sub-pixel, so its MLD and %DS are right where a
        mask's width is off by a pixel per edge, but noisier along the vessel).
    A finding stays when the grey reading has a stenosis whose narrowest point lies within
    ``max(match_mm, half the lesion length)`` (3D) of it: its MLD, reference, %DS and length are then
    the grey reading's (the mask reading is kept as ``mask_reading``). Otherwise it moves to
    ``withheld_stenoses`` with the reason, or is dropped when it is a candidate below
    ``report_percent`` (the masks may be searched with a lower threshold than the report's: the
    mask width underestimates a narrowing by up to a pixel per edge). The tube phantoms of ``benchmarks/bench_qca_tubes.py``
    measure both readings. Returns a new dictionary.
    """
    out = copy.deepcopy(measurements)
    others = list(grey.get("stenoses") or [])
    where = np.array([g["position_mm"] for g in others], float).reshape(-1, 3)
    kept, withheld = [], list(out.get("withheld_stenoses", []))
    keys = ("diameter_stenosis_percent", "minimal_diameter_mm", "reference_diameter_mm", "lesion_length_mm")
    for st in out.get("stenoses") or []:
        reach = max(match_mm, 0.5 * float(st["lesion_length_mm"]))
        d = np.linalg.norm(where - np.asarray(st["position_mm"], float), axis=1) if len(where) else np.zeros(0)
        near = np.flatnonzero(d <= reach)
        if not len(near):
            if float(st["diameter_stenosis_percent"]) < report_percent:
                continue
            doubted = [g for g in grey.get("withheld_stenoses") or []
                       if np.linalg.norm(np.asarray(g["position_mm"], float) - np.asarray(st["position_mm"], float))
                       <= reach]
            why = (f"a {doubted[0]['diameter_stenosis_percent']:.0f} % narrowing there is withheld: "
                   f"{doubted[0]['reason']}" if doubted else f"no narrowing >= 30 % within {reach:.1f} mm")
            withheld.append({**st, "reason": f"the grey-level profiles of the two views do not show it ({why})"})
            continue
        best = others[int(near[np.argmin(d[near])])]
        extra = {k: best[k] for k in ("view_profiles", "uncertainty") if k in best}
        kept.append({**st, **{k: best[k] for k in keys}, **extra, "mask_reading": {k: st[k] for k in keys},
                     "measured_in": "grey profiles"})
    out["stenoses"] = kept
    out["withheld_stenoses"] = withheld
    return out


def measure_with_evidence(graph: CenterlineGraph, views: Sequence[CArmView], *, view_names: Sequence[str] = ("A", "B"),
                          side: str | None = None, frame: int = 0, masks: Sequence[np.ndarray] | None = None,
                          images: Sequence[np.ndarray] | None = None, candidate_percent: float = 20.0
                          ) -> dict[str, Any]:
    """The measurements ``autocar reconstruct`` writes for one frame of a tree.

    graph : the tree (N nodes, mm; radii from the masks). views : one CArmView per view name.
    masks : the (H, W) vessel masks of the frame, one per view, or None: with them the radii of nodes
        another vessel overlaps in every view are bridged (:func:`autocar.quant.overlaps.bridge_overlaps`)
        and a stenosis must narrow in each view (:func:`confirm_stenoses`).
    images : the frame's grey angiograms, one per view, or None: with them (and masks) every
        narrowing of the mask widths from ``candidate_percent`` (that both views' masks show) is a
        candidate, reported when the radii measured in the grey cross-section profiles
        (:func:`autocar.quant.lumen.lumen_radii`) show a stenosis there from the report's 30 %;
        its MLD, reference and %DS are the grey reading's (:func:`confirm_in_grey`).
    The result records how diameters were read in ``diameter_source``.
    """
    from autocar.quant.lumen import lumen_radii
    from autocar.quant.measurements import measure
    from autocar.quant.stenosis import StenosisOptions

    names = tuple(view_names)
    report = StenosisOptions()
    source: dict[str, Any] = {"method": "mask width"}
    structure = graph  # the catheter, the ostium and the vessels' continuation are read on its radii
    if masks is not None:
        # Radii read where another vessel overlaps in every view are bridged along the vessel.
        bridged = bridge_overlaps(graph, views)
        graph = graph.with_nodes(graph.nodes, bridged.radii_mm)
        source["overlap_bridged_nodes"] = int(bridged.bridged.sum())
    if masks is None or images is None:
        out = measure(structure, views, view_names=names, side=side, frame=frame, measured_radii_mm=graph.radii)
        out["diameter_source"] = source
        if masks is None:
            return out
        return with_resolution(confirm_stenoses(out, graph, masks, views), graph, views, "mask width")
    # Candidates: narrowings of the mask widths from candidate_percent; reported when the grey reading
    # (its own detection, from the report's threshold) shows them too.
    out = measure(structure, views, view_names=names, side=side, frame=frame,
                  stenosis=StenosisOptions(min_percent=candidate_percent), measured_radii_mm=graph.radii)
    out = confirm_stenoses(out, graph, masks, views)
    lumen = lumen_radii(graph, images, views)
    grey_graph = graph.with_nodes(graph.nodes, radii=lumen.filled(graph.radii))
    grey = measure(structure, views, view_names=names, side=side, frame=frame, optimal_views=0,
                   measured_radii_mm=grey_graph.radii)
    grey = confirm_stenoses(grey, grey_graph, masks, views, per_view_radii=lumen.per_view_mm, min_views_measured=1)
    grey = with_resolution(grey, grey_graph, views, "grey profiles")
    out = confirm_in_grey(out, grey, report_percent=report.min_percent)
    # A candidate below the report's threshold is no finding, withheld or not.
    out["withheld_stenoses"] = [w for w in out["withheld_stenoses"]
                                if float(w["diameter_stenosis_percent"]) >= report.min_percent]
    out["diameter_source"] = {
        **source,
        "method": "mask width; stenoses confirmed and measured in the grey profiles",
        "blur_px": [round(float(x), 3) for x in lumen.blur_px],
        "nodes_measured": {n: int(c) for n, c in zip(names, lumen.measured)},
    }
    return out


# Standard deviations (detector pixels at the lesion) that a diameter read each way carries beyond
# the profile's own noise: the systematic part, from the tube phantoms of
# ``benchmarks/bench_qca_tubes.py --seed 1`` (MLD, reference): a mask's width is off by up to a pixel
# per edge and blurs into a narrow lumen; a grey profile fit is limited by blur and display.
RESOLUTION_SD_PX = {"mask width": (1.0, 0.5), "grey profiles": (0.8, 0.25)}


def with_resolution(measurements: dict[str, Any], graph: CenterlineGraph, views: Sequence[CArmView],
                    method: str) -> dict[str, Any]:
    """``measurements`` with each finding's ``uncertainty`` widened by the resolution of ``method``
    (a key of :data:`RESOLUTION_SD_PX`), at the pixel size of the views at its MLD node: each
    diameter's SD becomes ``hypot(profile SD, k px)``, and the %DS SD is propagated again."""
    from autocar.quant.stenosis import stenosis_percent_sd

    mld_px, ref_px = RESOLUTION_SD_PX[method]
    out = copy.deepcopy(measurements)
    for st in out.get("stenoses") or []:
        unc = st.get("uncertainty")
        if unc is None:
            continue
        point = graph.nodes[int(st["node"])]
        px_mm = float(np.nanmean([1.0 / float(v.radius_px(1.0, point)) for v in views]))
        mld_sd = float(np.hypot(unc["minimal_diameter_mm"], mld_px * px_mm))
        ref_sd = float(np.hypot(unc["reference_diameter_mm"], ref_px * px_mm))
        st["uncertainty"] = {
            "minimal_diameter_mm": round(mld_sd, 3), "reference_diameter_mm": round(ref_sd, 3),
            "diameter_stenosis_percent": round(stenosis_percent_sd(
                float(st["minimal_diameter_mm"]), float(st["reference_diameter_mm"]), mld_sd, ref_sd), 3)}
    return out


def withhold_all(measurements: dict[str, Any], reason: str) -> dict[str, Any]:
    """``measurements`` with every stenosis moved to ``withheld_stenoses`` with ``reason`` (a result
    whose view geometry failed its check: its diameters and positions cannot be trusted)."""
    out = copy.deepcopy(measurements)
    out["withheld_stenoses"] = list(out.get("withheld_stenoses", [])) + [
        {**st, "reason": reason} for st in out.get("stenoses") or []]
    out["stenoses"] = []
    return out
