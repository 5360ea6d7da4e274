"""Validate a candidate artifact against a reference: run both on the same data, measure the drift of
every output, task metrics against labels, streaming drift for stateful candidates, and evaluate gates.

`validate_artifacts(reference, candidate, data, options) -> ValidationResult` is a pure stage: nothing is
printed and nothing exits; the CLI turns a failed result into exit code 1 after writing its reports.
How the candidate's I/O pairs with the reference's lives in ``pairing``, the chunked run of a stateful
candidate in ``streaming``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.artifacts.iospec import STATE_OUTPUTS, IOSpec, check_feeds, is_state
from edgelstm.errors import BadInput, opt
from edgelstm.options import check_float, check_int
from edgelstm.validation.gates import (DEFAULT_BASELINE_FLOOR, DEFAULT_BASELINE_TOLERANCE, Gate, GateResult,
                                       baseline_gates, evaluate_gates, resolve_gates)
from edgelstm.validation.baseline_pair import check_baseline_pair
from edgelstm.validation.metrics import DriftAccumulator, infer_task, per_step_summary, task_metrics
from edgelstm.validation.pairing import (candidate_feeds, check_labels_fit, feature_size, fixed_batch, fixed_seq,
                                         map_inputs, map_outputs, refuse_unused_torch_options, time_axis)
from edgelstm.validation.streaming import chunk_plan, plan_streaming, stream_candidate

REPORT_SCHEMA = "edgelstm.validate/1"

ProgressFn = Callable[[int, int], None]  # (done, total) work units (batches, streamed chunks included)

__all__ = ["DataRequest", "ValidateOptions", "ValidationResult", "validate_artifacts", "map_outputs",
           "artifact_target_isa", "isa_warning", "REPORT_SCHEMA"]


@dataclass(frozen=True)
class DataRequest:
    """Data to validate on, resolved against the reference's I/O spec: a file or `synthetic` samples."""

    path: str | Path | None = None
    synthetic: int | None = None
    seq: int = 16
    seed: int = 0
    window: int | None = None
    features: str | tuple[str | int, ...] | None = None
    target: str | int | None = None
    min_samples: int = 1
    stride: int = 1              # .csv windows: rows between starts, label horizon, sequence id column
    horizon: int = 0
    group: str | None = None

    def __post_init__(self) -> None:  # numbers first, before any file is read or any array is made
        check_int(self.seq, "seq")
        check_int(self.seed, "seed", minimum=0)
        check_int(self.window, "window", optional=True)
        check_int(self.min_samples, "min_samples")


@dataclass(frozen=True)
class ValidateOptions:
    gates: tuple[Gate, ...] = ()
    baseline: Mapping[str, Any] | None = None          # a previous report (edgelstm.validation.gates.load_baseline)
    baseline_tolerance: float = DEFAULT_BASELINE_TOLERANCE
    baseline_floor: float = DEFAULT_BASELINE_FLOOR
    batch_size: int = 32
    streaming: bool = True                             # stream stateful candidates chunk by chunk
    chunk_sizes: tuple[int, ...] | None = None         # default: 1 and seq // 4
    streaming_samples: int | None = 256                # stream at most this many samples (None: all)
    task: str | None = None                            # regression | classification | None (inferred)
    input_size: int | None = None                      # torch models whose input size cannot be inferred
    model_inputs: Any = None                           # torch models: edgelstm.models.inputs.InputOptions
    factory: str | None = None
    trust_pickle: bool = False
    threads: int | None = None
    reference_backend: str | None = None
    candidate_backend: str | None = None
    progress: ProgressFn | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_float(self.baseline_tolerance, "baseline_tolerance")
        check_float(self.baseline_floor, "baseline_floor")
        check_int(self.batch_size, "batch_size")
        check_int(self.threads, "threads", optional=True)
        check_int(self.input_size, "input_size", optional=True)
        check_int(self.streaming_samples, "streaming_samples", optional=True)
        for c in self.chunk_sizes or ():
            check_int(c, "chunks")


@dataclass
class ValidationResult:
    reference: str
    candidate: str
    samples: int
    passed: bool
    outputs: dict[str, dict[str, Any]]
    task: dict[str, Any]
    gates: list[GateResult]
    streaming: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        """The `--report` JSON (ARCHITECTURE.md's schema plus extras)."""
        d: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "reference": self.reference, "candidate": self.candidate, "samples": self.samples,
            "passed": self.passed, "outputs": self.outputs, "task": self.task,
            "gates": [g.to_dict() for g in self.gates],
            "failed_gates": [g.name for g in self.failed_gates],
        }
        if self.streaming is not None:
            d["streaming"] = self.streaming
        d.update(self.info)
        return d


# ------------------------------------------------------------------------------------------- helpers


def artifact_target_isa(runner: Any) -> str | None:
    """The CPU class an INT8 artifact was quantized for (its manifest), or None."""
    manifest = getattr(runner, "manifest", None)
    details = getattr(manifest, "details", None) or {}
    return details.get("target_isa")


def isa_warning(runner: Any, who: str, measured_on: str, *, what: str = "validated") -> str | None:
    """A warning when an INT8 artifact is measured on another CPU class than it targets."""
    from edgelstm.machine.isa import mismatch_warning

    target = artifact_target_isa(runner)
    name = Path(str(getattr(runner, "label", None) or who)).name
    details = getattr(getattr(runner, "manifest", None), "details", None)
    return mismatch_warning(name, target, measured_on, what=what, details=details)


def _is_runner(obj: Any) -> bool:
    return hasattr(obj, "run") and hasattr(obj, "io") and not isinstance(obj, (str, Path))


def _label(obj: Any, runner: Any) -> str:
    return str(obj) if isinstance(obj, (str, Path)) else getattr(runner, "label", type(obj).__name__)


def _with_fixed_shape_of(inputs: Any, other: Any) -> Any:
    """A torch model is also probed at the fixed (batch, seq) of the ONNX it is compared with (a static export of a
    fixed-shape model), so that it can be the reference of its own static export."""
    from dataclasses import replace

    if not isinstance(other, (str, Path)) or Path(other).suffix.lower() != ".onnx" or not Path(other).exists():
        return inputs
    try:
        from edgelstm.artifacts.artifact import io_spec_of

        spec = io_spec_of(other)
    except Exception:  # noqa: BLE001 - a bad candidate is reported when it is opened
        return inputs
    b, s = fixed_batch(spec), fixed_seq(spec)
    if b is None or s is None:
        return inputs
    return replace(inputs, fallback_points=tuple(inputs.fallback_points) + ((b, s),))


def _open(artifact: Any, *, backend: str | None, input_size: int | None, options: ValidateOptions, role: str,
          shape_from: Any = None):
    from edgelstm.runners.base import open_runner

    if _is_runner(artifact):
        return artifact, False
    try:
        inputs = options.model_inputs
        if shape_from is not None and inputs is not None:
            inputs = _with_fixed_shape_of(inputs, shape_from)
        return open_runner(artifact, backend=backend, threads=options.threads, input_size=input_size,
                           factory=options.factory, trust_pickle=options.trust_pickle, inputs=inputs), True
    except BadInput as exc:
        raise BadInput(f"{role}: {exc.raw_message}", hint=exc.raw_hint) from None


def _resolve_data(data: Any, ref_io: IOSpec, options: ValidateOptions):
    from edgelstm.data import Dataset, load_dataset, synthetic_dataset

    if isinstance(data, Dataset):
        return data
    if not isinstance(data, DataRequest):
        raise BadInput(f"data must be a Dataset or a DataRequest, got {type(data).__name__}")
    if data.path is not None and data.synthetic is not None:
        raise BadInput(f"give either {opt('data')} or {opt('synthetic')}, not both")
    if data.path is not None:
        return load_dataset(data.path, ref_io, window=data.window, features=data.features, target=data.target,
                            min_samples=data.min_samples, stride=data.stride, horizon=data.horizon, group=data.group)
    if data.synthetic is not None:
        if data.window is not None or data.features is not None or data.target is not None or data.group is not None:
            raise BadInput(f"{opt('window')}/{opt('features')}/{opt('target')}/{opt('group')} apply to {opt('data')} "
                           f"FILE.csv, not {opt('synthetic')}")
        return synthetic_dataset(ref_io, data.synthetic, seq=data.seq, seed=data.seed)
    raise BadInput(f"no data: pass {opt('data')} FILE (.npz/.npy/.csv) or {opt('synthetic')} N")


# ------------------------------------------------------------------------------------------- the stage


def validate_artifacts(reference: Any, candidate: Any, data: Any, options: ValidateOptions = ValidateOptions()) -> ValidationResult:
    """Run `reference` and `candidate` (paths to torch/ONNX/engine artifacts, nn.Modules or open runners)
    on `data` (an edgelstm.data.Dataset or a DataRequest) and compare them.

    Raises BadInput (before any inference) for data that does not fit the reference or the candidate,
    outputs that do not match, and gates that name unknown outputs or need labels/streaming this run
    lacks. Returns a ValidationResult whose `passed` is False when a gate failed."""
    from edgelstm.data import require_min_samples

    t0 = time.perf_counter()
    refuse_unused_torch_options(reference, candidate, options.model_inputs, options.input_size, options.factory)
    opened: list[Any] = []
    try:
        ref, own = _open(reference, backend=options.reference_backend, input_size=options.input_size,
                         options=options, role="reference", shape_from=candidate)
        if own:
            opened.append(ref)
        cand_size = options.input_size or feature_size(ref.io)
        cand, own = _open(candidate, backend=options.candidate_backend, input_size=cand_size, options=options,
                          role="candidate")
        if own:
            opened.append(cand)
        pair_warning = None if options.baseline is None else check_baseline_pair(
            options.baseline, _label(reference, ref), ref, _label(candidate, cand), cand)
        dataset = _resolve_data(data, ref.io, options)
        require_min_samples(dataset, max(1, getattr(data, "min_samples", 1)), what="validation data set")
        dataset = dataset.for_spec(ref.io)

        positional = getattr(ref, "backend", "") == "torch"
        out_map = map_outputs(ref.io, cand.io, positional_fallback=positional)
        in_map = map_inputs(ref.io, cand.io)
        notes: list[str] = []
        if any(r != c for r, c in out_map.items()):
            notes.append("outputs mapped by position (the torch reference has no output names): "
                         + ", ".join(f"{r}->{c}" for r, c in out_map.items()))

        # batch size: a static model fixes it
        fixed = {b for b in (fixed_batch(ref.io), fixed_batch(cand.io)) if b}
        if len(fixed) > 1:
            raise BadInput(f"the reference and the candidate have different fixed batch sizes {sorted(fixed)}")
        batch_size = fixed.pop() if fixed else int(options.batch_size)
        if batch_size < 1:
            raise BadInput(f"{opt('batch_size')} must be >= 1, got {batch_size}")
        drop_last = fixed_batch(ref.io) is not None or fixed_batch(cand.io) is not None
        if drop_last:
            require_min_samples(dataset, batch_size, what="validation data set (a static model's fixed batch)")
            used = dataset.n // batch_size * batch_size
            if used != dataset.n:
                notes.append(f"a static model takes batches of exactly {batch_size}: "
                             f"validated {used} of {dataset.n} samples")
                dataset = dataset.head(used)
        batches = dataset.batches(batch_size)

        # check the data against both specs before anything runs
        first = next(iter(batches))
        check_feeds(ref.io, first, what=f"data for the reference ({dataset.source})")
        check_feeds(cand.io, candidate_feeds(first, in_map, cand.io), what=f"data for the candidate ({dataset.source})")

        ref_out_specs = {t.name: t for t in ref.io.outputs}
        compared = list(out_map)
        task_output = next((n for n in compared if not is_state(ref_out_specs[n], STATE_OUTPUTS)), compared[0])
        task_kind = options.task or infer_task(dataset.labels, ref_out_specs[task_output].shape)
        if task_kind == "regression" and dataset.labels is None:
            task_kind = None  # regression metrics need labels; classification still gives agreement
        if task_kind and dataset.labels is not None:
            check_labels_fit(dataset.labels, dataset.n, ref_out_specs[task_output], task_kind)

        # streaming plan
        seq = dataset.seq
        stream_outputs, stream_note = plan_streaming(cand.io, compared, ref_out_specs, seq, enabled=options.streaming)
        if stream_note:
            notes.append(stream_note)

        gates = resolve_gates(options.gates, compared, task_kind=task_kind, task_output=task_output,
                              streaming_outputs=stream_outputs)

        chunk_sizes: list[int] = []
        stream_n = 0
        if stream_outputs:
            chunk_sizes = chunk_plan(options.chunk_sizes, seq)
            stream_n = dataset.n if options.streaming_samples is None else min(dataset.n, options.streaming_samples)
        stream_batches = -(-stream_n // batch_size) if stream_n else 0
        total = len(batches) + stream_batches * len(chunk_sizes)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if options.progress:
                options.progress(done, total)

        # main pass
        accs = {r: DriftAccumulator(time_axis(ref_out_specs[r])) for r in compared}
        ref_keep: list[dict[str, np.ndarray]] = []   # reference outputs of the streamed samples
        task_ref, task_cand = [], []
        seen = 0
        for batch in batches:
            r_out = ref.run(batch)
            c_out = cand.run(candidate_feeds(batch, in_map, cand.io))
            for r, c in out_map.items():
                if r not in r_out:
                    raise BadInput(f"the reference did not return output {r!r} (it returned {sorted(r_out)})")
                if c not in c_out:
                    raise BadInput(f"the candidate did not return output {c!r} (it returned {sorted(c_out)})")
                a, b = np.asarray(r_out[r]), np.asarray(c_out[c])
                if a.shape != b.shape:
                    raise BadInput(f"output {c!r}: the candidate returned shape {list(b.shape)}, the reference "
                                   f"{list(a.shape)}")
                accs[r].update(a, b)
            if task_kind:
                task_ref.append(np.asarray(r_out[task_output]))
                task_cand.append(np.asarray(c_out[out_map[task_output]]))
            if seen < stream_n:
                keep = stream_n - seen
                ref_keep.append({r: np.asarray(r_out[r])[:keep] for r in stream_outputs})
            seen += _batch_len(batch, dataset)
            tick()

        outputs = {}
        for r, acc in accs.items():
            m = acc.result()
            m["time_axis"] = acc.time_axis
            if acc.time_axis is not None:
                m["per_step_summary"] = per_step_summary(m["per_step_rmse"])
            outputs[r] = m

        task: dict[str, Any] = {}
        if task_kind:
            try:
                task = task_metrics(np.concatenate(task_ref), np.concatenate(task_cand), dataset.labels,
                                    task=task_kind)
            except ValueError as exc:
                raise BadInput(f"labels 'y' do not fit output {task_output!r}: {exc}") from None
            if task:
                task = {"output": task_output, **task}

        streaming = None
        if stream_outputs:
            streaming = stream_candidate(cand, dataset, in_map, out_map, stream_outputs, ref_keep, chunk_sizes, batch_size,
                                stream_n, ref_out_specs, tick)

        result_dict = {"outputs": outputs, "task": task, "streaming": streaming}
        gate_results = evaluate_gates(gates, result_dict)
        baseline_info = None
        if options.baseline is not None:
            b = baseline_gates(options.baseline, result_dict, tolerance=options.baseline_tolerance,
                               floor=options.baseline_floor)
            gate_results += b
            baseline_info = {"reference": options.baseline.get("reference"),
                             "candidate": options.baseline.get("candidate"),
                             "tolerance": options.baseline_tolerance, "floor": options.baseline_floor,
                             "compared": len(b)}
        passed = all(g.passed for g in gate_results)
        from edgelstm.machine.isa import isa_facts
        from edgelstm.artifacts.manifest import tool_versions

        info: dict[str, Any] = {
            "data": {"source": dataset.source, "samples": dataset.n, "seq": dataset.seq,
                     "labels": dataset.labels is not None, "batch_size": batch_size},
            "reference_info": {"backend": getattr(ref, "backend", None), "precision": getattr(ref, "precision", None),
                               "label": getattr(ref, "label", None), "io": ref.io.to_dict()},
            "candidate_info": {"backend": getattr(cand, "backend", None),
                               "precision": getattr(cand, "precision", None),
                               "label": getattr(cand, "label", None), "io": cand.io.to_dict()},
            "output_map": out_map, "notes": notes, "seconds": round(time.perf_counter() - t0, 3),
            "versions": tool_versions(),
        }
        if baseline_info:
            info["baseline"] = baseline_info
        info["machine"] = isa_facts()
        warnings = [w for w in (isa_warning(r, label, str(info["machine"]["isa"]))
                                for r, label in ((ref, "the reference"), (cand, "the candidate"))) if w]
        warnings += [pair_warning] if pair_warning else []
        warnings += [w for r in (ref, cand) for w in getattr(r, "warnings", ())]  # lengths outside the verified range, a level the file does not allow
        if warnings:
            info["warnings"] = warnings
        return ValidationResult(_label(reference, ref), _label(candidate, cand), dataset.n, passed, outputs, task,
                                gate_results, streaming, info)
    finally:
        for r in opened:
            try:
                r.close()
            except Exception:  # noqa: BLE001 - closing never hides the real result
                pass


def _batch_len(batch: Mapping[str, np.ndarray], dataset) -> int:
    for name, a in batch.items():
        return int(np.shape(a)[dataset.axes.get(name, 0)])
    return 0

