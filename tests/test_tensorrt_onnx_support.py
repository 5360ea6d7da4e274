"""ONNX that only TensorRT refuses (issue 21.4): converters/tensorrt/onnx_support.py checks it before a build, in one
line naming the node, and the stand-in's parser refuses it by the same table (onnx-tensorrt's operator support
document). Every rule has a model that breaks it here, and the models edgelstm and the trt tests build pass."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

try:
    import fakes as fake  # noqa: F401
    import trt_models
    from fakes.fixtures import calls, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import trt_models  # type: ignore[no-redef]
    from tests.fakes.fixtures import calls, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.converters.tensorrt.onnx_support import DOC, refusals
from edgelstm.errors import BadInput

H, IN = 4, 3


def _model(nodes, inits=(), *, inputs=None, outputs=None, opset=17, extra_opsets=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", IN])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])


def _rnn(op="LSTM", directions=1, extra_inputs=(), **attrs):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(directions, gates * H, IN)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(size=(directions, gates * H, H)).astype(np.float32), "R")]
    node = helper.make_node(op, ["x", "W", "R", *extra_inputs], ["y"], name=f"/rnn/{op}", hidden_size=H,
                            direction="bidirectional" if directions == 2 else "forward", **attrs)
    return [node], inits


def _loop(*, trip_count=True, cond_computed=False):
    """A Loop over `x` with one state and one scan output; its condition passed through, or computed."""
    body_nodes = [helper.make_node("Add", ["s_in", "s_in"], ["s_out"], name="add"),
                  helper.make_node("Identity", ["s_out"], ["scan"], name="scan_id")]
    if cond_computed:
        body_nodes.append(helper.make_node("Less", ["s_out", "limit"], ["cond_out"], name="less"))
    else:
        body_nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"], name="cond_id"))
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.array([100.0], np.float32), "limit")])
    inits = [numpy_helper.from_array(np.array(5, np.int64), "M"), numpy_helper.from_array(np.array(True), "c0"),
             numpy_helper.from_array(np.array([1.0], np.float32), "s0")]
    loop = helper.make_node("Loop", ["M" if trip_count else "", "c0", "s0"], ["s_final", "y"], name="/loop", body=body)
    return _model([loop], inits)


def _qdq(zero_point=None, zp_type=np.int8, scale=0.1, data_type=TensorProto.FLOAT):
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s")]
    ins = ["x", "s"]
    if zero_point is not None:
        inits.append(numpy_helper.from_array(np.array(zero_point, zp_type), "zp"))
        ins.append("zp")
    nodes = [helper.make_node("QuantizeLinear", ins, ["q"], name="/q"),
             helper.make_node("DequantizeLinear", ["q", *ins[1:]], ["y"], name="/dq")]
    return _model(nodes, inits, inputs=[helper.make_tensor_value_info("x", data_type, ["batch", IN])])


BROKEN = {
    "lstm_layout_1": (lambda: _model(*_rnn(layout=1)), "/rnn/LSTM", "layout=1"),
    "lstm_input_forget": (lambda: _model(*_rnn(input_forget=1)), "/rnn/LSTM", "input_forget=1"),
    "bilstm_other_activations": (
        lambda: _model(*_rnn(directions=2, activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"])),
        "/rnn/LSTM", "other activations"),
    "bigru_other_activations": (lambda: _model(*_rnn("GRU", 2, activations=["Sigmoid", "Tanh", "HardSigmoid",
                                                                            "Tanh"])), "/rnn/GRU", "other activations"),
    "gru_layout_1": (lambda: _model(*_rnn("GRU", layout=1)), "/rnn/GRU", "layout=1"),
    "rnn_layout_1": (lambda: _model(*_rnn("RNN", layout=1)), "/rnn/RNN", "layout=1"),
    "lstm_int64_sequence_lens": (
        lambda: _model(*_rnn(extra_inputs=("", "lens")),
                       inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", IN]),
                               helper.make_tensor_value_info("lens", TensorProto.INT64, ["batch"])]),
        "/rnn/LSTM", "sequence_lens 'lens' is INT64"),
    "loop_computed_condition": (lambda: _loop(cond_computed=True), "/loop", "computes its condition"),
    "loop_without_trip_count": (lambda: _loop(trip_count=False), "/loop", "no trip count"),
    "qdq_asymmetric": (lambda: _qdq(zero_point=3), "/q", "is not zero"),
    "qdq_uint8": (lambda: _qdq(zero_point=128, zp_type=np.uint8), "/q", "UINT8"),
    "qdq_negative_scale": (lambda: _qdq(scale=-0.1), "/q", "must all be positive"),
    "unsupported_op": (lambda: _model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"],
                                                        name="/dql")]), "/dql", "not supported"),
    "onnxruntime_contrib_op": (
        lambda: _model([helper.make_node("DynamicQuantizeLSTM", ["x"], ["y"], name="/dq_lstm", domain="com.microsoft")],
                       extra_opsets=[helper.make_opsetid("com.microsoft", 1)]),
        "/dq_lstm", "onnxruntime's dynamic INT8"),
    "int64_matmul": (
        lambda: _model([helper.make_node("MatMul", ["x", "x"], ["y"], name="/mm")],
                       inputs=[helper.make_tensor_value_info("x", TensorProto.INT64, [IN, IN])]),
        "/mm", "MatMul takes FLOAT, FLOAT16, BFLOAT16, input 'x' is INT64"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_rule_names_the_node(case):
    make, node, reason = BROKEN[case]
    found = refusals(make(), "10.3.0")
    assert found and found[0].node == node and reason in found[0].reason, found
    assert "onnx-tensorrt" in found[0].reason                     # every refusal names its source
    assert DOC.startswith("onnx-tensorrt docs/operators.md")


@pytest.mark.parametrize("case", ["lstm_layout_1", "qdq_asymmetric", "loop_computed_condition", "int64_matmul"])
def test_build_refuses_before_building_in_one_line(trt, tmp_path, case):
    make, node, reason = BROKEN[case]
    mod = trt("10.3.0.26")
    src = tmp_path / f"{case}.onnx"
    src.write_bytes(make().SerializeToString())
    with pytest.raises(BadInput) as err:
        build_engine(src, tmp_path / "m.plan", BuildOptions())
    msg = str(err.value)
    assert msg.startswith(f"TensorRT 10.3.0.26 cannot build {case}.onnx: node {node!r}") and reason in msg
    assert "\n" not in msg
    assert calls(mod, "Builder") == [] and calls(mod, "OnnxParser.parse") == []   # refused before TensorRT ran
    assert not (tmp_path / "m.plan").exists()


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_stand_in_parser_refuses_by_the_same_table(trt, case):
    make, node, reason = BROKEN[case]
    mod = trt("11.4.0.106")
    network = mod.Builder(mod.Logger()).create_network(0)
    parser = mod.OnnxParser(network, mod.Logger())
    assert not parser.parse(make().SerializeToString())
    errors = [parser.get_error(i) for i in range(parser.num_errors)]
    assert any(e.node_name() == node and reason in e.desc() for e in errors), [str(e) for e in errors]


def test_strongly_typed_fp16_lstm_needs_10_14():
    fp16 = _model(*_rnn(), inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["seq", "batch", IN])])
    assert refusals(fp16, "10.13.3.9", strongly_typed=True)[0].reason.startswith("a strongly typed FP16 LSTM")
    assert not refusals(fp16, "10.13.3.9", strongly_typed=False)
    assert not refusals(fp16, "10.14.1.48", strongly_typed=True)
    assert not refusals(fp16, "11.0.0.9", strongly_typed=True)


def test_what_edgelstm_and_the_trt_tests_build_passes(tmp_path):
    for name in trt_models.MODELS:
        assert refusals(trt_models.build(name), "10.3.0") == [], name
    assert refusals(_loop(), "10.3.0") == []                                  # a for-loop: condition passed through
    assert refusals(_qdq(zero_point=0), "10.3.0") == []                       # symmetric int8 Q/DQ
    assert refusals(_model(*_rnn(directions=2)), "10.3.0") == []              # default activations both ways
    gru = _model(*_rnn("GRU", 2, activations=["Sigmoid", "Tanh", "Sigmoid", "Tanh"], linear_before_reset=1))
    assert refusals(gru, "10.3.0") == []
