"""Hand-written LSTM cells in a torch module, found by their structure (inspection only; lifting a cell to
``nn.LSTM`` is a model transformation and lives in ``converters.cell_lifting``).

Layouts recognised (any gate order; the lifting step finds it):
- ``one``: one ``Linear(in + h, 4h)`` on ``cat([x, h])`` (or ``cat([h, x])``);
- ``four``: four ``Linear(in + h, h)``, one per gate;
- ``split``: ``x2h = Linear(in, 4h)`` and ``h2h = Linear(h, 4h)`` (the most common tutorial form)."""

from __future__ import annotations

from typing import Any, NamedTuple

from edgelstm.errors import require_torch


class CellCandidate(NamedTuple):
    path: str
    module: Any
    linears: tuple          # one/four: the Linears in order; split: (x2h, h2h)
    hidden_size: int
    layout: str             # "one" | "four" | "split"
    input_size: int         # last, as in the earlier (path, module, linears, hidden, input) tuples


def _split_pair(linears, names):
    """(x2h, h2h, ambiguous) for two Linear(?, 4h) children, or None."""
    a, b = linears
    if a.out_features != b.out_features or a.out_features % 4:
        return None
    h = a.out_features // 4
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


def cell_candidates(model) -> list[CellCandidate]:
    """Submodules that look like an LSTM cell, in registration order."""
    torch = require_torch()
    nn = torch.nn
    found: list[CellCandidate] = []
    for path, mod in model.named_modules():
        if not path or isinstance(mod, nn.RNNBase):
            continue
        named = [(n, m) for n, m in mod.named_children() if isinstance(m, nn.Linear)]
        linears = [m for _, m in named]
        if len(linears) == 1 and linears[0].out_features % 4 == 0:
            h = linears[0].out_features // 4
            if linears[0].in_features > h:
                found.append(CellCandidate(path, mod, tuple(linears), h, "one", linears[0].in_features - h))
        elif len(linears) == 4 and len({(m.in_features, m.out_features) for m in linears}) == 1:
            h = linears[0].out_features
            if linears[0].in_features > h:
                found.append(CellCandidate(path, mod, tuple(linears), h, "four", linears[0].in_features - h))
        elif len(linears) == 2:
            pair = _split_pair(linears, [n for n, _ in named])
            if pair is not None:
                x2h, h2h, _ = pair
                found.append(CellCandidate(path, mod, (x2h, h2h), h2h.in_features, "split", x2h.in_features))
    return found


__all__ = ["CellCandidate", "cell_candidates"]
