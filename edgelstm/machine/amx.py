"""AMX in this process: whether the CPU has AMX-INT8, whether the kernel offers it, whether this process holds the
permission to use it, whether edgelstm's filter blocks it, and whether the process is pinned to fewer CPUs.

Why it matters (field report 2026-12-06; ARCHITECTURE.md, "Facts the code relies on"): on a Xeon with AMX-INT8, onnxruntime's MLAS asks the kernel for
AMX once per process (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``) and, when granted, runs every u8×s8
GEMM inside ``DynamicQuantizeLSTM``/``MatMulInteger`` on AMX tiles; at batch 1 that is slower than its AVX512-VNNI
kernel. onnxruntime 1.32 also skips AMX when the process starts pinned to one CPU. So a latency figure is only
meaningful beside these facts: they go into every bench report (``device.process``) and ``edgelstm doctor``.

The Linux interface (Documentation/arch/x86/xstate.rst): ``ARCH_GET_XCOMP_SUPP`` (0x1021) stores the dynamically
enabled XSTATE features the kernel supports, ``ARCH_GET_XCOMP_PERM`` (0x1022) the ones this process is permitted to
use, ``ARCH_REQ_XCOMP_PERM`` (0x1023) requests one (AMX tile data is feature 18). Permission is per process,
inherited on fork and cleared on exec. Reading these has no side effect; nothing here requests AMX.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

SYS_ARCH_PRCTL_X86_64 = 158
ARCH_GET_FS = 0x1003
ARCH_GET_XCOMP_SUPP = 0x1021
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18
XTILEDATA_MASK = 1 << XFEATURE_XTILEDATA
AMX_INT8_FLAGS = frozenset({"amx_int8", "amx_tile"})
#: below this batch onnxruntime's AMX int8 kernel is not expected to win: its tiles hold 16 rows, so a batch-1 step
#: (a 1×K×4H product) fills one row of sixteen and pays the tile load/store round trip (field report 2026-12-06:
#: ~1.1 µs per 1×64×256 step on AMX vs 0.6 µs AVX512-VNNI). A model, not a measurement of the crossover:
#: benchmarks/amx_int8.py measures it on an AMX machine.
AMX_MIN_BATCH = 16


def is_x86_64_linux() -> bool:
    return platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def arch_prctl(code: int, arg: int | ctypes.c_uint64 | None = None) -> tuple[int, int, int | None]:
    """``arch_prctl(code, arg)`` through ``syscall(2)``: (return value, errno, the uint64 stored when ``arg`` is
    None, i.e. for the GET codes). x86-64 Linux only (elsewhere: (-1, ENOSYS, None))."""
    import errno

    if not is_x86_64_linux():
        return -1, errno.ENOSYS, None
    libc = _libc()
    out = ctypes.c_uint64(0)
    ptr = ctypes.c_long(ctypes.addressof(out)) if arg is None else ctypes.c_long(int(arg))
    ctypes.set_errno(0)
    rc = int(libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL_X86_64), ctypes.c_long(code), ptr))
    err = ctypes.get_errno() if rc != 0 else 0
    return rc, err, (int(out.value) if arg is None and rc == 0 else None)


def _cpu_flags() -> frozenset[str]:
    from edgelstm.machine.isa import cpu_flags

    return cpu_flags()


def affinity() -> dict[str, Any]:
    """How many CPUs this process may run on vs how many are online: ``pinned`` when fewer (taskset, cgroups
    cpusets, a container's --cpuset-cpus)."""
    usable = None
    if hasattr(os, "sched_getaffinity"):
        try:
            usable = len(os.sched_getaffinity(0))
        except OSError:
            usable = None
    online = os.cpu_count()
    return {"usable_cpus": usable, "online_cpus": online,
            "pinned": bool(usable is not None and online is not None and usable < online)}


def seccomp_mode() -> int | None:
    """This process's seccomp mode from /proc/self/status (0 none, 1 strict, 2 filter), None when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return int(line.split(":", 1)[1].strip())
    except (OSError, ValueError):
        return None
    return None


def amx_blocked() -> bool:
    """Whether a seccomp filter (edgelstm's, inherited or installed here) refuses AMX permission requests in this
    process. Probed without side effects: ``arch_prctl(ARCH_REQ_XCOMP_PERM, 0)`` asks for the x87 state, which every
    process is permitted, so only such a filter answers EPERM (the kernel answers 0, or EINVAL before Linux 5.16)."""
    import errno

    if not is_x86_64_linux():
        return False
    rc, err, _ = arch_prctl(ARCH_REQ_XCOMP_PERM, 0)
    return rc != 0 and err == errno.EPERM


def amx_state(flags: frozenset[str] | None = None) -> dict[str, Any]:
    """The AMX facts of this process right now (no side effects):

    - ``cpu``: the CPU reports AMX-INT8 (``amx_int8`` and ``amx_tile`` flags)
    - ``kernel``: the kernel supports AMX tile data for user space (``ARCH_GET_XCOMP_SUPP``), None when unknown
    - ``permitted``: this process holds the AMX permission (someone asked and got it: onnxruntime, oneDNN)
    - ``blocked``: edgelstm's seccomp filter refuses the permission request in this process
    - ``int8_kernel``: what onnxruntime's u8×s8 GEMM can use here, in words
    - ``pinned``/``usable_cpus``/``online_cpus``: the CPU affinity (onnxruntime 1.32 skips AMX when pinned)
    """
    flags = _cpu_flags() if flags is None else flags
    cpu = AMX_INT8_FLAGS <= set(flags)
    kernel = permitted = None
    if is_x86_64_linux():
        rc, _, supp = arch_prctl(ARCH_GET_XCOMP_SUPP)
        kernel = bool(supp & XTILEDATA_MASK) if rc == 0 and supp is not None else (False if rc != 0 else None)
        rc, _, perm = arch_prctl(ARCH_GET_XCOMP_PERM)
        permitted = bool(perm & XTILEDATA_MASK) if rc == 0 and perm is not None else False
    blocked = amx_blocked()
    state = {"cpu": cpu, "kernel": kernel, "permitted": permitted, "blocked": blocked, **affinity()}
    state["int8_kernel"] = describe_int8_kernel(state)
    return state


def decide_amx_block(policy: str, isa: str, int8_onnx: bool, batches: "list[int] | tuple[int, ...]"
                     ) -> tuple[bool, str, str | None]:
    """Whether a process about to time ``int8_onnx`` (INT8 onnxruntime artifacts) at ``batches`` on a CPU of class
    ``isa`` should block AMX under ``policy`` (auto | allow | block): (block, why, a warning or None). Pure."""
    if policy == "block":
        return True, "asked (--amx block)", None
    if policy == "allow":
        return False, "asked (--amx allow)", None
    if isa != "x86-amx":
        return False, f"auto: no AMX-INT8 on this CPU ({isa})", None
    if not int8_onnx:
        return False, "auto: no INT8 onnxruntime artifact to time (AMX changes only onnxruntime's integer GEMMs)", None
    small = [b for b in batches if b < AMX_MIN_BATCH]
    if small and len(small) == len(batches):
        return True, (f"auto: INT8 at batch < {AMX_MIN_BATCH} only, where onnxruntime's AMX kernel is slower than its "
                      "AVX512-VNNI kernel"), None
    if not small:
        return False, f"auto: INT8 at batch >= {AMX_MIN_BATCH} only, where AMX tiles fill", None
    return False, "auto: the grid mixes small and large batches; AMX kept", (
        f"batches {small} run INT8 on AMX here, which is slower than VNNI below batch {AMX_MIN_BATCH}: time them in "
        "another run with --amx block (one process cannot switch AMX off once onnxruntime has it)")


def describe_int8_kernel(state: dict[str, Any]) -> str:
    """Which integer GEMM onnxruntime can run in a process in this state, in words (pure)."""
    if not state.get("cpu"):
        return "no AMX on this CPU"
    if state.get("kernel") is False:
        return "no AMX (the kernel does not offer AMX tile data)"
    if state.get("permitted"):
        return "AMX (permission granted to this process)"
    if state.get("blocked"):
        return "AVX512-VNNI (AMX blocked by edgelstm's seccomp filter)"
    if state.get("pinned"):
        return "not requested yet; pinned process (onnxruntime 1.32 skips AMX when pinned)"
    return "AMX not requested yet (onnxruntime asks on its first integer GEMM)"


__all__ = ["amx_state", "amx_blocked", "decide_amx_block", "affinity", "arch_prctl", "seccomp_mode", "describe_int8_kernel", "AMX_MIN_BATCH",
           "ARCH_GET_FS", "ARCH_GET_XCOMP_PERM", "ARCH_GET_XCOMP_SUPP", "ARCH_REQ_XCOMP_PERM", "XFEATURE_XTILEDATA",
           "is_x86_64_linux"]
