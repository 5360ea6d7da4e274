"""Which layers of an engine ran in which precision: load the fresh plan back (it must load), read TensorRT's
engine inspector (JSON, DETAILED verbosity) and summarise it by group (recurrent loop, dense, quantize, data
movement, other). FP32 layers whose tactic is a TF32 kernel count as TF32.

The inspector's JSON changed in TensorRT 11 (NVIDIA, "Migrating IEngineInspector Usage from TensorRT 10.x to
11.x", docs.nvidia.com/deeplearning/tensorrt/11.0.0/api/migration/tensorrt-10x-to-11x-IEngineInspector.html): the
engine's `Bindings` (a list of names) became `I/O Tensors` (objects with Name, IOMode, DataType, Dimensions,
Location, ProfileInfo), and a layer tensor's combined `"Format/Datatype"` string (10.x: "Row major linear FP16
format") is split into `"Datatype"` and `"Format"` keys (as NVIDIA's own readers parse it: Polygraphy's engine
graph reader and the TensorRT cookbook's get_engine_tensor_info, "TensorRT 11 split the combined Format/Datatype
field into separate Datatype and Format keys"). Both schemas are read here.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from edgelstm.artifacts.iospec import IOSpec
from edgelstm.artifacts.trt import engine_iospec, first_error
from edgelstm.errors import InternalError

_RECURRENT_RE = re.compile(r"lstm|gru|\brnn|loop|recurren|trip_?limit|iterator|scan", re.I)
_DENSE_RE = re.compile(r"gemm|matmul|matrix_?multiply|fully_?connected|linear|conv|head|attn", re.I)
_QDQ_RE = re.compile(r"quantize|dequantize|\bq_|\bdq_", re.I)
_MOVE_TYPES = {"reformat", "shuffle", "noop", "constant", "identity", "slice", "concatenation", "gather", "cast"}
GROUPS = ("recurrent", "dense", "quantize", "data movement", "other")


def _precision_of(fmt: str) -> str | None:
    f = fmt.lower()
    if "int8" in f:
        return "INT8"
    if "fp8" in f:
        return "FP8"
    if "bf16" in f or "bfloat" in f:
        return "BF16"
    if "half" in f or "fp16" in f or "float16" in f:
        return "FP16"
    if "float" in f or "fp32" in f:
        return "FP32"
    if "int32" in f or "int64" in f or "bool" in f:
        return "INT"
    return None


def layer_group(name: str, layer_type: str) -> str:
    t = (layer_type or "").lower()
    if _RECURRENT_RE.search(name) or t in ("recurrence", "loopoutput", "triplimit", "iterator", "loop"):
        return "recurrent"
    if t in ("quantize", "dequantize") or _QDQ_RE.search(name):
        return "quantize"
    if _DENSE_RE.search(name) or t in ("matrixmultiply", "gemm", "caskgemm", "caskconvolution", "fullyconnected",
                                        "convolution"):
        return "dense"
    if t in _MOVE_TYPES:
        return "data movement"
    return "other"


def tensor_format(tensor: Mapping[str, Any]) -> str:
    """A layer tensor's format and data type as one string, from either inspector schema: 10.x "Format/Datatype",
    11.x "Datatype" (the data type first, it decides) and "Format" ("DataType" accepted too)."""
    if "Format/Datatype" in tensor:
        return str(tensor["Format/Datatype"])
    dtype = tensor.get("Datatype", tensor.get("DataType", ""))
    return " ".join(str(v) for v in (dtype, tensor.get("Format", "")) if v)


def io_tensor_names(engine_info: Mapping[str, Any]) -> list[str]:
    """The engine's I/O tensor names: 10.x `Bindings` (names), 11.x `I/O Tensors` (objects with a Name)."""
    if "I/O Tensors" in engine_info:
        return [str(t.get("Name", "")) for t in engine_info["I/O Tensors"] if isinstance(t, dict)]
    return [str(t) for t in engine_info.get("Bindings", [])]


def tensor_precision(tensor: Mapping[str, Any]) -> str | None:
    """FP32/FP16/BF16/FP8/INT8 (INT for integer tensors, None when unknown) of one layer tensor: its 11.x
    "Datatype" when that names one, else the whole format string."""
    dtype = tensor.get("Datatype", tensor.get("DataType"))
    return (_precision_of(str(dtype)) if dtype else None) or _precision_of(tensor_format(tensor))


def _layer_precisions(layer: Mapping[str, Any]) -> set[str]:
    """A layer's precision is that of its outputs' data type (its inputs' when outputs say N/A)."""
    for side in ("Outputs", "Inputs"):
        tensors = [t for t in layer.get(side, []) if isinstance(t, dict)]
        precs = {p for p in map(tensor_precision, tensors) if p and p != "INT"}
        if precs:
            if precs == {"FP32"} and "tf32" in str(layer.get("TacticName", "")).lower():
                return {"TF32"}
            return precs
    return set()


def layer_precision_summary(engine_info: str | Mapping[str, Any]) -> dict[str, Any]:
    """Summarise TensorRT's engine-inspector JSON: which layers ran in which precision, by group."""
    data = json.loads(engine_info) if isinstance(engine_info, str) else dict(engine_info)
    layers = data.get("Layers", [])
    rows, totals, groups = [], {}, {}
    for layer in layers:
        if isinstance(layer, str):  # ProfilingVerbosity.LAYER_NAMES_ONLY
            name, ltype, precs = layer, "", set()
        else:
            name, ltype = str(layer.get("Name", "")), str(layer.get("LayerType", ""))
            precs = _layer_precisions(layer)
        prec = "+".join(sorted(precs)) if precs else "unknown"
        group = layer_group(name, ltype)
        rows.append({"name": name[:200], "type": ltype, "group": group, "precision": prec})
        totals[prec] = totals.get(prec, 0) + 1
        g = groups.setdefault(group, {})
        g[prec] = g.get(prec, 0) + 1
    return {"available": bool(layers), "layers": rows, "totals": totals, "groups": groups,
            "num_layers": len(rows), "io_tensors": io_tensor_names(data)}


def summary_rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    """Rows [group, layers, precisions] for the CLI's table."""
    out = []
    for group in GROUPS:
        g = summary.get("groups", {}).get(group)
        if g:
            out.append([group, sum(g.values()), ", ".join(f"{p} x{n}" for p, n in sorted(g.items()))])
    return out


def inspect_engine(trt, plan: bytes, logger, shapes, onnx_io: IOSpec, *, version_compatible: bool = False,
                   dla_core: int | None = None) -> tuple[IOSpec, dict[str, Any]]:
    """Deserialize the fresh engine (it must load), read its I/O and the inspector's per-layer precision."""
    runtime = trt.Runtime(logger)
    if version_compatible:
        runtime.engine_host_code_allowed = True
    if dla_core is not None:
        runtime.DLA_core = int(dla_core)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise InternalError("TensorRT built an engine it cannot load back: " + first_error(logger, "no reason given"))
    engine_io = engine_iospec(engine, trt, onnx_io)
    try:
        inspector = engine.create_engine_inspector()
        try:
            context = engine.create_execution_context()
            for name, (_lo, opt, _hi) in shapes.items():
                context.set_input_shape(name, opt)
            inspector.execution_context = context  # concrete formats instead of "N/A due to dynamic shapes"
        except Exception:  # noqa: BLE001 - the engine-level information is still useful
            pass
        layers = layer_precision_summary(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    except Exception as exc:  # noqa: BLE001
        layers = {"available": False, "reason": f"engine inspector failed: {type(exc).__name__}: {exc}"[:300],
                  "layers": [], "totals": {}, "groups": {}, "num_layers": 0}
    return engine_io, layers
