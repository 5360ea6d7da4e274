"""Which files of an artifact directory go into a bundle, under which member names and roles.

Member names are restricted up front to a safe character set (SAFE_NAME): they end up in a shell script, in
CHECKSUMS.sha256 and in the README, and a name that needs quoting anywhere is refused before anything is written.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from edgelstm.bundle.types import (BOOTSTRAP, CALIB_SUFFIXES, ENGINE_SUFFIXES, GENERATED, PIPELINE_NAME,
                                   REPORT_NAMES, RESERVED_DIRS, BundleOptions, Source)
from edgelstm.errors import BadInput, opt
from edgelstm.fileio import parse_toml, read_text_file

#: the characters a bundled file name may use (ASCII only), said in words for the refusal message
SAFE_NAME = "letters, digits and . _ - + @ = , (with / between folders)"
_SAFE_PART = re.compile(r"[A-Za-z0-9._+@=,-]+")


def check_member_name(name: str) -> None:
    """Refuse a member name outside SAFE_NAME, or starting with '-' (a command would take it for an option)."""
    if name.startswith("-") or not all(_SAFE_PART.fullmatch(part) for part in name.split("/")):
        raise BadInput(f"cannot bundle {name!r}: bundled file names may only use {SAFE_NAME} and may not start "
                       "with '-'; rename it")


def is_engine(name: str) -> bool:
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


def source_facts(s: Source) -> dict[str, Any]:
    if s.facts is None:
        s.facts = onnx_facts(s.path)
    return s.facts


def engine_ties(m) -> dict[str, Any]:
    """The GPU and TensorRT version an engine (its manifest m) is tied to."""
    d = m.details or {}
    gpu = d.get("gpu") or {}
    trt = d.get("tensorrt") or {}
    return {"gpu": gpu.get("name"), "compute_capability": gpu.get("compute_capability"),
            "tensorrt": trt.get("version") or (m.versions or {}).get("tensorrt"),
            "hardware_compatibility": d.get("hardware_compatibility", "none"),
            "version_compatible": bool(d.get("version_compatible", False))}


def _is_openvino_ir(p: Path) -> bool:
    """An OpenVINO IR: ``.xml`` whose root element is ``<net`` (with its ``.bin`` beside it)."""
    if p.suffix.lower() != ".xml" or not p.with_suffix(".bin").is_file():
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return b"<net" in head


class _Picked:
    """What collect_sources has chosen so far, what it left out (with the reason) and its warnings."""

    def __init__(self, src: Path, out: Path):
        self.src, self.out_resolved = src, out.resolve()
        self.chosen: dict[str, Source] = {}
        self.skipped: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.outside: list[str] = []  # links to files outside src: never bundled, but said so

    def add(self, s: Source) -> None:
        check_member_name(s.name)
        if s.name in GENERATED or s.name == BOOTSTRAP or s.name.split("/", 1)[0] in RESERVED_DIRS:
            raise BadInput(f"{s.name} in {self.src} clashes with the file the bundle generates; rename it or leave "
                           "it out")
        self.chosen.setdefault(s.name, s)

    def eligible(self, p: Path) -> str | None:
        rel = _rel(p, self.src)
        if rel is None and p.is_symlink():
            self.outside.append(p.relative_to(self.src).as_posix() if p.is_relative_to(self.src) else str(p))
        return None if rel is None or _hidden(rel) or p.resolve() == self.out_resolved else rel


def collect_sources(src: Path, out: Path, options: BundleOptions) -> tuple[list[Source], list[dict[str, str]], list[str]]:
    """The files to bundle (sorted by name), the files left out with the reason, and warnings."""
    picked = _Picked(src, out)
    _scan(picked, options)
    _add_includes(picked, options)
    if options.pipeline is not None:
        pipe = Path(options.pipeline)
        parse_toml(read_text_file(pipe, what=f"{opt('pipeline')} file"), name=f"{opt('pipeline')} {pipe.name}")
        picked.chosen.pop(PIPELINE_NAME, None)
        picked.add(Source(PIPELINE_NAME, pipe, "pipeline"))
    for rel in picked.outside:
        picked.skipped.append({"file": rel, "reason": f"a symbolic link to a file outside {src}: bundles hold only "
                                                      "the folder's own files (copy the file in)"})
    _require_onnx(picked)
    _add_sidecars(picked)  # sidecar manifests, ONNX external data, engine ties
    return sorted(picked.chosen.values(), key=lambda s: s.name), picked.skipped, picked.warnings


def _scan(picked: _Picked, options: BundleOptions) -> None:
    """The folder's own files, each by its kind."""
    add, skipped = picked.add, picked.skipped
    for p in sorted(p for p in picked.src.rglob("*") if p.is_file()):
        rel = picked.eligible(p)
        if rel is None:
            continue
        name = p.name
        if name.endswith(".onnx"):
            add(Source(rel, p, "onnx"))
        elif is_engine(name):
            if options.include_engines:
                add(Source(rel, p, "engine"))
            else:
                skipped.append({"file": rel, "reason": "TensorRT engine: tied to the GPU and TensorRT version that "
                                                       "built it; build_engine.sh rebuilds it on the device "
                                                       "(--include-engines ships it anyway)"})
        elif _is_openvino_ir(p):  # an IR runs on any CPU OpenVINO supports: shipped like an ONNX
            add(Source(rel, p, "openvino"))
        elif _is_timing_cache(name):
            skipped.append({"file": rel, "reason": "TensorRT timing cache: specific to the GPU that made it; the "
                                                   "recipe starts a new one on the device"})
        elif _is_calib(name):
            add(Source(rel, p, "calib-cache"))
        elif rel in REPORT_NAMES:
            add(Source(rel, p, "report"))
        elif rel == PIPELINE_NAME and options.pipeline is None:
            add(Source(rel, p, "pipeline"))


def _add_includes(picked: _Picked, options: BundleOptions) -> None:
    """--include globs: each must match a file of the folder; an engine only with --include-engines."""
    src = picked.src
    for pattern in options.include:
        if Path(pattern).is_absolute():
            raise BadInput(f"{opt('include')} {pattern!r} must be a glob relative to {src}")
        matches = [(p, rel) for p in sorted(src.glob(pattern)) if p.is_file() and (rel := picked.eligible(p)) is not None]
        if not matches:
            raise BadInput(f"{opt('include')} {pattern!r} matched no file in {src}")
        for p, rel in matches:
            if is_engine(p.name) and not options.include_engines:
                raise BadInput(f"{opt('include')} {pattern!r} matches the TensorRT engine {rel}; engines are tied to "
                               f"the GPU that built them: pass {opt('include_engines')} to ship them anyway")
            role = "onnx" if p.name.endswith(".onnx") else "engine" if is_engine(p.name) else "extra"
            picked.add(Source(rel, p, role))


def _require_onnx(picked: _Picked) -> None:
    if any(s.role == "onnx" for s in picked.chosen.values()):
        return
    src = picked.src
    links = [r for r in picked.outside if r.endswith(".onnx")]
    if links:
        raise BadInput(f"no .onnx model inside {src}: {', '.join(links)} "
                       f"{'is a symbolic link' if len(links) == 1 else 'are symbolic links'} to a file outside "
                       "it, and a bundle holds only the folder's own files; copy the model in")
    raise BadInput(f"no .onnx model in {src}: nothing to bundle (run `edgelstm run PIPELINE.toml` or "
                   "`edgelstm convert` first)")


def _add_sidecars(picked: _Picked) -> None:
    """Each chosen file's manifest, an IR's .bin, an ONNX's external data; an engine's GPU ties."""
    from edgelstm.artifacts.manifest import manifest_path, read_manifest

    add, src = picked.add, picked.src
    for s in list(picked.chosen.values()):
        if s.role == "openvino":
            weights = s.path.with_suffix(".bin")
            add(Source(posixpath.join(posixpath.dirname(s.name), weights.name), weights, "openvino-bin"))
        if s.role in ("onnx", "engine", "calib-cache", "extra", "openvino"):
            mpath = manifest_path(s.path)
            if mpath.is_file():
                m = read_manifest(s.path, verify=False)
                s.precision = m.precision if m else None
                rel = posixpath.join(posixpath.dirname(s.name), mpath.name)
                picked.chosen.pop(rel, None)
                add(Source(rel, mpath, "manifest"))
                if s.role == "engine" and m is not None:
                    s.tied_to = engine_ties(m)
            elif s.role in ("onnx", "engine", "openvino"):
                picked.warnings.append(f"{s.name} has no manifest ({mpath.name}); its provenance cannot be checked")
            if s.role == "engine" and s.tied_to is None:
                s.tied_to = {"gpu": None, "note": "unknown GPU: no manifest"}
        if s.role == "onnx":
            for loc in source_facts(s)["external"]:
                data = s.path.parent / loc
                rel = _rel(data, src)
                if rel is None or not data.is_file():
                    raise BadInput(f"{s.name} keeps its weights in {loc}, which is not a file inside {src}")
                add(Source(rel, data, "onnx-data"))
