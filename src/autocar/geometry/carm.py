"""The C-arm view: the one place where angle signs and the projection live.

Conventions (shared/GEOMETRY.md; DICOM PS3.3 C.8.7.5.1.2 "Positioner
Primary/Secondary Angle"):

- World: DICOM patient LPS in mm (+x patient left, +y posterior, +z head),
  origin at the C-arm isocentre, patient head-first supine.
- Primary angle alpha: LAO positive, RAO negative. Secondary angle beta:
  cranial positive, caudal negative. ``M = Rz(alpha) @ Rx(-beta)``.
- Detector direction ``d = M @ (0,-1,0)``, column axis ``u = M @ (1,0,0)``,
  row axis ``v = M @ (0,0,-1)``. Source at ``-SOD * d``.
- Pixels are (row, col) with centres at integer indices and the principal
  point at ``((rows-1)/2, (columns-1)/2)``.

Shape letters used in docstrings: N points, H x W image (rows x columns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autocar.errors import GeometryError, ShapeError

__all__ = [
    "CArmView",
    "masks_for_views",
    "rotation_x",
    "rotation_z",
    "angles_from_direction",
    "view_axes",
    "finite_number",
]


def rotation_x(angle_deg: float) -> np.ndarray:
    """Right-handed rotation about +x by ``angle_deg`` degrees, shape (3, 3)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_z(angle_deg: float) -> np.ndarray:
    """Right-handed rotation about +z by ``angle_deg`` degrees, shape (3, 3)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def view_axes(primary_deg: float, secondary_deg: float) -> np.ndarray:
    """Detector axes for a pose, shape (3, 3) with rows ``(u, v, d)``.

    ``u`` is the column axis, ``v`` the row axis and ``d`` the unit vector
    from the isocentre towards the detector (GEOMETRY.md). Rows are
    orthonormal but the frame is LEFT-handed, ``u x v = -d``: the image shows
    the patient as seen from the detector side (AP: the patient's left on the
    right of the image), the mirror of a pinhole camera at the source, so
    ``det(R) = -1`` in ``P = K [R | t]``.
    """
    m = rotation_z(primary_deg) @ rotation_x(-secondary_deg)
    u = m @ np.array([1.0, 0.0, 0.0])
    v = m @ np.array([0.0, 0.0, -1.0])
    d = m @ np.array([0.0, -1.0, 0.0])
    return np.stack([u, v, d])


def angles_from_direction(direction: np.ndarray) -> tuple[float, float]:
    """Inverse of the pose: (primary, secondary) degrees whose detector
    direction ``d`` is parallel to ``direction`` (shape (3,), any length > 0).

    From ``d = (sin a cos b, -cos a cos b, sin b)``: ``b = asin(d_z)``,
    ``a = atan2(d_x, -d_y)``. At ``|b| = 90`` the primary angle is not
    defined and 0 is returned for it.
    """
    d = np.asarray(direction, dtype=float).reshape(3)
    n = float(np.linalg.norm(d))
    if not np.isfinite(n) or n == 0.0:
        raise GeometryError(f"direction must be a finite non-zero 3-vector, got {d.tolist()}")
    d = d / n
    beta = math.degrees(math.asin(max(-1.0, min(1.0, d[2]))))
    if math.hypot(d[0], d[1]) < 1e-12:
        return 0.0, beta
    alpha = math.degrees(math.atan2(d[0], -d[1]))
    return alpha, beta


def finite_number(name: str, value: Any) -> float:
    """``value`` as a float; GeometryError naming ``name`` when it is not a finite number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise GeometryError(f"{name} must be finite, got {value!r}")
    return x


@dataclass(frozen=True)
class CArmView:
    """One C-arm pose with its detector: everything needed to project.

    Parameters
    ----------
    primary_deg : float
        Positioner Primary Angle, LAO positive, in [-180, 180] deg.
    secondary_deg : float
        Positioner Secondary Angle, cranial positive, in [-90, 90] deg.
    sid_mm : float
        Distance Source to Detector, mm (> sod_mm).
    sod_mm : float
        Distance Source to isocentre ("Distance Source to Patient"), mm (> 0).
    spacing_mm : (float, float)
        Imager Pixel Spacing (row, column) at the detector, mm (> 0).
    rows, columns : int
        Image size H x W in pixels.

    Examples
    --------
    >>> view = CArmView(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    >>> view.project(np.zeros((1, 3)))[0]
    array([[255.5, 255.5]])
    """

    primary_deg: float
    secondary_deg: float
    sid_mm: float
    sod_mm: float
    spacing_mm: tuple[float, float]
    rows: int
    columns: int
    _axes: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        primary = finite_number("primary_deg", self.primary_deg)
        secondary = finite_number("secondary_deg", self.secondary_deg)
        sid = finite_number("sid_mm", self.sid_mm)
        sod = finite_number("sod_mm", self.sod_mm)
        if not -180.0 <= primary <= 180.0:
            raise GeometryError(f"primary_deg must be in [-180, 180], got {primary}")
        if not -90.0 <= secondary <= 90.0:
            raise GeometryError(f"secondary_deg must be in [-90, 90], got {secondary}")
        if sod <= 0.0:
            raise GeometryError(f"sod_mm must be > 0, got {sod}")
        if sid <= sod:
            raise GeometryError(
                f"sid_mm must be larger than sod_mm (detector beyond the isocentre), "
                f"got sid_mm={sid}, sod_mm={sod}"
            )
        try:
            sp = tuple(self.spacing_mm)  # type: ignore[arg-type]
        except TypeError:
            sp = (self.spacing_mm, self.spacing_mm)  # type: ignore[assignment]
        if len(sp) != 2:
            raise GeometryError(f"spacing_mm must be (row, column), got {self.spacing_mm!r}")
        sr, sc = finite_number("spacing_mm[0]", sp[0]), finite_number("spacing_mm[1]", sp[1])
        if sr <= 0.0 or sc <= 0.0:
            raise GeometryError(f"spacing_mm must be > 0, got {(sr, sc)}")
        for name in ("rows", "columns"):
            v = getattr(self, name)
            if isinstance(v, bool) or not float(v).is_integer() or int(v) < 1:
                raise GeometryError(f"{name} must be a positive integer, got {v!r}")
        object.__setattr__(self, "primary_deg", primary)
        object.__setattr__(self, "secondary_deg", secondary)
        object.__setattr__(self, "sid_mm", sid)
        object.__setattr__(self, "sod_mm", sod)
        object.__setattr__(self, "spacing_mm", (sr, sc))
        object.__setattr__(self, "rows", int(self.rows))
        object.__setattr__(self, "columns", int(self.columns))
        axes = view_axes(primary, secondary)
        axes.setflags(write=False)
        object.__setattr__(self, "_axes", axes)

    # ------------------------------------------------------------------ axes
    @property
    def axes(self) -> np.ndarray:
        """Rows ``(u, v, d)``, shape (3, 3): column axis, row axis, detector direction."""
        return self._axes

    @property
    def detector_direction(self) -> np.ndarray:
        """Unit vector from the isocentre towards the detector, shape (3,)."""
        return self._axes[2].copy()

    @property
    def source_position(self) -> np.ndarray:
        """X-ray source in world mm, ``-SOD * d``, shape (3,)."""
        return -self.sod_mm * self._axes[2]

    @property
    def magnification(self) -> float:
        """Geometric magnification at the isocentre, SID / SOD."""
        return self.sid_mm / self.sod_mm

    @property
    def isocenter_spacing_mm(self) -> tuple[float, float]:
        """Pixel size (row, column) back-projected to the isocentre plane, mm."""
        m = self.magnification
        return (self.spacing_mm[0] / m, self.spacing_mm[1] / m)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (H, W) = (rows, columns)."""
        return (self.rows, self.columns)

    @property
    def intrinsics(self) -> np.ndarray:
        """K, shape (3, 3), mapping camera coordinates to (col, row, 1)."""
        return np.array(
            [
                [self.sid_mm / self.spacing_mm[1], 0.0, (self.columns - 1) / 2.0],
                [0.0, self.sid_mm / self.spacing_mm[0], (self.rows - 1) / 2.0],
                [0.0, 0.0, 1.0],
            ]
        )

    @property
    def projection_matrix(self) -> np.ndarray:
        """P = K [R | t], shape (3, 4); ``P @ (x, y, z, 1)`` is (col, row, 1) up to scale."""
        rt = np.concatenate([self._axes, np.array([[0.0], [0.0], [self.sod_mm]])], axis=1)
        return self.intrinsics @ rt

    # ------------------------------------------------------------ projection
    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along ``d`` from the source plane, ``p . d + SOD``; (..., 3) -> (...) mm."""
        p = _as_points(points)
        return p @ self._axes[2] + self.sod_mm

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixels.

        Parameters
        ----------
        points : (..., 3) array of float, mm, world (LPS) frame.

        Returns
        -------
        rc : (..., 2) array of float
            (row, col) pixel coordinates; NaN where the point is not in front
            of the source (depth <= 0).
        depth : (...) array of float
            ``w = p . d + SOD`` in mm.
        """
        p = _as_points(points)
        cam = p @ self._axes.T  # (..., 3): (p.u, p.v, p.d)
        w = cam[..., 2] + self.sod_mm
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(w > 0, self.sid_mm / w, np.nan)
        row = cam[..., 1] * scale / self.spacing_mm[0] + (self.rows - 1) / 2.0
        col = cam[..., 0] * scale / self.spacing_mm[1] + (self.columns - 1) / 2.0
        return np.stack([row, col], axis=-1), w

    def radius_px(self, radius_mm: np.ndarray | float, points: np.ndarray) -> np.ndarray:
        """Projected size in pixels of a radius ``r`` mm at each point: ``r SID / (w s)``.

        ``s`` is the mean of the row and column spacing. Shapes: radius
        broadcastable to (...), points (..., 3); returns (...).
        """
        w = self.depth(points)
        s = 0.5 * (self.spacing_mm[0] + self.spacing_mm[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(w > 0, np.asarray(radius_mm, dtype=float) * self.sid_mm / (w * s), np.nan)

    def pixel_rays(self, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Back-project pixels to rays from the source.

        Parameters
        ----------
        rc : (..., 2) array of float, (row, col) pixels.

        Returns
        -------
        origin : (..., 3) the source position (mm), repeated.
        direction : (..., 3) unit vectors from the source through the pixel.
        """
        rc = np.asarray(rc, dtype=float)
        if rc.shape[-1:] != (2,):
            raise ShapeError(f"rc must have shape (..., 2) as (row, col), got {rc.shape}")
        x_mm = (rc[..., 1] - (self.columns - 1) / 2.0) * self.spacing_mm[1]
        y_mm = (rc[..., 0] - (self.rows - 1) / 2.0) * self.spacing_mm[0]
        u, v, d = self._axes
        # Detector point relative to the source: SID*d + x u + y v.
        vec = self.sid_mm * d + x_mm[..., None] * u + y_mm[..., None] * v
        direction = vec / np.linalg.norm(vec, axis=-1, keepdims=True)
        origin = np.broadcast_to(self.source_position, direction.shape).copy()
        return origin, direction

    def unproject(self, rc: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """World points (..., 3) mm at the given pixels (..., 2) and depths ``w`` (...) mm.

        Inverse of :meth:`project`: ``unproject(*project(p)) == p``.
        """
        rc = np.asarray(rc, dtype=float)
        if rc.shape[-1:] != (2,):
            raise ShapeError(f"rc must have shape (..., 2) as (row, col), got {rc.shape}")
        w = np.asarray(depth, dtype=float)
        x_mm = (rc[..., 1] - (self.columns - 1) / 2.0) * self.spacing_mm[1]
        y_mm = (rc[..., 0] - (self.rows - 1) / 2.0) * self.spacing_mm[0]
        u, v, d = self._axes
        pu = x_mm * w / self.sid_mm
        pv = y_mm * w / self.sid_mm
        pd = w - self.sod_mm
        return pu[..., None] * u + pv[..., None] * v + pd[..., None] * d

    def contains(self, rc: np.ndarray) -> np.ndarray:
        """Whether (row, col) pixel coordinates (..., 2) fall on the image (pixel centres +- 0.5)."""
        rc = np.asarray(rc, dtype=float)
        r, c = rc[..., 0], rc[..., 1]
        with np.errstate(invalid="ignore"):
            return (r >= -0.5) & (r <= self.rows - 0.5) & (c >= -0.5) & (c <= self.columns - 0.5)

    # ---------------------------------------------------------- conversions
    @property
    def label(self) -> str:
        """Clinical name of the pose, e.g. ``"LAO 30.0 CRA 20.0"``."""
        a, b = self.primary_deg, self.secondary_deg
        side = "LAO" if a >= 0 else "RAO"
        tilt = "CRA" if b >= 0 else "CAU"
        return f"{side} {abs(a):.1f} {tilt} {abs(b):.1f}"

    def to_dict(self) -> dict[str, Any]:
        """Geometry keys of a CASE_FORMAT v1 view entry."""
        return {
            "primary_angle_deg": self.primary_deg,
            "secondary_angle_deg": self.secondary_deg,
            "sid_mm": self.sid_mm,
            "sod_mm": self.sod_mm,
            "pixel_spacing_mm": [self.spacing_mm[0], self.spacing_mm[1]],
            "rows": self.rows,
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CArmView":
        """Build from CASE_FORMAT v1 view keys; raises GeometryError naming a missing key."""
        keys = ("primary_angle_deg", "secondary_angle_deg", "sid_mm", "sod_mm",
                "pixel_spacing_mm", "rows", "columns")
        missing = [k for k in keys if k not in data]
        if missing:
            raise GeometryError(f"missing geometry key(s) {missing}")
        sp = data["pixel_spacing_mm"]
        if isinstance(sp, (int, float)):
            sp = (sp, sp)
        if not isinstance(sp, (list, tuple)) or len(sp) != 2:
            raise GeometryError(f"pixel_spacing_mm must be [row, column], got {sp!r}")
        return cls(
            primary_deg=data["primary_angle_deg"],
            secondary_deg=data["secondary_angle_deg"],
            sid_mm=data["sid_mm"],
            sod_mm=data["sod_mm"],
            spacing_mm=(sp[0], sp[1]),
            rows=data["rows"],
            columns=data["columns"],
        )

    def replace(self, **changes: Any) -> "CArmView":
        """A copy with some fields changed (validated again)."""
        fields = {
            "primary_deg": self.primary_deg,
            "secondary_deg": self.secondary_deg,
            "sid_mm": self.sid_mm,
            "sod_mm": self.sod_mm,
            "spacing_mm": self.spacing_mm,
            "rows": self.rows,
            "columns": self.columns,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown CArmView field(s): {sorted(unknown)}")
        fields.update(changes)
        return CArmView(**fields)

    def __repr__(self) -> str:
        return (
            f"CArmView({self.label}, SID {self.sid_mm:g} mm, SOD {self.sod_mm:g} mm, "
            f"spacing {self.spacing_mm[0]:g}x{self.spacing_mm[1]:g} mm, "
            f"{self.rows}x{self.columns} px)"
        )


def masks_for_views(masks: Any, views: Any) -> list[np.ndarray]:
    """Check one (rows, columns) mask per view, at least two views; return them as bool arrays.

    Raises
    ------
    ShapeError
        A different number of masks and views, fewer than two, or a mask
        whose shape is not its view's detector size (the message names it).
    """
    if len(masks) != len(views) or len(masks) < 2:
        raise ShapeError(f"need one mask per view and at least two views, got {len(masks)} masks, {len(views)} views")
    out = []
    for i, (m, v) in enumerate(zip(masks, views)):
        a = np.asarray(m)
        if a.shape != (v.rows, v.columns):
            raise ShapeError(f"mask {i} has shape {a.shape}, its view expects {(v.rows, v.columns)}")
        out.append(a > 0)
    return out


def _as_points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 0 or p.shape[-1] != 3:
        raise ShapeError(f"points must have shape (..., 3) in mm, got {p.shape}")
    return p
