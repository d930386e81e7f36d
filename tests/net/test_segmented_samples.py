"""Training samples whose masks are the 2D U-Net's segmentation of rendered angiograms (SampleConfig.segmented_fraction)."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.net.samples import SampleConfig, make_sample
from autocar.net.train import TrainConfig
from autocar.seg2d.scores import dice_2d
from autocar.synth.render import render_mask


def test_segmented_samples_keep_the_scene_and_the_targets_but_not_the_masks():
    exact, seg = make_sample(3, SampleConfig()), make_sample(3, SampleConfig(segmented_fraction=1.0))
    # Same tree, heartbeat and poses (the draw comes after everything else), same truth.
    assert np.allclose(exact.truth.nodes, seg.truth.nodes)
    assert [v.to_dict() for v in exact.views] == [v.to_dict() for v in seg.views]
    # View A's exact mask is the truth's rendering; the segmented one differs from it but overlaps it well.
    assert np.array_equal(exact.masks[0], render_mask(exact.truth, exact.views[0]))
    for m_seg, m_exact in zip(seg.masks, exact.masks):
        assert not np.array_equal(m_seg, m_exact)
        assert 0.6 < dice_2d(m_seg, m_exact) < 0.99
    # The targets are the true tube wherever the hull lies: some hull voxels of the segmented
    # masks are false (blobs, catheter), and the sample is deterministic.
    assert seg.occupancy.any() and not seg.occupancy.all()
    again = make_sample(3, SampleConfig(segmented_fraction=1.0))
    assert np.array_equal(again.masks, seg.masks) and np.array_equal(again.occupancy, seg.occupancy)


def test_the_fraction_is_checked_and_kept_through_the_train_config():
    with pytest.raises(ValueError, match="segmented_fraction"):
        SampleConfig(segmented_fraction=1.2)
    cfg = TrainConfig(segmented_fraction=0.5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg and cfg.sample_config().segmented_fraction == 0.5
    assert TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items()
                                  if k != "segmented_fraction"}) == TrainConfig()  # old config files
