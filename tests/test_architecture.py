"""The layout holds (ARCHITECTURE.md): no import circle between modules or between packages, nothing imports a
layer above its own, no top-level ``converters``/``calibration`` import, no oversized module or function.

Every import counts, also those inside functions (heavy imports are deferred, but a deferred import is
still a dependency). ``converters/`` and ``calibration/`` are read as what they install as (``edgelstm.converters``,
``edgelstm.calibration``: pyproject.toml's package-dir).

Function length: the body of a function (its first statement to its last line, docstring included) is at most
``MAX_FUNCTION_LINES``. A Typer command's option signature is not body: ``def cmd(a = typer.Option(...), ...)``
is measured from its first statement, as every function is, so a command with many options is not penalised."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10 (Jetson)
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgelstm", "converters", "calibration")
#: folders installed under another name (pyproject.toml's package-dir)
INSTALLED_AS = {"converters": "edgelstm.converters", "calibration": "edgelstm.calibration"}
CONVERTERS, CALIBRATION = INSTALLED_AS["converters"], INSTALLED_AS["calibration"]
MAX_LINES = 400
MAX_FUNCTION_LINES = 80

#: The layers, bottom first. A module belongs to the layer of its longest listed prefix; it may import its own
#: layer and the layers below, never one above. Within a layer the module graph must still have no circle.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("edgelstm.errors", "edgelstm.options", "edgelstm.console", "edgelstm.signals",
                    "edgelstm.same_file", "edgelstm.safe_files", "edgelstm.fileio")),
    ("artifacts", ("edgelstm.artifacts",)),                # files, manifests, I/O specs, facts, sessions
    ("machine", ("edgelstm.machine",)),                    # this host: CPU ISA, AMX, GPU, Jetson, TensorRT install
    ("models, data", ("edgelstm.models", "edgelstm.data")),
    ("runners", ("edgelstm.runners",)),
    ("calibration", (CALIBRATION,)),                       # uses runners' CUDA buffers for TensorRT calibrators
    ("converters", (CONVERTERS,)),
    ("validation, latency, inspection", ("edgelstm.validation", "edgelstm.latency", "edgelstm.inspection")),
    ("stages", ("edgelstm.stages",)),                      # the dispatch to converters/ (with their evaluators)
    ("bundle", ("edgelstm.bundle",)),
    ("fleet", ("edgelstm.fleet",)),
    ("pipeline, demo", ("edgelstm.pipeline", "edgelstm.demo")),
    ("cli", ("edgelstm.cli", "edgelstm.__main__", "edgelstm")),
)
#: Imports against the layer order that stay, each with its reason. A listed arrow the code no longer has fails
#: the test (remove it here).
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("edgelstm.bundle.device_bootstrap", "edgelstm.cli.app"):
        "the device starter is a script: its last step runs the CLI it has just installed",
}


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


def _imported_names(mod: str, path: Path) -> list[tuple[str, int]]:
    """Every name a module imports (absolute, relative ones resolved), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, is_pkg, node.level, node.module) if node.level else (node.module or "")
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names] + [(base, node.lineno)]
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (the longest known prefix of each imported name)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for n, _ in _imported_names(mod, path):
            parts = n.split(".")
            for i in range(len(parts), 0, -1):
                cand = ".".join(parts[:i])
                if cand in mods:
                    if cand != mod and not mod.startswith(cand + "."):  # a package's own __init__ is no edge
                        graph[mod].add(cand)
                    break
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
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


def _without_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between modules, with a package's __init__ re-exports folded away (they are not logic)."""
    inits = {m for m, p in _modules().items() if p.name == "__init__.py"}
    return {m: {d for d in deps if d not in inits} for m, deps in graph.items() if m not in inits}


def _package(mod: str) -> str:
    """The package a module's arrows count for: edgelstm's subpackage (``edgelstm.runners``), a converters'
    concern (``edgelstm.converters.quantize``), or a top-level module of edgelstm (``edgelstm.stages``)."""
    parts = mod.split(".")
    depth = 3 if mod.startswith(CONVERTERS + ".") else 2
    return ".".join(parts[:depth])


def _layer(mod: str) -> int | None:
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            hit = mod == p or (p != "edgelstm" and mod.startswith(p + "."))
            if hit and len(p) > best:
                best, found = len(p), i
    return found


def _upward() -> dict[tuple[str, str], str]:
    """Every import against the layer order: (module, imported module) -> 'layer -> layer above'."""
    out = {}
    for mod, deps in _without_inits(import_graph()).items():
        for d in deps:
            a, b = _layer(mod), _layer(d)
            if a is not None and b is not None and b > a:
                out[(mod, d)] = f"{LAYERS[a][0]} -> {LAYERS[b][0]}"
    return out


def test_no_import_circle_between_modules():
    cycles = _cycles(_without_inits(import_graph()))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_import_circle_between_packages():
    """artifacts -> models -> runners -> artifacts is a circle even when no two files import each other."""
    graph: dict[str, set[str]] = {}
    for mod, deps in _without_inits(import_graph()).items():
        for d in deps:
            if (mod, d) not in UPWARD_EXCEPTIONS and _package(mod) != _package(d):
                graph.setdefault(_package(mod), set()).add(_package(d))
    cycles = _cycles(graph)
    assert not cycles, "package circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_module_has_a_layer():
    assert not [m for m in _modules() if _layer(m) is None]


def test_nothing_imports_a_layer_above_its_own():
    up = _upward()
    bad = {k: v for k, v in up.items() if k not in UPWARD_EXCEPTIONS}
    assert not bad, "imports against the layer order:\n" + "\n".join(f"{m} -> {d} ({w})" for (m, d), w in sorted(bad.items()))
    stale = sorted(set(UPWARD_EXCEPTIONS) - set(up))
    assert not stale, f"listed exceptions the code no longer has (remove them from UPWARD_EXCEPTIONS): {stale}"


def test_the_layer_check_sees_an_upward_arrow():
    assert _layer("edgelstm.artifacts.trt") < _layer("edgelstm.runners.cuda_buffers")
    assert _layer("edgelstm.machine.device") < _layer(CONVERTERS + ".tensorrt.build") < _layer("edgelstm.cli.app")
    assert _package(CONVERTERS + ".quantize.int8") == CONVERTERS + ".quantize"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_calibration_knows_no_model_transformation():
    bad = {m: sorted(d for d in deps if d.startswith(CONVERTERS))
           for m, deps in import_graph().items() if m.startswith(CALIBRATION)}
    assert not {m: d for m, d in bad.items() if d}


def test_edgelstm_reaches_converters_only_through_the_stage_dispatch():
    bad = {m: sorted(d for d in deps if d.startswith(CONVERTERS))
           for m, deps in import_graph().items() if not m.startswith((CONVERTERS, CALIBRATION, "edgelstm.stages"))}
    assert not {m: d for m, d in bad.items() if d}


_SOURCES = [p for d in ("edgelstm", "converters", "calibration", "tests", "benchmarks", "scripts") for p in
            sorted((ROOT / d).rglob("*.py"))]


@pytest.mark.parametrize("top", ["converters", "calibration"])
def test_no_top_level_converters_or_calibration_import(top):
    """They install as edgelstm.converters / edgelstm.calibration: a top-level import works only from a checkout."""
    submodules = "|".join(sorted({p.stem if p.name != "__init__.py" else p.parent.name
                                  for p in (ROOT / top).rglob("*.py")} - {top}))
    bad = []
    for p in _SOURCES:
        for name, line in _imported_names(_module_name(p) if p.is_relative_to(ROOT / "edgelstm") else "x", p):
            if name == top or name.startswith(top + "."):
                bad.append(f"{p.relative_to(ROOT)}:{line} {name}")
        text = p.read_text()  # string targets: mock.patch("converters.x.y"), monkeypatch.setattr("...")
        bad += [f"{p.relative_to(ROOT)}: {m.group(0)!r} in a string" for m in re.finditer(
            rf"[\"']{top}\.({submodules})\b[\w.]*[\"']", text)]
    assert not bad, "\n".join(bad)


def test_the_install_lists_every_package():
    """pyproject.toml lists the packages by hand (package-dir mapping): a folder left out would be missing from a
    wheel while an editable install still finds it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {_module_name(p.parent / "__init__.py") for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")}
    assert set(config["packages"]) == folders
    assert config["package-dir"] == {v: k for k, v in INSTALLED_AS.items()}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_oversized_module(pkg):
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


#: functions over the limit that stay for now, each with its reason (a listed one that got short fails the test)
LONG_FUNCTIONS: dict[str, str] = {}


def _long_functions(path: Path, source: str | None = None) -> dict[str, int]:
    """'file::function' -> lines of body, for every function whose body is over MAX_FUNCTION_LINES."""
    tree = ast.parse(source if source is not None else path.read_text(), filename=str(path))
    where = path.relative_to(ROOT).as_posix() if path.is_absolute() else path.as_posix()
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.end_lineno - node.body[0].lineno + 1
            if body > MAX_FUNCTION_LINES:
                out[f"{where}::{node.name}"] = body
    return out


def test_no_overlong_function():
    long = {k: n for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) for k, n in _long_functions(p).items()}
    bad = {k: n for k, n in long.items() if k not in LONG_FUNCTIONS}
    assert not bad, f"functions over {MAX_FUNCTION_LINES} lines of body: {bad}"
    stale = sorted(set(LONG_FUNCTIONS) - set(long))
    assert not stale, f"listed long functions that are short now (remove them from LONG_FUNCTIONS): {stale}"


def test_the_length_check_measures_the_body_not_the_signature():
    options = "\n".join(f"    o{i}: int = typer.Option({i}, help='x')," for i in range(90))
    short = f"def cmd(\n{options}\n):\n    return 1\n"
    long = "def f():\n" + "    x = 1\n" * (MAX_FUNCTION_LINES + 1)
    assert _long_functions(Path("t.py"), short) == {}
    assert _long_functions(Path("t.py"), long) == {"t.py::f": MAX_FUNCTION_LINES + 1}


def test_onnxruntime_sessions_are_built_in_one_place():
    """Every onnxruntime session comes from artifacts/ort.py (levels, providers, quiet logs, refusing a silent
    provider fallback): no other product module constructs ``InferenceSession``."""
    builders = sorted(str(path.relative_to(ROOT)) for path in _modules().values()
                      if "InferenceSession(" in path.read_text() and path != ROOT / "edgelstm/artifacts/ort.py")
    assert not builders, f"build the session with edgelstm.artifacts.ort.make_session instead: {builders}"
