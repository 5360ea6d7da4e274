"""Streaming validation of a stateful candidate: feed it the sequence in chunks, carry its state outputs
(hn/cn) into its state inputs (h0/c0) between chunks, and compare what comes out with the reference's
full-sequence outputs. Outputs with a time axis are concatenated over the chunks; the others are taken
from the last chunk."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgelstm.artifacts.iospec import LENGTHS, STATE_INPUTS, STATE_OUTPUTS, STATE_PAIRS, IOSpec, TensorSpec, is_state
from edgelstm.errors import BadInput, opt
from edgelstm.validation.metrics import DriftAccumulator, worst_of
from edgelstm.validation.pairing import candidate_feeds, fixed_seq, time_axis


def plan_streaming(cand_io: IOSpec, compared: Sequence[str], ref_out_specs: Mapping[str, TensorSpec],
                   seq: int | None, *, enabled: bool = True) -> tuple[list[str], str | None]:
    """(the reference outputs to compare when streamed, a note saying why nothing is streamed or None)."""
    cand_state_in = [t.name for t in cand_io.inputs if is_state(t, STATE_INPUTS)]
    if not enabled or not cand_state_in:
        return [], None
    missing_carry = [n for n in cand_state_in if STATE_PAIRS.get(n) not in cand_io.output_names]
    if missing_carry:
        return [], f"not streamed: the candidate has no state output for {missing_carry}"
    if seq is None or seq < 2:
        return [], "not streamed: the sequence is shorter than 2 steps"
    data = [t for t in cand_io.inputs if not is_state(t, STATE_INPUTS)]
    if any(t.role == LENGTHS for t in data):
        return [], "not streamed: the candidate takes per-sample lengths (a packed batch is not cut into chunks)"
    if data and "seq" not in data[0].shape and len(data[0].shape) != 3:
        return [], f"not streamed: input {data[0].name!r} has no time axis (one step per call)"
    if fixed_seq(cand_io) is not None:
        return [], f"not streamed: the candidate has a fixed sequence length {fixed_seq(cand_io)}"
    return [r for r in compared if not is_state(ref_out_specs[r], STATE_OUTPUTS)], None


def chunk_plan(chunk_sizes: Sequence[int] | None, seq: int | None) -> list[int]:
    """The chunk sizes to stream with: the given ones (each >= 1), or 1 step and a quarter of the sequence."""
    if any(c < 1 for c in (chunk_sizes or ())):
        raise BadInput(f"{opt('chunks')} must be >= 1, got {list(chunk_sizes or ())}")
    return sorted({c for c in (chunk_sizes or (1, max(1, (seq or 1) // 4))) if c >= 1})


def stream_candidate(cand, dataset, in_map: Mapping[str, str], out_map: Mapping[str, str],
                     stream_outputs: Sequence[str], ref_keep: Sequence[Mapping[str, np.ndarray]],
                     chunk_sizes: Sequence[int], batch_size: int, stream_n: int,
                     ref_out_specs: Mapping[str, TensorSpec], tick: Callable[[], None]) -> dict[str, Any]:
    """Run the candidate chunk by chunk over the first ``stream_n`` samples for every chunk size and measure
    its drift against ``ref_keep`` (the reference's full-sequence outputs of those samples, per batch)."""
    sub = dataset.head(stream_n)
    data_name = next(iter(in_map))  # the candidate's data input
    by_chunk: dict[str, dict[str, Any]] = {}
    cand_specs = {t.name: t for t in cand.io.outputs}
    x_axis = next((t.seq_axis for t in cand.io.inputs if t.name == data_name), None)
    for cs in chunk_sizes:
        accs = {r: DriftAccumulator(time_axis(ref_out_specs[r])) for r in stream_outputs}
        for bi, batch in enumerate(sub.batches(batch_size)):
            feeds = candidate_feeds(batch, in_map, cand.io)
            x = feeds.pop(data_name)
            state = {k: v for k, v in feeds.items() if k in STATE_PAIRS}
            other = {k: v for k, v in feeds.items() if k not in STATE_PAIRS}
            pieces: dict[str, list[np.ndarray]] = {r: [] for r in stream_outputs}
            last: dict[str, np.ndarray] = {}
            t_axis = x_axis if x_axis is not None and x.ndim > x_axis else 1  # a seq-first input streams axis 0
            for start in range(0, x.shape[t_axis], cs):
                step = np.take(x, np.arange(start, min(x.shape[t_axis], start + cs)), axis=t_axis)
                out = cand.run({data_name: np.ascontiguousarray(step), **state, **other})
                state = {k: out[STATE_PAIRS[k]] for k in state}
                for r in stream_outputs:
                    last[r] = out[out_map[r]]
                    if time_axis(cand_specs.get(out_map[r])) is not None:
                        pieces[r].append(out[out_map[r]])
            for r in stream_outputs:
                axis = time_axis(cand_specs.get(out_map[r]))
                got = np.concatenate(pieces[r], axis=axis) if axis is not None else last[r]
                want = ref_keep[bi][r]
                if got.shape != want.shape:
                    raise BadInput(f"streaming: output {out_map[r]!r} has shape {list(got.shape)} after chunks of "
                                   f"{cs}, the reference {list(want.shape)}")
                accs[r].update(want, got)
            tick()
        by_chunk[str(cs)] = {r: accs[r].result() for r in stream_outputs}
    worst = {o: worst_of([by_chunk[str(cs)][o] for cs in chunk_sizes]) for o in by_chunk[str(chunk_sizes[0])]}
    return {"chunk_sizes": list(chunk_sizes), "samples": stream_n, "compared_to": "reference full-sequence outputs",
            "outputs": worst, "by_chunk": by_chunk}
