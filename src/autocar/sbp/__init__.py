"""Sparse backward projection: coarse-to-fine carving of the two-view visual hull.

Import from the modules: :mod:`autocar.sbp.carve` (``SBPConfig``,
``SparseHull``, ``carve``, ``distance_maps``) and :mod:`autocar.sbp.features`
(``sample_maps``, ``hull_features``; needs torch). Nothing is re-exported
here on purpose: a package attribute named ``carve`` would shadow the
``carve`` submodule (``import autocar.sbp.carve as m`` would give the function).
"""
