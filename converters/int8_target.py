"""Which INT8 recipe does not saturate on the CPU a file is quantized for (see ``edgelstm.machine.isa``).

- dynamic, ``x86-vnni`` / ``arm64``: signed 8-bit weights, full range (32-bit accumulation there).
- dynamic, ``x86-avx2``: signed 7-bit weights (``reduce_range``): ``VPMADDUBSW`` pair sums stay below 2^15.
- static (Q/DQ), weights stay 8-bit symmetric (TensorRT's recipe). On ``x86-avx2`` onnxruntime fuses Q/DQ
  pairs into ``QGemm``/``QLinearMatMul`` at optimization level ``extended``/``all``, which then saturate; the
  file records level ``basic`` (Q/DQ unfused: int8 rounding applied, arithmetic in float), and drift is
  measured at the level that will run. With explicit 7-bit weights (``reduce_range``) fused kernels are
  exact and every level is allowed.

An explicit ``reduce_range`` or ``weight_type`` from the user wins; the recipe then says whether it is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgelstm.machine import isa as cpu_isa
from edgelstm.machine.isa import IsaClass, TargetCpu, resolve_target, saturates_u8s8
from edgelstm.options import QuantMode

ALL_LEVELS = ("all", "extended", "basic")
WEIGHT_TYPES = ("s8", "u8")


@dataclass(frozen=True)
class Int8Recipe:
    target: IsaClass
    weight_type: str            # "s8" | "u8"
    reduce_range: bool          # 7-bit weights
    ort_levels: tuple[str, ...]  # onnxruntime optimization levels allowed to run the file, best first
    why: str
    safe: bool                  # False when the user's explicit choice can saturate on the target

    def to_dict(self, requested: str) -> dict[str, object]:
        return {"requested": requested, "isa": str(self.target), "quantized_on": str(cpu_isa.detect_isa()),
                "weight_type": self.weight_type, "reduce_range": self.reduce_range,
                "ort_levels": list(self.ort_levels), "saturation_safe": self.safe, "why": self.why}


def choose_int8_recipe(target: TargetCpu | str | None, mode: QuantMode | str, *, reduce_range: bool | None = None,
                       weight_type: str | None = None) -> Int8Recipe:
    """The weight type, reduce_range and allowed onnxruntime levels for ``mode`` on ``target`` (pure apart from
    ``auto``, which reads this machine's class)."""
    isa = resolve_target(target)
    mode = QuantMode(mode)
    wt = (weight_type or "s8").strip().lower()  # as --target-cpu and --precision: S8 and s8 are the same
    if wt not in WEIGHT_TYPES:
        from edgelstm.errors import BadInput, opt

        raise BadInput(f"{opt('weight_type')} must be one of {', '.join(WEIGHT_TYPES)}, got {weight_type!r}")
    risky = saturates_u8s8(isa)
    if mode == QuantMode.dynamic:
        rr = risky if reduce_range is None else reduce_range
        # the structural check after quantization (converters.int8_saturation) has the last word: u8 weights run
        # the u8×u8 kernel for MatMul/Gemm, but onnxruntime's DynamicQuantizeLSTM keeps s8 weights whatever the type
        safe = not risky or rr
        if not risky:
            why = (f"{isa}: int8 products accumulate in 32 bits, full 8-bit {wt} weights are exact"
                   + ("; 7-bit weights as asked" if rr else ""))
        elif rr:
            why = (f"{isa}: onnxruntime's u8×s8 kernel (VPMADDUBSW) saturates int16 pair sums without VNNI; "
                   "7-bit weights (reduce_range) keep 2·255·64 < 32767")
        elif wt == "u8":
            why = (f"{isa}: u8 weights run the non-saturating u8×u8 kernel for MatMul/Gemm, but DynamicQuantizeLSTM "
                   "keeps s8 weights, which CAN saturate here")
        else:
            why = (f"{isa}: full 8-bit s8 weights as asked CAN saturate here (VPMADDUBSW without VNNI); "
                   f"drop --no-reduce-range to let edgelstm choose 7-bit weights")
        return Int8Recipe(isa, wt, rr, ALL_LEVELS, why, safe)
    if wt != "s8":
        from edgelstm.errors import BadInput

        raise BadInput("static (Q/DQ) INT8 uses signed 8-bit weights (TensorRT's recipe); u8 weights are dynamic-only")
    rr = bool(reduce_range)
    if risky and not rr:
        why = (f"{isa}: onnxruntime fuses Q/DQ into QGemm/QLinearMatMul at levels extended/all, which saturate "
               "without VNNI; the file runs at level basic (Q/DQ unfused, no saturation)")
        return Int8Recipe(isa, wt, rr, ("basic",), why, True)
    why = (f"{isa}: fused Q/DQ kernels accumulate in 32 bits" if not risky
           else f"{isa}: 7-bit weights (reduce_range) keep fused Q/DQ kernels from saturating")
    return Int8Recipe(isa, wt, rr, ALL_LEVELS, why, True)


__all__ = ["Int8Recipe", "choose_int8_recipe", "ALL_LEVELS", "WEIGHT_TYPES"]
