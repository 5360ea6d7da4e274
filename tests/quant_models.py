"""Tiny models for the quantization tests, exported once per test process (cached in a temp dir):
zoo models through the verified exporter, a scripted cell (ONNX Loop) and hand-built ONNX graphs."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from conftest import TINY  # the suite's one table of tiny zoo configs

_DIR = Path(tempfile.mkdtemp(prefix="edgelstm-qtest-"))
atexit.register(shutil.rmtree, _DIR, True)



@functools.lru_cache(maxsize=None)
def _exported(name: str) -> Path:
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    out = _DIR / f"{name}.onnx"
    export_onnx(zoo.build(name, TINY[name], seed=0), out, ExportOptions(seq_len=6))
    return out


def exported(name: str, dst: Path) -> Path:
    """A fresh copy (with its manifest) of the tiny exported zoo model `name` in `dst`."""
    src = _exported(name)
    out = Path(dst) / src.name
    shutil.copyfile(src, out)
    shutil.copyfile(src.with_name(src.name + ".json"), out.with_name(out.name + ".json"))
    return out


def features(name: str) -> int:
    from edgelstm.models import zoo

    return int(TINY[name].get("input_size", zoo.zoo_entry(name).input_size))


def x_for(name: str, n: int = 4, seq: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, seq, features(name))).astype(np.float32)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def run(path: Path, feeds: dict, level: str | None = None) -> list[np.ndarray]:
    """Run in onnxruntime at ``level``; by default at the level the file's manifest records (the level that
    will run it: a Q/DQ file for an x86 CPU without VNNI records "basic"), else "extended"."""
    import onnxruntime as ort

    from edgelstm.artifacts.manifest import read_manifest

    if level is None:
        man = read_manifest(path) if Path(str(path) + ".json").exists() else None
        level = (man.details.get("ort_opt_level") if man is not None else None) or "extended"
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[level]
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return [np.asarray(o, np.float32) for o in sess.run(None, feeds)]


@functools.lru_cache(maxsize=None)
def _loop_model() -> Path:
    """A hand-written LSTM cell scripted with torch.jit.script: the time loop becomes an ONNX Loop."""
    cell = torch.jit.script(_ScriptedCell())
    out = _DIR / "loop.onnx"
    torch.onnx.export(cell, (torch.randn(2, 5, 1),), str(out), dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch"}})
    return out


def loop_model(dst: Path) -> Path:
    out = Path(dst) / "loop.onnx"
    shutil.copyfile(_loop_model(), out)
    return out


class _ScriptedCell(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(1 + 8, 32)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], 8)
        c = torch.zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            g = self.lin(torch.cat([x[:, t], h], 1))
            f, i, o, gg = g.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.head(h)


def save(model, dst: Path, name: str) -> Path:
    import onnx

    out = Path(dst) / name
    onnx.save(model, str(out))
    return out


def lstm_with_sequence_lens(hidden: int = 4, features: int = 3, seed: int = 0):
    """An ONNX LSTM whose sequence_lens (int32) is a graph input: X [seq, batch, F], seq_lens [batch]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, features)) * 0.5).astype(np.float32), "W")
    r = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, hidden)) * 0.5).astype(np.float32), "R")
    b = numpy_helper.from_array((rng.standard_normal((1, 8 * hidden)) * 0.1).astype(np.float32), "B")
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "seq_lens"], ["Y", "Y_h"], hidden_size=hidden, name="lstm")
    graph = helper.make_graph(
        [node], "seq_lens_lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", "batch", features]),
         helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["seq", 1, "batch", hidden]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "batch", hidden])],
        [w, r, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def loop_with_body_op(op: str = "Tanh"):
    """y = Loop over M steps of h <- op(h * w) with w a float initializer in the main graph (read from the
    body through outer scope): a body that reads an outer-scope weight."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([0.9, -0.7, 0.5], np.float32), "w")
    body = helper.make_graph(
        [helper.make_node("Mul", ["h_in", "w"], ["hw"], name="body_mul"),
         helper.make_node(op, ["hw"], ["h_out"], name="body_act"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [3])])
    nodes = [
        helper.make_node("Constant", [], ["M"], value=numpy_helper.from_array(np.array(4, np.int64)), name="m"),
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True)), name="c"),
        helper.make_node("Loop", ["M", "cond", "x"], ["y"], body=body, name="loop"),
    ]
    graph = helper.make_graph(nodes, "loop_graph", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
