"""Keras activations in torch and in the ONNX recurrent ops, by the Keras version that saved the file.

``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras 2 and ``clip(x / 6 + 0.5, 0, 1)`` in Keras 3 (its
``relu6(x + 3) / 6``): the same name computes two functions, so the file's ``keras_version`` decides. A file that
does not say which Keras saved it is read as Keras 3 when its config has Keras 3's ``module`` keys, else as Keras 2."""

from __future__ import annotations

from typing import Any

from edgelstm.errors import require_torch
from edgelstm.models.native_rnn import Activation

#: Dense/Activation layers: the activations edgelstm computes in torch exactly as Keras does
TORCH_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu", "softplus",
                     "softsign", "gelu", "swish", "silu", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
                     "relu6", "leaky_relu", "mish")
#: recurrent layers: the activations an ONNX LSTM/GRU/RNN op can apply (others have no native form)
RECURRENT_ACTIVATIONS = ("tanh", "sigmoid", "relu", "hard_sigmoid", "linear", "softsign", "softplus", "elu")


def activation_name(value: Any) -> str | None:
    """The built-in activation a config value names ("relu", {"class_name": "function", "config": "relu"}), or
    None for a custom one (a registered function, a layer object)."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        cfg = value.get("config")
        module = str(value.get("module") or "keras.activations")
        builtin = module.startswith(("keras", "tensorflow")) and value.get("registered_name") in (None, "function")
        if isinstance(cfg, str) and builtin and value.get("class_name") in ("function", None):
            return cfg
    return None


def hard_sigmoid_slope(major: int) -> float:
    return 0.2 if major < 3 else 1.0 / 6.0


def onnx_activation(name: str, major: int) -> Activation | None:
    """The ONNX recurrent-op activation of a Keras activation name, or None when it has none."""
    simple = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softsign": "Softsign", "softplus": "Softplus"}
    if name in simple:
        return Activation(simple[name])
    if name == "hard_sigmoid":
        return Activation("HardSigmoid", hard_sigmoid_slope(major), 0.5)
    if name == "linear":
        return Activation("Affine", 1.0, 0.0)
    if name == "elu":
        return Activation("Elu", 1.0)
    return None


_MODULE = None


def keras_activation_class():
    """``KerasActivation(name, major)``: one Keras activation as an nn.Module (softmax over the last axis)."""
    global _MODULE
    if _MODULE is not None:
        return _MODULE
    torch = require_torch()
    F = torch.nn.functional

    class KerasActivation(torch.nn.Module):
        def __init__(self, name: str, major: int):
            super().__init__()
            self.name = name
            self.slope = hard_sigmoid_slope(major)

        def forward(self, x):
            n = self.name
            if n == "linear":
                return x
            if n in ("relu", "sigmoid", "tanh", "selu", "softplus", "softsign", "mish"):
                return getattr(F, n)(x) if n not in ("sigmoid", "tanh") else getattr(torch, n)(x)
            if n == "softmax":
                return torch.softmax(x, -1)
            if n == "log_softmax":
                return torch.log_softmax(x, -1)
            if n == "elu":
                return F.elu(x, 1.0)
            if n == "gelu":
                return F.gelu(x)
            if n in ("swish", "silu"):
                return x * torch.sigmoid(x)
            if n == "exponential":
                return torch.exp(x)
            if n == "hard_sigmoid":
                return torch.clamp(self.slope * x + 0.5, 0.0, 1.0)
            if n in ("hard_silu", "hard_swish"):
                return x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)
            if n == "relu6":
                return torch.clamp(x, 0.0, 6.0)
            if n == "leaky_relu":
                return F.leaky_relu(x, 0.2)
            raise ValueError(f"unknown Keras activation {n!r}")

        def extra_repr(self) -> str:
            return self.name + (f" (slope {self.slope:.4g})" if self.name == "hard_sigmoid" else "")

    _MODULE = KerasActivation
    return _MODULE


__all__ = ["RECURRENT_ACTIVATIONS", "TORCH_ACTIVATIONS", "activation_name", "hard_sigmoid_slope",
           "keras_activation_class", "onnx_activation"]
