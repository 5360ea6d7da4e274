"""The stage dispatch: the one place in ``edgelstm`` that calls the model transformations in ``converters``.

The CLI commands and the pipeline ask for a stage here; a precision (``fp16``, ``int8-dynamic``,
``int8-static``) is dispatched to its converter in ``quantize`` and nowhere else. Option classes are
re-exported (lazily, so ``edgelstm --help`` imports nothing heavy) for callers that build them.

    export(model, out, ExportOptions, on_step=) -> ExportResult            (edgelstm.converters.export.torch_to_onnx)
    quantize(src, out, PrecisionSpec, options, calib=, budget=, data=)     (edgelstm.converters.quantize.fp16 / int8 / quant_fallback)
    build_engine(src, out, BuildOptions, on_step=) -> BuildResult          (edgelstm.converters.tensorrt)
    build_openvino(src, out, OpenVinoOptions, calib=) -> OpenVinoResult    (edgelstm.converters.openvino)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from edgelstm.options import Precision, PrecisionSpec, QuantMode

#: names re-exported from converters: option classes, parsers and report helpers the callers need
_EXPORTS = {
    "ExportOptions": "edgelstm.converters.export.torch_to_onnx",
    "Fp16Options": "edgelstm.converters.quantize.fp16",
    "Int8Options": "edgelstm.converters.quantize.int8",
    "DriftBudget": "edgelstm.validation.budget",   # the accuracy fallback's evaluator, built by the caller
    "FallbackOptions": "edgelstm.converters.quantize.quant_fallback",
    "FP16_CPU_NOTE": "edgelstm.converters.quantize.quant_fallback",
    "TABLE_COLUMNS": "edgelstm.converters.quantize.quant_report",
    "table_rows": "edgelstm.converters.quantize.quant_report",
    "BuildOptions": "edgelstm.converters.tensorrt",
    "parse_workspace": "edgelstm.converters.tensorrt",
    "summary_rows": "edgelstm.converters.tensorrt",
    "OpenVinoOptions": "edgelstm.converters.openvino",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgelstm.stages' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def export(model: Any, out: str | Path, options: Any = None, *, on_step: Callable[[str], None] | None = None):
    """torch model (a path, a LoadedModel or an nn.Module) -> verified ONNX at ``out``."""
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx

    return export_onnx(model, Path(out), options or ExportOptions(), on_step=on_step)


def default_options(spec: PrecisionSpec, **changes: Any) -> Any:
    """The converter's option object for a precision, with ``changes`` applied."""
    if spec.precision == Precision.fp16:
        from edgelstm.converters.quantize.fp16 import Fp16Options

        return Fp16Options(**changes)
    if spec.precision == Precision.int8:
        from edgelstm.converters.quantize.int8 import Int8Options

        return Int8Options(mode=spec.mode or QuantMode.dynamic, **changes)
    from edgelstm.errors import BadInput

    raise BadInput("fp32 is what the input already is; quantize to fp16, int8-dynamic or int8-static")


def quantize(src: str | Path, out: str | Path, spec: PrecisionSpec | str, options: Any = None, *,
             calib: Iterable[Mapping[str, Any]] | None = None, budget: Any = None,
             data: Iterable[Mapping[str, Any]] | None = None, on_step: Callable[[str], None] | None = None):
    """FP32 ONNX -> ``spec`` ONNX at ``out`` (+ manifest). With a drift ``budget`` (DriftBudget) and ``data``
    the accuracy fallback keeps the most sensitive nodes float until the budget holds."""
    spec = PrecisionSpec.parse(spec) if isinstance(spec, str) else spec
    options = options if options is not None else default_options(spec)
    if budget is not None:
        from edgelstm.converters.quantize.quant_fallback import quantize_with_budget

        return quantize_with_budget(src, out, spec.precision, options, budget, data, calib, on_step=on_step)
    if spec.precision == Precision.fp16:
        from edgelstm.converters.quantize.fp16 import quantize_fp16

        return quantize_fp16(src, out, options)
    from edgelstm.converters.quantize.int8 import quantize_int8

    return quantize_int8(src, out, options, calib)


def build_engine(src: str | Path, out: str | Path, options: Any, *, on_step: Callable[[str], None] | None = None,
                 **kwargs: Any):
    """ONNX -> TensorRT engine at ``out`` (+ manifest); needs TensorRT."""
    from edgelstm.converters.tensorrt import build_engine as build

    return build(src, out, options, on_step=on_step, **kwargs) if on_step else build(src, out, options, **kwargs)


def build_openvino(src: str | Path, out: str | Path, options: Any = None, *, calib: Any = None,
                   on_step: Callable[[str], None] | None = None):
    """ONNX -> verified OpenVINO IR (``.xml`` + ``.bin``) at ``out`` (+ manifest); needs openvino."""
    from edgelstm.converters.openvino import DEFAULT_BUDGET, OpenVinoOptions, build_openvino as build
    from edgelstm.validation.budget import DriftBudget
    from edgelstm.validation.metrics import DriftAccumulator

    options = options or OpenVinoOptions()
    budget = DriftBudget.parse(options.max_drift or DEFAULT_BUDGET)
    return build(src, out, options, accumulator=DriftAccumulator, budget=budget, calib=calib, on_step=on_step)


__all__ = ["export", "quantize", "build_engine", "build_openvino", "default_options", *_EXPORTS]
