"""How many int8 weight pairs of a quantized ONNX file can saturate onnxruntime's u8×s8 GEMM on x86 without VNNI.

The check reads the file only: it does not depend on the CPU it runs on.

Why pairs. onnxruntime's x86 int8 GEMM (MLAS) multiplies unsigned 8-bit activations ``a`` by signed 8-bit weights
``w``. Without VNNI (AVX2-only, AVX-512 without VNNI) it packs B in groups of four consecutive K values and uses
``VPMADDUBSW``, which adds the products of bytes 0+1 and 2+3 of each group into a *saturating* int16:
``a[k]·w[k] + a[k+1]·w[k+1]`` for even ``k`` along the reduction axis K. With ``0 <= a <= 255`` that sum can
leave [-32768, 32767] only when both weights have the same sign and ``|w[k]| + |w[k+1]| > 128``
(``255·129 = 32895``); pairs of opposite sign stay within ``255·128 = 32640``. 7-bit weights (``reduce_range``,
``|w| <= 64``) never saturate. With VNNI (``VPDPBUSD``), AMX or on arm64 the products accumulate in 32 bits: exact.
u8 weights run the u8×u8 kernel, which widens to 16 bits before multiplying: no saturation either.

Which tensor and which axis is K (from the ONNX operator schemas and onnxruntime's contrib op docs):

============================================  =======================  ===============================
op (domain)                                   weight input             K axis
============================================  =======================  ===============================
MatMulInteger                                 B (1), [..., K, N]       -2 (0 for a 1-D B)
DynamicQuantizeMatMul, MatMulIntegerToFloat   B (1), [K, N]            -2
DynamicQuantizeLSTM (com.microsoft)           W (1) [dirs, input, 4H]  1 (transposed vs ONNX LSTM:
                                              R (2) [dirs, H, 4H]      onnxruntime/quantization/operators/lstm.py)
QLinearMatMul                                 b (3), [..., K, N]       -2
QGemm (com.microsoft)                         B (3)                    0, or 1 when transB=1
QAttention (com.microsoft)                    weight (1) [in, 3H]      0
ConvInteger / QLinearConv                     w (1) / (3) [M, C, k..]  C·k... flattened (axes 1..)
DequantizeLinear → MatMul B / Gemm B / Conv W the int8 initializer     as for the float op (Gemm: transB)
============================================  =======================  ===============================

A Q/DQ (static) model keeps float MatMul/Gemm between DequantizeLinear nodes; onnxruntime fuses them into
``QGemm``/``QLinearMatMul`` at levels extended/all, so its weights are counted as that fused op would read them.
Whether a count matters at a given optimization level is the caller's call (unfused Q/DQ at level basic runs the
arithmetic in float).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: op type -> ((weight input index, K axis or "transB" or "flatten"), ...)
_INTEGER_WEIGHTS: dict[str, tuple[tuple[int, Any], ...]] = {
    "MatMulInteger": ((1, -2),),
    "DynamicQuantizeMatMul": ((1, -2),),
    "MatMulIntegerToFloat": ((1, -2),),
    "DynamicQuantizeLSTM": ((1, 1), (2, 1)),
    "QLinearMatMul": ((3, -2),),
    "QGemm": ((3, "transB"),),
    "QAttention": ((1, 0),),
    "ConvInteger": ((1, "flatten"),),
    "QLinearConv": ((3, "flatten"),),
}
#: float ops whose weight input a DequantizeLinear of an int8 initializer may feed (Q/DQ format)
_DQ_CONSUMERS: dict[str, tuple[tuple[int, Any], ...]] = {
    "MatMul": ((1, -2),),
    "Gemm": ((1, "transB"),),
    "Conv": ((1, "flatten"),),
}
#: the u8×s8 int16 pair-sum limit: a pair saturates when 255·(|w_i|+|w_j|) leaves the int16 range
PAIR_LIMIT = 128


def _attr(node, name: str, default: int = 0) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _as_k_major(w: np.ndarray, axis: Any, node) -> tuple[np.ndarray, int]:
    """The weight as a 2-D array [K, everything else] and the normalized K axis (-1 for flattened conv)."""
    if w.ndim == 0:
        return w.reshape(1, 1), 0
    if axis == "flatten":  # conv weights [M, C/g, k...]: K runs over C/g·k... in this order
        return w.reshape(w.shape[0], -1).T, -1
    if axis == "transB":
        axis = 1 if _attr(node, "transB") else 0
    if w.ndim == 1:
        axis = 0
    axis = axis % w.ndim
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1), axis


def count_pairs(w_k_major: np.ndarray) -> dict[str, int]:
    """Pairs (k, k+1), k even, along axis 0 of a [K, ...] int8 array: how many there are, how many can saturate
    (same sign, |w_k| + |w_k+1| > 128), how many have |w_k| + |w_k+1| > 128 whatever the signs, and the largest
    same-sign pair sum. An odd K leaves its last row paired with zero padding: it cannot saturate."""
    w = w_k_major.astype(np.int32)
    k = w.shape[0] - (w.shape[0] % 2)
    first, second = w[0:k:2], w[1:k:2]
    abs_sum = np.abs(first) + np.abs(second)
    same_sign = (first * second) > 0
    pairs = int(first.size) + (int(np.prod(w.shape[1:])) if w.shape[0] % 2 else 0)
    same = abs_sum[same_sign]
    return {"pairs": pairs, "saturating": int(np.count_nonzero(same > PAIR_LIMIT)),
            "abs_sum_over_limit": int(np.count_nonzero(abs_sum > PAIR_LIMIT)),
            "max_same_sign_sum": int(same.max()) if same.size else 0}


def _tensors(model) -> dict[str, Any]:
    """Every constant tensor by name: initializers and Constant outputs of every (sub)graph."""
    from onnx import numpy_helper

    from edgelstm.artifacts.onnx_graph import subgraphs

    out: dict[str, Any] = {}

    def visit(graph) -> None:
        for init in graph.initializer:
            out.setdefault(init.name, init)
        for node in graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value" and node.output:
                        out.setdefault(node.output[0], a.t)
            for _, g in subgraphs(node):
                visit(g)

    visit(model.graph)
    return {k: numpy_helper.to_array(v) for k, v in out.items()}


def saturating_pairs(model: Any, *, qdq: bool = True) -> dict[str, Any]:
    """Count the int8 weight pairs of a quantized model (``onnx.ModelProto`` or a path) that can saturate
    onnxruntime's u8×s8 kernel on x86 without VNNI. Pure: reads the model only.

    ``qdq=False`` counts only weights read by integer ops (not the int8 initializers behind DequantizeLinear →
    float MatMul/Gemm/Conv): use it on the graph onnxruntime actually runs at a level (a session's
    ``optimized_model_filepath``), where unfused Q/DQ computes in float.

    Returns ``{"status", "pairs", "saturating", "fraction", "abs_sum_over_limit", "s8_weights", "u8_weights",
    "weights": [{"name", "op", "node", "input", "dtype", "shape", "k_axis", "pairs", "saturating", ...}]}``.
    ``pairs``/``saturating`` count s8 weights only; ``fraction`` is ``saturating / pairs`` (None without s8
    weights). ``status``: ``"ok"`` (s8 weights counted), ``"n/a (u8×u8)"`` (only u8 weights: the u8×u8 kernel
    does not saturate) or ``"no int8 weights"``. A weight read by several nodes is counted once.
    """
    import onnx

    from edgelstm.artifacts.onnx_graph import walk

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(Path(model)))
    tensors = _tensors(model)
    dq_source: dict[str, str] = {}  # DequantizeLinear output -> its int8 initializer
    for _, _, node in walk(model.graph):
        if node.op_type == "DequantizeLinear" and node.input and node.input[0] in tensors \
                and tensors[node.input[0]].dtype in (np.int8, np.uint8):
            dq_source[node.output[0]] = node.input[0]
    weights: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, _, node in walk(model.graph):
        plan = _INTEGER_WEIGHTS.get(node.op_type) or (_DQ_CONSUMERS.get(node.op_type)
                                                      if qdq and node.domain in ("", "ai.onnx") else None)
        for index, axis in plan or ():
            if index >= len(node.input) or not node.input[index]:
                continue
            name = node.input[index]
            via = None
            if node.op_type in _DQ_CONSUMERS:
                if name not in dq_source:
                    continue
                via, name = "DequantizeLinear", dq_source[name]
            w = tensors.get(name)
            if w is None or w.dtype not in (np.int8, np.uint8) or name in seen:
                continue
            seen.add(name)
            k_major, k_axis = _as_k_major(w, axis, node)
            entry: dict[str, Any] = {"name": name, "op": node.op_type, "node": node.name, "input": index,
                                     "via": via, "dtype": "s8" if w.dtype == np.int8 else "u8",
                                     "shape": list(w.shape), "k_axis": "flattened 1.." if k_axis == -1 else k_axis,
                                     "k": int(k_major.shape[0]), "min": int(w.min()) if w.size else 0,
                                     "max": int(w.max()) if w.size else 0}
            if entry["dtype"] == "s8":
                entry.update(count_pairs(k_major))
            else:
                entry.update({"pairs": None, "saturating": None, "note": "n/a (u8×u8)"})
            weights.append(entry)
    s8 = [w for w in weights if w["dtype"] == "s8"]
    u8 = [w for w in weights if w["dtype"] == "u8"]
    pairs = sum(w["pairs"] for w in s8)
    sat = sum(w["saturating"] for w in s8)
    status = "ok" if s8 else ("n/a (u8×u8)" if u8 else "no int8 weights")
    return {"status": status, "pairs": pairs, "saturating": sat, "fraction": (sat / pairs) if pairs else None,
            "abs_sum_over_limit": sum(w["abs_sum_over_limit"] for w in s8), "s8_weights": len(s8),
            "u8_weights": len(u8), "weights": weights}


def describe(result: dict[str, Any]) -> str:
    """One short cell for a table: ``"123 / 4,567 (2.69%)"``, plus the u8 weights left out."""
    if result["status"] == "n/a (u8×u8)":
        return "n/a (u8×u8)"
    if result["status"] == "no int8 weights":
        return "none (no int8 weights)"
    text = f"{result['saturating']:,} / {result['pairs']:,} ({result['fraction']:.2%})"
    if result["u8_weights"]:
        text += f"; {result['u8_weights']} u8 weight{'s' if result['u8_weights'] > 1 else ''} n/a (u8×u8)"
    return text


__all__ = ["saturating_pairs", "count_pairs", "describe", "PAIR_LIMIT"]
