"""validate_artifacts on tiny models: torch vs ONNX, damaged candidates, streaming, task metrics, reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgelstm.data import synthetic_dataset
from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.models import zoo
from edgelstm.errors import BadInput
from edgelstm.validation.gates import parse_gate, parse_gates
from edgelstm.validation.reports import junit_xml, markdown_summary, write_junit, write_markdown, write_validate_report
from edgelstm.runners.onnxruntime_runner import OrtRunner
from edgelstm.validation.validate import DataRequest, ValidateOptions, map_outputs, validate_artifacts


class SeqModel(torch.nn.Module):
    """Per-step outputs [batch, seq, hidden]: an output with a time axis."""

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(2, 4, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def damage(src, dst, scale=0.5):
    """Perturb the regression head's weights with onnx.numpy_helper."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.name == "head.weight":
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((w + scale * np.sign(w)).astype(w.dtype), init.name))
    onnx.save(model, str(dst))
    return dst


def rename_output(src, dst, new="out"):
    model = onnx.load(str(src))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    model.graph.output[0].name = new
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def arts(tmp_path_factory, tiny_lstm):
    d = tiny_lstm.copy_to(tmp_path_factory.mktemp("validate"))  # m.pt, m.onnx, m.stateful.onnx
    m = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)  # the same model (seeded)
    opts = ExportOptions(seq_len=6, verify_seqs=(6,), verify_batches=(2,))
    export_onnx(m, d / "static.onnx", ExportOptions(seq_len=6, batch=4, static=True))
    damage(d / "m.onnx", d / "bad.onnx")
    rename_output(d / "m.onnx", d / "renamed.onnx")
    m2 = zoo.build("lstm_regressor", {"hidden_size": 8, "output_size": 2}, seed=0)
    export_onnx(m2, d / "two.onnx", opts)
    seqm = SeqModel().eval()
    export_onnx(seqm, d / "seq.onnx", opts)
    export_onnx(seqm, d / "seq_s.onnx", ExportOptions(seq_len=6, stateful=True, verify_seqs=(6,), verify_batches=(2,)))
    x, y = zoo.synthetic_task("lstm_regressor", 40, 8, seed=1)
    np.savez(d / "reg.npz", x=x, y=y)
    names = ["m", "static", "bad", "renamed", "two", "seq", "seq_s"]
    return {"dir": d, "model": m, "seq_model": seqm, "pt": d / "m.pt", "reg": d / "reg.npz",
            "ms": d / "m.stateful.onnx", **{n: d / f"{n}.onnx" for n in names}}


def test_torch_vs_onnx_passes_tight_gates(arts):
    res = validate_artifacts(arts["pt"], arts["m"], DataRequest(synthetic=50, seq=7),
                             ValidateOptions(gates=tuple(parse_gates(["max_abs<=1e-5", "cosine>=0.99999"])),
                                             batch_size=16))
    assert res.passed and res.samples == 50 and [g.passed for g in res.gates] == [True, True]
    y = res.outputs["y"]
    assert y["max_abs"] < 1e-5 and y["cosine"] > 0.99999 and y["time_axis"] is None
    d = res.to_dict()
    for key in ("reference", "candidate", "samples", "passed", "outputs", "task", "gates"):
        assert key in d
    assert d["gates"][0].keys() >= {"metric", "output", "limit", "value", "passed"}
    assert d["data"]["batch_size"] == 16 and d["candidate_info"]["backend"] == "onnxruntime"
    assert "streaming" not in d                          # a stateless candidate is not streamed


def test_damaged_candidate_fails_the_gate_and_collects_all(arts):
    gates = tuple(parse_gates(["rel_l2:y<=0.01", "cosine>=0.999", "mean_abs<=1"]))
    res = validate_artifacts(arts["m"], arts["bad"], DataRequest(synthetic=32), ValidateOptions(gates=gates))
    assert not res.passed
    failed = {g.metric for g in res.failed_gates}
    assert "rel_l2" in failed and "mean_abs" not in failed
    assert res.outputs["y"]["rel_l2"] > 0.01


def test_outputs_must_match(arts):
    with pytest.raises(BadInput, match=r"lacks output\(s\) \['y'\].*has output\(s\) \['out'\]"):
        validate_artifacts(arts["m"], arts["renamed"], DataRequest(synthetic=4))
    with pytest.raises(BadInput, match="output 'y': the candidate has 2 on axis 1, the reference 1"):
        validate_artifacts(arts["m"], arts["two"], DataRequest(synthetic=4))
    # a torch reference's output names are invented by edgelstm: map by position
    res = validate_artifacts(arts["pt"], arts["renamed"], DataRequest(synthetic=4))
    assert res.info["output_map"] == {"y": "out"} and res.outputs["y"]["max_abs"] < 1e-5


def test_map_outputs_ignores_candidate_state_only_when_reference_has_none(arts):
    ref, st = OrtRunner(arts["m"]), OrtRunner(arts["ms"])
    assert map_outputs(ref.io, st.io) == {"y": "y"}
    assert map_outputs(st.io, st.io) == {"y": "y", "hn": "hn", "cn": "cn"}
    assert map_outputs(st.io, ref.io) == {"y": "y"}      # a stateless candidate: the reference's y only
    partial = type(st.io)(st.io.inputs, tuple(t for t in st.io.outputs if t.name != "cn"))
    with pytest.raises(BadInput, match=r"lacks output\(s\) \['cn'\]"):
        map_outputs(st.io, partial)


def test_stateful_candidate_is_streamed(arts):
    gates = tuple(parse_gates(["streaming.max_abs<=1e-5", "streaming.rel_l2:y<=1e-5"]))
    res = validate_artifacts(arts["pt"], arts["ms"], DataRequest(synthetic=20, seq=8),
                             ValidateOptions(gates=gates, batch_size=8))
    s = res.streaming
    assert res.passed and s["chunk_sizes"] == [1, 2] and s["samples"] == 20
    assert set(s["by_chunk"]) == {"1", "2"} and s["outputs"]["y"]["max_abs"] < 1e-5
    assert set(res.outputs) == {"y"}                     # hn/cn ignored: the reference has none


class ForgetfulRunner:
    """A stateful candidate that ignores the state it is given (a broken streaming deployment)."""

    def __init__(self, inner):
        self.inner, self.io, self.backend, self.precision, self.label = inner, inner.io, "onnxruntime", "fp32", "forgetful"

    def run(self, feeds):
        return self.inner.run({k: (np.zeros_like(v) if k in ("h0", "c0") else v) for k, v in feeds.items()})

    def close(self):
        pass


def test_broken_state_carry_is_caught_by_streaming(arts):
    cand = ForgetfulRunner(OrtRunner(arts["ms"]))
    res = validate_artifacts(arts["m"], cand, DataRequest(synthetic=16, seq=8),
                             ValidateOptions(gates=(parse_gate("streaming.rel_l2<=0.01"),), chunk_sizes=(1, 4)))
    assert res.outputs["y"]["max_abs"] < 1e-5           # the full-sequence run is fine ...
    assert not res.passed                                # ... but streaming drifts
    assert res.streaming["by_chunk"]["1"]["y"]["rel_l2"] > res.streaming["by_chunk"]["4"]["y"]["rel_l2"] > 0.01


def test_time_axis_output_per_step_and_streaming(arts):
    res = validate_artifacts(arts["seq_model"], arts["seq_s"], DataRequest(synthetic=6, seq=9),
                             ValidateOptions(gates=(parse_gate("max_step_rmse<=1e-5"),)))
    y = res.outputs["y"]
    assert y["time_axis"] == 1 and len(y["per_step_rmse"]) == 9 and y["per_step_summary"]["steps"] == 9
    assert res.passed and res.streaming["outputs"]["y"]["max_abs"] < 1e-5
    assert len(res.streaming["outputs"]["y"]["per_step_rmse"]) == 9   # chunk outputs concatenated over time
    md = markdown_summary(res)
    assert "#### Per-step drift" in md and "| y | 9 |" in md


def test_regression_task_metrics_with_labels(arts):
    res = validate_artifacts(arts["m"], arts["bad"], DataRequest(path=arts["reg"]),
                             ValidateOptions(gates=tuple(parse_gates(["mse_delta<=0", "mse<=100"]))))
    t = res.task
    assert t["kind"] == "regression" and t["output"] == "y"
    assert t["mse_delta"] == pytest.approx(t["mse"] - t["reference_mse"]) and t["mse_delta"] != 0
    assert t["mae_delta"] == pytest.approx(t["mae"] - t["reference_mae"])
    assert [g.passed for g in res.gates] == [t["mse_delta"] <= 0, t["mse"] <= 100]
    assert [g.value for g in res.gates] == [t["mse_delta"], t["mse"]]


def test_classification_task_metrics(tmp_path, tiny_model):
    m = tiny_model("bilstm_attention")
    export_onnx(m, tmp_path / "c.onnx", ExportOptions(seq_len=6, verify_seqs=(6,), verify_batches=(2,)))
    x, y = zoo.synthetic_task("bilstm_attention", 24, 6, seed=0)
    ds = synthetic_dataset(OrtRunner(tmp_path / "c.onnx").io, 24, seq=6)
    ds.inputs["x"], ds.labels = x[:, :, :5], y
    res = validate_artifacts(m, tmp_path / "c.onnx", ds,
                             ValidateOptions(gates=tuple(parse_gates(["agreement>=1", "accuracy_delta>=0"]))))
    t = res.task
    assert t["kind"] == "classification" and t["agreement"] == 1.0
    assert t["accuracy"] == t["reference_accuracy"] and 0 <= t["accuracy"] <= 1 and res.passed


def test_static_candidate_uses_its_fixed_batch(arts):
    res = validate_artifacts(arts["m"], arts["static"], DataRequest(synthetic=10, seq=6), ValidateOptions(batch_size=3))
    assert res.samples == 8 and res.info["data"]["batch_size"] == 4
    assert any("exactly 4" in n for n in res.info["notes"])
    with pytest.raises(BadInput, match="'x' has 7 on axis 1, the model needs 6"):
        validate_artifacts(arts["m"], arts["static"], DataRequest(synthetic=8, seq=7))
    with pytest.raises(BadInput, match="needs at least 4"):
        validate_artifacts(arts["m"], arts["static"], DataRequest(synthetic=3, seq=6))


def test_gates_naming_unknown_outputs_fail_before_running(arts):
    with pytest.raises(BadInput, match="unknown output 'z'"):
        validate_artifacts(arts["m"], arts["m"], DataRequest(synthetic=4), ValidateOptions(gates=(parse_gate("rmse:z<=1"),)))
    with pytest.raises(BadInput, match="need labels"):
        validate_artifacts(arts["m"], arts["m"], DataRequest(synthetic=4), ValidateOptions(gates=(parse_gate("mse<=1"),)))


def test_baseline_gates(arts):
    base = validate_artifacts(arts["m"], arts["bad"], DataRequest(synthetic=16)).to_dict()
    same = validate_artifacts(arts["m"], arts["bad"], DataRequest(synthetic=16), ValidateOptions(baseline=base))
    assert same.passed and all(g.source == "baseline" for g in same.gates) and len(same.gates) == 5
    damage(arts["m"], arts["dir"] / "worse.onnx", scale=2.0)
    worse = validate_artifacts(arts["m"], arts["dir"] / "worse.onnx", DataRequest(synthetic=16),
                               ValidateOptions(baseline=base))
    assert not worse.passed and {g.metric for g in worse.failed_gates} >= {"rel_l2", "max_abs"}


def test_progress_callback(arts):
    calls = []
    validate_artifacts(arts["m"], arts["ms"], DataRequest(synthetic=20, seq=8),
                       ValidateOptions(batch_size=8, progress=lambda done, total: calls.append((done, total))))
    assert calls[-1] == (9, 9)   # 3 batches + 3 streamed batches x 2 chunk sizes


def test_reports_written_and_parse(arts, tmp_path):
    res = validate_artifacts(arts["m"], arts["bad"], DataRequest(synthetic=16),
                             ValidateOptions(gates=tuple(parse_gates(["rel_l2<=0.01", "cosine>=0"]))))
    rep = json.loads(write_validate_report(res, tmp_path / "r.json").read_text())
    assert rep["passed"] is False and rep["failed_gates"] == ["rel_l2:y <= 0.01"]
    root = ET.parse(write_junit(res, tmp_path / "r.xml")).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("tests") == "2"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2 and all(c.get("classname") and c.get("name") for c in cases)
    failures = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert len(failures) == 1 and "rel_l2:y" in failures[0].get("message")
    md = write_markdown(res, tmp_path / "r.md").read_text()
    assert "❌ failed (1/2 gates passed)" in md and "| rel_l2:y |" in md and "❌ **fail**" in md
    assert "| output | max_abs | mean_abs | rmse | rel_l2 | cosine |" in md
    assert list(tmp_path.glob(".*.tmp")) == []          # atomic: no temp files left
    empty = junit_xml(validate_artifacts(arts["m"], arts["m"], DataRequest(synthetic=2)))
    assert ET.fromstring(empty.split("\n", 1)[1]).find("testsuite/testcase") is not None


def test_labels_must_fit_the_task_output_before_running(arts, tmp_path):
    x, _ = zoo.synthetic_task("lstm_regressor", 6, 5, seed=0)
    np.savez(tmp_path / "l.npz", x=x, y=np.zeros((6, 3), np.float32))
    with pytest.raises(BadInput, match=r"labels 'y' have shape \[6, 3\], but regression on output 'y'"):
        validate_artifacts(arts["m"], arts["bad"], DataRequest(path=tmp_path / "l.npz"))


def test_stateful_reference_vs_stateless_candidate_compares_y(arts):
    res = validate_artifacts(arts["ms"], arts["m"], DataRequest(synthetic=4, seq=5))
    assert set(res.outputs) == {"y"} and res.outputs["y"]["max_abs"] < 1e-5


def test_streaming_plan_and_chunk_sizes():
    """The streaming plan (validation/streaming.py) on hand-made specs: state carried h0->hn, c0->cn."""
    from edgelstm.artifacts.iospec import IOSpec, TensorSpec
    from edgelstm.validation.streaming import chunk_plan, plan_streaming

    x, y = TensorSpec("x", "float32", ("batch", "seq", 1)), TensorSpec("y", "float32", ("batch", 1))
    h0, c0 = (TensorSpec(n, "float32", (1, "batch", 8), True) for n in ("h0", "c0"))
    hn, cn = (TensorSpec(n, "float32", (1, "batch", 8), True) for n in ("hn", "cn"))
    specs = {"y": y, "hn": hn, "cn": cn}
    stateful = IOSpec((x, h0, c0), (y, hn, cn))
    assert plan_streaming(stateful, ["y", "hn", "cn"], specs, 6) == (["y"], None)
    assert plan_streaming(stateful, ["y"], specs, 6, enabled=False) == ([], None)
    assert plan_streaming(IOSpec((x,), (y,)), ["y"], specs, 6) == ([], None)            # stateless: nothing to stream
    assert "no state output for ['c0']" in plan_streaming(IOSpec((x, h0, c0), (y, hn)), ["y"], specs, 6)[1]
    assert "shorter than 2 steps" in plan_streaming(stateful, ["y"], specs, 1)[1]
    assert chunk_plan(None, 12) == [1, 3] and chunk_plan((4, 2, 4), 12) == [2, 4]
    with pytest.raises(BadInput, match="--chunks must be >= 1"):
        chunk_plan((0, 2), 12)
