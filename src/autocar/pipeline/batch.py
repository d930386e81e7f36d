"""Archive-scale reconstruction: every study under a folder (or in a CSV manifest), one result each.

``autocar batch STUDIES -o OUT`` runs :func:`autocar.pipeline.workflow.run` on every study and
writes ``OUT/<study>/`` (the usual result folder) plus ``OUT/batch_summary.csv`` and
``OUT/batch_summary.json`` (one row per study: status, reason, seconds and the quality signals
of the result).

- **Studies**: each sub-folder of ``STUDIES`` that is a case folder (``case.json``) or holds
  DICOM files, in name order; or the rows of a CSV manifest with columns ``study`` (a name,
  the result folder's name) and ``input`` (a path, relative to the manifest's folder when not
  absolute) and optionally ``tree`` (left / right).
- **Resumable**: a result folder is written under a temporary name and renamed when complete
  (:func:`autocar.io.atomic.atomic_directory`), so an existing ``OUT/<study>/reconstruction.json``
  means the study is done: it is skipped ("done earlier") and its earlier summary row kept.
  The summary is rewritten (atomically) after every study, so a crash or a kill loses at
  most the studies in flight; failed studies are tried again by the next run.
- **Isolation**: one study's failure (bad input, or a bug) is recorded with its reason and
  never stops the others.
- **Parallel**: ``workers`` processes on this machine (each with
  ``max(1, cores // workers)`` torch threads, so the machine is not oversubscribed), or,
  with ``scheduler`` (an address such as ``tcp://host:8786``, or a
  :class:`distributed.Client`), the same tasks on a Dask distributed cluster.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from autocar.errors import AutocarError, CaseFormatError
from autocar.io.atomic import atomic_write_json, atomic_write_text
from autocar.pipeline.workflow import RunOptions

__all__ = ["Study", "BatchResult", "find_studies", "read_manifest", "run_batch", "SUMMARY_CSV", "SUMMARY_JSON"]

SUMMARY_CSV = "batch_summary.csv"
SUMMARY_JSON = "batch_summary.json"
COLUMNS = ("study", "status", "reason", "seconds", "input", "frames", "dynamic", "nodes", "length_mm",
           "stenoses", "motion_mean_mm", "quality_flags", "notes")
_DICOM_SUFFIXES = (".dcm", ".dicom", "")


@dataclass(frozen=True)
class Study:
    """One study to reconstruct: its name (the result folder's name), its input path and tree side."""

    name: str
    input: Path
    tree: str | None = None


@dataclass
class BatchResult:
    """What :func:`run_batch` did: one summary row per study, in study order."""

    out: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def _is_study(folder: Path) -> bool:
    if (folder / "case.json").is_file():
        return True
    return any(p.is_file() and p.suffix.lower() in _DICOM_SUFFIXES and not p.name.startswith(".")
               for p in folder.iterdir())


def _check_name(name: str, where: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise CaseFormatError(f"{where}: study name {name!r} cannot name a result folder")
    return name


def find_studies(root: str | Path) -> list[Study]:
    """The studies under ``root``: its sub-folders that are case folders or hold DICOM files."""
    root = Path(root)
    if not root.is_dir():
        raise CaseFormatError(f"{root}: not a folder of studies")
    studies = [Study(p.name, p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")
               and _is_study(p)]
    if not studies:
        raise CaseFormatError(f"{root}: no study found (sub-folders with a case.json or DICOM files)")
    return studies


def read_manifest(path: str | Path) -> list[Study]:
    """The studies of a CSV manifest (columns ``study``, ``input`` and optionally ``tree``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFormatError(f"{path}: cannot read the manifest ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"study", "input"} - set(reader.fieldnames or ())
    if missing:
        raise CaseFormatError(f"{path}: the manifest needs the columns study and input; missing {sorted(missing)}")
    studies, seen = [], set()
    for line, row in enumerate(reader, start=2):
        name = _check_name((row.get("study") or "").strip(), f"{path} line {line}")
        if name in seen:
            raise CaseFormatError(f"{path} line {line}: study {name!r} is listed twice")
        seen.add(name)
        raw = (row.get("input") or "").strip()
        if not raw:
            raise CaseFormatError(f"{path} line {line}: study {name!r} has no input")
        target = Path(raw) if Path(raw).is_absolute() else path.parent / raw
        tree = (row.get("tree") or "").strip() or None
        if tree not in (None, "left", "right"):
            raise CaseFormatError(f"{path} line {line}: tree must be left or right, got {tree!r}")
        studies.append(Study(name, target, tree))
    if not studies:
        raise CaseFormatError(f"{path}: the manifest lists no study")
    return studies


def _row_from_summary(study: Study, summary: Any, seconds: float) -> dict[str, Any]:
    return {"study": study.name, "status": "ok", "reason": "", "seconds": round(seconds, 2), "input": str(study.input),
            "frames": summary.frames, "dynamic": summary.dynamic, "nodes": summary.nodes,
            "length_mm": round(float(summary.length_mm), 1), "stenoses": len(summary.stenoses),
            "motion_mean_mm": None if summary.motion_mean_mm is None else round(float(summary.motion_mean_mm), 3),
            "quality_flags": " | ".join(summary.quality.get("flags") or []),
            "notes": " | ".join(summary.notes)}


def run_study(study: Study, out_root: str | Path, options: RunOptions, threads: int = 1) -> dict[str, Any]:
    """Reconstruct one study into ``out_root/<study.name>``; never raises: failures become the row."""
    from autocar.pipeline.workflow import run

    t0 = time.perf_counter()
    row: dict[str, Any] = {"study": study.name, "input": str(study.input)}
    try:
        opts = options if study.tree is None else replace(options, tree=study.tree)
        if opts.threads is None:  # the batch shares the cores among its workers
            opts = replace(opts, threads=max(1, int(threads)))
        summary = run(study.input, Path(out_root) / study.name, opts, overwrite=False, progress=False)
        return _row_from_summary(study, summary, time.perf_counter() - t0)
    except (AutocarError, FileNotFoundError, FileExistsError, ValueError) as exc:
        row.update(status="failed", reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except Exception as exc:  # a bug must not stop the other studies; the row says what it was
        last = traceback.extract_tb(exc.__traceback__)[-1]
        row.update(status="failed", reason=f"internal error {type(exc).__name__}: {exc} "
                                            f"({Path(last.filename).name}:{last.lineno})")
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _write_summary(out: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    atomic_write_text(out / SUMMARY_CSV, buf.getvalue())
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "done earlier", "failed", "pending")}
    atomic_write_json(out / SUMMARY_JSON, {"format": "autocar-batch/1", "counts": counts, "studies": rows})


def _earlier_rows(out: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((out / SUMMARY_JSON).read_text(encoding="utf-8"))
        return {r["study"]: r for r in data.get("studies", []) if isinstance(r, dict) and "study" in r}
    except (OSError, ValueError, AttributeError):
        return {}


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_batch(
    studies: Iterable[Study],
    out: str | Path,
    options: RunOptions = RunOptions(),
    *,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Reconstruct every study into ``out`` (module doc); returns the summary rows in study order.

    ``workers``: local processes (default: up to 2, the cores of a small machine); 1 runs in this
    process. ``scheduler``: a Dask distributed address or Client; the work then runs there.
    ``on_row`` is called with each finished row (as it finishes).
    """
    studies = list(studies)
    names = [s.name for s in studies]
    if len(set(names)) != len(names):
        raise CaseFormatError(f"two studies share a name: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for s in studies:
        _check_name(s.name, str(s.input))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_rows(out)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[Study] = []
    for s in studies:
        if (out / s.name / "reconstruction.json").is_file():
            prev = earlier.get(s.name, {})
            rows[s.name] = {**{k: prev.get(k) for k in COLUMNS}, "study": s.name, "input": str(s.input),
                            "status": "done earlier", "reason": ""}
        else:
            rows[s.name] = {"study": s.name, "input": str(s.input), "status": "pending", "reason": ""}
            todo.append(s)
    ordered = lambda: [rows[n] for n in names]  # noqa: E731
    _write_summary(out, ordered())
    cores = os.cpu_count() or 1
    n_workers = _default_workers() if workers is None else max(1, int(workers))
    threads = max(1, cores // n_workers)

    from tqdm import tqdm

    bar = tqdm(total=len(studies), initial=len(studies) - len(todo), desc="studies", unit="study",
               disable=not progress)

    def finished(row: dict[str, Any]) -> None:
        rows[row["study"]] = row
        _write_summary(out, ordered())
        bar.update(1)
        bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()))
        if on_row is not None:
            on_row(row)

    if scheduler is not None:
        from distributed import Client, as_completed as dask_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = [client.submit(run_study, s, str(out), options, threads, key=f"autocar-{s.name}-{time.time_ns()}",
                                     pure=False) for s in todo]
            for fut in dask_completed(futures):
                finished(fut.result())
        finally:
            if client is not scheduler:
                client.close()
    elif n_workers == 1 or len(todo) <= 1:
        for s in todo:
            finished(run_study(s, out, options, threads))
    else:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_study, s, out, options, threads): s for s in todo}
            for fut in as_completed(futures):
                try:
                    finished(fut.result())
                except Exception as exc:  # the worker process itself died (e.g. out of memory)
                    s = futures[fut]
                    finished({"study": s.name, "input": str(s.input), "status": "failed",
                              "reason": f"worker process failed: {type(exc).__name__}: {exc}", "seconds": None})
    bar.close()
    return BatchResult(out, ordered())
