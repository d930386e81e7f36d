"""Centre-line graphs from network predictions: extraction, radii, meshes."""
