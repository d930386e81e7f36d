"""Tests of autocar.net.samples (synthetic training samples) and autocar.net.model (AutocarNet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autocar.errors import ShapeError
from autocar.net.model import AutocarNet, NetConfig
from autocar.net.samples import Sample, SampleConfig, hull_sample, make_sample
from autocar.net.targets import centerline_distance, tube_targets
from autocar.synth.render import render_mask

TINY = NetConfig(encoder_channels=4, base_channels=4, depth=2)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def sample() -> Sample:
    return make_sample(3)


@pytest.fixture(scope="module")
def synced() -> Sample:
    """A sample whose two masks show the same tree (no lag, no scaling)."""
    return make_sample(2, SampleConfig(max_lag=0.0, scaling=0.0))


def pixel_hits(mask: np.ndarray, view, points: np.ndarray) -> np.ndarray:
    """(N,) bool: the pixel nearest to each point's projection is inside the image and set."""
    rc, _ = view.project(points)
    assert np.isfinite(rc).all()
    idx = np.rint(rc).astype(np.int64)
    inside = (idx[:, 0] >= 0) & (idx[:, 0] < view.rows) & (idx[:, 1] >= 0) & (idx[:, 1] < view.columns)
    hit = np.zeros(len(points), dtype=bool)
    hit[inside] = mask[idx[inside, 0], idx[inside, 1]]
    return hit


def tube_distance_bruteforce(points: np.ndarray, graph) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from points (N, 3) to the polyline segments, and the interpolated radius there."""
    a = graph.nodes[graph.edges[:, 0]]  # (E, 3)
    b = graph.nodes[graph.edges[:, 1]]
    ra = graph.radii[graph.edges[:, 0]]
    rb = graph.radii[graph.edges[:, 1]]
    ab = b - a
    ll = np.maximum((ab * ab).sum(axis=1), 1e-300)
    dist = np.empty(len(points))
    rad = np.empty(len(points))
    for i, p in enumerate(points):
        t = np.clip(((p - a) * ab).sum(axis=1) / ll, 0.0, 1.0)
        q = a + t[:, None] * ab
        d = np.linalg.norm(p - q, axis=1)
        j = int(np.argmin(d))
        dist[i] = d[j]
        rad[i] = ra[j] * (1 - t[j]) + rb[j] * t[j]
    return dist, rad


# --------------------------------------------------------------------- samples
def test_make_sample_is_deterministic_for_int_seed(sample: Sample):
    again = make_sample(3)
    assert again.views == sample.views
    np.testing.assert_array_equal(again.masks, sample.masks)
    np.testing.assert_array_equal(again.distances, sample.distances)
    np.testing.assert_array_equal(again.hull.coords, sample.hull.coords)
    np.testing.assert_array_equal(again.occupancy, sample.occupancy)
    np.testing.assert_array_equal(again.centerness, sample.centerness)
    np.testing.assert_array_equal(again.truth.nodes, sample.truth.nodes)
    other = make_sample(4)
    assert not np.array_equal(other.masks, sample.masks)


def test_sample_shapes_and_dtypes(sample: Sample):
    v = sample.views
    assert len(v) == 2
    assert sample.masks.shape == (2, v[0].rows, v[0].columns) and sample.masks.dtype == np.bool_
    assert sample.distances.shape == sample.masks.shape and sample.distances.dtype == np.float32
    assert (sample.distances[sample.masks] == 0).all()
    assert (sample.distances[~sample.masks] >= 1).all()
    n = len(sample.hull)
    assert n > 0
    assert sample.occupancy.shape == (n,) and sample.occupancy.dtype == np.bool_
    assert sample.centerness.shape == (n,) and sample.centerness.dtype == np.float32
    assert 0 < sample.occupancy.sum() < n
    c = sample.centerness
    assert ((c >= 0) & (c <= 1)).all()
    # Centerness is positive only inside the tube (it is 0 on the wall itself).
    assert not (c[~sample.occupancy] > 0).any()
    assert (c[sample.occupancy] > 0).mean() > 0.9


def test_occupancy_matches_tube_targets(sample: Sample):
    occ, ctr = tube_targets(
        sample.hull.centers_mm.astype(np.float64), sample.truth, min_radius_mm=sample.hull.voxel_mm / 2
    )
    np.testing.assert_array_equal(sample.occupancy, occ)
    np.testing.assert_array_equal(sample.centerness, ctr)


def test_occupancy_matches_bruteforce_tube_distance(sample: Sample):
    """Occupied exactly when the voxel centre is within max(r, voxel/2) of the truth centre line."""
    gen = np.random.default_rng(0)
    occ_idx = np.flatnonzero(sample.occupancy)
    free_idx = np.flatnonzero(~sample.occupancy)
    pts_all = sample.hull.centers_mm.astype(np.float64)
    # Also free voxels just outside the wall, where a wrong rule (e.g. no voxel/2 floor) flips first.
    d_free, r_free = centerline_distance(pts_all[free_idx], sample.truth)
    gap = d_free - np.maximum(r_free, sample.hull.voxel_mm / 2)
    near = free_idx[np.argsort(gap)[:200:10]]
    pick = np.concatenate(
        [gen.choice(occ_idx, 40, replace=False), gen.choice(free_idx, 40, replace=False), near]
    )
    pts = pts_all[pick]
    dist, rad = tube_distance_bruteforce(pts, sample.truth)
    limit = np.maximum(rad, sample.hull.voxel_mm / 2)
    # The targets sample the centre line every 0.1 mm: skip voxels within 0.06 mm of the wall.
    clear = np.abs(dist - limit) > 0.06
    assert clear.sum() >= 60
    np.testing.assert_array_equal(sample.occupancy[pick][clear], (dist <= limit)[clear])
    expect_ctr = np.clip(1 - dist / limit, 0, 1)
    np.testing.assert_allclose(sample.centerness[pick][clear], expect_ctr[clear], atol=0.06 / 0.25)


def test_truth_projects_into_view_a_mask(sample: Sample):
    pts = sample.truth.sample_segments(0.25)[0]
    assert pixel_hits(sample.masks[0], sample.views[0], pts).all()
    np.testing.assert_array_equal(sample.masks[0], render_mask(sample.truth, sample.views[0]))


def test_truth_projects_into_both_masks_when_synchronised(synced: Sample):
    pts = synced.truth.sample_segments(0.25)[0]
    for m, v in zip(synced.masks, synced.views):
        assert pixel_hits(m, v, pts).all()
    np.testing.assert_array_equal(synced.masks[1], render_mask(synced.truth, synced.views[1]))
    # The two views come from different clusters: different poses.
    a, b = synced.views
    assert (a.primary_deg, a.secondary_deg) != (b.primary_deg, b.secondary_deg)


def test_hull_sample_without_truth_and_with_empty_mask(sample: Sample):
    no_truth = hull_sample(sample.masks, sample.views, None)
    assert len(no_truth.hull) == len(sample.hull)
    assert not no_truth.occupancy.any() and not no_truth.centerness.any()
    assert no_truth.truth.num_nodes == 0
    masks = sample.masks.copy()
    masks[1] = False
    empty = hull_sample(masks, sample.views, sample.truth)
    assert len(empty.hull) == 0 and "empty" in empty.hull.reason
    assert empty.occupancy.shape == (0,) and empty.centerness.shape == (0,)


# ----------------------------------------------------------------------- model
def run(model: AutocarNet, s: Sample, *, dtype=torch.float32, swap: bool = False, swap_views_only=False):
    d = torch.as_tensor(s.distances, dtype=dtype)
    views = s.views
    if swap:
        d, views = d.flip(0), views[::-1]
    elif swap_views_only:
        d = d.flip(0)
    with torch.no_grad():
        return model(d, s.hull, views)


def test_model_output_shapes_and_ranges(sample: Sample):
    torch.manual_seed(0)
    model = AutocarNet(TINY).eval()
    logit, ctr = run(model, sample)
    n = len(sample.hull)
    assert logit.shape == (n,) and ctr.shape == (n,)
    assert logit.dtype == torch.float32
    assert torch.isfinite(logit).all() and torch.isfinite(ctr).all()
    assert ((ctr >= 0) & (ctr <= 1)).all()
    assert logit.std() > 0, "outputs depend on the voxel"


def test_model_is_invariant_to_view_order(sample: Sample):
    torch.manual_seed(1)
    model = AutocarNet(TINY).double().eval()
    logit, ctr = run(model, sample, dtype=torch.float64)
    logit_s, ctr_s = run(model, sample, dtype=torch.float64, swap=True)
    torch.testing.assert_close(logit_s, logit, rtol=0, atol=1e-9)
    torch.testing.assert_close(ctr_s, ctr, rtol=0, atol=1e-9)
    # The carved hull itself does not depend on the view order either.
    swapped = hull_sample(sample.masks[::-1], sample.views[::-1], None)
    np.testing.assert_array_equal(swapped.hull.coords, sample.hull.coords)
    # Not vacuous: pairing each view with the other's distance map changes the output.
    logit_x, _ = run(model, sample, dtype=torch.float64, swap_views_only=True)
    assert (logit_x - logit).abs().max() > 1e-3


def test_model_float32_view_order_within_tolerance(sample: Sample):
    torch.manual_seed(2)
    model = AutocarNet(TINY).eval()
    logit, ctr = run(model, sample)
    logit_s, ctr_s = run(model, sample, swap=True)
    torch.testing.assert_close(logit_s, logit, rtol=0, atol=1e-5)
    torch.testing.assert_close(ctr_s, ctr, rtol=0, atol=1e-5)


def test_model_empty_hull_gives_empty_outputs(sample: Sample):
    masks = sample.masks.copy()
    masks[0] = False
    empty = hull_sample(masks, sample.views, None)
    assert len(empty.hull) == 0
    model = AutocarNet(TINY).eval()
    logit, ctr = run(model, empty)
    assert logit.shape == (0,) and ctr.shape == (0,)


def test_model_rejects_distances_of_wrong_shape(sample: Sample):
    model = AutocarNet(TINY).eval()
    d = torch.as_tensor(sample.distances)
    with pytest.raises(ShapeError):
        model(d[:1], sample.hull, sample.views)  # one map for two views


# ------------------------------------------------------------ scene augmentation
def test_scene_transform_is_a_bounded_rotation_times_a_bounded_scale():
    from autocar.net.samples import scene_transform

    gen = np.random.default_rng(0)
    for _ in range(50):
        m = scene_transform(gen, 40.0, 0.1)
        scale = np.cbrt(np.linalg.det(m))
        assert 0.9 - 1e-9 <= scale <= 1.1 + 1e-9
        rot = m / scale
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
        assert angle <= 40.0 + 1e-6
    np.testing.assert_allclose(scene_transform(gen, 0.0, 0.0), np.eye(3))


def test_rotated_sample_is_the_same_scene_moved_rigidly(synced: Sample):
    from scipy.spatial.transform import Rotation

    rotated = make_sample(2, SampleConfig(max_lag=0.0, scaling=0.0, rotate_deg=60.0))
    # Same tree and poses (the rotation is drawn last) ...
    assert rotated.views == synced.views
    assert rotated.truth.num_nodes == synced.truth.num_nodes
    np.testing.assert_array_equal(rotated.truth.radii, synced.truth.radii)
    # ... moved by one rotation: pairwise distances are kept, positions are not.
    a, b = synced.truth.nodes, rotated.truth.nodes
    i, j = np.random.default_rng(1).integers(0, len(a), size=(2, 200))
    np.testing.assert_allclose(np.linalg.norm(b[i] - b[j], axis=1), np.linalg.norm(a[i] - a[j], axis=1), atol=1e-6)
    assert np.abs(b - a).max() > 1.0
    ca, cb = a - a.mean(0), b - b.mean(0)
    rot, _ = Rotation.align_vectors(cb, ca)
    assert 0.0 < rot.magnitude() <= np.radians(60.0) + 1e-6
    # The masks are the rotated tree's, and the targets follow it.
    np.testing.assert_array_equal(rotated.masks[0], render_mask(rotated.truth, rotated.views[0]))
    assert rotated.occupancy.any()
