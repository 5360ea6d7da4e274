"""The fake `tensorrt` module: `make_module(version)` assembles a fresh module of one TensorRT version from the
enums below, the builder side (parser.py, builder.py) and the runtime side (runtime.py). Every API call is
recorded in `module.recorder` (the one name the real module does not have).

Names and call shapes follow TensorRT's own Python bindings, checked against the TensorRT OSS sources
(python/src/infer/pyCore.cpp, pyInt8.cpp, python/src/parsers/pyOnnx.cpp, 10.x) and NVIDIA's docs:
- docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html
  (NetworkDefinitionCreationFlag.STRONGLY_TYPED passed as 1 << int(flag) to create_network; num_DLA_cores)
- .../Core/BuilderConfig.html (set_memory_pool_limit(MemoryPoolType.WORKSPACE, n), set_flag, clear_flag,
  get_flag, profiling_verbosity, create_timing_cache(bytes), set_timing_cache(cache, ignore_mismatch),
  get_timing_cache, DLA_core, default_device_type, can_run_on_DLA, hardware_compatibility_level,
  int8_calibrator, set_calibration_profile; TF32 is set in a new config)
- .../Core/OptimizationProfile.html (set_shape(input, min, opt, max))
- .../Core/EngineInspector.html (get_engine_information(LayerInformationFormat.JSON); "N/A due to dynamic
  shapes" until an execution context with concrete shapes is attached)
- .../Core/ExecutionContext.html (set_input_shape, get_tensor_shape, set_tensor_address, execute_async_v3)
- .../Core/Engine.html (num_io_tensors, get_tensor_name, get_tensor_mode, get_tensor_dtype,
  get_tensor_profile_shape(name, profile_index))
- .../Int8/EntropyCalibrator2.html (get_batch_size, get_batch(names), read/write_calibration_cache)
- .../parsers/Onnx/pyOnnx.html (OnnxParser(network, logger).parse(model, path), num_errors, get_error(i) with
  node_name(), node_operator(), desc())
- the 10.x -> 11.x migration guide, "Removed Python APIs": 11.x removed BuilderFlag.FP16/INT8/BF16/FP8/INT4/FP4,
  OBEY/PREFER_PRECISION_CONSTRAINTS, DIRECT_IO, IBuilderConfig.int8_calibrator, set/get_calibration_profile and
  the INT8 calibrator classes; STRONGLY_TYPED is deprecated and always on. 10.12-10.x keep them (deprecated).
- the 11.4 support matrix: a version-compatible 10.x engine runs on an 11.x runtime (and 8.x on 9.x/10.x).
Behaviour the contract depends on (an unloadable plan returns None and logs an error; a strongly typed network
refuses precision flags; a dynamic input without a profile fails the build) mirrors TensorRT's.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from .cuda import Recorder

ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 3: "INT8", 2: "UINT8", 9: "BOOL", 16: "BF16", 17: "FP8",
               22: "INT4"}
NP_OF = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8,
         "UINT8": np.uint8, "BOOL": np.bool_, "BF16": ml_dtypes.bfloat16, "FP8": ml_dtypes.float8_e4m3fn}
#: (built major, runtime major) a version-compatible plan crosses (11.4 support matrix)
CROSS_MAJOR = {(8, 9), (8, 10), (10, 11)}
_FLAGS = ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
          "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
          "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "ERROR_ON_TIMING_CACHE_MISS",
          "INT4", "EDITABLE_TIMING_CACHE", "STRIP_PLAN", "FP4"]
_REMOVED_IN_11 = {"FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                  "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"}
PRECISION_FLAGS = {"FP16", "INT8", "BF16", "FP8", "INT4", "FP4"}


def version_tuple(version: str) -> tuple[int, int, int]:
    nums = [int(x) for x in version.split(".")[:3]]
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


@dataclass
class Api:
    """What every class of one fake module shares: its version, recorder, enums and the module itself."""

    version: str
    unsupported_ops: tuple[str, ...] = ()
    rec: Recorder = field(default_factory=Recorder)
    trt: types.ModuleType | None = None

    @property
    def v(self) -> tuple[int, int, int]:
        return version_tuple(self.version)

    @property
    def v11(self) -> bool:
        return self.v >= (11, 0, 0)

    def loads(self, built: str, version_compatible: bool) -> bool:
        """Whether this runtime deserializes a plan built by TensorRT `built`."""
        b, here = version_tuple(built), self.v
        if not version_compatible:
            return here == b
        return here >= b and (here[0] == b[0] or (b[0], here[0]) in CROSS_MAJOR)


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    """Base class for Python loggers: subclasses call ILogger.__init__(self) and implement log()."""

    Severity = Severity

    def __init__(self):
        pass

    def log(self, severity, msg):  # pragma: no cover - overridden
        raise NotImplementedError


class Logger(ILogger):
    def __init__(self, min_severity=Severity.WARNING):
        super().__init__()
        self.min_severity = min_severity
        self._messages: list = []

    def log(self, severity, msg):
        self._messages.append((severity, msg))


for _s in Severity:
    setattr(ILogger, _s.name, _s)


def make_enums(v11: bool) -> dict[str, type]:
    flags = [f for f in _FLAGS if not (v11 and f in _REMOVED_IN_11)]
    creation = {"STRONGLY_TYPED": 0} if v11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    return {
        "BuilderFlag": enum.IntEnum("BuilderFlag", {f: i for i, f in enumerate(flags)}),
        "NetworkDefinitionCreationFlag": enum.IntEnum("NetworkDefinitionCreationFlag", creation),
        "MemoryPoolType": enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2,
                                                          "DLA_GLOBAL_DRAM": 3, "TACTIC_DRAM": 4}),
        "ProfilingVerbosity": enum.IntEnum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2}),
        "HardwareCompatibilityLevel": enum.IntEnum("HardwareCompatibilityLevel",
                                                   {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2}),
        "DeviceType": enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1}),
        "TensorIOMode": enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2}),
        "DataType": enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5,
                                              "FP8": 6, "BF16": 7, "INT64": 8, "INT4": 9, "FP4": 10}),
        "LayerInformationFormat": enum.IntEnum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1}),
    }


def _bind(cls: type, api: Api, *mixins: type) -> type:
    """A per-module subclass of `cls` (same name) that knows its module's Api."""
    return type(cls.__name__, (*mixins, cls), {"_api": api, "__module__": "tensorrt", "__qualname__": cls.__name__})


def make_module(version: str = "10.14.1.48", *, unsupported_ops: tuple[str, ...] = ()) -> types.ModuleType:
    """A fresh fake `tensorrt` module of the given version; `module.recorder.calls` lists every API call."""
    from . import builder, parser, runtime

    api = Api(version, tuple(unsupported_ops))
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__file__ = __file__
    trt.recorder = api.rec
    api.trt = trt
    for name, value in make_enums(api.v11).items():
        setattr(trt, name, value)
    trt.ILogger = _bind(ILogger, api)
    trt.Logger = _bind(Logger, api)
    for s in Severity:
        setattr(trt.Logger, s.name, s)

    def nptype(dt):
        return NP_OF[trt.DataType(dt).name]

    trt.nptype = nptype
    for cls in (*parser.CLASSES, *builder.CLASSES, *runtime.CLASSES):
        setattr(trt, cls.__name__, _bind(cls, api))
    trt.IBuilderConfig = _bind(builder.IBuilderConfig, api, *(() if api.v11 else (builder.CalibrationConfig,)))
    if not api.v11:  # calibrators were removed in TensorRT 11
        trt.IInt8Calibrator = _bind(builder.IInt8Calibrator, api)
        for cls in builder.CALIBRATORS:
            setattr(trt, cls.__name__, type(cls.__name__, (trt.IInt8Calibrator,), {"__module__": "tensorrt"}))
    return trt
