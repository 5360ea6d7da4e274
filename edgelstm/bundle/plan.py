"""The build plan: which of a bundle's ONNX models the recipe builds into engines, at which precision and shapes."""

from __future__ import annotations

import posixpath
from fnmatch import fnmatch

from edgelstm.bundle.collect import source_facts
from edgelstm.bundle.recipe import BuildStep
from edgelstm.bundle.types import DEFAULT_BATCH, DEFAULT_SEQ_OPT, BundleOptions, Source
from edgelstm.errors import BadInput, opt
from edgelstm.fileio import parse_toml, read_text_file
from edgelstm.options import Precision


def _pipeline_seq_len(sources: list[Source]) -> int | None:
    pipe = next((s for s in sources if s.role == "pipeline"), None)
    if pipe is None:
        return None
    try:
        data = parse_toml(read_text_file(pipe.path, what="pipeline"), name=pipe.name)
    except BadInput:
        return None
    export = data.get("export") or {}
    value = export.get("seq", export.get("seq_len"))  # seq_len: its old name
    return value if isinstance(value, int) and value > 0 else None


def _engine_name(stem: str, precision: str) -> str:
    last = stem.rsplit(".", 1)[-1] if "." in stem else ""
    return f"{stem}.plan" if precision in last else f"{stem}.{precision}.plan"


def _kind(s: Source) -> str:
    """ort-only (never built), qdq (static INT8), fp16, fp32 or the manifest's precision."""
    f = source_facts(s)
    if f["ort_only"]:
        return "ort-only"
    if f["qdq"]:
        return "qdq"
    if f["float16"] or s.precision == "fp16":
        return "fp16"
    if s.precision in (None, "fp32"):
        return "fp32"
    return s.precision


def _choose(onnx: list[Source], options: BundleOptions, precision: str) -> list[Source]:
    if options.engine_from:
        chosen: list[Source] = []
        for pattern in options.engine_from:
            hits = [s for s in onnx if fnmatch(s.name, pattern) or fnmatch(posixpath.basename(s.name), pattern)]
            if not hits:
                raise BadInput(f"{opt('engine_from')} {pattern!r} matches no ONNX model in the bundle "
                               f"({', '.join(s.name for s in onnx)})")
            for s in hits:
                if _kind(s) == "ort-only":
                    raise BadInput(f"{s.name} uses onnxruntime-only operators (dynamic INT8); TensorRT cannot build "
                                   "it: pick the float or the static (Q/DQ) model")
                if s not in chosen:
                    chosen.append(s)
        return chosen
    by_kind: dict[str, list[Source]] = {}
    for s in onnx:
        by_kind.setdefault(_kind(s), []).append(s)
    if precision == "int8":
        chosen = by_kind.get("qdq") or by_kind.get("fp32", [])
    elif precision == "fp16":
        chosen = by_kind.get("fp32") or by_kind.get("fp16", [])
    else:
        chosen = by_kind.get("fp32", [])
    if not chosen:
        raise BadInput(f"no ONNX model in the bundle that TensorRT can build at {precision} "
                       f"(have: {', '.join(f'{s.name} ({_kind(s)})' for s in onnx)}); pick one with "
                       f"{opt('engine_from')}")
    return chosen


def plan_builds(sources: list[Source], options: BundleOptions) -> tuple[list[BuildStep], list[str]]:
    """The recipe: which ONNX files to build, at which precision and shapes."""
    precision = Precision(str(options.precision)).value
    warnings: list[str] = []
    onnx = [s for s in sources if s.role == "onnx"]
    for s in onnx:
        f, k = source_facts(s), _kind(s)
        notes = ["onnxruntime only (dynamic INT8 ops): not built by the recipe" if k == "ort-only" else
                 "INT8 Q/DQ" if k == "qdq" else None, "streaming: h0/c0 -> hn/cn" if f["stateful"] else None]
        s.note = "; ".join(n for n in notes if n) or None

    calibs = [s for s in sources if s.role == "calib-cache"]
    seq_opt = _pipeline_seq_len(sources) or DEFAULT_SEQ_OPT
    steps: list[BuildStep] = []
    for s in _choose(onnx, options, precision):
        f = source_facts(s)
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
        if precision == "int8" and _kind(s) != "qdq":
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
    for st in steps:
        if st.engine in dupes:
            st.engine = st.onnx[:-len(".onnx")].replace("/", "__") + f".{precision}.plan"
    return steps, warnings
