"""The CPU's ISA class: what decides whether onnxruntime's integer kernels are exact on a machine.

onnxruntime's x86 int8 GEMM (MLAS) multiplies unsigned 8-bit activations by signed 8-bit weights. With VNNI
(``avx512_vnni`` or ``avx_vnni``) it uses ``VPDPBUSD``, which accumulates in 32 bits: exact. Without VNNI
(AVX2-only, and AVX-512 without VNNI) it uses ``VPMADDUBSW``, which adds two u8×s8 products into a
*saturating* int16: ``2 · 255 · 127 = 64770 > 32767``, so full-range weights can saturate. 7-bit weights
(``reduce_range``: ``2 · 255 · 64 = 32640``) cannot. arm64 kernels (UDOT/SDOT, or widening NEON multiplies)
accumulate in 32 bits.

AMX-INT8 (Sapphire Rapids and later Xeons) accumulates in 32 bits too, but onnxruntime runs its u8×s8 GEMMs on AMX
tiles there, which is slower than VNNI at small batch (``edgelstm.machine.amx``): a class of its own.

The classes (what a measurement ran on, and what a quantized file can be targeted at):

- ``x86-amx``: x86-64 with AMX-INT8 (``amx_int8`` + ``amx_tile``; these CPUs have AVX512-VNNI too): exact u8×s8
- ``x86-vnni``: x86-64 with AVX512-VNNI or AVX-VNNI, no AMX (exact u8×s8)
- ``x86-avx2``: x86-64 without VNNI (AVX2-only, AVX-512 without VNNI, older): u8×s8 can saturate
- ``arm64``: aarch64
- ``other``: anything else (treated like ``x86-avx2`` when a recipe must be chosen: the safe choice)

Targets (``--target-cpu``) add ``portable`` (7-bit weights: exact on every class at every onnxruntime level; what
``auto`` means), ``native`` (this machine's class) and ``tensorrt`` (TensorRT's 8-bit Q/DQ recipe).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Mapping

from edgelstm.options import PORTABLE_TARGETS, IsaClass, TargetCpu  # noqa: F401 - the choices live in options

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
AMX_FLAGS = frozenset({"amx_int8", "amx_tile"})
#: the flags that say something about int8 kernels, shown beside the class
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "asimd", "asimddp", "i8mm", "sve")


def cpu_flags(text: str | None = None) -> frozenset[str]:
    """The CPU feature flags of this machine (x86 ``flags``, arm ``Features``); empty when unknown."""
    if text is None:
        try:
            text = CPUINFO.read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def classify(machine: str, flags: frozenset[str] | set[str]) -> IsaClass:
    """The ISA class of a machine from ``platform.machine()`` and its CPU flags (pure)."""
    m = machine.lower()
    if m in ("aarch64", "arm64", "armv8l") or m.startswith("arm64"):
        return IsaClass.arm64
    if m in ("x86_64", "amd64", "i686", "i386", "x86"):
        if AMX_FLAGS <= set(flags):
            return IsaClass.x86_amx
        return IsaClass.x86_vnni if flags & VNNI_FLAGS else IsaClass.x86_avx2
    return IsaClass.other


def detect_isa() -> IsaClass:
    """This machine's ISA class (tests monkeypatch this one function)."""
    return classify(platform.machine(), cpu_flags())


def isa_facts() -> dict[str, object]:
    """The ISA class with the flags behind it, for reports and ``doctor``."""
    flags = cpu_flags()
    return {"isa": str(detect_isa()), "arch": platform.machine(),
            "int8_flags": [f for f in RELEVANT_FLAGS if f in flags]}


def resolve_target(target: TargetCpu | str | None) -> str:
    """What a file is made for: ``auto``/None -> ``portable``; ``native`` -> this machine's class; otherwise the
    named target (an ISA class, ``portable`` or ``tensorrt``)."""
    t = TargetCpu(target or TargetCpu.auto)
    if t == TargetCpu.auto:
        return TargetCpu.portable.value
    return str(detect_isa()) if t == TargetCpu.native else t.value


def saturates_u8s8(isa: IsaClass | str) -> bool:
    """Whether onnxruntime's u8×s8 int8 GEMM can saturate on this class (no VNNI on x86, or unknown). A target
    (portable, tensorrt) is not a class: False."""
    return str(isa) in (IsaClass.x86_avx2.value, IsaClass.other.value)


def mismatch_warning(artifact: str, target: str | None, measured_on: str, *, what: str = "validated",
                     details: Mapping[str, Any] | None = None,
                     measured: str = "the drift measured here is") -> str | None:
    """The warning when an INT8 artifact is measured on another ISA class than the one it targets.

    With the artifact's manifest ``details`` the drift rule is exact: the numbers differ only when the file has
    weight pairs that can saturate and exactly one of the two classes saturates (a file of 7-bit weights or
    unfused Q/DQ computes the same on every class: no warning). Without them, any other class warns. A portable
    target warns only when its file has saturating pairs after all (the user forced 8-bit weights)."""
    if not target or target == measured_on:
        return None
    sat = ((details or {}).get("quantization") or {}).get("saturation")
    if target in PORTABLE_TARGETS:
        if sat is None or not sat.get("saturating_on_x86_avx2") or not saturates_u8s8(measured_on):
            return None
        return (f"{what} on {measured_on}; {artifact} targets {target} but has 8-bit weight pairs that saturate "
                f"here: {measured} not what a CPU with VNNI, AMX or arm64 computes")
    if sat is not None:
        if not sat.get("saturating_on_x86_avx2") or saturates_u8s8(target) == saturates_u8s8(measured_on):
            return None
    return (f"{what} on {measured_on}; {artifact} targets {target}: {measured} not what the device will see "
            f"(re-run on {article(target)} {target} machine)")


def article(isa: str) -> str:
    """'an' before x86-…, 'a' before arm64."""
    return "an" if str(isa).startswith(("x86", "other")) else "a"


__all__ = ["IsaClass", "TargetCpu", "PORTABLE_TARGETS", "cpu_flags", "classify", "detect_isa", "isa_facts", "resolve_target",
           "saturates_u8s8", "mismatch_warning", "article"]
