"""Vessel segments: a centre-line tree cut into named vessels, and their course.

A reconstructed tree is a set of unbranched pieces between junctions; a
clinician reads it as vessels (LM, LAD, a diagonal ...). This module turns a
:class:`~autocar.geometry.centerline.CenterlineGraph` (tree or forest) into such
vessels, the way 3D-QCA software does:

1. **Root** (the ostium) of each connected component: its degree-1 node of
   largest mean radius over the first ``root_probe_mm`` (3 mm) of centre line.
   The main component (largest total length) is the one named anatomically.
2. **Continuation rule**: walking from the root, at every junction the vessel
   continues into the child of larger lumen, its upper-quartile radius over
   the first ``branch_probe_mm`` (10 mm) past the junction (the QCA main-branch rule:
   by Murray's law the larger daughter carries the larger flow), among the
   children whose longest downstream centre line reaches ``min_length_mm``
   (so a stubby spur never takes over the main vessel). When another child's
   lumen is within ``branch_radius_tolerance`` (15 %) of the widest one's,
   lumen cannot tell them apart on a reconstruction (its radii are noisy at
   that level) and the vessel goes on into the child that turns least from
   its course into the junction (directions over ``direction_probe_mm``,
   5 mm): a main vessel runs on, its side branches leave at an angle; a
   symmetric fork goes to the longer downstream path. Every other child
   starts a new segment that begins at the shared junction node. When the graph carries labels,
   the vessel instead continues into the child with its own label and ends
   where no child carries it (labels are used directly).
3. **Spurs**: segments shorter than ``min_length_mm`` (5 mm) are dropped from
   the list (their nodes stay in the tree).
4. **Names** (unlabelled graphs): with ``side="left"`` the main vessel from
   the ostium is cut at its first junction with a kept side segment: the
   trunk before it is the LM; of the segments leaving that junction the one
   whose end lies most towards the apex (left-anterior-inferior, LPS
   ``(+1, -1, -1)/sqrt(3)``, the LAD course in the anterior interventricular
   groove) is the LAD, the one least towards it the LCX (which runs
   posteriorly in the AV groove, roughly perpendicular to the long axis).
   The segments leaving the LAD are its diagonals ``D1, D2, ...`` and those
   leaving the LCX its obtuse marginals ``OM1, OM2, ...``, numbered from the
   ostium outwards (as the AHA / SYNTAX segment models name them; a septal
   branch, when reconstructed, is also called a diagonal here). With
   ``side="right"`` the main vessel from the ostium is the RCA. Every other
   segment is called ``"segment N"``, N its id.

The geometry helpers (:func:`smooth_polyline`, :func:`arc_length`,
:func:`smooth_profile`, :func:`diameter_profile`) give a segment's course
and lumen diameter along it. Shape letters: N nodes, K nodes of one path.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import TreeFormatError
from autocar.quant.catheter import Catheter, find_catheter, without_nodes
# re-exported: the vessel geometry helpers lived here before autocar.quant.profiles
from autocar.quant.profiles import (  # noqa: F401
    arc_length,
    check_points,
    diameter_profile,
    smooth_polyline,
    smooth_profile,
    smoothing_matrix,
    thin_by_arc,
)

__all__ = [
    "APEX_DIRECTION",
    "Segment",
    "VesselTree",
    "split_segments",
    "smooth_polyline",
    "arc_length",
    "smooth_profile",
    "diameter_profile",
    "thin_by_arc",
]

APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / math.sqrt(3.0)
"""Unit vector towards the cardiac apex in LPS (patient's left, anterior, inferior)."""

Side = Literal["left", "right"]


@dataclass(frozen=True, eq=False)
class Segment:
    """One vessel of the tree.

    Attributes
    ----------
    id : position in :attr:`VesselTree.segments` (0 is the main vessel from the ostium).
    name : "LM", "LAD", "LCX", "RCA", "D<k>", "OM<k>", a label name of the graph, or
        "segment N".
    nodes : (K,) int node indices ordered proximal -> distal. ``nodes[0]`` is the
        junction node shared with the parent segment (the ostium for a root segment).
    parent : id of the segment it leaves, None for a root segment.
    length_mm : 3D length of the raw node polyline, mm.
    """

    id: int
    name: str
    nodes: np.ndarray
    parent: int | None
    length_mm: float

    @property
    def owned_nodes(self) -> np.ndarray:
        """The nodes that belong to this segment alone (the shared first node excluded), (K',)."""
        return self.nodes if self.parent is None else self.nodes[1:]


@dataclass(frozen=True, eq=False)
class VesselTree:
    """A rooted centre-line tree cut into segments (see module docstring).

    Attributes
    ----------
    graph : the measured graph.
    roots : root (ostium) node of every component with edges; ``roots[0]`` is the main one.
    parent : (N,) parent node of every node towards its root, -1 at roots and isolated nodes.
    continuation : (N,) child into which the vessel continues (continuation rule),
        -1 at leaves.
    segments : kept segments, ids 0..S-1.
    owner : (N,) id of the kept segment owning each node, -1 for nodes of dropped spurs
        and isolated nodes.
    side : "left", "right" or None.
    catheter : the guiding-catheter piece found at the ostium (its nodes belong to no
        segment and ``graph`` holds none of its edges), or None.
    """

    graph: CenterlineGraph
    roots: tuple[int, ...]
    parent: np.ndarray
    continuation: np.ndarray
    segments: tuple[Segment, ...]
    owner: np.ndarray
    side: str | None
    catheter: Catheter | None = None

    def path_from_root(self, node: int) -> np.ndarray:
        """Nodes from the root of ``node``'s component down to ``node``, (K,)."""
        out = [int(node)]
        while self.parent[out[-1]] >= 0:
            out.append(int(self.parent[out[-1]]))
        return np.asarray(out[::-1], dtype=np.int64)

    def analysis_path(self, segment_id: int) -> np.ndarray:
        """Ostium -> end of the segment -> on by the continuation rule to a leaf, (K,).

        The path along which a segment's lesions are judged: its parents give
        the proximal reference, and a segment cut at a junction (the LM) is
        followed into its main continuation for the distal one.
        """
        seg = self.segments[segment_id]
        head = self.path_from_root(int(seg.nodes[0]))
        tail = [int(n) for n in seg.nodes[1:]]
        cur = int(seg.nodes[-1])
        while self.continuation[cur] >= 0:
            cur = int(self.continuation[cur])
            tail.append(cur)
        return np.concatenate([head, np.asarray(tail, dtype=np.int64)])

    def branch_points(self, path: np.ndarray) -> np.ndarray:
        """Positions (indices into ``path``) of the junctions along a root-to-leaf path.

        A junction is an inner path node with a neighbour off the path that
        belongs to a kept segment (a side branch leaving the path, or the
        parent vessel going on where the path turns into a side branch).
        Returns (B,) sorted indices.
        """
        path = np.asarray(path, dtype=np.int64)
        adj = self.graph.neighbours()
        hits = []
        for k in range(1, len(path) - 1):
            v = int(path[k])
            for c in adj[v]:
                if c != path[k - 1] and c != path[k + 1] and self.owner[c] >= 0:
                    hits.append(k)
                    break
        return np.asarray(hits, dtype=np.int64)

    def by_name(self, name: str) -> Segment:
        """The first segment called ``name``; KeyError when there is none."""
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(f"no segment named {name!r}; have {[s.name for s in self.segments]}")


# ---------------------------------------------------------- decomposition
def _root_score(graph: CenterlineGraph, adj: list[list[int]], end: int, probe_mm: float) -> float:
    """Mean radius over the first ``probe_mm`` of centre line from a degree-1 node."""
    prev, cur = -1, end
    walked = 0.0
    rs = [graph.radii[end]]
    while True:
        nxt = [n for n in adj[cur] if n != prev]
        if len(nxt) != 1:
            break
        step = float(np.linalg.norm(graph.nodes[nxt[0]] - graph.nodes[cur]))
        if walked + step > probe_mm:
            break
        walked += step
        prev, cur = cur, nxt[0]
        rs.append(graph.radii[cur])
    return float(np.mean(rs))


def _orient(adj: list[list[int]], root: int, parent: np.ndarray) -> list[int]:
    """Breadth-first order from ``root`` filling ``parent``; returns the visited nodes."""
    order = [root]
    parent[root] = -1
    seen = {root}
    i = 0
    while i < len(order):
        cur = order[i]
        for n in adj[cur]:
            if n not in seen:
                seen.add(n)
                parent[n] = cur
                order.append(n)
        i += 1
    return order


def split_segments(
    graph: CenterlineGraph,
    *,
    side: Side | None = None,
    min_length_mm: float = 5.0,
    root: int | None = None,
    root_probe_mm: float = 3.0,
    branch_probe_mm: float = 10.0,
    branch_radius_tolerance: float = 0.15,
    direction_probe_mm: float = 5.0,
    use_labels: bool = True,
    catheter: bool = True,
) -> VesselTree:
    """Cut a centre-line tree (or forest) into vessels.

    Parameters
    ----------
    graph : tree or forest with N >= 2 nodes and at least one edge; mm.
    side : "left", "right" or None (unknown: no anatomical names unless labelled).
    min_length_mm : segments shorter than this (spurs) are dropped from the list.
    root : ostium node of the main component; None finds it (largest mean radius
        over ``root_probe_mm`` among degree-1 nodes, module docstring).
    root_probe_mm : length over which a candidate ostium's radius is averaged, mm.
    branch_probe_mm : length over which a child's radius is averaged at a junction, mm.
    branch_radius_tolerance : children whose lumen is within this fraction of the widest
        child's are too close to call by lumen: among them the vessel goes on straightest.
    direction_probe_mm : the vessel's direction into a junction and each child's out of
        it are taken over this length of centre line, mm.
    use_labels : follow and name by the graph's labels when it has them.
    catheter : when ``root`` is None, first look for a guiding-catheter piece at a free
        end (:func:`autocar.quant.catheter.find_catheter`); when there is one, its edges
        are left out of the measured graph (:attr:`VesselTree.catheter`) and the ostium
        it leads to is the root.

    Returns
    -------
    VesselTree

    Raises
    ------
    TreeFormatError
        Empty graph, graph with no edges or with a cycle, bad ``root``.
    ValueError
        Bad ``side`` or ``min_length_mm``.
    """
    if not isinstance(graph, CenterlineGraph):
        raise TypeError(f"graph must be a CenterlineGraph, got {type(graph).__name__}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be 'left', 'right' or None, got {side!r}")
    if not (math.isfinite(min_length_mm) and min_length_mm >= 0):
        raise ValueError(f"min_length_mm must be finite and >= 0, got {min_length_mm}")
    if not (math.isfinite(branch_radius_tolerance) and 0 <= branch_radius_tolerance < 1):
        raise ValueError(f"branch_radius_tolerance must be in [0, 1), got {branch_radius_tolerance}")
    if not (math.isfinite(direction_probe_mm) and direction_probe_mm > 0):
        raise ValueError(f"direction_probe_mm must be finite and > 0, got {direction_probe_mm}")
    if graph.num_nodes == 0 or graph.num_edges == 0:
        raise TreeFormatError(
            f"graph is empty ({graph.num_nodes} nodes, {graph.num_edges} edges): nothing to measure"
        )
    if not graph.is_forest():
        raise TreeFormatError(
            f"graph has a cycle ({graph.num_edges} edges on {graph.num_nodes} nodes in "
            f"{int(graph.components().max()) + 1} components); measurements need a tree or forest"
        )
    found = None
    if catheter and root is None:
        found = find_catheter(graph)
        if found is not None:
            graph = without_nodes(graph, found.nodes)
            root = found.ostium
    n = graph.num_nodes
    adj = graph.neighbours()
    deg = graph.degrees()
    comp = graph.components()
    edge_len = graph.edge_lengths()
    comp_len = np.bincount(comp[graph.edges[:, 0]], weights=edge_len, minlength=int(comp.max()) + 1)
    labelled = use_labels and graph.labels is not None and len(graph.label_names) > 0

    # ---- roots, main component first
    if root is not None:
        if isinstance(root, bool) or not float(root).is_integer() or not 0 <= int(root) < n:
            raise TreeFormatError(f"root must be a node index in [0, {n - 1}], got {root!r}")
        root = int(root)
        if deg[root] == 0:
            raise TreeFormatError(f"root node {root} has no edge")
    has_edge = np.zeros(len(comp_len), dtype=bool)
    has_edge[comp[graph.edges[:, 0]]] = True  # isolated nodes get no root
    comps = [int(c) for c in np.argsort(-comp_len, kind="stable") if has_edge[c]]
    if root is not None:
        comps.remove(int(comp[root]))
        comps.insert(0, int(comp[root]))
    roots: list[int] = []
    for c in comps:
        members = np.flatnonzero(comp == c)
        if root is not None and c == comp[root]:
            roots.append(root)
            continue
        ends = members[deg[members] == 1]
        scores = [_root_score(graph, adj, int(e), root_probe_mm) for e in ends]
        roots.append(int(ends[int(np.argmax(scores))]))

    parent = np.full(n, -1, dtype=np.int64)
    orders = [_orient(adj, r, parent) for r in roots]
    dist = np.zeros(n)  # path length from the component's root, mm
    for order in orders:
        for v in order[1:]:
            p = int(parent[v])
            dist[v] = dist[p] + float(np.linalg.norm(graph.nodes[v] - graph.nodes[p]))
    children: list[list[int]] = [[] for _ in range(n)]
    for order in orders:
        for v in order[1:]:
            children[int(parent[v])].append(v)

    # ---- the continuation rule: larger proximal lumen among children that lead somewhere
    reach = np.zeros(n)  # longest centre-line path from the node down to a leaf, mm
    for order in orders:
        for v in reversed(order[1:]):
            p = int(parent[v])
            reach[p] = max(reach[p], reach[v] + float(dist[v] - dist[p]))
    far = reach + dist  # path distance from the root to the farthest leaf below each node, mm

    def proximal_radius(c: int, junction: int) -> float:
        """Upper-quartile radius of the child's subtree within ``branch_probe_mm`` of the junction."""
        base = dist[junction]
        rs = []
        stack = [c]
        while stack:
            v = stack.pop()
            if dist[v] - base > branch_probe_mm and rs:
                continue
            rs.append(graph.radii[v])
            stack.extend(children[v])
        return float(np.percentile(rs, 75))

    continuation = np.full(n, -1, dtype=np.int64)
    for v in range(n):
        kids = children[v]
        if not kids:
            continue
        if len(kids) == 1:
            continuation[v] = kids[0]
            continue
        long_kids = [c for c in kids if far[c] - dist[v] >= min_length_mm] or kids
        lumen = {c: proximal_radius(c, v) for c in long_kids}
        best = max(long_kids, key=lambda c: (lumen[c], reach[c]))
        close = [c for c in long_kids if lumen[c] >= (1.0 - branch_radius_tolerance) * lumen[best]]
        if len(close) > 1:
            into = _direction_in(graph.nodes, parent, dist, v, direction_probe_mm)
            if into is not None:
                # Least turn first; equal turns (a symmetric fork) go to the longer downstream path.
                best = min(close, key=lambda c: (round(_turn(graph.nodes, children, far, dist, v, c, into,
                                                             direction_probe_mm), 6), -far[c]))
        continuation[v] = best

    labels = graph.labels if labelled else None

    def next_node(v: int, label: int) -> int:
        if labels is None:
            return int(continuation[v])
        same = [c for c in children[v] if labels[c] == label]
        if not same:
            return -1
        return max(same, key=lambda c: reach[c])

    # ---- walk every component into raw segments (breadth first: parents before children)
    raw: list[dict] = []
    for ci, r in enumerate(roots):
        queue: deque[tuple[int, int]] = deque([(r, -1)])
        while queue:
            start, first = queue.popleft()
            path = [start] if first < 0 else [start, first]
            label = int(labels[path[-1]]) if labels is not None else -1
            while True:
                nxt = next_node(path[-1], label)
                if nxt < 0:
                    break
                path.append(nxt)
            raw.append({"nodes": path, "parent_node": None if first < 0 else start, "main": ci == 0, "comp": ci})
            for k in range(0 if first < 0 else 1, len(path)):
                on = path[k + 1] if k + 1 < len(path) else -1
                queue.extend((path[k], c) for c in children[path[k]] if c != on)

    for seg in raw:
        pts = graph.nodes[np.asarray(seg["nodes"])]
        seg["length"] = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
    keep = [
        i
        for i, seg in enumerate(raw)
        if seg["length"] >= min_length_mm or (i == 0)  # the main vessel from the ostium always stays
    ]

    # ---- left tree: cut the main vessel into LM + the rest at its first kept junction
    names: dict[int, str] = {}
    if labels is None and side == "left":
        main = raw[0]["nodes"]
        pos = {v: k for k, v in enumerate(main)}
        junction_k = min(
            (pos[raw[i]["parent_node"]] for i in keep if i != 0 and raw[i]["parent_node"] in pos and raw[i]["main"]),
            default=None,
        )
        if junction_k is not None and 0 < junction_k < len(main) - 1:
            j = main[junction_k]
            rest = {"nodes": main[junction_k:], "parent_node": j, "main": True, "comp": 0}
            rest["length"] = float(np.linalg.norm(np.diff(graph.nodes[rest["nodes"]], axis=0), axis=1).sum())
            raw[0] = dict(raw[0], nodes=main[: junction_k + 1])
            raw[0]["length"] = float(
                np.linalg.norm(np.diff(graph.nodes[raw[0]["nodes"]], axis=0), axis=1).sum()
            )
            raw.append(rest)
            keep.append(len(raw) - 1)
            names[0] = "LM"
            at_j = [i for i in keep if i != 0 and raw[i]["parent_node"] == j]
            score = {
                i: float((graph.nodes[raw[i]["nodes"][-1]] - graph.nodes[j]) @ APEX_DIRECTION) for i in at_j
            }
            ranked = sorted(at_j, key=lambda i: -score[i])
            names[ranked[0]] = "LAD"
            if len(ranked) > 1:
                names[ranked[-1]] = "LCX"
    elif labels is None and side == "right":
        names[0] = "RCA"

    # ---- order (breadth first from the main root), ids, ownership, parents
    # Main component first, then by path distance of the first node from the ostium (parents
    # before children), longer first at a shared junction.
    keep_sorted = sorted(
        keep, key=lambda i: (raw[i]["comp"], round(float(dist[raw[i]["nodes"][0]]), 6), -raw[i]["length"], i)
    )
    owner = np.full(n, -1, dtype=np.int64)
    new_id = {old: k for k, old in enumerate(keep_sorted)}
    for old in keep_sorted:
        nodes = raw[old]["nodes"]
        own = nodes if raw[old]["parent_node"] is None else nodes[1:]
        owner[np.asarray(own, dtype=np.int64)] = new_id[old]
    segments: list[Segment] = []
    used_names: dict[str, int] = {}
    branch_count: dict[str, int] = {}
    for old in keep_sorted:
        sid = new_id[old]
        nodes = np.asarray(raw[old]["nodes"], dtype=np.int64)
        par_seg: int | None = None
        if raw[old]["parent_node"] is not None:
            v = int(raw[old]["parent_node"])
            while v >= 0 and owner[v] < 0:
                v = int(parent[v])
            par_seg = int(owner[v]) if v >= 0 else None
        if labels is not None:
            own = nodes if raw[old]["parent_node"] is None else nodes[1:]
            lab = np.bincount(labels[own][labels[own] >= 0], minlength=len(graph.label_names))
            name = graph.label_names[int(np.argmax(lab))] if lab.sum() else f"segment {sid}"
        elif old in names:
            name = names[old]
        else:
            name = _side_branch_name(segments, par_seg, side, branch_count) or f"segment {sid}"
        if name in used_names:
            used_names[name] += 1
            name = f"{name} ({used_names[name]})"
        else:
            used_names[name] = 1
        nodes.setflags(write=False)
        segments.append(Segment(sid, name, nodes, par_seg, float(raw[old]["length"])))

    inferred = side
    if inferred is None and labels is not None:
        have = set(graph.label_names)
        inferred = "left" if {"LAD", "LM"} & have else ("right" if "RCA" in have else None)
    for a in (parent, continuation, owner):
        a.setflags(write=False)
    return VesselTree(
        graph=graph,
        roots=tuple(roots),
        parent=parent,
        continuation=continuation,
        segments=tuple(segments),
        owner=owner,
        side=inferred,
        catheter=found,
    )


def _direction_in(nodes: np.ndarray, parent: np.ndarray, dist: np.ndarray, v: int, probe_mm: float) -> np.ndarray | None:
    """Unit direction of the vessel arriving at node v, from the node about ``probe_mm``
    upstream (towards the root) to v; None when less than 1 mm of vessel lies upstream."""
    u = v
    while parent[u] >= 0 and dist[v] - dist[u] < probe_mm:
        u = int(parent[u])
    d = nodes[v] - nodes[u]
    n = float(np.linalg.norm(d))
    return d / n if dist[v] - dist[u] >= 1.0 and n > 1e-9 else None


def _turn(nodes: np.ndarray, children: list[list[int]], far: np.ndarray, dist: np.ndarray, v: int, c: int,
          into: np.ndarray, probe_mm: float) -> float:
    """Turning angle (radians) from the direction ``into`` junction v to child c's course:
    v to the node about ``probe_mm`` down c's longest path (``far``: distance of each
    node's farthest leaf from the root)."""
    w = c
    while dist[w] - dist[v] < probe_mm and children[w]:
        w = max(children[w], key=lambda k: far[k])
    d = nodes[w] - nodes[v]
    n = float(np.linalg.norm(d))
    return math.pi if n < 1e-9 else math.acos(float(np.clip(d @ into / n, -1.0, 1.0)))


_SIDE_BRANCHES = {"LAD": "D", "LCX": "OM"}
"""Prefix of the names of the branches leaving each named left main vessel."""


def _side_branch_name(segments: list[Segment], parent: int | None, side: str | None,
                      count: dict[str, int]) -> str | None:
    """``D<k>`` for the k-th branch off the LAD, ``OM<k>`` off the LCX (left trees), else None.

    ``segments`` holds the segments named so far, in order from the ostium, so a
    vessel's branches arrive proximal first; ``count`` (prefix -> branches named)
    is updated.
    """
    if side != "left" or parent is None or parent >= len(segments):
        return None
    prefix = _SIDE_BRANCHES.get(segments[parent].name)
    if prefix is None:
        return None
    count[prefix] = count.get(prefix, 0) + 1
    return f"{prefix}{count[prefix]}"
