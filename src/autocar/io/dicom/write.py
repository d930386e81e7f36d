"""Writing valid XA Image Storage files (:func:`write_xa`), e.g. the two runs of a case
(:func:`write_case_xa`)."""


from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autocar.errors import (
    DicomGeometryError,
    ShapeError,
)
from autocar.geometry.carm import CArmView
from autocar.io.atomic import atomic_write_bytes

from autocar.io.dicom.tags import DEFAULT_FPS, PHASE_ELEMENT, PRIVATE_CREATOR, PRIVATE_GROUP, XA_SOP_CLASS_UID, import_pydicom


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
    pydicom = import_pydicom()
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
        block.add_new(PHASE_ELEMENT, "DS", [_ds(x) for x in phase])
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
