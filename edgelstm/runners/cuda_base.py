"""The interface every CUDA buffer backend implements (runners/cuda_buffers.py picks one), and what they share.

A backend works on ONE device, the one it was made for (``CudaBackend(device=N)``, from ``--device cuda:N``):
every buffer, stream, event and graph it creates lives there, and ``activate()`` makes that device current for
the calling thread while a CUDA-runtime library that works on "the current device" (TensorRT: deserializing an
engine, creating an execution context, enqueueing) is called. Pointers and handles are plain ints.
"""

from __future__ import annotations

import abc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from edgelstm.errors import BackendMissing, BadInput

CUDA_INSTALL_HINT = ("pip install cuda-python (matching your CUDA major version), or pycuda, or a CUDA build of "
                     "torch; on Jetson (JetPack 6.1/6.2, CUDA 12.6): pip install \"cuda-python>=12.6,<12.7\" inside a "
                     "venv made with --system-site-packages")


@dataclass
class DeviceBuffer:
    ptr: int
    nbytes: int
    handle: Any = None  # keeps the owning object (pycuda allocation, torch tensor) alive


def device_index(device: str | int | None) -> int:
    """'cuda' -> 0, 'cuda:1' -> 1, 1 -> 1; BadInput for anything else (cpu, cuda:x, a negative index)."""
    if device is None:
        return 0
    if isinstance(device, int) and not isinstance(device, bool):
        index = device
    else:
        text = str(device).strip().lower()
        head, _, tail = text.partition(":")
        if head != "cuda" or (tail and not tail.isdigit()):
            raise BadInput(f"a CUDA device is cuda or cuda:N (N = 0, 1, ...), got {device!r}")
        index = int(tail) if tail else 0
    if index < 0:
        raise BadInput(f"a CUDA device index is >= 0, got {index}")
    return index


def check_index(index: int, count: int, library: str) -> None:
    """BadInput when the device does not exist (a wrong --device is bad usage, not a missing backend)."""
    if count < 1:
        raise BackendMissing(f"{library} sees no CUDA device", hint=CUDA_INSTALL_HINT)
    if index >= count:
        raise BadInput(f"CUDA device cuda:{index} does not exist: {library} sees {count} device(s), "
                       f"cuda:0..cuda:{count - 1}")


class CudaBackend(abc.ABC):
    """The interface every backend implements (pointers and handles are plain ints)."""

    name = "none"
    device_index = 0

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
    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events; waits for `end` first (reading it unfinished is an error)."""
    @abc.abstractmethod
    def device_info(self) -> dict[str, Any]: ...

    def query(self, event: Any) -> bool:
        """Whether the work recorded before `event` has finished, without waiting (cudaEventQuery): a spin-wait
        (`bench --spin-wait`, trtexec's default) polls this instead of blocking in elapsed_ms."""
        raise BackendMissing(f"the {self.name} CUDA backend cannot query events", hint=CUDA_INSTALL_HINT)

    @contextmanager
    def activate(self) -> Iterator[None]:
        """This backend's device is the current device inside the block (for TensorRT's calls)."""
        yield

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
