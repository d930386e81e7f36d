"""DICOM XA: the constants, the :class:`XASequence` a run is read into, and the tag helpers
(lookup through Enhanced XA functional groups, numbers with clear errors) that reading and
writing share."""


from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from autocar.errors import (
    DicomGeometryError,
)
from autocar.geometry.carm import CArmView




XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1"
ENHANCED_XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1.1"
XA_CLASSES = (XA_SOP_CLASS_UID, ENHANCED_XA_SOP_CLASS_UID)
#: Private creator of the block where autocar stores the cardiac phase.
PRIVATE_CREATOR = "AUTOCAR 1.0"
#: Group of that private block (the block's slot is allocated by creator, so it
#: coexists with vendors' private blocks in the same group, e.g. GE's).
PRIVATE_GROUP = 0x0019
PHASE_ELEMENT = 0x01  # element offset inside the block: DS, VM T, phases in [0, 1]
#: Frame rate assumed (with a warning) when a file gives no timing tag at all.
DEFAULT_FPS = 15.0
#: Relative disagreement between two tags describing the same quantity above
#: which a warning is issued (the primary tag is still used).
CONTRADICTION_TOLERANCE = 0.10


class DicomGeometryWarning(UserWarning):
    """Tags of a DICOM file disagree, or a value had to be assumed; the file is still used."""


@dataclass(frozen=True, eq=False)
class XASequence:
    """One X-ray angiography run read from a DICOM file.

    Parameters
    ----------
    path : Path
        The file it was read from.
    view : CArmView
        Geometry of the run (the first frame's angles).
    frames : (T, H, W) ndarray of uint8 or uint16, or None
        Grey levels, MONOCHROME2 (vessels dark); None when read header-only.
    frame_times_ms : (T,) float ndarray
        Acquisition time of each frame, ms (first frame at the Frame Delay,
        usually 0).
    cardiac_phase : (T,) float ndarray in [0, 1], or None
        Cardiac phase per frame when known (0 = R wave).
    spacing_source : str
        Which tag(s) gave ``view.spacing_mm``: ``"ImagerPixelSpacing"``,
        ``"FieldOfViewDimensions/Rows,Columns"``,
        ``"IntensifierSize/max(Rows,Columns)"``,
        ``"PixelSpacing*SID/SOD"``,
        ``"PixelSpacing*EstimatedRadiographicMagnificationFactor"`` or
        ``"override"``.
    per_frame_angles_deg : (T, 2) float ndarray, or None
        (primary, secondary) deg per frame when the file describes a moving
        positioner.
    description : str
        Manufacturer, model and series description (may be empty).
    """

    path: Path
    view: CArmView
    frames: np.ndarray | None
    frame_times_ms: np.ndarray
    cardiac_phase: np.ndarray | None
    spacing_source: str
    per_frame_angles_deg: np.ndarray | None
    description: str

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frame_times_ms.shape[0])

    @property
    def frame_rate_fps(self) -> float | None:
        """Mean frame rate (frames/s) from the frame times, None for a single frame."""
        if self.num_frames < 2:
            return None
        span = float(self.frame_times_ms[-1] - self.frame_times_ms[0])
        return (self.num_frames - 1) * 1000.0 / span if span > 0 else None

    def __repr__(self) -> str:
        return (
            f"XASequence({self.path.name!r}, {self.view!r}, {self.num_frames} frames, "
            f"spacing from {self.spacing_source})"
        )


# ----------------------------------------------------------------- helpers
def import_pydicom() -> Any:
    import pydicom

    return pydicom


def walk_items(ds: Any) -> Iterable[Any]:
    """Every dataset nested inside the sequences of ``ds`` (depth first)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield item
                yield from walk_items(item)


def find_tag(ds: Any, keyword: str) -> Any:
    """Value of ``keyword``: top level, else Shared then first Per-frame Functional Group (Enhanced XA)."""
    if keyword in ds:
        return ds[keyword].value
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(group)
        if not seq:
            continue
        for item in [seq[0], *walk_items(seq[0])]:
            if keyword in item:
                return item[keyword].value
    return None


def is_empty_value(value: Any) -> bool:
    return value is None or (isinstance(value, (str, bytes)) and value.strip() == "") or (
        isinstance(value, (list, tuple)) and len(value) == 0
    )


def tag_numbers(path: Path, keyword: str, value: Any) -> np.ndarray:
    """Tag value (single or multi-valued) as a float array (n,); error naming the tag otherwise."""
    from pydicom.multival import MultiValue

    vals = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        arr = np.array([float(v) for v in vals], dtype=np.float64)
    except (TypeError, ValueError):
        raise DicomGeometryError(f"{path}: tag {keyword} must hold numbers, got {value!r}") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise DicomGeometryError(f"{path}: tag {keyword} must hold finite numbers, got {value!r}")
    return arr


def tag_number(path: Path, ds: Any, keyword: str, *, required: bool, positive: bool = False) -> float | None:
    value = find_tag(ds, keyword)
    if is_empty_value(value):
        if required:
            raise DicomGeometryError(f"{path}: required tag {keyword} is missing or empty")
        return None
    arr = tag_numbers(path, keyword, value)
    x = float(arr[0])
    if positive and x <= 0:
        raise DicomGeometryError(f"{path}: tag {keyword} must be > 0, got {x}")
    return x


def required_number(path: Path, ds: Any, keyword: str, *, positive: bool = False) -> float:
    value = tag_number(path, ds, keyword, required=True, positive=positive)
    if value is None:  # unreachable: required=True raises instead
        raise DicomGeometryError(f"{path}: required tag {keyword} is missing or empty")
    return value


def warn_geometry(msg: str) -> None:
    warnings.warn(msg, DicomGeometryWarning, stacklevel=3)


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))
