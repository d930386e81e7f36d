"""Quantitative 3D readouts of a centre-line tree (3D-QCA).

- :mod:`~autocar.quant.segments`: the tree cut into named vessels, their course
  and diameter profile;
- :mod:`~autocar.quant.stenosis`: focal narrowings against a robust reference;
- :mod:`~autocar.quant.views`: foreshortening in a view and the optimal C-arm angles;
- :mod:`~autocar.quant.measurements`: everything assembled into measurements.json;
- :mod:`~autocar.quant.evidence`: what ``autocar reconstruct`` reports: a stenosis both views
  show, confirmed and measured in the grey images (:mod:`~autocar.quant.lumen`), on radii whose
  overlapped stretches are bridged (:mod:`~autocar.quant.overlaps`);
- :mod:`~autocar.quant.catheter`: the guiding catheter kept out of the vessels.
"""

from autocar.quant.measurements import (
    MEASUREMENTS_FILE,
    MEASUREMENTS_FORMAT,
    measure,
    read_measurements,
    validate_measurements,
    write_measurements,
)
from autocar.quant.segments import Segment, VesselTree, split_segments
from autocar.quant.stenosis import (
    StenosisFinding,
    StenosisOptions,
    detect_stenoses,
    find_lesions,
)
from autocar.quant.views import (
    OptimalView,
    ViewSearchOptions,
    apparent_length_mm,
    foreshortening_percent,
    optimal_view,
)

__all__ = [
    "MEASUREMENTS_FILE",
    "MEASUREMENTS_FORMAT",
    "measure",
    "read_measurements",
    "validate_measurements",
    "write_measurements",
    "Segment",
    "VesselTree",
    "split_segments",
    "StenosisFinding",
    "StenosisOptions",
    "detect_stenoses",
    "find_lesions",
    "OptimalView",
    "ViewSearchOptions",
    "apparent_length_mm",
    "foreshortening_percent",
    "optimal_view",
]
