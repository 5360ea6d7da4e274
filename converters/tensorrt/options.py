"""What a TensorRT build is asked for (`BuildOptions`), what it made (`BuildResult`), and the small parsers
the CLI and the pipeline share (workspace sizes, min:opt:max ranges)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput, opt
from edgelstm.options import DEFAULT_CALIB_METHOD, CalibMethod, Precision

Range = tuple[int, int, int]

DEFAULT_BATCH: Range = (1, 8, 64)
DEFAULT_SEQ: Range = (1, 64, 512)


@dataclass(frozen=True)
class BuildOptions:
    precision: Precision | str = Precision.fp32
    batch: Range | int | str | None = None  # min:opt:max of the batch axis (axis 0 of x, axis 1 of h0/c0); d = d:d:d
    seq: Range | int | str | None = None    # min:opt:max of the sequence axis (axis 1 of x); d = d:d:d
    workspace_bytes: int | None = None      # MemoryPoolType.WORKSPACE limit
    timing_cache: Path | None = None        # loaded if it exists, saved after the build
    calib_cache: Path | None = None         # TensorRT 10.x INT8 calibrator: reused if it exists, written after calibrating
    calib_method: CalibMethod | str = DEFAULT_CALIB_METHOD
    calib_batch_size: int = 32
    dla_core: int | None = None
    gpu_fallback: bool = True               # layers DLA cannot run go to the GPU (reported)
    hardware_compatible: bool = False       # HardwareCompatibilityLevel.AMPERE_PLUS
    version_compatible: bool = False        # BuilderFlag.VERSION_COMPATIBLE
    keep_intermediate: Path | None = None   # where to keep the FP16 / Q/DQ ONNX made on the way (default: dropped)
    tf32: bool = False                      # fp32 builds: allow TF32 math (TensorRT's default; edgelstm clears it)
    strongly_typed: bool | None = None      # None: by version (10.x weakly typed, 11.x strongly typed)
    mark_outputs: tuple[str, ...] = ()      # debug build: ONNX tensor names to mark as outputs too ("*": every one)
    layer_precisions: tuple[Any, ...] = ()  # edgelstm.converters.quantize.layer_precision.LayerPrecision: layers kept FP32/FP16


@dataclass
class BuildResult:
    path: Path
    precision: str
    tensorrt_version: str
    route: str                              # "strongly-typed" | "builder-flags"
    flags: list[str]
    io: IOSpec
    profiles: dict[str, dict[str, list[int]]]
    layer_precision: dict[str, Any]
    gpu: dict[str, Any] | None
    built_from: Path                        # the ONNX TensorRT parsed (the input, or an FP16/QDQ intermediate)
    timing_cache: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    dla: dict[str, Any] | None = None
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    tf32: bool = True                       # whether FP32 layers may run in TF32
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"engine": str(self.path), "precision": self.precision, "tensorrt": self.tensorrt_version,
                "route": self.route, "flags": self.flags, "tf32": self.tf32, "io": self.io.to_dict(),
                "profiles": self.profiles, "layer_precision": self.layer_precision, "gpu": self.gpu,
                "built_from": str(self.built_from), "timing_cache": self.timing_cache,
                "calibration": self.calibration, "dla": self.dla, "hardware_compatibility": self.hardware_compatibility,
                "version_compatible": self.version_compatible, "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}


def parse_workspace(text: str | int | None) -> int | None:
    """'512MiB', '2GiB', '1G', '256M' or a plain number of MiB -> bytes."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text * (1 << 20)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?[bB])?\s*", str(text))
    if not m:
        raise BadInput(f"{opt('workspace')} must look like 512MiB, 2GiB or a number of MiB, got {text!r}")
    value = float(m.group(1))
    unit = (m.group(2) or "M").upper()
    nbytes = int(value * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit])
    if nbytes < (1 << 20):
        raise BadInput(f"{opt('workspace')} {text!r} is below 1 MiB")
    return nbytes


def check_range(r: Iterable[int] | int | str | None, what: str) -> Range | None:
    """A min:opt:max triple (1 <= min <= opt <= max) from a triple, 'a:b:c', or one size d (= d:d:d, what a
    fixed axis takes). `what` is the option's key ('batch', 'seq') or its flag."""
    if r is None:
        return None
    from edgelstm.options import parse_range

    return parse_range(r, what=opt(what.lstrip("-").replace("-", "_")))
