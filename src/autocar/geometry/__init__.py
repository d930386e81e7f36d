"""C-arm geometry (shared/GEOMETRY.md): the only place angle signs live."""

from autocar.geometry.carm import (
    CArmView,
    angles_from_direction,
    masks_for_views,
    rotation_x,
    rotation_z,
    view_axes,
)

__all__ = ["CArmView", "angles_from_direction", "masks_for_views", "rotation_x", "rotation_z", "view_axes"]
