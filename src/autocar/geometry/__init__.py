"""3D geometry, the bottom layer: the C-arm view (docs/geometry.md; the only place angle
signs live), the centre-line graph type (``centerline``) and centre lines of 3D volumes
(``volume_graph``)."""

from autocar.geometry.carm import (
    CArmView,
    angles_from_direction,
    masks_for_views,
    rotation_x,
    rotation_z,
    view_axes,
)

__all__ = ["CArmView", "angles_from_direction", "masks_for_views", "rotation_x", "rotation_z", "view_axes"]
