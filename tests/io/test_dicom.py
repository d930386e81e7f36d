"""DICOM XA reading/writing: real GE phantom files, round trips, tag fall-backs, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from autocar.errors import DicomGeometryError, ShapeError
from autocar.geometry.carm import CArmView
from autocar.io.dicom import (
    ENHANCED_XA_SOP_CLASS_UID,
    XA_SOP_CLASS_UID,
    DicomGeometryWarning,
    describe_xa,
    dicom_dir_to_case,
    find_xa_files,
    read_xa,
    write_xa,
)

VIEW = CArmView(30.5, -20.25, 1100.0, 750.0, (0.3, 0.31), 24, 20)
TIMES = np.array([10.0, 76.6, 143.3, 210.0, 276.7, 343.3])
PHASE = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 0.95])


def _frames(dtype=np.uint8, n=6, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, (n, VIEW.rows, VIEW.columns), endpoint=True).astype(dtype)


def _write(tmp_path: Path, name: str = "x.dcm", **kw) -> Path:
    kw.setdefault("frame_times_ms", TIMES)
    frames = kw.pop("frames", _frames())
    return write_xa(tmp_path / name, frames, VIEW, **kw)


def _edit(path: Path, fn) -> Path:
    ds = pydicom.dcmread(path)
    fn(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


# ------------------------------------------------------------- real files
@pytest.mark.parametrize(
    "name, n, primary, secondary, sid",
    [("IM1.dcm", 14, 31.3, 0.1, 860.0), ("IM2.dcm", 12, -27.3, -0.1, 865.0)],
)
def test_real_ge_phantom(shared_data, name, n, primary, secondary, sid):
    path = shared_data / "xa-dicom-phantom" / name
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomGeometryWarning)  # ERMF 1.194 = 860/720: consistent
        seq = read_xa(path)
    v = seq.view
    assert v.primary_deg == pytest.approx(primary)
    assert v.secondary_deg == pytest.approx(secondary)
    assert v.sid_mm == pytest.approx(sid)
    assert v.sod_mm == pytest.approx(720.0)
    # No ImagerPixelSpacing: FieldOfViewDimensions 200 mm / 512 px.
    assert v.spacing_mm == pytest.approx((0.390625, 0.390625))
    assert seq.spacing_source == "FieldOfViewDimensions/Rows,Columns"
    assert (v.rows, v.columns) == (512, 512)
    assert seq.frames.shape == (n, 512, 512) and seq.frames.dtype == np.uint8
    assert seq.frames.max() - seq.frames.min() > 100 and seq.frames.std() > 5
    assert not np.array_equal(seq.frames[0], np.zeros_like(seq.frames[0]))
    # FrameTime 66.6667 ms.
    np.testing.assert_allclose(seq.frame_times_ms, 66.6667 * np.arange(n), atol=1e-9)
    assert seq.frame_rate_fps == pytest.approx(15.0, rel=1e-5)
    assert seq.cardiac_phase is None and seq.per_frame_angles_deg is None
    assert "GE MEDICAL SYSTEMS" in seq.description
    rc, depth = v.project(np.zeros((1, 3)))
    np.testing.assert_allclose(rc, [[255.5, 255.5]])
    np.testing.assert_allclose(depth, [720.0])
    text = describe_xa(seq)
    assert v.label in text and "FieldOfViewDimensions" in text and "not available" in text
    assert f"{sid:g} mm" in text


def test_real_header_only_and_override(shared_data):
    path = shared_data / "xa-dicom-phantom" / "IM1.dcm"
    seq = read_xa(path, load_pixels=False, pixel_spacing_mm=(0.2, 0.25))
    assert seq.frames is None and seq.num_frames == 14
    assert seq.view.spacing_mm == (0.2, 0.25) and seq.spacing_source == "override"
    assert "header only" in describe_xa(seq)


def test_real_dicom_dir_to_case(shared_data, tmp_path):
    from autocar.io.case import read_case

    folder = shared_data / "xa-dicom-phantom"
    assert [p.name for p in find_xa_files(folder)] == ["IM1.dcm", "IM2.dcm"]
    out = dicom_dir_to_case(folder, tmp_path / "case", tree="left")
    case = read_case(out)
    assert [cv.name for cv in case.views] == ["A", "B"] and case.tree == "left"
    a, b = case.view_named("A"), case.view_named("B")
    assert a.kind == "image" and a.num_frames == 14 and b.num_frames == 12
    assert a.view.primary_deg == pytest.approx(31.3) and b.view.primary_deg == pytest.approx(-27.3)
    assert b.view.sid_mm == pytest.approx(865.0) and a.view.spacing_mm == pytest.approx((0.390625, 0.390625))
    np.testing.assert_array_equal(a.frames, read_xa(folder / "IM1.dcm").frames)
    np.testing.assert_allclose(b.frame_times_ms, 66.6667 * np.arange(12), atol=1e-9)
    assert a.cardiac_phase is None
    src = case.metadata["source"]
    assert src["A"]["file"] == "IM1.dcm" and src["B"]["file"] == "IM2.dcm"
    assert src["A"]["spacing_source"] == "FieldOfViewDimensions/Rows,Columns"
    with pytest.raises(FileExistsError):
        dicom_dir_to_case(folder, tmp_path / "case")


# ------------------------------------------------------------- round trip
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, dtype, compress):
    frames = _frames(dtype)
    path = write_xa(tmp_path / "rt.dcm", frames, VIEW, frame_times_ms=TIMES, cardiac_phase=PHASE, compress=compress)
    assert not [p for p in tmp_path.iterdir() if p.name != "rt.dcm"]  # no temporary file left
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == XA_SOP_CLASS_UID and ds.Modality == "XA"
    assert ds.file_meta.TransferSyntaxUID == ("1.2.840.10008.1.2.5" if compress else "1.2.840.10008.1.2.1")
    assert ds.BitsStored == 8 * np.dtype(dtype).itemsize and int(ds.NumberOfFrames) == 6
    assert ds.FrameIncrementPointer == pydicom.tag.Tag("FrameTimeVector")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomGeometryWarning)
        seq = read_xa(path)
    assert seq.frames.dtype == dtype
    np.testing.assert_array_equal(seq.frames, frames)
    assert seq.view == VIEW
    assert seq.spacing_source == "ImagerPixelSpacing"
    np.testing.assert_allclose(seq.frame_times_ms, TIMES, rtol=0, atol=1e-9)
    np.testing.assert_allclose(seq.cardiac_phase, PHASE, rtol=0, atol=1e-12)
    assert seq.per_frame_angles_deg is None and "autocar synthetic" in seq.description


def test_default_times_and_single_frame(tmp_path):
    path = _write(tmp_path, frame_times_ms=None)
    seq = read_xa(path)
    np.testing.assert_allclose(seq.frame_times_ms, np.arange(6) * 1000.0 / 15.0, atol=1e-9)
    assert seq.cardiac_phase is None
    one = write_xa(tmp_path / "one.dcm", _frames(n=1)[0], VIEW)
    with pytest.raises(DicomGeometryError, match=r"one\.dcm.*NumberOfFrames is 1"):
        read_xa(one)
    seq1 = read_xa(one, require_multiframe=False)
    assert seq1.frames.shape == (1, 24, 20) and seq1.frame_rate_fps is None


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ShapeError, match="rows x columns"):
        write_xa(tmp_path / "a.dcm", np.zeros((2, 10, 10), np.uint8), VIEW)
    with pytest.raises(ShapeError, match="uint8 or uint16"):
        write_xa(tmp_path / "a.dcm", np.zeros((2, 24, 20), np.float32), VIEW)
    with pytest.raises(ShapeError, match="3 values for 2 frames"):
        write_xa(tmp_path / "a.dcm", np.zeros((2, 24, 20), np.uint8), VIEW, frame_times_ms=[0, 1, 2])
    with pytest.raises(DicomGeometryError, match="cardiac_phase"):
        write_xa(tmp_path / "a.dcm", np.zeros((2, 24, 20), np.uint8), VIEW, cardiac_phase=[0.0, 1.5])
    with pytest.raises(DicomGeometryError, match="non-decreasing"):
        write_xa(tmp_path / "a.dcm", np.zeros((2, 24, 20), np.uint8), VIEW, frame_times_ms=[5.0, 1.0])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------- pixel spacing
def test_spacing_fallbacks(tmp_path):
    def drop_ips(ds):
        del ds.ImagerPixelSpacing

    p = _edit(_write(tmp_path, "fov.dcm"), lambda ds: (drop_ips(ds), setattr(ds, "FieldOfViewDimensions", [12, 10])))
    seq = read_xa(p)
    assert seq.view.spacing_mm == pytest.approx((12 / 24, 10 / 20))
    assert seq.spacing_source == "FieldOfViewDimensions/Rows,Columns"

    p = _edit(_write(tmp_path, "ii.dcm"), lambda ds: (drop_ips(ds), setattr(ds, "IntensifierSize", "9.6")))
    seq = read_xa(p)
    assert seq.view.spacing_mm == pytest.approx((0.4, 0.4))
    assert seq.spacing_source == "IntensifierSize/max(Rows,Columns)"

    def iso_only(ds):
        drop_ips(ds)
        del ds.EstimatedRadiographicMagnificationFactor
        ds.PixelSpacing = ["0.2", "0.2"]

    seq = read_xa(_edit(_write(tmp_path, "ps.dcm"), iso_only))
    assert seq.view.spacing_mm == pytest.approx((0.2 * 1100 / 750, 0.2 * 1100 / 750))
    assert seq.spacing_source == "PixelSpacing*SID/SOD"

    def iso_erm(ds):
        iso_only(ds)
        ds.EstimatedRadiographicMagnificationFactor = "1.5"

    seq = read_xa(_edit(_write(tmp_path, "pse.dcm"), iso_erm))
    assert seq.view.spacing_mm == pytest.approx((0.3, 0.3))
    assert seq.spacing_source == "PixelSpacing*EstimatedRadiographicMagnificationFactor"

    p = _edit(_write(tmp_path, "none.dcm"), drop_ips)
    tried = r"none\.dcm.*ImagerPixelSpacing.*FieldOfViewDimensions.*IntensifierSize.*pixel_spacing_mm"
    with pytest.raises(DicomGeometryError, match=tried):
        read_xa(p)
    assert read_xa(p, pixel_spacing_mm=0.25).view.spacing_mm == (0.25, 0.25)
    with pytest.raises(DicomGeometryError, match="pixel_spacing_mm"):
        read_xa(p, pixel_spacing_mm=-1.0)


def test_contradictory_tags_warn_primary_wins(tmp_path):
    # ImagerPixelSpacing 0.3 vs FieldOfViewDimensions 12 mm / 24 px = 0.5 mm.
    p = _edit(_write(tmp_path, "c.dcm"), lambda ds: setattr(ds, "FieldOfViewDimensions", [12, 10]))
    with pytest.warns(DicomGeometryWarning, match=r"c\.dcm.*ImagerPixelSpacing.*FieldOfViewDimensions"):
        seq = read_xa(p)
    assert seq.view.spacing_mm == (0.3, 0.31)
    # Within 10 %: no warning.
    p = _edit(_write(tmp_path, "ok.dcm"), lambda ds: setattr(ds, "FieldOfViewDimensions", [7, 6]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomGeometryWarning)
        read_xa(p)
    p = _edit(_write(tmp_path, "m.dcm"), lambda ds: setattr(ds, "EstimatedRadiographicMagnificationFactor", "2.0"))
    with pytest.warns(DicomGeometryWarning, match="EstimatedRadiographicMagnificationFactor"):
        seq = read_xa(p)
    assert seq.view.sid_mm == 1100.0 and seq.view.sod_mm == 750.0


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda ds: delattr(ds, "PositionerPrimaryAngle"), "PositionerPrimaryAngle"),
        (lambda ds: delattr(ds, "PositionerSecondaryAngle"), "PositionerSecondaryAngle"),
        (lambda ds: delattr(ds, "DistanceSourceToDetector"), "DistanceSourceToDetector"),
        (lambda ds: delattr(ds, "DistanceSourceToPatient"), "DistanceSourceToPatient"),
        (lambda ds: setattr(ds, "DistanceSourceToDetector", "NaN"), "DistanceSourceToDetector"),
        (lambda ds: setattr(ds, "DistanceSourceToPatient", "-750"), "DistanceSourceToPatient.*> 0"),
        (lambda ds: setattr(ds, "DistanceSourceToDetector", "700"), "DistanceSourceToDetector.*larger"),
        (lambda ds: setattr(ds, "PositionerSecondaryAngle", "120"), "PositionerSecondaryAngle"),
        (lambda ds: setattr(ds, "FrameTimeVector", ["0", "1"]), "FrameTimeVector has 2 values"),
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_bad_geometry_tags(tmp_path, edit, pattern):
    p = _edit(_write(tmp_path, "bad.dcm"), edit)
    with pytest.raises(DicomGeometryError, match=rf"bad\.dcm.*{pattern}"):
        read_xa(p)


def test_not_xa_rejected(tmp_path):
    def to_ct(ds):
        ds.Modality = "CT"
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID

    p = _edit(_write(tmp_path, "ct.dcm"), to_ct)
    with pytest.raises(DicomGeometryError, match=r"ct\.dcm.*Modality is 'CT'"):
        read_xa(p)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 20)
    with pytest.raises(DicomGeometryError, match=r"junk\.dcm.*not a DICOM file"):
        read_xa(junk)
    with pytest.raises(DicomGeometryError, match="no such file"):
        read_xa(tmp_path / "missing.dcm")
    assert find_xa_files(tmp_path) == []  # CT and junk are not XA


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_file(tmp_path, compress):
    p = _write(tmp_path, "t.dcm", frames=_frames(np.uint16), compress=compress)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DicomGeometryError, match=r"t\.dcm"):
        read_xa(p)


# ------------------------------------------------ times, phase, per frame
def test_frame_time_fallbacks(tmp_path):
    def only(keep: str | None, value=None):
        def fn(ds):
            for k in ("FrameTimeVector", "FrameTime", "FrameDelay", "CineRate", "RecommendedDisplayFrameRate"):
                if k in ds:
                    delattr(ds, k)
            if keep:
                setattr(ds, keep, value)
        return fn

    cases = [("FrameTime", "40", 40.0), ("CineRate", 25, 40.0), ("RecommendedDisplayFrameRate", 10, 100.0)]
    for keep, value, dt in cases:
        seq = read_xa(_edit(_write(tmp_path, f"{keep}.dcm"), only(keep, value)))
        np.testing.assert_allclose(seq.frame_times_ms, dt * np.arange(6))
    p = _edit(_write(tmp_path, "none.dcm"), only(None))
    with pytest.warns(DicomGeometryWarning, match="assuming 15 frames/s"):
        seq = read_xa(p)
    np.testing.assert_allclose(seq.frame_times_ms, np.arange(6) * 1000 / 15)


def test_phase_from_r_waves(tmp_path):
    times = 100.0 * np.arange(8)
    frames = _frames(n=8)
    p = write_xa(tmp_path / "r.dcm", frames, VIEW, frame_times_ms=times)
    _edit(p, lambda ds: setattr(ds, "RWavePointer", [2, 6]))  # R waves at frames index 1 and 5
    seq = read_xa(p)
    # RR = 400 ms; frame 0 is 100 ms before the first R wave -> 0.75.
    np.testing.assert_allclose(seq.cardiac_phase, [0.75, 0.0, 0.25, 0.5, 0.75, 0.0, 0.25, 0.5])
    # One R wave: the period comes from HeartRate (120 bpm = 500 ms).
    _edit(p, lambda ds: (setattr(ds, "RWavePointer", [3]), setattr(ds, "HeartRate", 120)))
    np.testing.assert_allclose(read_xa(p).cardiac_phase, [0.6, 0.8, 0.0, 0.2, 0.4, 0.6, 0.8, 0.0])
    # The private autocar phase wins over R waves.
    p2 = write_xa(tmp_path / "r2.dcm", frames, VIEW, frame_times_ms=times, cardiac_phase=np.linspace(0, 0.7, 8))
    _edit(p2, lambda ds: setattr(ds, "RWavePointer", [2, 6]))
    np.testing.assert_allclose(read_xa(p2).cardiac_phase, np.linspace(0, 0.7, 8))
    with pytest.raises(DicomGeometryError, match="RWavePointer"):
        read_xa(_edit(p, lambda ds: setattr(ds, "RWavePointer", [0, 9])))


def test_private_phase_coexists_with_vendor_block(tmp_path):
    def vendor_first(ds):
        # A vendor block already using the group (as GE files do): ours must still be found.
        ds.add_new(0x00190010, "LO", "GEMS_DL_IMG_01")
        ds.add_new(0x00191001, "DS", "7")

    frames = _frames()
    p = write_xa(tmp_path / "v.dcm", frames, VIEW, cardiac_phase=PHASE)
    ds = pydicom.dcmread(p)
    assert ds.private_block(0x0019, "AUTOCAR 1.0") is not None
    # Rewrite with the GE block in slot 0x10 and ours moved to 0x11.
    ds2 = pydicom.dcmread(p)
    for elem in list(ds2.group_dataset(0x0019)):
        del ds2[elem.tag]
    vendor_first(ds2)
    block = ds2.private_block(0x0019, "AUTOCAR 1.0", create=True)
    block.add_new(0x01, "DS", [f"{x:g}" for x in PHASE])
    ds2.save_as(p, enforce_file_format=True)
    assert pydicom.tag.Tag(0x00191101) in pydicom.dcmread(p)
    np.testing.assert_allclose(read_xa(p).cardiac_phase, PHASE)


def test_per_frame_angle_increments(tmp_path):
    p = _edit(_write(tmp_path, "inc1.dcm"), lambda ds: setattr(ds, "PositionerPrimaryAngleIncrement", "2.0"))
    seq = read_xa(p)
    np.testing.assert_allclose(seq.per_frame_angles_deg[:, 0], 30.5 + 2.0 * np.arange(6))
    np.testing.assert_allclose(seq.per_frame_angles_deg[:, 1], -20.25)
    offsets = [0, 1, 3, 6, 10, 15]

    def absolute(ds):  # C.8.7.5.1.3 note: absolute angles in the increments, base angles 0
        ds.PositionerPrimaryAngle = "0"
        ds.PositionerSecondaryAngle = "0"
        ds.PositionerPrimaryAngleIncrement = [str(-40 + o) for o in offsets]
        ds.PositionerSecondaryAngleIncrement = [str(o) for o in offsets]

    seq = read_xa(_edit(_write(tmp_path, "incv.dcm"), absolute))
    np.testing.assert_allclose(seq.per_frame_angles_deg, np.stack([-40 + np.array(offsets), offsets], 1))
    assert seq.view.primary_deg == -40 and seq.view.secondary_deg == 0  # first frame's angles
    assert "moving C-arm" in describe_xa(seq)


def test_enhanced_xa_functional_groups(tmp_path):
    def enhance(ds):
        ds.SOPClassUID = ENHANCED_XA_SOP_CLASS_UID
        ds.file_meta.MediaStorageSOPClassUID = ENHANCED_XA_SOP_CLASS_UID
        for k in ("PositionerPrimaryAngle", "PositionerSecondaryAngle", "DistanceSourceToPatient",
                  "DistanceSourceToDetector", "ImagerPixelSpacing"):
            delattr(ds, k)
        geo = Dataset()
        geo.DistanceSourceToIsocenter = 740.0
        geo.DistanceSourceToDetector = "1000"
        props = Dataset()
        props.ImagerPixelSpacing = ["0.2", "0.2"]
        shared = Dataset()
        shared.XRayGeometrySequence = DicomSequence([geo])
        shared.FramePixelDataPropertiesSequence = DicomSequence([props])
        ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
        per = []
        for k in range(6):
            pos = Dataset()
            pos.PositionerPrimaryAngle = str(10 + k)
            pos.PositionerSecondaryAngle = str(-5 - k)
            item = Dataset()
            item.PositionerPositionSequence = DicomSequence([pos])
            per.append(item)
        ds.PerFrameFunctionalGroupsSequence = DicomSequence(per)

    seq = read_xa(_edit(_write(tmp_path, "enh.dcm"), enhance), load_pixels=False)
    v = seq.view
    assert (v.primary_deg, v.secondary_deg, v.sid_mm, v.sod_mm) == (10.0, -5.0, 1000.0, 740.0)
    assert v.spacing_mm == (0.2, 0.2)
    np.testing.assert_allclose(seq.per_frame_angles_deg[:, 0], 10 + np.arange(6))


def test_monochrome1_inverted(tmp_path):
    frames = _frames()
    p = _write(tmp_path, "m1.dcm", frames=frames)
    _edit(p, lambda ds: setattr(ds, "PhotometricInterpretation", "MONOCHROME1"))
    np.testing.assert_array_equal(read_xa(p).frames, 255 - frames)


# ------------------------------------------------------- folder to case
def test_dicom_dir_to_case_synthetic(tmp_path):
    from autocar.io.case import read_case

    src = tmp_path / "dicom"
    src.mkdir()
    frames = _frames(np.uint16)
    write_xa(src / "run_b", frames, VIEW.replace(primary_deg=-30.0), frame_times_ms=TIMES, cardiac_phase=PHASE)
    write_xa(src / "run_a", frames[:4], VIEW, frame_times_ms=TIMES[:4])
    (src / "notes.txt").write_text("hello")
    assert [p.name for p in find_xa_files(src)] == ["run_a", "run_b"]
    case = read_case(dicom_dir_to_case(src, tmp_path / "case"))
    a, b = case.view_named("A"), case.view_named("B")
    assert a.view == VIEW and b.view.primary_deg == -30.0
    assert a.frames.dtype == np.uint16
    np.testing.assert_array_equal(b.frames, frames)
    np.testing.assert_allclose(b.cardiac_phase, PHASE)
    assert a.cardiac_phase is None
    assert case.metadata["source"]["B"] == {
        "file": "run_b", "spacing_source": "ImagerPixelSpacing", "description": "autocar, autocar synthetic"
    }
    write_xa(src / "run_c", frames, VIEW.replace(primary_deg=60.0))
    with pytest.raises(DicomGeometryError, match="found 3: run_a, run_b, run_c"):
        dicom_dir_to_case(src, tmp_path / "case2")
    case = read_case(dicom_dir_to_case(src, tmp_path / "case2", files=["run_c", "run_a"]))
    assert case.view_named("A").view.primary_deg == 60.0
    assert case.metadata["source"]["B"]["file"] == "run_a"


def test_moving_c_arm_frames_are_dropped_with_a_warning(tmp_path):
    from autocar.io.dicom import case_from_dicom_dir

    src = tmp_path / "dicom"
    src.mkdir()
    frames = _frames()
    write_xa(src / "a.dcm", frames, VIEW, frame_times_ms=TIMES, cardiac_phase=PHASE)
    write_xa(src / "b.dcm", frames, VIEW.replace(primary_deg=-30.0), frame_times_ms=TIMES)

    def drift(ds):  # still for 3 frames (0.5 deg wobble), then the gantry turns
        ds.PositionerPrimaryAngleIncrement = ["0", "0.5", "-0.4", "5", "10", "15"]

    _edit(src / "a.dcm", drift)
    with pytest.warns(DicomGeometryWarning, match=r"a\.dcm: the C-arm moves.*kept the 3 of 6 frames"):
        case = case_from_dicom_dir(src)
    a = case.view_named("A")
    assert a.num_frames == 3
    np.testing.assert_array_equal(a.frames, frames[:3])
    np.testing.assert_allclose(a.frame_times_ms, TIMES[:3])
    np.testing.assert_allclose(a.cardiac_phase, PHASE[:3])
    assert a.view.primary_deg == pytest.approx(30.5 + (0 + 0.5 - 0.4) / 3)
    assert case.view_named("B").num_frames == 6  # no per-frame angles: all kept
