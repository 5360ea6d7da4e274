"""Deployment bundles: a pipeline's ONNX models + a build recipe, checksummed, for building on the device.

TensorRT engines are tied to the GPU architecture and the TensorRT version that built them, so what travels
to a Jetson (or any other GPU box) is the ONNX, its manifest, a calibration cache if there is one, and a
`build_engine.sh` that runs `edgelstm build` on the device itself. Engines go in only when asked
(`include_engines`), marked with the GPU and TensorRT version they are tied to.

A bundle is a gzipped tar with flat, relative member names:

    README.txt         what it is and how to use it, for the person at the device
    build_engine.sh    the recipe: checks the checksums, runs `edgelstm build` per model, then validates
    model.onnx, model.onnx.json, ...   the models and their manifests (calibration cache, pipeline, reports)
    bundle.json        index: members (role, size, sha256), the build plan, edgelstm and library versions
    CHECKSUMS.sha256   `sha256sum -c` format, every member but itself

Stages (pure: nothing printed, no sys.exit, atomic writes):

    make_bundle(src_dir, out, options) -> BundleResult
    verify_bundle(path) -> BundleCheck                  (reads the archive, extracts nothing)
    extract_bundle(path, dest, verify=True) -> Path     (temp dir beside dest, renamed into place when all checks pass)
    unpack_bundle(path, dest, verify=True) -> BundleCheck   (the same, returning what was checked)

Unpacking refuses unsafe members before anything is written: absolute paths, `..` components,
symbolic/hard links, device files, FIFOs, duplicates, anything resolving outside the target. It then uses
tarfile's "data" filter where the Python has it, and verifies every checksum against what landed on disk.
Checksums give integrity, not authenticity: sign the tarball (cosign, gpg) if it crosses a trust boundary.
"""

from __future__ import annotations

import copy
import datetime as _dt
import gzip
import hashlib
import json
import os
import posixpath
import re
import shlex
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Iterable

from edgelstm.errors import BadInput
from edgelstm.fileio import atomic_path
from edgelstm.options import Precision

BUNDLE_FORMAT = "edgelstm-bundle/1"
CHECKSUMS = "CHECKSUMS.sha256"
INDEX = "bundle.json"
RECIPE = "build_engine.sh"
README = "README.txt"
GENERATED = (README, RECIPE, INDEX, CHECKSUMS)

ENGINE_SUFFIXES = (".plan", ".engine", ".trt")
CALIB_SUFFIXES = (".calib", ".cache")
REPORT_NAMES = ("report.md", "report.html")
PIPELINE_NAME = "pipeline.toml"

DEFAULT_BATCH = (1, 1, 8)          # edge devices mostly run batch 1; room for small batches
DEFAULT_SEQ_OPT = 64
ON_DEVICE_GATES = {"fp32": "rel_l2<=0.001", "fp16": "rel_l2<=0.01", "int8": "rel_l2<=0.05"}
VALIDATE_SAMPLES = 64

# onnxruntime-only operators: TensorRT's ONNX parser cannot build these (dynamic INT8, contrib ops).
_TEXT_LIMIT = 16 << 20             # JSON/text members read into memory while verifying
_SHA_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
Range = tuple[int, int, int]


class BundleRefused(BadInput):
    """A bundle failed a safety or integrity check (exit 2). Carries every problem, the first in the message."""

    def __init__(self, bundle: str | Path, problems: list[str], check: "BundleCheck | None" = None):
        first = problems[0] if problems else "unknown problem"
        more = (f" (+{len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}; --json lists them all)"
                if len(problems) > 1 else "")
        super().__init__(f"refused {Path(bundle).name}: {first}{more}")
        self.problems = list(problems)
        self.check = check


# ----------------------------------------------------------------------------------------------- results


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


@dataclass
class BundleMember:
    name: str
    role: str                               # onnx | onnx-data | manifest | calib-cache | pipeline | report | engine | extra | readme | recipe | index
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
class BuildStep:
    """One `edgelstm build` line of the recipe."""

    onnx: str
    engine: str
    precision: str
    batch: Range
    seq: Range
    calib_cache: str | None = None
    needs_calib_data: bool = False          # int8 from a float model without a cache: the operator passes CALIB
    stateful: bool = False

    def build_command(self, engine_dir: str = '"$ENGINE_DIR"') -> str:
        q = shlex.quote
        parts = [f"edgelstm build {q(self.onnx)} -o {engine_dir}/{q(self.engine)}",
                 f"--precision {self.precision}", "--batch " + ":".join(map(str, self.batch)),
                 "--seq " + ":".join(map(str, self.seq))]
        if self.calib_cache:
            # TensorRT < 10.12 (JetPack 6) calibrates from the cache; newer ones need the data itself (CALIB)
            parts.append(f"--calib-cache {q(self.calib_cache)}")
            parts.append('${CALIB:+--calib "$CALIB"}')
        elif self.needs_calib_data:
            parts.append(f'--calib "${{CALIB:?set CALIB=calibration data (.npz) for the INT8 build of {self.onnx}}}"')
        parts.append(f"--timing-cache {engine_dir}/timing.cache")
        return " ".join(parts) + ' "$@"'

    def validate_command(self, engine_dir: str = '"$ENGINE_DIR"') -> str:
        q = shlex.quote
        gate = ON_DEVICE_GATES.get(self.precision, "rel_l2<=0.01")
        return (f"edgelstm validate -r {q(self.onnx)} -c {engine_dir}/{q(self.engine)} "
                f"--synthetic {VALIDATE_SAMPLES} --seq {self.seq[1]} --batch-size {self.batch[2]} "
                f'--gate "${{GATE:-{gate}}}"')

    def to_dict(self) -> dict[str, Any]:
        return {"onnx": self.onnx, "engine": self.engine, "precision": self.precision, "batch": list(self.batch),
                "seq": list(self.seq), "calib_cache": self.calib_cache, "needs_calib_data": self.needs_calib_data,
                "stateful": self.stateful, "command": self.build_command("engines")}


@dataclass
class BundleResult:
    path: Path
    sha256: str
    size: int
    members: list[BundleMember]
    builds: list[BuildStep]
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


# ----------------------------------------------------------------------------------------------- make


@dataclass
class _Source:
    name: str       # member name in the bundle
    path: Path
    role: str
    precision: str | None = None
    tied_to: dict[str, Any] | None = None
    note: str | None = None


class _HashingReader:
    """File wrapper that hashes and counts what tarfile copies out of it."""

    def __init__(self, f):
        self._f = f
        self.h = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        b = self._f.read(size)
        self.h.update(b)
        self.n += len(b)
        return b


def _is_engine(name: str) -> bool:
    return name.lower().endswith(ENGINE_SUFFIXES)


def _is_timing_cache(name: str) -> bool:
    return name.lower().endswith(".cache") and "timing" in name.lower()


def _is_calib(name: str) -> bool:
    return name.lower().endswith(CALIB_SUFFIXES) and not _is_timing_cache(name)


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def _check_arcname(name: str) -> None:
    if "\n" in name or "\r" in name or "\\" in name or "\x00" in name:
        raise BadInput(f"cannot bundle {name!r}: newlines and backslashes in file names do not survive "
                       f"{CHECKSUMS}; rename it")


def onnx_facts(path: Path) -> dict[str, Any]:
    """What the recipe needs to know about an ONNX file: onnxruntime-only ops, Q/DQ, state inputs, fixed dims,
    external data files."""
    import onnx

    from edgelstm.artifacts.facts import onnx_facts as facts_of

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValueError, google.protobuf errors
        raise BadInput(f"{path.name} is not a valid ONNX file: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    f = facts_of(model)
    return {"ort_only": f.ort_only, "qdq": f.has_qdq, "stateful": f.stateful, "fixed": dict(f.fixed),
            "external": list(f.external), "float16": f.float16_inputs, "ops": sorted(f.ops)}


def _collect(src: Path, out: Path, options: BundleOptions) -> tuple[list[_Source], list[dict[str, str]], list[str]]:
    from edgelstm.artifacts.manifest import manifest_path, read_manifest

    skipped: list[dict[str, str]] = []
    warnings: list[str] = []
    chosen: dict[str, _Source] = {}
    out_resolved = out.resolve()

    def add(s: _Source) -> None:
        _check_arcname(s.name)
        if s.name in GENERATED:
            raise BadInput(f"{s.name} in {src} clashes with the file the bundle generates; rename it or leave it out")
        chosen.setdefault(s.name, s)

    files = sorted(p for p in src.rglob("*") if p.is_file())
    for p in files:
        rel = _rel(p, src)
        if rel is None or _hidden(rel) or p.resolve() == out_resolved:
            continue
        name = p.name
        if name.endswith(".onnx"):
            add(_Source(rel, p, "onnx"))
        elif _is_engine(name):
            if options.include_engines:
                add(_Source(rel, p, "engine"))
            else:
                skipped.append({"file": rel, "reason": "TensorRT engine: tied to the GPU and TensorRT version that "
                                                       "built it; build_engine.sh rebuilds it on the device "
                                                       "(--include-engines ships it anyway)"})
        elif _is_timing_cache(name):
            skipped.append({"file": rel, "reason": "TensorRT timing cache: specific to the GPU that made it; the "
                                                   "recipe starts a new one on the device"})
        elif _is_calib(name):
            add(_Source(rel, p, "calib-cache"))
        elif rel in REPORT_NAMES:
            add(_Source(rel, p, "report"))
        elif rel == PIPELINE_NAME and options.pipeline is None:
            add(_Source(rel, p, "pipeline"))

    for pattern in options.include:
        if Path(pattern).is_absolute():
            raise BadInput(f"--include {pattern!r} must be a glob relative to {src}")
        matches = [p for p in sorted(src.glob(pattern)) if p.is_file()]
        matches = [p for p in matches if (r := _rel(p, src)) is not None and not _hidden(r)
                   and p.resolve() != out_resolved]
        if not matches:
            raise BadInput(f"--include {pattern!r} matched no file in {src}")
        for p in matches:
            rel = _rel(p, src)
            assert rel is not None
            if _is_engine(p.name) and not options.include_engines:
                raise BadInput(f"--include {pattern!r} matches the TensorRT engine {rel}; engines are tied to the "
                               "GPU that built them: pass --include-engines to ship them anyway")
            role = "onnx" if p.name.endswith(".onnx") else "engine" if _is_engine(p.name) else "extra"
            add(_Source(rel, p, role))

    if options.pipeline is not None:
        pipe = Path(options.pipeline)
        if not pipe.is_file():
            raise BadInput(f"--pipeline {pipe} does not exist")
        try:
            import tomllib  # type: ignore[import-not-found]
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            tomllib.loads(pipe.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"--pipeline {pipe.name} is not valid TOML: {exc}") from None
        chosen.pop(PIPELINE_NAME, None)
        add(_Source(PIPELINE_NAME, pipe, "pipeline"))

    if not any(s.role == "onnx" for s in chosen.values()):
        raise BadInput(f"no .onnx model in {src}: nothing to bundle (run `edgelstm run PIPELINE.toml` or "
                       "`edgelstm convert` first)")

    # sidecar manifests, ONNX external data, engine ties
    for s in list(chosen.values()):
        if s.role in ("onnx", "engine", "calib-cache", "extra"):
            mpath = manifest_path(s.path)
            if mpath.is_file():
                m = read_manifest(s.path, verify=False)
                s.precision = m.precision if m else None
                rel = posixpath.join(posixpath.dirname(s.name), mpath.name) if "/" in s.name else mpath.name
                chosen.pop(rel, None)
                add(_Source(rel, mpath, "manifest"))
                if s.role == "engine" and m is not None:
                    s.tied_to = _engine_ties(m)
            elif s.role in ("onnx", "engine"):
                warnings.append(f"{s.name} has no manifest ({mpath.name}); its provenance cannot be checked")
            if s.role == "engine" and s.tied_to is None:
                s.tied_to = {"gpu": None, "note": "unknown GPU: no manifest"}
        if s.role == "onnx":
            for loc in onnx_facts(s.path)["external"]:
                data = s.path.parent / loc
                rel = _rel(data, src)
                if rel is None or not data.is_file():
                    raise BadInput(f"{s.name} keeps its weights in {loc}, which is not a file inside {src}")
                add(_Source(rel, data, "onnx-data"))
    return sorted(chosen.values(), key=lambda s: s.name), skipped, warnings


def _engine_ties(m) -> dict[str, Any]:
    d = m.details or {}
    gpu = d.get("gpu") or {}
    trt = d.get("tensorrt") or {}
    return {"gpu": gpu.get("name"), "compute_capability": gpu.get("compute_capability"),
            "tensorrt": trt.get("version") or (m.versions or {}).get("tensorrt"),
            "hardware_compatibility": d.get("hardware_compatibility", "none"),
            "version_compatible": bool(d.get("version_compatible", False))}


def _pipeline_seq_len(sources: list[_Source]) -> int | None:
    pipe = next((s for s in sources if s.role == "pipeline"), None)
    if pipe is None:
        return None
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(pipe.path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = (data.get("export") or {}).get("seq_len")
    return value if isinstance(value, int) and value > 0 else None


def _engine_name(stem: str, precision: str) -> str:
    last = stem.rsplit(".", 1)[-1] if "." in stem else ""
    return f"{stem}.plan" if precision in last else f"{stem}.{precision}.plan"


def plan_builds(sources: list[_Source], options: BundleOptions) -> tuple[list[BuildStep], list[str]]:
    """The recipe: which ONNX files to build, at which precision and shapes."""
    precision = Precision(str(options.precision)).value
    warnings: list[str] = []
    onnx = [s for s in sources if s.role == "onnx"]
    facts = {s.name: onnx_facts(s.path) for s in onnx}

    def kind(s: _Source) -> str:
        f = facts[s.name]
        if f["ort_only"]:
            return "ort-only"
        if f["qdq"]:
            return "qdq"
        if f["float16"] or s.precision == "fp16":
            return "fp16"
        if s.precision in (None, "fp32"):
            return "fp32"
        return s.precision

    for s in onnx:
        f, k = facts[s.name], kind(s)
        notes = ["onnxruntime only (dynamic INT8 ops): not built by the recipe" if k == "ort-only" else
                 "INT8 Q/DQ" if k == "qdq" else None, "streaming: h0/c0 -> hn/cn" if f["stateful"] else None]
        s.note = "; ".join(n for n in notes if n) or None

    if options.engine_from:
        chosen = []
        for pattern in options.engine_from:
            hits = [s for s in onnx if fnmatch(s.name, pattern) or fnmatch(posixpath.basename(s.name), pattern)]
            if not hits:
                raise BadInput(f"--engine-from {pattern!r} matches no ONNX model in the bundle "
                               f"({', '.join(s.name for s in onnx)})")
            for s in hits:
                if kind(s) == "ort-only":
                    raise BadInput(f"{s.name} uses onnxruntime-only operators (dynamic INT8); TensorRT cannot build "
                                   "it: pick the float or the static (Q/DQ) model")
                if s not in chosen:
                    chosen.append(s)
    else:
        by_kind: dict[str, list[_Source]] = {}
        for s in onnx:
            by_kind.setdefault(kind(s), []).append(s)
        if precision == "int8":
            chosen = by_kind.get("qdq") or by_kind.get("fp32", [])
        elif precision == "fp16":
            chosen = by_kind.get("fp32") or by_kind.get("fp16", [])
        else:
            chosen = by_kind.get("fp32", [])
        if not chosen:
            raise BadInput(f"no ONNX model in the bundle that TensorRT can build at {precision} "
                           f"(have: {', '.join(f'{s.name} ({kind(s)})' for s in onnx)}); pick one with --engine-from")

    calibs = [s for s in sources if s.role == "calib-cache"]
    seq_opt = _pipeline_seq_len(sources) or DEFAULT_SEQ_OPT
    steps: list[BuildStep] = []
    for s in chosen:
        f = facts[s.name]
        batch = options.batch or DEFAULT_BATCH
        seq = options.seq or (1, seq_opt, max(512, 4 * seq_opt))
        for key, rng in (("batch", batch), ("seq", seq)):
            fixed = f["fixed"][key]
            if fixed is not None and rng != (fixed, fixed, fixed):
                if (options.batch if key == "batch" else options.seq) is not None:
                    warnings.append(f"{s.name} has a fixed {key} of {fixed}; building it at {fixed}:{fixed}:{fixed}, "
                                    f"not {':'.join(map(str, rng))}")
                if key == "batch":
                    batch = (fixed, fixed, fixed)
                else:
                    seq = (fixed, fixed, fixed)
        stem = s.name[:-len(".onnx")]
        step = BuildStep(onnx=s.name, engine=_engine_name(posixpath.basename(stem), precision), precision=precision,
                         batch=tuple(batch), seq=tuple(seq), stateful=f["stateful"])  # type: ignore[arg-type]
        if precision == "int8" and kind(s) != "qdq":
            base = posixpath.basename(stem)
            match = [c for c in calibs if posixpath.basename(c.name).startswith(base + ".")]
            cache = match[0] if match else calibs[0] if len(calibs) == 1 else None
            if cache is not None:
                step.calib_cache = cache.name
            else:
                step.needs_calib_data = True
                warnings.append(f"INT8 build of {s.name} needs calibration data on the device (CALIB=data.npz): "
                                "there is no calibration cache and no Q/DQ model in the bundle")
        steps.append(step)
    engines = [st.engine for st in steps]
    dupes = {e for e in engines if engines.count(e) > 1}
    if dupes:
        for st in steps:
            if st.engine in dupes:
                st.engine = st.onnx[:-len(".onnx")].replace("/", "__") + f".{precision}.plan"
    return steps, warnings


def render_recipe(steps: list[BuildStep], *, created: str, version: str, validate: bool) -> str:
    n = len(steps)
    lines = [
        "#!/usr/bin/env bash",
        "# Rebuild this edgelstm bundle's TensorRT engines ON THIS DEVICE.",
        f"# Generated by edgelstm {version} on {created}.",
        "#",
        "# Engines are tied to the GPU architecture and the TensorRT version that build them, so the bundle ships",
        "# the ONNX models and this recipe, and the engine is built where it runs (Jetson: on the board itself).",
        "#",
        "# Usage:  ./build_engine.sh [extra `edgelstm build` options, e.g. --dla-core 0]",
        "# Environment:",
        "#   ENGINE_DIR=engines   where the engines and the timing cache go",
        "#   VALIDATE=1           after each build, compare the engine with its ONNX (0 skips)",
        "#   GATE=...             the drift gate of that comparison (default per precision, e.g. rel_l2<=0.01)",
        "#   CALIB=data.npz       calibration data for an INT8 build from a float model (needed without a",
        "#                        calibration cache, and on TensorRT >= 10.12, which no longer reads one)",
        "#   SKIP_VERIFY=1        skip `sha256sum -c CHECKSUMS.sha256`",
        "set -euo pipefail",
        'cd "$(dirname "${BASH_SOURCE[0]}")"',
        'ENGINE_DIR="${ENGINE_DIR:-engines}"',
        f'VALIDATE="${{VALIDATE:-{1 if validate else 0}}}"',
        "",
        "if ! command -v edgelstm >/dev/null 2>&1; then",
        "  echo \"error: edgelstm is not on PATH: pip install edgelstm (on Jetson, in a venv created with"
        " --system-site-packages so that TensorRT's Python bindings are visible)\" >&2",
        "  exit 3",
        "fi",
        'if [ "${SKIP_VERIFY:-0}" != 1 ] && command -v sha256sum >/dev/null 2>&1; then',
        f"  sha256sum --check --quiet {CHECKSUMS} || {{ echo \"error: a file of this bundle does not match"
        f" {CHECKSUMS}; do not build from it\" >&2; exit 2; }}",
        "fi",
        'mkdir -p "$ENGINE_DIR"',
        "",
    ]
    for i, st in enumerate(steps, 1):
        extra = f", calibration cache {st.calib_cache}" if st.calib_cache else ""
        lines += [
            f'echo "[{i}/{n}] {st.onnx} -> $ENGINE_DIR/{st.engine} ({st.precision}, batch '
            f'{":".join(map(str, st.batch))}, seq {":".join(map(str, st.seq))}{extra})"',
            st.build_command(),
            'if [ "$VALIDATE" = 1 ]; then',
            "  " + st.validate_command(),
            "fi",
            "",
        ]
    lines.append(f'echo "built {n} engine{"s" if n != 1 else ""} in $ENGINE_DIR: '
                 + " ".join(st.engine for st in steps) + '"')
    return "\n".join(lines) + "\n"


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def render_readme(sources: list[_Source], steps: list[BuildStep], *, src_name: str, created: str,
                  versions: dict[str, Any], bundle_name: str) -> str:
    width = max([len(s.name) for s in sources] + [len(RECIPE), 16]) + 2
    descr = {"onnx": "ONNX model", "onnx-data": "ONNX external weights", "manifest": "edgelstm manifest (provenance, I/O, sha256)",
             "calib-cache": "INT8 calibration cache", "pipeline": "the pipeline that made these artifacts",
             "report": "accuracy/latency report", "engine": "TensorRT engine (see the warning below)",
             "extra": "extra file"}
    lib = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("torch", "onnx", "onnxruntime", "tensorrt"))
    out = [
        f"edgelstm deployment bundle: {src_name}",
        f"created {created} by edgelstm {versions.get('edgelstm')} ({lib})",
        "",
        "CONTENTS",
    ]
    for s in sources:
        what = descr.get(s.role, s.role)
        if s.role == "onnx":
            what = ", ".join(x for x in ("ONNX model", s.precision, s.note) if x)
        out.append(f"  {s.name:<{width}}{what} ({_human(s.path.stat().st_size)})")
    out += [f"  {RECIPE:<{width}}rebuilds the TensorRT engines on this device (below)",
            f"  {INDEX:<{width}}machine-readable index: members, sizes, sha256, build plan, versions",
            f"  {CHECKSUMS:<{width}}sha256 of every file (sha256sum -c {CHECKSUMS})",
            "",
            "ON THE DEVICE (Jetson or any NVIDIA GPU with TensorRT)",
            f"  1. Check and unpack:   edgelstm unbundle {bundle_name} -o model-bundle",
            f"     without edgelstm:   mkdir model-bundle && tar -xzf {bundle_name} -C model-bundle \\",
            f"                         && (cd model-bundle && sha256sum -c {CHECKSUMS})",
            "  2. Check the device:   edgelstm doctor     (TensorRT version, GPU, compute capability)",
            f"  3. Build the engines:  cd model-bundle && ./{RECIPE}",
            "     it verifies the checksums, builds, then compares each engine with its ONNX (VALIDATE=0 skips);",
            "     extra arguments go to `edgelstm build` (e.g. --dla-core 0 on a Jetson AGX Orin).",
            "",
            "  The recipe builds:"]
    for st in steps:
        calib = f", calibration cache {st.calib_cache}" if st.calib_cache else \
            ", calibration data from $CALIB" if st.needs_calib_data else ""
        out.append(f"    {st.onnx} -> engines/{st.engine}  ({st.precision}, batch {':'.join(map(str, st.batch))}, "
                   f"seq {':'.join(map(str, st.seq))}{calib}{', streaming h0/c0 -> hn/cn' if st.stateful else ''})")
    out += ["",
            "WHY NO ENGINE IS SHIPPED",
            "  A TensorRT engine only loads on the GPU architecture (compute capability) and the TensorRT version",
            "  that built it. So the bundle carries the portable ONNX and this recipe; building on a Jetson takes",
            "  minutes, and the timing cache (engines/timing.cache) makes rebuilds faster.",
            ""]
    engines = [s for s in sources if s.role == "engine"]
    if engines:
        out.append("WARNING: ENGINES INCLUDED (--include-engines)")
        for s in engines:
            t = s.tied_to or {}
            out.append(f"  {s.name}: built on {t.get('gpu') or 'an unknown GPU'} (compute capability "
                       f"{t.get('compute_capability') or '?'}) with TensorRT {t.get('tensorrt') or '?'}; it will "
                       f"not load elsewhere (hardware compatibility: {t.get('hardware_compatibility', 'none')}).")
        out += ["  If `edgelstm inspect` or the runtime refuses one, rebuild it with ./build_engine.sh.", ""]
    out += ["JETSON NOTES",
            "  TensorRT's Python bindings come with JetPack: create the venv with --system-site-packages.",
            "  Checksums prove the files arrived intact, not who made them: check the bundle's signature if you",
            "  were given one.",
            ""]
    return "\n".join(out)


def _created(options: BundleOptions) -> tuple[str, int]:
    if options.created:
        ts = _dt.datetime.fromisoformat(options.created)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=_dt.timezone.utc)
    elif os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        ts = _dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), _dt.timezone.utc)
    else:
        ts = _dt.datetime.now(_dt.timezone.utc)
    return ts.isoformat(timespec="seconds"), int(ts.timestamp())


def _tarinfo(name: str, size: int, mtime: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_bundle(src_dir: str | Path, out: str | Path, options: BundleOptions = BundleOptions()) -> BundleResult:
    """Write a deployment bundle of the artifacts in src_dir to out (.tar.gz), atomically, plus its manifest."""
    import io

    from edgelstm import __version__
    from edgelstm.fileio import sha256_file
    from edgelstm.artifacts.manifest import read_manifest, tool_versions, write_manifest

    src, out = Path(src_dir), Path(out)
    if not src.is_dir():
        raise BadInput(f"{src} is not a directory (give the pipeline's output dir)")
    if not (out.name.endswith(".tar.gz") or out.name.endswith(".tgz")):
        raise BadInput(f"-o must end in .tar.gz or .tgz, got {out.name}")
    try:
        precision = Precision(str(options.precision))
    except ValueError:
        raise BadInput(f"--precision must be one of {', '.join(p.value for p in Precision)}, "
                       f"got {options.precision!r}") from None
    options = BundleOptions(**{**options.__dict__, "precision": precision})
    sources, skipped, warnings = _collect(src, out, options)
    steps, plan_warnings = plan_builds(sources, options)
    warnings += plan_warnings
    created, mtime = _created(options)
    versions = tool_versions()
    versions["edgelstm"] = versions.get("edgelstm") or __version__

    readme = render_readme(sources, steps, src_name=src.resolve().name, created=created, versions=versions,
                           bundle_name=out.name).encode("utf-8")
    recipe = render_recipe(steps, created=created, version=str(versions["edgelstm"]),
                           validate=options.validate_on_device).encode("utf-8")
    members: list[BundleMember] = []
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=options.compresslevel) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:

            def add_bytes(name: str, data: bytes, role: str, mode: int = 0o644) -> None:
                tar.addfile(_tarinfo(name, len(data), mtime, mode), io.BytesIO(data))
                members.append(BundleMember(name, role, len(data), hashlib.sha256(data).hexdigest()))

            add_bytes(README, readme, "readme")
            add_bytes(RECIPE, recipe, "recipe", 0o755)
            for s in sources:
                try:
                    size = s.path.stat().st_size
                    with open(s.path, "rb") as f:
                        reader = _HashingReader(f)
                        tar.addfile(_tarinfo(s.name, size, mtime), reader)
                except OSError as exc:
                    raise BadInput(f"could not read {s.name}: {exc.strerror or exc}") from None
                if reader.n != size:
                    raise BadInput(f"{s.name} changed while it was being bundled; try again")
                digest = reader.h.hexdigest()
                if s.role in ("onnx", "engine", "calib-cache", "extra"):
                    m = read_manifest(s.path, verify=False)
                    if m is not None and m.sha256 != digest:
                        raise BadInput(f"{s.name} does not match its manifest (sha256 {digest[:12]}… != "
                                       f"{m.sha256[:12]}…): the file changed after edgelstm wrote it; re-create it")
                members.append(BundleMember(s.name, s.role, size, digest, s.precision, s.tied_to, s.note))
            index = {
                "format": BUNDLE_FORMAT, "edgelstm_version": versions["edgelstm"], "created": created,
                "source": src.resolve().name, "versions": versions,
                "build": {"recipe": RECIPE, "precision": precision.value, "steps": [st.to_dict() for st in steps]},
                "members": [m.to_dict() for m in members], "skipped": skipped,
            }
            index_bytes = (json.dumps(index, indent=2, default=str) + "\n").encode("utf-8")
            add_bytes(INDEX, index_bytes, "index")
            sums = "".join(f"{m.sha256}  {m.name}\n" for m in sorted(members, key=lambda m: m.name)).encode("utf-8")
            tar.addfile(_tarinfo(CHECKSUMS, len(sums), mtime), io.BytesIO(sums))
        tmp.chmod(0o666 & ~_umask())  # a bundle is meant to be copied around: the usual file mode, not mkstemp's 0600
    digest = sha256_file(out)
    write_manifest(out, kind="bundle", precision=precision.value,
                   details={"format": BUNDLE_FORMAT, "members": len(members) + 1,
                            "onnx": [m.name for m in members if m.role == "onnx"],
                            "builds": [st.to_dict() for st in steps], "engines_included": options.include_engines})
    return BundleResult(out, digest, out.stat().st_size, members, steps, skipped, warnings, created)


# ----------------------------------------------------------------------------------------------- verify


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is unsafe to extract, or None. Only regular files and plain directories pass."""
    name = member.name
    shown = repr(name)
    if not name or "\x00" in name:
        return f"member {shown} has an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"member {shown} has an absolute path"
    if "\\" in name:
        return f"member {shown} contains a backslash (a Windows path separator)"
    if ".." in name.split("/"):
        return f"member {shown} has a '..' component (path traversal)"
    if member.issym():
        return f"member {shown} is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"member {shown} is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return f"member {shown} is a device file"
    if member.isfifo():
        return f"member {shown} is a FIFO"
    if not (member.isreg() or member.isdir()):
        return f"member {shown} has an unsupported type {member.type!r}"
    return None


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def safety_problems(members: Iterable[tarfile.TarInfo], dest: Path | None = None) -> list[str]:
    """Every unsafe member (see member_problem), duplicates, files shadowing directories, and anything that
    would land outside dest."""
    problems: list[str] = []
    root = os.path.realpath(dest) if dest is not None else "/__bundle_root__"
    files: set[str] = set()
    dirs: set[str] = set()
    for m in members:
        why = member_problem(m)
        if why:
            problems.append(why)
            continue
        norm = _norm(m.name)
        if not norm:
            if m.isreg():
                problems.append(f"member {m.name!r} has no file name")
            continue
        target = os.path.realpath(os.path.join(root, norm)) if dest is not None else posixpath.normpath(
            posixpath.join(root, norm))
        if not (target + os.sep).startswith(root.rstrip(os.sep) + os.sep):
            problems.append(f"member {m.name!r} would be written outside the target directory")
            continue
        if m.isdir():
            if norm in files:
                problems.append(f"member {m.name!r} is both a file and a directory")
            dirs.add(norm)
            continue
        if norm in files:
            problems.append(f"member {m.name!r} appears twice")
        if norm in dirs:
            problems.append(f"member {m.name!r} is both a file and a directory")
        files.add(norm)
    parents = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    for clash in sorted(parents & files):
        problems.append(f"member {clash!r} is both a file and a directory")
    return problems


def _parse_checksums(text: str) -> tuple[dict[str, str], list[str]]:
    sums: dict[str, str] = {}
    problems: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _SHA_LINE.match(line)
        if not m:
            problems.append(f"{CHECKSUMS} line {i} is not `<sha256>  <file>`: {line[:60]!r}")
            continue
        name = _norm(m.group(2))
        if name in sums:
            problems.append(f"{CHECKSUMS} lists {name!r} twice")
        sums[name] = m.group(1).lower()
    return sums, problems


def _check_contents(entries: dict[str, tuple[int, str]], texts: dict[str, bytes]) -> tuple[list[str], dict | None, dict[str, str]]:
    """Checksums, completeness, index and manifest consistency. entries: name -> (size, sha256)."""
    problems: list[str] = []
    status = {name: "ok" for name in entries}
    if CHECKSUMS not in entries:
        return [f"no {CHECKSUMS} in the bundle: its content cannot be verified (--no-verify extracts anyway)"], None, \
            {n: "unverified" for n in entries}
    try:
        sums, parse_problems = _parse_checksums(texts.get(CHECKSUMS, b"").decode("utf-8"))
    except UnicodeDecodeError:
        return [f"{CHECKSUMS} is not UTF-8 text"], None, {n: "unverified" for n in entries}
    problems += parse_problems
    for name, (_size, sha) in sorted(entries.items()):
        if name == CHECKSUMS:
            continue
        if name not in sums:
            problems.append(f"{name}: extra member, not listed in {CHECKSUMS}")
            status[name] = "extra"
        elif sums[name] != sha:
            problems.append(f"{name}: sha256 mismatch (content {sha[:12]}…, {CHECKSUMS} says {sums[name][:12]}…)")
            status[name] = "MISMATCH"
    for name in sorted(set(sums) - set(entries)):
        problems.append(f"{name}: listed in {CHECKSUMS} but missing from the bundle")
        status[name] = "missing"

    index = None
    if INDEX not in entries:
        problems.append(f"no {INDEX} in the bundle: not an edgelstm bundle")
    else:
        try:
            index = json.loads(texts.get(INDEX, b"").decode("utf-8"))
            if not isinstance(index, dict) or not str(index.get("format", "")).startswith("edgelstm-bundle/"):
                raise ValueError("no edgelstm-bundle format key")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{INDEX} is not a valid edgelstm bundle index ({exc})")
            index = None
    if index is not None:
        listed = {}
        for m in index.get("members") or []:
            if isinstance(m, dict) and "name" in m:
                listed[_norm(str(m["name"]))] = m
        for name, m in sorted(listed.items()):
            if name not in entries:
                problems.append(f"{name}: listed in {INDEX} but missing from the bundle")
            elif m.get("sha256") != entries[name][1] or m.get("size") != entries[name][0]:
                problems.append(f"{name}: does not match its entry in {INDEX} (size/sha256)")
                status[name] = "MISMATCH"
        for name in sorted(set(entries) - set(listed) - {INDEX, CHECKSUMS}):
            if status.get(name) == "ok":
                problems.append(f"{name}: not listed in {INDEX}")
                status[name] = "extra"

    # sidecar manifests: each artifact's recorded sha256 must be the artifact's actual sha256
    for name in sorted(entries):
        sidecar = name + ".json"
        if sidecar not in entries or name.endswith(".json"):
            continue
        raw = texts.get(sidecar)
        try:
            manifest = json.loads(raw.decode("utf-8")) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            manifest = None
        if not isinstance(manifest, dict) or "sha256" not in manifest or "kind" not in manifest:
            if name.endswith(".onnx"):
                problems.append(f"{sidecar}: not a valid edgelstm manifest")
                status[sidecar] = "BAD"
            continue
        if manifest["sha256"] != entries[name][1]:
            problems.append(f"{name}: does not match its manifest {sidecar} (sha256 {entries[name][1][:12]}… != "
                            f"{str(manifest['sha256'])[:12]}…)")
            status[name] = "MISMATCH"
    return problems, index, status


def _open_tar(path: Path) -> tarfile.TarFile:
    if not path.is_file():
        raise BadInput(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{path.name} is not a readable tar.gz bundle: {exc}") from None


def _read_members(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    try:
        return tar.getmembers()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{path.name} is truncated or corrupt: {exc}") from None


def _keep_text(name: str, size: int) -> bool:
    return size <= _TEXT_LIMIT and (name in (CHECKSUMS, INDEX) or name.endswith(".json"))


def _member_rows(entries: dict[str, tuple[int, str]], status: dict[str, str]) -> list[dict[str, Any]]:
    rows = [{"name": n, "size": s, "sha256": h, "status": status.get(n, "ok")} for n, (s, h) in sorted(entries.items())]
    rows += [{"name": n, "size": None, "sha256": None, "status": st} for n, st in sorted(status.items())
             if n not in entries]
    return rows


def verify_bundle(path: str | Path) -> BundleCheck:
    """Check a bundle without extracting it: member safety, every checksum, completeness, index, manifests.
    Problems are collected in the result (check.ok / check.raise_if_failed()); an unreadable file raises."""
    path = Path(path)
    check = BundleCheck(path)
    with _open_tar(path) as tar:
        members = _read_members(tar, path)
        check.problems = safety_problems(members)
        if check.problems:
            return check
        entries: dict[str, tuple[int, str]] = {}
        texts: dict[str, bytes] = {}
        try:
            for m in members:
                if not m.isreg():
                    continue
                name = _norm(m.name)
                f = tar.extractfile(m)
                assert f is not None
                h = hashlib.sha256()
                keep = _keep_text(name, m.size)
                buf = bytearray()
                while block := f.read(1 << 20):
                    h.update(block)
                    if keep:
                        buf += block
                entries[name] = (m.size, h.hexdigest())
                if keep:
                    texts[name] = bytes(buf)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise BadInput(f"{path.name} is truncated or corrupt: {exc}") from None
    check.problems, check.index, status = _check_contents(entries, texts)
    check.members = _member_rows(entries, status)
    return check


def _check_dir(root: Path, bundle: Path) -> BundleCheck:
    """Verify extracted content on disk (what actually landed, not what the archive claimed)."""
    from edgelstm.fileio import sha256_file
    from edgelstm.artifacts.manifest import read_manifest

    check = BundleCheck(bundle)
    entries: dict[str, tuple[int, str]] = {}
    texts: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            check.problems.append(f"{rel}: not a regular file after extraction")
            continue
        if p.is_dir():
            continue
        size = p.stat().st_size
        entries[rel] = (size, sha256_file(p))
        if _keep_text(rel, size):
            texts[rel] = p.read_bytes()
    problems, check.index, status = _check_contents(entries, texts)
    check.problems += problems
    for rel in sorted(entries):
        if rel.endswith(".onnx") and rel + ".json" in entries and status.get(rel) == "ok":
            try:
                read_manifest(root / rel, verify=True)
            except BadInput as exc:
                check.problems.append(f"{rel}: {exc.message}")
                status[rel] = "MISMATCH"
    check.members = _member_rows(entries, status)
    return check


def _install(tmp: Path, dest: Path, force: bool) -> None:
    if dest.exists() and any(dest.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        os.replace(dest, old / dest.name)
        try:
            os.replace(tmp, dest)
        except OSError:
            os.replace(old / dest.name, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)   # dest missing or an empty directory


_FilterError = getattr(tarfile, "FilterError", ())   # Python >= 3.12, 3.11.4+, 3.10.12+


def unpack_bundle(path: str | Path, dest: str | Path, verify: bool = True, *, force: bool = False) -> BundleCheck:
    """extract_bundle, returning the BundleCheck (members and their status) instead of the path."""
    path, dest = Path(path), Path(dest)
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise BadInput(f"{dest} exists and is not empty (use --force to replace it)")
    with _open_tar(path) as tar:
        members = _read_members(tar, path)
        problems = safety_problems(members, dest)
        if problems:  # before anything is written
            raise BundleRefused(path, problems, BundleCheck(path, problems=problems, verified=False))
        regular = []
        for m in members:
            if m.isreg():
                m2 = copy.copy(m)
                m2.name = _norm(m.name)
                regular.append(m2)
        dest.parent.mkdir(parents=True, exist_ok=True)
        need = sum(m.size for m in regular)
        free = shutil.disk_usage(dest.parent).free
        if need > free:
            raise BadInput(f"{path.name} unpacks to {_human(need)} but only {_human(free)} are free at {dest.parent}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unbundle", dir=dest.parent))
        try:
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the unpacked dir gets the usual permissions
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=regular, filter="data")
                else:  # pragma: no cover - Pythons before the extraction-filter backports
                    tar.extractall(tmp, members=regular)
                    for m in regular:
                        (tmp / m.name).chmod(0o755 if m.mode & 0o100 else 0o644)
            except _FilterError as exc:
                culprit = getattr(getattr(exc, "tarinfo", None), "name", "?")
                raise BundleRefused(path, [f"member {culprit!r}: {exc}"]) from None
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise BadInput(f"could not unpack {path.name}: {exc}") from None
            if verify:
                check = _check_dir(tmp, path)
            else:
                check = BundleCheck(path, verified=False,
                                    members=[{"name": m.name, "size": m.size, "sha256": None, "status": "unverified"}
                                             for m in regular])
            check.raise_if_failed()
            _install(tmp, dest, force)
            check.dest = dest
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return check


def extract_bundle(path: str | Path, dest: str | Path, verify: bool = True, *, force: bool = False) -> Path:
    """Unpack a bundle into dest: unsafe members are refused before anything is written; the content goes into
    a temp dir beside dest, is verified on disk (with verify: every checksum, completeness, the index, each
    ONNX's manifest) and is renamed into place only when every check passes. Safety checks always run.

    dest must not exist or be empty, unless force (then it is replaced, never merged)."""
    return unpack_bundle(path, dest, verify, force=force).dest  # type: ignore[return-value]
