"""Which INT8 recipe does not saturate on the CPU a file is quantized for (see ``edgelstm.machine.isa``).

- ``portable`` (the default: ``--target-cpu auto``): signed 7-bit weights (``reduce_range``) for dynamic INT8 and
  for static Q/DQ. ``VPMADDUBSW`` pair sums stay below 2^15 (2·255·64 = 32640), so every kernel onnxruntime may
  pick — AVX2 (u8×s8 with int16 pair sums), AVX512-VNNI, AMX, arm64 UDOT/SDOT/NEON, fused or not — computes the
  same exact integers at every optimization level: the file drifts the same on every class.
- dynamic, ``x86-vnni`` / ``x86-amx`` / ``arm64``: signed 8-bit weights, full range (32-bit accumulation there);
  the file saturates on an x86 CPU without VNNI.
- dynamic, ``x86-avx2``: signed 7-bit weights, as portable.
- static (Q/DQ) for an 8-bit target: weights 8-bit symmetric. On ``x86-avx2`` onnxruntime fuses Q/DQ pairs into
  ``QGemm``/``QLinearMatMul`` at optimization level ``extended``/``all``, which then saturate; the file records
  level ``basic`` (Q/DQ unfused: int8 rounding applied, arithmetic in float), and drift is measured at the level
  that will run. With 7-bit weights fused kernels are exact and every level is allowed.
- ``tensorrt``: static only, TensorRT's recipe (8-bit symmetric weights); on a CPU onnxruntime runs it at level
  ``basic`` (unfused: exact on every class).

An explicit ``reduce_range`` or ``weight_type`` from the user wins; the recipe then says whether it is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgelstm.machine import isa as cpu_isa
from edgelstm.machine.isa import TargetCpu, resolve_target, saturates_u8s8
from edgelstm.options import QuantMode, WeightType

ALL_LEVELS = ("all", "extended", "basic")
WEIGHT_TYPES = tuple(w.value for w in WeightType)


@dataclass(frozen=True)
class Int8Recipe:
    target: str                 # an ISA class (x86-vnni, ...), "portable" or "tensorrt"
    weight_type: WeightType     # s8 | u8 (a str: serialized as before)
    reduce_range: bool          # 7-bit weights
    ort_levels: tuple[str, ...]  # onnxruntime optimization levels allowed to run the file, best first
    why: str
    safe: bool                  # False when the user's explicit choice can saturate on the target

    def to_dict(self, requested: str) -> dict[str, object]:
        return {"requested": requested, "isa": str(self.target), "quantized_on": str(cpu_isa.detect_isa()),
                "weight_type": self.weight_type, "reduce_range": self.reduce_range,
                "ort_levels": list(self.ort_levels), "saturation_safe": self.safe, "why": self.why}


def must_hold_without_vnni(target: str) -> bool:
    """Whether a file for ``target`` must not saturate on an x86 CPU without VNNI (the class that saturates)."""
    return saturates_u8s8(target) or target in ("portable", "tensorrt")


def _bad(message: str) -> Exception:
    from edgelstm.errors import BadInput

    return BadInput(message)


def choose_int8_recipe(target: TargetCpu | str | None, mode: QuantMode | str, *, reduce_range: bool | None = None,
                       weight_type: str | None = None) -> Int8Recipe:
    """The weight type, reduce_range and allowed onnxruntime levels for ``mode`` on ``target`` (pure apart from
    ``native``, which reads this machine's class)."""
    isa = resolve_target(target)
    mode = QuantMode(mode)
    wt = (weight_type or "s8").strip().lower()  # as --target-cpu and --precision: S8 and s8 are the same
    if wt not in WEIGHT_TYPES:
        from edgelstm.errors import opt

        raise _bad(f"{opt('weight_type')} must be one of {', '.join(WEIGHT_TYPES)}, got {weight_type!r}")
    wt = WeightType(wt)
    risky = must_hold_without_vnni(isa)
    if mode == QuantMode.dynamic:
        if isa == "tensorrt":
            raise _bad("--target-cpu tensorrt is TensorRT's static Q/DQ recipe; TensorRT runs no dynamic INT8 "
                       "(use --mode static, or another --target-cpu)")
        return _dynamic(isa, wt, risky, reduce_range)
    if wt != "s8":
        raise _bad("static (Q/DQ) INT8 uses signed 8-bit weights (TensorRT's recipe); u8 weights are dynamic-only")
    rr = (isa == "portable") if reduce_range is None else bool(reduce_range)
    if risky and not rr:
        why = (f"{isa}: onnxruntime fuses Q/DQ into QGemm/QLinearMatMul at levels extended/all, which saturate "
               "without VNNI; the file runs at level basic (Q/DQ unfused, no saturation)")
        if isa == "tensorrt":
            why = ("tensorrt: TensorRT's recipe, 8-bit symmetric weights; onnxruntime on a CPU runs the file at level "
                   "basic (Q/DQ unfused), exact on every CPU class")
        return Int8Recipe(isa, wt, rr, ("basic",), why, True)
    if isa == "portable":
        why = ("portable: 7-bit weights keep fused Q/DQ kernels exact on every x86 class (with or without VNNI/AMX) "
               "and arm64, at every onnxruntime level")
    else:
        why = (f"{isa}: fused Q/DQ kernels accumulate in 32 bits" if not risky
               else f"{isa}: 7-bit weights (reduce_range) keep fused Q/DQ kernels from saturating")
    return Int8Recipe(isa, wt, rr, ALL_LEVELS, why, True)


def _dynamic(isa: str, wt: str, risky: bool, reduce_range: bool | None) -> Int8Recipe:
    rr = risky if reduce_range is None else reduce_range
    # the structural check after quantization (edgelstm.converters.quantize.int8_saturation) has the last word: u8 weights run
    # the u8×u8 kernel for MatMul/Gemm, but onnxruntime's DynamicQuantizeLSTM keeps s8 weights whatever the type
    safe = not risky or rr
    if not risky:
        why = (f"{isa}: int8 products accumulate in 32 bits, full 8-bit {wt} weights are exact here (they saturate "
               "on x86 CPUs without VNNI: --target-cpu portable for a file that computes the same everywhere)"
               + ("; 7-bit weights as asked" if rr else ""))
    elif rr and isa == "portable":
        why = ("portable: 7-bit weights (reduce_range) are exact in every int8 kernel onnxruntime has (AVX2 "
               "VPMADDUBSW pair sums 2·255·64 < 32767, VNNI, AMX, arm64) at every level: the same drift on every CPU")
    elif rr:
        why = (f"{isa}: onnxruntime's u8×s8 kernel (VPMADDUBSW) saturates int16 pair sums without VNNI; "
               "7-bit weights (reduce_range) keep 2·255·64 < 32767")
    elif wt == "u8":
        why = (f"{isa}: u8 weights run the non-saturating u8×u8 kernel for MatMul/Gemm, but DynamicQuantizeLSTM "
               "keeps s8 weights, which CAN saturate on x86 without VNNI")
    else:
        why = (f"{isa}: full 8-bit s8 weights as asked CAN saturate on x86 without VNNI (VPMADDUBSW); "
               f"drop --no-reduce-range to let edgelstm choose 7-bit weights")
    return Int8Recipe(isa, wt, rr, ALL_LEVELS, why, safe)


__all__ = ["Int8Recipe", "choose_int8_recipe", "must_hold_without_vnni", "ALL_LEVELS", "WEIGHT_TYPES"]
