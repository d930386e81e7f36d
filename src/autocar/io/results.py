"""Reconstruction results and ground truth (``"autocar-reconstruction/1"``).

``reconstruction.json`` (shared/CASE_FORMAT.md)::

    {
      "format": "autocar-reconstruction/1",
      "coordinate_system": "DICOM LPS, mm, origin at isocentre",
      "frames": [
        {"index": 0, "nodes": [[x, y, z, radius_mm], ...], "edges": [[i, j], ...]}
      ]
    }

Any other top-level key (``"stenoses"``, ``"motion"``, ``"lag"`` ...) is kept
in :attr:`Reconstruction.extra`, any other key of a frame in
:attr:`Reconstruction.frame_extra`; both are written back unchanged. The
ground truth written beside a synthetic case (``ground_truth.json``) uses
the same format. Node positions and radii are stored rounded to 1e-4 mm
(:meth:`CenterlineGraph.to_frame`); node labels are not part of the format
(callers keep them in ``extra`` if needed).

Shapes: T frames; per frame N nodes (x, y, z, r) mm and E edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import CaseFormatError, ShapeError, TreeFormatError
from autocar.io.atomic import atomic_write_text, to_json_text
from autocar.io.case import read_json_file

__all__ = [
    "RECONSTRUCTION_FORMAT",
    "COORDINATE_SYSTEM",
    "RECONSTRUCTION_FILE",
    "GROUND_TRUTH_FILE",
    "Reconstruction",
    "write_reconstruction",
    "read_reconstruction",
    "write_ground_truth",
    "read_ground_truth",
]

RECONSTRUCTION_FORMAT = "autocar-reconstruction/1"
COORDINATE_SYSTEM = "DICOM LPS, mm, origin at isocentre"
RECONSTRUCTION_FILE = "reconstruction.json"
GROUND_TRUTH_FILE = "ground_truth.json"
_RESERVED_TOP = ("format", "coordinate_system", "frames")
_RESERVED_FRAME = ("index", "nodes", "edges")


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """Centre-line graphs over time, one per frame pair.

    Parameters
    ----------
    frames : tuple of CenterlineGraph
        Frame k's vessel graph (world LPS mm); at least one frame.
    extra : dict
        Extra top-level keys (e.g. ``"stenoses"``, ``"motion"``, ``"lag"``),
        written and read back unchanged; must be JSON-serialisable.
    frame_extra : tuple of dict, optional
        Extra keys of each frame (same length as ``frames``).
    """

    frames: tuple[CenterlineGraph, ...]
    extra: dict = field(default_factory=dict)
    frame_extra: tuple[dict, ...] | None = None

    def __post_init__(self) -> None:
        frames = tuple(self.frames)
        if not frames:
            raise CaseFormatError("a reconstruction needs at least one frame")
        for k, g in enumerate(frames):
            if not isinstance(g, CenterlineGraph):
                raise CaseFormatError(f"frames[{k}] must be a CenterlineGraph, got {type(g).__name__}")
        if not isinstance(self.extra, dict):
            raise CaseFormatError(f"extra must be a dict, got {type(self.extra).__name__}")
        clash = sorted(set(self.extra) & set(_RESERVED_TOP))
        if clash:
            raise CaseFormatError(f"extra must not use the reserved key(s) {clash}")
        frame_extra = self.frame_extra
        if frame_extra is not None:
            frame_extra = tuple(frame_extra)
            if len(frame_extra) != len(frames):
                raise CaseFormatError(
                    f"frame_extra has {len(frame_extra)} entries for {len(frames)} frames"
                )
            for k, fx in enumerate(frame_extra):
                if not isinstance(fx, dict):
                    raise CaseFormatError(f"frame_extra[{k}] must be a dict, got {type(fx).__name__}")
                bad = sorted(set(fx) & set(_RESERVED_FRAME))
                if bad:
                    raise CaseFormatError(f"frame_extra[{k}] must not use the reserved key(s) {bad}")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "frame_extra", frame_extra)

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return len(self.frames)

    @property
    def is_dynamic(self) -> bool:
        """True when every frame has the same node count and identical edges (one topology over time)."""
        first = self.frames[0]
        return all(
            g.num_nodes == first.num_nodes and np.array_equal(g.edges, first.edges) for g in self.frames[1:]
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON dictionary of this reconstruction (CASE_FORMAT v1 output)."""
        out: dict[str, Any] = {"format": RECONSTRUCTION_FORMAT, "coordinate_system": COORDINATE_SYSTEM}
        out.update(self.extra)
        frames = []
        for k, g in enumerate(self.frames):
            entry = g.to_frame(k)
            fx = self.frame_extra[k] if self.frame_extra is not None else {}
            frames.append({"index": entry["index"], **fx, "nodes": entry["nodes"], "edges": entry["edges"]})
        out["frames"] = frames
        return out

    def __repr__(self) -> str:
        g = self.frames[0]
        return (
            f"Reconstruction({self.num_frames} frames, frame 0: {g.num_nodes} nodes, {g.num_edges} edges, "
            f"dynamic={self.is_dynamic}, extra={sorted(self.extra)})"
        )


# ---------------------------------------------------------------------- write
def _format_json(data: dict[str, Any]) -> str:
    """Readable JSON: one node or edge row per line, other values compact."""
    lines = ["{"]
    top = [(k, v) for k, v in data.items() if k != "frames"]
    for k, v in top:
        lines.append(f"  {to_json_text(k)}: {to_json_text(v, indent=None)},")
    lines.append('  "frames": [')
    frames = data["frames"]
    for fi, frame in enumerate(frames):
        lines.append("    {")
        items = list(frame.items())
        for ki, (k, v) in enumerate(items):
            comma = "," if ki < len(items) - 1 else ""
            if k in ("nodes", "edges") and v:
                rows = ",\n".join(f"        {to_json_text(r, indent=None)}" for r in v)
                lines.append(f"      {to_json_text(k)}: [\n{rows}\n      ]{comma}")
            else:
                lines.append(f"      {to_json_text(k)}: {to_json_text(v, indent=None)}{comma}")
        lines.append("    }" + ("," if fi < len(frames) - 1 else ""))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write(rec: Reconstruction, path: Path) -> Path:
    data = rec.to_json()
    try:
        text = _format_json(data)
    except (TypeError, ValueError) as exc:
        raise CaseFormatError(f"{path}: cannot write as JSON (extra keys must be JSON values): {exc}") from None
    return atomic_write_text(path, text)


def write_reconstruction(rec: Reconstruction, path: str | Path) -> Path:
    """Write ``reconstruction.json`` atomically.

    Parameters
    ----------
    rec : Reconstruction
    path : str or Path
        A ``.json`` file, or a folder (created if needed) that receives
        ``reconstruction.json``.

    Returns
    -------
    Path
        The JSON file written.

    Raises
    ------
    ShapeError : a frame's centre-line graph has a cycle (a vessel tree is a
        forest; a cycle is a reconstruction error, never written as a result).
    """
    path = Path(path)
    for k, g in enumerate(rec.frames):
        if not g.is_forest():
            comps = int(g.components().max() + 1) if g.num_nodes else 0
            raise ShapeError(f"{path}: frame {k}'s centre-line graph has a cycle ({g.num_edges} edges on "
                             f"{g.num_nodes} nodes in {comps} components); not written")
    if path.is_dir() or path.suffix.lower() != ".json":
        path.mkdir(parents=True, exist_ok=True)
        path = path / RECONSTRUCTION_FILE
    return _write(rec, path)


def write_ground_truth(rec: Reconstruction, case_dir: str | Path) -> Path:
    """Write ``ground_truth.json`` (autocar-reconstruction/1) into an existing case folder."""
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise CaseFormatError(f"{case_dir}: case folder not found")
    return _write(rec, case_dir / GROUND_TRUTH_FILE)


# ----------------------------------------------------------------------- read
def _number_array(source: str, key: str, raw: Any, width: int, what: str) -> np.ndarray:
    """(M, width) array of a list of rows, each ``width`` JSON numbers."""
    if not isinstance(raw, list):
        raise CaseFormatError(f"{source}: {key} must be a list of {what} rows, got {type(raw).__name__}")
    for r, row in enumerate(raw):
        if (
            not isinstance(row, list)
            or len(row) != width
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in row)
        ):
            raise CaseFormatError(f"{source}: {key}[{r}] must be {what} ({width} numbers), got {json.dumps(row)}")
    if not raw:
        return np.zeros((0, width))
    return np.asarray(raw, dtype=np.float64)


def read_reconstruction(path: str | Path) -> Reconstruction:
    """Read and validate an autocar-reconstruction/1 file.

    Parameters
    ----------
    path : str or Path
        The JSON file, or a result folder holding ``reconstruction.json``.

    Returns
    -------
    Reconstruction

    Raises
    ------
    CaseFormatError
        Naming the file and key: bad JSON, wrong ``format`` or
        ``coordinate_system``, ``frames[i].index != i``, nodes that are not
        rows of 4 finite numbers with radius >= 0, edges not pairs of
        integer node indices in range or joining a node to itself.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECONSTRUCTION_FILE
    return _read(path)


def read_ground_truth(case_dir: str | Path) -> Reconstruction:
    """Read ``ground_truth.json`` from a case folder (or the file itself)."""
    path = Path(case_dir)
    if path.is_dir():
        path = path / GROUND_TRUTH_FILE
    return _read(path)


def _read(path: Path) -> Reconstruction:
    source = str(path)
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise CaseFormatError(f"{source}: the top level must be a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != RECONSTRUCTION_FORMAT:
        raise CaseFormatError(f"{source}: format must be {RECONSTRUCTION_FORMAT!r}, got {json.dumps(fmt)}")
    cs = data.get("coordinate_system")
    if cs != COORDINATE_SYSTEM:
        raise CaseFormatError(f"{source}: coordinate_system must be {COORDINATE_SYSTEM!r}, got {json.dumps(cs)}")
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise CaseFormatError(f"{source}: frames must be a non-empty list of frame objects")
    graphs = []
    frame_extra = []
    for i, frame in enumerate(frames):
        key = f"frames[{i}]"
        if not isinstance(frame, dict):
            raise CaseFormatError(f"{source}: {key} must be an object")
        for k in _RESERVED_FRAME:
            if k not in frame:
                raise CaseFormatError(f"{source}: {key}.{k} is missing")
        index = frame["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index != i:
            raise CaseFormatError(f"{source}: {key}.index must be {i}, got {json.dumps(index)}")
        nodes = _number_array(source, f"{key}.nodes", frame["nodes"], 4, "[x, y, z, radius_mm]")
        bad = np.flatnonzero(~np.all(np.isfinite(nodes), axis=1))
        if bad.size:
            raise CaseFormatError(f"{source}: {key}.nodes[{bad[0]}] must be finite, got {nodes[bad[0]].tolist()}")
        bad = np.flatnonzero(nodes[:, 3] < 0)
        if bad.size:
            raise CaseFormatError(f"{source}: {key}.nodes[{bad[0]}] radius must be >= 0, got {nodes[bad[0], 3]}")
        edges = _number_array(source, f"{key}.edges", frame["edges"], 2, "[i, j]")
        n = nodes.shape[0]
        bad = np.flatnonzero(np.any((edges != np.round(edges)) | (edges < 0) | (edges >= n), axis=1))
        if bad.size:
            raise CaseFormatError(
                f"{source}: {key}.edges[{bad[0]}] must hold node indices in [0, {n - 1}], got {edges[bad[0]].tolist()}"
            )
        bad = np.flatnonzero(edges[:, 0] == edges[:, 1])
        if bad.size:
            raise CaseFormatError(f"{source}: {key}.edges[{bad[0]}] joins node {int(edges[bad[0], 0])} to itself")
        try:
            graphs.append(CenterlineGraph.from_frame({"nodes": nodes, "edges": edges.astype(np.int64)}))
        except TreeFormatError as exc:  # the checks above should make this unreachable
            raise CaseFormatError(f"{source}: {key}: {exc}") from None
        frame_extra.append({k: v for k, v in frame.items() if k not in _RESERVED_FRAME})
    extra = {k: v for k, v in data.items() if k not in _RESERVED_TOP}
    fx = tuple(frame_extra) if any(frame_extra) else None
    return Reconstruction(frames=tuple(graphs), extra=extra, frame_extra=fx)
