"""Stateful wrappers: expose the recurrent state of a model's single nn.LSTM/GRU as inputs h0/c0 and
outputs hn/cn, so that a deployment can stream one step (or one chunk) at a time."""

from __future__ import annotations

from edgelstm.errors import BadInput, require_torch, opt


def _single_recurrent(model):
    from edgelstm.models.native_rnn import is_rnn_like

    rnns = [(n, m) for n, m in model.named_modules() if is_rnn_like(m)]
    if len(rnns) != 1:
        raise BadInput(f"{opt('stateful')} needs exactly one recurrent layer (nn.LSTM/nn.GRU, stacked layers fused in "
                       f"one) in the model, found {len(rnns)}")
    blocked = [getattr(m, "_edgelstm_not_streamable") for m in model.modules()
               if getattr(m, "_edgelstm_not_streamable", None)]
    if blocked:
        raise BadInput(f"{opt('stateful')} does not apply: {blocked[0]}, so streaming cannot reproduce the whole "
                       "sequence")
    name, rnn = rnns[0]
    if rnn.bidirectional:
        raise BadInput(f"{opt('stateful')} does not apply to a bidirectional model: its backward pass needs the whole "
                       "sequence, so it cannot stream")
    if not getattr(rnn, "batch_first", False):
        raise BadInput(f"{opt('stateful')} supports batch_first recurrent layers only")
    return name, rnn


def state_names(rnn) -> tuple[list[str], list[str]]:
    torch = require_torch()
    if isinstance(rnn, torch.nn.LSTM) or getattr(rnn, "_edgelstm_lstm_like", False):  # a decomposed/ONNX-form LSTM
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


def _stream_inputs(ex, make_feeds, seq_len: int):
    """(the data input's name, a sequence of 2*seq_len+1 steps for it, zero state feeds) of a --stateful export."""
    data = [t for t in ex.io.inputs if not t.state]
    name = data[0].name
    full = make_feeds(2, 2 * seq_len + 1, zero_state=True)
    zero = {n: v for n, v in full.items() if n != name}
    return name, full[name], zero, data[0].shape.index("seq") if "seq" in data[0].shape else 1


def stream_against_full(torch_fn, ort_fn, ex, make_feeds, seq_len: int, tol, chunks=None) -> list:
    """The --stateful export fed in chunks (state carried) against torch on the whole sequence: streaming must
    reproduce the full-sequence outputs (outputs with a time axis concatenated, the others from the last chunk)."""
    from edgelstm.converters.export.onnx_verify import verify_streaming

    name, x, zero, axis = _stream_inputs(ex, make_feeds, seq_len)
    if ex.static or "seq" not in next(t for t in ex.io.inputs if t.name == name).shape:
        raise BadInput(f"{opt('stateful')} needs a model that runs on any sequence length; this one takes a fixed "
                       "length", hint=f"drop {opt('stateful')}")
    full = lambda xx: torch_fn({name: xx, **zero})  # noqa: E731
    chunks = chunks or sorted({1, max(2, seq_len // 3)})
    return verify_streaming(full, ort_fn, x, zero, ex.out_names, ex.state_out, chunks, tol, ex.seq_axes,
                            input_name=name, seq_axis=axis).checks


def check_streams(torch_fn, ex, make_feeds, seq_len: int, tol) -> None:
    """After a failed streaming check: when torch itself, streamed the same way, does not reproduce its own whole
    sequence, the model cannot stream (layers around the recurrent one mix time steps: a convolution over time,
    pooling, attention): BadInput naming that, instead of blaming the exporters."""
    failed = [c for c in stream_against_full(torch_fn, torch_fn, ex, make_feeds, seq_len, tol) if not c.passed]
    if failed:
        raise BadInput(f"{opt('stateful')} does not apply to this model: streamed in chunks with its state carried, "
                       f"torch itself does not reproduce the whole sequence ({failed[0].name}: {failed[0].detail}); "
                       "layers around the recurrent one mix time steps (a convolution over time, pooling, attention)",
                       hint=f"drop {opt('stateful')}")
