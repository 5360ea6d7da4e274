"""Lift Python loops over recurrent cells to native recurrent ops.

Cells (``edgelstm.models.cells``: nn.LSTMCell/nn.GRUCell/nn.RNNCell, hand-written LSTM and GRU cells) whose step
matches an ONNX LSTM/GRU/RNN exactly (``edgelstm.converters.export.cell_matching``) are grouped into stacks: the elements of a
ModuleList/Sequential, or consecutive cells owned by the model whose sizes chain (``lstm1``, ``lstm2``); layer-major
and step-major loops over a stack compute the same. A stack becomes one ``nn.LSTM``/``nn.GRU`` (``num_layers`` = its
depth; ONNX ``GRU(linear_before_reset=0)`` for a textbook GRU) followed by the model's remaining layers as its head,
read out on the last step or every step, in the layout the model takes and returns (batch- or seq-first input, a
``[batch, seq]`` input of one feature, outputs stacked or concatenated over time, the final state returned too).
The lifted model is accepted only if it matches the original end to end at several lengths and batches."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from edgelstm.errors import require_torch
from edgelstm.models.cells import CellCandidate, cell_candidates
from edgelstm.models.native_rnn import to_torch_layer, to_torch_layers

from edgelstm.converters.export.cell_matching import CellMatch, match_cell

READOUTS = ("last", "all", "all-seq-first", "all-flat", "all-flat-seq-first")


@dataclass(frozen=True)
class LiftResult:
    model: Any
    cell: CellMatch                      # the first layer's cell
    readout: str
    max_error: float
    layers: tuple[CellMatch, ...] = ()   # every layer's cell (a stack), first to last
    layout: str = "batch-first"
    returns_state: bool = False

    def info(self) -> dict[str, Any]:
        c = self.cell
        return {"cell": c.path, "kind": c.kind, "gate_order": c.gate_order, "concat": c.concat, "linears": c.linears,
                "hidden_size": c.hidden_size, "layers": max(1, len(self.layers)), "readout": self.readout,
                "input_layout": self.layout, "returns_state": self.returns_state, "max_error": self.max_error,
                "cells": [m.path for m in self.layers] or [c.path],
                **({"linear_before_reset": c.linear_before_reset} if c.kind == "GRU" else {}),
                **({"folded_offsets": {m.path: m.offsets for m in self.layers if m.offsets}}
                   if any(m.offsets for m in self.layers) else {})}


class LiftError(Exception):
    pass


def _lifted_class():
    torch = require_torch()

    class LiftedRNN(torch.nn.Module):
        """A native recurrent layer over the sequence, then the original model's remaining layers (its head)."""

        def __init__(self, rnn, head, readout: str, layout: str, returns_state: bool):
            super().__init__()
            self.rnn, self.head = rnn, head
            self.readout, self.layout, self.returns_state = readout, layout, returns_state

        def forward(self, x):
            if self.layout in ("seq-first", "seq-first-1"):
                x = x.transpose(0, 1)
            if self.layout in ("batch-first-1", "seq-first-1"):
                x = x.unsqueeze(-1)
            out, state = self.rnn(x)
            if self.readout == "last":
                y = self.head(out[:, -1])
            else:
                y = self.head(out)
                if self.readout in ("all-seq-first", "all-flat-seq-first"):
                    y = y.transpose(0, 1)
                if self.readout == "all-flat":
                    y = y.reshape(y.shape[0], -1)
                elif self.readout == "all-flat-seq-first":
                    y = y.reshape(-1, y.shape[-1])
            if not self.returns_state:
                return y
            if isinstance(state, tuple):
                return y, (state[0][-1], state[1][-1])
            return y, state[-1]

    return LiftedRNN


def _stacks(model, candidates: list[CellCandidate]) -> tuple[list[tuple[list[str], list[CellCandidate]]], list[str]]:
    """(owner child names, cells in layer order) for each liftable group, and reasons for the rest: the elements of
    a ModuleList/Sequential child that are all cells, or consecutive cells owned by the model whose sizes chain."""
    torch = require_torch()
    by_path: dict[str, list[CellCandidate]] = {}
    for c in candidates:
        by_path.setdefault(c.path, []).append(c)
    groups, reasons, run = [], [], []
    for name, child in model.named_children():
        if name in by_path:
            run.append((name, by_path[name]))
            continue
        if run:
            groups.append(run)
            run = []
        if isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) and len(child):
            cells = [by_path.get(f"{name}.{k}") for k in range(len(child))]
            if all(cells):
                groups.append([(name, cells)])  # type: ignore[list-item]
            elif any(cells):
                reasons.append(f"{name}: only some of its elements are recurrent cells")
    if run:
        groups.append(run)
    out: list[tuple[list[str], list[CellCandidate]]] = []
    for group in groups:
        if len(group) == 1 and isinstance(group[0][1][0], list):  # a ModuleList of cells
            name, per_layer = group[0]
            out.append(([name], per_layer))  # type: ignore[arg-type]
        else:
            out.append(([n for n, _ in group], [c for _, c in group]))  # type: ignore[misc]
    grouped = {c.path for _, layers in out for options in layers for c in options}
    for c in candidates:
        if c.path not in grouped and not any(c.path.startswith(g + ".") for g in grouped):
            reasons.append(f"{c.path}: only cells owned by the top-level model (directly or in a ModuleList) "
                           "can be lifted")
    return out, reasons


def _match_layers(layers: list[list[CellCandidate]]) -> list[tuple[CellMatch, Any]] | None:
    matched = []
    for options in layers:
        found = next((m for m in (match_cell(c.module, c) for c in options) if m is not None), None)
        if found is None:
            return None
        matched.append(found)
    return matched


def _rnn_for(matched: list[tuple[CellMatch, Any]]):
    weights = [w for _, w in matched]
    rnn = to_torch_layers(weights) if len(weights) > 1 else to_torch_layer(weights[0])
    if rnn is None:  # a stack torch has no single layer for (textbook GRUs): one op per layer
        torch = require_torch()

        class Stacked(torch.nn.Module):
            _edgelstm_rnn_like = False

            def __init__(self, layers):
                super().__init__()
                self.layers = torch.nn.ModuleList(layers)

            def forward(self, x):
                states = []
                for layer in self.layers:
                    x, s = layer(x)
                    states.append(s)
                if isinstance(states[0], tuple):
                    return x, (torch.cat([s[0] for s in states]), torch.cat([s[1] for s in states]))
                return x, torch.cat(states)

        rnn = Stacked([to_torch_layer(w) for w in weights])
    return rnn


def lift_cells(model, input_size: int, *, call=None, lengths=(1, 5, 23), batches=(1, 3), tol: float = 1e-5) -> LiftResult:
    """Rewrite a model built around recurrent cells as a native recurrent layer + head, verified end to end.
    ``call`` (``edgelstm.models.calling.ModelCall``): how the model is called (its input layout and dtype); without
    it the model takes ``[batch, seq, input_size]`` floats."""
    torch = require_torch()
    candidates = cell_candidates(model)
    if not candidates:
        raise LiftError("no submodule looks like a recurrent cell (nn.LSTMCell/GRUCell, one Linear(in+h, 4h), four "
                        "Linear(in+h, h), x2h = Linear(in, 4h) + h2h = Linear(h, 4h), or their GRU forms)")
    groups, reasons = _stacks(model, candidates)
    layouts = _layouts(call, input_size)
    for owners, layers in groups:
        matched = _match_layers(layers)
        paths = ", ".join(options[0].path for options in layers)
        if matched is None:
            reasons.append(f"{paths}: no gate order / weight layout reproduces its step exactly")
            continue
        cells = [m for m, _ in matched]
        if not any(cells[0].input_size == n for n, _ in layouts):
            reasons.append(f"{cells[0].path}: input size {cells[0].input_size} != model input size {input_size}")
            continue
        if any(c.input_size != cells[0].hidden_size or c.hidden_size != cells[0].hidden_size for c in cells[1:]) \
                or len({c.kind for c in cells}) != 1:
            reasons.append(f"{', '.join(owners)}: the stacked cells do not chain (one kind, layer k's hidden size is "
                           "layer k+1's input)")
            continue
        rnn = _rnn_for(matched)
        rest = [m for name, m in model.named_children() if name not in owners]
        head = torch.nn.Sequential(*rest) if rest else torch.nn.Identity()
        result = _first_fit(model, rnn, head, matched, layouts, call, lengths, batches, tol)
        if result is not None:
            return result
        first = cells[0]
        reasons.append(f"{', '.join(owners)}: the cell matched ({first.gate_order}, {first.concat}) but the model "
                       "around it is not 'cells over time, then head' (no end-to-end match)")
    raise LiftError("; ".join(reasons) or "no liftable cell")


def _layouts(call, input_size: int) -> list[tuple[int, str]]:
    """(feature size, layout) of the model's input: from its contract, else [batch, seq, input_size]."""
    if call is None:
        return [(input_size, "batch-first")]
    t = call.io.data_inputs[0]
    dims = tuple(t.shape)
    if len(dims) == 3 and isinstance(dims[2], int):
        return [(dims[2], "seq-first" if dims[:2] == ("seq", "batch") else "batch-first")]
    if len(dims) == 2 and "seq" in dims:
        return [(1, "seq-first-1" if dims[0] == "seq" else "batch-first-1")]
    return []


def _first_fit(model, rnn, head, matched, layouts, call, lengths, batches, tol):
    cls = _lifted_class()
    for (_, layout), readout, state in itertools.product(layouts, READOUTS, (False, True)):
        lifted = cls(rnn, head, readout, layout, state).eval()
        err = _end_to_end_error(model, lifted, call, layout, matched[0][0].input_size, lengths, batches)
        if err is not None and err < tol:
            layers = tuple(m for m, _ in matched)
            return LiftResult(lifted, layers[0], readout, err, layers, layout, state)
    return None


def _end_to_end_error(original, lifted, call, layout: str, n_in: int, lengths, batches) -> float | None:
    torch = require_torch()
    import numpy as np

    from edgelstm.artifacts.feeds import random_feeds
    from edgelstm.models.calling import flatten_outputs

    rng = np.random.default_rng(1)
    worst = 0.0
    with torch.no_grad():
        for t in lengths:
            for b in batches:
                if call is not None:
                    tensors = call.tensors(random_feeds(call.io, b, t, rng))
                    x = tensors[call.io.data_inputs[0].name]
                    run = lambda: call(tensors)  # noqa: E731
                else:
                    x = torch.from_numpy(rng.standard_normal((b, t, n_in)).astype(np.float32))
                    run = lambda: flatten_outputs(original(x))  # noqa: E731
                try:
                    ref = run()
                    got = flatten_outputs(lifted(x))
                except Exception:  # noqa: BLE001 - this readout does not fit the model
                    return None
                if len(ref) != len(got) or any(r.shape != g.shape for r, g in zip(ref, got)):
                    return None
                for r, g in zip(ref, got):
                    scale = max(1.0, float(r.abs().max()))
                    worst = max(worst, float((r - g).abs().max()) / scale)
    return worst


__all__ = ["LiftError", "LiftResult", "lift_cells"]
