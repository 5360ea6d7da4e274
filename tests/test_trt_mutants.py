"""Every injected mistake of the table (tests/trt_mutants.py) is caught: each patch is applied to a copy of the
repository (edgelstm/, converters/, calibration/, tests/; the last two copied to where they install:
edgelstm/converters/, edgelstm/calibration/), the checks named for it run there in a fresh Python,
and at least one must fail. The unmutated copy passes all of them, and every patch still matches the product
code (its old text occurs exactly once), so a mutant can neither die of a broken copy nor silently stop applying.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from trt_mutants import MUTANTS
except ImportError:  # tests/ is a package in some layouts
    from tests.trt_mutants import MUTANTS  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("edgelstm", "converters", "calibration", "tests", "pyproject.toml")
#: folders installed under another name (pyproject.toml's package-dir): in the copy they sit where they install, so
#: that ``edgelstm.converters`` imports the copy on PYTHONPATH and not the editable checkout
INSTALLED_AT = {"converters": "edgelstm/converters", "calibration": "edgelstm/calibration"}


def _in_tree(file: str) -> str:
    top, _, rest = file.partition("/")
    return f"{INSTALLED_AT[top]}/{rest}" if top in INSTALLED_AT else file
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")


def _mutate(text: str, old: str, new: str, where: str) -> str:
    assert text.count(old) == 1, f"{where}: the patch's old text occurs {text.count(old)} times, not once: {old[:80]!r}"
    return text.replace(old, new)


def _pytest(tree: Path, node_ids: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "--rootdir", str(tree), *node_ids], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mutants")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / INSTALLED_AT.get(name, name), ignore=IGNORE)
        else:
            shutil.copy2(src, root / name)
    return root


def test_the_table_applies_to_the_product_code():
    assert len(MUTANTS) >= 9 + 3 + 5 and len({m.id for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        for file, old, new in m.edits:
            _mutate((ROOT / file).read_text(), old, new, f"{m.id} {file}")
        for check in m.checks:
            path, _, name = check.partition("::")
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), f"{m.id}: no check {check}"


def test_the_unmutated_copy_passes_every_check_with_its_own_code(tree):
    checks = sorted({c for m in MUTANTS for c in m.checks})
    probe = subprocess.run([sys.executable, "-c", "import edgelstm, edgelstm.converters, edgelstm.calibration as c; "
                            "print(edgelstm.__file__, edgelstm.converters.__file__, c.__file__)"],
                           cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    assert all(p.startswith(str(tree)) for p in probe.stdout.split()), probe.stdout + probe.stderr
    run = _pytest(tree, checks)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_the_mutant_is_caught(tree, mutant):
    originals = {}
    try:
        for file, old, new in mutant.edits:
            path = tree / _in_tree(file)
            originals.setdefault(path, path.read_text())
            path.write_text(_mutate(path.read_text(), old, new, f"{mutant.id} {file}"))
        run = _pytest(tree, list(mutant.checks))
    finally:
        for path, text in originals.items():
            path.write_text(text)
    assert run.returncode == 1, (   # 1: tests failed (2 would be an interrupted run, 4 a usage error)
        f"mutant {mutant.id} ({mutant.mistake}) survived its checks:\n{run.stdout[-2000:]}{run.stderr[-1000:]}")
