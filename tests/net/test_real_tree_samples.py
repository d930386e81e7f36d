"""Training samples drawn from real centre-line files (SampleConfig.real_trees), and their config."""

from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.net.samples import SampleConfig, make_sample, real_tree_pool
from autocar.net.train import TrainConfig
from autocar.synth.trees import left_and_right


def _two_trees() -> CenterlineGraph:
    """A long tube at x = +40 mm (patient's left in LPS) and a short one at x = -40 mm, 1 mm apart nodes."""
    t = np.arange(0.0, 60.0, 1.0)
    left = np.stack([np.full_like(t, 40.0), t - 30.0, 0.3 * t], axis=1)
    s = np.arange(0.0, 40.0, 1.0)
    right = np.stack([np.full_like(s, -40.0), s - 20.0, np.zeros_like(s)], axis=1)
    nodes = np.vstack([left, right])
    edges = [(i, i + 1) for i in range(len(t) - 1)] + [(len(t) + i, len(t) + i + 1) for i in range(len(s) - 1)]
    return CenterlineGraph(nodes, np.full(len(nodes), 1.5), np.asarray(edges))


def test_left_and_right_split_by_patient_side_centred_and_resampled():
    parts = left_and_right(_two_trees(), spacing_mm=0.5)
    assert [side for side, _ in parts] == ["left", "right"]
    (_, left), (_, right) = parts
    assert left.total_length_mm == pytest.approx(np.hypot(59.0, 0.3 * 59.0), rel=1e-6)  # the long one
    assert right.total_length_mm == pytest.approx(39.0, rel=1e-6)
    for g in (left, right):
        lo, hi = g.bounds()
        assert np.allclose((lo + hi) / 2, 0.0)
        assert g.edge_lengths().max() <= 0.5 + 1e-9


def test_left_and_right_of_one_component_uses_its_side():
    one = _two_trees()
    keep = one.nodes[:, 0] < 0
    idx = np.flatnonzero(keep)
    remap = -np.ones(one.num_nodes, np.int64)
    remap[idx] = np.arange(len(idx))
    e = one.edges[np.all(keep[one.edges], axis=1)]
    parts = left_and_right(CenterlineGraph(one.nodes[idx], one.radii[idx], remap[e]))
    assert [side for side, _ in parts] == ["right"]
    with pytest.raises(ValueError):
        left_and_right(CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64)))


@pytest.fixture(scope="module")
def tree_file(tmp_path_factory) -> str:
    """The two tubes as a NIfTI label volume (1 mm voxels, radius 2 voxels), read back through load_tree."""
    import nibabel

    lab = np.zeros((100, 80, 30), np.int16)
    i, j, k = np.meshgrid(*[np.arange(n) for n in lab.shape], indexing="ij")
    lab[((j - 40) ** 2 + (k - 15) ** 2 <= 4) & (i >= 5) & (i <= 45)] = 1
    lab[((j - 20) ** 2 + (k - 15) ** 2 <= 4) & (i >= 60) & (i <= 75)] = 1
    path = tmp_path_factory.mktemp("real") / "two.nii.gz"
    nibabel.save(nibabel.Nifti1Image(lab, np.diag([1.0, 1.0, 1.0, 1.0])), path)
    return str(path)


def test_pool_holds_both_trees_of_the_file_with_a_heart_frame(tree_file):
    pool = real_tree_pool((tree_file,))
    assert len(pool) == 2 and {t.side for t in pool} == {"left", "right"}
    for t in pool:
        assert t.graph.num_nodes > 10 and t.stenoses == ()
        assert np.isfinite(t.heart_center).all()


def test_samples_from_real_trees_are_deterministic_and_target_that_tree(tree_file):
    cfg = SampleConfig(real_trees=(tree_file,), real_fraction=1.0)
    pool = real_tree_pool((tree_file,))
    a, b = make_sample(11, cfg), make_sample(11, cfg)
    assert np.array_equal(a.occupancy, b.occupancy) and np.allclose(a.truth.nodes, b.truth.nodes)
    assert a.truth.num_nodes in {t.graph.num_nodes for t in pool}  # a real tree, not a generated one
    assert a.occupancy.any() and not a.occupancy.all()
    # Without the real share the stream is the generator's, whatever files are listed.
    plain, listed = make_sample(5, SampleConfig()), make_sample(5, SampleConfig(real_trees=(tree_file,)))
    assert np.array_equal(plain.occupancy, listed.occupancy)


def test_bad_real_tree_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="real_fraction"):
        SampleConfig(real_fraction=1.5, real_trees=("x",))
    with pytest.raises(ValueError, match="real_trees"):
        SampleConfig(real_fraction=0.5)
    with pytest.raises(FileNotFoundError, match="missing.vtp"):
        make_sample(0, SampleConfig(real_trees=(str(tmp_path / "missing.vtp"),), real_fraction=1.0))


def test_train_config_keeps_the_real_tree_settings_through_json(tree_file):
    cfg = TrainConfig(real_trees=(tree_file,), real_fraction=0.4, real_trees_sha256=("ab",))
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back == cfg
    assert back.sample_config().real_trees == (tree_file,) and back.sample_config().real_fraction == 0.4
    assert TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items()
                                  if not k.startswith("real")}) == TrainConfig()  # old config files
