"""--layer-precisions for ONNX quantization: requests, the `recurrent` keyword (a Loop's body counts), FP32 layers
in INT8 and FP16 ONNX with the reason in the report, and what is refused."""

from __future__ import annotations

import onnx
import pytest

import quant_models as qm
from edgelstm.converters.quantize.fp16 import Fp16Options, quantize_fp16
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.converters.quantize.layer_precision import LayerPrecision, parse_layer_precisions, resolve_layer_precisions
from edgelstm.errors import BadInput


def test_requests_parse_and_bad_ones_are_refused():
    assert parse_layer_precisions("recurrent:fp32, /head/*:float16") == (LayerPrecision("recurrent", "fp32"),
                                                                         LayerPrecision("/head/*", "fp16"))
    assert parse_layer_precisions(["a:b:fp32"]) == (LayerPrecision("a:b", "fp32"),)   # names may hold ':'
    for bad in ("recurrent", "recurrent:int8", ":fp32"):
        with pytest.raises(BadInput, match="PATTERN:PRECISION"):
            parse_layer_precisions(bad)


def test_recurrent_means_the_rnn_ops_and_the_bodies_of_loops(tmp_path):
    lstm = onnx.load(str(qm.exported("lstm_regressor", tmp_path)))
    assert resolve_layer_precisions(lstm, ["recurrent:fp32", "Gemm:fp16"]) == {"/rnn/LSTM": "fp32",
                                                                               "/head/Gemm": "fp16"}
    assert resolve_layer_precisions(lstm, ["recurrent:fp32", "LSTM:fp16"]) == {"/rnn/LSTM": "fp16"}  # later wins
    loop = onnx.load(str(qm.loop_model(tmp_path)))
    got = resolve_layer_precisions(loop, ["recurrent:fp32"])
    body = {n.name for n in next(n for n in loop.graph.node if n.op_type == "Loop").attribute[0].g.node}
    assert set(got) == body and got
    with pytest.raises(BadInput, match="matches no node"):
        resolve_layer_precisions(lstm, ["/nothing/*:fp32"])
    with pytest.raises(BadInput, match="no recurrent node"):
        resolve_layer_precisions(_dense_only(), ["recurrent:fp32"])


def _dense_only():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    return helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g", [x],
                                               [y], [w]))


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_keeps_the_recurrence_fp32_and_says_why(tmp_path, mode):
    src = qm.exported("stacked_lstm", tmp_path)
    calib = None
    if mode == "static":
        from edgelstm.artifacts.iospec import iospec_from_onnx
        from edgelstm.data import dataset_from_arrays

        calib = dataset_from_arrays({"x": qm.x_for("stacked_lstm", n=16)},
                                    iospec_from_onnx(onnx.load(str(src)))).batches(8)
    res = quantize_int8(src, tmp_path / "o.onnx", Int8Options(mode=mode, layer_precisions=("recurrent:fp32",)),
                        calib=calib)
    rows = {r.node: r for r in res.report}
    lstms = [r for r in res.report if r.op == "LSTM"]
    assert len(lstms) == 2 and all(r.precision == "fp32" and r.reason == "kept fp32 by --layer-precisions"
                                   for r in lstms)
    assert rows["/head/Gemm"].precision == "int8"
    ops = {n.op_type for n in onnx.load(str(tmp_path / "o.onnx")).graph.node}
    assert "LSTM" in ops and "DynamicQuantizeLSTM" not in ops
    with pytest.raises(BadInput, match="FP16 layers in an INT8 ONNX"):
        quantize_int8(src, tmp_path / "p.onnx", Int8Options(layer_precisions=("recurrent:fp16",)))


def test_fp16_keeps_the_recurrence_fp32(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    res = quantize_fp16(src, tmp_path / "h.onnx", Fp16Options(layer_precisions=("recurrent:fp32",)))
    lstm = next(r for r in res.report if r.op == "LSTM")
    assert lstm.precision == "fp32" and lstm.reason == "kept fp32 by --layer-precisions"
    m = onnx.load(str(tmp_path / "h.onnx"))
    lstm_node = next(n for n in m.graph.node if n.op_type == "LSTM")
    inits = {i.name: i.data_type for i in m.graph.initializer}
    assert all(inits[i] == onnx.TensorProto.FLOAT for i in lstm_node.input if i in inits)
    x = qm.x_for("lstm_regressor", seq=9)
    assert qm.rel_l2(qm.run(tmp_path / "h.onnx", {"x": x})[0], qm.run(src, {"x": x})[0]) < 1e-2


def test_quantize_command_takes_layer_precisions(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "--layer-precisions", "recurrent:fp32", "-o",
                               tmp_path / "q.onnx", "--json")
    assert code == 0, stderr
    assert "kept fp32 by --layer-precisions" in stderr
    code, _, stderr = cli("quantize", src, "-p", "int8", "--layer-precisions", "nosuch:fp32", "-o", tmp_path / "r.onnx")
    assert code == 2 and "--layer-precisions 'nosuch' matches no node" in stderr
    assert not (tmp_path / "r.onnx").exists()
