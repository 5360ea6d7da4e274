"""Device buffers through pycuda (`pycuda.driver`), on the device's primary context.

The primary context is the CUDA runtime's, which TensorRT and torch use too (`pycuda.autoinit` would make a
second context that conflicts); it is pushed around each call and popped again. Copies go through pinned
buffers (an async copy from pageable memory is synchronous); a device->host copy lands in the caller's array at
`synchronize`. No CUDA graphs: pycuda cannot capture streams. pycuda needs the CUDA headers to build (Jetson
images often lack them), which is why cuda-python and torch are the other backends.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from edgelstm.runners.cuda_base import CudaBackend, DeviceBuffer, check_index


class PycudaBackend(CudaBackend):
    name = "pycuda"
    supports_graphs = False

    def __init__(self, device: int = 0):
        import pycuda.driver as cuda

        cuda.init()
        check_index(int(device), int(cuda.Device.count()), "pycuda")
        self.device_index = int(device)
        self.cuda, self.device = cuda, cuda.Device(self.device_index)
        self.context = self.device.retain_primary_context()
        self._streams: dict[int, Any] = {}
        self._staging: dict[tuple[str, int], tuple[np.ndarray, Any]] = {}   # (direction, device ptr) -> pinned, event
        self._landing: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # stream -> (pinned, host) to copy out

    @contextmanager
    def activate(self) -> Iterator[None]:
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
        with self.activate():
            alloc = self.cuda.mem_alloc(max(1, int(nbytes)))
        return DeviceBuffer(int(alloc), int(nbytes), alloc)

    def free(self, buf):
        with self.activate():
            self._staging.pop(("htod", buf.ptr), None)
            self._staging.pop(("dtoh", buf.ptr), None)
            if buf.handle is not None:
                buf.handle.free()

    def stream(self):
        with self.activate():
            s = self.cuda.Stream()
        self._streams[int(s.handle)] = s
        return int(s.handle)

    def htod(self, buf, host, stream):
        src = np.ascontiguousarray(host).reshape(-1).view(np.uint8)
        with self.activate():
            pinned, done = self._pinned("htod", buf, src.nbytes)
            pinned[:] = src
            self.cuda.memcpy_htod_async(buf.ptr, pinned, self._streams[stream])
            done.record(self._streams[stream])

    def dtoh(self, host, buf, stream):
        with self.activate():
            pinned, done = self._pinned("dtoh", buf, host.nbytes)
            self.cuda.memcpy_dtoh_async(pinned, buf.ptr, self._streams[stream])
            done.record(self._streams[stream])
        self._landing.setdefault(stream, []).append((pinned, host))

    def synchronize(self, stream):
        with self.activate():
            self._streams[stream].synchronize()
        for pinned, host in self._landing.pop(stream, []):
            host.reshape(-1).view(np.uint8)[:] = pinned

    def event(self):
        with self.activate():
            return self.cuda.Event()

    def record(self, event, stream):
        with self.activate():
            event.record(self._streams[stream])

    def query(self, event):
        with self.activate():
            return bool(event.query())

    def elapsed_ms(self, start, end):
        with self.activate():
            end.synchronize()
            return float(start.time_till(end))

    def device_info(self):
        major, minor = self.device.compute_capability()
        return {"name": self.device.name(), "compute_capability": f"{major}.{minor}",
                "memory_bytes": int(self.device.total_memory()), "device": self.device_index, "source": self.name}

    def destroy_stream(self, stream):
        self._landing.pop(stream, None)
        self._streams.pop(stream, None)  # the last reference: pycuda destroys it (in its context)

    def close(self):
        self._staging.clear()  # pycuda frees pinned memory in its owning context
        self.context.detach()
