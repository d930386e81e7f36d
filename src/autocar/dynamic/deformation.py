"""Embedded deformation graph (Sumner, Schmid & Pauly, SIGGRAPH 2007) in torch.

A sparse set of control nodes ``g_j`` (mm) carries the motion of a dense set
of points. Each control node has an affine matrix ``A_j`` (3x3, identity at
rest) and a translation ``t_j`` (mm). A point ``p`` is skinned to its ``k``
nearest nodes with weights ``w_j`` (summing to 1) and moves to

    p' = sum_j w_j [A_j (p - g_j) + g_j + t_j].

Choices made here:

- Control nodes: the mean of the points in each occupied cell of a regular
  grid of ``spacing_mm`` anchored at the world origin (cell index
  ``floor(p / spacing)``), so a node lies among the points it stands for
  (on the vessel, not at a cell centre in empty space).
- Skinning weights: Gaussian, ``w_j ∝ exp(-|p - g_j|^2 / (2 sigma^2))`` with
  ``sigma = spacing_mm`` by default, over the ``k`` nearest nodes, normalised
  to sum 1 (Sumner uses ``(1 - d / d_max)^2``; the Gaussian is smooth in
  ``p`` and never exactly 0 for the k nearest nodes). Weights, like the rest
  positions they come from, are constants: gradients flow to the node
  parameters only.
- Rotation parameterisation: Sumner's unconstrained 3x3 matrix. The
  parameter is ``D = A - I`` (zero at rest), stored as ``D * sigma`` (mm) so
  that matrix and translation entries have the same units and a similar
  effect on the points, which conditions L-BFGS. The rotation penalty of each
  node is ``||A^T A - I||_F^2 + (det A - 1)^2`` (orthonormal columns as in
  Sumner 2007, plus a determinant term against reflections and uniform
  scaling). A general matrix (not axis-angle) lets a node absorb a small
  local stretch such as the cardiac contraction when the rotation weight is
  small, and keeps the point positions linear in the parameters.
- The displacement is computed as ``sum_j w_j [D_j (p - g_j) + t_j]`` and
  added to ``p``: equal to the formula above since the weights sum to 1, and
  exactly ``p`` (bit for bit) at zero parameters.
- Regulariser neighbours: node pairs closer than ``neighbour_radius_mm``
  (``2 spacing`` by default), symmetric; a node with no neighbour inside the
  radius is joined to its nearest node, so no node is left unregularised.
  Each unordered pair contributes both ordered terms (Sumner's
  ``sum_j sum_{k in N(j)}``), all with the same weight.
- Reductions: the data term of :meth:`DeformationGraph.fit` is the weighted
  mean of squared distances (mm^2), the smoothness term the mean over ordered
  neighbour pairs (mm^2) and the rotation penalty the mean over nodes, so the
  weights do not depend on the number of points or nodes
  (``reduction="sum"`` gives Sumner's plain sums).
- Speed: point displacements and smoothness residuals are both linear in the
  stacked node parameters, so each is one constant sparse matrix times a
  (4 J, 3) parameter matrix: two sparse (CSR) products per evaluation, and
  two with the precomputed transposes in the backward pass. The fits run
  torch single-threaded by default (restored after): these problems are far
  too small to gain from threads, and when the CPU is shared every parallel
  op can cost a scheduler time slice (measured: 10-20x slower with 2 threads
  on 2 busy cores). The first fit in a process also pays torch's one-off
  import of ``torch._dynamo`` by ``torch.optim`` (about 1-2 s).
- Limitation: points on a centre line do not observe the twist of a
  straight stretch about its own axis; the rotation penalty keeps such a
  node's matrix a rotation but not its twist, so points off the centre line
  (tube mesh vertices) near a branch tip may turn slightly about the vessel
  axis, which leaves a tube's surface in place.

Shapes: N points, J control nodes, E ordered neighbour pairs, k nodes per
point. Positions in world mm (DICOM LPS, origin at the isocentre).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import GeometryError, ShapeError

__all__ = ["DeformationGraph", "FitResult", "Skinning"]


# ------------------------------------------------------------------ checks
def _as_points_numpy(points: Any, name: str) -> np.ndarray:
    """(N, 3) float64 copy of ``points`` (numpy or torch), N >= 1, finite."""
    if isinstance(points, torch.Tensor):
        arr = points.detach().to("cpu", torch.float64).numpy().copy()
    else:
        try:
            arr = np.array(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise ShapeError(f"{name} must be an (N, 3) array of numbers in mm, got {type(points).__name__}") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ShapeError(f"{name} must have shape (N, 3) in mm, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty: need at least one point, got shape {arr.shape}")
    bad = ~np.all(np.isfinite(arr), axis=1)
    if bad.any():
        raise GeometryError(
            f"{name} must be finite: {int(bad.sum())} of {arr.shape[0]} points contain NaN or inf "
            f"(first at index {int(np.argmax(bad))})"
        )
    return arr


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    try:
        return np.array(value)
    except (TypeError, ValueError):
        raise ShapeError(f"{name} must be an array, got {type(value).__name__}") from None


def _float_array(value: Any, name: str) -> np.ndarray:
    arr = _as_array(value, name)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ShapeError(f"{name} must hold numbers, got dtype {arr.dtype}") from None


def _positive(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0.0:
        raise GeometryError(f"{name} must be finite and > 0, got {value!r}")
    return x


def _non_negative(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0.0:
        raise GeometryError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise GeometryError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _sparse_pair(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A sparse matrix and its transpose, both CSR, of the dtype and device of ``like``.

    Repeated (row, col) entries are summed.
    """
    idx = torch.as_tensor(np.stack([rows, cols]).astype(np.int64), device=like.device)
    val = torch.as_tensor(vals, dtype=like.dtype, device=like.device)
    coo = torch.sparse_coo_tensor(idx, val, shape, check_invariants=True).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": only products are used here
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


class _SparseProduct(torch.autograd.Function):
    """``matrix @ dense`` with the transpose precomputed for the backward pass.

    (torch's own sparse-COO product transposes and sorts the matrix again in
    every backward pass, several times slower for these sizes.)
    """

    @staticmethod
    def forward(ctx: Any, dense: torch.Tensor, matrix: torch.Tensor, transpose: torch.Tensor) -> torch.Tensor:
        ctx.transpose = transpose
        return matrix @ dense

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.transpose @ grad, None, None


# ------------------------------------------------------------------ results
@dataclass(frozen=True, eq=False)
class Skinning:
    """Which control nodes move each of M rest points, and how much.

    index : (M, k) int64 tensor of node indices, nearest first.
    weight : (M, k) tensor, each row sums to 1.
    matrix : sparse CSR (M, 4 J) tensor; ``matrix @ stacked_parameters()``
        is the (M, 3) displacement of the points.
    matrix_t : its transpose (CSR), for the backward pass.

    Built by :meth:`DeformationGraph.skin`; valid for that graph only.
    """

    index: torch.Tensor
    weight: torch.Tensor
    matrix: torch.Tensor
    matrix_t: torch.Tensor

    @property
    def num_points(self) -> int:
        return int(self.index.shape[0])

    def displacement(self, stacked: torch.Tensor) -> torch.Tensor:
        """(M, 3) displacements for stacked parameters (4 J, 3) (differentiable)."""
        return _SparseProduct.apply(stacked, self.matrix, self.matrix_t)


@dataclass(frozen=True)
class FitResult:
    """Outcome of :meth:`DeformationGraph.fit` / :meth:`DeformationGraph.fit_loss`.

    loss : final total objective.
    data : final data term (the loss function's value; mm^2 for ``fit``).
    smoothness : final smoothness term (mm^2, mean over ordered pairs).
    rotation : final rotation penalty (mean over nodes).
    iterations : L-BFGS iterations run.
    evaluations : objective evaluations (forward + backward passes).
    seconds : wall time of the optimisation.
    """

    loss: float
    data: float
    smoothness: float
    rotation: float
    iterations: int
    evaluations: int
    seconds: float


# ------------------------------------------------------------------ graph
class DeformationGraph(torch.nn.Module):
    """Control nodes with an affine matrix and a translation each.

    Usually made with :meth:`build` from the points to deform; the
    constructor takes explicit nodes and neighbour pairs.

    Parameters
    ----------
    nodes : (J, 3) array, mm, rest positions of the control nodes.
    edges : (P, 2) int array of unordered neighbour pairs (node indices);
        each pair is used in both orders. May be empty.
    sigma_mm : float > 0, width of the Gaussian skinning weights.
    k : int >= 1, nodes per point (capped at J).
    points : optional (N, 3) rest points whose skinning is cached; these are
        the points :meth:`deform` and :meth:`fit` use by default.
    dtype : torch floating dtype of parameters and outputs (float64 default:
        on CPU the cost is small and exact checks stay exact).

    Attributes
    ----------
    nodes : (J, 3) buffer, rest node positions g.
    edges : (E, 2) int64 buffer, ordered neighbour pairs (j, k), E = 2 P.
    affine_delta : (J, 3, 3) parameter, ``(A - I) * sigma_mm``.
    translation : (J, 3) parameter, t (mm).
    rest_points : (N, 3) tensor or None, the cached points.
    rest_skinning : their :class:`Skinning` or None.
    """

    def __init__(
        self,
        nodes: Any,
        edges: Any,
        sigma_mm: float,
        k: int = 4,
        points: Any | None = None,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        g = _as_points_numpy(nodes, "nodes")
        sigma = _positive("sigma_mm", sigma_mm)
        kk = _positive_int("k", k)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ShapeError(f"dtype must be a torch floating dtype, got {dtype!r}")
        e = _as_array(edges, "edges")
        if e.size == 0:
            e = np.zeros((0, 2), dtype=np.int64)
        if e.ndim != 2 or e.shape[1] != 2:
            raise ShapeError(f"edges must have shape (P, 2), got {e.shape}")
        if not np.issubdtype(e.dtype, np.integer):
            raise ShapeError(f"edges must hold integer node indices, got dtype {e.dtype}")
        j = g.shape[0]
        if e.size and (e.min() < 0 or e.max() >= j):
            raise ShapeError(f"edge indices must be in [0, {j - 1}], got range [{e.min()}, {e.max()}]")
        if e.size and np.any(e[:, 0] == e[:, 1]):
            raise ShapeError("edges must not join a node to itself")
        e = e.astype(np.int64)
        if e.size:
            e = np.unique(np.sort(e, axis=1), axis=0)
        directed = np.ascontiguousarray(np.concatenate([e, e[:, ::-1]], axis=0))

        self.sigma_mm = sigma
        self.k = min(kk, j)
        self._nodes_np = g
        self._kdtree: Any = None
        self.register_buffer("nodes", torch.as_tensor(g, dtype=dtype))
        self.register_buffer("edges", torch.as_tensor(directed, dtype=torch.int64))
        self.affine_delta = torch.nn.Parameter(torch.zeros((j, 3, 3), dtype=dtype))
        self.translation = torch.nn.Parameter(torch.zeros((j, 3), dtype=dtype))
        self._smooth_op = self._smoothness_operator(directed)
        self.rest_points: torch.Tensor | None = None
        self.rest_skinning: Skinning | None = None
        if points is not None:
            p = _as_points_numpy(points, "points")
            self.rest_points = torch.as_tensor(p, dtype=dtype)
            self.rest_skinning = self.skin(p)

    # ------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        points: Any,
        spacing_mm: float = 5.0,
        k: int = 4,
        *,
        sigma_mm: float | None = None,
        neighbour_radius_mm: float | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> DeformationGraph:
        """Embed a deformation graph in a point set.

        Parameters
        ----------
        points : (N, 3) array or tensor, mm (e.g. ``CenterlineGraph.nodes``);
            N >= 1, finite. Their skinning is cached.
        spacing_mm : float > 0, grid cell size; one control node per occupied
            cell, at the mean of the points in it.
        k : int >= 1, control nodes per point (capped at the number of nodes).
        sigma_mm : Gaussian weight width; ``spacing_mm`` when None.
        neighbour_radius_mm : nodes closer than this are regulariser
            neighbours; ``2 spacing_mm`` when None.
        dtype : torch floating dtype (float64 default).

        Raises
        ------
        ShapeError : points not (N, 3) or empty.
        GeometryError : points not finite, a non-positive or non-finite
            spacing, sigma or radius, or k < 1.
        """
        p = _as_points_numpy(points, "points")
        spacing = _positive("spacing_mm", spacing_mm)
        sigma = spacing if sigma_mm is None else _positive("sigma_mm", sigma_mm)
        if neighbour_radius_mm is None:
            radius = 2.0 * spacing
        else:
            radius = _positive("neighbour_radius_mm", neighbour_radius_mm)
        _positive_int("k", k)

        cells = np.floor(p / spacing).astype(np.int64)
        _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        nodes = np.stack([np.bincount(inverse, weights=p[:, c]) for c in range(3)], axis=1) / counts[:, None]
        return cls(nodes, _radius_pairs(nodes, radius), sigma, k, points=p, dtype=dtype)

    @classmethod
    def from_graph(cls, graph: CenterlineGraph, spacing_mm: float = 5.0, k: int = 4, **kwargs: Any) -> DeformationGraph:
        """:meth:`build` on the nodes of a centre-line graph."""
        if not isinstance(graph, CenterlineGraph):
            raise TypeError(f"graph must be a CenterlineGraph, got {type(graph).__name__}")
        return cls.build(graph.nodes, spacing_mm, k, **kwargs)

    # ------------------------------------------------------------ basics
    @property
    def num_nodes(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def num_pairs(self) -> int:
        """Number of unordered neighbour pairs."""
        return int(self.edges.shape[0]) // 2

    @property
    def _scale(self) -> float:
        return 1.0 / self.sigma_mm

    def affine(self) -> torch.Tensor:
        """The matrices A (J, 3, 3) (identity at rest)."""
        eye = torch.eye(3, dtype=self.nodes.dtype, device=self.nodes.device)
        return eye + self.affine_delta * self._scale

    def deformed_nodes(self) -> torch.Tensor:
        """Moved control nodes ``g + t`` (J, 3)."""
        return self.nodes + self.translation

    def stacked_parameters(self) -> torch.Tensor:
        """(4 J, 3): for node j, rows 4j..4j+2 hold ``(D_j sigma)^T``, row 4j+3 holds ``t_j``."""
        j = self.num_nodes
        return torch.cat([self.affine_delta.transpose(1, 2), self.translation.unsqueeze(1)], dim=1).reshape(4 * j, 3)

    @torch.no_grad()
    def reset(self) -> None:
        """Back to the identity (zero parameters)."""
        self.affine_delta.zero_()
        self.translation.zero_()

    @torch.no_grad()
    def set_affine(self, affine: Any | None = None, translation: Any | None = None) -> None:
        """Set A ((J, 3, 3), or (3, 3) for all nodes) and/or t ((J, 3), or (3,) for all)."""
        j = self.num_nodes
        if affine is not None:
            a = torch.as_tensor(_float_array(affine, "affine")).to(self.nodes)
            if a.shape not in ((3, 3), (j, 3, 3)):
                raise ShapeError(f"affine must have shape (3, 3) or ({j}, 3, 3), got {tuple(a.shape)}")
            if not torch.all(torch.isfinite(a)):
                raise GeometryError("affine must be finite")
            eye = torch.eye(3, dtype=a.dtype, device=a.device)
            self.affine_delta.copy_(((a - eye) * self.sigma_mm).expand(j, 3, 3))
        if translation is not None:
            t = torch.as_tensor(_float_array(translation, "translation")).to(self.nodes)
            if t.shape not in ((3,), (j, 3)):
                raise ShapeError(f"translation must have shape (3,) or ({j}, 3), got {tuple(t.shape)}")
            if not torch.all(torch.isfinite(t)):
                raise GeometryError("translation must be finite")
            self.translation.copy_(t.expand(j, 3))

    @torch.no_grad()
    def set_rigid(self, rotation: Any, translation: Any) -> None:
        """Set every node to the rigid motion ``x -> R x + T`` (R (3, 3), T (3,) mm).

        Each node gets ``A_j = R`` and ``t_j = R g_j + T - g_j``, so every
        point moves rigidly and the regulariser is zero (to rounding).
        """
        r = _float_array(rotation, "rotation")
        tt = _float_array(translation, "translation")
        if r.shape != (3, 3):
            raise ShapeError(f"rotation must have shape (3, 3), got {r.shape}")
        if tt.shape != (3,):
            raise ShapeError(f"translation must have shape (3,), got {tt.shape}")
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(tt))):
            raise GeometryError("rotation and translation must be finite")
        g = self._nodes_np
        self.set_affine(r, g @ r.T + tt - g)

    # ------------------------------------------------------------ skinning
    def skin(self, points: Any) -> Skinning:
        """Skinning of (M, 3) rest points to their k nearest nodes (Gaussian weights).

        Far from every node the weights stay well defined: they are computed
        relative to the nearest node (the shift cancels in the normalisation).
        """
        p = _as_points_numpy(points, "points")
        m, k = p.shape[0], self.k
        if self._kdtree is None:
            from scipy.spatial import cKDTree

            self._kdtree = cKDTree(self._nodes_np)
        dist, idx = self._kdtree.query(p, k=k)
        dist = np.asarray(dist, dtype=np.float64).reshape(m, k)
        idx = np.asarray(idx, dtype=np.int64).reshape(m, k)
        d2 = dist * dist
        w = np.exp(-(d2 - d2[:, :1]) / (2.0 * self.sigma_mm**2))
        w /= w.sum(axis=1, keepdims=True)
        # displacement_i = sum_k w_ik [D_jk (p_i - g_jk) + t_jk], linear in the stacked parameters
        coef = np.empty((m, k, 4))
        coef[..., :3] = (w[..., None] * self._scale) * (p[:, None, :] - self._nodes_np[idx])
        coef[..., 3] = w
        rows = np.repeat(np.arange(m), k * 4)
        cols = (4 * idx[..., None] + np.arange(4)).reshape(-1)
        mat, mat_t = _sparse_pair(rows, cols, coef.reshape(-1), (m, 4 * self.num_nodes), self.nodes)
        return Skinning(
            index=torch.as_tensor(idx, device=self.nodes.device),
            weight=torch.as_tensor(w, dtype=self.nodes.dtype, device=self.nodes.device),
            matrix=mat,
            matrix_t=mat_t,
        )

    def _resolve(self, points: Any | None, skinning: Skinning | None, where: str) -> tuple[torch.Tensor, Skinning]:
        if points is None:
            if self.rest_points is None or self.rest_skinning is None:
                raise ShapeError(f"this graph has no cached rest points: pass points to {where}()")
            p, sk = self.rest_points, self.rest_skinning if skinning is None else skinning
        else:
            arr = _as_points_numpy(points, "points")
            p = torch.as_tensor(arr, dtype=self.nodes.dtype, device=self.nodes.device)
            sk = self.skin(arr) if skinning is None else skinning
        if not isinstance(sk, Skinning):
            raise TypeError(f"skinning must be a Skinning from skin(), got {type(sk).__name__}")
        if sk.num_points != p.shape[0] or sk.matrix.shape[1] != 4 * self.num_nodes:
            raise ShapeError(
                f"skinning is for {sk.num_points} points and {sk.matrix.shape[1] // 4} nodes, "
                f"got {p.shape[0]} points and {self.num_nodes} nodes"
            )
        return p, sk

    # ------------------------------------------------------------ deformation
    def deform(self, points: Any | None = None, skinning: Skinning | None = None) -> torch.Tensor:
        """Move rest points with the current parameters (differentiable in the parameters).

        Parameters
        ----------
        points : (M, 3) rest points (tensor or array; treated as constants),
            or None for the cached points given to :meth:`build`.
        skinning : the :meth:`skin` of ``points``, to skip the nearest-node
            search when the same points are moved many times; computed when
            None.

        Returns
        -------
        (M, 3) tensor of the graph's dtype, mm. Exactly ``points`` at zero
        parameters.
        """
        p, sk = self._resolve(points, skinning, "deform")
        return p + sk.displacement(self.stacked_parameters())

    @torch.no_grad()
    def apply(self, points: Any) -> np.ndarray:
        """Deformed copy of (M, 3) rest points as a float64 numpy array (no gradient)."""
        return self.deform(points).to(torch.float64).cpu().numpy()

    def deform_graph(self, graph: CenterlineGraph) -> CenterlineGraph:
        """Same topology, labels and radii; nodes moved by the current deformation."""
        if not isinstance(graph, CenterlineGraph):
            raise TypeError(f"graph must be a CenterlineGraph, got {type(graph).__name__}")
        return graph.with_nodes(self.apply(graph.nodes))

    # ------------------------------------------------------------ energies
    def _smoothness_operator(self, directed: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (E, 4 J) map from the stacked parameters to ``D_j (g_k - g_j) + t_j - t_k``."""
        n_e, j = directed.shape[0], self._nodes_np.shape[0]
        src, dst = directed[:, 0], directed[:, 1]
        diff = (self._nodes_np[dst] - self._nodes_np[src]) * self._scale
        rows = np.repeat(np.arange(n_e), 5)
        cols = np.concatenate([4 * src[:, None] + np.arange(4), 4 * dst[:, None] + 3], axis=1).reshape(-1)
        vals = np.concatenate([diff, np.ones((n_e, 1)), -np.ones((n_e, 1))], axis=1).reshape(-1)
        return _sparse_pair(rows, cols, vals, (n_e, 4 * j), self.nodes)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> DeformationGraph:
        # keep the non-buffer tensors on the same device / dtype as the buffers
        out = super()._apply(fn, *args, **kwargs)
        self._smooth_op = (fn(self._smooth_op[0]), fn(self._smooth_op[1]))
        if self.rest_points is not None and self.rest_skinning is not None:
            self.rest_points = fn(self.rest_points)
            sk = self.rest_skinning
            self.rest_skinning = Skinning(
                sk.index.to(self.nodes.device), fn(sk.weight), fn(sk.matrix), fn(sk.matrix_t)
            )
        return out

    def smoothness(self, reduction: str = "mean") -> torch.Tensor:
        """As-rigid-as-possible term over ordered neighbour pairs (j, k), mm^2.

        ``|| A_j (g_k - g_j) + g_j + t_j - (g_k + t_k) ||^2``, computed as
        ``|| D_j (g_k - g_j) + t_j - t_k ||^2`` (identical; exactly 0 at rest).
        """
        _check_reduction(reduction)
        n_e = int(self.edges.shape[0])
        if n_e == 0:
            return self.translation.sum() * 0.0
        r = _SparseProduct.apply(self.stacked_parameters(), *self._smooth_op)
        s = (r * r).sum()
        return s / n_e if reduction == "mean" else s

    def rotation_penalty(self, reduction: str = "mean") -> torch.Tensor:
        """``||A^T A - I||_F^2 + (det A - 1)^2`` per node (dimensionless)."""
        _check_reduction(reduction)
        d = self.affine_delta * self._scale
        a = d + torch.eye(3, dtype=d.dtype, device=d.device)
        gram = d + d.transpose(-1, -2) + d.transpose(-1, -2) @ d  # A^T A - I
        det = (a[:, 0] * torch.linalg.cross(a[:, 1], a[:, 2], dim=-1)).sum(-1)
        per = (gram * gram).sum((-1, -2)) + (det - 1.0) ** 2
        return per.mean() if reduction == "mean" else per.sum()

    def regulariser(self, rot_weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
        """``smoothness + rot_weight * rotation_penalty`` (scalar tensor)."""
        mu = _non_negative("rot_weight", rot_weight)
        return self.smoothness(reduction) + mu * self.rotation_penalty(reduction)

    # ------------------------------------------------------------ fitting
    def fit(
        self,
        targets: Any,
        mask: Any | None = None,
        weights: Any | None = None,
        *,
        points: Any | None = None,
        reg_weight: float = 0.05,
        rot_weight: float = 0.01,
        iterations: int = 50,
        **options: Any,
    ) -> FitResult:
        """Least squares: move the points onto 3D targets, smoothly.

        Minimises ``sum_i m_i c_i |p'_i - y_i|^2 / sum_i m_i c_i
        + reg_weight * smoothness + rot_weight * rotation_penalty`` with
        L-BFGS, starting from the current parameters (call :meth:`reset` for
        a fresh start).

        Parameters
        ----------
        targets : (N, 3) mm, one per point; rows where ``mask`` is False are
            ignored and may be NaN.
        mask : (N,) bool, True where the target is valid; all when None.
        weights : (N,) non-negative confidences ``c_i``; ones when None.
        points : (N, 3) rest points; the cached points of :meth:`build` when
            None.
        reg_weight, rot_weight : weights of the regulariser terms (>= 0).
        iterations : maximum L-BFGS iterations.
        options : passed to :meth:`fit_loss` (``tolerance``,
            ``history_size``, ``num_threads``).

        Raises
        ------
        ShapeError : targets / mask / weights of the wrong shape.
        GeometryError : a valid target not finite, weights negative or not
            finite, no valid target with a positive weight, bad settings.
        """
        p, sk = self._resolve(points, None, "fit")
        n = int(p.shape[0])
        y = _float_array(targets, "targets")
        if y.shape != (n, 3):
            raise ShapeError(f"targets must have shape ({n}, 3) to match the points, got {y.shape}")
        if mask is None:
            m = np.ones(n, dtype=bool)
        else:
            m = _as_array(mask, "mask")
            if m.shape != (n,):
                raise ShapeError(f"mask must have shape ({n},), got {m.shape}")
            if m.dtype != bool:
                raise ShapeError(f"mask must be boolean (True = valid target), got dtype {m.dtype}")
        if weights is None:
            c = np.ones(n)
        else:
            c = _float_array(weights, "weights")
            if c.shape != (n,):
                raise ShapeError(f"weights must have shape ({n},), got {c.shape}")
            if not np.all(np.isfinite(c)) or np.any(c < 0):
                raise GeometryError("weights must be finite and >= 0")
        bad = m & ~np.all(np.isfinite(y), axis=1)
        if bad.any():
            raise GeometryError(
                f"targets must be finite where mask is True: {int(bad.sum())} valid targets contain NaN or inf "
                f"(first at index {int(np.argmax(bad))}); set mask False there"
            )
        use = m & (c > 0)
        if not use.any():
            raise GeometryError("no valid target: mask is all False or all weights are 0")
        if use.all():
            p_use, sk_use = p, sk
        else:
            rows = torch.as_tensor(np.flatnonzero(use), device=p.device)
            p_use = p[rows]
            sk_use = self.skin(p_use)
        y_t = torch.as_tensor(y[use], dtype=p.dtype, device=p.device)
        c_t = torch.as_tensor(c[use] / c[use].sum(), dtype=p.dtype, device=p.device)

        def data_loss(deformed: torch.Tensor) -> torch.Tensor:
            return (c_t * ((deformed - y_t) ** 2).sum(-1)).sum()

        return self.fit_loss(
            data_loss,
            points=p_use,
            skinning=sk_use,
            reg_weight=reg_weight,
            rot_weight=rot_weight,
            iterations=iterations,
            **options,
        )

    def fit_loss(
        self,
        loss_fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        points: Any | None = None,
        skinning: Skinning | None = None,
        reg_weight: float = 0.05,
        rot_weight: float = 0.01,
        iterations: int = 50,
        tolerance: float = 1e-9,
        history_size: int = 20,
        num_threads: int | None = 1,
    ) -> FitResult:
        """Minimise any differentiable loss of the deformed points plus the regulariser.

        ``loss_fn(deformed)`` receives the (M, 3) deformed points (the cached
        :meth:`build` points, or ``points``) and returns a scalar tensor, e.g.
        a 2D reprojection error through
        :func:`autocar.geometry.torch_ops.project_points`. The objective
        ``loss_fn(deformed) + reg_weight * smoothness + rot_weight *
        rotation_penalty`` is minimised with L-BFGS (strong Wolfe line
        search) from the current parameters.

        Parameters
        ----------
        iterations : maximum L-BFGS iterations (objective evaluations are
            capped at twice that).
        tolerance : stop when the objective (or every parameter) changes by
            less than this between iterations, or the largest gradient entry
            falls below it.
        history_size : L-BFGS memory.
        num_threads : torch intra-op threads during the fit (restored after);
            None leaves the setting alone.

        Raises
        ------
        ShapeError : ``loss_fn`` does not return a scalar tensor.
        GeometryError : the objective is not finite, or bad settings.
        """
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        lam = _non_negative("reg_weight", reg_weight)
        mu = _non_negative("rot_weight", rot_weight)
        its = _positive_int("iterations", iterations)
        tol = _positive("tolerance", tolerance)
        hist = _positive_int("history_size", history_size)
        threads = None if num_threads is None else _positive_int("num_threads", num_threads)
        pts, sk = self._resolve(points, skinning, "fit_loss")

        params = [self.affine_delta, self.translation]
        opt = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=its,
            max_eval=2 * its,
            tolerance_grad=tol,
            tolerance_change=tol,
            history_size=hist,
            line_search_fn="strong_wolfe",
        )

        def objective() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            data = loss_fn(self.deform(pts, sk))
            if not isinstance(data, torch.Tensor) or data.numel() != 1:
                got = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
                raise ShapeError(f"loss_fn must return a scalar tensor, got {got}")
            data = data.reshape(())
            smooth = self.smoothness()
            rot = self.rotation_penalty()
            return data + lam * smooth + mu * rot, data, smooth, rot

        def closure() -> torch.Tensor:
            opt.zero_grad()
            total = objective()[0]
            if not torch.isfinite(total):
                value = float(total.detach())
                raise GeometryError(f"the objective is not finite ({value}): check the targets and loss_fn")
            total.backward()
            return total

        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            t0 = time.perf_counter()
            with torch.enable_grad():
                opt.step(closure)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                total, data, smooth, rot = objective()
        finally:
            if threads is not None:
                torch.set_num_threads(previous)
        state = opt.state[params[0]]
        return FitResult(
            loss=float(total),
            data=float(data),
            smoothness=float(smooth),
            rotation=float(rot),
            iterations=int(state.get("n_iter", 0)),
            evaluations=int(state.get("func_evals", 0)),
            seconds=seconds,
        )

    def extra_repr(self) -> str:
        return f"nodes={self.num_nodes}, pairs={self.num_pairs}, sigma_mm={self.sigma_mm:g}, k={self.k}"


# ------------------------------------------------------------------ helpers
def _radius_pairs(nodes: np.ndarray, radius: float) -> np.ndarray:
    """Unordered node pairs closer than ``radius``; isolated nodes joined to their nearest node."""
    j = nodes.shape[0]
    if j < 2:
        return np.zeros((0, 2), dtype=np.int64)
    from scipy.spatial import cKDTree

    tree = cKDTree(nodes)
    pairs = np.asarray(tree.query_pairs(r=radius, output_type="ndarray"), dtype=np.int64).reshape(-1, 2)
    deg = np.bincount(pairs.ravel(), minlength=j)
    lonely = np.flatnonzero(deg == 0)
    if lonely.size:
        _, nearest = tree.query(nodes[lonely], k=2)
        extra = np.stack([lonely, np.asarray(nearest).reshape(-1, 2)[:, 1]], axis=1)
        pairs = np.concatenate([pairs, extra], axis=0)
    return np.unique(np.sort(pairs, axis=1), axis=0)
