"""The report page in a real headless Chromium: drawing, slider, picking, no network.

The page is opened from a file:// URL with every request routed: anything
but file: and data: fails the test. Console errors and uncaught page errors
fail it too.
"""

from __future__ import annotations

import json
import re
import tempfile

import numpy as np
import pytest
from browser_util import CHROMIUM_ARGS

from autocar.io.results import Reconstruction
from autocar.report import write_report
from autocar.synth.cases import SynthCaseConfig, synthesize_case

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip package 'playwright' is not installed (needed by the browser tests)"
)

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 1440, "height": 1000}
DATA_RE = re.compile(r'<script type="application/json" id="autocar-data">(.*?)</script>', re.DOTALL)


# ------------------------------------------------------------------ fixtures
def _measurements(graph) -> dict:
    """autocar-measurements/1 for the unbranched paths of ``graph`` (lengths computed here)."""
    segs = []
    for k, path in enumerate(graph.branches()):
        steps = np.linalg.norm(np.diff(graph.nodes[path], axis=0), axis=1)
        segs.append({
            "id": 100 + k, "name": f"segment {k}", "nodes": path.tolist(), "length_mm": float(steps.sum()),
            "foreshortening_percent": {"A": 10.0, "B": 20.0}, "mean_diameter_mm": float(2 * graph.radii[path].mean()),
            "diameter_profile": {"arc_mm": np.concatenate([[0.0], np.cumsum(steps)]).tolist(),
                                 "diameter_mm": (2 * graph.radii[path]).tolist()},
            "optimal_view": {"primary_deg": -20.0, "secondary_deg": 25.0, "foreshortening_percent": 1.0,
                             "overlap_percent": 2.0},
        })
    segs[0]["optimal_view"].update(foreshortening_percent=-0.04, overlap_percent=-0.0)  # rounds to zero
    node = int(segs[1]["nodes"][len(segs[1]["nodes"]) // 2])
    sten = {"segment": segs[1]["id"], "name": segs[1]["name"], "node": node, "position_mm": graph.nodes[node].tolist(),
            "distance_from_ostium_mm": 20.0, "diameter_stenosis_percent": 55.0, "minimal_diameter_mm": 1.3,
            "reference_diameter_mm": 2.9, "lesion_length_mm": 8.0, "measured_in": "grey profiles",
            "uncertainty": {"diameter_stenosis_percent": 6.2, "minimal_diameter_mm": 0.17, "reference_diameter_mm": 0.06},
            "view_profiles": {"arc_mm": [-6.0, -3.0, 0.0, 3.0, 6.0],
                              "diameter_mm": {"A": [2.9, 2.4, 1.3, 2.5, 2.8], "B": [3.0, None, 1.5, 2.6, 2.9]}}}
    return {"format": "autocar-measurements/1", "frame": 0, "tree_side": "left", "views": [],
            "segments": segs, "stenoses": [sten]}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A beating 3-frame case (masks) with measurements, and the same tree frozen in time without them."""
    synth = synthesize_case(SynthCaseConfig(frames=3, kind="mask", frame_rate_hz=4.0), rng=7)
    moved = np.abs(synth.truth[1].nodes - synth.truth[0].nodes).max()
    assert moved > 1.0, f"test case should move between frames, moved {moved:.2f} mm"
    views = [v.view for v in synth.case.views]
    masks = [v.frames for v in synth.case.views]
    root = tmp_path_factory.mktemp("reports")
    dynamic = write_report(root / "dynamic", Reconstruction(frames=synth.truth), views, masks=masks,
                           measurements=_measurements(synth.truth[0]), title="Dynamic <test> case")
    static = write_report(root / "static", Reconstruction(frames=(synth.truth[0],) * 3), views, masks=masks)
    return {"dynamic": dynamic, "static": static}


@pytest.fixture(scope="module")
def browser(chromium_path):
    pw = sync_api.sync_playwright().start()
    try:
        with tempfile.TemporaryDirectory(prefix="autocar-chromium-") as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        pw.stop()


class Opened:
    """A page with the report loaded and its errors and off-file requests recorded."""

    def __init__(self, context, path):
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.route("**/*", self._route)
        self.data = json.loads(DATA_RE.search(path.read_text(encoding="utf-8")).group(1))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("() => window.autocarViewer !== undefined && window.autocarViewer.imagesReady()")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def hook(self, expr: str):
        return self.page.evaluate(f"window.autocarViewer.{expr}")

    def close(self):
        self.page.close()
        assert self.errors == [], self.errors
        assert self.blocked == [], f"the page asked the network for {self.blocked}"


@pytest.fixture
def opened(browser, reports):
    pages: list[Opened] = []

    def open_report(name: str) -> Opened:
        pages.append(Opened(browser, reports[name]))
        return pages[-1]

    yield open_report
    for p in pages:
        p.close()


# --------------------------------------------------------------------- tests
def _bright_pixels(page, canvas_id: str) -> tuple[int, int]:
    """(pixels with a channel above 90, all pixels) of a canvas; its background is darker than 40."""
    return page.evaluate(
        """(id) => {
            const c = document.getElementById(id);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) { if (Math.max(d[i], d[i + 1], d[i + 2]) > 90) n++; }
            return [n, d.length / 4];
        }""",
        canvas_id,
    )


def test_page_draws_without_errors(opened, tmp_path):
    r = opened("dynamic")
    page = r.page
    assert r.hook("numFrames") == 3 and r.hook("frame") == 0
    assert page.title() == "Dynamic <test> case"
    bright, total = _bright_pixels(page, "canvas-3d")
    assert bright > 0.01 * total, f"3D canvas nearly empty: {bright} of {total} pixels drawn"
    bright_a, total_a = _bright_pixels(page, "canvas-A")
    assert bright_a > 0.5 * total_a  # the grey mask picture (background 196) is drawn
    # Tables: one row per segment, the stenosis row, and the legend.
    assert page.locator("#measurements table").count() == 2
    assert page.locator("#measurements table >> nth=0 >> tbody tr").count() == len(r.data["segments"])
    assert page.locator("#legend li").count() == len(r.data["segments"])
    row = page.locator("#measurements table >> nth=1 >> tbody tr").inner_text()
    assert "55 \u00b1 6" in row and "1.30 \u00b1 0.17" in row and "2.90 \u00b1 0.06" in row
    first = page.locator("#measurements table >> nth=0 >> tbody tr >> nth=0").inner_text()
    assert "0.0 / 0.0" in first and "-0.0" not in first  # a tiny negative is not shown as -0.0
    # The stenosis's evidence: a crop of each view around it and both views' diameter profiles.
    ev = page.locator(".evidence[data-stenosis='0']")
    assert "measured in the grey profiles" in ev.inner_text()
    assert ev.locator("canvas.evidence-crop").count() == 2 and ev.locator("canvas.evidence-profile").count() == 1
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.evidence canvas')).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) { if (Math.max(d[i], d[i + 1], d[i + 2]) > 90) n++; }
        return n / (d.length / 4); })""")
    assert drawn[0] > 0.3 and drawn[1] > 0.3  # the (grey 196) mask crops are drawn
    assert 0.005 < drawn[2] < 0.5  # two profile curves and labels on a dark background
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_slider_and_play_change_the_scene(opened):
    r = opened("dynamic")
    page = r.page
    sig0 = r.hook("sceneSignature()")
    page.fill("#frame-slider", "1")  # sets the value and fires input/change like a user
    assert r.hook("frame") == 1
    assert page.locator("#frame-counter").inner_text() == "Frame 2 / 3"
    sig1 = r.hook("sceneSignature()")
    assert sig1 != sig0
    page.focus("#frame-slider")
    page.keyboard.press("ArrowRight")
    assert r.hook("frame") == 2 and r.hook("sceneSignature()") not in (sig0, sig1)
    r.hook("setFrame(0)")
    assert page.input_value("#frame-slider") == "0" and r.hook("sceneSignature()") == sig0
    page.click("#play-button")
    assert r.hook("playing") is True
    page.wait_for_function("() => window.autocarViewer.frame !== 0", timeout=3000)
    page.click("#play-button")
    assert r.hook("playing") is False


def test_signature_follows_geometry_not_frame_number(opened):
    r = opened("static")  # the same tree in every frame
    sig0 = r.hook("sceneSignature()")
    r.page.fill("#frame-slider", "2")
    assert r.hook("frame") == 2 and r.hook("sceneSignature()") == sig0
    r.hook("highlight(1)")
    assert r.hook("sceneSignature()") != sig0
    # Without measurements the segment table is hidden and the legend explains it.
    assert r.page.locator("#measurements").is_hidden()
    assert "No measurements" in r.page.locator(".card-legend").inner_text()


def _isolated_edge(xy: np.ndarray, edges: np.ndarray, edge_seg: np.ndarray) -> tuple[int, float]:
    """Edge whose midpoint is farthest from every edge of another segment: (edge, that distance)."""
    a, b = xy[edges[:, 0]], xy[edges[:, 1]]
    best, best_d = -1, -1.0
    for e in np.flatnonzero(edge_seg >= 0):
        m = (a[e] + b[e]) / 2
        other = edge_seg != edge_seg[e]
        ab = b[other] - a[other]
        t = np.clip(np.einsum("ij,ij->i", m - a[other], ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
        d = np.linalg.norm(a[other] + t[:, None] * ab - m, axis=1).min()
        if d > best_d:
            best, best_d = int(e), float(d)
    return best, best_d


def test_click_vessel_in_2d_view_highlights_everywhere(opened):
    r = opened("dynamic")
    page, data = r.page, r.data
    edges = np.asarray(data["edges"])
    edge_seg = np.asarray(data["edgeSegment"])
    view = data["views"][0]
    rc = np.asarray(data["frames"][0]["proj"][view["name"]], dtype=float).reshape(-1, 2)
    e, dist_px = _isolated_edge(rc[:, ::-1], edges, edge_seg)
    box = page.locator("#canvas-A").bounding_box()
    css_per_px = box["width"] / view["columns"]
    assert dist_px * css_per_px > 12, "no vessel far enough from the others to click unambiguously"
    row, col = (rc[edges[e, 0]] + rc[edges[e, 1]]) / 2
    # Pixel centres sit at integer (row, col): pixel c spans [c - 0.5, c + 0.5].
    page.mouse.click(box["x"] + (col + 0.5) * css_per_px, box["y"] + (row + 0.5) * box["height"] / view["rows"])
    expected = int(edge_seg[e])
    assert r.hook("highlighted") == expected
    assert page.locator(f'#legend li[data-seg="{expected}"]').get_attribute("class") == "selected"
    assert "selected" in page.locator(f'#measurements tr[data-seg="{expected}"]').first.get_attribute("class")
    # A click far from any vessel clears the selection.
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] - 3)
    assert r.hook("highlighted") is None


def test_click_vessel_in_3d_and_table_row(opened):
    r = opened("dynamic")
    page, data = r.page, r.data
    edges = np.asarray(data["edges"])
    edge_seg = np.asarray(data["edgeSegment"])
    xy = np.asarray(page.evaluate(
        f"Array.from({{length: {data['numNodes']}}}, (_, i) => window.autocarViewer.nodeScreenPosition3d(i))"
    ))
    e, dist = _isolated_edge(xy, edges, edge_seg)
    assert dist > 12, "no vessel far enough from the others to click unambiguously"
    box = page.locator("#canvas-3d").bounding_box()
    x, y = (xy[edges[e, 0]] + xy[edges[e, 1]]) / 2
    page.mouse.click(box["x"] + x, box["y"] + y)
    assert r.hook("highlighted") == int(edge_seg[e])
    # A row of the measurement table selects its segment.
    seg = data["segments"][-1]
    page.click(f'#measurements tr[data-seg="{seg["id"]}"]')
    assert r.hook("highlighted") == seg["id"]
    assert seg["name"] in page.locator("#selection-info").inner_text()
    assert page.locator("#profile-canvas").is_visible()
    # Dragging rotates the 3D view without selecting anything.
    sig = r.hook("sceneSignature()")
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + 90, steps=5)
    page.mouse.up()
    assert r.hook("sceneSignature()") != sig and r.hook("highlighted") == seg["id"]
