"""A stand-in `tensorrt` module that records every API call, for contract tests on machines without
TensorRT or a GPU. Install it with `install(monkeypatch, version=...)` (it goes into sys.modules["tensorrt"]
and replaces edgelstm's CUDA buffer backend with host memory).

Names and call shapes follow TensorRT's own Python bindings, checked against the TensorRT OSS sources
(python/src/infer/pyCore.cpp, pyInt8.cpp, python/src/parsers/pyOnnx.cpp, 10.x) and NVIDIA's docs:
- docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html
  (NetworkDefinitionCreationFlag.STRONGLY_TYPED passed as 1 << int(flag) to create_network; num_DLA_cores)
- .../Core/BuilderConfig.html (set_memory_pool_limit(MemoryPoolType.WORKSPACE, n), set_flag, profiling_verbosity,
  create_timing_cache(bytes), set_timing_cache(cache, ignore_mismatch), get_timing_cache, DLA_core,
  default_device_type, can_run_on_DLA, hardware_compatibility_level, int8_calibrator, set_calibration_profile)
- .../Core/OptimizationProfile.html (set_shape(input, min, opt, max))
- .../Core/EngineInspector.html (get_engine_information(LayerInformationFormat.JSON); "N/A due to dynamic
  shapes" until an execution context with concrete shapes is attached)
- .../Core/ExecutionContext.html (set_input_shape, get_tensor_shape, set_tensor_address, execute_async_v3)
- .../Core/Engine.html (num_io_tensors, get_tensor_name, get_tensor_mode, get_tensor_dtype,
  get_tensor_profile_shape(name, profile_index))
- .../Int8/EntropyCalibrator2.html (get_batch_size, get_batch(names), read/write_calibration_cache)
- .../parsers/Onnx/pyOnnx.html (OnnxParser(network, logger).parse(model, path), num_errors, get_error(i) with
  node_name(), node_operator(), desc())
- docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html
  (11.x: BuilderFlag.FP16/INT8/..., IBuilderConfig.int8_calibrator, set_calibration_profile and the INT8
  calibrator classes removed; STRONGLY_TYPED deprecated and always on)
Behaviour that the contract depends on (an unloadable plan returns None and logs an error; a strongly typed
network refuses precision flags; a dynamic input without a profile fails the build) mirrors TensorRT's.
"""

from __future__ import annotations

import enum
import itertools
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"FAKEPLAN"
MACHINE: dict[str, Any] = {"name": "NVIDIA Fake L4", "compute_capability": "8.9", "dla_cores": 0}
MEMORY: dict[int, bytearray] = {}
CAPTURE: dict[int, list] = {}           # stream -> closures recorded while capturing
CLOCK = {"t": 0}                        # advanced by every executed enqueue (fake CUDA events read it)
_ptrs = itertools.count(0x7F00_0000_0000, 0x1_0000)
_streams = itertools.count(0x5000, 16)

ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 3: "INT8", 9: "BOOL", 16: "BF16"}
NP_OF = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8, "BOOL": np.bool_}


def _vt(version: str) -> tuple[int, int, int]:
    nums = [int(x) for x in version.split(".")[:3]]
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


@dataclass
class Recorder:
    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def add(self, name: str, *args, **kwargs) -> None:
        self.calls.append((name, args, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def find(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


# ------------------------------------------------------------------------------------------ fake CUDA


class FakeEvent:
    t = 0


class FakeCuda:
    """Host-memory stand-in for edgelstm.runners.cuda_buffers.CudaBackend (same method names)."""

    name = "fake-cuda"
    supports_graphs = True

    def __init__(self):
        self.calls = Recorder()
        self.capturing: set[int] = set()

    def malloc(self, nbytes):
        from edgelstm.runners.cuda_buffers import DeviceBuffer

        ptr = next(_ptrs)
        MEMORY[ptr] = bytearray(max(1, int(nbytes)))
        self.calls.add("malloc", nbytes)
        return DeviceBuffer(ptr, int(nbytes))

    def free(self, buf):
        MEMORY.pop(buf.ptr, None)
        self.calls.add("free", buf.ptr)

    def stream(self):
        s = next(_streams)
        self.calls.add("stream", s)
        return s

    def htod(self, buf, host, stream):
        data = np.ascontiguousarray(host).tobytes()
        MEMORY[buf.ptr][: len(data)] = data
        self.calls.add("htod", buf.ptr, len(data), stream)

    def dtoh(self, host, buf, stream):
        n = host.nbytes
        host.reshape(-1).view(np.uint8)[:] = np.frombuffer(bytes(MEMORY[buf.ptr][:n]), dtype=np.uint8)
        self.calls.add("dtoh", buf.ptr, n, stream)

    def synchronize(self, stream):
        self.calls.add("synchronize", stream)

    def event(self):
        return FakeEvent()

    def record(self, event, stream):
        event.t = CLOCK["t"]
        self.calls.add("record", stream)

    def elapsed_ms(self, start, end):
        return 0.25 * (end.t - start.t)

    def device_info(self):
        return {"name": MACHINE["name"], "compute_capability": MACHINE["compute_capability"], "source": self.name}

    def begin_capture(self, stream):
        self.capturing.add(stream)
        CAPTURE[stream] = []
        self.calls.add("begin_capture", stream)

    def end_capture(self, stream):
        self.capturing.discard(stream)
        self.calls.add("end_capture", stream)
        return list(CAPTURE.pop(stream, []))

    def launch(self, graph, stream):
        self.calls.add("launch", stream)
        for fn in graph:
            fn()


CUDA = FakeCuda()


# -------------------------------------------------------------------------------------- the module


def make_module(version: str = "10.14.1.48", *, unsupported_ops: tuple[str, ...] = ()) -> types.ModuleType:
    """A fresh fake `tensorrt` module of the given version; `module.recorder.calls` lists every API call."""
    v = _vt(version)
    v11 = v >= (11, 0, 0)
    rec = Recorder()
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__file__ = __file__
    trt.recorder = rec

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        """Base class for Python loggers: subclasses call ILogger.__init__(self) and implement log()."""

        def __init__(self):
            pass

        def log(self, severity, msg):  # pragma: no cover - overridden
            raise NotImplementedError

    ILogger.Severity = Severity
    for s in Severity:
        setattr(ILogger, s.name, s)

    class Logger(ILogger):
        def __init__(self, min_severity=Severity.WARNING):
            super().__init__()
            self.min_severity = min_severity
            self.messages = []

        def log(self, severity, msg):
            self.messages.append((severity, msg))

    for s in Severity:
        setattr(Logger, s.name, s)

    flag_members = {"FP16": 0, "BF16": 1, "INT8": 2, "DEBUG": 3, "GPU_FALLBACK": 4, "REFIT": 5,
                    "DISABLE_TIMING_CACHE": 6, "TF32": 7, "SPARSE_WEIGHTS": 8, "SAFETY_SCOPE": 9,
                    "OBEY_PRECISION_CONSTRAINTS": 10, "PREFER_PRECISION_CONSTRAINTS": 11, "DIRECT_IO": 12,
                    "REJECT_EMPTY_ALGORITHMS": 13, "VERSION_COMPATIBLE": 14, "EXCLUDE_LEAN_RUNTIME": 15,
                    "FP8": 16, "ERROR_ON_TIMING_CACHE_MISS": 17, "EDITABLE_TIMING_CACHE": 18, "STRIP_PLAN": 19}
    if v11:  # removed in 11.x (migration guide, "Removed Python APIs")
        for gone in ("FP16", "BF16", "INT8", "FP8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                     "DIRECT_IO"):
            flag_members.pop(gone)
    BuilderFlag = enum.IntEnum("BuilderFlag", flag_members)
    if v11:
        NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 0})
    else:
        NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag",
                                                     {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
    MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "DLA_LOCAL_DRAM": 2,
                                                     "DLA_GLOBAL_DRAM": 3, "TACTIC_DRAM": 4})
    ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2})
    HardwareCompatibilityLevel = enum.IntEnum("HardwareCompatibilityLevel",
                                              {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2})
    DeviceType = enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1})
    TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5,
                                         "FP8": 6, "BF16": 7, "INT64": 8})
    LayerInformationFormat = enum.IntEnum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})

    def nptype(dt):
        return NP_OF[DataType(dt).name]

    # ------------------------------------------------------------------------------ network/parser
    class ITensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    class ILayer:
        def __init__(self, name, layer_type, op):
            self.name, self.type, self.op = name, layer_type, op

    class INetworkDefinition:
        def __init__(self, flags):
            self.flags = flags
            self.inputs: list[ITensor] = []
            self.outputs: list[ITensor] = []
            self.layers: list[ILayer] = []
            self.symbols: dict[str, list] = {}   # tensor name -> dims as ints/symbols (from ONNX)
            self.onnx_precision = "fp32"
            self.has_qdq = False

        @property
        def num_inputs(self):
            return len(self.inputs)

        @property
        def num_outputs(self):
            return len(self.outputs)

        @property
        def num_layers(self):
            return len(self.layers)

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

        def get_layer(self, i):
            return self.layers[i]

    LAYER_TYPES = {"LSTM": "Loop", "GRU": "Loop", "RNN": "Loop", "Loop": "Loop", "Gemm": "MatrixMultiply",
                   "MatMul": "MatrixMultiply", "QuantizeLinear": "Quantize", "DequantizeLinear": "Dequantize",
                   "Softmax": "SoftMax", "Tanh": "Activation", "Sigmoid": "Activation", "Relu": "Activation"}

    class ParserError:
        def __init__(self, node, name, op, desc):
            self._node, self._name, self._op, self._desc = node, name, op, desc

        def code(self):
            return "UNSUPPORTED_NODE"

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def node_name(self):
            return self._name

        def node_operator(self):
            return self._op

        def func(self):
            return "importNode"

        def file(self):
            return "ModelImporter.cpp"

        def line(self):
            return 0

        def __str__(self):
            return f"In node {self._node} with name: {self._name} and operator: {self._op} : {self._desc}"

    class OnnxParser:
        def __init__(self, network, logger):
            rec.add("OnnxParser", network, logger)
            self.network, self.logger = network, logger
            self.errors: list[ParserError] = []

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

        def clear_errors(self):
            self.errors = []

        def parse(self, model, path=None):
            import onnx
            from onnx import defs

            rec.add("OnnxParser.parse", len(model), path)
            try:
                proto = onnx.load_from_string(bytes(model))
            except Exception as exc:  # noqa: BLE001
                self.errors.append(ParserError(-1, "", "", f"Failed to parse ONNX model: {exc}"))
                return False
            net = self.network
            inits = {i.name for i in proto.graph.initializer}
            for i, node in enumerate(proto.graph.node):
                if node.op_type in unsupported_ops or (node.domain in ("", "ai.onnx") and not defs.has(node.op_type)):
                    self.errors.append(ParserError(i, node.name, node.op_type,
                                                   f"No importer registered for op: {node.op_type}"))
                net.layers.append(ILayer(node.name or f"{node.op_type}_{i}", LAYER_TYPES.get(node.op_type, "Elementwise"),
                                         node.op_type))
            if self.errors:
                return False

            def dims(vi):
                out = []
                for d in vi.type.tensor_type.shape.dim:
                    out.append(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?"))
                return out

            for vi in proto.graph.input:
                if vi.name in inits:
                    continue
                ds = dims(vi)
                net.symbols[vi.name] = ds
                net.inputs.append(ITensor(vi.name, [d if isinstance(d, int) else -1 for d in ds],
                                          DataType[ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")]))
            for vi in proto.graph.output:
                ds = dims(vi)
                net.symbols[vi.name] = ds
                net.outputs.append(ITensor(vi.name, [d if isinstance(d, int) else -1 for d in ds],
                                           DataType[ONNX_TO_TRT.get(vi.type.tensor_type.elem_type, "FLOAT")]))
            types_ = {i.data_type for i in proto.graph.initializer}
            net.onnx_precision = "fp16" if 10 in types_ and 1 not in types_ else "fp32"
            net.has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
            return True

    # -------------------------------------------------------------------------------- profiles/config
    class IOptimizationProfile:
        def __init__(self):
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, input, min, opt, max):  # noqa: A002 - the binding's keyword names
            rec.add("IOptimizationProfile.set_shape", input, tuple(min), tuple(opt), tuple(max))
            mn, op, mx = tuple(min), tuple(opt), tuple(max)
            if not (len(mn) == len(op) == len(mx)) or any(a > b for a, b in zip(mn, op)) or any(
                    a > b for a, b in zip(op, mx)):
                raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
            self.shapes[input] = (mn, op, mx)

        def get_shape(self, input):  # noqa: A002
            return list(self.shapes.get(input, ()))

    class ITimingCache:
        def __init__(self, entries: int, origin: str):
            self.entries, self.origin = entries, origin

        def serialize(self):
            return FakeHostMemory(f"FAKECACHE|{self.origin}|{self.entries}".encode())

        def combine(self, input_cache, ignore_mismatch):
            self.entries += input_cache.entries
            return True

        def reset(self):
            self.entries = 0
            return True

    allowed_config_attrs = {"profiling_verbosity", "default_device_type", "DLA_core", "hardware_compatibility_level",
                            "builder_optimization_level", "max_aux_streams", "engine_capability",
                            "avg_timing_iterations", "flags", "progress_monitor"}
    if not v11:
        allowed_config_attrs |= {"int8_calibrator"}

    class IBuilderConfig:
        def __init__(self):
            object.__setattr__(self, "_flags", set())
            object.__setattr__(self, "_pools", {})
            object.__setattr__(self, "_profiles", [])
            object.__setattr__(self, "_calib_profile", None)
            object.__setattr__(self, "_timing_cache", None)
            object.__setattr__(self, "profiling_verbosity", ProfilingVerbosity.LAYER_NAMES_ONLY)
            object.__setattr__(self, "default_device_type", DeviceType.GPU)
            object.__setattr__(self, "DLA_core", -1)
            object.__setattr__(self, "hardware_compatibility_level", HardwareCompatibilityLevel.NONE)
            if not v11:
                object.__setattr__(self, "int8_calibrator", None)

        def __setattr__(self, name, value):
            if name not in allowed_config_attrs:
                raise AttributeError(f"'tensorrt.tensorrt.IBuilderConfig' object has no attribute '{name}'")
            rec.add(f"IBuilderConfig.{name}=", value)
            object.__setattr__(self, name, value)

        def set_flag(self, flag):
            rec.add("IBuilderConfig.set_flag", BuilderFlag(flag).name)
            self._flags.add(BuilderFlag(flag).name)

        def get_flag(self, flag):
            return BuilderFlag(flag).name in self._flags

        def clear_flag(self, flag):
            self._flags.discard(BuilderFlag(flag).name)

        def set_memory_pool_limit(self, pool, pool_size):
            rec.add("IBuilderConfig.set_memory_pool_limit", MemoryPoolType(pool).name, int(pool_size))
            self._pools[MemoryPoolType(pool).name] = int(pool_size)

        def get_memory_pool_limit(self, pool):
            return self._pools.get(MemoryPoolType(pool).name, 1 << 40)

        def add_optimization_profile(self, profile):
            rec.add("IBuilderConfig.add_optimization_profile", dict(profile.shapes))
            self._profiles.append(profile)
            return len(self._profiles) - 1

        @property
        def num_optimization_profiles(self):
            return len(self._profiles)

        def create_timing_cache(self, serialized_timing_cache):
            blob = bytes(serialized_timing_cache)
            rec.add("IBuilderConfig.create_timing_cache", blob)
            if blob.startswith(b"FAKECACHE|"):
                _, origin, n = blob.decode().split("|")
                return ITimingCache(int(n), origin)
            return ITimingCache(0, f"{version}/{MACHINE['compute_capability']}")

        def set_timing_cache(self, cache, ignore_mismatch):
            rec.add("IBuilderConfig.set_timing_cache", cache.entries, ignore_mismatch)
            if cache.origin != f"{version}/{MACHINE['compute_capability']}" and not ignore_mismatch:
                return False
            object.__setattr__(self, "_timing_cache", cache)
            return True

        def get_timing_cache(self):
            return self._timing_cache

        def can_run_on_DLA(self, layer):
            return layer.type not in ("Loop", "Recurrence")

        if not v11:
            def set_calibration_profile(self, profile):
                rec.add("IBuilderConfig.set_calibration_profile", dict(profile.shapes))
                object.__setattr__(self, "_calib_profile", profile)

            def get_calibration_profile(self):
                return self._calib_profile

    class FakeHostMemory(bytearray):
        """IHostMemory supports the buffer protocol."""

        @property
        def nbytes(self):
            return len(self)

    # --------------------------------------------------------------------------------------- builder
    class Builder:
        def __init__(self, logger):
            rec.add("Builder", logger)
            self.logger = logger

        @property
        def num_DLA_cores(self):
            return int(MACHINE.get("dla_cores", 0))

        def create_network(self, flags=0):
            rec.add("Builder.create_network", int(flags))
            return INetworkDefinition(int(flags))

        def create_builder_config(self):
            rec.add("Builder.create_builder_config")
            return IBuilderConfig()

        def create_optimization_profile(self):
            rec.add("Builder.create_optimization_profile")
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            rec.add("Builder.build_serialized_network")
            log = self.logger.log
            strongly = v11 or bool(network.flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            flags = set(config._flags)
            if strongly and flags & {"FP16", "INT8", "BF16", "FP8"}:
                log(Severity.ERROR, "Error Code 4: API Usage Error (precision builder flags are not allowed with "
                                    "a strongly typed network)")
                return None
            dynamic = [t.name for t in network.inputs if any(d < 0 for d in t.shape)]
            if dynamic and not config._profiles:
                log(Severity.ERROR, "Error Code 4: Network has dynamic or shape inputs, but no optimization "
                                    "profile has been defined.")
                return None
            prof = config._profiles[0].shapes if config._profiles else {}
            for t in network.inputs:
                if t.name in dynamic and t.name not in prof:
                    log(Severity.ERROR, f"Error Code 4: optimization profile is missing values for input {t.name}")
                    return None
                if t.name in prof and any(d >= 0 and d != m for d, m in zip(t.shape, prof[t.name][0])):
                    log(Severity.ERROR, f"Error Code 4: profile shape for {t.name} conflicts with the network")
                    return None
            dla = config.default_device_type == DeviceType.DLA
            if dla and any(not config.can_run_on_DLA(lay) for lay in network.layers) and "GPU_FALLBACK" not in flags:
                log(Severity.ERROR, "Error Code 2: layer cannot run on DLA and GPU fallback is disabled")
                return None
            if (config.hardware_compatibility_level == HardwareCompatibilityLevel.AMPERE_PLUS
                    and _vt(MACHINE["compute_capability"] + ".0") < (8, 0, 0)):
                log(Severity.ERROR, "Error Code 9: hardware compatibility requires Ampere or newer")
                return None
            calibrated = False
            calib = getattr(config, "int8_calibrator", None) if not v11 else None
            if calib is not None:
                if "INT8" not in flags:
                    log(Severity.WARNING, "Calibrator is not being used. Users must provide dynamic range for all "
                                          "tensors that are not Int32 or Bool.")
                else:
                    if dynamic and config._calib_profile is None:
                        log(Severity.ERROR, "Error Code 4: calibration profile must be set for dynamic shapes")
                        return None
                    calib.get_batch_size()
                    cache = calib.read_calibration_cache()
                    rec.add("calibrator.read_calibration_cache", cache is not None)
                    if not cache:
                        cshapes = config._calib_profile.shapes if config._calib_profile else {}
                        names = [t.name for t in network.inputs]
                        for _pass in range(2):  # TensorRT may walk the calibration data more than once
                            while True:
                                ptrs = calib.get_batch(names)
                                if not ptrs:
                                    break
                                rec.add("calibrator.get_batch", tuple(names), tuple(ptrs))
                                for name, ptr in zip(names, ptrs):
                                    shape = cshapes.get(name, ((0,), (0,), (0,)))[1]
                                    t = next(t for t in network.inputs if t.name == name)
                                    need = int(np.prod(shape)) * np.dtype(NP_OF[t.dtype.name]).itemsize
                                    if ptr not in MEMORY or len(MEMORY[ptr]) < need:
                                        log(Severity.ERROR, f"calibration batch for {name} is not a device buffer "
                                                            f"of {need} bytes")
                                        return None
                        calib.write_calibration_cache(memoryview(b"TRT-FAKE-CALIBRATION-CACHE v1"))
                    calibrated = True
            if config._timing_cache is not None:
                config._timing_cache.entries += len(network.layers)

            # per-layer precision the way TensorRT would pick it
            def layer_precision(lay):
                if lay.type == "Loop":
                    if strongly:
                        return "Half" if network.onnx_precision == "fp16" else "Float"
                    return "Half" if "FP16" in flags else "Float"
                if lay.type in ("Quantize",):
                    return "Int8"
                if lay.type == "MatrixMultiply" and (network.has_qdq or calibrated):
                    return "Int8"
                if strongly:
                    return "Half" if network.onnx_precision == "fp16" else "Float"
                return "Half" if "FP16" in flags else "Float"

            sym_src: dict[str, tuple[str, int]] = {}
            for t in network.inputs:
                for axis, d in enumerate(network.symbols.get(t.name, [])):
                    if isinstance(d, str):
                        sym_src.setdefault(d, (t.name, axis))
            outputs = []
            for t in network.outputs:
                rule = []
                for d in network.symbols.get(t.name, []):
                    rule.append(d if isinstance(d, int) else list(sym_src.get(d, ("", -1))))
                outputs.append({"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape), "rule": rule})
            plan = {
                "version": version, "cc": MACHINE["compute_capability"], "gpu": MACHINE["name"],
                "hw": HardwareCompatibilityLevel(config.hardware_compatibility_level).name,
                "version_compatible": "VERSION_COMPATIBLE" in flags, "strongly_typed": strongly,
                "flags": sorted(flags), "dla_core": config.DLA_core if dla else None,
                "verbosity": ProfilingVerbosity(config.profiling_verbosity).name,
                "inputs": [{"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape),
                            "profile": [list(s) for s in prof.get(t.name, (t.shape, t.shape, t.shape))]}
                           for t in network.inputs],
                "outputs": outputs,
                "layers": [{"name": lay.name, "type": lay.type, "precision": layer_precision(lay)}
                           for lay in network.layers],
                "workspace": config._pools.get("WORKSPACE"),
            }
            return FakeHostMemory(MAGIC + json.dumps(plan).encode())

    # --------------------------------------------------------------------------------------- runtime
    class EngineInspector:
        def __init__(self, engine):
            self.engine = engine
            self.execution_context = None

        def get_engine_information(self, format):  # noqa: A002
            rec.add("EngineInspector.get_engine_information", LayerInformationFormat(format).name)
            plan = self.engine.plan
            if plan["verbosity"] != "DETAILED":
                return json.dumps({"Layers": [lay["name"] for lay in plan["layers"]], "Bindings": []})
            concrete = self.execution_context is not None or not any(
                d < 0 for t in plan["inputs"] for d in t["shape"])
            layers = []
            for lay in plan["layers"]:
                fmt = f"Row major linear {lay['precision']}" if concrete else "N/A due to dynamic shapes"
                layers.append({"Name": lay["name"], "LayerType": lay["type"],
                               "Inputs": [{"Name": "in", "Format/Datatype": fmt}],
                               "Outputs": [{"Name": "out", "Format/Datatype": fmt}], "TacticValue": "0x0"})
            return json.dumps({"Layers": layers, "Bindings": [t["name"] for t in plan["inputs"] + plan["outputs"]]})

    class ICudaEngine:
        def __init__(self, plan):
            self.plan = plan
            self._io = [(t, TensorIOMode.INPUT) for t in plan["inputs"]] + [(t, TensorIOMode.OUTPUT)
                                                                              for t in plan["outputs"]]

        @property
        def num_io_tensors(self):
            return len(self._io)

        @property
        def num_optimization_profiles(self):
            return 1

        @property
        def num_layers(self):
            return len(self.plan["layers"])

        @property
        def hardware_compatibility_level(self):
            return HardwareCompatibilityLevel[self.plan["hw"]]

        def _t(self, name):
            for t, mode in self._io:
                if t["name"] == name:
                    return t, mode
            raise KeyError(name)

        def get_tensor_name(self, index):
            return self._io[index][0]["name"]

        def get_tensor_mode(self, name):
            return self._t(name)[1] if any(t["name"] == name for t, _ in self._io) else TensorIOMode.NONE

        def get_tensor_dtype(self, name):
            return DataType[self._t(name)[0]["dtype"]]

        def get_tensor_shape(self, name):
            return tuple(self._t(name)[0]["shape"])

        def get_tensor_profile_shape(self, name, profile_index):
            t, mode = self._t(name)
            if mode != TensorIOMode.INPUT or profile_index != 0:
                raise RuntimeError("get_tensor_profile_shape: not an input of this profile")
            return [tuple(s) for s in t["profile"]]

        def create_execution_context(self, strategy=None):
            rec.add("ICudaEngine.create_execution_context")
            return IExecutionContext(self)

        def create_engine_inspector(self):
            return EngineInspector(self)

        # the legacy binding API (removed in TensorRT 10) is deliberately absent: no get_binding_index,
        # no num_bindings, no binding_is_input.

    class IExecutionContext:
        def __init__(self, engine):
            self.engine = engine
            self.shapes: dict[str, tuple] = {}
            self.addresses: dict[str, int] = {}

        def set_optimization_profile_async(self, profile_index, stream_handle):
            rec.add("IExecutionContext.set_optimization_profile_async", profile_index, stream_handle)
            return True

        def set_input_shape(self, name, shape):
            rec.add("IExecutionContext.set_input_shape", name, tuple(shape))
            t, _ = self.engine._t(name)
            lo, _opt, hi = t["profile"]
            shape = tuple(int(d) for d in shape)
            if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            t, mode = self.engine._t(name)
            if mode == TensorIOMode.INPUT:
                return self.shapes.get(name, tuple(t["shape"]))
            out = []
            for d in t["rule"]:
                if isinstance(d, int):
                    out.append(d)
                else:
                    src, axis = d
                    out.append(self.shapes[src][axis] if src in self.shapes else -1)
            return tuple(out)

        def set_tensor_address(self, name, memory):
            rec.add("IExecutionContext.set_tensor_address", name, int(memory))
            self.addresses[name] = int(memory)
            return True

        def get_tensor_address(self, name):
            return self.addresses.get(name, 0)

        def infer_shapes(self):
            return []

        def execute_v2(self, bindings):  # exists in 10.x; edgelstm must never call it
            rec.add("IExecutionContext.execute_v2", bindings)
            return True

        def execute_async_v3(self, stream_handle):
            rec.add("IExecutionContext.execute_async_v3", stream_handle)
            plan = self.engine.plan
            for t in plan["inputs"]:
                if t["name"] not in self.shapes and any(d < 0 for d in t["shape"]):
                    return False
            if any(t["name"] not in self.addresses for t in plan["inputs"] + plan["outputs"]):
                return False
            if stream_handle in CUDA.capturing:
                CAPTURE[stream_handle].append(self._compute)
                return True
            self._compute()
            return True

        def _compute(self):
            """y[b, ...] = mean(x[b]) (+ mean(h0[:, b]) for stateful engines): enough to check data flow."""
            CLOCK["t"] += 1
            plan = self.engine.plan
            arrays = {}
            for t in plan["inputs"]:
                shape = self.shapes.get(t["name"], tuple(t["shape"]))
                dt = np.dtype(NP_OF[t["dtype"]])
                n = int(np.prod(shape)) * dt.itemsize
                arrays[t["name"]] = np.frombuffer(bytes(MEMORY[self.addresses[t["name"]]][:n]), dtype=dt).reshape(shape)
            data = [a for k, a in arrays.items() if k not in ("h0", "c0")][0].astype(np.float64)
            per_b = data.reshape(data.shape[0], -1).mean(axis=1)
            if "h0" in arrays:
                h0 = arrays["h0"].astype(np.float64)
                per_b = per_b + h0.transpose(1, 0, 2).reshape(h0.shape[1], -1).mean(axis=1)
            for t in plan["outputs"]:
                shape = self.get_tensor_shape(t["name"])
                out = np.empty(shape, dtype=np.float64)
                baxis = next((i for i, d in enumerate(t["rule"]) if isinstance(d, list) and
                              ((d[0] not in ("h0", "c0") and d[1] == 0) or (d[0] in ("h0", "c0") and d[1] == 1))), None)
                if baxis is None:
                    out[...] = per_b.mean()
                else:
                    view = [1] * len(shape)
                    view[baxis] = shape[baxis]
                    out[...] = per_b.reshape(view)
                raw = out.astype(NP_OF[t["dtype"]]).tobytes()
                MEMORY[self.addresses[t["name"]]][: len(raw)] = raw

    class Runtime:
        def __init__(self, logger):
            rec.add("Runtime", logger)
            self.logger = logger
            self.DLA_core = -1
            self.engine_host_code_allowed = False

        @property
        def num_DLA_cores(self):
            return int(MACHINE.get("dla_cores", 0))

        def deserialize_cuda_engine(self, serialized_engine):
            data = bytes(serialized_engine)
            rec.add("Runtime.deserialize_cuda_engine", len(data))
            log = self.logger.log
            try:
                if not data.startswith(MAGIC):
                    raise ValueError
                plan = json.loads(data[len(MAGIC):].decode())
            except (ValueError, UnicodeDecodeError):
                log(Severity.ERROR, "1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization (Serialization "
                                    "assertion plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.)")
                return None
            built, here = _vt(plan["version"]), v
            if plan["version_compatible"]:
                if not self.engine_host_code_allowed:
                    log(Severity.ERROR, "Error Code 1: Serialization (engine host code is not allowed; set "
                                        "engine_host_code_allowed for a version-compatible engine)")
                    return None
                ok = here[0] == built[0] and here >= built
            else:
                ok = here == built
            if not ok:
                log(Severity.ERROR, f"Error Code 6: API Usage Error (The engine plan file is not compatible with this "
                                    f"version of TensorRT, expecting library version {version} got {plan['version']}, "
                                    f"please rebuild.)")
                return None
            cc_here = _vt(MACHINE["compute_capability"] + ".0")
            cc_built = _vt(plan["cc"] + ".0")
            if (plan["hw"] == "AMPERE_PLUS" and cc_here < (8, 0, 0)) or (plan["hw"] != "AMPERE_PLUS" and cc_here != cc_built):
                log(Severity.ERROR, f"Error Code 1: Serialization (The engine plan file is generated on an incompatible "
                                    f"device, expecting compute {MACHINE['compute_capability']} got compute "
                                    f"{plan['cc']}, please rebuild.)")
                return None
            return ICudaEngine(plan)

    classes = dict(Logger=Logger, ILogger=ILogger, Builder=Builder, OnnxParser=OnnxParser, Runtime=Runtime,
                   ParserError=ParserError, BuilderFlag=BuilderFlag,
                   NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag, MemoryPoolType=MemoryPoolType,
                   ProfilingVerbosity=ProfilingVerbosity, HardwareCompatibilityLevel=HardwareCompatibilityLevel,
                   DeviceType=DeviceType, TensorIOMode=TensorIOMode, DataType=DataType,
                   LayerInformationFormat=LayerInformationFormat, IOptimizationProfile=IOptimizationProfile,
                   IBuilderConfig=IBuilderConfig, ICudaEngine=ICudaEngine, IExecutionContext=IExecutionContext,
                   EngineInspector=EngineInspector, ITimingCache=ITimingCache, nptype=nptype)
    for k, val in classes.items():
        setattr(trt, k, val)
    if not v11:  # calibrators were removed in TensorRT 11
        class IInt8Calibrator:
            def __init__(self):
                rec.add(f"{type(self).__mro__[1].__name__}.__init__")

        class IInt8EntropyCalibrator2(IInt8Calibrator):
            pass

        class IInt8MinMaxCalibrator(IInt8Calibrator):
            pass

        trt.IInt8Calibrator = IInt8Calibrator
        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
        trt.IInt8MinMaxCalibrator = IInt8MinMaxCalibrator
    return trt


def install(monkeypatch, version: str = "10.14.1.48", *, compute_capability: str = "8.9", gpu_name: str = "NVIDIA Fake L4",
            dla_cores: int = 0, unsupported_ops: tuple[str, ...] = ()) -> types.ModuleType:
    """Put a fake `tensorrt` into sys.modules and fake CUDA buffers into edgelstm (undone by monkeypatch)."""
    import edgelstm.runners.cuda_buffers as cb

    trt = make_module(version, unsupported_ops=unsupported_ops)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(MACHINE, "compute_capability", compute_capability)
    monkeypatch.setitem(MACHINE, "name", gpu_name)
    monkeypatch.setitem(MACHINE, "dla_cores", dla_cores)
    monkeypatch.setattr(cb, "get_backend", lambda prefer=None: CUDA)
    return trt


def switch_machine(monkeypatch, *, version: str | None = None, compute_capability: str | None = None,
                   gpu_name: str | None = None) -> types.ModuleType:
    """Move to 'another machine': another TensorRT version and/or GPU (for compatibility tests)."""
    trt = sys.modules["tensorrt"]
    if version is not None:
        trt = make_module(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
    if compute_capability is not None:
        monkeypatch.setitem(MACHINE, "compute_capability", compute_capability)
    if gpu_name is not None:
        monkeypatch.setitem(MACHINE, "name", gpu_name)
    return trt
