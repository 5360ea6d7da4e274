"""The device block of a bench report: what the numbers were measured on.

CPU model and cores, memory, OS, library versions, the GPU (through torch.cuda, only when torch is
installed and sees one) and Jetson facts when present (/etc/nv_tegra_release, /proc/device-tree/model).
Nothing here raises: a fact that cannot be read is None.
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
    affinity = None
    if hasattr(os, "sched_getaffinity"):
        try:
            affinity = len(os.sched_getaffinity(0))
        except OSError:
            affinity = None
    from edgelstm.machine.isa import detect_isa

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


def gpu_block() -> dict[str, Any] | None:
    """The first CUDA GPU as torch sees it; None without torch or without a GPU."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        return {"name": torch.cuda.get_device_name(0), "capability": "%d.%d" % torch.cuda.get_device_capability(0),
                "memory_gb": round(props.total_memory / 1024 ** 3, 1), "count": torch.cuda.device_count(),
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    except Exception:  # noqa: BLE001 - a broken CUDA install is reported as no GPU, never a crash
        return None


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
    """Whether two device blocks describe the same hardware (CPU model, GPU, Jetson model); the reason if not."""
    def facts(d: dict[str, Any]) -> dict[str, Any]:
        return {"cpu": (d.get("cpu") or {}).get("model"), "isa": (d.get("cpu") or {}).get("isa"),
                "gpu": (d.get("gpu") or {}).get("name"),
                "jetson": (d.get("jetson") or {}).get("model")}

    fa, fb = facts(a), facts(b)
    # a report from before the ISA class was recorded still compares on the CPU model
    diffs = [f"{k} {fa[k]!r} vs {fb[k]!r}" for k in fa if fa[k] != fb[k] and not (k == "isa" and None in (fa[k], fb[k]))]
    return (not diffs, "; ".join(diffs))
