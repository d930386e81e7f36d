"""End to end: DICOM pair / image case / mask case -> result folder with measurements and report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autocar.errors import AutocarError, CaseFormatError
from autocar.io.case import write_case
from autocar.io.dicom import write_case_xa
from autocar.io.results import read_reconstruction
from autocar.quant import read_measurements
from autocar.synth.cases import SynthCaseConfig, synthesize_case
from autocar.pipeline.workflow import RunOptions, load_input, run, segment_case


@pytest.fixture(scope="module")
def image_synth():
    return synthesize_case(SynthCaseConfig(frames=2, kind="image", n_stenoses=1), rng=2_100_021)


@pytest.fixture(scope="module")
def dicom_dir(tmp_path_factory, image_synth):
    d = tmp_path_factory.mktemp("dicom")
    write_case_xa(image_synth.case, d, compress=True)
    return d


@pytest.fixture(scope="module")
def mask_case_dir(tmp_path_factory):
    synth = synthesize_case(SynthCaseConfig(frames=2, n_stenoses=1), rng=2_100_022)
    return write_case(synth.case, tmp_path_factory.mktemp("mask") / "case")


def test_mask_case_gives_every_output_file(mask_case_dir, tmp_path):
    out = tmp_path / "out"
    summary = run(mask_case_dir, out, RunOptions(tree="left"), progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_000.ply", "frame_001.ply", "measurements.json", "reconstruction.json",
                     "report.html", "snapshot.png"]
    assert summary.dynamic and summary.frames == 2 and summary.nodes > 20
    rec = read_reconstruction(out)
    assert rec.is_dynamic
    assert rec.extra["view_alignment"] == "one epipolar warp of view B per frame pair"  # mask input
    meas = read_measurements(out / "measurements.json")
    assert meas["frame"] == summary.reference_frame
    assert meas["diameter_source"]["method"] == "mask width"  # masks only: nothing grey to read
    assert meas["diameter_source"]["overlap_bridged_nodes"] >= 0
    assert [v["name"] for v in meas["views"]] == ["A", "B"]
    # Segment node indices address the (shared) node list of every frame.
    n = rec.frames[0].num_nodes
    assert all(0 <= i < n for s in meas["segments"] for i in s["nodes"])
    html = (out / "report.html").read_text()
    assert "autocar" in html and "http://" not in html and "https://" not in html
    text = "\n".join(summary.lines())
    assert "dynamic" in text and "report:" in text


def test_dicom_folder_end_to_end_with_the_frangi_baseline(dicom_dir, tmp_path, image_synth):
    out = tmp_path / "dcm"
    summary = run(dicom_dir, out, RunOptions(segmenter="frangi", method="hull-graph", tree="left"), progress=False)
    assert summary.source.startswith("DICOM folder")
    assert "segment" in summary.seconds
    rec = read_reconstruction(out)
    assert rec.num_frames == 2 and rec.extra["frame_pairing"]["source"] == "cardiac_phase"
    assert rec.extra["view_alignment"] == "none"  # masks segmented here: no per-pair warp
    assert (out / "report.html").is_file()
    # The hull of the segmented angiograms lies on the true tree: most of the truth is recovered within 2 mm.
    from autocar.evaluation.metrics import centerline_scores

    s = centerline_scores(rec.frames[0], image_synth.truth[0])
    assert s.recall_2mm > 0.4, s
    # Angiograms: every stenosis is confirmed in the grey profiles and measured there.
    meas = read_measurements(out / "measurements.json")
    source = meas["diameter_source"]
    assert source["method"].startswith("mask width; stenoses confirmed and measured in the grey profiles")
    assert min(source["nodes_measured"].values()) > 0 and all(0.3 < b < 4.0 for b in source["blur_px"])
    assert all(st.get("measured_in") == "grey profiles" and "mask_reading" in st for st in meas["stenoses"])


def test_shipped_unet_segments_the_dicom_pair(dicom_dir, tmp_path, image_synth):
    case, _ = load_input(dicom_dir)
    masks_case, images = segment_case(case, "unet", progress=False)
    assert set(images) == {"A", "B"}
    from autocar.evaluation.metrics import mask_scores
    from autocar.synth.render import render_mask

    for cv, truths in zip(masks_case.views, (image_synth.truth, image_synth.truth_b)):
        assert cv.kind == "mask" and cv.frames.dtype == bool
        truth_mask = render_mask(truths[0], cv.view)
        assert mask_scores(cv.frames[0], truth_mask)["dice"] > 0.6
    # A lower threshold keeps every pixel of the higher one and adds some.
    low_case, _ = segment_case(case, "unet", progress=False, unet_threshold=0.2)
    for low, high in zip(low_case.views, masks_case.views):
        assert not (high.frames & ~low.frames).any() and low.frames.sum() > high.frames.sum()
    # Other weights are used when given (an untrained tiny model segments differently).
    import torch

    from autocar.seg2d.segment import save_model
    from autocar.seg2d.unet import SegUNet2d, UNetConfig

    torch.manual_seed(0)
    other = save_model(SegUNet2d(UNetConfig(4, 2, 8)), tmp_path / "other.pt")
    other_case, _ = segment_case(case, "unet", progress=False, unet_weights=other)
    assert other_case.views[0].frames.mean() > 0.9  # it says ~0.6 everywhere: all vessel


def test_failed_run_leaves_no_result(mask_case_dir, tmp_path, monkeypatch):
    import autocar.report

    def boom(*args, **kwargs):
        raise AutocarError("report failed on purpose")

    monkeypatch.setattr(autocar.report, "write_report", boom)
    out = tmp_path / "never"
    with pytest.raises(AutocarError, match="on purpose"):
        run(mask_case_dir, out, RunOptions(method="hull-graph", static=True), progress=False)
    assert not out.exists()
    assert not any(tmp_path.iterdir())


def test_existing_output_is_not_replaced_without_overwrite(mask_case_dir, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        run(mask_case_dir, out, progress=False)
    assert (out / "keep.txt").read_text() == "x"


def test_inputs_that_are_not_cases_or_dicom_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CaseFormatError, match="neither a case folder"):
        load_input(tmp_path)
    with pytest.raises(ValueError, match="segmenter"):
        RunOptions(segmenter="magic")
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match="unet_threshold"):
            RunOptions(unet_threshold=bad)


def test_one_dicom_file_is_not_a_pair(dicom_dir, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "A.dcm").write_bytes((dicom_dir / "A.dcm").read_bytes())
    with pytest.raises(AutocarError, match="expected exactly 2"):
        load_input(single)


def test_static_option_writes_independent_frames(mask_case_dir, tmp_path):
    out = tmp_path / "static"
    summary = run(mask_case_dir, out, RunOptions(static=True, method="hull-graph", report=False,
                                                   measurements=False, snapshot=False), progress=False)
    assert not summary.dynamic
    assert sorted(p.name for p in out.iterdir()) == ["frame_000.ply", "frame_001.ply", "reconstruction.json"]
    data = json.loads((out / "reconstruction.json").read_text())
    assert "motion" not in data
    assert np.isfinite(summary.length_mm)


def test_measurements_are_skipped_with_a_note_when_the_tree_is_implausibly_long(mask_case_dir, tmp_path, monkeypatch):
    import autocar.pipeline.workflow as wf

    monkeypatch.setattr(wf, "MAX_MEASURED_LENGTH_MM", 10.0)
    out = tmp_path / "long"
    summary = run(mask_case_dir, out, RunOptions(static=True, method="hull-graph"), progress=False)
    assert not (out / "measurements.json").exists() and (out / "report.html").is_file()
    assert any("measurements skipped" in n for n in summary.notes)


def test_report_command_rewrites_measurements_and_report(mask_case_dir, tmp_path):
    from typer.testing import CliRunner

    from autocar.cli import app

    out = tmp_path / "res"
    run(mask_case_dir, out, RunOptions(method="hull-graph", report=False, measurements=False, snapshot=False),
        progress=False)
    assert not (out / "report.html").exists()
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(out), "--input", str(mask_case_dir), "--tree", "left"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and (out / "measurements.json").is_file()
    meas = read_measurements(out / "measurements.json")
    assert meas["tree_side"] == "left" and meas["frame"] == read_reconstruction(out).extra["reference_frame"]
    # Views come from the result itself: no input needed.
    (out / "report.html").unlink()
    res = runner.invoke(app, ["report", str(out), "--frame", "1"])
    assert res.exit_code == 0, res.output
    assert read_measurements(out / "measurements.json")["frame"] == 1
    bad = runner.invoke(app, ["report", str(out), "--frame", "7"])
    assert bad.exit_code == 2 and "frame 7 requested" in bad.stderr


def test_frame_rate_gives_times_to_runs_that_have_neither_times_nor_phases():
    from autocar.io.case import Case, CaseView
    from autocar.pipeline.workflow import with_frame_rate

    sc = synthesize_case(SynthCaseConfig(frames=3), rng=12)
    a, b = sc.case.views
    bare = CaseView(name="B", view=b.view, kind="mask", frames=b.frames)
    case = with_frame_rate(Case(views=(a, bare), tree="left"), 12.5)
    assert np.array_equal(case.views[0].frame_times_ms, a.frame_times_ms)  # a run with times keeps them
    assert case.views[1].frame_times_ms.tolist() == [0.0, 80.0, 160.0]
    for bad in (0.0, -15.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="frame rate"):
            RunOptions(frame_rate_hz=bad)


@pytest.mark.parametrize("load, cores, expected", [(0.0, 2, 2), (1.2, 2, 1), (0.4, 2, 2), (6.0, 2, 1), (2.6, 8, 5)])
def test_available_threads_leaves_the_busy_cores(monkeypatch, load, cores, expected):
    import os

    from autocar.pipeline.workflow import available_threads

    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert available_threads() == expected


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_run_options_refuse_bad_thread_counts(bad):
    from autocar.pipeline.workflow import RunOptions

    with pytest.raises(ValueError, match="threads"):
        RunOptions(threads=bad)


@pytest.fixture(scope="module")
def mirrored_case_dir(tmp_path_factory):
    # View B's masks stored mirrored left-right (seed 2,000,000: the pairing check's test pair).
    import dataclasses

    synth = synthesize_case(SynthCaseConfig(frames=1, n_stenoses=0, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)),
                            rng=2_000_000)
    a, b = synth.case.views
    flipped = dataclasses.replace(b, frames=np.ascontiguousarray(np.asarray(b.frames)[:, :, ::-1]))
    case = dataclasses.replace(synth.case, views=(a, flipped))
    return write_case(case, tmp_path_factory.mktemp("mirrored") / "case")


def test_a_mirrored_view_stops_the_run_with_the_fix_named(mirrored_case_dir, tmp_path):
    from autocar.errors import GeometryError

    out = tmp_path / "out"
    with pytest.raises(GeometryError, match="mirrored.*--mirror-b"):
        run(mirrored_case_dir, out, RunOptions(report=False, measurements=False, snapshot=False), progress=False)
    assert not out.exists()


def test_mirror_b_flips_the_view_back(mirrored_case_dir, tmp_path):
    out = tmp_path / "out"
    summary = run(mirrored_case_dir, out, RunOptions(mirror_b=True, report=False, measurements=False,
                                                    snapshot=False), progress=False)
    rec = read_reconstruction(out)
    assert rec.extra["pairing_check"]["verdict"] == "consistent"
    assert rec.extra["quality"]["ok"] and summary.quality["flags"] == []
    assert summary.nodes > 50


def test_warn_mode_writes_a_flagged_result_that_cannot_pass_for_a_good_one(mirrored_case_dir, tmp_path):
    out = tmp_path / "out"
    summary = run(mirrored_case_dir, out, RunOptions(geometry_check="warn", measurements=False, snapshot=False),
                  progress=False)
    rec = read_reconstruction(out)
    quality = rec.extra["quality"]
    assert not quality["ok"] and any("mirrored" in f for f in quality["flags"])
    assert rec.extra["pairing_check"]["verdict"] == "mirrored"
    text = "\n".join(summary.lines())
    assert "QUALITY WARNING" in text and "mirrored" in text
    page = (out / "report.html").read_text()
    assert 'id="quality-warning"' in page and "mirrored" in page


def test_a_result_whose_pairing_failed_reports_no_stenosis(mirrored_case_dir, tmp_path, monkeypatch):
    import autocar.pipeline.workflow as workflow

    original = workflow._measure

    def with_a_lesion(graph, case, frame, pair=None, images=None):
        out = original(graph, case, frame, pair, images)
        seg = out["segments"][0]
        node = seg["nodes"][len(seg["nodes"]) // 2]
        out["stenoses"] = [{"segment": seg["id"], "name": seg["name"], "node": node,
                            "position_mm": graph.nodes[node].tolist(), "distance_from_ostium_mm": 10.0,
                            "diameter_stenosis_percent": 60.0, "minimal_diameter_mm": 1.0,
                            "reference_diameter_mm": 2.5, "lesion_length_mm": 5.0}]
        return out

    monkeypatch.setattr(workflow, "_measure", with_a_lesion)
    out = tmp_path / "out"
    summary = run(mirrored_case_dir, out, RunOptions(geometry_check="warn", snapshot=False, report=False),
                  progress=False)
    meas = read_measurements(out / "measurements.json")
    assert meas["stenoses"] == [] and summary.stenoses == []
    assert len(meas["withheld_stenoses"]) == 1
    assert "pairing check found the geometry mirrored" in meas["withheld_stenoses"][0]["reason"]


def test_a_good_result_has_quality_signals_and_no_banner(mask_case_dir, tmp_path):
    out = tmp_path / "out"
    run(mask_case_dir, out, RunOptions(tree="left", measurements=False, snapshot=False), progress=False)
    rec = read_reconstruction(out)
    q = rec.extra["quality"]
    assert q["ok"], q["flags"]
    assert set(q["signals"]) >= {"coverage", "pieces", "largest_piece_share", "length_mm", "pairing"}
    assert q["signals"]["coverage"]["A"] > 0.6 and q["signals"]["coverage"]["B"] > 0.6
    assert 'id="quality-warning"' not in (out / "report.html").read_text()


def test_geometry_check_option_is_validated():
    with pytest.raises(ValueError, match="auto, warn or off"):
        RunOptions(geometry_check="maybe")
