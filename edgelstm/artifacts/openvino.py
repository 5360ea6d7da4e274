"""OpenVINO IR artifacts (``model.xml`` + ``model.bin``): what is installed, what the CPU offers, the pair of files
and the runtime settings an IR must be compiled with.

An IR's precision is partly a runtime setting: OpenVINO's CPU plugin computes in BF16 *by default* on CPUs that have
it (AVX512-BF16, AMX), whatever the IR holds, so an FP32 IR compiled with the defaults is not FP32 there. edgelstm
records the inference precision in the manifest (``details.openvino.inference_precision``: ``f32`` or ``bf16``) and
its runner always passes it (``INFERENCE_PRECISION_HINT``); an IR without a manifest runs in ``f32``. INT8 IRs come
from a Q/DQ ONNX (OpenVINO's own low-precision path: FakeQuantize → int8 kernels where the plugin supports them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.errors import BackendMissing, BadInput

IR_SUFFIX = ".xml"
INSTALL_HINT = "pip install 'edgelstm[openvino]' (or: pip install openvino)"
#: edgelstm precision -> OpenVINO's INFERENCE_PRECISION_HINT
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def require_openvino() -> Any:
    try:
        import openvino as ov
    except ImportError:
        raise BackendMissing("OpenVINO is not installed", hint=INSTALL_HINT) from None
    return ov


def bin_path(xml: str | Path) -> Path:
    """The weights file OpenVINO reads beside ``model.xml``: ``model.bin``."""
    return Path(xml).with_suffix(".bin")


def openvino_facts() -> dict[str, Any]:
    """Version, the CPU as OpenVINO names it, the precisions its CPU plugin offers, whether BF16 is native here,
    and the inference precision it picks by default (bf16 where the CPU has it)."""
    ov = require_openvino()
    core = ov.Core()
    caps = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    try:
        default = str(core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
    except Exception:  # noqa: BLE001 - an old plugin without the property
        default = None
    return {"version": ov.get_version().split("-")[0], "cpu": str(core.get_property("CPU", "FULL_DEVICE_NAME")),
            "precisions": caps, "bf16": "BF16" in caps, "default_inference_precision": _short_type(default)}


def _short_type(name: str | None) -> str | None:
    """OpenVINO prints element types as <Type: 'bfloat16'> / bf16 / f32 depending on the API: one spelling."""
    if name is None:
        return None
    text = name.lower()
    for long, short in (("bfloat16", "bf16"), ("float32", "f32"), ("float16", "f16")):
        if long in text:
            return short
    return text.strip("<>' ").replace("type: ", "")


def check_ir_pair(xml: Path, manifest: Any) -> None:
    """The ``.bin`` beside an IR exists and, when the manifest names its sha256, matches it."""
    from edgelstm.fileio import sha256_file

    weights = bin_path(xml)
    if not weights.is_file():
        raise BadInput(f"{xml.name} needs its weights {weights.name} beside it; copy both files")
    want = ((manifest.details.get("openvino") or {}).get("bin_sha256") if manifest is not None else None)
    if want and sha256_file(weights) != want:
        raise BadInput(f"{weights.name} does not match {xml.name}'s manifest (sha256 differs)",
                       hint="the weights changed after edgelstm wrote them; build the IR again")


def inference_precision(manifest: Any) -> str:
    """The INFERENCE_PRECISION_HINT an IR must be compiled with (f32 without a manifest)."""
    ov_details = (manifest.details.get("openvino") or {}) if manifest is not None else {}
    value = ov_details.get("inference_precision") or INFERENCE_PRECISION.get(str(getattr(manifest, "precision", "")))
    return value if value in ("f32", "bf16") else "f32"


def compile_config(precision_hint: str, threads: int | None, streams: int | None = None) -> dict[str, Any]:
    """The compile_model config: the inference precision always, the latency hint and one stream, the threads; with
    ``streams`` > 1 that many streams sharing the threads (batch-parallel: one request per stream at a time)."""
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision_hint, "PERFORMANCE_HINT": "LATENCY",
                              "NUM_STREAMS": "1"}
    if streams and streams > 1:
        config = {"INFERENCE_PRECISION_HINT": precision_hint, "NUM_STREAMS": str(int(streams))}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def runtime_layer_precisions(compiled: Any) -> dict[str, int]:
    """How many executed layers ran in which precision (OpenVINO's runtime model: layerType/runtimePrecision),
    e.g. ``{"RNNSeq f32": 1, "FullyConnected i8": 1}``; constants, inputs and outputs left out."""
    counts: dict[str, int] = {}
    try:
        ops = compiled.get_runtime_model().get_ordered_ops()
    except Exception:  # noqa: BLE001 - a side fact
        return counts
    for op in ops:
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        if kind in ("Input", "Output", "Const", "Parameter", "Result", "Constant"):
            continue
        prec = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
        key = f"{kind} {prec}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


#: the layers that do the arithmetic (the rest move, reshape or convert data)
COMPUTE_LAYERS = ("FullyConnected", "MatMul", "Convolution", "RNNSeq", "RNNCell", "GRUSeq", "LSTMSeq", "Deconvolution")


def compute_layers(counts: dict[str, int]) -> dict[str, int]:
    """The compute layers of ``runtime_layer_precisions``' counts."""
    return {k: v for k, v in counts.items() if k.split(" ")[0] in COMPUTE_LAYERS}


def runs_int8(counts: dict[str, int]) -> bool:
    return any(k.endswith((" i8", " u8")) for k in compute_layers(counts))


__all__ = ["compute_layers", "runs_int8", "IR_SUFFIX", "INSTALL_HINT", "INFERENCE_PRECISION", "require_openvino", "bin_path", "openvino_facts",
           "check_ir_pair", "inference_precision", "compile_config", "runtime_layer_precisions"]
