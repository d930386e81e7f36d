"""autocar batch: every study of a folder or manifest, resumable, failures isolated, local or on Dask."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autocar.errors import CaseFormatError
from autocar.pipeline.batch import SUMMARY_CSV, SUMMARY_JSON, Study, find_studies, read_manifest, run_batch
from autocar.pipeline.workflow import RunOptions
from autocar.synth.cases import SynthCaseConfig, synthesize_case, write_synth_case

FAST = RunOptions(static=True, frames=1, report=False, measurements=False, snapshot=False)


def _archive(root: Path, good: int, seed0: int = 4_100_000) -> list[str]:
    """``good`` one-frame synthetic mask cases and two bad studies (a broken case.json, empty masks)."""
    names = []
    for i in range(good):
        sc = synthesize_case(SynthCaseConfig(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)),
                             rng=seed0 + i)
        write_synth_case(sc, root / f"study{i:02d}")
        names.append(f"study{i:02d}")
    bad = root / "broken"
    bad.mkdir()
    (bad / "case.json").write_text("{ not json")
    empty = root / "empty"
    sc = synthesize_case(SynthCaseConfig(frames=1), rng=seed0 + 99)
    write_synth_case(sc, empty)
    for png in (empty / "A").glob("*.png"):
        from autocar.io.images import write_frame
        import numpy as np

        write_frame(png, np.zeros((sc.case.views[0].view.rows, sc.case.views[0].view.columns), np.uint8))
    (root / "not-a-study").mkdir()  # no case.json, no DICOM: ignored
    return names + ["broken", "empty"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    _archive(root, 3)
    return root


def _summary(out: Path) -> dict[str, dict]:
    return {r["study"]: r for r in json.loads((out / SUMMARY_JSON).read_text())["studies"]}


def test_studies_are_found_in_name_order(archive):
    assert [s.name for s in find_studies(archive)] == ["broken", "empty", "study00", "study01", "study02"]
    with pytest.raises(CaseFormatError, match="no study found"):
        find_studies(archive / "not-a-study")


def test_batch_isolates_failures_and_resumes_without_redoing(archive, tmp_path):
    out = tmp_path / "out"
    seen = []
    result = run_batch(find_studies(archive), out, FAST, workers=1, progress=False, on_row=seen.append)
    rows = _summary(out)
    assert result.count("ok") == 3 and result.count("failed") == 2 and len(seen) == 5
    assert "case.json" in rows["broken"]["reason"] and "empty" in rows["empty"]["reason"]
    for name in ("study00", "study01", "study02"):
        assert rows[name]["status"] == "ok" and rows[name]["nodes"] > 0
        assert (out / name / "reconstruction.json").is_file()
    assert not (out / "broken").exists() and not (out / "empty").exists()  # nothing that looks like a result
    with open(out / SUMMARY_CSV, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["study"] for r in table] == ["broken", "empty", "study00", "study01", "study02"]
    assert {r["status"] for r in table} == {"ok", "failed"}
    stamp = (out / "study01" / "reconstruction.json").stat().st_mtime_ns
    # A rerun skips what is done, keeps its earlier row, and tries the failures again.
    again = run_batch(find_studies(archive), out, FAST, workers=1, progress=False)
    assert again.count("done earlier") == 3 and again.count("failed") == 2 and again.count("ok") == 0
    assert (out / "study01" / "reconstruction.json").stat().st_mtime_ns == stamp
    assert _summary(out)["study01"]["nodes"] == rows["study01"]["nodes"]


def test_a_manifest_names_studies_and_their_tree(archive, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"study,input,tree\nfirst,{archive / 'study00'},right\nsecond,{os.path.relpath(archive / 'study01', tmp_path)},\n")
    studies = read_manifest(manifest)
    assert studies == [Study("first", archive / "study00", "right"), Study("second", tmp_path / os.path.relpath(archive / "study01", tmp_path))]
    for text, match in (("name,path\na,b\n", "columns study and input"), ("study,input\na,x\na,y\n", "listed twice"),
                        ("study,input\n../up,x\n", "cannot name a result folder"), ("study,input,tree\na,x,middle\n", "tree")):
        manifest.write_text(text)
        with pytest.raises(CaseFormatError, match=match):
            read_manifest(manifest)


def test_the_same_batch_runs_on_a_dask_local_cluster(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        some = [s for s in find_studies(archive) if s.name in ("broken", "study00")]
        result = run_batch(some, tmp_path / "dask", FAST, scheduler=client, progress=False)
    assert result.count("ok") == 1 and result.count("failed") == 1
    assert (tmp_path / "dask" / "study00" / "reconstruction.json").is_file()


@pytest.mark.slow
def test_cli_batch_killed_and_rerun_finishes_the_rest(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    for i in range(2):
        sc = synthesize_case(SynthCaseConfig(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)), rng=4_200_000 + i)
        write_synth_case(sc, root / f"s{i}")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autocar.cli", "batch", str(root), "-o", str(out), "--workers", "1", "--static",
           "--frames", "1", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "s0" / "reconstruction.json").is_file():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-run: s0 done, s1 in flight
    proc.wait()
    assert (out / "s0" / "reconstruction.json").is_file()
    first = (out / "s0" / "reconstruction.json").stat().st_mtime_ns
    leftovers = [p.name for p in out.iterdir() if p.name not in ("s0", "s1", SUMMARY_CSV, SUMMARY_JSON)]
    for p in leftovers:  # only the temporary folder of the study in flight may be left, never a result
        assert p.startswith("."), leftovers
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "done earlier" in done.stdout and "0 failed" in done.stdout
    assert (out / "s0" / "reconstruction.json").stat().st_mtime_ns == first
    assert all((out / f"s{i}" / "reconstruction.json").is_file() for i in range(2))


def test_cli_batch_reports_failures_with_exit_1(archive, tmp_path):
    manifest = tmp_path / "two.csv"
    manifest.write_text(f"study,input\ngood,{archive / 'study00'}\nbroken,{archive / 'broken'}\n")
    done = subprocess.run([sys.executable, "-m", "autocar.cli", "batch", str(manifest), "-o", str(tmp_path / "o"),
                           "--workers", "1", "--static", "--frames", "1", "--no-report"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "1 reconstructed" in done.stdout and "1 failed" in done.stdout
    assert "failed broken:" in done.stderr and "Traceback" not in done.stderr
