"""Lift hand-written LSTM cells to nn.LSTM.

A cell built from one ``Linear(in+h, 4h)``, four ``Linear(in+h, h)`` or the split pair ``x2h = Linear(in, 4h)``
+ ``h2h = Linear(h, 4h)``, in any gate order and (for the concatenating layouts) either concatenation order,
is recognised by its shapes (``edgelstm.models.cells``); the candidate weight mappings onto nn.LSTM's
(i, f, g, o) layout are tried, and one is accepted only if the cell's step matches an nn.LSTMCell with those
weights exactly (float round-off). A single cell owned by the model, or cells stacked in a ``ModuleList``
(layer k feeding layer k+1), become one nn.LSTM (``num_layers`` = the stack's depth) + the model's remaining
layers as its head; the result is accepted only if it matches the original model end to end at several
lengths and batches."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from edgelstm.errors import require_torch
from edgelstm.models.cells import CellCandidate, cell_candidates

GATES = ("i", "f", "g", "o")  # nn.LSTM's layout
STEP_TOL = 1e-5


@dataclass(frozen=True)
class CellMatch:
    path: str            # the cell's module path in the model
    input_size: int
    hidden_size: int
    gate_order: str      # e.g. "fiog": the order of the gates in the cell's Linear output
    concat: str          # "xh" or "hx" (one/four Linears on a concatenation), "split" (x2h + h2h)
    linears: str         # "one", "four" or "split"
    returns: str         # "h,c" or "y,(h,c)"


@dataclass(frozen=True)
class LiftResult:
    model: Any
    cell: CellMatch                      # the first layer's cell
    readout: str                         # "last" (head on the last step) or "all" (head on every step)
    max_error: float
    layers: tuple[CellMatch, ...] = ()   # every layer's cell (a ModuleList stack), first to last

    def info(self) -> dict[str, Any]:
        c = self.cell
        return {"cell": c.path, "gate_order": c.gate_order, "concat": c.concat, "linears": c.linears,
                "hidden_size": c.hidden_size, "layers": max(1, len(self.layers)), "readout": self.readout,
                "max_error": self.max_error, "cells": [m.path for m in self.layers] or [c.path]}


class LiftError(Exception):
    pass


def _blocks(cand: CellCandidate, concat: str, swap: bool = False):
    """Per gate slot in the cell's own order: (W_x [h, in], W_h [h, h], b [h])."""
    torch = require_torch()
    h, n = cand.hidden_size, cand.input_size

    def bias(lin, size):
        return lin.bias if lin.bias is not None else torch.zeros(size)

    if cand.layout == "split":
        x2h, h2h = cand.linears[::-1] if swap else cand.linears
        b = bias(x2h, 4 * h) + bias(h2h, 4 * h)
        return [(x2h.weight[k * h:(k + 1) * h], h2h.weight[k * h:(k + 1) * h], b[k * h:(k + 1) * h]) for k in range(4)]
    if cand.layout == "one":
        w, b = cand.linears[0].weight, bias(cand.linears[0], 4 * h)
        rows = [(w[k * h:(k + 1) * h], b[k * h:(k + 1) * h]) for k in range(4)]
    else:
        rows = [(m.weight, bias(m, h)) for m in cand.linears]
    out = []
    for w, b in rows:
        wx, wh = (w[:, :n], w[:, n:]) if concat == "xh" else (w[:, h:], w[:, :h])
        out.append((wx, wh, b))
    return out


def _mappings(cand: CellCandidate):
    """(concat label, swap, blocks) for every way the cell's weights could map onto the gates."""
    if cand.layout == "split":
        x2h, h2h = cand.linears
        swaps = (False, True) if x2h.in_features == h2h.in_features else (False,)
        return [("split", s, _blocks(cand, "split", s)) for s in swaps]
    return [(c, False, _blocks(cand, c)) for c in ("xh", "hx")]


def _call_cell(cell, x, h, c):
    """Call the cell in its own convention; return (h, c, convention) or raise."""
    try:
        out = cell(x, (h, c))
    except TypeError:
        out = cell(x, h, c)
    if isinstance(out, (tuple, list)) and len(out) == 2:
        a, b = out
        if isinstance(b, (tuple, list)) and len(b) == 2:
            return b[0], b[1], "y,(h,c)"
        return a, b, "h,c"
    raise LiftError("the cell does not return (h, c) or (y, (h, c))")


def match_cell(cell, cand: CellCandidate) -> tuple[CellMatch, list] | None:
    """The gate order and weight mapping that make ``cell`` an exact nn.LSTMCell, with its (wx, wh, b) per
    nn.LSTM gate (i, f, g, o); None if there is none."""
    torch = require_torch()
    h, in_size = cand.hidden_size, cand.input_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, in_size, generator=gen)
    h0 = torch.randn(3, h, generator=gen) * 0.5
    c0 = torch.randn(3, h, generator=gen) * 0.5
    with torch.no_grad():
        try:
            h_ref, c_ref, convention = _call_cell(cell, x, h0, c0)
        except Exception:  # noqa: BLE001 - not callable as an LSTM cell
            return None
        if tuple(h_ref.shape) != (3, h) or tuple(c_ref.shape) != (3, h):
            return None
        ref = torch.nn.LSTMCell(in_size, h)
        for concat, _swap, blocks in _mappings(cand):
            for perm in itertools.permutations(range(4)):
                # perm[k] = which of the cell's slots holds nn.LSTM gate GATES[k]
                gates = [blocks[perm[k]] for k in range(4)]
                ref.weight_ih.copy_(torch.cat([g[0] for g in gates], 0))
                ref.weight_hh.copy_(torch.cat([g[1] for g in gates], 0))
                ref.bias_ih.copy_(torch.cat([g[2] for g in gates], 0))
                ref.bias_hh.zero_()
                h1, c1 = ref(x, (h0, c0))
                err = max(float((h1 - h_ref).abs().max()), float((c1 - c_ref).abs().max()))
                if err < STEP_TOL:
                    order = "".join(GATES[perm.index(slot)] for slot in range(4))
                    match = CellMatch(cand.path, in_size, h, order, concat, cand.layout, convention)
                    return match, [tuple(t.detach().clone() for t in g) for g in gates]
    return None


def _lstm_from_layers(layers: list[list]) -> Any:
    """nn.LSTM (batch_first) whose layer k has the per-gate (wx, wh, b) of ``layers[k]``."""
    torch = require_torch()
    first = layers[0]
    n, h = first[0][0].shape[1], first[0][1].shape[1]
    lstm = torch.nn.LSTM(n, h, num_layers=len(layers), batch_first=True)
    with torch.no_grad():
        for k, gates in enumerate(layers):
            getattr(lstm, f"weight_ih_l{k}").copy_(torch.cat([g[0] for g in gates], 0))
            getattr(lstm, f"weight_hh_l{k}").copy_(torch.cat([g[1] for g in gates], 0))
            getattr(lstm, f"bias_ih_l{k}").copy_(torch.cat([g[2] for g in gates], 0))
            getattr(lstm, f"bias_hh_l{k}").zero_()
    return lstm


def _lifted_class():
    torch = require_torch()

    class LiftedLSTM(torch.nn.Module):
        """nn.LSTM over the sequence, then the original model's remaining layers (its head)."""

        def __init__(self, rnn, head, readout: str):
            super().__init__()
            self.rnn = rnn
            self.head = head
            self.readout = readout

        def forward(self, x):
            out, _ = self.rnn(x)
            if self.readout == "last":
                out = out[:, -1]
            return self.head(out)

    return LiftedLSTM


def _stacks(model, candidates: list[CellCandidate]) -> tuple[list[tuple[str, list[CellCandidate]]], list[str]]:
    """(owner child name, cells in layer order) for each liftable group: a cell that is a direct child of the
    model, or every element of a ModuleList/Sequential child that is a cell; and reasons for the rest."""
    torch = require_torch()
    by_path = {c.path: c for c in candidates}
    groups, reasons = [], []
    for name, child in model.named_children():
        if name in by_path:
            groups.append((name, [by_path[name]]))
        elif isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) and len(child):
            cells = [by_path.get(f"{name}.{k}") for k in range(len(child))]
            if all(cells):
                groups.append((name, cells))  # type: ignore[arg-type]
            elif any(cells):
                reasons.append(f"{name}: only some of its elements are LSTM cells")
    grouped = {c.path for _, cells in groups for c in cells}
    for c in candidates:
        if c.path not in grouped and not any(c.path.startswith(g + ".") for g in grouped):
            reasons.append(f"{c.path}: only cells owned by the top-level model (directly or in a ModuleList) "
                           "can be lifted")
    return groups, reasons


def lift_cells(model, input_size: int, *, lengths=(1, 5, 23), batches=(1, 3), tol: float = 1e-5) -> LiftResult:
    """Rewrite a model built around hand-written LSTM cells (one, or a ModuleList stack) as nn.LSTM + head,
    verified end to end."""
    torch = require_torch()
    candidates = cell_candidates(model)
    if not candidates:
        raise LiftError("no submodule looks like an LSTM cell (one Linear(in+h, 4h), four Linear(in+h, h), "
                        "or x2h = Linear(in, 4h) + h2h = Linear(h, 4h))")
    groups, reasons = _stacks(model, candidates)
    for owner, cells in groups:
        if cells[0].input_size != input_size:
            reasons.append(f"{cells[0].path}: input size {cells[0].input_size} != model input size {input_size}")
            continue
        if any(c.input_size != cells[0].hidden_size or c.hidden_size != cells[0].hidden_size for c in cells[1:]):
            reasons.append(f"{owner}: the stacked cells' sizes do not chain (layer k's hidden size is layer k+1's input)")
            continue
        matched = [match_cell(c.module, c) for c in cells]
        bad = [c.path for c, m in zip(cells, matched) if m is None]
        if bad:
            reasons.append(f"{', '.join(bad)}: no gate order / weight layout reproduces its step exactly")
            continue
        rest = [m for name, m in model.named_children() if name != owner]
        head = torch.nn.Sequential(*rest) if rest else torch.nn.Identity()
        lstm = _lstm_from_layers([m[1] for m in matched])  # type: ignore[index]
        layers = tuple(dataclasses.replace(m[0]) for m in matched)  # type: ignore[index]
        for readout in ("last", "all"):
            lifted = _lifted_class()(lstm, head, readout).eval()
            err = _end_to_end_error(model, lifted, input_size, lengths, batches)
            if err is not None and err < tol:
                return LiftResult(lifted, layers[0], readout, err, layers)
        first = layers[0]
        reasons.append(f"{owner}: the cell matched ({first.gate_order}, {first.concat}) but the model around it "
                       "is not 'cells over time, then head' (no end-to-end match)")
    raise LiftError("; ".join(reasons) or "no liftable cell")


def _end_to_end_error(original, lifted, input_size, lengths, batches) -> float | None:
    torch = require_torch()
    from edgelstm.runners.torch_runner import flatten_outputs

    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    with torch.no_grad():
        for t in lengths:
            for b in batches:
                x = torch.randn(b, t, input_size, generator=gen)
                try:
                    ref = flatten_outputs(original(x))
                    got = flatten_outputs(lifted(x))
                except Exception:  # noqa: BLE001
                    return None
                if len(ref) != len(got) or any(r.shape != g.shape for r, g in zip(ref, got)):
                    return None
                for r, g in zip(ref, got):
                    scale = max(1.0, float(r.abs().max()))
                    worst = max(worst, float((r - g).abs().max()) / scale)
    return worst
