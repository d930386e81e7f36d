"""Build a case from loose vessel-mask images and per-view geometry JSON files.

Many public two-view datasets ship one mask PNG per view with a small JSON
of its geometry instead of DICOM, e.g. (the xra-diff layout)::

    {"sid": 1074, "sod": 749, "spacing": 0.308, "alpha": 39.2, "beta": -7.9}

``alpha``/``beta`` are the positioner primary/secondary angles in degrees
(LAO/CRA positive, as GEOMETRY.md), ``sid``/``sod`` in mm and ``spacing``
the imager pixel spacing in mm (one number, or [row, column]). The long
names of CASE_FORMAT (``primary_deg``, ``secondary_deg``, ``sid_mm``,
``sod_mm``, ``spacing_mm``) are accepted too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from autocar.errors import CaseFormatError
from autocar.geometry import CArmView
from autocar.io.case import Case, CaseView, read_json_file, write_case
from autocar.io.images import read_frame

__all__ = ["view_from_params", "case_from_mask_files"]

_ALIASES = {
    "primary_deg": ("primary_deg", "alpha"),
    "secondary_deg": ("secondary_deg", "beta"),
    "sid_mm": ("sid_mm", "sid"),
    "sod_mm": ("sod_mm", "sod"),
    "spacing_mm": ("spacing_mm", "spacing"),
}


def view_from_params(path: str | Path, shape: tuple[int, int]) -> CArmView:
    """The CArmView described by a geometry JSON file for an image of ``shape`` (rows, columns)."""
    path = Path(path)
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise CaseFormatError(f"{path}: expected a JSON object with sid, sod, spacing, alpha, beta")
    values = {}
    for key, names in _ALIASES.items():
        found = [n for n in names if n in data]
        if not found:
            raise CaseFormatError(f"{path}: missing '{names[-1]}' (or '{names[0]}')")
        if len(found) > 1 and data[found[0]] != data[found[1]]:
            raise CaseFormatError(f"{path}: '{found[0]}' and '{found[1]}' disagree")
        values[key] = data[found[0]]
    spacing = values["spacing_mm"]
    try:
        if isinstance(spacing, (list, tuple)):
            if len(spacing) != 2:
                raise CaseFormatError(f"{path}: 'spacing' must be one number or [row, column]")
            sp = (float(spacing[0]), float(spacing[1]))
        else:
            sp = (float(spacing), float(spacing))
        return CArmView(
            float(values["primary_deg"]), float(values["secondary_deg"]), float(values["sid_mm"]),
            float(values["sod_mm"]), sp, int(shape[0]), int(shape[1]),
        )
    except (TypeError, ValueError) as exc:
        raise CaseFormatError(f"{path}: bad geometry: {exc}") from None


def case_from_mask_files(
    masks: Sequence[str | Path],
    params: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    names: Sequence[str] | None = None,
    tree: str | None = None,
    overwrite: bool = False,
) -> Case:
    """A one-frame mask case from one mask image and one geometry JSON per view.

    Writes the case folder to ``out`` when given (atomically) and returns the
    case as read back from it; otherwise returns it in memory.
    """
    if len(masks) != len(params):
        raise CaseFormatError(f"give one geometry file per mask, got {len(masks)} masks and {len(params)} files")
    if len(masks) < 2:
        raise CaseFormatError(f"a case needs at least two views, got {len(masks)}")
    names = list(names) if names is not None else [chr(ord("A") + i) for i in range(len(masks))]
    views = []
    for name, m, p in zip(names, masks, params):
        frame = read_frame(m, kind="mask")
        if not frame.any():
            raise CaseFormatError(f"{m}: the vessel mask is empty")
        view = view_from_params(p, frame.shape)
        views.append(CaseView(name=name, view=view, kind="mask", frames=frame[None].astype(bool),
                              frame_times_ms=np.zeros(1)))
    case = Case(views=tuple(views), tree=tree,
                metadata={"source": {"masks": [str(m) for m in masks], "geometry": [str(p) for p in params]}})
    if out is None:
        return case
    from autocar.io.case import read_case

    return read_case(write_case(case, out, overwrite=overwrite))
