"""The op-by-op account of an INT8 quantization: for every node of the prepared model, what it became (int8
kernel, Q/DQ, float) and why the rest stayed float."""

from __future__ import annotations

from typing import Any, Mapping

from edgelstm.converters.quantize.quant_report import NA, OpRow
from edgelstm.artifacts.facts import RECURRENT_OPS
from edgelstm.artifacts.onnx_graph import CONTROL_FLOW_OPS, FLOAT, walk
from edgelstm.options import QuantMode

#: op types a static (Q/DQ) quantization covers by default: the layers with weights (TensorRT's recipe)
STATIC_DEFAULT_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
INTEGER_OPS = frozenset({"DynamicQuantizeLSTM", "MatMulInteger", "ConvInteger", "QAttention", "DynamicQuantizeMatMul",
                         "MatMulIntegerToFloat", "QLinearMatMul", "QLinearConv", "QGemm"})
DYNAMIC_QUANTIZABLE = frozenset({"LSTM", "MatMul", "Gemm", "Conv", "Attention", "Gather", "Transpose",
                                 "EmbedLayerNormalization"})
#: ops that only move or reshape data: nothing to quantize, they carry whatever precision flows in
DATA_MOVEMENT_OPS = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Concat", "Split",
                               "Flatten", "Expand", "Identity", "ConstantOfShape", "Constant", "Tile", "Pad"})


def report_rows(q, qmodel, keep: Mapping[str, str]) -> list[OpRow]:
    """One row per node of the prepared model: what it became (int8 or float) and why."""
    o = q.options
    q_by_scope: dict[str, dict[str, Any]] = {}
    dq_outputs: set[str] = set()
    for scope, _, n in walk(qmodel.graph):
        q_by_scope.setdefault(scope, {})[n.name] = n
        if n.op_type == "DequantizeLinear":
            dq_outputs.update(n.output)
    ops = set(q._op_types() or (DYNAMIC_QUANTIZABLE if o.mode == QuantMode.dynamic else STATIC_DEFAULT_OPS))
    rows = []
    for scope, _, node in walk(q.pre.graph):
        rows.append(_row(q, scope, node, q_by_scope.get(scope, {}), dq_outputs, ops, keep))
    return rows

def _row(q, scope: str, node, q_nodes: Mapping[str, Any], dq_outputs: set[str], ops: set[str],
         keep: Mapping[str, str]) -> OpRow:
    o = q.options
    op, name = node.op_type, node.name
    is_cf = op in CONTROL_FLOW_OPS
    has_float = is_cf or any(q.types.get(t) == FLOAT for t in (*node.input, *node.output) if t)
    row = lambda prec, why, became=op: OpRow(name, op, prec, why, scope, became)  # noqa: E731
    if not has_float or op in ("Shape", "Size"):
        return row(NA, "no float math")
    if name in getattr(q, "layer_kept", {}):
        return row("fp32", q.layer_kept[name])
    if name in q.excluded:
        return row("fp32", "excluded by --exclude")
    if name in keep:
        return row("fp32", keep[name])
    if o.mode == QuantMode.dynamic:
        became = [q_nodes[k].op_type for k in (f"{name}_quant", f"{name}_MatMul_quant")
                  if k in q_nodes and q_nodes[k].op_type in INTEGER_OPS]
        if became:
            if op == "LSTM":
                why = "int8 weights; activations quantized per call"
            elif op == "Gemm":
                why = "rewritten to MatMul + Add; int8 weights, activations quantized per call"
            else:
                why = "int8 weights; activations quantized per call"
            return row("int8", why, became[0])
        if op in ("GRU", "RNN"):
            return row("fp32", f"onnxruntime has no int8 {op} kernel (no DynamicQuantize{op})")
        if is_cf:
            if scope == "main" and not o.subgraphs:
                return row("fp32", "control flow: body stays float (subgraph quantization off)")
            return row("fp32", "control flow: body quantized where it has weights (see its rows)")
        if scope != "main" and not o.subgraphs:
            return row("fp32", "inside a Loop/If body: stays float (subgraph quantization off)")
        if op == "MatMul" and not any(i in q.initializers for i in node.input[1:2]):
            return row("fp32", "both inputs are activations: dynamic INT8 quantizes constant weights only")
        if op in ("LSTM", "MatMul", "Gemm", "Conv"):
            return row("fp32", "onnxruntime left it float (unsupported attributes or input types)")
        if op in DATA_MOVEMENT_OPS:
            return row("fp32", "moves float data, no arithmetic to quantize")
        return row("fp32", f"no dynamic integer kernel for {op}; runs in float")
    # static Q/DQ
    if op in RECURRENT_OPS:
        return row("fp32", f"no Q/DQ {op} in onnxruntime's quantizer (TensorRT runs recurrent layers in "
                           "FP32/FP16 only)")
    if is_cf:
        return row("fp32", "static Q/DQ does not quantize Loop/If bodies: the body stays float")
    if scope != "main":
        return row("fp32", "inside a Loop/If body: static Q/DQ does not quantize subgraphs")
    qn = q_nodes.get(name)
    if op in ops and qn is not None and any(i in dq_outputs for i in qn.input):
        return row("int8", "int8 inputs and weights through Q/DQ (fused by TensorRT / onnxruntime)", f"Q/DQ {op}")
    if op in ops:
        return row("fp32", "onnxruntime left it float (no calibration range or unsupported inputs)")
    if op in DATA_MOVEMENT_OPS:
        return row("fp32", "moves float data, no arithmetic to quantize")
    return row("fp32", f"static Q/DQ quantizes {'/'.join(sorted(ops))} only; runs in float")
