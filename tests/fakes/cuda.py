"""The fake GPU: host memory standing in for device memory, streams, events and CUDA graphs with the method
names of edgelstm.runners.cuda_buffers.CudaBackend, and the machine's facts (GPU name, compute capability,
DLA cores). Shared by the fake TensorRT (which reads and writes MEMORY) and the tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MACHINE: dict[str, Any] = {"name": "NVIDIA Fake L4", "compute_capability": "8.9", "dla_cores": 0}
MEMORY: dict[int, bytearray] = {}       # device pointer -> bytes
CAPTURE: dict[int, list] = {}           # stream -> closures recorded while capturing
CLOCK = {"t": 0}                        # advanced by every executed enqueue (fake CUDA events read it)
_ptrs = itertools.count(0x7F00_0000_0000, 0x1_0000)
_streams = itertools.count(0x5000, 16)
_handles = itertools.count(1)


@dataclass
class Recorder:
    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def add(self, name: str, *args, **kwargs) -> None:
        self.calls.append((name, args, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def find(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


class FakeEvent:
    def __init__(self):
        self.t = 0
        self.handle = next(_handles)


class FakeGraph(list):
    """An executable graph: the closures captured on a stream, replayed by launch()."""

    def __init__(self, closures):
        super().__init__(closures)
        self.handle = next(_handles)


class FakeCuda:
    """Host-memory stand-in for edgelstm.runners.cuda_buffers.CudaBackend (same method names). `live` holds the
    streams, events and graphs created and not destroyed yet."""

    name = "fake-cuda"
    supports_graphs = True

    def __init__(self):
        self.calls = Recorder()
        self.capturing: set[int] = set()
        self.live: dict[str, set[int]] = {"stream": set(), "event": set(), "graph": set()}

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
        self.live["stream"].add(s)
        self.calls.add("stream", s)
        return s

    def destroy_stream(self, stream):
        self.live["stream"].discard(stream)
        self.calls.add("destroy_stream", stream)

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
        ev = FakeEvent()
        self.live["event"].add(ev.handle)
        return ev

    def destroy_event(self, event):
        self.live["event"].discard(event.handle)
        self.calls.add("destroy_event", event.handle)

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
        graph = FakeGraph(CAPTURE.pop(stream, []))
        self.live["graph"].add(graph.handle)
        return graph

    def launch(self, graph, stream):
        self.calls.add("launch", stream)
        for fn in graph:
            fn()

    def destroy_graph(self, graph):
        self.live["graph"].discard(graph.handle)
        self.calls.add("destroy_graph", graph.handle)

    def close(self):
        pass


CUDA = FakeCuda()
