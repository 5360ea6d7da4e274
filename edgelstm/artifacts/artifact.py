"""One home for a file edgelstm reads or writes: ``Artifact.open(path)`` gives its kind, I/O spec (manifest
first, else read from the file), precision, manifest and, for ONNX, its facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput
from edgelstm.options import ArtifactKind

TORCH_SUFFIXES = {".pt", ".pth", ".pt2", ".ckpt", ".bin", ".torchscript", ".jit"}
#: Keras files: loaded as their equivalent torch module (edgelstm.models.keras), so an artifact of kind torch
KERAS_SUFFIXES = {".keras", ".h5", ".hdf5"}
ENGINE_SUFFIXES = {".plan", ".engine", ".trt"}


def artifact_kind(path: str | Path) -> ArtifactKind:
    """The kind of a file from its suffix, else from its first bytes."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return ArtifactKind.onnx
    if suffix in ENGINE_SUFFIXES:
        return ArtifactKind.engine
    if suffix == ".xml":
        return ArtifactKind.openvino
    if suffix in TORCH_SUFFIXES or suffix in KERAS_SUFFIXES:
        return ArtifactKind.torch
    if p.exists():
        head = p.read_bytes()[:4]
        if head[:2] == b"PK" or head[:1] == b"\x80" or head == b"\x89HDF":
            return ArtifactKind.torch
        if head[:1] == b"\x08":  # protobuf field 1 varint: ir_version
            return ArtifactKind.onnx
    raise BadInput(f"cannot tell what kind of artifact {p.name} is; use .onnx, .plan/.engine, an OpenVINO .xml or a "
                   "torch file")


def io_spec_of(path: str | Path, model: Any = None, manifest: Any = None) -> IOSpec:
    """The I/O spec of an ONNX file: its manifest's (state roles, symbolic dims) when it has one, else read from
    the model (``model`` when already loaded)."""
    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.artifacts.manifest import read_manifest

    m = manifest if manifest is not None else read_manifest(path)
    if model is None and (m is None or m.io is None):
        from edgelstm.artifacts.onnx_graph import load_onnx

        model = load_onnx(path)
    elif model is None:  # the graph only (no weights): enough to check what the manifest says
        model = _graph_of(path)
    io, _ = manifest_first_io(m.io if m is not None else None, iospec_from_onnx(model), Path(path).name)
    return io


def _graph_of(path: str | Path) -> Any:
    import onnx

    from edgelstm.fileio import require_file

    p = require_file(path, kind="an ONNX model")
    try:
        return onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted errors on garbage
        raise BadInput(f"{p.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200] if str(exc) else exc}") from None


def manifest_first_io(claimed: IOSpec | None, actual: IOSpec, name: str, *,
                      strict: bool = True) -> tuple[IOSpec, str | None]:
    """The one rule for an ONNX file's I/O spec: its manifest's (``claimed``: state roles, symbolic dims) once the
    file agrees with it, else what the file says (``actual``). Strict: a disagreement is BadInput; otherwise the
    file's spec comes back with the disagreement (``inspect`` describes what the file really is)."""
    if claimed is None:
        return actual, None
    if not strict:
        from edgelstm.artifacts.manifest_schema import io_mismatch

        problem = io_mismatch(claimed, actual)
        return (actual if problem else claimed), problem
    return checked_io(claimed, actual, name), None


def checked_io(claimed: IOSpec, actual: IOSpec, name: str) -> IOSpec:
    """A manifest's I/O spec, once the model file agrees with it (names, dtypes, ranks); else BadInput."""
    from edgelstm.artifacts.manifest_schema import io_mismatch

    problem = io_mismatch(claimed, actual)
    if problem is not None:
        raise BadInput(f"{name} does not match its manifest: {problem}",
                       hint="the manifest was edited or belongs to another file; re-create it or delete it")
    return claimed


@dataclass
class Artifact:
    path: Path
    kind: ArtifactKind
    manifest: Any = None        # edgelstm.artifacts.manifest.Manifest | None
    io: IOSpec | None = None
    precision: str | None = None
    facts: Any = None           # edgelstm.artifacts.facts.OnnxFacts for ONNX files
    io_problem: str | None = None  # opened without verify: how the manifest's I/O disagrees with the file
    graph: Any = field(default=None, repr=False, compare=False)  # ONNX: the ModelProto without its weights

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = True, outside_data: bool = False) -> "Artifact":
        """Read what can be known without running the file: manifest (checked when ``verify``), I/O, precision,
        and the ONNX facts. An ONNX whose external data points outside its folder is BadInput unless
        ``outside_data`` (``inspect --describe-only``: described, never read)."""
        from edgelstm.artifacts.manifest import read_manifest

        from edgelstm.fileio import require_file

        p = require_file(path)
        kind = artifact_kind(p)
        manifest = read_manifest(p, verify=verify) if kind != ArtifactKind.torch else None
        art = cls(p, kind, manifest, manifest.io if manifest else None, manifest.precision if manifest else None)
        if kind == ArtifactKind.onnx:
            from edgelstm.artifacts.facts import onnx_facts
            from edgelstm.artifacts.iospec import iospec_from_onnx

            model = _graph_of(p)
            if not model.ir_version or not model.graph.node:  # protobuf parses many a short file as an empty model
                raise BadInput(f"{p.name} is not a valid ONNX model: "
                               f"{'no IR version' if not model.ir_version else 'its graph has no nodes'}")
            art.graph = model
            art.facts = onnx_facts(model)
            if art.facts.external and not outside_data:
                from edgelstm.artifacts.onnx_graph import refuse_outside_data

                refuse_outside_data(p, art.facts.external)
            # opened without verify: describe what the file really is, and say what disagrees
            art.io, art.io_problem = manifest_first_io(art.io, iospec_from_onnx(model), p.name, strict=verify)
            art.precision = art.precision or art.facts.precision
        return art

    @property
    def target_isa(self) -> str | None:
        """The CPU class an INT8 file was quantized for (its manifest), or None."""
        return (self.manifest.details.get("target_isa") if self.manifest is not None else None)


__all__ = ["Artifact", "artifact_kind", "io_spec_of", "manifest_first_io", "checked_io", "ENGINE_SUFFIXES", "KERAS_SUFFIXES", "TORCH_SUFFIXES"]
