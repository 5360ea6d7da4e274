"""A Keras layer chain as an equivalent torch module (``blocks.KerasModel``), which the verified export takes
like any torch model.

Recurrent layers (facts checked against Keras' source, ``keras/src/layers/rnn``): LSTM kernel columns are gates
i, f, c, o (torch's i, f, g, o: the kernel transposed is ``weight_ih``, the bias is ``bias_ih``, ``bias_hh = 0``);
GRU columns z, r, h (torch r, z, n), ``reset_after=True`` keeps input and recurrent biases apart (``bias [2, 3u]``,
torch's GRU), ``reset_after=False`` applies the reset gate before the recurrent matmul (ONNX ``GRU`` with
``linear_before_reset=0``, ``edgelstm.models.native_rnn``); activations other than sigmoid/tanh become the ONNX op's
activations. Consecutive recurrent layers of one kind and size (the earlier ones ``return_sequences=True``) are
fused into one ``nn.LSTM``/``nn.GRU`` with ``num_layers`` (so ``--stateful`` streams the whole stack)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgelstm.artifacts.iospec import TensorSpec
from edgelstm.errors import BadInput, require_torch
from edgelstm.models.keras.activations import activation_name, keras_activation_class, onnx_activation
from edgelstm.models.keras.archive import KerasArchive
from edgelstm.models.keras.blocks import blocks
from edgelstm.models.keras.graph import KerasGraph, KerasLayer
from edgelstm.models.keras.refusals import INFERENCE_IDENTITY, RECURRENT, check_layer, refuse
from edgelstm.models.keras.weights import check_shape, layer_variables
from edgelstm.models.native_rnn import GATES, RecurrentWeights, to_torch_layer, to_torch_layers

_KIND = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
_LSTM_TO_ONNX = (0, 3, 1, 2)  # Keras i,f,c,o -> ONNX i,o,f,c


@dataclass
class MappingRow:
    keras: str
    torch: str
    onnx: str

    def to_dict(self) -> dict[str, str]:
        return {"keras": self.keras, "torch": self.torch, "onnx": self.onnx}


@dataclass
class TorchForm:
    module: Any
    rows: list[MappingRow]
    inputs: tuple[TensorSpec, ...]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Recurrent:
    layers: list[KerasLayer]
    weights: RecurrentWeights
    return_sequences: bool
    go_backwards: bool
    merge_mode: str


def _wrapped(layer: KerasLayer, key: str) -> KerasLayer | None:
    inner = layer.option(key)
    if not inner:
        return None
    cfg = inner.get("config") or {}
    return KerasLayer(str(inner.get("class_name")), str(cfg.get("name", layer.name)), cfg, layer.save_path,
                      layer.nested_in)


def _direction(archive: KerasArchive, layer: KerasLayer, inner: KerasLayer, part: str, major: int):
    """(W [G*u, in], R [G*u, u], B [2*G*u], activations, linear_before_reset) of one direction, ONNX layout."""
    kind = _KIND[inner.class_name]
    units, g = int(inner.option("units")), GATES[kind]
    v = layer_variables(archive, layer, inner if inner is not layer else None, part)
    n_in = int(v["kernel"].shape[0])
    k = check_shape(layer, "kernel", v["kernel"], (n_in, g * units))
    rk = check_shape(layer, "recurrent_kernel", v["recurrent_kernel"], (units, g * units))
    lbr = 1
    if kind == "GRU":
        bias = v.get("bias")
        reset_after = inner.option("reset_after", bias is not None and np.ndim(bias) == 2)
        lbr = 1 if reset_after else 0
        if bias is None:
            wb, rb = np.zeros(g * units, np.float32), np.zeros(g * units, np.float32)
        elif reset_after:
            b = check_shape(layer, "bias", bias, (2, g * units))
            wb, rb = b[0], b[1]
        else:
            wb, rb = check_shape(layer, "bias", bias, (g * units,)), np.zeros(g * units, np.float32)
    else:
        wb = check_shape(layer, "bias", v["bias"], (g * units,)) if "bias" in v else np.zeros(g * units, np.float32)
        rb = np.zeros(g * units, np.float32)
    W, R = k.T, rk.T
    if kind == "LSTM":
        W, R, wb = (np.concatenate([a[j * units:(j + 1) * units] for j in _LSTM_TO_ONNX], 0) for a in (W, R, wb))
    act = onnx_activation(activation_name(inner.option("activation", "tanh")), major)
    rec = onnx_activation(activation_name(inner.option("recurrent_activation", "sigmoid")), major)
    acts = {"LSTM": (rec, act, act), "GRU": (rec, act), "RNN": (act,)}[kind]
    return W, R, np.concatenate([wb, rb]), acts, lbr


def _recurrent(archive: KerasArchive, layer: KerasLayer, major: int) -> _Recurrent:
    if layer.class_name == "Bidirectional":
        fwd = _wrapped(layer, "layer")
        back = _wrapped(layer, "backward_layer") or fwd
        parts = [_direction(archive, layer, fwd, "forward_layer", major),
                 _direction(archive, layer, back, "backward_layer", major)]
        inner, merge = fwd, str(layer.option("merge_mode", "concat"))
        if fwd.option("go_backwards"):
            raise refuse(layer, "go_backwards=True inside Bidirectional", "is not supported")
    else:
        parts, inner, merge = [_direction(archive, layer, layer, "", major)], layer, "concat"
    W, R, B = (np.stack([p[i] for p in parts], 0) for i in range(3))
    rw = RecurrentWeights(_KIND[inner.class_name], W, R, B, parts[0][3], parts[0][4])
    return _Recurrent([layer], rw, bool(inner.option("return_sequences", False)),
                      bool(inner.option("go_backwards", False)) and layer.class_name != "Bidirectional", merge)


def _fusable(prev: _Recurrent, cur: _Recurrent) -> bool:
    a, b = prev.weights, cur.weights
    return (prev.return_sequences and not prev.go_backwards and not cur.go_backwards
            and a.torch_native() is not None and a.torch_native() == b.torch_native()
            and a.hidden_size == b.hidden_size and a.directions == b.directions
            and prev.merge_mode == cur.merge_mode == "concat")


def _describe_keras(layer: KerasLayer) -> str:
    cfg = layer.config
    inner = _wrapped(layer, "layer") if layer.class_name in ("Bidirectional", "TimeDistributed") else None
    what = layer.class_name
    if inner is not None:
        what += f"({inner.class_name}({inner.option('units', '')}))" if inner.option("units") else f"({inner.class_name})"
        cfg = {**inner.config, **{k: v for k, v in cfg.items() if k == "merge_mode"}}
    elif cfg.get("units") is not None:
        what += f"({cfg['units']})"
    opts = [f"{k}={cfg[k]}" for k in ("return_sequences", "go_backwards", "reset_after", "merge_mode")
            if cfg.get(k) not in (None, False) and not (k == "reset_after" and cfg[k] is True)]
    for key in ("activation", "recurrent_activation"):
        name = activation_name(cfg.get(key)) if key in cfg else None
        if name and name not in ({"activation": ("tanh", "linear"), "recurrent_activation": ("sigmoid",)}[key]):
            opts.append(f"{key}={name}")
    return f"{layer.name}: {what}" + (f" [{', '.join(opts)}]" if opts else "")


def _recurrent_block(group: list[_Recurrent]):
    B = blocks()
    first, last = group[0], group[-1]
    rnn = to_torch_layers([g.weights for g in group]) if len(group) > 1 else to_torch_layer(first.weights)
    w = first.weights
    block = B.KerasRecurrent(rnn, hidden=w.hidden_size, directions=w.directions,
                             return_sequences=last.return_sequences, go_backwards=first.go_backwards,
                             merge_mode=last.merge_mode)
    native = w.torch_native()
    torch_text = (f"nn.{native.split('_')[0]}({w.input_size}, {w.hidden_size}"
                  + (f", num_layers={len(group)}" if len(group) > 1 else "")
                  + (", bidirectional=True" if w.directions == 2 else "")
                  + (", nonlinearity='relu'" if native == "RNN_RELU" else "") + ")") if native else \
        f"OnnxRecurrent ({w.kind}, exported as one ONNX {w.kind} op)"
    onnx_text = "; ".join(g.weights.onnx_form() for g in group[:1]) + (f" x{len(group)} layers" if len(group) > 1 else "")
    row = MappingRow(", ".join(_describe_keras(l) for g in group for l in g.layers), torch_text, onnx_text)
    return block, row


def _dense(archive: KerasArchive, layer: KerasLayer, inner: KerasLayer, part: str, major: int):
    torch = require_torch()
    v = layer_variables(archive, layer, inner if inner is not layer else None, part)
    units = int(inner.option("units"))
    kernel = check_shape(layer, "kernel", v["kernel"], (int(v["kernel"].shape[0]), units))
    lin = torch.nn.Linear(kernel.shape[0], units, bias="bias" in v)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        if "bias" in v:
            lin.bias.copy_(torch.from_numpy(check_shape(layer, "bias", v["bias"], (units,))))
    act = activation_name(inner.option("activation", "linear"))
    module = lin if act == "linear" else torch.nn.Sequential(lin, keras_activation_class()(act, major))
    return module, MappingRow(_describe_keras(layer), f"nn.Linear({kernel.shape[0]}, {units})"
                              + (f" + {act}" if act != "linear" else ""), "MatMul + Add" + (f" + {act}" if act != "linear" else ""))


def _conv1d(archive: KerasArchive, layer: KerasLayer, major: int):
    torch = require_torch()
    v = layer_variables(archive, layer)
    k = v["kernel"]  # [width, in / groups, filters]
    width, filters = int(k.shape[0]), int(k.shape[2])
    groups = int(layer.option("groups", 1) or 1)
    dil = int(np.ravel(layer.option("dilation_rate", 1))[0])
    stride = int(np.ravel(layer.option("strides", 1))[0])
    conv = torch.nn.Conv1d(int(k.shape[1]) * groups, filters, width, stride=stride, dilation=dil, groups=groups,
                           bias="bias" in v)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(np.transpose(k, (2, 1, 0)).astype(np.float32))))
        if "bias" in v:
            conv.bias.copy_(torch.from_numpy(check_shape(layer, "bias", v["bias"], (filters,))))
    total = dil * (width - 1)
    padding = layer.option("padding", "valid")
    left, right = {"valid": (0, 0), "same": (total // 2, total - total // 2), "causal": (total, 0)}[padding]
    act = activation_name(layer.option("activation", "linear"))
    block = blocks().KerasConv1D(conv, left, right, keras_activation_class()(act, major))
    return block, MappingRow(_describe_keras(layer), f"nn.Conv1d({conv.in_channels}, {filters}, {width}) "
                                                     f"padding {padding}", "Conv")


def _norm(archive: KerasArchive, layer: KerasLayer):
    torch = require_torch()
    v = layer_variables(archive, layer)
    eps = float(layer.option("epsilon", 1e-3))
    size = int(next(iter(v.values())).shape[-1]) if v else None
    if size is None:
        raise refuse(layer, "the layer", "has neither scale nor center and no statistics")
    gamma = v.get("gamma", np.ones(size, np.float32)).astype(np.float32)
    beta = v.get("beta", np.zeros(size, np.float32)).astype(np.float32)
    if layer.class_name == "LayerNormalization":
        if layer.option("rms_scaling"):
            raise refuse(layer, "rms_scaling=True", "is not supported")
        ln = torch.nn.LayerNorm(size, eps=eps)
        with torch.no_grad():
            ln.weight.copy_(torch.from_numpy(gamma))
            ln.bias.copy_(torch.from_numpy(beta))
        return ln, MappingRow(_describe_keras(layer), f"nn.LayerNorm({size})", "LayerNormalization")
    scale = gamma / np.sqrt(v["moving_variance"].astype(np.float32) + eps)
    shift = beta - v["moving_mean"].astype(np.float32) * scale
    block = blocks().ChannelAffine(torch.from_numpy(scale.astype(np.float32)), torch.from_numpy(shift.astype(np.float32)))
    return block, MappingRow(_describe_keras(layer), "x * scale + shift (inference)", "Mul + Add")


def _other(archive: KerasArchive, layer: KerasLayer, major: int):
    torch = require_torch()
    B = blocks()
    cls = layer.class_name
    if cls == "Dense":
        return _dense(archive, layer, layer, "", major)
    if cls == "TimeDistributed":
        inner = _wrapped(layer, "layer")
        if inner.class_name in INFERENCE_IDENTITY:
            return None, MappingRow(_describe_keras(layer), "(none)", "identity at inference")
        return _dense(archive, layer, inner, "layer", major)
    if cls == "Activation":
        act = activation_name(layer.option("activation"))
        return keras_activation_class()(act, major), MappingRow(_describe_keras(layer), act, act)
    if cls == "Embedding":
        v = layer_variables(archive, layer)
        n, d = int(layer.option("input_dim")), int(layer.option("output_dim"))
        emb = torch.nn.Embedding(n, d)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(check_shape(layer, "embeddings", v["embeddings"], (n, d))))
        return emb, MappingRow(_describe_keras(layer), f"nn.Embedding({n}, {d})", "Gather")
    if cls == "RepeatVector":
        n = int(layer.option("n"))
        return B.RepeatVector(n), MappingRow(_describe_keras(layer) + f" (n={n})", "unsqueeze + expand", "Expand")
    if cls in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        mode = "max" if "Max" in cls else "mean"
        return B.GlobalPool1D(mode, bool(layer.option("keepdims", False))), MappingRow(
            _describe_keras(layer), f"{mode} over time", "ReduceMax" if mode == "max" else "ReduceMean")
    if cls in ("BatchNormalization", "LayerNormalization"):
        return _norm(archive, layer)
    if cls == "Flatten":
        return B.Flatten(), MappingRow(_describe_keras(layer), "flatten(1)", "Flatten")
    if cls == "Conv1D":
        return _conv1d(archive, layer, major)
    raise refuse(layer, "the layer", "has no torch mapping in edgelstm")


def _input_spec(graph: KerasGraph, chain_first: KerasLayer | None, first_size: int | None) -> tuple[TensorSpec, ...]:
    shape = graph.input_shape
    rank = len(shape) if shape else 3
    seq: int | str = "seq"
    if shape and rank >= 2 and isinstance(shape[1], int) and any(l.class_name == "Flatten" for l in graph.layers):
        seq = int(shape[1])  # a Flatten over time needs the length Keras was built with
    if chain_first is not None and chain_first.class_name == "Embedding":
        n = int(chain_first.option("input_dim"))
        return (TensorSpec("x", "int64", ("batch", seq) if rank >= 2 else ("batch",), value_range=(0, n)),)
    features = shape[-1] if shape and isinstance(shape[-1], int) else first_size
    if features is None:
        raise BadInput("the Keras model does not say its input size (no input shape in the config)",
                       hint="pass --input x:float32[batch,seq,F]")
    dims = ("batch", seq, int(features)) if rank >= 3 else ("batch", int(features))
    return (TensorSpec("x", "float32", dims),)


def map_to_torch(graph: KerasGraph, archive: KerasArchive, major: int) -> TorchForm:
    """The torch form of the chain (layer options refused before any weight is read)."""
    for layer in graph.layers:
        check_layer(layer)
    if not graph.layers:
        raise BadInput("the Keras model has no layers")
    chain, rows, pending, skipped, first_size = [], [], [], [], None

    def flush() -> None:
        if pending:
            block, row = _recurrent_block(list(pending))
            chain.append(block)
            rows.append(row)
            pending.clear()
        rows.extend(skipped)  # identity layers between fused recurrent layers come after their group
        skipped.clear()

    for layer in graph.layers:
        if layer.class_name in INFERENCE_IDENTITY:
            (skipped if pending else rows).append(MappingRow(_describe_keras(layer), "(none)", "identity at inference"))
            continue
        if layer.class_name in (*RECURRENT, "Bidirectional"):
            rec = _recurrent(archive, layer, major)
            first_size = first_size or rec.weights.input_size
            if pending and _fusable(pending[-1], rec):
                pending.append(rec)
            else:
                flush()
                pending.append(rec)
            continue
        flush()
        block, row = _other(archive, layer, major)
        if first_size is None and isinstance(block, torch_linear_types()):
            first_size = int(getattr(block, "in_features", 0) or 0) or None
        rows.append(row)
        if block is not None:
            chain.append(block)
    flush()
    first = next((l for l in graph.layers if l.class_name not in INFERENCE_IDENTITY), None)
    inputs = _input_spec(graph, first, first_size)
    module = blocks().KerasModel(chain, inputs, graph.name).eval()
    notes = []
    dropped = [l.name for l in graph.layers if l.class_name in INFERENCE_IDENTITY]
    if dropped:
        notes.append(f"{', '.join(dropped)}: identity at inference")
    return TorchForm(module, rows, inputs, notes)


def torch_linear_types() -> tuple:
    torch = require_torch()
    return (torch.nn.Linear,)


__all__ = ["MappingRow", "TorchForm", "map_to_torch"]
