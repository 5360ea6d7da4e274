"""Stateful wrappers: expose the recurrent state of a model's single nn.LSTM/GRU as inputs h0/c0 and
outputs hn/cn, so that a deployment can stream one step (or one chunk) at a time."""

from __future__ import annotations

from edgelstm.errors import BadInput, require_torch, opt


def _single_recurrent(model):
    torch = require_torch()
    rnns = [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.RNNBase) or getattr(m, "_edgelstm_lstm_like", False)]
    if len(rnns) != 1:
        raise BadInput(f"{opt('stateful')} needs exactly one nn.LSTM/nn.GRU in the model, found {len(rnns)}")
    name, rnn = rnns[0]
    if rnn.bidirectional:
        raise BadInput(f"{opt('stateful')} does not apply to a bidirectional model: its backward pass needs the whole "
                       "sequence, so it cannot stream")
    if not getattr(rnn, "batch_first", False):
        raise BadInput(f"{opt('stateful')} supports batch_first recurrent layers only")
    return name, rnn


def state_names(rnn) -> tuple[list[str], list[str]]:
    torch = require_torch()
    if isinstance(rnn, torch.nn.LSTM) or getattr(rnn, "_edgelstm_lstm_like", False):  # (a decomposed LSTM too)
        return ["h0", "c0"], ["hn", "cn"]
    return ["h0"], ["hn"]


def state_shapes(rnn, batch: int) -> dict[str, tuple[int, int, int]]:
    """The state inputs' shapes at ``batch``: h0 is [layers*dirs, batch, proj_size or hidden], c0 [.., hidden]."""
    layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
    h_size = getattr(rnn, "proj_size", 0) or rnn.hidden_size
    names, _ = state_names(rnn)
    return {n: (layers, batch, h_size if n == "h0" else rnn.hidden_size) for n in names}


def make_stateful(model, *, reset=None):
    """Return (wrapper, rnn) where wrapper(x, h0[, c0]) -> (y..., hn[, cn]). The model is not modified:
    the wrapper swaps in a state-injecting shim around the recurrent layer for the duration of a call.
    The state given to the recurrent layer by the model itself (zeros, a random draw, or state kept on the
    module) is replaced by the h0/c0 inputs. ``reset(model)``, when given, runs after every call: it puts back
    what the model keeps on itself between calls (see ``edgelstm.models.probing.Snapshot``)."""
    torch = require_torch()
    name, rnn = _single_recurrent(model)
    is_lstm = len(state_names(rnn)[0]) == 2

    class StateShim(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.state_in = None
            self.state_out = None

        def forward(self, x, hx=None):
            out, state = self.inner(x, self.state_in)
            self.state_out = state
            return out, state

    parent_path, _, attr = name.rpartition(".")

    class StatefulModel(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.shim = StateShim(rnn)
            self.parent = base.get_submodule(parent_path) if parent_path else base

        def _call(self, x, state):
            setattr(self.parent, attr, self.shim)
            try:
                self.shim.state_in = state
                y = self.base(x)
                return y, self.shim.state_out
            finally:
                setattr(self.parent, attr, rnn)
                self.shim.state_in = self.shim.state_out = None
                if reset is not None:
                    reset(self.base)

        if is_lstm:
            def forward(self, x, h0, c0):
                y, (hn, cn) = self._call(x, (h0, c0))
                return y, hn, cn
        else:
            def forward(self, x, h0):
                y, hn = self._call(x, h0)
                return y, hn

    wrapper = StatefulModel(model).eval()
    return wrapper, rnn


def zero_state(rnn, batch: int):
    """numpy zero states for the rnn, by input name."""
    import numpy as np

    return {n: np.zeros(shape, np.float32) for n, shape in state_shapes(rnn, batch).items()}
