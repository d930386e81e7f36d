"""Case folders, CASE_FORMAT v1 (autocar.io.case)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autocar.errors import CaseFormatError, ShapeError
from autocar.geometry.carm import CArmView
from autocar.io import images as images_mod
from autocar.io.case import (
    CASE_FORMAT,
    Case,
    CaseView,
    read_case,
    validate_case_json,
    write_case,
)

# Key sets of the example in shared/CASE_FORMAT.md ("Input: a case folder").
DOC_TOP_KEYS = {"format", "tree", "views"}
DOC_VIEW_KEYS = {
    "name", "primary_angle_deg", "secondary_angle_deg", "sid_mm", "sod_mm", "pixel_spacing_mm",
    "rows", "columns", "kind", "frames", "frame_times_ms", "cardiac_phase",
}


def make_case() -> Case:
    rng = np.random.default_rng(3)
    va = CArmView(30.0, 20.0, 1100.0, 750.0, (0.37, 0.37), 6, 8)
    vb = CArmView(-35.5, -10.25, 1050.0, 760.0, (0.3, 0.31), 5, 9)
    masks = rng.random((2, 6, 8)) > 0.6
    masks[1] = False  # an empty mask frame is allowed
    images = rng.integers(0, 65536, (3, 5, 9)).astype(np.uint16)
    a = CaseView("A", va, "mask", masks, frame_times_ms=np.array([0.0, 66.7]), cardiac_phase=np.array([0.0, 0.1]))
    b = CaseView("B", vb, "image", images, frame_times_ms=np.array([10.0, 76.7, 143.4]),
                 cardiac_phase=np.array([0.95, 0.05, 0.15]))
    return Case(views=(a, b), tree="left", metadata={"synthetic": {"seed": 7, "stenoses": [{"x": 1.5}]}})


@pytest.fixture()
def case_dir(tmp_path) -> Path:
    return write_case(make_case(), tmp_path / "case")


def edit(case_dir: Path, fn) -> Path:
    """Apply ``fn`` to the parsed case.json and write it back."""
    p = case_dir / "case.json"
    data = json.loads(p.read_text())
    fn(data)
    p.write_text(json.dumps(data))
    return p


# ------------------------------------------------------------------ round trip
def test_round_trip(case_dir):
    case = make_case()
    back = read_case(case_dir)
    assert back.path == case_dir and back.tree == "left"
    assert back.metadata == case.metadata
    assert back.num_frames == 2
    for a, b in zip(case.views, back.views):
        assert a.name == b.name and a.kind == b.kind
        assert a.view == b.view
        assert b.frames.dtype == a.frames.dtype and np.array_equal(a.frames, b.frames)
        assert np.array_equal(a.frame_times_ms, b.frame_times_ms)
        assert np.array_equal(a.cardiac_phase, b.cardiac_phase)
    assert back.views[0].frames.dtype == np.bool_ and back.views[1].frames.dtype == np.uint16
    assert back.views[1].frame_files == ("B/000.png", "B/001.png", "B/002.png")
    # Writing what was read gives the same case.json.
    again = write_case(back, case_dir.parent / "again")
    assert json.loads((again / "case.json").read_text()) == json.loads((case_dir / "case.json").read_text())
    # Path to case.json itself works too.
    assert read_case(case_dir / "case.json").views[0].name == "A"


def test_written_keys_match_the_documented_example(case_dir):
    data = json.loads((case_dir / "case.json").read_text())
    assert data["format"] == "autocar-case/1" == CASE_FORMAT
    assert set(data) - {"synthetic"} == DOC_TOP_KEYS
    for entry in data["views"]:
        assert set(entry) == DOC_VIEW_KEYS
    assert data["views"][0]["frames"] == ["A/000.png", "A/001.png"]
    assert data["views"][1]["pixel_spacing_mm"] == [0.3, 0.31]
    assert sorted(p.name for p in case_dir.iterdir()) == ["A", "B", "case.json"]


def test_optional_keys_omitted(tmp_path):
    c = make_case()
    v = [CaseView(cv.name, cv.view, cv.kind, cv.frames) for cv in c.views]
    out = write_case(Case(views=tuple(v)), tmp_path / "c")
    data = json.loads((out / "case.json").read_text())
    assert set(data) == {"format", "views"}
    assert "frame_times_ms" not in data["views"][0] and "cardiac_phase" not in data["views"][0]
    back = read_case(out)
    assert back.tree is None and back.metadata == {} and back.views[0].cardiac_phase is None


def test_load_frames_false(case_dir):
    case = read_case(case_dir, load_frames=False)
    assert [cv.num_frames for cv in case.views] == [2, 3]
    assert case.views[1].frames.shape == (0, 5, 9) and not case.views[1].frames_loaded
    assert case.num_frames == 2
    with pytest.raises(CaseFormatError, match="not loaded"):
        write_case(case, case_dir.parent / "x")


def test_mask_frames_given_as_uint8_become_bool():
    v = CArmView(0, 0, 1000, 700, (0.3, 0.3), 2, 2)
    cv = CaseView("A", v, "mask", np.array([[[0, 3], [255, 0]]], np.uint8))
    assert cv.frames.dtype == np.bool_ and cv.frames.tolist() == [[[False, True], [True, False]]]
    with pytest.raises(ShapeError, match="rows x columns = 2 x 2"):
        CaseView("A", v, "mask", np.zeros((1, 3, 2), bool))
    with pytest.raises(ShapeError, match="uint8 or uint16"):
        CaseView("A", v, "image", np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ShapeError, match="2 values for 1 frames"):
        CaseView("A", v, "mask", np.zeros((1, 2, 2), bool), frame_times_ms=[0.0, 1.0])


# --------------------------------------------------------------- bad inputs
def _set(path, value):
    def fn(data):
        obj = data
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return fn


def _delete(path):
    def fn(data):
        obj = data
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return fn


BAD = [
    ("format", _set(["format"], "autocar-case/2"), r"format must be 'autocar-case/1', got \"autocar-case/2\""),
    ("format-missing", _delete(["format"]), "format must be"),
    ("one-view", lambda d: d.__setitem__("views", d["views"][:1]), "at least 2 views"),
    ("dup-name", _set(["views", 1, "name"], "A"), r"views\[1\]\.name 'A' repeats views\[0\]"),
    ("neg-sid", _set(["views", 1, "sid_mm"], -5), r"views\[1\]\.sid_mm must be > 0, got -5"),
    ("string-sod", _set(["views", 0, "sod_mm"], "750"), r"views\[0\]\.sod_mm must be a number, got \"750\""),
    ("string-angle", _set(["views", 0, "primary_angle_deg"], "30"), r"views\[0\]\.primary_angle_deg must be a number, got \"30\""),
    ("bool-rows", _set(["views", 0, "rows"], True), r"views\[0\]\.rows must be a positive integer"),
    ("frac-cols", _set(["views", 0, "columns"], 8.5), r"views\[0\]\.columns must be a positive integer"),
    ("missing-key", _delete(["views", 1, "secondary_angle_deg"]), r"views\[1\]\.secondary_angle_deg is missing"),
    ("spacing", _set(["views", 0, "pixel_spacing_mm"], [0.3, 0]), r"views\[0\]\.pixel_spacing_mm\[1\] must be > 0"),
    ("spacing-scalar", _set(["views", 0, "pixel_spacing_mm"], 0.3), r"views\[0\]\.pixel_spacing_mm must be \[row, column\]"),
    ("sid<sod", _set(["views", 0, "sid_mm"], 700.0), r"views\[0\]\.sid_mm must be larger than sod_mm"),
    ("angle-range", _set(["views", 0, "secondary_angle_deg"], 95.0), r"views\[0\]\.secondary_angle_deg must be in \[-90, 90\]"),
    ("kind", _set(["views", 0, "kind"], "segmentation"), r"views\[0\]\.kind must be \"mask\" or \"image\""),
    ("no-frames", _set(["views", 0, "frames"], []), r"views\[0\]\.frames must be a non-empty list"),
    ("missing-file", _set(["views", 0, "frames"], ["A/000.png", "A/009.png"]), r"views\[0\]\.frames\[1\] file 'A/009.png' not found"),
    ("abs-path", _set(["views", 0, "frames"], ["/etc/passwd", "A/001.png"]), r"views\[0\]\.frames\[0\] must be a relative path"),
    ("escape", _set(["views", 0, "frames"], ["../x.png", "A/001.png"]), r"views\[0\]\.frames\[0\] must be a relative path"),
    ("times-len", _set(["views", 1, "frame_times_ms"], [0.0, 1.0]), r"views\[1\]\.frame_times_ms has 2 values but there are 3 frames"),
    ("times-order", _set(["views", 1, "frame_times_ms"], [0.0, 5.0, 4.0]), r"views\[1\]\.frame_times_ms must be non-decreasing, frame_times_ms\[2\]"),
    ("times-str", _set(["views", 1, "frame_times_ms"], [0.0, "5", 6.0]), r"views\[1\]\.frame_times_ms\[1\] must be a number"),
    ("phase-range", _set(["views", 0, "cardiac_phase"], [0.0, 1.2]), r"views\[0\]\.cardiac_phase\[1\] must be in \[0, 1\], got 1.2"),
    ("phase-len", _set(["views", 0, "cardiac_phase"], [0.0]), r"views\[0\]\.cardiac_phase has 1 values but there are 2 frames"),
    ("tree", _set(["tree"], "middle"), r"tree must be \"left\" or \"right\""),
    ("views-type", _set(["views"], {"A": 1}), "views must be a list"),
]


@pytest.mark.parametrize("name,fn,pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_case_json_rejected(case_dir, name, fn, pattern):
    p = edit(case_dir, fn)
    with pytest.raises(CaseFormatError, match=pattern) as info:
        read_case(case_dir)
    assert str(p) in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_rejected(case_dir, literal):
    p = case_dir / "case.json"
    text = p.read_text().replace('"sid_mm": 1050.0', f'"sid_mm": {literal}')
    assert literal in text
    p.write_text(text)
    with pytest.raises(CaseFormatError, match=rf"case\.json.*{literal}"):
        read_case(case_dir)


def test_bad_json_syntax_names_the_line(case_dir):
    p = case_dir / "case.json"
    lines = p.read_text().splitlines()
    lines[3] = lines[3] + ",,"
    p.write_text("\n".join(lines))
    with pytest.raises(CaseFormatError, match=r"case\.json: invalid JSON at line 4, column"):
        read_case(case_dir)


def test_not_a_case_folder(tmp_path):
    with pytest.raises(CaseFormatError, match="no case.json"):
        read_case(tmp_path)
    with pytest.raises(CaseFormatError, match="no such case folder"):
        read_case(tmp_path / "missing")


def test_wrong_frame_size_rejected(case_dir):
    edit(case_dir, _set(["views", 1, "rows"], 6))
    with pytest.raises(CaseFormatError, match=r"case\.json: views\[1\]\.frames\[0\]: .*B/000\.png: frame is 5 x 9 px .*expected 6 x 9"):
        read_case(case_dir)
    # Without loading frames, the size is not checked.
    assert read_case(case_dir, load_frames=False).views[1].view.rows == 6


def test_truncated_frame_rejected(case_dir):
    f = case_dir / "B" / "001.png"
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CaseFormatError, match=r"views\[1\]\.frames\[1\]: .*001\.png: truncated or corrupt PNG"):
        read_case(case_dir)


def test_mixed_bit_depth_rejected(case_dir):
    images_mod.write_frame(case_dir / "B" / "002.png", np.zeros((5, 9), np.uint8))
    with pytest.raises(CaseFormatError, match=r"views\[1\]\.frames\[2\] \(B/002\.png\) is uint8 but .* uint16"):
        read_case(case_dir)


def test_views_may_have_different_frame_counts(case_dir):
    case = read_case(case_dir)
    assert [cv.frames.shape[0] for cv in case.views] == [2, 3] and case.num_frames == 2


def test_validate_case_json_directly():
    good = {"format": CASE_FORMAT, "views": [
        {"name": n, **CArmView(0, 0, 1000, 700, (0.3, 0.3), 4, 4).to_dict(), "kind": "mask", "frames": [f"{n}/0.png"]}
        for n in "AB"]}
    validate_case_json(good, "x/case.json")  # no root: files not checked
    good["views"][1]["sid_mm"] = -5
    with pytest.raises(CaseFormatError, match=r"^x/case\.json: views\[1\]\.sid_mm must be > 0, got -5$"):
        validate_case_json(good, "x/case.json")
    with pytest.raises(CaseFormatError, match="top level must be a JSON object"):
        validate_case_json([], "x/case.json")


# ------------------------------------------------------------------- writing
def test_write_case_refuses_invalid_cases(tmp_path):
    c = make_case()
    with pytest.raises(CaseFormatError, match="at least 2 views"):
        write_case(Case(views=c.views[:1]), tmp_path / "one")
    bad_name = CaseView("../A", c.views[0].view, "mask", c.views[0].frames)
    with pytest.raises(CaseFormatError, match="folder name"):
        write_case(Case(views=(bad_name, c.views[1])), tmp_path / "bad")
    with pytest.raises(CaseFormatError, match="repeated"):
        Case(views=(c.views[0], c.views[0]))
    with pytest.raises(CaseFormatError, match="reserved"):
        Case(views=c.views, metadata={"views": 1})
    with pytest.raises(CaseFormatError, match="metadata cannot be written as JSON"):
        write_case(Case(views=c.views, metadata={"x": object()}), tmp_path / "obj")
    assert list(tmp_path.iterdir()) == []


def test_write_case_exists_and_overwrite(case_dir):
    with pytest.raises(FileExistsError, match="case"):
        write_case(make_case(), case_dir)
    c = make_case()
    smaller = Case(views=(c.views[1], c.views[0]), tree="right")
    write_case(smaller, case_dir, overwrite=True)
    back = read_case(case_dir)
    assert [cv.name for cv in back.views] == ["B", "A"] and back.tree == "right" and back.metadata == {}


def test_failed_write_leaves_nothing(tmp_path, monkeypatch, case_dir):
    calls = {"n": 0}
    real = images_mod.atomic_write_bytes

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 3:  # after two frames were written
            raise OSError("disk full (simulated)")
        return real(path, data)

    monkeypatch.setattr(images_mod, "atomic_write_bytes", failing)
    with pytest.raises(OSError, match="simulated"):
        write_case(make_case(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    # Overwrite that fails keeps the old case intact.
    before = (case_dir / "case.json").read_text()
    calls["n"] = 0
    with pytest.raises(OSError, match="simulated"):
        write_case(make_case(), case_dir, overwrite=True)
    assert (case_dir / "case.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


# ------------------------------------------------------------------ real data
def test_real_clinical_masks_as_a_case(shared_data, tmp_path):
    """The real two-view RCA masks (RGB PNGs with equal channels) read as a mask case."""
    import shutil

    from PIL import Image

    src = shared_data / "clinical-rca-masks"
    views = []
    for k, name in enumerate("AB"):
        (tmp_path / name).mkdir()
        shutil.copy(src / f"xray{k}.png", tmp_path / name / "000.png")
        p = json.loads((src / f"params{k}.json").read_text())
        views.append({
            "name": name, "primary_angle_deg": p["alpha"], "secondary_angle_deg": p["beta"],
            "sid_mm": p["sid"], "sod_mm": p["sod"], "pixel_spacing_mm": [p["spacing"], p["spacing"]],
            "rows": 512, "columns": 512, "kind": "mask", "frames": [f"{name}/000.png"],
        })
    (tmp_path / "case.json").write_text(json.dumps({"format": CASE_FORMAT, "tree": "right", "views": views}))
    case = read_case(tmp_path)
    assert case.tree == "right" and case.num_frames == 1
    for k, cv in enumerate(case.views):
        rgb = np.asarray(Image.open(src / f"xray{k}.png"))
        assert cv.frames.shape == (1, 512, 512) and cv.frames.dtype == np.bool_
        assert np.array_equal(cv.frames[0], rgb[..., 0] > 0) and 0 < cv.frames[0].sum() < 512 * 512 // 4
    assert case.views[0].view.primary_deg == pytest.approx(39.2)
    # Written back: masks become 8-bit grey 0/255, identical after reading.
    back = read_case(write_case(case, tmp_path / "copy"))
    assert np.array_equal(back.views[1].frames, case.views[1].frames)


def test_real_dca1_angiogram_reads_as_uint8(shared_data):
    f = shared_data / "dca1-angiograms" / "Angios_40_testing" / "1.png"
    img = images_mod.read_frame(f, kind="image", expected_shape=(300, 300))
    mask = images_mod.read_frame(f.with_name("1_gt.png"), kind="mask", expected_shape=(300, 300))
    assert img.dtype == np.uint8 and mask.dtype == np.bool_
    # Vessels are dark in a real angiogram: darker on the hand-drawn vessel mask than off it.
    assert img[mask].mean() < img[~mask].mean()
