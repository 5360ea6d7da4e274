"""Per-layer precision requests: ``--layer-precisions "recurrent:fp32,/head/*:fp16"`` keeps chosen layers in a
higher precision than the rest of an INT8 or FP16 model (Polygraphy's ``--layer-precisions NAME:float32``, made to
name layers the way edgelstm's other options do).

A request is ``PATTERN:PRECISION``: PATTERN is a node name, a glob over node names (``/rnn/*``), an op type
(``LSTM``, ``MatMul``) or the keyword ``recurrent`` (every LSTM/GRU/RNN, DynamicQuantizeLSTM, Loop and Scan: the
recurrence); PRECISION is ``fp32`` or ``fp16``. A later request overrides an earlier one for the same node; a
pattern that matches nothing is bad input.

Where each is honoured:
- ONNX INT8 (edgelstm.converters.quantize.int8): the matched nodes stay FP32 (not quantized); fp16 inside an INT8 ONNX is refused
  (onnxruntime has no FP16 kernels on CPU; a TensorRT build takes it).
- ONNX FP16 (edgelstm.converters.quantize.fp16): fp32 nodes stay FP32 (Casts at their borders).
- TensorRT 10.x weakly typed builds (converters/tensorrt/layer_constraints.py): ``ILayer.precision`` and
  ``set_output_type`` on every layer made from the node, with BuilderFlag.OBEY_PRECISION_CONSTRAINTS.
- TensorRT strongly typed builds (11.x, or ``--strongly-typed``): precision comes from the ONNX types, so the
  FP16/Q-DQ ONNX the build makes on the way leaves those nodes float (an ONNX that is already FP16/Q-DQ cannot
  change: quantize it again with ``--layer-precisions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from edgelstm.errors import BadInput, opt

RECURRENT_KEYWORD = "recurrent"
RECURRENT_NODE_OPS = frozenset({"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM", "Loop", "Scan"})
PRECISIONS = {"fp32": "fp32", "float32": "fp32", "float": "fp32", "fp16": "fp16", "float16": "fp16", "half": "fp16"}


@dataclass(frozen=True)
class LayerPrecision:
    pattern: str
    precision: str   # fp32 | fp16

    def __str__(self) -> str:
        return f"{self.pattern}:{self.precision}"


def parse_layer_precisions(items: Iterable[Any] | str | None) -> tuple[LayerPrecision, ...]:
    """``"recurrent:fp32,/head/*:fp16"`` (or a list of such strings, or LayerPrecision objects)."""
    if items is None:
        return ()
    if isinstance(items, (str, LayerPrecision)):
        items = [items]
    out: list[LayerPrecision] = []
    for item in items:
        if isinstance(item, LayerPrecision):
            out.append(item)
            continue
        for part in (p.strip() for p in str(item).split(",")):
            if not part:
                continue
            pattern, sep, precision = part.rpartition(":")
            if not sep or not pattern.strip() or precision.strip().lower() not in PRECISIONS:
                raise BadInput(f"{opt('layer_precisions')} takes PATTERN:PRECISION (PRECISION fp32 or fp16, PATTERN a "
                               f"node name, glob, op type or 'recurrent'), got {part!r}")
            out.append(LayerPrecision(pattern.strip(), PRECISIONS[precision.strip().lower()]))
    return tuple(out)


def resolve_layer_precisions(model, requests: Iterable[Any]) -> dict[str, str]:
    """node name -> precision for every node (all graphs) a request matches; later requests win."""
    from edgelstm.artifacts.onnx_graph import resolve_patterns, walk

    out: dict[str, str] = {}
    for req in parse_layer_precisions(list(requests)):
        if req.pattern.lower() == RECURRENT_KEYWORD:
            nodes = [(scope, n) for scope, _, n in walk(model.graph)]
            loops = {n.name for _, n in nodes if n.op_type in ("Loop", "Scan")}
            # a Loop/Scan is the recurrence through its body: its body's nodes are the layers to keep
            hits = [n.name for scope, n in nodes if (n.op_type in RECURRENT_NODE_OPS and n.op_type not in ("Loop", "Scan"))
                    or any(scope.startswith(f"{loop}.") for loop in loops)]
            if not hits:
                raise BadInput(f"{opt('layer_precisions')} {req}: the model has no recurrent node (LSTM, GRU, RNN, Loop, "
                               "Scan)")
        else:
            hits = sorted(resolve_patterns(model, [req.pattern], what=opt("layer_precisions"))[0])
        for name in hits:
            out[name] = req.precision
    return out


def kept_fp32(model, requests: Iterable[Any], *, target: str) -> dict[str, str]:
    """For an ONNX quantizer: node name -> reason, for the nodes a request keeps in FP32. ``target`` (int8, fp16)
    says what the rest becomes; an fp16 request inside an INT8 ONNX is refused."""
    resolved = resolve_layer_precisions(model, requests)
    if target == "int8":
        fp16 = sorted(n for n, p in resolved.items() if p == "fp16")
        if fp16:
            raise BadInput(f"{opt('layer_precisions')} asks for FP16 layers in an INT8 ONNX ({', '.join(fp16[:3])}); "
                           "onnxruntime runs no FP16 kernels on CPU: keep them fp32 here, or ask a TensorRT build "
                           "(`edgelstm build --layer-precisions`) for FP16")
    return {n: f"kept {p} by --layer-precisions" for n, p in resolved.items() if p == "fp32"}


__all__ = ["LayerPrecision", "parse_layer_precisions", "resolve_layer_precisions", "kept_fp32", "RECURRENT_KEYWORD"]
