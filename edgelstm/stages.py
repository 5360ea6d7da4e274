"""The stage dispatch: the one place in ``edgelstm`` that calls the model transformations in ``edgelstm.converters``.

The CLI commands and the pipeline ask for a stage here. Quantization is dispatched on its config's type, which is
the precision (``Fp16Options`` or ``Int8Options``, the INT8 mode inside), and nowhere else. The converter names are
imported statically: the converter modules import only numpy and edgelstm at load time (torch, onnx, onnxruntime,
tensorrt, openvino inside their functions), and nothing imports this module before a command runs.

    export(model, out, ExportOptions, on_step=) -> ExportResult              (converters.export.torch_to_onnx)
    quantize(src, out, config | spec[, options], calib=, budget=, data=)     (converters.quantize: fp16, int8,
                                                                                quant_fallback)
    build_engine(src, out, BuildOptions, on_step=) -> BuildResult            (converters.tensorrt)
    build_openvino(src, out, OpenVinoOptions, calib=) -> OpenVinoResult      (converters.openvino)
    localize_drift(reference, candidate, data, LocalizeOptions) -> Localization (validation.localize, with the
                                                                                TensorRT build for debug engines)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.converters.openvino import OpenVinoOptions, build_openvino as _build_openvino
from edgelstm.converters.quantize.config import (QuantizeConfig, config_for, default_config as default_options,
                                                 quantize_config)
from edgelstm.converters.quantize.fp16 import Fp16Options, quantize_fp16
from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
from edgelstm.converters.quantize.quant_fallback import FP16_CPU_NOTE, FallbackOptions, quantize_with_budget
from edgelstm.converters.quantize.quant_report import TABLE_COLUMNS, table_rows
from edgelstm.converters.tensorrt import BuildOptions, build_engine as _build_engine, parse_workspace, summary_rows
from edgelstm.options import PrecisionSpec
from edgelstm.validation.budget import DriftBudget  # the accuracy fallback's evaluator, built by the caller


def export(model: Any, out: str | Path, options: ExportOptions | None = None, *,
           on_step: Callable[[str], None] | None = None):
    """torch model (a path, a LoadedModel or an nn.Module) -> verified ONNX at ``out``."""
    return export_onnx(model, Path(out), options or ExportOptions(), on_step=on_step)


def quantize(src: str | Path, out: str | Path, config: QuantizeConfig | PrecisionSpec | str,
             options: QuantizeConfig | None = None, *, calib: Iterable[Mapping[str, Any]] | None = None,
             budget: DriftBudget | None = None, data: Iterable[Mapping[str, Any]] | None = None,
             on_step: Callable[[str], None] | None = None):
    """FP32 ONNX -> quantized ONNX at ``out`` (+ manifest), by ``config`` (Fp16Options / Int8Options), or by a
    precision name and optional config (``config_for``: the name decides precision and INT8 mode). With a drift
    ``budget`` and ``data`` the accuracy fallback keeps the most sensitive nodes float until the budget holds."""
    if not isinstance(config, (Fp16Options, Int8Options)):
        config = config_for(config, options)
    if budget is not None:
        return quantize_with_budget(src, out, config.precision, config, budget, data, calib, on_step=on_step)
    if isinstance(config, Fp16Options):
        return quantize_fp16(src, out, config)
    return quantize_int8(src, out, config, calib)


def build_engine(src: str | Path, out: str | Path, options: BuildOptions, *,
                 on_step: Callable[[str], None] | None = None, **kwargs: Any):
    """ONNX -> TensorRT engine at ``out`` (+ manifest); needs TensorRT."""
    if on_step:
        return _build_engine(src, out, options, on_step=on_step, **kwargs)
    return _build_engine(src, out, options, **kwargs)


def build_openvino(src: str | Path, out: str | Path, options: OpenVinoOptions | None = None, *, calib: Any = None,
                   on_step: Callable[[str], None] | None = None):
    """ONNX -> verified OpenVINO IR (``.xml`` + ``.bin``) at ``out`` (+ manifest); needs openvino. The drift of the
    IR is accumulated by validation's DriftAccumulator against its ``max_drift`` budget, parsed here (a converter
    does not import validation)."""
    from edgelstm.converters.openvino import DEFAULT_BUDGET
    from edgelstm.validation.metrics import DriftAccumulator

    options = options or OpenVinoOptions()
    return _build_openvino(src, out, options, accumulator=DriftAccumulator,
                           budget=DriftBudget.parse(options.max_drift or DEFAULT_BUDGET), calib=calib, on_step=on_step)


def localize_drift(reference: str | Path, candidate: str | Path, data: Any, options: Any = None):
    """Where the drift of ``candidate`` (ONNX or TensorRT engine) enters, against the FP32 ``reference``
    (validation.localize); an engine is localised through a debug engine that this module's build stage makes."""
    from edgelstm.validation.localize import LocalizeOptions, localize_drift as _localize_drift

    options = dataclasses.replace(options or LocalizeOptions(), engine_builder=_build_debug_engine)
    return _localize_drift(reference, candidate, data, options)


def _build_debug_engine(source: Path, out: Path, settings: dict[str, Any], calib: Any):
    return _build_engine(source, out, BuildOptions(**settings), calib=calib)


__all__ = ["export", "quantize", "build_engine", "build_openvino", "localize_drift", "default_options",
           "quantize_config", "config_for", "QuantizeConfig", "ExportOptions", "Fp16Options", "Int8Options",
           "DriftBudget", "FallbackOptions", "FP16_CPU_NOTE", "TABLE_COLUMNS", "table_rows", "BuildOptions",
           "parse_workspace", "summary_rows", "OpenVinoOptions"]
