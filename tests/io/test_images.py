"""PNG frame reading/writing and atomic writes (autocar.io.images, autocar.io.atomic)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from autocar.errors import CaseFormatError, ShapeError
from autocar.io import atomic as atomic_mod
from autocar.io.atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from autocar.io.images import read_frame, write_frame


# ------------------------------------------------------------------ atomic
def test_atomic_write_bytes_text_json(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "a.txt", "héllo")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": np.arange(3), "z": np.int64(4)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [0, 1, 2], "z": 4}
    # Replaces an existing file.
    atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.json", "a.txt"]


def test_atomic_write_json_refuses_nan_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="bad.json"):
        atomic_write_json(tmp_path / "bad.json", {"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_mid_write_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic_mod.os, "fsync", boom)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_text(target, "new content")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_directory_success_and_failure(tmp_path):
    out = tmp_path / "sub" / "out"
    with atomic_directory(out) as tmp:
        assert tmp.parent == out.parent and tmp != out and not out.exists()
        (tmp / "x.txt").write_text("1")
    assert (out / "x.txt").read_text() == "1"

    # Exists, no overwrite: error naming the folder, before the block runs.
    with pytest.raises(FileExistsError, match="out"):
        with atomic_directory(out):
            pytest.fail("block must not run")

    # Failure inside with overwrite: old folder untouched, no temp left.
    with pytest.raises(RuntimeError):
        with atomic_directory(out, overwrite=True) as tmp:
            (tmp / "y.txt").write_text("partial")
            raise RuntimeError("fail mid-way")
    assert sorted(p.name for p in out.iterdir()) == ["x.txt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]

    # Overwrite success: replaced entirely.
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "z.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["z.txt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]

    # Failure on a new folder: nothing at all.
    new = tmp_path / "new"
    with pytest.raises(ValueError):
        with atomic_directory(new) as tmp:
            (tmp / "a").write_text("a")
            raise ValueError("x")
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_atomic_directory_refuses_to_replace_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(FileExistsError, match="not a folder"):
        with atomic_directory(f, overwrite=True):
            pass
    assert f.read_text() == "keep"


# ------------------------------------------------------------------ images
def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    mask = rng.random((7, 11)) > 0.5
    img8 = rng.integers(0, 256, (7, 11)).astype(np.uint8)
    img16 = rng.integers(0, 65536, (7, 11)).astype(np.uint16)
    write_frame(tmp_path / "m.png", mask)
    write_frame(tmp_path / "i8.png", img8)
    write_frame(tmp_path / "i16.png", img16)
    # On disk: mask is 8-bit 0/255, uint16 is 16-bit.
    on_disk = np.asarray(Image.open(tmp_path / "m.png"))
    assert on_disk.dtype == np.uint8 and set(np.unique(on_disk)) <= {0, 255}
    assert Image.open(tmp_path / "i16.png").mode.startswith("I;16")
    m = read_frame(tmp_path / "m.png", kind="mask", expected_shape=(7, 11))
    assert m.dtype == np.bool_ and np.array_equal(m, mask)
    a = read_frame(tmp_path / "i8.png", kind="image")
    assert a.dtype == np.uint8 and np.array_equal(a, img8)
    b = read_frame(tmp_path / "i16.png", kind="image")
    assert b.dtype == np.uint16 and np.array_equal(b, img16)
    # Reading an 8-bit grey image as a mask: vessel > 0.
    assert np.array_equal(read_frame(tmp_path / "i8.png", kind="mask"), img8 > 0)


def test_all_zero_mask_allowed(tmp_path):
    write_frame(tmp_path / "z.png", np.zeros((4, 5), bool))
    m = read_frame(tmp_path / "z.png", kind="mask")
    assert m.shape == (4, 5) and not m.any()


def test_grey_rgb_accepted_colour_rejected(tmp_path):
    g = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(np.stack([g, g, g], -1)).save(tmp_path / "rgb.png")
    assert np.array_equal(read_frame(tmp_path / "rgb.png", kind="image"), g)
    Image.fromarray(np.stack([g, g, g, np.full_like(g, 255)], -1)).save(tmp_path / "rgba.png")
    assert np.array_equal(read_frame(tmp_path / "rgba.png", kind="mask"), g > 0)
    col = np.stack([g, g, g], -1)
    col[1, 2, 0] = 7
    Image.fromarray(col).save(tmp_path / "colour.png")
    for kind in ("mask", "image"):
        with pytest.raises(CaseFormatError, match=r"colour\.png.*colour image \(1 pixels"):
            read_frame(tmp_path / "colour.png", kind=kind)
    transparent = np.stack([g, g, g, np.full_like(g, 255)], -1)
    transparent[0, 0, 3] = 0
    Image.fromarray(transparent).save(tmp_path / "t.png")
    with pytest.raises(CaseFormatError, match="transparent"):
        read_frame(tmp_path / "t.png", kind="image")


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(CaseFormatError, match=r"nope\.png: frame file not found"):
        read_frame(tmp_path / "nope.png", kind="mask")
    rng = np.random.default_rng(1)
    write_frame(tmp_path / "full.png", rng.integers(0, 256, (64, 64)).astype(np.uint8))
    raw = (tmp_path / "full.png").read_bytes()
    (tmp_path / "half.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CaseFormatError, match=r"half\.png: truncated or corrupt PNG"):
        read_frame(tmp_path / "half.png", kind="image")
    (tmp_path / "head.png").write_bytes(raw[:20])
    with pytest.raises(CaseFormatError, match=r"head\.png: truncated or corrupt PNG"):
        read_frame(tmp_path / "head.png", kind="image")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(CaseFormatError, match=r"text\.png: not a PNG"):
        read_frame(tmp_path / "text.png", kind="image")
    with pytest.raises(CaseFormatError, match=r"full\.png: frame is 64 x 64 px.*expected 64 x 32"):
        read_frame(tmp_path / "full.png", kind="image", expected_shape=(64, 32))
    with pytest.raises(CaseFormatError, match="kind"):
        read_frame(tmp_path / "full.png", kind="segmentation")


def test_16bit_colour_rejected(tmp_path):
    import cv2

    arr = np.zeros((3, 4, 3), np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), arr)
    with pytest.raises(CaseFormatError, match=r"c16\.png: 16-bit RGB"):
        read_frame(tmp_path / "c16.png", kind="image")


def test_write_frame_rejects_bad_arrays(tmp_path):
    with pytest.raises(ShapeError, match="2D"):
        write_frame(tmp_path / "a.png", np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ShapeError, match="float64"):
        write_frame(tmp_path / "a.png", np.zeros((2, 3)))
    assert not os.listdir(tmp_path)
