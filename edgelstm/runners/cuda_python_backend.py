"""Device buffers through cuda-python's runtime bindings (`cuda.bindings.runtime`, or the older `cuda.cudart`).

Every call returns a tuple whose first item is a `cudaError_t` (cuda-python's convention); `_check` turns a
failure into one line. The runtime API works on the calling thread's current device, so every call that creates
or uses something first makes this backend's device current (`cudaSetDevice`, cheap when it already is).
CUDA graphs: stream capture (thread-local mode), instantiate, launch. cuda-python is pinned per CUDA major in
pyproject.toml (13.x needs an R580+ driver; on Jetson the L4T driver's CUDA minor, see docker/Dockerfile.jetson).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from edgelstm.errors import BackendMissing
from edgelstm.runners.cuda_base import CUDA_INSTALL_HINT, CudaBackend, DeviceBuffer, check_index


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

    def __init__(self, device: int = 0):
        self.rt = _cudart()
        err, count = self.rt.cudaGetDeviceCount()
        self._check(err, "cudaGetDeviceCount")
        check_index(int(device), int(count), "cuda-python")
        self.device_index = int(device)
        self._use()

    def _check(self, err, what: str) -> None:
        code = int(err.value) if hasattr(err, "value") else int(err)
        if code != 0:
            raise BackendMissing(f"CUDA call {what} failed: {err}", hint=CUDA_INSTALL_HINT)

    def _use(self) -> None:
        self._check(self.rt.cudaSetDevice(self.device_index)[0], "cudaSetDevice")

    @contextmanager
    def activate(self) -> Iterator[None]:
        err, before = self.rt.cudaGetDevice()
        self._check(err, "cudaGetDevice")
        self._use()
        try:
            yield
        finally:
            self.rt.cudaSetDevice(int(before))

    def malloc(self, nbytes: int) -> DeviceBuffer:
        self._use()
        err, ptr = self.rt.cudaMalloc(max(1, int(nbytes)))
        self._check(err, "cudaMalloc")
        return DeviceBuffer(int(ptr), int(nbytes))

    def free(self, buf: DeviceBuffer) -> None:
        self._use()
        self.rt.cudaFree(buf.ptr)

    def stream(self) -> int:
        self._use()
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
        self._use()
        err, ev = self.rt.cudaEventCreate()
        self._check(err, "cudaEventCreate")
        return ev

    def record(self, event, stream):
        self._check(self.rt.cudaEventRecord(event, stream)[0], "cudaEventRecord")

    def query(self, event):
        err = self.rt.cudaEventQuery(event)[0]
        if err == self.rt.cudaError_t.cudaErrorNotReady:
            return False
        self._check(err, "cudaEventQuery")
        return True

    def elapsed_ms(self, start, end):
        self._check(self.rt.cudaEventSynchronize(end)[0], "cudaEventSynchronize")
        err, ms = self.rt.cudaEventElapsedTime(start, end)
        self._check(err, "cudaEventElapsedTime")
        return float(ms)

    def device_info(self):
        err, props = self.rt.cudaGetDeviceProperties(self.device_index)
        self._check(err, "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}",
                "memory_bytes": int(props.totalGlobalMem), "device": self.device_index, "source": self.name}

    def begin_capture(self, stream):
        self._use()
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
