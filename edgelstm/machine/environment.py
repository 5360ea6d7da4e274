"""What is installed and which backends work: the facts behind `edgelstm doctor`."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

PACKAGES = ["torch", "onnx", "onnxruntime", "onnxruntime-gpu", "onnxscript", "openvino", "tensorrt", "pycuda",
            "cuda-python", "numpy", "matplotlib"]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_facts() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model or platform.machine(), "cores": os.cpu_count(), "machine": platform.machine(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def _check(fn) -> dict[str, Any]:
    try:
        detail = fn()
        return {"ok": True, "detail": detail}
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return {"ok": False, "detail": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"}


def _torch_cpu():
    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def _torch_cuda():
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to torch")
    cc = torch.cuda.get_device_capability(0)
    return f"{torch.cuda.get_device_name(0)} (sm_{cc[0]}{cc[1]}), cuDNN {torch.backends.cudnn.version()}"


def _ort_providers():
    import onnxruntime as ort

    return ", ".join(ort.get_available_providers())


def _ort_cuda():
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise RuntimeError("CUDAExecutionProvider not available (pip install onnxruntime-gpu)")
    return "CUDAExecutionProvider"


def _tensorrt():
    import tensorrt as trt  # noqa: F401

    return f"tensorrt {trt.__version__}"


def _openvino():
    from edgelstm.artifacts.openvino import openvino_facts

    f = openvino_facts()
    return (f"openvino {f['version']}, CPU: {f['cpu']}; precisions {', '.join(f['precisions'])}"
            + ("" if f["bf16"] else " (no BF16 on this CPU)"))


def backend_checks() -> dict[str, dict[str, Any]]:
    return {
        "torch (CPU)": _check(_torch_cpu),
        "torch (CUDA)": _check(_torch_cuda),
        "onnxruntime": _check(_ort_providers),
        "onnxruntime (CUDA)": _check(_ort_cuda),
        "openvino (CPU)": _check(_openvino),
        "tensorrt": _check(_tensorrt),
    }


def amx_facts() -> dict[str, Any]:
    """The AMX line of doctor: which INT8 kernel onnxruntime can use in a process here, and pinning."""
    from edgelstm.machine.amx import amx_state

    state = amx_state()
    return {"int8_kernel": state["int8_kernel"], "pinned": state["pinned"]}


def doctor_report(cuda_buffers: Any = None) -> dict[str, Any]:
    """What doctor shows; ``cuda_buffers`` (the module edgelstm.runners.cuda_buffers, passed by the CLI above this
    layer) lets the TensorRT section name the CUDA buffer backends and ask the GPU through one."""
    from edgelstm.machine.isa import isa_facts

    report: dict[str, Any] = {"versions": package_versions(), "host": {**cpu_facts(), **isa_facts(), **amx_facts()},
                              "backends": backend_checks()}
    from edgelstm.machine.tensorrt import tensorrt_facts

    report["tensorrt"] = _check(lambda: tensorrt_facts(cuda_buffers))
    return report
