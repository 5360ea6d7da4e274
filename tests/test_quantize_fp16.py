"""FP16 conversion: float32 I/O with float16 weights/compute, Loop bodies converted, LSTM integer inputs
untouched, sorted and type-valid graphs, crash-safe probing, exclusions, manifests, bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import quant_models as qm
from edgelstm.artifacts.onnx_graph import is_sorted, subgraphs, topological_sort, walk
from edgelstm.converters.quantize.fp16 import Fp16Options, convert_model_to_fp16, quantize_fp16
from edgelstm.errors import BadInput
from edgelstm.fileio import sha256_file
from edgelstm.artifacts.manifest import read_manifest


def _float_initializers(model) -> dict[int, int]:
    out: dict[int, int] = {}
    for _, g, _ in walk(model.graph):
        for init in g.initializer:
            out[init.data_type] = out.get(init.data_type, 0) + 1
    for init in model.graph.initializer:
        out[init.data_type] = out.get(init.data_type, 0) + 1
    return out


@pytest.mark.parametrize("name", ["lstm_regressor", "gru", "hand_lstm"])
def test_fp16_keeps_float32_io_and_matches_fp32(tmp_path, name):
    src = qm.exported(name, tmp_path)
    out = tmp_path / f"{name}.fp16.onnx"
    res = quantize_fp16(src, out, Fp16Options())
    m = onnx.load(str(out))
    assert [i.type.tensor_type.elem_type for i in m.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in m.graph.output] == [TensorProto.FLOAT]
    assert TensorProto.FLOAT not in {i.data_type for i in m.graph.initializer}
    assert TensorProto.FLOAT16 in {i.data_type for i in m.graph.initializer}
    assert is_sorted(m.graph)
    onnx.checker.check_model(m, full_check=True)
    x = qm.x_for(name, n=3, seq=9)
    (y16,), (y32,) = qm.run(out, {"x": x}), qm.run(src, {"x": x})
    assert 0 < qm.rel_l2(y16, y32) < 5e-3
    rec = {r.op: r for r in res.report if r.op in ("LSTM", "GRU")}
    assert rec and all(r.precision == "fp16" for r in rec.values())
    assert res.size_bytes < res.parent_size_bytes
    man = read_manifest(out)
    assert man.precision == "fp16" and man.kind == "onnx"
    assert man.parent_sha256 == sha256_file(src)
    assert man.io.input_names == ["x"] and man.io.inputs[0].dtype == "float32"
    q = man.details["quantization"]
    assert q["precision"] == "fp16" and q["size_bytes"] == out.stat().st_size
    assert q["parent_size_bytes"] == src.stat().st_size and 0 < q["size_ratio"] < 1
    assert any(r["op"] in ("LSTM", "GRU") and r["precision"] == "fp16" for r in q["report"])
    assert man.details["ort_opt_level"] in ("all", "extended", "basic")


def test_fp16_io_option_makes_inputs_float16(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "io16.onnx"
    quantize_fp16(src, out, Fp16Options(keep_io_types=False))
    m = onnx.load(str(out))
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert read_manifest(out).io.inputs[0].dtype == "float16"
    (y,) = qm.run(out, {"x": qm.x_for("lstm_regressor").astype(np.float16)})
    assert y.shape == (4, 1) and np.isfinite(y).all()


def test_fp16_converts_loop_body(tmp_path):
    """A scripted cell (ONNX Loop): body initializers, constants and formal inputs become float16."""
    src = qm.loop_model(tmp_path)
    out = tmp_path / "loop.fp16.onnx"
    res = quantize_fp16(src, out)
    m = onnx.load(str(out))
    loops = [n for n in m.graph.node if n.op_type == "Loop"]
    assert loops
    body = subgraphs(loops[0])[0][1]
    carried = [i.type.tensor_type.elem_type for i in body.input[2:]]
    assert carried and all(t == TensorProto.FLOAT16 for t in carried)
    assert TensorProto.FLOAT not in _float_initializers(m)
    for _, _, node in walk(body):
        if node.op_type == "Constant":
            assert node.attribute[0].t.data_type != TensorProto.FLOAT
    assert is_sorted(m.graph)
    assert any(r.graph != "main" and r.precision == "fp16" for r in res.report)
    x = np.random.default_rng(1).standard_normal((2, 11, 1)).astype(np.float32)
    assert qm.rel_l2(qm.run(out, {"x": x})[0], qm.run(src, {"x": x})[0]) < 5e-3


def test_fp16_lstm_sequence_lens_stays_int32(tmp_path):
    src = qm.save(qm.lstm_with_sequence_lens(), tmp_path, "seqlens.onnx")
    out = tmp_path / "seqlens.fp16.onnx"
    res = quantize_fp16(src, out)
    m = onnx.load(str(out))
    ins = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
    assert ins == {"X": TensorProto.FLOAT, "seq_lens": TensorProto.INT32}
    lstm = next(n for n in m.graph.node if n.op_type == "LSTM")
    assert lstm.input[4] == "seq_lens"  # read directly, no cast
    assert "sequence_lens stays int32" in next(r.reason for r in res.report if r.op == "LSTM")
    feeds = {"X": np.random.default_rng(0).standard_normal((6, 3, 3)).astype(np.float32),
             "seq_lens": np.array([6, 2, 4], np.int32)}
    got, ref = qm.run(out, feeds), qm.run(src, feeds)
    assert qm.rel_l2(got[1], ref[1]) < 5e-3
    assert np.all(got[0][2:, 0, 1] == 0)  # past its length, sample 1 stays zero as in fp32


def test_fp16_blocked_node_inside_loop_body_gets_its_casts_in_the_body(tmp_path):
    src = qm.save(qm.loop_with_body_op("Tanh"), tmp_path, "lb.onnx")
    out = tmp_path / "lb.fp16.onnx"
    res = quantize_fp16(src, out, Fp16Options(exclude=("body_act",)))
    m = onnx.load(str(out))
    loop = next(n for n in m.graph.node if n.op_type == "Loop")
    body = subgraphs(loop)[0][1]
    body_ops = [n.op_type for n in body.node]
    assert body_ops.count("Cast") == 2  # to fp32 before the kept Tanh, back to fp16 after
    assert [n.op_type for n in m.graph.node].count("Cast") == 2  # only the graph input/output casts
    assert {r.node: r.precision for r in res.report}["body_act"] == "fp32"
    x = np.array([1.0, -0.5, 0.25], np.float32)
    assert qm.rel_l2(qm.run(out, {"x": x})[0], qm.run(src, {"x": x})[0]) < 5e-3


def test_fp16_exclude_op_type_keeps_weights_and_input_path_float32(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "ex.onnx"
    res = quantize_fp16(src, out, Fp16Options(exclude=("LSTM",)))
    rows = {r.op: r for r in res.report}
    assert rows["LSTM"].precision == "fp32" and rows["LSTM"].reason == "excluded by --exclude"
    assert rows["Gemm"].precision == "fp16"
    m = onnx.load(str(out))
    lstm = next(n for n in m.graph.node if n.op_type == "LSTM")
    inits = {i.name: i.data_type for i in m.graph.initializer}
    assert all(inits[w] == TensorProto.FLOAT for w in lstm.input[1:4] if w in inits)
    # x flows to the float32 LSTM through its Transpose without ever being rounded to float16
    producers = {o: n for n in m.graph.node for o in n.output}
    assert producers[lstm.input[0]].op_type == "Transpose"
    assert producers[lstm.input[0]].input[0] == "x"


def test_fp16_clips_weights_beyond_float16_range(tmp_path):
    w = numpy_helper.from_array(np.array([[1e6], [2.0]], np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], [w])
    src = qm.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path, "big.onnx")
    res = quantize_fp16(src, tmp_path / "big.fp16.onnx")
    assert res.details["fp16"]["values_clipped"] == 1
    (y,) = qm.run(tmp_path / "big.fp16.onnx", {"x": np.array([[1e-3, 1.0]], np.float32)})
    assert np.isfinite(y).all()


def test_convert_does_not_emit_unsorted_graphs_and_sort_handles_outer_scope():
    model = qm.loop_with_body_op()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))  # Loop before the constants it reads
    assert not is_sorted(model.graph)
    topological_sort(model.graph)
    assert is_sorted(model.graph)
    assert [n.name for n in model.graph.node][-1] == "loop"
    converted, rows, stats = convert_model_to_fp16(model)
    assert is_sorted(converted.graph) and stats.casts_inserted == 2


def test_fp16_crashing_session_at_all_falls_back_to_extended_and_runner_uses_it(tmp_path, monkeypatch):
    """A session that crashes at ORT_ENABLE_ALL (as one FP16 BiLSTM does) is probed in a child process;
    the manifest records the level that runs and OrtRunner opens the model at that level."""
    import edgelstm.artifacts.ort as ort_sessions
    import edgelstm.runners.onnxruntime_runner as ortr

    real = ort_sessions.probe_session
    calls = []

    def fake_probe(path, *, opt_level="all", timeout=120.0):
        calls.append(opt_level)
        if opt_level == "all":
            return False, "crashed with signal 11"
        return real(path, opt_level=opt_level, timeout=timeout)

    monkeypatch.setattr(ort_sessions, "probe_session", fake_probe)
    src = qm.exported("bilstm_attention", tmp_path)
    out = tmp_path / "bi.fp16.onnx"
    res = quantize_fp16(src, out)
    assert calls[:2] == ["all", "extended"]
    assert res.ort_opt_level == "extended"
    man = read_manifest(out)
    assert man.details["ort_opt_level"] == "extended"
    assert man.details["ort_probe"]["all"] == "crashed with signal 11"
    runner = ortr.OrtRunner(out)
    assert runner.opt_level == "extended"
    y = runner.run({"x": qm.x_for("bilstm_attention")})["y"]
    assert y.shape == (4, 2)
    assert ortr.OrtRunner(out, opt_level="basic").opt_level == "basic"


def test_fp16_no_level_runs_is_an_error_and_writes_nothing(tmp_path, monkeypatch):
    import edgelstm.artifacts.ort as ort_sessions
    from edgelstm.errors import InternalError

    src = qm.exported("lstm_regressor", tmp_path)
    # the FP16 result crashes every session; the FP32 input runs (else it is the input's fault: BadInput)
    monkeypatch.setattr(ort_sessions, "probe_session", lambda path, **kw: (path == src, "crashed with signal 11"))
    out = tmp_path / "never.onnx"
    with pytest.raises(InternalError, match="does not run in onnxruntime"):
        quantize_fp16(src, out)
    assert not out.exists() and not (tmp_path / "never.onnx.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".never")] == []


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "already_fp16", "unknown_exclude", "bad_suffix"])
def test_fp16_bad_input(tmp_path, case):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "out.onnx"
    opts = Fp16Options()
    if case == "missing":
        src = tmp_path / "nope.onnx"
    elif case == "corrupt":
        src = tmp_path / "bad.onnx"
        src.write_bytes(b"\x08\x07this is not protobuf at all" * 3)
    elif case == "empty":
        src = tmp_path / "empty.onnx"
        src.write_bytes(b"")
    elif case == "already_fp16":
        quantize_fp16(qm.exported("lstm_regressor", tmp_path), tmp_path / "h.onnx")
        src = tmp_path / "h.onnx"
    elif case == "unknown_exclude":
        opts = Fp16Options(exclude=("NoSuchNode",))
    elif case == "bad_suffix":
        out = tmp_path / "out.bin"
    with pytest.raises(BadInput) as exc:
        quantize_fp16(src, out, opts)
    assert "\n" not in str(exc.value)
    assert not out.exists()


def test_cli_quantize_fp16(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "cli.fp16.onnx"
    code, stdout, stderr = cli("quantize", src, "--precision", "fp16", "-o", out, "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert payload["precision"] == "fp16" and payload["path"] == str(out)
    assert payload["counts"]["fp16"] >= 2
    assert any(r["op"] == "LSTM" for r in payload["quantization"]["report"])
    assert "LSTM" in stderr  # the human table
    code, _, stderr = cli("quantize", src, "--precision", "fp16", "--calib", src, "-o", tmp_path / "x.onnx")
    assert code == 2 and "--precision int8" in stderr


def test_fp16_cannot_exclude_a_whole_loop(tmp_path):
    src = qm.save(qm.loop_with_body_op(), tmp_path, "lb.onnx")
    with pytest.raises(BadInput, match="exclude the nodes inside its body"):
        quantize_fp16(src, tmp_path / "o.onnx", Fp16Options(exclude=("Loop",)))
    assert not (tmp_path / "o.onnx").exists()
