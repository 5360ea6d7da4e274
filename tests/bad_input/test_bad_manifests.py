"""Manifests edited by hand (or copied beside another file), through every command that reads them: inspect,
validate (either side), bench, quantize, build (its preflight, before TensorRT is looked for) and bundle.

A manifest is checked against one schema when it is read (``edgelstm.artifacts.manifest_schema``) and the I/O it
claims against the model file: each edit is bad input (exit 2, one line naming the field), never an internal
error, whatever command meets it first. ``inspect`` describes a file whose manifest claims other I/O (exit 0,
saying so) and refuses one that is not a manifest at all."""

from __future__ import annotations

import copy
import json
import shutil
from typing import Any, Callable

import pytest

from .conftest import case, ids, run_case


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """An edit: the value at a dotted path (``details.target_isa``, ``io.inputs.0.dtype``) set."""
    def edit(d: dict) -> None:
        *head, last = path.split(".")
        node: Any = d
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return edit


def _add_state(d: dict) -> None:
    d["io"]["inputs"].append({"name": "h0", "dtype": "float32", "shape": [1, "batch", 8], "state": True})
    d["io"]["outputs"].append({"name": "hn", "dtype": "float32", "shape": [1, "batch", 8], "state": True})


def _state_in_only(d: dict) -> None:
    d["io"]["inputs"].append({"name": "h0", "dtype": "float32", "shape": [1, "batch", 8], "state": True})


def _duplicate_input(d: dict) -> None:
    d["io"]["inputs"].append(copy.deepcopy(d["io"]["inputs"][0]))


#: id -> (edit, words the error line holds). Schema edits name the field; I/O edits say what the file has.
EDITS: dict[str, tuple[Callable[[dict], None], tuple[str, ...]]] = {
    "target-isa-x86-avx9": (_set("details.target_isa", "x86-avx9"), ("details.target_isa", "x86-avx9")),
    "ort-opt-level-turbo": (_set("details.ort_opt_level", "turbo"), ("details.ort_opt_level", "turbo")),
    "quantization-target-isa-number": (_set("details.quantization.target.isa", 7), ("details.quantization.target.isa",)),
    "dla-core-negative": (_set("details.dla", {"core": -1}), ("details.dla.core",)),
    "opset-a-string": (_set("details.opset", "17"), ("details.opset",)),
    "kind-unknown": (_set("kind", "model"), ("'kind'",)),
    "precision-int4": (_set("precision", "int4"), ("'precision'", "int4")),
    "manifest-version-2": (_set("manifest_version", 2), ("manifest_version",)),
    "versions-a-number": (_set("versions.torch", 2), ("versions.torch",)),
    "details-a-list": (_set("details", []), ("'details'",)),
    "dtype-unknown": (_set("io.inputs.0.dtype", "float128"), ("dtype", "float128")),
    "role-unknown": (_set("io.inputs.0.role", "mask"), ("role", "mask")),
    "range-empty": (_set("io.inputs.0.range", [5, 5]), ("range",)),
    "input-twice": (_duplicate_input, ("appears twice",)),
    "data-marked-state": (_set("io.inputs.0.state", True), ("marked state",)),
    "state-input-without-its-output": (_state_in_only, ("no 'hn'",)),
    "state-added-to-a-plain-model": (_add_state, ("does not match its manifest", "h0")),
    "input-renamed": (_set("io.inputs.0.name", "features"), ("does not match its manifest", "features")),
    "dtype-changed": (_set("io.inputs.0.dtype", "float16"), ("does not match its manifest", "float16")),
    "rank-changed": (_set("io.inputs.0.shape", ["batch", "seq"]), ("does not match its manifest", "rank")),
    "output-renamed": (_set("io.outputs.0.name", "logits"), ("does not match its manifest", "logits")),
}
IO_EDITS = {k for k, (_, words) in EDITS.items() if "does not match its manifest" in words}


def _edited(edit: Callable[[dict], None], where: str = "e.onnx"):
    def setup(w, ws, mp):
        target = w / where
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(ws / "m.onnx", target)
        data = json.loads((ws / "m.onnx.json").read_text())
        edit(data)
        (w / (where + ".json")).write_text(json.dumps(data))
    return setup


COMMANDS = {
    "inspect": ("inspect", "{w}/e.onnx"),
    "validate-candidate": ("validate", "-r", "{ws}/m.onnx", "-c", "{w}/e.onnx", "--synthetic", "4", "--seq", "4"),
    "validate-reference": ("validate", "-r", "{w}/e.onnx", "-c", "{ws}/m.onnx", "--synthetic", "4", "--seq", "4"),
    "bench": ("bench", "{w}/e.onnx", "--iters", "2", "--warmup", "0", "--batch", "1", "--seq", "4"),
    "quantize": ("quantize", "{w}/e.onnx", "-p", "fp16", "-o", "{w}/q.onnx"),
    "build": ("build", "{w}/e.onnx", "-o", "{w}/e.plan"),
}

MANIFESTS = [
    case(f"{cmd}-{edit_id}", *args, setup=_edited(edit), needles=() if (cmd == "inspect" and edit_id in IO_EDITS) else words,
         code=0 if (cmd == "inspect" and edit_id in IO_EDITS) else 2)
    for edit_id, (edit, words) in EDITS.items() for cmd, args in COMMANDS.items()
] + [
    case(f"bundle-{edit_id}", "bundle", "{w}/art", "-o", "{w}/b.tar.gz", setup=_edited(edit, "art/model.onnx"),
         needles=words)
    for edit_id, (edit, words) in EDITS.items() if edit_id not in IO_EDITS
]


@pytest.mark.parametrize("c", MANIFESTS, ids=ids(MANIFESTS))
def test_manifest(c, cli, w, ws, monkeypatch):
    run_case(c, cli, w, ws, monkeypatch)


@pytest.mark.parametrize("edit_id", sorted(IO_EDITS))
def test_inspect_describes_the_file_and_says_the_manifest_disagrees(edit_id, cli, w, ws, monkeypatch):
    _edited(EDITS[edit_id][0])(w, ws, monkeypatch)
    code, stdout, stderr = cli("inspect", w / "e.onnx", "--json")
    info = json.loads(stdout)
    assert code == 0 and info["manifest_matches"] is False and "does not describe this file" in info["note"]
    assert [t["name"] for t in info["io"]["inputs"]] == ["x"] and "does not describe this file" in stderr
