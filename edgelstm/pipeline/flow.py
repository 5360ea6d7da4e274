"""`edgelstm run PIPELINE.toml`: model → export → quantize → validate → bench → report, each stage cached
by the content hash of its inputs and options. Stages run in order; a gate failure does not stop later
stages (the report shows everything) but makes the run fail.

The file was checked as a whole when it was loaded (``config.load_pipeline``). A run then takes the output
directory (created, writable, locked against a second pipeline), and an error a stage's library call raises
is re-raised in the file's words: ``quantize int8-static: [quantize].calib_method ...``, not ``--calib-method``.
The stages themselves are in ``steps``."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.pipeline import steps
from edgelstm.pipeline.cache import StageCache
from edgelstm.pipeline.lock import LOCK_FILE, OutputLock, prepare_out_dir
from edgelstm.pipeline.schema import Pipeline, reworded
from edgelstm.pipeline.steps import STATEFUL

Say = Callable[[str], None]


@dataclass
class Artifact:
    name: str          # fp32, fp32-stateful, fp16, int8-dynamic, int8-static, engine-fp16 ...
    path: Path
    precision: str
    size_bytes: int


@dataclass
class PipelineResult:
    pipeline: Pipeline
    out_dir: Path
    model_path: Path | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    validations: dict[str, dict[str, Any]] = field(default_factory=dict)
    drift_by_length: dict[str, dict[str, Any]] = field(default_factory=dict)
    bench: dict[str, Any] | None = None
    reports: dict[str, Path] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    devices: dict[str, Any] | None = None      # [devices]: the fleet check's verdict (pipeline.devices_step)

    @property
    def passed(self) -> bool:
        return (all(v.get("passed", False) for v in self.validations.values())
                and (self.devices is None or self.devices["passed"]))

    @property
    def cached_everything(self) -> bool:
        return bool(self.stages) and all(s["cached"] for s in self.stages)

    def artifact(self, name: str, path: Path, precision: str) -> Artifact:
        return Artifact(name, path, precision, path.stat().st_size)

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per artifact: size, drift, gates, p50 and speed-up over torch eager."""
        from edgelstm.latency import summarize

        bench_rows = summarize(self.bench) if self.bench else []
        rows = []
        torch_p50 = next((r["p50_ms"] for r in bench_rows if r["backend"] == "torch" and r["mode"] == "window"), None)
        if torch_p50 is not None and self.model_path is not None:
            rows.append({"artifact": "torch (eager)", "precision": "fp32",
                         "size_bytes": self.model_path.stat().st_size, "rel_l2": 0.0, "task": None,
                         "gates": "reference", "p50_ms": torch_p50, "speedup": 1.0})
        for a in self.artifacts:
            v = self.validations.get(a.name, {})
            outputs = v.get("outputs", {})
            rel = max((o.get("rel_l2", 0.0) for o in outputs.values()), default=None)
            b = next((r for r in bench_rows if r["artifact"] == a.path.name and r["mode"] == "window"), None)
            row = {"artifact": a.path.name, "precision": a.name, "size_bytes": a.size_bytes, "rel_l2": rel,
                   "task": _task_value(v.get("task") or {}),
                   "gates": ("pass" if v.get("passed") else "FAIL") if v else "-",
                   "p50_ms": b["p50_ms"] if b else None, "speedup": b["speedup"] if b else None}
            rows.append(row)
            step = next((r for r in bench_rows if r["artifact"] == a.path.name and r["mode"] == "step"), None)
            if step is not None:  # streaming: one new sample costs one step, not a re-run of the window
                rows.append({**row, "artifact": f"{a.path.name} (1 step, state carried)", "p50_ms": step["p50_ms"],
                             "speedup": (torch_p50 / step["p50_ms"]) if torch_p50 and step["p50_ms"] else None})
        return rows


def _task_value(task: dict[str, Any]) -> str | None:
    for key in ("mse", "accuracy"):
        if key in task:
            return f"{key}={task[key]:.4g}"
    return None


def run_pipeline(p: Pipeline, *, on_step: Say | None = None, wait: bool = False, lock: bool = True) -> PipelineResult:
    """Run every stage of ``p`` into its output directory. Another pipeline already writing there is
    BadInput naming it (``wait=True``: wait for it instead; ``lock=False``: the caller holds the lock)."""
    say = on_step or (lambda _m: None)
    check_before_any_stage(p)
    if p.devices.enabled:  # a misnamed device fails now, not after the stages
        from edgelstm.pipeline.devices_step import precheck

        precheck(p)
    made, before = _missing_dirs(p.out_dir), _entries(p.out_dir)
    try:
        out = prepare_out_dir(p.out_dir, what="[output].dir")
        undo = _UndoIfNothingMade(out, before)
        if not lock:
            try:
                return _run(p, out, say)
            except BaseException:
                undo()
                raise
        with OutputLock(out, wait=wait, on_wait=say, on_error=undo):  # undone while the lock is still held
            return _run(p, out, say)
    except BaseException:
        for d in made:  # the output directory (and parents) this run made, when it is empty again
            try:
                d.rmdir()
            except OSError:
                break
        raise


# ------------------------------------------------------------------------------------------ a failed run's leftovers


def check_before_any_stage(p: Pipeline) -> None:
    """What can be checked before anything is created or trained: a zoo model's input contract (``[model].input``,
    ``[model].state_arg``) on an untrained copy, so a bad state argument fails in a second, not after training."""
    m = p.model
    if m.zoo is None or not (m.input or m.state_arg):
        return
    from edgelstm.models import zoo
    from edgelstm.models.inputs import plan_contracts

    with reworded("model", prefix="model: "):
        plan_contracts(zoo.build(m.zoo, dict(m.config), seed=m.seed), steps.input_options(p))


def _missing_dirs(out: Path) -> list[Path]:
    """``out`` and its ancestors that do not exist yet, deepest first."""
    return [d for d in (out, *out.parents) if not os.path.lexists(d)]


def _entries(out: Path) -> set[str]:
    try:
        return set(os.listdir(out))
    except OSError:
        return set()


#: what a run writes before its first stage finishes (besides temps, which clean up after themselves)
_BOOKKEEPING = {LOCK_FILE, "pipeline.toml"}


class _UndoIfNothingMade:
    """Called when a run fails (or is interrupted) while it still holds the lock: if it made no artifact yet, it
    removes what it created (the copied pipeline.toml, empty folders) and returns True, so that the lock file
    goes too. Once an artifact exists, everything stays (a re-run resumes from the cache)."""

    def __init__(self, out: Path, before: set[str]):
        self.out, self.before = out, before

    def __call__(self) -> bool:
        new = _entries(self.out) - self.before
        if not all(n in _BOOKKEEPING or _empty_dir(self.out / n) for n in new):
            return False
        for n in sorted(new - {LOCK_FILE}):
            path = self.out / n
            with contextlib.suppress(OSError):
                if _empty_dir(path):
                    path.rmdir()
                else:
                    path.unlink()
        return LOCK_FILE in new


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _run(p: Pipeline, out: Path, say: Say) -> PipelineResult:
    t0 = time.perf_counter()
    cache = StageCache.open(out)
    res = PipelineResult(p, out)
    if p.source_text:  # keep the pipeline beside its artifacts (bundles pick it up)
        copy = out / "pipeline.toml"
        if not copy.exists() or copy.read_text(errors="replace") != p.source_text:
            write_text_atomic(copy, p.source_text)

    def stage(name: str, material: Any, fn, *, section: str) -> dict[str, Any]:
        started = time.perf_counter()
        with reworded(section, prefix=f"{name}: "):
            r = cache.run(name, material, fn)
        res.stages.append({"stage": name, "cached": r["cached"], "seconds": round(time.perf_counter() - started, 3)})
        say(f"{name}: {'cached' if r['cached'] else 'done'}")
        return r

    # 1. the model
    m = p.model
    if m.source is not None:
        res.model_path = p.resolve(m.source)
    else:
        res.model_path = out / "model.pt"
        stage("train", {"zoo": m.zoo, "config": dict(m.config), "steps": m.train_steps, "seed": m.seed,
                        "seq": p.export.seq_len}, lambda: steps.train_model(p, res.model_path, say), section="model")
    model_sha = sha256_file(res.model_path)

    # 2. export (plain, and stateful where it applies)
    with reworded("model", prefix="model: "):
        reference = steps.load_reference(p, res.model_path)
    onnx_path = out / "model.onnx"
    stage("convert", {"model": model_sha, "export": p.export.__dict__, "input_size": m.input_size,
                      **({"input": list(m.input), "state_arg": m.state_arg, "static": m.static}
                         if m.input or m.state_arg or m.static else {})},
          lambda: steps.export(reference, onnx_path, p, stateful=False), section="export")
    res.artifacts.append(res.artifact("fp32", onnx_path, "fp32"))
    stateful_ok = p.export.stateful and not steps.is_bidirectional(reference.module) and not m.static
    if p.export.stateful and not stateful_ok:
        res.skipped.append({"stage": "convert --stateful", "reason": "bidirectional models cannot stream"})
    if stateful_ok:
        st_path = out / "model.stateful.onnx"
        stage("convert --stateful", {"model": model_sha, "export": p.export.__dict__},
              lambda: steps.export(reference, st_path, p, stateful=True), section="export")
        res.artifacts.append(res.artifact(STATEFUL, st_path, "fp32"))

    # data: validation (and calibration) sets against the reference's I/O
    from edgelstm.runners import open_runner

    with reworded("model", prefix="model: "):
        ref_runner = open_runner(reference, inputs=steps.input_options(p))
    ref_runner.label = str(res.model_path)  # reports name the files, not the architecture
    with reworded("data", prefix="data: "):
        val, calib, data_sha = steps.datasets(p, ref_runner.io)

    # 3. quantize
    onnx_sha = sha256_file(onnx_path)
    for prec in p.quantize.precisions:
        q_path = out / f"model.{prec}.onnx"
        static = prec == "int8-static"
        material = {"onnx": onnx_sha, "precision": prec, "exclude": p.quantize.exclude,
                    "calib_method": p.quantize.calib_method if static else None, "calib": data_sha if static else None}
        if prec.startswith("int8"):  # "auto" resolves per machine: a cache from another CPU class is not reused
            from edgelstm.machine.isa import resolve_target

            material["target_isa"] = str(resolve_target(p.quantize.target_cpu))
        if p.quantize.max_drift:
            material.update({"max_drift": p.quantize.max_drift, "data": data_sha})
        q = stage(f"quantize {prec}", material,
                  lambda prec=prec, q_path=q_path: _quantize(onnx_path, q_path, prec, p, calib, val),
                  section="quantize")
        for note in q.get("notes", []):
            res.notes.append(f"{prec}: {note}")
        res.artifacts.append(res.artifact(prec, q_path, prec.split("-")[0]))

    # 3b. TensorRT engines where asked and installed
    if p.targets.tensorrt:
        steps.tensorrt_engines(p, res, stage, say)
    if p.targets.openvino:
        from edgelstm.pipeline.cpu_engines import openvino_irs

        openvino_irs(p, res, stage, calib)

    # 4. validate every artifact against the torch reference
    for a in list(res.artifacts):
        if a.path.suffix not in (".onnx", ".xml"):
            continue
        gates = list(p.validate.gates) + [str(g) for g in p.validate.precision_gates.get(a.name, [])]
        report_path = out / "validate" / f"{a.name}.json"
        material = {"model": model_sha, "candidate": sha256_file(a.path), "data": data_sha, "gates": gates}
        v = stage(f"validate {a.name}", material,
                  lambda a=a, gates=gates, report_path=report_path: steps.validate(ref_runner, a, val, gates,
                                                                                   report_path),
                  section="validate")
        res.validations[a.name] = v["report"]
        res.notes.extend(f"{a.name}: {w}" for w in v["report"].get("warnings", []))
        res.drift_by_length[a.name] = v["drift_by_length"]

    # 5. bench
    if p.bench.enabled:
        bench_path = out / "bench.json"
        material = {"model": model_sha, "artifacts": {a.name: sha256_file(a.path) for a in res.artifacts},
                    "bench": p.bench.__dict__}
        b = stage("bench", material, lambda: steps.bench(res, reference, bench_path, p), section="bench")
        res.bench = b["report"]
        from edgelstm.pipeline.cpu_engines import pick_note

        note = pick_note(p, res.bench)
        if note:
            res.notes.append(note)

    # 6. report
    from edgelstm.pipeline.report import write_reports

    material = {"validations": res.validations, "bench": res.bench, "drift": res.drift_by_length,
                "artifacts": [(a.name, a.size_bytes) for a in res.artifacts], "pipeline": p.source_text}
    rep = stage("report", material, lambda: write_reports(res), section="output")
    res.reports = {k: Path(v) for k, v in rep["paths"].items()}

    # 7. [devices]: the artifacts checked on devices (never cached: devices change while files do not)
    if p.devices.enabled:
        from edgelstm.pipeline.devices_step import check_devices

        started = time.perf_counter()
        res.devices = check_devices(p, out, say)
        res.stages.append({"stage": "devices", "cached": False, "seconds": round(time.perf_counter() - started, 3)})
    res.seconds = time.perf_counter() - t0
    return res


def _quantize(src: Path, out: Path, prec: str, p: Pipeline, calib, val):
    """One quantization (a seam tests replace to interrupt a run)."""
    return steps.quantize(src, out, prec, p, calib, val)
