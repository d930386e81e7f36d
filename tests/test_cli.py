"""The ``autocar`` command line, run in-process with typer's CliRunner.

One test runs the installed ``autocar`` console script in a real subprocess to
prove the entry point works; every other test calls ``autocar.cli.app``
directly. Bad input must end with exit code 2 and a single ``error:`` line on
stderr (no traceback).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from autocar.cli import app
from autocar.geometry.carm import CArmView
from autocar.io.case import read_case
from autocar.io.dicom import write_case_xa, write_xa
from autocar.io.results import read_ground_truth
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.synth.poses import PoseDistribution

runner = CliRunner()


def invoke(*args: object):
    """Run ``autocar ARGS...`` in-process; every argument is passed as a string."""
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def assert_clean_error(result, *needles: str) -> str:
    """Exit code 2, exactly one 'error: ...' line on stderr, no traceback; returns that line."""
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------ entry point
def test_console_script_help_runs_in_a_subprocess():
    scripts = Path(sysconfig.get_path("scripts"))
    exe = scripts / ("autocar.exe" if sys.platform == "win32" else "autocar")
    assert exe.is_file(), f"console script {exe} is not installed (pip install -e .)"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("synth", "info", "import-dicom", "poses-fit", "train", "demo"):
        assert command in proc.stdout, command
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ synth
@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    """``autocar synth OUT --cases 2 --frames 2`` run once for the module: (result, OUT)."""
    out = tmp_path_factory.mktemp("synth") / "cases"
    result = invoke("synth", out, "--cases", 2, "--frames", 2, "--seed", 5)
    return result, out


def test_synth_writes_readable_cases_with_ground_truth(synth_root):
    result, out = synth_root
    assert_ok(result)
    assert sorted(p.name for p in out.iterdir()) == ["case_000", "case_001"]
    for i in range(2):
        folder = out / f"case_{i:03d}"
        assert (folder / "case.json").is_file() and (folder / "ground_truth.json").is_file()
        case = read_case(folder)
        assert [cv.name for cv in case.views] == ["A", "B"]
        assert case.tree == "left" and case.num_frames == 2
        assert all(cv.kind == "mask" and cv.frames.shape == (2, *cv.view.shape) for cv in case.views)
        assert all(cv.frames.any() for cv in case.views)  # the tree is visible in every view
        assert case.metadata["synthetic"]["seed"] == 5 + i
        truth = read_ground_truth(folder)
        assert truth.num_frames == 2 and truth.frames[0].num_nodes > 10
        # one summary line per case, naming its folder and both poses
        assert str(folder) in result.stdout
        assert all(cv.view.label in result.stdout for cv in case.views)


def test_synth_bad_tree_is_a_one_line_error(tmp_path):
    out = tmp_path / "never"
    line = assert_clean_error(invoke("synth", out, "--tree", "middle", "--frames", 1), "middle")
    assert "left" in line and "right" in line
    assert not out.exists()


def test_synth_refuses_to_overwrite_an_existing_case(synth_root):
    _, out = synth_root
    before = (out / "case_000" / "case.json").read_bytes()
    assert_clean_error(invoke("synth", out, "--frames", 1, "--stenoses", 0), "case_000", "overwrite")
    assert (out / "case_000" / "case.json").read_bytes() == before


# ------------------------------------------------------------------- info
def test_info_on_a_synthetic_case(synth_root):
    _, out = synth_root
    folder = out / "case_001"
    result = invoke("info", folder)
    assert_ok(result)
    case = read_case(folder, load_frames=False)
    assert result.stdout.startswith(f"case {folder}")
    assert "tree: left" in result.stdout
    for cv in case.views:
        v = cv.view
        assert f"view {cv.name}: {v.label} (primary {v.primary_deg:+.1f}, secondary {v.secondary_deg:+.1f} deg)" in result.stdout
        assert f"SID {v.sid_mm:g} mm, SOD {v.sod_mm:g} mm" in result.stdout
    assert result.stdout.count("2 frames") == 2
    assert "15.0 fps" in result.stdout and "cardiac phase: given" in result.stdout
    assert "synthetic: seed 6" in result.stdout
    # case.json itself is accepted too
    again = invoke("info", folder / "case.json")
    assert_ok(again)
    assert again.stdout == result.stdout


def test_info_on_the_real_ge_phantom(shared_data):
    path = shared_data / "xa-dicom-phantom" / "IM1.dcm"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    result = invoke("info", path)
    assert_ok(result)
    out = result.stdout
    assert "LAO 31.3 CRA 0.1" in out
    assert "primary 31.3 deg, secondary 0.1 deg" in out
    assert "SID / SOD:     860 mm / 720 mm" in out
    assert "14 of 512 x 512 px (header only)" in out
    assert "GE MEDICAL SYSTEMS" in out
    assert "from FieldOfViewDimensions/Rows,Columns" in out  # the file has no ImagerPixelSpacing
    assert "15 frames/s" in out


def test_info_on_the_phantom_folder_with_spacing_override(shared_data):
    folder = shared_data / "xa-dicom-phantom"
    if not (folder / "IM2.dcm").is_file():
        pytest.skip(f"{folder} is incomplete")
    result = invoke("info", folder, "--pixel-spacing", 0.2)
    assert_ok(result)
    assert "LAO 31.3 CRA 0.1" in result.stdout and "RAO 27.3 CAU 0.1" in result.stdout
    assert result.stdout.count("0.2 x 0.2 mm at the detector (from override)") == 2


def test_info_on_a_folder_without_anything_readable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert_clean_error(invoke("info", tmp_path), str(tmp_path), "no case.json")


def test_info_on_a_file_that_is_not_dicom(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"not a dicom file at all" * 10)
    assert_clean_error(invoke("info", path), str(path))


# ----------------------------------------------------------- import-dicom
@pytest.fixture(scope="module")
def image_case():
    """A small two-frame synthetic angiogram case (512 x 512 grey images) held in memory."""
    return synthesize_case(SynthCaseConfig(side="right", frames=2, kind="image", n_stenoses=0), rng=11)


def _write_pair(sc, folder: Path) -> list[Path]:
    return write_case_xa(sc.case, folder)


def test_import_dicom_round_trip(image_case, tmp_path):
    dicom_dir = tmp_path / "dicom"
    _write_pair(image_case, dicom_dir)
    out = tmp_path / "case"
    result = invoke("import-dicom", dicom_dir, "-o", out, "--tree", "right")
    assert_ok(result)
    assert result.stdout.startswith(f"case {out}") and "tree: right" in result.stdout
    case = read_case(out)
    assert case.tree == "right" and [cv.name for cv in case.views] == ["A", "B"]
    probe = image_case.truth[0].nodes
    for a, b in zip(image_case.case.views, case.views):
        assert b.kind == "image"
        # DICOM decimal strings round the geometry: compare where it matters, in pixels.
        shift = np.abs(a.view.project(probe)[0] - b.view.project(probe)[0])
        assert float(np.max(shift)) < 0.01
        assert b.view.shape == a.view.shape
        assert b.frames.dtype == a.frames.dtype
        np.testing.assert_array_equal(b.frames, a.frames)
        np.testing.assert_allclose(b.frame_times_ms, a.frame_times_ms, atol=1e-6)
        np.testing.assert_allclose(b.cardiac_phase, a.cardiac_phase, atol=1e-6)
    assert case.metadata["source"]["A"]["file"] == "A.dcm"

    # the same target again needs --overwrite
    assert_clean_error(invoke("import-dicom", dicom_dir, "-o", out), str(out))
    assert_ok(invoke("import-dicom", dicom_dir, "-o", out, "--overwrite"))


def test_import_dicom_truncated_file_names_it(image_case, tmp_path):
    dicom_dir = tmp_path / "dicom"
    _, b = _write_pair(image_case, dicom_dir)
    data = b.read_bytes()
    b.write_bytes(data[: len(data) // 2])
    out = tmp_path / "case"
    assert_clean_error(invoke("import-dicom", dicom_dir, "-o", out), str(b))
    assert not out.exists()


def test_import_dicom_needs_exactly_two_files(image_case, tmp_path):
    dicom_dir = tmp_path / "dicom"
    a, b = _write_pair(image_case, dicom_dir)
    b.unlink()
    assert_clean_error(invoke("import-dicom", dicom_dir, "-o", tmp_path / "case"), "exactly 2", a.name)


# -------------------------------------------------------------- poses-fit
_FIT_ANGLES = [(30.0, 20.0), (32.0, 22.0), (-30.0, -20.0), (-32.0, -22.0), (0.0, 40.0), (2.0, 42.0)]


def _write_tiny_xa(path: Path, primary: float, secondary: float, sid: float) -> Path:
    view = CArmView(primary, secondary, sid, 750.0, (0.3, 0.3), 16, 12)
    frames = np.arange(2 * 16 * 12, dtype=np.uint16).reshape(2, 16, 12)
    return write_xa(path, frames, view)


def test_poses_fit_from_xa_headers(tmp_path):
    dicom_dir = tmp_path / "lab"
    (dicom_dir / "more").mkdir(parents=True)
    for k, (p, s) in enumerate(_FIT_ANGLES):
        # half the files in a sub-folder: the folder is searched recursively
        where = dicom_dir / "more" if k % 2 else dicom_dir
        _write_tiny_xa(where / f"run{k}.dcm", p, s, 1000.0 + 20 * k)
    (dicom_dir / "README.txt").write_text("not DICOM")
    out = tmp_path / "poses.json"
    result = invoke("poses-fit", dicom_dir, "-o", out, "--clusters", 3)
    assert_ok(result)
    assert "fitted 3 clusters from 6 file(s)" in result.stdout
    dist = PoseDistribution.load(out)
    assert json.loads(out.read_text())["format"] == "autocar-poses/1"
    assert dist.n_clusters == 3
    centers = sorted(map(tuple, np.asarray(dist.centers_deg).tolist()))
    np.testing.assert_allclose(centers, [(-31.0, -21.0), (1.0, 41.0), (31.0, 21.0)], atol=0.1)
    np.testing.assert_allclose(np.asarray(dist.weights), 1 / 3, atol=1e-6)
    assert (dist.rows, dist.columns) == (16, 12)
    assert 1000.0 <= dist.sid_range_mm[0] <= dist.sid_range_mm[1] <= 1100.0
    assert dist.sod_range_mm[0] == pytest.approx(750.0) and dist.sod_range_mm[1] == pytest.approx(750.0)
    # the fitted file drives synth
    synth_out = tmp_path / "synth"
    assert_ok(invoke("synth", synth_out, "--frames", 1, "--stenoses", 0, "--poses", out))
    case = read_case(synth_out / "case_000", load_frames=False)
    assert all(cv.view.shape == (16, 12) for cv in case.views)


def test_poses_fit_without_xa_files(tmp_path):
    (tmp_path / "x.txt").write_text("nothing here")
    assert_clean_error(invoke("poses-fit", tmp_path, "-o", tmp_path / "p.json"), "no usable XA file")
    assert not (tmp_path / "p.json").exists()


# ------------------------------------------------------- torch threads
# ------------------------------------------------------------------- demo
def test_demo_with_two_frames_runs_the_whole_pipeline(tmp_path, restore_torch_threads):
    out = tmp_path / "demo"
    result = invoke("demo", "-o", out, "--frames", 2)
    assert_ok(result)
    report = json.loads((out / "evaluation.json").read_text())
    assert len(report["frames"]) == 2
    # Segmented with the shipped U-Net, reconstructed with the shipped network: a real part of the
    # tree is found (an empty or misplaced result scores 0).
    assert report["mean"]["f1_2mm"] > 0.3
    res = out / "result"
    for name in ("reconstruction.json", "frame_000.ply", "frame_001.ply", "measurements.json", "report.html",
                 "snapshot.png"):
        assert (res / name).is_file(), name
    assert "input: DICOM folder" in result.stdout and "open the report" in result.stdout
    assert "planted stenosis: " in result.stdout
    # and what the result reads there: found, or not reported and why, or missed
    assert any(f"\n  {word}" in result.stdout for word in ("found:", "not reported:", "missed:"))


@pytest.mark.slow
def test_demo_all_frames_is_dynamic(tmp_path, restore_torch_threads):
    out = tmp_path / "demo"
    result = invoke("demo", "-o", out)
    assert_ok(result)
    assert "autocar demo finished" in result.stdout and "dynamic" in result.stdout
    data = json.loads((out / "result" / "reconstruction.json").read_text())
    assert len(data["frames"]) == 6 and all(f["edges"] == data["frames"][0]["edges"] for f in data["frames"])


def test_train_tiny_run_writes_weights(tmp_path, restore_torch_threads):
    out = tmp_path / "run"
    result = invoke(
        "train", out, "--epochs", 1, "--steps", 1, "--val-samples", 1,
        "--base-channels", 4, "--depth", 2, "--threads", 1, "--device", "cpu", "--tree", "left",
        "--segmented-fraction", 0.5,
    )
    assert_ok(result)
    assert f"weights: {out / 'model.pt'}" in result.stdout
    for name in ("model.pt", "checkpoint.pt", "config.json", "train_log.jsonl"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["net"]["base_channels"] == 4 and config["net"]["depth"] == 2
    assert config["sides"] == ["left"] and config["epochs"] == 1 and config["segmented_fraction"] == 0.5
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["epoch"] == 1

    from autocar.net.train import load_model

    model = load_model(out / "model.pt")
    assert sum(p.numel() for p in model.parameters()) > 0


def test_train_rejects_an_unknown_tree(tmp_path):
    out = tmp_path / "run"
    assert_clean_error(invoke("train", out, "--tree", "middle", "--epochs", 1, "--steps", 1), "middle")
    assert not out.exists()


def test_train_real_fraction_without_real_trees_is_refused(tmp_path):
    out = tmp_path / "run"
    assert_clean_error(invoke("train", out, "--real-fraction", 0.5, "--epochs", 1, "--steps", 1), "real_trees")
    assert not out.exists()


# ------------------------------------------------------- bad options
def test_train_bad_device_is_a_one_line_error(tmp_path, restore_torch_threads):
    assert_clean_error(invoke("train", tmp_path / "run", "--device", "gpu", "--epochs", 1, "--steps", 1), "gpu")


def test_poses_fit_output_is_a_folder(tmp_path):
    dicom_dir = tmp_path / "lab"
    dicom_dir.mkdir()
    _write_tiny_xa(dicom_dir / "a.dcm", 30.0, 20.0, 1000.0)
    target = tmp_path / "taken"
    target.mkdir()
    assert_clean_error(invoke("poses-fit", dicom_dir, "-o", target), str(target))


# ------------------------------------------------------------ reconstruct
@pytest.fixture(scope="module")
def three_frame_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("dyn")
    assert_ok(invoke("synth", root, "--frames", 3, "--seed", 2_100_011))
    return root / "case_000"


def test_reconstruct_multi_frame_case_is_dynamic_by_default(three_frame_case, tmp_path, restore_torch_threads):
    out = tmp_path / "dyn"
    result = invoke("reconstruct", three_frame_case, "-o", out)
    assert_ok(result)
    assert "dynamic (one topology" in result.stdout and "frame pairs by cardiac_phase" in result.stdout
    data = json.loads((out / "reconstruction.json").read_text())
    frames = data["frames"]
    assert len(frames) == 3 and all(f["edges"] == frames[0]["edges"] for f in frames)
    assert len(data["motion"]["peak_to_peak_mm"]) == len(frames[0]["nodes"])
    assert len(data["lag_compensation"]["source_frames_b"]) == 3 and "nodes_moved" in data["fusion"]
    assert sorted(p.name for p in out.glob("*.ply")) == ["frame_000.ply", "frame_001.ply", "frame_002.ply"]
    scored = invoke("evaluate", out, "--truth", three_frame_case)
    assert_ok(scored)
    assert "f1_1mm" in scored.stdout


def test_reconstruct_lag_compensation_and_fusion_can_be_switched_off(three_frame_case, tmp_path,
                                                                    restore_torch_threads):
    out = tmp_path / "plain"
    assert_ok(invoke("reconstruct", three_frame_case, "-o", out, "--method", "hull-graph", "--no-report",
                     "--no-lag-compensation", "--no-fusion"))
    data = json.loads((out / "reconstruction.json").read_text())
    assert "lag_compensation" not in data and "fusion" not in data
    assert len(data["frames"]) == 3


def test_reconstruct_static_flag_keeps_frames_independent(three_frame_case, tmp_path, restore_torch_threads):
    out = tmp_path / "static"
    result = invoke("reconstruct", three_frame_case, "-o", out, "--static", "--method", "hull-graph")
    assert_ok(result)
    assert (out / "measurements.json").is_file() and (out / "report.html").is_file()
    assert "static" in result.stdout and "dynamic" not in result.stdout
    data = json.loads((out / "reconstruction.json").read_text())
    assert "motion" not in data and len(data["frames"]) == 3
    # Independent hull reconstructions of moving frames do not share one node list.
    assert len({len(f["nodes"]) for f in data["frames"]}) > 1


def test_reconstruct_refuses_to_overwrite(three_frame_case, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    assert_clean_error(invoke("reconstruct", three_frame_case, "-o", out), "exists", "--overwrite")


def test_train_seg2d_tiny_run(tmp_path, restore_torch_threads):
    out = tmp_path / "seg"
    result = invoke("train-seg2d", out, "--epochs", 1, "--steps", 1, "--synth-fraction", 1.0, "--batch-size", 2,
                    "--crop", 64, "--base-channels", 4, "--depth", 2, "--max-channels", 8)
    assert_ok(result)
    assert f"best model: {out / 'model.pt'}" in result.stdout
    from autocar.seg2d.segment import load_model

    model = load_model(out / "model.pt")
    assert model.channels == [4, 8, 8]  # the architecture options reach the saved model
    assert json.loads((out / "config.json").read_text())["unet"] == {"base_channels": 4, "depth": 2, "max_channels": 8,
                                                                   "catheter_channel": False}
    # --session-limit stops after an epoch; --resume continues the same run.
    opts = ["--epochs", 2, "--steps", 1, "--synth-fraction", 1.0, "--batch-size", 2, "--crop", 64,
            "--base-channels", 4, "--depth", 2, "--max-channels", 8]
    result = invoke("train-seg2d", tmp_path / "acc", *opts, "--session-limit", 0)
    assert_ok(result)
    assert "continue with --resume" in result.stdout
    assert len((tmp_path / "acc" / "train_log.jsonl").read_text().splitlines()) == 1
    assert_ok(invoke("train-seg2d", tmp_path / "acc", *opts, "--resume"))
    assert [json.loads(s)["epoch"] for s in (tmp_path / "acc" / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert_clean_error(invoke("train-seg2d", tmp_path / "acc", *opts, "--resume", "--seed", 9), "cannot resume", "seed")
    # A crop that is no multiple of 2 ** depth is refused with a clear error.
    assert_clean_error(invoke("train-seg2d", tmp_path / "bad", "--epochs", 1, "--steps", 1, "--synth-fraction", 1.0,
                              "--crop", 48, "--depth", 5), "crop", "32")


def test_train_seg2d_refuses_the_dca1_testing_half(tmp_path):
    testing = tmp_path / "Angios_40_testing"
    testing.mkdir()
    assert_clean_error(invoke("train-seg2d", tmp_path / "seg", "--dca1-dir", testing), "testing")


def test_reconstruct_ghost_order_option(three_frame_case, tmp_path, restore_torch_threads):
    assert_clean_error(invoke("reconstruct", three_frame_case, "-o", tmp_path / "bad", "--ghost-order", "sideways"),
                       "--ghost-order", "hand or learned")
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "learned"
    assert_ok(invoke("reconstruct", three_frame_case, "-o", out, "--static", "--frames", 1, "--ghost-order", "learned",
                     "--no-report"))
    hand = tmp_path / "hand"
    assert_ok(invoke("reconstruct", three_frame_case, "-o", hand, "--static", "--frames", 1, "--no-report"))
    for res in (out, hand):
        frame = json.loads((res / "reconstruction.json").read_text())["frames"][0]
        assert len(frame["nodes"]) > 50


def test_reconstruct_align_views_option(tmp_path, restore_torch_threads):
    # A synchronised 1-frame case whose view B mask is moved 5 px across its epipolar
    # lines: the default (a single pair) warps it back and records the warp,
    # --no-align-views does not.
    import dataclasses

    from autocar.io.case import write_case
    from autocar.sbp.epipolar import angle_gradient, apply_view_warp, epipolar_frame, warp_mask

    sc = synthesize_case(SynthCaseConfig(side="left", frames=1, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=424242)
    a, b = sc.case.views
    g = angle_gradient(b.view, epipolar_frame([a.view, b.view]))
    dr, dc = 5.0 * g / np.linalg.norm(g)
    moved = warp_mask(b.frames[0], [[1.0, 0.0, -dr], [0.0, 1.0, -dc]])[None]  # content moved by (dr, dc)
    case_dir = write_case(dataclasses.replace(sc.case, views=(a, dataclasses.replace(b, frames=moved))),
                          tmp_path / "case")
    runs = {}
    for name, flag in (("default", ()), ("off", ("--no-align-views",))):
        out = tmp_path / name
        assert_ok(invoke("reconstruct", case_dir, "-o", out, "--no-report", "--method", "hull-graph",
                         "--geometry-check", "off", *flag))
        runs[name] = json.loads((out / "reconstruction.json").read_text())["frames"][0]
    warp = runs["default"]["view_warp_px"]["B"]
    c = np.array([(b.view.rows - 1) / 2, (b.view.columns - 1) / 2])
    assert np.linalg.norm(apply_view_warp(c, warp) - c) == pytest.approx(5.0, abs=1.0)
    assert "view_warp_px" not in runs["off"]


def test_reconstruct_names_a_mirrored_view_and_mirror_b_fixes_it(tmp_path, restore_torch_threads):
    import dataclasses

    from autocar.io.case import write_case

    sc = synthesize_case(SynthCaseConfig(side="left", frames=1, n_stenoses=0, lag_range=(0.0, 0.0),
                                         view_b_delay_s=(0.0, 0.0)), rng=2_000_000)
    a, b = sc.case.views
    flipped = dataclasses.replace(b, frames=np.ascontiguousarray(np.asarray(b.frames)[:, :, ::-1]))
    case_dir = write_case(dataclasses.replace(sc.case, views=(a, flipped)), tmp_path / "case")
    res = invoke("reconstruct", case_dir, "-o", tmp_path / "bad", "--no-report")
    assert_clean_error(res, "mirrored", "--mirror-b", "--geometry-check warn")
    assert not (tmp_path / "bad").exists()
    assert_ok(invoke("reconstruct", case_dir, "-o", tmp_path / "good", "--no-report", "--mirror-b"))
    rec = json.loads((tmp_path / "good" / "reconstruction.json").read_text())
    assert rec["quality"]["ok"] and rec["pairing_check"]["verdict"] == "consistent"
    res = invoke("reconstruct", case_dir, "-o", tmp_path / "x", "--geometry-check", "sometimes")
    assert_clean_error(res, "auto, warn or off")
