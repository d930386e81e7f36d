"""DICOM X-ray angiography (XA) in and out (``tags``, ``read``, ``write``, ``folders``).

Reads the C-arm geometry of a multi-frame XA file into a
:class:`~autocar.geometry.carm.CArmView` (shared/GEOMETRY.md follows the
DICOM positioner definitions, so the angles are used as stored), decodes its
frames, frame times and cardiac phase; writes valid XA Image Storage files;
and turns a folder of two XA files into a CASE_FORMAT v1 case folder.

Tags used (DICOM PS3.3 C.8.7.5 "XA Positioner Module", C.8.7.5.1.2
"Positioner Primary and Secondary Angles", C.8.7.5.1.3 "Positioner Angle
Increments", C.7.6.6 "Multi-frame Module", C.8.7.2 "XA/XRF Acquisition"):

- Positioner Primary Angle (0018,1510): LAO positive. Positioner Secondary
  Angle (0018,1511): cranial positive. Both apply to the FIRST frame.
- Distance Source to Detector (0018,1110) = SID; Distance Source to Patient
  (0018,1111) = SOD (source to isocentre on cardiac C-arms). Enhanced XA
  files may give Distance Source to Isocenter (0018,9402) instead.
- Imager Pixel Spacing (0018,1164), at the detector plane; see
  :func:`read_xa` for the fall-backs when it is absent.

Enhanced XA (1.2.840.10008.5.1.4.1.1.12.1.1) is read too: a tag missing at
the top level is looked up in the Shared Functional Groups and then in the
first Per-frame Functional Groups item (at any depth of their nested
sequences), and per-frame angles come from each frame's Positioner Position
Sequence.

Shapes: T frames of H x W = rows x columns pixels.
"""

from autocar.io.dicom.folders import case_from_dicom_dir, describe_xa, dicom_dir_to_case, find_xa_files
from autocar.io.dicom.read import read_xa
from autocar.io.dicom.tags import (
    DEFAULT_FPS,
    ENHANCED_XA_SOP_CLASS_UID,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    XA_SOP_CLASS_UID,
    DicomGeometryWarning,
    XASequence,
)
from autocar.io.dicom.write import write_case_xa, write_xa

__all__ = [
    "XA_SOP_CLASS_UID",
    "ENHANCED_XA_SOP_CLASS_UID",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "DEFAULT_FPS",
    "DicomGeometryWarning",
    "XASequence",
    "read_xa",
    "write_xa",
    "write_case_xa",
    "find_xa_files",
    "dicom_dir_to_case",
    "case_from_dicom_dir",
    "describe_xa",
]
