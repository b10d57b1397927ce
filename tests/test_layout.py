"""Every package reads one way, top to bottom: no import circles between its modules.

Imports inside functions count too (a lazy import that closes a circle is still a
circle: it only hides it from the first import). Module docstrings name the order.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[1] / "optviz"


def modules_under(root: Path) -> Dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    def name(path: Path) -> str:
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    return {name(p): p for p in root.rglob("*.py")}


MODULES = modules_under(ROOT)


def imports_of(name: str, modules: Dict[str, Path] = MODULES) -> Set[str]:
    """The modules of ``modules`` that ``name`` imports anywhere in its source (module or function level)."""
    path = modules[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def cycles(package: str, modules: Dict[str, Path] = MODULES) -> List[List[str]]:
    """The import circles among the direct submodules of ``package``."""
    depth = package.count(".") + 1
    members = [m for m in modules if m.startswith(package + ".") and m.count(".") == depth]
    graph: Dict[str, Set[str]] = {m: {d for d in imports_of(m, modules) if d in members} for m in members}
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for m in sorted(members):
        if m not in state:
            visit(m, [m])
    return found


def test_the_checker_finds_a_circle(tmp_path):
    pkg = tmp_path / "optviz" / "fake"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")     # lazy, still a circle
    (pkg / "c.py").write_text("from optviz.fake import b\n")
    fake = modules_under(tmp_path / "optviz")
    assert cycles("optviz.fake", fake) == [["optviz.fake.a", "optviz.fake.b", "optviz.fake.a"]]


@pytest.mark.parametrize("package", ["optviz", "optviz.optim", "optviz.engine", "optviz.cli", "optviz.surfaces",
                                     "optviz.views", "optviz.landscape", "optviz.mnist", "optviz.study",
                                     "optviz.explorer"])
def test_no_import_circles(package):
    assert cycles(package) == []
