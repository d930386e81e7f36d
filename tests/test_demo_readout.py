"""What the demo says about its planted lesion: found, or what it read there and why it was not reported."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.pipeline.demo import planted_readout
from autocar.geometry import CArmView
from autocar.io.results import Reconstruction


def _vessel(severity: float) -> Reconstruction:
    """A 80 mm straight vessel (radius 1.5 mm) along x with a smooth narrowing at x = 40 mm."""
    x = np.arange(0.0, 80.5, 0.5)
    nodes = np.stack([x - 40.0, np.zeros_like(x), np.zeros_like(x)], axis=1)
    radii = 1.5 * (1.0 - severity * np.exp(-0.5 * ((x - 40.0) / 2.0) ** 2))
    edges = np.stack([np.arange(len(x) - 1), np.arange(1, len(x))], axis=1)
    views = {"A": CArmView(30.0, 20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512).to_dict(),
             "B": CArmView(-30.0, -20.0, 1100.0, 750.0, (0.3, 0.3), 512, 512).to_dict()}
    return Reconstruction(frames=(CenterlineGraph(nodes, radii, edges),), extra={"views": views})


def test_a_severe_lesion_is_found():
    line = planted_readout(_vessel(0.6), 0, np.zeros(3), side=None)
    assert line.startswith("found:") and "%" in line


def test_a_mild_reading_says_what_it_read_and_why():
    line = planted_readout(_vessel(0.2), 0, np.zeros(3), side=None)
    assert line.startswith("not reported:")
    read = float(line.split("reads ")[1].split("%")[0])
    assert 10.0 < read < 30.0
    assert "below the 30% reporting threshold" in line


@pytest.mark.parametrize("where, start", [((0.0, 20.0, 0.0), "missed: the vessel there was not reconstructed"),
                                          ((0.0, 0.0, 0.0), "missed: the reconstructed vessel shows no narrowing")])
def test_misses_say_which_kind(where, start):
    rec = _vessel(0.6) if start.startswith("missed: the vessel") else _vessel(0.0)
    assert planted_readout(rec, 0, np.asarray(where), side=None).startswith(start)


def test_the_reported_table_decides_found_and_a_withheld_one_says_so():
    rec = _vessel(0.6)
    grey = {"name": "segment 0", "diameter_stenosis_percent": 57.0, "position_mm": [0.5, 0.0, 0.0],
            "measured_in": "grey profiles"}
    line = planted_readout(rec, 0, np.zeros(3), side=None, reported=[grey])
    assert line.startswith("found: segment 0 57%") and "measured in the grey profiles" in line
    # The mask widths read a lesion there but the result did not report it (withheld).
    line = planted_readout(rec, 0, np.zeros(3), side=None, reported=[])
    assert line.startswith("not reported: the mask widths read") and "withheld_stenoses" in line
