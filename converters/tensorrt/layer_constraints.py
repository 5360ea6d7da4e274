"""``--layer-precisions`` in a TensorRT build (converters/quantize/layer_precision.py says what a request is).

TensorRT 10.x, weakly typed: every layer the ONNX parser made from a matched node (onnx-tensorrt writes
``[ONNX Layer: <node>]`` into ``ILayer.metadata``; a second layer of a node is named ``<node>_<n>``) gets
``ILayer.precision`` and ``set_output_type`` for each output, and the build sets
``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` so that TensorRT fails rather than ignore them (without that flag or
PREFER_PRECISION_CONSTRAINTS the constraints are hints; Polygraphy's ``debug precision`` uses the same calls). An
fp16 request in an fp32 or int8 build also turns on BuilderFlag.FP16 (a layer may only run in an enabled
precision). As Polygraphy does, CONSTANT and SHAPE layers and layers with non-float outputs are left alone.
TensorRT 10.12 deprecates these calls and flags along with the precision flags (the real 10.13 binding), 11.x
removed them.

Strongly typed (11.x, or ``--strongly-typed`` on 10.x): there are no constraints; each layer's precision is its
ONNX types'. The FP16 or Q/DQ ONNX the build makes from an FP32 one leaves the requested nodes in FP32
(build.py passes the requests to edgelstm.converters.quantize.fp16 / edgelstm.converters.quantize.int8); an ONNX that is already FP16 or Q/DQ is
refused, since nothing in the build can change its types.
"""

from __future__ import annotations

import re
from typing import Any

from edgelstm.errors import BadInput, opt

_METADATA = re.compile(r"\[ONNX Layer:\s*(.+?)\s*(?:\|[^\]]*)?\]")
SKIPPED_LAYERS = ("SHAPE", "CONSTANT")
FLOAT_TYPES = ("FLOAT", "HALF", "BF16")
TRT_TYPES = {"fp32": "FLOAT", "fp16": "HALF"}


def node_of(layer, nodes: set[str]) -> str | None:
    """The ONNX node a network layer was made from (its metadata, else its name), if it is one of ``nodes``."""
    m = _METADATA.search(getattr(layer, "metadata", "") or "")
    if m and m.group(1) in nodes:
        return m.group(1)
    name = layer.name
    if name in nodes:
        return name
    base, _, suffix = name.rpartition("_")
    return base if suffix.isdigit() and base in nodes else None


def _constrainable(trt, layer) -> bool:
    skipped = [trt.LayerType.__members__[n] for n in SKIPPED_LAYERS if n in trt.LayerType.__members__]
    floats = [trt.DataType.__members__[n] for n in FLOAT_TYPES if n in trt.DataType.__members__]
    if layer.type in skipped:
        return False
    outs = [layer.get_output(k) for k in range(int(layer.num_outputs))]
    return all(t is not None and t.is_execution_tensor and t.dtype in floats for t in outs)


def constrain_layers(trt, network, model, requests: tuple, flags: list[str], *, strongly: bool, made_by: str | None,
                     onnx_precision: str, version: str, warnings: list[str]) -> dict[str, Any] | None:
    """Apply ``requests`` (layer precision requests) to the parsed network; flags gains OBEY_PRECISION_CONSTRAINTS
    (and FP16 when a layer asks for it). Returns the manifest's ``layer_precisions`` record, None without requests."""
    if not requests:
        return None
    from edgelstm.converters.quantize.layer_precision import parse_layer_precisions, resolve_layer_precisions
    from edgelstm.artifacts import trt as trt_info

    texts = [str(r) for r in parse_layer_precisions(requests)]
    nodes = resolve_layer_precisions(model, requests)
    if strongly:
        if made_by is None and set(nodes.values()) == {"fp32"} and onnx_precision == "fp32":
            return {"requested": texts, "mode": "ONNX types (strongly typed): the ONNX is FP32", "nodes": nodes}
        if made_by is None:
            raise BadInput(f"{opt('layer_precisions')} in a strongly typed build: each layer's precision is its ONNX "
                           "types', and this ONNX is already FP16/Q-DQ (or FP32 built as FP32), so nothing can change "
                           "them", hint="build from the FP32 ONNX (the build then makes the FP16/Q-DQ ONNX with those "
                                        "layers in FP32), or quantize it again with --layer-precisions")
        fp16 = sorted(n for n, p in nodes.items() if p == "fp16")
        if fp16:
            raise BadInput(f"{opt('layer_precisions')} {fp16[0]}:fp16 in a strongly typed build: FP16 layers come from "
                           "an FP16 ONNX; ask for fp32 layers here, or build with --precision fp16")
        return {"requested": texts, "mode": "ONNX types (strongly typed): kept FP32 in the ONNX the build made",
                "nodes": nodes, "made_by": made_by}
    applied: dict[str, int] = {}
    for i in range(int(network.num_layers)):
        layer = network.get_layer(i)
        node = node_of(layer, set(nodes))
        if node is None or not _constrainable(trt, layer):
            continue
        dtype = trt.DataType.__members__[TRT_TYPES[nodes[node]]]
        layer.precision = dtype
        for k in range(int(layer.num_outputs)):
            layer.set_output_type(k, dtype)
        applied[node] = applied.get(node, 0) + 1
    if "fp16" in nodes.values() and "FP16" not in flags:
        flags.append("FP16")
    flags.append("OBEY_PRECISION_CONSTRAINTS")
    missing = sorted(set(nodes) - set(applied))
    if missing:
        warnings.append(f"{opt('layer_precisions')}: no TensorRT layer to constrain for {', '.join(missing[:4])} (the "
                        "parser folded it into a constant or it has no float output)")
    if trt_info.capabilities(version).get("weak_typing_deprecated"):
        warnings.append(f"TensorRT {version} deprecates layer precision constraints (ILayer.precision, set_output_type, "
                        f"OBEY_PRECISION_CONSTRAINTS; 11.x removed them); {opt('strongly_typed')} keeps the layers "
                        "FP32 through the ONNX types instead")
    return {"requested": texts, "mode": "precision constraints (OBEY_PRECISION_CONSTRAINTS)",
            "nodes": nodes, "layers": applied}


__all__ = ["constrain_layers", "node_of"]
