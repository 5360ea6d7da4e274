"""The plan step of `validate` (plan -> run -> compare -> gate): with both runners open and the data resolved,
decide everything before anything runs. How outputs and inputs pair, the batch size (a static model fixes it),
the data checked against both I/O specs, the task metrics to compute, which outputs are streamed and with what
chunks, and the gates resolved against all of it. Every mismatch is BadInput here, before any inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from edgelstm.artifacts.iospec import STATE_OUTPUTS, TensorSpec, check_feeds, is_state
from edgelstm.errors import BadInput, opt
from edgelstm.options import Backend
from edgelstm.runners.contract import RunnerBase
from edgelstm.validation.gates import Gate, resolve_gates
from edgelstm.validation.metrics import infer_task
from edgelstm.validation.pairing import (candidate_feeds, check_labels_fit, fixed_batch, map_inputs, map_outputs)
from edgelstm.validation.streaming import chunk_plan, plan_streaming


@dataclass
class ValidationPlan:
    """What one validation will run and compare (see the module docstring)."""

    ref: RunnerBase
    cand: RunnerBase
    dataset: Any                                   # edgelstm.data.Dataset, cut to the fixed batch when static
    batch_size: int
    batches: Any                                   # the dataset's batches of batch_size
    out_map: dict[str, str]                        # reference output -> candidate output
    in_map: dict[str, str]                         # reference input -> candidate input
    ref_out_specs: dict[str, TensorSpec]
    task_output: str
    task_kind: str | None                          # regression | classification | None (no task metrics)
    stream_outputs: list[str]
    chunk_sizes: list[int]
    stream_n: int                                  # samples streamed chunk by chunk
    gates: list[Gate]
    notes: list[str] = field(default_factory=list)

    @property
    def compared(self) -> list[str]:
        return list(self.out_map)

    @property
    def work_units(self) -> int:
        """Batches of the main pass plus streamed batches per chunk size (for the progress bar)."""
        stream_batches = -(-self.stream_n // self.batch_size) if self.stream_n else 0
        return len(self.batches) + stream_batches * len(self.chunk_sizes)


def plan_validation(ref: RunnerBase, cand: RunnerBase, dataset: Any, options: Any) -> ValidationPlan:
    """The plan of validating ``cand`` against ``ref`` on ``dataset`` (already fitted to the reference's spec) under
    ``options`` (a ValidateOptions)."""
    notes: list[str] = []
    out_map, in_map = _pair_io(ref, cand, notes)
    dataset, batch_size = _batching(dataset, ref, cand, int(options.batch_size), notes)
    batches = dataset.batches(batch_size)
    first = next(iter(batches))  # the data against both specs before anything runs
    check_feeds(ref.io, first, what=f"data for the reference ({dataset.source})")
    check_feeds(cand.io, candidate_feeds(first, in_map, cand.io), what=f"data for the candidate ({dataset.source})")
    ref_out_specs = {t.name: t for t in ref.io.outputs}
    task_output, task_kind = _task(dataset, list(out_map), ref_out_specs, options.task)
    stream_outputs, stream_note = plan_streaming(cand.io, list(out_map), ref_out_specs, dataset.seq,
                                                 enabled=options.streaming)
    if stream_note:
        notes.append(stream_note)
    gates = resolve_gates(options.gates, list(out_map), task_kind=task_kind, task_output=task_output,
                          streaming_outputs=stream_outputs)
    chunk_sizes, stream_n = [], 0
    if stream_outputs:
        chunk_sizes = chunk_plan(options.chunk_sizes, dataset.seq)
        stream_n = dataset.n if options.streaming_samples is None else min(dataset.n, options.streaming_samples)
    return ValidationPlan(ref, cand, dataset, batch_size, batches, out_map, in_map, ref_out_specs, task_output,
                          task_kind, stream_outputs, chunk_sizes, stream_n, gates, notes)


def _pair_io(ref: RunnerBase, cand: RunnerBase, notes: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Outputs and inputs of the candidate paired with the reference's (by position when a torch reference has
    no output names, which the report notes)."""
    out_map = map_outputs(ref.io, cand.io, positional_fallback=ref.backend == Backend.torch)
    in_map = map_inputs(ref.io, cand.io)
    if any(r != c for r, c in out_map.items()):
        notes.append("outputs mapped by position (the torch reference has no output names): "
                     + ", ".join(f"{r}->{c}" for r, c in out_map.items()))
    return out_map, in_map


def _batching(dataset: Any, ref: RunnerBase, cand: RunnerBase, asked: int, notes: list[str]) -> tuple[Any, int]:
    """The batch size (a static model fixes it) and the dataset cut to whole batches when one does."""
    from edgelstm.data import require_min_samples

    fixed = {b for b in (fixed_batch(ref.io), fixed_batch(cand.io)) if b}
    if len(fixed) > 1:
        raise BadInput(f"the reference and the candidate have different fixed batch sizes {sorted(fixed)}")
    batch_size = fixed.pop() if fixed else asked
    if batch_size < 1:
        raise BadInput(f"{opt('batch_size')} must be >= 1, got {batch_size}")
    if fixed_batch(ref.io) is not None or fixed_batch(cand.io) is not None:
        require_min_samples(dataset, batch_size, what="validation data set (a static model's fixed batch)")
        used = dataset.n // batch_size * batch_size
        if used != dataset.n:
            notes.append(f"a static model takes batches of exactly {batch_size}: "
                         f"validated {used} of {dataset.n} samples")
            dataset = dataset.head(used)
    return dataset, batch_size


def _task(dataset: Any, compared: list[str], ref_out_specs: Mapping[str, TensorSpec],
          asked: str | None) -> tuple[str, str | None]:
    """(the output task metrics are computed on: the first that is not recurrent state, the task kind or None)."""
    task_output = next((n for n in compared if not is_state(ref_out_specs[n], STATE_OUTPUTS)), compared[0])
    task_kind = asked or infer_task(dataset.labels, ref_out_specs[task_output].shape)
    if task_kind == "regression" and dataset.labels is None:
        task_kind = None  # regression metrics need labels; classification still gives agreement
    if task_kind and dataset.labels is not None:
        check_labels_fit(dataset.labels, dataset.n, ref_out_specs[task_output], task_kind)
    return task_output, task_kind


def batch_len(batch: Mapping[str, np.ndarray], dataset: Any) -> int:
    """The number of samples in one batch (along each input's batch axis)."""
    for name, a in batch.items():
        return int(np.shape(a)[dataset.axes.get(name, 0)])
    return 0


__all__ = ["ValidationPlan", "plan_validation", "batch_len"]
