"""The fake `tensorrt` module: `make_module(version)` assembles a fresh module of one TensorRT version from the
enums below, the builder side (parser.py, builder.py) and the runtime side (runtime.py), with pybind11's
behaviour (pybind.py: typed arguments, strict enums, no stray attributes, base __init__ required). Every API call
is recorded in `module.recorder` (the one public name the real module does not have: FAKE_ONLY).

The names, signatures, enum members and enum values are checked against the real bindings: the API surfaces in
tests/trt_api/*.json were extracted from NVIDIA's binding wheels (10.3.0, 10.13.3.9, 11.4.0.106; see
tests/trt_api/README.md), and tests/test_trt_stand_in_surface.py fails when this stand-in exposes a name the real
version lacks, lacks a name edgelstm uses, or gives an enum member another value. Behaviour follows NVIDIA's
docs: the 10.x -> 11.x migration guide ("Removed Python APIs": BuilderFlag.FP16/INT8/BF16/FP8/INT4/FP4,
OBEY/PREFER_PRECISION_CONSTRAINTS, REJECT_EMPTY_ALGORITHMS, IBuilderConfig.int8_calibrator,
set/get_calibration_profile and the INT8 calibrators are gone in 11; STRONGLY_TYPED is always on), the 11.4
support matrix (a version-compatible 10.x engine runs on an 11.x runtime), the developer guide (TF32 is on in a
new config; a dynamic input needs an optimization profile; enqueue once after a shape change before capturing a
CUDA graph).

Versions between the known surfaces: a member first seen in the 10.13 surface (e.g. BuilderFlag.EDITABLE_TIMING_CACHE,
HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY, DataType.FP4) exists here from 10.13 on, although the real
one may be older: a version the surfaces do not cover gets the smaller API, never a larger one.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from .cuda import Recorder
from .pybind import PybindObject, cast_dims, cast_enum, cast_int, checked_set, make_enum, pybind

ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 3: "INT8", 2: "UINT8", 9: "BOOL", 16: "BF16", 17: "FP8",
               22: "INT4"}
NP_OF = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8,
         "UINT8": np.uint8, "BOOL": np.bool_, "BF16": ml_dtypes.bfloat16, "FP8": ml_dtypes.float8_e4m3fn}
#: (built major, runtime major) a version-compatible plan crosses (11.4 support matrix)
CROSS_MAJOR = {(8, 9), (8, 10), (10, 11)}
PRECISION_FLAGS = {"FP16", "INT8", "BF16", "FP8", "INT4", "FP4"}

# ------------------------------------------------------------------------------------------------- enums
# member: value in every version, or (value in 10.x, value in 11.x) with None where absent; a third item is the
# first 10.x version that has it (default: all of 10.x). Values from the real bindings (tests/trt_api/*.json).
_SINCE_10_13 = (10, 13, 0)
ENUMS: dict[str, dict[str, int | tuple]] = {
    "BuilderFlag": {
        "FP16": (0, None), "INT8": (1, None), "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5,
        "TF32": 6, "SPARSE_WEIGHTS": 7, "SAFETY_SCOPE": 8, "OBEY_PRECISION_CONSTRAINTS": (9, None),
        "PREFER_PRECISION_CONSTRAINTS": (10, None), "DIRECT_IO": 11, "REJECT_EMPTY_ALGORITHMS": (12, None),
        "VERSION_COMPATIBLE": (13, 12), "EXCLUDE_LEAN_RUNTIME": (14, 13), "FP8": (15, None),
        "ERROR_ON_TIMING_CACHE_MISS": (16, 15), "BF16": (17, None), "DISABLE_COMPILATION_CACHE": (18, 17),
        "STRIP_PLAN": (19, 18), "WEIGHTLESS": (19, None), "REFIT_IDENTICAL": (20, 19), "WEIGHT_STREAMING": (21, 20),
        "INT4": (22, None), "REFIT_INDIVIDUAL": (23, 22), "STRICT_NANS": (24, 23, _SINCE_10_13),
        "MONITOR_MEMORY": (25, 24, _SINCE_10_13), "FP4": (26, None, _SINCE_10_13),
        "EDITABLE_TIMING_CACHE": (27, 26, _SINCE_10_13), "DISTRIBUTIVE_INDEPENDENCE": (28, 27, _SINCE_10_13)},
    "NetworkDefinitionCreationFlag": {
        "EXPLICIT_BATCH": (0, None), "STRONGLY_TYPED": (1, 0), "PREFER_JIT_PYTHON_PLUGINS": (2, 1, _SINCE_10_13),
        "PREFER_AOT_PYTHON_PLUGINS": (3, 2, _SINCE_10_13)},
    "MemoryPoolType": {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2, "DLA_GLOBAL_DRAM": 3,
                       "TACTIC_DRAM": 4, "TACTIC_SHARED_MEMORY": 5},
    "ProfilingVerbosity": {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2},
    "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": (2, 2, _SINCE_10_13)},
    "DeviceType": {"GPU": 0, "DLA": 1},
    "TensorIOMode": {"NONE": 0, "INPUT": 1, "OUTPUT": 2},
    "DataType": {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6, "BF16": 7, "INT64": 8,
                 "INT4": 9, "FP4": (10, 10, _SINCE_10_13), "E8M0": (11, 11, _SINCE_10_13)},
    "LayerInformationFormat": {"ONELINE": 0, "JSON": 1},
    "ILogger.Severity": {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4},
    "ExecutionContextAllocationStrategy": {"STATIC": 0, "ON_PROFILE_CHANGE": 1, "USER_MANAGED": 2},
    "ErrorCode": {"SUCCESS": 0, "INTERNAL_ERROR": 1, "MEM_ALLOC_FAILED": 2, "MODEL_DESERIALIZE_FAILED": 3,
                  "INVALID_VALUE": 4, "INVALID_GRAPH": 5, "INVALID_NODE": 6, "UNSUPPORTED_GRAPH": 7,
                  "UNSUPPORTED_NODE": 8, "UNSUPPORTED_NODE_ATTR": 9, "UNSUPPORTED_NODE_INPUT": 10,
                  "UNSUPPORTED_NODE_DATATYPE": 11, "UNSUPPORTED_NODE_DYNAMIC": 12, "UNSUPPORTED_NODE_SHAPE": 13,
                  "REFIT_FAILED": 14},
    "CalibrationAlgoType": {"LEGACY_CALIBRATION": (0, None), "ENTROPY_CALIBRATION": (1, None),
                            "ENTROPY_CALIBRATION_2": (2, None), "MINMAX_CALIBRATION": (3, None)},
    # the layer types the stand-in's parser produces (a subset of the real enum)
    "LayerType": {"CAST": 1, "ACTIVATION": 2, "SOFTMAX": 6, "ELEMENTWISE": 9, "SHUFFLE": 13, "GATHER": 16,
                  "MATRIX_MULTIPLY": 17, "CONSTANT": 19, "IDENTITY": 20, "SHAPE": 23, "TRIP_LIMIT": 26, "RECURRENCE": 27,
                  "ITERATOR": 28, "LOOP_OUTPUT": 29, "QUANTIZE": 32, "DEQUANTIZE": 33},
}


def version_tuple(version: str) -> tuple[int, int, int]:
    nums = [int(x) for x in version.split(".")[:3]]
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


def enum_members(qualname: str, version: str) -> dict[str, int]:
    """The members (name -> value) of enum `qualname` in TensorRT `version`; empty if the enum does not exist."""
    v = version_tuple(version)
    out = {}
    for name, spec in ENUMS[qualname].items():
        if isinstance(spec, int):
            spec = (spec, spec)
        v10, v11, since = (*spec, (10, 0, 0))[:3]
        value = v11 if v[0] >= 11 else (v10 if v >= since else None)
        if value is not None:
            out[name] = value
    return out


@dataclass
class Api:
    """What every class of one fake module shares: its version, recorder, enums and the module itself."""

    version: str
    unsupported_ops: tuple[str, ...] = ()
    rec: Recorder = field(default_factory=Recorder)
    trt: types.ModuleType | None = None
    enums: dict[str, type] = field(default_factory=dict)

    @property
    def v(self) -> tuple[int, int, int]:
        return version_tuple(self.version)

    @property
    def v11(self) -> bool:
        return self.v >= (11, 0, 0)

    def enum(self, qualname: str) -> type:
        return self.enums[qualname]

    def member(self, qualname: str, name: str):
        return self.enums[qualname].__members__[name]

    def log(self, logger, severity: str, msg: str) -> None:
        """Call a Python logger the way TensorRT does: log(ILogger.Severity member, str)."""
        logger.log(self.member("ILogger.Severity", severity), msg)

    def loads(self, built: str, version_compatible: bool) -> bool:
        """Whether this runtime deserializes a plan built by TensorRT `built`."""
        b, here = version_tuple(built), self.v
        if not version_compatible:
            return here == b
        return here >= b and (here[0] == b[0] or (b[0], here[0]) in CROSS_MAJOR)


# ----------------------------------------------------------------------------------------------- classes


class ILogger(PybindObject):
    """Base class for Python loggers: subclasses call ILogger.__init__(self) and implement log()."""

    _constructible = True

    def __init__(self):
        self._ready()

    def log(self, severity, msg):
        raise RuntimeError('Tried to call pure virtual function "ILogger::log"')


class Logger(ILogger):
    """TensorRT's own logger (prints to stderr at or above min_severity); the stand-in keeps the messages."""

    @pybind(min_severity=cast_enum("ILogger.Severity"))
    def __init__(self, min_severity=None):
        ILogger.__init__(self)
        self._min = min_severity if min_severity is not None else self._api.member("ILogger.Severity", "WARNING")
        self._messages: list = []

    @property
    def min_severity(self):
        return self._min

    @min_severity.setter
    def min_severity(self, value):
        self._min = checked_set(self, "min_severity", value, cast_enum("ILogger.Severity"))

    def log(self, severity, msg):
        self._messages.append((severity, msg))


class Dims(PybindObject):
    """A shape: a sequence of ints (len, [i], iteration through __getitem__), equal to a tuple/list of the same
    values. Not a tuple: `dims + (1,)` fails as it does with TensorRT's Dims."""

    _constructible = True

    @pybind(shape=lambda v, api: list(cast_dims(v)))
    def __init__(self, shape=()):
        self._ready()
        self._dims = [int(d) for d in shape]

    @property
    def MAX_DIMS(self):  # noqa: N802 - TensorRT's name
        return 8

    def __len__(self):
        return len(self._dims)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self._dims[index])
        return self._dims[cast_int(index)]

    def __setitem__(self, index, value):
        self._dims[cast_int(index)] = cast_int(value)

    def __eq__(self, other):
        if isinstance(other, Dims):
            return self._dims == other._dims
        if isinstance(other, (tuple, list)):
            return tuple(self._dims) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self):
        return str(tuple(self._dims))


def _bind(cls: type, api: Api, *bases: type, constructible: bool | None = None) -> type:
    """A per-module subclass of `cls` (same name) that knows its module's Api."""
    ns = {"_api": api, "__module__": "tensorrt", "__qualname__": cls.__name__}
    if constructible is not None:
        ns["_constructible"] = constructible
    elif "_constructible" in cls.__dict__:
        ns["_constructible"] = cls.__dict__["_constructible"]
    return type(cls)(cls.__name__, (*bases, cls), ns)


def make_module(version: str = "10.14.1.48", *, unsupported_ops: tuple[str, ...] = ()) -> types.ModuleType:
    """A fresh fake `tensorrt` module of the given version; `module.recorder.calls` lists every API call."""
    from . import builder, parser, runtime

    api = Api(version, tuple(unsupported_ops))
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__file__ = __file__
    trt.recorder = api.rec
    api.trt = trt
    for qualname in ENUMS:
        members = enum_members(qualname, version)
        if members:
            api.enums[qualname] = make_enum(qualname, members)
            if "." not in qualname:
                setattr(trt, qualname, api.enums[qualname])
    severity = api.enums["ILogger.Severity"]
    trt.ILogger = _bind(ILogger, api)
    trt.Logger = _bind(Logger, api, trt.ILogger, constructible=True)
    for cls in (trt.ILogger, trt.Logger):
        cls.Severity = severity
        for name, member in severity.__members__.items():
            setattr(cls, name, member)
    trt.Dims = _bind(Dims, api)

    def nptype(trt_type):
        """The numpy type of a DataType (TensorRT's tensorrt.nptype)."""
        if not isinstance(trt_type, api.enum("DataType")):
            raise TypeError("nptype(): incompatible function arguments")
        if trt_type.name not in NP_OF:
            raise TypeError(f"Could not resolve TensorRT datatype to an equivalent numpy datatype. {trt_type}")
        return NP_OF[trt_type.name]

    trt.nptype = nptype
    for cls in (*parser.CLASSES, *builder.CLASSES, *runtime.CLASSES):
        setattr(trt, cls.__name__, _bind(cls, api))
    trt.IBuilderConfig = _bind(builder.IBuilderConfig, api, *(() if api.v11 else (builder.CalibrationConfig,)))
    trt.ILayer = _bind(parser.ILayer, api, *(() if api.v11 else (parser.LayerPrecision,)))
    if not api.v11:  # calibrators were removed in TensorRT 11
        trt.IInt8Calibrator = _bind(builder.IInt8Calibrator, api)
        for cls in builder.CALIBRATORS:
            setattr(trt, cls.__name__, _bind(cls, api, trt.IInt8Calibrator))
    return trt
