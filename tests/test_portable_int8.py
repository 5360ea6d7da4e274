"""The portable INT8 recipe (the default, ``--target-cpu auto``) computes the same integers in every onnxruntime
kernel this machine can pick, at every optimization level, with and without ``session.x64quantprecision``, and its
weights cannot saturate the AVX2 kernel (``VPMADDUBSW``) that a CPU without VNNI runs.

What can be checked where: the exact-integer results are compared here against numpy's int64 product, on whatever
CPU runs the suite (on an x86 CPU without VNNI the 8-bit saturating pattern really comes out wrong; elsewhere it
comes out exact, and the test says which); the AVX2 kernel is emulated in numpy (int16 saturating pair sums, as
MLAS's ``MultiplyAccumulateCellU8S8Avx2``/``...Avx512Core`` do) for the machines we do not have. The file's weights
are also read back: every pair stays within the limit the kernel needs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import quant_models as qm
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.artifacts.int8_metadata import KEY_LEVELS, KEY_TARGET, read_entries
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.artifacts.onnx_graph import walk
from edgelstm.machine.isa import detect_isa, saturates_u8s8

LEVELS = ("basic", "extended", "all")
K, N, M = 64, 16, 4


def emulate_u8s8_avx2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """u8 [M, K] × s8 [K, N] the way VPMADDUBSW + VPMADDWD compute it: each pair a[k]·b[k] + a[k+1]·b[k+1]
    (k even) saturates to int16 before the int32 accumulation."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    pad = a.shape[1] % 2
    if pad:
        a, b = np.pad(a, ((0, 0), (0, 1))), np.pad(b, ((0, 1), (0, 0)))
    prods = a[:, :, None] * b[None, :, :]                      # [M, K, N]
    pairs = prods[:, 0::2, :] + prods[:, 1::2, :]
    return np.clip(pairs, -32768, 32767).sum(axis=1)


def saturating_weights(seven_bit: bool) -> np.ndarray:
    """Weights whose every pair has one sign: 8-bit |w| up to 127 (pair sums up to 2·255·127 = 64770 > 32767),
    7-bit |w| up to 64 (at most 2·255·64 = 32640)."""
    rng = np.random.default_rng(3)
    top = 64 if seven_bit else 127
    mag = rng.integers(top // 2, top + 1, size=(K, N))
    sign = np.repeat(rng.choice([-1, 1], size=(K // 2, N)), 2, axis=0)
    return (sign * mag).astype(np.int8)


def matmul_integer_model(b: np.ndarray, path) -> None:
    a = helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", K])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, ["m", N])
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"], name="mm")
    graph = helper.make_graph([node], "mmi", [a], [y], [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def session(path, level: str, x64quantprecision: bool):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if x64quantprecision:
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def test_the_emulated_avx2_kernel_saturates_8_bit_pairs_and_not_7_bit():
    a = np.full((M, K), 255, np.uint8)
    for seven_bit in (False, True):
        b = saturating_weights(seven_bit)
        exact = a.astype(np.int64) @ b.astype(np.int64)
        assert np.array_equal(emulate_u8s8_avx2(a, b), exact) == seven_bit


@pytest.mark.parametrize("seven_bit", [True, False], ids=["7-bit", "8-bit"])
def test_matmul_integer_exact_in_every_kernel_here(tmp_path, seven_bit):
    """7-bit weights: every level × session.x64quantprecision gives numpy's exact int32 result, on any CPU. 8-bit
    weights hit the saturating pattern: exact where this CPU's u8×s8 kernel accumulates in 32 bits (VNNI, AMX,
    arm64), wrong without VNNI unless x64quantprecision switches to the u8×u8 kernel."""
    b = saturating_weights(seven_bit)
    path = tmp_path / "mmi.onnx"
    matmul_integer_model(b, path)
    a = np.random.default_rng(0).integers(200, 256, size=(M, K)).astype(np.uint8)
    a[0] = 255
    exact = a.astype(np.int64) @ b.astype(np.int64)
    results = {}
    for level in LEVELS:
        for precise in (False, True):
            (y,) = session(path, level, precise).run(None, {"a": a})
            results[(level, precise)] = y.astype(np.int64)
    if seven_bit or not saturates_u8s8(detect_isa()):
        for key, y in results.items():
            assert np.array_equal(y, exact), f"{key} on {detect_isa()}"
    else:  # an x86 CPU without VNNI: the default kernel saturates, the precise one does not
        assert not np.array_equal(results[("all", False)], exact)
        assert np.array_equal(results[("all", True)], exact)


def _integer_weights(path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for _, g, _ in walk(model.graph) for i in g.initializer}
    out = []
    for _, _, n in walk(model.graph):
        names = {"MatMulInteger": n.input[1:2], "DynamicQuantizeLSTM": n.input[1:3]}.get(n.op_type, [])
        out += [inits[w] for w in names if w in inits]
    return out


def test_portable_lstm_is_bit_identical_across_levels_and_kernels(tmp_path):
    """DynamicQuantizeLSTM + MatMulInteger of the default (portable) file: the same float outputs, bit for bit, at
    every level with and without x64quantprecision; its weights are 7-bit, and the emulated AVX2 kernel computes
    the exact product of them even with every activation at 255."""
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "m.int8.onnx"
    quantize_int8(src, out, Int8Options())
    weights = _integer_weights(out)
    assert {"DynamicQuantizeLSTM", "MatMulInteger"} <= {n.op_type for _, _, n in walk(onnx.load(str(out)).graph)}
    for w in weights:
        assert w.dtype == np.int8 and int(np.abs(w.astype(np.int32)).max()) <= 64
        w2 = w.reshape(-1, w.shape[-1]) if w.ndim == 3 else w  # DynamicQuantizeLSTM W/R: [dirs, K, 4H]
        a = np.full((2, w2.shape[0]), 255, np.uint8)
        assert np.array_equal(emulate_u8s8_avx2(a, w2), a.astype(np.int64) @ w2.astype(np.int64))
    x = qm.x_for("lstm_regressor", n=5, seq=23)
    outs = [session(out, level, precise).run(None, {"x": x})[0] for level in LEVELS for precise in (False, True)]
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])
    man = read_manifest(out)
    assert man.details["target_isa"] == "portable" and man.details["ort_opt_level"] == "all"
    meta = read_entries(out)
    assert meta[KEY_TARGET] == "portable" and meta[KEY_LEVELS] == "all,extended,basic"


def test_portable_static_qdq_fuses_without_saturating(tmp_path):
    """Static Q/DQ for the CPU: 7-bit weights, so the fused QGemm/QLinearMatMul at levels extended/all are exact on
    every class and the file allows every level; extended and all fuse alike (bit-identical), basic computes the
    same in float up to rounding."""
    import onnxruntime as ort

    from edgelstm.converters.quantize.int8_saturation import saturating_pairs
    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.data import as_calibration_source, dataset_from_arrays

    src = qm.exported("lstm_regressor", tmp_path)
    io = iospec_from_onnx(onnx.load(str(src)))
    xc = np.random.default_rng(1).standard_normal((32, 6, 1)).astype(np.float32)
    out = tmp_path / "s.onnx"
    res = quantize_int8(src, out, Int8Options(mode="static"), as_calibration_source(dataset_from_arrays({"x": xc}, io), 8,
                                                                                    spec=io))
    assert res.ort_opt_level == "all" and read_entries(out)[KEY_LEVELS].startswith("all")
    fused = tmp_path / "fused.onnx"
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(fused)
    ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    assert saturating_pairs(fused, qdq=False)["saturating"] == 0
    x = qm.x_for("lstm_regressor", n=5, seq=19)
    runs = {level: session(out, level, False).run(None, {"x": x})[0] for level in LEVELS}
    assert np.array_equal(runs["extended"], runs["all"])
    assert qm.rel_l2(runs["basic"], runs["all"]) < 1e-4


def test_8_bit_target_warns_what_a_plain_session_computes(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    code, _, stderr = cli("quantize", src, "-p", "int8", "--target-cpu", "x86-vnni", "-o", tmp_path / "v.onnx")
    assert code == 0, stderr
    assert "saturates them in any session" in " ".join(stderr.split())
    code, _, stderr = cli("quantize", src, "-p", "int8", "-o", tmp_path / "p.onnx")
    assert code == 0 and "saturates" not in stderr and "targets portable" not in stderr


def test_the_file_says_what_it_needs_without_its_manifest(tmp_path):
    """A static x86-avx2 file (8-bit Q/DQ, level basic only) copied without its manifest: edgelstm's runner still
    runs it at basic (from metadata_props); opened at level all on purpose, the runner says what that computes."""
    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.data import as_calibration_source, dataset_from_arrays
    from edgelstm.runners.base import open_runner

    src = qm.exported("lstm_regressor", tmp_path)
    io = iospec_from_onnx(onnx.load(str(src)))
    xc = np.random.default_rng(1).standard_normal((32, 6, 1)).astype(np.float32)
    out = tmp_path / "a.onnx"
    quantize_int8(src, out, Int8Options(mode="static", target="x86-avx2"),
                  as_calibration_source(dataset_from_arrays({"x": xc}, io), 8, spec=io))
    out.with_name(out.name + ".json").unlink()
    meta = read_entries(out)
    assert meta[KEY_TARGET] == "x86-avx2" and meta[KEY_LEVELS] == "basic" and "basic" in meta["edgelstm.int8.note"]
    runner = open_runner(out)
    assert runner.opt_level == "basic" and runner.warnings == []
    forced = open_runner(out, opt_level="all")
    (warning,) = forced.warnings
    assert "must run at onnxruntime level basic" in warning and "ORT_ENABLE_BASIC" in warning
