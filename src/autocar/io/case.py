"""Case folders (CASE_FORMAT v1, ``"autocar-case/1"``): read, validate, write.

A case folder holds ``case.json`` and the PNG frames it lists::

    case/
      case.json
      A/000.png A/001.png ...
      B/000.png B/001.png ...

``case.json`` keys (shared/CASE_FORMAT.md): ``format`` (``"autocar-case/1"``),
optional ``tree`` (``"left"`` | ``"right"``) and ``views``, a list of at
least two views, each with a ``name``, the geometry keys of
:meth:`autocar.geometry.carm.CArmView.to_dict`, ``kind`` (``"mask"`` |
``"image"``), ``frames`` (paths relative to the case folder) and optional
``frame_times_ms`` and ``cardiac_phase``. Any other top-level key (e.g.
``"synthetic"``) is kept in :attr:`Case.metadata` and written back unchanged.
Unknown keys inside a view are ignored.

Shapes: T frames of H x W = rows x columns pixels.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autocar.errors import CaseFormatError, GeometryError, ShapeError
from autocar.geometry.carm import CArmView
from autocar.io.atomic import atomic_directory, atomic_write_json, to_json_text
from autocar.io.images import FRAME_KINDS, read_frame, write_frame

__all__ = [
    "CASE_FORMAT",
    "CASE_FILE",
    "CaseView",
    "Case",
    "read_case",
    "write_case",
    "validate_case_json",
    "read_json_file",
    "case_to_json",
]

CASE_FORMAT = "autocar-case/1"
CASE_FILE = "case.json"
TREES = ("left", "right")
_RESERVED_TOP = ("format", "tree", "views")
_GEOMETRY_NUMBERS = ("primary_angle_deg", "secondary_angle_deg", "sid_mm", "sod_mm")
# CArmView's error messages use field names; case.json uses these keys.
_FIELD_TO_KEY = {
    "primary_deg": "primary_angle_deg",
    "secondary_deg": "secondary_angle_deg",
    "spacing_mm": "pixel_spacing_mm",
}


# --------------------------------------------------------------------- objects
@dataclass(frozen=True, eq=False)
class CaseView:
    """One view of a case: geometry plus its frame sequence.

    Parameters
    ----------
    name : str
        View name (``"A"``); also the folder its frames are written to.
    view : CArmView
        Geometry of the view.
    kind : {"mask", "image"}
        Vessel masks or grey-level angiograms.
    frames : (T, H, W) ndarray
        ``bool`` for masks (other numeric input is converted with ``> 0``);
        ``uint8`` or ``uint16`` for images. ``H, W`` must equal the view's
        rows and columns. When read with ``load_frames=False`` this is an
        empty (0, H, W) array and :attr:`frame_files` tells the frame count.
    frame_times_ms : (T,) float ndarray, optional
        Acquisition time of each frame, ms, finite and non-decreasing.
    cardiac_phase : (T,) float ndarray, optional
        Cardiac phase of each frame in [0, 1].
    frame_files : tuple of str, optional
        Frame paths as listed in case.json (set by :func:`read_case`).
    """

    name: str
    view: CArmView
    kind: str
    frames: np.ndarray
    frame_times_ms: np.ndarray | None = None
    cardiac_phase: np.ndarray | None = None
    frame_files: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CaseFormatError(f"view name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.view, CArmView):
            raise CaseFormatError(f"view {self.name}: view must be a CArmView, got {type(self.view).__name__}")
        if self.kind not in FRAME_KINDS:
            raise CaseFormatError(f"view {self.name}: kind must be one of {FRAME_KINDS}, got {self.kind!r}")
        frames = np.asarray(self.frames)
        if frames.ndim != 3:
            raise ShapeError(f"view {self.name}: frames must have shape (T, H, W), got {frames.shape}")
        if frames.shape[1:] != self.view.shape:
            raise ShapeError(
                f"view {self.name}: frames are {frames.shape[1]} x {frames.shape[2]} px but the view has "
                f"rows x columns = {self.view.rows} x {self.view.columns}"
            )
        if self.kind == "mask":
            if frames.dtype != np.bool_:
                if not (np.issubdtype(frames.dtype, np.integer) or np.issubdtype(frames.dtype, np.floating)):
                    raise ShapeError(f"view {self.name}: mask frames must be numeric or bool, got {frames.dtype}")
                frames = frames > 0
        elif frames.dtype not in (np.uint8, np.uint16):
            raise ShapeError(f"view {self.name}: image frames must be uint8 or uint16, got {frames.dtype}")
        files = self.frame_files
        if files is not None:
            files = tuple(str(f) for f in files)
            if frames.shape[0] not in (0, len(files)):
                raise ShapeError(
                    f"view {self.name}: {frames.shape[0]} frames but {len(files)} frame_files"
                )
        n = frames.shape[0] if frames.shape[0] or files is None else len(files)
        if n == 0:
            raise ShapeError(f"view {self.name}: needs at least one frame")
        times = _optional_series(self.name, "frame_times_ms", self.frame_times_ms, n)
        if times is not None and np.any(np.diff(times) < 0):
            raise CaseFormatError(f"view {self.name}: frame_times_ms must be non-decreasing")
        phase = _optional_series(self.name, "cardiac_phase", self.cardiac_phase, n)
        if phase is not None and (phase.min() < 0 or phase.max() > 1):
            raise CaseFormatError(
                f"view {self.name}: cardiac_phase must be in [0, 1], got range [{phase.min()}, {phase.max()}]"
            )
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "frame_times_ms", times)
        object.__setattr__(self, "cardiac_phase", phase)
        object.__setattr__(self, "frame_files", files)

    @property
    def num_frames(self) -> int:
        """T, the number of frames (from :attr:`frame_files` when frames were not loaded)."""
        if self.frames.shape[0] == 0 and self.frame_files is not None:
            return len(self.frame_files)
        return int(self.frames.shape[0])

    @property
    def frames_loaded(self) -> bool:
        """False for a view read with ``load_frames=False``."""
        return self.frames.shape[0] > 0

    def __repr__(self) -> str:
        return (
            f"CaseView({self.name!r}, {self.view.label}, {self.kind}, {self.num_frames} frames of "
            f"{self.view.rows} x {self.view.columns} px, {self.frames.dtype})"
        )


def _optional_series(name: str, key: str, values: Any, n: int) -> np.ndarray | None:
    if values is None:
        return None
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CaseFormatError(f"view {name}: {key} must hold numbers") from None
    if arr.ndim != 1:
        raise ShapeError(f"view {name}: {key} must be a 1D sequence, got shape {arr.shape}")
    if arr.shape != (n,):
        raise ShapeError(f"view {name}: {key} has {arr.shape[0]} values for {n} frames")
    if not np.all(np.isfinite(arr)):
        raise CaseFormatError(f"view {name}: {key} must be finite")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Case:
    """A case: two or more views of one coronary tree.

    Parameters
    ----------
    views : tuple of CaseView
        Views with unique names (a reconstruction needs at least two; a
        case.json with fewer is rejected).
    tree : {"left", "right"} or None
        Which coronary tree, when known.
    metadata : dict
        Extra top-level case.json keys (e.g. ``"synthetic"``), kept on round
        trip. Must not use ``format``, ``tree`` or ``views``.
    path : Path or None
        Case folder it was read from.
    """

    views: tuple[CaseView, ...]
    tree: str | None = None
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        views = tuple(self.views)
        for i, cv in enumerate(views):
            if not isinstance(cv, CaseView):
                raise CaseFormatError(f"views[{i}] must be a CaseView, got {type(cv).__name__}")
        names = [cv.name for cv in views]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CaseFormatError(f"view names must be unique, repeated: {dup}")
        if self.tree is not None and self.tree not in TREES:
            raise CaseFormatError(f"tree must be one of {TREES} or None, got {self.tree!r}")
        if not isinstance(self.metadata, dict):
            raise CaseFormatError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        clash = sorted(set(self.metadata) & set(_RESERVED_TOP))
        if clash:
            raise CaseFormatError(f"metadata must not use the reserved case.json key(s) {clash}")
        object.__setattr__(self, "views", views)
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))

    @property
    def num_frames(self) -> int:
        """Number of usable frame pairs: the minimum of the views' frame counts."""
        if not self.views:
            return 0
        return min(cv.num_frames for cv in self.views)

    def view_named(self, name: str) -> CaseView:
        """The view called ``name`` (KeyError if absent)."""
        for cv in self.views:
            if cv.name == name:
                return cv
        raise KeyError(f"no view named {name!r}; views are {[cv.name for cv in self.views]}")

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"Case(views={[cv.name for cv in self.views]}, tree={self.tree!r}, frames={self.num_frames}{where})"


# ------------------------------------------------------------------ validation
def read_json_file(path: str | Path) -> Any:
    """Parse a JSON file; CaseFormatError naming the file (and line/column) on failure.

    NaN and Infinity literals (accepted by Python's json but not by the JSON
    standard) are refused.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseFormatError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFormatError(f"{path}: cannot read: {exc}") from None

    def _reject_constant(name: str) -> Any:
        raise CaseFormatError(f"{path}: {name} is not valid JSON (numbers must be finite)")

    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CaseFormatError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(x: Any) -> str:
    return json.dumps(x) if isinstance(x, (str, bool)) or x is None else repr(x)


def _check_number(source: str, key: str, value: Any, *, positive: bool = False) -> float:
    if not _is_number(value):
        raise CaseFormatError(f"{source}: {key} must be a number, got {_fmt(value)}")
    if not math.isfinite(value):
        raise CaseFormatError(f"{source}: {key} must be finite, got {value}")
    if positive and value <= 0:
        raise CaseFormatError(f"{source}: {key} must be > 0, got {_fmt(value)}")
    return float(value)


def _check_series(source: str, key: str, values: Any, n: int) -> None:
    if not isinstance(values, list):
        raise CaseFormatError(f"{source}: {key} must be a list of numbers, got {_fmt(values)}")
    if len(values) != n:
        raise CaseFormatError(f"{source}: {key} has {len(values)} values but there are {n} frames")
    for k, v in enumerate(values):
        _check_number(source, f"{key}[{k}]", v)


def _check_frame_path(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise CaseFormatError(f"{source}: {key} must be a file path string, got {_fmt(value)}")
    norm = posixpath.normpath(value.replace("\\", "/"))
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value) or norm == ".." or norm.startswith("../"):
        raise CaseFormatError(
            f"{source}: {key} must be a relative path inside the case folder, got {_fmt(value)}"
        )
    return value


def _check_view_geometry(source: str, prefix: str, entry: dict) -> CArmView:
    for key in (*_GEOMETRY_NUMBERS, "pixel_spacing_mm", "rows", "columns"):
        if key not in entry:
            raise CaseFormatError(f"{source}: {prefix}.{key} is missing")
    for key in _GEOMETRY_NUMBERS:
        _check_number(source, f"{prefix}.{key}", entry[key], positive=key in ("sid_mm", "sod_mm"))
    sp = entry["pixel_spacing_mm"]
    if not isinstance(sp, list) or len(sp) != 2:
        raise CaseFormatError(f"{source}: {prefix}.pixel_spacing_mm must be [row, column] in mm, got {_fmt(sp)}")
    for k in range(2):
        _check_number(source, f"{prefix}.pixel_spacing_mm[{k}]", sp[k], positive=True)
    for key in ("rows", "columns"):
        v = entry[key]
        if not _is_number(v) or not math.isfinite(v) or v != int(v) or v < 1:
            raise CaseFormatError(f"{source}: {prefix}.{key} must be a positive integer, got {_fmt(v)}")
    try:
        return CArmView.from_dict(entry)
    except GeometryError as exc:
        msg = str(exc)
        for fname, key in _FIELD_TO_KEY.items():
            msg = re.sub(rf"(?<![A-Za-z_]){fname}\b", key, msg)
        sep = "." if msg.split(" ", 1)[0] in entry else ": "
        raise CaseFormatError(f"{source}: {prefix}{sep}{msg}") from None


def validate_case_json(data: Any, source: str, *, root: str | Path | None = None) -> None:
    """Check a parsed case.json against CASE_FORMAT v1.

    Parameters
    ----------
    data : dict
        The parsed JSON.
    source : str
        Name used in error messages (usually the case.json path).
    root : str or Path, optional
        Case folder; when given, every listed frame file must exist in it.

    Raises
    ------
    CaseFormatError
        With ``source`` and the key path, e.g.
        ``"case.json: views[1].sid_mm must be > 0, got -5"``.
    """
    if not isinstance(data, dict):
        raise CaseFormatError(f"{source}: the top level must be a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != CASE_FORMAT:
        raise CaseFormatError(f"{source}: format must be {CASE_FORMAT!r}, got {_fmt(fmt)}")
    tree = data.get("tree")
    if tree is not None and tree not in TREES:
        raise CaseFormatError(f"{source}: tree must be \"left\" or \"right\" (or absent), got {_fmt(tree)}")
    views = data.get("views")
    if not isinstance(views, list):
        raise CaseFormatError(f"{source}: views must be a list of view objects, got {_fmt(views) if views is None else type(views).__name__}")
    if len(views) < 2:
        raise CaseFormatError(
            f"{source}: views must hold at least 2 views (reconstruction needs two), got {len(views)}"
        )
    names: dict[str, int] = {}
    for i, entry in enumerate(views):
        prefix = f"views[{i}]"
        if not isinstance(entry, dict):
            raise CaseFormatError(f"{source}: {prefix} must be an object, got {_fmt(entry)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise CaseFormatError(f"{source}: {prefix}.name must be a non-empty string, got {_fmt(name)}")
        if name in names:
            raise CaseFormatError(f"{source}: {prefix}.name {name!r} repeats views[{names[name]}].name")
        names[name] = i
        _check_view_geometry(source, prefix, entry)
        kind = entry.get("kind")
        if kind not in FRAME_KINDS:
            raise CaseFormatError(f"{source}: {prefix}.kind must be \"mask\" or \"image\", got {_fmt(kind)}")
        frames = entry.get("frames")
        if not isinstance(frames, list) or not frames:
            raise CaseFormatError(f"{source}: {prefix}.frames must be a non-empty list of file paths, got {_fmt(frames) if not isinstance(frames, list) else '[]'}")
        for k, f in enumerate(frames):
            _check_frame_path(source, f"{prefix}.frames[{k}]", f)
            if root is not None and not (Path(root) / f).is_file():
                raise CaseFormatError(f"{source}: {prefix}.frames[{k}] file {f!r} not found in {root}")
        n = len(frames)
        times = entry.get("frame_times_ms")
        if times is not None:
            _check_series(source, f"{prefix}.frame_times_ms", times, n)
            for k in range(1, n):
                if times[k] < times[k - 1]:
                    raise CaseFormatError(
                        f"{source}: {prefix}.frame_times_ms must be non-decreasing, "
                        f"frame_times_ms[{k}] = {times[k]} < frame_times_ms[{k - 1}] = {times[k - 1]}"
                    )
        phase = entry.get("cardiac_phase")
        if phase is not None:
            _check_series(source, f"{prefix}.cardiac_phase", phase, n)
            for k, v in enumerate(phase):
                if not 0.0 <= v <= 1.0:
                    raise CaseFormatError(f"{source}: {prefix}.cardiac_phase[{k}] must be in [0, 1], got {v}")


# ----------------------------------------------------------------- read/write
def _case_json_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CASE_FILE
        if not path.is_file():
            raise CaseFormatError(f"{path.parent}: not a case folder (no {CASE_FILE})")
        return path
    if not path.is_file():
        raise CaseFormatError(f"{path}: no such case folder or case.json file")
    return path


def read_case(path: str | Path, *, load_frames: bool = True) -> Case:
    """Read and validate a case folder.

    Parameters
    ----------
    path : str or Path
        The case folder or its ``case.json``.
    load_frames : bool
        False reads only case.json (frame files are checked to exist, not
        decoded); views then hold empty (0, H, W) frame arrays and
        :attr:`CaseView.frame_files`.

    Returns
    -------
    Case
        With ``path`` the case folder.

    Raises
    ------
    CaseFormatError
        Naming case.json (or the frame file) and the key, for any departure
        from CASE_FORMAT v1: bad JSON, missing/invalid keys, missing,
        truncated or wrongly sized frames, image frames of mixed bit depth.
    """
    json_path = _case_json_path(path)
    root = json_path.parent
    source = str(json_path)
    data = read_json_file(json_path)
    validate_case_json(data, source, root=root)
    views = []
    for i, entry in enumerate(data["views"]):
        view = CArmView.from_dict(entry)
        kind = entry["kind"]
        files = tuple(entry["frames"])
        if load_frames:
            arrays = []
            for k, f in enumerate(files):
                try:
                    arr = read_frame(root / f, kind=kind, expected_shape=view.shape)
                except CaseFormatError as exc:
                    raise CaseFormatError(f"{source}: views[{i}].frames[{k}]: {exc}") from None
                if arrays and arr.dtype != arrays[0].dtype:
                    raise CaseFormatError(
                        f"{source}: views[{i}].frames[{k}] ({f}) is {arr.dtype} but views[{i}].frames[0] is "
                        f"{arrays[0].dtype}; all frames of a view must have the same bit depth"
                    )
                arrays.append(arr)
            frames = np.stack(arrays)
        else:
            frames = np.zeros((0, *view.shape), dtype=bool if kind == "mask" else np.uint8)
        try:
            views.append(
                CaseView(
                    name=entry["name"],
                    view=view,
                    kind=kind,
                    frames=frames,
                    frame_times_ms=entry.get("frame_times_ms"),
                    cardiac_phase=entry.get("cardiac_phase"),
                    frame_files=files,
                )
            )
        except (CaseFormatError, ShapeError) as exc:  # validation above should make this unreachable
            raise CaseFormatError(f"{source}: views[{i}]: {exc}") from None
    metadata = {k: v for k, v in data.items() if k not in _RESERVED_TOP}
    return Case(views=tuple(views), tree=data.get("tree"), metadata=metadata, path=root)


def _safe_view_folder(name: str) -> str:
    if name in (".", "..") or not re.fullmatch(r"[A-Za-z0-9._\- ]+", name):
        raise CaseFormatError(
            f"view name {name!r} cannot be used as a folder name (letters, digits, '.', '_', '-', space)"
        )
    return name


def case_to_json(case: Case) -> dict[str, Any]:
    """The case.json dictionary :func:`write_case` writes (frames named ``<view>/NNN.png``)."""
    data: dict[str, Any] = {"format": CASE_FORMAT}
    if case.tree is not None:
        data["tree"] = case.tree
    views = []
    for cv in case.views:
        folder = _safe_view_folder(cv.name)
        width = max(3, len(str(cv.num_frames - 1)))
        entry: dict[str, Any] = {"name": cv.name, **cv.view.to_dict(), "kind": cv.kind}
        entry["frames"] = [f"{folder}/{k:0{width}d}.png" for k in range(cv.num_frames)]
        if cv.frame_times_ms is not None:
            entry["frame_times_ms"] = [float(x) for x in cv.frame_times_ms]
        if cv.cardiac_phase is not None:
            entry["cardiac_phase"] = [float(x) for x in cv.cardiac_phase]
        views.append(entry)
    data["views"] = views
    data.update(case.metadata)
    return data


def write_case(case: Case, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a case folder atomically (all or nothing).

    Writes ``case.json`` and ``<view name>/000.png, 001.png, ...`` (masks as
    8-bit 0/255, images as 8- or 16-bit greyscale, bit-exact). Original
    :attr:`CaseView.frame_files` names are not kept.

    Parameters
    ----------
    case : Case
        With loaded frames and at least two views.
    path : str or Path
        The case folder to create.
    overwrite : bool
        Replace an existing folder (only once the new one is complete).

    Returns
    -------
    Path
        The case folder.

    Raises
    ------
    CaseFormatError
        The case would not be valid CASE_FORMAT v1 (fewer than two views,
        frames not loaded, a view name unusable as folder name, metadata that
        is not JSON).
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    for cv in case.views:
        if not cv.frames_loaded:
            raise CaseFormatError(f"view {cv.name}: frames were not loaded (read_case(load_frames=False))")
    data = case_to_json(case)
    validate_case_json(data, str(path / CASE_FILE))
    try:
        to_json_text(data)
    except (TypeError, ValueError) as exc:
        raise CaseFormatError(f"{path / CASE_FILE}: metadata cannot be written as JSON: {exc}") from None
    with atomic_directory(path, overwrite=overwrite) as tmp:
        for cv, entry in zip(case.views, data["views"]):
            (tmp / cv.name).mkdir()
            for frame, rel in zip(cv.frames, entry["frames"]):
                write_frame(tmp / rel, frame)
        atomic_write_json(tmp / CASE_FILE, data)
    return path
