"""`edgelstm run PIPELINE.toml`: model → data → export → quantize → validate → bench → compare → report (→ devices),
each stage cached by the content hash of its inputs and options (not the devices: they change while files do not). Stages run in order; a gate failure does not stop later
stages (the report shows everything) but makes the run fail.

The file was checked as a whole when it was loaded (``config.load_pipeline``). A run then takes the output
directory (created, writable, locked against a second pipeline), and an error a stage's library call raises
is re-raised in the file's words: ``quantize int8-static: [quantize].calib_method ...``, not ``--calib-method``.
The data sets are loaded and checked against the model right after it is loaded, before the export. The
stages themselves are in ``steps``; the verdict (every gate, one list) in ``verdict``.

Progress: ``on_stage(name)`` (a context manager factory) wraps each stage while it runs (the CLI shows a
spinner), and ``on_step`` hears one line per finished stage with its time (``quantize fp16: done in 3.1s``)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from edgelstm.errors import BadInput
from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.pipeline import steps
from edgelstm.pipeline.cache import StepCache
from edgelstm.pipeline.leftovers import UndoIfNothingMade, entries, missing_dirs, remove_made_dirs
from edgelstm.pipeline.lock import OutputLock, prepare_out_dir
from edgelstm.pipeline.schema import Pipeline, in_pipeline_words, reworded
from edgelstm.pipeline.steps import STATEFUL
from edgelstm.options import Precision, PrecisionSpec, QuantMode
from edgelstm.runners.contract import RunnerPrecision, typed_precision

Say = Callable[[str], None]
OnStage = Callable[[str], ContextManager[Any]]


@dataclass
class PipelineArtifact:
    """One file a pipeline run made, under the name its reports use (the file itself, with its manifest, is an
    ``edgelstm.artifacts.artifact.Artifact``)."""

    name: str          # fp32, fp32-stateful, fp16, int8-dynamic, int8-static, engine-fp16 ...
    path: Path
    precision: RunnerPrecision
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "precision": self.precision, "size_bytes": self.size_bytes}


@dataclass
class StepRecord:
    """One step of a run (a pipeline step is served by the step cache or runs): ``run --json``'s `stages` entry."""

    step: str          # train, convert, quantize fp16, validate fp16, bench, report, devices ...
    cached: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.step, "cached": self.cached, "seconds": self.seconds}


@dataclass
class PipelineResult:
    pipeline: Pipeline
    out_dir: Path
    model_path: Path | None = None
    model_sha256: str | None = None
    artifacts: list[PipelineArtifact] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    validations: dict[str, dict[str, Any]] = field(default_factory=dict)
    drift_by_length: dict[str, dict[str, Any]] = field(default_factory=dict)
    bench: dict[str, Any] | None = None
    reports: dict[str, Path] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    remarks: dict[str, list[str]] = field(default_factory=dict)  # artifact name -> words for its summary row
    data: dict[str, str] = field(default_factory=dict)            # validation / calibration: where they come from
    provenance: dict[str, Any] = field(default_factory=dict)      # date, version, commit, model sha256, machine
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)  # artifact -> vs OLD ([compare] against)
    devices: dict[str, Any] | None = None     # [devices]: the fleet check's verdict (pipeline.devices_step)
    seconds: float = 0.0

    @property
    def gates(self) -> list[dict[str, Any]]:
        """Every gate of the run (drift, drift baseline, latency baseline, vs OLD, devices), one dict each."""
        from edgelstm.pipeline.verdict import collect_gates

        return collect_gates(self)

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates)

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The steps as ``run --json`` writes them ({"stage", "cached", "seconds"} each)."""
        return [s.to_json() for s in self.steps]

    @property
    def cached_everything(self) -> bool:
        return bool(self.steps) and all(s.cached for s in self.steps)

    def artifact(self, name: str, path: Path, precision: RunnerPrecision | str) -> PipelineArtifact:
        return PipelineArtifact(name, path, typed_precision(precision), path.stat().st_size)

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per artifact: size, drift, gates, p50 at the grid's first point and speed-up over torch eager."""
        from edgelstm.pipeline.verdict import summary_rows

        return summary_rows(self)


def run_pipeline(p: Pipeline, *, on_step: Say | None = None, on_stage: OnStage | None = None, wait: bool = False,
                 lock: bool = True) -> PipelineResult:
    """Run every stage of ``p`` into its output directory. Another pipeline already writing there is
    BadInput naming it (``wait=True``: wait for it instead; ``lock=False``: the caller holds the lock). A run
    that fails before it made any artifact leaves nothing behind (``leftovers``)."""
    say = on_step or (lambda _m: None)
    check_before_any_stage(p)
    if p.devices.enabled:  # a misnamed device fails now, not after the stages
        from edgelstm.pipeline.devices_step import precheck

        precheck(p)
    made, before = missing_dirs(p.out_dir), entries(p.out_dir)
    try:
        out = prepare_out_dir(p.out_dir, what="[output].dir")
        undo = UndoIfNothingMade(out, before)
        if not lock:
            try:
                return _Run(p, out, say, on_stage).run()
            except BaseException:
                undo()
                raise
        with OutputLock(out, wait=wait, on_wait=say, on_error=undo):  # undone while the lock is still held
            return _Run(p, out, say, on_stage).run()
    except BaseException:
        remove_made_dirs(made)
        raise


def check_before_any_stage(p: Pipeline) -> None:
    """What can be checked before anything is created or trained: a zoo model's input contract (``[model].input``,
    ``[model].state_arg``) on an untrained copy, so a bad state argument fails in a second, not after training.
    (A pipeline file refuses both for zoo models when it is loaded, ``checks``; this guards a Pipeline built in
    code.)"""
    m = p.model
    if m.zoo is None or not (m.input or m.state_arg):
        return
    from edgelstm.models import zoo
    from edgelstm.models.inputs import plan_contracts

    with reworded("model", prefix="model: "):
        plan_contracts(zoo.build(m.zoo, dict(m.config), seed=m.seed), steps.input_options(p))


class _Run:
    """One run of a pipeline: the stages in order, each through the cache, sharing what earlier ones made."""

    def __init__(self, p: Pipeline, out: Path, say: Say, on_stage: OnStage | None):
        self.p, self.out, self.say = p, out, say
        self.on_stage = on_stage or (lambda _name: contextlib.nullcontext())
        self.cache = StepCache.open(out)
        self.res = PipelineResult(p, out)

    def step(self, name: str, material: Any, fn: Callable[[], Any], *, section: str) -> dict[str, Any]:
        """One step through the step cache (run, or served from it), timed and said."""
        started = time.perf_counter()
        with self.on_stage(name), reworded(section, prefix=f"{name}: "):
            r = self.cache.run(name, material, fn)
        seconds = time.perf_counter() - started
        self.res.steps.append(StepRecord(name, bool(r["cached"]), round(seconds, 3)))
        self.say(f"{name}: {'cached' if r['cached'] else f'done in {seconds:.1f}s'}")
        return r

    def run(self) -> PipelineResult:
        t0 = time.perf_counter()
        p, res = self.p, self.res
        if p.source_text:  # keep the pipeline beside its artifacts (bundles pick it up)
            copy = self.out / "pipeline.toml"
            if not copy.exists() or copy.read_text(errors="replace") != p.source_text:
                write_text_atomic(copy, p.source_text)
        reference = self.model()
        ref_runner, val, calib, data_sha = self.data(reference)
        self.export(reference)
        self.quantize(calib, val, data_sha)
        if p.targets.tensorrt:
            steps.tensorrt_engines(p, res, self.step, self.say)
        if p.targets.openvino:
            from edgelstm.pipeline.cpu_engines import openvino_irs

            openvino_irs(p, res, self.step, calib)
        self.validate(ref_runner, val, data_sha)
        if p.bench.enabled:
            self.bench(reference)
        if p.compare.against is not None:
            self.compare(ref_runner, val, data_sha)
        from edgelstm.machine.provenance import provenance

        res.provenance = provenance(res.model_path, where=p.base_dir, sha256=res.model_sha256,
                                    device=(res.bench or {}).get("device"))
        self.report()
        if p.devices.enabled:
            self.devices()
        res.seconds = time.perf_counter() - t0
        return res

    def model(self):
        p, m, res = self.p, self.p.model, self.res
        if m.source is not None:
            res.model_path = p.resolve(m.source)
        else:
            res.model_path = self.out / "model.pt"
            self.step("train", {"zoo": m.zoo, "config": dict(m.config), "steps": m.train_steps, "seed": m.seed,
                                 "seq": p.export.seq_len}, lambda: steps.train_model(p, res.model_path, self.say),
                       section="model")
        res.model_sha256 = sha256_file(res.model_path)
        with reworded("model", prefix="model: "):
            return steps.load_reference(p, res.model_path)

    def data(self, reference):
        """The validation (and calibration) sets, checked against the reference's I/O before any export."""
        from edgelstm.runners import open_runner

        with reworded("model", prefix="model: "):
            ref_runner = open_runner(reference, inputs=steps.input_options(self.p))
        ref_runner.label = str(self.res.model_path)  # reports name the files, not the architecture
        with self.on_stage("data"), reworded("data", prefix="data: "):
            val, calib, data_sha = steps.datasets(self.p, ref_runner.io)
        self.res.data["validation"] = f"{val.n} sequences of {val.source or 'the validation data'}"
        if calib is not None and "int8-static" in self.p.quantize.precisions:
            self.res.data["calibration"] = f"{calib.n} sequences of {calib.source}"
        return ref_runner, val, calib, data_sha

    def export(self, reference) -> None:
        p, m, res = self.p, self.p.model, self.res
        onnx_path = self.out / "model.onnx"
        self.step("convert", {"model": res.model_sha256, "export": p.export.__dict__, "input_size": m.input_size,
                               **({"input": list(m.input), "state_arg": m.state_arg, "static": m.static}
                                  if m.input or m.state_arg or m.static else {})},
                   lambda: steps.export(reference, onnx_path, p, stateful=False), section="export")
        res.artifacts.append(res.artifact("fp32", onnx_path, Precision.fp32))
        if p.export.stateful is False:
            return
        why_not = ("bidirectional models cannot stream" if steps.is_bidirectional(reference.module) else
                   "[model].static: a static model takes one shape" if m.static else None)
        if why_not:
            res.skipped.append({"stage": "convert --stateful", "reason": why_not})
            return
        st_path = self.out / "model.stateful.onnx"
        try:
            self.step("convert --stateful", {"model": res.model_sha256, "export": p.export.__dict__},
                       lambda: steps.export(reference, st_path, p, stateful=True), section="export")
        except BadInput as exc:
            if p.export.stateful is not None or "[export].stateful" not in str(exc):
                raise
            # stateful by default only where the model supports it: say why not, and go on
            reason = str(exc).removeprefix("convert --stateful: ")
            res.skipped.append({"stage": "convert --stateful", "reason": f"{reason} (set [export].stateful = false "
                                                                         "to skip it without this note)"})
            self.say(f"convert --stateful: skipped, {reason}")
            return
        res.artifacts.append(res.artifact(STATEFUL, st_path, Precision.fp32))

    def quantize(self, calib, val, data_sha: str) -> None:
        p, res = self.p, self.res
        onnx_path = self.out / "model.onnx"
        onnx_sha = sha256_file(onnx_path)
        for prec in p.quantize.precisions:
            q_path = self.out / f"model.{prec}.onnx"
            spec = PrecisionSpec.parse(prec)
            static = spec.mode == QuantMode.static
            material = {"onnx": onnx_sha, "precision": prec, "exclude": p.quantize.exclude,
                        "calib_method": p.quantize.calib_method if static else None,
                        "calib": data_sha if static else None}
            if spec.precision == Precision.int8:  # "auto" resolves per machine: a cache from another CPU class is not reused
                from edgelstm.machine.isa import resolve_target

                material["target_isa"] = str(resolve_target(p.quantize.target_cpu))
            if p.quantize.max_drift:
                material.update({"max_drift": p.quantize.max_drift, "data": data_sha})
            q = self.step(f"quantize {prec}", material,
                           lambda prec=prec, q_path=q_path: _quantize(onnx_path, q_path, prec, p, calib, val),
                           section="quantize")
            res.notes.extend(f"{prec}: {note}" for note in q.get("notes", []))
            res.remarks.setdefault(prec, []).extend(q.get("remarks", []))
            res.artifacts.append(res.artifact(prec, q_path, spec.precision))

    def validate(self, ref_runner, val, data_sha: str) -> None:
        p, res = self.p, self.res
        for a in list(res.artifacts):
            if a.path.suffix not in (".onnx", ".xml"):
                continue
            gates = list(p.validate.gates) + [str(g) for g in p.validate.precision_gates.get(a.name, [])]
            report_path = self.out / "validate" / f"{a.name}.json"
            base_path, _ = steps.baseline_report(p, a.name)
            material = {"model": res.model_sha256, "candidate": sha256_file(a.path), "data": data_sha,
                        "gates": gates, **({"baseline": sha256_file(base_path),
                                            "max_growth": p.validate.max_growth} if base_path else {})}
            v = self.step(f"validate {a.name}", material,
                           lambda a=a, gates=gates, report_path=report_path: steps.validate(
                               ref_runner, a, val, gates, report_path, p), section="validate")
            res.validations[a.name] = v["report"]
            res.notes.extend(f"{a.name}: {w}" for w in v["report"].get("warnings", []))
            res.drift_by_length[a.name] = v["drift_by_length"]
            if p.validate.baseline is not None and base_path is None:
                res.notes.append(f"{a.name}: no baseline report in [validate].baseline (a new artifact): its drift "
                                 "is gated by the absolute gates only")
        if p.validate.baseline is not None and not any(steps.baseline_report(p, n)[0] for n in res.validations):
            raise in_pipeline_words(BadInput(f"[validate].baseline {p.validate.baseline!r} holds no validate report of "
                                             f"this run's artifacts ({', '.join(res.validations)}.json)"), "validate")

    def bench(self, reference) -> None:
        p, res = self.p, self.res
        material = {"model": res.model_sha256, "artifacts": {a.name: sha256_file(a.path) for a in res.artifacts},
                    "bench": p.bench.__dict__}
        if p.bench.baseline:
            material["baseline"] = sha256_file(p.resolve(p.bench.baseline))
        b = self.step("bench", material, lambda: steps.bench(res, reference, self.out / "bench.json", p),
                       section="bench")
        res.bench = b["report"]
        from edgelstm.pipeline.cpu_engines import pick_note

        note = pick_note(p, res.bench)
        if note:
            res.notes.append(note)

    def compare(self, ref_runner, val, data_sha: str) -> None:
        """Each ONNX artifact against the file of the same name in [compare].against (OLD), in this run."""
        from edgelstm.pipeline.against import compare_artifact

        p, res = self.p, self.res
        old_dir = p.resolve(p.compare.against)
        for a in res.artifacts:
            old = old_dir / a.path.name
            if a.path.suffix != ".onnx" or not old.is_file():
                res.notes.append(f"{a.name}: {old_dir.name}/ has no {a.path.name}: not compared (a new artifact)")
                continue
            material = {"new": sha256_file(a.path), "old": sha256_file(old), "data": data_sha,
                        "model": res.model_sha256, "compare": p.compare.__dict__,
                        "grid": [p.bench.batch, p.bench.seq, p.bench.threads]}
            r = self.step(f"compare {a.name}", material,
                           lambda a=a, old=old: compare_artifact(ref_runner, a, old, val, p,
                                                                 self.out / "compare" / f"{a.name}.json"),
                           section="compare")
            res.comparisons[a.name] = r["comparison"]
        if not res.comparisons:
            raise in_pipeline_words(BadInput(f"[compare].against {p.compare.against!r} holds none of this run's "
                                             f"artifacts ({', '.join(a.path.name for a in res.artifacts)})"),
                                    "compare")

    def report(self) -> None:
        from edgelstm.pipeline.report import write_reports

        res = self.res
        material = {"validations": res.validations, "bench": res.bench, "drift": res.drift_by_length,
                    "comparisons": res.comparisons,
                    "artifacts": [(a.name, a.size_bytes) for a in res.artifacts], "pipeline": self.p.source_text,
                    "notes": res.notes, "skipped": res.skipped, "model": res.model_sha256,
                    "commit": res.provenance.get("git"), "edgelstm": res.provenance.get("edgelstm")}
        rep = self.step("report", material, lambda: write_reports(res), section="output")
        res.reports = {k: Path(v) for k, v in rep["paths"].items()}


    def devices(self) -> None:
        """[devices]: the artifacts checked on devices (never cached: devices change while files do not)."""
        from edgelstm.pipeline.devices_step import check_devices

        started = time.perf_counter()
        with self.on_stage("devices"):
            self.res.devices = check_devices(self.p, self.out, self.say)
        seconds = time.perf_counter() - started
        self.res.steps.append(StepRecord("devices", False, round(seconds, 3)))
        self.say(f"devices: done in {seconds:.1f}s")


def _quantize(src: Path, out: Path, prec: str, p: Pipeline, calib, val):
    """One quantization (a seam tests replace to interrupt a run)."""
    return steps.quantize(src, out, prec, p, calib, val)


__all__ = ["PipelineArtifact", "PipelineResult", "StepRecord", "run_pipeline"]
