"""Device memory, streams, events and CUDA graphs for the TensorRT runner and calibrators: which backend.

Three interchangeable backends, tried in this order: pycuda (when installed; it needs CUDA headers to build,
which Jetson images often lack; runners/pycuda_backend.py), cuda-python (`cuda.bindings.runtime`, or the older
`cuda.cudart`; runners/cuda_python_backend.py) and torch CUDA tensors (runners/torch_cuda_backend.py). All of
them implement `CudaBackend` (runners/cuda_base.py), so the runner never cares which one it got; each works on
one device (`get_backend(device=N)` for `--device cuda:N`) on that device's primary context (the CUDA runtime's,
which TensorRT and torch use too). Nothing here imports a CUDA library at module import time. CUDA graphs:
cuda-python only. Every stream, event and graph a backend creates is destroyed again by its owner
(`destroy_stream`, `destroy_event`, `destroy_graph`): a long-lived process must not leak them. Tests run this
code on recording stand-ins of cuda-python, pycuda and torch (tests/fakes/cuda_modules.py) and the runner on a
stand-in backend (tests/fakes/cuda.py).
"""

from __future__ import annotations

from edgelstm.errors import BackendMissing, BadInput
from edgelstm.runners.cuda_base import CUDA_INSTALL_HINT, CudaBackend, DeviceBuffer, device_index
from edgelstm.runners.cuda_python_backend import CudaPythonBackend, _cudart  # noqa: F401 - re-exported
from edgelstm.runners.pycuda_backend import PycudaBackend
from edgelstm.runners.torch_cuda_backend import TorchBackend

_BACKENDS = {"pycuda": PycudaBackend, "cuda-python": CudaPythonBackend, "torch": TorchBackend}
_cache: dict[tuple[str, int], CudaBackend] = {}


def get_backend(prefer: str | None = None, device: str | int | None = 0) -> CudaBackend:
    """The first backend that works (pycuda, cuda-python, torch) on `device` (an index, 'cuda' or 'cuda:N'), or
    BackendMissing naming what to install; BadInput when that device does not exist."""
    index = device_index(device)
    order = [prefer] if prefer else list(_BACKENDS)
    if prefer and prefer not in _BACKENDS:
        raise BackendMissing(f"unknown CUDA buffer backend {prefer!r}; choose one of {list(_BACKENDS)}")
    reasons = []
    for name in order:
        if (name, index) in _cache:
            return _cache[(name, index)]
        try:
            backend = _BACKENDS[name](index)
        except ImportError as exc:
            reasons.append(f"{name}: not installed ({exc.name or exc})")
            continue
        except BadInput:
            raise  # the device does not exist: every backend would say so
        except Exception as exc:  # noqa: BLE001 - a backend that imports but cannot start
            reasons.append(f"{name}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}")
            continue
        _cache[(name, index)] = backend
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


__all__ = ["CudaBackend", "DeviceBuffer", "CudaPythonBackend", "PycudaBackend", "TorchBackend", "get_backend",
           "available_backends", "device_index", "CUDA_INSTALL_HINT"]
