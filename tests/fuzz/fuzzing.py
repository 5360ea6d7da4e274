"""Strategies and the one property shared by the fuzzers: a loader returns, or raises an ``EdgeLSTMError`` with
exit code 2 (bad input) or 3 (backend missing) and a one-line message; any other exception fails the test."""

from __future__ import annotations

import math
from typing import Any, Callable

from hypothesis import strategies as st

from edgelstm.errors import EdgeLSTMError


_SCRATCH: dict[str, Any] = {}


def scratch(tmp_path_factory, name: str = "fuzz"):
    """One directory per fuzzer, reused by every example (files are overwritten, not piled up)."""
    if name not in _SCRATCH:
        _SCRATCH[name] = tmp_path_factory.mktemp(name)
    return _SCRATCH[name]


def only_ours(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; an EdgeLSTMError is fine when it is bad input (or a missing backend) in one line."""
    try:
        return fn(*args, **kwargs)
    except EdgeLSTMError as exc:
        assert exc.exit_code in (2, 3), f"{type(exc).__name__} (exit {exc.exit_code}) for bad input: {exc}"
        assert "\n" not in str(exc), f"a message of more than one line: {str(exc)!r}"
        return exc


@st.composite
def mutated(draw, seed: bytes, max_ops: int = 8) -> bytes:
    """``seed`` with a few byte-level edits: flips, overwrites, insertions, deletions, truncation, splices."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup" and data:
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
        elif op == "zero" and data:
            end = min(len(data), pos + draw(st.integers(1, 32)))
            data[pos:end] = bytes(end - pos)
    return bytes(data)


NASTY_STRINGS = ["", " ", "-", "..", "../x", "/abs", "a/../../b", "$(touch X)", "`x`", "a\nb", "\x00", "é", "😀",
                 "x" * 300, "nan", "inf", "-1", "0", "1e400", "[default]", "{}", "y", "x", "batch", "seq"]
NASTY_NUMBERS = [0, -1, 1, 2, 7, -(2 ** 63), 2 ** 63 - 1, 2 ** 64, 2 ** 40, 10 ** 12, 0.5, -0.0, 1e-300, 1e300,
                 math.inf, -math.inf, math.nan]


def scalars() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), st.sampled_from(NASTY_NUMBERS), st.integers(),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NASTY_STRINGS),
                     st.text(max_size=20))


def json_values(max_leaves: int = 20) -> st.SearchStrategy:
    """Any JSON value (NaN and infinities included, as Python's json writes them)."""
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.sampled_from(NASTY_STRINGS), st.text(max_size=10)),
                                                    inner, max_size=5)), max_leaves=max_leaves)


@st.composite
def replaced_subtrees(draw, value: Any, max_edits: int = 4) -> Any:
    """``value`` (JSON-like) with a few of its subtrees replaced by arbitrary JSON or removed."""
    import copy

    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, max_edits))):
        paths = list(_paths(value))
        path = draw(st.sampled_from(paths))
        if not path:
            return draw(json_values())
        parent = value
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values(8))
    return value


def _paths(value: Any, prefix: tuple = ()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def tiny_lstm_onnx() -> bytes:
    """A hand-built ONNX model (no exporter needed): x[batch, seq, 2] -> LSTM(3) -> Y_h -> MatMul -> y[.., 1]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("W", (1, 12, 2)), ("R", (1, 12, 3)), ("B", (1, 24)), ("head", (3, 1)))]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes"))
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2], name="to_time_major"),
        helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y", "Y_h"], hidden_size=3, name="lstm"),
        helper.make_node("Squeeze", ["Y_h", "axes"], ["h"], name="squeeze"),
        helper.make_node("MatMul", ["h", "head"], ["y"], name="head"),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fuzz")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
