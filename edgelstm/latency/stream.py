"""Streaming: the per-step latency of a stateful artifact (one time step in, the recurrent state carried
from hn/cn back into h0/c0), to be reported beside the cost of re-running the whole window for one new
sample.

For onnxruntime the step runs through two pre-built IO bindings that ping-pong between two pairs of
state buffers, so no array is copied or re-bound between steps; any other runner carries the state
through `run`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from edgelstm.errors import BadInput, opt
from edgelstm.artifacts.iospec import STATE_PAIRS, IOSpec, TensorSpec
from edgelstm.latency.adapters import FastPath, cast_ort_feeds, ort_device

STATEFUL_HINT = "export a stateful artifact with `edgelstm convert MODEL --stateful -o model.stateful.onnx`"


def state_pairs(io: IOSpec) -> list[tuple[str, str]]:
    """(state input, matching state output) pairs: h0->hn, c0->cn."""
    outs = set(io.output_names)
    pairs = []
    for t in io.state_inputs:
        out = STATE_PAIRS.get(t.name)
        if out is not None and out in outs:
            pairs.append((t.name, out))
    return pairs


def check_streamable(io: IOSpec, artifact: str) -> None:
    pairs = state_pairs(io)
    if not pairs:
        raise BadInput(f"{opt('stream')} needs a stateful artifact (state inputs h0/c0, outputs hn/cn); {artifact} has "
                       f"inputs {io.input_names}", hint=STATEFUL_HINT)


def state_shape(spec: TensorSpec, batch: int, details: Mapping[str, Any] | None = None) -> tuple[int, ...]:
    """[layers*dirs, batch, hidden] with the batch axis (symbolic, or axis 1) set to `batch`."""
    shape = list(spec.shape)
    if len(shape) != 3:
        raise BadInput(f"state input {spec.name!r} has shape {shape}; expected [layers, batch, hidden]")
    state = dict((details or {}).get("state") or {})
    out = []
    for axis, d in enumerate(shape):
        if axis == 1:
            out.append(int(batch))
        elif isinstance(d, int) and d > 0:
            out.append(d)
        elif axis == 0 and state.get("layers"):
            out.append(int(state["layers"]))
        elif axis == 2 and state.get("hidden_size"):
            out.append(int(state["hidden_size"]))
        else:
            raise BadInput(f"cannot tell the size of axis {axis} of state input {spec.name!r} (shape {shape})")
    return tuple(out)


def zero_state(io: IOSpec, batch: int, details: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    return {t.name: np.zeros(state_shape(t, batch, details), np.float32) for t in io.state_inputs}


def step_path(runner: Any, x_step: np.ndarray, state0: Mapping[str, np.ndarray]) -> FastPath:
    """A callable that runs one step and carries the state into the next call."""
    from edgelstm.options import Backend
    from edgelstm.runners.contract import as_runner

    runner = as_runner(runner)
    io: IOSpec = runner.io
    pairs = state_pairs(io)
    x_name = io.data_inputs[0].name
    if runner.backend == Backend.onnxruntime and runner.session is not None and runner.bind is None:
        return _ort_pingpong(runner.session, x_name, x_step, state0, pairs)
    state = {k: np.array(v) for k, v in state0.items()}

    def call():
        out = runner.run({x_name: x_step, **state})
        for si, so in pairs:
            state[si] = out[so]
        return out

    call.state = state  # type: ignore[attr-defined]  # for tests: the carried state
    return FastPath("run-carry-state", call, copies_included=True)  # run(): numpy in/out, H2D/D2H on a GPU


def _ort_pingpong(session, x_name: str, x_step: np.ndarray, state0: Mapping[str, np.ndarray],
                  pairs: list[tuple[str, str]]) -> FastPath:
    import onnxruntime as ort

    device, device_id = ort_device(session)
    cast = cast_ort_feeds(session, {x_name: x_step, **state0})
    to_value = lambda a: ort.OrtValue.ortvalue_from_numpy(np.array(a), device, device_id)  # noqa: E731
    x_value = to_value(cast[x_name])
    state_ins = {si for si, _ in pairs}
    # other inputs (a decoder's encoder outputs): bound once, the same for every step
    others = {n: to_value(a) for n, a in cast.items() if n != x_name and n not in state_ins}
    buffers = [{si: to_value(cast[si]) for si, _ in pairs}, {si: to_value(cast[si]) for si, _ in pairs}]
    state_outs = {so for _, so in pairs}
    bindings = []
    for k in (0, 1):
        b = session.io_binding()
        b.bind_ortvalue_input(x_name, x_value)
        for n, v in others.items():
            b.bind_ortvalue_input(n, v)
        for si, so in pairs:
            b.bind_ortvalue_input(si, buffers[k][si])
            b.bind_ortvalue_output(so, buffers[1 - k][si])
        for o in session.get_outputs():
            if o.name not in state_outs:
                b.bind_output(o.name, device, device_id)
        bindings.append(b)
    flip = [0]

    def call(_bindings=bindings, _keep=(x_value, buffers, others)):
        session.run_with_iobinding(_bindings[flip[0]])
        flip[0] ^= 1

    def current_state() -> dict[str, np.ndarray]:
        return {si: buffers[flip[0]][si].numpy() for si, _ in pairs}

    call.current_state = current_state  # type: ignore[attr-defined]
    return FastPath("ort-iobinding-pingpong" + ("-cuda" if device != "cpu" else ""), call)
