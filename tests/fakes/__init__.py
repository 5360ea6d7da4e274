"""Stand-ins for TensorRT and CUDA, for contract tests on machines without TensorRT or a GPU.

`install(monkeypatch, version=...)` puts a fake `tensorrt` module of that version into sys.modules and replaces
edgelstm's CUDA buffer backend with host memory (`CUDA`); `switch_machine` moves to "another machine" (another
TensorRT version or GPU). The fake module's class, method, property and enum names and enum values are
TensorRT's own, checked against the real bindings (tests/test_trt_stand_in_surface.py against tests/trt_api/);
its only extra public name is `recorder` (FAKE_ONLY), the log of every API call. Like the real pybind11 binding
it refuses wrongly typed arguments, unknown attributes and a skipped base __init__ (pybind.py); the fake GPU
enforces CUDA's stream ordering (cuda.py).

    pybind.py        pybind11 behaviour: strict enums, typed arguments, no stray attributes, base __init__
    engine_math.py   what an engine computes when the fake machine computes networks (onnxruntime, FP16 emulated)
    cuda.py          the fake GPU: MEMORY, streams/events/graphs with ordering (CudaBackend's method names),
                     MACHINE facts, DEVICE (what the fake engine computes on: host memory, or a real backend)
    cuda_modules.py  recording stand-ins of cuda-python's runtime, pycuda.driver and torch.cuda on that fake GPU
                     (install_cuda_modules): edgelstm's real buffer backends run on them
    tensorrt_api.py  the module: enums (per version, real values), loggers, Dims, make_module()
    parser.py        INetworkDefinition, OnnxParser
    builder.py       IBuilderConfig, profiles, timing cache, calibrators, Builder.build_serialized_network
    runtime.py       Runtime, ICudaEngine, IExecutionContext, EngineInspector
    surface.py       the stand-in's API surface and its comparison with a real one (tests/trt_api/*.json)
    fixtures.py      pytest fixtures for the contract tests
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import cuda as _cuda
from .builder import MAGIC
from .cuda import (CUDA, COLD_MS, COPY_MS, KERNEL_MS, MACHINE, MEMORY, OWNER, CudaError, CudaOrderError,
                   FakeCuda, HostDevice, RealDevice, Recorder)
from .cuda_modules import cuda_python_modules, pycuda_modules, torch_module
from .tensorrt_api import make_module

#: public names of the fake module that real TensorRT does not have
FAKE_ONLY = ("recorder",)

DEFAULT_VERSION = "10.14.1.48"


def install(monkeypatch, version: str = DEFAULT_VERSION, *, compute_capability: str = "8.9",
            gpu_name: str = "NVIDIA Fake L4", dla_cores: int = 0, unsupported_ops: tuple[str, ...] = (),
            device_backend: Any = None, devices: int = 1, cuda_modules: tuple[str, ...] = (),
            engine_math: str | None = None) -> types.ModuleType:
    """Put a fake `tensorrt` into sys.modules and fake CUDA buffers into edgelstm (undone by monkeypatch).
    `device_backend`: a real CudaBackend (tests/test_gpu.py): edgelstm and the fake engine then use real device
    memory and streams instead of the host-memory stand-in. `cuda_modules` ("cuda-python", "pycuda", "torch"):
    edgelstm's own buffer backends run on the recording stand-ins of those libraries instead (install_cuda_modules);
    `devices`: how many GPUs the fake machine has. `engine_math="onnxruntime"`: engines built from now on compute the
    network they were built from (engine_math.py) instead of mean(x), so that drift can be measured."""
    import edgelstm.runners.cuda_buffers as cb

    trt = make_module(version, unsupported_ops=unsupported_ops)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(MACHINE, "compute_capability", compute_capability)
    monkeypatch.setitem(MACHINE, "name", gpu_name)
    monkeypatch.setitem(MACHINE, "dla_cores", dla_cores)
    monkeypatch.setitem(MACHINE, "devices", int(devices))
    monkeypatch.setitem(MACHINE, "current_device", 0)
    monkeypatch.setitem(MACHINE, "engine_math", engine_math)
    if cuda_modules:
        monkeypatch.setattr(_cuda, "DEVICE", HostDevice())
        install_cuda_modules(monkeypatch, cuda_modules)
    elif device_backend is None:
        monkeypatch.setattr(cb, "get_backend", lambda prefer=None, device=0: CUDA)
        monkeypatch.setattr(_cuda, "DEVICE", HostDevice())
    else:
        device = RealDevice(device_backend)
        monkeypatch.setattr(cb, "get_backend", lambda prefer=None, device=0: device.backend)
        monkeypatch.setattr(_cuda, "DEVICE", device)
    return trt


def install_cuda_modules(monkeypatch, which: tuple[str, ...] = ("cuda-python", "pycuda", "torch")) -> None:
    """The stand-ins of cuda-python / pycuda / torch in sys.modules (the libraries not named are made
    unimportable, except torch), and an empty backend cache: edgelstm.runners.cuda_buffers.get_backend then
    starts its real backends on them."""
    import edgelstm.runners.cuda_buffers as cb

    modules: dict[str, Any] = {"cuda": None, "cuda.bindings": None, "cuda.bindings.runtime": None, "cuda.cudart": None,
                               "pycuda": None, "pycuda.driver": None, "pycuda.autoinit": None}
    if "cuda-python" in which:
        modules.update(cuda_python_modules())
    if "pycuda" in which:
        modules.update(pycuda_modules())
    if "torch" in which:
        modules["torch"] = torch_module()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cb, "_cache", {})


def switch_machine(monkeypatch, *, version: str | None = None, compute_capability: str | None = None,
                   gpu_name: str | None = None) -> types.ModuleType:
    """Move to 'another machine': another TensorRT version and/or GPU (for compatibility tests)."""
    trt = sys.modules["tensorrt"]
    if version is not None:
        trt = make_module(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
    if compute_capability is not None:
        monkeypatch.setitem(MACHINE, "compute_capability", compute_capability)
    if gpu_name is not None:
        monkeypatch.setitem(MACHINE, "name", gpu_name)
    return trt


__all__ = ["install", "install_cuda_modules", "switch_machine", "make_module", "CUDA", "MEMORY", "OWNER", "MACHINE",
           "MAGIC", "FakeCuda", "Recorder", "FAKE_ONLY", "DEFAULT_VERSION", "CudaError", "CudaOrderError", "KERNEL_MS",
           "COPY_MS", "COLD_MS"]
