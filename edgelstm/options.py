"""Choices shared by the CLI and the library (StrEnums) and small parsing helpers."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StrEnum(str, enum.Enum):  # enum.StrEnum is 3.11+; Jetson ships 3.10
    def __str__(self) -> str:
        return self.value


class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
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


class CalibMethod(StrEnum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class Backend(StrEnum):
    torch = "torch"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class ArtifactKind(StrEnum):
    torch = "torch"
    onnx = "onnx"
    engine = "engine"
    calib_cache = "calib-cache"
    report = "report"
    bundle = "bundle"


class ExportRoute(StrEnum):
    torchscript = "torchscript"      # torch.onnx.export(dynamo=False): tracing
    scripted = "scripted"            # torch.jit.script then export: ONNX Loop
    lifted = "lifted"                # hand-written cell rewritten as nn.LSTM, then torchscript
    dynamo = "dynamo"                # torch.onnx.export(dynamo=True)


def parse_int_list(text: str, *, what: str) -> list[int]:
    from edgelstm.errors import BadInput

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BadInput(f"{what} must be a comma-separated list of integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise BadInput(f"{what} must list positive integers, got {text!r}")
    return values


def parse_range(text: str, *, what: str) -> tuple[int, int, int]:
    """Parse `min:opt:max` (or a single `n` meaning n:n:n)."""
    from edgelstm.errors import BadInput

    parts = text.split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise BadInput(f"{what} must be min:opt:max with integers, got {text!r}") from None
    if len(nums) == 1:
        nums = nums * 3
    if len(nums) != 3:
        raise BadInput(f"{what} must be min:opt:max, got {text!r}")
    lo, opt, hi = nums
    if lo < 1 or not (lo <= opt <= hi):
        raise BadInput(f"{what} needs 1 <= min <= opt <= max, got {text!r}")
    return lo, opt, hi
