"""The fake builder side: profiles, the builder config (with the 10.x-only calibration members as a mixin),
timing caches, the calibrator base classes and Builder.build_serialized_network, which checks what TensorRT
checks, runs a calibrator the way TensorRT does (two passes), and writes a JSON plan the fake runtime loads."""

from __future__ import annotations

import json

import numpy as np

from .cuda import MACHINE, MEMORY
from .tensorrt_api import NP_OF, PRECISION_FLAGS, Severity, version_tuple

MAGIC = b"FAKEPLAN"


class IOptimizationProfile:
    def __init__(self):
        self._shapes: dict[str, tuple] = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 - the binding's keyword names
        self._api.rec.add("IOptimizationProfile.set_shape", input, tuple(min), tuple(opt), tuple(max))
        mn, op, mx = tuple(min), tuple(opt), tuple(max)
        if not (len(mn) == len(op) == len(mx)) or any(a > b for a, b in zip(mn, op)) or any(
                a > b for a, b in zip(op, mx)):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        self._shapes[input] = (mn, op, mx)

    def get_shape(self, input):  # noqa: A002
        return list(self._shapes.get(input, ()))


class IHostMemory(bytearray):
    """Serialized plans and caches support the buffer protocol."""

    @property
    def nbytes(self):
        return len(self)


class ITimingCache:
    def __init__(self, entries: int, origin: str):
        self._entries, self._origin = entries, origin

    def serialize(self):
        return self._api.trt.IHostMemory(f"FAKECACHE|{self._origin}|{self._entries}".encode())

    def combine(self, input_cache, ignore_mismatch):
        self._entries += input_cache._entries
        return True

    def reset(self):
        self._entries = 0
        return True


_CONFIG_ATTRS = {"profiling_verbosity", "default_device_type", "DLA_core", "hardware_compatibility_level",
                 "builder_optimization_level", "max_aux_streams", "engine_capability", "avg_timing_iterations",
                 "flags", "progress_monitor"}


class IBuilderConfig:
    def __init__(self):
        trt = self._api.trt
        init = {"_flags": {"TF32"},  # TensorRT sets TF32 in every new config
                "_pools": {}, "_profiles": [], "_calib_profile": None, "_timing_cache": None, "_logger": None,
                "profiling_verbosity": trt.ProfilingVerbosity.LAYER_NAMES_ONLY, "default_device_type": trt.DeviceType.GPU,
                "DLA_core": -1, "hardware_compatibility_level": trt.HardwareCompatibilityLevel.NONE}
        if not self._api.v11:
            init["int8_calibrator"] = None
        for k, v in init.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        if name not in _CONFIG_ATTRS | ({"int8_calibrator"} if not self._api.v11 else set()):
            raise AttributeError(f"'tensorrt.tensorrt.IBuilderConfig' object has no attribute '{name}'")
        self._api.rec.add(f"IBuilderConfig.{name}=", value)
        object.__setattr__(self, name, value)

    def set_flag(self, flag):
        name = self._api.trt.BuilderFlag(flag).name
        self._api.rec.add("IBuilderConfig.set_flag", name)
        self._flags.add(name)

    def get_flag(self, flag):
        return self._api.trt.BuilderFlag(flag).name in self._flags

    def clear_flag(self, flag):
        name = self._api.trt.BuilderFlag(flag).name
        self._api.rec.add("IBuilderConfig.clear_flag", name)
        self._flags.discard(name)

    def set_memory_pool_limit(self, pool, pool_size):
        name = self._api.trt.MemoryPoolType(pool).name
        self._api.rec.add("IBuilderConfig.set_memory_pool_limit", name, int(pool_size))
        self._pools[name] = int(pool_size)

    def get_memory_pool_limit(self, pool):
        return self._pools.get(self._api.trt.MemoryPoolType(pool).name, 1 << 40)

    def add_optimization_profile(self, profile):
        self._api.rec.add("IBuilderConfig.add_optimization_profile", dict(profile._shapes))
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self):
        return len(self._profiles)

    def _origin(self):
        return f"{self._api.version}/{MACHINE['compute_capability']}"

    def create_timing_cache(self, serialized_timing_cache):
        blob = bytes(serialized_timing_cache)
        self._api.rec.add("IBuilderConfig.create_timing_cache", blob)
        if not blob:
            return self._api.trt.ITimingCache(0, self._origin())
        try:
            head, origin, n = blob.decode().split("|")
            assert head == "FAKECACHE"
            return self._api.trt.ITimingCache(int(n), origin)
        except (UnicodeDecodeError, ValueError, AssertionError):
            if self._logger is not None:
                self._logger.log(Severity.ERROR, "Error Code 1: Serialization (timing cache blob is corrupt)")
            return None

    def set_timing_cache(self, cache, ignore_mismatch):
        self._api.rec.add("IBuilderConfig.set_timing_cache", cache._entries, ignore_mismatch)
        if cache._origin != self._origin() and not ignore_mismatch:
            return False
        object.__setattr__(self, "_timing_cache", cache)
        return True

    def get_timing_cache(self):
        return self._timing_cache

    def can_run_on_DLA(self, layer):
        return layer.type not in ("Loop", "Recurrence")


class CalibrationConfig:
    """IBuilderConfig members that exist in 10.x only."""

    def set_calibration_profile(self, profile):
        self._api.rec.add("IBuilderConfig.set_calibration_profile", dict(profile._shapes))
        object.__setattr__(self, "_calib_profile", profile)

    def get_calibration_profile(self):
        return self._calib_profile


class IInt8Calibrator:
    def __init__(self):
        self._api.rec.add(f"{type(self).__mro__[1].__name__}.__init__")


class IInt8EntropyCalibrator2:
    pass


class IInt8MinMaxCalibrator:
    pass


CALIBRATORS = (IInt8EntropyCalibrator2, IInt8MinMaxCalibrator)


# --------------------------------------------------------------------------------------------- builder

def _check(network, config, flags: set[str], strongly: bool, log) -> bool:
    """What TensorRT refuses before building (logged as errors)."""
    trt = config._api.trt
    if strongly and flags & PRECISION_FLAGS:
        log(Severity.ERROR, "Error Code 4: API Usage Error (precision builder flags are not allowed with "
                            "a strongly typed network)")
        return False
    dynamic = [t.name for t in network._inputs if any(d < 0 for d in t.shape)]
    if dynamic and not config._profiles:
        log(Severity.ERROR, "Error Code 4: Network has dynamic or shape inputs, but no optimization profile has "
                            "been defined.")
        return False
    prof = config._profiles[0]._shapes if config._profiles else {}
    for t in network._inputs:
        if t.name in dynamic and t.name not in prof:
            log(Severity.ERROR, f"Error Code 4: optimization profile is missing values for input {t.name}")
            return False
        if t.name in prof and any(d >= 0 and d != m for d, m in zip(t.shape, prof[t.name][0])):
            log(Severity.ERROR, f"Error Code 4: profile shape for {t.name} conflicts with the network")
            return False
    dla = config.default_device_type == trt.DeviceType.DLA
    if dla and any(not config.can_run_on_DLA(lay) for lay in network._layers) and "GPU_FALLBACK" not in flags:
        log(Severity.ERROR, "Error Code 2: layer cannot run on DLA and GPU fallback is disabled")
        return False
    if (config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.AMPERE_PLUS
            and version_tuple(MACHINE["compute_capability"]) < (8, 0, 0)):
        log(Severity.ERROR, "Error Code 9: hardware compatibility requires Ampere or newer")
        return False
    if dynamic and getattr(config, "int8_calibrator", None) is not None and "INT8" in flags \
            and config._calib_profile is None:
        log(Severity.ERROR, "Error Code 4: calibration profile must be set for dynamic shapes")
        return False
    return True


def _calibrate(network, config, calib, log) -> bool | None:
    """Run the calibrator the way TensorRT does: the cache if it gives one, else two passes over the data."""
    rec = config._api.rec
    calib.get_batch_size()
    cache = calib.read_calibration_cache()
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
            rec.add("calibrator.get_batch", tuple(names), tuple(ptrs))
            for name, ptr in zip(names, ptrs):
                shape = cshapes.get(name, ((0,), (0,), (0,)))[1]
                t = next(t for t in network._inputs if t.name == name)
                need = int(np.prod(shape)) * np.dtype(NP_OF[t.dtype.name]).itemsize
                if ptr not in MEMORY or len(MEMORY[ptr]) < need:
                    log(Severity.ERROR, f"calibration batch for {name} is not a device buffer of {need} bytes")
                    return None
    calib.write_calibration_cache(memoryview(b"TRT-FAKE-CALIBRATION-CACHE v1"))
    return True


def _layer_entry(lay, network, flags: set[str], strongly: bool, calibrated: bool) -> dict:
    """A layer of the plan with the precision (and tactic) TensorRT would pick."""
    if lay.type == "Quantize" or (lay.type == "MatrixMultiply" and (network._has_qdq or calibrated)):
        prec = "Int8"
    elif strongly:
        prec = "Half" if network._onnx_precision == "fp16" else "Float"
    else:
        prec = "Half" if "FP16" in flags else "Float"
    tf32 = prec == "Float" and "TF32" in flags and version_tuple(MACHINE["compute_capability"]) >= (8, 0, 0)
    tactic = "sm80_xmma_gemm_tf32f32_tf32f32_f32_nn" if tf32 and lay.type == "MatrixMultiply" else "fake_kernel"
    return {"name": lay.name, "type": lay.type, "precision": prec, "tactic": tactic}


def _io(network, prof) -> tuple[list, list]:
    sym_src: dict[str, tuple[str, int]] = {}
    for t in network._inputs:
        for axis, d in enumerate(network._symbols.get(t.name, [])):
            if isinstance(d, str):
                sym_src.setdefault(d, (t.name, axis))
    inputs = [{"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape),
               "profile": [list(s) for s in prof.get(t.name, (t.shape, t.shape, t.shape))]} for t in network._inputs]
    outputs = []
    for t in network._outputs:
        rule = [d if isinstance(d, int) else list(sym_src.get(d, ("", -1))) for d in network._symbols.get(t.name, [])]
        outputs.append({"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape), "rule": rule})
    return inputs, outputs


class Builder:
    def __init__(self, logger):
        self._api.rec.add("Builder", logger)
        self._logger = logger

    @property
    def num_DLA_cores(self):
        return int(MACHINE.get("dla_cores", 0))

    def create_network(self, flags=0):
        self._api.rec.add("Builder.create_network", int(flags))
        return self._api.trt.INetworkDefinition(int(flags))

    def create_builder_config(self):
        self._api.rec.add("Builder.create_builder_config")
        config = self._api.trt.IBuilderConfig()
        object.__setattr__(config, "_logger", self._logger)
        return config

    def create_optimization_profile(self):
        self._api.rec.add("Builder.create_optimization_profile")
        return self._api.trt.IOptimizationProfile()

    def build_serialized_network(self, network, config):
        api, trt, log = self._api, self._api.trt, self._logger.log
        api.rec.add("Builder.build_serialized_network")
        strongly = api.v11 or network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        flags = set(config._flags)
        if not _check(network, config, flags, strongly, log):
            return None
        calibrated = False
        calib = getattr(config, "int8_calibrator", None) if not api.v11 else None
        if calib is not None and "INT8" not in flags:
            log(Severity.WARNING, "Calibrator is not being used. Users must provide dynamic range for all "
                                  "tensors that are not Int32 or Bool.")
        elif calib is not None:
            calibrated = _calibrate(network, config, calib, log)
            if calibrated is None:
                return None
        if config._timing_cache is not None:
            config._timing_cache._entries += len(network._layers)
        prof = config._profiles[0]._shapes if config._profiles else {}
        inputs, outputs = _io(network, prof)
        dla = config.default_device_type == trt.DeviceType.DLA
        plan = {
            "version": api.version, "cc": MACHINE["compute_capability"], "gpu": MACHINE["name"],
            "hw": trt.HardwareCompatibilityLevel(config.hardware_compatibility_level).name,
            "version_compatible": "VERSION_COMPATIBLE" in flags, "strongly_typed": strongly,
            "flags": sorted(flags), "dla_core": config.DLA_core if dla else None,
            "verbosity": trt.ProfilingVerbosity(config.profiling_verbosity).name,
            "inputs": inputs, "outputs": outputs,
            "layers": [_layer_entry(lay, network, flags, strongly, calibrated) for lay in network._layers],
            "workspace": config._pools.get("WORKSPACE"),
        }
        return trt.IHostMemory(MAGIC + json.dumps(plan).encode())


CLASSES = (IOptimizationProfile, IHostMemory, ITimingCache, Builder)
