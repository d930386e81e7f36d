"""The data of ``report.html``: every frame's centre lines projected into both views with the
exact C-arm geometry, the angiograms as JPEG data URIs, the segments and the measurement tables
(:func:`report_payload`, strict JSON). The page itself is :mod:`autocar.report.html`."""

from __future__ import annotations

import base64
import io
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import autocar
from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry.carm import CArmView
from autocar.io.results import Reconstruction
from autocar.sbp.epipolar import apply_view_warp, frame_view_warps

__all__ = ["MEASUREMENTS_FORMAT", "report_payload"]

MEASUREMENTS_FORMAT = "autocar-measurements/1"
MAX_IMAGE_SIDE_PX = 512
JPEG_QUALITY = 80
VIEW_NAMES = ("A", "B")


# ------------------------------------------------------------------ numbers
def _r2(x: float) -> float | None:
    """``x`` rounded to 0.01, or None when it is not finite (strict JSON)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def _r2_list(a: np.ndarray) -> list[float | None]:
    """Flat list of ``a`` rounded to 0.01, non-finite values as None."""
    return [_r2(x) for x in np.asarray(a, dtype=np.float64).ravel().tolist()]


def _number(value: Any, where: str) -> float | None:
    """A measurement number rounded to 0.01; None for null/NaN/inf; error for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CaseFormatError(f"measurements: {where} must be a number or null, got {value!r}")
    return _r2(value)


# ------------------------------------------------------------------- inputs
def _check_views(views: Any) -> tuple[list[str], list[CArmView]]:
    """Names and geometry of the two views (sequence or name -> view mapping)."""
    if isinstance(views, Mapping):
        names = [str(k) for k in views]
        items = list(views.values())
    elif isinstance(views, Sequence) and not isinstance(views, (str, bytes)):
        items = list(views)
        names = []
        for k, v in enumerate(items):
            # A CaseView (autocar.io.case) carries its own name.
            names.append(str(getattr(v, "name", VIEW_NAMES[k] if k < 2 else str(k))))
    else:
        raise CaseFormatError(f"views must be two CArmView objects, got {type(views).__name__}")
    if len(items) != 2:
        raise CaseFormatError(f"views must hold exactly 2 views (A and B), got {len(items)}")
    geoms = []
    for name, v in zip(names, items):
        geom = getattr(v, "view", v)  # CaseView -> its CArmView
        if not isinstance(geom, CArmView):
            raise CaseFormatError(f"views[{name!r}] must be a CArmView, got {type(v).__name__}")
        geoms.append(geom)
    if names[0] == names[1]:
        raise CaseFormatError(f"views must have two different names, got {names}")
    return names, geoms


def _per_view(arg: Any, argname: str, names: list[str]) -> list[np.ndarray | None]:
    """Per-view arrays of ``images``/``masks`` given as a sequence or a name -> array mapping."""
    if arg is None:
        return [None, None]
    if isinstance(arg, Mapping):
        unknown = sorted(set(map(str, arg)) - set(names))
        if unknown:
            raise CaseFormatError(f"{argname} has view name(s) {unknown}; the views are {names}")
        items = [arg.get(n) for n in names]
    elif isinstance(arg, Sequence) and not isinstance(arg, (str, bytes)):
        items = list(arg)
        if len(items) != 2:
            raise CaseFormatError(f"{argname} must hold one (T, H, W) array per view (2), got {len(items)}")
    else:
        raise CaseFormatError(f"{argname} must be a sequence or mapping of 2 arrays, got {type(arg).__name__}")
    return [None if x is None else np.asarray(x) for x in items]


def _check_frames(stack: np.ndarray, argname: str, name: str, view: CArmView) -> np.ndarray:
    """Validate one view's (T, H, W) frame stack against the view's image size."""
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ShapeError(f"{argname}[{name!r}] must have shape (T, H, W), got {stack.shape}")
    if stack.shape[0] < 1:
        raise ShapeError(f"{argname}[{name!r}] has no frame")
    if stack.shape[1:] != view.shape:
        raise ShapeError(
            f"{argname}[{name!r}] frames are {stack.shape[1]} x {stack.shape[2]} px but view {name} has "
            f"rows x columns = {view.rows} x {view.columns}"
        )
    if not (
        stack.dtype == np.bool_
        or np.issubdtype(stack.dtype, np.integer)
        or np.issubdtype(stack.dtype, np.floating)
    ):
        raise ShapeError(f"{argname}[{name!r}] must be bool, integer or float, got {stack.dtype}")
    return stack


def _frame_pairs(frame_pairs: Any, num_frames: int, counts: list[int | None], names: list[str]) -> np.ndarray:
    """(T, 2) int array of image frame indices per reconstruction frame."""
    if frame_pairs is None:
        pairs = np.repeat(np.arange(num_frames)[:, None], 2, axis=1)
    else:
        raw = np.asarray(frame_pairs)
        if raw.ndim != 2 or raw.shape != (num_frames, 2):
            raise ShapeError(
                f"frame_pairs must have shape ({num_frames}, 2) (one pair per reconstruction frame), got {raw.shape}"
            )
        if raw.dtype == np.bool_ or not (
            np.issubdtype(raw.dtype, np.integer)
            or (np.issubdtype(raw.dtype, np.floating) and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)))
        ):
            raise ShapeError(f"frame_pairs must hold integer frame indices, got {raw.dtype} values")
        pairs = raw.astype(np.int64)
        if np.any(pairs < 0):
            k = int(np.flatnonzero(np.any(pairs < 0, axis=1))[0])
            raise ShapeError(f"frame_pairs[{k}] = {pairs[k].tolist()} has a negative frame index")
    for v, count in enumerate(counts):
        if count is None:
            continue
        bad = np.flatnonzero(pairs[:, v] >= count)
        if bad.size:
            k = int(bad[0])
            what = "frame_pairs" if frame_pairs is not None else "frame_pairs (default: identity)"
            raise ShapeError(
                f"{what}[{k}] asks for frame {int(pairs[k, v])} of view {names[v]}, which has {count} frame(s)"
            )
    return pairs


# ------------------------------------------------------------------- images
def _to_grey_uint8(frame: np.ndarray, is_mask: bool) -> np.ndarray:
    """(H, W) uint8 grey picture of an angiogram or a mask frame.

    Masks are drawn like an angiogram (dark vessel on a light background).
    uint8 images are used as they are; other images are stretched between
    their 0.5 and 99.5 percentiles.
    """
    if is_mask:
        vessel = np.asarray(frame) > 0
        return np.where(vessel, np.uint8(55), np.uint8(196))
    if frame.dtype == np.uint8:
        return frame
    f = np.asarray(frame, dtype=np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(f.shape, dtype=np.uint8)
    lo, hi = np.percentile(f[finite], [0.5, 99.5])
    if not hi > lo:
        hi = lo + 1.0
    g = np.clip((np.where(finite, f, lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.round(g * 255.0).astype(np.uint8)


def _jpeg_data_uri(grey: np.ndarray, max_side: int = MAX_IMAGE_SIDE_PX) -> str:
    """``data:image/jpeg;base64,...`` of a (H, W) uint8 picture, downscaled to at most ``max_side`` px."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8))  # 2D uint8 -> mode "L"
    h, w = grey.shape
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ----------------------------------------------------------------- segments
def _edge_index(graph: CenterlineGraph) -> dict[tuple[int, int], int]:
    return {(min(i, j), max(i, j)): e for e, (i, j) in enumerate(graph.edges.tolist())}


def _node_names(rec: Reconstruction) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Per-node vessel label of frame 0 and the label names, from the graph or the result's extra keys."""
    g = rec.frames[0]
    if g.labels is not None and g.label_names:
        return g.labels, g.label_names
    names = rec.extra.get("label_names")
    labels = rec.extra.get("node_labels")
    if isinstance(names, list) and isinstance(labels, list) and len(labels) == g.num_nodes and names:
        try:
            arr = np.asarray(labels, dtype=np.int64)
        except (TypeError, ValueError):
            return None, ()
        if arr.size and -1 <= arr.min() and arr.max() < len(names):
            return arr, tuple(str(n) for n in names)
    return None, ()


def _derived_segments(rec: Reconstruction) -> list[dict[str, Any]]:
    """Segments of frame 0 from its unbranched paths, named after the vessel labels when known."""
    g = rec.frames[0]
    labels, names = _node_names(rec)
    paths = g.branches()
    base: list[str | None] = []
    for path in paths:
        name = None
        if labels is not None:
            # Interior nodes belong to this branch; the junction end belongs to the parent.
            inner = labels[path[1:-1]] if len(path) > 2 else labels[path[-1:]]
            inner = inner[inner >= 0]
            if inner.size:
                name = names[int(np.bincount(inner).argmax())]
        base.append(name)
    totals: dict[str, int] = {}
    for b in base:
        if b is not None:
            totals[b] = totals.get(b, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for sid, (path, b) in enumerate(zip(paths, base)):
        if b is None:
            name = f"segment {sid}"
        elif totals[b] == 1:
            name = b
        else:
            seen[b] = seen.get(b, 0) + 1
            name = f"{b} {seen[b]}"
        length = float(np.linalg.norm(np.diff(g.nodes[path], axis=0), axis=1).sum())
        out.append({"id": sid, "name": name, "nodes": [int(i) for i in path], "length_mm": _r2(length)})
    return out


def _measured_segments(meas: Mapping[str, Any], num_nodes: int) -> list[dict[str, Any]]:
    """Validate and clean the ``segments`` of an autocar-measurements/1 dictionary."""
    segs = meas.get("segments", [])
    if not isinstance(segs, list):
        raise CaseFormatError(f"measurements: segments must be a list, got {type(segs).__name__}")
    out = []
    ids: set[int] = set()
    for k, s in enumerate(segs):
        where = f"segments[{k}]"
        if not isinstance(s, Mapping):
            raise CaseFormatError(f"measurements: {where} must be an object, got {type(s).__name__}")
        sid = s.get("id")
        if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)):
            raise CaseFormatError(f"measurements: {where}.id must be an integer, got {sid!r}")
        sid = int(sid)
        if sid in ids:
            raise CaseFormatError(f"measurements: {where}.id {sid} is used twice")
        ids.add(sid)
        name = s.get("name", f"segment {sid}")
        if not isinstance(name, str):
            raise CaseFormatError(f"measurements: {where}.name must be a string, got {name!r}")
        nodes = s.get("nodes")
        if not isinstance(nodes, list) or not all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in nodes
        ):
            raise CaseFormatError(f"measurements: {where}.nodes must be a list of node indices, got {nodes!r}"[:300])
        bad = [int(i) for i in nodes if not 0 <= int(i) < num_nodes]
        if bad:
            raise CaseFormatError(
                f"measurements: {where}.nodes holds {bad[0]}, not a node of frame 0 (nodes 0..{num_nodes - 1})"
            )
        seg: dict[str, Any] = {"id": sid, "name": name, "nodes": [int(i) for i in nodes]}
        seg["length_mm"] = _number(s.get("length_mm"), f"{where}.length_mm")
        seg["mean_diameter_mm"] = _number(s.get("mean_diameter_mm"), f"{where}.mean_diameter_mm")
        for key in ("foreshortening_percent", "apparent_length_mm"):
            d = s.get(key) or {}
            if not isinstance(d, Mapping):
                raise CaseFormatError(f"measurements: {where}.{key} must be a view name -> number object")
            seg[key] = {str(v): _number(x, f"{where}.{key}.{v}") for v, x in d.items()}
        ov = s.get("optimal_view")
        if ov is not None:
            if not isinstance(ov, Mapping):
                raise CaseFormatError(f"measurements: {where}.optimal_view must be an object or null")
            seg["optimal_view"] = {
                k2: _number(ov.get(k2), f"{where}.optimal_view.{k2}")
                for k2 in ("primary_deg", "secondary_deg", "foreshortening_percent", "overlap_percent")
            }
        else:
            seg["optimal_view"] = None
        prof = s.get("diameter_profile")
        if isinstance(prof, Mapping):
            arc = prof.get("arc_mm") or []
            dia = prof.get("diameter_mm") or []
            if not isinstance(arc, list) or not isinstance(dia, list) or len(arc) != len(dia):
                raise CaseFormatError(
                    f"measurements: {where}.diameter_profile needs arc_mm and diameter_mm lists of equal length"
                )
            seg["diameter_profile"] = {
                "arc_mm": [_number(x, f"{where}.diameter_profile.arc_mm") for x in arc],
                "diameter_mm": [_number(x, f"{where}.diameter_profile.diameter_mm") for x in dia],
            }
        out.append(seg)
    return out


def _measured_stenoses(meas: Mapping[str, Any], seg_ids: set[int], num_nodes: int) -> list[dict[str, Any]]:
    """Validate and clean the ``stenoses`` of an autocar-measurements/1 dictionary."""
    sts = meas.get("stenoses", [])
    if not isinstance(sts, list):
        raise CaseFormatError(f"measurements: stenoses must be a list, got {type(sts).__name__}")
    out = []
    for k, st in enumerate(sts):
        where = f"stenoses[{k}]"
        if not isinstance(st, Mapping):
            raise CaseFormatError(f"measurements: {where} must be an object, got {type(st).__name__}")
        seg = st.get("segment")
        if seg is not None:
            if isinstance(seg, bool) or not isinstance(seg, (int, np.integer)) or int(seg) not in seg_ids:
                raise CaseFormatError(f"measurements: {where}.segment {seg!r} is not the id of a segment")
            seg = int(seg)
        node = st.get("node")
        if node is not None:
            if isinstance(node, bool) or not isinstance(node, (int, np.integer)) or not 0 <= int(node) < num_nodes:
                raise CaseFormatError(
                    f"measurements: {where}.node {node!r} is not a node of frame 0 (nodes 0..{num_nodes - 1})"
                )
            node = int(node)
        name = st.get("name", "")
        if not isinstance(name, str):
            raise CaseFormatError(f"measurements: {where}.name must be a string, got {name!r}")
        entry: dict[str, Any] = {"segment": seg, "name": name, "node": node}
        for key in (
            "distance_from_ostium_mm",
            "diameter_stenosis_percent",
            "minimal_diameter_mm",
            "reference_diameter_mm",
            "lesion_length_mm",
        ):
            entry[key] = _number(st.get(key), f"{where}.{key}")
        unc = st.get("uncertainty")
        if unc is not None and not isinstance(unc, Mapping):
            raise CaseFormatError(f"measurements: {where}.uncertainty must be an object, got {type(unc).__name__}")
        entry["uncertainty"] = None if unc is None else {
            k: _number(unc.get(k), f"{where}.uncertainty.{k}")
            for k in ("diameter_stenosis_percent", "minimal_diameter_mm", "reference_diameter_mm")}
        entry["view_profiles"] = _view_profiles(st.get("view_profiles"), f"{where}.view_profiles")
        entry["measured_in"] = st.get("measured_in") if isinstance(st.get("measured_in"), str) else None
        out.append(entry)
    return out


def _view_profiles(prof: Any, where: str) -> dict[str, Any] | None:
    """A finding's per-view diameter profiles (``quant.evidence.view_profiles``), checked; None if absent."""
    if prof is None:
        return None
    if not isinstance(prof, Mapping) or not isinstance(prof.get("arc_mm"), list) \
            or not isinstance(prof.get("diameter_mm"), Mapping):
        raise CaseFormatError(f"measurements: {where} must hold an arc_mm list and a diameter_mm object")
    arc = [_number(x, f"{where}.arc_mm[{i}]") for i, x in enumerate(prof["arc_mm"])]
    if any(x is None for x in arc):
        raise CaseFormatError(f"measurements: {where}.arc_mm must hold numbers")
    diam = {}
    for name, values in prof["diameter_mm"].items():
        if not isinstance(values, list) or len(values) != len(arc):
            raise CaseFormatError(f"measurements: {where}.diameter_mm[{name!r}] must be a list of {len(arc)} values")
        diam[str(name)] = [_number(x, f"{where}.diameter_mm[{name!r}][{i}]") for i, x in enumerate(values)]
    return {"arc_mm": arc, "diameter_mm": diam}


def _check_measurements(meas: Any) -> Mapping[str, Any]:
    if not isinstance(meas, Mapping):
        raise CaseFormatError(f"measurements must be a dict (autocar-measurements/1), got {type(meas).__name__}")
    fmt = meas.get("format")
    if fmt != MEASUREMENTS_FORMAT:
        raise CaseFormatError(f"measurements: format must be {MEASUREMENTS_FORMAT!r}, got {fmt!r}")
    return meas


# ------------------------------------------------------------------ payload
def report_payload(
    reconstruction: Reconstruction,
    views: Sequence[CArmView] | Mapping[str, CArmView],
    *,
    images: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
    masks: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
    frame_pairs: np.ndarray | None = None,
    measurements: Mapping[str, Any] | None = None,
    title: str = "autocar report",
    warnings: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The data the page embeds, as strict-JSON-ready Python objects.

    Parameters are those of :func:`write_report`. Keys: ``title``,
    ``numFrames`` (T), ``views`` (name, label, angles, rows, columns, image
    kind, and ``images``: image frame index -> JPEG data URI, only the frames
    used), ``edges`` (E, 2) of frame 0, ``edgeSegment`` (E,) segment id per
    edge (-1: none), ``segments`` (id, name, node list, edge list and the
    measurements), ``stenoses``, ``center`` (3,) and ``extent`` mm of all
    frames, ``initialAxes`` (view A's rows u, v, d), and ``frames``: per frame
    ``xyz`` (3N flat, mm, 0.01), ``radius`` (N, mm, only when it differs from
    frame 0's), ``proj`` view name -> (2N flat (row, col) px, 0.01; null
    where the node is behind the source), ``pair`` (image frame per view),
    ``sameTopology`` and ``edges`` (only when the topology differs from
    frame 0's), and ``warnings`` (the result's quality flags, shown as a banner).

    Raises
    ------
    CaseFormatError
        Bad ``views``/``measurements`` structure, naming the key.
    ShapeError
        Frame stacks whose size disagrees with their view, or bad
        ``frame_pairs``, naming the argument.
    """
    if not isinstance(reconstruction, Reconstruction):
        raise CaseFormatError(f"reconstruction must be a Reconstruction, got {type(reconstruction).__name__}")
    if not isinstance(title, str):
        raise CaseFormatError(f"title must be a string, got {type(title).__name__}")
    if isinstance(warnings, str) or (warnings is not None and not all(isinstance(w, str) for w in warnings)):
        raise CaseFormatError("warnings must be a list of strings")
    names, geoms = _check_views(views)
    rec = reconstruction
    T = rec.num_frames
    g0 = rec.frames[0]
    if g0.num_nodes == 0:
        raise CaseFormatError("reconstruction frame 0 has no node; nothing to show")

    img_arg = _per_view(images, "images", names)
    mask_arg = _per_view(masks, "masks", names)
    stacks: list[np.ndarray | None] = []
    kinds: list[str | None] = []
    for v in range(2):
        if img_arg[v] is not None:
            stacks.append(_check_frames(img_arg[v], "images", names[v], geoms[v]))
            kinds.append("mask" if stacks[-1].dtype == np.bool_ else "image")
        elif mask_arg[v] is not None:
            stacks.append(_check_frames(mask_arg[v], "masks", names[v], geoms[v]))
            kinds.append("mask")
        else:
            stacks.append(None)
            kinds.append(None)
    pairs = _frame_pairs(frame_pairs, T, [None if s is None else int(s.shape[0]) for s in stacks], names)

    # Segments and the segment of every frame-0 edge (the shortest segment
    # holding it when segments overlap, e.g. ostium-to-tip paths).
    meas_out: dict[str, Any] | None = None
    if measurements is not None:
        meas = _check_measurements(measurements)
        segments = _measured_segments(meas, g0.num_nodes)
        stenoses = _measured_stenoses(meas, {s["id"] for s in segments}, g0.num_nodes)
        frame = meas.get("frame", 0)
        meas_out = {
            "frame": int(frame) if isinstance(frame, (int, np.integer)) and not isinstance(frame, bool) else None,
            "treeSide": meas.get("tree_side") if meas.get("tree_side") in ("left", "right") else None,
        }
    else:
        segments = _derived_segments(rec)
        stenoses = []
    eidx = _edge_index(g0)
    edge_seg = np.full(g0.num_edges, -1, dtype=np.int64)
    edge_len = np.full(g0.num_edges, np.inf)
    for seg in segments:
        nodes = seg["nodes"]
        edges = []
        for a, b in itertools.pairwise(nodes):
            e = eidx.get((min(a, b), max(a, b)))
            if e is not None:
                edges.append(e)
        seg["edges"] = edges
        for e in edges:
            if len(nodes) < edge_len[e]:
                edge_len[e] = len(nodes)
                edge_seg[e] = seg["id"]

    # Geometry: 3D nodes and their exact projections in both views.
    all_nodes = np.concatenate([g.nodes for g in rec.frames if g.num_nodes])
    lo, hi = all_nodes.min(axis=0), all_nodes.max(axis=0)
    center = (lo + hi) / 2.0
    extent = float(np.max(np.linalg.norm(all_nodes - center, axis=1))) + float(
        max(g.radii.max() for g in rec.frames if g.num_nodes)
    )
    frames_out = []
    for k, g in enumerate(rec.frames):
        same = g.num_nodes == g0.num_nodes and np.array_equal(g.edges, g0.edges)
        entry: dict[str, Any] = {"xyz": _r2_list(g.nodes), "sameTopology": bool(same)}
        if not (g.num_nodes == g0.num_nodes and np.array_equal(g.radii, g0.radii)):
            entry["radius"] = _r2_list(g.radii)
        if not same:
            entry["edges"] = g.edges.tolist()
        proj = {}
        # A view whose mask the epipolar alignment warped shows the tree through that warp.
        warps = frame_view_warps(rec.frame_extra[k] if rec.frame_extra else None, k)
        for name, view in zip(names, geoms):
            rc, _ = view.project(g.nodes)
            if name in warps:
                rc = apply_view_warp(rc, warps[name])
            proj[name] = _r2_list(rc)
        entry["proj"] = proj
        entry["pair"] = [int(pairs[k, 0]), int(pairs[k, 1])]
        frames_out.append(entry)

    views_out = []
    for v, (name, view) in enumerate(zip(names, geoms)):
        pictures: dict[str, str] = {}
        if stacks[v] is not None:
            for i in sorted(set(pairs[:, v].tolist())):
                pictures[str(i)] = _jpeg_data_uri(_to_grey_uint8(stacks[v][i], kinds[v] == "mask"))
        views_out.append(
            {
                "name": name,
                "label": view.label,
                "primaryDeg": _r2(view.primary_deg),
                "secondaryDeg": _r2(view.secondary_deg),
                "rows": view.rows,
                "columns": view.columns,
                "imageKind": kinds[v],
                "numImageFrames": None if stacks[v] is None else int(stacks[v].shape[0]),
                "images": pictures,
            }
        )

    return {
        "format": "autocar-report/1",
        "generator": f"autocar {autocar.__version__}",
        "title": title,
        "numFrames": T,
        "dynamic": bool(rec.is_dynamic),
        "numNodes": g0.num_nodes,
        "views": views_out,
        "edges": g0.edges.tolist(),
        "radius": _r2_list(g0.radii),
        "edgeSegment": edge_seg.tolist(),
        "segments": segments,
        "stenoses": stenoses,
        "measurements": meas_out,
        "center": _r2_list(center),
        "extent": _r2(max(extent, 1.0)),
        "initialAxes": [[round(float(x), 6) for x in row] for row in geoms[0].axes],
        "frames": frames_out,
        "warnings": list(warnings or []),
    }
