"""ONNX files: mutated protobuf bytes and mutated model fields through every ONNX reader (load_onnx,
Artifact.open, io_spec_of, inspect_artifact) and on into synthetic data shaped by the file's I/O spec."""

from __future__ import annotations

import functools

from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import NASTY_NUMBERS, NASTY_STRINGS, mutated, only_ours, scratch, tiny_lstm_onnx


@functools.lru_cache(maxsize=None)
def seed() -> bytes:
    return tiny_lstm_onnx()


def _read_every_way(path):
    from edgelstm.artifacts.artifact import Artifact, io_spec_of
    from edgelstm.inspection import inspect_artifact
    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.data import synthetic_dataset

    only_ours(load_onnx, path)
    only_ours(Artifact.open, path, verify=False)
    only_ours(inspect_artifact, path)
    spec = only_ours(io_spec_of, path)
    if spec is not None and not isinstance(spec, Exception):
        only_ours(synthetic_dataset, spec, 2, seq=3)


@given(data=mutated(seed()))
def test_mutated_bytes(tmp_path_factory, data):
    path = scratch(tmp_path_factory) / "m.onnx"
    path.write_bytes(data)
    _read_every_way(path)


@given(st.data())
def test_mutated_fields(tmp_path_factory, data):
    import onnx

    model = onnx.load_from_string(seed())
    g = model.graph
    for _ in range(data.draw(st.integers(1, 4))):
        what = data.draw(st.sampled_from(["dim", "dim_param", "elem_type", "op", "domain", "ir", "opset", "attr",
                                          "drop_output", "drop_input", "init_dims", "node_input", "rank"]))
        if what in ("dim", "dim_param", "elem_type", "rank") and not len(g.input):
            continue
        if what in ("dim", "dim_param") and not len(g.input[0].type.tensor_type.shape.dim):
            continue
        if what == "dim":
            dims = g.input[0].type.tensor_type.shape.dim
            d = dims[data.draw(st.integers(0, len(dims) - 1))]
            d.dim_value = data.draw(st.sampled_from([n for n in NASTY_NUMBERS if isinstance(n, int)
                                                     and -(2 ** 63) <= n < 2 ** 63]))
        elif what == "dim_param":
            dims = g.input[0].type.tensor_type.shape.dim
            dims[data.draw(st.integers(0, len(dims) - 1))].dim_param = data.draw(st.sampled_from(NASTY_STRINGS))
        elif what == "elem_type":
            g.input[0].type.tensor_type.elem_type = data.draw(st.integers(0, 30))
        elif what == "op":
            g.node[data.draw(st.integers(0, len(g.node) - 1))].op_type = data.draw(
                st.sampled_from(["LSTM", "GRU", "Loop", "Foo", "", "QLinearMatMul", "DynamicQuantizeLSTM", "Cast"]))
        elif what == "domain":
            g.node[data.draw(st.integers(0, len(g.node) - 1))].domain = data.draw(
                st.sampled_from(["com.example", "com.microsoft", "ai.onnx.ml", "x" * 50]))
        elif what == "ir":
            model.ir_version = data.draw(st.integers(-5, 100))
        elif what == "opset":
            model.opset_import[0].version = data.draw(st.integers(-5, 10 ** 6))
        elif what == "attr":
            lstm = g.node[1]
            for a in lstm.attribute:
                if a.name == "hidden_size":
                    a.i = data.draw(st.sampled_from([0, -1, 2 ** 40, 3, 7]))
        elif what == "drop_output" and len(g.output):
            del g.output[0]
        elif what == "drop_input" and len(g.input):
            del g.input[0]
        elif what == "init_dims":
            init = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
            init.dims[0] = data.draw(st.sampled_from([0, -1, 2 ** 40, 1, 5]))
        elif what == "node_input":
            node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
            node.input.append(data.draw(st.sampled_from(["", "nope", "x", "W"])))
        elif what == "rank":
            shape = g.input[0].type.tensor_type.shape
            if data.draw(st.booleans()) and len(shape.dim):
                del shape.dim[-1]
            else:
                shape.dim.add().dim_value = data.draw(st.integers(-3, 2 ** 40))
    path = scratch(tmp_path_factory) / "m.onnx"
    path.write_bytes(model.SerializeToString())
    _read_every_way(path)


@given(st.binary(max_size=512))
def test_arbitrary_bytes(tmp_path_factory, data):
    path = scratch(tmp_path_factory) / "m.onnx"
    path.write_bytes(data)
    _read_every_way(path)
