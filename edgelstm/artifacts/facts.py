"""Facts about an ONNX model, read in one walk over every graph (Loop/If/Scan bodies included): op types and
domains, recurrent layers, Q/DQ and integer ops, the precision, fixed batch/seq dims, external data files.

The one place that defines which ops are recurrent, quantized or onnxruntime-only, and how a file's precision
is guessed when it has no manifest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edgelstm.artifacts.onnx_graph import FLOAT, FLOAT16, QUANTIZED_OPS, walk
from edgelstm.options import Precision

#: ONNX recurrent ops (what TensorRT's parser runs as loops; what static Q/DQ leaves float)
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
#: the quantized recurrent op onnxruntime's dynamic INT8 makes of an LSTM
QUANTIZED_RECURRENT_OPS = frozenset({"DynamicQuantizeLSTM"})
#: ops that carry a time loop without being a recurrent op
LOOP_OPS = frozenset({"Loop", "Scan"})
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
#: integer kernels only onnxruntime runs (TensorRT builds INT8 from Q/DQ, not from these)
ORT_ONLY_OPS = frozenset({"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv",
                          "DynamicQuantizeLSTM", "DynamicQuantizeMatMul"})
_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


@dataclass(frozen=True)
class OnnxFacts:
    ops: Counter
    domains: frozenset[str]
    precision: Precision                          # fp32 | fp16 | int8 (a str: compares and prints as one)
    recurrent_layers: tuple[dict[str, Any], ...]  # LSTM/GRU/RNN (and DynamicQuantizeLSTM) with their attributes
    parameters: int
    fixed: dict[str, int | None] = field(default_factory=dict)  # fixed batch / seq of the first data input
    external: tuple[str, ...] = ()                # external data files the model references
    float16_inputs: bool = False
    stateful: bool = False

    @property
    def has_qdq(self) -> bool:
        return bool(QDQ_OPS <= set(self.ops))

    @property
    def recurrent(self) -> bool:
        """A recurrent op or a loop (what TensorRT runs as an ILoop)."""
        return bool(set(self.ops) & (RECURRENT_OPS | QUANTIZED_RECURRENT_OPS | LOOP_OPS))

    @property
    def ort_only(self) -> bool:
        return bool(set(self.ops) & ORT_ONLY_OPS) or "com.microsoft" in self.domains

    @property
    def loops(self) -> int:
        return int(self.ops.get("Loop", 0))


def guess_precision(ops, initializer_types: set[int], input_types: set[int] = frozenset()) -> Precision:
    """The precision of a model without a manifest: int8 when it has quantized ops, fp16 when its weights or
    inputs are float16 and no weight is float32, else fp32."""
    if set(ops) & QUANTIZED_OPS:
        return Precision.int8
    fp16_weights = FLOAT16 in initializer_types and (FLOAT not in initializer_types or "Cast" in set(ops))
    if fp16_weights or FLOAT16 in input_types:
        return Precision.fp16
    return Precision.fp32


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _recurrent_layer(node) -> dict[str, Any]:
    attrs = _attrs(node)
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    return {"name": node.name, "op": node.op_type, "hidden_size": attrs.get("hidden_size"),
            "direction": direction, "directions": _DIRECTIONS.get(direction, 1),
            "layout": attrs.get("layout", 0),
            "linear_before_reset": attrs.get("linear_before_reset") if node.op_type == "GRU" else None}


def onnx_facts(model) -> OnnxFacts:
    """Every fact above from one walk over ``model`` (an onnx.ModelProto, external data not needed)."""
    import numpy as np

    from edgelstm.artifacts.iospec import STATE_INPUTS

    ops: Counter = Counter()
    domains: set[str] = set()
    recurrent = []
    init_types: set[int] = set()
    params = 0
    external: set[str] = set()
    for _, graph, node in walk(model.graph):
        ops[node.op_type] += 1
        if node.domain and node.domain != "ai.onnx":
            domains.add(node.domain)
        if node.op_type in RECURRENT_OPS | QUANTIZED_RECURRENT_OPS:
            recurrent.append(_recurrent_layer(node))
    graphs = [model.graph] + [g for _, g, _ in walk(model.graph) if g is not model.graph]
    seen: set[int] = set()
    for g in graphs:
        if id(g) in seen:
            continue
        seen.add(id(g))
        for t in g.initializer:
            init_types.add(t.data_type)
            params += int(np.prod(t.dims)) if len(t.dims) else 1
            if t.data_location == 1:  # TensorProto.EXTERNAL
                external.update(e.value for e in t.external_data if e.key == "location")
    inits = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    in_types = {v.type.tensor_type.elem_type for v in inputs}
    fixed: dict[str, int | None] = {"batch": None, "seq": None}
    x = next((v for v in inputs if v.name not in STATE_INPUTS), None)
    if x is not None:
        dims = x.type.tensor_type.shape.dim
        for axis, key in ((0, "batch"), (1, "seq")):
            if len(dims) > axis and dims[axis].HasField("dim_value") and dims[axis].dim_value > 0:
                fixed[key] = int(dims[axis].dim_value)
    return OnnxFacts(ops, frozenset(domains), guess_precision(ops, init_types, in_types), tuple(recurrent), params,
                     fixed, tuple(sorted(external)), FLOAT16 in in_types,
                     any(v.name in STATE_INPUTS for v in inputs))


__all__ = ["OnnxFacts", "onnx_facts", "guess_precision", "RECURRENT_OPS", "QUANTIZED_RECURRENT_OPS", "LOOP_OPS",
           "QDQ_OPS", "ORT_ONLY_OPS"]
