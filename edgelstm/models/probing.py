"""Probing a user's torch model before it is exported or used as a reference: does it run on the inputs
edgelstm feeds (and if not, the real cause in one line), does it keep state on the module between calls,
does it give the same output twice for the same input.

Every probe leaves the module as it found it: tensors, tuples of tensors and numbers held as module attributes
or buffers are snapshotted before and restored after (and between) calls, so a probe never leaves a hidden
state set (an inference-mode tensor left on the module made tracing fail with "Inference tensors cannot be
saved for backward")."""

from __future__ import annotations

import contextlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from edgelstm.errors import BadInput, opt, require_torch

_SCALARS = (int, float, bool)


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    if isinstance(out, dict):
        return [t for _, v in sorted(out.items()) for t in _flatten(v)]
    return [out]


def _is_state_value(value: Any) -> bool:
    torch = require_torch()
    if value is None or isinstance(value, (torch.Tensor, *_SCALARS)):
        return not isinstance(value, torch.nn.Parameter)
    if isinstance(value, (tuple, list)) and value:
        return all(isinstance(v, torch.Tensor) or v is None for v in _flatten(value))
    return False


def _clone(value: Any) -> Any:
    torch = require_torch()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


def _same(a: Any, b: Any, tol: float = 0.0) -> bool:
    torch = require_torch()
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        if a.dtype != b.dtype:
            return False
        if not a.is_floating_point():
            return bool(torch.equal(a, b))
        scale = float(a.detach().abs().max()) if a.numel() else 0.0
        return bool(torch.allclose(a.detach(), b.detach(), rtol=0.0, atol=tol * (1.0 + scale), equal_nan=True))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(_same(x, y, tol) for x, y in zip(a, b)))
    return a == b


@dataclass
class Snapshot:
    """Module attributes and buffers that can carry state between calls, as they were; kept per module object
    (not per path: a wrapper may swap a layer for a shim while the model runs)."""

    modules: list[tuple[str, Any]] = field(default_factory=list)            # (path, module) when taken
    values: dict[tuple[int, str, str], Any] = field(default_factory=dict)   # (module id, kind, name) -> clone
    objects: dict[tuple[int, str, str], Any] = field(default_factory=dict)  # the original objects

    @classmethod
    def take(cls, module) -> "Snapshot":
        snap = cls()
        for path, sub in _modules(module):
            snap.modules.append((path, sub))
            for kind, name, value in _state_items(sub):
                snap.values[(id(sub), kind, name)] = _clone(value)
                snap.objects[(id(sub), kind, name)] = value
        return snap

    def changed(self, module=None) -> dict[str, Any]:
        """'path.name' -> current value, for every state attribute that differs from the snapshot (or is new)."""
        out = {}
        for path, sub in self.modules:
            for kind, name, value in _state_items(sub):
                key = (id(sub), kind, name)
                if key not in self.values or not _same(self.values[key], value):
                    out[f"{path}.{name}" if path else name] = value
        return out

    def _keys(self) -> dict[int, list[tuple[str, str]]]:
        if not hasattr(self, "_index"):
            index: dict[int, list[tuple[str, str]]] = {}
            for mid, kind, name in self.values:
                index.setdefault(mid, []).append((kind, name))
            self._index = index
        return self._index

    def restore(self, module=None) -> None:
        torch = require_torch()
        with torch.no_grad():
            for _path, sub in self.modules:
                for kind, name, _value in list(_state_items(sub)):
                    if (id(sub), kind, name) in self.values:
                        continue
                    if kind == "buffer":  # created by a call: remove it again
                        sub._buffers.pop(name, None)
                    else:
                        with contextlib.suppress(AttributeError):
                            delattr(sub, name)
                for kind, name in self._keys().get(id(sub), ()):
                    mid, saved = id(sub), self.values[(id(sub), kind, name)]
                    original = self.objects[(mid, kind, name)]
                    if isinstance(original, (tuple, list)) and any(
                            isinstance(t, torch.Tensor) and t.is_inference() for t in _flatten(original)):
                        original = _clone(saved)  # never leave inference-mode tensors on the module
                    elif isinstance(original, torch.Tensor):
                        if original.is_inference() or original.shape != saved.shape:
                            original = saved.clone()  # never leave an inference-mode tensor on the module
                        elif not torch.equal(original, saved):
                            original.copy_(saved)  # undo in-place updates of the original tensor too
                    if kind == "buffer":
                        sub._buffers[name] = original
                    else:
                        setattr(sub, name, original)


def _modules(module) -> Iterator[tuple[str, Any]]:
    torch = require_torch()
    if isinstance(module, torch.jit.ScriptModule):
        return iter(())
    return iter(module.named_modules())


def _state_items(sub) -> Iterator[tuple[str, str, Any]]:
    for name, value in list(sub._buffers.items()):
        yield "buffer", name, value
    for name, value in list(vars(sub).items()):
        if not name.startswith("_") and name != "training" and _is_state_value(value):
            yield "attr", name, value


@contextlib.contextmanager
def module_state_guard(module) -> Iterator[Snapshot]:
    """Run a block that calls the model; afterwards the module holds exactly the state it had before."""
    snap = Snapshot.take(module)
    try:
        yield snap
    finally:
        snap.restore(module)


@dataclass
class Behaviour:
    held_state: dict[str, Any] = field(default_factory=dict)  # attribute -> value it held after one call
    recurrent: str | None = None     # the nn.LSTM/GRU whose final state the held state is
    random: bool = False             # two runs on the same input disagree

    def describe_held(self) -> str:
        return ", ".join(sorted(self.held_state))


RANDOM_MESSAGE = "the model's output changes between two runs on the same input (random initial state?)"


def probe_behaviour(module, call_model: Callable[[], Any], *, tol: float = 1e-6, inputs: str = "") -> Behaviour:
    """Call the model (``call_model()`` calls it on one fixed input) a few times, state restored in between and
    at the end, to learn whether it keeps state on the module that changes its next output, and whether it is
    random. A model that does not run raises BadInput naming the real cause (see ``explain_run_error``)."""
    torch = require_torch()
    rnn_states: dict[str, Any] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, p=p: rnn_states.__setitem__(p, out[1]))
             for p, m in _modules(module) if isinstance(m, torch.nn.RNNBase)]
    behaviour = Behaviour()
    try:
        with module_state_guard(module) as snap, torch.no_grad():
            first = _call(module, call_model, inputs)
            changed = {k: _clone(v) for k, v in snap.changed(module).items()}
            first_states = dict(rnn_states)
            if changed:
                carried = _call(module, call_model, inputs)
                if not _same(first, carried, tol):
                    behaviour.held_state = changed
                    behaviour.recurrent = _state_owner(changed, first_states)
            snap.restore(module)
            second = _call(module, call_model, inputs)
            behaviour.random = not _same(first, second, tol)
    finally:
        for h in hooks:
            h.remove()
    return behaviour


def _state_owner(changed: dict[str, Any], rnn_states: dict[str, Any]) -> str | None:
    """The recurrent layer whose final (h[, c]) every changed attribute holds, or None."""
    for path, final in rnn_states.items():
        parts = _flatten(final)
        if all(any(_same(v, p, 1e-6) for p in parts) for value in changed.values() for v in _flatten(value)):
            return path or "(model)"
    return None


def _call(module, call_model: Callable[[], Any], inputs: str = ""):
    try:
        return call_model()
    except Exception as exc:  # noqa: BLE001 - the user's model failed: say why, in one line
        message, hint = explain_run_error(exc, module, (), inputs=inputs)
        raise BadInput(message, hint=hint) from None


_MISSING = re.compile(r"missing (\d+) required positional argument")
_SHAPE_WORDS = ("shape", "size", "channels", "elements", "dimension", "mat1", "expected input")


def explain_run_error(exc: BaseException, module, args: tuple, *, inputs: str = "") -> tuple[str, str | None]:
    """(message, hint) naming the real cause of a model failing on edgelstm's probe input."""
    torch = require_torch()
    text = " ".join(ln.strip() for ln in str(exc).strip().splitlines()[:1]) or type(exc).__name__
    text = text if len(text) <= 200 else text[:199] + "…"
    params = _forward_params(module)
    shapes = inputs or ", ".join(str(list(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args)
    if isinstance(exc, TypeError) and _MISSING.search(text):
        missing = [p for p in params[len(args):] if p.default is inspect.Parameter.empty]
        names = ", ".join(p.name for p in missing) or text
        return (f"the model's forward needs more than the one input edgelstm fed: argument {names} is missing",
                f"describe every forward argument, in order, with {opt('input')} NAME:DTYPE[DIMS] "
                f"(or {opt('state_arg')} for a recurrent state)")
    if isinstance(exc, TypeError) and "positional argument" in text and "were given" in text:
        return (f"the model's forward takes fewer inputs than edgelstm fed ({len(args)}): {text}",
                f"check the {opt('input')} options")
    emb = _first_embedding(module)
    if emb is not None and ("indices" in text or "Long, Int" in text or "scalar type Long" in text):
        name = params[0].name if params else "x"
        return (f"the model takes integer token ids (its nn.Embedding has {emb.num_embeddings} rows), "
                f"edgelstm fed floats",
                f"pass {opt('input')} {name}:int64[batch,seq]")
    if any(w in text.lower() for w in _SHAPE_WORDS):
        return (f"the model does not run on input {shapes}: {type(exc).__name__}: {text}",
                f"check {opt('input_size')}")
    return f"the model fails on input {shapes}: {type(exc).__name__}: {text}", None


def _forward_params(module) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _first_embedding(module):
    torch = require_torch()
    for _, m in _modules(module):
        if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
            return m
    return None


__all__ = ["Behaviour", "RANDOM_MESSAGE", "Snapshot", "explain_run_error", "module_state_guard", "probe_behaviour"]
