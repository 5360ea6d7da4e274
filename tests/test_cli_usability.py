"""CLI usability: --version, `python -m edgelstm`, loud import errors, literal text in help and messages (no
markup or emoji eaten), tables that fit 80 columns without cutting names, rounded numbers in gate messages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["convert", "quantize", "build", "validate", "bench", "inspect", "doctor", "run", "bundle", "unbundle",
            "demo"]


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _flat(text: str) -> str:
    """Rendered help without panel borders, whitespace collapsed: wrapped phrases read as one line again."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def err80(monkeypatch):
    """edgelstm.console writing to a fresh 80-column stderr console."""
    from edgelstm import console

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delitem(console._state, "err", raising=False)
    monkeypatch.setitem(console._state, "quiet", False)
    return console


# ------------------------------------------------------------------------------ 2. --version, -m, import errors


def test_version_prints_and_exits_0(cli):
    from edgelstm import __version__

    code, stdout, stderr = cli("--version")
    assert code == 0, stderr
    assert stdout.strip() == f"edgelstm {__version__}"
    assert "Missing command" not in stdout + stderr


def test_python_dash_m_edgelstm():
    from edgelstm import __version__

    res = subprocess.run([sys.executable, "-m", "edgelstm", "--version"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert __version__ in res.stdout
    res = subprocess.run([sys.executable, "-m", "edgelstm", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "convert" in res.stdout and "bundle" in res.stdout


def test_help_works_without_torch_tensorrt_onnxruntime():
    code = ("import sys\n"
            "for m in ('torch', 'tensorrt', 'pycuda', 'cuda', 'onnxruntime', 'onnx', 'matplotlib'):\n"
            "    sys.modules[m] = None  # any import of them fails\n"
            "sys.argv = ['edgelstm', *sys.argv[1:]]\n"
            "from edgelstm.cli.app import main\n"
            "main()\n")
    for args in (["--help"], *([c, "--help"] for c in COMMANDS)):
        res = _python(code, *args)
        assert res.returncode == 0, (args, res.stderr[-2000:])
        assert "Usage" in res.stdout


def test_a_command_module_that_fails_to_import_is_an_error():
    res = _python("import sys\n"
                  "sys.modules['edgelstm.cli.doctor'] = None  # the module cannot be imported\n"
                  "import edgelstm.cli.app\n")
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "edgelstm.cli.doctor" in res.stderr


# ------------------------------------------------------------------------------ 3. literal text, no markup/emoji


def test_run_and_bundle_help_keep_their_brackets(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, stdout, _ = cli("run", "--help")
    text = _flat(stdout)
    assert code == 0
    assert "Sections: [model] zoo|source, [export], [quantize] precisions" in text
    assert "[targets], [output] dir" in text
    code, stdout, _ = cli("bundle", "--help")
    text = _flat(stdout)
    assert code == 0
    assert "[default: 1:1:8, or the model's fixed batch]" in text
    assert "[default: chosen per --precision]" in text
    assert "optimization profile ." not in text  # what was left when the bracket was eaten


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bracket_in_help_is_shown(cli, monkeypatch, command):
    """Every `[...]` written in a command's help (or its options' help) appears in the rendered --help."""
    import typer

    from edgelstm.cli.app import app

    monkeypatch.setenv("COLUMNS", "250")
    click_cmd = typer.main.get_command(app).commands[command]
    raw = [click_cmd.help or ""] + [getattr(p, "help", None) or "" for p in click_cmd.params]
    wanted = {" ".join(b.split()) for text in raw for b in re.findall(r"\[[^\[\]\n]+\]", text.replace("\\[", "["))}
    code, stdout, _ = cli(command, "--help")
    assert code == 0
    shown = _flat(stdout)
    missing = [b for b in wanted if b not in shown]
    assert not missing, f"{command} --help lost {missing}"


def test_error_messages_keep_emoji_codes_and_brackets(cli, tmp_path):
    code, _, stderr = cli("build", tmp_path / "m.onnx", "-o", tmp_path / "m.plan", "--batch", "1:b:8")
    assert code == 2
    assert "1:b:8" in stderr and "🅱" not in stderr
    code, _, stderr = cli("inspect", tmp_path / ":b:[bold]x[/].onnx")
    assert code == 2
    assert ":b:[bold]x[/].onnx does not exist" in stderr


def test_console_messages_are_literal_but_keep_style_tags(err80, capsys):
    err80.info("[dim]skipped bench: no [targets] section in /tmp/[x]/a.toml :b:[/]")
    err80.step("loaded m.pt [default: 1:1:8]")
    err80.warn("[model] has :thumbs_up: in it")
    err80.error("bad [/tmp/x] :b:")
    err = capsys.readouterr().err
    assert "skipped bench: no [targets] section in /tmp/[x]/a.toml :b:" in err
    assert "[dim]" not in err and "[/]" not in err  # the style tags styled, not printed
    assert "loaded m.pt [default: 1:1:8]" in err
    assert "warning: [model] has :thumbs_up: in it" in err
    assert "error: bad [/tmp/x] :b:" in err
    assert "🅱" not in err and "👍" not in err


# ------------------------------------------------------------------------------ 4. tables in 80 columns

NAMES = ["torch (eager)", "model.onnx", "model.stateful.onnx", "model.stateful.onnx (1 step, state carried)",
         "model.fp16.onnx", "model.int8-dynamic.onnx", "model.int8-static.onnx"]


def _summary_result():
    rows = [{"artifact": name, "precision": "fp32", "size_bytes": 70289 - 7000 * i, "rel_l2": 1.65e-7 * (i + 1),
             "task": "mse=0.0004413", "gates": "reference" if i == 0 else "pass", "p50_ms": 0.050149 / (i + 1),
             "speedup": 2.69 + i} for i, name in enumerate(NAMES)]
    from edgelstm.pipeline.verdict import collect_gates
    from edgelstm.validation.gates import Gate, evaluate_gates

    (gate,) = evaluate_gates([Gate("rel_l2", 0.01, "<=", "y")], {"outputs": {"y": {"rel_l2": 0.029312345678}}})
    validations = {"int8-dynamic": {"gates": [gate.to_dict()]}}
    gates = collect_gates(SimpleNamespace(validations=validations, bench=None))
    return SimpleNamespace(summary_rows=lambda: rows, skipped=[], notes=[], stages=[{"cached": False}] * 3,
                           cached_everything=False, seconds=1.0, reports={}, validations=validations, gates=gates)


def test_pipeline_summary_fits_80_columns_with_whole_names(err80, capsys):
    from edgelstm.cli.run import render_summary

    render_summary(_summary_result())
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in err
    for name in NAMES[:3] + NAMES[4:]:
        assert any(name in line for line in lines), f"{name} is not whole on one line:\n{err}"


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_tables_never_cut_cells(monkeypatch, capsys, width):
    from edgelstm import console

    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.delitem(console._state, "err", raising=False)
    monkeypatch.setitem(console._state, "quiet", False)
    members = ["model.int8-static.onnx.json", "calibration/model.int8-static.calib", "build_engine.sh"]
    console.table("bundle lstm-jetson.tar.gz", ["member", "role", "size", "sha256"],
                  [[m, "onnx model [yellow](GPU-tied)[/]", "69.2 KiB", "0123456789ab"] for m in members])
    err = capsys.readouterr().err
    assert "…" not in err
    assert max(len(line) for line in err.splitlines()) <= width
    flat = re.sub(r"\s", "", err)
    assert "(GPU-tied)" in err or "(GPU-tied)" in flat
    if width >= 80:
        for m in members:
            assert m in err, f"{m} folded at {width} columns:\n{err}"


def test_a_table_too_wide_for_any_layout_prints_one_record_per_row(err80, capsys):
    columns = ["artifact", "backend", "precision", "mode", "batch", "seq", "threads", "p50", "p90", "p99", "seq/s",
               "steps/s", "size", "vs torch"]
    rows = [["model.int8-dynamic.onnx", "onnxruntime", "int8", "window", 8, 60, 1, "221.8 µs", "295.7 µs",
             "12.780 ms", 36066, 2163951, "21 KiB", "2.00×"]]
    err80.table("latency", columns, rows)
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) <= 80 and "…" not in err
    flat = " ".join(err.split())
    assert "model.int8-dynamic.onnx" in err and "backend onnxruntime" in flat and "p99 12.780 ms" in flat
    assert "steps/s 2163951" in flat


# ------------------------------------------------------------------------------ 5. gate messages


def test_gate_messages_round_to_three_significant_digits():
    from edgelstm.validation.gates import Gate, baseline_gates, evaluate_gates

    result = {"outputs": {"y": {"rel_l2": 0.029312345678, "cosine": 0.99949123, "max_abs": 0.0100042}}}
    res = evaluate_gates([Gate("rel_l2", 0.01, "<=", "y"), Gate("cosine", 0.9995, ">=", "y"),
                          Gate("max_abs", 0.01, "<=", "y")], result)
    assert res[0].message == "rel_l2:y = 0.0293, budget <= 0.01"
    assert res[0].value == 0.029312345678 and res[0].to_dict()["value"] == 0.029312345678  # reports keep it all
    assert res[1].message == "cosine:y = 0.999, budget >= 0.9995"  # the budget as written
    assert res[2].message == "max_abs:y = 0.010004, budget <= 0.01"  # never "0.01, budget <= 0.01"
    old = {"outputs": {"y": {"rmse": 0.0512345678}}}
    new = {"outputs": {"y": {"rmse": 0.0698765432}}}
    (r,) = [g for g in baseline_gates(old, new) if g.metric == "rmse"]
    assert not r.passed
    assert "rmse:y = 0.0699 drifted beyond the baseline 0.0512" in r.message
    assert "0.0698765432" not in r.message and r.value == 0.0698765432


def test_fmt_value():
    from edgelstm.console import fmt_value

    assert fmt_value(0.029312345678, 0.01) == "0.0293"
    assert fmt_value(1.23456e-7) == "1.23e-07"
    assert fmt_value(0.010004, 0.01) == "0.010004"  # never "0.01 > 0.01"
    assert fmt_value(0.99949, 0.9995) == "0.999"
    assert fmt_value(None) == "n/a" and fmt_value(float("nan"), 0.01) == "nan"


def test_run_gate_failure_message_is_rounded(err80, capsys):
    from edgelstm.cli.run import render_summary

    render_summary(_summary_result())
    err = capsys.readouterr().err
    assert "gate failed (validate int8-dynamic): rel_l2:y = 0.0293, budget <= 0.01" in err
    assert "0.029312345678" not in err


@pytest.mark.parametrize("args,needle", [
    (["convert", "--seq", "ten", "m.pt", "-o", "m.onnx"], "--seq"),
    (["quantize", "m.onnx", "-p", "int4", "-o", "q.onnx"], "int4"),
    (["bogus"], "No such command"),
    (["doctor", "--bogus"], "--bogus"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, args, needle):
    """The installed entry point turns click's usage box into one line (the in-process runner bypasses it)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgelstm", *args], capture_output=True, text=True, cwd=tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())
