"""What a TensorRT engine is: the version facts that decide how it is built and where it loads, and the runtime side
that both the build stage and the runner need (the capturing logger, TensorRT dtype names, an engine's I/O spec),
so that the runner never imports the build stage. This host's TensorRT, GPU and Jetson (``import_tensorrt``,
``gpu_info``, ``tensorrt_facts`` for doctor) are in ``edgelstm.machine.tensorrt``.

Version facts (ARCHITECTURE.md, "Facts the code relies on"; NVIDIA's 10.x -> 11.x migration guide and the 11.4 support matrix):
- Every TensorRT 10.x has the weakly typed precision flags (BuilderFlag.FP16/INT8), IBuilderConfig.int8_calibrator
  and the INT8 calibrators; 11.x removed them (FP16 then comes from an FP16 ONNX built strongly typed, INT8 from
  Q/DQ nodes). edgelstm builds weakly typed on 10.x, strongly typed on 11.x. Deprecated, by the real bindings'
  docstrings (tests/trt_api/*.json): IBuilderConfig.int8_calibrator / set_calibration_profile since 10.1 (the
  10.3 binding says so), the precision flags since 10.12 (10.13 binding), NetworkDefinitionCreationFlag
  .STRONGLY_TYPED since 11.0 (11.4 binding: strong typing is the only mode, the flag is not passed there).
- TF32 is on by default in a new builder config (Ampere and newer run FP32 GEMMs in TF32 unless it is cleared).
- Version-compatible engines run on later runtimes of the same major, and across exactly these majors:
  8 -> 9, 8 -> 10, 10 -> 11. Hardware- and version-compatible engines exist since 8.6; hardware compatibility
  is for discrete Ampere-or-newer GPUs, not Jetson.
"""

from __future__ import annotations

import re

NO_WEAK_TYPING_FROM = (11, 0, 0)              # BuilderFlag.FP16/INT8 and the calibrators removed
WEAK_TYPING_DEPRECATED_FROM = (10, 12, 0)     # the precision flags deprecated (still present) from here
CALIBRATOR_DEPRECATED_FROM = (10, 1, 0)       # IBuilderConfig.int8_calibrator / set_calibration_profile
#: (built major, runtime major) pairs a version-compatible engine crosses (11.4 support matrix)
VERSION_COMPATIBLE_ACROSS = frozenset({(8, 9), (8, 10), (10, 11)})

# --------------------------------------------------------------------------------------------- versions


def parse_version(text: str | None) -> tuple[int, int, int]:
    """'10.14.1.48' -> (10, 14, 1); unparsable -> (0, 0, 0)."""
    if not text:
        return (0, 0, 0)
    nums = [int(n) for n in re.findall(r"\d+", str(text))[:3]]
    while len(nums) < 3:
        nums.append(0)
    return tuple(nums)  # type: ignore[return-value]


def capabilities(version: str | tuple[int, int, int] | None) -> dict[str, bool]:
    """What edgelstm can do with this TensorRT version."""
    v = parse_version(version) if not isinstance(version, tuple) else version
    if v == (0, 0, 0):
        return {}
    weak = v < NO_WEAK_TYPING_FROM
    return {
        "strongly_typed_builds": v >= (10, 0, 0),        # NetworkDefinitionCreationFlag.STRONGLY_TYPED
        "strongly_typed_only": not weak,                 # 11.x: the default and only route
        "weak_typing_flags": weak,                       # BuilderFlag.FP16 / INT8 (edgelstm's route on 10.x)
        "weak_typing_deprecated": weak and v >= WEAK_TYPING_DEPRECATED_FROM,
        "calibrator_deprecated": weak and v >= CALIBRATOR_DEPRECATED_FROM,
        "int8_calibrators": weak,                        # IInt8EntropyCalibrator2 + int8_calibrator (+ cache)
        "hardware_compatible": v >= (8, 6, 0),
        "version_compatible": v >= (8, 6, 0),
        "named_tensor_api": v >= (8, 5, 0),              # set_tensor_address / execute_async_v3
    }


def runs_version_compatible(built: str, runtime: str) -> bool:
    """Whether a version-compatible engine built by TensorRT `built` loads on a TensorRT `runtime`."""
    bv, rv = parse_version(built), parse_version(runtime)
    return rv >= bv and (rv[0] == bv[0] or (bv[0], rv[0]) in VERSION_COMPATIBLE_ACROSS)


# ------------------------------------------------------------------------------- engines: runtime side

#: TensorRT DataType member -> edgelstm dtype name (the ml_dtypes names for the narrow floats)
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": "int4",
              "FP4": "float4_e2m1fn", "E8M0": "float8_e8m0fnu"}
#: dtypes whose values are floats (returned to the caller as float32)
FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float8_e4m3fn"})
_NUMPY = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")
_ML_DTYPES = ("bfloat16", "float8_e4m3fn")  # from ml_dtypes (an onnx dependency)


def dtype_name(trt_dtype) -> str:
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1]
    return TRT_DTYPES.get(name, name.lower())


def host_dtype(name: str, tensor: str = "?"):
    """The numpy dtype of an engine I/O tensor's host buffer; BadInput for a dtype numpy cannot hold (a packed
    int4/fp4 tensor) instead of a float32 buffer of the wrong size."""
    import numpy as np

    from edgelstm.errors import BadInput

    if name in _NUMPY:
        return np.dtype(name)
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError:
            raise BadInput(f"engine tensor {tensor!r} is {name}; exchanging it with numpy needs ml_dtypes",
                           hint="pip install ml-dtypes") from None
        return np.dtype(getattr(ml_dtypes, name))
    raise BadInput(f"engine tensor {tensor!r} is {name}, which edgelstm cannot exchange with numpy "
                   "(packed sub-byte types)", hint="rebuild the engine with float32/float16 inputs and outputs")


_LOGGERS: dict[int, type] = {}


def make_logger(trt):
    """A trt.ILogger that keeps warnings and errors (TensorRT's messages become our one-line errors)."""
    cls = _LOGGERS.get(id(trt))
    if cls is None:
        class _CapturingLogger(trt.ILogger):  # type: ignore[misc, valid-type]
            def __init__(self):
                trt.ILogger.__init__(self)
                self.messages: list[tuple[str, str]] = []

            def log(self, severity, msg):
                level = getattr(severity, "name", str(severity)).split(".")[-1]
                if level in ("INTERNAL_ERROR", "ERROR", "WARNING"):
                    self.messages.append((level, str(msg)))

            def errors(self) -> list[str]:
                return [m for lvl, m in self.messages if lvl in ("INTERNAL_ERROR", "ERROR")]

            def warnings(self) -> list[str]:
                return [m for lvl, m in self.messages if lvl == "WARNING"]

        cls = _LOGGERS[id(trt)] = _CapturingLogger
    return cls()


def first_error(logger, default: str) -> str:
    """The last error TensorRT logged, as one line (or `default`)."""
    errs = [e for e in logger.errors() if e.strip()]
    return (errs[-1] if errs else default).strip().splitlines()[0][:400]


def engine_iospec(engine, trt, onnx_io=None):
    """The engine's I/O as an IOSpec: TensorRT dtypes, the ONNX's symbolic axis names for dynamic (-1) dims."""
    from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, IOSpec, TensorSpec

    ref = {t.name: t for t in ((*onnx_io.inputs, *onnx_io.outputs) if onnx_io else ())}
    ins, outs = [], []
    for i in range(int(engine.num_io_tensors)):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        dims: list[int | str] = []
        for axis, d in enumerate(int(v) for v in engine.get_tensor_shape(name)):
            if d >= 0:
                dims.append(d)
            else:
                sym = ref[name].shape[axis] if name in ref and axis < len(ref[name].shape) else "?"
                dims.append(sym if isinstance(sym, str) else "?")
        state = name in (STATE_INPUTS if is_input else STATE_OUTPUTS) or bool(name in ref and ref[name].state)
        spec = TensorSpec(name, dtype_name(engine.get_tensor_dtype(name)), tuple(dims), state,
                          ref[name].value_range if name in ref else None, ref[name].role if name in ref else None)
        (ins if is_input else outs).append(spec)
    return IOSpec(tuple(ins), tuple(outs))
