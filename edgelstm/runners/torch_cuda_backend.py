"""Device buffers through torch CUDA tensors (uint8 tensors on `cuda:N`, torch streams and timing events).

The stream handles given out are the raw `cudaStream_t` ints (`torch.cuda.Stream.cuda_stream`), never torch's
Stream objects (TensorRT takes an int). No CUDA graphs here: TensorRT's enqueue inside `torch.cuda.graph` works,
but needs torch's own stream objects.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from edgelstm.errors import BackendMissing
from edgelstm.runners.cuda_base import CUDA_INSTALL_HINT, CudaBackend, DeviceBuffer, check_index


class TorchBackend(CudaBackend):
    name = "torch"
    supports_graphs = False

    def __init__(self, device: int = 0):
        import torch

        if not torch.cuda.is_available():
            raise BackendMissing("torch is installed without CUDA (or sees no GPU)", hint=CUDA_INSTALL_HINT)
        check_index(int(device), int(torch.cuda.device_count()), "torch")
        self.torch = torch
        self.device_index = int(device)
        self._device = f"cuda:{self.device_index}"
        self._streams: dict[int, Any] = {}

    @contextmanager
    def activate(self) -> Iterator[None]:
        with self.torch.cuda.device(self.device_index):
            yield

    def malloc(self, nbytes):
        t = self.torch.empty(max(1, int(nbytes)), dtype=self.torch.uint8, device=self._device)
        return DeviceBuffer(int(t.data_ptr()), int(nbytes), t)

    def free(self, buf):
        buf.handle = None

    def stream(self):
        s = self.torch.cuda.Stream(device=self.device_index)
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
        with self.activate():
            return self.torch.cuda.Event(enable_timing=True)

    def record(self, event, stream):
        event.record(self._streams[stream])

    def query(self, event):
        return bool(event.query())

    def elapsed_ms(self, start, end):
        end.synchronize()
        return float(start.elapsed_time(end))

    def device_info(self):
        p = self.torch.cuda.get_device_properties(self.device_index)
        return {"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "memory_bytes": int(p.total_memory),
                "device": self.device_index, "source": self.name}
