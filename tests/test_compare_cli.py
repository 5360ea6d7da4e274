"""`edgelstm bench NEW --against OLD` and `edgelstm validate ... --against OLD` on the command line: exit codes,
--json, reports, one-line refusals; bench on a fake clock (tests/fake_machine.py), so verdicts are exact."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

import edgelstm.latency.compare as compare_module
from fake_machine import FakeMachine, costed_open
from slowdown_models import pr_versions

GRID = ["--batch", "1", "--seq", "6", "--threads", "1"]


def _last_line(stderr: str) -> str:
    return " ".join(stderr.strip().splitlines()[-1].split())


@pytest.fixture
def models(tiny_lstm, tmp_path):
    v = pr_versions(tiny_lstm, tmp_path)
    return v.old.parent, v.same.parent


@pytest.fixture
def machine(monkeypatch):
    m = FakeMachine(jitter=0.03, seed=0)
    costed_open(monkeypatch, m)
    monkeypatch.setattr(compare_module, "DEFAULT_CLOCK", m.clock)
    return m


def test_bench_against_passes_an_unchanged_model_and_fails_a_doubled_one(cli, models, machine, tmp_path):
    main, pr = models
    code, stdout, stderr = cli("bench", pr / "same.onnx", "--against", main / "m.onnx", *GRID, "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert out["verdict"] == "not slower" and out["passed"] is True and out["points"][0]["batch"] == 1
    assert "NEW vs OLD: not slower" in " ".join(stderr.split())

    report = tmp_path / "cmp.json"
    code, stdout, stderr = cli("bench", pr / "doubled.onnx", "--against", main / "m.onnx", *GRID, "--json",
                               "--report", report)
    assert code == 1
    out = json.loads(stdout)
    assert out["verdict"] == "slower" and out["points"][0]["ratio"]["low"] > 1.9
    assert json.loads(report.read_text())["verdict"] == "slower"
    assert _last_line(stderr).startswith("error: NEW vs OLD: slower (max slowdown 1.1×")


def test_inconclusive_is_not_a_pass_unless_asked(cli, models, machine):
    main, pr = models
    # the doubled model judged against a 2.0x tolerance: no interval can clear it
    undecided = ["--max-slowdown", "2.0", "--min-pairs", "8", "--max-pairs", "16"]
    code, stdout, stderr = cli("bench", pr / "doubled.onnx", "--against", main / "m.onnx", *GRID, *undecided, "--json")
    assert code == 1 and json.loads(stdout)["verdict"] == "inconclusive"
    assert "inconclusive counts as fail" in _last_line(stderr)
    code, stdout, stderr = cli("bench", pr / "doubled.onnx", "--against", main / "m.onnx", *GRID, *undecided, "--json",
                               "--on-inconclusive", "warn")
    assert code == 0 and json.loads(stdout)["verdict"] == "inconclusive" and json.loads(stdout)["passed"] is True
    assert "warning" in stderr.lower() and "inconclusive counts as warn" in " ".join(stderr.split())


def test_bench_against_refuses_what_it_cannot_do(cli, models, machine, tmp_path):
    main, pr = models
    cases = [
        ((pr / "same.onnx", pr / "doubled.onnx"), "compares one artifact (NEW) with OLD; got 2"),
        ((pr / "same.onnx", "--baseline", tmp_path / "b.json"), "--baseline cannot be combined with --against"),
        ((pr / "same.onnx", "--iters", "5"), "--iters cannot be combined with --against"),
        ((pr / "same.onnx", "--cuda-graph", "--streams", "2"),
         "--cuda-graph, --streams cannot be combined with --against"),  # trtexec-style timing: not the comparison's
        ((pr / "same.onnx", "--on-inconclusive", "maybe"), "--on-inconclusive must be one of fail, warn, pass"),
        ((pr / "same.onnx", "--max-slowdown", "0.9"), "--max-slowdown must be a finite number >= 1"),
    ]
    for args, message in cases:
        code, _, stderr = cli("bench", *args, "--against", main / "m.onnx", *GRID)
        assert code == 2 and message in _last_line(stderr), (args, stderr)
    code, _, stderr = cli("bench", pr / "same.onnx", "--against", tmp_path / "nope.onnx", *GRID)
    assert code == 2 and "does not exist" in _last_line(stderr)
    assert machine.iterations == 0  # refused before any timing


def test_a_baseline_from_another_machine_says_why_and_points_to_against(cli, models, machine, tmp_path):
    main, _ = models
    base = tmp_path / "base.json"
    code, _, stderr = cli("bench", main / "m.onnx", *GRID, "--iters", "5", "--report", base)
    assert code == 0, stderr
    data = json.loads(base.read_text())
    data["device"]["cpu"]["model"] = "Some Other CPU"
    (tmp_path / "other.json").write_text(json.dumps(data))
    code, _, stderr = cli("bench", main / "m.onnx", *GRID, "--baseline", tmp_path / "other.json")
    line = _last_line(stderr)
    assert code == 2 and "another device (cpu 'Some Other CPU' vs" in line
    assert "edgelstm bench NEW --against OLD" in line


def test_validate_against_gates_on_the_change(cli, models, tiny_lstm, tmp_path):
    main, pr = models
    data = ["--synthetic", "48", "--seq", "12", "--no-streaming"]
    code, stdout, stderr = cli("validate", "-r", main / "m.pt", "-c", pr / "doubled.onnx", "--against",
                               main / "m.onnx", *data, "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert out["against"]["passed"] is True and out["against"]["old"].endswith("m.onnx")
    junit = tmp_path / "drift.xml"
    code, _, stderr = cli("validate", "-r", main / "m.pt", "-c", pr / "worse.onnx", "--against", main / "m.onnx",
                          *data, "--gate", "rel_l2<=0.5", "--junit", junit, "--markdown", tmp_path / "s.md")
    assert code == 1 and "drifted beyond OLD" in _last_line(stderr)
    root = ET.parse(junit).getroot()
    failing = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failing and all(n.startswith("vs OLD ") for n in failing)
    assert "#### NEW vs OLD" in (tmp_path / "s.md").read_text()
    code, _, stderr = cli("validate", "-r", main / "m.pt", "-c", pr / "worse.onnx", "--against",
                          tmp_path / "nope.onnx", *data)
    assert code == 2 and "--against" in _last_line(stderr) and "does not exist" in _last_line(stderr)
