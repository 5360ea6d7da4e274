"""The torch modules a Keras model becomes: one block per Keras layer (stacked recurrent layers fused into one
``nn.LSTM``/``nn.GRU`` with ``num_layers``), chained by ``KerasModel``. Every block computes what the Keras layer
computes at inference, on ``[batch, seq, features]`` (Keras' layout)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from edgelstm.errors import require_torch

_BLOCKS: SimpleNamespace | None = None


def blocks() -> SimpleNamespace:
    """The block classes (defined once torch is imported)."""
    global _BLOCKS
    if _BLOCKS is None:
        _BLOCKS = _define()
    return _BLOCKS


def _define() -> SimpleNamespace:
    torch = require_torch()
    return SimpleNamespace(**_define_chain(torch), **_define_layers(torch))


def _define_chain(torch) -> dict[str, type]:
    """The model (a chain of blocks) and its recurrent block."""
    nn = torch.nn

    class KerasModel(nn.Module):
        """The chain of blocks; ``_edgelstm_inputs`` declares the input Keras saved (edgelstm.models.inputs)."""

        def __init__(self, chain: list[Any], inputs: tuple = (), name: str = "keras"):
            super().__init__()
            self.blocks = nn.ModuleList(chain)
            self._edgelstm_inputs = tuple(inputs)
            self.keras_name = name

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    class KerasRecurrent(nn.Module):
        """An LSTM/GRU/SimpleRNN layer (or a fused stack, or a Bidirectional one) with Keras' options:
        ``go_backwards`` (reads the sequence reversed and returns the outputs in that order), ``return_sequences``
        (else the last output; Bidirectional: the forward direction's last step and the backward one's first),
        ``merge_mode`` (concat, sum, ave, mul)."""

        def __init__(self, rnn, *, hidden: int, directions: int, return_sequences: bool, go_backwards: bool,
                     merge_mode: str = "concat"):
            super().__init__()
            self.rnn = rnn
            self.hidden, self.directions = hidden, directions
            self.return_sequences, self.go_backwards, self.merge_mode = return_sequences, go_backwards, merge_mode
            if go_backwards:
                self._edgelstm_not_streamable = "go_backwards=True reads each call's steps in reverse"

        def forward(self, x):
            if self.go_backwards:
                x = torch.flip(x, [1])
            y, _ = self.rnn(x)
            if self.directions == 1:
                return y if self.return_sequences else y[:, -1]
            h = self.hidden
            fwd, bwd = (y[..., :h], y[..., h:]) if self.return_sequences else (y[:, -1, :h], y[:, 0, h:])
            if self.merge_mode == "concat":
                return torch.cat([fwd, bwd], -1)
            if self.merge_mode == "sum":
                return fwd + bwd
            if self.merge_mode == "ave":
                return (fwd + bwd) / 2
            return fwd * bwd

        def extra_repr(self) -> str:
            opts = [f"return_sequences={self.return_sequences}"]
            if self.go_backwards:
                opts.append("go_backwards=True")
            if self.directions == 2:
                opts.append(f"merge_mode={self.merge_mode}")
            return ", ".join(opts)

    return {"KerasModel": KerasModel, "KerasRecurrent": KerasRecurrent}


def _define_layers(torch) -> dict[str, type]:
    """The other layers' blocks."""
    nn = torch.nn
    F = nn.functional

    class ChannelAffine(nn.Module):
        """BatchNormalization at inference: ``x * scale + shift`` over the last axis."""

        def __init__(self, scale, shift):
            super().__init__()
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

        def forward(self, x):
            return x * self.scale + self.shift

    class KerasConv1D(nn.Module):
        """Conv1D on channels-last input, with Keras' 'same'/'causal' padding made explicit."""

        def __init__(self, conv, left: int, right: int, activation):
            super().__init__()
            self.conv, self.left, self.right, self.activation = conv, left, right, activation

        def forward(self, x):
            x = x.transpose(1, 2)
            if self.left or self.right:
                x = F.pad(x, (self.left, self.right))
            return self.activation(self.conv(x).transpose(1, 2))

    class RepeatVector(nn.Module):
        def __init__(self, n: int):
            super().__init__()
            self.n = n

        def forward(self, x):
            return x.unsqueeze(1).expand(-1, self.n, -1)

    class GlobalPool1D(nn.Module):
        def __init__(self, mode: str, keepdims: bool):
            super().__init__()
            self.mode, self.keepdims = mode, keepdims

        def forward(self, x):
            if self.mode == "max":
                return torch.amax(x, 1, keepdim=self.keepdims)
            return torch.mean(x, 1, keepdim=self.keepdims)

    class Flatten(nn.Module):
        def forward(self, x):
            return torch.flatten(x, 1)

    return {"ChannelAffine": ChannelAffine, "KerasConv1D": KerasConv1D, "RepeatVector": RepeatVector,
            "GlobalPool1D": GlobalPool1D, "Flatten": Flatten}


__all__ = ["blocks"]
