"""The ``autocar`` command line.

Heavy libraries (torch, pydicom, OpenCV) are imported inside the commands so
that ``autocar --help`` answers at once. Bad input ends with one line naming
the file and the problem (exit code 2), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="autocar: 3D coronary trees from two X-ray angiography sequences. Input and output formats: "
         "docs/case-format.md; C-arm geometry: docs/geometry.md (in the source repository).",
)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _spacing(value: Optional[List[float]]) -> Optional[tuple[float, float]]:
    if not value:
        return None
    if len(value) == 1:
        return (value[0], value[0])
    if len(value) == 2:
        return (value[0], value[1])
    raise typer.BadParameter("give one value or two (row, column)", param_hint="--pixel-spacing")


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to create; cases go in OUT/case_000, OUT/case_001, ..."),
    cases: int = typer.Option(1, "--cases", "-n", min=1, help="Number of cases."),
    frames: int = typer.Option(8, "--frames", "-t", min=1, help="Frames per view."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of the first case; case i uses seed + i."),
    tree: str = typer.Option("left", "--tree", help="left or right coronary tree."),
    kind: str = typer.Option("mask", "--kind", help="mask (binary PNG) or image (grey-level angiogram)."),
    stenoses: int = typer.Option(1, "--stenoses", min=0, help="Planted stenoses per case."),
    poses: Optional[Path] = typer.Option(None, "--poses", help="Pose distribution JSON (autocar poses-fit); default: clinical."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing case folders."),
) -> None:
    """Write synthetic two-view cases (CASE_FORMAT v1) with ground_truth.json beside each."""
    from tqdm import tqdm

    from autocar.errors import AutocarError
    from autocar.synth.cases import SynthCaseConfig, synthesize_case, write_synth_case
    from autocar.synth.poses import PoseDistribution

    try:
        config = SynthCaseConfig(side=tree, frames=frames, kind=kind, n_stenoses=stenoses)  # type: ignore[arg-type]
        dist = PoseDistribution.load(poses) if poses else None
        out.mkdir(parents=True, exist_ok=True)
        for i in tqdm(range(cases), desc="synth", unit="case", disable=None):
            sc = synthesize_case(config, rng=seed + i, poses=dist)
            path = write_synth_case(sc, out / f"case_{i:03d}", overwrite=overwrite)
            a, b = sc.case.views
            tqdm.write(
                f"{path}: {config.side} tree, {frames} frames, A {a.view.label}, B {b.view.label}, "
                f"lag {sc.lag * 100:.1f}% of cycle, {len(sc.stenoses)} stenosis(es)"
            )
    except (AutocarError, ValueError, FileExistsError) as exc:
        _fail(exc)


@app.command()
def info(
    path: Path = typer.Argument(..., exists=True, help="A case folder, case.json, DICOM file or folder, or result folder."),
    pixel_spacing: Optional[List[float]] = typer.Option(None, "--pixel-spacing", help="Imager pixel spacing override (mm) for DICOM."),
) -> None:
    """Print the geometry of a case, a DICOM XA file (or folder of them) or a result."""
    from autocar.errors import AutocarError

    try:
        typer.echo(_describe(path, _spacing(pixel_spacing)))
    except (AutocarError, ValueError, OSError) as exc:
        _fail(exc)


def _describe(path: Path, spacing: Optional[tuple[float, float]]) -> str:
    from autocar.io.dicom import describe_xa, find_xa_files, read_xa

    if path.is_dir() and (path / "case.json").is_file() or path.name == "case.json":
        return _describe_case(path)
    if path.is_dir() and (path / "reconstruction.json").is_file():
        return _describe_result(path / "reconstruction.json")
    if path.suffix == ".json" and path.name != "case.json":
        return _describe_result(path)
    files = find_xa_files(path) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path}: no case.json, reconstruction.json or DICOM file found")
    parts = []
    for f in files:
        seq = read_xa(f, pixel_spacing_mm=spacing, load_pixels=False, require_multiframe=False)
        parts.append(describe_xa(seq))
    return "\n\n".join(parts)


def _describe_case(path: Path) -> str:
    from autocar.io.case import read_case

    case = read_case(path, load_frames=False)
    lines = [f"case {case.path}", f"  tree: {case.tree or 'unknown'}"]
    for cv in case.views:
        v = cv.view
        n = len(cv.frame_files) if cv.frame_files is not None else len(cv.frames)
        lines.append(
            f"  view {cv.name}: {v.label} (primary {v.primary_deg:+.1f}, secondary {v.secondary_deg:+.1f} deg), "
            f"SID {v.sid_mm:g} mm, SOD {v.sod_mm:g} mm, spacing {v.spacing_mm[0]:g} x {v.spacing_mm[1]:g} mm, "
            f"{v.rows} x {v.columns} px, {cv.kind}, {n} frames"
        )
        lines.append(
            f"      magnification {v.magnification:.3f}, pixel at isocentre {v.isocenter_spacing_mm[0]:.3f} mm, "
            f"field of view at isocentre {v.columns * v.isocenter_spacing_mm[1]:.0f} mm"
        )
        if cv.frame_times_ms is not None and len(cv.frame_times_ms) > 1:
            dt = float(cv.frame_times_ms[-1] - cv.frame_times_ms[0]) / (len(cv.frame_times_ms) - 1)
            lines.append(f"      frame interval {dt:.1f} ms ({1000 / dt if dt > 0 else float('nan'):.1f} fps)")
        lines.append(f"      cardiac phase: {'given' if cv.cardiac_phase is not None else 'not given'}")
    synth = case.metadata.get("synthetic")
    if isinstance(synth, dict):
        lines.append(
            f"  synthetic: seed {synth.get('seed')}, view B lags A by {100 * synth.get('lag_fraction', 0):.1f}% "
            f"of the cycle, {len(synth.get('stenoses', []))} planted stenosis(es)"
        )
    return "\n".join(lines)


def _describe_result(path: Path) -> str:
    from autocar.io.results import read_reconstruction

    rec = read_reconstruction(path)
    g = rec.frames[0] if rec.frames else None
    lines = [f"reconstruction {path}", f"  frames: {len(rec.frames)}, dynamic (one topology): {rec.is_dynamic}"]
    if g is not None:
        lines.append(f"  frame 0: {g.num_nodes} nodes, {g.num_edges} edges, {g.total_length_mm:.1f} mm of centre line")
    return "\n".join(lines)


@app.command("import-dicom")
def import_dicom(
    dicom_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with one multi-frame XA file per view."),
    out: Path = typer.Option(..., "-o", "--out", help="Case folder to write."),
    pixel_spacing: Optional[List[float]] = typer.Option(None, "--pixel-spacing", help="Imager pixel spacing (mm) when the files lack it."),
    tree: Optional[str] = typer.Option(None, "--tree", help="left or right, if known."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Turn a folder of real XA DICOM files into a case folder (kind image)."""
    from autocar.errors import AutocarError
    from autocar.io.dicom import dicom_dir_to_case

    try:
        path = dicom_dir_to_case(dicom_dir, out, pixel_spacing_mm=_spacing(pixel_spacing), tree=tree, overwrite=overwrite)
        typer.echo(_describe_case(path))
    except (AutocarError, ValueError, FileExistsError) as exc:
        _fail(exc)


@app.command("poses-fit")
def poses_fit(
    dicom_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder (searched recursively) of XA DICOM files."),
    out: Path = typer.Option(..., "-o", "--out", help="JSON file to write (autocar-poses/1)."),
    clusters: int = typer.Option(9, "--clusters", min=1, help="Number of (primary, secondary) clusters."),
    pixel_spacing: Optional[List[float]] = typer.Option(None, "--pixel-spacing", help="Spacing for files without one."),
) -> None:
    """Fit the C-arm pose distribution of your cath lab from DICOM headers."""
    import warnings

    from autocar.errors import AutocarError
    from autocar.io.dicom import find_xa_files, read_xa
    from autocar.synth.poses import PoseDistribution

    try:
        files = [f for d in [dicom_dir, *sorted(p for p in dicom_dir.rglob("*") if p.is_dir())] for f in find_xa_files(d)]
        views, skipped = [], []
        for f in files:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    seq = read_xa(f, pixel_spacing_mm=_spacing(pixel_spacing), load_pixels=False, require_multiframe=False)
                views.append(seq.view)
            except AutocarError as exc:
                skipped.append(f"{exc}")
        for s in skipped:
            typer.echo(f"skipped: {s}", err=True)
        if not views:
            raise ValueError(f"{dicom_dir}: no usable XA file found ({len(skipped)} skipped)")
        if out.is_dir():
            raise ValueError(f"{out}: is a folder; give a JSON file name")
        dist = PoseDistribution.fit(views, n_clusters=clusters)
        dist.save(out)
        typer.echo(f"{out}: fitted {len(dist.weights)} clusters from {len(views)} file(s)")
    except (AutocarError, ValueError, OSError) as exc:
        _fail(exc)


@app.command("import-masks")
def import_masks(
    out: Path = typer.Argument(..., help="Case folder to write."),
    mask: List[Path] = typer.Option(..., "--mask", exists=True, dir_okay=False, help="Vessel mask PNG of one view (repeat, >= 2)."),
    params: List[Path] = typer.Option(..., "--params", exists=True, dir_okay=False,
                                      help="Geometry JSON of the same view: sid, sod, spacing, alpha, beta (repeat)."),
    tree: Optional[str] = typer.Option(None, "--tree", help="left or right, if known."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Make a one-frame mask case from mask PNGs and per-view geometry JSON files."""
    from autocar.errors import AutocarError
    from autocar.io.masks import case_from_mask_files

    try:
        case = case_from_mask_files(mask, params, out, tree=tree, overwrite=overwrite)
        typer.echo(_describe_case(case.path))
    except (AutocarError, ValueError, FileExistsError) as exc:
        _fail(exc)


@app.command()
def reconstruct(
    case_dir: Path = typer.Argument(..., exists=True, help="Case folder (autocar-case/1, masks or angiograms; "
                                    "docs/case-format.md) or a folder holding two XA DICOM runs."),
    out: Path = typer.Option(..., "-o", "--out", help="Result folder: reconstruction.json, frame_XXX.ply, "
                             "measurements.json, report.html, snapshot.png."),
    model: Optional[Path] = typer.Option(None, "--model", help="Weights from autocar train (default: the shipped ones)."),
    method: str = typer.Option("network", "--method", help="network, hull-graph (hull + ghost pruning, no network) or hull-skeleton (raw hull)."),
    threshold: float = typer.Option(0.2, "--threshold", min=0.0, max=1.0, help="Occupancy probability threshold."),
    ghost_order: str = typer.Option("hand", "--ghost-order", help="Ghost pruning order: hand (width disagreement "
                                    "first) or learned (the shipped ghost scorer; better on synthetic pairs, worse on "
                                    "real CT trees, see README)."),
    align_views: Optional[bool] = typer.Option(None, "--align-views/--no-align-views", help="Warp view B's mask "
                                               "across its epipolar lines until both views agree before reconstructing "
                                               "(weakly synchronised runs). Default: on for every frame pair of mask "
                                               "input and with --static or one frame pair; off for dynamic runs on "
                                               "angiograms segmented here. --align-views: dynamic runs use one warp "
                                               "for the whole sequence instead (see README)."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Last, move each node onto the vessel midline "
                                "of both views (sub-pixel; see README)."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Only the first N frame pairs."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch threads (default: the cores no "
                                          "other job keeps busy, so a run beside another job does not oversubscribe)."),
    static: bool = typer.Option(False, "--static", help="Reconstruct every frame pair independently "
                                "(no tracking: topology may differ between frames)."),
    segmenter: str = typer.Option("unet", "--segmenter", help="For angiograms: unet (shipped 2D U-Net) or frangi."),
    tree: Optional[str] = typer.Option(None, "--tree", help="left or right, if known (names the vessels)."),
    pixel_spacing: Optional[List[float]] = typer.Option(None, "--pixel-spacing", help="Detector spacing (mm) for DICOM files that lack it."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html, measurements.json and snapshot.png."),
    lag_compensation: bool = typer.Option(True, "--lag-compensation/--no-lag-compensation", help="Dynamic runs: "
                                          "synthesise view B at view A's cardiac phase from B's two neighbouring "
                                          "frames (dense-flow interpolation) before reconstructing."),
    frame_rate: Optional[float] = typer.Option(None, "--frame-rate", help="Frames per second of runs that carry "
                                               "neither frame times nor cardiac phases (then the phase is "
                                               "estimated from evenly spaced frames)."),
    fusion: bool = typer.Option(True, "--fusion/--no-fusion", help="Dynamic runs: every frame pair's static tree "
                                "votes on where each node of the tracked tree lies (median correction)."),
    mirror_b: bool = typer.Option(False, "--mirror-b", help="View B's images are stored mirrored left-right: "
                                  "flip them back first."),
    geometry_check: str = typer.Option("auto", "--geometry-check", help="auto: check the view pairing from the "
                                       "vessels (epipolar consistency), correct view B's geometry when the check "
                                       "finds a clear correction and stop on an impossible pairing (mirrored or "
                                       "swapped views); warn: check and flag only; off: no check."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Reconstruct the 3D vessel tree at every cardiac phase of a case or a DICOM pair.

    Angiograms are segmented first. Frames of the two views are paired by
    cardiac phase. With two or more frame pairs the result is dynamic (one
    topology, nodes move with the heart; per-node motion in the result)
    unless --static is given.
    """
    from autocar.errors import AutocarError
    from autocar.pipeline.static import ReconstructConfig
    from autocar.pipeline.workflow import RunOptions, run

    try:
        if ghost_order not in ("hand", "learned"):
            raise ValueError(f"--ghost-order must be hand or learned, got {ghost_order!r}")
        options = RunOptions(
            method=method, static=static, frames=frames, segmenter=segmenter, tree=tree,
            pixel_spacing_mm=_spacing(pixel_spacing), report=report, measurements=report, snapshot=report,
            lag_compensation=lag_compensation, fuse=fusion, frame_rate_hz=frame_rate,
            threads=threads, mirror_b=mirror_b, geometry_check=geometry_check,
            reconstruct=ReconstructConfig(threshold=threshold,
                                          learned_ghost_order=ghost_order == "learned", align_views=align_views,
                                          refine_centerline=refine),
        )
        net = None
        if method == "network" and model is not None:
            from autocar.net.train import load_model

            net = load_model(model)
        summary = run(case_dir, out, options, model=net, overwrite=overwrite, log=typer.echo)
        if method == "network" and summary.nodes == 0:
            typer.echo("note: the network kept no voxel; on real masks it can miss vessels "
                       "(see README, Accuracy); --method hull-graph reconstructs from the two-view hull with ghost pruning, "
                       "no network", err=True)
    except (AutocarError, ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(exc)


@app.command()
def batch(
    studies: Path = typer.Argument(..., exists=True, help="A folder whose sub-folders are studies (case folders or "
                                   "DICOM folders), or a CSV manifest with columns study, input[, tree]."),
    out: Path = typer.Option(..., "-o", "--out", help="Result root: one result folder per study, "
                             "batch_summary.csv and batch_summary.json."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Local worker processes (default: up to 2; "
                                          "each gets cores / workers torch threads)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Run on a Dask distributed cluster at this "
                                            "address (e.g. tcp://10.0.0.5:8786) instead of local processes."),
    static: bool = typer.Option(False, "--static", help="Reconstruct every frame pair independently."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Only the first N frame pairs of each study."),
    segmenter: str = typer.Option("unet", "--segmenter", help="For angiograms: unet or frangi."),
    tree: Optional[str] = typer.Option(None, "--tree", help="left or right for every study (a manifest's tree "
                                       "column wins)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html, measurements.json and "
                                "snapshot.png for each study."),
) -> None:
    """Reconstruct every study of an archive: resumable, one failure never stops the rest.

    A study whose result folder is complete is skipped, so rerunning the same command after a
    crash or a kill finishes the rest. The summary (status, reason, time, quality signals per
    study) is rewritten after every study. Exit code 0 when every study has a result, 1 when
    some failed (see the summary), 2 on bad arguments.
    """
    from autocar.errors import AutocarError
    from autocar.pipeline.batch import SUMMARY_CSV, find_studies, read_manifest, run_batch
    from autocar.pipeline.workflow import RunOptions

    try:
        options = RunOptions(static=static, frames=frames, segmenter=segmenter, tree=tree, report=report,
                             measurements=report, snapshot=report)
        found = read_manifest(studies) if studies.is_file() else find_studies(studies)
        if scheduler is not None:
            try:
                import distributed  # noqa: F401
            except ImportError:
                raise ValueError("--scheduler needs dask.distributed: pip install 'autocar[batch]'") from None
        result = run_batch(found, out, options, workers=workers, scheduler=scheduler)
    except (AutocarError, ValueError, OSError) as exc:
        _fail(exc)
    ok, earlier, failed = result.count("ok"), result.count("done earlier"), result.count("failed")
    typer.echo(f"{len(result.rows)} studies: {ok} reconstructed, {earlier} done earlier, {failed} failed "
               f"(summary: {out / SUMMARY_CSV})")
    for row in result.rows:
        if row["status"] == "failed":
            typer.echo(f"  failed {row['study']}: {row['reason']}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def report(
    result: Path = typer.Argument(..., exists=True, help="Result folder (or its reconstruction.json)."),
    input_path: Optional[Path] = typer.Option(None, "--input", exists=True,
                                              help="Case or DICOM folder the result came from (shows its images)."),
    tree: Optional[str] = typer.Option(None, "--tree", help="left or right (names the vessels)."),
    frame: Optional[int] = typer.Option(None, "--frame", min=0, help="Frame to measure (default: the reference)."),
) -> None:
    """Measure a result again and rewrite its measurements.json and report.html."""
    from autocar.errors import AutocarError
    from autocar.pipeline.workflow import rewrite_report

    try:
        if tree not in (None, "left", "right"):
            raise ValueError(f"--tree must be left or right, got {tree!r}")
        for path in rewrite_report(result, input_path, tree=tree, frame=frame):
            typer.echo(f"wrote {path}")
    except (AutocarError, ValueError, FileNotFoundError) as exc:
        _fail(exc)


@app.command()
def evaluate(
    result: Path = typer.Argument(..., exists=True, help="Result folder or reconstruction.json."),
    truth: Optional[Path] = typer.Option(None, "--truth", exists=True, help="ground_truth.json (or the case folder holding it)."),
    case_dir: Optional[Path] = typer.Option(None, "--case", exists=True, help="Case folder: also score reprojection against its masks."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full report (per frame) to this JSON file."),
) -> None:
    """Score a reconstruction against 3D ground truth and/or the case's 2D masks."""
    from autocar.errors import AutocarError
    from autocar.evaluation.evaluate import evaluate_reconstruction
    from autocar.io.atomic import atomic_write_json
    from autocar.io.case import read_case
    from autocar.io.results import read_ground_truth, read_reconstruction

    try:
        rec = read_reconstruction(result)
        gt = None
        if truth is not None:
            gt = read_ground_truth(truth) if truth.is_dir() else read_reconstruction(truth)
        case = read_case(case_dir) if case_dir is not None else None
        report = evaluate_reconstruction(rec, truth=gt, case=case)
        for key, value in report["mean"].items():
            typer.echo(f"{key:>28s}: {value:.4g}")
        if json_out is not None:
            atomic_write_json(json_out, report)
    except (AutocarError, ValueError, FileNotFoundError) as exc:
        _fail(exc)


@app.command()
def snapshot(
    result: Path = typer.Argument(..., exists=True, help="Result folder, reconstruction.json or ground_truth.json."),
    out: Path = typer.Option(..., "-o", "--out", help="PNG file to write."),
    frame: int = typer.Option(0, "--frame", min=0, help="Which frame."),
    size: int = typer.Option(384, "--size", min=64, max=2048, help="Panel size in pixels."),
) -> None:
    """PNG of a reconstructed tree seen from three angles (RAO 30/CAU 20, LAO 45/CRA 20, LAO 90)."""
    from autocar.errors import AutocarError
    from autocar.io.results import read_reconstruction
    from autocar.report.snapshot import write_snapshot

    try:
        rec = read_reconstruction(result)
        if frame >= len(rec.frames):
            raise ValueError(f"{result}: frame {frame} requested, the result has {len(rec.frames)} frame(s)")
        write_snapshot(rec.frames[frame], out, size_px=size)
        typer.echo(f"{out}: frame {frame}, {rec.frames[frame].num_nodes} nodes")
    except (AutocarError, ValueError) as exc:
        _fail(exc)


@app.command()
def train(
    out: Path = typer.Argument(..., help="Run folder: checkpoint.pt, model.pt, config.json, train_log.jsonl."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    steps: int = typer.Option(100, "--steps", min=1, help="Samples per epoch (one fresh sample per step)."),
    val_samples: int = typer.Option(8, "--val-samples", min=1),
    lr: float = typer.Option(3e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    base_channels: int = typer.Option(16, "--base-channels", min=4),
    depth: int = typer.Option(4, "--depth", min=1, max=6),
    tree: List[str] = typer.Option(["left", "right"], "--tree", help="Trees to train on (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    init: Optional[Path] = typer.Option(None, "--init", exists=True, dir_okay=False,
                                        help="Start from this model.pt (fine-tuning; its network sizes are used)."),
    rotate_deg: float = typer.Option(0.0, "--rotate-deg", min=0.0, max=180.0,
                                     help="Rotate each sample's scene by up to this angle (random axis)."),
    size_jitter: float = typer.Option(0.0, "--size-jitter", min=0.0, max=0.5,
                                      help="Scale each sample's tree by 1 +- up to this fraction."),
    real_tree: List[Path] = typer.Option([], "--real-tree", exists=True, dir_okay=False,
                                         help="A real centre-line file (.vtp, label volume, ...) whose left and "
                                              "right trees some samples are drawn from (repeatable)."),
    real_fraction: float = typer.Option(0.0, "--real-fraction", min=0.0, max=1.0,
                                        help="Share of the samples drawn from the --real-tree files."),
    segmented_fraction: float = typer.Option(0.0, "--segmented-fraction", min=0.0, max=1.0,
                                             help="Share of the samples whose masks are the shipped 2D U-Net's "
                                                  "segmentation of rendered grey angiograms (the masks users' "
                                                  "angiograms give) instead of exact vessel masks."),
) -> None:
    """Train the reconstruction network on pose-adapted samples drawn on the fly (generated trees,
    and real trees with --real-tree)."""
    from autocar.net.model import NetConfig
    from autocar.net.train import TrainConfig, load_model
    from autocar.net.train import train as run_training

    try:
        net = NetConfig(base_channels=base_channels, depth=depth) if init is None else load_model(init).config
        config = TrainConfig(
            sides=tuple(tree), epochs=epochs, steps_per_epoch=steps, val_samples=val_samples, lr=lr,
            seed=seed, threads=threads, device=device, net=net,
            init_weights=None if init is None else str(init), rotate_deg=rotate_deg, size_jitter=size_jitter,
            real_trees=tuple(str(p) for p in real_tree), real_fraction=real_fraction,
            segmented_fraction=segmented_fraction,
        )
        config.sample_config()  # a real fraction without files is refused here, before any work
        for side in config.sides:
            if side not in ("left", "right"):
                raise ValueError(f"--tree must be left or right, got {side!r}")
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {device}: no CUDA device is available")
        if resume and not (out / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"--resume: {out / 'checkpoint.pt'} does not exist")
        path = run_training(config, out, resume=resume)
        typer.echo(f"weights: {path}")
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)


@app.command("train-seg2d")
def train_seg2d_command(
    out: Path = typer.Argument(..., help="Run folder: model.pt, config.json, train_log.jsonl, checkpoint."),
    epochs: int = typer.Option(15, "--epochs", min=1),
    steps: int = typer.Option(100, "--steps", min=1, help="Steps (batches) per epoch."),
    seed: int = typer.Option(0, "--seed"),
    synth_fraction: float = typer.Option(0.4, "--synth-fraction", min=0.0, max=1.0,
                                         help="Share of synthetic crops (the rest from --dca1-dir)."),
    dca1_dir: Optional[Path] = typer.Option(None, "--dca1-dir", exists=True, file_okay=False,
                                            help="DCA1 folder holding Angios_40_training/ (the testing half is refused)."),
    threads: int = typer.Option(1, "--threads", min=1),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr"),
    crop: int = typer.Option(192, "--crop", min=32),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Wall-time budget, s."),
    init: Optional[Path] = typer.Option(None, "--init", exists=True, dir_okay=False,
                                        help="Start from these seg2d weights (fine-tuning)."),
    base_channels: Optional[int] = typer.Option(None, "--base-channels", min=1,
                                                help="U-Net channels at full resolution (default: UNetConfig's; "
                                                     "--init's model keeps its own)."),
    depth: Optional[int] = typer.Option(None, "--depth", min=1,
                                        help="U-Net down-sampling levels (default: UNetConfig's; --init's model keeps its own)."),
    max_channels: Optional[int] = typer.Option(None, "--max-channels", min=1,
                                               help="Cap of the U-Net channel count (default: UNetConfig's; "
                                                    "--init's model keeps its own)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt (same options; --epochs may grow)."),
    catheter_class: bool = typer.Option(False, "--catheter-class",
                                        help="Train a second output, the guiding catheter, which is then never called vessel "
                                             "(with --init of a one-channel model its vessel head is kept)."),
    session_limit: Optional[float] = typer.Option(None, "--session-limit", min=0.0,
                                                  help="Stop this call after the epoch that passes this many seconds "
                                                       "(the learning-rate schedule is not changed); continue with --resume."),
) -> None:
    """Train the 2D vessel segmenter of angiograms (see src/autocar/weights/SEG2D.md)."""
    from autocar.errors import AutocarError
    from autocar.seg2d.train import train_seg2d
    from autocar.seg2d.unet import UNetConfig

    try:
        given = {"base_channels": base_channels, "depth": depth, "max_channels": max_channels}
        unet = UNetConfig(**{k: v for k, v in given.items() if v is not None})
        path = train_seg2d(out, epochs=epochs, steps=steps, seed=seed, synth_fraction=synth_fraction,
                           dca1_dir=dca1_dir, threads=threads, batch_size=batch_size, lr=lr, crop=crop,
                           time_limit_s=time_limit, init_weights=init, unet=unet, resume=resume,
                           session_limit_s=session_limit, catheter_channel=catheter_class)
        typer.echo(f"best model: {path}")
    except (AutocarError, ValueError, FileNotFoundError) as exc:
        _fail(exc)


@app.command("train-ghost-scorer")
def train_ghost_scorer_command(
    out: Path = typer.Argument(..., help="Folder for ghost_scorer.json (scorer, config, metrics) and train_log.jsonl."),
    cases: int = typer.Option(64, "--cases", min=1, help="Synthetic training pairs (seeds SEED + i)."),
    val_cases: int = typer.Option(16, "--val-cases", min=1, help="Validation pairs (seeds VAL_SEED + i)."),
    seed: int = typer.Option(1_600_000, "--seed"),
    val_seed: int = typer.Option(1_700_000, "--val-seed"),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Collection rounds (2+: later rounds prune in the learned order)."),
    l2: float = typer.Option(1e-2, "--l2", min=0.0),
    threads: int = typer.Option(2, "--threads", min=1),
    model: Optional[Path] = typer.Option(None, "--model", exists=True, dir_okay=False,
                                         help="Static network weights (default: the shipped ones)."),
    features: Optional[str] = typer.Option(None, "--features",
                                           help="Comma-separated subset of the branch features (default: all)."),
) -> None:
    """Fit the learned ghost-branch score used to order ghost pruning (see src/autocar/weights/README.md)."""
    from autocar.errors import AutocarError
    from autocar.graph.ghost_score import FEATURES
    from autocar.pipeline.ghost_training import train_ghost_scorer

    try:
        chosen = FEATURES if features is None else tuple(f.strip() for f in features.split(",") if f.strip())
        data = train_ghost_scorer(out, cases=cases, val_cases=val_cases, seed=seed, val_seed=val_seed, l2=l2,
                                  rounds=rounds, threads=threads, model_path=model, features=chosen)
    except (AutocarError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    m = data["metrics"]
    typer.echo(f"ghost scorer: {Path(out) / 'ghost_scorer.json'}; validation AUC {m['val_auc']:.3f} "
               f"(width mismatch alone {m['val_auc_width_mismatch_alone']:.3f}), accuracy {m['val_accuracy']:.3f}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "-o", "--out", help="Folder for the demo outputs."),
    frames: Optional[int] = typer.Option(None, "--frames", min=2, help="Only the first N frame pairs (default: all 6)."),
    segmenter: str = typer.Option("unet", "--segmenter", help="unet (shipped) or frangi (classical baseline)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch threads (default: the free cores)."),
) -> None:
    """Run the whole pipeline on the bundled synthetic DICOM pair: segment, reconstruct, measure, report."""
    from autocar.pipeline.demo import run_demo
    from autocar.errors import AutocarError

    try:
        run_demo(out, frames=frames, segmenter=segmenter, threads=threads)
    except (AutocarError, ValueError, FileNotFoundError, OSError) as exc:
        _fail(exc)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
