"""Dynamic reconstruction: carrying one vessel tree from frame to frame (METHOD.md section 4)."""

from autocar.dynamic.deformation import DeformationGraph, FitResult, Skinning

__all__ = ["DeformationGraph", "FitResult", "Skinning"]
