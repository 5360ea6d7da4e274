"""The module exporters and timers call: the user's model behind a generated ``forward`` with one named, typed
``Tensor`` parameter per input (in ``io.inputs`` order) that calls the model as its contract says (positional and
keyword-only arguments, the state packed into the model's own structure) and returns its outputs flattened in
``io.outputs`` order (the state unpacked to ``hn``/``cn``).

The source is generated and registered with ``linecache`` so that ``torch.jit.script`` can compile it: a model
with several inputs and a Python loop takes the scripted route (ONNX ``Loop``) like a one-input model does, which a
``forward(self, *tensors)`` wrapper never could."""

from __future__ import annotations

import itertools
import linecache
from typing import Any

from edgelstm.errors import require_torch

_COUNTER = itertools.count()


def _leaves(out: Any, path: str = "out") -> list[str]:
    """Python expressions for the leaves of a returned structure, in ``flatten_outputs`` order."""
    if isinstance(out, (tuple, list)):
        return [leaf for i, o in enumerate(out) for leaf in _leaves(o, f"{path}[{i}]")]
    if isinstance(out, dict):
        return [leaf for k, v in sorted(out.items()) for leaf in _leaves(v, f"{path}[{k!r}]")]
    if hasattr(out, "data") and hasattr(out, "batch_sizes"):
        return [f"{path}.data"]
    return [path]


def _pack(layout: str, lstm: bool, layers: int) -> str:
    """The expression building the model's state structure from h0 (and c0)."""
    if layout == "stacked":
        return "(h0, c0)" if lstm else "h0"
    if layout == "2d":
        return "(h0[0], c0[0])" if lstm else "h0[0]"
    idx = [f"{k}:{k + 1}" if layout == "per_layer" else f"{k}" for k in range(layers)]
    return "[" + ", ".join(f"(h0[{i}], c0[{i}])" if lstm else f"h0[{i}]" for i in idx) + "]"


def _unpack(layout: str, lstm: bool, layers: int, base: str) -> list[str]:
    """The expressions of hn (and cn), [layers, batch, hidden], from the returned state at ``base``."""
    parts = [0, 1] if lstm else [None]

    def at(expr: str, j: int | None) -> str:
        return expr if j is None else f"{expr}[{j}]"

    if layout == "stacked":
        return [at(base, j) for j in parts]
    if layout == "2d":
        return [f"{at(base, j)}.unsqueeze(0)" for j in parts]
    join = "torch.cat" if layout == "per_layer" else "torch.stack"
    return [f"{join}([{', '.join(at(f'{base}[{k}]', j) for k in range(layers))}], 0)" for j in parts]


def _source(call, out: Any) -> str:
    c = call.contract
    names = list(call.io.input_names)
    st = c.state
    args, kwargs = [], []
    for i, (param, name) in enumerate(c.args):
        value = _pack(st.layout, st.lstm, st.layers) if name == "<state>" else name
        if kwargs or i != len(args) or param in c.keyword:
            kwargs.append(f"{param}={value}")
        else:
            args.append(value)
    if call.state_index is None:
        leaves = _leaves(out)
    else:
        top = list(out)
        leaves = [leaf for j, o in enumerate(top) if j != call.state_index for leaf in _leaves(o, f"out[{j}]")]
        leaves += _unpack(st.layout, st.lstm, st.layers, f"out[{call.state_index}]")
    ret = leaves[0] if len(leaves) == 1 else "(" + ", ".join(leaves) + ",)"
    params = ", ".join(f"{n}: Tensor" for n in names)
    return (f"import torch\nfrom torch import Tensor\n\n\nclass ContractModule(torch.nn.Module):\n"
            f"    def __init__(self, inner):\n        super().__init__()\n        self.inner = inner\n\n"
            f"    def forward(self, {params}):\n        out = self.inner({', '.join(args + kwargs)})\n"
            f"        return {ret}\n")


def typed_wrapper(call, feeds: dict[str, Any]):
    """The generated ContractModule around ``call.module`` (see the module doc); ``feeds``: one valid set of inputs,
    run once to learn the structure the model returns."""
    torch = require_torch()
    from edgelstm.models.probing import module_state_guard

    args, kwargs = call.arguments(call.tensors(feeds))
    with module_state_guard(call.module), torch.no_grad():
        out = call.module(*args, **kwargs)
    source = _source(call, out)
    filename = f"<edgelstm-contract-{next(_COUNTER)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated source, see _source
    module = namespace["ContractModule"](call.module).eval()
    module._edgelstm_source = source
    return module


__all__ = ["typed_wrapper"]
