"""The package's layout is its pipeline: each layer imports only the layers below it.

Walks every import statement of every module under src/autocar (module level and inside
functions alike: a lazy import is still a dependency) and fails on an import circle, on an
import from a lower layer into a higher one, on a module importing another module's private
(underscore) name, and on a loose module at the package root.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autocar"

# Bottom to top; a module may import its own package and any package of a lower rank.
LAYERS = [
    ("errors",),                      # exceptions
    ("geometry",),                    # C-arm views, centre-line graphs
    ("io",),                          # case folders, DICOM, results, trees, meshes
    ("synth",),                       # synthetic world: trees, heartbeat, poses, rendering
    ("seg2d", "sbp"),                 # angiograms -> masks; masks -> sparse hull
    ("net",),                         # the sparse 3D network and its training samples
    ("evaluation",),                  # scores against a truth
    ("graph",),                       # hull + probabilities -> centre-line tree
    ("dynamic",),                     # phase pairing, lag, tracking, fusion
    ("quant",),                       # segments, stenoses, optimal views
    ("report",),                      # report.html, snapshots
    ("pipeline",),                    # static / dynamic reconstruction, workflow, demo
    ("cli",),                         # the command line
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT_MODULES = {"__init__.py", "cli.py", "errors.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "autocar"


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) of every autocar import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "autocar" and not node.level:
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "autocar"]
    return out


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_has_a_layer():
    units = {_unit(m) for m in MODULES} - {"autocar"}
    assert units <= set(RANK), f"packages without a layer: {sorted(units - set(RANK))}"


def test_the_package_root_holds_only_the_entry_points():
    loose = {p.name for p in PACKAGE.glob("*.py")} - ROOT_MODULES
    assert not loose, f"loose modules at the package root: {sorted(loose)}"


def test_no_import_goes_up_a_layer():
    bad = []
    for module, path in MODULES.items():
        src = _unit(module)
        if src == "autocar":
            continue
        for target, _, line in _imports(path):
            dst = _unit(target)
            if dst == "autocar":  # the package itself (its version)
                continue
            if dst != src and RANK[dst] > RANK[src]:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(bad)


def test_no_module_imports_another_modules_private_names():
    bad = [f"{path.relative_to(PACKAGE)}:{line} imports {name} from {target}"
           for module, path in MODULES.items() for target, names, line in _imports(path)
           for name in names if name.startswith("_") and not name.startswith("__") and target != module]
    assert not bad, "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names, _ in _imports(path):
            # "from autocar.x import y" depends on autocar.x.y when y is a module, else on autocar.x
            for name in names or [None]:
                full = f"{target}.{name}" if name and f"{target}.{name}" in MODULES else target
                if full in MODULES and full != module:
                    graph[module].add(full)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_the_circle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_on_its_own(module):
    import importlib

    importlib.import_module(module)
