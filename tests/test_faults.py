"""Every class of bad input a user can give ``autocar reconstruct``: one clear line, exit code 2,
and nothing left at the output path that looks like a result.

Runs the real command line (in-process with typer's runner; the killed run in a real
process). The inputs are made here: a small good mask case and a good DICOM pair, then
broken one way each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autocar.io.dicom import write_case_xa
from autocar.io.images import write_frame
from autocar.synth.cases import SynthCaseConfig, synthesize_case, write_synth_case
from test_cli import assert_clean_error, assert_ok, invoke  # tests/ is on sys.path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faults")
    mask = synthesize_case(SynthCaseConfig(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)), rng=4_500_000)
    write_synth_case(mask, root / "masks")
    image = synthesize_case(SynthCaseConfig(frames=2, kind="image", n_stenoses=0), rng=4_500_001)
    write_case_xa(image.case, root / "dicom")
    return {"masks": root / "masks", "dicom": root / "dicom", "root": root}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _refused(tmp_path: Path, source: Path, *needles: str) -> str:
    out = tmp_path / "result"
    line = assert_clean_error(invoke("reconstruct", source, "-o", out, "--static"), *needles)
    assert not out.exists(), "a refused run left something at the output path"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".result")], "a temporary folder was left"
    return line


def test_truncated_dicom(inputs, tmp_path):
    folder = _copy(inputs["dicom"], tmp_path / "dicom")
    target = sorted(folder.glob("*.dcm"))[1]
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 3])
    _refused(tmp_path, folder, target.name)


def test_dicom_that_is_not_xa(inputs, tmp_path):
    import pydicom

    folder = _copy(inputs["dicom"], tmp_path / "dicom")
    target = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(target)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(target)
    _refused(tmp_path, folder, target.name, "CT Image Storage")


def test_contradictory_dicom_geometry(inputs, tmp_path):
    import pydicom

    folder = _copy(inputs["dicom"], tmp_path / "dicom")
    target = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(target)
    ds.DistanceSourceToPatient = float(ds.DistanceSourceToDetector) + 100.0  # isocentre behind the detector
    ds.save_as(target)
    _refused(tmp_path, folder, target.name)


def test_broken_case_json(inputs, tmp_path):
    folder = _copy(inputs["masks"], tmp_path / "case")
    (folder / "case.json").write_text('{"format": "autocar-case/1", "views": [')
    _refused(tmp_path, folder, "case.json")


def test_a_key_that_is_not_a_number(inputs, tmp_path):
    folder = _copy(inputs["masks"], tmp_path / "case")
    data = json.loads((folder / "case.json").read_text())
    data["views"][1]["sod_mm"] = "NaN"
    (folder / "case.json").write_text(json.dumps(data))
    _refused(tmp_path, folder, "sod_mm")


def test_frame_of_the_wrong_size(inputs, tmp_path):
    folder = _copy(inputs["masks"], tmp_path / "case")
    png = sorted((folder / "B").glob("*.png"))[0]
    write_frame(png, np.zeros((100, 120), np.uint8))
    _refused(tmp_path, folder, png.name, "100 x 120")


def test_empty_masks(inputs, tmp_path):
    folder = _copy(inputs["masks"], tmp_path / "case")
    for png in (folder / "A").glob("*.png"):
        write_frame(png, np.zeros((512, 512), np.uint8))
    _refused(tmp_path, folder, "empty")


def test_full_masks(inputs, tmp_path):
    folder = _copy(inputs["masks"], tmp_path / "case")
    for png in (folder / "B").glob("*.png"):
        write_frame(png, np.full((512, 512), 255, np.uint8))
    _refused(tmp_path, folder, "view B frame 0", "inverted")


def test_unwritable_output(inputs, tmp_path):
    out = Path("/proc/autocar-result")  # no one can create a folder in /proc, not even root
    assert_clean_error(invoke("reconstruct", inputs["masks"], "-o", out, "--static"), str(out), "cannot write")


def test_two_runs_on_one_output(inputs, tmp_path, restore_torch_threads):
    out = tmp_path / "result"
    assert_ok(invoke("reconstruct", inputs["masks"], "-o", out, "--static", "--no-report"))
    before = (out / "reconstruction.json").read_bytes()
    assert_clean_error(invoke("reconstruct", inputs["masks"], "-o", out, "--static"), str(out), "--overwrite")
    assert (out / "reconstruction.json").read_bytes() == before  # the first result is untouched


@pytest.mark.slow
def test_killed_mid_run_leaves_nothing(inputs, tmp_path):
    out = tmp_path / "result"
    proc = subprocess.Popen([sys.executable, "-m", "autocar.cli", "reconstruct", str(inputs["dicom"]), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(8.0)  # reading, segmenting or reconstructing: well before the result is written
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert all(not (p / "reconstruction.json").exists() for p in tmp_path.iterdir() if p.is_dir())
