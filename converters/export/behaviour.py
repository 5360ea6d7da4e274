"""What a model does between and across calls, decided before any export: state it keeps on the module
(exported as state I/O when it is an nn.LSTM/GRU's (h, c), refused otherwise) and randomness (refused, or with
``--stateful`` exported with the model's own initial state replaced by the h0/c0 inputs, and recorded so).

During an export every top-level call of the user's model starts from the state the model was loaded with
(``fresh_calls``): probes, tracing and the torch reference see the same model, and the module is left exactly
as it was found."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from edgelstm.errors import BadInput, opt, require_torch
from edgelstm.models.probing import RANDOM_MESSAGE, Snapshot, probe_behaviour


@dataclass
class FreshCalls:
    snapshot: Snapshot               # the state every call starts from
    original: Snapshot | None = None  # the state the model is left in (as found)
    active: bool = True

    def resolve(self, module, resolve):
        """``resolve()`` (the input contract probe); if it fails while the module holds a recurrent state left
        by earlier calls, once more with that state cleared (set to None, as a fresh model has it)."""
        from edgelstm.errors import BadInput

        try:
            return resolve()
        except BadInput as exc:
            left = leftover_rnn_state(module)
            if not left:
                raise _named_cause(exc, module) from None
            for sub, name in left:
                setattr(sub, name, None)
            self.snapshot = Snapshot.take(module)
            return resolve()


def _named_cause(exc, module):
    """The probe's refusal, with the real cause when the text shows one (token ids fed as floats)."""
    from edgelstm.errors import BadInput
    from edgelstm.models.probing import explain_run_error

    text = exc.raw_message
    if "'indices'" in text or "Long, Int" in text:
        message, hint = explain_run_error(RuntimeError(text.split(": ", 1)[-1]), module, ())
        if "token ids" in message:
            return BadInput(message, hint=hint)
    return exc


def leftover_rnn_state(module) -> list[tuple[Any, str]]:
    """(module, attribute) of plain attributes holding what looks like an nn.LSTM/GRU state, [layers, batch, size]."""
    torch = require_torch()
    if isinstance(module, torch.jit.ScriptModule):
        return []
    shapes = set()
    for m in module.modules():
        if isinstance(m, torch.nn.RNNBase):
            layers = m.num_layers * (2 if m.bidirectional else 1)
            shapes |= {(layers, m.hidden_size), (layers, getattr(m, "proj_size", 0) or m.hidden_size)}
    found = []
    for sub in module.modules():
        for name, value in list(vars(sub).items()):
            parts = value if isinstance(value, (tuple, list)) else [value]
            if (not name.startswith("_") and parts and all(isinstance(t, torch.Tensor) and t.dim() == 3
                                                             and (t.shape[0], t.shape[2]) in shapes for t in parts)):
                found.append((sub, name))
    return found


@contextlib.contextmanager
def fresh_calls(module) -> Iterator[FreshCalls]:
    """Every call of ``module`` inside the block starts from its current state; restored at the end."""
    torch = require_torch()
    ctl = FreshCalls(Snapshot.take(module))
    handle = None
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.jit.ScriptModule):
        def reset(m, _args):
            if ctl.active and m is module:  # not in copies of the model (a deepcopy copies its hooks)
                ctl.snapshot.restore(m)

        reset._edgelstm_hook = True  # type: ignore[attr-defined] - removed while torch.jit.script compiles the model
        handle = module.register_forward_pre_hook(reset)
    ctl.original = ctl.snapshot
    try:
        yield ctl
    finally:
        if handle is not None:
            handle.remove()
        ctl.snapshot.restore(module)
        ctl.original.restore(module)


@dataclass
class StatePlan:
    stateful: bool                   # export with state inputs/outputs
    reason: str = ""                 # why, when edgelstm decided it (not the user)
    details: dict[str, Any] = field(default_factory=dict)  # manifest details
    notes: list[str] = field(default_factory=list)         # console lines


def plan_state(module, call, options, ctl: FreshCalls | None = None) -> StatePlan:
    """Probe the model (``call``: its resolved input contract) and decide how its state is exported; BadInput
    (exit 2) for a model that one ONNX file cannot reproduce, with the reason and the flag that helps."""
    from edgelstm.artifacts.feeds import random_feeds

    feeds = random_feeds(call.io, 2, max(2, min(options.seq_len, 8)), np.random.default_rng(7))
    tensors = call.tensors(feeds)
    args, kwargs = call.arguments(tensors)
    if ctl is not None:
        ctl.snapshot.restore(module)  # the state the model was loaded with, not the last probe's
        ctl.active = False
    shapes = ", ".join(f"{t.name}: {t.dtype}{list(np.shape(feeds[t.name]))}" for t in call.io.inputs)
    try:
        behaviour = probe_behaviour(module, lambda: module(*args, **kwargs), inputs=shapes)
    finally:
        if ctl is not None:
            ctl.active = True
    plan = StatePlan(bool(options.stateful))
    if behaviour.held_state:
        held = behaviour.describe_held()
        if behaviour.recurrent is None:
            raise BadInput(f"the model keeps state on the module between calls ({held}) that is not a recurrent "
                           "layer's (h, c): each output depends on the calls before it, which one ONNX file cannot "
                           "reproduce", hint="reset that state inside forward, or make it an input and an output of forward")
        if options.static:
            raise BadInput(f"the model keeps its recurrent state on the module between calls ({held}): it exports "
                           f"with state inputs h0/c0 and outputs hn/cn, which needs a dynamic sequence axis",
                           hint=f"drop {opt('static')}")
        plan.stateful = True
        plan.reason = f"the model keeps the state of {behaviour.recurrent} on the module between calls ({held})"
        plan.details["held_state"] = {"attributes": sorted(behaviour.held_state), "recurrent": behaviour.recurrent,
                                      "exported_as": "state inputs h0/c0 and outputs hn/cn (feed hn/cn back to "
                                                     "continue a sequence; zeros start one)"}
        plan.notes.append(f"{plan.reason}: exported with state inputs h0/c0 and outputs hn/cn")
    if behaviour.random:
        if not plan.stateful:
            raise BadInput(RANDOM_MESSAGE, hint=f"make the model deterministic, or pass {opt('stateful')} to export its "
                                                "recurrent state as h0/c0 inputs (the random initial state is then "
                                                "replaced by what you feed)")
        plan.details["initial_state"] = "replaced by h0/c0 inputs (the model draws a random one)"
        plan.notes.append("the model draws a random initial state on every call; the export replaces it with the "
                          "h0/c0 inputs (feed zeros, or your own draw)")
    return plan


def check_deterministic(torch_fn, make_feeds) -> bool:
    """Whether the torch reference of an export candidate gives the same outputs twice for the same feeds."""
    feeds = make_feeds(2, 3)
    a, b = torch_fn(feeds), torch_fn(feeds)
    return len(a) == len(b) and all(np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=0, atol=1e-6 * (1 + np.abs(x).max(initial=0)))
                                    for x, y in zip(a, b))
