"""The pipeline's steps: each takes the pipeline and what earlier steps made, asks the library for one
stage (model transformations through ``edgelstm.stages``), and returns ``(output paths, result)`` for the
step cache. The order, the cache and the error wording are ``flow``'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgelstm import stages
from edgelstm.errors import BackendMissing
from edgelstm.fileio import sha256_file, write_text_atomic
from edgelstm.pipeline.schema import Pipeline

DRIFT_LENGTHS = (1, 2, 4, 8, 16, 32, 60, 120)
STATEFUL = "fp32-stateful"  # the artifact name of the streaming export

Say = Callable[[str], None]


def train_model(p: Pipeline, path: Path, say: Say):
    from edgelstm.models import zoo

    m = p.model
    import torch

    say(f"training {m.zoo} on its synthetic task ({m.train_steps} steps, seed {m.seed})")
    model = zoo.build(m.zoo, dict(m.config), seed=m.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a zoo model is small: more threads only wait on each other (5-10x on a busy CPU)
    try:
        loss = zoo.train(model, m.zoo, steps=m.train_steps, seed=m.seed, seq=min(60, p.export.seq_len))
    finally:
        torch.set_num_threads(threads)
    zoo.save_checkpoint(model, path)
    return [path], {"loss": loss}


def factory_spec(p: Pipeline) -> str | None:
    """[model].factory with a ``file.py`` part resolved against the pipeline file, as every other path is."""
    f = p.model.factory
    module, sep, func = (f or "").rpartition(":")
    if f is None or not sep or not module.endswith(".py"):
        return f
    return f"{p.resolve(module)}:{func}"


def load_reference(p: Pipeline, path: Path):
    from edgelstm.models.loading import load_model

    ref = p.resolve(p.model.keras_reference) if p.model.keras_reference else None
    return load_model(path, factory=factory_spec(p), trust_pickle=p.model.trust_pickle, keras_reference=ref)


def is_bidirectional(module) -> bool:
    import torch

    return any(isinstance(m, torch.nn.RNNBase) and m.bidirectional for m in module.modules())


def input_options(p: Pipeline):
    """How the pipeline's [model] is called (the same options as `--input`, `--state-arg`, `--static`)."""
    from edgelstm.models.inputs import InputOptions

    m = p.model
    return InputOptions.from_cli(m.input, m.input_size, m.state_arg,
                                 (p.export.batch, p.export.seq_len) if m.static else None)


def export(reference, path: Path, p: Pipeline, *, stateful: bool):
    inputs = input_options(p)
    r = stages.export(reference, path, stages.ExportOptions(input_size=p.model.input_size, inputs=inputs.inputs,
                                                            state_arg=inputs.state_arg, static=p.model.static,
                                                            seq_len=p.export.seq_len, batch=p.export.batch,
                                                            opset=p.export.opset, stateful=stateful))
    return [path, path.with_name(path.name + ".json")], {"route": r.route.value, "max_abs": r.verification.max_abs}


def datasets(p: Pipeline, spec):
    """(validation set, calibration set, a content key of both) against the reference's I/O ``spec``. CSV options
    apply to the .csv file(s) only, so an .npz validation set and a .csv calibration set combine. The calibration
    set's ``source`` says where it comes from (a file, the zoo model's task, or synthetic N(0,1) samples, which
    only [data].calibration_synthetic asks for)."""
    from edgelstm.data import dataset_from_arrays, load_dataset, synthetic_dataset
    from edgelstm.models import zoo

    d = p.data
    if d.validation:
        path = p.resolve(d.validation)
        val = load_dataset(path, spec, **_csv_options(p, path, labels=True))
        data_sha = sha256_file(path)
    elif p.model.zoo:
        x, y = zoo.synthetic_task(p.model.zoo, d.synthetic, d.seq, seed=d.seed)
        val = dataset_from_arrays({"x": x}, spec, labels=y, source=f"the {p.model.zoo} task (synthetic)")
        data_sha = f"zoo-task:{p.model.zoo}:{d.synthetic}:{d.seq}:{d.seed}"
    else:
        val = synthetic_dataset(spec, d.synthetic, seq=d.seq, seed=d.seed)
        data_sha = f"synthetic:{d.synthetic}:{d.seq}:{d.seed}"
    if d.calibration:
        cpath = p.resolve(d.calibration)
        calib = load_dataset(cpath, spec, **_csv_options(p, cpath, labels=False))
        data_sha += ":" + sha256_file(cpath)
    elif d.calibration_synthetic:
        calib = synthetic_dataset(spec, d.calibration_synthetic, seq=d.seq, seed=d.seed + 1000)
        calib.source = "synthetic data (seeded N(0,1) noise, as [data].calibration_synthetic asks)"
        data_sha += f":calib-synthetic:{d.calibration_synthetic}"
    elif p.model.zoo:
        x, _ = zoo.synthetic_task(p.model.zoo, 128, d.seq, seed=d.seed + 1000)  # disjoint from validation
        calib = dataset_from_arrays({"x": x}, spec, source=f"synthetic data (the {p.model.zoo} task's generator)")
    else:
        calib = None  # the up-front check refused int8-static without calibration data
    return val, calib, data_sha


def _csv_options(p: Pipeline, path: Path, *, labels: bool) -> dict[str, Any]:
    """[data].window/stride/group/features (and target/horizon, for the validation set) for a .csv file; nothing
    for .npz/.npy."""
    d = p.data
    if path.suffix.lower() != ".csv":
        return {}
    return {"window": d.window, "features": list(d.features) if d.features else None, "stride": d.stride,
            "group": d.group, **({"target": d.target, "horizon": d.horizon} if labels else {})}


def quantize(src: Path, out: Path, prec: str, p: Pipeline, calib, val):
    from edgelstm.data import as_calibration_source
    from edgelstm.options import CalibMethod, Precision, PrecisionSpec, QuantMode

    spec = PrecisionSpec.parse(prec)
    if spec.precision == Precision.fp16:
        opts = stages.default_options(spec, exclude=tuple(p.quantize.exclude))
    else:
        opts = stages.default_options(spec, calib_method=CalibMethod(p.quantize.calib_method),
                                      exclude=tuple(p.quantize.exclude), target=p.quantize.target_cpu)
    source = as_calibration_source(calib, 32) if spec.mode == QuantMode.static else None
    budget = stages.DriftBudget.parse(p.quantize.max_drift) if p.quantize.max_drift else None
    r = stages.quantize(src, out, spec, opts, calib=source, budget=budget,
                        data=val.batches(32) if budget is not None else None)
    return [out, out.with_name(out.name + ".json")], {"size_bytes": r.size_bytes,
                                                      "times_smaller": round(r.times_smaller, 3),
                                                      "counts": r.counts(), "notes": quantize_notes(r.details),
                                                      "remarks": quantize_remarks(r.details)}


def _share(metric: str, value: float) -> str:
    """A drift value in words: relative metrics as a percentage, absolute ones as they are."""
    return f"{value * 100:.2g}%" if metric.startswith("rel") else f"{value:.3g}"


def quantize_notes(q: dict[str, Any]) -> list[str]:
    """What a reader of the report must know about a quantized file, in plain words: what it was calibrated on,
    which CPUs it is made for, and what the accuracy fallback kept in float."""
    notes = []
    cal = q.get("calibration") or {}
    if cal.get("samples"):
        notes.append(f"calibrated on {cal['samples']} sequences of {cal.get('data') or 'the calibration data'}, "
                     f"{cal.get('method', 'minmax')} ranges")
    t = q.get("target")
    if t:
        why = str(t["why"]).removeprefix(f"{t['isa']}: ")  # the recipe's reason, without repeating the class
        notes.append(f"made for {t['isa']} CPUs: {'7-bit' if t['reduce_range'] else '8-bit'} {t['weight_type']} "
                     f"weights, onnxruntime level {t['ort_levels'][0]}; {why}")
    fb = q.get("fallback")
    if fb:
        metric, budget = fb["metric"], _share(fb["metric"], fb["budget"])
        kept = fb.get("kept_float") or []
        if kept:
            notes.append(f"kept {len(kept)} node(s) float to fit the {budget} {metric} budget vs the FP32 ONNX "
                         f"({', '.join(kept[:4])}{', …' if len(kept) > 4 else ''}): {metric} "
                         f"{_share(metric, fb['drift_all_quantized'])} with every node INT8, {_share(metric, fb['drift'])} now")
        else:
            low = str(q.get("precision") or "int8").upper()
            notes.append(f"every quantizable node kept {low} within the {budget} {metric} budget vs the FP32 ONNX "
                         f"({metric} {_share(metric, fb['drift'])})")
    return notes


def quantize_remarks(q: dict[str, Any]) -> list[str]:
    """A few words for the artifact's row in the summary table (the notes say the rest)."""
    out = []
    cal = q.get("calibration") or {}
    if str(cal.get("data") or "").startswith("synthetic"):
        out.append("calibrated on synthetic data")
    kept = ((q.get("fallback") or {}).get("kept_float")) or []
    if kept:
        out.append(f"{len(kept)} node(s) kept float")
    return out


def baseline_report(p: Pipeline, name: str) -> tuple[Path | None, dict[str, Any] | None]:
    """The earlier validate report of artifact ``name`` under [validate].baseline (an output folder or its
    validate/ folder): (its path, the report), or (None, None) when that run had no such artifact."""
    from edgelstm.validation.gates import load_baseline

    if p.validate.baseline is None:
        return None, None
    folder = p.resolve(p.validate.baseline)
    for path in (folder / "validate" / f"{name}.json", folder / f"{name}.json"):
        if path.is_file():
            return path, load_baseline(path)
    return None, None


def validate(ref_runner, artifact, val, gates: list[str], report_path: Path, p: Pipeline):
    from edgelstm.runners import open_runner
    from edgelstm.validation.gates import parse_gates
    from edgelstm.validation.reports.validate_json import report_dict, write_validate_report
    from edgelstm.validation.validate import ValidateOptions, validate_artifacts

    _, base = baseline_report(p, artifact.name)
    options = ValidateOptions(gates=tuple(parse_gates(gates)), baseline=base,
                              baseline_tolerance=p.validate.max_growth - 1.0)
    cand = open_runner(artifact.path)
    cand.label = str(artifact.path)
    try:
        result = validate_artifacts(ref_runner, cand, val, options)
        write_validate_report(result, report_path)
        drift = drift_by_length(ref_runner, cand, val)
    finally:
        cand.close()
    return [report_path], {"report": report_dict(result), "drift_by_length": drift}


def drift_by_length(ref, cand, dataset, *, samples: int = 64) -> dict[str, Any]:
    """rel_l2 of the candidate runner's output against the reference runner's when the sequence is cut at
    growing lengths: how drift accumulates along the recurrence (time steps)."""
    from edgelstm.artifacts.iospec import LENGTHS
    from edgelstm.data import with_default_state

    specs = {t.name: t for t in ref.io.inputs}
    n = min(samples, dataset.n)
    data = {k: np.take(v, np.arange(n), axis=dataset.axes.get(k, 0)) for k, v in dataset.inputs.items()
            if not (k in specs and specs[k].state)}
    seq_axes = {k: specs[k].seq_axis for k in data if k in specs and specs[k].seq_axis is not None}  # by role
    out_name = ref.io.outputs[0].name
    if not seq_axes:  # one step per call, or a fixed length: nothing to cut
        return {"output": out_name, "lengths": [], "rel_l2": []}
    full = min(int(data[k].shape[a]) for k, a in seq_axes.items())
    lengths = [t for t in DRIFT_LENGTHS if t <= full]
    if full not in lengths:
        lengths.append(full)
    rel = []
    for t in lengths:
        feeds = {k: np.ascontiguousarray(np.take(v, np.arange(t), axis=seq_axes[k])) if k in seq_axes else
                 (np.minimum(v, t) if k in specs and specs[k].role == LENGTHS else v) for k, v in data.items()}
        r = ref.run(with_default_state(ref.io, feeds))[out_name]
        c = cand.run(with_default_state(cand.io, feeds))[out_name]
        rel.append(float(np.linalg.norm(c - r) / max(np.linalg.norm(r), 1e-12)))
    return {"output": out_name, "lengths": lengths, "rel_l2": rel}


def bench(res, reference, path: Path, p: Pipeline):
    from edgelstm.latency import BenchGrid, BenchOptions, BenchTarget, TimingPolicy, bench_artifacts

    targets = [BenchTarget(reference, name="torch (eager)")]
    for a in res.artifacts:
        drift = res.validations.get(a.name, {}).get("outputs", {})
        rel = max((o.get("rel_l2", 0.0) for o in drift.values()), default=None)
        # stateful artifacts also time one step with the state carried, beside re-running the window
        targets.append(BenchTarget(a.path, extras={"drift": {"rel_l2": rel}} if rel is not None else {},
                                   stream=p.bench.stream and a.name == STATEFUL))
    grid = BenchGrid(batches=p.bench.batch, seqs=p.bench.seq, threads=p.bench.threads)
    opts = BenchOptions(policy=TimingPolicy(warmup=p.bench.warmup, iters=p.bench.iters), measure_memory=False,
                        batch_parallel=p.bench.batch_parallel)
    baseline = p.resolve(p.bench.baseline)
    data = bench_artifacts(targets, grid, opts, baseline=baseline, max_slowdown=p.bench.max_slowdown).to_dict()
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
    return [path], {"report": data}


def tensorrt_engines(p: Pipeline, res, step, say: Say) -> None:
    """FP32 and FP16 engines of the FP32 ONNX where TensorRT is installed (skipped, and said so, elsewhere)."""
    try:
        import tensorrt  # noqa: F401 - installed?
    except ImportError:
        res.skipped.append({"stage": "build (TensorRT)", "reason": "tensorrt is not installed here; the bundle "
                            "carries the ONNX and a build script for the device"})
        return
    from edgelstm.options import Precision

    src = res.out_dir / "model.onnx"
    for prec in ("fp32", "fp16"):
        eng = res.out_dir / f"model.{prec}.plan"
        material = {"onnx": sha256_file(src), "precision": prec, "seq": p.export.seq_len}

        def build(prec=prec, eng=eng):
            r = stages.build_engine(src, eng, stages.BuildOptions(precision=Precision(prec)))
            return [eng], {"precision": prec, "size_bytes": eng.stat().st_size, "path": str(r.path)}

        try:
            step(f"build {prec}", material, build, section="targets")
        except BackendMissing as exc:
            res.skipped.append({"stage": f"build {prec}", "reason": str(exc)})
            return
        res.artifacts.append(res.artifact(f"engine-{prec}", eng, prec))
