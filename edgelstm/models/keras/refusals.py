"""What edgelstm does not import from a Keras model, each refused in one line naming the layer and the option
(exit 2), before any weight is read. Options that change nothing at inference (dropout, recurrent_dropout,
unroll, implementation, regularizers, constraints, initializers) are accepted."""

from __future__ import annotations

from typing import Any

from edgelstm.errors import BadInput
from edgelstm.models.keras.activations import (RECURRENT_ACTIVATIONS, TORCH_ACTIVATIONS, activation_name)
from edgelstm.models.keras.graph import KerasLayer

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
#: layers that are the identity at inference
INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                      "ActivityRegularization")
SUPPORTED = (*RECURRENT, "Bidirectional", "Dense", "TimeDistributed", "Activation", "Embedding", "RepeatVector",
             "GlobalAveragePooling1D", "GlobalMaxPooling1D", "BatchNormalization", "LayerNormalization", "Flatten",
             "Conv1D", *INFERENCE_IDENTITY)


def refuse(layer: KerasLayer, option: str, why: str, hint: str | None = None) -> BadInput:
    where = f" (in {layer.nested_in!r})" if layer.nested_in else ""
    return BadInput(f"Keras layer {layer.name!r} ({layer.class_name}){where}: {option} {why}", hint=hint)


def _activation(layer: KerasLayer, key: str, allowed: tuple[str, ...], what: str) -> None:
    value = layer.option(key, "linear")
    name = activation_name(value)
    if name is None:
        raise refuse(layer, f"{key}={_short(value)}", "is a custom activation, which edgelstm cannot read from the "
                                                      "file", hint="use a built-in Keras activation")
    if name not in allowed:
        raise refuse(layer, f"{key}={name!r}", f"has no {what}", hint=f"supported: {', '.join(allowed)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_recurrent(layer: KerasLayer) -> None:
    if layer.class_name not in RECURRENT:
        raise refuse(layer, "the layer", "is a custom recurrent layer or cell (RNN(cell=...)), which has no torch "
                                         "mapping", hint="use keras.layers.LSTM, GRU or SimpleRNN")
    if layer.option("return_state"):
        raise refuse(layer, "return_state=True", "returns the final state as extra outputs; edgelstm imports one "
                                                 "output", hint="export the streaming state with --stateful instead")
    if layer.option("stateful"):
        raise refuse(layer, "stateful=True", "carries state between batches inside Keras; edgelstm imports "
                                             "stateless layers", hint="rebuild the model with stateful=False and "
                                                                      "convert with --stateful for streaming")
    if layer.option("time_major"):
        raise refuse(layer, "time_major=True", "(inputs [time, batch, features]) is not supported")
    _activation(layer, "activation", RECURRENT_ACTIVATIONS, "ONNX recurrent form")
    if layer.class_name != "SimpleRNN":
        _activation(layer, "recurrent_activation", RECURRENT_ACTIVATIONS, "ONNX recurrent form")


def check_layer(layer: KerasLayer) -> None:
    """Refuse (BadInput) a layer or an option of it that edgelstm does not map exactly."""
    cls = layer.class_name
    dtype = layer.option("dtype")
    policy = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if policy and str(policy) not in ("float32",):
        raise refuse(layer, f"dtype policy {policy!r}", "is not float32; edgelstm imports float32 Keras models")
    if cls == "Masking":
        raise refuse(layer, "Masking", "skips padded steps, which the exported model cannot reproduce exactly",
                     hint="remove the mask and pad at the end, or trim sequences to their length before inference")
    if cls == "Embedding" and layer.option("mask_zero"):
        raise refuse(layer, "mask_zero=True", "skips the steps whose token is 0, which the exported model cannot "
                                              "reproduce exactly", hint="set mask_zero=False (trim padding before "
                                                                        "inference) and save again")
    if cls in RECURRENT or cls in ("RNN", "StackedRNNCells"):
        check_recurrent(layer)
    elif cls == "Bidirectional":
        mode = layer.option("merge_mode", "concat")
        if mode is None:
            raise refuse(layer, "merge_mode=None", "returns the two directions as two outputs; edgelstm imports one "
                                                   "output", hint="use merge_mode='concat', 'sum', 'ave' or 'mul'")
        if mode not in ("concat", "sum", "ave", "mul"):
            raise refuse(layer, f"merge_mode={mode!r}", "is not one of concat, sum, ave, mul")
        inner = _wrapped(layer, "layer")
        check_recurrent(inner)
        back = layer.option("backward_layer")
        if back:
            other = _wrapped(layer, "backward_layer")
            check_recurrent(other)
            if _comparable(other.config) != _comparable(inner.config) or other.class_name != inner.class_name:
                raise refuse(layer, "backward_layer", "differs from the forward layer (beyond go_backwards)",
                             hint="edgelstm imports Bidirectional layers whose two directions have the same options")
    elif cls == "TimeDistributed":
        inner = _wrapped(layer, "layer")
        if inner.class_name not in ("Dense", *INFERENCE_IDENTITY):
            raise refuse(layer, f"layer={inner.class_name}", "inside TimeDistributed has no torch mapping",
                         hint="edgelstm maps TimeDistributed(Dense)")
        check_layer(inner)
    elif cls in ("Dense", "Activation", "Conv1D"):
        _activation(layer, "activation", TORCH_ACTIVATIONS, "torch mapping in edgelstm")
        if cls == "Conv1D":
            _check_conv(layer)
    elif cls in ("BatchNormalization", "LayerNormalization"):
        axis = layer.option("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, 2):
            raise refuse(layer, f"axis={axis}", "is not the feature axis (-1)")
    elif cls in ("GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten"):
        if layer.option("data_format", "channels_last") not in ("channels_last", None):
            raise refuse(layer, f"data_format={layer.option('data_format')!r}", "is not supported (channels_last is)")
    elif cls not in SUPPORTED:
        raise refuse(layer, "the layer", "has no torch mapping in edgelstm",
                     hint="supported: " + ", ".join(sorted(set(SUPPORTED) - set(INFERENCE_IDENTITY)))
                     + " and the dropout/noise layers (identity at inference)")


def _check_conv(layer: KerasLayer) -> None:
    if layer.option("data_format", "channels_last") != "channels_last":
        raise refuse(layer, f"data_format={layer.option('data_format')!r}", "is not supported (channels_last is)")
    padding = layer.option("padding", "valid")
    strides = _single(layer.option("strides", 1))
    if padding not in ("valid", "same", "causal"):
        raise refuse(layer, f"padding={padding!r}", "is not supported")
    if padding != "valid" and strides != 1:
        raise refuse(layer, f"padding={padding!r} with strides={strides}", "is not supported (strides 1 is)")


def _single(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _wrapped(layer: KerasLayer, key: str) -> KerasLayer:
    inner = layer.option(key) or {}
    cfg = inner.get("config") or {}
    return KerasLayer(str(inner.get("class_name")), str(cfg.get("name", layer.name)), cfg, layer.save_path,
                      layer.nested_in)


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    ignore = {"name", "go_backwards", "trainable", "kernel_initializer", "recurrent_initializer", "bias_initializer",
              "seed", "dtype"}
    return {k: v for k, v in cfg.items() if k not in ignore}


__all__ = ["INFERENCE_IDENTITY", "RECURRENT", "SUPPORTED", "check_layer", "check_recurrent", "refuse"]
