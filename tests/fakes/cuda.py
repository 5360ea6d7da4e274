"""The fake GPU: host memory standing in for device memory, and streams, events and CUDA graphs with CUDA's
ordering rules, behind the method names of edgelstm.runners.cuda_buffers.CudaBackend. Shared by the fake
TensorRT (which reads and writes device memory through DEVICE) and the tests.

What the model enforces, so that an ordering mistake fails a test instead of passing silently:

- Work on one stream runs in order; the host sees a device->host copy only after it waited for it
  (`synchronize(stream)`, or `elapsed_ms` on an event recorded after the copy). Until then the host array holds
  a poison pattern (all bits set: NaN for floats, -1 for ints), so reading outputs without synchronising gives
  NaN, as reading too early on a GPU gives stale data.
- Work on another stream is unordered: touching a device buffer that a copy or kernel on another stream may still
  be writing (no synchronisation in between) raises CudaOrderError. So does timing with events recorded on two
  different streams.
- Every stream has a timeline: a kernel costs KERNEL_MS, a copy COPY_MS, and the first enqueue of an execution
  context after a shape change costs COLD_MS more (TensorRT's first run does setup work: warm-up matters). Events
  read the timeline of their stream, so a copy inside a timed region, a skipped warm-up or events on a stream
  without the work all show up in the milliseconds; `spans` lists what ran inside each timed region.
- Capture: work enqueued on a capturing stream is recorded, not run; synchronising or recording an event on a
  capturing stream is an error (as in CUDA); `launch` replays the recorded work on a stream.
- Handles and pointers are plain ints (a torch Stream object, a float or a numpy array is a TypeError); a copy
  larger than its allocation, a freed or unknown pointer, an unknown stream are CudaError.
- Devices: MACHINE["devices"] GPUs, MACHINE["current_device"] the calling thread's current one. Every allocation
  (OWNER) and stream remembers its device; the fake engine refuses a stream, a buffer or a context on another
  device than the one it was deserialized on. FakeCuda itself is a backend of device 0; the recording stand-ins
  of cuda-python, pycuda and torch (cuda_modules.py) create on the current device.

Host memory given as a raw address (what cuda-python's copies take) is written with ctypes when the host waits.
"""

from __future__ import annotations

import ctypes
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

MACHINE: dict[str, Any] = {"name": "NVIDIA Fake L4", "compute_capability": "8.9", "dla_cores": 0, "devices": 1,
                           "current_device": 0}
MEMORY: dict[int, bytearray] = {}       # device pointer -> bytes
OWNER: dict[int, int] = {}              # device pointer -> the device it lives on
_ptrs = itertools.count(0x7F00_0000_0000, 0x1_0000)
_streams = itertools.count(0x5000, 16)
_handles = itertools.count(1)

KERNEL_MS = 0.25     # one stand-in TensorRT enqueue
COPY_MS = 0.125      # one host<->device copy
COLD_MS = 1.0        # extra cost of a context's first enqueue after a shape change
TRT_INTERNAL_STREAM = 0x7E57  # the stream TensorRT's builder reads calibration batches on


class CudaError(RuntimeError):
    """What a CUDA call would return as an error code (invalid argument, invalid handle, capture misuse)."""


class CudaOrderError(RuntimeError):
    """A race the GPU would not report: work on one stream uses a buffer another stream may still be writing."""


@dataclass
class Recorder:
    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def add(self, name: str, *args, **kwargs) -> None:
        self.calls.append((name, args, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def find(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


@dataclass
class Op:
    kind: str                          # "kernel", "htod", "dtoh", ...
    what: str                          # who enqueued it, for messages
    ms: float
    reads: tuple[int, ...] = ()
    writes: tuple[int, ...] = ()
    fn: Callable[[], Any] | None = None


@dataclass
class _Stream:
    handle: int
    device: int = 0                    # the device the stream belongs to
    t: float = 0.0                     # milliseconds of work enqueued so far (the stream's timeline)
    seq: int = 0                       # operations enqueued so far
    done: int = 0                      # operations the host has waited for
    log: list[tuple[int, str]] = field(default_factory=list)
    pending_host: list[tuple[int, Any, bytes]] = field(default_factory=list)   # host array or raw address
    capture: list[Op] | None = None


class FakeEvent:
    def __init__(self, device: int = 0):
        self.handle = next(_handles)
        self.device = device
        self.stream: int | None = None
        self.t: float | None = None
        self.seq = 0


class FakeGraph(list):
    """An executable graph: the operations captured on a stream, replayed by launch()."""

    def __init__(self, ops):
        super().__init__(ops)
        self.handle = next(_handles)


def _is_int_handle(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class FakeCuda:
    """Host-memory stand-in for edgelstm.runners.cuda_buffers.CudaBackend (same method names). `live` holds the
    streams, events and graphs created and not destroyed yet; `violations` every CudaOrderError raised."""

    name = "fake-cuda"
    supports_graphs = True
    device_index = 0

    def __init__(self):
        self.calls = Recorder()
        self.live: dict[str, set[int]] = {"stream": set(), "event": set(), "graph": set()}
        self.streams: dict[int, _Stream] = {0: _Stream(0), TRT_INTERNAL_STREAM: _Stream(TRT_INTERNAL_STREAM)}
        self.writes: dict[int, tuple[int, int, str]] = {}   # pointer -> (stream, seq, what) of its last writer
        self.violations: list[str] = []
        self.spans: list[list[str]] = []                    # operation kinds inside each elapsed_ms region
        self._current: _Stream | None = None                # the stream whose operation is running

    # ------------------------------------------------------------------------------------------ checks
    @property
    def capturing(self) -> set[int]:
        return {h for h, s in self.streams.items() if s.capture is not None}

    def _stream(self, stream: Any, what: str) -> _Stream:
        if not _is_int_handle(stream):
            raise TypeError(f"{what}: a stream handle is a plain int (CudaBackend.stream()), got "
                            f"{type(stream).__name__} {stream!r:.60}")
        s = self.streams.get(int(stream))
        if s is None:
            raise CudaError(f"{what}: invalid resource handle (stream {int(stream):#x} was never created or is "
                            "destroyed)")
        return s

    def _buffer(self, buf: Any, what: str) -> int:
        ptr = getattr(buf, "ptr", None)
        if not _is_int_handle(ptr):
            raise TypeError(f"{what}: expected a DeviceBuffer with an int pointer, got {type(buf).__name__}")
        if int(ptr) not in MEMORY:
            raise CudaError(f"{what}: {int(ptr):#x} is not device memory (freed, or never allocated)")
        return int(ptr)

    def _host(self, host: Any, what: str) -> np.ndarray:
        if not isinstance(host, np.ndarray):
            raise TypeError(f"{what}: expected a numpy array for host memory, got {type(host).__name__}")
        return host

    def _violate(self, msg: str) -> None:
        self.violations.append(msg)
        raise CudaOrderError(msg)

    def _hazard(self, s: _Stream, ptr: int, what: str) -> None:
        w = self.writes.get(ptr)
        if w is None or w[0] == s.handle:
            return
        other = self.streams.get(w[0])
        if other is not None and w[1] > other.done:
            self._violate(f"{what} on stream {s.handle:#x} uses device buffer {ptr:#x} while {w[2]} on stream "
                          f"{w[0]:#x} may still be writing it: nothing orders the two streams (synchronize that "
                          "stream first, or do both on one stream)")

    # -------------------------------------------------------------------------------------- the queue
    def enqueue(self, stream: Any, op: Op) -> None:
        """Run `op` on `stream` in order (or record it while the stream captures a graph)."""
        s = self._stream(stream, op.what)
        if s.capture is not None:
            s.capture.append(op)
            return
        self._run(s, op)

    def _run(self, s: _Stream, op: Op) -> None:
        for ptr in (*op.reads, *op.writes):
            if ptr not in MEMORY:
                raise CudaError(f"{op.what}: an illegal memory access was encountered ({ptr:#x} is not device memory)")
            self._hazard(s, ptr, op.what)
        s.seq += 1
        s.t += op.ms
        if op.fn is not None:
            self._current = s
            op.fn()
        for ptr in op.writes:
            self.writes[ptr] = (s.handle, s.seq, op.what)
        s.log.append((s.seq, op.kind))

    def _settle(self, s: _Stream, upto: int) -> None:
        """The host has waited for the first `upto` operations of `s`: their device->host copies land."""
        s.done = max(s.done, upto)
        keep = []
        for seq, host, data in s.pending_host:
            if seq <= s.done and isinstance(host, int):
                ctypes.memmove(host, data, len(data))
            elif seq <= s.done:
                host.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, dtype=np.uint8)
            else:
                keep.append((seq, host, data))
        s.pending_host = keep

    def pending_copies(self) -> int:
        """Device->host copies the host has not waited for (their arrays still hold the poison pattern)."""
        return sum(len(s.pending_host) for s in self.streams.values())

    # ------------------------------------------------------- the device primitives (shared with cuda_modules.py)
    def alloc(self, nbytes: int, device: int) -> int:
        ptr = next(_ptrs)
        MEMORY[ptr] = bytearray(max(1, int(nbytes)))
        OWNER[ptr] = int(device)
        return ptr

    def release(self, ptr: int) -> None:
        MEMORY.pop(ptr, None)
        OWNER.pop(ptr, None)
        self.writes.pop(ptr, None)

    def new_stream(self, device: int) -> int:
        s = next(_streams)
        self.streams[s] = _Stream(s, int(device))
        self.live["stream"].add(s)
        return s

    def copy_in(self, ptr: int, data: bytes, stream: Any, what: str = "htod") -> None:
        """Enqueue a host->device copy of `data` (already staged: pageable memory is read when the call returns)."""
        if len(data) > len(MEMORY[ptr]):
            raise CudaError(f"{what}: invalid argument: copying {len(data)} bytes into an allocation of "
                            f"{len(MEMORY[ptr])} bytes")

        def copy(ptr=ptr, data=data):
            MEMORY[ptr][: len(data)] = data

        self.enqueue(stream, Op("htod", "a host-to-device copy", COPY_MS, writes=(ptr,), fn=copy))

    def copy_out(self, target: Any, ptr: int, n: int, stream: Any, what: str = "dtoh") -> None:
        """Enqueue a device->host copy into `target` (a host array, or a raw host address): it holds the poison
        pattern until the host waits for the copy."""
        if n > len(MEMORY[ptr]):
            raise CudaError(f"{what}: invalid argument: copying {n} bytes out of an allocation of {len(MEMORY[ptr])} "
                            "bytes")

        def copy(ptr=ptr, target=target, n=n):
            s = self._current
            data = bytes(MEMORY[ptr][:n])
            if isinstance(target, int):
                ctypes.memset(target, 0xFF, n)                     # not there yet: the poison pattern
            else:
                target.reshape(-1).view(np.uint8)[:] = 0xFF
            s.pending_host.append((s.seq, target, data))          # lands when the host waits for this operation

        self.enqueue(stream, Op("dtoh", "a device-to-host copy", COPY_MS, reads=(ptr,), fn=copy))

    def event_done(self, event: FakeEvent) -> bool:
        """Whether the host has waited for the work before `event` (cudaEventQuery == cudaSuccess)."""
        s = self.streams.get(event.stream)
        return event.t is not None and (s is None or s.done >= event.seq)

    def poll(self, event: FakeEvent) -> bool:
        """cudaEventQuery: the GPU moves on by one operation each time the host looks (a spin-wait ends)."""
        s = self.streams.get(event.stream)
        if s is not None and event.t is not None and s.done < event.seq:
            self._settle(s, s.done + 1)
        return self.event_done(event)

    def wait_event(self, event: FakeEvent) -> None:
        """cudaEventSynchronize: the host waits for the work recorded before `event`."""
        s = self.streams.get(event.stream)
        if s is not None and event.t is not None:
            self._settle(s, event.seq)

    def timed(self, start: FakeEvent, end: FakeEvent) -> float:
        """The milliseconds between two recorded events (the caller checked they are complete)."""
        if start.stream != end.stream:
            self._violate(f"elapsed_ms: the start event is on stream {start.stream:#x} and the end event on stream "
                          f"{end.stream:#x}: their difference times unrelated work")
        s = self.streams.get(end.stream)
        if s is not None:
            self.spans.append([kind for seq, kind in s.log if start.seq < seq <= end.seq])
        return end.t - start.t

    def stamp(self, event: FakeEvent, stream: Any, what: str = "record") -> None:
        s = self._stream(stream, what)
        if s.capture is not None:
            raise CudaError(f"{what}: a timing event cannot be recorded on a capturing stream")
        event.stream, event.t, event.seq = s.handle, s.t, s.seq

    # ----------------------------------------------------------------------------- CudaBackend methods
    @contextmanager
    def activate(self):
        before = MACHINE["current_device"]
        MACHINE["current_device"] = self.device_index
        try:
            yield
        finally:
            MACHINE["current_device"] = before

    def malloc(self, nbytes):
        from edgelstm.runners.cuda_buffers import DeviceBuffer

        n = int(nbytes)
        ptr = self.alloc(n, self.device_index)
        self.calls.add("malloc", n)
        return DeviceBuffer(ptr, n)

    def free(self, buf):
        ptr = self._buffer(buf, "free")
        self.release(ptr)
        self.calls.add("free", ptr)

    def stream(self):
        s = self.new_stream(self.device_index)
        self.calls.add("stream", s)
        return s

    def destroy_stream(self, stream):
        s = self._stream(stream, "destroy_stream")
        self._settle(s, s.seq)  # cudaStreamDestroy lets pending work finish
        self.streams.pop(s.handle, None)
        self.live["stream"].discard(s.handle)
        self.calls.add("destroy_stream", s.handle)

    def htod(self, buf, host, stream):
        ptr = self._buffer(buf, "htod")
        host = self._host(host, "htod")
        data = np.ascontiguousarray(host).tobytes()   # pageable memory: staged when the call returns
        self.calls.add("htod", ptr, len(data), stream)
        self.copy_in(ptr, data, stream)

    def dtoh(self, host, buf, stream):
        ptr = self._buffer(buf, "dtoh")
        host = self._host(host, "dtoh")
        if not host.flags.c_contiguous or not host.flags.writeable:
            raise CudaError("dtoh: the host array must be contiguous and writeable")
        self.calls.add("dtoh", ptr, host.nbytes, stream)
        self.copy_out(host, ptr, host.nbytes, stream)

    def synchronize(self, stream):
        s = self._stream(stream, "synchronize")
        if s.capture is not None:
            raise CudaError("synchronize: operation not permitted when stream is capturing")
        self._settle(s, s.seq)
        self.calls.add("synchronize", s.handle)

    def event(self):
        ev = FakeEvent()
        self.live["event"].add(ev.handle)
        return ev

    def destroy_event(self, event):
        self.live["event"].discard(event.handle)
        self.calls.add("destroy_event", event.handle)

    def record(self, event, stream):
        self.stamp(event, stream)
        self.calls.add("record", int(stream))

    def query(self, event):
        self.calls.add("query", event.handle)
        return self.poll(event)

    def elapsed_ms(self, start, end):
        if start.t is None or end.t is None:
            raise CudaError("elapsed_ms: an event was never recorded")
        self.wait_event(end)   # cudaEventSynchronize(end)
        return self.timed(start, end)

    def device_info(self):
        return {"name": MACHINE["name"], "compute_capability": MACHINE["compute_capability"], "device": 0,
                "source": self.name}

    def begin_capture(self, stream):
        s = self._stream(stream, "begin_capture")
        if s.capture is not None:
            raise CudaError("begin_capture: the stream is already capturing")
        s.capture = []
        self.calls.add("begin_capture", s.handle)

    def end_capture(self, stream):
        s = self._stream(stream, "end_capture")
        if s.capture is None:
            raise CudaError("end_capture: the stream is not capturing")
        graph = FakeGraph(s.capture)
        s.capture = None
        self.live["graph"].add(graph.handle)
        self.calls.add("end_capture", s.handle)
        return graph

    def launch(self, graph, stream):
        s = self._stream(stream, "launch")
        if not isinstance(graph, FakeGraph):
            raise TypeError(f"launch: expected a graph from end_capture, got {type(graph).__name__}")
        if graph.handle not in self.live["graph"]:
            raise CudaError("launch: the graph was destroyed")
        self.calls.add("launch", s.handle)
        for op in graph:
            if s.capture is not None:
                s.capture.append(op)
            else:
                self._run(s, op)

    def destroy_graph(self, graph):
        self.live["graph"].discard(graph.handle)
        self.calls.add("destroy_graph", graph.handle)

    def close(self):
        pass


CUDA = FakeCuda()


# ------------------------------------------------------------------- the device the fake engine computes on


class HostDevice:
    """Default: the fake engine's kernels run on FakeCuda's streams and read/write MEMORY."""

    def enqueue(self, stream: int, op: Op) -> None:
        CUDA.enqueue(stream, op)

    def is_capturing(self, stream: int) -> bool:
        s = CUDA.streams.get(int(stream)) if _is_int_handle(stream) else None
        return s is not None and s.capture is not None

    def knows_stream(self, stream: int) -> bool:
        return int(stream) in CUDA.streams

    def size(self, ptr: int) -> int | None:
        return len(MEMORY[ptr]) if ptr in MEMORY else None

    def device_of(self, ptr: int) -> int | None:
        return OWNER.get(int(ptr))

    def stream_device(self, stream: int) -> int | None:
        s = CUDA.streams.get(int(stream)) if _is_int_handle(stream) else None
        return None if s is None else s.device

    def read(self, ptr: int, nbytes: int) -> bytes:
        return bytes(MEMORY[ptr][:nbytes])

    def write(self, ptr: int, data: bytes) -> None:
        MEMORY[ptr][: len(data)] = data


class _Registering:
    """A real CudaBackend that remembers its DeviceBuffers by pointer (the torch backend copies through the tensor
    a buffer holds, so the fake engine needs the buffer itself, not just its address)."""

    def __init__(self, backend: Any, buffers: dict[int, Any]):
        self._backend, self._buffers = backend, buffers

    def malloc(self, nbytes):
        buf = self._backend.malloc(nbytes)
        self._buffers[int(buf.ptr)] = buf
        return buf

    def free(self, buf):
        self._buffers.pop(int(buf.ptr), None)
        self._backend.free(buf)

    def __getattr__(self, name):
        return getattr(self._backend, name)


class RealDevice:
    """The fake engine on real device memory (tests/test_gpu.py): a real CudaBackend's buffers and streams (edgelstm
    gets `backend`, a wrapper that records each allocation); each stand-in "kernel" waits for its stream, reads its
    inputs back to the host, computes there and uploads its outputs on the same stream. No graphs (host work cannot
    be captured)."""

    def __init__(self, backend: Any):
        self.buffers: dict[int, Any] = {}
        self.backend = _Registering(backend, self.buffers)
        self._stream: int | None = None
        self._internal: int | None = None

    def _on(self, stream: int) -> int:
        if stream == TRT_INTERNAL_STREAM:
            if self._internal is None:
                self._internal = self.backend.stream()
            return self._internal
        return int(stream)

    def _buffer(self, ptr: int) -> Any:
        buf = self.buffers.get(int(ptr))
        if buf is None:
            raise CudaError(f"{int(ptr):#x} is not the start of a device buffer this backend allocated")
        return buf

    def enqueue(self, stream: int, op: Op) -> None:
        s = self._on(stream)
        self.backend.synchronize(s)
        self._stream = s
        try:
            if op.fn is not None:
                op.fn()
        finally:
            self.backend.synchronize(s)
            self._stream = None

    def is_capturing(self, stream: int) -> bool:
        return False

    def knows_stream(self, stream: int) -> bool:
        return True

    def size(self, ptr: int) -> int | None:
        buf = self.buffers.get(int(ptr))
        return None if buf is None else int(buf.nbytes)

    def device_of(self, ptr: int) -> int | None:
        return None   # a real backend: its device is what the runner asked for

    def stream_device(self, stream: int) -> int | None:
        return None

    def read(self, ptr: int, nbytes: int) -> bytes:
        host = np.empty(max(1, nbytes), np.uint8)[:nbytes]
        s = self._stream if self._stream is not None else self._on(TRT_INTERNAL_STREAM)
        self.backend.dtoh(host, self._buffer(ptr), s)
        self.backend.synchronize(s)
        return host.tobytes()

    def write(self, ptr: int, data: bytes) -> None:
        host = np.frombuffer(bytes(data), np.uint8).copy()
        s = self._stream if self._stream is not None else self._on(TRT_INTERNAL_STREAM)
        self.backend.htod(self._buffer(ptr), host, s)
        self.backend.synchronize(s)


DEVICE: Any = HostDevice()
