"""One vocabulary (README.md, "One vocabulary"): every command's --help shows the shared options with the same
names and real placeholders; the old spellings keep working, each with one `deprecated:` line on stderr; the
calibration default is one; quantize does not offer fp32."""

from __future__ import annotations

import json
import re

import pytest

COMMANDS = ["convert", "quantize", "build", "validate", "bench", "inspect", "doctor", "run", "bundle", "unbundle",
            "demo"]
#: placeholders that say a type, not what to write
GENERIC = re.compile(r"<(bool|int|str|path|float|text|int range|float range)>|\b(TEXT|INTEGER|FLOAT|PATH|BOOLEAN)\b")


def _params(command: str) -> dict[str, object]:
    """The click options of `command` by each of their names, as the help renders them."""
    import typer
    from typer._click import core

    from edgelstm.cli.app import app

    group = typer.main.get_command(app)
    cmd = group.commands[command]
    ctx = core.Context(cmd, info_name=command, parent=core.Context(group))
    out = {}
    for p in cmd.get_params(ctx):
        if p.param_type_name == "option":
            shown = p.display_type_rich(ctx)
            for name in (*p.opts, *p.secondary_opts):
                out[name] = (p, shown)
    return out


def _placeholder(command: str, option: str) -> str:
    return _params(command)[option][1]


# ------------------------------------------------------------------------------------------------ --help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_real_placeholders(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")
    code, stdout, _ = cli(command, "--help")
    assert code == 0
    assert not GENERIC.search(stdout), f"{command} --help shows {GENERIC.search(stdout)[0]!r}"
    for name, (param, shown) in _params(command).items():
        if getattr(param, "is_flag", False):
            assert shown == "", f"{command} {name} is a flag but shows {shown!r}"
        else:
            assert shown and not GENERIC.search(shown), f"{command} {name} shows {shown!r}"


@pytest.mark.parametrize("command", ["convert", "quantize", "build", "bundle", "unbundle", "demo"])
def test_a_command_that_writes_one_thing_takes_dash_o_and_output(command):
    params = _params(command)
    assert params["-o"][0] is params["--output"][0]
    assert "--out" not in params  # the old spelling is rewritten before parsing, not declared


@pytest.mark.parametrize("command,placeholder", [
    ("convert", "N"), ("quantize", "N"), ("validate", "N"), ("inspect", "N"),  # one size
    ("bench", "1,8"),                                                         # sizes to time
    ("build", "1:8:64"), ("bundle", "1:1:8"),                                 # the range an engine accepts
])
def test_batch_is_one_option_with_the_form_each_command_takes(command, placeholder):
    assert _placeholder(command, "--batch") == placeholder
    assert "--batch-size" not in _params(command)


@pytest.mark.parametrize("command,placeholder", [("convert", "N"), ("validate", "N"), ("inspect", "N"),
                                                 ("bench", "60,256"), ("build", "1:64:512"), ("bundle", "1:60:512")])
def test_seq_is_one_option(command, placeholder):
    assert _placeholder(command, "--seq") == placeholder
    assert "--seq-len" not in _params(command)


@pytest.mark.parametrize("command", ["convert", "validate", "bench", "inspect"])
def test_static_is_a_flag_everywhere(command):
    param, shown = _params(command)["--static"]
    assert param.is_flag and shown == ""


def test_budgets_and_tolerances_share_a_syntax():
    assert _placeholder("validate", "--gate") == _placeholder("quantize", "--max-drift") == "METRIC<=VALUE"
    assert _placeholder("bench", "--max-slowdown") == _placeholder("validate", "--max-growth") == "RATIO"


def test_one_calibration_default_everywhere():
    from edgelstm.converters.quantize.int8 import Int8Options
    from edgelstm.converters.tensorrt.options import BuildOptions
    from edgelstm.options import DEFAULT_CALIB_METHOD, CalibMethod
    from edgelstm.pipeline.schema import QuantizeSection

    assert DEFAULT_CALIB_METHOD == CalibMethod.minmax
    assert Int8Options().calib_method == BuildOptions().calib_method == DEFAULT_CALIB_METHOD
    assert QuantizeSection().calib_method == DEFAULT_CALIB_METHOD.value
    assert _params("build")["--calib-method"][0].default == DEFAULT_CALIB_METHOD


def test_quantize_offers_no_fp32_and_takes_the_pipelines_names(cli, tmp_path):
    assert "fp32" not in _placeholder("quantize", "--precision")
    code, _, stderr = cli("quantize", tmp_path / "m.onnx", "--precision", "fp32", "-o", tmp_path / "q.onnx")
    assert code == 2 and "fp32" in stderr
    code, _, stderr = cli("quantize", tmp_path / "m.onnx", "--precision", "int8-static", "--mode", "dynamic",
                          "-o", tmp_path / "q.onnx")
    assert code == 2 and "contradict" in stderr
    code, _, stderr = cli("quantize", tmp_path / "m.onnx", "--precision", "int8-static", "-o", tmp_path / "q.onnx")
    assert code == 2 and "--mode static needs calibration data" in stderr  # int8-static = int8 --mode static


# ------------------------------------------------------------------------------------------------ old spellings


def _modernize(command, *args):
    from edgelstm.cli.vocabulary import modernize

    notes: list[str] = []
    values = frozenset({"--exclude", "--gate", "-o", "--output", "--report", "--input"})
    return modernize(command, list(args), values, notes.append), notes


@pytest.mark.parametrize("command,old,new", [
    ("convert", ["--seq-len", "100"], ["--seq", "100"]),
    ("convert", ["--seq-len=100"], ["--seq", "100"]),
    ("convert", ["--max-seq-len", "64"], ["--max-seq", "64"]),
    ("quantize", ["--batch-size", "8"], ["--batch", "8"]),
    ("validate", ["--batch-size", "8"], ["--batch", "8"]),
    ("build", ["--calib-batch-size", "4"], ["--calib-batch", "4"]),
    ("demo", ["--out", "d"], ["--output", "d"]),
    ("unbundle", ["--out", "d"], ["--output", "d"]),
    ("validate", ["--baseline-tolerance", "0.25"], ["--max-growth", "1.25"]),
    ("inspect", ["--static", "1x100"], ["--static", "--batch", "1", "--seq", "100"]),
])
def test_old_spellings_are_rewritten_with_one_note(command, old, new):
    args, notes = _modernize(command, "m.pt", *old, "--json")
    assert args == ["m.pt", *new, "--json"]
    assert len(notes) == 1 and " is now " in notes[0]


def test_values_and_other_commands_are_left_alone():
    assert _modernize("quantize", "m.onnx", "--exclude", "--out", "-o", "q.onnx") == \
        (["m.onnx", "--exclude", "--out", "-o", "q.onnx"], [])  # a value that looks like an old option
    assert _modernize("bench", "m.onnx", "--batch-size", "1")[0] == ["m.onnx", "--batch-size", "1"]  # never bench's
    assert _modernize("convert", "--", "--seq-len")[0] == ["--", "--seq-len"]
    assert _modernize("convert", "--seq-len", "1", "--seq-len", "2") == (["--seq", "1", "--seq", "2"],
                                                                         ["--seq-len is now --seq"])
    assert _modernize("inspect", "--static", "--batch", "2")[0] == ["--static", "--batch", "2"]


def test_old_convert_spellings_still_export(cli, tmp_path, tiny_lstm):
    code, stdout, stderr = cli("convert", tiny_lstm.pt, "--out", tmp_path / "m.onnx", "--seq-len", "5",
                               "--max-seq-len", "64", "--json")
    assert code == 0, stderr
    notes = [ln for ln in stderr.splitlines() if ln.startswith("deprecated:")]
    assert [n.split(" is now ")[0] for n in notes] == ["deprecated: --out", "deprecated: --seq-len",
                                                       "deprecated: --max-seq-len"]
    assert all("until edgelstm 0.2.0" in n for n in notes)
    assert (tmp_path / "m.onnx").is_file()
    manifest = json.loads((tmp_path / "m.onnx.json").read_text())
    assert 5 in manifest["details"]["verification"]["seqs"]  # --seq-len 5 was the example length


def test_old_validate_spellings_still_gate(cli, tmp_path, tiny_lstm):
    base = tmp_path / "base.json"
    code, _, stderr = cli("validate", "-r", tiny_lstm.onnx, "-c", tiny_lstm.onnx, "--synthetic", "8", "--seq", "6",
                          "--report", base)
    assert code == 0, stderr
    code, stdout, stderr = cli("validate", "-r", tiny_lstm.onnx, "-c", tiny_lstm.onnx, "--synthetic", "8",
                               "--seq", "6", "--batch-size", "4", "--baseline", base, "--baseline-tolerance", "0.5",
                               "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["data"]["batch_size"] == 4 and report["baseline"]["tolerance"] == pytest.approx(0.5)
    assert "deprecated: --baseline-tolerance 0.5 is now --max-growth 1.5" in stderr


def test_inspect_old_static_shape(cli, tiny_lstm):
    code, stdout, stderr = cli("inspect", tiny_lstm.pt, "--static", "1x6", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["io"]["inputs"][0]["shape"] == [1, 6, 1]
    assert "deprecated: --static 1x6 is now --static --batch 1 --seq 6" in stderr
    code, _, stderr = cli("inspect", tiny_lstm.pt, "--static", "--batch", "1")
    assert code == 2 and "--batch and --seq together" in stderr


def test_library_messages_name_the_new_options(cli, tmp_path, tiny_lstm):
    code, _, stderr = cli("convert", tiny_lstm.pt, "-o", tmp_path / "m.onnx", "--seq", "100", "--max-seq", "50")
    assert code == 2 and "--seq 100 is above" in stderr and "--seq-len" not in stderr


# ------------------------------------------------------------------------------------------------ files


def test_pipeline_old_key_is_read_with_a_note(tmp_path):
    from edgelstm.errors import BadInput
    from edgelstm.pipeline.config import parse_pipeline

    notes: list[str] = []
    p = parse_pipeline({"model": {"zoo": "lstm_regressor"}, "export": {"seq_len": 12}}, base_dir=tmp_path,
                       on_renamed=notes.append)
    assert p.export.seq == p.export.seq_len == 12
    assert notes == ["[export].seq_len is now [export].seq"]
    with pytest.raises(BadInput, match=r"unknown key \[export\]\.seq_len"):  # both spellings: which one?
        parse_pipeline({"model": {"zoo": "lstm_regressor"}, "export": {"seq_len": 12, "seq": 8}}, base_dir=tmp_path)


def test_run_prints_the_pipeline_note(cli, tmp_path):
    (tmp_path / "p.toml").write_text('[model]\nzoo = "lstm_regressor"\n[export]\nseq_len = 0\n')
    code, _, stderr = cli("run", tmp_path / "p.toml")
    assert code == 2
    assert "deprecated: [export].seq_len is now [export].seq" in stderr and "[export].seq must be" in stderr


def test_policy_tolerance_is_max_growth(tmp_path):
    from edgelstm.errors import BadInput
    from edgelstm.validation.gates import parse_policy

    new = parse_policy({"baseline": {"max_growth": 1.25}})
    old = parse_policy({"baseline": {"tolerance": 0.25}}, name="p.toml")
    assert new.baseline_tolerance == old.baseline_tolerance == pytest.approx(0.25)
    assert new.deprecated == () and old.deprecated == ("p.toml: [baseline] tolerance = 0.25 is now max_growth = 1.25",)
    for bad in ({"max_growth": 0.9}, {"max_growth": 1.1, "tolerance": 0.1}):
        with pytest.raises(BadInput):
            parse_policy({"baseline": bad})


# ------------------------------------------------------------------------------------------------ test.sh


def test_test_sh_passes_its_arguments_to_pytest(tmp_path):
    """scripts/test.sh with a no-op setup and a python that prints what it was asked to run."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    shutil.copy(root / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    (tmp_path / "scripts" / "setup.sh").write_text("true\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text('#!/bin/sh\necho "$@"\n')
    (tmp_path / ".venv" / "bin" / "python").chmod(0o755)

    def run(*args: str) -> str:
        res = subprocess.run(["bash", str(tmp_path / "scripts" / "test.sh"), *args], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    assert run("tests/bad_input", "tests/fuzz") == "-m pytest tests/bad_input tests/fuzz"
    assert run("-x", "-q") == "-m pytest -x -q"  # no path: pytest's testpaths (tests) apply
    assert run() == "-m pytest"
    assert 'testpaths = ["tests"]' in (root / "pyproject.toml").read_text()
