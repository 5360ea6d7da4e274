"""Recording stand-ins of the CUDA modules edgelstm's buffer backends call: cuda-python's runtime bindings
(`cuda.bindings.runtime`), `pycuda.driver` and the piece of `torch.cuda` the torch backend uses. With them the
real backend code (edgelstm/runners/cuda_*backend.py) runs in CI, on the fake GPU of cuda.py (its memory,
streams, ordering and timelines), so the fake TensorRT engine reads what the real backend code wrote.

Their surface is the real one: names, parameter names and return conventions come from cuda-bindings 12.9.10
(imported without a GPU and walked: tests/cuda_api/cuda-bindings-12.9.10.json, made by scripts/cuda_api_surface.py),
pycuda 2026.1's sources (src/wrapper/wrap_cudadrv.cpp: tests/cuda_api/pycuda-2026.1.json) and the installed
torch (checked live); tests/test_trt_cuda_modules.py compares them. What each enforces, as the real library does:

- cuda-python: every call returns a tuple whose first item is a `cudaError_t`; handles convert like the real
  bindings (ints, `cudaStream_t`, None for stream 0; a str is a TypeError); `cudaMemcpyAsync` whose kind does not
  match the pointers (a host-to-device copy with the device-to-host kind) -> cudaErrorInvalidMemcpyDirection;
  `cudaEventElapsedTime` before the end event completed (no `cudaEventSynchronize`) -> cudaErrorNotReady; an event
  recorded on a stream of another device -> cudaErrorInvalidResourceHandle; `cudaSetDevice` of a missing device ->
  cudaErrorInvalidDevice. Allocations, streams and events belong to the current device (`cudaSetDevice`).
- pycuda: calls that need a context fail without one pushed ("invalid device context"); the primary context of
  `Device(n)` makes n current; `Event.time_till` before the end event completed raises pycuda's RuntimeError
  ("device not ready"); `memcpy_dtoh_async` lands at synchronisation.
- torch: tensors live on the device they were made for (`device="cuda:N"`); `Stream(device=N)`; `cuda.device(N)`
  makes N current; `Event.elapsed_time` before both events completed raises; `.to("cpu")` synchronises.

Every call is recorded in `CUDA.calls` as "<library>.<name>" with the current device.
"""

from __future__ import annotations

import ctypes
import sys
import types
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import cuda as _gpu
from .cuda import CUDA, MACHINE, MEMORY, OWNER, CudaError, FakeEvent

CUDA_BINDINGS_VERSION = "12.9.10"
PYCUDA_VERSION = "2026.1"

# cudaError_t members the stand-in returns (values of cuda-bindings 12.9.10)
CUDA_ERRORS = {"cudaSuccess": 0, "cudaErrorInvalidValue": 1, "cudaErrorInvalidMemcpyDirection": 21,
               "cudaErrorInvalidDevice": 101, "cudaErrorInvalidResourceHandle": 400, "cudaErrorNotReady": 600,
               "cudaErrorIllegalAddress": 700, "cudaErrorStreamCaptureUnsupported": 900}
MEMCPY_KINDS = {"cudaMemcpyHostToHost": 0, "cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2,
                "cudaMemcpyDeviceToDevice": 3, "cudaMemcpyDefault": 4}
CAPTURE_MODES = {"cudaStreamCaptureModeGlobal": 0, "cudaStreamCaptureModeThreadLocal": 1,
                 "cudaStreamCaptureModeRelaxed": 2}


def _record(library: str, name: str, *args) -> None:
    CUDA.calls.add(f"{library}.{name}", *args, device=MACHINE["current_device"])


def _as_int(value: Any, what: str) -> int:
    """How cuda-bindings converts a handle or pointer argument: int(x) of an int, a handle object or a float;
    None is 0; anything else is TypeError("an integer is required")."""
    if value is None:
        return 0
    if isinstance(value, (str, bytes)) or not hasattr(type(value), "__int__"):
        raise TypeError(f"{what}: an integer is required")
    return int(value)


# ------------------------------------------------------------------------------------------------ cuda-python


class _Enum(int):
    """A member of a cuda-bindings enum: an int with `.name`/`.value` and the real repr."""

    def __new__(cls, name: str, value: int, owner: str):
        obj = int.__new__(cls, value)
        obj.name, obj.owner = name, owner
        return obj

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{self.owner}.{self.name}: {int(self)}>"


def _enum(owner: str, members: dict[str, int]) -> type:
    """An enum class whose members are instances of it (as in cuda-bindings: type(member) is the enum)."""
    cls = type(owner, (_Enum,), {})
    for name, value in members.items():
        setattr(cls, name, cls(name, value, owner))
    return cls


class _Handle:
    """cudaStream_t / cudaEvent_t / cudaGraph_t / cudaGraphExec_t: an opaque handle with int()."""

    kind = "handle"

    def __init__(self, init_value: int = 0):
        self._value = _as_int(init_value, type(self).__name__)

    def __int__(self) -> int:
        return self._value

    def __index__(self) -> int:
        return self._value

    def getPtr(self) -> int:  # noqa: N802 - the real method name
        return id(self)

    def __repr__(self) -> str:
        return f"<{self.kind} {self._value:#x}>"


class cudaStream_t(_Handle):  # noqa: N801 - the real class name
    kind = "CUstream"


class cudaEvent_t(_Handle):  # noqa: N801
    kind = "CUevent"


class cudaGraph_t(_Handle):  # noqa: N801
    kind = "CUgraph"


class cudaGraphExec_t(_Handle):  # noqa: N801
    kind = "CUgraphExec"


class cudaDeviceProp:  # noqa: N801
    def __init__(self, device: int = 0):
        self.name = MACHINE["name"].encode() + b"\x00" * 8
        major, minor = (int(x) for x in str(MACHINE["compute_capability"]).split(".")[:2])
        self.major, self.minor = major, minor
        self.totalGlobalMem = 24 * 1024 ** 3 + device  # noqa: N815 - the real field name


class FakeCudart:
    """The module object's state: events and graphs by handle."""

    def __init__(self):
        self.events: dict[int, FakeEvent] = {}
        self.graphs: dict[int, Any] = {}
        self.err = _enum("cudaError_t", CUDA_ERRORS)

    def e(self, name: str) -> tuple:
        return (getattr(self.err, name),)

    def module(self) -> types.ModuleType:
        rt = types.ModuleType("cuda.bindings.runtime")
        rt.cudaError_t = self.err
        rt.cudaMemcpyKind = _enum("cudaMemcpyKind", MEMCPY_KINDS)
        rt.cudaStreamCaptureMode = _enum("cudaStreamCaptureMode", CAPTURE_MODES)
        for cls in (cudaStream_t, cudaEvent_t, cudaGraph_t, cudaGraphExec_t, cudaDeviceProp):
            setattr(rt, cls.__name__, cls)
        for name in API_FUNCTIONS:
            setattr(rt, name, getattr(self, name))
        return rt

    # ---------------------------------------------------------------------------------------------- device
    def cudaGetDeviceCount(self):  # noqa: N802 - the real names
        _record("cudart", "cudaGetDeviceCount")
        return self.err.cudaSuccess, int(MACHINE["devices"])

    def cudaSetDevice(self, device):  # noqa: N802
        device = _as_int(device, "cudaSetDevice")
        _record("cudart", "cudaSetDevice", device)
        if not 0 <= device < MACHINE["devices"]:
            return self.e("cudaErrorInvalidDevice")
        MACHINE["current_device"] = device
        return self.e("cudaSuccess")

    def cudaGetDevice(self):  # noqa: N802
        return self.err.cudaSuccess, int(MACHINE["current_device"])

    def cudaGetDeviceProperties(self, device):  # noqa: N802
        device = _as_int(device, "cudaGetDeviceProperties")
        if not 0 <= device < MACHINE["devices"]:
            return self.err.cudaErrorInvalidDevice, None
        return self.err.cudaSuccess, cudaDeviceProp(device)

    # ---------------------------------------------------------------------------------------------- memory
    def cudaMalloc(self, size):  # noqa: N802
        ptr = CUDA.alloc(_as_int(size, "cudaMalloc"), MACHINE["current_device"])
        _record("cudart", "cudaMalloc", int(size), ptr)
        return self.err.cudaSuccess, ptr

    def cudaFree(self, devPtr):  # noqa: N802, N803 - the real parameter name
        ptr = _as_int(devPtr, "cudaFree")
        _record("cudart", "cudaFree", ptr)
        if ptr not in MEMORY:
            return self.e("cudaErrorInvalidValue")
        CUDA.release(ptr)
        return self.e("cudaSuccess")

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):  # noqa: N802
        dst, src = _as_int(dst, "cudaMemcpyAsync"), _as_int(src, "cudaMemcpyAsync")
        count, kind, s = int(count), _as_int(kind, "cudaMemcpyAsync"), _as_int(stream, "cudaMemcpyAsync")
        _record("cudart", "cudaMemcpyAsync", dst, src, count, kind, s)
        on_device = (dst in MEMORY, src in MEMORY)
        if kind == MEMCPY_KINDS["cudaMemcpyDefault"]:
            kind = {(True, False): 1, (False, True): 2}.get(on_device, -1)
        if kind not in (1, 2) or on_device != ((True, False) if kind == 1 else (False, True)):
            return self.e("cudaErrorInvalidMemcpyDirection")   # the pointers do not match the direction
        try:
            if kind == 1:
                CUDA.copy_in(dst, ctypes.string_at(src, count), s, "cudaMemcpyAsync")
            else:
                CUDA.copy_out(dst, src, count, s, "cudaMemcpyAsync")
        except CudaError:
            return self.e("cudaErrorInvalidValue")
        return self.e("cudaSuccess")

    # --------------------------------------------------------------------------------------------- streams
    def cudaStreamCreate(self):  # noqa: N802
        s = CUDA.new_stream(MACHINE["current_device"])
        _record("cudart", "cudaStreamCreate", s)
        return self.err.cudaSuccess, cudaStream_t(s)

    def cudaStreamDestroy(self, stream):  # noqa: N802
        s = _as_int(stream, "cudaStreamDestroy")
        _record("cudart", "cudaStreamDestroy", s)
        if s not in CUDA.streams:
            return self.e("cudaErrorInvalidResourceHandle")
        CUDA.destroy_stream(s)
        return self.e("cudaSuccess")

    def cudaStreamSynchronize(self, stream):  # noqa: N802
        s = _as_int(stream, "cudaStreamSynchronize")
        _record("cudart", "cudaStreamSynchronize", s)
        if s not in CUDA.streams:
            return self.e("cudaErrorInvalidResourceHandle")
        if CUDA.streams[s].capture is not None:
            return self.e("cudaErrorStreamCaptureUnsupported")
        CUDA.synchronize(s)
        return self.e("cudaSuccess")

    # ---------------------------------------------------------------------------------------------- events
    def cudaEventCreate(self):  # noqa: N802
        ev = FakeEvent(MACHINE["current_device"])
        self.events[ev.handle] = ev
        CUDA.live["event"].add(ev.handle)
        _record("cudart", "cudaEventCreate", ev.handle)
        return self.err.cudaSuccess, cudaEvent_t(ev.handle)

    def _event(self, event) -> FakeEvent | None:
        return self.events.get(_as_int(event, "event"))

    def cudaEventDestroy(self, event):  # noqa: N802
        ev = self._event(event)
        if ev is None:
            return self.e("cudaErrorInvalidResourceHandle")
        self.events.pop(ev.handle)
        CUDA.live["event"].discard(ev.handle)
        return self.e("cudaSuccess")

    def cudaEventRecord(self, event, stream):  # noqa: N802
        ev, s = self._event(event), _as_int(stream, "cudaEventRecord")
        _record("cudart", "cudaEventRecord", None if ev is None else ev.handle, s)
        if ev is None or s not in CUDA.streams or CUDA.streams[s].device != ev.device:
            return self.e("cudaErrorInvalidResourceHandle")    # unknown, or event and stream on two devices
        try:
            CUDA.stamp(ev, s, "cudaEventRecord")
        except CudaError:
            return self.e("cudaErrorStreamCaptureUnsupported")
        return self.e("cudaSuccess")

    def cudaEventSynchronize(self, event):  # noqa: N802
        ev = self._event(event)
        _record("cudart", "cudaEventSynchronize", None if ev is None else ev.handle)
        if ev is None:
            return self.e("cudaErrorInvalidResourceHandle")
        CUDA.wait_event(ev)
        return self.e("cudaSuccess")

    def cudaEventQuery(self, event):  # noqa: N802
        ev = self._event(event)
        _record("cudart", "cudaEventQuery", None if ev is None else ev.handle)
        if ev is None:
            return self.e("cudaErrorInvalidResourceHandle")
        return self.e("cudaSuccess" if CUDA.poll(ev) else "cudaErrorNotReady")

    def cudaEventElapsedTime(self, start, end):  # noqa: N802
        a, b = self._event(start), self._event(end)
        _record("cudart", "cudaEventElapsedTime")
        if a is None or b is None or a.t is None or b.t is None:
            return self.err.cudaErrorInvalidResourceHandle, 0.0
        if not (CUDA.event_done(a) and CUDA.event_done(b)):
            return self.err.cudaErrorNotReady, 0.0                # the host never waited for the end event
        return self.err.cudaSuccess, float(CUDA.timed(a, b))

    # ---------------------------------------------------------------------------------------------- graphs
    def cudaStreamBeginCapture(self, stream, mode):  # noqa: N802
        s = _as_int(stream, "cudaStreamBeginCapture")
        _record("cudart", "cudaStreamBeginCapture", s, _as_int(mode, "mode"))
        try:
            CUDA.begin_capture(s)
        except CudaError:
            return self.e("cudaErrorInvalidValue")
        return self.e("cudaSuccess")

    def cudaStreamEndCapture(self, stream):  # noqa: N802
        s = _as_int(stream, "cudaStreamEndCapture")
        _record("cudart", "cudaStreamEndCapture", s)
        try:
            graph = CUDA.end_capture(s)
        except CudaError:
            return self.err.cudaErrorInvalidValue, None
        self.graphs[graph.handle] = graph
        return self.err.cudaSuccess, cudaGraph_t(graph.handle)

    def cudaGraphInstantiate(self, graph, flags):  # noqa: N802
        g = self.graphs.get(_as_int(graph, "cudaGraphInstantiate"))
        _record("cudart", "cudaGraphInstantiate")
        if g is None:
            return self.err.cudaErrorInvalidValue, None
        exe = _gpu.FakeGraph(list(g))
        self.graphs[exe.handle] = exe
        CUDA.live["graph"].add(exe.handle)
        return self.err.cudaSuccess, cudaGraphExec_t(exe.handle)

    def cudaGraphDestroy(self, graph):  # noqa: N802
        g = self.graphs.pop(_as_int(graph, "cudaGraphDestroy"), None)
        if g is not None:
            CUDA.live["graph"].discard(g.handle)
        return self.e("cudaSuccess" if g is not None else "cudaErrorInvalidValue")

    def cudaGraphLaunch(self, graphExec, stream):  # noqa: N802, N803
        exe = self.graphs.get(_as_int(graphExec, "cudaGraphLaunch"))
        s = _as_int(stream, "cudaGraphLaunch")
        _record("cudart", "cudaGraphLaunch", s)
        if exe is None or exe.handle not in CUDA.live["graph"]:
            return self.e("cudaErrorInvalidValue")
        CUDA.launch(exe, s)
        return self.e("cudaSuccess")

    def cudaGraphExecDestroy(self, graphExec):  # noqa: N802, N803
        return self.cudaGraphDestroy(graphExec)


#: the runtime functions the stand-in has (each exists in cuda-bindings with these parameter names)
API_FUNCTIONS = tuple(n for n in vars(FakeCudart) if n.startswith("cuda"))


def cuda_python_modules() -> dict[str, types.ModuleType]:
    """sys.modules entries for `cuda`, `cuda.bindings` and `cuda.bindings.runtime` (the stand-in)."""
    rt = FakeCudart().module()
    pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    pkg.__path__, bindings.__path__ = [], []
    pkg.bindings, bindings.runtime = bindings, rt
    bindings.__version__ = CUDA_BINDINGS_VERSION
    return {"cuda": pkg, "cuda.bindings": bindings, "cuda.bindings.runtime": rt}


# ------------------------------------------------------------------------------------------------------ pycuda


class PycudaError(Exception):
    """pycuda._driver.Error"""


class PycudaLogicError(PycudaError):
    """pycuda._driver.LogicError"""


class PycudaRuntimeError(PycudaError):
    """pycuda._driver.RuntimeError"""


class _ContextStack:
    stack: list["Context"] = []
    before: list[int] = []


def _need_context(what: str) -> "Context":
    if not _ContextStack.stack:
        raise PycudaLogicError(f"{what} failed: invalid device context")
    return _ContextStack.stack[-1]


class Device:
    def __init__(self, number):
        number = int(number)
        if not 0 <= number < MACHINE["devices"]:
            raise PycudaLogicError("cuDeviceGet failed: invalid device ordinal")
        self.number = number

    @staticmethod
    def count():
        return int(MACHINE["devices"])

    def name(self):
        return MACHINE["name"]

    def compute_capability(self):
        return tuple(int(x) for x in str(MACHINE["compute_capability"]).split(".")[:2])

    def total_memory(self):
        return 24 * 1024 ** 3

    def retain_primary_context(self):
        _record("pycuda", "retain_primary_context", self.number)
        return Context(self.number)


class Context:
    def __init__(self, device: int):
        self.device, self.detached = device, False

    def push(self):
        _record("pycuda", "Context.push", self.device)
        _ContextStack.stack.append(self)
        _ContextStack.before.append(MACHINE["current_device"])
        MACHINE["current_device"] = self.device

    @staticmethod
    def pop():
        _record("pycuda", "Context.pop")
        if not _ContextStack.stack:
            raise PycudaLogicError("cuCtxPopCurrent failed: invalid device context")
        _ContextStack.stack.pop()
        MACHINE["current_device"] = _ContextStack.before.pop()   # the device current before the push

    def detach(self):
        _record("pycuda", "Context.detach", self.device)
        self.detached = True


class DeviceAllocation:
    def __init__(self, nbytes: int):
        self.ptr = CUDA.alloc(nbytes, _need_context("cuMemAlloc").device)

    def __int__(self):
        return self.ptr

    def __index__(self):
        return self.ptr

    def free(self):
        _need_context("cuMemFree")
        CUDA.release(self.ptr)


class Stream:
    def __init__(self, flags=0):
        self.handle = CUDA.new_stream(_need_context("cuStreamCreate").device)

    def synchronize(self):
        _need_context("cuStreamSynchronize")
        CUDA.synchronize(self.handle)

    def is_done(self):
        s = CUDA.streams[self.handle]
        return s.done >= s.seq

    def __del__(self):   # pycuda destroys a stream with its last reference
        if self.handle in CUDA.streams:
            CUDA.destroy_stream(self.handle)


class Event:
    def __init__(self, flags=0):
        self._ev = FakeEvent(_need_context("cuEventCreate").device)

    def record(self, stream=None):
        _need_context("cuEventRecord")
        CUDA.stamp(self._ev, 0 if stream is None else stream.handle, "cuEventRecord")
        return self

    def synchronize(self):
        CUDA.wait_event(self._ev)
        return self

    def query(self):
        return CUDA.poll(self._ev)

    def time_till(self, end):
        if not (CUDA.event_done(self._ev) and CUDA.event_done(end._ev)):
            raise PycudaRuntimeError("cuEventElapsedTime failed: device not ready")
        return float(CUDA.timed(self._ev, end._ev))

    def time_since(self, start):
        return start.time_till(self)


def mem_alloc(bytesize):
    _record("pycuda", "mem_alloc", int(bytesize))
    return DeviceAllocation(int(bytesize))


def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
    _need_context("cuMemHostAlloc")
    return np.empty(shape, dtype, order=order)


def memcpy_htod_async(dest, src, stream=None):
    _need_context("cuMemcpyHtoDAsync")
    data = np.ascontiguousarray(src).tobytes()
    _record("pycuda", "memcpy_htod_async", int(dest), len(data))
    CUDA.copy_in(int(dest), data, 0 if stream is None else stream.handle, "memcpy_htod_async")


def memcpy_dtoh_async(dest, src, stream=None):
    _need_context("cuMemcpyDtoHAsync")
    _record("pycuda", "memcpy_dtoh_async", int(src), dest.nbytes)
    CUDA.copy_out(dest, int(src), dest.nbytes, 0 if stream is None else stream.handle, "memcpy_dtoh_async")


def init(flags=0):
    _record("pycuda", "init")


PYCUDA_NAMES = ("init", "Device", "Context", "Stream", "Event", "mem_alloc", "pagelocked_empty", "memcpy_htod_async",
                "memcpy_dtoh_async")


def pycuda_modules() -> dict[str, types.ModuleType]:
    """sys.modules entries for `pycuda` and `pycuda.driver` (the stand-in); `pycuda.autoinit` is blocked."""
    _ContextStack.stack, _ContextStack.before = [], []
    drv = types.ModuleType("pycuda.driver")
    this = sys.modules[__name__]
    for name in PYCUDA_NAMES:
        setattr(drv, name, getattr(this, name))
    drv.Error, drv.LogicError, drv.RuntimeError = PycudaError, PycudaLogicError, PycudaRuntimeError
    pkg = types.ModuleType("pycuda")
    pkg.__path__, pkg.driver, pkg.VERSION_TEXT = [], drv, PYCUDA_VERSION
    return {"pycuda": pkg, "pycuda.driver": drv, "pycuda.autoinit": None}


# ------------------------------------------------------------------------------------------------------- torch


class _Dtype:
    def __init__(self, name: str, itemsize: int):
        self.name, self.itemsize = name, itemsize


uint8 = _Dtype("uint8", 1)


class CpuTensor:
    def __init__(self, array: np.ndarray):
        self._array = array

    def data_ptr(self):
        return int(self._array.ctypes.data)

    def numel(self):
        return int(self._array.size)


class CudaTensor:
    """A uint8 CUDA tensor (or a leading slice of one) on one device."""

    def __init__(self, ptr: int, offset: int, numel: int, base: "CudaTensor | None" = None):
        self._ptr, self._offset, self._numel, self._base = ptr, offset, numel, base

    def __del__(self):   # torch's caching allocator takes the memory back with the last reference
        if self._base is None and self._ptr in MEMORY:
            CUDA.release(self._ptr)

    def data_ptr(self):
        return self._ptr + self._offset

    def numel(self):
        return self._numel

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise NotImplementedError("the stand-in slices [a:b] only")
        a, b, _ = index.indices(self._numel)
        return CudaTensor(self._ptr, self._offset + a, max(0, b - a), self._base or self)

    def copy_(self, src, non_blocking=False):
        if self._offset:
            raise NotImplementedError("the stand-in copies into a slice starting at 0")
        stream = _TorchState.current_stream(OWNER[self._ptr])
        CUDA.copy_in(self._ptr, np.ascontiguousarray(src._array).tobytes()[: self._numel], stream, "copy_")
        if not non_blocking:
            CUDA.synchronize(stream)
        return self

    def to(self, device, non_blocking=False):
        if str(device) != "cpu" or self._offset:
            raise NotImplementedError("the stand-in copies to the cpu only")
        stream = _TorchState.current_stream(OWNER[self._ptr])
        out = np.empty(self._numel, np.uint8)
        CUDA.copy_out(out, self._ptr, self._numel, stream, "to")
        CUDA.synchronize(stream)   # a blocking copy: torch waits for the stream
        return CpuTensor(out)


class _TorchState:
    current: dict[int, Any] = {}      # device -> the current torch stream (None: the default stream)

    @classmethod
    def current_stream(cls, device: int) -> int:
        s = cls.current.get(device)
        return 0 if s is None else s.cuda_stream


def _cuda_index(device) -> int:
    if device is None:
        return MACHINE["current_device"]
    if isinstance(device, int):
        return device
    text = str(device)
    return int(text.split(":")[1]) if ":" in text else MACHINE["current_device"]


class TorchStream:
    def __init__(self, device=None, priority=0, **kwargs):
        self.device_index = _cuda_index(device)
        self.cuda_stream = CUDA.new_stream(self.device_index)

    def synchronize(self):
        CUDA.synchronize(self.cuda_stream)

    def __del__(self):   # torch destroys a stream with its last reference
        if self.cuda_stream in CUDA.streams:
            CUDA.destroy_stream(self.cuda_stream)


class TorchEvent:
    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        self._ev = FakeEvent(MACHINE["current_device"])
        self.enable_timing = enable_timing

    def record(self, stream=None):
        s = _TorchState.current_stream(self._ev.device) if stream is None else stream.cuda_stream
        CUDA.stamp(self._ev, s, "Event.record")

    def synchronize(self):
        CUDA.wait_event(self._ev)

    def query(self):
        return CUDA.poll(self._ev)

    def elapsed_time(self, end_event):
        if not self.enable_timing:
            raise RuntimeError("Events must be created with enable_timing=True to measure time")
        if not (CUDA.event_done(self._ev) and CUDA.event_done(end_event._ev)):
            raise RuntimeError("Both events must be completed before calculating elapsed time.")
        return float(CUDA.timed(self._ev, end_event._ev))


class _DeviceProperties:
    def __init__(self, device: int):
        self.name = MACHINE["name"]
        self.major, self.minor = (int(x) for x in str(MACHINE["compute_capability"]).split(".")[:2])
        self.total_memory = 24 * 1024 ** 3


@contextmanager
def _stream_ctx(stream):
    before = _TorchState.current.get(stream.device_index)
    _TorchState.current[stream.device_index] = stream
    try:
        yield stream
    finally:
        _TorchState.current[stream.device_index] = before


@contextmanager
def _device_ctx(device):
    before = MACHINE["current_device"]
    MACHINE["current_device"] = _cuda_index(device)
    try:
        yield
    finally:
        MACHINE["current_device"] = before


def _empty(*size, dtype=None, device=None, **kwargs):
    if dtype is not uint8 or not str(device).startswith("cuda"):
        raise NotImplementedError("the stand-in makes uint8 CUDA tensors only")
    index = _cuda_index(device)
    if not 0 <= index < MACHINE["devices"]:
        raise RuntimeError("CUDA error: invalid device ordinal")
    n = int(np.prod(size))
    _record("torch", "empty", n, index)
    return CudaTensor(CUDA.alloc(n, index), 0, n)


def torch_module() -> types.ModuleType:
    """A `torch` stand-in with what TorchBackend uses (names as in the real torch: tests check them)."""
    _TorchState.current = {}
    t = types.ModuleType("torch")
    t.uint8, t.empty, t.from_numpy = uint8, _empty, CpuTensor
    c = types.ModuleType("torch.cuda")
    c.is_available = lambda: MACHINE["devices"] > 0
    c.device_count = lambda: int(MACHINE["devices"])
    c.Stream, c.Event, c.stream, c.device = TorchStream, TorchEvent, _stream_ctx, _device_ctx
    c.get_device_properties = lambda device: _DeviceProperties(_cuda_index(device))
    t.cuda = c
    return t
