"""From what the cath lab hands over to a result folder a clinician can read.

Input: a folder of two XA DICOM runs (one multi-frame file per view), or a
CASE_FORMAT v1 case folder of kind ``mask`` or ``image``. Steps:

1. Read the input (:func:`load_input`): DICOM geometry, frame times and
   cardiac phase from the tags (:mod:`autocar.io.dicom`).
2. Segment grey-level angiograms into vessel masks (:func:`segment_case`):
   the shipped 2D U-Net (default) or the Frangi baseline.
3. Reconstruct: dynamic over the heartbeat (one topology) when there are two
   or more frame pairs, else static (:mod:`autocar.pipeline.dynamic`,
   :mod:`autocar.pipeline.static`).
4. Measure on the reference frame (:mod:`autocar.quant`): segments,
   foreshortening, diameters, stenoses, optimal views.
5. Write, all or nothing (a temporary folder renamed at the end):
   ``reconstruction.json``, ``frame_XXX.ply``, ``measurements.json``,
   ``report.html`` and ``snapshot.png``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autocar.errors import CaseFormatError
from autocar.io.case import Case, CaseView
from autocar.pipeline.static import ReconstructConfig

__all__ = ["RunOptions", "RunSummary", "load_input", "segment_case", "run", "rewrite_report"]

MEASUREMENTS_FILE = "measurements.json"
REPORT_FILE = "report.html"
SNAPSHOT_FILE = "snapshot.png"
# A whole left tree of the synthetic world or of CT (ASOCA) is 300-900 mm of centre line.
MAX_MEASURED_LENGTH_MM = 2500.0


@dataclass(frozen=True)
class RunOptions:
    """Options of :func:`run`.

    method : "network", "hull-graph" or "hull-skeleton" (see ``autocar reconstruct``).
    static : reconstruct frame pairs independently (no tracking).
    frames : only the first N frame pairs.
    segmenter : "unet" (shipped 2D U-Net) or "frangi" (classical baseline) for image input.
    pixel_spacing_mm : detector spacing override for DICOM files that lack it.
    tree : "left" / "right" when known (names the vessels in the measurements).
    report, measurements, snapshot : write those files.
    lag_compensation : dynamic runs synthesise view B at view A's phase
        (:mod:`autocar.dynamic.lag`).
    fuse : dynamic runs let every frame pair vote on node positions
        (:mod:`autocar.dynamic.fuse`).
    frame_alignment : dynamic runs warp each frame pair's view B mask across
        its epipolar lines before the static step and the tracking. None
        (default): on for mask input, off for masks segmented here from
        angiograms (where it lost F1 and added false stenoses, see
        :func:`autocar.pipeline.dynamic.reconstruct_dynamic`).
    frame_rate_hz : frame rate of runs that carry neither frame times nor
        cardiac phases (frames then taken as evenly spaced at this rate, so the
        phase can be estimated); runs with frame times keep them.
    unet_threshold : probability above which the U-Net calls a pixel vessel (in (0, 1)).
    unet_weights : another 2D U-Net weights file (``autocar train-seg2d``'s model.pt) instead of
        the shipped one.
    segment_in_mm : tell the U-Net each view's isocentre pixel size, so on images finer than
        0.2 mm per pixel it adds the wide vessels it finds at 0.4 mm (:mod:`autocar.seg2d.segment`).
    mirror_b : view B's images are stored mirrored left-right: flip them back before anything.
    grey_diameters : for angiogram input, a stenosis found on the masks' widths must also show
        in the lumen measured in the grey images' cross-section profiles (:mod:`autocar.quant.lumen`),
        which then give its MLD, reference and %DS; mask input has only the masks.
    geometry_check : "auto" (default): check the view pairing on the frame pair with the most
        vessel (:func:`autocar.sbp.calibration.check_pairing`), correct view B's geometry when the
        check finds a clear correction, and stop with the reason on an impossible pairing
        (view B mirrored, views swapped); "warn": the same check, but nothing is changed or
        stopped (the result is flagged); "off": no check.
    threads : torch threads for the whole run (segmentation, network, tracking); None
        (default): :func:`available_threads`, the cores not already busy, so a run beside
        another job does not oversubscribe the machine. Overrides ``reconstruct.threads``.
    """

    method: str = "network"
    static: bool = False
    frames: int | None = None
    segmenter: str = "unet"
    pixel_spacing_mm: float | tuple[float, float] | None = None
    tree: str | None = None
    report: bool = True
    measurements: bool = True
    snapshot: bool = True
    reconstruct: ReconstructConfig = ReconstructConfig()
    lag_compensation: bool = True
    fuse: bool = True
    frame_alignment: bool | None = None
    frame_rate_hz: float | None = None
    segment_in_mm: bool = True
    unet_threshold: float = 0.5
    unet_weights: str | None = None
    mirror_b: bool = False
    grey_diameters: bool = True
    geometry_check: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.geometry_check not in ("auto", "warn", "off"):
            raise ValueError(f"geometry check must be auto, warn or off, got {self.geometry_check!r}")
        if not 0.0 < float(self.unet_threshold) < 1.0:
            raise ValueError(f"unet_threshold must be in (0, 1), got {self.unet_threshold!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) != self.threads
                                         or self.threads < 1):
            raise ValueError(f"threads must be an integer >= 1, got {self.threads!r}")
        if self.frame_rate_hz is not None and not (np.isfinite(self.frame_rate_hz) and self.frame_rate_hz > 0):
            raise ValueError(f"frame rate must be a finite number of frames per second > 0, got {self.frame_rate_hz}")
        if self.method not in ("network", "hull-graph", "hull-skeleton"):
            raise ValueError(f"method must be network, hull-graph or hull-skeleton, got {self.method!r}")
        if self.segmenter not in ("unet", "frangi"):
            raise ValueError(f"segmenter must be unet or frangi, got {self.segmenter!r}")
        if self.tree not in (None, "left", "right"):
            raise ValueError(f"tree must be left or right, got {self.tree!r}")


@dataclass
class RunSummary:
    """What :func:`run` did: paths, counts, timings (s) and the headline readouts."""

    out: Path
    source: str
    frames: int
    dynamic: bool
    nodes: int
    length_mm: float
    reference_frame: int
    seconds: dict[str, float] = field(default_factory=dict)
    stenoses: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)
    motion_mean_mm: float | None = None
    pairing: str = ""
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    threads: int | None = None
    quality: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A one-screen text summary."""
        kind = "dynamic (one topology over the heartbeat)" if self.dynamic else "static"
        out = [f"result: {self.out}",
               f"input: {self.source}; {self.frames} frame pair(s), {kind}",
               *([self.pairing] if self.pairing else []),
               f"tree: {self.nodes} centre-line nodes, {self.length_mm:.0f} mm of vessel (frame {self.reference_frame})"]
        if self.motion_mean_mm is not None:
            out.append(f"motion over the cycle: mean {self.motion_mean_mm:.1f} mm per node")
        for s in self.segments[:6]:
            fs = ", ".join(f"{k} {v:.0f}%" for k, v in (s.get("foreshortening_percent") or {}).items()
                           if v is not None)
            out.append(f"  {s['name']:>12s}: {s['length_mm']:.0f} mm, mean diameter {s['mean_diameter_mm']:.1f} mm"
                       + (f", foreshortening {fs}" if fs else ""))
        for st in self.stenoses:
            out.append(f"  stenosis on {st['name']}: {st['diameter_stenosis_percent']:.0f}% diameter, "
                       f"{st['lesion_length_mm']:.1f} mm long, {st['distance_from_ostium_mm']:.0f} mm from the ostium")
        if not self.stenoses and self.segments:
            out.append("  no stenosis above the reporting threshold")
        out.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
                   + (f" ({self.threads} torch thread{'s' if self.threads != 1 else ''})" if self.threads else ""))
        out.extend(f"note: {n}" for n in self.notes)
        flags = self.quality.get("flags") or []
        if flags:
            out.append(f"QUALITY WARNING: this result failed {len(flags)} quality check(s); do not use it without review:")
            out.extend(f"  - {f}" for f in flags)
        if REPORT_FILE in self.files:
            out.append(f"report: {self.out / REPORT_FILE}")
        return out


def load_input(path: str | Path, options: RunOptions = RunOptions()) -> tuple[Case, str]:
    """Read a DICOM folder (two XA runs) or a case folder; returns the case and a description."""
    from autocar.io.case import read_case
    from autocar.io.dicom import case_from_dicom_dir, find_xa_files

    p = Path(path)
    if p.is_dir() and not (p / "case.json").is_file():
        if not find_xa_files(p):
            raise CaseFormatError(f"{p}: neither a case folder (no case.json) nor a folder of XA DICOM files")
        case = case_from_dicom_dir(p, pixel_spacing_mm=options.pixel_spacing_mm, tree=options.tree)
        names = ", ".join(v["file"] for v in case.metadata["source"].values())
        return case, f"DICOM folder {p} ({names})"
    case = read_case(p)
    if options.tree is not None and case.tree is None:
        case = Case(views=case.views, tree=options.tree, metadata=case.metadata, path=case.path)
    return case, f"case folder {case.path} (kind {case.views[0].kind})"


def segment_case(case: Case, segmenter: str = "unet", *, progress: bool = True,
                 in_mm: bool = True, unet_threshold: float = 0.5,
                 unet_weights: str | Path | None = None) -> tuple[Case, dict[str, np.ndarray]]:
    """Vessel-mask case of an image case (mask views pass through), and the grey images per view name.

    ``in_mm``: the U-Net is told each view's isocentre pixel size (see RunOptions.segment_in_mm);
    ``unet_threshold``: its probability threshold (RunOptions.unet_threshold); ``unet_weights``:
    another weights file (RunOptions.unet_weights)."""
    from tqdm import tqdm

    images: dict[str, np.ndarray] = {}
    views = []
    todo = [cv for cv in case.views if cv.kind == "image"]
    if todo:
        if segmenter == "unet":
            from autocar.seg2d.segment import default_model, load_model, segment_angiograms

            model = default_model() if unet_weights is None else load_model(unet_weights)

            def seg(frames: np.ndarray, spacing: float | None) -> np.ndarray:
                return np.stack(segment_angiograms(np.asarray(frames), model, unet_threshold, spacing_mm=spacing))
        else:
            from autocar.seg2d.frangi import frangi_segment

            def seg(frames: np.ndarray, spacing: float | None) -> np.ndarray:
                return np.stack([frangi_segment(f) for f in frames])
    bar = tqdm(total=sum(cv.num_frames for cv in todo), desc="segment", unit="frame", disable=not progress or not todo)
    for cv in case.views:
        if cv.kind != "image":
            views.append(cv)
            continue
        frames = np.asarray(cv.frames)
        masks = []
        # The U-Net adds the wide vessels it finds at its training pixel size (seg2d.segment).
        spacing = float(np.mean(cv.view.isocenter_spacing_mm)) if in_mm else None
        for k in range(frames.shape[0]):
            masks.append(seg(frames[k : k + 1], spacing)[0])
            bar.update(1)
        masks_arr = np.stack(masks)
        for k, m in enumerate(masks_arr):
            if not m.any():
                raise CaseFormatError(f"view {cv.name} frame {k}: the {segmenter} segmenter found no vessel")
        images[cv.name] = frames
        views.append(CaseView(name=cv.name, view=cv.view, kind="mask", frames=masks_arr,
                              frame_times_ms=cv.frame_times_ms, cardiac_phase=cv.cardiac_phase))
    bar.close()
    return Case(views=tuple(views), tree=case.tree, metadata=case.metadata, path=case.path), images


def _measure(graph: Any, case: Case, frame: int, pair: np.ndarray | None = None,
             images: dict[str, np.ndarray] | None = None) -> dict[str, Any] | None:
    """The measurements of ``graph`` (reconstruction frame ``frame``); with ``pair`` (the frames of A
    and B it was made from) a stenosis is kept only when both views' masks show it and, with
    ``images`` (grey frames per view name), the grey profiles too
    (:func:`autocar.quant.evidence.measure_with_evidence`)."""
    from autocar.quant.evidence import measure_with_evidence

    if graph.num_nodes < 2:
        return None
    a, b = case.views[0], case.views[1]
    masks = grey = None
    if pair is not None:
        masks = [np.asarray(a.frames[int(pair[0])]), np.asarray(b.frames[int(pair[1])])]
        if images and a.name in images and b.name in images:
            grey = [np.asarray(images[a.name][int(pair[0])]), np.asarray(images[b.name][int(pair[1])])]
    return measure_with_evidence(graph, [a.view, b.view], view_names=(a.name, b.name), side=case.tree,
                                 frame=frame, masks=masks, images=grey)


def _assess(rec: Any, graph: Any, case: Case, pair: np.ndarray, pairing: dict[str, Any] | None) -> tuple[Any, dict]:
    """The result with its ``quality`` (and ``pairing_check``) entries, and the quality record."""
    from autocar.evaluation.quality import quality_signals
    from autocar.io.results import Reconstruction

    a, b = case.views[0], case.views[1]
    ka, kb = int(pair[0]), int(pair[1])
    motion = rec.extra.get("motion", {}).get("max_mm") if isinstance(rec.extra.get("motion"), dict) else None
    report = quality_signals(graph, [a.view, b.view], [a.frames[ka], b.frames[kb]], motion_max_mm=motion,
                             pairing=pairing)
    quality = report.to_dict()
    extra = {**rec.extra, "quality": quality}
    if pairing is not None:
        extra["pairing_check"] = pairing
    return Reconstruction(rec.frames, extra, rec.frame_extra), quality


def _pairing_line(rec: Any) -> str:
    info = rec.extra.get("frame_pairing")
    if not isinstance(info, dict):
        return ""
    note = f" ({info['note']})" if info.get("note") else ""
    return f"frame pairs by {info.get('source')}: {rec.extra.get('frame_pairs')}{note}"


MAX_VESSEL_SHARE = 0.5
"""A vessel mask in which more than this share of the image is vessel is refused (an inverted
mask or not a mask: coronary vessels cover a few percent of an angiogram)."""


def check_vessel_masks(case: Case, source: str, origin: str = "mask") -> None:
    """CaseFormatError naming the view and frame of a mask that is mostly vessel (see MAX_VESSEL_SHARE)."""
    for cv in case.views[:2]:
        frames = np.asarray(cv.frames)
        if frames.ndim != 3 or not len(frames):
            continue
        share = frames.reshape(len(frames), -1).astype(bool).mean(axis=1)
        bad = np.flatnonzero(share > MAX_VESSEL_SHARE)
        if len(bad):
            k = int(bad[0])
            what = ("the segmentation of its angiogram" if origin == "segmented" else "its vessel mask")
            raise CaseFormatError(
                f"{source}: view {cv.name} frame {k}: {100 * share[k]:.0f} % of {what} is vessel; a vessel mask has "
                "vessels > 0 on a background of 0 (is it inverted, or not a mask?)")


def available_threads() -> int:
    """Cores this process may use that no other job is keeping busy: the cores it may run on
    minus the 1-minute load average, rounded, at least 1.

    Torch's intra-op threads spin-wait for each other: with one more thread than free cores a
    run slows down many times over (see ``benchmarks/bench_threads.py``), so a run started
    beside another job takes only the free cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def check_writable(out: Path) -> None:
    """OutputError when the result folder ``out`` cannot be created where it is asked for.

    Checked before any work: the parent folder is created if needed and a temporary folder is
    made and removed in it, as the atomic writer will do at the end."""
    import tempfile

    from autocar.errors import OutputError

    parent = Path(out).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{Path(out).name}.probe-", dir=parent)
        os.rmdir(probe)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the result there ({exc.strerror or exc})") from None


def with_frame_rate(case: Case, frame_rate_hz: float) -> Case:
    """``case`` with evenly spaced frame times (ms) at ``frame_rate_hz`` on every view that has neither
    frame times nor cardiac phases (the others unchanged)."""
    from dataclasses import replace

    views = []
    for cv in case.views:
        if cv.frame_times_ms is None and cv.cardiac_phase is None:
            cv = replace(cv, frame_times_ms=np.arange(cv.num_frames, dtype=np.float64) * (1000.0 / frame_rate_hz))
        views.append(cv)
    return replace(case, views=tuple(views))


def mirror_view_b(case: Case) -> Case:
    """``case`` with view B's frames flipped left-right (a run stored mirrored)."""
    b = case.views[1]
    flipped = replace(b, frames=np.ascontiguousarray(np.asarray(b.frames)[:, :, ::-1]))
    return replace(case, views=(case.views[0], flipped, *case.views[2:]))


def _check_frame(case: Case, n_pairs: int) -> int:
    """The frame pair (k, k), k < n_pairs, whose smaller vessel area is the largest."""
    a, b = case.views[0], case.views[1]
    area = [min(int(np.count_nonzero(a.frames[k])), int(np.count_nonzero(b.frames[k]))) for k in range(n_pairs)]
    return int(np.argmax(area))


def check_geometry(case: Case, n_pairs: int, mode: str, source: str,
                   images: dict[str, np.ndarray]) -> tuple[Case, dict[str, np.ndarray], dict[str, Any], list[str]]:
    """Run the pairing check of ``mode`` ("auto" / "warn") on a mask case; returns the case (view B
    corrected when "auto" found a correction), the images (warped alike), the check's record and notes.

    Raises GeometryError on an impossible pairing in "auto" mode.
    """
    from autocar.errors import GeometryError
    from autocar.sbp.calibration import check_pairing
    from autocar.sbp.epipolar import warp_image, warp_mask

    k = _check_frame(case, n_pairs)
    a, b = case.views[0], case.views[1]
    check = check_pairing([a.frames[k], b.frames[k]], [a.view, b.view])
    record = {**check.to_dict(), "frame": k, "mode": mode}
    notes: list[str] = []
    if check.verdict in ("mirrored", "swapped"):
        if mode == "auto":
            raise GeometryError(f"{source}: {check.message}. Use --geometry-check warn to reconstruct anyway.")
        notes.append(check.message)
    elif check.verdict == "corrected":
        if mode == "auto":
            corr = check.correction
            frames = np.stack([warp_mask(f, corr.warp) for f in np.asarray(b.frames)]).astype(np.uint8)
            case = replace(case, views=(a, replace(b, view=corr.view, frames=frames), *case.views[2:]))
            if b.name in images:
                images = {**images, b.name: np.stack([warp_image(im, corr.warp).astype(np.asarray(im).dtype)
                                                      for im in images[b.name]])}
            record["applied"] = True
            notes.append(check.message + "; view B's images are shown warped to the corrected geometry")
        else:
            record["applied"] = False
            notes.append(check.message.replace("corrected", "needs a correction") + " (not applied: --geometry-check warn)")
    return case, images, record, notes


def run(
    path: str | Path,
    out: str | Path,
    options: RunOptions = RunOptions(),
    *,
    model: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """The whole pipeline on one input (see the module doc); returns a summary.

    Raises
    ------
    FileExistsError : ``out`` exists and ``overwrite`` is False (checked first).
    AutocarError subclasses : bad input, named.
    """
    from autocar.io.atomic import atomic_directory
    from autocar.io.results import write_reconstruction
    from autocar.io.meshes import tube_mesh, write_ply

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite (--overwrite) to replace it")
    check_writable(out)
    import torch

    threads = options.threads if options.threads is not None else available_threads()
    torch.set_num_threads(threads)
    options = replace(options, reconstruct=replace(options.reconstruct, threads=threads))
    say = log or (lambda s: None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    case, source = load_input(path, options)
    if options.frame_rate_hz is not None:
        case = with_frame_rate(case, options.frame_rate_hz)
    seconds["read"] = time.perf_counter() - t0
    if len(case.views) < 2:
        raise CaseFormatError(f"{source}: a reconstruction needs two views, got {len(case.views)}")
    if options.mirror_b:
        case = mirror_view_b(case)
    t0 = time.perf_counter()
    mask_case, images = segment_case(case, options.segmenter, progress=progress, in_mm=options.segment_in_mm,
                                     unet_threshold=options.unet_threshold, unet_weights=options.unet_weights)
    check_vessel_masks(mask_case, source, "segmented" if images else "mask")
    if images:
        seconds["segment"] = time.perf_counter() - t0
    a, b = mask_case.views[0], mask_case.views[1]
    n_pairs = min(a.num_frames, b.num_frames) if options.frames is None else min(a.num_frames, options.frames)
    n_pairs = max(1, min(n_pairs, a.num_frames, b.num_frames))
    notes: list[str] = []
    pairing_record = None
    if options.geometry_check != "off":
        t0 = time.perf_counter()
        mask_case, images, pairing_record, check_notes = check_geometry(mask_case, n_pairs, options.geometry_check,
                                                                        source, images)
        notes.extend(check_notes)
        seconds["geometry check"] = time.perf_counter() - t0
        a, b = mask_case.views[0], mask_case.views[1]
    use_network = options.method == "network"
    config = options.reconstruct
    if options.method == "hull-skeleton":
        config = config.raw_hull()
    if use_network and model is None:
        from autocar.pipeline.static import default_model

        model = default_model()
    t0 = time.perf_counter()
    meshes = None
    reference = 0
    if options.static or n_pairs < 2:
        from autocar.pipeline.static import reconstruct_case

        rec, results = reconstruct_case(mask_case, model, config, frames=options.frames, use_network=use_network,
                                        progress=progress)
        # Independent frames have their own node lists: measure frame 0 (the one the report's
        # segments refer to) unless it is empty.
        lengths = [r.graph.total_length_mm for r in results]
        reference = 0 if results[0].graph.num_nodes else int(np.argmax(lengths))
    else:
        from autocar.dynamic.fuse import FuseConfig
        from autocar.pipeline.dynamic import deformed_meshes, reconstruct_dynamic

        dyn = reconstruct_dynamic(mask_case, model, config, frames=options.frames, use_network=use_network,
                                  progress=progress, lag_compensation=options.lag_compensation,
                                  frame_alignment=(not images) if options.frame_alignment is None
                                  else options.frame_alignment,
                                  fuse=FuseConfig() if options.fuse else None)
        rec = dyn.reconstruction
        reference = int(rec.extra.get("reference_frame", 0))
        meshes = deformed_meshes(dyn, sections=config.mesh_sections)
    seconds["reconstruct"] = time.perf_counter() - t0
    graph = rec.frames[reference]
    pairs = np.asarray(rec.extra.get("frame_pairs", [[k, k] for k in range(rec.num_frames)]), dtype=np.int64)
    rec, quality = _assess(rec, graph, mask_case, pairs[reference], pairing_record)
    if graph.num_nodes == 0:
        notes.append("nothing was reconstructed: " + str(rec.frame_extra[reference].get("empty_reason", "")
                                                          if rec.frame_extra else ""))
    measurements = None
    if options.measurements and graph.total_length_mm > MAX_MEASURED_LENGTH_MM:
        notes.append(f"measurements skipped: the reconstruction holds {graph.total_length_mm:.0f} mm of centre line, "
                     f"more than one coronary tree can (> {MAX_MEASURED_LENGTH_MM:.0f} mm): mostly ghosts or "
                     "background segmented as vessel; check the masks or use --method network")
    elif options.measurements and graph.num_nodes >= 2:
        t0 = time.perf_counter()
        measurements = _measure(graph, mask_case, reference, pairs[reference],
                                images if options.grey_diameters else None)
        seconds["measure"] = time.perf_counter() - t0
        verdict = (quality.get("signals") or {}).get("pairing")
        if verdict in ("mirrored", "swapped", "inconsistent") and measurements.get("stenoses"):
            from autocar.quant.evidence import withhold_all

            measurements = withhold_all(measurements, f"the view pairing check found the geometry {verdict}: "
                                                      "no diameter or position of this result can be trusted")
        withheld = measurements.get("withheld_stenoses") or []
        if withheld:
            notes.append(f"{len(withheld)} narrowing(s) not reported as stenoses, each with its reason "
                         f"(measurements.json, withheld_stenoses)")
        if measurements.get("catheter"):
            cath = measurements["catheter"]
            notes.append(f"a guiding-catheter piece at the ostium ({cath['length_mm']:.0f} mm, diameter "
                         f"{2 * cath['radius_mm']:.1f} mm, then {2 * cath['ostium_radius_mm']:.1f} mm vessel) "
                         "is left out of the vessels")
    t0 = time.perf_counter()
    files: list[str] = []
    with atomic_directory(out, overwrite=overwrite) as tmp:
        tmp = Path(tmp)
        write_reconstruction(rec, tmp)
        files.append("reconstruction.json")
        for k, g in enumerate(rec.frames):
            mesh = meshes[k] if meshes is not None else tube_mesh(g, sections=config.mesh_sections)
            write_ply(mesh, tmp / f"frame_{k:03d}.ply")
            files.append(f"frame_{k:03d}.ply")
        if measurements is not None:
            from autocar.quant import write_measurements

            write_measurements(measurements, tmp / MEASUREMENTS_FILE)
            files.append(MEASUREMENTS_FILE)
        if options.report:
            from autocar.report import write_report

            shown = [images.get(cv.name) for cv in (a, b)]
            same_nodes = rec.is_dynamic or reference == 0
            write_report(tmp, rec, [a, b],
                         images=shown if all(s is not None for s in shown) else None,
                         masks=[np.asarray(a.frames), np.asarray(b.frames)],
                         frame_pairs=pairs, measurements=measurements if same_nodes else None,
                         title=f"autocar: {Path(path).name}", warnings=quality.get("flags") or None)
            files.append(REPORT_FILE)
        if options.snapshot and graph.num_nodes:
            from autocar.report.snapshot import write_snapshot

            write_snapshot(graph, tmp / SNAPSHOT_FILE)
            files.append(SNAPSHOT_FILE)
    seconds["write"] = time.perf_counter() - t0
    motion = rec.extra.get("motion", {}).get("mean_mm") if isinstance(rec.extra.get("motion"), dict) else None
    summary = RunSummary(
        out=out, source=source, frames=rec.num_frames, dynamic=rec.num_frames > 1 and "motion" in rec.extra,
        nodes=graph.num_nodes, length_mm=graph.total_length_mm, reference_frame=reference, seconds=seconds,
        stenoses=list(measurements["stenoses"]) if measurements else [],
        segments=list(measurements["segments"]) if measurements else [],
        motion_mean_mm=motion, files=files, notes=notes, pairing=_pairing_line(rec), threads=threads,
        quality=quality,
    )
    say("\n".join(summary.lines()))
    return summary



def rewrite_report(
    result: str | Path,
    input_path: str | Path | None = None,
    *,
    tree: str | None = None,
    frame: int | None = None,
    segmenter: str = "unet",
) -> list[Path]:
    """Measure a result folder again and rewrite its ``measurements.json`` and ``report.html``.

    The views come from the result (``views`` key, written by ``autocar
    reconstruct``) or from ``input_path`` (the case folder or DICOM folder it
    was made from), which also supplies the angiograms or masks shown in the
    report (angiograms are segmented only when the result lacks views and
    the input has no masks: never, for image input, since the views are in
    its DICOM tags). ``frame`` is the frame measured (default: the result's
    ``reference_frame``, else 0). Each file is written atomically.
    """
    from autocar.geometry import CArmView
    from autocar.io.results import read_reconstruction
    from autocar.quant import write_measurements
    from autocar.report import write_report

    result = Path(result)
    rec = read_reconstruction(result)
    out_dir = result if result.is_dir() else result.parent
    case = None
    if input_path is not None:
        case, _ = load_input(input_path, RunOptions(tree=tree))
    raw_views = rec.extra.get("views")
    if isinstance(raw_views, dict) and len(raw_views) >= 2:
        names = list(raw_views)[:2]
        try:
            views = [CArmView.from_dict(raw_views[n]) for n in names]
        except (KeyError, TypeError, ValueError) as exc:
            raise CaseFormatError(f"{result}: the 'views' of the result cannot be read: {exc}") from None
    elif case is not None:
        names = [cv.name for cv in case.views[:2]]
        views = [cv.view for cv in case.views[:2]]
    else:
        raise CaseFormatError(f"{result}: the result names no views; pass the case or DICOM folder it was made from")
    k = int(rec.extra.get("reference_frame", 0)) if frame is None else int(frame)
    if not 0 <= k < rec.num_frames:
        raise CaseFormatError(f"{result}: frame {k} requested, the result has {rec.num_frames} frame(s)")
    side = tree or (case.tree if case is not None else None)
    graph = rec.frames[k]
    written = []
    measurements = None
    if graph.num_nodes >= 2 and graph.total_length_mm <= MAX_MEASURED_LENGTH_MM:
        from autocar.quant import measure

        measurements = measure(graph, views, view_names=tuple(names), side=side, frame=k)
        written.append(write_measurements(measurements, out_dir / MEASUREMENTS_FILE))
    images = masks = None
    if case is not None:
        by_name = {cv.name: cv for cv in case.views}
        if all(n in by_name for n in names):
            arrays = [np.asarray(by_name[n].frames) for n in names]
            if all(by_name[n].kind == "image" for n in names):
                images = arrays
            else:
                masks = [a > 0 for a in arrays]
    pairs = np.asarray(rec.extra.get("frame_pairs", [[i, i] for i in range(rec.num_frames)]), dtype=np.int64)
    same_nodes = rec.is_dynamic or k == 0
    written.append(write_report(out_dir, rec, dict(zip(names, views)), images=images, masks=masks,
                                frame_pairs=pairs, measurements=measurements if same_nodes else None,
                                title=f"autocar: {out_dir.name}"))
    return written
