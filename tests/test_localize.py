"""Drift localisation (validate --localize): which tensor of each converter's output holds which FP32 tensor, the
error along the graph and along time, where the drift enters, and the command that says so."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import quant_models as qm
from edgelstm.converters.quantize.fp16 import quantize_fp16
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.errors import BadInput
from edgelstm.validation.localize import LocalizeOptions, fp32_ancestor, localize_drift
from edgelstm.validation.localize_errors import TensorError, analyse
from edgelstm.validation.localize_graph import choose_sites, graph_sites, prepared
from edgelstm.validation.localize_match import Matching, Pair, match_sites
from edgelstm.validation.validate import DataRequest

SEQ = 12          # far from the export length (6) and the tests' other lengths


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The tiny lstm_regressor as FP32 ONNX and as each quantized artifact (made by edgelstm's converters)."""
    d = tmp_path_factory.mktemp("loc")
    src = qm.exported("lstm_regressor", d)
    x = np.random.default_rng(3).standard_normal((32, SEQ, 1)).astype(np.float32)
    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.data import dataset_from_arrays

    calib = dataset_from_arrays({"x": x}, iospec_from_onnx(onnx.load(str(src)))).batches(8)
    quantize_fp16(src, d / "m.fp16.onnx")
    quantize_int8(src, d / "m.dyn.onnx")
    quantize_int8(src, d / "m.qdq.onnx", Int8Options(mode="static"), calib=calib)
    return {"fp32": src, "fp16": d / "m.fp16.onnx", "dynamic": d / "m.dyn.onnx", "static": d / "m.qdq.onnx", "dir": d}


def _localize(artifacts, kind, **kw):
    return localize_drift(artifacts["fp32"], artifacts[kind], DataRequest(synthetic=24, seq=SEQ, seed=1),
                          LocalizeOptions(batch_size=8, **kw))


# ------------------------------------------------------------------------------------------------ matching


def _sites_and_models(artifacts, kind):
    ref = prepared(onnx.load(str(artifacts["fp32"])))
    cand = prepared(onnx.load(str(artifacts[kind])))
    return graph_sites(ref), ref, cand


def test_every_reference_tensor_is_matched_in_each_converters_output(artifacts):
    """The names each converter keeps are what the matching relies on: nothing of the FP32 graph goes unmatched,
    and each converter's own tensors are where the module doc says."""
    for kind in ("fp16", "dynamic", "static"):
        sites, ref, cand = _sites_and_models(artifacts, kind)
        m = match_sites(sites, ref, cand)
        assert not m.unmatched, (kind, m.unmatched)
        assert {p.site.tensor for p in m.pairs if not p.site.quantized_copy_of} == {s.tensor for s in sites}
    sites, ref, cand = _sites_and_models(artifacts, "dynamic")
    lstm = next(n for n in cand.graph.node if n.op_type == "DynamicQuantizeLSTM")
    assert lstm.name == "/rnn/LSTM_quant"                       # renamed node, same output tensor
    m = match_sites(sites, ref, cand)
    y = next(p for p in m.pairs if p.site.role == "Y")
    assert y.candidate == lstm.output[0] and y.how == "same name"
    copies = {p.how for p in match_sites(*_sites_and_models(artifacts, "static")).pairs if p.site.quantized_copy_of}
    assert copies == {"after Q/DQ"}
    fp16 = match_sites(*_sites_and_models(artifacts, "fp16"))
    cast = [p for p in fp16.pairs if p.site.quantized_copy_of]
    assert cast and all(p.how == "after Cast" for p in cast)
    assert "y_fp16" in fp16.candidate_only                      # the converter's own tensor, reported


def test_a_renamed_output_is_matched_by_its_node_and_a_fused_one_is_listed():
    """A candidate that renamed a node's output (same node name) is matched by node and position; a reference
    tensor whose node the candidate fused away is listed with the reason."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    ref = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"), helper.make_node("Relu", ["a"], ["b"], name="relu"),
         helper.make_node("Tanh", ["b"], ["y"], name="tanh")], "g", [x], [y], [w]))
    cand = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a_renamed"], name="mm"),
         helper.make_node("Tanh", ["a_renamed"], ["y"], name="fused_relu_tanh")], "g", [x], [y], [w]))
    sites = graph_sites(prepared(ref))
    m = match_sites(sites, prepared(ref), prepared(cand))
    how = {p.site.tensor: (p.candidate, p.how) for p in m.pairs}
    assert how["a"] == ("a_renamed", "same node (mm), output 0")
    assert how["y"] == ("y", "same name")
    assert [u["tensor"] for u in m.unmatched] == ["b"] and "fused or renamed" in m.unmatched[0]["why"]


def test_mark_chooses_tensors_and_refuses_unknown_names(artifacts):
    ref = prepared(onnx.load(str(artifacts["fp32"])))
    sites = graph_sites(ref)
    rec = choose_sites(sites, ref, "recurrent")
    assert {s.op for s in rec} == {"LSTM", "Gemm"}              # the LSTM, plus the model output
    assert [s.tensor for s in choose_sites(sites, ref, "/head/*")] == ["y"]
    assert len(choose_sites(sites, ref, "all")) == len(sites)
    with pytest.raises(BadInput, match="--mark"):
        choose_sites(sites, ref, "nosuch")
    lstm = next(s for s in sites if s.op == "LSTM")
    assert lstm.role == "Y" and lstm.time_axis == 0             # [seq, directions, batch, hidden]


# ------------------------------------------------------------------------------------------------ analysis


def _pair(tensor, node, op, index, inputs=(), axis=None, out=False):
    from edgelstm.validation.localize_graph import Site

    return Pair(Site(tensor, node, op, index, tuple(inputs), "Y" if op == "LSTM" else None, axis, out), tensor,
                tensor, "same name", float(index))


def test_drift_enters_where_a_tensor_adds_error_and_at_the_step_it_starts():
    """A chain a -> lstm -> y: a is exact, the LSTM's hidden state is exact for 3 steps and then drifts, y inherits it.
    The entry is the LSTM, at step 3; what a tensor only inherits is not where drift enters."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 8))
    h = rng.standard_normal((10, 1, 4, 8))                     # [seq, dirs, batch, hidden]
    noise = np.zeros_like(h)
    noise[3:] = 0.05 * rng.standard_normal(h[3:].shape)
    y = 2.0 * h[-1, 0]                                          # a scaling keeps the relative error
    pairs = [_pair("a", "n0", "Relu", 0), _pair("h", "lstm", "LSTM", 1, ["a"], axis=0),
             _pair("y", "head", "Mul", 2, ["h"], out=True)]
    errors = {n: TensorError(p.site.time_axis) for n, p in zip("ahy", pairs)}
    errors["a"].update(a, a)
    errors["h"].update(h, h + noise)
    errors["y"].update(y, 2.0 * (h[-1, 0] + noise[-1, 0]))
    result = analyse(Matching(pairs), errors)
    assert result["entry"]["node"] == "lstm" and result["entry"]["time_step"] == 3
    steps = result["recurrent"][0]["per_step_rel_l2"]
    assert len(steps) == 10 and steps[:3] == [0.0, 0.0, 0.0] and min(steps[3:]) > 0.01
    assert [r["node"] for r in result["ranking"]] == ["lstm"]
    rows = {r["tensor"]: r for r in result["rows"]}
    assert rows["y"]["added"] < rows["y"]["rel_l2"]            # y inherits most of its error


def test_identical_candidate_has_no_entry():
    pairs = [_pair("y", "n", "Relu", 0, out=True)]
    err = TensorError(None)
    err.update(np.ones((2, 3)), np.ones((2, 3)))
    result = analyse(Matching(pairs), {"y": err})
    assert result["entry"] is None and result["worst_output_rel_l2"] == 0.0


# ------------------------------------------------------------------------------------------------ the stage


def test_int8_dynamic_drift_enters_at_the_lstm_at_step_zero(artifacts):
    r = _localize(artifacts, "dynamic")
    entry = r.entry
    assert entry["node"] == "/rnn/LSTM" and entry["role"] == "Y" and entry["time_step"] == 0
    rec = r.analysis["recurrent"][0]
    assert len(rec["per_step_rel_l2"]) == SEQ and rec["peak"] > 0
    assert "drift enters at /rnn/LSTM" in r.verdict() and "time step 0" in r.verdict()
    assert r.marking_effect["y"] < 0.5 * r.analysis["worst_output_rel_l2"]


def test_int8_static_drift_enters_at_the_qdq_in_front_of_the_head(artifacts):
    """Static Q/DQ leaves the LSTM float: its hidden state is exact at every step, and the drift enters where the
    head's input is quantized."""
    r = _localize(artifacts, "static")
    rows = {x["tensor"]: x for x in r.analysis["rows"]}
    lstm = next(x for x in r.analysis["rows"] if x["op"] == "LSTM")
    assert lstm["rel_l2"] == 0.0 and max(lstm["per_step_rel_l2"]) == 0.0
    assert r.entry["quantized_copy_of"] and r.entry["node"] == "/head/Gemm" and r.entry["op"] == "Q/DQ"
    assert "the Q/DQ of" in r.verdict() and "/head/Gemm" in r.verdict()
    assert rows["y"]["rel_l2"] > 0


def test_fp16_drift_enters_where_the_input_becomes_fp16(artifacts):
    r = _localize(artifacts, "fp16")
    assert r.entry["op"] == "Cast" and r.entry["node"] == "/rnn/LSTM"
    assert r.entry["rel_l2"] < 1e-2                          # an FP16 rounding, not a failure


def test_localize_refuses_what_it_cannot_compare(artifacts, tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"not a model")
    with pytest.raises(BadInput, match="FP32 ONNX"):
        localize_drift(pt, artifacts["dynamic"], DataRequest(synthetic=4, seq=SEQ))
    with pytest.raises(BadInput, match="does not exist"):
        localize_drift(artifacts["fp32"], tmp_path / "nope.onnx", DataRequest(synthetic=4, seq=SEQ))
    with pytest.raises(BadInput, match="--jump"):
        LocalizeOptions(jump=2.0)


def test_fp32_ancestor_follows_the_manifests(artifacts):
    assert fp32_ancestor(artifacts["dynamic"]) == artifacts["fp32"]
    assert fp32_ancestor(artifacts["fp32"]) is None             # its parent is a torch model, not here


# ------------------------------------------------------------------------------------------------ the command


def test_validate_localize_writes_the_reports(artifacts, tmp_path, cli):
    out = tmp_path / "where"
    code, stdout, stderr = cli("validate", "-r", artifacts["fp32"], "-c", artifacts["dynamic"], "--synthetic", 16,
                               "--seq", SEQ, "--localize-out", out, "--json")
    assert code == 0, stderr
    loc = json.loads(stdout)["localization"]
    assert loc["entry"]["node"] == "/rnn/LSTM" and loc["entry"]["time_step"] == 0
    assert "drift enters at /rnn/LSTM" in stderr
    assert {p.name for p in out.iterdir()} == {"localize.md", "localize.html", "localize.json", "localize_graph.png",
                                               "localize_time.png"}
    md = (out / "localize.md").read_text()
    assert "◀ enters" in md and "Along time" in md
    assert json.loads((out / "localize.json").read_text())["verdict"] == loc["verdict"]
    code, _, stderr = cli("validate", "-r", artifacts["fp32"], "-c", artifacts["dynamic"], "--synthetic", 16,
                          "--localize", "--mark", "nosuch")
    assert code == 2 and "--mark 'nosuch' matches no tensor" in stderr and "validating" not in stderr  # before running


def test_validate_localize_with_a_torch_reference_uses_the_fp32_onnx(artifacts, tmp_path, cli):
    """With `-r model.pt` the FP32 ONNX the candidate was made from (beside it, by its manifest) is used."""
    import shutil

    d = tmp_path / "pair"
    d.mkdir()
    for key in ("fp32", "static"):
        for suffix in ("", ".json"):
            shutil.copyfile(str(artifacts[key]) + suffix, str(d / artifacts[key].name) + suffix)
    pt = d / "model.pt"
    pt.write_bytes(b"x")
    from edgelstm.cli.localize_options import localization_reference

    assert localization_reference(pt, d / artifacts["static"].name) == d / artifacts["fp32"].name
    with pytest.raises(BadInput, match="no FP32 ONNX"):
        localization_reference(pt, d / artifacts["fp32"].name)
