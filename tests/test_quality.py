"""Quality signals of a result without ground truth: coverage, pieces, length, motion, pairing."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.errors import ShapeError
from autocar.evaluation.quality import QualityConfig, quality_signals, view_coverage
from autocar.geometry import CArmView
from autocar.geometry.centerline import CenterlineGraph
from autocar.synth.render import render_mask

AP = CArmView(0.0, 0.0, 1000.0, 750.0, (0.4, 0.4), 256, 256)
LAO = CArmView(60.0, 10.0, 1000.0, 750.0, (0.4, 0.4), 256, 256)


def _tree(offset: float = 0.0) -> CenterlineGraph:
    return CenterlineGraph([[-40, offset, 0], [0, offset, 0], [30, 20 + offset, 10], [25, -30 + offset, 0]],
                           [1.5, 1.5, 1.0, 1.0], [[0, 1], [1, 2], [1, 3]]).resampled(0.5)


def test_coverage_of_the_tree_that_made_the_mask_is_full_and_of_half_of_it_about_half():
    tree = _tree()
    mask = render_mask(tree, AP) > 0
    assert view_coverage(tree, AP, mask) > 0.95
    half = CenterlineGraph([[-40, 0, 0], [0, 0, 0]], [1.5, 1.5], [[0, 1]]).resampled(0.5)
    cov = view_coverage(half, AP, mask)
    assert 0.25 < cov < 0.6  # the trunk is 40 of the tree's ~120 mm
    empty = CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), int))
    assert view_coverage(empty, AP, mask) == 0.0
    assert np.isnan(view_coverage(tree, AP, np.zeros_like(mask)))
    with pytest.raises(ShapeError, match="does not match"):
        view_coverage(tree, AP, mask[:100])


def test_a_good_tree_has_no_flag():
    tree = _tree()
    masks = [render_mask(tree, v) > 0 for v in (AP, LAO)]
    rep = quality_signals(tree, [AP, LAO], masks, motion_max_mm=12.0,
                          pairing={"verdict": "consistent", "mismatch": {"as given": 0.2}})
    assert rep.ok and rep.flags == ()
    assert rep.signals["pieces"] == 1 and rep.signals["largest_piece_share"] == 1.0
    assert rep.to_dict()["ok"] is True and rep.signals["pairing"] == "consistent"


def test_each_failure_is_flagged_with_its_reason():
    tree = _tree()
    masks = [render_mask(tree, v) > 0 for v in (AP, LAO)]
    # A tree displaced by 15 mm explains little of the masks; two equal pieces; too short.
    far = _tree(offset=15.0)
    rep = quality_signals(far, [AP, LAO], masks)
    assert any("explains too little" in f for f in rep.flags)
    piece = CenterlineGraph([[0, 0, 0], [20, 0, 0]], [1.0, 1.0], [[0, 1]]).resampled(0.5)
    other = piece.transformed(lambda p: p + [0, 40, 0])
    two = CenterlineGraph(np.vstack([piece.nodes, other.nodes]), np.concatenate([piece.radii, other.radii]),
                          np.vstack([piece.edges, other.edges + piece.num_nodes]))
    rep = quality_signals(two, [AP, LAO], masks)
    assert any("2 pieces" in f for f in rep.flags)
    assert any("outside the range of one coronary tree" in f for f in rep.flags)  # 40 mm in all
    rep = quality_signals(tree, [AP, LAO], masks, motion_max_mm=44.0)
    assert any("tracking failed" in f for f in rep.flags)
    rep = quality_signals(tree, [AP, LAO], masks, pairing={"verdict": "mirrored", "message": "view B mirrored"})
    assert rep.flags == ("view B mirrored",) and not rep.ok
    strict = QualityConfig(min_coverage=0.999)
    assert not quality_signals(far, [AP, LAO], masks, config=strict).ok
