"""Synthetic angiography world: coronary trees, heartbeat, C-arm poses, rendering."""
