"""The whole bad-input table again, in the caller's format: every case of every ``tests/bad_input`` table run with
``--json`` added (where its command has it), through the real entry point (``run_cli``: usage errors included).

Besides everything ``conftest.run_case`` checks (exit code, one ``error:`` line on stderr, no traceback, nothing
left behind), stdout must hold exactly one valid JSON object (strict JSON: no NaN) that says how the command ended:
``ok``, ``exit_code`` and, on failure, ``error`` (the stderr line's text) and ``kind`` (by exit code)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
from pathlib import Path

import pytest

from .conftest import Case, ids, run_case
from .test_faults import _run_fault, full_disk, read_only  # noqa: F401 - the fault fixtures, used by name

KINDS = {1: "gate_failed", 2: "bad_input", 3: "backend_missing", 4: "internal", 130: "interrupted",
         143: "interrupted"}


def _tables() -> dict[str, list[Case]]:
    """Every module-level list of cases in tests/bad_input (new case files are picked up on their own)."""
    package = Path(__file__).parent
    out: dict[str, list[Case]] = {}
    for info in pkgutil.iter_modules([str(package)]):
        if not info.name.startswith("test_") or info.name == Path(__file__).stem:
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, list) and value and all(isinstance(c, Case) for c in value):
                out[f"{info.name.removeprefix('test_')}.{name}"] = value
    return out


def _json_commands() -> set[str]:
    import typer.main

    from edgelstm.cli.app import app

    group = typer.main.get_command(app)
    return {name for name, cmd in group.commands.items()  # type: ignore[attr-defined]
            if any("--json" in getattr(p, "opts", ()) for p in cmd.params)}


JSON_COMMANDS = _json_commands()
TABLES = _tables()
#: the table of writes into a full or read-only file system ({t}): run below with those fixtures
FAULT_TABLES = ("faults.WRITES",)
FAULTS = [c for table in FAULT_TABLES for c in TABLES[table]]
#: tables whose cases succeed in ways run_case does not check (a link at an output replaced): their own test's
#: checks, called with the JSON entry point
OWN_CHECKS = {"bad_paths.WRITES": "test_a_link_at_an_output_is_replaced_not_written_through"}
OWN = [(table, dataclasses.replace(c, id=f"{table}.{c.id}")) for table in OWN_CHECKS for c in TABLES.get(table, ())]
CASES = [dataclasses.replace(c, id=f"{table}.{c.id}") for table, cs in TABLES.items() for c in cs
         if table not in FAULT_TABLES and table not in OWN_CHECKS and c.args and c.args[0] in JSON_COMMANDS]


def _with_json(c: Case) -> Case:
    """The case with ``--json``; a usage error is one ``error:`` line through ``run_cli`` (not click's box)."""
    args = c.args if "--json" in c.args else (*c.args, "--json")
    return dataclasses.replace(c, args=args, usage=False)


@pytest.fixture
def json_cli(capfd):
    """Run ``edgelstm`` through its real entry point; stdout and stderr at the file-descriptor level (what a
    library prints from C++ lands in them too). ``json_cli.stdout`` keeps the last stdout."""
    from edgelstm.cli.app import run_cli

    def invoke(*args: str):
        capfd.readouterr()
        code = run_cli([str(a) for a in args])
        out, err = capfd.readouterr()
        invoke.stdout = out
        return code, out, err

    invoke.stdout = ""
    return invoke


def check_json(stdout: str, code: int, error_line: str) -> dict:
    """Exactly one JSON object that says how the command ended."""
    try:
        obj = json.loads(stdout, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c} in stdout"))
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not one JSON value ({exc}):\n{stdout[:2000]}") from None
    assert isinstance(obj, dict), stdout[:500]
    assert obj.get("exit_code") == code and obj.get("ok") is (code == 0), {k: obj.get(k) for k in ("ok", "exit_code")}
    if code != 0:
        assert obj.get("kind") == KINDS[code], obj.get("kind")
        assert isinstance(obj.get("error"), str) and obj["error"], obj
        if error_line:
            assert obj["error"].strip() == error_line.removeprefix("error:").strip(), (obj["error"], error_line)
    return obj


@pytest.mark.parametrize("c", CASES, ids=ids(CASES))
def test_every_case_in_json(c, json_cli, w, ws, monkeypatch):
    line = run_case(_with_json(c), json_cli, w, ws, monkeypatch)
    check_json(json_cli.stdout, c.code if not c.usage else 2, line)


def test_the_table_is_whole():
    """Every case of every table is run here (the commands without --json are the only ones left out)."""
    every = [c for cs in TABLES.values() for c in cs]
    left_out = {c.args[0] for c in every if c.args and c.args[0] not in JSON_COMMANDS}
    assert not left_out, f"commands without --json in the bad-input table: {left_out}"
    assert len(CASES) + len(FAULTS) + len(OWN) == len(every) and len(CASES) > 300


@pytest.mark.parametrize("table,c", OWN, ids=[c.id for _, c in OWN])
def test_own_checks_in_json(table, c, json_cli, w, ws, monkeypatch):
    module = importlib.import_module(f"{__package__}.test_{table.split('.')[0]}")
    getattr(module, OWN_CHECKS[table])(_with_json(c), json_cli, w, ws, monkeypatch)
    check_json(json_cli.stdout, c.code, "")


@pytest.mark.parametrize("c", FAULTS, ids=ids(FAULTS))
@pytest.mark.parametrize("fault", ["full_disk", "read_only"])
def test_faults_in_json(c, fault, json_cli, w, ws, monkeypatch, request):
    target = request.getfixturevalue(fault)
    _run_fault(_with_json(c), json_cli, w, ws, monkeypatch, target, "no space left", "are free", "read-only")
    obj = check_json(json_cli.stdout, 2, "")
    assert any(n in obj["error"].lower() for n in ("no space left", "are free", "read-only")), obj["error"]


@pytest.mark.parametrize("argv,code", [
    (["convert", "--json"], 2),                                      # a missing argument
    (["convert", "m.pt", "-o", "m.onnx", "--bogus", "--json"], 2),   # an unknown option
    (["--json", "bench"], 2),                                        # --json where no command takes it yet
    (["bench", "--json", "m.onnx", "--iters", "many"], 2),           # a value of the wrong type
    (["quantize", "m.onnx", "-p", "int4", "-o", "q.onnx", "--json"], 2),  # not one of the choices
])
def test_usage_errors_in_json(argv, code, json_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got, out, err = json_cli(*argv)
    assert got == code
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Usage:" not in err, err
    check_json(out, code, lines[0])


def test_without_json_stdout_stays_empty_on_errors(json_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = json_cli("convert", "nope.pt", "-o", "m.onnx")
    assert code == 2 and out == "" and "does not exist" in err


def test_an_internal_error_is_json_too(json_cli, tmp_path, monkeypatch):
    """The last line of defence (exit 4: a bug) answers in the caller's format as well."""
    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("edgelstm.fileio.require_file", boom)
    code, out, err = json_cli("inspect", "x.onnx", "--json")
    assert code == 4 and "internal error" in err
    obj = check_json(out, 4, "")
    assert obj["kind"] == "internal" and "ZeroDivisionError" in obj["error"]


def test_a_failed_gate_keeps_the_report_and_says_why(json_cli, ws, tmp_path, monkeypatch):
    """validate --json with a failing gate: the documented report, plus how the command ended."""
    monkeypatch.chdir(tmp_path)
    code, out, err = json_cli("validate", "-r", f"{ws}/m.pt", "-c", f"{ws}/m.onnx", "--synthetic", "4", "--seq",
                              "4", "--gate", "cosine>=1.5", "--json", "-q")
    assert code == 1, err
    obj = check_json(out, 1, [ln for ln in err.splitlines() if ln.startswith("error:")][0])
    assert {"reference", "candidate", "samples", "passed", "outputs", "gates"} <= set(obj) and obj["passed"] is False
