"""Memory measurements for bench rows.

CPU: resident set size from /proc/self/status. The peak during a run is VmHWM after resetting the
high-water mark (writing 5 to /proc/self/clear_refs, Linux >= 4.0); where that is not possible,
tracemalloc's peak of Python-visible allocations (numpy included) is reported instead and named so.
GPU (torch): torch.cuda.max_memory_allocated after reset_peak_memory_stats. A runner may also offer
`memory_stats() -> dict` (e.g. TensorRT device memory), which is merged in as is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MB = 1024 * 1024


def _status_kb(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def rss_bytes() -> int | None:
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_during(fn: Callable[[], Any], repeat: int = 3) -> dict[str, Any]:
    """Run fn `repeat` times and report the peak memory above the resident size before the runs."""
    before = rss_bytes()
    if before is not None and _reset_peak():
        for _ in range(repeat):
            fn()
        hwm = _status_kb("VmHWM")
        if hwm is not None:
            return {"peak_run_mb": round(max(0, hwm * 1024 - before) / MB, 3), "method": "rss-hwm"}
    import tracemalloc

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        for _ in range(repeat):
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if started:
            tracemalloc.stop()
    return {"peak_run_mb": round(max(0, peak - base) / MB, 3), "method": "tracemalloc"}


def cuda_peak_during(fn: Callable[[], Any], repeat: int = 3) -> dict[str, Any]:
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for _ in range(repeat):
        fn()
    torch.cuda.synchronize()
    return {"gpu_peak_mb": round(torch.cuda.max_memory_allocated() / MB, 3),
            "gpu_peak_run_mb": round(max(0, torch.cuda.max_memory_allocated() - base) / MB, 3),
            "gpu_method": "torch.cuda.max_memory_allocated"}
