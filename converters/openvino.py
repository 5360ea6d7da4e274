"""ONNX -> OpenVINO IR (``model.xml`` + ``model.bin``): an artifact kind like a TensorRT engine, for CPUs.

- ``fp32``: the verified FP32 ONNX converted as is (weights kept FP32: ``save_model(compress_to_fp16=False)``), run
  with ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO's CPU plugin otherwise computes in BF16 where the CPU has it).
- ``bf16``: the same IR run in BF16 (a runtime setting recorded in the manifest), only on a CPU whose OpenVINO
  plugin offers BF16 (AVX512-BF16, AMX); otherwise the build says so (exit 3) instead of measuring FP32.
- ``int8``: OpenVINO's own low-precision path from a Q/DQ ONNX (``edgelstm quantize --mode static``, or made here
  from ``--calib`` data with the portable recipe): FakeQuantize → int8 kernels for the dense layers; the LSTM/GRU
  core stays float, as in every other runtime. No NNCF: its INT8 drifted 4e-2…5e-1 on these models (ARCHITECTURE.md).

Every IR is verified against its source ONNX in onnxruntime at several batches and sequence lengths, far from the
export length: FP32 must match within the export tolerance; BF16/INT8 must keep the drift budget
(``max_drift``, default rel_l2 <= 0.05), else nothing is written (exit 1). The manifest records the inference
precision, the .bin's sha256, the drift per point and which layers ran in which precision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from edgelstm.errors import BackendMissing, BadInput, GateFailed, opt
from edgelstm.options import DEFAULT_CALIB_METHOD, CalibMethod

PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_BUDGET = "rel_l2<=0.05"
VERIFY_BATCHES = (1, 3)
VERIFY_SEQS = (1, 7, 64, 200)


@dataclass(frozen=True)
class OpenVinoOptions:
    precision: str = "fp32"
    max_drift: str | None = None               # bf16/int8: the budget vs the source ONNX (default DEFAULT_BUDGET)
    calib_method: CalibMethod = DEFAULT_CALIB_METHOD
    keep_intermediate: Path | None = None      # int8 from an FP32 ONNX: keep the Q/DQ ONNX made on the way here
    batches: tuple[int, ...] = VERIFY_BATCHES
    seqs: tuple[int, ...] = VERIFY_SEQS

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInput(f"OpenVINO IR precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
                           + ("; FP16 on a CPU is slower than FP32" if self.precision == "fp16" else ""))
        object.__setattr__(self, "calib_method", CalibMethod(self.calib_method))


@dataclass
class OpenVinoResult:
    path: Path
    precision: str
    inference_precision: str
    source: Path
    seconds: float
    verification: list[dict[str, Any]]
    drift: dict[str, Any]
    layer_precision: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    manifest: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bin": str(self.path.with_suffix(".bin")), "precision": self.precision,
                "inference_precision": self.inference_precision, "source": str(self.source),
                "seconds": round(self.seconds, 3), "verification": self.verification, "drift": self.drift,
                "layer_precision": self.layer_precision, "warnings": self.warnings}


# ------------------------------------------------------------------------------------------------ source


def _source_for(src: Path, options: OpenVinoOptions, calib: Any, workdir: Path, say: Callable[[str], None]) -> Path:
    """The ONNX to convert: the source itself, or (int8 from an FP32 ONNX) a Q/DQ ONNX made from ``calib``."""
    from edgelstm.artifacts.artifact import Artifact

    art = Artifact.open(src)
    facts = art.facts
    if facts is None:
        raise BadInput(f"{src.name} is not an ONNX model; OpenVINO IRs are built from ONNX")
    if art.precision == "fp16":
        raise BadInput(f"{src.name} is FP16; build OpenVINO IRs from the FP32 ONNX (FP16 on a CPU is slower)")
    if options.precision != "int8":
        if art.precision == "int8":
            raise BadInput(f"{src.name} is INT8; an {options.precision} IR comes from the FP32 ONNX "
                           f"(or pass {opt('precision')} int8)")
        return src
    if facts.has_qdq:
        return src
    if art.precision == "int8":
        raise BadInput(f"{src.name} is dynamic INT8: OpenVINO runs it by dequantizing the weights to float (no int8 "
                       "kernels); build int8 from a Q/DQ ONNX (`edgelstm quantize --mode static`) or from the FP32 "
                       f"ONNX with {opt('calib')} DATA")
    if calib is None:
        raise BadInput(f"an INT8 IR needs a Q/DQ ONNX or calibration data: pass {opt('calib')} DATA, or build from "
                       "`edgelstm quantize MODEL.onnx --precision int8-static --calib DATA`")
    from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8

    say("quantizing to a static Q/DQ ONNX (portable recipe) for OpenVINO's int8 path")
    qdq = workdir / f"{src.stem}.qdq.onnx"
    quantize_int8(src, qdq, Int8Options(mode="static", calib_method=options.calib_method), calib=calib)
    return qdq


def _keep(qdq: Path, keep: Path) -> None:
    """The Q/DQ ONNX made on the way, and its manifest, at ``keep`` (committed with the IR)."""
    from edgelstm.artifacts.manifest import manifest_path
    from edgelstm.fileio import write_bytes_atomic

    write_bytes_atomic(keep, qdq.read_bytes())
    write_bytes_atomic(manifest_path(keep), manifest_path(qdq).read_bytes())


# ------------------------------------------------------------------------------------------------ verify


def _points(io: Any, batches: Iterable[int], seqs: Iterable[int]) -> list[tuple[int, int]]:
    """(batch, seq) points to verify at, kept to the fixed dims of a static export (data input axes 0 and 1)."""
    x = (io.data_inputs or io.inputs)[0]
    fixed = {axis: d for axis, d in enumerate(x.shape[:2]) if isinstance(d, int) and d > 0}
    bs = [fixed[0]] if 0 in fixed else list(batches)
    ts = [fixed[1]] if 1 in fixed and len(x.shape) >= 3 else list(seqs)
    return [(b, t) for b in bs for t in ts]


def _ort_run(path: Path) -> Callable[[dict], dict[str, np.ndarray]]:
    """The source ONNX in onnxruntime at the level its manifest/metadata allows, one thread."""
    from edgelstm.artifacts.int8_metadata import allowed_levels, read_entries
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.artifacts.ort import make_session, recorded_level

    level = recorded_level(read_manifest(path, verify=False)) or (allowed_levels(read_entries(path)) or ("all",))[0]
    session = make_session(path, threads=1, opt_level=level)
    names = [o.name for o in session.get_outputs()]
    types = {i.name: i.type for i in session.get_inputs()}

    def run(feeds: dict) -> dict[str, np.ndarray]:
        cast = {k: (v.astype(np.float32) if "float" in types.get(k, "float") else v) for k, v in feeds.items()}
        return {n: np.asarray(o, np.float32) for n, o in zip(names, session.run(None, cast))}

    return run


def verify_ir(reference: Path, compiled: Any, io: Any, options: OpenVinoOptions,
              accumulator: Callable[[], Any], budget: Any) -> tuple[list[dict], dict]:
    """Run the source ONNX (onnxruntime, at its recorded level) and the compiled IR on the same seeded feeds at
    every point; per point the worst output's rel_l2 and the export check's ratio (<= 1 passes); overall the budget
    metric, accumulated per output by ``accumulator()`` (validation's DriftAccumulator, passed by the stage: a
    converter does not import validation) against ``budget`` (``max_drift`` parsed by the stage: its ``metric``
    and ``limit``). Returns (points, drift)."""
    from edgelstm.converters.export.onnx_verify import OutputTolerance
    from edgelstm.artifacts.feeds import random_feeds

    ref = _ort_run(reference)
    accs: dict[str, Any] = {}
    points = []
    request = compiled.create_infer_request()
    names = [o.get_any_name() for o in compiled.outputs]
    rng = np.random.default_rng(0)
    for batch, seq in _points(io, options.batches, options.seqs):
        feeds = random_feeds(io, batch, seq, rng)
        want = ref(feeds)
        result = request.infer({k: v for k, v in feeds.items()})
        got = {n: np.asarray(result[o], np.float32) for n, o in zip(names, compiled.outputs)}
        worst = {"batch": batch, "seq": seq, "rel_l2": 0.0, "ratio": 0.0}
        for name, r in want.items():
            if name not in got or got[name].shape != r.shape:
                raise BadInput(f"OpenVINO's output {name!r} at batch {batch}, seq {seq} has shape "
                               f"{list(got[name].shape) if name in got else 'none'}, onnxruntime {list(r.shape)}")
            m = OutputTolerance().measure(r, got[name])
            worst["rel_l2"] = max(worst["rel_l2"], m["rel_l2"])
            worst["ratio"] = max(worst["ratio"], m["ratio"])
            accs.setdefault(name, accumulator()).update(r, got[name])
        points.append(worst)
    value = max(float(a.result()[budget.metric]) for a in accs.values())
    return points, {"metric": budget.metric, "value": value, "limit": budget.limit,
                    "passed": value <= budget.limit, "against": reference.name}


def _check_gate(precision: str, points: list[dict], drift: dict, src: Path) -> None:
    where = ", ".join(f"b{p['batch']}×{p['seq']}: {p['rel_l2']:.2g}" for p in points)
    if precision == "fp32":
        bad = [p for p in points if p["ratio"] > 1.0]
        if bad:
            raise GateFailed(f"the FP32 IR differs from {src.name} beyond the export tolerance (rel_l2 per point: "
                             f"{where}); OpenVINO converted it wrongly; nothing was written")
        return
    if not drift["passed"]:
        raise GateFailed(f"the {precision} IR drifts {drift['metric']} {drift['value']:.3g} > {drift['limit']:g} "
                         f"against {drift['against']} (per point: {where}); nothing was written",
                         hint=f"raise {opt('max_drift')}, or build int8 from a Q/DQ ONNX made with "
                              "`edgelstm quantize --max-drift` (it keeps sensitive layers float)")


# ------------------------------------------------------------------------------------------------ build


def build_openvino(src: str | Path, out: str | Path, options: OpenVinoOptions = OpenVinoOptions(), *,
                   accumulator: Callable[[], Any], budget: Any, calib: Any = None,
                   on_step: Callable[[str], None] | None = None) -> OpenVinoResult:
    """ONNX -> verified OpenVINO IR at ``out`` (``.xml``; ``.bin`` and ``.xml.json`` beside it); ``accumulator`` and
    ``budget`` as in verify_ir. Nothing is written when a check fails."""
    from edgelstm.artifacts.artifact import io_spec_of
    from edgelstm.artifacts.manifest import write_artifact
    from edgelstm.artifacts.openvino import (INFERENCE_PRECISION, bin_path, compile_config, openvino_facts,
                                             require_openvino, runtime_layer_precisions)
    from edgelstm.fileio import sha256_file

    src, out = Path(src), Path(out)
    say = on_step or (lambda _m: None)
    if out.suffix.lower() != ".xml":
        raise BadInput(f"an OpenVINO IR is written as .xml (with a .bin beside it), got {out.name}")
    ov = require_openvino()
    facts = openvino_facts()
    if options.precision == "bf16" and not facts["bf16"]:
        raise BackendMissing(f"OpenVINO offers no BF16 on this CPU ({facts['cpu']}; it has {facts['precisions']})",
                             hint="BF16 needs AVX512-BF16 or AMX; build the bf16 IR on such a CPU, or use fp32/int8")
    hint = INFERENCE_PRECISION[options.precision]
    started = time.perf_counter()
    from edgelstm.safe_files import all_or_nothing, private_tempdir

    with private_tempdir("openvino") as tmp:
        work = Path(tmp)
        source = _source_for(src, options, calib, work, say)
        say(f"converting {source.name} to OpenVINO IR ({options.precision})")
        try:
            model = ov.convert_model(str(source))
            ov.save_model(model, str(work / "model.xml"), compress_to_fp16=False)
            compiled = ov.Core().compile_model(str(work / "model.xml"), "CPU", compile_config(hint, 1))
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"OpenVINO cannot convert {source.name}: {str(exc).splitlines()[0][:300]}") from None
        io = io_spec_of(src)
        say(f"verifying the IR against {src.name if source == src else 'the FP32 ONNX'} at several lengths")
        points, drift = verify_ir(src, compiled, io, options, accumulator, budget)
        _check_gate(options.precision, points, drift, src)
        layers = runtime_layer_precisions(compiled)
        details = {"openvino": {"version": facts["version"], "inference_precision": hint, "bin": bin_path(out).name,
                                "bin_sha256": sha256_file(work / "model.bin"), "cpu": facts["cpu"],
                                "source": src.name, "verification": points, "drift": drift,
                                "layer_precision": layers}}
        with all_or_nothing():  # the IR, its .bin, its manifest and a kept Q/DQ ONNX commit together
            with write_artifact(out, companions=(bin_path(out),)) as pair:
                pair.write_bytes((work / "model.xml").read_bytes())
                pair.write_companion(bin_path(out), (work / "model.bin").read_bytes())
                manifest = pair.write_manifest(kind="openvino", precision=options.precision, parent=src, io=io,
                                               details=details)
            if options.keep_intermediate is not None and source != src:
                _keep(source, Path(options.keep_intermediate))
    from edgelstm.artifacts.openvino import runs_int8

    warnings = [] if runs_int8(layers) or options.precision != "int8" else [
        "no layer runs in int8 in OpenVINO's runtime model: this IR computes like FP32"]
    return OpenVinoResult(out, options.precision, hint, src, time.perf_counter() - started, points, drift, layers,
                          warnings, manifest)


__all__ = ["OpenVinoOptions", "OpenVinoResult", "build_openvino", "verify_ir", "PRECISIONS", "DEFAULT_BUDGET"]
