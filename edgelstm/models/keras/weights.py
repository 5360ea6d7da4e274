"""Which arrays a Keras layer saved, by role (``kernel``, ``recurrent_kernel``, ``bias``...), from either file
format: a ``.keras`` file stores a layer's variables in creation order (``vars/0``, ``vars/1``...) under its saving
path, a legacy ``.h5`` file by name (``lstm/lstm_cell/kernel:0``). Shapes are checked against the layer's config."""

from __future__ import annotations

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.models.keras.archive import KerasArchive
from edgelstm.models.keras.graph import KerasLayer


def variable_names(class_name: str, config: dict) -> tuple[str, ...]:
    """The variables a layer of this class creates, in creation order, given its options."""
    bias = ("bias",) if config.get("use_bias", True) else ()
    if class_name in ("LSTM", "GRU", "SimpleRNN"):
        return ("kernel", "recurrent_kernel", *bias)
    if class_name in ("Dense", "Conv1D"):
        return ("kernel", *bias)
    if class_name == "Embedding":
        return ("embeddings",)
    if class_name in ("BatchNormalization", "LayerNormalization"):
        names = (("gamma",) if config.get("scale", True) else ()) + (("beta",) if config.get("center", True) else ())
        return names + (("moving_mean", "moving_variance") if class_name == "BatchNormalization" else ())
    return ()


def layer_variables(archive: KerasArchive, layer: KerasLayer, inner: KerasLayer | None = None,
                    part: str = "") -> dict[str, np.ndarray]:
    """The variables of ``layer`` by role. ``inner``: the layer a wrapper holds (Bidirectional's forward/backward
    layer, TimeDistributed's layer), whose class and options decide the roles; ``part``: where the wrapper keeps it
    (``forward_layer``, ``backward_layer``, ``layer``; a recurrent layer's variables live in its ``cell``)."""
    target = inner or layer
    names = variable_names(target.class_name, target.config)
    if not names:
        return {}
    recurrent = target.class_name in ("LSTM", "GRU", "SimpleRNN")
    if archive.format == "keras":
        path = "/".join(p for p in (layer.save_path, part, "cell" if recurrent else "") if p)
        arrays = archive.weights.arrays(path, name=layer.name if not part else None,
                                        sub="cell" if recurrent else "")
        if arrays is None:
            raise BadInput(f"Keras layer {layer.name!r} ({layer.class_name}): the weights file has no variables at "
                           f"{path!r}", hint="the .keras file may be from an unsupported Keras version; save it again "
                                             "with Keras 3")
        if len(arrays) != len(names):
            raise BadInput(f"Keras layer {layer.name!r} ({layer.class_name}): {len(arrays)} variables saved at "
                           f"{path!r}, the layer has {len(names)} ({', '.join(names)})")
        return dict(zip(names, arrays))
    if layer.nested_in:
        raise BadInput(f"Keras layer {layer.name!r} sits in a nested model ({layer.nested_in!r}) of a legacy .h5 "
                       "file, which edgelstm does not read", hint="save the model as .keras")
    entries = archive.weights.arrays(layer.name)
    if entries is None:
        raise BadInput(f"Keras layer {layer.name!r} ({layer.class_name}): the .h5 file has no weights for it")
    if part in ("forward_layer", "backward_layer"):
        key = "forward" if part == "forward_layer" else "backward"
        entries = [(n, a) for n, a in entries if any(seg.startswith(key) for seg in n.split("/"))]
    out: dict[str, np.ndarray] = {}
    for n, a in entries:
        role = n.split("/")[-1].split(":")[0]
        if role in names and role not in out:
            out[role] = a
    missing = [n for n in names if n not in out]
    if missing:
        raise BadInput(f"Keras layer {layer.name!r} ({layer.class_name}): the .h5 file lacks {', '.join(missing)} "
                       f"(it has {', '.join(n for n, _ in entries) or 'nothing'})")
    return out


def check_shape(layer: KerasLayer, role: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if tuple(array.shape) != tuple(shape):
        raise BadInput(f"Keras layer {layer.name!r} ({layer.class_name}): {role} has shape {list(array.shape)}, "
                       f"its config implies {list(shape)}")
    return np.asarray(array, dtype=np.float32)


__all__ = ["check_shape", "layer_variables", "variable_names"]
