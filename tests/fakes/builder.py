"""The fake builder side: profiles, the builder config (with the 10.x-only calibration members as a mixin),
timing caches, the calibrator base classes and Builder.build_serialized_network, which checks what TensorRT
checks, runs a calibrator the way TensorRT does (two passes, reading each batch on its own stream), and writes a
JSON plan the fake runtime loads."""

from __future__ import annotations

import base64
import json

import numpy as np

from . import cuda
from .cuda import MACHINE, TRT_INTERNAL_STREAM, Op
from .pybind import (Mismatch, PybindObject, cast_bool, cast_buffer, cast_dims, cast_enum, cast_instance, cast_int,
                     cast_str, checked_set, pybind)
from .tensorrt_api import NP_OF, PRECISION_FLAGS, version_tuple

MAGIC = b"FAKEPLAN"


class IOptimizationProfile(PybindObject):
    def _init(self):
        self._shapes: dict[str, tuple] = {}

    @pybind(input=cast_str, min=cast_dims, opt=cast_dims, max=cast_dims)
    def set_shape(self, input, min, opt, max):  # noqa: A002 - the binding's keyword names
        self._api.rec.add("IOptimizationProfile.set_shape", input, min, opt, max)
        if not (len(min) == len(opt) == len(max)) or any(a > b for a, b in zip(min, opt)) or any(
                a > b for a, b in zip(opt, max)):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        self._shapes[input] = (min, opt, max)

    @pybind(input=cast_str)
    def get_shape(self, input):  # noqa: A002
        return [self._api.trt.Dims(list(s)) for s in self._shapes.get(input, ())]


class IHostMemory(bytearray):
    """Serialized plans and caches support the buffer protocol (a bytearray here: Python 3.11 classes cannot
    implement it otherwise; the surface check ignores bytearray's own methods)."""

    _constructible = False

    @property
    def nbytes(self):
        return len(self)

    @property
    def dtype(self):
        return self._api.member("DataType", "UINT8")


class ITimingCache(PybindObject):
    def _init(self, entries: int, origin: str):
        self._entries, self._origin = entries, origin

    def serialize(self):
        return self._api.trt.IHostMemory(f"FAKECACHE|{self._origin}|{self._entries}".encode())

    @pybind(input_cache=cast_instance("ITimingCache"), ignore_mismatch=cast_bool)
    def combine(self, input_cache, ignore_mismatch):
        self._entries += input_cache._entries
        return True

    def reset(self):
        self._entries = 0
        return True


def _enum_prop(name: str, qualname: str, doc: str = ""):
    def fget(self):
        return self._props[name]

    def fset(self, value):
        value = checked_set(self, name, value, cast_enum(qualname))
        self._api.rec.add(f"IBuilderConfig.{name}=", value)
        self._props[name] = value

    return property(fget, fset, doc=doc)


def _int_prop(name: str):
    def fget(self):
        return self._props[name]

    def fset(self, value):
        value = checked_set(self, name, value, cast_int)
        self._api.rec.add(f"IBuilderConfig.{name}=", value)
        self._props[name] = value

    return property(fget, fset)


class IBuilderConfig(PybindObject):
    def _init(self, logger):
        api = self._api
        self._flags = {"TF32"}  # TensorRT sets TF32 in every new config
        self._pools: dict[str, int] = {}
        self._profiles: list = []
        self._calib_profile = None
        self._calibrator = None
        self._timing_cache = None
        self._logger = logger
        self._props = {"profiling_verbosity": api.member("ProfilingVerbosity", "LAYER_NAMES_ONLY"),
                       "default_device_type": api.member("DeviceType", "GPU"), "DLA_core": -1,
                       "hardware_compatibility_level": api.member("HardwareCompatibilityLevel", "NONE"),
                       "builder_optimization_level": 3, "avg_timing_iterations": 1, "max_aux_streams": -1}

    profiling_verbosity = _enum_prop("profiling_verbosity", "ProfilingVerbosity")
    default_device_type = _enum_prop("default_device_type", "DeviceType")
    hardware_compatibility_level = _enum_prop("hardware_compatibility_level", "HardwareCompatibilityLevel")
    DLA_core = _int_prop("DLA_core")
    builder_optimization_level = _int_prop("builder_optimization_level")
    avg_timing_iterations = _int_prop("avg_timing_iterations")
    max_aux_streams = _int_prop("max_aux_streams")

    @property
    def flags(self):
        members = self._api.enum("BuilderFlag").__members__
        return sum(1 << members[f].value for f in self._flags)

    @pybind(flag=cast_enum("BuilderFlag"))
    def set_flag(self, flag):
        self._api.rec.add("IBuilderConfig.set_flag", flag.name)
        self._flags.add(flag.name)

    @pybind(flag=cast_enum("BuilderFlag"))
    def get_flag(self, flag):
        return flag.name in self._flags

    @pybind(flag=cast_enum("BuilderFlag"))
    def clear_flag(self, flag):
        self._api.rec.add("IBuilderConfig.clear_flag", flag.name)
        self._flags.discard(flag.name)

    @pybind(pool=cast_enum("MemoryPoolType"), pool_size=cast_int)
    def set_memory_pool_limit(self, pool, pool_size):
        self._api.rec.add("IBuilderConfig.set_memory_pool_limit", pool.name, pool_size)
        self._pools[pool.name] = pool_size

    @pybind(pool=cast_enum("MemoryPoolType"))
    def get_memory_pool_limit(self, pool):
        return self._pools.get(pool.name, 1 << 40)

    @pybind(profile=cast_instance("IOptimizationProfile"))
    def add_optimization_profile(self, profile):
        self._api.rec.add("IBuilderConfig.add_optimization_profile", dict(profile._shapes))
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self):
        return len(self._profiles)

    def _origin(self):
        return f"{self._api.version}/{MACHINE['compute_capability']}"

    @pybind(serialized_timing_cache=cast_buffer)
    def create_timing_cache(self, serialized_timing_cache):
        blob = serialized_timing_cache
        self._api.rec.add("IBuilderConfig.create_timing_cache", blob)
        if not blob:
            return self._api.trt.ITimingCache._make(0, self._origin())
        try:
            head, origin, n = blob.decode().split("|")
            assert head == "FAKECACHE"
            return self._api.trt.ITimingCache._make(int(n), origin)
        except (UnicodeDecodeError, ValueError, AssertionError):
            if self._logger is not None:
                self._api.log(self._logger, "ERROR", "Error Code 1: Serialization (timing cache blob is corrupt)")
            return None

    @pybind(cache=cast_instance("ITimingCache"), ignore_mismatch=cast_bool)
    def set_timing_cache(self, cache, ignore_mismatch):
        self._api.rec.add("IBuilderConfig.set_timing_cache", cache._entries, ignore_mismatch)
        if cache._origin != self._origin() and not ignore_mismatch:
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self):
        return self._timing_cache

    @pybind(layer=cast_instance("ILayer"))
    def can_run_on_DLA(self, layer):  # noqa: N802 - TensorRT's name
        return layer._kind not in ("Loop", "Recurrence")


def _calibrator_cast(v, api):
    if v is None or isinstance(v, api.trt.IInt8Calibrator):
        return v
    raise Mismatch


_calibrator_cast.label = "IInt8Calibrator"  # type: ignore[attr-defined]


class CalibrationConfig:
    """IBuilderConfig members that exist in 10.x only."""

    @property
    def int8_calibrator(self):
        return self._calibrator

    @int8_calibrator.setter
    def int8_calibrator(self, value):
        value = checked_set(self, "int8_calibrator", value, _calibrator_cast)
        self._api.rec.add("IBuilderConfig.int8_calibrator=", value)
        self._calibrator = value

    @pybind(profile=cast_instance("IOptimizationProfile"))
    def set_calibration_profile(self, profile):
        self._api.rec.add("IBuilderConfig.set_calibration_profile", dict(profile._shapes))
        self._calib_profile = profile
        return True

    def get_calibration_profile(self):
        return self._calib_profile


class IInt8Calibrator(PybindObject):
    """The calibrator interface: a Python calibrator subclasses one of the classes below, calls the base
    __init__ (pybind11 refuses the instance otherwise) and overrides the four methods TensorRT calls."""

    _constructible = True

    def __init__(self):
        self._ready()
        self._api.rec.add(f"{type(self).__mro__[1].__name__}.__init__")

    def _pure(self, what):
        raise RuntimeError(f'Tried to call pure virtual function "IInt8Calibrator::{what}"')

    def get_batch_size(self):
        self._pure("getBatchSize")

    def get_batch(self, names):
        self._pure("getBatch")

    def read_calibration_cache(self):
        self._pure("readCalibrationCache")

    def write_calibration_cache(self, cache):
        self._pure("writeCalibrationCache")

    def get_algorithm(self):
        return self._api.member("CalibrationAlgoType", self._algorithm)

    _algorithm = "ENTROPY_CALIBRATION_2"


class IInt8EntropyCalibrator2(IInt8Calibrator):
    _constructible = True
    _algorithm = "ENTROPY_CALIBRATION_2"


class IInt8MinMaxCalibrator(IInt8Calibrator):
    _constructible = True
    _algorithm = "MINMAX_CALIBRATION"


CALIBRATORS = (IInt8EntropyCalibrator2, IInt8MinMaxCalibrator)


# --------------------------------------------------------------------------------------------- builder

def _check(network, config, flags: set[str], strongly: bool, log) -> bool:
    """What TensorRT refuses before building (logged as errors)."""
    api = config._api
    if strongly and flags & PRECISION_FLAGS:
        log("ERROR", "Error Code 4: API Usage Error (precision builder flags are not allowed with a strongly typed "
                     "network)")
        return False
    dynamic = [t.name for t in network._inputs if any(d < 0 for d in t._shape)]
    if dynamic and not config._profiles:
        log("ERROR", "Error Code 4: Network has dynamic or shape inputs, but no optimization profile has been defined.")
        return False
    prof = config._profiles[0]._shapes if config._profiles else {}
    for t in network._inputs:
        if t.name in dynamic and t.name not in prof:
            log("ERROR", f"Error Code 4: optimization profile is missing values for input {t.name}")
            return False
        if t.name in prof and any(d >= 0 and d != m for d, m in zip(t._shape, prof[t.name][0])):
            log("ERROR", f"Error Code 4: profile shape for {t.name} conflicts with the network")
            return False
    inside = [t.name for t in network._outputs if t._in_loop]
    if inside:
        log("ERROR", f"Error Code 4: API Usage Error ({inside[0]}: a tensor computed inside a loop body cannot be a "
                     "network output; mark the loop's outputs instead)")
        return False
    if strongly and any(getattr(lay, "_precision", None) is not None or lay._output_types for lay in network._layers):
        log("ERROR", "Error Code 4: API Usage Error (layer precision and output types cannot be set in a strongly "
                     "typed network: its types decide)")
        return False
    dla = config.default_device_type == api.member("DeviceType", "DLA")
    if dla and any(not config.can_run_on_DLA(lay) for lay in network._layers) and "GPU_FALLBACK" not in flags:
        log("ERROR", "Error Code 2: layer cannot run on DLA and GPU fallback is disabled")
        return False
    if (config.hardware_compatibility_level == api.member("HardwareCompatibilityLevel", "AMPERE_PLUS")
            and version_tuple(MACHINE["compute_capability"]) < (8, 0, 0)):
        log("ERROR", "Error Code 9: hardware compatibility requires Ampere or newer")
        return False
    if dynamic and config._calibrator is not None and "INT8" in flags and config._calib_profile is None:
        log("ERROR", "Error Code 4: calibration profile must be set for dynamic shapes")
        return False
    return True


def _read_batch(network, cshapes, names, ptrs, log, rec) -> bool:
    """TensorRT reads one calibration batch from the device pointers, on its own stream, each with its input's
    dtype and the calibration profile's shape."""
    sizes, checked = [], []
    for name, ptr in zip(names, ptrs):
        shape = cshapes.get(name, ((0,), (0,), (0,)))[1]
        t = next(t for t in network._inputs if t.name == name)
        need = int(np.prod(shape)) * np.dtype(NP_OF[t.dtype.name]).itemsize
        have = cuda.DEVICE.size(ptr)
        if isinstance(cuda.DEVICE, cuda.HostDevice) and (have is None or have < need):
            log("ERROR", f"calibration batch for {name} is not a device buffer of {need} bytes")
            return False
        sizes.append(need)
        checked.append(ptr)

    def read():   # what TensorRT reads, per input name (recorded as "calibrator.read": name, dtype, bytes)
        for name, ptr, n in zip(names, checked, sizes):
            t = next(t for t in network._inputs if t.name == name)
            rec.add("calibrator.read", name, t.dtype.name, cuda.DEVICE.read(ptr, n))

    cuda.DEVICE.enqueue(TRT_INTERNAL_STREAM, Op("kernel", "TensorRT's calibration pass", 0.0, reads=tuple(checked),
                                                fn=read))
    if isinstance(cuda.DEVICE, cuda.HostDevice):
        cuda.CUDA.synchronize(TRT_INTERNAL_STREAM)
    return True


def _calibrate(network, config, calib, log) -> bool | None:
    """Run the calibrator the way TensorRT does: the cache if it gives one, else two passes over the data."""
    rec = config._api.rec
    calib.get_batch_size()
    cache = calib.read_calibration_cache()
    if cache is not None:
        try:
            cache = cast_buffer(cache)
        except Mismatch:
            raise TypeError("read_calibration_cache() must return a buffer (bytes) or None, got "
                            f"{type(cache).__name__}") from None
    rec.add("calibrator.read_calibration_cache", cache is not None)
    if cache:
        return True
    cshapes = config._calib_profile._shapes if config._calib_profile else {}
    names = [t.name for t in network._inputs]
    for _pass in range(2):  # TensorRT may walk the calibration data more than once
        while True:
            ptrs = calib.get_batch(names)
            if not ptrs:
                break
            try:
                ptrs = [cast_int(p) for p in ptrs]
            except Mismatch:
                raise TypeError(f"get_batch() must return a list of int device pointers, got {ptrs!r:.80}") from None
            rec.add("calibrator.get_batch", tuple(names), tuple(ptrs))
            if len(ptrs) != len(names) or not _read_batch(network, cshapes, names, ptrs, log, rec):
                return None
    calib.write_calibration_cache(memoryview(b"TRT-FAKE-CALIBRATION-CACHE v1"))
    return True


def _constraint(layers, flags: set[str]):
    """The precision a node's layers were constrained to (10.x: ILayer.precision/set_output_type, obeyed or
    preferred only with OBEY_/PREFER_PRECISION_CONSTRAINTS; without either flag TensorRT treats them as hints and
    this stand-in ignores them), or None."""
    if not flags & {"OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"}:
        return None
    for lay in layers:
        if getattr(lay, "_precision", None) is not None:
            return lay._precision.name
    return None


def _layer_entry(layers, network, flags: set[str], strongly: bool, calibrated: bool) -> dict:
    """One engine layer per ONNX node (TensorRT fuses a node's layers, a recurrence into one loop), with the
    precision (and tactic) TensorRT would pick."""
    lay = layers[0]
    constrained = None if strongly else _constraint(layers, flags)
    if constrained is not None:
        prec = {"FLOAT": "Float", "HALF": "Half", "INT8": "Int8", "BF16": "BF16"}.get(constrained, "Float")
    elif lay._kind == "Quantize" or (lay._kind == "MatrixMultiply" and (network._has_qdq or calibrated)):
        prec = "Int8"
    elif strongly:   # the ONNX types decide: a node whose outputs are float16 runs in Half
        half = [t for layer in layers for t in layer._outputs if t.dtype.name == "HALF"]
        prec = "Half" if half or (network._onnx_precision == "fp16" and not any(
            t.dtype.name == "FLOAT" for layer in layers for t in layer._outputs)) else "Float"
    else:
        prec = "Half" if "FP16" in flags else "Float"
    tf32 = prec == "Float" and "TF32" in flags and version_tuple(MACHINE["compute_capability"]) >= (8, 0, 0)
    tactic = "sm80_xmma_gemm_tf32f32_tf32f32_f32_nn" if tf32 and lay._kind == "MatrixMultiply" else "fake_kernel"
    return {"name": lay.name, "type": lay._kind, "precision": prec, "tactic": tactic, "node": lay._node,
            "constrained": constrained is not None}


def _by_node(network) -> list[list]:
    """The network's layers grouped by the ONNX node they come from (in order)."""
    groups: dict[str, list] = {}
    for lay in network._layers:
        groups.setdefault(lay._node, []).append(lay)
    return list(groups.values())


def _io(network, prof) -> tuple[list, list]:
    sym_src: dict[str, tuple[str, int]] = {}
    for t in network._inputs:
        for axis, d in enumerate(network._symbols.get(t.name, [])):
            if isinstance(d, str):
                sym_src.setdefault(d, (t.name, axis))
    inputs = [{"name": t.name, "dtype": t.dtype.name, "shape": list(t._shape),
               "profile": [list(s) for s in prof.get(t.name, (t._shape, t._shape, t._shape))]} for t in network._inputs]
    outputs = []
    for t in network._outputs:
        rule = [d if isinstance(d, int) else list(sym_src.get(d, ("", -1))) for d in network._symbols.get(t.name, [])]
        outputs.append({"name": t.name, "dtype": t.dtype.name, "shape": list(t._shape), "rule": rule})
    return inputs, outputs


class Builder(PybindObject):
    _constructible = True

    @pybind(logger=cast_instance("ILogger"))
    def __init__(self, logger):
        self._ready()
        self._api.rec.add("Builder", logger)
        self._logger = logger

    @property
    def logger(self):
        return self._logger

    @property
    def num_DLA_cores(self):  # noqa: N802 - TensorRT's name
        return int(MACHINE.get("dla_cores", 0))

    @pybind(flags=cast_int)
    def create_network(self, flags=0):
        self._api.rec.add("Builder.create_network", flags)
        return self._api.trt.INetworkDefinition._make(flags)

    def create_builder_config(self):
        self._api.rec.add("Builder.create_builder_config")
        return self._api.trt.IBuilderConfig._make(self._logger)

    def create_optimization_profile(self):
        self._api.rec.add("Builder.create_optimization_profile")
        return self._api.trt.IOptimizationProfile._make()

    @pybind(network=cast_instance("INetworkDefinition"), config=cast_instance("IBuilderConfig"))
    def build_serialized_network(self, network, config):
        api, trt = self._api, self._api.trt

        def log(severity, msg):
            api.log(self._logger, severity, msg)

        api.rec.add("Builder.build_serialized_network")
        strongly = api.v11 or network.get_flag(api.member("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"))
        flags = set(config._flags)
        if not _check(network, config, flags, strongly, log):
            return None
        calibrated = False
        calib = config._calibrator if not api.v11 else None
        if calib is not None and "INT8" not in flags:
            log("WARNING", "Calibrator is not being used. Users must provide dynamic range for all tensors that are "
                           "not Int32 or Bool.")
        elif calib is not None:
            calibrated = _calibrate(network, config, calib, log)
            if calibrated is None:
                return None
        if config._timing_cache is not None:
            config._timing_cache._entries += len(network._layers)
        prof = config._profiles[0]._shapes if config._profiles else {}
        inputs, outputs = _io(network, prof)
        dla = config.default_device_type == api.member("DeviceType", "DLA")
        plan = {
            "version": api.version, "cc": MACHINE["compute_capability"], "gpu": MACHINE["name"],
            "hw": config.hardware_compatibility_level.name,
            "version_compatible": "VERSION_COMPATIBLE" in flags, "strongly_typed": strongly,
            "flags": sorted(flags), "dla_core": config.DLA_core if dla else None,
            "verbosity": config.profiling_verbosity.name,
            "inputs": inputs, "outputs": outputs,
            "layers": [_layer_entry(group, network, flags, strongly, calibrated) for group in _by_node(network)],
            "workspace": config._pools.get("WORKSPACE"),
        }
        if MACHINE.get("engine_math") == "onnxruntime":   # the engine computes the network (engine_math.py)
            plan["onnx"] = base64.b64encode(network._onnx).decode()
        return trt.IHostMemory(MAGIC + json.dumps(plan).encode())


CLASSES = (IOptimizationProfile, IHostMemory, ITimingCache, Builder)
