"""Folders of DICOM files: finding the XA runs, turning two of them into a case folder, and
describing a run in one line."""


from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autocar.errors import (
    CaseFormatError,
    DicomGeometryError,
    ShapeError,
)
from autocar.geometry.carm import CArmView

from autocar.io.dicom.read import read_xa
from autocar.io.dicom.tags import XA_CLASSES, XASequence, import_pydicom, warn_geometry


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
    pydicom = import_pydicom()
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
        if sop in XA_CLASSES or (not sop and str(ds.get("Modality", "")) == "XA"):
            found.append(p)
    return found


def _other_dicom_files(folder: Path, xa: list[Path]) -> str:
    """The DICOM files of ``folder`` that are not among ``xa``, each with what it is instead."""
    pydicom = import_pydicom()
    out = []
    for p in sorted(folder.iterdir()):
        if p in xa or not p.is_file() or not _has_dicm_preamble(p):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"])
            sop = str(ds.get("SOPClassUID", "") or "")
            what = pydicom.uid.UID(sop).name if sop else f"Modality {ds.get('Modality', '?')}"
        except Exception as exc:  # noqa: BLE001 - any reason it cannot be read is worth naming
            what = f"unreadable: {type(exc).__name__}"
        out.append(f"{p.name} ({what})")
    return ", ".join(out)


def _stationary_frames(path: Path, seq: XASequence, max_change_deg: float) -> tuple[np.ndarray, CArmView]:
    """Indices of the frames taken at (about) the first frame's pose, and the view for them."""
    n = seq.num_frames
    angles = seq.per_frame_angles_deg
    if angles is None:
        return np.arange(n), seq.view
    change = np.abs(angles - angles[0]).max(axis=1)
    keep = np.flatnonzero(change <= max_change_deg)
    if keep.size < n:
        warn_geometry(f"{path}: the C-arm moves during the run (per-frame angles change by up to {change.max():.1f} deg); "
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
            others = _other_dicom_files(dicom_dir, paths)
            raise DicomGeometryError(
                f"{dicom_dir}: expected exactly 2 XA DICOM files (one multi-frame run per view), found "
                f"{len(paths)}: {listed}" + (f"; not X-ray angiography: {others}" if others else "")
                + "; choose two with files=[...]"
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
