"""The bundle's vocabulary: the member names the format fixes, the limits, the options, the results and the
refusal error. Pure data: nothing here reads or writes a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput, opt
from edgelstm.options import BuildPrecision, Precision

BUNDLE_FORMAT = "edgelstm-bundle/1"
CHECKSUMS = "CHECKSUMS.sha256"
INDEX = "bundle.json"
RECIPE = "build_engine.sh"
README = "README.txt"
GENERATED = (README, RECIPE, INDEX, CHECKSUMS)

# The device check (`bundle --check`, run on the device by `edgelstm device-check`): its inputs live under
# check/, edgelstm and its pure-Python dependencies as wheels under wheels/, and a stdlib-only starter script.
CHECK_DIR = "check"
CHECK_INDEX = "check/check.json"       # gates, bench plan, artifacts, data and reference facts
CHECK_DATA = "check/data.npz"          # the validation sample (inputs + labels `y`)
CHECK_REFERENCE = "check/reference.npz"  # the reference model's outputs on that sample, computed at bundle time
WHEELS_DIR = "wheels"
BOOTSTRAP = "device_check.py"          # runs the check with the bundled edgelstm: no package index needed
RESERVED_DIRS = (CHECK_DIR, WHEELS_DIR)
CHECK_SCHEMA = "edgelstm.device-check-plan/1"
DEFAULT_CHECK_SAMPLES = 256            # the stated sample: the first N samples of the validation data
MAX_CHECK_SIZE = 64 << 20              # data + reference outputs; --check-samples lowers what goes in
MAX_WHEELS_SIZE = 48 << 20             # edgelstm + its pure-Python dependencies (about 3 MiB today)

ENGINE_SUFFIXES = (".plan", ".engine", ".trt")
CALIB_SUFFIXES = (".calib", ".cache")
REPORT_NAMES = ("report.md", "report.html")
PIPELINE_NAME = "pipeline.toml"

DEFAULT_BATCH = (1, 1, 8)          # edge devices mostly run batch 1; room for small batches
DEFAULT_SEQ_OPT = 64
ON_DEVICE_GATES = {"fp32": "rel_l2<=0.001", "fp16": "rel_l2<=0.01", "int8": "rel_l2<=0.05"}
VALIDATE_SAMPLES = 64

# What a bundle may unpack to. Checked on the sizes the archive declares before anything is written, and again
# on the bytes as they stream out (a member yielding more than its header declares is refused).
MAX_UNPACKED_SIZE = 32 << 30       # absolute cap; `unbundle --max-unpacked-size` replaces it (and the ratio cap)
MAX_RATIO = 200                    # unpacked bytes per archive byte: ONNX weights barely compress, zeros ~1000:1
RATIO_FLOOR = 256 << 20            # the ratio is only held against bundles unpacking to more than this
TEXT_LIMIT = 16 << 20              # JSON/text members read into memory while verifying
CHUNK = 1 << 20

Range = tuple[int, int, int]


class BundleRefused(BadInput):
    """A bundle failed a safety or integrity check (exit 2). Carries every problem, the first in the message."""

    def __init__(self, bundle: str | Path, problems: list[str], check: "BundleCheck | None" = None):
        first = problems[0] if problems else "unknown problem"
        more = (f" (+{len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}; {opt('json')} lists them all)"
                if len(problems) > 1 else "")
        super().__init__(f"refused {Path(bundle).name}: {first}{more}")
        self.problems = list(problems)
        self.check = check


@dataclass(frozen=True)
class BundleOptions:
    pipeline: Path | None = None            # include this pipeline file as pipeline.toml (default: DIR/pipeline.toml)
    include: tuple[str, ...] = ()           # extra globs relative to the artifact dir
    precision: Precision | str = Precision.fp16
    batch: Range | None = None              # default DEFAULT_BATCH (or the model's fixed batch)
    seq: Range | None = None                # default 1:<pipeline seq_len or 64>:max(512, 4*opt)
    engine_from: tuple[str, ...] = ()       # ONNX names/globs the recipe builds (default: chosen per precision)
    include_engines: bool = False           # ship engines too (tied to their GPU + TensorRT version)
    validate_on_device: bool = True         # the recipe compares each engine with its ONNX after building
    compresslevel: int = 6
    created: str | None = None              # ISO timestamp (default now; SOURCE_DATE_EPOCH is honoured)
    check: "CheckOptions | None" = None     # carry the device check's inputs (None: a build-only bundle)


@dataclass(frozen=True)
class CheckOptions:
    """What `edgelstm device-check` judges on the device, fixed when the bundle is made. None: from the bundled
    pipeline.toml where it says ([data], [validate], [bench]), else the defaults named per field."""

    reference: Path | None = None           # the truth: DIR/model.pt, else the FP32 ONNX
    data: Path | None = None                # validation data (.npz/.npy/.csv); else the pipeline's, else synthetic
    synthetic: int | None = None            # synthetic samples when there is no data (default 64)
    seq: int | None = None                  # synthetic / zoo-task sequence length (pipeline [data].seq, else 60)
    seed: int | None = None                 # synthetic / zoo-task seed (pipeline [data].seed, else 0)
    window: int | None = None               # .csv data: window length (pipeline [data].window)
    samples: int = DEFAULT_CHECK_SAMPLES    # at most this many samples (the first N) go into the bundle
    gates: tuple[str, ...] = ()             # gates for every artifact (pipeline [validate].gates, else rel_l2<=0.01)
    batch: tuple[int, ...] = ()             # bench plan (pipeline [bench], else batch 1, seq 60, 1 thread)
    seqs: tuple[int, ...] = ()
    threads: tuple[int, ...] = ()
    iters: int | None = None                # pipeline [bench].iters, else 50
    warmup: int | None = None               # pipeline [bench].warmup, else 5
    energy_seconds: float = 3.0             # Jetson only: seconds of steady inference per artifact under tegrastats
    wheels: bool = True                     # carry edgelstm + its pure-Python dependencies as wheels
    max_size: int = MAX_CHECK_SIZE          # data + reference outputs may not exceed this (bytes)


@dataclass
class Source:
    """A file chosen for the bundle: its member name, where it is, what it is."""

    name: str
    path: Path
    role: str
    precision: BuildPrecision | None = None  # the manifest's
    tied_to: dict[str, Any] | None = None
    note: str | None = None
    facts: dict[str, Any] | None = None     # ONNX models: collect.onnx_facts, read once


@dataclass
class BundleMember:
    name: str
    role: str                               # onnx | onnx-data | manifest | calib-cache | pipeline | report | engine | openvino | openvino-bin | extra | readme | recipe | index
    size: int
    sha256: str
    precision: str | None = None
    tied_to: dict[str, Any] | None = None   # engines: the GPU and TensorRT version they run on
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "role": self.role, "size": self.size, "sha256": self.sha256}
        for key in ("precision", "tied_to", "note"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass
class BundleResult:
    path: Path
    sha256: str
    size: int
    members: list[BundleMember]
    builds: list[Any]                       # recipe.BuildStep
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size, "created": self.created,
                "members": [m.to_dict() for m in self.members], "builds": [b.to_dict() for b in self.builds],
                "skipped": self.skipped, "warnings": self.warnings}


@dataclass
class BundleCheck:
    """What verifying a bundle found. `ok` only when there are no problems."""

    path: Path
    members: list[dict[str, Any]] = field(default_factory=list)   # name, size, sha256, status
    problems: list[str] = field(default_factory=list)
    index: dict[str, Any] | None = None
    verified: bool = True                                          # False: safety checks only (--no-verify)
    dest: Path | None = None                                       # where it was extracted (unpack_bundle)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def builds(self) -> list[dict[str, Any]]:
        return list(((self.index or {}).get("build") or {}).get("steps") or [])

    def raise_if_failed(self) -> "BundleCheck":
        if self.problems:
            raise BundleRefused(self.path, self.problems, self)
        return self

    def to_dict(self) -> dict[str, Any]:
        idx = self.index or {}
        return {"bundle": str(self.path), "dest": str(self.dest) if self.dest else None, "ok": self.ok,
                "verified": self.verified, "problems": self.problems,
                "members": self.members, "edgelstm_version": idx.get("edgelstm_version"),
                "created": idx.get("created"), "build": idx.get("build")}
