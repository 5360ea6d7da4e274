"""What an artifact is: I/O with symbolic dims, recurrent layers, op histogram, parameters, size, precision,
manifest. Pure functions returning dicts; the CLI renders them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import ArtifactKind
from edgelstm.runners.base import artifact_kind

RECURRENT_OPS = {"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"}
_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def _walk_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _walk_nodes(attr.g)
            for g in attr.graphs:
                yield from _walk_nodes(g)


def inspect_onnx(path: Path) -> dict[str, Any]:
    import onnx
    from onnx import helper

    from edgelstm.artifacts.iospec import iospec_from_onnx
    from edgelstm.runners.onnxruntime_runner import _guess_precision

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
    manifest = read_manifest(path, verify=False)
    nodes = list(_walk_nodes(model.graph))
    ops = Counter(n.op_type for n in nodes)
    recurrent = []
    for n in nodes:
        if n.op_type in RECURRENT_OPS:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            direction = attrs.get("direction", b"forward")
            direction = direction.decode() if isinstance(direction, bytes) else str(direction)
            recurrent.append({"name": n.name, "op": n.op_type, "hidden_size": attrs.get("hidden_size"),
                              "direction": direction, "directions": _DIRECTIONS.get(direction, 1),
                              "linear_before_reset": attrs.get("linear_before_reset") if n.op_type == "GRU" else None})
    params = sum(int(_numel(i.dims)) for i in model.graph.initializer)
    spec = manifest.io if manifest and manifest.io else iospec_from_onnx(model)
    return {
        "path": str(path), "kind": "onnx", "size_bytes": path.stat().st_size,
        "precision": manifest.precision if manifest else _guess_precision(model),
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "io": spec.to_dict(), "stateful": spec.stateful, "recurrent_layers": recurrent,
        "loops": ops.get("Loop", 0), "op_histogram": dict(ops.most_common()), "parameters": params,
        "manifest": manifest.to_dict() if manifest else None,
        "manifest_matches": _matches(path, manifest),
    }


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _matches(path: Path, manifest) -> bool | None:
    if manifest is None:
        return None
    from edgelstm.fileio import sha256_file

    return sha256_file(path) == manifest.sha256


def inspect_torch(path: Path, *, factory: str | None = None, trust_pickle: bool = False) -> dict[str, Any]:
    from edgelstm.models.loading import infer_input_size, load_model, recurrent_modules

    loaded = load_model(path, factory=factory, trust_pickle=trust_pickle)
    mod = loaded.module
    layers = []
    for name, m in recurrent_modules(mod):
        layers.append({"name": name, "op": type(m).__name__, "input_size": m.input_size, "hidden_size": m.hidden_size,
                       "num_layers": m.num_layers, "directions": 2 if m.bidirectional else 1,
                       "batch_first": m.batch_first})
    params = sum(int(p.numel()) for p in mod.parameters())
    return {"path": str(path), "kind": "torch", "source": loaded.source, "arch": loaded.arch, "config": loaded.config,
            "size_bytes": path.stat().st_size, "precision": "fp32", "input_size": infer_input_size(mod),
            "recurrent_layers": layers, "parameters": params, "module": type(mod).__name__,
            "manifest": None}


def inspect_engine(path: Path) -> dict[str, Any]:
    manifest = read_manifest(path, verify=False)
    size = path.stat().st_size
    if manifest is None:
        return {"path": str(path), "kind": "engine", "size_bytes": size, "manifest": None,
                "note": "no manifest: run `edgelstm doctor` and rebuild with `edgelstm build` to record its facts"}
    return {"path": str(path), "kind": "engine", "size_bytes": size, "precision": manifest.precision,
            "io": manifest.io.to_dict() if manifest.io else None, "manifest": manifest.to_dict(),
            "manifest_matches": _matches(path, manifest)}


def inspect_artifact(path: str | Path, **kwargs: Any) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    kind = artifact_kind(path)
    if kind == ArtifactKind.onnx:
        return inspect_onnx(path)
    if kind == ArtifactKind.engine:
        return inspect_engine(path)
    return inspect_torch(path, **kwargs)
