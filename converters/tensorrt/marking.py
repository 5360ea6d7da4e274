"""A debug build: intermediate tensors marked as network outputs (``INetworkDefinition.mark_output``) so that a
run returns them, for drift localisation (edgelstm.validation.localize_engine).

The walk is Polygraphy's ``mark_layerwise`` (tools/Polygraphy/polygraphy/backend/trt/util.py): layers come in
topological order; a TRIP_LIMIT, ITERATOR or RECURRENCE layer opens a loop and a LOOP_OUTPUT layer closes it, and
tensors computed inside a loop body cannot be network outputs, so only a loop's outputs (an LSTM's Y, Y_h, Y_c, named
after the ONNX outputs by onnx-tensorrt) are marked; SHAPE and CONSTANT layers are skipped, as are tensors that are not
execution tensors or not floating point. Tensors keep their ONNX names (onnx-tensorrt names each ITensor after the
ONNX tensor it computes), so the names asked for are ONNX tensor names.

Marking a tensor keeps it from being fused away, so a debug engine may choose other kernels than the engine under
test: localisation compares the two engines' model outputs and says how far they moved.
"""

from __future__ import annotations

from typing import Any, Iterable

LOOP_START = ("TRIP_LIMIT", "ITERATOR", "RECURRENCE")
LOOP_END = ("LOOP_OUTPUT",)
SKIPPED_LAYERS = ("SHAPE", "CONSTANT")
FLOAT_TYPES = ("FLOAT", "HALF", "BF16")


def _layer_types(trt, names: Iterable[str]) -> list[Any]:
    members = trt.LayerType.__members__
    return [members[n] for n in names if n in members]


def markable_tensors(trt, network) -> list[Any]:
    """Every tensor a debug build may mark: float execution tensors of layers outside loop bodies."""
    starts, ends = _layer_types(trt, LOOP_START), _layer_types(trt, LOOP_END)
    skipped = _layer_types(trt, SKIPPED_LAYERS)
    floats = [trt.DataType.__members__[n] for n in FLOAT_TYPES if n in trt.DataType.__members__]
    out: list[Any] = []
    in_loop = False
    for i in range(int(network.num_layers)):
        layer = network.get_layer(i)
        if layer.type in starts:
            in_loop = True
        elif layer.type in ends:
            in_loop = False
        if in_loop or layer.type in skipped:
            continue
        for k in range(int(layer.num_outputs)):
            t = layer.get_output(k)
            if t is not None and t.is_execution_tensor and not t.is_shape_tensor and t.dtype in floats:
                out.append(t)
    return out


def mark_outputs(trt, network, names: Iterable[str]) -> dict[str, Any]:
    """Mark the tensors named ``names`` (``("*",)``: every markable tensor) as network outputs; the model's own
    outputs stay. Returns {"marked": [...], "not_markable": [...]} (names TensorRT's network does not expose
    outside a loop body: fused by the parser, inside a loop, or not float)."""
    wanted = list(dict.fromkeys(names))
    every = "*" in wanted
    existing = {network.get_output(i).name for i in range(int(network.num_outputs))}
    marked: list[str] = []
    available = {}
    for t in markable_tensors(trt, network):
        available.setdefault(t.name, t)
    for name, tensor in available.items():
        if (every or name in wanted) and name not in existing and not tensor.is_network_output:
            network.mark_output(tensor)
            marked.append(name)
    missing = [] if every else [n for n in wanted if n not in available and n not in existing]
    return {"marked": marked, "not_markable": missing}


__all__ = ["mark_outputs", "markable_tensors"]
