"""Run INT8 without AMX: a seccomp filter that makes ``arch_prctl(ARCH_REQ_XCOMP_PERM, ...)`` fail with EPERM.

onnxruntime's MLAS asks for AMX once per process (``MlasInitAMX``: ``syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM,
XFEATURE_XTILEDATA)``) and falls back to its AVX512-VNNI kernel when the request fails; no session option or
environment variable changes that choice (onnxruntime 1.20-1.32). This module refuses the request with the
kernel's documented interface, so the same file runs the VNNI kernel, with identical integer results:

- ``prctl(PR_SET_NO_NEW_PRIVS, 1)`` (needed to install a filter without CAP_SYS_ADMIN), then
- ``seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)`` with a classic-BPF program: on x86-64,
  syscall ``arch_prctl`` (158) whose first argument (low 32 bits: the kernel reads an ``int``) is
  ``ARCH_REQ_XCOMP_PERM`` (0x1023) returns ``-EPERM``; everything else is allowed (other arch_prctl codes
  included: glibc sets the thread pointer with ``ARCH_SET_FS``).

A filter cannot be removed, survives ``execve`` and is inherited by children; AMX permission, once granted, is
per process and cannot be revoked. So the filter must be in place before the first library of the process asks
(install it before importing onnxruntime or torch), or in a fresh process: ``python -m edgelstm.machine.noamx --
CMD ARGS`` / ``edgelstm-noamx -- CMD ARGS`` installs it and execs CMD. ``install_amx_block`` reports when it came
too late (the permission was already granted).

Deployment without this helper: docker ``--security-opt seccomp=docker/seccomp-noamx.json`` (Docker's default
profile with that one rule), see docker/README.md. systemd's ``SystemCallFilter=`` filters by syscall name only, not
by argument, and refusing every ``arch_prctl`` breaks the dynamic loader: use the helper in ``ExecStart=``.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import sys
from dataclasses import dataclass
from typing import Sequence

from edgelstm.machine.amx import (ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM, SYS_ARCH_PRCTL_X86_64, XTILEDATA_MASK,
                                  amx_blocked, arch_prctl, is_x86_64_linux)

# <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>, <linux/prctl.h>
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00
BPF_RET_K = 0x06 | 0x00
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16   # struct seccomp_data, little-endian
PR_SET_NO_NEW_PRIVS = 38
SYS_SECCOMP_X86_64 = 317
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1

def filter_program() -> list[tuple[int, int, int, int]]:
    """The classic-BPF program as (code, jt, jf, k) instructions (pure; jumps are relative to the next one)."""
    return [
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        (BPF_JMP_JEQ_K, 0, 5, AUDIT_ARCH_X86_64),       # another ABI: allow
        (BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        (BPF_JMP_JEQ_K, 0, 3, SYS_ARCH_PRCTL_X86_64),   # not arch_prctl: allow
        (BPF_LD_W_ABS, 0, 0, OFFSET_ARG0_LOW),
        (BPF_JMP_JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),     # another arch_prctl code: allow
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]


def run_filter(program: Sequence[tuple[int, int, int, int]], nr: int, arch: int, arg0: int) -> int:
    """Interpret ``program`` on one syscall (the subset of classic BPF it uses): the seccomp return value. Lets a
    test check the program's logic on any machine, beside the real kernel check."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    pc, acc = 0, 0
    while pc < len(program):
        code, jt, jf, k = program[pc]
        if code == BPF_LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == BPF_JMP_JEQ_K:
            pc += jt if acc == k else jf
        elif code == BPF_RET_K:
            return k
        else:
            raise ValueError(f"instruction {code:#x} not supported")
        pc += 1
    raise ValueError("the program fell off its end")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@dataclass(frozen=True)
class BlockResult:
    installed: bool          # the filter is active in this process now
    effective: bool          # ... and AMX was not already granted (the block changes the kernel onnxruntime picks)
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"installed": self.installed, "effective": self.effective, "reason": self.reason}


def _already_permitted() -> bool:
    rc, _, perm = arch_prctl(ARCH_GET_XCOMP_PERM)
    return rc == 0 and perm is not None and bool(perm & XTILEDATA_MASK)


def install_amx_block() -> BlockResult:
    """Install the filter in this process (all its threads). Never raises: the result says what happened."""
    if not is_x86_64_linux():
        return BlockResult(False, False, "not x86-64 Linux: there is no AMX to block")
    too_late = _already_permitted()
    if amx_blocked():
        return BlockResult(True, not too_late, "already installed")
    program = filter_program()
    raw = b"".join(struct.pack("<HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(program), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    ctypes.set_errno(0)
    if libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                  ctypes.c_ulong(0)) != 0:
        return BlockResult(False, False, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(ctypes.get_errno())}")
    rc = libc.syscall(ctypes.c_long(SYS_SECCOMP_X86_64), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                      ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.c_long(ctypes.addressof(prog)))
    if rc != 0:
        err = ctypes.get_errno()
        why = errno.errorcode.get(err, str(err)) if rc < 0 else f"thread {rc} could not be synchronized"
        return BlockResult(False, False, f"seccomp(SECCOMP_SET_MODE_FILTER) failed: {why}")
    if too_late:
        return BlockResult(True, False, "installed, but this process already holds the AMX permission (a library "
                                        "asked before): onnxruntime keeps AMX; block AMX in a fresh process")
    return BlockResult(True, True, "installed: arch_prctl(ARCH_REQ_XCOMP_PERM) now fails with EPERM")


# ------------------------------------------------------------------------------------------------ the helper

USAGE = """usage: edgelstm-noamx [--] CMD [ARGS...]
       python -m edgelstm.machine.noamx [--] CMD [ARGS...]

Run CMD with AMX blocked: a seccomp filter makes arch_prctl(ARCH_REQ_XCOMP_PERM) fail with EPERM, so onnxruntime
runs its INT8 GEMMs on AVX512-VNNI instead of AMX tiles (faster at small batch on AMX Xeons). The filter stays on
for CMD and its children. Example:

  edgelstm-noamx -- python serve.py --model model.int8.onnx
"""


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from edgelstm import console  # only on the paths that print: the exec path stays light

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        console.info(USAGE.rstrip())
        return 0 if args else 2
    result = install_amx_block()
    if not result.installed and is_x86_64_linux():
        console.error(f"edgelstm-noamx: {result.reason}")
        return 4
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        console.error(f"edgelstm-noamx: cannot run {args[0]!r}: {exc.strerror}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # pragma: no cover - execvp does not return


__all__ = ["install_amx_block", "amx_blocked", "filter_program", "run_filter", "BlockResult", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
