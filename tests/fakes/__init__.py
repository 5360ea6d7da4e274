"""Stand-ins for TensorRT and CUDA, for contract tests on machines without TensorRT or a GPU.

`install(monkeypatch, version=...)` puts a fake `tensorrt` module of that version into sys.modules and replaces
edgelstm's CUDA buffer backend with host memory (`CUDA`); `switch_machine` moves to "another machine" (another
TensorRT version or GPU). The fake module's class, method and enum names are TensorRT's own (tensorrt_api.py
lists the sources); its only extra public name is `recorder` (FAKE_ONLY), the log of every API call.

    cuda.py          the fake GPU: MEMORY, streams/events/graphs (CudaBackend's method names), MACHINE facts
    tensorrt_api.py  the module: version rules, enums, loggers, make_module()
    parser.py        INetworkDefinition, OnnxParser
    builder.py       IBuilderConfig, profiles, timing cache, calibrators, Builder.build_serialized_network
    runtime.py       Runtime, ICudaEngine, IExecutionContext, EngineInspector
"""

from __future__ import annotations

import sys
import types

from .builder import MAGIC
from .cuda import CAPTURE, CLOCK, CUDA, MACHINE, MEMORY, FakeCuda, Recorder
from .tensorrt_api import make_module

#: public names of the fake module that real TensorRT does not have
FAKE_ONLY = ("recorder",)

DEFAULT_VERSION = "10.14.1.48"


def install(monkeypatch, version: str = DEFAULT_VERSION, *, compute_capability: str = "8.9",
            gpu_name: str = "NVIDIA Fake L4", dla_cores: int = 0, unsupported_ops: tuple[str, ...] = ()
            ) -> types.ModuleType:
    """Put a fake `tensorrt` into sys.modules and fake CUDA buffers into edgelstm (undone by monkeypatch)."""
    import edgelstm.runners.cuda_buffers as cb

    trt = make_module(version, unsupported_ops=unsupported_ops)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(MACHINE, "compute_capability", compute_capability)
    monkeypatch.setitem(MACHINE, "name", gpu_name)
    monkeypatch.setitem(MACHINE, "dla_cores", dla_cores)
    monkeypatch.setattr(cb, "get_backend", lambda prefer=None: CUDA)
    return trt


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


__all__ = ["install", "switch_machine", "make_module", "CUDA", "MEMORY", "MACHINE", "CAPTURE", "CLOCK", "MAGIC",
           "FakeCuda", "Recorder", "FAKE_ONLY", "DEFAULT_VERSION"]
