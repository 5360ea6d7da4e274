"""Recurrent layers that ONNX has an op for but torch has no module for: an LSTM/GRU/RNN with activations other
than torch's (Keras' ``hard_sigmoid``, ``relu``, ``linear``...), and the GRU of the textbook equations, which
applies the reset gate *before* the recurrent matmul (ONNX ``GRU`` with ``linear_before_reset=0``; torch's
``nn.GRU`` is ``linear_before_reset=1``).

``OnnxRecurrent`` keeps its weights in the ONNX op's layout (``W [D, G*H, in]``, ``R [D, G*H, H]``,
``B [D, 2*G*H]``; gates LSTM ``i,o,f,c``, GRU ``z,r,h``, RNN ``i``) and is called like ``nn.LSTM(batch_first=True)``:
``forward(x, hx=None) -> (y [batch, seq, D*H], h_n | (h_n, c_n))``. In torch it computes the op's equations step by
step (the reference); exported with the TorchScript-based exporter it becomes one native ONNX op (an
``autograd.Function`` with a ``symbolic``), so it runs any length, quantizes and streams like an nn.LSTM/nn.GRU.
``RecurrentWeights.to_torch`` gives the ``nn.LSTM``/``nn.GRU``/``nn.RNN`` instead when torch has the same layer."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgelstm.errors import require_torch

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
#: activations the ONNX recurrent ops take, and whether each uses (alpha, beta)
ONNX_ACTIVATIONS = {"Sigmoid": (), "Tanh": (), "Relu": (), "Softsign": (), "Softplus": (),
                    "HardSigmoid": ("alpha", "beta"), "Affine": ("alpha", "beta"), "LeakyRelu": ("alpha",),
                    "ThresholdedRelu": ("alpha",), "ScaledTanh": ("alpha", "beta"), "Elu": ("alpha",)}
_DEFAULTS = {"HardSigmoid": (0.2, 0.5), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
             "Elu": (1.0, None), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0)}
#: torch's gate order as ONNX block indices: LSTM i,f,g,o = ONNX i,o,f,c blocks 0,2,3,1; GRU r,z,n = z,r,h 1,0,2
TORCH_FROM_ONNX = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}


@dataclass(frozen=True)
class Activation:
    """One ONNX recurrent activation: ``name`` (a key of ONNX_ACTIVATIONS) with its alpha/beta."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def params(self) -> tuple[float | None, float | None]:
        da, db = _DEFAULTS.get(self.name, (None, None))
        return (self.alpha if self.alpha is not None else da), (self.beta if self.beta is not None else db)

    def apply(self, x):
        torch = require_torch()
        a, b = self.params()
        n = self.name
        if n == "Sigmoid":
            return torch.sigmoid(x)
        if n == "Tanh":
            return torch.tanh(x)
        if n == "Relu":
            return torch.relu(x)
        if n == "Softsign":
            return x / (1 + x.abs())
        if n == "Softplus":
            return torch.nn.functional.softplus(x)
        if n == "HardSigmoid":
            return torch.clamp(a * x + b, 0.0, 1.0)
        if n == "Affine":
            return a * x + b
        if n == "LeakyRelu":
            return torch.where(x >= 0, x, a * x)
        if n == "ThresholdedRelu":
            return torch.where(x > a, x, torch.zeros_like(x))
        if n == "ScaledTanh":
            return a * torch.tanh(b * x)
        if n == "Elu":
            return torch.where(x >= 0, x, a * (torch.exp(x) - 1))
        raise ValueError(f"unknown ONNX activation {n!r}")

    def describe(self) -> str:
        a, b = self.params()
        used = ONNX_ACTIVATIONS.get(self.name, ())
        args = [f"{k}={v:g}" for k, v in zip(("alpha", "beta"), (a, b)) if k in used and v is not None]
        return self.name + (f"({', '.join(args)})" if args else "")


SIGMOID, TANH = Activation("Sigmoid"), Activation("Tanh")
DEFAULT_ACTIVATIONS = {"LSTM": (SIGMOID, TANH, TANH), "GRU": (SIGMOID, TANH), "RNN": (TANH,)}


@dataclass
class RecurrentWeights:
    """One recurrent layer in the ONNX op's layout (numpy, float32): ``W [D, G*H, in]``, ``R [D, G*H, H]``,
    ``B [D, 2*G*H]`` (input biases, then recurrent biases); ``activations`` per direction (LSTM f, g, h; GRU f, g;
    RNN f); GRU ``linear_before_reset`` (1: torch's GRU and Keras ``reset_after=True``; 0: the textbook GRU)."""

    kind: str
    W: np.ndarray
    R: np.ndarray
    B: np.ndarray
    activations: tuple[Activation, ...] = ()
    linear_before_reset: int = 1
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.activations = tuple(self.activations) or DEFAULT_ACTIVATIONS[self.kind]

    @property
    def hidden_size(self) -> int:
        return int(self.R.shape[-1])

    @property
    def input_size(self) -> int:
        return int(self.W.shape[-1])

    @property
    def directions(self) -> int:
        return int(self.W.shape[0])

    def torch_native(self) -> str | None:
        """The torch layer with exactly these equations ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"), or None."""
        acts = tuple(a.name for a in self.activations)
        if self.kind == "LSTM" and acts == ("Sigmoid", "Tanh", "Tanh"):
            return "LSTM"
        if self.kind == "GRU" and acts == ("Sigmoid", "Tanh") and self.linear_before_reset == 1:
            return "GRU"
        if self.kind == "RNN" and acts in (("Tanh",), ("Relu",)):
            return "RNN_" + acts[0].upper()
        return None

    def onnx_form(self) -> str:
        acts = "" if self.activations == DEFAULT_ACTIVATIONS[self.kind] else \
            ", activations " + ", ".join(a.describe() for a in self.activations)
        extra = ", linear_before_reset=0" if self.kind == "GRU" and not self.linear_before_reset else ""
        return f"{self.kind} ({'bidirectional' if self.directions == 2 else 'forward'}, hidden {self.hidden_size}{acts}{extra})"

    def torch_blocks(self, d: int) -> tuple[Any, Any, Any, Any]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of direction ``d`` in torch's gate order."""
        torch = require_torch()
        h = self.hidden_size
        order = TORCH_FROM_ONNX[self.kind]

        def reorder(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(np.concatenate([a[k * h:(k + 1) * h] for k in order], 0)))

        g = GATES[self.kind]
        return (reorder(self.W[d]), reorder(self.R[d]), reorder(self.B[d][: g * h]), reorder(self.B[d][g * h:]))


def to_torch_layers(layers: list[RecurrentWeights]):
    """One module for a stack of recurrent layers: an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (batch_first, ``num_layers``
    = the stack's depth) when torch has the layer and every layer has the same kind, size and directions, else
    None (build them one by one with ``to_torch_layer``)."""
    torch = require_torch()
    first = layers[0]
    native = first.torch_native()
    if native is None or any(l.torch_native() != native or l.hidden_size != first.hidden_size
                             or l.directions != first.directions for l in layers):
        return None
    bidir = first.directions == 2
    kw = dict(num_layers=len(layers), batch_first=True, bidirectional=bidir)
    if native == "LSTM":
        rnn = torch.nn.LSTM(first.input_size, first.hidden_size, **kw)
    elif native == "GRU":
        rnn = torch.nn.GRU(first.input_size, first.hidden_size, **kw)
    else:
        rnn = torch.nn.RNN(first.input_size, first.hidden_size, nonlinearity=native[4:].lower(), **kw)
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for d in range(layer.directions):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                w_ih, w_hh, b_ih, b_hh = layer.torch_blocks(d)
                for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
                    getattr(rnn, name + sfx).copy_(value)
    return rnn.eval()


def to_torch_layer(layer: RecurrentWeights):
    """The torch module of one recurrent layer: native when torch has it, else an ``OnnxRecurrent``."""
    native = to_torch_layers([layer])
    return native if native is not None else onnx_recurrent_class()(layer).eval()


# ------------------------------------------------------------------------------------ the op and its module

def _direction(kind, x, W, R, B, h, c, acts, lbr: int, reverse: bool):
    """The ONNX op's equations for one direction; x [T, b, in]. Returns (y [T, b, H], h, c)."""
    torch = require_torch()
    H = R.shape[-1]
    half = B.shape[-1] // 2
    wb, rb = B[:half], B[half:]
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    ys = [None] * x.shape[0]
    for t in steps:
        z = torch.matmul(x[t], W.t()) + wb
        if kind == "LSTM":
            i, o, f, cc = (z + torch.matmul(h, R.t()) + rb).split(H, -1)
            f_, g_, h_ = acts
            c = f_.apply(f) * c + f_.apply(i) * g_.apply(cc)
            h = f_.apply(o) * h_.apply(c)
        elif kind == "GRU":
            f_, g_ = acts
            xz, xr, xh = z.split(H, -1)
            rz, rr, rh = R.split(H, 0)
            bz, br, bh = rb.split(H, -1)
            zt = f_.apply(xz + torch.matmul(h, rz.t()) + bz)
            rt = f_.apply(xr + torch.matmul(h, rr.t()) + br)
            if lbr:
                ht = g_.apply(xh + rt * (torch.matmul(h, rh.t()) + bh))
            else:
                ht = g_.apply(xh + torch.matmul(rt * h, rh.t()) + bh)
            h = (1 - zt) * ht + zt * h
        else:
            h = acts[0].apply(z + torch.matmul(h, R.t()) + rb)
        ys[t] = h
    return torch.stack(ys, 0), h, c


@functools.cache
def _function():
    """The autograd.Function: the op's equations in torch, one native ONNX op when exported (defined once)."""
    torch = require_torch()

    class OnnxRecurrentOp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, W, R, B, h0, c0, kind, acts, lbr):  # noqa: ARG004 - ctx: no backward
            ys, hs, cs = [], [], []
            for d in range(W.shape[0]):
                y, h, c = _direction(kind, x, W[d], R[d], B[d], h0[d], c0[d] if c0 is not None else None,
                                     acts[d], lbr, reverse=d == 1)
                ys.append(y)
                hs.append(h)
                cs.append(c)
            y = torch.stack(ys, 1)  # [T, D, b, H], the op's Y
            if kind == "LSTM":
                return y, torch.stack(hs, 0), torch.stack(cs, 0)
            return y, torch.stack(hs, 0)

        @staticmethod
        def symbolic(g, x, W, R, B, h0, c0, kind, acts, lbr):
            unused = g.op("prim::Constant")
            unused.setType(torch._C.OptionalType.ofTensor())
            names, alphas, betas = [], [], []
            for per_dir in acts:
                for a in per_dir:
                    names.append(a.name)
                    al, be = a.params()
                    used = ONNX_ACTIVATIONS[a.name]
                    if "alpha" in used:
                        alphas.append(float(al))
                    if "beta" in used:
                        betas.append(float(be))
            attrs: dict[str, Any] = {"hidden_size_i": int(R.type().sizes()[-1]), "activations_s": names,
                                     "direction_s": "bidirectional" if len(acts) == 2 else "forward"}
            if alphas:
                attrs["activation_alpha_f"] = alphas
            if betas:
                attrs["activation_beta_f"] = betas
            if kind == "GRU":
                attrs["linear_before_reset_i"] = int(lbr)
            if kind == "LSTM":
                return g.op("LSTM", x, W, R, B, unused, h0, c0, outputs=3, **attrs)
            return g.op(kind, x, W, R, B, unused, h0, outputs=2, **attrs)

    return OnnxRecurrentOp


@functools.cache
def onnx_recurrent_class():
    """The OnnxRecurrent module class (defined once torch is imported)."""
    torch = require_torch()

    class OnnxRecurrent(torch.nn.Module):
        """A recurrent layer in the ONNX op's layout, called like ``nn.LSTM(batch_first=True)``; see the module doc."""

        _edgelstm_rnn_like = True  # edgelstm.converters.export.stateful and the route planner treat it like nn.LSTM/nn.GRU

        def __init__(self, weights: RecurrentWeights):
            super().__init__()
            self.mode = weights.kind
            self.hidden_size = weights.hidden_size
            self.input_size = weights.input_size
            self.num_layers, self.batch_first, self.proj_size = 1, True, 0
            self.bidirectional = weights.directions == 2
            self.acts = tuple(weights.activations for _ in range(weights.directions))
            self.linear_before_reset = int(weights.linear_before_reset)
            self.onnx_form = weights.onnx_form()
            for name in ("W", "R", "B"):
                self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(getattr(weights, name))))
            if self.mode == "LSTM":
                self._edgelstm_lstm_like = True

        def forward(self, x, hx=None):
            seq = x.transpose(0, 1)
            dirs, batch = self.W.shape[0], seq.shape[1]
            W, R, B = (t.to(seq.dtype) for t in (self.W, self.R, self.B))
            if hx is None:
                h0 = seq.new_zeros(dirs, batch, self.hidden_size)
                c0 = seq.new_zeros(dirs, batch, self.hidden_size) if self.mode == "LSTM" else None
            elif self.mode == "LSTM":
                h0, c0 = hx
            else:
                h0, c0 = hx, None
            outs = _function().apply(seq, W, R, B, h0, c0, self.mode, self.acts, self.linear_before_reset)
            y = outs[0]  # [T, D, b, H]
            y = y.permute(2, 0, 1, 3).reshape(batch, seq.shape[0], dirs * self.hidden_size)
            state = (outs[1], outs[2]) if self.mode == "LSTM" else outs[1]
            return y, state

        def extra_repr(self) -> str:
            return self.onnx_form

    return OnnxRecurrent


def is_rnn_like(module) -> bool:
    """An nn.LSTM/nn.GRU/nn.RNN or a module that behaves like one (OnnxRecurrent, a decomposed LSTM)."""
    torch = require_torch()
    return isinstance(module, torch.nn.RNNBase) or bool(getattr(module, "_edgelstm_rnn_like", False)
                                                       or getattr(module, "_edgelstm_lstm_like", False))


__all__ = ["Activation", "DEFAULT_ACTIVATIONS", "GATES", "ONNX_ACTIVATIONS", "RecurrentWeights", "is_rnn_like",
           "onnx_recurrent_class", "to_torch_layer", "to_torch_layers"]
