"""Contrast wash-in / wash-out frames: recognised by their vessel area, left out of the pairing."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.dynamic.contrast import contrast_frames
from autocar.dynamic.phase import pair_case_views
from autocar.errors import CaseFormatError, ShapeError
from autocar.io.case import CaseView
from autocar.synth.cases import SynthCaseConfig, synthesize_case


def _run(areas: list[int], shape: tuple[int, int] = (40, 50)) -> np.ndarray:
    masks = np.zeros((len(areas), *shape), bool)
    for k, a in enumerate(areas):
        masks[k].flat[:a] = True
    return masks


def test_frames_below_half_the_peak_area_are_left_out_with_a_reason():
    found = contrast_frames(_run([0, 300, 900, 1000, 1000, 980, 400]))
    assert found.usable.tolist() == [False, False, True, True, True, True, False]
    assert found.share[2] == pytest.approx(0.9) and found.share[0] == 0.0
    assert sorted(found.reasons) == [0, 1, 6]
    assert "30 %" in found.reasons[1] and "wash-in or wash-out" in found.reasons[1]
    assert contrast_frames(_run([0, 300, 1000]), min_fraction=0.0).usable.all()


def test_all_empty_run_has_no_usable_frame_and_bad_input_is_refused():
    found = contrast_frames(_run([0, 0, 0]))
    assert not found.usable.any() and found.reasons[2] == "empty vessel mask"
    with pytest.raises(ShapeError):
        contrast_frames(np.zeros((40, 50), bool))
    with pytest.raises(ValueError):
        contrast_frames(_run([10]), min_fraction=1.5)


def test_pairing_skips_the_frames_left_out():
    sc = synthesize_case(SynthCaseConfig(frames=5, lag_range=(0.03, 0.03)), rng=4)
    a, b = sc.case.views
    usable_a = np.array([False, True, True, True, True])
    usable_b = np.array([True, True, False, True, True])
    p = pair_case_views(a, b, usable_a=usable_a, usable_b=usable_b)
    assert p.index_a.tolist() == [1, 2, 3, 4]
    assert 2 not in p.index_b.tolist()
    plain = CaseView(name="B", view=b.view, kind="mask", frames=b.frames)  # no phase: paired by index
    q = pair_case_views(CaseView(name="A", view=a.view, kind="mask", frames=a.frames), plain,
                        usable_a=usable_a, usable_b=usable_b)
    assert q.source == "index" and q.index_a.tolist() == [1, 2, 3, 4] and q.index_b.tolist() == [1, 1, 3, 4]
    with pytest.raises(CaseFormatError, match="no usable frame"):
        pair_case_views(a, b, usable_a=np.zeros(5, bool))
