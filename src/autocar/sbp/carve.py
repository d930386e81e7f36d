"""Sparse backward projection: coarse-to-fine carving of the multi-view visual hull.

METHOD.md section 2 (Zhu et al., Nature Machine Intelligence 7, 730-742, 2025).
A cube around the isocentre is cut into coarse voxels; at every level each
kept voxel is projected into every view and survives when the 2D distance
from its projection to the nearest vessel pixel (read in O(1) from the
view's Euclidean distance transform) is below the voxel's projected size.
Survivors split into 8 children for the next level. Only the neighbourhood
of the back-projected vessels is ever touched.

Pixel convention (shared/GEOMETRY.md): pixel (row, col) has its centre at
integer indices; the distance maps hold, at every pixel centre, the distance
in px to the nearest vessel pixel centre (0 on vessel).

Shape letters: V views, N voxels, H x W image (rows x columns); mm and px
as named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from autocar.errors import GeometryError, ShapeError
from autocar.geometry import CArmView

__all__ = ["SBPConfig", "SparseHull", "carve", "distance_maps", "check_masks"]

# Tolerance of the final centre test (px): a voxel centre is "on the mask"
# when the pixel it falls in is vessel, i.e. the distance map read at the
# nearest pixel centre is 0 (EDT values are 0, 1, sqrt 2, ... so any value
# in [0, 1) selects exactly the vessel pixels; 0.5 is the middle).
_FINAL_TOL_PX = 0.5
# Discretisation slack of the coarse tests (px). The distance map is read at
# the pixel centre nearest to the voxel's projection (an integer gather), which
# is up to sqrt(2)/2 px from the projection; the final centre test of a
# descendant also reads at a rounded position (another sqrt(2)/2) with its
# own tolerance _FINAL_TOL_PX. The EDT is 1-Lipschitz, so if any descendant
# centre passes the final test, the parent's read value is at most
#   R + sqrt(2)/2 + sqrt(2)/2 + _FINAL_TOL_PX (+ margin)
# where R bounds the distance between the two projections (below). This
# slack therefore makes coarse-to-fine carving with the final centre test
# give EXACTLY the voxels of a dense finest-level centre test (checked by
# brute force in tests/sbp/test_carve.py). It also covers the weaker
# geometric statement: a voxel whose volume projects onto any part of a
# vessel pixel square (which reaches sqrt(2)/2 px from its centre) is kept.
# The extra 1e-3 px absorbs float32 rounding of the projection.
_SLACK_PX = math.sqrt(2.0) + _FINAL_TOL_PX + 1e-3
# Half the edge of a cube times this is the radius of its circumscribed sphere.
_SQRT3_2 = math.sqrt(3.0) / 2.0


@dataclass(frozen=True)
class SBPConfig:
    """Where and how finely to carve.

    Attributes
    ----------
    box_mm : edge of the carved cube, mm, centred at ``center_mm``. When it
        is not a multiple of the coarsest voxel the grid is grown to the
        next multiple (still centred).
    center_mm : (x, y, z) world position of the cube's centre, mm (LPS).
    levels_mm : voxel edge of each level, mm, coarse to fine; each level is
        half the previous one (the paper: 8, 4, 2, 1, 0.5 mm in a 200 mm
        cube, a 400^3 finest grid).
    margin_px : extra tolerance (px, >= 0) added to every test, for weakly
        synchronised views whose masks do not meet exactly in 3D.
    final_centre_test : at the finest level, keep a voxel only when its
        CENTRE projects into a vessel pixel (within ``margin_px``) of every
        view. This makes the hull tight (the dense centre-sampled visual
        hull). When False the finest level uses the conservative test of the
        coarse levels, which keeps every voxel whose volume may project onto
        the masks (a superset, thicker by about a voxel).
    """

    box_mm: float = 200.0
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    levels_mm: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0, 0.5)
    margin_px: float = 0.0
    final_centre_test: bool = True

    def __post_init__(self) -> None:
        box = float(self.box_mm)
        if not (math.isfinite(box) and box > 0):
            raise GeometryError(f"SBPConfig.box_mm must be finite and > 0, got {self.box_mm!r}")
        centre = tuple(float(c) for c in np.asarray(self.center_mm, dtype=float).reshape(-1))
        if len(centre) != 3 or not all(math.isfinite(c) for c in centre):
            raise GeometryError(f"SBPConfig.center_mm must be 3 finite numbers, got {self.center_mm!r}")
        levels = tuple(float(x) for x in self.levels_mm)
        if not levels:
            raise GeometryError("SBPConfig.levels_mm must hold at least one voxel size, got ()")
        if not all(math.isfinite(x) and x > 0 for x in levels):
            raise GeometryError(f"SBPConfig.levels_mm must be finite and > 0, got {self.levels_mm!r}")
        for a, b in zip(levels[:-1], levels[1:]):
            if abs(b - a / 2.0) > 1e-6 * a:
                raise GeometryError(
                    f"SBPConfig.levels_mm must halve at every level, got {self.levels_mm!r} ({a} -> {b})"
                )
        margin = float(self.margin_px)
        if not (math.isfinite(margin) and margin >= 0):
            raise GeometryError(f"SBPConfig.margin_px must be finite and >= 0, got {self.margin_px!r}")
        object.__setattr__(self, "box_mm", box)
        object.__setattr__(self, "center_mm", centre)
        object.__setattr__(self, "levels_mm", levels)
        object.__setattr__(self, "margin_px", margin)
        object.__setattr__(self, "final_centre_test", bool(self.final_centre_test))

    @property
    def coarse_cells(self) -> int:
        """Voxels per axis at the coarsest level."""
        return max(1, int(math.ceil(self.box_mm / self.levels_mm[0] - 1e-9)))

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Voxels per axis (x, y, z) of the full finest grid."""
        n = self.coarse_cells * 2 ** (len(self.levels_mm) - 1)
        return (n, n, n)

    @property
    def origin_mm(self) -> np.ndarray:
        """World position (3,) mm of the centre of finest voxel (0, 0, 0)."""
        half = 0.5 * self.coarse_cells * self.levels_mm[0]
        return np.asarray(self.center_mm, dtype=np.float64) - half + 0.5 * self.levels_mm[-1]


@dataclass(frozen=True, eq=False)
class SparseHull:
    """The carved voxels at the finest level.

    Attributes
    ----------
    coords : (N, 3) int32 voxel indices (i, j, k along x, y, z) on the finest
        grid; sorted lexicographically.
    centers_mm : (N, 3) float32 voxel centres, world mm:
        ``origin_mm + coords * voxel_mm``.
    voxel_mm : finest voxel edge, mm.
    origin_mm : (3,) float64 world position of voxel (0, 0, 0)'s centre, mm.
    kept_per_level : survivors at each level (the last one after the final
        centre test when it is on).
    tested_per_level : voxels tested at each level.
    reason : why the hull is empty (N == 0), "" otherwise.
    grid_shape : voxels per axis of the full finest grid (for :meth:`dense`).
    """

    coords: np.ndarray
    centers_mm: np.ndarray
    voxel_mm: float
    origin_mm: np.ndarray
    kept_per_level: tuple[int, ...]
    tested_per_level: tuple[int, ...]
    reason: str = ""
    grid_shape: tuple[int, int, int] = field(default=(0, 0, 0))

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @property
    def num_voxels(self) -> int:
        """N, the number of kept finest voxels."""
        return len(self)

    def dense(self) -> np.ndarray:
        """The hull as a bool grid of shape ``grid_shape`` (small grids only: <= 2^27 voxels)."""
        shape = tuple(int(s) for s in self.grid_shape)
        if len(self) and any(s == 0 for s in shape):
            shape = tuple(int(s) for s in self.coords.max(axis=0) + 1)
        if int(np.prod(shape, dtype=np.int64)) > 1 << 27:
            raise ShapeError(f"dense() is for small grids (<= 2^27 voxels), got grid_shape {shape}")
        grid = np.zeros(shape, dtype=bool)
        if len(self):
            grid[self.coords[:, 0], self.coords[:, 1], self.coords[:, 2]] = True
        return grid

    def __repr__(self) -> str:
        if not len(self):
            return f"SparseHull(empty: {self.reason!r})"
        return (
            f"SparseHull({len(self)} voxels of {self.voxel_mm:g} mm, grid {self.grid_shape}, "
            f"kept per level {self.kept_per_level})"
        )


# ------------------------------------------------------------------- inputs
def check_masks(masks: Sequence[np.ndarray], views: Sequence[CArmView]) -> list[np.ndarray]:
    """Validate masks against views and return them as bool arrays.

    Any numeric mask is accepted: values > 0 are vessel (NaN is not).

    Raises
    ------
    ShapeError
        When the numbers of masks and views differ, there are none, or mask
        ``i`` is not 2D with shape ``(view.rows, view.columns)``.
    GeometryError
        When a view is not a :class:`CArmView`.
    """
    masks = list(masks)
    views = list(views)
    if len(masks) != len(views):
        raise ShapeError(f"need one mask per view, got {len(masks)} masks and {len(views)} views")
    if not masks:
        raise ShapeError("need at least one mask and view, got none")
    out = []
    for i, (m, v) in enumerate(zip(masks, views)):
        if not isinstance(v, CArmView):
            raise GeometryError(f"views[{i}] must be a CArmView, got {type(v).__name__}")
        a = np.asarray(m)
        if a.ndim != 2 or a.shape != (v.rows, v.columns):
            raise ShapeError(
                f"mask {i} must have shape (rows, columns) = {(v.rows, v.columns)} of view {i}, got {a.shape}"
            )
        if a.dtype != bool:
            if not (np.issubdtype(a.dtype, np.number)):
                raise ShapeError(f"mask {i} must be bool or numeric, got dtype {a.dtype}")
            with np.errstate(invalid="ignore"):
                a = a > 0
        out.append(a)
    return out


def distance_maps(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Euclidean distance (px) from every pixel centre to the nearest vessel pixel centre.

    Parameters
    ----------
    masks : sequence of V arrays (H, W), bool or numeric (> 0 is vessel); all
        the same shape.

    Returns
    -------
    (V, H, W) float32 px, 0 on vessel pixels
        (:func:`scipy.ndimage.distance_transform_edt` of the background).
        A mask without any vessel pixel gets the finite value ``hypot(H, W)``
        everywhere (farther than any pixel of the image).
    """
    arrs = []
    for i, m in enumerate(masks):
        a = np.asarray(m)
        if a.ndim != 2:
            raise ShapeError(f"mask {i} must be 2D (H, W), got shape {a.shape}")
        if a.dtype != bool:
            with np.errstate(invalid="ignore"):
                a = a > 0
        arrs.append(a)
    if not arrs:
        raise ShapeError("distance_maps needs at least one mask, got none")
    shape = arrs[0].shape
    for i, a in enumerate(arrs):
        if a.shape != shape:
            raise ShapeError(f"mask {i} has shape {a.shape}, mask 0 has {shape}: all must match")
    out = np.empty((len(arrs),) + shape, dtype=np.float32)
    for i, a in enumerate(arrs):
        if not a.any():
            out[i] = math.hypot(*shape)
        else:
            out[i] = ndimage.distance_transform_edt(~a)
    return out


# ------------------------------------------------------------------ carving
class _ViewOps:
    """Per-view constants for the vectorised float32 test."""

    def __init__(self, view: CArmView, dist: np.ndarray) -> None:
        p = view.projection_matrix  # rows give (col, row, 1) * w
        self.rows = view.rows
        self.cols = view.columns
        self.p = p.astype(np.float32)
        self.flat = np.ascontiguousarray(dist, dtype=np.float32).reshape(-1)
        # Camera-frame factors for the projected-radius bound.
        self.cx = (view.columns - 1) / 2.0
        self.cy = (view.rows - 1) / 2.0
        self.kx = view.spacing_mm[1] / view.sid_mm  # detector px -> tan(angle) off axis
        self.ky = view.spacing_mm[0] / view.sid_mm
        self.focal_px = view.sid_mm / min(view.spacing_mm)

    def project(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, depth w) float32 of world points given as coordinate arrays (N,)."""
        p = self.p
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._project(p, x, y, z)

    @staticmethod
    def _project(p: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = p[2, 0] * x + p[2, 1] * y + p[2, 2] * z + p[2, 3]
        inv = np.float32(1.0) / w
        col = (p[0, 0] * x + p[0, 1] * y + p[0, 2] * z + p[0, 3]) * inv
        row = (p[1, 0] * x + p[1, 1] * y + p[1, 2] * z + p[1, 3]) * inv
        return row, col, w

    def lookup(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Distance map at the pixel centre nearest to (row, col) clamped onto the image, (N,) px.

        Clamping is conservative: the nearest point of the image rectangle is
        never farther from a vessel pixel than the point itself (projection
        onto a convex set is non-expansive). NaN coordinates read pixel 0 and
        are rejected by the caller through the depth test.
        """
        # fmin/fmax (not clip) so that NaN becomes a valid index.
        r = np.fmax(np.fmin(np.rint(row, out=row), self.rows - 1, out=row), 0, out=row)
        c = np.fmax(np.fmin(np.rint(col, out=col), self.cols - 1, out=col), 0, out=col)
        idx = r.astype(np.int32)
        idx *= self.cols
        idx += c.astype(np.int32)
        return self.flat.take(idx)

    def radius_bound(self, row: np.ndarray, col: np.ndarray, w: np.ndarray, r_mm: float) -> np.ndarray:
        """Upper bound (px) on how far any point of a sphere of radius ``r_mm`` projects from its centre.

        For a centre ``p`` at depth ``w`` with lateral camera coordinates
        ``p_perp`` and an offset ``|delta| <= r``, the detector displacement is
        ``SID |delta_perp w - p_perp delta_d| / (w (w + delta_d))``, at most
        ``SID r sqrt(w^2 + |p_perp|^2) / (w (w - r))`` (Cauchy-Schwarz), i.e.
        ``view.radius_px(r, p)`` times ``w / (w - r)`` (perspective: the near
        side is magnified more) times ``sqrt(1 + tan^2 theta)`` (obliquity at
        an off-axis angle theta). Spacing: the smaller of row and column.
        Spheres reaching the source plane (w <= r) get an infinite bound.
        """
        tx = (col - self.cx) * self.kx
        ty = (row - self.cy) * self.ky
        obl = np.sqrt(np.float32(1.0) + tx * tx + ty * ty)
        near = w - np.float32(r_mm)
        with np.errstate(divide="ignore", invalid="ignore"):
            rad = np.float32(self.focal_px * r_mm) * obl / near
        rad[~(near > 0)] = np.inf
        return rad


def _empty(config: SBPConfig, kept: list[int], tested: list[int], reason: str) -> SparseHull:
    levels = len(config.levels_mm)
    kept = kept + [0] * (levels - len(kept))
    tested = tested + [0] * (levels - len(tested))
    return SparseHull(
        coords=np.zeros((0, 3), dtype=np.int32),
        centers_mm=np.zeros((0, 3), dtype=np.float32),
        voxel_mm=config.levels_mm[-1],
        origin_mm=config.origin_mm,
        kept_per_level=tuple(kept),
        tested_per_level=tuple(tested),
        reason=reason,
        grid_shape=config.grid_shape,
    )


# Child offsets (8, 3) in the order of a C-ordered 2x2x2 block.
_CHILD = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.int32)


def carve(
    masks: Sequence[np.ndarray],
    views: Sequence[CArmView],
    config: SBPConfig = SBPConfig(),
) -> SparseHull:
    """Carve the visual hull of vessel masks, coarse to fine.

    Parameters
    ----------
    masks : sequence of V arrays (H_v, W_v), bool or numeric (> 0 is vessel),
        one per view, each of shape ``(view.rows, view.columns)``. Two views
        are the clinical case; one view is allowed (a cone).
    views : sequence of V :class:`~autocar.geometry.CArmView`.
    config : :class:`SBPConfig` (box, levels, margin, final centre test).

    Returns
    -------
    SparseHull
        Finest-level survivors. Empty (with ``reason``) when a mask has no
        vessel pixel ("view i mask is empty") or when the masks have no
        common 3D support ("no voxel projects onto every mask").

    Notes
    -----
    At every level, voxel (centre ``p``, edge ``e``) is kept when for EVERY
    view ``D(p) <= R(p) + slack + margin_px`` where ``D`` is the distance map
    read at the pixel centre nearest to the projection (clamped onto the
    image), ``R`` a strict upper bound on the projected radius of the
    voxel's circumscribed sphere (``sqrt(3)/2 e``; see
    ``_ViewOps.radius_bound``) and ``slack = sqrt(2) + 0.5`` px the
    discretisation allowance explained at ``_SLACK_PX``. So no voxel whose
    volume may reach a vessel pixel is ever dropped, and with
    ``final_centre_test`` the result equals the dense test "the voxel's
    centre falls in a vessel pixel (within margin) of every view" on the full
    finest grid. Voxels projecting wholly off an image are dropped (off-image
    is not vessel); in the final centre test a centre off the image of any
    view (outside the pixel squares) drops the voxel. Computation is float32
    numpy with integer gathers on the distance maps; views are tested one
    after the other on the survivors of the previous view.
    """
    mask_list = check_masks(masks, views)
    views = list(views)
    for i, m in enumerate(mask_list):
        if not m.any():
            return _empty(config, [], [], f"view {i} mask is empty")
    dist = distance_maps(mask_list)
    ops = [_ViewOps(v, d) for v, d in zip(views, dist)]
    return _carve_maps(ops, config)


def _carve_maps(ops: list[_ViewOps], config: SBPConfig) -> SparseHull:
    """The coarse-to-fine loop of :func:`carve` on prepared views (inputs already checked)."""
    levels = config.levels_mm
    n0 = config.coarse_cells
    lo = np.asarray(config.center_mm, dtype=np.float64) - 0.5 * n0 * levels[0]
    margin = np.float32(config.margin_px)
    kept: list[int] = []
    tested: list[int] = []
    # Integer coordinates of the current level, one array per axis (contiguous).
    g = np.arange(n0, dtype=np.int32)
    ci, cj, ck = (a.reshape(-1) for a in np.meshgrid(g, g, g, indexing="ij"))
    last = len(levels) - 1
    for li, edge in enumerate(levels):
        if li > 0:
            # Children by broadcasting (N, 1) + (1, 8): C order keeps siblings together.
            ci = (2 * ci[:, None] + _CHILD[None, :, 0]).reshape(-1)
            cj = (2 * cj[:, None] + _CHILD[None, :, 1]).reshape(-1)
            ck = (2 * ck[:, None] + _CHILD[None, :, 2]).reshape(-1)
        tested.append(int(ci.shape[0]))
        base = (lo + 0.5 * edge).astype(np.float32)
        e32 = np.float32(edge)
        final = li == last and config.final_centre_test
        r_mm = _SQRT3_2 * edge
        for op in ops:
            # float32 throughout (int32 * float32 would promote to float64).
            x = ci.astype(np.float32)
            x *= e32
            x += base[0]
            y = cj.astype(np.float32)
            y *= e32
            y += base[1]
            z = ck.astype(np.float32)
            z *= e32
            z += base[2]
            row, col, w = op.project(x, y, z)
            if final:
                # Exact centre test: the pixel the centre falls in (+ margin).
                with np.errstate(invalid="ignore"):
                    inside = (
                        (w > 0)
                        & (row >= -0.5) & (row <= op.rows - 0.5)
                        & (col >= -0.5) & (col <= op.cols - 0.5)
                    )
                d = op.lookup(row, col)
                ok = inside & (d <= np.float32(_FINAL_TOL_PX) + margin)
            else:
                rad = op.radius_bound(row, col, w, r_mm)
                d = op.lookup(row, col)
                ok = d <= rad + np.float32(_SLACK_PX) + margin
            keep = np.flatnonzero(ok)
            if keep.shape[0] != ci.shape[0]:
                ci, cj, ck = ci[keep], cj[keep], ck[keep]
            if ci.shape[0] == 0:
                break
        kept.append(int(ci.shape[0]))
        if ci.shape[0] == 0:
            return _empty(config, kept, tested, "no voxel projects onto every mask")
    coords = np.stack([ci, cj, ck], axis=1).astype(np.int32)
    n = config.grid_shape[0]
    key = (coords[:, 0].astype(np.int64) * n + coords[:, 1]) * n + coords[:, 2]
    order = np.argsort(key, kind="stable")
    coords = coords[order]
    origin = config.origin_mm
    centers = (origin + coords * levels[-1]).astype(np.float32)
    return SparseHull(
        coords=coords,
        centers_mm=centers,
        voxel_mm=levels[-1],
        origin_mm=origin,
        kept_per_level=tuple(kept),
        tested_per_level=tuple(tested),
        reason="",
        grid_shape=config.grid_shape,
    )
