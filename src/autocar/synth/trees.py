"""Random but anatomically plausible coronary trees with labelled vessels.

Each tree lies on the epicardium of a model heart: a prolate ellipsoid (the
left ventricle) with centre ``c``, unit long axis ``a`` (base -> apex) and a
right-ventricular bulge on the right side. A surface point is written in
"heart coordinates" ``(h, theta)``:

- ``h`` (mm) the axial position along ``a`` from the centre (negative
  towards the base, where the atrioventricular (AV) groove lies);
- ``theta`` (rad) the angle around the axis: 0 on the anterior
  interventricular groove (the LAD), positive towards the patient's left
  (the lateral wall, circumflex territory), +-pi on the posterior
  interventricular groove (the PDA), negative towards the right ventricle
  (the RCA and its acute marginal).

Vessels are smooth paths of control points in ``(h, theta)`` with random
jitter, lifted onto the surface 1 mm outside it (epicardial fat) and
resampled every ``node_spacing_mm``. Radii taper geometrically along each
vessel and obey Murray's law at every branch point (``r_parent^3 =
r_child^3 + r_continuation^3``); focal stenoses narrow the lumen with a
cosine profile of known position, length and severity.

Sizes follow adult angiographic anatomy (Dodge et al., "Lumen diameter of
normal human coronary arteries", Circulation 86, 1992): left main diameter
about 4.5 mm, proximal LAD 3.5-3.7 mm, proximal LCX 3.4 mm, proximal RCA
3.9 mm; side branches 1.5-2.5 mm. The heart's long axis points left,
anterior and inferior (LPS: +x, -y, -z) at about 45 deg from the sagittal
plane; the whole tree is centred near the world origin (the C-arm
isocentre) and fits a 110 mm cube.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError

__all__ = ["Stenosis", "SynthTree", "generate_tree", "tree_from_graph", "left_and_right", "LEFT_VESSELS", "RIGHT_VESSELS", "FIT_CUBE_MM"]

LEFT_VESSELS = ("LM", "LAD", "LCX", "D1", "D2", "OM1", "OM2")
RIGHT_VESSELS = ("RCA", "AM", "PDA", "PLV")
FIT_CUBE_MM = 110.0  # every tree fits a cube of this side centred near the origin
_MIN_RADIUS_MM = 0.35
_EPICARDIAL_OFFSET_MM = 1.0


@dataclass(frozen=True)
class Stenosis:
    """A planted focal narrowing with known truth.

    Attributes
    ----------
    label : name of the vessel it sits on (e.g. "LAD").
    node : index of the node of smallest lumen in the tree's graph.
    position_mm : (3,) world position of that node, mm (rest geometry).
    distance_mm : path length from the ostium to that node along the tree, mm.
    severity : fractional diameter reduction at the narrowest point, in (0, 1).
    length_mm : length of the narrowed segment, mm.
    """

    label: str
    node: int
    position_mm: tuple[float, float, float]
    distance_mm: float
    severity: float
    length_mm: float

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "node": int(self.node),
            "position_mm": [round(float(x), 4) for x in self.position_mm],
            "distance_mm": round(float(self.distance_mm), 4),
            "severity": round(float(self.severity), 4),
            "length_mm": round(float(self.length_mm), 4),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Stenosis":
        return cls(
            label=str(d["label"]),
            node=int(d["node"]),
            position_mm=tuple(float(x) for x in d["position_mm"]),  # type: ignore[arg-type]
            distance_mm=float(d["distance_mm"]),
            severity=float(d["severity"]),
            length_mm=float(d["length_mm"]),
        )


@dataclass(frozen=True)
class SynthTree:
    """A generated coronary tree at rest (end-diastole) and its heart frame.

    Attributes
    ----------
    graph : the labelled centre-line tree (one connected component; node 0 is
        the ostium), mm.
    stenoses : planted stenoses (possibly empty).
    side : "left" or "right".
    heart_center : (3,) centre of the model left ventricle, mm.
    long_axis : (3,) unit vector base -> apex.
    """

    graph: CenterlineGraph
    stenoses: tuple[Stenosis, ...]
    side: str
    heart_center: np.ndarray
    long_axis: np.ndarray


# ----------------------------------------------------------------- heart model
@dataclass(frozen=True)
class _Heart:
    center: np.ndarray  # (3,) mm
    axis: np.ndarray  # (3,) unit, base -> apex
    e_ant: np.ndarray  # (3,) unit, theta = 0 direction (anterior groove)
    e_left: np.ndarray  # (3,) unit, theta = +pi/2 direction (lateral wall)
    half_length: float  # mm, centre -> apex
    radius: float  # mm, LV short-axis radius at the equator
    rv_bulge: float  # fraction the RV adds to the radius on the right side
    base_h: float  # mm, axial position of the AV groove (negative)

    def surface_radius(self, h: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Epicardial distance from the axis at (h, theta), mm."""
        t = np.clip(h / self.half_length, -0.98, 0.995)
        r = self.radius * np.sqrt(1.0 - t**2)
        # The RV wraps the right/anterior side from the base to ~2/3 of the way to the apex.
        rv = self.rv_bulge * np.clip(-np.sin(theta), 0.0, None) * np.clip(1.0 - (t + 0.6) / 1.3, 0.0, 1.0)
        return r * (1.0 + rv)

    def point(self, h: np.ndarray, theta: np.ndarray, offset: float = _EPICARDIAL_OFFSET_MM) -> np.ndarray:
        """World points (N, 3) of heart coordinates (N,), ``offset`` mm outside the surface."""
        h = np.asarray(h, dtype=float)
        theta = np.asarray(theta, dtype=float)
        r = self.surface_radius(h, theta) + offset
        radial = np.cos(theta)[:, None] * self.e_ant + np.sin(theta)[:, None] * self.e_left
        return self.center + h[:, None] * self.axis + r[:, None] * radial


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _random_heart(gen: np.random.Generator) -> _Heart:
    # LPS: +x left, +y posterior, +z superior. Apex: left, anterior, inferior.
    axis = _unit(np.array([0.62, -0.45, -0.64]) + gen.normal(0.0, 0.08, 3))
    anterior = np.array([0.0, -1.0, 0.0])
    e_ant = _unit(anterior - (anterior @ axis) * axis)
    left = np.array([1.0, 0.0, 0.0])
    e_left = left - (left @ axis) * axis - (left @ e_ant) * e_ant
    e_left = _unit(e_left)
    half_length = float(gen.uniform(48.0, 56.0))
    return _Heart(
        center=np.zeros(3),
        axis=axis,
        e_ant=e_ant,
        e_left=e_left,
        half_length=half_length,
        radius=float(gen.uniform(32.0, 38.0)),
        rv_bulge=float(gen.uniform(0.15, 0.3)),
        base_h=-half_length * float(gen.uniform(0.55, 0.65)),
    )


# ------------------------------------------------------------------- vessels
@dataclass
class _Vessel:
    name: str
    hc: np.ndarray  # (K,) control h, mm
    tc: np.ndarray  # (K,) control theta, rad
    r0: float  # start radius, mm
    r1: float  # end radius before Murray drops, mm
    parent: str | None = None
    at: float = 0.0  # branch point as a fraction of the parent's length
    radial_offset: np.ndarray | None = None  # (K,) extra height above the surface, mm
    nodes: np.ndarray | None = None
    radii: np.ndarray | None = None
    arclen: np.ndarray | None = None


def _smooth_path(
    heart: _Heart, v: _Vessel, spacing: float, gen: np.random.Generator, start: np.ndarray | None
) -> np.ndarray:
    """Dense world polyline through the vessel's control points, resampled to ``spacing`` mm."""
    k = len(v.hc)
    s = np.linspace(0.0, 1.0, k)
    fine = np.linspace(0.0, 1.0, 400)
    # Monotone-free cubic-ish interpolation: piecewise linear then smoothed in parameter space.
    h = np.interp(fine, s, v.hc)
    th = np.interp(fine, s, v.tc)
    off = np.full_like(fine, _EPICARDIAL_OFFSET_MM)
    if v.radial_offset is not None:
        off = off + np.interp(fine, s, v.radial_offset)
    # Tortuosity: low-frequency wiggle across the path (in theta) and along it.
    n_waves = gen.uniform(2.0, 5.0)
    amp = gen.uniform(0.01, 0.04)
    th = th + amp * np.sin(2 * math.pi * n_waves * fine + gen.uniform(0, 2 * math.pi)) * np.sin(math.pi * fine)
    kernel = np.hanning(41)
    kernel /= kernel.sum()
    pad = 20
    h = np.convolve(np.pad(h, pad, mode="edge"), kernel, mode="same")[pad:-pad]
    th = np.convolve(np.pad(th, pad, mode="edge"), kernel, mode="same")[pad:-pad]
    pts = np.empty((len(fine), 3))
    for i in range(len(fine)):
        pts[i] = heart.point(h[i : i + 1], th[i : i + 1], offset=float(off[i]))[0]
    if start is not None:
        # Blend the first part of the path onto the branch point so the child starts on its parent.
        shift = start - pts[0]
        w = np.clip(1.0 - fine / 0.15, 0.0, 1.0)
        pts = pts + w[:, None] * shift
    return _resample_polyline(pts, spacing)


def _resample_polyline(pts: np.ndarray, spacing: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    n = max(int(math.ceil(total / spacing)), 1)
    t = np.linspace(0.0, total, n + 1)
    return np.stack([np.interp(t, cum, pts[:, j]) for j in range(3)], axis=1)


def _left_vessels(heart: _Heart, gen: np.random.Generator) -> list[_Vessel]:
    L, b = heart.half_length, heart.base_h
    u = gen.uniform
    bif_theta = u(0.35, 0.6)
    lm_r = u(2.0, 2.4)
    lm_end = lm_r * 0.97
    share = u(0.5, 0.62)  # LAD's share of LM flow (Murray: r^3 adds up)
    lad_r0 = lm_end * share ** (1 / 3)
    lcx_r0 = lm_end * (1 - share) ** (1 / 3)
    lad_end_theta = u(-0.25, 0.15)
    vessels = [
        _Vessel(
            "LM",
            hc=np.array([b - u(6.0, 9.0), b - 3.0, b]),
            tc=np.array([bif_theta - 0.2, bif_theta - 0.06, bif_theta]),
            r0=lm_r,
            r1=lm_end,
            radial_offset=np.array([-5.0, -1.5, 0.0]),
        ),
        _Vessel(
            "LAD",
            hc=np.array([b, b + 8.0, 0.0, 0.6 * L, 0.97 * L, L + 4.0]),
            tc=np.array([bif_theta, 0.12, 0.05, lad_end_theta * 0.5, lad_end_theta, lad_end_theta + 0.8]),
            r0=lad_r0,
            r1=u(0.55, 0.7),
            parent="LM",
            at=1.0,
        ),
        _Vessel(
            "LCX",
            hc=np.array([b, b + 1.0, b + 2.0, b + 4.0, b + u(8.0, 20.0)]),
            tc=np.array([bif_theta, 1.0, 1.7, u(2.2, 2.6), u(2.6, 2.9)]),
            r0=lcx_r0,
            r1=u(0.6, 0.8),
            parent="LM",
            at=1.0,
        ),
    ]
    for name, at in (("D1", u(0.2, 0.3)), ("D2", u(0.42, 0.55))):
        vessels.append(
            _Vessel(
                name,
                hc=np.array([0.0, 18.0, 40.0]),  # relative; rebased at the branch point
                tc=np.array([0.0, u(0.35, 0.5), u(0.75, 1.1)]),
                r0=0.0,
                r1=u(0.45, 0.6),
                parent="LAD",
                at=at,
            )
        )
    for name, at in (("OM1", u(0.3, 0.42)), ("OM2", u(0.55, 0.7))):
        vessels.append(
            _Vessel(
                name,
                hc=np.array([0.0, u(20.0, 28.0), u(45.0, 60.0)]),
                tc=np.array([0.0, u(0.0, 0.15), u(-0.1, 0.25)]),
                r0=0.0,
                r1=u(0.45, 0.6),
                parent="LCX",
                at=at,
            )
        )
    return vessels


def _right_vessels(heart: _Heart, gen: np.random.Generator) -> list[_Vessel]:
    b = heart.base_h
    u = gen.uniform
    rca_r = u(1.8, 2.1)
    crux = -math.pi + u(-0.1, 0.1)
    return [
        _Vessel(
            "RCA",
            hc=np.array([b - u(12.0, 16.0), b - 4.0, b, b + 2.0, b + 2.0, b + 3.0]),
            tc=np.array([-0.15, -0.45, -0.8, -1.6, -2.4, crux]),
            r0=rca_r,
            r1=rca_r * 0.7,
            radial_offset=np.array([-8.0, -2.0, 0.0, 0.0, 0.0, 0.0]),
        ),
        _Vessel(
            "AM",
            hc=np.array([0.0, u(20.0, 28.0), u(45.0, 60.0)]),
            tc=np.array([0.0, u(0.0, 0.2), u(0.1, 0.35)]),
            r0=0.0,
            r1=u(0.45, 0.6),
            parent="RCA",
            at=u(0.45, 0.55),
        ),
        _Vessel(
            "PDA",
            hc=np.array([0.0, 12.0, u(45.0, 60.0)]),
            tc=np.array([0.0, -0.1, u(-0.2, 0.05)]),
            r0=0.0,
            r1=u(0.45, 0.6),
            parent="RCA",
            at=1.0,
        ),
        _Vessel(
            "PLV",
            hc=np.array([0.0, 3.0, u(18.0, 30.0)]),
            tc=np.array([0.0, -0.4, u(-0.8, -0.6)]),
            r0=0.0,
            r1=u(0.45, 0.55),
            parent="RCA",
            at=1.0,
        ),
    ]


def _heart_coords(heart: _Heart, p: np.ndarray) -> tuple[float, float]:
    r = p - heart.center
    h = float(r @ heart.axis)
    th = math.atan2(float(r @ heart.e_left), float(r @ heart.e_ant))
    return h, th


def _build(heart: _Heart, vessels: list[_Vessel], spacing: float, gen: np.random.Generator) -> None:
    """Lay out every vessel (parents first) and give radii obeying Murray's law."""
    by_name = {v.name: v for v in vessels}
    children: dict[str, list[_Vessel]] = {}
    for v in vessels:
        if v.parent is not None:
            children.setdefault(v.parent, []).append(v)
    order = [v for v in vessels if v.parent is None]
    i = 0
    while i < len(order):
        order.extend(children.get(order[i].name, []))
        i += 1
    for v in order:
        start = None
        if v.parent is not None:
            par = by_name[v.parent]
            assert par.nodes is not None and par.arclen is not None and par.radii is not None
            j = int(round(v.at * (len(par.nodes) - 1)))
            start = par.nodes[j]
            h0, t0 = _heart_coords(heart, start)
            # Continue smoothly: relative control points are offsets from the branch point.
            if v.hc[0] == 0.0 and v.tc[0] == 0.0:
                sign = 1.0
                v.hc = h0 + v.hc
                v.tc = t0 + sign * v.tc
            if v.r0 == 0.0:
                rp = float(par.radii[j])
                frac = gen.uniform(0.55, 0.75) if v.at < 1.0 else gen.uniform(0.7, 0.85)
                v.r0 = max(rp * frac, v.r1 * 1.1)
        v.nodes = _smooth_path(heart, v, spacing, gen, start)
        seg = np.linalg.norm(np.diff(v.nodes, axis=0), axis=1)
        v.arclen = np.concatenate([[0.0], np.cumsum(seg)])
        t = v.arclen / max(v.arclen[-1], 1e-9)
        v.radii = v.r0 * (v.r1 / v.r0) ** t
        # Murray: side branches leaving mid-vessel reduce the parent downstream.
        for c in children.get(v.name, []):
            if c.at < 1.0:
                j = int(round(c.at * (len(v.nodes) - 1)))
                rp = float(v.radii[j])
                rc = rp * gen.uniform(0.55, 0.75)
                c.r0 = max(rc, c.r1 * 1.1)
                factor = (max(rp**3 - c.r0**3, (0.3 * rp) ** 3)) ** (1 / 3) / rp
                v.radii[j + 1 :] *= factor
        # Terminal splits (at == 1) share the parent's end flow by Murray's law.
        ends = [c for c in children.get(v.name, []) if c.at >= 1.0]
        if ends and v.name != "LM":
            rp = float(v.radii[-1])
            w = gen.dirichlet(np.full(len(ends), 2.0))
            for c, wi in zip(ends, w):
                c.r0 = max(rp * wi ** (1 / 3), c.r1 * 1.1)
        np.maximum(v.radii, _MIN_RADIUS_MM, out=v.radii)


def _assemble(vessels: list[_Vessel], names: tuple[str, ...]) -> tuple[CenterlineGraph, dict[str, np.ndarray]]:
    """Join the vessels into one graph; each child's first node is its parent's branch node."""
    by_name = {v.name: v for v in vessels}
    nodes: list[np.ndarray] = []
    radii: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    index: dict[str, np.ndarray] = {}
    count = 0
    for v in vessels:  # parents precede children in the lists we build
        assert v.nodes is not None and v.radii is not None
        lab = names.index(v.name)
        if v.parent is None:
            ids = np.arange(count, count + len(v.nodes))
            nodes.append(v.nodes)
            radii.append(v.radii)
            labels.append(np.full(len(v.nodes), lab))
            count += len(v.nodes)
        else:
            par = by_name[v.parent]
            assert par.nodes is not None
            j = int(round(v.at * (len(par.nodes) - 1)))
            anchor = int(index[v.parent][j])
            new = np.arange(count, count + len(v.nodes) - 1)
            ids = np.concatenate([[anchor], new])
            nodes.append(v.nodes[1:])
            radii.append(v.radii[1:])
            labels.append(np.full(len(v.nodes) - 1, lab))
            count += len(v.nodes) - 1
        index[v.name] = ids
        edges.append(np.stack([ids[:-1], ids[1:]], axis=1))
    graph = CenterlineGraph(
        np.concatenate(nodes),
        np.concatenate(radii),
        np.concatenate(edges),
        labels=np.concatenate(labels),
        label_names=names,
    )
    return graph, index


def _path_distance_from(graph: CenterlineGraph, root: int) -> np.ndarray:
    """Path length (mm) from ``root`` to every node of a tree, by breadth-first search."""
    nbrs = graph.neighbours()
    dist = np.full(graph.num_nodes, np.inf)
    dist[root] = 0.0
    stack = [root]
    while stack:
        i = stack.pop()
        for j in nbrs[i]:
            if not np.isfinite(dist[j]):
                dist[j] = dist[i] + float(np.linalg.norm(graph.nodes[j] - graph.nodes[i]))
                stack.append(j)
    return dist


def generate_tree(
    side: Literal["left", "right"] = "left",
    *,
    rng: np.random.Generator | int | None = None,
    n_stenoses: int = 0,
    severity_range: tuple[float, float] = (0.3, 0.8),
    node_spacing_mm: float = 0.5,
) -> SynthTree:
    """Generate one random coronary tree at end-diastole.

    Parameters
    ----------
    side : "left" (LM, LAD, LCX, D1, D2, OM1, OM2) or "right" (RCA, AM, PDA, PLV).
    rng : Generator or int seed; the same seed gives the same tree.
    n_stenoses : focal stenoses to plant, each on a different vessel with a
        lumen >= 1 mm radius where it sits (at most the number of such vessels).
    severity_range : diameter reduction drawn uniformly from this range, within (0, 1).
    node_spacing_mm : centre-line sampling step, mm (0.1-5).

    Returns
    -------
    SynthTree whose graph is one connected labelled tree, node 0 the ostium,
    centred near the origin and inside a ``FIT_CUBE_MM`` cube.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not 0.1 <= float(node_spacing_mm) <= 5.0:
        raise GeometryError(f"node_spacing_mm must be in [0.1, 5], got {node_spacing_mm}")
    lo, hi = severity_range
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"severity_range must satisfy 0 < low <= high < 1, got {severity_range}")
    if int(n_stenoses) < 0:
        raise ValueError(f"n_stenoses must be >= 0, got {n_stenoses}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    heart = _random_heart(gen)
    vessels = _left_vessels(heart, gen) if side == "left" else _right_vessels(heart, gen)
    names = LEFT_VESSELS if side == "left" else RIGHT_VESSELS
    _build(heart, vessels, float(node_spacing_mm), gen)
    graph, index = _assemble(vessels, names)

    # Centre the tree's bounding box near the origin (the isocentre), with a small random offset.
    lo_b, hi_b = graph.bounds()
    extent = float(np.max(hi_b - lo_b))
    scale = 1.0
    limit = FIT_CUBE_MM - 6.0
    if extent > limit:
        scale = limit / extent
    shift = -(lo_b + hi_b) / 2 + gen.uniform(-2.0, 2.0, 3)
    center = heart.center
    nodes = (graph.nodes + shift - center) * scale + center
    radii = graph.radii.copy()
    heart_center = (heart.center + shift - center) * scale + center

    stenoses = _plant_stenoses(graph, nodes, radii, vessels, index, names, int(n_stenoses), (lo, hi), gen)
    graph = CenterlineGraph(nodes, radii, graph.edges, labels=graph.labels, label_names=names)
    return SynthTree(
        graph=graph,
        stenoses=stenoses,
        side=side,
        heart_center=np.asarray(heart_center, dtype=float),
        long_axis=heart.axis.copy(),
    )


def _plant_stenoses(
    graph: CenterlineGraph,
    nodes: np.ndarray,
    radii: np.ndarray,
    vessels: list[_Vessel],
    index: dict[str, np.ndarray],
    names: tuple[str, ...],
    n: int,
    severity_range: tuple[float, float],
    gen: np.random.Generator,
) -> tuple[Stenosis, ...]:
    """Narrow ``radii`` in place at ``n`` places on distinct vessels; return their truth."""
    if n == 0:
        return ()
    moved = CenterlineGraph(nodes.copy(), radii.copy(), graph.edges)
    dist = _path_distance_from(moved, 0)
    seg = np.linalg.norm(nodes[graph.edges[:, 0]] - nodes[graph.edges[:, 1]], axis=1)
    spacing = float(np.median(seg)) if len(seg) else 0.5
    candidates = [v.name for v in vessels if v.name in index and float(radii[index[v.name]].max()) >= 1.0]
    gen.shuffle(candidates)
    out: list[Stenosis] = []
    for name in candidates:
        if len(out) == n:
            break
        ids = index[name]
        # Keep away from the vessel's ends and from the ostium.
        lo_i, hi_i = int(0.15 * len(ids)), int(0.7 * len(ids))
        usable = [k for k in range(lo_i, max(hi_i, lo_i + 1)) if radii[ids[k]] >= 1.0]
        if not usable:
            continue
        k0 = int(gen.choice(usable))
        severity = float(gen.uniform(*severity_range))
        length = float(gen.uniform(4.0, 12.0))
        half = max(int(round(length / 2 / spacing)), 1)
        for dk in range(-half, half + 1):
            k = k0 + dk
            if 0 <= k < len(ids):
                w = 0.5 * (1 + math.cos(math.pi * dk / (half + 1)))
                radii[ids[k]] *= 1.0 - severity * w
        node = int(ids[k0])
        out.append(
            Stenosis(
                label=name,
                node=node,
                position_mm=tuple(float(x) for x in nodes[node]),  # type: ignore[arg-type]
                distance_mm=float(dist[node]),
                severity=severity,
                length_mm=length,
            )
        )
    return tuple(out)


#: Base -> apex direction of a typical heart in LPS (+x left, +y posterior, +z
#: superior): the apex points left, anterior and inferior.
TYPICAL_LONG_AXIS = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)


def tree_from_graph(graph: CenterlineGraph, side: str, *, long_axis: np.ndarray | None = None,
                    centre: bool = True) -> SynthTree:
    """A given centre-line tree (e.g. a real CT tree, LPS mm) with a heart frame for the heartbeat model.

    The tree is moved so that its bounding box is centred on the isocentre (``centre``).
    The heart frame is an approximation, good enough to drive
    :class:`autocar.synth.heartbeat.HeartbeatModel`: the left ventricle's centre is the
    centroid of the tree's nodes moved 15 mm along the long axis towards the apex (the
    arteries run on the surface, mostly over the base), the long axis ``long_axis``
    (default :data:`TYPICAL_LONG_AXIS`). No stenosis is planted or known.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if not isinstance(graph, CenterlineGraph) or graph.num_nodes == 0:
        raise ValueError("tree_from_graph needs a non-empty CenterlineGraph")
    axis = TYPICAL_LONG_AXIS if long_axis is None else np.asarray(long_axis, dtype=np.float64)
    norm = float(np.linalg.norm(axis)) if axis.shape == (3,) else 0.0
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"long_axis must be a non-zero (3,) vector, got {long_axis!r}")
    axis = axis / norm
    if centre:
        lo, hi = graph.bounds()
        graph = graph.with_nodes(graph.nodes - (lo + hi) / 2.0)
    heart_center = graph.nodes.mean(axis=0) + 15.0 * axis
    return SynthTree(graph=graph, stenoses=(), side=side, heart_center=heart_center, long_axis=axis)


def left_and_right(graph: CenterlineGraph, *, spacing_mm: float = 0.5) -> list[tuple[str, CenterlineGraph]]:
    """The left and right coronary trees of a whole-heart centre-line graph (e.g. a CT segmentation).

    The two largest connected components are taken; the one further to the patient's left
    (larger mean x in LPS) is the left tree. Each is resampled to ``spacing_mm`` (mm) and
    centred on its bounding box. A graph with a single component gives one tree, "left"
    when its mean x is >= 0. Returns [(side, graph)], the left tree first.
    """
    if not isinstance(graph, CenterlineGraph) or graph.num_nodes == 0:
        raise ValueError("left_and_right needs a non-empty CenterlineGraph")
    comp = graph.components()
    big = np.argsort(np.bincount(comp))[::-1][:2]
    means = {int(c): float(graph.nodes[comp == c, 0].mean()) for c in big}
    if len(big) == 2:
        left = max(means, key=means.get)
        sides = {c: ("left" if c == left else "right") for c in means}
    else:
        sides = {c: ("left" if x >= 0 else "right") for c, x in means.items()}
    out = []
    for c in sorted(means, key=lambda c: sides[c] != "left"):
        keep = np.flatnonzero(comp == c)
        remap = -np.ones(graph.num_nodes, np.int64)
        remap[keep] = np.arange(len(keep))
        edges = graph.edges[np.all(np.isin(graph.edges, keep), axis=1)]
        part = CenterlineGraph(graph.nodes[keep], graph.radii[keep], remap[edges])
        lo, hi = part.bounds()
        out.append((sides[c], part.with_nodes(part.nodes - (lo + hi) / 2).resampled(spacing_mm)))
    return out
