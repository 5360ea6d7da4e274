"""nn.LSTM with ``proj_size`` (LSTMP): neither ONNX exporter writes it (the TorchScript exporter raises
"LSTMs with projections", the dynamo one emits a graph onnxruntime rejects). It is decomposed here into the
same arithmetic, one scripted loop per layer and direction:

    gates = x_t W_ih^T + b_ih + h W_hh^T + b_hh;  i, f, g, o = split(gates)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g);   h = (sigmoid(o) * tanh(c)) W_hr^T

The loop body is a ``torch.jit.script`` function, so tracing the model around it keeps an ONNX ``Loop`` that
runs any sequence length; the result is verified against the original model like every export."""

from __future__ import annotations

import copy
from typing import Any

from edgelstm.errors import require_torch

_LOOP = None


def _loop_fn():
    """The scripted per-direction loop (compiled once per process)."""
    global _LOOP
    if _LOOP is None:
        torch = require_torch()
        from typing import List

        def projected_lstm_direction(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor,
                                     w_hh: torch.Tensor, b: torch.Tensor, w_hr: torch.Tensor):
            xs = torch.matmul(x, w_ih.t()) + b
            outs: List[torch.Tensor] = []
            for t in range(xs.size(0)):
                gates = xs[t] + torch.matmul(h, w_hh.t())
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.matmul(torch.sigmoid(o) * torch.tanh(c), w_hr.t())
                outs.append(h)
            return torch.stack(outs, 0), h, c

        _LOOP = torch.jit.script(projected_lstm_direction)
    return _LOOP


def _decomposed_class():
    torch = require_torch()
    nn = torch.nn

    class DecomposedProjectedLSTM(nn.Module):
        """Drop-in for nn.LSTM(proj_size=P): same call convention, same outputs (seq, (h_n, c_n))."""

        _edgelstm_lstm_like = True  # edgelstm.converters.export.stateful streams it like an nn.LSTM

        def __init__(self, lstm):
            super().__init__()
            self.input_size, self.hidden_size, self.proj_size = lstm.input_size, lstm.hidden_size, lstm.proj_size
            self.num_layers, self.batch_first, self.bidirectional = lstm.num_layers, lstm.batch_first, lstm.bidirectional
            self.dirs = 2 if lstm.bidirectional else 1
            for layer in range(self.num_layers):
                for d in range(self.dirs):
                    sfx = f"_l{layer}" + ("_reverse" if d else "")
                    w = {n: getattr(lstm, n + sfx).detach().clone() for n in ("weight_ih", "weight_hh", "weight_hr")}
                    b = ((getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx)).detach().clone()
                         if lstm.bias else torch.zeros(4 * self.hidden_size))
                    for n, v in (*w.items(), ("bias", b)):
                        self.register_buffer(f"{n}_{layer}_{d}", v)

        def forward(self, x, hx=None):
            if x.dim() == 2:
                raise ValueError("unbatched input is not supported by the decomposed proj_size LSTM")
            seq = x.transpose(0, 1) if self.batch_first else x
            n = self.num_layers * self.dirs
            if hx is None:
                h0 = seq.new_zeros(n, seq.shape[1], self.proj_size)
                c0 = seq.new_zeros(n, seq.shape[1], self.hidden_size)
            else:
                h0, c0 = hx
            loop = _loop_fn()
            hs, cs = [], []
            inp = seq
            for layer in range(self.num_layers):
                outs = []
                for d in range(self.dirs):
                    k = layer * self.dirs + d
                    p = {name: getattr(self, f"{name}_{layer}_{d}") for name in
                         ("weight_ih", "weight_hh", "bias", "weight_hr")}
                    xi = torch.flip(inp, [0]) if d else inp
                    out, h, c = loop(xi, h0[k], c0[k], p["weight_ih"], p["weight_hh"], p["bias"], p["weight_hr"])
                    outs.append(torch.flip(out, [0]) if d else out)
                    hs.append(h)
                    cs.append(c)
                inp = outs[0] if self.dirs == 1 else torch.cat(outs, 2)
            out = inp.transpose(0, 1) if self.batch_first else inp
            return out, (torch.stack(hs, 0), torch.stack(cs, 0))

    return DecomposedProjectedLSTM


def decompose_projections(model) -> tuple[Any, list[dict[str, Any]]] | None:
    """A copy of ``model`` with every nn.LSTM(proj_size > 0) replaced by its decomposition, and what was
    replaced; None when the model has no projected LSTM. The original model is not modified."""
    torch = require_torch()
    paths = [p for p, m in model.named_modules() if isinstance(m, torch.nn.LSTM) and getattr(m, "proj_size", 0) > 0]
    if not paths:
        return None
    new = copy.deepcopy(model)
    cls = _decomposed_class()
    info = []
    for path in paths:
        lstm = new.get_submodule(path)
        parent_path, _, attr = path.rpartition(".")
        replacement = cls(lstm).eval()
        if not path:  # the model is the LSTM itself
            new = replacement
        else:
            setattr(new.get_submodule(parent_path), attr, replacement)
        info.append({"module": path or "(model)", "kind": "LSTM", "proj_size": lstm.proj_size,
                     "hidden_size": lstm.hidden_size, "layers": lstm.num_layers, "bidirectional": lstm.bidirectional,
                     "as": "scripted loop per layer and direction (ONNX Loop)"})
    new._edgelstm_scripted_inside = True
    return new.eval(), info
