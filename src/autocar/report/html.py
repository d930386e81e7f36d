"""The self-contained ``report.html`` viewer of a reconstruction.

One HTML file that opens offline: the page's CSS and JavaScript
(``viewer.css``, ``viewer.js`` beside this module) and every angiogram
(base64 JPEG data URIs, at most 512 px a side) are inlined, and a
Content-Security-Policy forbids any network request. The page shows

- the 3D centre-line tree drawn as shaded tubes (drag to rotate, wheel to
  zoom), starting from view A's direction;
- the two angiograms of the current frame with the reconstruction projected
  onto them. The 2D positions are computed here with the exact C-arm
  geometry (:meth:`CArmView.project`) for every frame and embedded, so the
  page does no projection of its own;
- a frame slider (``id="frame-slider"``) with play/pause;
- the segments (from ``measurements`` or :meth:`CenterlineGraph.branches`):
  clicking one in any panel, the legend or the table highlights it in all;
- the measurement and stenosis tables (``autocar-measurements/1``);
- a red banner with the result's quality flags, when it has any.

The embedded data (:func:`report_payload`) is strict JSON (no NaN; a
non-finite measurement becomes ``null``), lengths rounded to 0.01 mm and
pixel positions to 0.01 px.

Shapes: T reconstruction frames (K frame pairs, K == T), N nodes, E edges,
V = 2 views, H x W image (rows x columns) px.
"""

from __future__ import annotations

import html
import importlib.resources
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autocar.errors import CaseFormatError
from autocar.geometry.carm import CArmView
from autocar.io.atomic import atomic_write_text
from autocar.io.results import Reconstruction
from autocar.report.payload import MEASUREMENTS_FORMAT, report_payload

__all__ = [
    "MEASUREMENTS_FORMAT",
    "REPORT_FILE",
    "report_html",
    "report_payload",
    "write_report",
]

REPORT_FILE = "report.html"
# Forbid every fetch: the page must work offline and leak nothing. Inline
# script/style and data: images are all it uses.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; connect-src 'none'; form-action 'none'; base-uri 'none'"
)




# --------------------------------------------------------------------- page
def _asset(name: str) -> str:
    """Text of a package data file of autocar.report (viewer.js / viewer.css)."""
    return (importlib.resources.files("autocar.report") / name).read_text(encoding="utf-8")


def _script_json(data: dict[str, Any]) -> str:
    """Strict JSON safe inside a <script> element: '<', '>', '&' and line separators escaped."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def report_html(payload: dict[str, Any]) -> str:
    """The whole page for a :func:`report_payload` dictionary."""
    css = _asset("viewer.css")
    js = _asset("viewer.js")
    for name, text, tag in (("viewer.css", css, "</style"), ("viewer.js", js, "</script")):
        if tag in text.lower():  # pragma: no cover - guards edits of the package files
            raise CaseFormatError(f"{name} must not contain {tag!r}; it is inlined into the page")
    title = html.escape(payload["title"])
    views = payload["views"]
    subtitle = html.escape(
        f"{payload['numFrames']} frame{'s' if payload['numFrames'] != 1 else ''} · "
        + " · ".join(f"view {v['name']}: {v['label']}" for v in views)
    )
    panels_2d = "\n".join(
        f"""      <figure class="panel panel-2d" data-view="{html.escape(v['name'])}">
        <figcaption><span class="panel-title">View {html.escape(v['name'])}</span>
          <span class="panel-sub">{html.escape(v['label'])}</span>
          <span class="panel-frame" data-frame-ref="{html.escape(v['name'])}"></span></figcaption>
        <div class="canvas-wrap"><canvas class="view-canvas" id="canvas-{html.escape(v['name'])}"
          data-view="{html.escape(v['name'])}"></canvas></div>
      </figure>"""
        for v in views
    )
    T = int(payload["numFrames"])
    flags = payload.get("warnings") or []
    banner = ""
    if flags:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in flags)
        banner = (f'<div class="quality-warning" id="quality-warning" role="alert"><strong>Quality warning: this '
                  f'result failed {len(flags)} quality check{"s" if len(flags) != 1 else ""}; do not use it '
                  f'without review.</strong><ul>{items}</ul></div>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{html.escape(payload['generator'])}">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header class="topbar">
  <div class="brand">
    <h1 class="title">{title}</h1>
    <div class="subtitle">{subtitle}</div>
  </div>
  <div class="controls">
    <button type="button" id="play-button" class="btn" aria-label="Play">&#9654; Play</button>
    <input type="range" id="frame-slider" min="0" max="{max(T - 1, 0)}" step="1" value="0" aria-label="Frame">
    <span id="frame-counter" class="counter">Frame 1 / {T}</span>
    <label class="toggle"><input type="checkbox" id="overlay-toggle" checked> Centre lines</label>
  </div>
</header>
{banner}
<main>
  <section class="panels">
      <figure class="panel panel-3d">
        <figcaption><span class="panel-title">3D centre lines</span>
          <span class="panel-sub">drag: rotate · wheel: zoom · double-click: reset</span></figcaption>
        <div class="canvas-wrap"><canvas id="canvas-3d"></canvas></div>
      </figure>
{panels_2d}
  </section>
  <section class="cards">
    <div class="card card-legend">
      <h2>Segments</h2>
      <ul id="legend" class="legend"></ul>
      <div class="legend-keys">
        <span><i class="key key-hi"></i>selected</span>
        <span><i class="key key-sten"></i>stenosis</span>
      </div>
      <div id="selection-info" class="selection-info"></div>
      <canvas id="profile-canvas" class="profile" hidden></canvas>
    </div>
    <div class="card card-table">
      <h2>Measurements</h2>
      <div id="measurements"></div>
    </div>
  </section>
</main>
<footer class="footer">{html.escape(payload['generator'])} · coordinates: DICOM LPS, mm · projections computed with
the exact C-arm geometry · not for diagnostic use without review</footer>
<script type="application/json" id="autocar-data">{_script_json(payload)}</script>
<script>
{js}
</script>
</body>
</html>
"""


def write_report(
    out_dir: str | Path,
    reconstruction: Reconstruction,
    views: Sequence[CArmView] | Mapping[str, CArmView],
    *,
    images: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
    masks: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
    frame_pairs: np.ndarray | None = None,
    measurements: Mapping[str, Any] | None = None,
    title: str = "autocar report",
    warnings: Sequence[str] | None = None,
) -> Path:
    """Write the self-contained viewer ``out_dir/report.html`` atomically.

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if needed) that receives ``report.html``.
    reconstruction : Reconstruction
        T >= 1 frames; a dynamic one has the same nodes and edges in every
        frame (segments and stenoses are defined on frame 0).
    views : two CArmView
        Views A and B as a sequence (named ``"A"``, ``"B"``; CaseView objects
        keep their own names) or a name -> CArmView mapping.
    images : per view a (T_v, H, W) array, optional
        Angiogram frames (uint8 used as is; other numbers stretched; bool
        shown as a mask). H x W must equal the view's rows x columns.
    masks : per view a (T_v, H, W) array, optional
        Vessel masks, shown as grey pictures when ``images`` is not given.
    frame_pairs : (T, 2) int array, optional
        Reconstruction frame k shows frame ``frame_pairs[k, 0]`` of view A and
        ``frame_pairs[k, 1]`` of view B; default identity.
    measurements : dict, optional
        ``autocar-measurements/1``; without it the segments are the
        unbranched paths of frame 0 and no table is shown.
    title : str
        Page title (escaped).
    warnings : list of str, optional
        The result's quality flags: shown in a red banner above everything
        (``id="quality-warning"``), so a failed result cannot pass for a good one.

    Returns
    -------
    Path
        ``out_dir / "report.html"``.
    """
    payload = report_payload(
        reconstruction,
        views,
        images=images,
        masks=masks,
        frame_pairs=frame_pairs,
        measurements=measurements,
        title=title,
        warnings=warnings,
    )
    page = report_html(payload)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CaseFormatError(f"{out}: exists and is not a folder; cannot write {REPORT_FILE} into it")
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / REPORT_FILE, page)
