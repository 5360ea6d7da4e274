"""The device block of a bench report: what the numbers were measured on.

CPU model and cores, memory, OS, library versions, the GPU (named without torch where possible: NVML,
the CUDA runtime through cuda-python, nvidia-smi, then torch.cuda; see gpu_block) and Jetson facts when
present (/etc/nv_tegra_release, /proc/device-tree/model). Nothing here raises: a fact that cannot be read
is None.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def cpu_block() -> dict[str, Any]:
    model = None
    physical: set[tuple[str, str]] = set()
    flags: set[str] = set()
    text = _read(Path("/proc/cpuinfo")) or ""
    phys_id = core_id = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            core_id = value
            physical.add((phys_id, core_id))
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    simd = sorted(f for f in flags if f in {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
                                             "avx_vnni", "asimd", "asimddp", "sve", "neon"})
    from edgelstm.machine.amx import affinity as cpu_affinity
    from edgelstm.machine.isa import detect_isa

    affinity = cpu_affinity()["usable_cpus"]

    return {"model": model or platform.processor() or platform.machine(), "arch": platform.machine(),
            "isa": str(detect_isa()),
            "logical_cores": os.cpu_count(), "physical_cores": len(physical) or None,
            "usable_cores": affinity, "simd": simd}


def memory_gb() -> float | None:
    text = _read(Path("/proc/meminfo")) or ""
    m = re.search(r"MemTotal:\s+(\d+)\s+kB", text)
    if m:
        return round(int(m.group(1)) / 1024 ** 2, 1)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 1)
    except (ValueError, OSError, AttributeError):
        return None


def jetson_block() -> dict[str, Any] | None:
    """Jetson facts, or None on anything that is not a Jetson."""
    release = _read(TEGRA_RELEASE)
    model = _read(DEVICE_TREE_MODEL)
    if not release and not (model and ("jetson" in model.lower() or "nvidia" in model.lower())):
        return None
    l4t = None
    if release:
        m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release)
        l4t = f"{m.group(1)}.{m.group(2)}" if m else release.splitlines()[0][:80]
    return {"model": model, "l4t": l4t, "nv_tegra_release": release.splitlines()[0][:160] if release else None}


# --------------------------------------------------------------------------------------------------- GPU
# The GPU is named without torch where torch cannot see it (the TensorRT image ships a CPU torch): NVML
# (nvidia-ml-py), then the CUDA runtime (cuda-python), then nvidia-smi, then torch. Each reader returns
# {"name", "capability", "memory_gb", "count", ...} for the first visible GPU, or None; none raises.

NVIDIA_SMI_QUERY = ["--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"]


def _text(v: Any) -> str:
    return (v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)).replace("\x00", "").strip()


def _visible() -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as a list ([] = no GPU visible), or None when it is not set. NVML and
    nvidia-smi number GPUs physically; the CUDA runtime and torch see only these."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return None
    items = [v.strip() for v in env.split(",") if v.strip()]
    out = []
    for v in items:  # the runtime stops at the first invalid entry (e.g. -1)
        if v.startswith("-"):
            break
        out.append(v)
    return out


def _gpu_nvml() -> dict[str, Any] | None:
    import warnings

    with warnings.catch_warnings():  # the deprecated `pynvml` package warns on import; nvidia-ml-py does not
        warnings.simplefilter("ignore")
        import pynvml  # nvidia-ml-py

    pynvml.nvmlInit()
    try:
        visible = _visible()
        first = visible[0] if visible else "0"
        if first.isdigit():
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(first))
        else:  # GPU-<uuid> / MIG-<uuid>
            handle = pynvml.nvmlDeviceGetHandleByUUID(first)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        out = {"name": _text(pynvml.nvmlDeviceGetName(handle)), "capability": f"{int(major)}.{int(minor)}",
               "memory_gb": round(int(pynvml.nvmlDeviceGetMemoryInfo(handle).total) / 1024 ** 3, 1),
               "count": len(visible) if visible else int(pynvml.nvmlDeviceGetCount())}
        try:
            out["driver"] = _text(pynvml.nvmlSystemGetDriverVersion())
        except Exception:  # noqa: BLE001 - a side fact
            pass
        return out
    finally:
        pynvml.nvmlShutdown()


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart as runtime  # type: ignore[no-redef]  # older cuda-python
    return runtime


def _gpu_cudart() -> dict[str, Any] | None:
    rt = _cudart()

    def ok(err: Any) -> bool:
        return int(getattr(err, "value", err)) == 0

    err, count = rt.cudaGetDeviceCount()
    if not ok(err) or int(count) < 1:
        return None
    err, props = rt.cudaGetDeviceProperties(0)
    if not ok(err):
        return None
    out = {"name": _text(props.name), "capability": f"{int(props.major)}.{int(props.minor)}",
           "memory_gb": round(int(props.totalGlobalMem) / 1024 ** 3, 1), "count": int(count)}
    err, version = rt.cudaRuntimeGetVersion()
    if ok(err):
        out["cuda"] = f"{int(version) // 1000}.{int(version) % 1000 // 10}"
    return out


def _gpu_nvidia_smi() -> dict[str, Any] | None:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    visible = _visible()
    select = ["-i", visible[0]] if visible else []
    proc = subprocess.run([exe, *NVIDIA_SMI_QUERY, *select], capture_output=True, text=True, timeout=20)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()] if proc.returncode == 0 else []
    if not lines:
        return None
    parts = [p.strip() for p in lines[0].split(",")]
    out: dict[str, Any] = {"name": parts[0], "capability": None, "memory_gb": None,
                           "count": len(visible) if visible else len(lines)}
    if len(parts) > 1 and re.fullmatch(r"\d+\.\d+", parts[1]):
        out["capability"] = parts[1]
    m = re.fullmatch(r"(\d+)\s*MiB", parts[2]) if len(parts) > 2 else None
    if m:
        out["memory_gb"] = round(int(m.group(1)) / 1024, 1)
    return out


def _gpu_torch() -> dict[str, Any] | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": torch.cuda.get_device_name(0), "capability": "%d.%d" % torch.cuda.get_device_capability(0),
            "memory_gb": round(props.total_memory / 1024 ** 3, 1), "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


#: (source name, reader), tried in this order; looked up at call time (tests replace readers).
GPU_SOURCES: tuple[tuple[str, str], ...] = (("nvml", "_gpu_nvml"), ("cuda-python", "_gpu_cudart"),
                                             ("nvidia-smi", "_gpu_nvidia_smi"), ("torch", "_gpu_torch"))


def gpu_block() -> dict[str, Any] | None:
    """The first visible CUDA GPU: name, compute capability, memory, count, and `source` (which reader named
    it: nvml, cuda-python, nvidia-smi or torch); None without a GPU. A broken or missing reader is skipped,
    never a crash: the first that names a GPU wins."""
    visible = _visible()
    if visible is not None and not visible:
        return None  # CUDA_VISIBLE_DEVICES hides every GPU: nothing runs on one
    for source, reader in GPU_SOURCES:
        try:
            info = globals()[reader]()
        except Exception:  # noqa: BLE001 - not installed (ImportError), no driver, no GPU: try the next
            continue
        if info and info.get("name"):
            return {**info, "source": source}
    return None


def gpu_name_key(name: Any) -> str | None:
    """A GPU name as every reader spells it: bytes or text, any case and spacing, with or without the
    "NVIDIA " prefix and a trailing "(...)" note (nvidia-smi on Jetson says "Orin (nvgpu)", torch "Orin")."""
    if name is None:
        return None
    text = re.sub(r"\s+", " ", _text(name)).strip().casefold()
    text = re.sub(r"\s*\([^)]*\)$", "", text)
    text = re.sub(r"^nvidia\s+", "", text)
    return text or None


def library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("edgelstm", "numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def ort_providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except Exception:  # noqa: BLE001
        return []


def describe_device(*, gpu: bool = True) -> dict[str, Any]:
    """The device block of a bench report."""
    cpu = cpu_block()
    block: dict[str, Any] = {
        "machine": None,
        "cpu": cpu,
        "memory_gb": memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "gpu": gpu_block() if gpu else None,
        "jetson": jetson_block(),
        "versions": library_versions(),
        "ort_providers": ort_providers(),
    }
    block["machine"] = machine_slug(block)
    return block


def machine_slug(device: dict[str, Any]) -> str:
    """A file-name-safe name for the machine: CPU model + cores (+ GPU / Jetson model)."""
    parts = []
    jet = device.get("jetson") or {}
    gpu = device.get("gpu") or {}
    if jet.get("model"):
        parts.append(jet["model"])
    else:
        cpu = device.get("cpu") or {}
        parts.append(str(cpu.get("model") or "cpu"))
        parts.append(f"{cpu.get('usable_cores') or cpu.get('logical_cores') or 0}c")
        if cpu.get("isa"):  # two CPUs of one name but another int8 class never share a machine name
            parts.append(str(cpu["isa"]))
        if gpu.get("name"):
            parts.append(gpu["name"])
    text = "-".join(parts).lower()
    text = re.sub(r"\(r\)|\(tm\)|cpu @.*?(?=-|$)|processor", "", text)
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return re.sub(r"-{2,}", "-", text)[:80] or "machine"


def same_device(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    """Whether two device blocks describe the same hardware (CPU model, GPU, Jetson model); the reason if not.
    GPU names compare as gpu_name_key spells them, whichever reader (NVML, CUDA runtime, nvidia-smi, torch)
    named the GPU in each report."""
    def facts(d: dict[str, Any]) -> dict[str, tuple[Any, Any]]:  # fact -> (compared value, shown value)
        gpu = (d.get("gpu") or {}).get("name")
        return {"cpu": ((d.get("cpu") or {}).get("model"),) * 2, "isa": ((d.get("cpu") or {}).get("isa"),) * 2,
                "gpu": (gpu_name_key(gpu), gpu), "jetson": ((d.get("jetson") or {}).get("model"),) * 2}

    fa, fb = facts(a), facts(b)
    # a report from before the ISA class was recorded still compares on the CPU model
    diffs = [f"{k} {fa[k][1]!r} vs {fb[k][1]!r}" for k in fa
             if fa[k][0] != fb[k][0] and not (k == "isa" and None in (fa[k][0], fb[k][0]))]
    return (not diffs, "; ".join(diffs))
