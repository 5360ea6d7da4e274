"""Reading a Keras model file without Keras or TensorFlow: the model config (JSON), the Keras version that saved
it, and its weight arrays (h5py).

- ``.keras`` (Keras 3, and tf-keras 2.13+): a zip holding ``config.json``, ``metadata.json`` (``keras_version``) and
  ``model.weights.h5``. Weights sit at the *saving path* of each layer (Keras' ``saving_lib``: a model's layers under
  ``layers/<class name in snake case>[_k]``, numbered per class in the layer list's order, ``lstm``, ``lstm_1``;
  sublayers under their attribute name: ``cell``, ``forward_layer``, ``backward_layer``, ``layer``), each variable
  as ``vars/0``, ``vars/1``... in creation order. tf-keras 2.13 wrote ``_layer_checkpoint_dependencies`` for
  ``layers``; newer Keras also names the layer in the ``vars`` group's ``name`` attribute (used as a fallback).
- legacy HDF5 ``.h5`` (``model.save("m.h5")``, Keras 2 and 3): the config in the root attribute ``model_config``,
  weights in ``model_weights/<layer name>`` in the order of its ``weight_names`` attribute."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgelstm.errors import BackendMissing, BadInput

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: the largest member of a .keras zip read into memory (a zip bomb is refused, not inflated)
MAX_MEMBER_BYTES = 2 << 30


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise BackendMissing("reading a Keras model needs h5py, which is not installed",
                             hint="pip install 'edgelstm[keras]' (or pip install h5py); TensorFlow is not needed") from None
    return h5py


def is_keras_file(path: str | Path) -> bool:
    """A ``.keras`` zip (config.json + model.weights.h5) or an HDF5 file with a Keras model config."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError:
        return False
    if head == HDF5_MAGIC:
        return True
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(p) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
        return "config.json" in names and ("model.weights.h5" in names or "model.weights.npz" in names)
    return False


def keras_major(version: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", str(version or ""))
    return int(m.group(1)) if m else None


@dataclass
class KerasArchive:
    """What a Keras file holds: ``config`` ({"class_name", "config"} of the model), the Keras version that saved it
    (``keras_version``; None when the file does not say), the file format, and its weights."""

    path: Path
    format: str                      # "keras" (zip) or "h5" (legacy HDF5)
    config: dict[str, Any]
    keras_version: str | None
    backend: str | None
    weights: Any                     # ZipWeights | LegacyWeights

    @property
    def major(self) -> int | None:
        return keras_major(self.keras_version)


class ZipWeights:
    """The ``model.weights.h5`` of a ``.keras`` file, addressed by saving path."""

    def __init__(self, h5):
        self.h5 = h5
        self.root = "layers" if "layers" in h5 else ("_layer_checkpoint_dependencies"
                                                    if "_layer_checkpoint_dependencies" in h5 else "layers")

    def arrays(self, path: str, name: str | None = None, sub: str = "") -> list[np.ndarray] | None:
        """The variables stored at ``path`` (``layers/...``, written with this file's root), in order. When the path
        holds none and ``name`` is given: the variables under ``sub`` of the group whose ``vars`` carry that layer
        name (newer Keras records it). None when neither exists."""
        path = self.root + path[len("layers"):] if path.startswith("layers") else path
        group = self.h5.get(path)
        if group is not None and "vars" in group and len(group["vars"]):
            return _ordered(group["vars"])
        if not name:
            return None
        found: list[Any] = []

        def visit(_n, obj):
            if not found and hasattr(obj, "keys") and "vars" in obj and obj["vars"].attrs.get("name") == name:
                target = obj[sub] if sub and sub in obj else (obj if not sub else None)
                if target is not None and "vars" in target:
                    found.append(target["vars"])
        self.h5.visititems(visit)
        return _ordered(found[0]) if found else None


class LegacyWeights:
    """``model_weights`` of a legacy HDF5 file, addressed by layer name."""

    def __init__(self, group):
        self.group = group

    def arrays(self, layer_name: str) -> list[tuple[str, np.ndarray]] | None:
        """(weight name, array) of one layer, in its ``weight_names`` order; None when the layer has no group."""
        if layer_name not in self.group:
            return None
        g = self.group[layer_name]
        names = [_text(n) for n in g.attrs.get("weight_names", [])]
        return [(n, np.asarray(g[n])) for n in names]


def _ordered(vars_group) -> list[np.ndarray]:
    keys = sorted(vars_group.keys(), key=lambda k: int(k) if str(k).isdigit() else 1 << 30)
    return [np.asarray(vars_group[k]) for k in keys]


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, bytearray)) else str(value)


def _json(text: Any, what: str, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_text(text))
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{path.name}: its {what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path.name}: its {what} is not a JSON object")
    return data


def read_keras_file(path: str | Path) -> KerasArchive:
    """Open a ``.keras`` or legacy ``.h5`` Keras model (BadInput in one line for anything else)."""
    p = Path(path)
    h5py = require_h5py()
    with p.open("rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        try:
            h5 = h5py.File(p, "r")
        except OSError as exc:
            raise BadInput(f"{p.name} is not a readable HDF5 file: {exc}") from None
        if "model_config" not in h5.attrs:
            h5.close()
            raise BadInput(f"{p.name} is an HDF5 file without a Keras model config (weights only? save the whole "
                           "model with model.save(...))")
        config = _json(h5.attrs["model_config"], "model_config", p)
        version = _text(h5.attrs.get("keras_version", "")) or None
        backend = _text(h5.attrs.get("backend", "")) or None
        if "model_weights" not in h5:
            raise BadInput(f"{p.name} holds a Keras model config but no weights (model_weights)")
        return KerasArchive(p, "h5", config, version, backend, LegacyWeights(h5["model_weights"]))
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{p.name} is neither a .keras zip nor a Keras HDF5 file ({exc})") from None
    with zf:
        names = set(zf.namelist())
        if "config.json" not in names:
            raise BadInput(f"{p.name} is a zip without config.json: not a .keras model")
        if "model.weights.h5" not in names:
            what = "model.weights.npz (NumPy weights)" if "model.weights.npz" in names else "no model.weights.h5"
            raise BadInput(f"{p.name} holds {what}; edgelstm reads the default HDF5 weights of a .keras file",
                           hint="save it again with model.save('model.keras')")
        for name in ("config.json", "metadata.json", "model.weights.h5"):
            if name in names and zf.getinfo(name).file_size > MAX_MEMBER_BYTES:
                raise BadInput(f"{p.name}: {name} declares {zf.getinfo(name).file_size} bytes, over the "
                               f"{MAX_MEMBER_BYTES >> 30} GiB edgelstm reads")
        config = _json(zf.read("config.json"), "config.json", p)
        meta = _json(zf.read("metadata.json"), "metadata.json", p) if "metadata.json" in names else {}
        weights = zf.read("model.weights.h5")
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as exc:
        raise BadInput(f"{p.name}: model.weights.h5 is not a readable HDF5 file: {exc}") from None
    return KerasArchive(p, "keras", config, meta.get("keras_version"), meta.get("backend"), ZipWeights(h5))


__all__ = ["HDF5_MAGIC", "KERAS_SUFFIXES", "KerasArchive", "LegacyWeights", "ZipWeights", "is_keras_file",
           "keras_major", "read_keras_file", "require_h5py"]
