"""C-arm pose distribution for synthetic training data (pose domain adaptation).

AutoCAR trains on synthetic projections whose C-arm poses are drawn from the
distribution of real clinical acquisitions (Zhu et al., Nat Mach Intell 7,
2025): a mixture of Gaussian clusters over (primary, secondary) angle, the
two views of a pair taken from two different clusters, with source-detector
distance (SID), source-isocentre distance (SOD) and imager pixel spacing drawn
from clinical ranges. This module holds that distribution, the named
standard coronary projections, and a fit of the distribution to your own
cath lab's DICOM headers.

Angle signs follow shared/GEOMETRY.md (DICOM PS3.3 C.8.7.5.1.2): primary
LAO positive / RAO negative, secondary cranial positive / caudal negative.
Shapes: K clusters, N views; angles in deg, distances and spacing in mm.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autocar.errors import GeometryError
from autocar.geometry.carm import CArmView
from autocar.io.atomic import atomic_write_text

__all__ = [
    "STANDARD_VIEWS",
    "POSES_FORMAT",
    "parse_view_name",
    "named_view",
    "PoseDistribution",
]

POSES_FORMAT = "autocar-poses/1"

#: Standard coronary angiography projections, name -> (primary, secondary) deg.
#: Typical textbook angles (e.g. Baim & Grossman, Cardiac Catheterization,
#: Angiography and Intervention, ch. "Coronary angiography"); labs vary by
#: +-10 deg around them.
STANDARD_VIEWS: dict[str, tuple[float, float]] = {
    "AP": (0.0, 0.0),
    "AP CRA 30": (0.0, 30.0),  # LAD and diagonals, proximal-mid
    "AP CAU 30": (0.0, -30.0),  # LM, proximal LAD and LCX
    "RAO 30": (-30.0, 0.0),  # RCA mid, LCX
    "RAO 30 CRA 30": (-30.0, 30.0),  # mid-distal LAD, diagonal separation
    "RAO 30 CAU 20": (-30.0, -20.0),  # LCX and obtuse marginals, LM
    "RAO 10 CAU 30": (-10.0, -30.0),  # LM bifurcation, proximal LCX
    "LAO 30": (30.0, 0.0),  # RCA
    "LAO 45": (45.0, 0.0),
    "LAO 30 CRA 20": (30.0, 20.0),  # RCA crux, PDA/PLV
    "LAO 45 CRA 20": (45.0, 20.0),  # LAD / diagonal bifurcations
    "LAO 45 CAU 30": (45.0, -30.0),  # "spider": LM, LAD/LCX bifurcation
    "LAO 60": (60.0, 0.0),
    "LAO 90": (90.0, 0.0),  # left lateral
}

_SIDES = {"LAO": 1.0, "RAO": -1.0}
_TILTS = {
    "CRA": 1.0, "CRAN": 1.0, "CRANIAL": 1.0,
    "CAU": -1.0, "CAUD": -1.0, "CAUDAL": -1.0,
}
_LATERAL = {"LATERAL", "LAT", "LL"}
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def parse_view_name(name: str) -> tuple[float, float]:
    """Angles of a clinical projection name.

    Parameters
    ----------
    name : str
        e.g. ``"LAO 45 CRA 20"``, ``"RAO30/CAU20"``, ``"AP"``, ``"AP caudal 30"``,
        ``"CRA 30"`` (frontal), ``"lateral"`` (= LAO 90). Case-insensitive;
        separators ``/ , ; _`` and a degree sign are allowed; numbers are
        non-negative magnitudes (the side gives the sign).

    Returns
    -------
    (primary_deg, secondary_deg) : RAO and CAU negative.

    Raises
    ------
    GeometryError (a ValueError) when the name cannot be read.
    """
    if not isinstance(name, str):
        raise GeometryError(f"view name must be a string, got {name!r}")
    text = name.upper().replace("°", " ").replace("DEG", " ")
    text = re.sub(r"[/,;_]", " ", text)
    text = re.sub(r"([A-Z])(\d)", r"\1 \2", text)
    text = re.sub(r"(\d)([A-Z])", r"\1 \2", text)
    tokens = text.split()
    if not tokens:
        raise GeometryError(f"empty view name {name!r}")
    primary: float | None = None
    secondary: float | None = None

    def number(i: int, what: str, limit: float) -> float:
        if i >= len(tokens) or not _NUMBER.match(tokens[i]):
            raise GeometryError(f"view name {name!r}: {what} must be followed by an angle in degrees")
        x = float(tokens[i])
        if x > limit:
            raise GeometryError(f"view name {name!r}: {what} angle {x} exceeds {limit} deg")
        return x

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _SIDES:
            if primary is not None:
                raise GeometryError(f"view name {name!r}: more than one LAO/RAO/AP/lateral part")
            primary = _SIDES[tok] * number(i + 1, tok, 180.0)
            i += 2
        elif tok in _TILTS:
            if secondary is not None:
                raise GeometryError(f"view name {name!r}: more than one CRA/CAU part")
            secondary = _TILTS[tok] * number(i + 1, tok, 90.0)
            i += 2
        elif tok == "AP" or tok in _LATERAL:
            if primary is not None:
                raise GeometryError(f"view name {name!r}: more than one LAO/RAO/AP/lateral part")
            primary = 0.0 if tok == "AP" else 90.0
            i += 1
        elif tok == "LEFT" and i + 1 < len(tokens) and tokens[i + 1] in _LATERAL:
            if primary is not None:
                raise GeometryError(f"view name {name!r}: more than one LAO/RAO/AP/lateral part")
            primary = 90.0
            i += 2
        else:
            raise GeometryError(
                f"view name {name!r}: cannot read {tok!r} (expected LAO/RAO n, CRA/CAU n, AP or lateral)"
            )
    if primary is None and secondary is None:
        raise GeometryError(f"view name {name!r} names no angle")
    return (primary or 0.0) + 0.0, (secondary or 0.0) + 0.0


def named_view(
    name: str,
    *,
    sid_mm: float = 1100.0,
    sod_mm: float = 750.0,
    spacing_mm: float | tuple[float, float] = 0.3,
    rows: int = 512,
    columns: int = 512,
) -> CArmView:
    """A :class:`CArmView` at a named clinical projection (see :func:`parse_view_name`).

    ``spacing_mm`` is the imager pixel spacing, one number or (row, column).

    Examples
    --------
    >>> named_view("AP").detector_direction.round(6).tolist()
    [0.0, -1.0, 0.0]
    """
    primary, secondary = parse_view_name(name)
    if isinstance(spacing_mm, (int, float)):
        spacing = (float(spacing_mm), float(spacing_mm))
    else:
        spacing = tuple(spacing_mm)  # type: ignore[assignment]
    return CArmView(primary, secondary, sid_mm, sod_mm, spacing, rows, columns)


# --------------------------------------------------------------- validation
def _array(name: str, value: Any, shape: tuple[int | None, ...], where: str) -> np.ndarray:
    try:
        a = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise GeometryError(f"{where}{name} must be numbers, got {value!r}") from None
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("K" if s is None else str(s) for s in shape) + ")"
        raise GeometryError(f"{where}{name} must have shape {want}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{where}{name} must be finite (no NaN or inf), got {a.tolist()}")
    return a


def _range(name: str, value: Any, where: str) -> tuple[float, float]:
    a = _array(name, value, (2,), where)
    lo, hi = float(a[0]), float(a[1])
    if lo <= 0.0 or hi < lo:
        raise GeometryError(f"{where}{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
    return lo, hi


def _positive_int(name: str, value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise GeometryError(f"{where}{name} must be a positive integer, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"{where}{name} must be a positive integer, got {value!r}") from None
    if not math.isfinite(x) or not x.is_integer() or x < 1:
        raise GeometryError(f"{where}{name} must be a positive integer, got {value!r}")
    return int(x)


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass(frozen=True, eq=False)
class PoseDistribution:
    """Mixture of Gaussian clusters over (primary, secondary) C-arm angles.

    Parameters
    ----------
    centers_deg : (K, 2) array, deg
        Cluster centres (primary, secondary).
    sigmas_deg : (K, 2) array, deg
        Per-cluster standard deviations (>= 0).
    weights : (K,) array
        Cluster probabilities (>= 0, normalised to sum 1 on construction).
    sid_range_mm, sod_range_mm : (low, high), mm
        Uniform ranges of source-detector and source-isocentre distance;
        ``sid_range_mm[1] > sod_range_mm[1]`` so that SID > SOD can always
        be drawn.
    spacing_range_mm : (low, high), mm
        Uniform range of the (square) imager pixel spacing. The default
        (0.28, 0.40) is narrower than the 0.15-0.4 mm of clinical imagers
        (METHOD.md) on purpose: 0.15-0.2 mm belongs to 1024-px (or larger)
        frames, and 512-px frames of the same detectors are binned to about
        0.3-0.4 mm (e.g. 0.308 mm in the clinical two-view sample of
        shared/data). At 512 px and a typical magnification SID/SOD ~ 1.4 the
        field of view at the isocentre is ``512 s / 1.4``: 102 mm at s = 0.28,
        only 73 mm at s = 0.2, too small for a ~100 mm coronary tree, which
        would leave the image.
    rows, columns : int
        Image size H x W, px.
    """

    centers_deg: np.ndarray
    sigmas_deg: np.ndarray
    weights: np.ndarray
    sid_range_mm: tuple[float, float] = (900.0, 1200.0)
    sod_range_mm: tuple[float, float] = (700.0, 800.0)
    spacing_range_mm: tuple[float, float] = (0.28, 0.40)
    rows: int = 512
    columns: int = 512

    def __post_init__(self) -> None:
        self._validate("")

    def _validate(self, where: str) -> None:
        centers = _array("centers_deg", self.centers_deg, (None, 2), where)
        k = centers.shape[0]
        if k < 1:
            raise GeometryError(f"{where}centers_deg must hold at least one cluster, got shape {centers.shape}")
        sigmas = _array("sigmas_deg", self.sigmas_deg, (k, 2), where)
        weights = _array("weights", self.weights, (k,), where)
        if np.any(sigmas < 0):
            raise GeometryError(f"{where}sigmas_deg must be >= 0, got {sigmas.tolist()}")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise GeometryError(f"{where}weights must be >= 0 with a positive sum, got {weights.tolist()}")
        if np.any(np.abs(centers[:, 0]) > 180) or np.any(np.abs(centers[:, 1]) > 90):
            raise GeometryError(
                f"{where}centers_deg must have primary in [-180, 180] and secondary in [-90, 90], "
                f"got {centers.tolist()}"
            )
        if abs(float(weights.sum()) - 1.0) > 1e-12:  # leave normalised weights bit-exact (JSON round trip)
            weights = weights / weights.sum()
        sid = _range("sid_range_mm", self.sid_range_mm, where)
        sod = _range("sod_range_mm", self.sod_range_mm, where)
        spacing = _range("spacing_range_mm", self.spacing_range_mm, where)
        if sid[1] <= sod[1]:
            raise GeometryError(
                f"{where}sid_range_mm must reach above sod_range_mm (SID > SOD), got "
                f"sid_range_mm={sid}, sod_range_mm={sod}"
            )
        rows = _positive_int("rows", self.rows, where)
        columns = _positive_int("columns", self.columns, where)
        for a in (centers, sigmas, weights):
            a.setflags(write=False)
        object.__setattr__(self, "centers_deg", centers)
        object.__setattr__(self, "sigmas_deg", sigmas)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "sid_range_mm", sid)
        object.__setattr__(self, "sod_range_mm", sod)
        object.__setattr__(self, "spacing_range_mm", spacing)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "columns", columns)

    @property
    def n_clusters(self) -> int:
        """Number of clusters K."""
        return int(self.centers_deg.shape[0])

    # ------------------------------------------------------------ presets
    @classmethod
    def clinical(cls) -> "PoseDistribution":
        """The AutoCAR released sampler: 9 clusters on {-60, 0, 60} x {-60, 0, 60} deg,
        sigma 10 deg, equal weights (Zhu et al. 2025), with the default
        SID/SOD/spacing ranges."""
        grid = np.array([(a, b) for a in (-60.0, 0.0, 60.0) for b in (-60.0, 0.0, 60.0)])
        return cls(centers_deg=grid, sigmas_deg=np.full((9, 2), 10.0), weights=np.full(9, 1.0 / 9))

    # ----------------------------------------------------------- sampling
    def _angles(self, gen: np.random.Generator, k: int) -> tuple[float, float]:
        mu, sd = self.centers_deg[k], self.sigmas_deg[k]
        primary = float(gen.normal(mu[0], sd[0]))
        # Wrap the primary angle into [-180, 180) (a full turn is the same pose).
        primary = (primary + 180.0) % 360.0 - 180.0
        # Secondary: truncated normal on [-90, 90] by rejection; a clip after
        # many rejections guards against centres at the limit with huge sigma.
        for _ in range(100):
            secondary = float(gen.normal(mu[1], sd[1]))
            if -90.0 <= secondary <= 90.0:
                break
        else:
            secondary = float(np.clip(secondary, -90.0, 90.0))
        return primary, secondary

    def _view(self, gen: np.random.Generator, k: int) -> CArmView:
        primary, secondary = self._angles(gen, k)
        sod = float(gen.uniform(*self.sod_range_mm))
        # SID > SOD always: draw SID above max(SID low, SOD) (non-empty since
        # sid_range_mm[1] > sod_range_mm[1] >= sod).
        sid_lo = max(self.sid_range_mm[0], sod)
        sid = float(gen.uniform(sid_lo, self.sid_range_mm[1]))
        if sid <= sod:  # only when the draw lands exactly on the lower bound
            sid = 0.5 * (sod + self.sid_range_mm[1])
        s = float(gen.uniform(*self.spacing_range_mm))
        return CArmView(primary, secondary, sid, sod, (s, s), self.rows, self.columns)

    def _check_cluster(self, cluster: Any) -> int:
        if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)):
            raise GeometryError(f"cluster must be an integer in [0, {self.n_clusters - 1}], got {cluster!r}")
        if not 0 <= int(cluster) < self.n_clusters:
            raise GeometryError(f"cluster must be in [0, {self.n_clusters - 1}], got {cluster}")
        return int(cluster)

    def sample_view(
        self,
        rng: np.random.Generator | int | None,
        cluster: int | None = None,
        *,
        return_cluster: bool = False,
    ) -> CArmView | tuple[CArmView, int]:
        """Draw one view.

        Parameters
        ----------
        rng : Generator or int seed.
        cluster : draw from this cluster instead of a random one (by weight).
        return_cluster : also return the cluster index.

        Returns
        -------
        view, or (view, cluster) when ``return_cluster``.
        """
        gen = _generator(rng)
        k = int(gen.choice(self.n_clusters, p=self.weights)) if cluster is None else self._check_cluster(cluster)
        view = self._view(gen, k)
        return (view, k) if return_cluster else view

    def sample_pair(
        self, rng: np.random.Generator | int | None, *, return_clusters: bool = False
    ) -> tuple[CArmView, CArmView] | tuple[tuple[CArmView, CArmView], tuple[int, int]]:
        """Draw the two views of a case from two DIFFERENT clusters.

        The first cluster is drawn by weight, the second by weight among the
        others. Each view gets its own SID, SOD and spacing. When only one
        cluster has a positive weight (e.g. a fit on a single pose) both views
        come from it.

        Returns
        -------
        (view_a, view_b), or ((view_a, view_b), (cluster_a, cluster_b)) when
        ``return_clusters``.
        """
        gen = _generator(rng)
        w = self.weights
        ka = int(gen.choice(self.n_clusters, p=w))
        rest = w.copy()
        rest[ka] = 0.0
        if rest.sum() > 0:
            kb = int(gen.choice(self.n_clusters, p=rest / rest.sum()))
        else:
            kb = ka
        views = (self._view(gen, ka), self._view(gen, kb))
        return (views, (ka, kb)) if return_clusters else views

    # ---------------------------------------------------------------- fit
    @classmethod
    def fit(
        cls,
        views: Sequence[CArmView],
        *,
        n_clusters: int = 9,
        rng: np.random.Generator | int | None = 0,
        min_sigma_deg: float = 2.0,
        n_init: int = 5,
        max_iter: int = 200,
    ) -> "PoseDistribution":
        """Fit the distribution to real views (e.g. DICOM headers of a cath lab).

        Angles: a Gaussian mixture with diagonal covariance on (primary,
        secondary), fitted by EM started from the best of ``n_init`` k-means++
        clusterings; sigmas are floored at ``min_sigma_deg`` (labs reuse exact
        standard angles, which would give zero spread). The number of clusters
        is ``min(n_clusters, number of distinct angle pairs)``. The primary
        angle is treated as linear (no wrap at +-180 deg; clinical primaries
        stay within about +-120 deg).

        Ranges: the 2.5-97.5 percentiles of SID, SOD and spacing (mean of row
        and column spacing); rows and columns: the most common image size.

        Parameters
        ----------
        views : N >= 1 views.
        n_clusters : wanted number of clusters K (>= 1).
        rng : Generator or int seed of the k-means++ initialisation.

        Raises
        ------
        GeometryError when ``views`` is empty or holds something else than
        CArmView.
        """
        views = list(views)
        if not views:
            raise GeometryError("PoseDistribution.fit needs at least one view, got none")
        for i, v in enumerate(views):
            if not isinstance(v, CArmView):
                raise GeometryError(f"views[{i}] must be a CArmView, got {type(v).__name__}")
        if isinstance(n_clusters, bool) or int(n_clusters) != n_clusters or n_clusters < 1:
            raise GeometryError(f"n_clusters must be a positive integer, got {n_clusters!r}")
        floor = float(min_sigma_deg)
        if not math.isfinite(floor) or floor <= 0:
            raise GeometryError(f"min_sigma_deg must be > 0, got {min_sigma_deg!r}")
        gen = _generator(rng)
        x = np.array([(v.primary_deg, v.secondary_deg) for v in views], dtype=float)
        n_unique = len(np.unique(np.round(x, 6), axis=0))
        k = min(int(n_clusters), n_unique)
        centers, sigmas, weights = _fit_gmm(x, k, gen, floor, n_init=n_init, max_iter=max_iter)
        sid = np.array([v.sid_mm for v in views])
        sod = np.array([v.sod_mm for v in views])
        spacing = np.array([0.5 * (v.spacing_mm[0] + v.spacing_mm[1]) for v in views])

        def pct(a: np.ndarray) -> tuple[float, float]:
            lo, hi = np.percentile(a, [2.5, 97.5])
            return float(lo), float(hi)

        (rows, columns), _ = Counter((v.rows, v.columns) for v in views).most_common(1)[0]
        # Percentiles keep SID_hi > SOD_hi because SID > SOD holds view by view
        # (order statistics of pointwise larger samples are larger).
        return cls(
            centers_deg=centers,
            sigmas_deg=sigmas,
            weights=weights,
            sid_range_mm=pct(sid),
            sod_range_mm=pct(sod),
            spacing_range_mm=pct(spacing),
            rows=rows,
            columns=columns,
        )

    # ----------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the format key ``"autocar-poses/1"``."""
        return {
            "format": POSES_FORMAT,
            "centers_deg": self.centers_deg.tolist(),
            "sigmas_deg": self.sigmas_deg.tolist(),
            "weights": self.weights.tolist(),
            "sid_range_mm": list(self.sid_range_mm),
            "sod_range_mm": list(self.sod_range_mm),
            "spacing_range_mm": list(self.spacing_range_mm),
            "rows": self.rows,
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> "PoseDistribution":
        """Inverse of :meth:`to_dict`, with validation.

        Every key is required; errors (GeometryError, a ValueError) name
        ``source`` (e.g. the file) and the key.
        """
        where = f"{source}: " if source else ""
        if not isinstance(data, dict):
            raise GeometryError(f"{where}pose distribution must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt != POSES_FORMAT:
            raise GeometryError(f"{where}key 'format' must be {POSES_FORMAT!r}, got {fmt!r}")
        keys = ("centers_deg", "sigmas_deg", "weights", "sid_range_mm", "sod_range_mm",
                "spacing_range_mm", "rows", "columns")
        missing = [key for key in keys if key not in data]
        if missing:
            raise GeometryError(f"{where}missing key(s) {missing}")
        unknown = sorted(set(data) - set(keys) - {"format"})
        if unknown:
            raise GeometryError(f"{where}unknown key(s) {unknown}")
        obj = cls.__new__(cls)
        for key in keys:
            object.__setattr__(obj, key, data[key])
        obj._validate(where)
        return obj

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PoseDistribution":
        """Read a file written by :meth:`save`; GeometryError names the file and the bad key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GeometryError(f"{path}: cannot read pose distribution ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GeometryError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data, source=str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PoseDistribution):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"PoseDistribution({self.n_clusters} clusters, SID {self.sid_range_mm[0]:g}-{self.sid_range_mm[1]:g} mm, "
            f"SOD {self.sod_range_mm[0]:g}-{self.sod_range_mm[1]:g} mm, spacing "
            f"{self.spacing_range_mm[0]:g}-{self.spacing_range_mm[1]:g} mm, {self.rows}x{self.columns} px)"
        )


# ------------------------------------------------------ mixture fitting
def _kmeans(x: np.ndarray, k: int, gen: np.random.Generator, iters: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means++ then Lloyd iterations. Returns centres (k, 2), labels (N,), inertia."""
    n = x.shape[0]
    centers = np.empty((k, 2))
    centers[0] = x[gen.integers(n)]
    d2 = np.sum((x - centers[0]) ** 2, axis=1)
    for j in range(1, k):
        total = d2.sum()
        # All points coincide with chosen centres: pick any not yet chosen point.
        idx = int(gen.choice(n, p=d2 / total)) if total > 0 else int(gen.integers(n))
        centers[j] = x[idx]
        d2 = np.minimum(d2, np.sum((x - centers[j]) ** 2, axis=1))
    labels = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = np.sum((x[:, None, :] - centers[None]) ** 2, axis=2)
        new = np.argmin(dist, axis=1)
        if it > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                centers[j] = members.mean(axis=0)
            else:  # re-seed an empty cluster at the worst-explained point
                far = int(np.argmax(dist[np.arange(n), labels]))
                centers[j] = x[far]
    dist = np.sum((x[:, None, :] - centers[None]) ** 2, axis=2)
    labels = np.argmin(dist, axis=1)
    return centers, labels, float(dist[np.arange(n), labels].sum())


def _fit_gmm(
    x: np.ndarray, k: int, gen: np.random.Generator, floor: float, *, n_init: int, max_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal Gaussian mixture by EM. x (N, 2) -> centres (k, 2), sigmas (k, 2), weights (k,)."""
    centers, labels, inertia = _kmeans(x, k, gen)
    for _ in range(max(1, int(n_init)) - 1):
        c, lab, cost = _kmeans(x, k, gen)
        if cost < inertia:
            centers, labels, inertia = c, lab, cost
    n = x.shape[0]
    resp = np.zeros((n, k))
    resp[np.arange(n), labels] = 1.0
    prev = -np.inf
    for _ in range(max(1, int(max_iter))):
        # M step
        nk = resp.sum(axis=0) + 1e-12
        weights = nk / n
        centers = (resp.T @ x) / nk[:, None]
        var = (resp.T @ x**2) / nk[:, None] - centers**2
        sigmas = np.sqrt(np.maximum(var, floor**2))
        # E step (log domain)
        z = (x[:, None, :] - centers[None]) / sigmas[None]
        logp = (
            np.log(np.maximum(weights, 1e-300))[None]
            - 0.5 * np.sum(z**2, axis=2)
            - np.sum(np.log(sigmas), axis=1)[None]
            - math.log(2.0 * math.pi)
        )
        m = logp.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(logp - m).sum(axis=1, keepdims=True))
        resp = np.exp(logp - lse)
        ll = float(lse.sum())
        if ll - prev < 1e-8 * max(1.0, abs(ll)):
            break
        prev = ll
    nk = resp.sum(axis=0) + 1e-12
    weights = nk / nk.sum()
    centers = (resp.T @ x) / nk[:, None]
    var = (resp.T @ x**2) / nk[:, None] - centers**2
    sigmas = np.sqrt(np.maximum(var, floor**2))
    centers[:, 0] = np.clip(centers[:, 0], -180.0, 180.0)
    centers[:, 1] = np.clip(centers[:, 1], -90.0, 90.0)
    return centers, sigmas, weights
