"""Choices shared by the CLI and the library (StrEnums) and small parsing helpers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable


class StrEnum(str, enum.Enum):  # enum.StrEnum is 3.11+; Jetson ships 3.10
    def __str__(self) -> str:
        return self.value


class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class BuildPrecision(StrEnum):
    """What `edgelstm build` makes: a TensorRT engine (fp32, fp16, int8) or an OpenVINO IR (fp32, bf16, int8); also
    the precision an artifact's manifest records (every kind of artifact: a superset of ``Precision``)."""

    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"


class QuantMode(StrEnum):
    dynamic = "dynamic"
    static = "static"


@dataclass(frozen=True)
class PrecisionSpec:
    """A precision as users name it: ``fp32``, ``fp16``, ``int8-dynamic``, ``int8-static`` (``int8`` alone is
    dynamic). The one spelling shared by the CLI, the pipeline, the TensorRT build and the benchmark suite."""

    precision: Precision
    mode: QuantMode | None = None  # int8 only

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision(self.precision))
        if self.precision == Precision.int8:
            object.__setattr__(self, "mode", QuantMode(self.mode or QuantMode.dynamic))
        elif self.mode is not None:
            from .errors import BadInput

            raise BadInput(f"a quantization mode applies to int8, not {self.precision.value}")

    @property
    def name(self) -> str:
        return f"{self.precision.value}-{self.mode.value}" if self.mode else self.precision.value

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> "PrecisionSpec":
        from .errors import BadInput

        head, _, mode = str(text).strip().lower().partition("-")
        try:
            return cls(Precision(head), QuantMode(mode) if mode else None)
        except ValueError:
            raise BadInput(f"unknown precision {text!r}; use one of {', '.join(PRECISION_NAMES)}") from None


PRECISION_NAMES = ("fp32", "fp16", "int8-dynamic", "int8-static")
QUANTIZED_PRECISIONS = PRECISION_NAMES[1:]


class QuantizePrecision(StrEnum):
    """What `edgelstm quantize --precision` makes: fp16, int8 (with --mode) or a precision name of the pipeline's
    (int8-dynamic, int8-static). fp32 is the input, so it is not a choice."""

    fp16 = "fp16"
    int8 = "int8"
    int8_dynamic = "int8-dynamic"
    int8_static = "int8-static"

    def split(self) -> tuple[Precision, "QuantMode | None"]:
        spec = PrecisionSpec.parse(self.value)
        return spec.precision, (spec.mode if "-" in self.value else None)


class IsaClass(StrEnum):
    """A CPU's ISA class for INT8 kernels (edgelstm.machine.isa says which this machine is and why)."""

    x86_amx = "x86-amx"
    x86_vnni = "x86-vnni"
    x86_avx2 = "x86-avx2"
    arm64 = "arm64"
    other = "other"


class TargetCpu(StrEnum):
    """What an INT8 file is quantized for. ``auto`` is ``portable``; ``native`` is this machine's class;
    ``tensorrt`` is TensorRT's 8-bit Q/DQ recipe (static only)."""
    auto = "auto"
    portable = "portable"
    native = "native"
    x86_amx = "x86-amx"
    x86_vnni = "x86-vnni"
    x86_avx2 = "x86-avx2"
    arm64 = "arm64"
    tensorrt = "tensorrt"


#: targets whose files compute the same integers on every CPU class (no saturating kernel can be reached)
PORTABLE_TARGETS = ("portable", "tensorrt")


class WeightType(StrEnum):
    """INT8 weights: signed (onnxruntime's u8×s8 kernels) or unsigned (its non-saturating u8×u8 kernel)."""

    s8 = "s8"
    u8 = "u8"


class RangeSource(StrEnum):
    """Where static INT8 activation ranges come from: edgelstm.calibration.ranges, or onnxruntime's calibrators."""

    edgelstm = "edgelstm"
    onnxruntime = "onnxruntime"


class CalibMethod(StrEnum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


#: The one calibration default (quantize, build, the pipeline). minmax keeps every activation's whole range: on the
#: zoo models it drifts as much as entropy within 5% (benchmarks/results/quantize_drift.md: stacked_lstm 4.50e-3 vs
#: 4.47e-3, hand_lstm 2.88e-3 vs 3.04e-3), needs one pass and no histogram, and it is the calibrator TensorRT documents as the preferred
#: one for NLP (sequence) tasks (IInt8MinMaxCalibrator); entropy, TensorRT's choice for CNNs, clips the rare large
#: values a forecaster must still reproduce.
DEFAULT_CALIB_METHOD = CalibMethod.minmax


class Backend(StrEnum):
    torch = "torch"
    onnxruntime = "onnxruntime"
    openvino = "openvino"
    tensorrt = "tensorrt"


class AmxPolicy(StrEnum):
    """Whether a CPU benchmark may let onnxruntime run INT8 on AMX tiles (edgelstm.machine.amx/noamx): ``auto``
    blocks AMX on an x86-amx CPU when INT8 onnxruntime artifacts are timed at small batch only (where AMX is slower)
    and keeps it otherwise; ``block`` always refuses it; ``allow`` never interferes."""

    auto = "auto"
    allow = "allow"
    block = "block"


class ArtifactKind(StrEnum):
    torch = "torch"
    onnx = "onnx"
    engine = "engine"
    openvino = "openvino"      # OpenVINO IR: model.xml + model.bin
    calib_cache = "calib-cache"
    report = "report"
    bundle = "bundle"


class ExportRoute(StrEnum):
    torchscript = "torchscript"      # torch.onnx.export(dynamo=False): tracing
    scripted = "scripted"            # torch.jit.script then export: ONNX Loop
    lifted = "lifted"                # hand-written cell rewritten as nn.LSTM, then torchscript
    dynamo = "dynamo"                # torch.onnx.export(dynamo=True)


class Verdict(StrEnum):
    """The same-run latency comparison's answer for NEW vs OLD (edgelstm.latency.compare)."""

    not_slower = "not slower"        # the whole confidence interval of the ratio is below max_slowdown
    slower = "slower"                # the whole interval is above max_slowdown
    inconclusive = "inconclusive"    # the interval straddles max_slowdown: a state of its own, not a pass


class OnInconclusive(StrEnum):
    """What an inconclusive latency comparison does to a gate: fail (exit 1), warn (exit 0, says so), pass."""

    fail = "fail"
    warn = "warn"
    pass_ = "pass"


class BlockOrder(StrEnum):
    """Which model runs first in each pair of blocks: random (a seeded coin per pair) or balanced (AB BA AB ...)."""

    random = "random"
    balanced = "balanced"


def parse_int_list(text: str, *, what: str) -> list[int]:
    from edgelstm.errors import BadInput

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BadInput(f"{what} must be a comma-separated list of integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise BadInput(f"{what} must list positive integers, got {text!r}")
    return values


def parse_range(text: "str | int | Iterable[int]", *, what: str) -> tuple[int, int, int]:
    """A ``min:opt:max`` triple (1 <= min <= opt <= max) from 'a:b:c', a triple, or one size n (= n:n:n)."""
    from edgelstm.errors import BadInput

    if isinstance(text, str):
        parts: list = text.strip().split(":")
    elif isinstance(text, int):
        parts = [text]
    else:
        parts = list(text)
    try:
        nums = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise BadInput(f"{what} must be min:opt:max or one size, with integers, got {text!r}") from None
    if len(nums) == 1:
        nums = nums * 3
    if len(nums) != 3:
        raise BadInput(f"{what} must be min:opt:max or one size, got {text!r}")
    lo, mid, hi = nums
    if lo < 1 or not (lo <= mid <= hi):
        raise BadInput(f"{what} needs 1 <= min <= opt <= max, got {lo}:{mid}:{hi}")
    return lo, mid, hi


# ------------------------------------------------------------------------------------------ limits at the boundary


def check_int(value, key: str, *, minimum: int = 1, maximum: int | None = None, optional: bool = False) -> None:
    """BadInput in one line unless ``value`` is an integer in [minimum, maximum] (None passes when optional).
    ``key`` names the option (rendered ``--key`` on the command line, ``[section].key`` in a pipeline)."""
    from .errors import BadInput, opt

    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None
                                                                                    and value > maximum):
        within = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise BadInput(f"{opt(key)} must be an integer {within}, got {value!r}")


def check_float(value, key: str, *, minimum: float = 0.0, strict: bool = False, maximum: float | None = None,
                optional: bool = False) -> None:
    """BadInput in one line unless ``value`` is a finite number >= minimum (> with ``strict``) and <= maximum."""
    import math

    from .errors import BadInput, opt

    if value is None and optional:
        return
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > minimum if strict else value >= minimum) and (maximum is None or value <= maximum))
    if not ok:
        bound = f"{'>' if strict else '>='} {minimum:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
        raise BadInput(f"{opt(key)} must be a finite number {bound}, got {value!r}")


#: the most one array made from the user's shapes and counts may take, unless EDGELSTM_MAX_ARRAY_BYTES says
#: otherwise: half of this machine's memory (a larger request would swap or be killed, not fail cleanly)
MAX_ARRAY_ENV = "EDGELSTM_MAX_ARRAY_BYTES"


def max_array_bytes() -> int:
    import os

    env = os.environ.get(MAX_ARRAY_ENV, "").strip()
    if env.isdigit():
        return int(env)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
    except (AttributeError, ValueError, OSError):  # not POSIX: 8 GiB
        return 8 << 30


def check_alloc(shape, itemsize: int, *, what: str, hint: str | None = None) -> None:
    """Refuse (BadInput, one line) an array of ``shape`` x ``itemsize`` bytes larger than ``max_array_bytes``
    before anything is allocated; a negative or non-integer dim is refused too. Exact (Python ints)."""
    from .errors import BadInput

    dims = list(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise BadInput(f"{what}: shape {dims} is not a list of non-negative integers")
    n = int(itemsize)
    for d in dims:
        n *= d
    limit = max_array_bytes()
    if n > limit:
        raise BadInput(f"{what} would take {_human_bytes(n)} (shape {dims}), more than the {_human_bytes(limit)} "
                       f"edgelstm allows for one array on this machine (half its memory; {MAX_ARRAY_ENV} changes it)",
                       hint=hint)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover
