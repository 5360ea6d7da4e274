"""Tiny recurrent ONNX models built with onnx.helper (no torch), for the `trt` tests and the stand-in's tests.

Each model takes `x` [batch, seq, input] (batch first, like edgelstm's exports), runs ONNX LSTM/GRU ops (layout 0,
the only layout TensorRT's parser takes) with random weights, and ends in a Gemm head:

    lstm            x -> LSTM -> last hidden state -> Gemm -> y [batch, 1]
    stacked_lstm    x -> LSTM -> LSTM -> Gemm -> y
    gru             x -> GRU (linear_before_reset=1, as PyTorch's GRU) -> Gemm -> y
    bilstm          x -> bidirectional LSTM -> both final states -> Gemm -> y
    lstm_stateful   x, h0, c0 -> LSTM -> Gemm -> y, hn, cn (streams: hn/cn feed the next call's h0/c0)

Axes `batch` and `seq` are dynamic. Opset 17, as `edgelstm convert` writes. The same seed gives the same bytes,
so the models are as good as committed files without being binaries in the repository.

    python tests/trt_models.py OUT_DIR      # write them (a few KB each)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

OPSET = 17
INPUT_SIZE = 3
HIDDEN = 8
MODELS = ("lstm", "stacked_lstm", "gru", "bilstm", "lstm_stateful")


def _w(rng, *shape, scale=0.4):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _rnn(helper, numpy_helper, rng, op, x, prefix, input_size, hidden, *, directions=1, initial=(), outputs=None):
    """One ONNX LSTM/GRU node over x [seq, batch, input] with random weights: (nodes, initializers, outputs)."""
    gates = 4 if op == "LSTM" else 3
    inits = [numpy_helper.from_array(_w(rng, directions, gates * hidden, input_size), f"{prefix}_W"),
             numpy_helper.from_array(_w(rng, directions, gates * hidden, hidden), f"{prefix}_R"),
             numpy_helper.from_array(_w(rng, directions, 2 * gates * hidden, scale=0.1), f"{prefix}_B")]
    ins = [x, f"{prefix}_W", f"{prefix}_R", f"{prefix}_B"]
    if initial:
        ins += ["", *initial]               # no sequence_lens; initial_h (and initial_c)
    outs = outputs or [f"{prefix}_Y", f"{prefix}_Yh"] + ([f"{prefix}_Yc"] if op == "LSTM" else [])
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if directions == 2 else "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    return [helper.make_node(op, ins, outs, name=f"/{prefix}/{op}", **attrs)], inits, outs


def build(name: str, *, seed: int = 0, input_size: int = INPUT_SIZE, hidden: int = HIDDEN):
    """The ONNX ModelProto of model `name` (see MODELS)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; one of {MODELS}")
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0, 2], name="/to_seq_first")]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", input_size])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])]
    features = hidden
    if name == "lstm_stateful":
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", hidden]) for n in ("h0", "c0")]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", hidden]) for n in ("hn", "cn")]
        n, i, _ = _rnn(helper, numpy_helper, rng, "LSTM", "x_t", "rnn", input_size, hidden, initial=("h0", "c0"),
                       outputs=["rnn_Y", "hn", "cn"])
        nodes += n + [helper.make_node("Squeeze", ["hn", "axis0"], ["last"], name="/last")]
        inits += i
    elif name == "bilstm":
        n, i, outs = _rnn(helper, numpy_helper, rng, "LSTM", "x_t", "rnn", input_size, hidden, directions=2)
        inits += i + [numpy_helper.from_array(np.array([0, 2 * hidden], np.int64), "flat")]
        nodes += n + [helper.make_node("Transpose", [outs[1]], ["yh_b"], perm=[1, 0, 2], name="/batch_first"),
                      helper.make_node("Reshape", ["yh_b", "flat"], ["last"], name="/concat_directions")]
        features = 2 * hidden
    else:
        op = "GRU" if name == "gru" else "LSTM"
        n, i, outs = _rnn(helper, numpy_helper, rng, op, "x_t", "rnn", input_size, hidden)
        nodes += n
        inits += i
        if name == "stacked_lstm":
            nodes.append(helper.make_node("Squeeze", [outs[0], "axis1"], ["mid"], name="/layer1_out"))
            n, i, outs = _rnn(helper, numpy_helper, rng, "LSTM", "mid", "rnn2", hidden, hidden)
            nodes += n
            inits += i
        nodes.append(helper.make_node("Squeeze", [outs[1], "axis0"], ["last"], name="/last"))
    inits += [numpy_helper.from_array(_w(rng, features, 1), "head_W"),
              numpy_helper.from_array(_w(rng, 1, scale=0.1), "head_b")]
    nodes.append(helper.make_node("Gemm", ["last", "head_W", "head_b"], ["y"], name="/head/Gemm"))
    used = {i for node in nodes for i in node.input}
    graph = helper.make_graph(nodes, name, inputs, outputs, [t for t in inits if t.name in used])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests/trt_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write(name: str, path: str | Path, **kw) -> Path:
    path = Path(path)
    path.write_bytes(build(name, **kw).SerializeToString())
    return path


def write_all(directory: str | Path, **kw) -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {name: write(name, directory / f"{name}.onnx", **kw) for name in MODELS}


def inputs(name: str, batch: int, seq: int, *, seed: int = 0, input_size: int = INPUT_SIZE) -> dict[str, np.ndarray]:
    """Feeds for model `name` (x only: the stateful model's h0/c0 start as zeros in the runners)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((batch, seq, input_size)).astype(np.float32)}


if __name__ == "__main__":
    out = write_all(sys.argv[1] if len(sys.argv) > 1 else ".")
    for name, p in out.items():
        print(f"{p}  {p.stat().st_size} bytes")
