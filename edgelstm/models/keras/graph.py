"""The layer graph of a Keras model config: a ``Sequential`` or a functional ``Model`` reduced to the chain of
layers from its one input to its one output, each with the path its weights are saved under (see ``archive``).

Nested ``Sequential``/functional models are flattened into the chain. A graph that is not a chain (two inputs or
outputs, a layer called twice, an output feeding two layers, a merge, a tensor passed as a keyword such as
``initial_state``) is refused in one line naming the layer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from edgelstm.errors import BadInput

MODEL_CLASSES = ("Sequential", "Functional", "Model")


def snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (LSTM -> lstm, SimpleRNN -> simple_rnn, TimeDistributed -> time_distributed)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
    return name if not name.startswith("_") else "private" + name


@dataclass
class KerasLayer:
    class_name: str
    name: str
    config: dict[str, Any]
    save_path: str                     # where a .keras file keeps its weights ("layers/lstm_1")
    nested_in: str | None = None       # the nested model it came from, if any

    def option(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)


@dataclass
class KerasGraph:
    model_class: str
    name: str
    input_shape: tuple[Any, ...] | None         # batch shape, e.g. (None, None, 3)
    input_dtype: str
    layers: list[KerasLayer] = field(default_factory=list)   # the chain, input layers excluded


def _layer_name(entry: dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name") or entry.get("class_name"))


def _batch_shape(config: dict[str, Any]) -> tuple[Any, ...] | None:
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return tuple(config[key])
    if config.get("input_shape") is not None:
        return (None, *config["input_shape"])
    return None


def _dtype(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name", "float32")
    return str(value or "float32")


def parse_graph(model_config: dict[str, Any]) -> KerasGraph:
    """The chain of a saved model config ({"class_name": ..., "config": {...}})."""
    cls = model_config.get("class_name")
    if cls not in MODEL_CLASSES:
        raise BadInput(f"the Keras file holds a {cls!r}, not a Sequential or functional model")
    cfg = model_config.get("config") or {}
    graph = KerasGraph(cls, str(cfg.get("name", cls)), None, "float32")
    layers = list(_chain(model_config, "layers", None, graph))
    graph.layers = layers
    if graph.input_shape is None:
        build = cfg.get("build_input_shape")
        graph.input_shape = tuple(build) if build else None
    return graph


def _chain(model_config: dict[str, Any], prefix: str, nested: str | None, graph: KerasGraph) -> Iterator[KerasLayer]:
    cls = model_config.get("class_name")
    cfg = model_config.get("config") or {}
    entries = cfg.get("layers") or []
    if not isinstance(entries, list):
        raise BadInput(f"the Keras config of model {cfg.get('name')!r} has no layer list")
    paths = _save_paths(entries, prefix)
    order = list(range(len(entries))) if cls == "Sequential" else _functional_order(cfg, entries)
    for k in order:
        entry = entries[k]
        lcls, lcfg = entry.get("class_name"), entry.get("config") or {}
        if lcls == "InputLayer":
            if graph.input_shape is None:
                graph.input_shape = _batch_shape(lcfg)
                graph.input_dtype = _dtype(lcfg.get("dtype"))
            continue
        if lcls in MODEL_CLASSES:
            yield from _chain(entry, f"{paths[k]}/layers", _layer_name(entry), graph)
            continue
        if graph.input_shape is None:  # Keras 2 puts batch_input_shape on the first layer
            shape = _batch_shape(lcfg)
            if shape is not None:
                graph.input_shape = shape
                graph.input_dtype = _dtype(lcfg.get("dtype"))
        yield KerasLayer(str(lcls), _layer_name(entry), lcfg, paths[k], nested)


def _save_paths(entries: list[dict[str, Any]], prefix: str) -> list[str]:
    """Each layer's saving path: its class in snake case, numbered per class in list order (saving_lib)."""
    used: dict[str, int] = {}
    out = []
    for entry in entries:
        base = snake_case(str(entry.get("class_name")))
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        out.append(f"{prefix}/{name}")
    return out


# ---------------------------------------------------------------------------------------- functional models

def _history(obj: Any) -> Iterator[tuple[str, int, int]]:
    """(layer, node index, tensor index) of every Keras tensor in a Keras 3 call argument structure."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            hist = (obj.get("config") or {}).get("keras_history") or []
            if len(hist) >= 3:
                yield str(hist[0]), int(hist[1]), int(hist[2])
            return
        for v in obj.values():
            yield from _history(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _history(v)


def _inbound(entry: dict[str, Any]) -> list[list[tuple[str, int, int]]]:
    """Per call of the layer (node): its input tensors. Refuses tensors passed as keyword arguments."""
    name = _layer_name(entry)
    nodes = []
    for node in entry.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            kw_tensors = [k for k, v in (node.get("kwargs") or {}).items() if list(_history(v))]
            if kw_tensors:
                raise BadInput(f"Keras layer {name!r} ({entry.get('class_name')}) takes a tensor as "
                               f"{kw_tensors[0]}=: edgelstm imports chains of single-input layers",
                               hint="initial_state / mask tensors have no torch mapping here")
            nodes.append(list(_history(node.get("args") or [])))
        elif isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            tensors = []
            for t in node:
                if isinstance(t, list) and len(t) >= 3:
                    if len(t) > 3 and isinstance(t[3], dict) and any(list(_k2_tensors(v)) for v in t[3].values()):
                        raise BadInput(f"Keras layer {name!r} ({entry.get('class_name')}) takes a tensor as a keyword "
                                       "argument (initial_state / mask): edgelstm imports chains of single-input layers")
                    tensors.append((str(t[0]), int(t[1]), int(t[2])))
            nodes.append(tensors)
    return nodes


def _k2_tensors(value: Any) -> Iterator[Any]:
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _k2_tensors(v)


def _endpoints(value: Any) -> list[tuple[str, int, int]]:
    """input_layers / output_layers: [name, node, tensor] or a list of them."""
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [(str(v[0]), int(v[1]), int(v[2])) for v in (value or []) if isinstance(v, list) and len(v) >= 3]


def _functional_order(cfg: dict[str, Any], entries: list[dict[str, Any]]) -> list[int]:
    """Indices of the layers on the path from the model's input to its output, in call order."""
    ins, outs = _endpoints(cfg.get("input_layers")), _endpoints(cfg.get("output_layers"))
    if len(ins) != 1 or len(outs) != 1:
        raise BadInput(f"the Keras model has {len(ins)} input(s) and {len(outs)} output(s): edgelstm imports "
                       "models with one input and one output")
    index = {_layer_name(e): k for k, e in enumerate(entries)}
    consumers: dict[str, list[str]] = {}
    for e in entries:
        name = _layer_name(e)
        nodes = _inbound(e)
        if len(nodes) > 1:
            raise BadInput(f"Keras layer {name!r} ({e.get('class_name')}) is called {len(nodes)} times (a shared "
                           "layer): edgelstm imports chains of layers each called once")
        if nodes and len(nodes[0]) > 1:
            raise BadInput(f"Keras layer {name!r} ({e.get('class_name')}) takes {len(nodes[0])} inputs (a merge of "
                           "branches): edgelstm imports chains of single-input layers")
        for src, _node, tensor in (nodes[0] if nodes else []):
            if tensor != 0:
                raise BadInput(f"Keras layer {name!r} takes output {tensor} of {src!r} (return_state=True?): "
                               "edgelstm imports chains that pass one tensor from layer to layer")
            consumers.setdefault(src, []).append(name)
    start, end = ins[0][0], outs[0][0]
    if outs[0][2] != 0:
        raise BadInput(f"the Keras model's output is output {outs[0][2]} of {end!r} (return_state=True?): "
                       "edgelstm imports models whose output is a layer's first output")
    order, current = [], start
    while True:
        if current not in index:
            raise BadInput(f"the Keras config names a layer {current!r} it does not define")
        order.append(index[current])
        if current == end:
            return order
        nxt = consumers.get(current, [])
        if len(nxt) != 1:
            what = "feeds no layer" if not nxt else f"feeds {len(nxt)} layers ({', '.join(nxt)}): a branch"
            raise BadInput(f"the output of Keras layer {current!r} {what}; edgelstm imports chains from the input "
                           "to the output")
        current = nxt[0]


__all__ = ["KerasGraph", "KerasLayer", "MODEL_CLASSES", "parse_graph", "snake_case"]
