"""CLI contract for convert / inspect / doctor / demo: outputs, --json, exit codes, no tracebacks."""

from __future__ import annotations

import json

import pytest
import torch

from edgelstm.models import zoo


@pytest.fixture
def ckpt(tmp_path, tiny_model):
    path = tmp_path / "m.pt"
    zoo.save_checkpoint(tiny_model("lstm_regressor"), path)
    return path


def test_convert_then_inspect_json(cli, tmp_path, ckpt):
    out = tmp_path / "m.onnx"
    code, stdout, _ = cli("convert", ckpt, "-o", out, "--json", "--stateful")
    assert code == 0, stdout
    payload = json.loads(stdout)
    assert payload["route"] == "torchscript" and all(c["passed"] for c in payload["verification"])
    assert (tmp_path / "m.onnx.json").exists()
    code, stdout, _ = cli("inspect", out, "--json")
    info = json.loads(stdout)
    assert code == 0 and info["stateful"] and info["recurrent_layers"][0]["hidden_size"] == 8
    assert info["manifest_matches"] is True and info["op_histogram"]["LSTM"] == 1
    code, stdout, _ = cli("inspect", ckpt, "--json")
    assert code == 0 and json.loads(stdout)["recurrent_layers"][0]["op"] == "LSTM"


@pytest.mark.parametrize("case", ["missing", "not-a-model", "pickle", "state-dict", "input-size", "bad-suffix"])
def test_convert_bad_input_is_one_line_exit_2_nothing_written(cli, tmp_path, tiny_model, ckpt, case):
    out = tmp_path / "out.onnx"
    m = tiny_model("lstm_regressor")
    args = {
        "missing": [tmp_path / "nope.pt", "-o", out],
        "not-a-model": [tmp_path / "junk.pt", "-o", out],
        "pickle": [tmp_path / "whole.pt", "-o", out],
        "state-dict": [tmp_path / "sd.pt", "-o", out],
        "input-size": [ckpt, "-o", out, "--input-size", "3"],
        "bad-suffix": [ckpt, "-o", tmp_path / "out.txt"],
    }[case]
    (tmp_path / "junk.pt").write_bytes(b"\x00\x01garbage" * 10)
    torch.save(m, tmp_path / "whole.pt")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    code, stdout, stderr = cli("convert", *args)
    assert code == 2
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error:")
    assert len([line for line in stderr.strip().splitlines() if line.startswith("error:")]) == 1
    assert not out.exists()


def test_convert_mismatch_exits_1(cli, tmp_path):
    m = zoo.build("hand_lstm", {"hidden_size": 4})
    zoo.save_checkpoint(m, tmp_path / "h.pt")
    code, _, stderr = cli("convert", tmp_path / "h.pt", "-o", tmp_path / "h.onnx", "--route", "torchscript")
    assert code == 1 and "does not reproduce torch" in stderr and not (tmp_path / "h.onnx").exists()


def test_inspect_corrupt_onnx(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not really onnx")
    code, _, stderr = cli("inspect", bad)
    assert code == 2 and "not a valid ONNX" in stderr


def test_doctor_json(cli):
    code, stdout, _ = cli("doctor", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["backends"]["onnxruntime"]["ok"] and report["versions"]["onnx"]


def test_help_works_for_every_command(cli):
    code, stdout, _ = cli("--help")
    assert code == 0
    from edgelstm.cli.app import app

    commands = sorted(c.name for c in app.registered_commands)
    assert {"convert", "quantize", "build", "validate", "bench", "inspect", "doctor", "run", "demo", "bundle",
            "unbundle"} <= set(commands)
    for cmd in commands:
        code, text, _ = cli(cmd, "--help")
        assert code == 0 and "Usage" in text and f"edgelstm {cmd}" in " ".join(text.split()), cmd
        assert cmd in stdout  # listed in the top-level help
