"""Where does the drift come from? `localize_drift(reference, candidate, data, options) -> Localization`.

Polygraphy's ``--mark all`` / ``debug precision`` and onnxruntime's ``qdq_loss_debug`` made for recurrent models:
the chosen tensors of the FP32 ONNX reference (every node output, the recurrent ones, or named ones: see
localize_graph) and their counterparts in the candidate (see localize_match) are read on the same data, and the
error of each is measured along the graph and, for tensors with a time axis such as an LSTM's hidden state ``Y``,
along time (see localize_errors).

- ONNX candidates (FP16, INT8 dynamic, INT8 static Q/DQ) run in onnxruntime with the tensors added as graph outputs,
  at the optimization level their manifest records.
- TensorRT engines cannot be changed: a debug engine with the tensors marked as outputs (``network.mark_output``) is
  built from the ONNX the engine was built from, with the engine's recorded precision, route and layer precisions
  (localize_engine).

Exposing a tensor can stop a fusion (onnxruntime fuses Q/DQ into QGemm, TensorRT fuses layers), so the result also
reports how far the model outputs of the instrumented run moved from the unchanged artifact's ("marking_effect").
A pure stage: nothing printed, nothing exits; BadInput for a reference that is not an ONNX model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.errors import BadInput, opt
from edgelstm.options import Precision, check_float, check_int

SCHEMA = "edgelstm.localize/1"


@dataclass(frozen=True)
class LocalizeOptions:
    mark: str = "all"                   # all | recurrent | comma-separated node names, globs, op types, tensors
    jump: float = 0.1                   # a tensor "adds" drift when it adds this fraction of the worst output's
    batch_size: int = 32
    max_samples: int | None = 256       # localise on at most this many samples (None: all)
    threads: int | None = None
    engine_calib: Any = None            # a TensorRT engine built with a calibrator: calibration data for its debug build
    #: builds a TensorRT debug engine: (source ONNX, out, build settings as BuildOptions fields, calib) -> result;
    #: edgelstm.stages.localize_drift passes the build stage (validation sits below the stage dispatch)
    engine_builder: Callable[[Path, Path, dict[str, Any], Any], Any] | None = field(default=None, compare=False)
    on_step: Callable[[str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_float(self.jump, "jump")
        if not 0 < self.jump < 1:
            raise BadInput(f"{opt('jump')} must be between 0 and 1 (a fraction of the output's drift), got {self.jump}")
        check_int(self.batch_size, "batch_size")
        check_int(self.max_samples, "max_samples", optional=True)
        check_int(self.threads, "threads", optional=True)


@dataclass
class Localization:
    reference: str
    candidate: str
    backend: str
    samples: int
    analysis: dict[str, Any]
    matching: dict[str, Any]
    marking_effect: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def entry(self) -> dict[str, Any] | None:
        return self.analysis.get("entry")

    def verdict(self) -> str:
        """One sentence: where the drift enters (layer, tensor, time step)."""
        from edgelstm.validation.localize_report import verdict

        return verdict(self)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "reference": self.reference, "candidate": self.candidate, "backend": self.backend,
                "samples": self.samples, "verdict": self.verdict(), "entry": self.entry,
                "worst_output_rel_l2": self.analysis.get("worst_output_rel_l2"), "jump": self.analysis.get("jump"),
                "threshold": self.analysis.get("threshold"), "ranking": self.analysis.get("ranking", []),
                "recurrent": self.analysis.get("recurrent", []), "tensors": self.analysis.get("rows", []),
                "matching": self.matching, "marking_effect": self.marking_effect, "notes": self.notes,
                "seconds": round(self.seconds, 3)}


def _say(options: LocalizeOptions, message: str) -> None:
    if options.on_step:
        options.on_step(message)


def _reference_model(reference: Any):
    from edgelstm.artifacts.artifact import artifact_kind
    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.options import ArtifactKind

    path = Path(reference)
    if not path.exists():
        raise BadInput(f"reference {path} does not exist")
    if artifact_kind(path) != ArtifactKind.onnx:
        raise BadInput(f"localisation compares tensors of the FP32 ONNX reference with the candidate's; "
                       f"{path.name} is not an ONNX file",
                       hint="pass the FP32 ONNX the candidate was made from as --reference (e.g. model.onnx)")
    return path, load_onnx(path, what="reference")


def recorded_level(path: Path) -> str:
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.artifacts.ort import recorded_level

    return recorded_level(read_manifest(path)) or "all"


def _dataset(data: Any, io, options: LocalizeOptions):
    from edgelstm.data import require_min_samples
    from edgelstm.validation.validate import _resolve_data  # the one way validate reads --data / --synthetic

    dataset = _resolve_data(data, io, None)
    require_min_samples(dataset, 1, what="localisation data set")
    if options.max_samples is not None and dataset.n > options.max_samples:
        dataset = dataset.head(options.max_samples)
    return dataset.for_spec(io)


def localize_drift(reference: str | Path, candidate: str | Path, data: Any,
                   options: LocalizeOptions = LocalizeOptions()) -> Localization:
    """Run the FP32 ONNX ``reference`` and ``candidate`` (ONNX of any precision, or a TensorRT engine) on ``data``
    (a Dataset or a validate DataRequest) with their intermediate tensors exposed, and say where the drift enters."""
    from edgelstm.artifacts.artifact import artifact_kind, io_spec_of
    from edgelstm.options import ArtifactKind
    from edgelstm.safe_files import private_tempdir
    from edgelstm.validation.localize_errors import analyse
    from edgelstm.validation.localize_graph import choose_sites, graph_sites, prepared, with_outputs
    from edgelstm.validation.localize_run import OnnxTensors, close_all, collect_errors

    t0 = time.perf_counter()
    ref_path, ref_raw = _reference_model(reference)
    cand_path = Path(candidate)
    if not cand_path.exists():
        raise BadInput(f"candidate {cand_path} does not exist")
    kind = artifact_kind(cand_path)
    if kind not in (ArtifactKind.onnx, ArtifactKind.engine):
        raise BadInput(f"localisation runs ONNX files and TensorRT engines; {cand_path.name} is a {kind.value} file")
    ref_model = prepared(ref_raw)
    sites = choose_sites(graph_sites(ref_model), ref_model, options.mark)
    io = io_spec_of(ref_path, ref_raw)
    dataset = _dataset(data, io, options)
    notes: list[str] = []
    opened: list[Any] = []
    with private_tempdir("localize") as tmp:
        folder = Path(tmp)
        try:
            _say(options, f"instrumenting {ref_path.name} ({len(sites)} tensors)")
            ref = OnnxTensors(with_outputs(ref_model, [s.tensor for s in sites]), folder, "reference.onnx",
                              opt_level=recorded_level(ref_path), threads=options.threads)
            opened.append(ref)
            if kind == ArtifactKind.onnx:
                cand, plain, matching, alone, exact = _onnx_candidate(cand_path, ref_model, sites, folder, options)
                opened.append(alone)
            else:
                from edgelstm.validation.localize_engine import engine_candidate

                cand, plain, matching, more = engine_candidate(ref_path, ref_model, cand_path, sites, folder, dataset,
                                                               options)
                alone, exact = None, None   # an engine cannot be rewired: no isolated errors
                notes += more
            opened += [cand, plain]
            _say(options, f"running both on {dataset.n} samples")
            errors, effect, isolated = collect_errors(ref, cand, dataset.batches(options.batch_size), matching,
                                                      plain=plain, outputs=[o.name for o in ref_raw.graph.output],
                                                      isolated=alone, exact_feeds=exact)
        finally:
            close_all(opened)
    analysis = analyse(matching, errors, options.jump, isolated=isolated or None)
    if matching.unmatched:
        notes.append(f"{len(matching.unmatched)} reference tensor(s) have no counterpart in the candidate "
                     f"(listed under matching.unmatched)")
    worst_effect = max(effect.values(), default=0.0)
    if worst_effect > max(1e-6, 0.1 * analysis["worst_output_rel_l2"]):
        notes.append(f"exposing the tensors moved the candidate's outputs by rel_l2 {worst_effect:.2g} (it stops "
                     "fusions): the instrumented run is not exactly the artifact")
    return Localization(str(ref_path), str(cand_path), "tensorrt" if kind == ArtifactKind.engine else "onnxruntime",
                        dataset.n, analysis, matching.to_dict(), effect, notes, time.perf_counter() - t0)


def _onnx_candidate(path: Path, ref_model, sites, folder: Path, options: LocalizeOptions):
    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.runners.onnxruntime_runner import OrtRunner
    from edgelstm.validation.localize_graph import prepared, with_outputs
    from edgelstm.validation.localize_match import decoupled, match_sites
    from edgelstm.validation.localize_run import OnnxTensors

    model = prepared(load_onnx(path, what="candidate"))
    matching = match_sites(sites, ref_model, model)
    names = [p.candidate for p in matching.pairs]
    level = recorded_level(path)
    cand = OnnxTensors(with_outputs(model, names), folder, "candidate.onnx", opt_level=level, threads=options.threads)
    plain = OrtRunner(path, threads=options.threads, opt_level=level)
    alone_model, exact = decoupled(model, matching)   # each node on the reference's inputs: its isolated error
    alone = OnnxTensors(with_outputs(alone_model, names), folder, "isolated.onnx", opt_level=level,
                        threads=options.threads)
    return cand, plain, matching, alone, exact


def fp32_ancestor(candidate: str | Path, *, near: tuple[str | Path, ...] = ()) -> Path | None:
    """The FP32 ONNX a candidate was made from, found by following the parent sha256 of the manifests (an engine's
    parent is the ONNX it was built from, a quantized ONNX's the FP32 one) among the .onnx files beside the
    candidate and in the folders ``near``; None when the chain leads nowhere."""
    from edgelstm.artifacts.manifest import read_manifest

    folders = {Path(candidate).resolve().parent, *(Path(p).resolve().parent for p in near)}
    known: dict[str, tuple[Path, Any]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.onnx")):
            try:
                m = read_manifest(path, verify=False)
            except Exception:  # noqa: BLE001 - a broken neighbour is not our business here
                continue
            if m is not None:
                known.setdefault(m.sha256, (path, m))
    try:
        manifest = read_manifest(candidate, verify=False)
    except Exception:  # noqa: BLE001
        return None
    parent = manifest.parent_sha256 if manifest else None
    for _ in range(8):   # fp32 -> fp16/int8 -> engine: a short chain
        if parent is None or parent not in known:
            return None
        path, m = known[parent]
        if m.kind == "onnx" and m.precision == Precision.fp32:
            return path
        parent = m.parent_sha256
    return None


__all__ = ["LocalizeOptions", "Localization", "localize_drift", "fp32_ancestor", "SCHEMA"]
