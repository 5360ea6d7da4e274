"""What an artifact is: I/O with symbolic dims, recurrent layers, op histogram, parameters, size, precision,
manifest. Pure functions returning dicts; the CLI renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import ArtifactKind
from edgelstm.artifacts.artifact import artifact_kind


def inspect_onnx(path: Path, *, describe_only: bool = False) -> dict[str, Any]:
    """An ONNX file's facts. External data outside the model's folder is refused (BadInput) unless
    ``describe_only``; then it is listed under ``external_data_outside`` (never read either way)."""
    import onnx

    from edgelstm.artifacts.artifact import Artifact
    from edgelstm.artifacts.onnx_graph import external_data_outside

    art = Artifact.open(path, verify=False, outside_data=describe_only)
    model = onnx.load(str(path), load_external_data=False)
    f = art.facts
    recurrent = [{k: layer[k] for k in ("name", "op", "hidden_size", "direction", "directions", "linear_before_reset")}
                 for layer in f.recurrent_layers]
    return {
        "path": str(path), "kind": "onnx", "size_bytes": path.stat().st_size, "precision": art.precision,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "io": art.io.to_dict(), "stateful": art.io.stateful, "recurrent_layers": recurrent,
        "loops": f.loops, "op_histogram": dict(f.ops.most_common()), "parameters": f.parameters,
        "manifest": art.manifest.to_dict() if art.manifest else None,
        "manifest_matches": _matches(path, art.manifest) and art.io_problem is None,
        "external_data": list(f.external),
        "external_data_outside": external_data_outside(path, f.external), **_int8_needs(path, model),
        **({"note": f"the manifest does not describe this file: {art.io_problem}; the I/O above is the file's"}
           if art.io_problem else {}),
    }


def _int8_needs(path: Path, model: Any) -> dict[str, Any]:
    """What an INT8 file says it needs (its metadata_props) and what a plain onnxruntime session would do."""
    from edgelstm.artifacts.int8_metadata import plain_session_warning, read_entries

    entries = read_entries(model)
    if not entries:
        return {}
    note = plain_session_warning(path.name, entries)
    return {"int8_needs": entries, **({"int8_note": note} if note else {})}


def inspect_openvino(path: Path) -> dict[str, Any]:
    """An OpenVINO IR: its manifest's facts (precision, inference precision, drift, layers), the .bin beside it."""
    from edgelstm.artifacts.openvino import bin_path

    manifest = read_manifest(path, verify=False)
    weights = bin_path(path)
    size = path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0)
    out: dict[str, Any] = {"path": str(path), "kind": "openvino", "size_bytes": size, "bin": weights.name,
                           "bin_present": weights.is_file(), "manifest": manifest.to_dict() if manifest else None,
                           "manifest_matches": _matches(path, manifest)}
    if manifest is None:
        out["note"] = "no manifest: runs in FP32; rebuild with `edgelstm build MODEL.onnx -o MODEL.xml` to record its facts"
        return out
    ov = manifest.details.get("openvino") or {}
    out.update({"precision": manifest.precision, "io": manifest.io.to_dict() if manifest.io else None,
                "inference_precision": ov.get("inference_precision"), "drift": ov.get("drift")})
    return out


def _matches(path: Path, manifest) -> bool | None:
    if manifest is None:
        return None
    from edgelstm.fileio import sha256_file

    return sha256_file(path) == manifest.sha256


def inspect_torch(path: Path, *, factory: str | None = None, trust_pickle: bool = False,
                  inputs: Any = None, keras_reference: Any = None) -> dict[str, Any]:
    """A torch model's facts, and its I/O as edgelstm will call it (the input contract, proved by running it)."""
    from edgelstm.errors import EdgeLSTMError
    from edgelstm.models.calling import resolve_call
    from edgelstm.models.inputs import InputOptions
    from edgelstm.models.loading import infer_input_size, load_model, recurrent_modules

    loaded = load_model(path, factory=factory, trust_pickle=trust_pickle, keras_reference=keras_reference)
    mod = loaded.module
    layers = []
    for name, m in recurrent_modules(mod):
        layers.append({"name": name, "op": getattr(m, "mode", None) if type(m).__name__ == "OnnxRecurrent"
                       else type(m).__name__, "input_size": m.input_size, "hidden_size": m.hidden_size,
                       "num_layers": m.num_layers, "directions": 2 if m.bidirectional else 1,
                       "batch_first": m.batch_first})
    params = sum(int(p.numel()) for p in mod.parameters())
    io, note, contract = None, None, None
    try:
        call = resolve_call(mod, inputs or InputOptions())
        io = call.io.to_dict()
        contract = {"state_argument": call.contract.state.to_dict() if call.contract.state else None,
                    "fixed_shape": call.fixed, "notes": list(call.contract.notes)}
    except EdgeLSTMError as exc:
        note = f"inputs not inferred: {exc}"
    return {"io": io, "contract": contract, **({"note": note} if note else {}),"path": str(path), "kind": "torch", "source": loaded.source, "arch": loaded.arch, "config": loaded.config,
            "size_bytes": path.stat().st_size, "precision": "fp32", "input_size": infer_input_size(mod),
            "recurrent_layers": layers, "parameters": params, "module": type(mod).__name__,
            "manifest": None, **({"keras": loaded.origin} if loaded.origin else {})}


def inspect_engine(path: Path) -> dict[str, Any]:
    manifest = read_manifest(path, verify=False)
    size = path.stat().st_size
    if manifest is None:
        return {"path": str(path), "kind": "engine", "size_bytes": size, "manifest": None,
                "note": "no manifest: run `edgelstm doctor` and rebuild with `edgelstm build` to record its facts"}
    return {"path": str(path), "kind": "engine", "size_bytes": size, "precision": manifest.precision,
            "io": manifest.io.to_dict() if manifest.io else None, "manifest": manifest.to_dict(),
            "manifest_matches": _matches(path, manifest)}


def inspect_artifact(path: str | Path, *, describe_only: bool = False, **kwargs: Any) -> dict[str, Any]:
    from edgelstm.fileio import require_file

    path = require_file(path)
    kind = artifact_kind(path)
    if kind == ArtifactKind.onnx:
        return inspect_onnx(path, describe_only=describe_only)
    if kind == ArtifactKind.engine:
        return inspect_engine(path)
    if kind == ArtifactKind.openvino:
        return inspect_openvino(path)
    return inspect_torch(path, **kwargs)
