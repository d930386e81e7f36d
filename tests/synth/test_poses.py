"""Tests of the C-arm pose distribution and the named views (autocar.synth.poses)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autocar.errors import GeometryError
from autocar.geometry.carm import CArmView
from autocar.synth.poses import (
    POSES_FORMAT,
    STANDARD_VIEWS,
    PoseDistribution,
    named_view,
    parse_view_name,
)

GRID = np.array([(a, b) for a in (-60.0, 0.0, 60.0) for b in (-60.0, 0.0, 60.0)])


# ------------------------------------------------------------ named views
@pytest.mark.parametrize(
    "name, angles",
    [
        ("AP", (0.0, 0.0)),
        ("LAO 45 CRA 20", (45.0, 20.0)),
        ("RAO30/CAU20", (-30.0, -20.0)),
        ("rao 30 cau 20", (-30.0, -20.0)),
        ("LAO45CAU30", (45.0, -30.0)),
        ("lateral", (90.0, 0.0)),
        ("Left lateral", (90.0, 0.0)),
        ("AP caudal 30", (0.0, -30.0)),
        ("AP CRAN 30", (0.0, 30.0)),
        ("CRA 30", (0.0, 30.0)),
        ("RAO 10.5", (-10.5, 0.0)),
        ("LAO 30° CRA 20°", (30.0, 20.0)),
    ],
)
def test_parse_view_name(name: str, angles: tuple[float, float]) -> None:
    assert parse_view_name(name) == pytest.approx(angles)


@pytest.mark.parametrize(
    "name",
    ["", "   ", "hello", "LAO", "LAO abc", "LAO 30 RAO 20", "AP LAO 30", "CRA 20 CAU 10",
     "LAO -30", "LAO 200", "CAU 95", "LAO 30 extra", "30"],
)
def test_parse_view_name_rejects_junk(name: str) -> None:
    with pytest.raises(ValueError):
        parse_view_name(name)


def test_parse_view_name_rejects_non_string() -> None:
    with pytest.raises(GeometryError):
        parse_view_name(30)  # type: ignore[arg-type]


def test_standard_views_signs_and_names_parse() -> None:
    for name, (a, b) in STANDARD_VIEWS.items():
        assert parse_view_name(name) == (a, b), name
        assert ("RAO" in name) == (a < 0), name
        assert ("LAO" in name) == (a > 0), name
        assert ("CAU" in name) == (b < 0), name
        assert ("CRA" in name) == (b > 0), name
    for needed in ("AP", "LAO 30", "RAO 30", "LAO 45 CRA 20", "RAO 30 CAU 20", "LAO 90",
                   "AP CRA 30", "AP CAU 30", "LAO 45 CAU 30"):
        assert needed in STANDARD_VIEWS


def test_named_view_geometry() -> None:
    ap = named_view("AP")
    assert np.allclose(ap.detector_direction, [0.0, -1.0, 0.0])  # detector anterior
    assert ap.sid_mm == 1100.0 and ap.sod_mm == 750.0 and ap.spacing_mm == (0.3, 0.3)
    assert ap.shape == (512, 512)
    lat = named_view("LAO 90")
    assert np.allclose(lat.detector_direction, [1.0, 0.0, 0.0])  # patient's left
    rao = named_view("RAO 30", sid_mm=1000, sod_mm=700, spacing_mm=(0.2, 0.25), rows=256, columns=300)
    assert rao.primary_deg == -30.0 and rao.detector_direction[0] < 0  # detector on the right
    assert rao.spacing_mm == (0.2, 0.25) and rao.shape == (256, 300)
    cau = named_view("AP CAU 30")
    assert cau.detector_direction[2] < 0  # caudal: detector towards the feet
    with pytest.raises(ValueError):
        named_view("LAO 30", sid_mm=700, sod_mm=750)  # SID must exceed SOD


# --------------------------------------------------------------- clinical
def test_clinical_parameters() -> None:
    d = PoseDistribution.clinical()
    assert d.n_clusters == 9
    assert {tuple(c) for c in d.centers_deg.tolist()} == {tuple(c) for c in GRID.tolist()}
    assert np.allclose(d.sigmas_deg, 10.0) and np.allclose(d.weights, 1 / 9)


def test_clinical_sampling_statistics() -> None:
    d = PoseDistribution.clinical()
    rng = np.random.default_rng(123)
    angles, clusters, sid, sod, spacing = [], [], [], [], []
    for _ in range(2500):  # 2500 pairs = 5000 views
        views, ks = d.sample_pair(rng, return_clusters=True)
        assert ks[0] != ks[1]
        for v, k in zip(views, ks):
            angles.append((v.primary_deg, v.secondary_deg))
            clusters.append(k)
            sid.append(v.sid_mm)
            sod.append(v.sod_mm)
            spacing.append(v.spacing_mm)
            assert v.sid_mm > v.sod_mm
            assert v.shape == (512, 512)
    angles, clusters = np.array(angles), np.array(clusters)
    spacing = np.array(spacing)
    counts = np.bincount(clusters, minlength=9)
    assert counts.min() > 450  # ~556 each
    for k in range(9):
        a = angles[clusters == k]
        assert np.all(np.abs(a.mean(axis=0) - d.centers_deg[k]) < 1.5), k
        assert np.all(np.abs(a.std(axis=0) - 10.0) < 1.5), k
    assert np.all(np.abs(angles[:, 1]) <= 90.0)
    assert min(sid) >= 900 and max(sid) <= 1200 and min(sod) >= 700 and max(sod) <= 800
    assert spacing.min() >= 0.28 and spacing.max() <= 0.40
    assert np.array_equal(spacing[:, 0], spacing[:, 1])
    # Each view draws its own SID (not shared by the pair).
    sid = np.array(sid).reshape(-1, 2)
    assert np.mean(sid[:, 0] != sid[:, 1]) == 1.0


def test_sampling_reproducible() -> None:
    d = PoseDistribution.clinical()
    a = d.sample_pair(7)
    b = d.sample_pair(np.random.default_rng(7))
    assert [v.to_dict() for v in a] == [v.to_dict() for v in b]
    assert [v.to_dict() for v in a] != [v.to_dict() for v in d.sample_pair(8)]
    v1, k1 = d.sample_view(3, return_cluster=True)
    v2 = d.sample_view(3)
    assert v1.to_dict() == v2.to_dict() and 0 <= k1 < 9


def test_sample_view_fixed_cluster() -> None:
    d = PoseDistribution.clinical()
    rng = np.random.default_rng(0)
    a = np.array([(v.primary_deg, v.secondary_deg) for v in (d.sample_view(rng, cluster=2) for _ in range(400))])
    assert np.allclose(a.mean(axis=0), d.centers_deg[2], atol=2.0)
    for bad in (-1, 9, 1.5, True):
        with pytest.raises(GeometryError, match="cluster"):
            d.sample_view(rng, cluster=bad)  # type: ignore[arg-type]


def test_secondary_truncated_and_sid_above_sod() -> None:
    # A cluster at the cranial limit with a big sigma: all draws stay in [-90, 90].
    d = PoseDistribution(
        centers_deg=np.array([[0.0, 85.0], [170.0, -85.0]]),
        sigmas_deg=np.array([[30.0, 30.0], [30.0, 30.0]]),
        weights=np.array([0.5, 0.5]),
        sid_range_mm=(700.0, 760.0),  # overlaps the SOD range: SID must still exceed SOD
        sod_range_mm=(700.0, 750.0),
    )
    rng = np.random.default_rng(1)
    for _ in range(500):
        v = d.sample_view(rng)
        assert -90.0 <= v.secondary_deg <= 90.0
        assert -180.0 <= v.primary_deg <= 180.0
        assert v.sid_mm > v.sod_mm


def test_pair_single_cluster_falls_back() -> None:
    d = PoseDistribution(np.array([[30.0, 0.0]]), np.array([[5.0, 5.0]]), np.array([1.0]))
    (a, b), ks = d.sample_pair(0, return_clusters=True)
    assert ks == (0, 0)
    # Zero-weight clusters are never drawn.
    d2 = PoseDistribution(np.array([[30.0, 0.0], [-30.0, 0.0], [0.0, 30.0]]),
                          np.full((3, 2), 5.0), np.array([0.5, 0.5, 0.0]))
    rng = np.random.default_rng(0)
    for _ in range(100):
        _, ks = d2.sample_pair(rng, return_clusters=True)
        assert sorted(ks) == [0, 1]


# -------------------------------------------------------------------- fit
def _mixture_views(n: int, seed: int) -> tuple[list[CArmView], np.ndarray, np.ndarray]:
    centers = np.array([[-35.0, 5.0], [40.0, 20.0], [5.0, -30.0]])
    sigmas = np.array([[8.0, 5.0], [6.0, 9.0], [10.0, 7.0]])
    rng = np.random.default_rng(seed)
    views = []
    for i in range(n):
        k = i % 3
        a, b = rng.normal(centers[k], sigmas[k])
        views.append(CArmView(a, b, rng.uniform(950, 1150), rng.uniform(720, 780),
                              (0.3, 0.3), 512, 512))
    return views, centers, sigmas


def test_fit_recovers_known_mixture() -> None:
    views, centers, sigmas = _mixture_views(900, seed=4)
    views.append(CArmView(0.0, 0.0, 1000.0, 750.0, (0.2, 0.2), 1024, 1024))  # one odd size
    d = PoseDistribution.fit(views, n_clusters=3)
    assert d.n_clusters == 3
    order = [int(np.argmin(np.linalg.norm(d.centers_deg - c, axis=1))) for c in centers]
    assert sorted(order) == [0, 1, 2]
    for c, s, k in zip(centers, sigmas, order):
        assert np.all(np.abs(d.centers_deg[k] - c) < 3.0)
        assert np.all(np.abs(d.sigmas_deg[k] / s - 1.0) < 0.3)
        assert d.weights[k] == pytest.approx(1 / 3, abs=0.05)
    assert d.rows == 512 and d.columns == 512
    assert 950 <= d.sid_range_mm[0] < 960 and 1140 < d.sid_range_mm[1] <= 1150
    assert 720 <= d.sod_range_mm[0] < 725 and 775 < d.sod_range_mm[1] <= 780
    assert d.spacing_range_mm == pytest.approx((0.3, 0.3))
    # The fitted distribution samples.
    v = d.sample_view(0)
    assert v.sid_mm > v.sod_mm


def test_fit_few_views_and_empty() -> None:
    views, _, _ = _mixture_views(2, seed=0)
    d = PoseDistribution.fit(views, n_clusters=9)
    assert d.n_clusters == 2
    same = PoseDistribution.fit([views[0]] * 4, n_clusters=9)
    assert same.n_clusters == 1
    assert np.allclose(same.centers_deg[0], [views[0].primary_deg, views[0].secondary_deg])
    assert np.all(same.sigmas_deg >= 2.0)  # floored
    assert same.sample_pair(0)[0].sid_mm > same.sod_range_mm[0]
    with pytest.raises(ValueError, match="at least one view"):
        PoseDistribution.fit([], n_clusters=3)
    with pytest.raises(GeometryError, match="views\\[0\\]"):
        PoseDistribution.fit([(30.0, 0.0)], n_clusters=3)  # type: ignore[list-item]
    with pytest.raises(GeometryError, match="n_clusters"):
        PoseDistribution.fit(views, n_clusters=0)


def test_fit_reproducible() -> None:
    views, _, _ = _mixture_views(150, seed=2)
    assert PoseDistribution.fit(views, n_clusters=5, rng=1) == PoseDistribution.fit(views, n_clusters=5, rng=1)


# --------------------------------------------------------------------- io
def test_save_load_round_trip(tmp_path: Path) -> None:
    views, _, _ = _mixture_views(60, seed=3)
    for d in (PoseDistribution.clinical(), PoseDistribution.fit(views, n_clusters=4)):
        path = d.save(tmp_path / "sub" / "poses.json")
        back = PoseDistribution.load(path)
        assert back == d
        assert np.array_equal(back.centers_deg, d.centers_deg)
        assert np.array_equal(back.sigmas_deg, d.sigmas_deg)
        assert np.array_equal(back.weights, d.weights)
        assert back.sid_range_mm == d.sid_range_mm and back.spacing_range_mm == d.spacing_range_mm
        assert json.loads(path.read_text())["format"] == POSES_FORMAT
        # Same draws from the loaded copy.
        assert [v.to_dict() for v in back.sample_pair(5)] == [v.to_dict() for v in d.sample_pair(5)]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["poses.json"]  # no temp file left


def _write(tmp_path: Path, data: object, name: str = "p.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("key", ["centers_deg", "sigmas_deg", "weights", "sid_range_mm", "sod_range_mm",
                                 "spacing_range_mm", "rows", "columns"])
def test_load_missing_key(tmp_path: Path, key: str) -> None:
    data = PoseDistribution.clinical().to_dict()
    del data[key]
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=key) as info:
        PoseDistribution.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("centers_deg", "nan"),
        ("sigmas_deg", "nan"),
        ("weights", "nan"),
        ("sid_range_mm", "nan"),
        ("centers_deg", [[0.0, 0.0]]),  # wrong K for sigmas: reported as sigmas_deg shape
        ("sigmas_deg", [[10.0, -1.0]] * 9),
        ("weights", [0.0] * 9),
        ("sod_range_mm", [800.0, 700.0]),
        ("sid_range_mm", [600.0, 700.0]),
        ("rows", 0),
        ("columns", 51.5),
        ("centers_deg", [[0.0, 120.0]] * 9),
    ],
)
def test_load_bad_values(tmp_path: Path, key: str, value: object) -> None:
    data = PoseDistribution.clinical().to_dict()
    if value == "nan":
        arr = np.array(data[key], dtype=float)
        arr.flat[0] = np.nan
        data[key] = arr.tolist()
    else:
        data[key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # json writes NaN, Python's json reads it back
    expected = "sigmas_deg" if (key, value) == ("centers_deg", [[0.0, 0.0]]) else key
    with pytest.raises(ValueError, match=expected) as info:
        PoseDistribution.load(path)
    assert str(path) in str(info.value)


def test_load_wrong_format_and_garbage(tmp_path: Path) -> None:
    data = PoseDistribution.clinical().to_dict()
    with pytest.raises(ValueError, match="format"):
        PoseDistribution.load(_write(tmp_path, {**data, "format": "autocar-poses/99"}))
    no_fmt = dict(data)
    del no_fmt["format"]
    with pytest.raises(ValueError, match="format"):
        PoseDistribution.load(_write(tmp_path, no_fmt))
    with pytest.raises(ValueError, match="extra"):
        PoseDistribution.load(_write(tmp_path, {**data, "extra": 1}))
    with pytest.raises(ValueError, match="JSON object"):
        PoseDistribution.load(_write(tmp_path, [1, 2, 3]))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        PoseDistribution.load(bad)
    with pytest.raises(ValueError, match="missing.json"):
        PoseDistribution.load(tmp_path / "missing.json")


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = PoseDistribution.clinical().save(tmp_path / "p.json")
    before = path.read_text()
    views, _, _ = _mixture_views(30, seed=1)
    other = PoseDistribution.fit(views, n_clusters=2)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("autocar.io.atomic.os.replace", failing_replace)
    with pytest.raises(OSError):
        other.save(path)
    assert path.read_text() == before  # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # temporary file removed


def test_constructor_validation() -> None:
    with pytest.raises(GeometryError, match="centers_deg"):
        PoseDistribution(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(GeometryError, match="sigmas_deg"):
        PoseDistribution(np.zeros((2, 2)), np.ones((3, 2)), np.ones(2))
    d = PoseDistribution(np.zeros((2, 2)), np.ones((2, 2)), np.array([1.0, 3.0]))
    assert np.allclose(d.weights, [0.25, 0.75])
