"""The fake runtime side: Runtime.deserialize_cuda_engine (TensorRT's version and GPU checks, version-compatible
plans across the supported majors), the engine, its execution context (named tensors only; the "kernel" writes
mean(x[b]) (+ mean(h0[:, b])) to every output, enqueued on the caller's stream with CUDA's ordering rules, see
cuda.py) and the engine inspector."""

from __future__ import annotations

import functools
import json

import numpy as np

from . import cuda
from .builder import MAGIC
from .cuda import COLD_MS, KERNEL_MS, MACHINE, Op
from .pybind import (PybindObject, cast_bool, cast_buffer, cast_dims, cast_enum, cast_instance, cast_int, cast_seq,
                     cast_str, checked_set, pybind)
from .tensorrt_api import NP_OF, version_tuple


class EngineInspector(PybindObject):
    def _init(self, engine):
        self._engine = engine
        self._context = None

    @property
    def execution_context(self):
        return self._context

    @execution_context.setter
    def execution_context(self, value):
        self._context = checked_set(self, "execution_context", value, cast_instance("IExecutionContext", none_ok=True))

    @pybind(format=cast_enum("LayerInformationFormat"))
    def get_engine_information(self, format):  # noqa: A002
        """The engine inspector's JSON in the schema of this version: 10.x layer tensors carry "Format/Datatype"
        and the engine "Bindings" (names); 11.x splits the tensor field into "Datatype" and "Format" and lists
        "I/O Tensors" as objects (NVIDIA's 10.x -> 11.x IEngineInspector migration guide)."""
        self._api.rec.add("EngineInspector.get_engine_information", format.name)
        plan = self._engine._plan
        io = self._io_tensors(plan)
        if plan["verbosity"] != "DETAILED":
            return json.dumps({"Layers": [lay["name"] for lay in plan["layers"]], **io})
        concrete = self._context is not None or not any(d < 0 for t in plan["inputs"] for d in t["shape"])
        layers = []
        for lay in plan["layers"]:
            tensor = self._tensor(lay["precision"], concrete)
            layers.append({"Name": lay["name"], "LayerType": lay["type"],
                           "Inputs": [{"Name": "in", **tensor}], "Outputs": [{"Name": "out", **tensor}],
                           "TacticName": lay.get("tactic", ""), "TacticValue": "0x0"})
        return json.dumps({"Layers": layers, **io})

    def _tensor(self, precision: str, concrete: bool) -> dict:
        if not self._api.v11:
            return {"Format/Datatype": f"Row major linear {precision}" if concrete else "N/A due to dynamic shapes"}
        if not concrete:
            return {"Format": "N/A due to dynamic shapes", "Datatype": "N/A due to dynamic shapes"}
        return {"Format": "Row major linear", "Datatype": precision}

    def _io_tensors(self, plan) -> dict:
        if not self._api.v11:
            return {"Bindings": [t["name"] for t in plan["inputs"] + plan["outputs"]]}
        names = {"FLOAT": "Float", "HALF": "Half", "INT8": "Int8", "INT32": "Int32", "INT64": "Int64", "BOOL": "Bool"}
        return {"I/O Tensors": [
            {"Name": t["name"], "IOMode": mode, "DataType": names.get(t["dtype"], t["dtype"]), "Dimensions": t["shape"],
             "Location": "Device", "IsShapeInferenceIO": False}
            for mode, ts in (("Input", plan["inputs"]), ("Output", plan["outputs"])) for t in ts]}


class ICudaEngine(PybindObject):
    def _init(self, plan, logger, data):
        mode = self._api.enum("TensorIOMode")
        self._plan, self._logger, self._data = plan, logger, data
        self._device = MACHINE["current_device"]   # TensorRT loads an engine onto the current device
        self._io = [(t, mode.INPUT) for t in plan["inputs"]] + [(t, mode.OUTPUT) for t in plan["outputs"]]

    @property
    def num_io_tensors(self):
        return len(self._io)

    @property
    def num_optimization_profiles(self):
        return 1

    @property
    def num_layers(self):
        return len(self._plan["layers"])

    @property
    def name(self):
        return "fake-engine"

    @property
    def hardware_compatibility_level(self):
        return self._api.member("HardwareCompatibilityLevel", self._plan["hw"])

    def _t(self, name):
        for t, mode in self._io:
            if t["name"] == name:
                return t, mode
        raise KeyError(name)

    @pybind(index=cast_int)
    def get_tensor_name(self, index):
        return self._io[index][0]["name"]

    @pybind(name=cast_str)
    def get_tensor_mode(self, name):
        return self._t(name)[1] if any(t["name"] == name for t, _ in self._io) else self._api.member("TensorIOMode",
                                                                                                       "NONE")

    @pybind(name=cast_str)
    def get_tensor_dtype(self, name):
        return self._api.member("DataType", self._t(name)[0]["dtype"])

    @pybind(name=cast_str)
    def get_tensor_shape(self, name):
        return self._api.trt.Dims(list(self._t(name)[0]["shape"]))

    @pybind(name=cast_str, profile_index=cast_int)
    def get_tensor_profile_shape(self, name, profile_index):
        t, mode = self._t(name)
        if mode != self._api.member("TensorIOMode", "INPUT") or profile_index != 0:
            raise RuntimeError("get_tensor_profile_shape: not an input of this profile")
        return [self._api.trt.Dims(list(s)) for s in t["profile"]]

    @pybind(strategy=cast_enum("ExecutionContextAllocationStrategy"))
    def create_execution_context(self, strategy=None):
        self._api.rec.add("ICudaEngine.create_execution_context", device=MACHINE["current_device"])
        if MACHINE["current_device"] != self._device:
            self._api.log(self._logger, "ERROR", f"Error Code 1: Cuda Runtime (invalid device context: the engine "
                                                 f"is on cuda:{self._device}, the current device is "
                                                 f"cuda:{MACHINE['current_device']})")
            return None
        return self._api.trt.IExecutionContext._make(self)

    def create_engine_inspector(self):
        return self._api.trt.EngineInspector._make(self)

    def serialize(self):
        return self._api.trt.IHostMemory(self._data)

    # the legacy binding API (removed in TensorRT 10) is deliberately absent: no get_binding_index,
    # no num_bindings, no binding_is_input.


class IProfiler(PybindObject):
    """The profiler interface: a Python profiler subclasses it, calls the base __init__ and implements
    report_layer_time(layer_name, ms), which TensorRT calls once per engine layer for each enqueue (or for the last
    enqueue, on report_to_profiler(), when enqueue_emits_profile is False: trtexec's way, sampleInference.cpp)."""

    _constructible = True

    def __init__(self):
        self._ready()

    def report_layer_time(self, layer_name, ms):
        raise RuntimeError('Tried to call pure virtual function "IProfiler::reportLayerTime"')


class IExecutionContext(PybindObject):
    def _init(self, engine):
        self._engine = engine
        self._shapes: dict[str, tuple] = {}
        self._addresses: dict[str, int] = {}
        self._cold = True   # the first enqueue after a shape change does setup work (and cannot be captured)
        self._profiler = None
        self._emits = True
        self._last_profile: list | None = None

    @property
    def profiler(self):
        return self._profiler

    @profiler.setter
    def profiler(self, value):
        self._profiler = checked_set(self, "profiler", value, cast_instance("IProfiler", none_ok=True))

    @property
    def enqueue_emits_profile(self):
        return self._emits

    @enqueue_emits_profile.setter
    def enqueue_emits_profile(self, value):
        self._emits = checked_set(self, "enqueue_emits_profile", value, cast_bool)

    def report_to_profiler(self):
        """Report the last enqueue's layer times to the profiler (enqueue_emits_profile False)."""
        self._api.rec.add("IExecutionContext.report_to_profiler")
        if self._profiler is None or self._last_profile is None:
            return False
        for name, ms in self._last_profile:
            self._profiler.report_layer_time(name, ms)
        return True

    def _profile(self, total_ms: float) -> None:
        """Layer times of one enqueue: the kernel time shared by the engine's layers (the recurrence weighs most)."""
        layers = self._engine._plan["layers"]
        weights = [4.0 if lay["type"] == "Loop" else 1.0 for lay in layers]
        self._last_profile = [(lay["name"], total_ms * w / sum(weights)) for lay, w in zip(layers, weights)]
        if self._profiler is not None and self._emits:
            self.report_to_profiler()

    @property
    def engine(self):
        return self._engine

    def _log(self, severity, msg):
        self._api.log(self._engine._logger, severity, msg)

    @pybind(profile_index=cast_int, stream_handle=cast_int)
    def set_optimization_profile_async(self, profile_index, stream_handle):
        self._api.rec.add("IExecutionContext.set_optimization_profile_async", profile_index, stream_handle)
        return profile_index == 0

    @pybind(name=cast_str, shape=cast_dims)
    def set_input_shape(self, name, shape):
        self._api.rec.add("IExecutionContext.set_input_shape", name, shape)
        t, _ = self._engine._t(name)
        lo, _opt, hi = t["profile"]
        if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
            self._log("ERROR", f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check "
                               f"failed, condition: engineDims.d[i] == dims.d[i] or within the profile: {name} "
                               f"{list(shape)} is outside [{lo}, {hi}])")
            return False
        if self._shapes.get(name) != shape:
            self._cold = True
        self._shapes[name] = shape
        return True

    @pybind(name=cast_str)
    def get_tensor_shape(self, name):
        t, mode = self._engine._t(name)
        if mode == self._api.member("TensorIOMode", "INPUT"):
            return self._api.trt.Dims(list(self._shapes.get(name, tuple(t["shape"]))))
        out = []
        for d in t["rule"]:
            if isinstance(d, int):
                out.append(d)
            else:
                src, axis = d
                out.append(self._shapes[src][axis] if src in self._shapes and axis >= 0 else -1)
        if any(d < 0 for d in out) and "onnx" in self._engine._plan and all(
                i["name"] in self._shapes or min(i["shape"]) >= 0 for i in self._engine._plan["inputs"]):
            from .engine_math import output_shapes   # a marked tensor whose shape the plan cannot say

            out = list(output_shapes(self._engine._plan, dict(self._shapes))[name])
        return self._api.trt.Dims(out)

    @pybind(name=cast_str, memory=cast_int)
    def set_tensor_address(self, name, memory):
        self._api.rec.add("IExecutionContext.set_tensor_address", name, memory)
        if not any(t["name"] == name for t, _ in self._engine._io):
            self._log("ERROR", f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error (tensor {name} "
                               "is not an input or output of the engine)")
            return False
        self._addresses[name] = memory
        return True

    @pybind(name=cast_str)
    def get_tensor_address(self, name):
        return self._addresses.get(name, 0)

    def infer_shapes(self):
        return []

    @pybind(bindings=cast_seq(cast_int, "int"))
    def execute_v2(self, bindings):  # exists in 10.x and 11.x; edgelstm must never call it (synchronous)
        self._api.rec.add("IExecutionContext.execute_v2", bindings)
        return True

    def _on_its_device(self, stream_handle) -> bool:
        """The stream, every tensor and the current device are the engine's device (multi-GPU machines)."""
        engine_device = self._engine._device
        places = [("the stream", cuda.DEVICE.stream_device(stream_handle))]
        places += [(f"tensor {name!r}", cuda.DEVICE.device_of(ptr)) for name, ptr in self._addresses.items()]
        places.append(("the current device", MACHINE["current_device"]))
        wrong = [(what, dev) for what, dev in places if dev is not None and dev != engine_device]
        if wrong:
            what, dev = wrong[0]
            self._log("ERROR", f"IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (an illegal memory access "
                               f"was encountered: {what} is on cuda:{dev}, the engine on cuda:{engine_device})")
        return not wrong

    def _shape_of(self, t) -> tuple:
        if t in self._engine._plan["inputs"]:
            return self._shapes.get(t["name"], tuple(t["shape"]))
        return tuple(self.get_tensor_shape(t["name"]))

    @pybind(stream_handle=cast_int)
    def execute_async_v3(self, stream_handle):
        self._api.rec.add("IExecutionContext.execute_async_v3", stream_handle)
        plan = self._engine._plan
        for t in plan["inputs"]:
            if t["name"] not in self._shapes and any(d < 0 for d in t["shape"]):
                self._log("ERROR", f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (input {t['name']} "
                                   "has a dynamic shape that was not set with set_input_shape)")
                return False
        missing = [t["name"] for t in plan["inputs"] + plan["outputs"] if t["name"] not in self._addresses]
        if missing:
            self._log("ERROR", f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (no address set for "
                               f"{missing})")
            return False
        if not cuda.DEVICE.knows_stream(stream_handle):
            self._log("ERROR", "IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (invalid resource handle)")
            return False
        if not self._on_its_device(stream_handle):
            return False
        for t in plan["inputs"] + plan["outputs"]:
            need = int(np.prod(self._shape_of(t))) * np.dtype(NP_OF[t["dtype"]]).itemsize
            have = cuda.DEVICE.size(self._addresses[t["name"]])
            if isinstance(cuda.DEVICE, cuda.HostDevice) and (have is None or have < need):
                self._log("ERROR", f"IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (an illegal memory "
                                   f"access was encountered: {t['name']} needs {need} bytes at "
                                   f"{self._addresses[t['name']]:#x}, which " +
                                   ("is not device memory)" if have is None else f"holds {have})"))
                return False
        if cuda.DEVICE.is_capturing(stream_handle) and self._cold:
            self._log("ERROR", "IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (operation not permitted "
                               "when stream is capturing: the first enqueue after a shape change does setup work "
                               "that cannot be captured; enqueue once before capturing)")
            return False
        ms = KERNEL_MS + (COLD_MS if self._cold else 0.0)
        self._cold = False
        if not cuda.DEVICE.is_capturing(stream_handle):
            self._profile(KERNEL_MS)
        shapes = {t["name"]: self._shape_of(t) for t in plan["inputs"] + plan["outputs"]}
        addrs = dict(self._addresses)
        cuda.DEVICE.enqueue(stream_handle, Op(
            "kernel", "TensorRT's enqueue (execute_async_v3)", ms,
            reads=tuple(addrs[t["name"]] for t in plan["inputs"]),
            writes=tuple(addrs[t["name"]] for t in plan["outputs"]),
            fn=functools.partial(self._compute, shapes, addrs)))
        return True

    def _compute(self, shapes, addrs):
        """y[b, ...] = mean(x[b]) (+ mean(h0[:, b]) for stateful engines): enough to check data flow."""
        plan = self._engine._plan
        arrays = {}
        for t in plan["inputs"]:
            shape = shapes[t["name"]]
            dt = np.dtype(NP_OF[t["dtype"]])
            n = int(np.prod(shape)) * dt.itemsize
            arrays[t["name"]] = np.frombuffer(cuda.DEVICE.read(addrs[t["name"]], n), dtype=dt).reshape(shape)
        if "onnx" in plan:   # install(..., engine_math="onnxruntime"): the engine computes the network
            from .engine_math import compute

            results = compute(plan, arrays)
            for t in plan["outputs"]:
                value = np.asarray(results[t["name"]]).reshape(shapes[t["name"]])
                cuda.DEVICE.write(addrs[t["name"]], value.astype(NP_OF[t["dtype"]]).tobytes())
            return
        data = [a for k, a in arrays.items() if k not in ("h0", "c0")][0].astype(np.float64)
        per_b = data.reshape(data.shape[0], -1).mean(axis=1)
        if "h0" in arrays:
            h0 = arrays["h0"].astype(np.float64)
            per_b = per_b + h0.transpose(1, 0, 2).reshape(h0.shape[1], -1).mean(axis=1)
        for t in plan["outputs"]:
            shape = shapes[t["name"]]
            out = np.empty(shape, dtype=np.float64)
            baxis = next((i for i, d in enumerate(t["rule"]) if isinstance(d, list) and
                          ((d[0] not in ("h0", "c0") and d[1] == 0) or (d[0] in ("h0", "c0") and d[1] == 1))), None)
            if baxis is None:
                out[...] = per_b.mean()
            else:
                view = [1] * len(shape)
                view[baxis] = shape[baxis]
                out[...] = per_b.reshape(view)
            cuda.DEVICE.write(addrs[t["name"]], out.astype(NP_OF[t["dtype"]]).tobytes())


class Runtime(PybindObject):
    _constructible = True

    @pybind(logger=cast_instance("ILogger"))
    def __init__(self, logger):
        self._ready()
        self._api.rec.add("Runtime", logger)
        self._logger = logger
        self._dla_core = -1
        self._host_code = False

    @property
    def logger(self):
        return self._logger

    @property
    def num_DLA_cores(self):  # noqa: N802 - TensorRT's name
        return int(MACHINE.get("dla_cores", 0))

    @property
    def DLA_core(self):  # noqa: N802
        return self._dla_core

    @DLA_core.setter
    def DLA_core(self, value):  # noqa: N802
        self._dla_core = checked_set(self, "DLA_core", value, cast_int)

    @property
    def engine_host_code_allowed(self):
        return self._host_code

    @engine_host_code_allowed.setter
    def engine_host_code_allowed(self, value):
        self._host_code = checked_set(self, "engine_host_code_allowed", value, cast_bool)

    @pybind(serialized_engine=cast_buffer)
    def deserialize_cuda_engine(self, serialized_engine):
        data = serialized_engine
        api = self._api

        def log(msg):
            api.log(self._logger, "ERROR", msg)

        api.rec.add("Runtime.deserialize_cuda_engine", len(data))
        try:
            if not data.startswith(MAGIC):
                raise ValueError
            plan = json.loads(data[len(MAGIC):].decode())
        except (ValueError, UnicodeDecodeError):
            log("1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization (Serialization assertion "
                "plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.)")
            return None
        if plan["version_compatible"] and not self._host_code:
            log("Error Code 1: Serialization (engine host code is not allowed; set engine_host_code_allowed for a "
                "version-compatible engine)")
            return None
        if not api.loads(plan["version"], plan["version_compatible"]):
            log(f"Error Code 6: API Usage Error (The engine plan file is not compatible with this version of "
                f"TensorRT, expecting library version {api.version} got {plan['version']}, please rebuild.)")
            return None
        cc_here, cc_built = version_tuple(MACHINE["compute_capability"]), version_tuple(plan["cc"])
        if (plan["hw"] == "AMPERE_PLUS" and cc_here < (8, 0, 0)) or (plan["hw"] != "AMPERE_PLUS" and cc_here != cc_built):
            log(f"Error Code 1: Serialization (The engine plan file is generated on an incompatible device, "
                f"expecting compute {MACHINE['compute_capability']} got compute {plan['cc']}, please rebuild.)")
            return None
        return api.trt.ICudaEngine._make(plan, self._logger, data)


CLASSES = (EngineInspector, ICudaEngine, IProfiler, IExecutionContext, Runtime)
