"""A quick look at a 3D tree: PNG of the tree rendered from several angles.

Each panel is a projection of the tree by a C-arm view centred on the tree
(the isocentre moved to its bounding-box centre), shaded by the lumen path
length along each ray (thicker or overlapping vessels darker, as in an
angiogram), with the view's name written in the corner. Default angles:
RAO 30 / CAU 20, LAO 45 / CRA 20 and LAO 90 (lateral).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from autocar.geometry.centerline import CenterlineGraph
from autocar.errors import TreeFormatError
from autocar.geometry import CArmView

__all__ = ["DEFAULT_ANGLES", "snapshot_image", "write_snapshot"]

DEFAULT_ANGLES: tuple[tuple[float, float], ...] = ((-30.0, -20.0), (45.0, 20.0), (90.0, 0.0))


def snapshot_image(
    graph: CenterlineGraph, angles: Sequence[tuple[float, float]] = DEFAULT_ANGLES, *, size_px: int = 384
) -> np.ndarray:
    """(size, size * len(angles), 3) uint8 BGR panels of ``graph`` seen from each (primary, secondary) deg."""
    import cv2

    from autocar.synth.render import render_thickness

    if graph.num_nodes == 0:
        raise TreeFormatError("cannot draw an empty tree (0 nodes)")
    lo, hi = graph.bounds()
    centre = (lo + hi) / 2
    moved = graph.with_nodes(graph.nodes - centre)
    extent = float(np.linalg.norm(hi - lo)) + 4 * float(graph.radii.max())
    sid, sod = 1100.0, 800.0
    spacing = max(extent, 10.0) * 1.1 * (sid / sod) / size_px
    panels = []
    for primary, secondary in angles:
        view = CArmView(float(primary), float(secondary), sid, sod, (spacing, spacing), size_px, size_px)
        path = render_thickness(moved, view)
        scale = float(np.percentile(path[path > 0], 99)) if np.any(path > 0) else 1.0
        grey = 255 - np.clip(path / max(scale, 1e-6), 0, 1) * 200
        rgb = cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
        cv2.putText(rgb, view.label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 200), 1, cv2.LINE_AA)
        panels.append(rgb)
    return np.concatenate(panels, axis=1)


def write_snapshot(
    graph: CenterlineGraph, path: str | Path, angles: Sequence[tuple[float, float]] = DEFAULT_ANGLES,
    *, size_px: int = 384,
) -> Path:
    """Write :func:`snapshot_image` as PNG atomically; returns the path."""
    import cv2

    from autocar.io.atomic import atomic_write_bytes

    ok, buf = cv2.imencode(".png", snapshot_image(graph, angles, size_px=size_px))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
        raise TreeFormatError(f"{path}: PNG encoding failed")
    path = Path(path)
    atomic_write_bytes(path, buf.tobytes())
    return path
