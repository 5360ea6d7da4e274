"""Recurrent cells in a torch module, found by their structure (inspection only; matching a cell's step to an
LSTM/GRU and lifting its loop to a native op is a model transformation and lives in ``edgelstm.converters.export.cell_matching`` and
``edgelstm.converters.export.cell_lifting``).

Recognised (any gate order; the matching step finds it):
- torch's own cells: ``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell`` (layout ``native``);
- hand-written LSTM cells: ``one`` ``Linear(in + h, 4h)`` on ``cat([x, h])`` (or ``cat([h, x])``); ``four``
  ``Linear(in + h, h)``, one per gate; ``split`` ``x2h = Linear(in, 4h)`` + ``h2h = Linear(h, 4h)`` (the tutorial form);
- hand-written GRU cells: ``one`` ``Linear(in + h, 3h)``; ``three`` ``Linear(in + h, h)`` (the textbook form, the
  candidate's on ``cat([x, r * h])``); ``split`` ``Linear(in, 3h)`` + ``Linear(h, 3h)``."""

from __future__ import annotations

from typing import Any, NamedTuple

from edgelstm.errors import require_torch


class CellCandidate(NamedTuple):
    path: str
    module: Any
    linears: tuple          # one/four/three: the Linears in order; split: (x2h, h2h); native: ()
    hidden_size: int
    layout: str             # "one" | "four" | "three" | "split" | "native"
    input_size: int
    kind: str = "LSTM"      # "LSTM" | "GRU" | "RNN"

    @property
    def gates(self) -> int:
        return {"LSTM": 4, "GRU": 3, "RNN": 1}[self.kind]


def _split_pair(linears, names, gates: int):
    """(x2h, h2h, ambiguous) for two Linear(?, gates*h) children, or None."""
    a, b = linears
    if a.out_features != b.out_features or a.out_features % gates:
        return None
    h = a.out_features // gates
    if a.in_features == h and b.in_features != h:
        return b, a, False
    if b.in_features == h and a.in_features != h:
        return a, b, False
    if a.in_features == h and b.in_features == h:  # in == h: tell them apart by name, else by order
        na, nb = names
        if any(k in na.lower() for k in ("h2h", "hh", "hid", "rec")) and not any(
                k in nb.lower() for k in ("h2h", "hh", "hid", "rec")):
            return b, a, True
        return a, b, True
    return None


def _native(path: str, mod) -> CellCandidate | None:
    torch = require_torch()
    for cls, kind in ((torch.nn.LSTMCell, "LSTM"), (torch.nn.GRUCell, "GRU"), (torch.nn.RNNCell, "RNN")):
        if isinstance(mod, cls):
            return CellCandidate(path, mod, (), int(mod.hidden_size), "native", int(mod.input_size), kind)
    return None


def _takes_state(mod) -> bool:
    """A cell's forward takes the input and a state (``(x, hidden)`` or ``(x, h, c)``); a Sequential does not."""
    import inspect

    try:
        params = [p for p in inspect.signature(mod.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _hand_written(path: str, mod) -> list[CellCandidate]:
    torch = require_torch()
    if not _takes_state(mod):
        return []
    named = [(n, m) for n, m in mod.named_children() if isinstance(m, torch.nn.Linear)]
    linears = [m for _, m in named]
    found = []
    if len(linears) == 1:
        lin = linears[0]
        for kind, g in (("LSTM", 4), ("GRU", 3)):
            if lin.out_features % g == 0 and lin.in_features > lin.out_features // g:
                h = lin.out_features // g
                found.append(CellCandidate(path, mod, tuple(linears), h, "one", lin.in_features - h, kind))
    elif len(linears) in (3, 4) and len({(m.in_features, m.out_features) for m in linears}) == 1:
        h = linears[0].out_features
        if linears[0].in_features > h:
            kind, layout = ("LSTM", "four") if len(linears) == 4 else ("GRU", "three")
            found.append(CellCandidate(path, mod, tuple(linears), h, layout, linears[0].in_features - h, kind))
    elif len(linears) == 2:
        for kind, g in (("LSTM", 4), ("GRU", 3)):
            pair = _split_pair(linears, [n for n, _ in named], g)
            if pair is not None:
                x2h, h2h, _ = pair
                found.append(CellCandidate(path, mod, (x2h, h2h), h2h.in_features, "split", x2h.in_features, kind))
    return found


def cell_candidates(model) -> list[CellCandidate]:
    """Submodules that look like a recurrent cell, in registration order (a module may give an LSTM and a GRU
    candidate when its shapes fit both; matching decides)."""
    torch = require_torch()
    found: list[CellCandidate] = []
    for path, mod in model.named_modules():
        if not path or isinstance(mod, torch.nn.RNNBase):
            continue
        native = _native(path, mod)
        if native is not None:
            found.append(native)
            continue
        found += _hand_written(path, mod)
    return found


__all__ = ["CellCandidate", "cell_candidates"]
