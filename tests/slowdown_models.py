"""A pull request's versions of a model for the same-run comparison's tests and benchmarks/same_run_compare.py:
a latency regression injected without changing the outputs (`slow_down_onnx`), an accuracy regression
(`scaled_head`), and the set of them made from the tiny test LSTM (`pr_versions`).

`slow_down_onnx(src, dst, extra)` duplicates the model's first LSTM node (same weights, same input) `extra`
times over: extra = 1.0 runs the recurrence twice (about 2x the time of an LSTM-bound model), 0.2 runs a
duplicate over the first 20% of the time steps (Slice on the sequence axis, sized from the input's shape at
run time, so it holds at every sequence length), 1.5 one full copy and one over half the steps; `chain` = k
adds k Tanh nodes in a row on the output (about 1 us each in onnxruntime: slowdowns of a few percent). Each
duplicate's final hidden state (and the chain's end) is summed, multiplied by 0 and added to the first graph output: the work
cannot be removed as dead code (onnxruntime's no-op elimination drops Add(x, 0) / Mul(x, 1), not
Mul(x, 0)); each copy has its own copy of the weights, since onnxruntime merges identical nodes
(common subexpression elimination); and the outputs stay bit-identical (y + 0.0 == y for every finite y)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def slow_down_onnx(src: str | Path, dst: str | Path, extra: float = 1.0, *, chain: int = 0) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    if extra < 0 or chain < 0 or not (extra > 0 or chain > 0):
        raise ValueError("give extra > 0 and/or chain > 0")
    model = onnx.load(str(src))
    graph = model.graph
    lstm = next((n for n in graph.node if n.op_type == "LSTM"), None)
    if lstm is None and extra > 0:
        raise ValueError(f"{src} has no LSTM node to duplicate")
    parts = [1.0] * int(math.floor(extra)) + ([extra - math.floor(extra)] if extra % 1 > 1e-9 else [])
    out = graph.output[0].name
    producer = next(n for n in graph.node if out in n.output)
    pre = out + "__before_slowdown"
    producer.output[list(producer.output).index(out)] = pre
    zero = numpy_helper.from_array(np.zeros((), dtype=np.float32), "slowdown_zero")
    graph.initializer.append(zero)
    nodes, keep = [], []
    for i, frac in enumerate(parts):
        x = lstm.input[0]
        if frac < 1.0:  # the first ceil(frac * seq) steps of the (seq-first) LSTM input
            num, den = round(frac * 1000), 1000
            consts = {f"sd{i}_num": num, f"sd{i}_den": den, f"sd{i}_zero": 0, f"sd{i}_one": 1, f"sd{i}_axis": 0}
            for name, v in consts.items():
                graph.initializer.append(numpy_helper.from_array(np.array([v], dtype=np.int64), name))
            nodes += [helper.make_node("Shape", [x], [f"sd{i}_shape"], start=0, end=1),
                      helper.make_node("Mul", [f"sd{i}_shape", f"sd{i}_num"], [f"sd{i}_scaled"]),
                      helper.make_node("Div", [f"sd{i}_scaled", f"sd{i}_den"], [f"sd{i}_steps0"]),
                      helper.make_node("Max", [f"sd{i}_steps0", f"sd{i}_one"], [f"sd{i}_steps"]),
                      helper.make_node("Slice", [x, f"sd{i}_zero", f"sd{i}_steps", f"sd{i}_axis"], [f"sd{i}_x"])]
            x = f"sd{i}_x"
        weights = []  # its own copy of the weights: an identical node would be merged (common subexpression)
        for name in lstm.input[1:]:
            init = next((t for t in graph.initializer if t.name == name), None) if name else None
            if init is None:
                weights.append(name)
                continue
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = f"sd{i}_{name}"
            graph.initializer.append(copy)
            weights.append(copy.name)
        dup = helper.make_node("LSTM", [x, *weights], ["", f"sd{i}_h"], name=f"slowdown_lstm_{i}")
        dup.attribute.extend(lstm.attribute)
        nodes += [dup, helper.make_node("ReduceSum", [f"sd{i}_h"], [f"sd{i}_sum"], keepdims=0),
                  helper.make_node("Mul", [f"sd{i}_sum", "slowdown_zero"], [f"sd{i}_nothing"])]
        keep.append(f"sd{i}_nothing")
    if chain:  # a chain of Tanh nodes on the output (each ~1 us of dispatch): the fine-grained slowdown
        link = pre
        for j in range(chain):
            nodes.append(helper.make_node("Tanh", [link], [f"sd_chain{j}"]))
            link = f"sd_chain{j}"
        nodes += [helper.make_node("ReduceSum", [link], ["sd_chain_sum"], keepdims=0),
                  helper.make_node("Mul", ["sd_chain_sum", "slowdown_zero"], ["sd_chain_nothing"])]
        keep.append("sd_chain_nothing")
    total = pre
    for i, k in enumerate(keep):
        name = out if i == len(keep) - 1 else f"sd_acc{i}"
        nodes.append(helper.make_node("Add", [total, k], [name]))
        total = name
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    dst = Path(dst)
    onnx.save(model, str(dst))
    return dst


def scaled_head(src: str | Path, dst: str | Path, factor: float) -> Path:
    """NEW that lost accuracy: the linear head's weights (initializer `head.weight`) scaled by `factor`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    for i, t in enumerate(model.graph.initializer):
        if t.name == "head.weight":
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * factor, t.name))
    onnx.save(model, str(dst))
    return Path(dst)


def pr_versions(tiny_lstm, tmp_path: Path):
    """main/ (the tiny LSTM's files: m.pt the reference, m.onnx OLD) and pr/: same.onnx (OLD's bytes, another
    file), doubled.onnx (a duplicated LSTM: 2x the time, same outputs), worse.onnx (head scaled by 1.05)."""
    import shutil
    from types import SimpleNamespace

    main = tiny_lstm.copy_to(tmp_path / "main")
    pr = tmp_path / "pr"
    pr.mkdir()
    shutil.copy2(main / "m.onnx", pr / "same.onnx")
    return SimpleNamespace(ref=main / "m.pt", old=main / "m.onnx", same=pr / "same.onnx",
                           doubled=slow_down_onnx(main / "m.onnx", pr / "doubled.onnx", 1.0),
                           worse=scaled_head(main / "m.onnx", pr / "worse.onnx", 1.05))
