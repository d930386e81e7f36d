"""Project exceptions.

All are ``ValueError`` subclasses so callers that only know "bad input" can
catch ``ValueError``. Each is raised at a boundary (a file, a key, a tag, an
argument) with a message naming that boundary and the bad value.
"""

from __future__ import annotations


class AutocarError(ValueError):
    """Base class of every error autocar raises on bad input."""


class ShapeError(AutocarError):
    """An array has the wrong number of dimensions, size or dtype."""


class GeometryError(AutocarError):
    """A C-arm geometry parameter is missing, not finite or out of range."""


class CaseFormatError(AutocarError):
    """A case folder or result folder does not follow CASE_FORMAT v1."""


class DicomGeometryError(AutocarError):
    """A DICOM file cannot be used: missing/contradictory tags, not XA, bad pixels."""


class TreeFormatError(AutocarError):
    """A vessel tree (graph, mesh, label volume) cannot be read or is invalid."""


class OutputError(AutocarError):
    """The result cannot be written where it was asked for (no such folder, no permission)."""
