"""Keras model files built in the test with h5py alone (no Keras, no TensorFlow), and an independent numpy oracle of
what Keras computes (the equations of keras/src/layers/rnn/{lstm,gru,simple_rnn}.py, written out here, not
edgelstm's mapping).

Two writers: ``write_keras_zip`` (the ``.keras`` layout of Keras' saving_lib: config.json, metadata.json,
model.weights.h5 with each layer's variables at ``layers/<class in snake case>[_k]/[cell/]vars/<i>``) and
``write_legacy_h5`` (``model.save("m.h5")``: the config in the ``model_config`` attribute, weights under
``model_weights/<layer name>`` named by ``weight_names``)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RNN = ("LSTM", "GRU", "SimpleRNN")
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def snake(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class Layer:
    """One Keras layer: class, options, and its weights by role (filled by ``init_weights``)."""

    cls: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    inner: "Layer | None" = None          # Bidirectional / TimeDistributed: the wrapped layer
    backward: "Layer | None" = None       # Bidirectional: the backward copy (its own weights)

    def config(self) -> dict[str, Any]:
        cfg = {"name": self.name, "trainable": True, "dtype": "float32", **self.options}
        if self.inner is not None:
            cfg["layer"] = self.inner.entry()
            if self.backward is not None:
                cfg["backward_layer"] = self.backward.entry()
        return cfg

    def entry(self) -> dict[str, Any]:
        return {"class_name": self.cls, "config": self.config()}


def init_weights(layers: list[Layer], n_in: int, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Random weights for each layer given the feature size flowing in (biases nonzero)."""
    size = n_in
    for layer in layers:
        size = _init(layer, size, rng, scale)


def _rnn_weights(layer: Layer, n_in: int, rng, scale) -> int:
    u, g = int(layer.options["units"]), GATES[layer.cls]
    w = {"kernel": rng.normal(0, scale, (n_in, g * u)), "recurrent_kernel": rng.normal(0, scale, (u, g * u))}
    if layer.options.get("use_bias", True):
        shape = (2, g * u) if layer.cls == "GRU" and layer.options.get("reset_after", True) else (g * u,)
        w["bias"] = rng.normal(0, 0.3, shape)
    layer.weights = {k: v.astype(np.float32) for k, v in w.items()}
    return u


def _init(layer: Layer, n_in: int, rng, scale) -> int:
    if layer.cls in RNN:
        return _rnn_weights(layer, n_in, rng, scale)
    if layer.cls == "Bidirectional":
        u = _rnn_weights(layer.inner, n_in, rng, scale)
        _rnn_weights(layer.backward, n_in, rng, scale)
        mode = layer.options.get("merge_mode", "concat")
        return 2 * u if mode == "concat" else u
    if layer.cls in ("Dense", "TimeDistributed"):
        target = layer.inner if layer.cls == "TimeDistributed" else layer
        units = int(target.options["units"])
        target.weights = {"kernel": rng.normal(0, scale, (n_in, units)).astype(np.float32),
                          "bias": rng.normal(0, 0.3, units).astype(np.float32)}
        return units
    if layer.cls == "Embedding":
        layer.weights = {"embeddings": rng.normal(0, 1, (layer.options["input_dim"],
                                                         layer.options["output_dim"])).astype(np.float32)}
        return int(layer.options["output_dim"])
    return n_in


# --------------------------------------------------------------------------------------------- file writers

def sequential_config(layers: list[Layer], batch_shape: list, *, keras3: bool, dtype: str = "float32") -> dict:
    key = "batch_shape" if keras3 else "batch_input_shape"
    entries = [{"class_name": "InputLayer", "config": {key: batch_shape, "dtype": dtype, "name": "input_1"}}]
    entries += [layer.entry() for layer in layers]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": entries}}


def _var_paths(layers: list[Layer]) -> list[tuple[str, list[np.ndarray]]]:
    """(h5 group path, variables in creation order) per weighted (sub)layer, as Keras' saving_lib writes them."""
    used: dict[str, int] = {"input_layer": 0}
    out = []
    for layer in layers:
        base = snake(layer.cls)
        used[base] = used.get(base, -1) + 1
        path = f"layers/{base}" + (f"_{used[base]}" if used[base] else "")
        if layer.cls in RNN:
            out.append((f"{path}/cell", _ordered(layer)))
        elif layer.cls == "Bidirectional":
            out.append((f"{path}/forward_layer/cell", _ordered(layer.inner)))
            out.append((f"{path}/backward_layer/cell", _ordered(layer.backward)))
        elif layer.cls == "TimeDistributed":
            out.append((f"{path}/layer", _ordered(layer.inner)))
        elif layer.weights:
            out.append((path, _ordered(layer)))
    return out


def _ordered(layer: Layer) -> list[np.ndarray]:
    order = ("kernel", "recurrent_kernel", "bias", "embeddings")
    return [layer.weights[k] for k in order if k in layer.weights]


def write_keras_zip(path: Path, layers: list[Layer], batch_shape: list, *, version: str = "3.5.0") -> Path:
    import h5py

    config = sequential_config(layers, batch_shape, keras3=not version.startswith("2"))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        for group, arrays in _var_paths(layers):
            g = h5.create_group(group).create_group("vars")
            for i, a in enumerate(arrays):
                g.create_dataset(str(i), data=a)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": version, "date_saved": "2026-12-06@00:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buf.getvalue())
    return path


def write_legacy_h5(path: Path, layers: list[Layer], batch_shape: list, *, version: str = "2.15.0",
                    config: dict | None = None) -> Path:
    import h5py

    config = config or sequential_config(layers, batch_shape, keras3=not version.startswith("2"))
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = version
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["model_config"] = json.dumps(config)
        mw = h5.create_group("model_weights")
        mw.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            g = mw.create_group(layer.name)
            named = []
            if layer.cls == "Bidirectional":
                for part, sub in (("forward", layer.inner), ("backward", layer.backward)):
                    cell = f"{snake(sub.cls)}_cell"
                    named += [(f"{layer.name}/{part}_{snake(sub.cls)}/{cell}/{k}:0", v) for k, v in sub.weights.items()]
            elif layer.cls == "TimeDistributed":
                named = [(f"{layer.name}/{k}:0", v) for k, v in layer.inner.weights.items()]
            elif layer.cls in RNN:
                named = [(f"{layer.name}/{snake(layer.cls)}_cell/{k}:0", v) for k, v in layer.weights.items()]
            else:
                named = [(f"{layer.name}/{k}:0", v) for k, v in layer.weights.items()]
            g.attrs["weight_names"] = [n.encode() for n, _ in named]
            for n, v in named:
                g.create_dataset(n, data=v)
    return path


# ----------------------------------------------------------------------------------------------- the oracle

def activation(name: str, x: np.ndarray, major: int) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "hard_sigmoid":
        return np.clip((0.2 if major < 3 else 1 / 6) * x + 0.5, 0, 1)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "linear":
        return x
    if name == "softmax":
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    raise ValueError(name)


def _rnn(layer: Layer, x: np.ndarray, major: int, backwards: bool = False) -> np.ndarray:
    """Keras' cell step over time; returns the output sequence in processing order [b, t, u]."""
    o, w = layer.options, layer.weights
    u = int(o["units"])
    act = o.get("activation", "tanh")
    rec = o.get("recurrent_activation", "sigmoid")
    k, rk = w["kernel"].astype(np.float64), w["recurrent_kernel"].astype(np.float64)
    b = w.get("bias")
    h = np.zeros((x.shape[0], u))
    c = np.zeros_like(h)
    steps = range(x.shape[1] - 1, -1, -1) if (backwards or o.get("go_backwards")) else range(x.shape[1])
    outs = []
    for t in steps:
        xt = x[:, t].astype(np.float64)
        if layer.cls == "LSTM":
            z = xt @ k + h @ rk + (b if b is not None else 0)
            i, f, cc, og = (z[:, j * u:(j + 1) * u] for j in range(4))
            c = activation(rec, f, major) * c + activation(rec, i, major) * activation(act, cc, major)
            h = activation(rec, og, major) * activation(act, c, major)
        elif layer.cls == "GRU":
            reset_after = o.get("reset_after", True)
            bi = (b[0] if reset_after else b) if b is not None else np.zeros(3 * u)
            br = b[1] if (b is not None and reset_after) else np.zeros(3 * u)
            xz = xt @ k + bi
            if reset_after:
                hz = h @ rk + br
                z = activation(rec, xz[:, :u] + hz[:, :u], major)
                r = activation(rec, xz[:, u:2 * u] + hz[:, u:2 * u], major)
                hh = activation(act, xz[:, 2 * u:] + r * hz[:, 2 * u:], major)
            else:
                hz = h @ rk[:, :2 * u]
                z = activation(rec, xz[:, :u] + hz[:, :u], major)
                r = activation(rec, xz[:, u:2 * u] + hz[:, u:2 * u], major)
                hh = activation(act, xz[:, 2 * u:] + (r * h) @ rk[:, 2 * u:], major)
            h = z * h + (1 - z) * hh
        else:
            h = activation(act, xt @ k + h @ rk + (b if b is not None else 0), major)
        outs.append(h)
    return np.stack(outs, 1)


def predict(layers: list[Layer], x: np.ndarray, *, major: int) -> np.ndarray:
    """What Keras computes for the chain (float64)."""
    y = x.astype(np.float64)
    for layer in layers:
        o = layer.options
        if layer.cls in RNN:
            seq = _rnn(layer, y, major)
            y = seq if o.get("return_sequences") else seq[:, -1]
        elif layer.cls == "Bidirectional":
            inner = layer.inner
            fwd = _rnn(inner, y, major)
            bwd = _rnn(layer.backward, y, major, backwards=True)
            if inner.options.get("return_sequences"):
                a, b = fwd, bwd[:, ::-1]
            else:
                a, b = fwd[:, -1], bwd[:, -1]
            mode = o.get("merge_mode", "concat")
            y = {"concat": lambda: np.concatenate([a, b], -1), "sum": lambda: a + b, "ave": lambda: (a + b) / 2,
                 "mul": lambda: a * b}[mode]()
        elif layer.cls in ("Dense", "TimeDistributed"):
            target = layer.inner if layer.cls == "TimeDistributed" else layer
            y = activation(target.options.get("activation", "linear"), y @ target.weights["kernel"]
                           + target.weights["bias"], major)
        elif layer.cls == "Embedding":
            y = layer.weights["embeddings"][y.astype(np.int64)].astype(np.float64)
        elif layer.cls == "Dropout":
            pass
        else:
            raise ValueError(layer.cls)
    return y


def lstm(name: str, units: int, **options: Any) -> Layer:
    return Layer("LSTM", name, {"units": units, "activation": "tanh", "recurrent_activation": "sigmoid",
                                "return_sequences": False, **options})


def gru(name: str, units: int, **options: Any) -> Layer:
    return Layer("GRU", name, {"units": units, "activation": "tanh", "recurrent_activation": "sigmoid",
                               "reset_after": True, "return_sequences": False, **options})


def dense(name: str, units: int, **options: Any) -> Layer:
    return Layer("Dense", name, {"units": units, "activation": "linear", **options})


def bidirectional(name: str, inner: Layer, merge_mode: str = "concat") -> Layer:
    back = Layer(inner.cls, "backward_" + inner.name, {**inner.options, "go_backwards": True})
    fwd = Layer(inner.cls, "forward_" + inner.name, dict(inner.options))
    return Layer("Bidirectional", name, {"merge_mode": merge_mode}, inner=fwd, backward=back)
