"""The structural saturation counter (edgelstm.converters.quantize.int8_saturation): exact counts on hand-made ONNX graphs whose
int8 weights are chosen here. It reads files only: nothing depends on this machine's CPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgelstm.converters.quantize.int8_saturation import count_pairs, describe, saturating_pairs


def _model(nodes, inits, inputs, outputs, domain_ms: bool = False):
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if domain_ms else [])
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=[numpy_helper.from_array(a, n)
                                                                         for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=opsets)


def _matmul_integer(b: np.ndarray):
    k, n = b.shape
    zp_a = np.array(128, np.uint8)
    nodes = [helper.make_node("MatMulInteger", ["a", "B", "a_zp"], ["y"], name="mm")]
    m = _model(nodes, {"B": b, "a_zp": zp_a},
               [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, k])],
               [helper.make_tensor_value_info("y", TensorProto.INT32, [2, n])])
    onnx.checker.check_model(m)
    return m


def test_matmul_integer_counts_are_exact():
    # B is [K=5, N=3]; pairs are rows (0,1), (2,3) and row 4 with zero padding, per column: 3·3 = 9 pairs
    b = np.array([[127, 64, -100],
                  [2, 65, -29],      # col0 129 same sign: saturates; col1 129: saturates; col2 -129: saturates
                  [127, -127, 64],
                  [127, -127, 64],   # col0 254: saturates; col1 -254: saturates; col2 128: does NOT (255·128 fits)
                  [-128, 127, 127]],  # odd K: paired with padding, never saturates
                 np.int8)
    r = saturating_pairs(_matmul_integer(b))
    assert r["status"] == "ok"
    assert r["pairs"] == 9
    assert r["saturating"] == 5
    assert r["fraction"] == pytest.approx(5 / 9)
    assert r["s8_weights"] == 1 and r["u8_weights"] == 0
    w = r["weights"][0]
    assert (w["name"], w["op"], w["k_axis"], w["k"], w["dtype"]) == ("B", "MatMulInteger", 0, 5, "s8")
    assert w["max_same_sign_sum"] == 254
    assert describe(r) == "5 / 9 (55.56%)"


def test_opposite_signs_and_reduce_range_never_saturate():
    # opposite signs: |a·w_i + a·w_j| <= 255·128 however large |w_i| + |w_j| is
    b = np.array([[127, -128, 100], [-127, 127, -100]], np.int8)
    r = saturating_pairs(_matmul_integer(b))
    assert (r["pairs"], r["saturating"], r["abs_sum_over_limit"]) == (3, 0, 3)
    # 7-bit weights (reduce_range): |w| <= 64, the worst pair is 64 + 64 = 128
    rng = np.random.default_rng(0)
    b7 = rng.integers(-64, 65, size=(64, 16)).astype(np.int8)
    b7[0, 0] = b7[1, 0] = 64
    r7 = saturating_pairs(_matmul_integer(b7))
    assert (r7["pairs"], r7["saturating"]) == (32 * 16, 0)
    assert r7["weights"][0]["max_same_sign_sum"] == 128


def test_k_is_the_reduction_axis_not_n():
    # big same-sign values adjacent along N (a row) but not along K: nothing saturates
    b = np.array([[127, 127, 127, 127], [0, 0, 0, 0]], np.int8)
    assert saturating_pairs(_matmul_integer(b))["saturating"] == 0
    assert saturating_pairs(_matmul_integer(np.ascontiguousarray(b.T)))["saturating"] == 2  # K=4 now: 2 pairs


def test_u8_weights_are_not_applicable():
    b = np.full((4, 2), 255, np.uint8)
    r = saturating_pairs(_matmul_integer(b))
    assert r["status"] == "n/a (u8×u8)" and r["pairs"] == 0 and r["fraction"] is None
    assert describe(r) == "n/a (u8×u8)"


def test_dynamic_quantize_lstm_k_axis_is_1():
    # W [dirs=1, input=2, 4H=4]: K is the input axis; R [1, H=1, 4]: K=1 (one pair with padding per column)
    w = np.array([[[100, 100, -100, 1], [100, 28, -29, 1]]], np.int8)   # sums 200, 128, -129, 2 -> 2 saturate
    rr = np.array([[[127, 127, 127, 127]]], np.int8)
    inits = {"W": w, "R": rr, "ws": np.array([0.1], np.float32), "wz": np.array([0], np.int8),
             "rs": np.array([0.1], np.float32), "rz": np.array([0], np.int8)}
    node = helper.make_node("DynamicQuantizeLSTM", ["x", "W", "R", "", "", "", "", "", "ws", "wz", "rs", "rz"],
                            ["y"], name="lstm", domain="com.microsoft", hidden_size=1)
    m = _model([node], inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1, 2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], domain_ms=True)
    r = saturating_pairs(m)
    by_name = {x["name"]: x for x in r["weights"]}
    assert by_name["W"]["k_axis"] == 1 and by_name["W"]["pairs"] == 4 and by_name["W"]["saturating"] == 2
    assert by_name["R"]["pairs"] == 4 and by_name["R"]["saturating"] == 0
    assert (r["pairs"], r["saturating"]) == (8, 2)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_qdq_gemm_and_qgemm_follow_trans_b(trans_b):
    kn = np.array([[100, 0], [100, 0], [0, -120], [0, -120]], np.int8)  # [K=4, N=2]: 2 saturating pairs along K
    w = np.ascontiguousarray(kn.T) if trans_b else kn
    scale, zp = np.array(0.01, np.float32), np.array(0, np.int8)
    dq = helper.make_node("DequantizeLinear", ["w", "s", "z"], ["w_dq"], name="dq")
    gemm = helper.make_node("Gemm", ["x", "w_dq"], ["y"], name="gemm", transB=trans_b)
    m = _model([dq, gemm], {"w": w, "s": scale, "z": zp},
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    onnx.checker.check_model(m)
    r = saturating_pairs(m)
    assert r["weights"][0]["via"] == "DequantizeLinear"
    assert (r["pairs"], r["saturating"]) == (4, 2)
    # unfused Q/DQ (the graph onnxruntime runs at level basic) computes in float: no integer kernel reads it
    assert saturating_pairs(m, qdq=False)["status"] == "no int8 weights"
    qg = helper.make_node("QGemm", ["xq", "s", "z", "w", "s", "z", "", "s", "z"], ["y"], name="qg",
                          domain="com.microsoft", transB=trans_b)
    m2 = _model([qg], {"w": w, "s": scale, "z": zp}, [helper.make_tensor_value_info("xq", TensorProto.INT8, [1, 4])],
                [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 2])], domain_ms=True)
    assert (saturating_pairs(m2)["pairs"], saturating_pairs(m2)["saturating"]) == (4, 2)


def test_activations_and_float_weights_are_ignored_and_paths_load(tmp_path):
    m = _matmul_integer(np.array([[127], [127]], np.int8))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    r = saturating_pairs(path)
    assert [w["name"] for w in r["weights"]] == ["B"]  # the activation zero point is not a weight
    assert (r["pairs"], r["saturating"]) == (1, 1)
    plain = _model([helper.make_node("MatMul", ["x", "W"], ["y"])], {"W": np.ones((2, 2), np.float32)},
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    assert saturating_pairs(plain)["status"] == "no int8 weights"


def test_count_pairs_directly():
    assert count_pairs(np.array([[-65], [-64]], np.int8)) == {"pairs": 1, "saturating": 1, "abs_sum_over_limit": 1,
                                                              "max_same_sign_sum": 129}
