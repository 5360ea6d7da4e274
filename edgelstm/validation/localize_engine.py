"""Localisation for TensorRT engines: an engine cannot be changed after it is built, so (as Polygraphy does for
``--mark all``) a debug engine is built with the chosen tensors marked as network outputs, from the ONNX the engine
was built from and with what its manifest records: precision, route (builder flags or strongly typed), TF32, the
optimization profile's batch and sequence ranges and the layer precision constraints. The debug engine is built
through the build stage (handed in as ``LocalizeOptions.engine_builder`` by edgelstm.stages.localize_drift;
converters/tensorrt/marking.py marks the tensors) into a private temp folder; its marked outputs are then matched
with the reference's tensors like an ONNX candidate's, against the ONNX TensorRT parsed (the FP16 or Q/DQ ONNX the
build made on the way, when it made one).

What cannot be the same as the engine under test is said in the notes: a build that calibrated (TensorRT 10.x INT8
calibrator, or 11.x INT8 from an FP32 ONNX) is calibrated again, on ``LocalizeOptions.engine_calib`` or else on the
localisation data; and marking stops fusions (the model outputs of both engines are compared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput

_PROFILE_AXES = ("batch", "seq")


def _source_onnx(engine: Path, reference: Path, details: dict[str, Any], parent_sha: str | None) -> Path:
    """The ONNX the engine was built from (its sha256 is in the manifest), beside the engine or the reference."""
    from edgelstm.fileio import sha256_file

    want = (details.get("source_onnx") or {}).get("sha256") or parent_sha
    if not want:
        raise BadInput(f"{engine.name}'s manifest does not say which ONNX it was built from; localisation rebuilds the "
                       "engine with its tensors marked and needs that ONNX", hint="rebuild it with `edgelstm build`")
    seen = []
    for candidate in (reference, *sorted(engine.parent.glob("*.onnx")), *sorted(reference.parent.glob("*.onnx"))):
        if candidate in seen or not candidate.is_file():
            continue
        seen.append(candidate)
        if sha256_file(candidate) == want:
            return candidate
    name = (details.get("source_onnx") or {}).get("file", "the ONNX")
    raise BadInput(f"localising {engine.name} needs the ONNX it was built from ({name}, sha256 {want[:12]}…): none of "
                   "the .onnx files beside the engine or the reference is that file",
                   hint="put the engine's source ONNX beside it")


def _profile_ranges(manifest, details: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """batch / seq min:opt:max of the engine's profile, read on its first data input whose axes are named."""
    profiles = details.get("profiles") or []
    io = manifest.io
    if not profiles or io is None:
        return {}
    for t in io.inputs:
        prof = profiles[0].get(t.name)
        if not prof or t.state:
            continue
        out = {}
        for role in _PROFILE_AXES:
            axis = t.axis(role)
            if axis is not None:
                out[role] = (int(prof["min"][axis]), int(prof["opt"][axis]), int(prof["max"][axis]))
        if out:
            return out
    return {}


def debug_build_settings(manifest, marks: tuple[str, ...], keep: Path) -> dict[str, Any]:
    """The engine's own build options (from its manifest) plus the tensors to mark, as BuildOptions fields."""
    details = manifest.details or {}
    trt_facts = details.get("tensorrt") or {}
    ranges = _profile_ranges(manifest, details)
    precisions = tuple((details.get("layer_precisions") or {}).get("requested") or ())
    return dict(precision=manifest.precision, batch=ranges.get("batch"), seq=ranges.get("seq"),
                strongly_typed=trt_facts.get("strongly_typed"), tf32=bool(trt_facts.get("tf32", False)),
                calib_method=(details.get("calibration") or {}).get("method") or "minmax",
                keep_intermediate=keep, mark_outputs=marks, layer_precisions=precisions)


def engine_candidate(reference: Path, ref_model, engine: Path, sites, folder: Path, dataset, options) -> tuple:
    """(debug runner, the engine under test's runner, the matching, notes) for a TensorRT engine candidate."""
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.runners.base import open_runner
    from edgelstm.validation.localize_graph import prepared
    from edgelstm.validation.localize_match import match_sites

    if options.engine_builder is None:
        from edgelstm.errors import InternalError

        raise InternalError("localising a TensorRT engine needs the build stage: call edgelstm.stages.localize_drift")
    manifest = read_manifest(engine)
    if manifest is None:
        raise BadInput(f"{engine.name} has no manifest: localisation rebuilds the engine with its tensors marked and "
                       "needs to know how it was built", hint="build engines with `edgelstm build`")
    details = manifest.details or {}
    source = _source_onnx(engine, Path(reference), details, manifest.parent_sha256)
    marks = ("*",) if options.mark in ("", "all") else tuple(s.tensor for s in sites)
    keep = folder / "parsed.onnx"
    build_settings = debug_build_settings(manifest, marks, keep)
    notes = [f"TensorRT: a debug engine was built from {source.name} with {len(marks) if marks != ('*',) else 'every'}"
             " tensor marked as an output (the engine under test cannot be changed)"]
    calib = None
    if details.get("calibration") or ((details.get("built_from") or {}).get("made_by") == "edgelstm.converters.quantize.int8.quantize_int8"):
        calib = options.engine_calib or dataset.batches(min(32, dataset.n))
        notes.append("the engine was calibrated when it was built; its debug twin was calibrated again on "
                     + ("the given calibration data" if options.engine_calib is not None else "the localisation data")
                     + ": ranges (and so INT8 errors) may differ a little")
    if options.on_step:
        options.on_step("building a debug engine with the tensors marked")
    result = options.engine_builder(source, folder / "debug.plan", build_settings, calib)
    parsed = prepared(load_onnx(keep if keep.is_file() else source, what="the ONNX TensorRT parsed"))
    marked = (result.manifest.details.get("debug_outputs") or {}).get("marked", []) if result.manifest else []
    available = set(marked) | {t.name for t in result.io.outputs}
    matching = match_sites(sites, ref_model, parsed, available=available)
    cand = open_runner(folder / "debug.plan", backend="tensorrt")
    try:
        plain = open_runner(engine, backend="tensorrt")
    except BaseException:
        cand.close()
        raise
    return cand, plain, matching, notes


__all__ = ["engine_candidate", "debug_build_settings"]
