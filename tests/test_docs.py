"""The user documentation inside the repository: links resolve, the examples in it are true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from autocar.geometry import CArmView
from autocar.io.case import read_case
from autocar.io.images import write_frame

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path):
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_readme_is_short_and_links_the_specs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) <= 12 * 1024
    for spec in ("docs/case-format.md", "docs/geometry.md", "docs/benchmarks.md"):
        assert f"]({spec})" in text
    assert "../shared" not in text  # a clone has no ../shared
    assert "python -m pytest" in text  # the test command .ci/run runs
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()


def _json_blocks(text: str) -> list[str]:
    return re.findall(r"```json\n(.*?)```", text, flags=re.S)


def test_the_case_json_example_is_read_by_autocar(tmp_path):
    example = json.loads(_json_blocks((REPO / "docs" / "case-format.md").read_text(encoding="utf-8"))[0])
    a = example["views"][0]
    b = {**a, "name": "B", "primary_angle_deg": -30.0, "frames": ["B/000.png", "B/001.png"]}
    example["views"][1] = b  # the doc abbreviates view B as "the same keys"
    mask = np.zeros((a["rows"], a["columns"]), np.uint8)
    mask[200:300, 250:254] = 255
    for view in (a, b):
        (tmp_path / view["name"]).mkdir()
        for f in view["frames"]:
            write_frame(tmp_path / f, mask)
    (tmp_path / "case.json").write_text(json.dumps(example))
    case = read_case(tmp_path)
    assert case.tree == "left" and [cv.name for cv in case.views] == ["A", "B"]
    va = case.views[0].view
    assert (va.primary_deg, va.secondary_deg, va.sid_mm, va.sod_mm) == (30.0, 20.0, 1100.0, 750.0)
    assert tuple(va.spacing_mm) == (0.37, 0.37) and case.views[0].num_frames == 2


def test_the_geometry_worked_example_holds():
    text = (REPO / "docs" / "geometry.md").read_text(encoding="utf-8")
    assert "CArmView(0, 0, 1000, 750, (0.3, 0.3), 512, 512)" in text and "299.94" in text
    rc, _ = CArmView(0, 0, 1000, 750, (0.3, 0.3), 512, 512).project(np.array([[0.0, 0, 0], [10.0, 0, 0]]))
    assert np.allclose(rc[0], [255.5, 255.5])
    assert rc[1, 0] == pytest.approx(255.5) and rc[1, 1] == pytest.approx(299.94, abs=0.005)
    # The axes the page states, at LAO 30 CRA 20.
    a, b = np.radians(30.0), np.radians(20.0)
    axes = CArmView(30.0, 20.0, 1000, 750, (0.3, 0.3), 512, 512).axes
    assert np.allclose(axes[0], [np.cos(a), np.sin(a), 0.0])
    assert np.allclose(axes[1], [np.sin(a) * np.sin(b), -np.cos(a) * np.sin(b), -np.cos(b)])
    assert np.allclose(axes[2], [np.sin(a) * np.cos(b), -np.cos(a) * np.cos(b), np.sin(b)])


def _resolves(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_architecture_names_only_what_exists():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(p.name for p in (REPO / "src" / "autocar").iterdir() if (p / "__init__.py").is_file())
    folders = set(re.findall(r"`([a-z0-9_]+)/`", text))
    assert folders and all((REPO / "src" / "autocar" / f).is_dir() for f in folders), folders
    assert set(packages) <= folders | {"data", "weights"}  # every package is on the page
    names = set(re.findall(r"`([a-z_0-9]+(?:\.[A-Za-z_0-9]+)+)", text)) - {"report.html", "measurements.json",
                                                                             "reconstruction.json", "errors.py",
                                                                             "cli.py", "case-format.md",
                                                                             "geometry.md"}
    files = {p.name for p in (REPO / "src" / "autocar").rglob("*.py")}

    def exists(n: str) -> bool:
        if n.endswith((".py", ".js")):
            return n in files or any((REPO / "src" / "autocar").rglob(n))
        if n.startswith("autocar."):
            return _resolves(n)
        return any(_resolves(f"autocar.{prefix}{n}") for prefix in ["", *(p + "." for p in packages)])

    missing = [n for n in sorted(names) if not exists(n)]
    assert len(names) > 30 and not missing, f"docs/architecture.md names what does not exist: {missing}"
