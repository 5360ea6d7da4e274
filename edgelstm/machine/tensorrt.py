"""This host's TensorRT, GPU and Jetson facts. Every function here is safe where the thing it asks about is absent:
it returns None (or a dict saying "not installed") instead of raising. `tensorrt_facts()` is what `edgelstm doctor`
prints; `import_tensorrt()` is the one place that turns a missing TensorRT into BackendMissing (exit 3) with the
right install hint for x86 or Jetson. What a TensorRT *engine* is (versions, dtypes, its I/O spec) is in
``edgelstm.artifacts.trt``.

The GPU is asked first through a CUDA buffer backend where the caller passes ``edgelstm.runners.cuda_buffers``
(runners, the TensorRT build and doctor sit above this layer and do), then nvidia-smi, then the Jetson device tree.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from edgelstm.artifacts.trt import capabilities
from edgelstm.machine import device
from edgelstm.machine.device import DEVICE_TREE_MODEL, TEGRA_RELEASE

X86_INSTALL = ("pip install \"edgelstm[tensorrt]\" --extra-index-url https://pypi.nvidia.com (TensorRT for CUDA 12; "
               "[tensorrt-cu13] needs an R580+ driver; NVIDIA's index holds the builder libraries, PyPI alone has only "
               "stubs), or run inside the image from docker/Dockerfile.tensorrt (bash docker/run-trt-tests.sh)")
JETSON_INSTALL = ("on Jetson TensorRT comes with JetPack: sudo apt-get install python3-libnvinfer, then use a venv "
                  "made with `python3 -m venv --system-site-packages` (or docker/Dockerfile.jetson)")


def is_jetson() -> bool:
    return device.TEGRA_RELEASE.exists() or "tegra" in platform.release().lower()


def install_hint() -> str:
    return JETSON_INSTALL if is_jetson() else X86_INSTALL


def import_tensorrt(purpose: str = "building and running TensorRT engines"):
    """`import tensorrt`, or BackendMissing (exit 3) with the install hint for this platform."""
    from edgelstm.errors import BackendMissing

    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError as exc:
        raise BackendMissing(f"TensorRT is not installed, but {purpose} needs it", hint=install_hint()) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. the stub wheel failing to find its libraries
        raise BackendMissing(f"TensorRT is installed but does not load: {str(exc).splitlines()[0][:200]}",
                             hint=install_hint()) from exc
    if getattr(trt, "__version__", None) is None:
        raise BackendMissing("the installed `tensorrt` module has no version (a stub?)", hint=install_hint())
    return trt


# ------------------------------------------------------------------------------------------------- GPU


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


# Jetson modules have no nvidia-smi query for compute capability on older JetPacks: map the model name.
_JETSON_CC = [("thor", "11.0"), ("orin", "8.7"), ("xavier", "7.2"), ("tx2", "6.2"), ("nano", "5.3"), ("tx1", "5.3")]


def gpu_info(cuda_buffers: ModuleType | None = None) -> dict[str, Any] | None:
    """Name and compute capability of GPU 0: from the CUDA buffer backend when one is usable (``cuda_buffers``:
    the module ``edgelstm.runners.cuda_buffers``, passed by callers above this layer), else nvidia-smi, else
    (Jetson) the device-tree model name. None without a GPU."""
    try:
        if cuda_buffers is not None:
            return cuda_buffers.get_backend().device_info()
    except Exception:  # noqa: BLE001 - no backend, no GPU
        pass
    out = _run(["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"])
    if out and out.strip():
        parts = [p.strip() for p in out.strip().splitlines()[0].split(",")]
        info: dict[str, Any] = {"name": parts[0], "source": "nvidia-smi"}
        if len(parts) > 1 and re.fullmatch(r"\d+\.\d+", parts[1]):
            info["compute_capability"] = parts[1]
        if len(parts) > 2 and parts[2].isdigit():
            info["memory_bytes"] = int(parts[2]) * 1024 * 1024
        return info
    model = jetson_model()
    if model:
        for key, cc in _JETSON_CC:
            if key in model.lower():
                return {"name": model, "compute_capability": cc, "source": "device-tree"}
        return {"name": model, "source": "device-tree"}
    return None


# ---------------------------------------------------------------------------------------------- Jetson

# L4T release -> JetPack (NVIDIA's JetPack archive). Prefix match, most specific first.
_L4T_TO_JETPACK = [
    ("38.2", "7.0"), ("36.4.3", "6.2"), ("36.4.4", "6.2.1"), ("36.4", "6.1"), ("36.3", "6.0"), ("36.2", "6.0 DP"),
    ("35.6", "5.1.4"), ("35.5", "5.1.3"), ("35.4", "5.1.2"), ("35.3", "5.1.1"), ("35.2", "5.1"), ("35.1", "5.0.2"),
    ("32.7", "4.6.x"), ("32.6", "4.6"), ("32.5", "4.5"),
]


def l4t_version(release_file: Path = TEGRA_RELEASE) -> str | None:
    """'# R36 (release), REVISION: 4.0, ...' -> '36.4.0'. None when not a Jetson (or unreadable)."""
    try:
        text = Path(release_file).read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"R(\d+)\s*\(\w+\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    rev = m.group(2).split(".")
    while len(rev) < 2:
        rev.append("0")
    return f"{m.group(1)}.{rev[0]}.{rev[1]}"


def jetpack_version(l4t: str | None) -> str | None:
    pkg = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    if pkg and pkg.strip():
        return pkg.strip().split("+")[0].split("-")[0]
    if not l4t:
        return None
    for prefix, jp in _L4T_TO_JETPACK:
        if l4t == prefix or l4t.startswith(prefix + "."):
            return jp
    return None


def jetson_model(model_file: Path = DEVICE_TREE_MODEL) -> str | None:
    try:
        text = Path(model_file).read_bytes().decode(errors="replace").strip("\x00 \n")
    except OSError:
        return None
    return text or None


def power_mode(nvpmodel_output: str | None = None) -> dict[str, Any] | None:
    """nvpmodel's current power mode ({'name': 'MAXN', 'id': 0}); None when nvpmodel is absent."""
    out = nvpmodel_output if nvpmodel_output is not None else _run(["nvpmodel", "-q"])
    if not out:
        return None
    m = re.search(r"NV Power Mode:\s*(.+)", out)
    if not m:
        return None
    mode: dict[str, Any] = {"name": m.group(1).strip()}
    after = out[m.end():].strip().splitlines()
    if after and after[0].strip().isdigit():
        mode["id"] = int(after[0].strip())
    return mode


def jetson_info(release_file: Path = TEGRA_RELEASE, model_file: Path = DEVICE_TREE_MODEL) -> dict[str, Any] | None:
    """L4T / JetPack versions, board model and power mode; None when this is not a Jetson."""
    l4t = l4t_version(release_file)
    if l4t is None:
        return None
    return {"l4t": l4t, "jetpack": jetpack_version(l4t), "model": jetson_model(model_file),
            "power_mode": power_mode()}


# ------------------------------------------------------------------------------------------------ DLA


def dla_cores(trt=None) -> int | None:
    """Number of DLA cores TensorRT sees (Jetson AGX/NX Orin and Xavier have them); None if unknown."""
    try:
        if trt is None:
            import tensorrt as trt  # noqa: PLC0415
        logger = trt.Logger(trt.Logger.ERROR)
        return int(trt.Runtime(logger).num_DLA_cores)
    except Exception:  # noqa: BLE001 - no TensorRT, no GPU, no driver
        return None


# --------------------------------------------------------------------------------------------- summary


def tensorrt_facts(cuda_buffers: ModuleType | None = None) -> dict[str, Any]:
    """Everything `edgelstm doctor` shows about TensorRT, the GPU and Jetson (``cuda_buffers`` as in gpu_info).
    Never raises."""
    facts: dict[str, Any] = {"installed": False, "version": None, "capabilities": {}, "gpu": None,
                             "jetson": None, "dla_cores": None, "cuda_buffer_backends": [], "install_hint": None}
    try:
        if cuda_buffers is not None:
            facts["cuda_buffer_backends"] = cuda_buffers.available_backends()
    except Exception:  # noqa: BLE001
        pass
    facts["jetson"] = _safe(jetson_info)
    facts["gpu"] = _safe(lambda: gpu_info(cuda_buffers))
    try:
        import tensorrt as trt  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001
        facts["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
        facts["install_hint"] = install_hint()
        return facts
    version = str(getattr(trt, "__version__", "") or "") or None
    facts.update(installed=version is not None, version=version, capabilities=capabilities(version))
    facts["dla_cores"] = dla_cores(trt)
    if version is None:
        facts["install_hint"] = install_hint()
    if os.environ.get("EDGELSTM_TRT_VERBOSE"):
        facts["module"] = getattr(trt, "__file__", None)
    return facts


def _safe(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


