"""Lift hand-written LSTM cells to nn.LSTM.

A cell built from one `Linear(in+h, 4h)` or four `Linear(in+h, h)`, in any gate order and either
concatenation order ([x, h] or [h, x]), is recognised by its shapes; the candidate weight mappings onto
nn.LSTM's (i, f, g, o) layout are tried, and one is accepted only if the cell's step matches an
nn.LSTMCell with those weights exactly (float round-off). The model around the cell is then rebuilt as
nn.LSTM + its head and accepted only if it matches the original model end to end at several lengths.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from edgelstm.errors import require_torch
from edgelstm.models.cells import cell_candidates

GATES = ("i", "f", "g", "o")  # nn.LSTM's layout
STEP_TOL = 1e-5


@dataclass(frozen=True)
class CellMatch:
    path: str            # the cell's module path in the model
    input_size: int
    hidden_size: int
    gate_order: str      # e.g. "fiog": the order of the gates in the cell's Linear output
    concat: str          # "xh" or "hx"
    linears: str         # "one" or "four"
    returns: str         # "h,c" or "y,(h,c)"


@dataclass(frozen=True)
class LiftResult:
    model: Any
    cell: CellMatch
    readout: str         # "last" (head on the last step) or "all" (head on every step)
    max_error: float


class LiftError(Exception):
    pass


def _gate_blocks(linears, h):
    """Weights/biases per gate slot in the cell's own order: list of (W [h, in+h], b [h])."""
    torch = require_torch()
    if len(linears) == 1:
        w, b = linears[0].weight, linears[0].bias
        b = b if b is not None else torch.zeros(4 * h)
        return [(w[k * h:(k + 1) * h], b[k * h:(k + 1) * h]) for k in range(4)]
    return [(m.weight, m.bias if m.bias is not None else torch.zeros(h)) for m in linears]


def _call_cell(cell, x, h, c):
    """Call the cell in its own convention; return (h, c, convention) or raise."""
    out = cell(x, (h, c))
    if isinstance(out, (tuple, list)) and len(out) == 2:
        a, b = out
        if isinstance(b, (tuple, list)) and len(b) == 2:
            return b[0], b[1], "y,(h,c)"
        return a, b, "h,c"
    raise LiftError("the cell does not return (h, c) or (y, (h, c))")


def match_cell(cell, linears, h: int, in_size: int) -> CellMatch | None:
    torch = require_torch()
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
        blocks = _gate_blocks(linears, h)
        ref = torch.nn.LSTMCell(in_size, h)
        for perm in itertools.permutations(range(4)):
            # perm[k] = which of the cell's slots holds nn.LSTM gate GATES[k]
            for concat in ("xh", "hx"):
                w_all = torch.cat([blocks[perm[k]][0] for k in range(4)], 0)
                b_all = torch.cat([blocks[perm[k]][1] for k in range(4)], 0)
                w_x, w_h = ((w_all[:, :in_size], w_all[:, in_size:]) if concat == "xh"
                            else (w_all[:, h:], w_all[:, :h]))
                ref.weight_ih.copy_(w_x)
                ref.weight_hh.copy_(w_h)
                ref.bias_ih.copy_(b_all)
                ref.bias_hh.zero_()
                h1, c1 = ref(x, (h0, c0))
                err = max(float((h1 - h_ref).abs().max()), float((c1 - c_ref).abs().max()))
                if err < STEP_TOL:
                    order = "".join(GATES[perm.index(slot)] for slot in range(4))
                    return CellMatch("", in_size, h, order, concat, "one" if len(linears) == 1 else "four",
                                     convention)
    return None


def _lstm_from_cell(match: CellMatch, linears):
    torch = require_torch()
    h, n = match.hidden_size, match.input_size
    blocks = _gate_blocks(linears, h)
    slot_of = {g: match.gate_order.index(g) for g in GATES}
    lstm = torch.nn.LSTM(n, h, batch_first=True)
    with torch.no_grad():
        w_all = torch.cat([blocks[slot_of[g]][0] for g in GATES], 0)
        b_all = torch.cat([blocks[slot_of[g]][1] for g in GATES], 0)
        w_x, w_h = (w_all[:, :n], w_all[:, n:]) if match.concat == "xh" else (w_all[:, h:], w_all[:, :h])
        lstm.weight_ih_l0.copy_(w_x)
        lstm.weight_hh_l0.copy_(w_h)
        lstm.bias_ih_l0.copy_(b_all)
        lstm.bias_hh_l0.zero_()
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


def lift_cells(model, input_size: int, *, lengths=(1, 5, 23), batches=(1, 3), tol: float = 1e-5) -> LiftResult:
    """Rewrite a model built around one hand-written LSTM cell as nn.LSTM + head, verified end to end."""
    torch = require_torch()
    candidates = cell_candidates(model)
    if not candidates:
        raise LiftError("no submodule looks like an LSTM cell (one Linear(in+h, 4h) or four Linear(in+h, h))")
    reasons = []
    for path, cell, linears, h, in_size in candidates:
        if in_size != input_size:
            reasons.append(f"{path}: input size {in_size} != model input size {input_size}")
            continue
        match = match_cell(cell, linears, h, in_size)
        if match is None:
            reasons.append(f"{path}: no gate order / concatenation order reproduces its step exactly")
            continue
        match = dataclasses.replace(match, path=path)
        if "." in path:
            reasons.append(f"{path}: only cells owned directly by the top-level model can be lifted")
            continue
        rest = [m for name, m in model.named_children() if name != path]
        head = torch.nn.Sequential(*rest) if rest else torch.nn.Identity()
        lstm = _lstm_from_cell(match, linears)
        for readout in ("last", "all"):
            lifted = _lifted_class()(lstm, head, readout).eval()
            err = _end_to_end_error(model, lifted, input_size, lengths, batches)
            if err is not None and err < tol:
                return LiftResult(lifted, match, readout, err)
        reasons.append(f"{path}: the cell matched ({match.gate_order}, {match.concat}) but the model around it "
                       "is not 'cell over time, then head' (no end-to-end match)")
    raise LiftError("; ".join(reasons))


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
