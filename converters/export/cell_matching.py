"""Matching a recurrent cell's step to the equations of an ONNX LSTM/GRU/RNN op, exactly.

A cell found by ``edgelstm.models.cells`` is called once on seeded inputs; its weights are laid out into the op's
``W``, ``R``, ``B`` under every plausible mapping (gate order, concatenation order, which Linear is which; for a GRU
also the reset gate before or after the recurrent matmul, ``linear_before_reset`` 0/1, and ``h' = (1-z) h + z h~``
written either way round), and a mapping is accepted only if the op's step (``edgelstm.models.native_rnn``)
reproduces the cell's to float round-off. An LSTM cell that adds a constant to a gate (``sigmoid(f + 1.0)``, a
forget bias) has that constant measured (the cell run with its Linears zeroed) and folded into the op's bias."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from edgelstm.errors import require_torch
from edgelstm.models.cells import CellCandidate
from edgelstm.models.native_rnn import RecurrentWeights, _direction, DEFAULT_ACTIVATIONS

STEP_TOL = 1e-5
#: the op's gate order (LSTM i, o, f, c; GRU z, r, h) and the letters the cell's own order is reported in
ONNX_GATES = {"LSTM": "iofg", "GRU": "zrn", "RNN": "h"}
#: torch's gate order (nn.LSTMCell i,f,g,o; nn.GRUCell r,z,n) as the op's gate letters
TORCH_ORDER = {"LSTM": "ifgo", "GRU": "rzn", "RNN": "h"}


@dataclass(frozen=True)
class CellMatch:
    path: str
    input_size: int
    hidden_size: int
    gate_order: str                 # the cell's own gate order, in torch's letters (LSTM i,f,g,o; GRU r,z,n)
    concat: str                     # "xh" / "hx" (Linears on a concatenation), "split" (x2h + h2h), "native"
    linears: str                    # the layout: one, four, three, split, native
    returns: str                    # "h,c", "y,(h,c)", "h" or "y,h"
    kind: str = "LSTM"
    linear_before_reset: int = 1
    offsets: str = ""               # gate constants folded into the bias ("f+1")

    def describe(self) -> str:
        extra = f", linear_before_reset={self.linear_before_reset}" if self.kind == "GRU" else ""
        return (f"{self.path}: {self.kind} cell ({self.linears}, gate order {self.gate_order}, concat {self.concat}"
                f"{extra}{', offsets ' + self.offsets if self.offsets else ''})")


def _probe(cand: CellCandidate):
    torch = require_torch()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, cand.input_size, generator=gen)
    h = torch.randn(3, cand.hidden_size, generator=gen) * 0.5
    c = torch.randn(3, cand.hidden_size, generator=gen) * 0.5
    return x, h, c


def call_cell(cell, kind: str, x, h, c):
    """The cell's (h', c' or None, convention) in its own calling convention; raises when it has none."""
    if kind == "LSTM":
        try:
            out = cell(x, (h, c))
        except TypeError:
            out = cell(x, h, c)
        if isinstance(out, (tuple, list)) and len(out) == 2:
            a, b = out
            if isinstance(b, (tuple, list)) and len(b) == 2:
                return b[0], b[1], "y,(h,c)"
            return a, b, "h,c"
        raise ValueError("the cell does not return (h, c) or (y, (h, c))")
    out = cell(x, h)
    if isinstance(out, (tuple, list)) and len(out) == 2 and not isinstance(out[1], (tuple, list)):
        return out[1], None, "y,h"
    if hasattr(out, "shape"):
        return out, None, "h"
    raise ValueError("the cell does not return h or (y, h)")


def _slots(cand: CellCandidate, concat: str, swap: bool = False):
    """Per gate slot, in the cell's own order: (W_x [h, in], W_h [h, h], b_x [h], b_h [h]) as torch tensors."""
    torch = require_torch()
    h, n, g = cand.hidden_size, cand.input_size, cand.gates

    def bias(lin, size):
        return lin.bias.detach() if lin.bias is not None else torch.zeros(size)

    zeros = torch.zeros(h)
    if cand.layout == "native":
        m = cand.module
        bi = m.bias_ih.detach() if m.bias else torch.zeros(g * h)
        bh = m.bias_hh.detach() if m.bias else torch.zeros(g * h)
        return [(m.weight_ih.detach()[k * h:(k + 1) * h], m.weight_hh.detach()[k * h:(k + 1) * h],
                 bi[k * h:(k + 1) * h], bh[k * h:(k + 1) * h]) for k in range(g)]
    if cand.layout == "split":
        x2h, h2h = cand.linears[::-1] if swap else cand.linears
        bx, bh = bias(x2h, g * h), bias(h2h, g * h)
        return [(x2h.weight.detach()[k * h:(k + 1) * h], h2h.weight.detach()[k * h:(k + 1) * h],
                 bx[k * h:(k + 1) * h], bh[k * h:(k + 1) * h]) for k in range(g)]
    if cand.layout == "one":
        w, b = cand.linears[0].weight.detach(), bias(cand.linears[0], g * h)
        rows = [(w[k * h:(k + 1) * h], b[k * h:(k + 1) * h]) for k in range(g)]
    else:
        rows = [(m.weight.detach(), bias(m, h)) for m in cand.linears]
    return [((w[:, :n], w[:, n:]) if concat == "xh" else (w[:, h:], w[:, :h])) + (b, zeros) for w, b in rows]


def _mappings(cand: CellCandidate):
    """(concat label, slots) for every way the cell's weights could sit."""
    if cand.layout == "native":
        return [("native", _slots(cand, "native"))]
    if cand.layout == "split":
        x2h, h2h = cand.linears
        swaps = (False, True) if x2h.in_features == h2h.in_features else (False,)
        return [("split", _slots(cand, "split", s)) for s in swaps]
    return [(c, _slots(cand, c)) for c in ("xh", "hx")]


def _weights(kind: str, slots, perm, lbr: int = 1, z_sign: float = 1.0) -> RecurrentWeights:
    """The op's weights with ONNX gate k taken from the cell's slot perm[k] (the GRU's z gate negated when the
    cell writes h' = (1 - z) h + z h~)."""
    picked = [slots[p] for p in perm]
    if kind == "GRU" and z_sign < 0:
        picked[0] = tuple(-t for t in picked[0])
    cat = lambda i: np.concatenate([s[i].numpy().astype(np.float32) for s in picked], 0)  # noqa: E731
    return RecurrentWeights(kind, cat(0)[None], cat(1)[None], np.concatenate([cat(2), cat(3)])[None], (), lbr)


def _step(rw: RecurrentWeights, x, h, c):
    torch = require_torch()
    W, R, B = (torch.from_numpy(getattr(rw, n)[0]) for n in ("W", "R", "B"))
    _, h1, c1 = _direction(rw.kind, x[None], W, R, B, h, c, DEFAULT_ACTIVATIONS[rw.kind], rw.linear_before_reset,
                           False)
    return h1, c1


def _err(a, b) -> float:
    return float((a - b).abs().max()) if a is not None and b is not None else 0.0


def _gate_order(kind: str, perm) -> str:
    """The cell's slot order in torch's gate letters (perm[k]: the slot of ONNX gate k)."""
    letters = ONNX_GATES[kind]
    return "".join(letters[perm.index(slot)] for slot in range(len(perm)))


def match_cell(cell, cand: CellCandidate) -> tuple[CellMatch, RecurrentWeights] | None:
    """The mapping that makes ``cell`` an exact ONNX LSTM/GRU/RNN step, with the op's weights; None if none does."""
    torch = require_torch()
    x, h0, c0 = _probe(cand)
    with torch.no_grad():
        try:
            h_ref, c_ref, convention = call_cell(cell, cand.kind, x, h0, c0 if cand.kind == "LSTM" else None)
        except Exception:  # noqa: BLE001 - not callable as this kind of cell
            return None
        if tuple(h_ref.shape) != (3, cand.hidden_size) or (c_ref is not None and tuple(c_ref.shape) != tuple(h_ref.shape)):
            return None
        lbrs = (1, 0) if cand.kind == "GRU" else (1,)
        signs = (1.0, -1.0) if cand.kind == "GRU" and cand.layout != "native" else (1.0,)
        for concat, slots in _mappings(cand):
            for perm in _perms(cand):
                for lbr in lbrs:
                    for sign in signs:
                        rw = _weights(cand.kind, slots, perm, lbr, sign)
                        h1, c1 = _step(rw, x, h0, c0 if cand.kind == "LSTM" else None)
                        if max(_err(h1, h_ref), _err(c1, c_ref)) < STEP_TOL:
                            return CellMatch(cand.path, cand.input_size, cand.hidden_size, _gate_order(cand.kind, perm),
                                             concat, cand.layout, convention, cand.kind, lbr), rw
        if cand.kind == "LSTM" and cand.layout != "native":
            return _match_with_offsets(cell, cand, x, h0, c0, h_ref, c_ref, convention)
    return None


def _perms(cand: CellCandidate):
    if cand.layout == "native":  # torch's own order
        return [tuple(TORCH_ORDER[cand.kind].index(g) for g in ONNX_GATES[cand.kind])]
    return list(itertools.permutations(range(cand.gates)))


# ----------------------------------------------------------------------------- constant gate offsets (LSTM)

def _zeroed(cell, cand: CellCandidate, slot_bias: dict[int, float] | None = None):
    """A copy of the cell with its Linears zeroed (each slot's bias set from ``slot_bias``)."""
    torch = require_torch()
    clone = copy.deepcopy(cell)
    idx = {id(m): k for k, m in enumerate(cand.linears)}
    lins = [m for m in clone.modules() if isinstance(m, torch.nn.Linear)]
    originals = [m for m in cell.modules() if isinstance(m, torch.nn.Linear)]
    h = cand.hidden_size
    with torch.no_grad():
        for lin, orig in zip(lins, originals):
            lin.weight.zero_()
            if lin.bias is not None:
                lin.bias.zero_()
                for slot, value in (slot_bias or {}).items():
                    k = idx.get(id(orig))
                    if cand.layout == "four" and k == slot:
                        lin.bias.fill_(value)
                    elif cand.layout in ("one", "split") and k == 0:
                        lin.bias[slot * h:(slot + 1) * h] = value
    return clone


def _logit(p):
    torch = require_torch()
    p = p.clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


def _offsets(cell, cand: CellCandidate, x, h, slot_g: int):
    """Per-unit constants the cell adds to its i, f, g, o pre-activations (None when they cannot be read)."""
    torch = require_torch()
    zero, one = torch.zeros_like(h), torch.ones_like(h)
    plain = _zeroed(cell, cand)
    h0c, c0c, _ = call_cell(plain, "LSTM", x, h, zero)
    h1c, c1c, _ = call_cell(plain, "LSTM", x, h, one)
    s_f = c1c - c0c
    s_o = h1c / torch.tanh(c1c)
    hot = _zeroed(cell, cand, {slot_g: 30.0})
    _, cg, _ = call_cell(hot, "LSTM", x, h, zero)
    s_i = cg
    t_g = (c0c / s_i.clamp(min=1e-7)).clamp(-1 + 1e-7, 1 - 1e-7)
    out = {"i": _logit(s_i[0]), "f": _logit(s_f[0]), "g": torch.atanh(t_g[0]), "o": _logit(s_o[0])}
    if not all(torch.isfinite(v).all() for v in out.values()):
        return None
    return out


def _match_with_offsets(cell, cand, x, h0, c0, h_ref, c_ref, convention):
    torch = require_torch()
    for concat, slots in _mappings(cand):
        for perm in _perms(cand):
            slot_g = perm[ONNX_GATES["LSTM"].index("g")]
            try:
                offs = _offsets(cell, cand, x, h0, slot_g)
            except Exception:  # noqa: BLE001 - the cell does not run with zeroed weights
                return None
            if offs is None or all(float(v.abs().max()) < 1e-6 for v in offs.values()):
                continue
            shifted = list(slots)
            for gate, value in offs.items():
                s = perm[ONNX_GATES["LSTM"].index(gate)]
                wx, wh, bx, bh = shifted[s]
                shifted[s] = (wx, wh, bx + value.to(bx.dtype), bh)
            rw = _weights("LSTM", shifted, perm)
            h1, c1 = _step(rw, x, h0, c0)
            if max(_err(h1, h_ref), _err(c1, c_ref)) < STEP_TOL:
                named = ", ".join(f"{g}{float(v.mean()):+g}" for g, v in offs.items() if float(v.abs().max()) >= 1e-6)
                return CellMatch(cand.path, cand.input_size, cand.hidden_size, _gate_order("LSTM", perm), concat,
                                 cand.layout, convention, "LSTM", 1, named), rw
    return None


__all__ = ["CellMatch", "STEP_TOL", "call_cell", "match_cell"]
