"""The recurrent state a forward argument takes: what it is (``StateArg``: LSTM or not, layers, sizes, the layout
of ``edgelstm.models.state_layouts``) and the candidates worth trying for a model, sized from its nn.LSTM/nn.GRU
layers or, where it has none, from its LSTM/GRU cells."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from edgelstm.artifacts.iospec import TensorSpec
from edgelstm.errors import require_torch
from edgelstm.models.state_layouts import layouts_for


@dataclass(frozen=True)
class StateArg:
    """A forward argument that takes the recurrent state of ``rnn``: (h, c) for an LSTM, h otherwise."""

    param: str
    lstm: bool
    layers: int                  # num_layers * directions
    hidden: int                  # size of h (proj_size when set)
    cell: int                    # size of c
    forced: bool = False         # named with --state-arg (else detected)
    layout: str = "stacked"      # the structure the forward takes (edgelstm.models.state_layouts)
    batch: int | None = None     # a model that runs only at this batch size

    @property
    def in_names(self) -> tuple[str, ...]:
        return ("h0", "c0") if self.lstm else ("h0",)

    @property
    def out_names(self) -> tuple[str, ...]:
        return ("hn", "cn") if self.lstm else ("hn",)

    def specs(self) -> tuple[TensorSpec, ...]:
        sizes = (self.hidden, self.cell) if self.lstm else (self.hidden,)
        b = self.batch if self.batch is not None else "batch"
        return tuple(TensorSpec(n, "float32", (self.layers, b, s), True) for n, s in zip(self.in_names, sizes))

    def to_dict(self) -> dict[str, Any]:
        return {"argument": self.param, "kind": "LSTM" if self.lstm else "GRU/RNN", "layers": self.layers,
                "hidden_size": self.hidden, "inputs": list(self.in_names), "outputs": list(self.out_names),
                "layout": self.layout}



def _rnns(module) -> list:
    torch = require_torch()
    return [m for m in module.modules() if isinstance(m, torch.nn.RNNBase) or _kind(m) in ("LSTM", "GRU", "RNN")]


def _kind(m) -> str:
    return str(getattr(m, "original_name", None) or type(m).__name__)


def state_arg_of(rnn, param: str, forced: bool) -> StateArg:
    dirs = 2 if getattr(rnn, "bidirectional", False) else 1
    hidden = int(rnn.hidden_size)
    proj = int(getattr(rnn, "proj_size", 0) or 0)
    lstm = _kind(rnn) == "LSTM"
    return StateArg(param, lstm, int(rnn.num_layers) * dirs, proj or hidden, hidden, forced)


def state_candidates(module, param, forced: bool) -> list:
    """The StateArgs to try for the forward argument ``param`` (an ``inputs.Param``), most likely first: from the
    model's nn.LSTM/nn.GRU (the last one when there are several, or all of them as per-layer states), else from its
    LSTM/GRU cells when the argument must be given (no default) or was named with --state-arg. Empty: no state."""
    rnns = _rnns(module)
    out: list = []
    if rnns:
        base = state_arg_of(rnns[-1] if len(rnns) > 1 else rnns[0], param.name, forced)
        shapes = [state_arg_of(r, param.name, forced) for r in rnns]
        singles = [a for a in shapes if (a.lstm, a.layers, a.hidden) == (base.lstm, 1, base.hidden)]
        per_layer = len(singles) if base.layers == 1 and len(singles) == len(rnns) > 1 else 0
        out = [replace(base, layout=layout) for layout in layouts_for(base.layers, 0)]
        out += [replace(base, layers=per_layer, layout=layout) for layout in ("per_layer", "per_layer_2d")
                if per_layer]
        return out
    if param.has_default and not forced:
        return []  # an optional state with no recurrent layer to size it: keep the default
    from edgelstm.models.cells import cell_candidates

    cells = [c for c in cell_candidates(module) if c.kind in ("LSTM", "GRU")]
    if not cells:
        return []
    first = cells[0]
    same = [c for c in cells if (c.kind, c.hidden_size) == (first.kind, first.hidden_size)]
    lstm = first.kind == "LSTM"
    out = [StateArg(param.name, lstm, 1, first.hidden_size, first.hidden_size, forced, "2d")]
    if len(same) > 1:
        out.append(StateArg(param.name, lstm, len(same), first.hidden_size, first.hidden_size, forced, "per_layer_2d"))
    return out



__all__ = ["StateArg", "state_arg_of", "state_candidates"]
