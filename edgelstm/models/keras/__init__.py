"""Keras models in, without TensorFlow: a ``.keras`` or legacy ``.h5`` file read with h5py (``archive``), its
layer chain (``graph``), refused options (``refusals``), an equivalent torch module (``torch_mapping``, ``blocks``)
proved against Keras' own predictions where it can be (``reference``). The torch module then goes through the same
verified export as any torch model.

    imp = import_keras("model.keras", reference=None)   # -> KerasImport(module, rows, inputs, report)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgelstm.models.keras.archive import KERAS_SUFFIXES, is_keras_file, keras_major, read_keras_file

__all__ = ["KERAS_SUFFIXES", "KerasImport", "import_keras", "is_keras_file"]


@dataclass
class KerasImport:
    module: Any                                   # the torch form (blocks.KerasModel), eval mode
    rows: list[Any]                               # torch_mapping.MappingRow per Keras layer (or fused group)
    inputs: tuple[Any, ...]                       # the input Keras declares, as TensorSpecs
    keras_version: str | None
    format: str
    verification: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """What the manifest and ``inspect`` record about the import."""
        return {"format": self.format, "keras_version": self.keras_version,
                "layers": [r.to_dict() for r in self.rows], "inputs": [t.describe() for t in self.inputs],
                "verification": self.verification, "notes": list(self.notes)}


def _major(archive) -> int:
    major = archive.major
    if major is not None:
        return major
    return 3 if "module" in archive.config else 2  # Keras 3 configs name each object's module


def import_keras(path: str | Path, *, reference: str | Path | None = None, verify: bool = True) -> KerasImport:
    """Read, map and (``verify``) prove a Keras model; BadInput/ExportMismatch/BackendMissing on failure."""
    from edgelstm.models.keras.graph import parse_graph
    from edgelstm.models.keras.reference import verify_import
    from edgelstm.models.keras.torch_mapping import map_to_torch

    archive = read_keras_file(path)
    major = _major(archive)
    graph = parse_graph(archive.config)
    form = map_to_torch(graph, archive, major)
    notes = list(form.notes)
    if archive.major is None:
        notes.append(f"the file does not say which Keras saved it; read as Keras {major}")
    if any("hard_sigmoid" in (r.keras + r.torch + r.onnx) or "HardSigmoid" in r.onnx for r in form.rows):
        notes.append(f"hard_sigmoid computed as Keras {major} does ({'0.2x + 0.5' if major < 3 else 'x/6 + 0.5'}, "
                     "clipped to [0, 1])")
    imp = KerasImport(form.module, form.rows, form.inputs, archive.keras_version, archive.format, notes=notes)
    if verify:
        imp.verification = verify_import(Path(path), form.module, form.inputs[0], major,
                                         Path(reference) if reference else None)
    return imp
