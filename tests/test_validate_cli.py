"""`edgelstm validate` CLI: exit codes 0/1/2, reports, one-line errors naming the offending array or key."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgelstm.models import zoo


@pytest.fixture(scope="module")
def arts(tmp_path_factory, tiny_lstm):
    d = tiny_lstm.copy_to(tmp_path_factory.mktemp("vcli"))  # m.pt, m.onnx (seq_len 6), m.stateful.onnx
    model = onnx.load(str(d / "m.onnx"))
    for init in model.graph.initializer:
        if init.name == "head.weight":
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(w + 0.5 * np.sign(w), init.name))
    onnx.save(model, str(d / "bad.onnx"))
    model.graph.output[0].name = "out"
    for node in model.graph.node:
        node.output[:] = ["out" if o == "y" else o for o in node.output]
    onnx.save(model, str(d / "renamed.onnx"))
    x, y = zoo.synthetic_task("lstm_regressor", 24, 6, seed=0)
    np.savez(d / "val.npz", x=x, y=y)
    return d


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_pass_writes_all_reports_and_json(cli, arts, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = cli("validate", "-r", arts / "m.pt", "-c", arts / "m.onnx", "--data", arts / "val.npz",
                               "--gate", "max_abs<=1e-5", "--gate", "mse_delta<=1e-6", "--report", out / "r.json",
                               "--junit", out / "r.xml", "--markdown", out / "r.md", "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert payload["passed"] is True and payload["samples"] == 24 and payload["task"]["kind"] == "regression"
    rep = json.loads((out / "r.json").read_text())
    assert rep["gates"] == payload["gates"] and len(rep["gates"]) == 2
    assert ET.parse(out / "r.xml").getroot().get("failures") == "0"
    assert "✅ passed (2/2 gates passed)" in (out / "r.md").read_text()
    assert "all 2 gate(s) passed" in stderr


def test_damaged_candidate_exits_1_after_writing_reports(cli, arts, tmp_path):
    code, _, stderr = cli("validate", "-r", arts / "m.onnx", "-c", arts / "bad.onnx", "--synthetic", "32",
                          "--gate", "rel_l2:y<=0.01", "--gate", "cosine>=0.5", "--report", tmp_path / "r.json",
                          "--junit", tmp_path / "r.xml", "--markdown", tmp_path / "r.md")
    assert code == 1
    assert "1 of 2 gate(s) failed: rel_l2:y = " in _one_error_line(stderr)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["passed"] is False and rep["failed_gates"] == ["rel_l2:y <= 0.01"]
    bad = [g for g in rep["gates"] if not g["passed"]]
    assert bad[0]["metric"] == "rel_l2" and bad[0]["output"] == "y" and bad[0]["value"] > 0.01
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.tag == "testsuites" and root.find("testsuite").get("failures") == "1"
    fails = root.findall("testsuite/testcase/failure")
    assert len(fails) == 1 and fails[0].get("message").startswith("rel_l2:y = ")
    assert "❌ **fail**" in (tmp_path / "r.md").read_text()


def test_policy_and_baseline(cli, arts, tmp_path):
    pol = tmp_path / "p.toml"
    pol.write_text("[default]\nrel_l2 = 10.0\n[baseline]\ntolerance = 0.5\n")
    args = ["validate", "-r", arts / "m.onnx", "-c", arts / "bad.onnx", "--synthetic", "16", "--policy", pol]
    code, _, stderr = cli(*args, "--report", tmp_path / "base.json")
    assert code == 0, stderr
    code, stdout, stderr = cli(*args, "--baseline", tmp_path / "base.json", "--json", "-q")
    assert code == 0, stderr
    gates = json.loads(stdout)["gates"]
    assert any(g["source"] == "baseline" and g["passed"] for g in gates)
    assert [g["limit"] for g in gates if g["source"] == "policy"] == [10.0]
    # a baseline with less drift (the exact ONNX) makes the damaged candidate fail
    cli("validate", "-r", arts / "m.onnx", "-c", arts / "m.onnx", "--synthetic", "16", "--report", tmp_path / "zero.json")
    code, _, stderr = cli(*args, "--baseline", tmp_path / "zero.json")
    assert code == 1 and "drifted beyond the baseline" in _one_error_line(stderr)


def _bad_data(arts, tmp_path, case):
    x = np.random.default_rng(0).standard_normal((8, 6, 1)).astype(np.float32)
    p = tmp_path / f"{case}.npz"
    if case == "nan":
        x[3, 2, 0] = np.nan
        np.savez(p, x=x)
    elif case == "inf":
        x[0, 0, 0] = np.inf
        np.save(p := tmp_path / "inf.npy", x)
    elif case == "names":
        np.savez(p, inp=x, extra=x)
    elif case == "rank":
        np.savez(p, x=x[:, :, 0])
    elif case == "shape":
        np.savez(p, x=np.repeat(x, 3, axis=2))
    elif case == "dtype":
        np.savez(p, x=np.full((8, 6, 1), "a"))
    elif case == "empty":
        np.savez(p, x=x[:0])
    elif case == "labels":
        np.savez(p, x=x, y=np.ones(5, np.float32))
    return p


@pytest.mark.parametrize("case, needle", [
    ("nan", "'x' contains 1 NaN/inf"),
    ("inf", "'x' contains 1 NaN/inf"),
    ("names", "missing input(s) ['x']"),
    ("rank", "'x' has shape [8, 6] (rank 2), expected rank 3"),
    ("shape", "'x' has 3 on axis 2, the model needs 1"),
    ("dtype", "'x' has dtype <U1"),
    ("empty", "'x' is empty"),
    ("labels", "disagree on the number of samples"),
])
def test_bad_data_exit_2(cli, arts, tmp_path, case, needle):
    data = _bad_data(arts, tmp_path, case)
    code, _, stderr = cli("validate", "-r", arts / "m.pt", "-c", arts / "m.onnx", "--data", data,
                          "--gate", "rel_l2<=0.1", "--report", tmp_path / "r.json")
    assert code == 2
    assert needle in _one_error_line(stderr)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("case, needle", [
    ("too-small", "has 24 sample(s); it needs at least 100"),
    ("outputs", "the candidate's outputs do not match the reference's: it lacks output(s) ['y']"),
    ("policy", "p.toml: [default]: unknown metric 'rel_l3'"),
    ("policy-section", "p.toml: unknown key 'limits'"),
    ("gate", "unknown metric 'bogus'"),
    ("gate-output", "unknown output 'z'"),
    ("both", "exactly one of --data FILE or --synthetic N"),
    ("csv-window", "--window/--features/--target/--group apply to .csv data"),
    ("synthetic-0", "--synthetic needs at least 1 sample"),
    ("labels-needed", "task metrics need labels"),
    ("missing-candidate", "candidate: artifact"),
])
def test_bad_usage_exit_2(cli, arts, tmp_path, case, needle):
    pol = tmp_path / "p.toml"
    pol.write_text("[limits]\nx = 1\n" if case == "policy-section" else "[default]\nrel_l3 = 0.1\n")
    ref, cand = arts / "m.onnx", arts / "m.onnx"
    extra: list = ["--data", arts / "val.npz"]
    if case == "too-small":
        extra += ["--min-samples", "100"]
    elif case == "outputs":
        cand = arts / "renamed.onnx"
    elif case in ("policy", "policy-section"):
        extra += ["--policy", pol]
    elif case == "gate":
        extra += ["--gate", "bogus<=1"]
    elif case == "gate-output":
        extra += ["--gate", "rmse:z<=1"]
    elif case == "both":
        extra += ["--synthetic", "3"]
    elif case == "csv-window":
        extra += ["--window", "4"]
    elif case == "synthetic-0":
        extra = ["--synthetic", "0"]
    elif case == "labels-needed":
        extra = ["--synthetic", "4", "--gate", "mse<=1"]
    elif case == "missing-candidate":
        cand = tmp_path / "nope.onnx"
    code, _, stderr = cli("validate", "-r", ref, "-c", cand, *extra, "--junit", tmp_path / "r.xml")
    assert code == 2
    assert needle in _one_error_line(stderr)
    assert not (tmp_path / "r.xml").exists()


def test_csv_data_with_target(cli, arts, tmp_path):
    rows = ["t,v,label"] + [f"{i},{np.sin(i / 3):.5f},{np.sin((i + 1) / 3):.5f}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    code, stdout, stderr = cli("validate", "-r", arts / "m.pt", "-c", arts / "m.onnx", "--data", tmp_path / "d.csv",
                               "--window", "8", "--features", "v", "--target", "label", "--json", "-q")
    assert code == 0, stderr
    rep = json.loads(stdout)
    assert rep["samples"] == 23 and rep["task"]["kind"] == "regression" and rep["data"]["seq"] == 8


def test_help_has_examples(cli):
    code, stdout, _ = cli("validate", "--help")
    assert code == 0
    for text in ("--reference", "--synthetic", "--gate", "--policy", "--baseline", "--junit", "Examples"):
        assert text in stdout
