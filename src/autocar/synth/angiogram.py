"""Realistic X-ray angiograms of a centre-line tree (:func:`render_angiogram`): the lumen path length
(:func:`autocar.synth.render.render_thickness`) turned into Beer-Lambert attenuation by iodine over a
smooth anatomical background, with vignetting, detector blur, quantum and electronic noise and a log
display; optionally a guiding catheter, a collimated field and thin wires that are not vessels.

Shape letters: N nodes, H x W image (rows x columns).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.geometry import CArmView
from autocar.synth.render import DRAW_ONE, DRAW_SHIFT, render_thickness

__all__ = ["catheter_path", "render_angiogram", "ostium_node"]

# Nominal linear attenuation of contrast-filled lumen, 1/mm (iodinated
# contrast diluted in blood at ~70 keV effective energy). A 3 mm main
# vessel then transmits ~55 %, a 1 mm distal branch ~82 %, as in clinical
# images.
_MU_CONTRAST = 0.2


# ------------------------------------------------------------------------ angiogram
def ostium_node(graph: CenterlineGraph) -> int:
    """Index of the tree's ostium: the degree-1 node with the largest radius.

    Falls back to the node of largest radius when there is no degree-1 node;
    raises ValueError on an empty graph.
    """
    if graph.num_nodes == 0:
        raise ValueError("an empty graph has no ostium")
    ends = np.flatnonzero(graph.degrees() == 1)
    if len(ends) == 0:
        return int(np.argmax(graph.radii))
    return int(ends[np.argmax(graph.radii[ends])])


def catheter_path(graph: CenterlineGraph, gen: np.random.Generator, radius_mm: float = 1.0) -> CenterlineGraph:
    """A contrast-filled guiding catheter (constant radius, mm) ending at the ostium of ``graph``.

    It leaves the ostium away from the tree, then bends up towards the head
    (+z) as a guiding catheter coming down the aorta does, so it reaches an
    image edge in any clinical view. :func:`render_angiogram` with
    ``catheter=True`` draws exactly this path first from its generator, so a
    copy of that generator's state gives the catheter of the image (its mask:
    :func:`autocar.synth.render.render_mask` of the path).
    """
    root = ostium_node(graph)
    p0 = graph.nodes[root]
    # Away from the tree: from the tree's mean towards the ostium.
    out = p0 - graph.nodes.mean(axis=0)
    if np.linalg.norm(out) < 1e-6:
        out = np.array([0.0, 0.0, 1.0])
    out = out / np.linalg.norm(out)
    up = np.array([0.0, 0.0, 1.0])
    lateral = gen.normal(0.0, 1.0, 3) * np.array([1.0, 1.0, 0.0])
    c1 = p0 + out * gen.uniform(10.0, 20.0)
    c2 = c1 + out * gen.uniform(10.0, 25.0) + up * gen.uniform(20.0, 40.0) + lateral * 5.0
    c3 = c2 + up * gen.uniform(120.0, 200.0) + lateral * 15.0
    # Quadratic-Bezier-like smooth path through the control points.
    t = np.linspace(0.0, 1.0, 120)[:, None]
    ctrl = [p0, c1, c2, c3]
    # Cubic Bezier.
    path = (
        (1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1] + 3 * (1 - t) * t**2 * ctrl[2] + t**3 * ctrl[3]
    )
    n = len(path)
    edges = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    return CenterlineGraph(path, np.full(n, radius_mm), edges)


def _smooth_noise(gen: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma_px``."""
    h, w = shape
    # Generate at reduced resolution and upsample: cheap large-scale fields.
    f = max(1, int(sigma_px / 4))
    small = gen.normal(size=(h // f + 2, w // f + 2)).astype(np.float32)
    s = sigma_px / f
    small = cv2.GaussianBlur(small, (0, 0), s, borderType=cv2.BORDER_REFLECT)
    field = cv2.resize(small, (w + 2 * f, h + 2 * f), interpolation=cv2.INTER_CUBIC)[f : f + h, f : f + w]
    sd = float(field.std())
    return (field - field.mean()) / (sd if sd > 0 else 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _background(gen: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth anatomical line integral (attenuation, dimensionless), (H, W).

    Heart shadow, lung fields, a diaphragm edge, a spine-like band with
    vertebrae, a few rib-like curved bands and low-frequency texture. Pixel
    units are relative to the image size so it looks alike at any size.
    """
    h, w = shape
    s = float(max(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = yy / s
    x = xx / s
    att = np.full(shape, gen.uniform(1.6, 2.2), dtype=np.float32)
    # Heart shadow: a large soft ellipse.
    cx, cy = gen.uniform(0.35, 0.65) * w / s, gen.uniform(0.4, 0.7) * h / s
    ax_, ay_ = gen.uniform(0.35, 0.55), gen.uniform(0.3, 0.45)
    ang = gen.uniform(-0.6, 0.6)
    xr = (x - cx) * math.cos(ang) + (y - cy) * math.sin(ang)
    yr = -(x - cx) * math.sin(ang) + (y - cy) * math.cos(ang)
    rho = np.sqrt((xr / ax_) ** 2 + (yr / ay_) ** 2)
    att += gen.uniform(0.3, 0.7) * _sigmoid((1.0 - rho) * gen.uniform(6.0, 12.0))
    # Lung field: less attenuation towards one upper side.
    side = gen.choice([-1.0, 1.0])
    lung = _sigmoid((side * (x - cx) * 6.0) - (y - 0.35) * 5.0)
    att -= gen.uniform(0.15, 0.35) * lung
    # Diaphragm / liver: a curved edge in the lower part (sometimes absent).
    if gen.uniform() < 0.7:
        y0 = gen.uniform(0.75, 1.05) * h / s
        curv = gen.uniform(0.3, 1.0)
        tilt = gen.uniform(-0.3, 0.3)
        edge = y0 + curv * (x - w / s / 2) ** 2 + tilt * (x - w / s / 2)
        att += gen.uniform(0.3, 0.6) * _sigmoid((y - edge) * s / gen.uniform(8.0, 20.0))
    # Spine: a near-vertical band with vertebral bodies.
    if gen.uniform() < 0.85:
        sx = gen.uniform(0.1, 0.9) * w / s
        slope = gen.uniform(-0.15, 0.15)
        half = gen.uniform(0.06, 0.1)
        dx = np.abs(x - (sx + slope * (y - 0.5)))
        band = _sigmoid((half - dx) * s / 6.0)
        period = gen.uniform(0.08, 0.12)
        phase = gen.uniform(0, 2 * math.pi)
        vert = 0.85 + 0.15 * _sigmoid(4.0 * np.cos(2 * math.pi * y / period + phase))
        att += gen.uniform(0.15, 0.35) * band * vert
    # Ribs: curved bands crossing the image obliquely.
    for _ in range(int(gen.integers(2, 6))):
        y0 = gen.uniform(-0.1, 1.0) * h / s
        slope = gen.uniform(0.2, 0.6) * gen.choice([-1.0, 1.0])
        curv = gen.uniform(0.5, 1.5)
        xc = gen.uniform(0.0, 1.0) * w / s
        centre = y0 + slope * (x - xc) - curv * (x - xc) ** 2
        width = gen.uniform(0.025, 0.045)
        dist = np.abs(y - centre)
        rib = _sigmoid((width - dist) * s / 4.0)
        # Cortical rim slightly denser than the marrow.
        rim = np.exp(-(((dist - width) * s / 3.0) ** 2))
        att += gen.uniform(0.04, 0.1) * (0.7 * rib + 0.4 * rim)
    # Low-frequency texture (soft tissue, lung markings).
    att += gen.uniform(0.05, 0.12) * _smooth_noise(gen, shape, 0.08 * s)
    att += gen.uniform(0.015, 0.04) * _smooth_noise(gen, shape, 0.015 * s)
    att += gen.uniform(0.005, 0.015) * _smooth_noise(gen, shape, 0.004 * s)
    return att


def _collimator_field(gen: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Transmission of the collimator, (H, W) float in [0, 1] (1 inside the field).

    A circular iris (radius 0.5-0.8 of the image size, centre moved up to
    15 %) with probability 0.6, and 0, 1 or 2 straight shutter blades
    (probability 0.5, 0.35, 0.15) entering from random sides by 3-20 % of
    the image; edges blurred over ~1.5 px (penumbra of the focal spot).
    """
    h, w = shape
    s = float(max(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = np.full(shape, 1.0e6, dtype=np.float32)  # signed distance to the field edge, px (> 0 inside)
    if gen.uniform() < 0.6:
        cr = (h - 1) / 2.0 + gen.uniform(-0.15, 0.15) * h
        cc = (w - 1) / 2.0 + gen.uniform(-0.15, 0.15) * w
        radius = gen.uniform(0.5, 0.8) * s
        inside = np.minimum(inside, radius - np.sqrt((yy - cr) ** 2 + (xx - cc) ** 2))
    for _ in range(int(gen.choice(3, p=[0.5, 0.35, 0.15]))):
        side = int(gen.integers(0, 4))
        depth = gen.uniform(0.03, 0.2) * s
        tilt = gen.uniform(-0.15, 0.15)
        if side == 0:
            d = yy - depth - tilt * (xx - w / 2.0)
        elif side == 1:
            d = (h - 1 - yy) - depth - tilt * (xx - w / 2.0)
        elif side == 2:
            d = xx - depth - tilt * (yy - h / 2.0)
        else:
            d = (w - 1 - xx) - depth - tilt * (yy - h / 2.0)
        inside = np.minimum(inside, d)
    return _sigmoid(inside / gen.uniform(0.8, 2.0)).astype(np.float64)


def _wire_paths(gen: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Attenuation of ``count`` thin wires, (H, W) float64 (line integral, dimensionless).

    Each is a cubic Bezier curve with four random control points in and
    around the image (up to 10 % beyond its edges), 1-2 px wide, with an
    attenuation of 0.05-0.3 (a thin metal wire or an ECG lead), drawn
    anti-aliased.
    """
    h, w = shape
    out = np.zeros(shape, dtype=np.float64)
    t = np.linspace(0.0, 1.0, 200)[:, None]
    for _ in range(count):
        pts = gen.uniform(-0.1, 1.1, size=(4, 2)) * np.array([w, h], dtype=float)
        curve = (
            (1 - t) ** 3 * pts[0] + 3 * (1 - t) ** 2 * t * pts[1] + 3 * (1 - t) * t**2 * pts[2] + t**3 * pts[3]
        )
        layer = np.zeros(shape, dtype=np.float32)
        xy = np.round(curve * DRAW_ONE).astype(np.int32)
        cv2.polylines(layer, [xy], False, 1.0, int(gen.integers(1, 3)), cv2.LINE_AA, DRAW_SHIFT)
        out += gen.uniform(0.05, 0.3) * layer
    return out


def render_angiogram(
    graph: CenterlineGraph,
    view: CArmView,
    *,
    rng: np.random.Generator | int | None = None,
    contrast: float | None = None,
    background: bool = True,
    noise: bool = True,
    catheter: bool = False,
    bit_depth: int = 8,
    collimator: bool = False,
    wires: int = 0,
) -> np.ndarray:
    """A realistic X-ray coronary angiogram of the tree: vessels dark on grey.

    Physics (simplified): detected intensity
    ``I = I0 * V * exp(-A_bg - mu * T)`` with ``T`` the lumen path length
    (:func:`render_thickness`, mm), ``mu = 0.2 * contrast`` 1/mm the
    attenuation of contrast-filled blood, ``A_bg`` a smooth anatomical
    background (heart shadow, lungs, diaphragm, spine, ribs, texture) and
    ``V`` vignetting. The image is blurred (focal spot and detector), gets
    Poisson-like quantum noise (Gaussian with variance proportional to the
    counts) and Gaussian electronic noise, then is log-transformed (the
    display of a real system: ``log I``), windowed with a mild gamma and
    quantised.

    Parameters
    ----------
    graph : CenterlineGraph
        The vessel tree, N nodes (mm) and radii (mm).
    view : CArmView
        Pose and detector; output shape ``view.shape``.
    rng : Generator, int or None
        Randomness (background, noise, contrast draw, catheter path).
        The same seed gives the same image.
    contrast : float or None
        Multiplier of the nominal contrast attenuation (1.0 nominal, 0 no
        contrast); drawn from U(0.7, 1.3) when None.
    background : bool
        Add the anatomical background (else a flat one).
    noise : bool
        Add quantum and electronic noise.
    catheter : bool
        Add a contrast-filled guiding catheter (radius 1 mm) ending at the
        ostium (:func:`ostium_node`).
    bit_depth : {8, 16}
        Output ``uint8`` (0-255) or ``uint16`` (0-65535).
    collimator : bool
        Restrict the X-ray field (:func:`_collimator_field`): a circular
        iris and/or straight shutter blades; outside them the detector gets
        almost nothing (lead), so the image is near black there, as in many
        clinical frames. The display window is set inside the field.
    wires : int
        Number of thin, dark, smooth curves not in the vessel mask (ECG
        leads, pacing or sternal wires, guide wires; :func:`_wire_paths`),
        >= 0.

    Returns
    -------
    image : (H, W) ndarray of uint8 or uint16

    Notes
    -----
    The collimator and wires are drawn from a child generator
    (``Generator.spawn``), which leaves the main stream untouched: the same
    seed gives the same anatomy, noise and vessels with or without them,
    and the defaults reproduce earlier images exactly. ``rng`` must then be
    an int, None or a Generator with a seed sequence (as from
    ``numpy.random.default_rng``).
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    gen = np.random.default_rng(rng)
    if contrast is None:
        contrast = float(gen.uniform(0.7, 1.3))
    if not (math.isfinite(float(contrast)) and contrast >= 0):
        raise ValueError(f"contrast must be finite and >= 0, got {contrast!r}")
    if isinstance(wires, bool) or not isinstance(wires, (int, np.integer)) or wires < 0:
        raise ValueError(f"wires must be an integer >= 0, got {wires!r}")
    h, w = view.shape
    thickness = render_thickness(graph, view).astype(np.float64)
    if catheter and graph.num_nodes:
        cath = catheter_path(graph, gen)
        # The catheter lumen holds undiluted contrast; its wall adds a little.
        thickness = thickness + 1.2 * render_thickness(cath, view)
    mu = _MU_CONTRAST * float(contrast)
    line = mu * thickness
    # The optional realism draws from a child generator (spawning does not
    # advance ``gen``): everything else in the image stays as without them.
    extra = gen.spawn(1)[0] if (collimator or wires) else None
    if wires:
        line = line + _wire_paths(extra, (h, w), int(wires))
    if background:
        att = _background(gen, (h, w)).astype(np.float64)
    else:
        att = np.full((h, w), 2.0)
    # Vignetting (image intensifier / detector fall-off) around a random centre.
    yy, xx = np.mgrid[0:h, 0:w]
    s = float(max(h, w))
    c_r = (h - 1) / 2.0 + gen.uniform(-0.1, 0.1) * h
    c_c = (w - 1) / 2.0 + gen.uniform(-0.1, 0.1) * w
    r2 = ((yy - c_r) ** 2 + (xx - c_c) ** 2) / (0.5 * s) ** 2
    vignette = 1.0 - gen.uniform(0.15, 0.35) * r2 if background else np.ones((h, w))
    vignette = np.clip(vignette, 0.2, 1.0)
    counts0 = gen.uniform(3000.0, 10000.0)  # quanta per pixel in air, before body
    intensity = counts0 * vignette * np.exp(-att - line)
    field = _collimator_field(extra, (h, w)) if collimator else None
    if field is not None:
        # Lead blades pass ~0.3 % of the beam (plus scatter).
        intensity = intensity * (0.003 + 0.997 * field)
    # Focal-spot / detector blur (MTF).
    blur = gen.uniform(0.7, 1.2)
    intensity = cv2.GaussianBlur(intensity, (0, 0), blur, borderType=cv2.BORDER_REFLECT)
    if noise:
        quantum = gen.normal(size=(h, w)) * np.sqrt(np.maximum(intensity, 0.0))
        # Quantum noise is slightly correlated by the scintillator.
        quantum = cv2.GaussianBlur(quantum, (0, 0), 0.6, borderType=cv2.BORDER_REFLECT) * 1.6
        electronic = gen.normal(size=(h, w)) * gen.uniform(1.0, 4.0)
        intensity = intensity + quantum + electronic
    logi = np.log(np.maximum(intensity, 1.0))
    # Fixed window set by the anatomy alone (as a system's auto-exposure
    # would), so the vessels' contrast follows mu and the thickness: from a
    # little above the brightest background to 0.9 log units (about 4.5 mm
    # of nominal contrast) below its darkest part; a gamma > 1 puts the
    # background at mid grey as on clinical displays.
    log_bg = np.log(counts0 * vignette) - att
    if field is not None and np.count_nonzero(field > 0.5) > 16:
        log_bg = log_bg[field > 0.5]
    lo_v = float(np.percentile(log_bg, 0.5)) - 0.9
    hi_v = float(np.percentile(log_bg, 99.5)) + 0.1
    disp = np.clip((logi - lo_v) / (hi_v - lo_v), 0.0, 1.0)
    disp = 0.03 + 0.92 * disp ** gen.uniform(1.6, 2.4)
    top = 255 if bit_depth == 8 else 65535
    out = np.round(disp * top)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)
