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


from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput, opt
from edgelstm.options import check_float, check_int
from edgelstm.runners.contract import RunnerBase, RunnerPrecision, as_runner, is_runner
from edgelstm.validation.gates import DEFAULT_BASELINE_FLOOR, DEFAULT_BASELINE_TOLERANCE, Gate, GateResult
from edgelstm.validation.baseline_pair import check_baseline_pair
from edgelstm.validation.pairing import (feature_size, fixed_batch, fixed_seq, map_outputs,  # noqa: F401
                                         refuse_unused_torch_options)

REPORT_SCHEMA = "edgelstm.validate/1"

ProgressFn = Callable[[int, int], None]  # (done, total) work units (batches, streamed chunks included)

__all__ = ["DataRequest", "ValidateOptions", "ValidationResult", "RunnerInfo", "validate_artifacts", "map_outputs",
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
    batch_parallel: bool = False                       # run the candidate batch-parallel (edgelstm.runners.batch_parallel)
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

    def to_json(self) -> dict[str, Any]:
        """The `--report` JSON (the report schema plus extras)."""
        return self.to_dict()

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
    return as_runner(runner).target_isa


def isa_warning(runner: Any, who: str, measured_on: str, *, what: str = "validated") -> str | None:
    """A warning when an INT8 artifact is measured on another CPU class than it targets."""
    from edgelstm.machine.isa import mismatch_warning

    runner = as_runner(runner)
    name = Path(str(runner.label or who)).name
    return mismatch_warning(name, runner.target_isa, measured_on, what=what,
                            details=runner.manifest.details if runner.manifest is not None else None)


def _label(obj: Any, runner: RunnerBase) -> str:
    return str(obj) if isinstance(obj, (str, Path)) else runner.label


@dataclass(frozen=True)
class RunnerInfo:
    """One side of a validation as the report describes it (`reference_info`, `candidate_info`)."""

    backend: str
    precision: RunnerPrecision
    label: str
    io: IOSpec

    @classmethod
    def of(cls, runner: RunnerBase) -> "RunnerInfo":
        return cls(runner.backend, runner.precision, runner.label, runner.io)

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "precision": self.precision, "label": self.label, "io": self.io.to_dict()}


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
          shape_from: Any = None, batch_parallel: bool = False):
    from edgelstm.runners.base import open_runner

    if is_runner(artifact):
        return as_runner(artifact), False
    try:
        inputs = options.model_inputs
        if shape_from is not None and inputs is not None:
            inputs = _with_fixed_shape_of(inputs, shape_from)
        if batch_parallel:
            return open_runner(artifact, backend=backend, threads=options.threads, batch_parallel=True), True
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
    on `data` (an edgelstm.data.Dataset or a DataRequest) and compare them: plan -> run -> compare -> gate.

    Raises BadInput (before any inference) for data that does not fit the reference or the candidate,
    outputs that do not match, and gates that name unknown outputs or need labels/streaming this run
    lacks. Returns a ValidationResult whose `passed` is False when a gate failed."""
    from edgelstm.data import require_min_samples
    from edgelstm.validation.validate_plan import plan_validation
    from edgelstm.validation.validate_run import compare, gate, run_pass

    t0 = time.perf_counter()
    refuse_unused_torch_options(reference, candidate, options.model_inputs, options.input_size, options.factory)
    opened: list[RunnerBase] = []
    try:
        ref, cand = _open_pair(reference, candidate, options, opened)
        pair_warning = None if options.baseline is None else check_baseline_pair(
            options.baseline, _label(reference, ref), ref, _label(candidate, cand), cand)
        dataset = _resolve_data(data, ref.io, options)
        require_min_samples(dataset, max(1, data.min_samples if isinstance(data, DataRequest) else 1),
                            what="validation data set")
        plan = plan_validation(ref, cand, dataset.for_spec(ref.io), options)
        tick = _ticker(plan.work_units, options.progress)
        measured = compare(plan, run_pass(plan, tick), tick)
        gated = gate(plan, measured, options)
        info = _info(plan, gated, time.perf_counter() - t0, pair_warning)
        return ValidationResult(_label(reference, ref), _label(candidate, cand), plan.dataset.n, gated.passed,
                                measured.outputs, measured.task, gated.results, measured.streaming, info)
    finally:
        for r in opened:
            try:
                r.close()
            except Exception:  # noqa: BLE001 - closing never hides the real result
                pass


def _open_pair(reference: Any, candidate: Any, options: ValidateOptions,
               opened: list[RunnerBase]) -> tuple[RunnerBase, RunnerBase]:
    """Both sides as runners (the candidate's torch input size taken from the reference); the ones opened here
    are added to ``opened`` as they open, for the caller to close."""
    ref, own = _open(reference, backend=options.reference_backend, input_size=options.input_size,
                     options=options, role="reference", shape_from=candidate)
    if own:
        opened.append(ref)
    cand, own = _open(candidate, backend=options.candidate_backend,
                      input_size=options.input_size or feature_size(ref.io), options=options, role="candidate",
                      batch_parallel=options.batch_parallel)
    if own:
        opened.append(cand)
    return ref, cand


def _ticker(total: int, progress: ProgressFn | None) -> Callable[[], None]:
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    return tick


def _info(plan: Any, gated: Any, seconds: float, pair_warning: str | None) -> dict[str, Any]:
    """The report's extras: data, both sides, output map, notes, time, versions, baseline, machine, warnings."""
    from edgelstm.artifacts.manifest import tool_versions
    from edgelstm.machine.isa import isa_facts

    dataset, ref, cand = plan.dataset, plan.ref, plan.cand
    info: dict[str, Any] = {
        "data": {"source": dataset.source, "samples": dataset.n, "seq": dataset.seq,
                 "labels": dataset.labels is not None, "batch_size": plan.batch_size},
        "reference_info": RunnerInfo.of(ref).to_json(), "candidate_info": RunnerInfo.of(cand).to_json(),
        "output_map": plan.out_map, "notes": plan.notes, "seconds": round(seconds, 3), "versions": tool_versions(),
    }
    if gated.baseline:
        info["baseline"] = gated.baseline
    info["machine"] = isa_facts()
    warnings = [w for w in (isa_warning(r, label, str(info["machine"]["isa"]))
                            for r, label in ((ref, "the reference"), (cand, "the candidate"))) if w]
    warnings += [pair_warning] if pair_warning else []
    warnings += [w for r in (ref, cand) for w in r.warnings]  # lengths outside the verified range, a level the file does not allow
    if warnings:
        info["warnings"] = warnings
    return info
