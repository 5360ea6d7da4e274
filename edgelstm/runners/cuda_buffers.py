"""Device memory, streams, events and CUDA graphs for the TensorRT runner and calibrators.

Three interchangeable backends, tried in this order: pycuda (when installed; it needs CUDA headers to
build, which Jetson images often lack), cuda-python (`cuda.bindings.runtime`, or the older `cuda.cudart`),
and torch CUDA tensors. All of them expose the same small interface (`CudaBackend`), so the runner never
cares which one it got. Nothing here imports a CUDA library at module import time. Every backend works on the
device's primary context (the CUDA runtime's, which TensorRT and torch use too). CUDA graphs: cuda-python only.
On Jetson cuda-python is pinned to the L4T driver's CUDA minor (`>=12.6,<12.7` on JetPack 6.1/6.2): cuda.bindings
12.x needs minor-version compatibility to run on an older 12.y driver (docker/Dockerfile.jetson says more).
Every stream, event and graph a backend creates is destroyed again by its owner (`destroy_stream`, `destroy_event`,
`destroy_graph`): a long-lived process must not leak them. Tests use a stand-in (tests/fakes/cuda.py).
"""

from __future__ import annotations

import abc
import ctypes
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelstm.errors import BackendMissing

CUDA_INSTALL_HINT = ("pip install cuda-python (matching your CUDA major version), or pycuda, or a CUDA build of "
                     "torch; on Jetson (JetPack 6.1/6.2, CUDA 12.6): pip install \"cuda-python>=12.6,<12.7\" inside a "
                     "venv made with --system-site-packages")


@dataclass
class DeviceBuffer:
    ptr: int
    nbytes: int
    handle: Any = None  # keeps the owning object (pycuda allocation, torch tensor) alive


class CudaBackend(abc.ABC):
    """The interface every backend implements (pointers and handles are plain ints)."""

    name = "none"

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> DeviceBuffer: ...
    @abc.abstractmethod
    def free(self, buf: DeviceBuffer) -> None: ...
    @abc.abstractmethod
    def stream(self) -> int: ...
    @abc.abstractmethod
    def htod(self, buf: DeviceBuffer, host: np.ndarray, stream: int) -> None: ...
    @abc.abstractmethod
    def dtoh(self, host: np.ndarray, buf: DeviceBuffer, stream: int) -> None: ...
    @abc.abstractmethod
    def synchronize(self, stream: int) -> None: ...
    @abc.abstractmethod
    def event(self) -> Any: ...
    @abc.abstractmethod
    def record(self, event: Any, stream: int) -> None: ...
    @abc.abstractmethod
    def elapsed_ms(self, start: Any, end: Any) -> float: ...
    @abc.abstractmethod
    def device_info(self) -> dict[str, Any]: ...

    # CUDA graphs (optional, see supports_graphs): begin_capture/end_capture return an executable graph,
    # launch runs it. Backends without graph support say so instead of failing obscurely.
    supports_graphs = False

    def _no_graphs(self) -> BackendMissing:
        return BackendMissing(f"CUDA graph capture is not available through the {self.name} backend",
                              hint="install cuda-python (its backend captures CUDA graphs), or run without them")

    def begin_capture(self, stream: int) -> None:
        raise self._no_graphs()

    def end_capture(self, stream: int) -> Any:
        raise self._no_graphs()

    def launch(self, graph: Any, stream: int) -> None:
        raise self._no_graphs()

    # Releasing what stream() / event() / end_capture() made (defaults: handles the garbage collector frees).
    def destroy_stream(self, stream: int) -> None: pass

    def destroy_event(self, event: Any) -> None: pass

    def destroy_graph(self, graph: Any) -> None: pass

    def close(self) -> None: pass


# ------------------------------------------------------------------------------------------ cuda-python


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        return cudart
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
        return cudart


class CudaPythonBackend(CudaBackend):
    name = "cuda-python"
    supports_graphs = True

    def __init__(self):
        self.rt = _cudart()
        err, count = self.rt.cudaGetDeviceCount()
        self._check(err, "cudaGetDeviceCount")
        if count < 1:
            raise BackendMissing("cuda-python sees no CUDA device")
        self._check(self.rt.cudaSetDevice(0)[0], "cudaSetDevice")

    def _check(self, err, what: str) -> None:
        code = int(err.value) if hasattr(err, "value") else int(err)
        if code != 0:
            raise BackendMissing(f"CUDA call {what} failed: {err}", hint=CUDA_INSTALL_HINT)

    def malloc(self, nbytes: int) -> DeviceBuffer:
        err, ptr = self.rt.cudaMalloc(max(1, int(nbytes)))
        self._check(err, "cudaMalloc")
        return DeviceBuffer(int(ptr), int(nbytes))

    def free(self, buf: DeviceBuffer) -> None:
        self.rt.cudaFree(buf.ptr)

    def stream(self) -> int:
        err, s = self.rt.cudaStreamCreate()
        self._check(err, "cudaStreamCreate")
        return int(s)

    def htod(self, buf, host, stream):
        host = np.ascontiguousarray(host)
        self._check(self.rt.cudaMemcpyAsync(buf.ptr, host.ctypes.data, host.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)[0], "cudaMemcpyAsync")

    def dtoh(self, host, buf, stream):
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, buf.ptr, host.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)[0], "cudaMemcpyAsync")

    def synchronize(self, stream):
        self._check(self.rt.cudaStreamSynchronize(stream)[0], "cudaStreamSynchronize")

    def event(self):
        err, ev = self.rt.cudaEventCreate()
        self._check(err, "cudaEventCreate")
        return ev

    def record(self, event, stream):
        self._check(self.rt.cudaEventRecord(event, stream)[0], "cudaEventRecord")

    def elapsed_ms(self, start, end):
        self._check(self.rt.cudaEventSynchronize(end)[0], "cudaEventSynchronize")
        err, ms = self.rt.cudaEventElapsedTime(start, end)
        self._check(err, "cudaEventElapsedTime")
        return float(ms)

    def device_info(self):
        err, props = self.rt.cudaGetDeviceProperties(0)
        self._check(err, "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}",
                "memory_bytes": int(props.totalGlobalMem), "source": self.name}

    def begin_capture(self, stream):
        self._check(self.rt.cudaStreamBeginCapture(
            stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)[0], "cudaStreamBeginCapture")

    def end_capture(self, stream):
        err, graph = self.rt.cudaStreamEndCapture(stream)
        self._check(err, "cudaStreamEndCapture")
        try:
            err, exe = self.rt.cudaGraphInstantiate(graph, 0)
            self._check(err, "cudaGraphInstantiate")
        finally:
            self.rt.cudaGraphDestroy(graph)  # the executable graph does not need its template
        return exe

    def launch(self, graph, stream):
        self._check(self.rt.cudaGraphLaunch(graph, stream)[0], "cudaGraphLaunch")

    def destroy_stream(self, stream):
        self.rt.cudaStreamDestroy(stream)

    def destroy_event(self, event):
        self.rt.cudaEventDestroy(event)

    def destroy_graph(self, graph):
        self.rt.cudaGraphExecDestroy(graph)


# ------------------------------------------------------------------------------------------------ pycuda


class PycudaBackend(CudaBackend):
    """pycuda on the primary context (TensorRT's and torch's; `pycuda.autoinit` makes a second one that conflicts),
    pushed/popped around each call. Copies go through pinned buffers (async from pageable memory is synchronous); a
    device->host copy lands in the caller's array at `synchronize`. No CUDA graphs: pycuda cannot capture streams."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self):
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() < 1:
            raise BackendMissing("pycuda sees no CUDA device", hint=CUDA_INSTALL_HINT)
        self.cuda, self.device = cuda, cuda.Device(0)
        self.context = self.device.retain_primary_context()
        self._streams: dict[int, Any] = {}
        self._staging: dict[tuple[str, int], tuple[np.ndarray, Any]] = {}   # (direction, device ptr) -> pinned, event
        self._landing: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # stream -> (pinned, host) to copy out

    @contextmanager
    def _current(self):
        self.context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def _pinned(self, direction: str, buf: DeviceBuffer, nbytes: int) -> tuple[np.ndarray, Any]:
        pinned, done = self._staging.get((direction, buf.ptr), (None, None))
        if pinned is None or pinned.nbytes < nbytes:
            pinned, done = self._staging[(direction, buf.ptr)] = (self.cuda.pagelocked_empty(max(1, nbytes), np.uint8),
                                                                  self.cuda.Event())
        done.synchronize()   # the last copy through this staging buffer has finished: safe to reuse it
        return pinned[:nbytes], done

    def malloc(self, nbytes):
        with self._current():
            alloc = self.cuda.mem_alloc(max(1, int(nbytes)))
        return DeviceBuffer(int(alloc), int(nbytes), alloc)

    def free(self, buf):
        with self._current():
            self._staging.pop(("htod", buf.ptr), None)
            self._staging.pop(("dtoh", buf.ptr), None)
            if buf.handle is not None:
                buf.handle.free()

    def stream(self):
        with self._current():
            s = self.cuda.Stream()
        self._streams[int(s.handle)] = s
        return int(s.handle)

    def htod(self, buf, host, stream):
        src = np.ascontiguousarray(host).reshape(-1).view(np.uint8)
        with self._current():
            pinned, done = self._pinned("htod", buf, src.nbytes)
            pinned[:] = src
            self.cuda.memcpy_htod_async(buf.ptr, pinned, self._streams[stream])
            done.record(self._streams[stream])

    def dtoh(self, host, buf, stream):
        with self._current():
            pinned, done = self._pinned("dtoh", buf, host.nbytes)
            self.cuda.memcpy_dtoh_async(pinned, buf.ptr, self._streams[stream])
            done.record(self._streams[stream])
        self._landing.setdefault(stream, []).append((pinned, host))

    def synchronize(self, stream):
        with self._current():
            self._streams[stream].synchronize()
        for pinned, host in self._landing.pop(stream, []):
            host.reshape(-1).view(np.uint8)[:] = pinned

    def event(self):
        with self._current():
            return self.cuda.Event()

    def record(self, event, stream):
        with self._current():
            event.record(self._streams[stream])

    def elapsed_ms(self, start, end):
        with self._current():
            end.synchronize()
            return float(start.time_till(end))

    def device_info(self):
        major, minor = self.device.compute_capability()
        return {"name": self.device.name(), "compute_capability": f"{major}.{minor}",
                "memory_bytes": int(self.device.total_memory()), "source": self.name}

    def destroy_stream(self, stream):
        self._landing.pop(stream, None)
        self._streams.pop(stream, None)  # the last reference: pycuda destroys it (in its context)

    def close(self):
        self._staging.clear()  # pycuda frees pinned memory in its owning context
        self.context.detach()


# ------------------------------------------------------------------------------------------------- torch


class TorchBackend(CudaBackend):
    name = "torch"
    supports_graphs = False  # TensorRT enqueue inside torch.cuda.graph works, but needs torch's own stream objects

    def __init__(self):
        import torch

        if not torch.cuda.is_available():
            raise BackendMissing("torch is installed without CUDA (or sees no GPU)", hint=CUDA_INSTALL_HINT)
        self.torch = torch
        self._streams: dict[int, Any] = {}

    def malloc(self, nbytes):
        t = self.torch.empty(max(1, int(nbytes)), dtype=self.torch.uint8, device="cuda")
        return DeviceBuffer(int(t.data_ptr()), int(nbytes), t)

    def free(self, buf):
        buf.handle = None

    def stream(self):
        s = self.torch.cuda.Stream()
        self._streams[int(s.cuda_stream)] = s
        return int(s.cuda_stream)

    def htod(self, buf, host, stream):
        src = self.torch.from_numpy(np.ascontiguousarray(host).view(np.uint8).reshape(-1))
        with self.torch.cuda.stream(self._streams[stream]):
            buf.handle[: src.numel()].copy_(src, non_blocking=True)

    def dtoh(self, host, buf, stream):
        n = host.nbytes
        with self.torch.cuda.stream(self._streams[stream]):
            out = buf.handle[:n].to("cpu", non_blocking=False)
        ctypes.memmove(host.ctypes.data, out.data_ptr(), n)

    def synchronize(self, stream):
        self._streams[stream].synchronize()

    def destroy_stream(self, stream):
        self._streams.pop(stream, None)  # the last reference: torch destroys it

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, event, stream):
        event.record(self._streams[stream])

    def elapsed_ms(self, start, end):
        end.synchronize()
        return float(start.elapsed_time(end))

    def device_info(self):
        p = self.torch.cuda.get_device_properties(0)
        return {"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "memory_bytes": int(p.total_memory),
                "source": self.name}


# ----------------------------------------------------------------------------------------------- choice

_BACKENDS = {"pycuda": PycudaBackend, "cuda-python": CudaPythonBackend, "torch": TorchBackend}
_cache: dict[str, CudaBackend] = {}


def get_backend(prefer: str | None = None) -> CudaBackend:
    """The first backend that works (pycuda, cuda-python, torch), or BackendMissing naming what to install."""
    order = [prefer] if prefer else list(_BACKENDS)
    if prefer and prefer not in _BACKENDS:
        raise BackendMissing(f"unknown CUDA buffer backend {prefer!r}; choose one of {list(_BACKENDS)}")
    reasons = []
    for name in order:
        if name in _cache:
            return _cache[name]
        try:
            backend = _BACKENDS[name]()
        except ImportError as exc:
            reasons.append(f"{name}: not installed ({exc.name or exc})")
            continue
        except Exception as exc:  # noqa: BLE001 - a backend that imports but cannot start
            reasons.append(f"{name}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}")
            continue
        _cache[name] = backend
        return backend
    raise BackendMissing("no way to allocate CUDA device buffers (" + "; ".join(reasons) + ")", hint=CUDA_INSTALL_HINT)


def available_backends() -> list[str]:
    """Names of the buffer backends that import (does not create a CUDA context)."""
    import importlib.util

    out = []
    if importlib.util.find_spec("pycuda") is not None:
        out.append("pycuda")
    try:
        if importlib.util.find_spec("cuda") is not None:
            out.append("cuda-python")
    except (ImportError, ValueError):
        pass
    if importlib.util.find_spec("torch") is not None:
        out.append("torch")
    return out
