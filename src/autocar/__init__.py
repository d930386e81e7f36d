"""autocar: dynamic 3D coronary reconstruction from two X-ray angiography sequences."""

__version__ = "0.1.0"
