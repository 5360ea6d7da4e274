"""Choices shared by the CLI and the library (StrEnums) and small parsing helpers."""

from __future__ import annotations

import enum


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
