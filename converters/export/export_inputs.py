"""What an export feeds the exporter and the verifier: the model's input contract (``edgelstm.models.calling``)
turned into ONNX input/output names, dynamic axes by real axis role (a seq-first input is ``[seq, batch, F]``),
example arguments, seeded feeds for any batch and length (token ids within their range, ragged ``lengths``), the
torch reference, and the streaming check of a model whose forward takes its recurrent state.

``pack_padded_sequence`` models: the TorchScript exporter maps a packed LSTM/GRU to the ONNX op's
``sequence_lens`` only when the packed output is unpacked again; ``packed_rnn_shim`` makes that so for models that
read only the final state (a forward hook adds zero times the unpacked output), numerically a no-op."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np

from edgelstm.artifacts.feeds import random_feeds
from edgelstm.artifacts.iospec import LENGTHS, IOSpec, TensorSpec
from edgelstm.errors import BadInput, opt, require_torch
from edgelstm.models.calling import ModelCall, flatten_outputs, resolve_call
from edgelstm.models.inputs import InputOptions, StateArg


def input_options(options: Any) -> InputOptions:
    """The InputOptions an ExportOptions asks for (``--static`` fixes batch and seq at the example values)."""
    return InputOptions(tuple(getattr(options, "inputs", ()) or ()), options.input_size,
                        getattr(options, "state_arg", None),
                        (options.batch, options.seq_len) if options.static else None)


def resolve_export_call(module, options: Any) -> ModelCall:
    return resolve_call(module, input_options(options))


@dataclass
class ExportInputs:
    """One export candidate's inputs and outputs. ``module`` takes ``in_names`` positionally and returns a tuple
    in ``out_names`` order."""

    module: Any
    io: IOSpec
    state: StateArg | None           # the forward's own state argument (streamed by ``verify_streaming``)
    static: bool

    @property
    def in_names(self) -> list[str]:
        return self.io.input_names

    @property
    def out_names(self) -> list[str]:
        return self.io.output_names

    @property
    def state_out(self) -> list[str]:
        return [t.name for t in self.io.outputs if t.state]

    @property
    def has_lengths(self) -> bool:
        return any(t.role == LENGTHS for t in self.io.inputs)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]] | None:
        if self.static:
            return None
        axes: dict[str, dict[int, str]] = {}
        for t in (*self.io.inputs, *self.io.outputs):
            named = {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
            if t.state and len(t.shape) == 3 and not isinstance(t.shape[1], int):
                named = {1: "batch"}
            if named:
                axes[t.name] = named
        return axes

    @property
    def seq_axes(self) -> dict[str, int]:
        return {t.name: t.shape.index("seq") for t in self.io.outputs if "seq" in t.shape}

    def feeds(self, rng: np.random.Generator, batch: int, seq: int, *, zero_state: bool = False) -> dict[str, np.ndarray]:
        return random_feeds(self.io, batch, seq, rng, random_state=not zero_state)

    def args(self, feeds: dict[str, np.ndarray]) -> tuple:
        torch = require_torch()
        return tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.in_names)

    def torch_fn(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = require_torch()
        with torch.no_grad():
            outs = flatten_outputs(self.module(*self.args(feeds)))
        return [o.numpy() for o in outs]

    def details(self, call: ModelCall) -> dict[str, Any]:
        d: dict[str, Any] = {"inputs": [t.describe() for t in self.io.inputs]}
        if self.state is not None:
            d["state_argument"] = self.state.to_dict()
        if call.contract.notes:
            d["notes"] = list(call.contract.notes)
        if call.fixed:
            d["fixed_shape"] = True
        return d

    def manifest_io(self, onnx_io: IOSpec) -> IOSpec:
        """The spec the manifest records: the contract's names, dtypes, roles, ranges and symbolic axes, with the
        dims the ONNX file fixed (a static export) and only the tensors the file really has."""
        mine = {t.name: t for t in (*self.io.inputs, *self.io.outputs)}

        def merge(t: TensorSpec) -> TensorSpec:
            m = mine.get(t.name)
            if m is None or len(m.shape) != len(t.shape):
                return replace(t, state=t.state or t.name in self.state_out)
            dims = tuple(o if isinstance(o, int) and o > 0 and not isinstance(d, int) else d
                         for d, o in zip(m.shape, t.shape))
            return replace(m, shape=dims, dtype=t.dtype)

        return IOSpec(tuple(merge(t) for t in onnx_io.inputs), tuple(merge(t) for t in onnx_io.outputs))

    # -- streaming a forward(input, hidden) model ------------------------------------------------------
    def verify_streaming(self, ort_fn: Callable[[dict], list[np.ndarray]], rng: np.random.Generator, seq_len: int,
                         tol) -> list:
        """onnxruntime fed in chunks (state carried) against torch on the whole sequence; a model without a time
        axis (one step per call) is run step by step in both, each carrying its own state."""
        from edgelstm.converters.export.onnx_verify import CheckResult, compare

        if self.state is None or self.has_lengths:
            return []
        pairs = list(zip(self.state.in_names, self.state.out_names))
        names = self.out_names
        seq_inputs = {t.name: t.shape.index("seq") for t in self.io.data_inputs if "seq" in t.shape}
        batch, checks = 2, []
        if not seq_inputs:  # one step per call
            state_t = {i: np.zeros_like(v) for i, v in self.feeds(rng, batch, 1, zero_state=True).items()
                       if i in self.state.in_names}
            state_o = dict(state_t)
            steps = 4
            for step in range(steps):
                feeds = {k: v for k, v in self.feeds(rng, batch, 1).items() if k not in state_t}
                ref = self.torch_fn({**feeds, **state_t})
                try:
                    got = ort_fn({**feeds, **state_o})
                except Exception as exc:  # noqa: BLE001
                    checks.append(CheckResult(f"stream step {step + 1}/{steps}", False,
                                              detail=f"onnxruntime failed: {str(exc).splitlines()[0][:200]}"))
                    return checks
                checks.append(compare(f"stream step {step + 1}/{steps} batch={batch}", ref, got, names, tol))
                state_t = {i: ref[names.index(o)] for i, o in pairs}
                state_o = {i: got[names.index(o)] for i, o in pairs}
            return checks
        total = 2 * seq_len + 1
        full = self.feeds(rng, batch, total, zero_state=True)
        zero = {i: full[i] for i in self.state.in_names}
        for chunk in sorted({1, max(2, seq_len // 3)}):
            checks.append(verify_chunked(self.torch_fn, ort_fn, full, seq_inputs, zero, pairs, names, chunk, tol))
        return checks


def verify_chunked(torch_fn: Callable[[dict], list[np.ndarray]], ort_fn: Callable[[dict], list[np.ndarray]],
                   full: dict[str, np.ndarray], seq_inputs: dict[str, int], state: dict[str, np.ndarray],
                   pairs: list[tuple[str, str]], names: list[str], chunk: int, tol):
    """torch and onnxruntime each fed ``full`` chunk by chunk (``seq_inputs``: the inputs cut along their seq
    axis), each carrying its own state (``pairs``: state input <- output); every chunk's outputs are compared as
    they are. No output is assumed to have a time axis (``decoded.view(-1, vocab)`` folds time into batch)."""
    from edgelstm.converters.export.onnx_verify import CheckResult, compare

    total = max(np.shape(full[n])[a] for n, a in seq_inputs.items())
    name = f"stream chunk={chunk} seq={total}"
    state_t, state_o = dict(state), dict(state)
    worst = None
    for start in range(0, total, chunk):
        feeds = dict(full)
        for n, axis in seq_inputs.items():
            feeds[n] = np.ascontiguousarray(np.take(full[n], range(start, min(total, start + chunk)), axis=axis))
        ref = torch_fn({**feeds, **state_t})
        try:
            got = ort_fn({**feeds, **state_o})
        except Exception as exc:  # noqa: BLE001
            return CheckResult(name, False, detail=f"onnxruntime failed at step {start}: {str(exc).splitlines()[0][:200]}")
        check = compare(f"{name} at step {start}", ref, got, names, tol)
        if not check.passed:
            return check
        worst = check if worst is None or check.ratio > worst.ratio else worst
        state_t = {i: ref[names.index(o)] for i, o in pairs}
        state_o = {i: got[names.index(o)] for i, o in pairs}
    return CheckResult(name, True, worst.max_abs, "", worst.rel_l2, worst.ratio) if worst else CheckResult(name, True)


def prepare(call: ModelCall, candidate_module, *, stateful: bool, static: bool) -> ExportInputs:
    """The inputs of one export candidate (the model itself, or a lifted / scripted form of it)."""
    if call.contract.state is not None:
        return ExportInputs(call.with_module(candidate_module).as_module(), call.io, call.contract.state, static)
    if not stateful:
        plain = len(call.io.inputs) == 1 and call.state_index is None
        return ExportInputs(candidate_module if plain else call.with_module(candidate_module).as_module(), call.io,
                            None, static)
    if len(call.io.inputs) != 1:
        raise BadInput(f"{opt('stateful')} applies to a model that takes one input; this one takes "
                       f"{call.io.input_names}", hint=f"name its state argument with {opt('state_arg')}")
    from edgelstm.converters.export.stateful import make_stateful, state_names

    wrapper, rnn = make_stateful(candidate_module)
    st_in, st_out = state_names(rnn)
    layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
    sizes = (int(getattr(rnn, "proj_size", 0) or rnn.hidden_size), rnn.hidden_size)
    ins = call.io.inputs + tuple(TensorSpec(n, "float32", (layers, "batch", s), True) for n, s in zip(st_in, sizes))
    outs = call.io.outputs + tuple(TensorSpec(n, "float32", (layers, "batch", s), True) for n, s in zip(st_out, sizes))
    ex = ExportInputs(wrapper, IOSpec(ins, outs), None, static)
    ex.stateful_rnn = rnn  # type: ignore[attr-defined]
    return ex


def _unpack_once(module, args, output):
    """Forward hook: an RNN fed a PackedSequence also unpacks its output once, adding zero times it to the final
    state, so that the exporter sees the PackPadded -> RNN -> PadPacked chain it maps to ``sequence_lens``."""
    from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

    if not args or not isinstance(args[0], PackedSequence):
        return output
    out, h = output
    zero = pad_packed_sequence(out)[0].sum() * 0
    return out, (tuple(t + zero for t in h) if isinstance(h, tuple) else h + zero)


@contextlib.contextmanager
def packed_rnn_shim(module, enabled: bool) -> Iterator[None]:
    """While exporting a model with a ``lengths`` input, its LSTM/GRU layers carry the ``_unpack_once`` hook (the
    module tree itself is left as it is)."""
    torch = require_torch()
    hooks = []
    if enabled and not isinstance(module, torch.jit.ScriptModule):
        hooks = [m.register_forward_hook(_unpack_once) for m in module.modules() if isinstance(m, torch.nn.RNNBase)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
