"""`edgelstm run PIPELINE.toml`: model → export → quantize → validate → bench → report, each stage cached
by the content hash of its inputs and options. Stages run in order; a gate failure does not stop later
stages (the report shows everything) but makes the run fail."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgelstm.machine.isa import resolve_target
from edgelstm.errors import BackendMissing
from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.pipeline.cache import StageCache
from edgelstm.pipeline.config import Pipeline

DRIFT_LENGTHS = (1, 2, 4, 8, 16, 32, 60, 120)
STATEFUL = "fp32-stateful"  # the artifact name of the streaming export


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

    @property
    def passed(self) -> bool:
        return all(v.get("passed", False) for v in self.validations.values())

    @property
    def cached_everything(self) -> bool:
        return bool(self.stages) and all(s["cached"] for s in self.stages)

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per artifact: size, drift, gates, p50 and speed-up over torch eager."""
        from edgelstm.latency.bench import summarize

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


Say = Callable[[str], None]


def run_pipeline(p: Pipeline, *, on_step: Say | None = None) -> PipelineResult:
    say = on_step or (lambda _m: None)
    t0 = time.perf_counter()
    out = p.out_dir
    out.mkdir(parents=True, exist_ok=True)
    cache = StageCache.open(out)
    res = PipelineResult(p, out)
    if p.source_text:  # keep the pipeline beside its artifacts (bundles pick it up)
        copy = out / "pipeline.toml"
        if not copy.exists() or copy.read_text() != p.source_text:
            write_text_atomic(copy, p.source_text)

    def stage(name: str, material: Any, fn) -> dict[str, Any]:
        started = time.perf_counter()
        r = cache.run(name, material, fn)
        res.stages.append({"stage": name, "cached": r["cached"], "seconds": round(time.perf_counter() - started, 3)})
        say(f"{name}: {'cached' if r['cached'] else 'done'}")
        return r

    # 1. the model
    res.model_path = _model_stage(p, out, stage, say)
    model_sha = sha256_file(res.model_path)

    # 2. export (plain, and stateful where it applies)
    reference = _load_reference(p, res.model_path)
    onnx_path = out / "model.onnx"
    stage("convert", {"model": model_sha, "export": p.export.__dict__, "input_size": p.model.input_size},
              lambda: _export(reference, onnx_path, p, stateful=False))
    res.artifacts.append(Artifact("fp32", onnx_path, "fp32", onnx_path.stat().st_size))
    stateful_ok = p.export.stateful and not _is_bidirectional(reference.module)
    if p.export.stateful and not stateful_ok:
        res.skipped.append({"stage": "convert --stateful", "reason": "bidirectional models cannot stream"})
    if stateful_ok:
        st_path = out / "model.stateful.onnx"
        stage("convert --stateful", {"model": model_sha, "export": p.export.__dict__},
              lambda: _export(reference, st_path, p, stateful=True))
        res.artifacts.append(Artifact(STATEFUL, st_path, "fp32", st_path.stat().st_size))

    # data: validation (and calibration) sets against the reference's I/O
    from edgelstm.runners import open_runner

    ref_runner = open_runner(reference)
    ref_runner.label = str(res.model_path)  # reports name the files, not the architecture
    val, calib, data_sha = _datasets(p, ref_runner.io, reference)

    # 3. quantize
    onnx_sha = sha256_file(onnx_path)
    for prec in p.quantize.precisions:
        q_path = out / f"model.{prec}.onnx"
        static = prec == "int8-static"
        material = {"onnx": onnx_sha, "precision": prec, "exclude": p.quantize.exclude,
                    "calib_method": p.quantize.calib_method if static else None, "calib": data_sha if static else None}
        if prec.startswith("int8"):  # "auto" resolves per machine: a cache from another CPU class is not reused
            material["target_isa"] = str(resolve_target(p.quantize.target_cpu))
        if p.quantize.max_drift:
            material.update({"max_drift": p.quantize.max_drift, "data": data_sha})
        q = stage(f"quantize {prec}", material,
                  lambda prec=prec, q_path=q_path: _quantize(onnx_path, q_path, prec, p, calib, val))
        for note in q.get("notes", []):
            res.notes.append(f"{prec}: {note}")
        res.artifacts.append(Artifact(prec, q_path, prec.split("-")[0], q_path.stat().st_size))

    # 3b. TensorRT engines where asked and installed
    if p.targets.tensorrt:
        _tensorrt_stage(p, res, stage, calib, say)

    # 4. validate every artifact against the torch reference
    for a in list(res.artifacts):
        if a.path.suffix != ".onnx":
            continue
        gates = list(p.validate.gates) + [str(g) for g in p.validate.precision_gates.get(a.name, [])]
        report_path = out / "validate" / f"{a.name}.json"
        material = {"model": model_sha, "candidate": sha256_file(a.path), "data": data_sha, "gates": gates}
        v = stage(f"validate {a.name}", material,
                  lambda a=a, gates=gates, report_path=report_path: _validate(ref_runner, a, val, gates, report_path))
        res.validations[a.name] = v["report"]
        res.notes.extend(f"{a.name}: {w}" for w in v["report"].get("warnings", []))
        res.drift_by_length[a.name] = v["drift_by_length"]

    # 5. bench
    if p.bench.enabled:
        bench_path = out / "bench.json"
        material = {"model": model_sha, "artifacts": {a.name: sha256_file(a.path) for a in res.artifacts},
                    "bench": p.bench.__dict__}
        b = stage("bench", material, lambda: _bench(res, reference, bench_path, p))
        res.bench = b["report"]

    # 6. report
    from edgelstm.pipeline.report import write_reports

    material = {"validations": res.validations, "bench": res.bench, "drift": res.drift_by_length,
                "artifacts": [(a.name, a.size_bytes) for a in res.artifacts], "pipeline": p.source_text}
    rep = stage("report", material, lambda: write_reports(res))
    res.reports = {k: Path(v) for k, v in rep["paths"].items()}
    res.seconds = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------------------------------ stages


def _model_stage(p: Pipeline, out: Path, stage, say: Say) -> Path:
    from edgelstm.models import zoo

    m = p.model
    if m.source is not None:
        return p.resolve(m.source)
    path = out / "model.pt"

    def train():
        say(f"training {m.zoo} on its synthetic task ({m.train_steps} steps, seed {m.seed})")
        model = zoo.build(m.zoo, dict(m.config), seed=m.seed)
        loss = zoo.train(model, m.zoo, steps=m.train_steps, seed=m.seed, seq=min(60, p.export.seq_len))
        zoo.save_checkpoint(model, path)
        return [path], {"loss": loss}

    stage("train", {"zoo": m.zoo, "config": dict(m.config), "steps": m.train_steps, "seed": m.seed,
                    "seq": p.export.seq_len}, train)
    return path


def _load_reference(p: Pipeline, path: Path):
    from edgelstm.models.loading import load_model

    return load_model(path, factory=p.model.factory, trust_pickle=p.model.trust_pickle)


def _is_bidirectional(module) -> bool:
    import torch

    return any(isinstance(m, torch.nn.RNNBase) and m.bidirectional for m in module.modules())


def _export(reference, path: Path, p: Pipeline, *, stateful: bool):
    from converters.torch_to_onnx import ExportOptions, export_onnx

    r = export_onnx(reference, path, ExportOptions(input_size=p.model.input_size, seq_len=p.export.seq_len,
                                                   batch=p.export.batch, opset=p.export.opset, stateful=stateful))
    return [path, path.with_name(path.name + ".json")], {"route": r.route.value, "max_abs": r.verification.max_abs}


def _datasets(p: Pipeline, spec, reference):
    from edgelstm.data.sources import load_dataset, synthetic_dataset

    from edgelstm.models import zoo

    d = p.data
    if d.validation:
        path = p.resolve(d.validation)
        val = load_dataset(path, spec, window=d.window, features=list(d.features) if d.features else None,
                           target=d.target)
        data_sha = sha256_file(path)
    elif p.model.zoo:
        from edgelstm.data.sources import dataset_from_arrays

        x, y = zoo.synthetic_task(p.model.zoo, d.synthetic, d.seq, seed=d.seed)
        val = dataset_from_arrays({"x": x}, spec, labels=y)
        data_sha = f"zoo-task:{p.model.zoo}:{d.synthetic}:{d.seq}:{d.seed}"
    else:
        val = synthetic_dataset(spec, d.synthetic, seq=d.seq, seed=d.seed)
        data_sha = f"synthetic:{d.synthetic}:{d.seq}:{d.seed}"
    if d.calibration:
        cpath = p.resolve(d.calibration)
        calib = load_dataset(cpath, spec, window=d.window, features=list(d.features) if d.features else None)
        data_sha += ":" + sha256_file(cpath)
    elif p.model.zoo:
        from edgelstm.data.sources import dataset_from_arrays

        x, _ = zoo.synthetic_task(p.model.zoo, 128, d.seq, seed=d.seed + 1000)  # disjoint from validation
        calib = dataset_from_arrays({"x": x}, spec)
    else:
        calib = synthetic_dataset(spec, 128, seq=d.seq, seed=d.seed + 1000)
    return val, calib, data_sha


def _quantize(src: Path, out: Path, prec: str, p: Pipeline, calib, val):
    from edgelstm.data.sources import as_calibration_source

    from edgelstm.options import CalibMethod, Precision, QuantMode

    source = None
    if prec == "fp16":
        from converters.fp16 import Fp16Options

        precision, opts = Precision.fp16, Fp16Options(exclude=tuple(p.quantize.exclude))
    else:
        from converters.int8 import Int8Options

        mode = QuantMode.dynamic if prec == "int8-dynamic" else QuantMode.static
        precision = Precision.int8
        opts = Int8Options(mode=mode, calib_method=CalibMethod(p.quantize.calib_method),
                           exclude=tuple(p.quantize.exclude), target=p.quantize.target_cpu)
        source = as_calibration_source(calib, 32) if mode == QuantMode.static else None
    if p.quantize.max_drift:
        from converters.quant_fallback import DriftBudget, quantize_with_budget

        r = quantize_with_budget(src, out, precision, opts, DriftBudget.parse(p.quantize.max_drift),
                                 val.batches(32), source)
    elif precision == Precision.fp16:
        from converters.fp16 import quantize_fp16

        r = quantize_fp16(src, out, opts)  # type: ignore[arg-type]
    else:
        from converters.int8 import quantize_int8

        r = quantize_int8(src, out, opts, source)  # type: ignore[arg-type]
    return [out, out.with_name(out.name + ".json")], {"size_bytes": r.size_bytes,
                                                      "times_smaller": round(r.times_smaller, 3),
                                                      "counts": r.counts(), "notes": quantize_notes(r.details)}


def quantize_notes(q: dict[str, Any]) -> list[str]:
    """What a reader of the summary must know about a quantized file: its INT8 target and any fallback."""
    notes = []
    t = q.get("target")
    if t:
        notes.append(f"targets {t['isa']} ({t['weight_type']} {'7-bit' if t['reduce_range'] else '8-bit'} weights, "
                     f"onnxruntime level {t['ort_levels'][0]}): {t['why']}")
    fb = q.get("fallback")
    if fb:
        kept = fb.get("kept_float") or []
        notes.append(f"accuracy fallback ({fb['metric']} <= {fb['budget']:g} vs FP32 ONNX): "
                     + (f"kept {len(kept)} node(s) float ({', '.join(kept[:4])}), {fb['metric']} "
                        f"{fb['drift_all_quantized']:.3g} -> {fb['drift']:.3g}" if kept
                        else f"all quantized already fits ({fb['drift']:.3g})"))
    return notes


def _validate(ref_runner, artifact: Artifact, val, gates: list[str], report_path: Path):
    from edgelstm.validation.gates import parse_gates
    from edgelstm.validation.reports.validate_json import report_dict, write_validate_report
    from edgelstm.runners import open_runner
    from edgelstm.validation.validate import ValidateOptions, validate_artifacts

    cand = open_runner(artifact.path)
    cand.label = str(artifact.path)
    try:
        result = validate_artifacts(ref_runner, cand, val, ValidateOptions(gates=tuple(parse_gates(gates))))
        write_validate_report(result, report_path)
        drift = drift_by_length(ref_runner, cand, val)
    finally:
        cand.close()
    return [report_path], {"report": report_dict(result), "drift_by_length": drift}


def drift_by_length(ref, cand, dataset, *, samples: int = 64) -> dict[str, Any]:
    """rel_l2 of the candidate runner's output against the reference runner's when the sequence is cut at
    growing lengths: how drift accumulates along the recurrence (time steps)."""
    x = dataset.inputs["x"][:samples]
    lengths = [t for t in DRIFT_LENGTHS if t <= x.shape[1]]
    if x.shape[1] not in lengths:
        lengths.append(int(x.shape[1]))
    extra = {t.name: np.zeros([x.shape[0] if d == "batch" else d for d in t.shape], np.float32)
             for t in cand.io.inputs if t.state}
    out_name = ref.io.outputs[0].name
    rel = []
    for t in lengths:
        r = ref.run({"x": x[:, :t]})[out_name]
        c = cand.run({"x": x[:, :t], **extra})[out_name]
        rel.append(float(np.linalg.norm(c - r) / max(np.linalg.norm(r), 1e-12)))
    return {"output": out_name, "lengths": lengths, "rel_l2": rel}


def _bench(res: PipelineResult, reference, path: Path, p: Pipeline):
    from edgelstm.latency.bench import BenchGrid, BenchOptions, BenchTarget, bench_artifacts
    from edgelstm.latency.harness import TimingPolicy

    targets = [BenchTarget(reference, name="torch (eager)")]
    for a in res.artifacts:
        drift = res.validations.get(a.name, {}).get("outputs", {})
        rel = max((o.get("rel_l2", 0.0) for o in drift.values()), default=None)
        # stateful artifacts also time one step with the state carried, beside re-running the window
        targets.append(BenchTarget(a.path, extras={"drift": {"rel_l2": rel}} if rel is not None else {},
                                   stream=p.bench.stream and a.name == STATEFUL))
    grid = BenchGrid(batches=p.bench.batch, seqs=p.bench.seq, threads=p.bench.threads)
    opts = BenchOptions(policy=TimingPolicy(warmup=p.bench.warmup, iters=p.bench.iters), measure_memory=False)
    data = bench_artifacts(targets, grid, opts).to_dict()
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
    return [path], {"report": data}


def _tensorrt_stage(p: Pipeline, res: PipelineResult, stage, calib, say: Say) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        res.skipped.append({"stage": "build (TensorRT)", "reason": "tensorrt is not installed here; the bundle "
                            "carries the ONNX and a build script for the device"})
        return
    from converters.tensorrt.build import BuildOptions, build_engine

    from edgelstm.options import Precision

    src = res.out_dir / "model.onnx"
    for prec in ("fp32", "fp16"):
        eng = res.out_dir / f"model.{prec}.plan"
        material = {"onnx": sha256_file(src), "precision": prec, "seq": p.export.seq_len}

        def build(prec=prec, eng=eng):
            r = build_engine(src, eng, BuildOptions(precision=Precision(prec)))
            return [eng], {"precision": prec, "size_bytes": eng.stat().st_size, "path": str(r.path)}

        try:
            stage(f"build {prec}", material, build)
        except BackendMissing as exc:
            res.skipped.append({"stage": f"build {prec}", "reason": str(exc)})
            return
        res.artifacts.append(Artifact(f"engine-{prec}", eng, prec, eng.stat().st_size))
