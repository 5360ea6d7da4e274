"""The layout holds: no import circle, no import against the flow, no oversized module (ARCHITECTURE.md).

Every import counts, also those inside functions (heavy imports are deferred, but a deferred import is
still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgelstm", "converters", "calibration")
#: folders installed under another name (pyproject.toml's package-dir)
INSTALLED_AS = {"converters": "edgelstm.converters", "calibration": "edgelstm.calibration"}
CONVERTERS, CALIBRATION = INSTALLED_AS["converters"], INSTALLED_AS["calibration"]
MAX_LINES = 400
#: the only edgelstm modules that may import converters/: the stage dispatch
STAGE_DISPATCH = ("edgelstm.stages",)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts and parts[0] in INSTALLED_AS:
        parts[0] = INSTALLED_AS[parts[0]]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (the longest known prefix of each imported name)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.level, node.module) if node.level else (node.module or "")
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            for n in names:
                parts = n.split(".")
                for i in range(len(parts), 0, -1):
                    cand = ".".join(parts[:i])
                    if cand in mods:
                        if cand != mod and not mod.startswith(cand + "."):  # a package's own __init__ is no edge
                            graph[mod].add(cand)
                        break
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _package_level(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between modules, with a package's __init__ re-exports folded away (they are not logic)."""
    mods = _modules()
    inits = {m for m, p in mods.items() if p.name == "__init__.py"}
    return {m: {d for d in deps if d not in inits} for m, deps in graph.items() if m not in inits}


def test_no_import_circle():
    cycles = _cycles(_package_level(import_graph()))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_calibration_knows_no_model_transformation():
    bad = {m: sorted(d for d in deps if d.startswith(CONVERTERS))
           for m, deps in import_graph().items() if m.startswith(CALIBRATION)}
    assert not {m: d for m, d in bad.items() if d}


def test_edgelstm_reaches_converters_only_through_the_stage_dispatch():
    bad = {m: sorted(d for d in deps if d.startswith(CONVERTERS))
           for m, deps in import_graph().items()
           if not m.startswith((CONVERTERS, CALIBRATION, *STAGE_DISPATCH))}
    assert not {m: d for m, d in bad.items() if d}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_oversized_module(pkg):
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"
