"""The fake runtime side: Runtime.deserialize_cuda_engine (TensorRT's version and GPU checks, version-compatible
plans across the supported majors), the engine, its execution context (named tensors only; the "kernel" writes
mean(x[b]) (+ mean(h0[:, b])) to every output) and the engine inspector."""

from __future__ import annotations

import json

import numpy as np

from .builder import MAGIC
from .cuda import CAPTURE, CLOCK, CUDA, MACHINE, MEMORY
from .tensorrt_api import NP_OF, Severity, version_tuple


class EngineInspector:
    def __init__(self, engine):
        self._engine = engine
        self.execution_context = None

    def get_engine_information(self, format):  # noqa: A002
        self._api.rec.add("EngineInspector.get_engine_information", self._api.trt.LayerInformationFormat(format).name)
        plan = self._engine._plan
        if plan["verbosity"] != "DETAILED":
            return json.dumps({"Layers": [lay["name"] for lay in plan["layers"]], "Bindings": []})
        concrete = self.execution_context is not None or not any(d < 0 for t in plan["inputs"] for d in t["shape"])
        layers = []
        for lay in plan["layers"]:
            fmt = f"Row major linear {lay['precision']}" if concrete else "N/A due to dynamic shapes"
            layers.append({"Name": lay["name"], "LayerType": lay["type"],
                           "Inputs": [{"Name": "in", "Format/Datatype": fmt}],
                           "Outputs": [{"Name": "out", "Format/Datatype": fmt}],
                           "TacticName": lay.get("tactic", ""), "TacticValue": "0x0"})
        return json.dumps({"Layers": layers, "Bindings": [t["name"] for t in plan["inputs"] + plan["outputs"]]})


class ICudaEngine:
    def __init__(self, plan):
        mode = self._api.trt.TensorIOMode
        self._plan = plan
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
    def hardware_compatibility_level(self):
        return self._api.trt.HardwareCompatibilityLevel[self._plan["hw"]]

    def _t(self, name):
        for t, mode in self._io:
            if t["name"] == name:
                return t, mode
        raise KeyError(name)

    def get_tensor_name(self, index):
        return self._io[index][0]["name"]

    def get_tensor_mode(self, name):
        return self._t(name)[1] if any(t["name"] == name for t, _ in self._io) else self._api.trt.TensorIOMode.NONE

    def get_tensor_dtype(self, name):
        return self._api.trt.DataType[self._t(name)[0]["dtype"]]

    def get_tensor_shape(self, name):
        return tuple(self._t(name)[0]["shape"])

    def get_tensor_profile_shape(self, name, profile_index):
        t, mode = self._t(name)
        if mode != self._api.trt.TensorIOMode.INPUT or profile_index != 0:
            raise RuntimeError("get_tensor_profile_shape: not an input of this profile")
        return [tuple(s) for s in t["profile"]]

    def create_execution_context(self, strategy=None):
        self._api.rec.add("ICudaEngine.create_execution_context")
        return self._api.trt.IExecutionContext(self)

    def create_engine_inspector(self):
        return self._api.trt.EngineInspector(self)

    # the legacy binding API (removed in TensorRT 10) is deliberately absent: no get_binding_index,
    # no num_bindings, no binding_is_input.


class IExecutionContext:
    def __init__(self, engine):
        self.engine = engine
        self._shapes: dict[str, tuple] = {}
        self._addresses: dict[str, int] = {}

    def set_optimization_profile_async(self, profile_index, stream_handle):
        self._api.rec.add("IExecutionContext.set_optimization_profile_async", profile_index, stream_handle)
        return True

    def set_input_shape(self, name, shape):
        self._api.rec.add("IExecutionContext.set_input_shape", name, tuple(shape))
        t, _ = self.engine._t(name)
        lo, _opt, hi = t["profile"]
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
            return False
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name):
        t, mode = self.engine._t(name)
        if mode == self._api.trt.TensorIOMode.INPUT:
            return self._shapes.get(name, tuple(t["shape"]))
        out = []
        for d in t["rule"]:
            if isinstance(d, int):
                out.append(d)
            else:
                src, axis = d
                out.append(self._shapes[src][axis] if src in self._shapes else -1)
        return tuple(out)

    def set_tensor_address(self, name, memory):
        self._api.rec.add("IExecutionContext.set_tensor_address", name, int(memory))
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name):
        return self._addresses.get(name, 0)

    def infer_shapes(self):
        return []

    def execute_v2(self, bindings):  # exists in 10.x; edgelstm must never call it
        self._api.rec.add("IExecutionContext.execute_v2", bindings)
        return True

    def execute_async_v3(self, stream_handle):
        self._api.rec.add("IExecutionContext.execute_async_v3", stream_handle)
        plan = self.engine._plan
        for t in plan["inputs"]:
            if t["name"] not in self._shapes and any(d < 0 for d in t["shape"]):
                return False
        if any(t["name"] not in self._addresses for t in plan["inputs"] + plan["outputs"]):
            return False
        if stream_handle in CUDA.capturing:
            CAPTURE[stream_handle].append(self._compute)
            return True
        self._compute()
        return True

    def _compute(self):
        """y[b, ...] = mean(x[b]) (+ mean(h0[:, b]) for stateful engines): enough to check data flow."""
        CLOCK["t"] += 1
        plan = self.engine._plan
        arrays = {}
        for t in plan["inputs"]:
            shape = self._shapes.get(t["name"], tuple(t["shape"]))
            dt = np.dtype(NP_OF[t["dtype"]])
            n = int(np.prod(shape)) * dt.itemsize
            arrays[t["name"]] = np.frombuffer(bytes(MEMORY[self._addresses[t["name"]]][:n]), dtype=dt).reshape(shape)
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
            MEMORY[self._addresses[t["name"]]][: len(raw)] = raw


class Runtime:
    def __init__(self, logger):
        self._api.rec.add("Runtime", logger)
        self._logger = logger
        self.DLA_core = -1
        self.engine_host_code_allowed = False

    @property
    def num_DLA_cores(self):
        return int(MACHINE.get("dla_cores", 0))

    def deserialize_cuda_engine(self, serialized_engine):
        data = bytes(serialized_engine)
        api, log = self._api, self._logger.log
        api.rec.add("Runtime.deserialize_cuda_engine", len(data))
        try:
            if not data.startswith(MAGIC):
                raise ValueError
            plan = json.loads(data[len(MAGIC):].decode())
        except (ValueError, UnicodeDecodeError):
            log(Severity.ERROR, "1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization (Serialization "
                                "assertion plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.)")
            return None
        if plan["version_compatible"] and not self.engine_host_code_allowed:
            log(Severity.ERROR, "Error Code 1: Serialization (engine host code is not allowed; set "
                                "engine_host_code_allowed for a version-compatible engine)")
            return None
        if not api.loads(plan["version"], plan["version_compatible"]):
            log(Severity.ERROR, f"Error Code 6: API Usage Error (The engine plan file is not compatible with this "
                                f"version of TensorRT, expecting library version {api.version} got {plan['version']}, "
                                f"please rebuild.)")
            return None
        cc_here, cc_built = version_tuple(MACHINE["compute_capability"]), version_tuple(plan["cc"])
        if (plan["hw"] == "AMPERE_PLUS" and cc_here < (8, 0, 0)) or (plan["hw"] != "AMPERE_PLUS" and cc_here != cc_built):
            log(Severity.ERROR, f"Error Code 1: Serialization (The engine plan file is generated on an incompatible "
                                f"device, expecting compute {MACHINE['compute_capability']} got compute "
                                f"{plan['cc']}, please rebuild.)")
            return None
        return self._api.trt.ICudaEngine(plan)


CLASSES = (EngineInspector, ICudaEngine, IExecutionContext, Runtime)
