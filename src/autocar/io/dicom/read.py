"""Reading one DICOM XA file: geometry, pixel spacing (and its fall-backs), frame times,
cardiac phase, per-frame angles and the decoded frames (:func:`read_xa`)."""


from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from autocar.errors import (
    DicomGeometryError,
    GeometryError,
)
from autocar.geometry.carm import CArmView

from autocar.io.dicom.tags import (
    CONTRADICTION_TOLERANCE,
    DEFAULT_FPS,
    ENHANCED_XA_SOP_CLASS_UID,
    PHASE_ELEMENT,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    XA_CLASSES,
    XA_SOP_CLASS_UID,
    DicomGeometryWarning,
    XASequence,
    find_tag,
    import_pydicom,
    is_empty_value,
    relative_difference,
    required_number,
    tag_number,
    tag_numbers,
    walk_items,
    warn_geometry,
)


def _spacing_pair(path: Path, keyword: str, value: Any) -> tuple[float, float]:
    arr = tag_numbers(path, keyword, value)
    if arr.size not in (1, 2):
        raise DicomGeometryError(f"{path}: tag {keyword} must hold 1 or 2 values (row, column), got {value!r}")
    if np.any(arr <= 0):
        raise DicomGeometryError(f"{path}: tag {keyword} must be > 0, got {arr.tolist()}")
    return (float(arr[0]), float(arr[-1]))


def _fov_spacing(path: Path, ds: Any, rows: int, cols: int) -> tuple[float, float] | None:
    value = find_tag(ds, "FieldOfViewDimensions")
    if is_empty_value(value):
        return None
    arr = tag_numbers(path, "FieldOfViewDimensions", value)
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
    ips = find_tag(ds, "ImagerPixelSpacing")
    if not is_empty_value(ips):
        sp = _spacing_pair(path, "ImagerPixelSpacing", ips)
        if fov is not None and max(relative_difference(sp[0], fov[0]), relative_difference(sp[1], fov[1])) > CONTRADICTION_TOLERANCE:
            warn_geometry(
                f"{path}: ImagerPixelSpacing {list(sp)} mm and FieldOfViewDimensions/(Rows, Columns) "
                f"{[round(fov[0], 6), round(fov[1], 6)]} mm disagree by more than "
                f"{CONTRADICTION_TOLERANCE:.0%}; using ImagerPixelSpacing"
            )
        return sp, "ImagerPixelSpacing"
    if fov is not None:
        return fov, "FieldOfViewDimensions/Rows,Columns"
    intensifier = tag_number(path, ds, "IntensifierSize", required=False, positive=True)
    if intensifier is not None:
        s = intensifier / max(rows, cols)
        return (s, s), "IntensifierSize/max(Rows,Columns)"
    ps = find_tag(ds, "PixelSpacing")
    if not is_empty_value(ps):
        # XA Pixel Spacing (0028,0030), when present, is usually calibrated at
        # the isocentre: scale it back to the detector plane.
        sp = _spacing_pair(path, "PixelSpacing", ps)
        erm = tag_number(path, ds, "EstimatedRadiographicMagnificationFactor", required=False, positive=True)
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
    delay = tag_number(path, ds, "FrameDelay", required=False) or 0.0
    vec = find_tag(ds, "FrameTimeVector")
    if not is_empty_value(vec):
        inc = tag_numbers(path, "FrameTimeVector", vec)
        if inc.size != n:
            raise DicomGeometryError(
                f"{path}: tag FrameTimeVector has {inc.size} values for NumberOfFrames {n}"
            )
        if np.any(inc[1:] < 0):
            raise DicomGeometryError(f"{path}: tag FrameTimeVector has negative time increments")
        # C.7.6.5.1.2: increments between frames, the first usually 0.
        return delay + np.cumsum(inc)
    k = np.arange(n, dtype=np.float64)
    ft = tag_number(path, ds, "FrameTime", required=False, positive=True)
    if ft is not None:
        return delay + k * ft
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = tag_number(path, ds, keyword, required=False, positive=True)
        if rate is not None:
            return delay + k * (1000.0 / rate)
    if n > 1:
        warn_geometry(
            f"{path}: no FrameTimeVector, FrameTime, CineRate or RecommendedDisplayFrameRate; "
            f"assuming {DEFAULT_FPS:g} frames/s"
        )
    return delay + k * (1000.0 / DEFAULT_FPS)


def _private_phase(path: Path, ds: Any, n: int) -> np.ndarray | None:
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return None
    tag = block.get_tag(PHASE_ELEMENT)
    if tag not in ds or is_empty_value(ds[tag].value):
        return None
    where = f"private tag {tag} ({PRIVATE_CREATOR!r} cardiac phase)"
    phase = tag_numbers(path, where, ds[tag].value)
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
    ptr = find_tag(ds, "RWavePointer")
    if is_empty_value(ptr):
        return None
    frames = tag_numbers(path, "RWavePointer", ptr)
    n = times.shape[0]
    if np.any(frames < 1) or np.any(frames > n) or np.any(frames != np.round(frames)):
        raise DicomGeometryError(
            f"{path}: tag RWavePointer must hold frame numbers in 1..{n}, got {frames.tolist()}"
        )
    t_r = np.unique(times[frames.astype(int) - 1])
    if t_r.size >= 2:
        period = float(np.mean(np.diff(t_r)))
    else:
        hr = tag_number(path, ds, "HeartRate", required=False, positive=True)
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
            for sub in walk_items(item):
                if "PositionerPrimaryAngle" in sub and "PositionerSecondaryAngle" in sub:
                    a, b = sub.PositionerPrimaryAngle, sub.PositionerSecondaryAngle
                    break
            if is_empty_value(a) or is_empty_value(b):
                break
            out[k] = (tag_numbers(path, "PositionerPrimaryAngle", a)[0], tag_numbers(path, "PositionerSecondaryAngle", b)[0])
        else:
            return out
    inc_a, inc_b = ds.get("PositionerPrimaryAngleIncrement"), ds.get("PositionerSecondaryAngleIncrement")
    if is_empty_value(inc_a) and is_empty_value(inc_b):
        return None
    k = np.arange(n, dtype=np.float64)
    cols = []
    for keyword, value, base in (
        ("PositionerPrimaryAngleIncrement", inc_a, primary),
        ("PositionerSecondaryAngleIncrement", inc_b, secondary),
    ):
        if is_empty_value(value):
            cols.append(np.full(n, base))
            continue
        inc = tag_numbers(path, keyword, value)
        # C.8.7.5.1.3: one value = average change per frame; T values =
        # offsets of each frame from the (initial) positioner angle.
        if inc.size == 1:
            cols.append(base + k * inc[0])
        elif inc.size == n:
            cols.append(base + inc)
        else:
            warn_geometry(f"{path}: tag {keyword} has {inc.size} values for NumberOfFrames {n} (must be 1 or {n}); ignored")
            return None
    return np.stack(cols, axis=1)


def _check_xa(path: Path, ds: Any) -> None:
    sop = str(ds.get("SOPClassUID", "") or "")
    if not sop and getattr(ds, "file_meta", None) is not None:
        sop = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    modality = str(ds.get("Modality", "") or "")
    if sop in XA_CLASSES:
        if modality and modality != "XA":
            warn_geometry(f"{path}: SOPClassUID {sop} is X-ray angiography but Modality is {modality!r}; reading as XA")
        return
    if modality == "XA" and not sop:
        return
    name = getattr(import_pydicom().uid.UID(sop), "name", sop) if sop else "absent"
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
    pydicom = import_pydicom()
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
    rows_i = int(required_number(path, ds, "Rows", positive=True))
    cols_i = int(required_number(path, ds, "Columns", positive=True))
    n = tag_number(path, ds, "NumberOfFrames", required=False, positive=True)
    n_i = int(n) if n is not None else 1
    if require_multiframe and n_i < 2:
        raise DicomGeometryError(
            f"{path}: NumberOfFrames is {n_i}; a multi-frame XA run is required (require_multiframe=False "
            f"accepts single frames)"
        )
    primary = required_number(path, ds, "PositionerPrimaryAngle")
    secondary = required_number(path, ds, "PositionerSecondaryAngle")
    sid = required_number(path, ds, "DistanceSourceToDetector", positive=True)
    sod_kw = "DistanceSourceToPatient"
    sod = tag_number(path, ds, sod_kw, required=False, positive=True)
    if sod is None and not is_empty_value(find_tag(ds, "DistanceSourceToIsocenter")):
        sod_kw = "DistanceSourceToIsocenter"
        sod = required_number(path, ds, sod_kw, positive=True)
    if sod is None:
        raise DicomGeometryError(f"{path}: required tag DistanceSourceToPatient is missing or empty")
    if sid <= sod:
        raise DicomGeometryError(
            f"{path}: DistanceSourceToDetector ({sid} mm) must be larger than {sod_kw} ({sod} mm)"
        )
    erm = tag_number(path, ds, "EstimatedRadiographicMagnificationFactor", required=False, positive=True)
    if erm is not None and relative_difference(erm, sid / sod) > CONTRADICTION_TOLERANCE:
        warn_geometry(
            f"{path}: EstimatedRadiographicMagnificationFactor {erm} disagrees with "
            f"DistanceSourceToDetector/{sod_kw} = {sid / sod:.6g} by more than {CONTRADICTION_TOLERANCE:.0%}; "
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
