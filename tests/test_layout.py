"""The package's shape: no import cycles, records that import no logic, modules of a readable size, and one
registry of diagnostic codes that README's table agrees with."""

from __future__ import annotations

import ast
import re

import pytest

from note2anki.codes import CODES
from note2anki.model import Severity
from tests.conftest import ROOT

PACKAGE = ROOT / "note2anki"
MODULES = {
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
    for p in sorted(PACKAGE.rglob("*.py"))
}


def imports(module: str) -> set[str]:
    """The package's modules that `module` imports (at any level, TYPE_CHECKING blocks included)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from note2anki import state` imports the module `note2anki.state`, not the package's names
            subs = [f"{node.module}.{a.name}" for a in node.names]
            names = [s if s in MODULES else node.module for s in subs]
        found |= {n for n in names if n in MODULES and n != module}
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_no_import_cycles_in_the_package() -> None:
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node] - {"note2anki"}):  # the package's __init__ only re-exports
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []
    assert not any("note2anki" in GRAPH[m] for m in MODULES if m != "note2anki.__main__")


def test_records_import_no_logic() -> None:
    # model.py holds the records; it may use the template's vocabulary (a leaf of pure functions)
    assert GRAPH["note2anki.model"] <= {"note2anki.cornell"}
    assert GRAPH["note2anki.cornell"] <= {"note2anki.config"}
    assert GRAPH["note2anki.errors"] == set()


def test_stages_point_forward() -> None:
    assert "note2anki.extract" not in GRAPH["note2anki.parse"]
    assert not {m for m in GRAPH["note2anki.model"] | GRAPH["note2anki.state"] if m == "note2anki.markdown"}
    build_layer = {m for m in MODULES if m.startswith("note2anki.build")}
    stages = {"note2anki." + s for s in ("discover", "parse", "extract", "render", "export", "state")}
    assert not any(GRAPH[s] & build_layer for s in stages), "a stage reaches into the build layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 420, f"{module} has {lines} lines; split it by responsibility"


def readme_codes() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (N2A\d{3}) \| (error|warning) \| (.+?) \|$", text, re.MULTILINE)
    return {code: (severity, meaning) for code, severity, meaning in rows}


def test_readme_table_is_the_registry() -> None:
    table = readme_codes()
    assert sorted(table) == sorted(CODES)
    for code, (severity, meaning) in table.items():
        assert (severity, meaning) == (CODES[code].severity.value, CODES[code].meaning), code


def test_every_code_the_package_reports_is_registered_with_its_severity() -> None:
    used: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        if module == "note2anki.codes":
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r'"(N2A\d{3})",\s*(?:Severity\.(ERROR|WARNING))?', text):
            used.setdefault(m.group(1), set()).add(m.group(2) or "")
    assert sorted(used) == sorted(CODES)
    for code, severities in used.items():
        named = {s for s in severities if s}
        assert named <= {CODES[code].severity.name}, code
    assert {c.severity for c in CODES.values()} == {Severity.ERROR, Severity.WARNING}
