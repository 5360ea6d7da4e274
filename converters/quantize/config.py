"""The quantize config: its type is the precision (``Fp16Options`` or ``Int8Options``, the mode inside the INT8 one),
as in onnxruntime's own quantizers. ``stages.quantize`` dispatches on the type.

Two ways to make one:
- ``config_for(spec, options)``: a precision name (``int8-static``) and, optionally, a config; the name decides the
  precision and the INT8 mode, so ``int8-static`` with a default ``Int8Options()`` is static;
- ``quantize_config(precision, mode, ...)``: from the options a user gave (the CLI's flags), with the rules on
  which option applies to which precision, so that every caller refuses the same combinations in the same words.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Union

from edgelstm.converters.quantize.fp16 import Fp16Options
from edgelstm.converters.quantize.int8 import Int8Options
from edgelstm.errors import BadInput, opt
from edgelstm.options import DEFAULT_CALIB_METHOD, CalibMethod, Precision, PrecisionSpec, QuantMode, TargetCpu

QuantizeConfig = Union[Fp16Options, Int8Options]
CONFIGS: dict[Precision, type] = {Precision.fp16: Fp16Options, Precision.int8: Int8Options}


def _fp32_refused() -> BadInput:
    return BadInput("fp32 is what the input already is; quantize to fp16, int8-dynamic or int8-static")


def default_config(spec: PrecisionSpec, **changes: Any) -> QuantizeConfig:
    """The config for a precision, with ``changes`` applied (the INT8 mode from the spec)."""
    if spec.precision == Precision.fp16:
        return Fp16Options(**changes)
    if spec.precision == Precision.int8:
        return Int8Options(mode=spec.mode or QuantMode.dynamic, **changes)
    raise _fp32_refused()


def config_for(spec: PrecisionSpec | str, options: QuantizeConfig | None = None) -> QuantizeConfig:
    """The config for ``spec``: ``options`` when given, checked against it. The spec names the precision and the INT8
    mode: a default-mode (dynamic) ``Int8Options`` under ``int8-static`` becomes static; a config of another precision,
    or a static config under a dynamic spec, is BadInput."""
    spec = PrecisionSpec.parse(spec) if isinstance(spec, str) else spec
    if options is None:
        return default_config(spec)
    if spec.precision not in CONFIGS:
        raise _fp32_refused()
    if not isinstance(options, CONFIGS[spec.precision]):
        raise BadInput(f"{spec.name} needs {CONFIGS[spec.precision].__name__}, got {type(options).__name__}")
    if isinstance(options, Int8Options) and options.mode != spec.mode:
        if options.mode != QuantMode.dynamic:
            raise BadInput(f"the precision is {spec.name} but the INT8 options ask for {options.mode.value} mode")
        options = dataclasses.replace(options, mode=spec.mode)
    return options


def quantize_config(precision: Precision, mode: QuantMode | None = None, *, calib: bool = False,
                    calib_synthetic: int | None = None, calib_method: CalibMethod | None = None,
                    exclude: tuple[str, ...] = (), layer_precisions: tuple = (), per_channel: bool = False,
                    reduce_range: bool | None = None, weight_type: str | None = None,
                    target: TargetCpu = TargetCpu.auto, subgraphs: bool = True, percentile: float = 99.999,
                    fp16_io: bool = False) -> QuantizeConfig:
    """The config from what a user asked for; ``calib``/``calib_synthetic`` say whether calibration data was given
    (the data itself goes to ``stages.quantize``). An option of the other precision, or calibration data where the
    mode takes none (or none where it needs it), is BadInput."""
    if precision == Precision.fp16:
        used = [opt(f) for f, v in (("mode", mode), ("calib", calib), ("calib_synthetic", calib_synthetic),
                                    ("calib_method", calib_method), ("per_channel", per_channel),
                                    ("reduce_range", reduce_range is not None), ("weight_type", weight_type),
                                    ("target_cpu", target != TargetCpu.auto), ("no_subgraphs", not subgraphs)) if v]
        if used:
            raise BadInput(f"{', '.join(used)} appl{'ies' if len(used) == 1 else 'y'} to {opt('precision')} int8, "
                           "not fp16")
        return Fp16Options(keep_io_types=not fp16_io, exclude=exclude, layer_precisions=layer_precisions)
    if precision != Precision.int8:
        raise _fp32_refused()
    if fp16_io:
        raise BadInput(f"{opt('fp16_io')} applies to {opt('precision')} fp16")
    mode = mode or QuantMode.dynamic
    if calib and calib_synthetic is not None:
        raise BadInput(f"pass either {opt('calib')} DATA or {opt('calib_synthetic')} N, not both")
    if calib_synthetic is not None and calib_synthetic < 1:
        raise BadInput(f"{opt('calib_synthetic')} must be >= 1, got {calib_synthetic}")
    if mode == QuantMode.static and not calib and calib_synthetic is None:
        raise BadInput(f"{opt('mode')} static needs calibration data: pass {opt('calib')} DATA (.npz/.npy/.csv), or "
                       f"{opt('calib_synthetic')} N to calibrate on N(0,1) noise knowingly")
    if mode == QuantMode.dynamic and (calib or calib_synthetic is not None or calib_method is not None):
        raise BadInput(f"{opt('calib')}/{opt('calib_synthetic')}/{opt('calib_method')} apply to {opt('mode')} "
                       "static; dynamic INT8 needs no calibration")
    return Int8Options(mode=mode, calib_method=calib_method or DEFAULT_CALIB_METHOD, exclude=exclude,
                       per_channel=per_channel, reduce_range=reduce_range, subgraphs=subgraphs, percentile=percentile,
                       target=target, weight_type=weight_type, layer_precisions=layer_precisions)
