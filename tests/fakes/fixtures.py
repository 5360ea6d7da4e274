"""Pytest fixtures and helpers shared by the TensorRT contract tests (import them into a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from . import MAGIC, install


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny ONNX models (built with onnx.helper, no torch: tests/trt_models.py): a stateless LSTM regressor
    (x [batch, seq, 1] -> y [batch, 1], hidden 8) and its stateful variant (h0/c0 in, hn/cn out)."""
    try:
        import trt_models
    except ImportError:  # tests/ is a package in some layouts
        from tests import trt_models  # type: ignore[no-redef]

    d = tmp_path_factory.mktemp("onnx")
    trt_models.write("lstm", d / "lstm.onnx", input_size=1)
    trt_models.write("lstm_stateful", d / "lstm_stateful.onnx", input_size=1)
    return {"lstm": d / "lstm.onnx", "stateful": d / "lstm_stateful.onnx", "dir": d}


@pytest.fixture
def trt(monkeypatch):
    """Install the stand-in: `trt()` -> TensorRT 10.14 on a compute-8.9 GPU; pass version=... to change."""
    def _install(version="10.14.1.48", **kw):
        return install(monkeypatch, version, **kw)
    return _install


def calls(mod, name):
    return mod.recorder.find(name)


def calib_data(n=24, seq=6, seed=0):
    from edgelstm.data import BatchSource

    x = np.random.default_rng(seed).normal(size=(n, seq, 1)).astype(np.float32)
    return BatchSource({"x": x}, {"x": 0}, n, 8)


def plan_of(path: Path) -> dict:
    """What the stand-in builder wrote into a plan (flags, layers, I/O)."""
    data = Path(path).read_bytes()
    assert data.startswith(MAGIC)
    return json.loads(data[len(MAGIC):])


def onnx_model(path: Path, *, x_type: int, y_type: int | None = None, nodes=("Relu",)) -> Path:
    """x [batch, seq, 2] -> nodes -> y [batch, seq, 2], with the given ONNX element types."""
    import onnx
    from onnx import helper

    y_type = x_type if y_type is None else y_type
    x = helper.make_tensor_value_info("x", x_type, ["batch", "seq", 2])
    y = helper.make_tensor_value_info("y", y_type, ["batch", "seq", 2])
    names = ["x"] + [f"t{i}" for i in range(len(nodes) - 1)] + ["y"]
    graph_nodes = []
    for i, op in enumerate(nodes):
        attrs = {"to": y_type} if op == "Cast" else {}
        graph_nodes.append(helper.make_node(op, [names[i]], [names[i + 1]], name=f"{op.lower()}_{i}", **attrs))
    model = helper.make_model(helper.make_graph(graph_nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 21)])
    path.write_bytes(model.SerializeToString())
    return path


def multi_input_model(path: Path) -> Path:
    """x float32 [batch, seq, 2], tokens int64 [batch, seq], lengths int64 [batch] (in that order, which is not the
    sorted order) -> y = Relu(x), plus the two integer inputs cast to float: a model with integer inputs."""
    import onnx
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 2]),
           helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"]),
           helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 2]),
            helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", "seq"]),
            helper.make_tensor_value_info("n", TensorProto.FLOAT, ["batch"])]
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu"),
             helper.make_node("Cast", ["tokens"], ["t"], name="cast_tokens", to=TensorProto.FLOAT),
             helper.make_node("Cast", ["lengths"], ["n"], name="cast_lengths", to=TensorProto.FLOAT)]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs), opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def multi_input_data(n=16, seq=6, seed=0, batch=8):
    """Calibration data for multi_input_model: float features, int64 token ids and int64 lengths."""
    from edgelstm.data import BatchSource

    rng = np.random.default_rng(seed)
    arrays = {"x": rng.normal(size=(n, seq, 2)).astype(np.float32),
              "tokens": rng.integers(0, 1000, size=(n, seq)).astype(np.int64),
              "lengths": rng.integers(1, seq + 1, size=(n,)).astype(np.int64)}
    return arrays, BatchSource(arrays, {k: 0 for k in arrays}, n, batch)
