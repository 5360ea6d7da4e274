"""The run, compare and gate steps of `validate` (plan -> run -> compare -> gate), each on a ValidationPlan:
run both runners batch by batch accumulating drift, turn the accumulators (and task outputs, and the streamed
chunks) into the report's measurements, and evaluate the gates (and a baseline's) on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.validation.gates import GateResult, baseline_gates, evaluate_gates
from edgelstm.validation.metrics import DriftAccumulator, per_step_summary, task_metrics
from edgelstm.validation.pairing import candidate_feeds, time_axis
from edgelstm.validation.streaming import stream_candidate
from edgelstm.validation.validate_plan import ValidationPlan, batch_len


@dataclass
class MainPass:
    """What the full-sequence pass leaves: drift per compared output, the task output of both sides, and the
    reference outputs of the samples the streaming pass will compare against."""

    drift: dict[str, DriftAccumulator]
    task_ref: list[np.ndarray] = field(default_factory=list)
    task_cand: list[np.ndarray] = field(default_factory=list)
    ref_keep: list[dict[str, np.ndarray]] = field(default_factory=list)


@dataclass
class Measured:
    """The measurements gates are evaluated on (the report's `outputs`, `task` and `streaming`)."""

    outputs: dict[str, dict[str, Any]]
    task: dict[str, Any]
    streaming: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"outputs": self.outputs, "task": self.task, "streaming": self.streaming}


def run_pass(plan: ValidationPlan, tick: Callable[[], None]) -> MainPass:
    """Both runners on every batch; drift accumulated per output (shapes checked), one tick per batch."""
    main = MainPass({r: DriftAccumulator(time_axis(plan.ref_out_specs[r])) for r in plan.compared})
    seen = 0
    for batch in plan.batches:
        r_out = plan.ref.run(batch)
        c_out = plan.cand.run(candidate_feeds(batch, plan.in_map, plan.cand.io))
        for r, c in plan.out_map.items():
            a, b = _output_pair(r_out, c_out, r, c)
            main.drift[r].update(a, b)
        if plan.task_kind:
            main.task_ref.append(np.asarray(r_out[plan.task_output]))
            main.task_cand.append(np.asarray(c_out[plan.out_map[plan.task_output]]))
        if seen < plan.stream_n:
            keep = plan.stream_n - seen
            main.ref_keep.append({r: np.asarray(r_out[r])[:keep] for r in plan.stream_outputs})
        seen += batch_len(batch, plan.dataset)
        tick()
    return main


def _output_pair(r_out: Mapping[str, Any], c_out: Mapping[str, Any], r: str, c: str) -> tuple[np.ndarray, np.ndarray]:
    if r not in r_out:
        raise BadInput(f"the reference did not return output {r!r} (it returned {sorted(r_out)})")
    if c not in c_out:
        raise BadInput(f"the candidate did not return output {c!r} (it returned {sorted(c_out)})")
    a, b = np.asarray(r_out[r]), np.asarray(c_out[c])
    if a.shape != b.shape:
        raise BadInput(f"output {c!r}: the candidate returned shape {list(b.shape)}, the reference {list(a.shape)}")
    return a, b


def compare(plan: ValidationPlan, main: MainPass, tick: Callable[[], None]) -> Measured:
    """Drift per output, task metrics against the labels, and the candidate streamed chunk by chunk."""
    outputs = {}
    for r, acc in main.drift.items():
        m = acc.result()
        m["time_axis"] = acc.time_axis
        if acc.time_axis is not None:
            m["per_step_summary"] = per_step_summary(m["per_step_rmse"])
        outputs[r] = m
    task: dict[str, Any] = {}
    if plan.task_kind:
        try:
            task = task_metrics(np.concatenate(main.task_ref), np.concatenate(main.task_cand), plan.dataset.labels,
                                task=plan.task_kind)
        except ValueError as exc:
            raise BadInput(f"labels 'y' do not fit output {plan.task_output!r}: {exc}") from None
        if task:
            task = {"output": plan.task_output, **task}
    streaming = None
    if plan.stream_outputs:
        streaming = stream_candidate(plan.cand, plan.dataset, plan.in_map, plan.out_map, plan.stream_outputs,
                                     main.ref_keep, plan.chunk_sizes, plan.batch_size, plan.stream_n,
                                     plan.ref_out_specs, tick)
    return Measured(outputs, task, streaming)


@dataclass
class Gated:
    """The gates' verdicts, and what the baseline gates compared (None without a baseline)."""

    results: list[GateResult]
    baseline: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.results)


def gate(plan: ValidationPlan, measured: Measured, options: Any) -> Gated:
    """The plan's gates on the measurements, then the baseline's (drift grown beyond tolerance) when one is given."""
    result_dict = measured.to_json()
    results = evaluate_gates(plan.gates, result_dict)
    if options.baseline is None:
        return Gated(results)
    b = baseline_gates(options.baseline, result_dict, tolerance=options.baseline_tolerance,
                       floor=options.baseline_floor)
    return Gated(results + b, {"reference": options.baseline.get("reference"),
                               "candidate": options.baseline.get("candidate"),
                               "tolerance": options.baseline_tolerance, "floor": options.baseline_floor,
                               "compared": len(b)})


__all__ = ["MainPass", "Measured", "Gated", "run_pass", "compare", "gate"]
