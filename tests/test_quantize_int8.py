"""INT8: dynamic (DynamicQuantizeLSTM, MatMulInteger), static Q/DQ with calibration, exclusions, the
op-by-op report and why each node stayed float, manifests, bad input and the CLI."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import pytest

import quant_models as qm
from edgelstm.data import as_calibration_source, dataset_from_arrays
from edgelstm.artifacts.onnx_graph import walk
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.errors import BadInput
from edgelstm.fileio import sha256_file
from edgelstm.artifacts.iospec import iospec_from_onnx
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import CalibMethod, QuantMode


def _ops(path) -> Counter:
    return Counter(n.op_type for _, _, n in walk(onnx.load(str(path)).graph))


def _calib(src, n=32, seq=6, seed=3, batch=8):
    io = iospec_from_onnx(onnx.load(str(src)))
    f = io.inputs[0].shape[-1]
    x = np.random.default_rng(seed).standard_normal((n, seq, f)).astype(np.float32)
    return as_calibration_source(dataset_from_arrays({"x": x}, io), batch, spec=io)


def _rows(res):
    return {r.node: r for r in res.report}


def test_dynamic_lstm_becomes_dynamic_quantize_lstm(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "dyn.onnx"
    res = quantize_int8(src, out)
    ops = _ops(out)
    assert ops["DynamicQuantizeLSTM"] == 1 and "LSTM" not in ops
    assert ops["MatMulInteger"] == 1  # the Gemm head, rewritten to MatMul + Add
    by_op = {r.op: r for r in res.report}
    assert by_op["LSTM"].precision == "int8" and by_op["LSTM"].became == "DynamicQuantizeLSTM"
    assert by_op["Gemm"].precision == "int8" and by_op["Gemm"].became == "MatMulInteger"
    assert by_op["Transpose"].precision == "fp32" and "no arithmetic" in by_op["Transpose"].reason
    assert "Shape" not in by_op  # the exporter drops the zero initial-state chain (Shape→…→ConstantOfShape)
    x = qm.x_for("lstm_regressor", n=8, seq=10)
    assert qm.rel_l2(qm.run(out, {"x": x})[0], qm.run(src, {"x": x})[0]) < 0.05
    man = read_manifest(out)
    assert man.precision == "int8" and man.parent_sha256 == sha256_file(src)
    q = man.details["quantization"]
    assert q["mode"] == "dynamic" and q["method"] is None and q["excluded"] == []
    assert q["counts"]["int8"] == 2 and q["size_bytes"] == out.stat().st_size
    assert q["times_smaller"] == pytest.approx(src.stat().st_size / out.stat().st_size, rel=1e-3)
    assert man.io.input_names == ["x"]


def test_dynamic_gru_stays_float_and_says_why(tmp_path):
    src = qm.exported("gru", tmp_path)
    res = quantize_int8(src, tmp_path / "gru.int8.onnx")
    grus = [r for r in res.report if r.op == "GRU"]
    assert len(grus) == 2
    assert all(r.precision == "fp32" and "no int8 GRU kernel" in r.reason for r in grus)
    assert _ops(tmp_path / "gru.int8.onnx")["GRU"] == 2
    assert [r.op for r in res.report if r.precision == "int8"] == ["Gemm"]


def test_dynamic_bilstm_quantizes_lstm_and_attention_matmuls(tmp_path):
    src = qm.exported("bilstm_attention", tmp_path)
    res = quantize_int8(src, tmp_path / "bi.int8.onnx")
    int8 = Counter(r.op for r in res.report if r.precision == "int8")
    assert int8["LSTM"] == 1 and int8["MatMul"] == 2 and int8["Gemm"] == 1
    assert all(r.precision == "fp32" for r in res.report if r.op in ("Softmax", "Tanh"))


@pytest.mark.parametrize("exclude", [("LSTM",), ("/head/Gemm",), ("/rnn/*",), ("lstm,gemm",)])
def test_exclude_by_op_type_node_name_glob_and_comma_list(tmp_path, exclude):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "ex.onnx"
    res = quantize_int8(src, out, Int8Options(exclude=exclude))
    by_op = {r.op: r for r in res.report}
    ops = _ops(out)
    lstm_kept = exclude != ("/head/Gemm",)
    gemm_kept = exclude in (("/head/Gemm",), ("lstm,gemm",))
    assert (by_op["LSTM"].reason == "excluded by --exclude") == lstm_kept
    assert (ops["DynamicQuantizeLSTM"] == 0) == lstm_kept
    assert (by_op["Gemm"].precision == "fp32") == gemm_kept
    assert (ops["MatMulInteger"] == 0) == gemm_kept  # a Gemm is excluded under its rewritten name too
    assert read_manifest(out).details["quantization"]["excluded"]


def test_unknown_exclude_is_bad_input(tmp_path):
    src = qm.exported("lstm_regressor", tmp_path)
    with pytest.raises(BadInput, match="NoSuch"):
        quantize_int8(src, tmp_path / "x.onnx", Int8Options(exclude=("LSTM", "NoSuch")))
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("method", [CalibMethod.minmax, CalibMethod.entropy, CalibMethod.percentile])
def test_static_qdq_calibrated(tmp_path, method):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / f"static_{method.value}.onnx"
    res = quantize_int8(src, out, Int8Options(mode=QuantMode.static, calib_method=method), _calib(src))
    ops = _ops(out)
    assert ops["QuantizeLinear"] >= 1 and ops["DequantizeLinear"] >= 2 and ops["LSTM"] == 1
    by_op = {r.op: r for r in res.report}
    assert by_op["LSTM"].precision == "fp32" and "no Q/DQ LSTM" in by_op["LSTM"].reason
    assert by_op["Gemm"].precision == "int8" and by_op["Gemm"].became == "Q/DQ Gemm"
    # zero points are 0 (symmetric int8, what TensorRT needs)
    m = onnx.load(str(out))
    zps = [i for i in m.graph.initializer if i.name.endswith("zero_point")]
    assert zps and all(not onnx.numpy_helper.to_array(z).any() for z in zps)
    assert all(onnx.numpy_helper.to_array(z).dtype == np.int8 for z in zps if "bias" not in z.name)
    # the model output itself is not quantized (output quantization off by default)
    y_producer = {o: n for n in m.graph.node for o in n.output}["y"]
    assert y_producer.op_type != "DequantizeLinear"
    q = read_manifest(out).details["quantization"]
    assert q["mode"] == "static" and q["method"] == method.value and q["format"] == "QDQ"
    assert q["calibration"]["samples"] == 32 and q["calibration"]["batches"] == 4
    x = qm.x_for("lstm_regressor", n=8, seq=6)
    assert qm.rel_l2(qm.run(out, {"x": x})[0], qm.run(src, {"x": x})[0]) < 0.05


def test_static_with_onnxruntime_calibrators_agrees_with_ours_on_minmax(tmp_path):
    src = qm.exported("bilstm_attention", tmp_path)
    calib = _calib(src)
    a = tmp_path / "ours.onnx"
    b = tmp_path / "ort.onnx"
    quantize_int8(src, a, Int8Options(mode=QuantMode.static), calib)
    quantize_int8(src, b, Int8Options(mode=QuantMode.static, range_source="onnxruntime"), calib)

    def scales(path):
        m = onnx.load(str(path))
        return {i.name: float(onnx.numpy_helper.to_array(i).ravel()[0]) for i in m.graph.initializer
                if i.name.endswith("_scale") and onnx.numpy_helper.to_array(i).size == 1}

    sa, sb = scales(a), scales(b)
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        assert sa[k] == pytest.approx(sb[k], rel=1e-5), k


def test_loop_body_dynamic_quantized_or_left_float(tmp_path):
    src = qm.loop_model(tmp_path)
    res = quantize_int8(src, tmp_path / "loop.int8.onnx")
    body = [r for r in res.report if r.graph != "main"]
    assert any(r.op == "Gemm" and r.precision == "int8" for r in body)
    res2 = quantize_int8(src, tmp_path / "loop.nosub.onnx", Int8Options(subgraphs=False))
    body2 = [r for r in res2.report if r.graph != "main" and r.op == "Gemm"]
    assert body2 and all(r.precision == "fp32" and "subgraph quantization off" in r.reason for r in body2)
    loop_row = next(r for r in res2.report if r.op == "Loop")
    assert "body stays float" in loop_row.reason
    res3 = quantize_int8(src, tmp_path / "loop.static.onnx", Int8Options(mode=QuantMode.static), _calib(src))
    assert all(r.precision != "int8" for r in res3.report if r.graph != "main")
    assert "does not quantize" in next(r.reason for r in res3.report if r.op == "Loop")
    # every variant is measured at the level its manifest records, and each is checked on its own
    x = np.random.default_rng(2).standard_normal((3, 9, 1)).astype(np.float32)
    ref = qm.run(src, {"x": x})[0]
    drift = {p: qm.rel_l2(qm.run(tmp_path / p, {"x": x})[0], ref)
             for p in ("loop.int8.onnx", "loop.nosub.onnx", "loop.static.onnx")}
    assert all(d < 0.05 for d in drift.values()), drift


def _bad_calib(kind: str, src):
    io = iospec_from_onnx(onnx.load(str(src)))
    rng = np.random.default_rng(0)
    if kind == "too_small":
        return as_calibration_source(dataset_from_arrays({"x": rng.standard_normal((8, 6, 1)).astype(np.float32)}, io), 4)
    if kind == "nan":
        x = rng.standard_normal((32, 6, 1)).astype(np.float32)
        x[3, 2, 0] = np.nan
        return [{"x": x[i:i + 8]} for i in range(0, 32, 8)]
    if kind == "wrong_shape":
        return [{"x": rng.standard_normal((8, 6, 3)).astype(np.float32)} for _ in range(4)]
    if kind == "empty":
        return []
    if kind == "one_shot":
        return ({"x": rng.standard_normal((8, 6, 1)).astype(np.float32)} for _ in range(4))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["none", "too_small", "nan", "wrong_shape", "empty", "one_shot"])
def test_static_bad_calibration_is_bad_input(tmp_path, kind):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "s.onnx"
    calib = None if kind == "none" else _bad_calib(kind, src)
    with pytest.raises(BadInput) as exc:
        quantize_int8(src, out, Int8Options(mode=QuantMode.static), calib)
    msg = str(exc.value)
    assert "\n" not in msg
    assert {"none": "--calib", "too_small": "8 sample", "nan": "NaN", "wrong_shape": "'x'", "empty": "empty",
            "one_shot": "re-iterable"}[kind] in msg
    assert not out.exists()


def test_calibration_data_nan_via_loader_is_bad_input(tmp_path):
    from edgelstm.data import load_dataset

    src = qm.exported("lstm_regressor", tmp_path)
    x = np.ones((20, 6, 1), np.float32)
    x[0, 0, 0] = np.nan
    np.savez(tmp_path / "c.npz", x=x)
    with pytest.raises(BadInput, match="NaN"):
        load_dataset(tmp_path / "c.npz", iospec_from_onnx(onnx.load(str(src))))


@pytest.mark.parametrize("case", ["quantized_input", "corrupt", "same_path"])
def test_int8_bad_model_input(tmp_path, case):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "o.onnx"
    if case == "quantized_input":
        quantize_int8(src, tmp_path / "q.onnx")
        src = tmp_path / "q.onnx"
    elif case == "corrupt":
        src = tmp_path / "c.onnx"
        src.write_text("garbage")
    elif case == "same_path":
        out = src
    with pytest.raises(BadInput):
        quantize_int8(src, out)
    if case != "same_path":
        assert not out.exists()


# --------------------------------------------------------------------------------------------- CLI


def test_cli_int8_dynamic_and_static(tmp_path, cli):
    src = qm.exported("lstm_regressor", tmp_path)
    out = tmp_path / "d.onnx"
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "-o", out, "--json")
    assert code == 0, stderr
    p = json.loads(stdout)
    assert p["precision"] == "int8" and p["quantization"]["mode"] == "dynamic" and p["counts"]["int8"] == 2
    assert "DynamicQuantizeLSTM" in stderr
    x = np.random.default_rng(0).standard_normal((24, 6, 1)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    out2 = tmp_path / "s.onnx"
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "--mode", "static", "--calib", tmp_path / "calib.npz",
                               "--calib-method", "percentile", "--exclude", "LSTM", "-o", out2, "--json")
    assert code == 0, stderr
    q = json.loads(stdout)["quantization"]
    assert q["method"] == "percentile" and q["calibration"]["samples"] == 24 and q["excluded"] == ["/rnn/LSTM"]


@pytest.mark.parametrize("args,needle", [
    (["--mode", "static"], "--calib"),
    (["--exclude", "Nope"], "Nope"),
    (["--max-drift", "rel_l2=0.01"], "--data"),
    (["--data", "DATA", "--max-drift", "cosine=0.9"], "unknown metric"),
    (["--data", "DATA"], "--max-drift"),
    (["--calib", "DATA"], "--mode static"),
    (["--mode", "static", "--calib", "SMALL"], "at least 16"),
    (["--mode", "static", "--calib", "NAN"], "NaN"),
    (["--mode", "static", "--calib", "SHAPE"], "'x'"),
    (["--mode", "static", "--calib", "EMPTY"], "empty"),
])
def test_cli_int8_bad_input_exit_2_one_line_nothing_written(tmp_path, cli, args, needle):
    src = qm.exported("lstm_regressor", tmp_path)
    rng = np.random.default_rng(0)
    files = {"DATA": ("d.npz", rng.standard_normal((20, 6, 1))), "SMALL": ("s.npz", rng.standard_normal((5, 6, 1))),
             "NAN": ("n.npz", np.full((20, 6, 1), np.nan)), "SHAPE": ("w.npz", rng.standard_normal((20, 6, 4))),
             "EMPTY": ("e.npz", np.zeros((0, 6, 1)))}
    resolved = []
    for a in args:
        if a in files:
            name, arr = files[a]
            np.savez(tmp_path / name, x=arr.astype(np.float32))
            a = str(tmp_path / name)
        resolved.append(a)
    out = tmp_path / "out.onnx"
    code, stdout, stderr = cli("quantize", src, "-p", "int8", "-o", out, *resolved)
    assert code == 2, stderr
    assert needle in stderr
    assert len([ln for ln in stderr.strip().splitlines() if ln.strip()]) <= 3  # one error (rich may wrap it)
    assert "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_cli_missing_or_corrupt_model(tmp_path, cli, case):
    src = tmp_path / "m.onnx"
    if case == "corrupt":
        src.write_bytes(b"\x00\x01garbage")
    code, _, stderr = cli("quantize", src, "-p", "int8", "-o", tmp_path / "o.onnx")
    assert code == 2 and ("does not exist" in stderr or "not a valid ONNX" in stderr)
    assert not (tmp_path / "o.onnx").exists()


def test_shape_ops_are_reported_as_having_no_float_math(tmp_path):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    src = export_onnx(zoo.build("lstm_regressor", {"hidden_size": 8}), tmp_path / "raw.onnx",
                      ExportOptions(simplify=False)).path  # unsimplified: keeps the Shape→ConstantOfShape chain
    res = quantize_int8(src, tmp_path / "raw.int8.onnx")
    by_op = {r.op: r for r in res.report}
    assert by_op["Shape"].precision == "n/a" and by_op["LSTM"].precision == "int8"
