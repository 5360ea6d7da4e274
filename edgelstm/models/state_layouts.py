"""How a forward's state argument is laid out, and the one interface every artifact gives it.

Whatever structure the model takes, the artifact's state is ``h0``/``c0`` ``[layers, batch, hidden]`` in and
``hn``/``cn`` out (what validate's streaming check, bench ``--stream``, the runners and TensorRT profiles expect);
edgelstm converts at the model's door:

- ``stacked``: ``(h, c)`` / ``h`` of shape ``[layers, batch, hidden]`` (what nn.LSTM/nn.GRU take);
- ``2d``: ``[batch, hidden]`` per tensor (a decoder step that unsqueezes inside, an nn.LSTMCell/GRUCell loop);
- ``per_layer``: a list with one ``(h, c)`` / ``h`` of ``[1, batch, hidden]`` per layer (single-layer LSTMs in a
  ModuleList, each with its own state);
- ``per_layer_2d``: a list with one ``[batch, hidden]`` pair / tensor per layer (stacked cells).

Which layout a model takes is decided by running it: the fed structure must come back, same shapes, as an output
(``edgelstm.models.calling``)."""

from __future__ import annotations

from typing import Any

from edgelstm.errors import require_torch

LAYOUTS = ("stacked", "2d", "per_layer", "per_layer_2d")


def pack_state(layout: str, lstm: bool, h0, c0=None) -> Any:
    """The model's structure from the artifact's ``h0`` (and ``c0``) ``[layers, batch, hidden]``."""
    if layout == "stacked":
        return (h0, c0) if lstm else h0
    if layout == "2d":
        return (h0[0], c0[0]) if lstm else h0[0]
    layers = h0.shape[0]
    if layout == "per_layer":
        return [(h0[k:k + 1], c0[k:k + 1]) if lstm else h0[k:k + 1] for k in range(layers)]
    return [(h0[k], c0[k]) if lstm else h0[k] for k in range(layers)]


def unpack_state(layout: str, lstm: bool, state: Any) -> list[Any]:
    """The artifact's ``[hn, cn]`` (or ``[hn]``), ``[layers, batch, hidden]`` each, from what the model returned."""
    torch = require_torch()
    if layout == "stacked":
        return list(state) if lstm else [state]
    if layout == "2d":
        return [t.unsqueeze(0) for t in state] if lstm else [state.unsqueeze(0)]
    join = torch.cat if layout == "per_layer" else torch.stack
    if lstm:
        return [join([s[0] for s in state], 0), join([s[1] for s in state], 0)]
    return [join(list(state), 0)]


def flat_shapes(layout: str, lstm: bool, layers: int, batch: int, hidden: int, cell: int) -> list[tuple[int, ...]]:
    """The shapes of the model's state structure, flattened (to find it among the returned values)."""
    sizes = (hidden, cell) if lstm else (hidden,)
    if layout == "stacked":
        return [(layers, batch, s) for s in sizes]
    if layout == "2d":
        return [(batch, s) for s in sizes]
    per = [(1, batch, s) for s in sizes] if layout == "per_layer" else [(batch, s) for s in sizes]
    return per * layers


def layouts_for(layers: int, per_layer_modules: int) -> list[str]:
    """The layouts worth trying for a state of ``layers`` layers kept by ``per_layer_modules`` modules."""
    out = ["stacked"]
    if layers == 1:
        out.append("2d")
    if per_layer_modules > 1 and per_layer_modules == layers:
        out += ["per_layer", "per_layer_2d"]
    return out


def describe(layout: str) -> str:
    return {"stacked": "[layers, batch, hidden]", "2d": "[batch, hidden]",
            "per_layer": "a list of per-layer [1, batch, hidden]", "per_layer_2d": "a list of per-layer "
                                                                                  "[batch, hidden]"}[layout]


__all__ = ["LAYOUTS", "describe", "flat_shapes", "layouts_for", "pack_state", "unpack_state"]
