"""DICOM X-ray angiography (XA) in and out.

Reads the C-arm geometry of a multi-frame XA file into a
:class:`~autocar.geometry.carm.CArmView` (shared/GEOMETRY.md follows the
DICOM positioner definitions, so the angles are used as stored), decodes its
frames, frame times and cardiac phase; writes valid XA Image Storage files;
and turns a folder of two XA files into a CASE_FORMAT v1 case folder.

Tags used (DICOM PS3.3 C.8.7.5 "XA Positioner Module", C.8.7.5.1.2
"Positioner Primary and Secondary Angles", C.8.7.5.1.3 "Positioner Angle
Increments", C.7.6.6 "Multi-frame Module", C.8.7.2 "XA/XRF Acquisition"):

- Positioner Primary Angle (0018,1510): LAO positive. Positioner Secondary
  Angle (0018,1511): cranial positive. Both apply to the FIRST frame.
- Distance Source to Detector (0018,1110) = SID; Distance Source to Patient
  (0018,1111) = SOD (source to isocentre on cardiac C-arms). Enhanced XA
  files may give Distance Source to Isocenter (0018,9402) instead.
- Imager Pixel Spacing (0018,1164), at the detector plane; see
  :func:`read_xa` for the fall-backs when it is absent.

Enhanced XA (1.2.840.10008.5.1.4.1.1.12.1.1) is read too: a tag missing at
the top level is looked up in the Shared Functional Groups and then in the
first Per-frame Functional Groups item (at any depth of their nested
sequences), and per-frame angles come from each frame's Positioner Position
Sequence.

Shapes: T frames of H x W = rows x columns pixels.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from autocar.errors import (
    CaseFormatError,
    DicomGeometryError,
    GeometryError,
    ShapeError,
)
from autocar.geometry.carm import CArmView
from autocar.io.atomic import atomic_write_bytes

__all__ = [
    "XA_SOP_CLASS_UID",
    "ENHANCED_XA_SOP_CLASS_UID",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "DEFAULT_FPS",
    "DicomGeometryWarning",
    "XASequence",
    "read_xa",
    "write_xa",
    "write_case_xa",
    "find_xa_files",
    "dicom_dir_to_case",
    "case_from_dicom_dir",
    "describe_xa",
]

XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1"
ENHANCED_XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1.1"
_XA_CLASSES = (XA_SOP_CLASS_UID, ENHANCED_XA_SOP_CLASS_UID)
#: Private creator of the block where autocar stores the cardiac phase.
PRIVATE_CREATOR = "AUTOCAR 1.0"
#: Group of that private block (the block's slot is allocated by creator, so it
#: coexists with vendors' private blocks in the same group, e.g. GE's).
PRIVATE_GROUP = 0x0019
_PHASE_ELEMENT = 0x01  # element offset inside the block: DS, VM T, phases in [0, 1]
#: Frame rate assumed (with a warning) when a file gives no timing tag at all.
DEFAULT_FPS = 15.0
#: Relative disagreement between two tags describing the same quantity above
#: which a warning is issued (the primary tag is still used).
_CONTRADICTION_TOL = 0.10


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
def _pydicom() -> Any:
    import pydicom

    return pydicom


def _walk_items(ds: Any) -> Iterable[Any]:
    """Every dataset nested inside the sequences of ``ds`` (depth first)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield item
                yield from _walk_items(item)


def _find(ds: Any, keyword: str) -> Any:
    """Value of ``keyword``: top level, else Shared then first Per-frame Functional Group (Enhanced XA)."""
    if keyword in ds:
        return ds[keyword].value
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(group)
        if not seq:
            continue
        for item in [seq[0], *_walk_items(seq[0])]:
            if keyword in item:
                return item[keyword].value
    return None


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, bytes)) and value.strip() == "") or (
        isinstance(value, (list, tuple)) and len(value) == 0
    )


def _numbers(path: Path, keyword: str, value: Any) -> np.ndarray:
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


def _number(path: Path, ds: Any, keyword: str, *, required: bool, positive: bool = False) -> float | None:
    value = _find(ds, keyword)
    if _is_empty(value):
        if required:
            raise DicomGeometryError(f"{path}: required tag {keyword} is missing or empty")
        return None
    arr = _numbers(path, keyword, value)
    x = float(arr[0])
    if positive and x <= 0:
        raise DicomGeometryError(f"{path}: tag {keyword} must be > 0, got {x}")
    return x


def _required(path: Path, ds: Any, keyword: str, *, positive: bool = False) -> float:
    value = _number(path, ds, keyword, required=True, positive=positive)
    if value is None:  # unreachable: required=True raises instead
        raise DicomGeometryError(f"{path}: required tag {keyword} is missing or empty")
    return value


def _warn(msg: str) -> None:
    warnings.warn(msg, DicomGeometryWarning, stacklevel=3)


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))


def _spacing_pair(path: Path, keyword: str, value: Any) -> tuple[float, float]:
    arr = _numbers(path, keyword, value)
    if arr.size not in (1, 2):
        raise DicomGeometryError(f"{path}: tag {keyword} must hold 1 or 2 values (row, column), got {value!r}")
    if np.any(arr <= 0):
        raise DicomGeometryError(f"{path}: tag {keyword} must be > 0, got {arr.tolist()}")
    return (float(arr[0]), float(arr[-1]))


def _fov_spacing(path: Path, ds: Any, rows: int, cols: int) -> tuple[float, float] | None:
    value = _find(ds, "FieldOfViewDimensions")
    if _is_empty(value):
        return None
    arr = _numbers(path, "FieldOfViewDimensions", value)
    if arr.size not in (1, 2) or np.any(arr <= 0):
        raise DicomGeometryError(
            f"{path}: tag FieldOfViewDimensions must be 1 (diameter) or 2 (row, column) positive mm values, "
            f"got {arr.tolist()}"
        )
    if arr.size == 1:  # ROUND field: a diameter spanning the longer image side
        s = float(arr[0]) / max(rows, cols)
        return (s, s)
    return (float(arr[0]) / rows, float(arr[1]) / cols)


def _resolve_spacing(
    path: Path, ds: Any, rows: int, cols: int, sid: float, sod: float, override: Any
) -> tuple[tuple[float, float], str]:
    """Pixel spacing at the detector (row, col) mm and the name of its source (see read_xa)."""
    if override is not None:
        try:
            sp = np.broadcast_to(np.asarray(override, dtype=np.float64), (2,))
        except (TypeError, ValueError):
            raise DicomGeometryError(
                f"pixel_spacing_mm must be a positive number or (row, column) pair, got {override!r}"
            ) from None
        if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
            raise DicomGeometryError(f"pixel_spacing_mm must be finite and > 0, got {override!r}")
        return (float(sp[0]), float(sp[1])), "override"

    fov = _fov_spacing(path, ds, rows, cols)
    ips = _find(ds, "ImagerPixelSpacing")
    if not _is_empty(ips):
        sp = _spacing_pair(path, "ImagerPixelSpacing", ips)
        if fov is not None and max(_rel_diff(sp[0], fov[0]), _rel_diff(sp[1], fov[1])) > _CONTRADICTION_TOL:
            _warn(
                f"{path}: ImagerPixelSpacing {list(sp)} mm and FieldOfViewDimensions/(Rows, Columns) "
                f"{[round(fov[0], 6), round(fov[1], 6)]} mm disagree by more than "
                f"{_CONTRADICTION_TOL:.0%}; using ImagerPixelSpacing"
            )
        return sp, "ImagerPixelSpacing"
    if fov is not None:
        return fov, "FieldOfViewDimensions/Rows,Columns"
    intensifier = _number(path, ds, "IntensifierSize", required=False, positive=True)
    if intensifier is not None:
        s = intensifier / max(rows, cols)
        return (s, s), "IntensifierSize/max(Rows,Columns)"
    ps = _find(ds, "PixelSpacing")
    if not _is_empty(ps):
        # XA Pixel Spacing (0028,0030), when present, is usually calibrated at
        # the isocentre: scale it back to the detector plane.
        sp = _spacing_pair(path, "PixelSpacing", ps)
        erm = _number(path, ds, "EstimatedRadiographicMagnificationFactor", required=False, positive=True)
        if erm is not None:
            return (sp[0] * erm, sp[1] * erm), "PixelSpacing*EstimatedRadiographicMagnificationFactor"
        m = sid / sod
        return (sp[0] * m, sp[1] * m), "PixelSpacing*SID/SOD"
    raise DicomGeometryError(
        f"{path}: no pixel spacing: none of the tags ImagerPixelSpacing, FieldOfViewDimensions, "
        f"IntensifierSize, PixelSpacing is present; pass the detector pixel spacing in mm "
        f"(pixel_spacing_mm=..., or --pixel-spacing on the command line)"
    )


def _frame_times(path: Path, ds: Any, n: int) -> np.ndarray:
    """(T,) ms: Frame Time Vector, Frame Time, Cine Rate, Recommended Display Frame Rate, else 15 fps."""
    delay = _number(path, ds, "FrameDelay", required=False) or 0.0
    vec = _find(ds, "FrameTimeVector")
    if not _is_empty(vec):
        inc = _numbers(path, "FrameTimeVector", vec)
        if inc.size != n:
            raise DicomGeometryError(
                f"{path}: tag FrameTimeVector has {inc.size} values for NumberOfFrames {n}"
            )
        if np.any(inc[1:] < 0):
            raise DicomGeometryError(f"{path}: tag FrameTimeVector has negative time increments")
        # C.7.6.5.1.2: increments between frames, the first usually 0.
        return delay + np.cumsum(inc)
    k = np.arange(n, dtype=np.float64)
    ft = _number(path, ds, "FrameTime", required=False, positive=True)
    if ft is not None:
        return delay + k * ft
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = _number(path, ds, keyword, required=False, positive=True)
        if rate is not None:
            return delay + k * (1000.0 / rate)
    if n > 1:
        _warn(
            f"{path}: no FrameTimeVector, FrameTime, CineRate or RecommendedDisplayFrameRate; "
            f"assuming {DEFAULT_FPS:g} frames/s"
        )
    return delay + k * (1000.0 / DEFAULT_FPS)


def _private_phase(path: Path, ds: Any, n: int) -> np.ndarray | None:
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return None
    tag = block.get_tag(_PHASE_ELEMENT)
    if tag not in ds or _is_empty(ds[tag].value):
        return None
    where = f"private tag {tag} ({PRIVATE_CREATOR!r} cardiac phase)"
    phase = _numbers(path, where, ds[tag].value)
    if phase.size != n:
        raise DicomGeometryError(f"{path}: {where} has {phase.size} values for NumberOfFrames {n}")
    if phase.min() < 0 or phase.max() > 1:
        raise DicomGeometryError(f"{path}: {where} must be in [0, 1], got [{phase.min()}, {phase.max()}]")
    return phase


def _phase_from_r_waves(path: Path, ds: Any, times: np.ndarray) -> np.ndarray | None:
    """Cardiac phase per frame from R Wave Pointer (0028,6040) frame numbers (1-based).

    Between consecutive R waves the phase rises linearly from 0 to 1 in
    time. Before the first and after the last R wave the RR interval is the
    mean of the observed ones, or 60000 / Heart Rate (0018,1088) when only
    one R wave is given; the phase then wraps modulo 1. Heart Rate alone
    does not say when an R wave happened, so it gives no phase.
    """
    ptr = _find(ds, "RWavePointer")
    if _is_empty(ptr):
        return None
    frames = _numbers(path, "RWavePointer", ptr)
    n = times.shape[0]
    if np.any(frames < 1) or np.any(frames > n) or np.any(frames != np.round(frames)):
        raise DicomGeometryError(
            f"{path}: tag RWavePointer must hold frame numbers in 1..{n}, got {frames.tolist()}"
        )
    t_r = np.unique(times[frames.astype(int) - 1])
    if t_r.size >= 2:
        period = float(np.mean(np.diff(t_r)))
    else:
        hr = _number(path, ds, "HeartRate", required=False, positive=True)
        if hr is None:
            return None
        period = 60000.0 / hr
    if not period > 0:
        return None
    phase = np.empty(n)
    for i, t in enumerate(times):
        j = int(np.searchsorted(t_r, t, side="right")) - 1
        if 0 <= j < t_r.size - 1:
            phase[i] = (t - t_r[j]) / (t_r[j + 1] - t_r[j])
        elif j < 0:
            phase[i] = ((t - t_r[0]) / period) % 1.0
        else:
            phase[i] = ((t - t_r[-1]) / period) % 1.0
    return np.clip(phase, 0.0, 1.0)


def _per_frame_angles(path: Path, ds: Any, n: int, primary: float, secondary: float) -> np.ndarray | None:
    """(T, 2) deg from Enhanced XA per-frame groups or the legacy Angle Increment tags."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and len(per_frame) == n:
        out = np.empty((n, 2))
        for k, item in enumerate(per_frame):
            a = b = None
            for sub in _walk_items(item):
                if "PositionerPrimaryAngle" in sub and "PositionerSecondaryAngle" in sub:
                    a, b = sub.PositionerPrimaryAngle, sub.PositionerSecondaryAngle
                    break
            if _is_empty(a) or _is_empty(b):
                break
            out[k] = (_numbers(path, "PositionerPrimaryAngle", a)[0], _numbers(path, "PositionerSecondaryAngle", b)[0])
        else:
            return out
    inc_a, inc_b = ds.get("PositionerPrimaryAngleIncrement"), ds.get("PositionerSecondaryAngleIncrement")
    if _is_empty(inc_a) and _is_empty(inc_b):
        return None
    k = np.arange(n, dtype=np.float64)
    cols = []
    for keyword, value, base in (
        ("PositionerPrimaryAngleIncrement", inc_a, primary),
        ("PositionerSecondaryAngleIncrement", inc_b, secondary),
    ):
        if _is_empty(value):
            cols.append(np.full(n, base))
            continue
        inc = _numbers(path, keyword, value)
        # C.8.7.5.1.3: one value = average change per frame; T values =
        # offsets of each frame from the (initial) positioner angle.
        if inc.size == 1:
            cols.append(base + k * inc[0])
        elif inc.size == n:
            cols.append(base + inc)
        else:
            _warn(f"{path}: tag {keyword} has {inc.size} values for NumberOfFrames {n} (must be 1 or {n}); ignored")
            return None
    return np.stack(cols, axis=1)


def _check_xa(path: Path, ds: Any) -> None:
    sop = str(ds.get("SOPClassUID", "") or "")
    if not sop and getattr(ds, "file_meta", None) is not None:
        sop = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    modality = str(ds.get("Modality", "") or "")
    if sop in _XA_CLASSES:
        if modality and modality != "XA":
            _warn(f"{path}: SOPClassUID {sop} is X-ray angiography but Modality is {modality!r}; reading as XA")
        return
    if modality == "XA" and not sop:
        return
    name = getattr(_pydicom().uid.UID(sop), "name", sop) if sop else "absent"
    raise DicomGeometryError(
        f"{path}: not an X-ray angiography (XA) file: Modality is {modality or 'absent'!r}, "
        f"SOPClassUID is {sop or 'absent'} ({name}); expected Modality 'XA' and SOPClassUID "
        f"{XA_SOP_CLASS_UID} (XA) or {ENHANCED_XA_SOP_CLASS_UID} (Enhanced XA)"
    )


def _decode(path: Path, ds: Any, n: int, rows: int, cols: int) -> np.ndarray:
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp != 1:
        raise DicomGeometryError(f"{path}: SamplesPerPixel is {spp}; only greyscale XA (1) is supported")
    ts = ds.file_meta.get("TransferSyntaxUID", "unknown") if getattr(ds, "file_meta", None) else "unknown"
    if "PixelData" not in ds:
        raise DicomGeometryError(f"{path}: no PixelData (7FE0,0010) element")
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom and its plugins raise many types on corrupt/truncated data
        raise DicomGeometryError(
            f"{path}: cannot decode PixelData (transfer syntax {ts}): {type(exc).__name__}: {exc}"
        ) from None
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape != (n, rows, cols):
        raise DicomGeometryError(
            f"{path}: decoded pixels have shape {arr.shape}, expected (NumberOfFrames, Rows, Columns) = "
            f"{(n, rows, cols)}"
        )
    bits = int(ds.get("BitsStored", 8 * arr.dtype.itemsize) or 8 * arr.dtype.itemsize)
    if arr.dtype.kind == "i":
        if arr.min() < 0:
            raise DicomGeometryError(f"{path}: signed pixel values (PixelRepresentation 1) with negatives")
        arr = arr.astype(np.uint16 if arr.dtype.itemsize > 1 else np.uint8)
    out_dtype = np.uint8 if bits <= 8 else np.uint16
    if arr.dtype.kind != "u" or arr.dtype.itemsize > 2:
        raise DicomGeometryError(f"{path}: unsupported pixel type {arr.dtype} (BitsStored {bits})")
    arr = arr.astype(out_dtype, copy=False)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        # MONOCHROME1 shows low values white; store as MONOCHROME2 (vessels dark).
        maxval = (1 << min(bits, 8 * arr.dtype.itemsize)) - 1
        arr = (maxval - arr.astype(np.int64)).clip(0, maxval).astype(out_dtype)
    return np.ascontiguousarray(arr)


# -------------------------------------------------------------------- read
def read_xa(
    path: str | Path,
    *,
    pixel_spacing_mm: float | tuple[float, float] | None = None,
    load_pixels: bool = True,
    require_multiframe: bool = True,
) -> XASequence:
    """Read a multi-frame X-ray angiography DICOM file.

    Parameters
    ----------
    path : str or Path
        An XA (or Enhanced XA) DICOM file; any compressed transfer syntax
        pydicom can decode with the installed plugins (JPEG lossless via
        pylibjpeg, RLE natively).
    pixel_spacing_mm : float or (float, float), optional
        Detector pixel spacing (row, column) mm; when given it always wins
        over the file's tags (``spacing_source == "override"``).
    load_pixels : bool
        False reads the header only (``frames`` is None).
    require_multiframe : bool
        Reject files with fewer than 2 frames.

    Returns
    -------
    XASequence

    Raises
    ------
    DicomGeometryError
        Naming the file, and the tag where one is at fault: not a (readable)
        DICOM file, not XA (naming the Modality and SOP Class found), a
        positioner tag missing or not finite, SID <= SOD or a non-positive
        distance, no usable pixel spacing, a single frame while
        ``require_multiframe``, pixel data that cannot be decoded
        (truncated file, missing codec).

    Warns
    -----
    DicomGeometryWarning
        Contradictory tags (the primary tag is used): Imager Pixel Spacing vs
        Field of View Dimensions / (Rows, Columns), or Estimated Radiographic
        Magnification Factor vs SID / SOD, disagreeing by more than 10 %; no
        timing tag (15 frames/s assumed).

    Notes
    -----
    Pixel spacing (at the detector plane, as GEOMETRY.md needs), first match
    wins:

    1. the ``pixel_spacing_mm`` argument;
    2. Imager Pixel Spacing (0018,1164);
    3. Field of View Dimensions (0018,1149) (mm at the detector/intensifier
       input plane; row then column, or one diameter) divided by (Rows,
       Columns) (diameter: by the larger of the two);
    4. Intensifier Size (0018,1162) (diameter, mm) / max(Rows, Columns);
    5. Pixel Spacing (0028,0030) times Estimated Radiographic Magnification
       Factor, or times SID/SOD: in XA it is usually calibrated at the
       isocentre, so it is scaled back to the detector;
    6. otherwise DicomGeometryError: pass ``pixel_spacing_mm``.

    Steps 3 and 4 assume the stored image covers the whole field (no
    cropping or resampling after acquisition).

    Frame times (ms): Frame Delay (0018,1066, default 0) plus the cumulative
    sum of Frame Time Vector (0018,1065); else Frame Time (0018,1063) x k;
    else 1000 / Cine Rate (0018,0040) x k; else 1000 / Recommended Display
    Frame Rate (0008,2144) x k; else 15 frames/s with a warning.

    Cardiac phase: the autocar private block (creator ``"AUTOCAR 1.0"`` in
    group 0x0019, written by :func:`write_xa`); else derived from R Wave
    Pointer (0028,6040) by linear interpolation in time between R waves
    (phase 0 at each R wave); else None.

    Per-frame angles: Enhanced XA per-frame Positioner Position Sequence;
    else Positioner Primary/Secondary Angle Increment (0018,1520/1521)
    read as C.8.7.5.1.3 says (one value: change per frame; T values:
    offset of each frame from the positioner angle). ``view`` uses the
    first frame's angles.
    """
    pydicom = _pydicom()
    path = Path(path)
    if not path.is_file():
        raise DicomGeometryError(f"{path}: no such file")
    try:
        # pydicom reports some truncations only as a warning (and returns a
        # partial dataset): record them to turn those into an error.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, stop_before_pixels=not load_pixels)
    except pydicom.errors.InvalidDicomError as exc:
        raise DicomGeometryError(f"{path}: not a DICOM file ({exc})") from None
    except Exception as exc:  # truncated/corrupt headers raise EOFError, struct.error, ValueError, ...
        raise DicomGeometryError(f"{path}: cannot read DICOM file: {type(exc).__name__}: {exc}") from None
    for w in caught:
        text = str(w.message)
        if "end of file" in text.lower() or len(ds) == 0:
            raise DicomGeometryError(f"{path}: DICOM file is truncated or corrupt ({text})")
        warnings.warn(f"{path}: {text}", DicomGeometryWarning, stacklevel=2)
    if len(ds) == 0:
        raise DicomGeometryError(f"{path}: DICOM file holds no data elements (empty or truncated)")
    try:
        return _read_dataset(path, ds, pixel_spacing_mm, load_pixels, require_multiframe)
    except (DicomGeometryError, GeometryError):
        raise
    except Exception as exc:  # lazily parsed elements of a damaged file fail on first access
        raise DicomGeometryError(f"{path}: cannot read DICOM file: {type(exc).__name__}: {exc}") from None


def _read_dataset(
    path: Path, ds: Any, pixel_spacing_mm: Any, load_pixels: bool, require_multiframe: bool
) -> XASequence:
    _check_xa(path, ds)
    rows_i = int(_required(path, ds, "Rows", positive=True))
    cols_i = int(_required(path, ds, "Columns", positive=True))
    n = _number(path, ds, "NumberOfFrames", required=False, positive=True)
    n_i = int(n) if n is not None else 1
    if require_multiframe and n_i < 2:
        raise DicomGeometryError(
            f"{path}: NumberOfFrames is {n_i}; a multi-frame XA run is required (require_multiframe=False "
            f"accepts single frames)"
        )
    primary = _required(path, ds, "PositionerPrimaryAngle")
    secondary = _required(path, ds, "PositionerSecondaryAngle")
    sid = _required(path, ds, "DistanceSourceToDetector", positive=True)
    sod_kw = "DistanceSourceToPatient"
    sod = _number(path, ds, sod_kw, required=False, positive=True)
    if sod is None and not _is_empty(_find(ds, "DistanceSourceToIsocenter")):
        sod_kw = "DistanceSourceToIsocenter"
        sod = _required(path, ds, sod_kw, positive=True)
    if sod is None:
        raise DicomGeometryError(f"{path}: required tag DistanceSourceToPatient is missing or empty")
    if sid <= sod:
        raise DicomGeometryError(
            f"{path}: DistanceSourceToDetector ({sid} mm) must be larger than {sod_kw} ({sod} mm)"
        )
    erm = _number(path, ds, "EstimatedRadiographicMagnificationFactor", required=False, positive=True)
    if erm is not None and _rel_diff(erm, sid / sod) > _CONTRADICTION_TOL:
        _warn(
            f"{path}: EstimatedRadiographicMagnificationFactor {erm} disagrees with "
            f"DistanceSourceToDetector/{sod_kw} = {sid / sod:.6g} by more than {_CONTRADICTION_TOL:.0%}; "
            f"using DistanceSourceToDetector and {sod_kw}"
        )
    spacing, source = _resolve_spacing(path, ds, rows_i, cols_i, sid, sod, pixel_spacing_mm)

    per_frame = _per_frame_angles(path, ds, n_i, primary, secondary)
    a0, b0 = (float(per_frame[0, 0]), float(per_frame[0, 1])) if per_frame is not None else (primary, secondary)
    try:
        view = CArmView(a0, b0, sid, sod, spacing, rows_i, cols_i)
    except GeometryError as exc:
        raise DicomGeometryError(
            f"{path}: positioner tags (PositionerPrimaryAngle {a0}, PositionerSecondaryAngle {b0}) give an "
            f"invalid geometry: {exc}"
        ) from None

    times = _frame_times(path, ds, n_i)
    phase = _private_phase(path, ds, n_i)
    if phase is None:
        phase = _phase_from_r_waves(path, ds, times)
    frames = _decode(path, ds, n_i, rows_i, cols_i) if load_pixels else None
    parts = [str(ds.get(k, "") or "").strip() for k in ("Manufacturer", "ManufacturerModelName", "SeriesDescription")]
    for arr in (times, phase, per_frame, frames):
        if arr is not None:
            arr.setflags(write=False)
    return XASequence(
        path=path,
        view=view,
        frames=frames,
        frame_times_ms=times,
        cardiac_phase=phase,
        spacing_source=source,
        per_frame_angles_deg=per_frame,
        description=", ".join(p for p in parts if p),
    )


# ------------------------------------------------------------------- write
def _ds(x: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(x))


def write_xa(
    path: str | Path,
    frames: np.ndarray,
    view: CArmView,
    *,
    frame_times_ms: Sequence[float] | np.ndarray | None = None,
    cardiac_phase: Sequence[float] | np.ndarray | None = None,
    patient_name: str = "ANONYMOUS",
    series_description: str = "autocar synthetic",
    compress: bool = False,
) -> Path:
    """Write a multi-frame X-ray Angiographic Image Storage file.

    Parameters
    ----------
    path : str or Path
        Output file (written atomically: temporary file then ``os.replace``).
    frames : (T, H, W) or (H, W) ndarray of uint8 or uint16
        MONOCHROME2 grey levels; ``H, W`` must equal ``view.rows, view.columns``.
    view : CArmView
        Geometry: written as Positioner Primary/Secondary Angle, Distance
        Source to Detector/Patient, Estimated Radiographic Magnification
        Factor and Imager Pixel Spacing.
    frame_times_ms : (T,) floats, optional
        Non-decreasing times, ms. Written as Frame Time Vector (increments,
        first 0) with Frame Delay = first time, plus Frame Time = mean
        interval; the Frame Increment Pointer points to the vector. Default:
        15 frames/s, written as Frame Time and Cine Rate.
    cardiac_phase : (T,) floats in [0, 1], optional
        Stored in the private block ``"AUTOCAR 1.0"`` of group 0x0019 (DS,
        one value per frame); :func:`read_xa` reads it back.
    patient_name, series_description : str
        Written as given.
    compress : bool
        True writes RLE Lossless (1.2.840.10008.1.2.5, pydicom's native
        encoder; no JPEG-lossless encoder is installed); False writes
        Explicit VR Little Endian.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ShapeError
        Frames of the wrong shape or dtype, or series of the wrong length.
    DicomGeometryError
        Non-finite or decreasing times, phases outside [0, 1].
    """
    pydicom = _pydicom()
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    path = Path(path)
    if not isinstance(view, CArmView):
        raise DicomGeometryError(f"view must be a CArmView, got {type(view).__name__}")
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ShapeError(f"frames must have shape (T, H, W), got {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ShapeError(f"frames must be uint8 or uint16, got {arr.dtype}")
    if arr.shape[1:] != view.shape:
        raise ShapeError(
            f"frames are {arr.shape[1]} x {arr.shape[2]} px but the view has rows x columns = "
            f"{view.rows} x {view.columns}"
        )
    n = arr.shape[0]
    if n < 1:
        raise ShapeError("frames must hold at least one frame")

    def series(name: str, values: Any) -> np.ndarray | None:
        if values is None:
            return None
        try:
            s = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DicomGeometryError(f"{name} must hold numbers") from None
        if s.shape != (n,):
            raise ShapeError(f"{name} has {s.size} values for {n} frames")
        if not np.all(np.isfinite(s)):
            raise DicomGeometryError(f"{name} must be finite")
        return s

    times = series("frame_times_ms", frame_times_ms)
    if times is not None and np.any(np.diff(times) < 0):
        raise DicomGeometryError("frame_times_ms must be non-decreasing")
    phase = series("cardiac_phase", cardiac_phase)
    if phase is not None and (phase.min() < 0 or phase.max() > 1):
        raise DicomGeometryError(f"cardiac_phase must be in [0, 1], got [{phase.min()}, {phase.max()}]")

    now = datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XA_SOP_CLASS_UID
    sop_uid = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.SOPClassUID = XA_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = "XA"
    ds.Manufacturer = "autocar"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    # XA/XRF Acquisition (C.8.7.2) and XA Positioner (C.8.7.5) modules.
    ds.KVP = ""
    ds.RadiationSetting = "GR"
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = _ds(view.primary_deg)
    ds.PositionerSecondaryAngle = _ds(view.secondary_deg)
    ds.DistanceSourceToDetector = _ds(view.sid_mm)
    ds.DistanceSourceToPatient = _ds(view.sod_mm)
    ds.EstimatedRadiographicMagnificationFactor = _ds(view.magnification)
    ds.ImagerPixelSpacing = [_ds(view.spacing_mm[0]), _ds(view.spacing_mm[1])]
    # Multi-frame and cine modules (C.7.6.6, C.7.6.5).
    ds.NumberOfFrames = n
    if times is None:
        ds.FrameTime = _ds(1000.0 / DEFAULT_FPS)
        ds.CineRate = int(DEFAULT_FPS)
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    else:
        inc = np.concatenate([[0.0], np.diff(times)])
        ds.FrameTimeVector = [_ds(x) for x in inc]
        ds.FrameDelay = _ds(times[0])
        if n > 1 and times[-1] > times[0]:
            ds.FrameTime = _ds((times[-1] - times[0]) / (n - 1))
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")
    if phase is not None:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        block.add_new(_PHASE_ELEMENT, "DS", [_ds(x) for x in phase])
    # Image pixel module (C.7.6.3).
    bits = 8 * arr.dtype.itemsize
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = view.rows
    ds.Columns = view.columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LIN"
    data = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    ds.PixelData = data.tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    if compress:
        pixels = data if n > 1 else data[0]
        try:
            ds.compress(RLELossless, pixels, generate_instance_uid=False)
        except TypeError:  # pydicom < 3 has no generate_instance_uid (and keeps the UID)
            ds.compress(RLELossless, pixels)

    buf = io.BytesIO()
    try:
        ds.save_as(buf, enforce_file_format=True)
    except TypeError:  # pydicom < 3 spells it write_like_original=False
        ds.save_as(buf, write_like_original=False)
    return atomic_write_bytes(path, buf.getvalue())


def write_case_xa(
    case: Any, folder: str | Path, *, compress: bool = False, series_description: str = "autocar synthetic"
) -> list[Path]:
    """Write every image view of a case (:class:`autocar.io.case.Case`) as ``folder/NAME.dcm``.

    Each view's frames, geometry, frame times and cardiac phase go through
    :func:`write_xa`, with the series description ``"<series_description> view NAME"``.
    ``folder`` is created. Returns the files, in the case's view order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_xa(folder / f"{cv.name}.dcm", cv.frames, cv.view, frame_times_ms=cv.frame_times_ms,
                 cardiac_phase=cv.cardiac_phase, series_description=f"{series_description} view {cv.name}",
                 compress=compress)
        for cv in case.views
    ]


# -------------------------------------------------------------- discovery
def _has_dicm_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def find_xa_files(folder: str | Path) -> list[Path]:
    """XA DICOM files directly inside ``folder``, sorted by name.

    A file counts when it has the DICOM Part 10 preamble (``"DICM"`` at byte
    128; any file name, extension or none) and its SOP Class UID is XA or
    Enhanced XA (or, without SOP Class, Modality is ``"XA"``). Sub-folders
    are not searched.

    Raises
    ------
    DicomGeometryError
        ``folder`` is not a folder.
    """
    pydicom = _pydicom()
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomGeometryError(f"{folder}: not a folder")
    found = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or not _has_dicm_preamble(p):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"])
        except Exception:  # unreadable DICOM: not an XA candidate; read_xa would say why
            continue
        sop = str(ds.get("SOPClassUID", "") or "")
        if sop in _XA_CLASSES or (not sop and str(ds.get("Modality", "")) == "XA"):
            found.append(p)
    return found


def _stationary_frames(path: Path, seq: XASequence, max_change_deg: float) -> tuple[np.ndarray, CArmView]:
    """Indices of the frames taken at (about) the first frame's pose, and the view for them."""
    n = seq.num_frames
    angles = seq.per_frame_angles_deg
    if angles is None:
        return np.arange(n), seq.view
    change = np.abs(angles - angles[0]).max(axis=1)
    keep = np.flatnonzero(change <= max_change_deg)
    if keep.size < n:
        _warn(f"{path}: the C-arm moves during the run (per-frame angles change by up to {change.max():.1f} deg); "
              f"kept the {keep.size} of {n} frames within {max_change_deg:g} deg of the first frame's pose")
    mean = angles[keep].mean(axis=0)
    return keep, seq.view.replace(primary_deg=float(mean[0]), secondary_deg=float(mean[1]))


def case_from_dicom_dir(
    dicom_dir: str | Path,
    *,
    pixel_spacing_mm: float | tuple[float, float] | None = None,
    tree: str | None = None,
    files: Sequence[str | Path] | None = None,
    max_angle_change_deg: float = 1.0,
) -> Any:
    """The in-memory :class:`autocar.io.case.Case` (kind image) of a folder with two XA runs.

    Same rules and errors as :func:`dicom_dir_to_case`, which writes it to disk.
    When a file gives per-frame positioner angles (Enhanced XA per-frame
    groups or the Angle Increment tags), only the frames within
    ``max_angle_change_deg`` of the first frame's pose are kept (the C-arm
    must stand still for a two-view reconstruction), with a
    :class:`DicomGeometryWarning` naming the file and the frames dropped, and
    the view uses the mean angles of the kept frames.
    """
    from autocar.io.case import Case, CaseView

    dicom_dir = Path(dicom_dir)
    if files is None:
        paths = find_xa_files(dicom_dir)
        if len(paths) != 2:
            listed = ", ".join(p.name for p in paths) or "none"
            raise DicomGeometryError(
                f"{dicom_dir}: expected exactly 2 XA DICOM files (one multi-frame run per view), found "
                f"{len(paths)}: {listed}; choose two with files=[...]"
            )
    else:
        paths = []
        for f in files:
            p = Path(f)
            # A bare name refers to the DICOM folder first, then to the working directory.
            paths.append(dicom_dir / p if not p.is_absolute() and (dicom_dir / p).exists() else p)
        if len(paths) != 2:
            raise DicomGeometryError(f"files must name exactly 2 XA files, got {len(paths)}: {list(files)}")
    views = []
    source: dict[str, Any] = {}
    for name, p in zip(("A", "B"), paths):
        seq = read_xa(p, pixel_spacing_mm=pixel_spacing_mm)
        keep, view = _stationary_frames(p, seq, max_angle_change_deg)
        try:
            views.append(
                CaseView(
                    name=name,
                    view=view,
                    kind="image",
                    frames=seq.frames[keep],
                    frame_times_ms=seq.frame_times_ms[keep],
                    cardiac_phase=None if seq.cardiac_phase is None else seq.cardiac_phase[keep],
                )
            )
        except (CaseFormatError, ShapeError) as exc:
            raise DicomGeometryError(f"{p}: cannot be used as view {name}: {exc}") from None
        entry: dict[str, Any] = {"file": p.name, "spacing_source": seq.spacing_source}
        if seq.description:
            entry["description"] = seq.description
        if seq.per_frame_angles_deg is not None:
            entry["per_frame_angles_deg"] = seq.per_frame_angles_deg.tolist()
        source[name] = entry
    return Case(views=tuple(views), tree=tree, metadata={"source": source})


def dicom_dir_to_case(
    dicom_dir: str | Path,
    case_dir: str | Path,
    *,
    pixel_spacing_mm: float | tuple[float, float] | None = None,
    tree: str | None = None,
    overwrite: bool = False,
    files: Sequence[str | Path] | None = None,
) -> Path:
    """Convert a folder holding two XA runs (one multi-frame file per view) into a case folder.

    Parameters
    ----------
    dicom_dir : str or Path
        Folder with the XA files (see :func:`find_xa_files`).
    case_dir : str or Path
        CASE_FORMAT v1 folder to create (atomically).
    pixel_spacing_mm : float or (float, float), optional
        Detector spacing override for both files (see :func:`read_xa`).
    tree : {"left", "right"}, optional
        Which coronary tree the case shows.
    overwrite : bool
        Replace an existing ``case_dir``.
    files : sequence of two str or Path, optional
        Which files to use (names inside ``dicom_dir`` or paths) when the
        folder holds more than two XA files; their order gives views A and B.

    Returns
    -------
    Path
        ``case_dir``. Views ``"A"`` and ``"B"`` (sorted file names unless
        ``files`` is given) of kind ``"image"``, frames as 8- or 16-bit PNG,
        with frame times and, when known, cardiac phases. The metadata key
        ``"source"`` records, per view, the DICOM file name, its
        ``spacing_source`` and description.

    Raises
    ------
    DicomGeometryError
        Not exactly two XA files (listing those found), or a file that
        :func:`read_xa` rejects.
    CaseFormatError, FileExistsError
        From :func:`autocar.io.case.write_case`.
    """
    from autocar.io.case import write_case

    case = case_from_dicom_dir(dicom_dir, pixel_spacing_mm=pixel_spacing_mm, tree=tree, files=files)
    return write_case(case, case_dir, overwrite=overwrite)


# ---------------------------------------------------------------- display
def describe_xa(seq: XASequence) -> str:
    """Multi-line human-readable summary of an XA run (for ``autocar info``)."""
    v = seq.view
    fps = seq.frame_rate_fps
    lines = [
        f"file:          {seq.path}",
        f"device/series: {seq.description or 'unknown'}",
        f"frames:        {seq.num_frames} of {v.rows} x {v.columns} px"
        + (f", {seq.frames.dtype}" if seq.frames is not None else " (header only)"),
        f"angles:        {v.label} (primary {v.primary_deg:g} deg, secondary {v.secondary_deg:g} deg)",
        f"SID / SOD:     {v.sid_mm:g} mm / {v.sod_mm:g} mm (magnification {v.magnification:.4g})",
        f"pixel spacing: {v.spacing_mm[0]:.6g} x {v.spacing_mm[1]:.6g} mm at the detector "
        f"(from {seq.spacing_source}); {v.isocenter_spacing_mm[0]:.4g} mm at the isocentre",
        f"frame rate:    {f'{fps:.4g} frames/s' if fps else 'n/a'}"
        + (f", duration {seq.frame_times_ms[-1] - seq.frame_times_ms[0]:.1f} ms" if seq.num_frames > 1 else ""),
        f"cardiac phase: {'available' if seq.cardiac_phase is not None else 'not available'}",
    ]
    if seq.per_frame_angles_deg is not None:
        a = seq.per_frame_angles_deg
        lines.append(
            f"moving C-arm:  primary {a[:, 0].min():g}..{a[:, 0].max():g} deg, "
            f"secondary {a[:, 1].min():g}..{a[:, 1].max():g} deg"
        )
    return "\n".join(lines)
