"""Manifests (``<artifact>.json``): arbitrary JSON, a real manifest with subtrees replaced, and mutated bytes,
through read_manifest, Artifact.open and io_spec_of, and on into synthetic data shaped by the manifest's
I/O spec (a manifest is a user's file too: it can be edited, truncated or swapped)."""

from __future__ import annotations

import functools
import json

from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import json_values, mutated, only_ours, replaced_subtrees, scratch, tiny_lstm_onnx


@functools.lru_cache(maxsize=None)
def good_manifest() -> dict:
    import hashlib

    from edgelstm.artifacts.iospec import IOSpec, TensorSpec
    from edgelstm.artifacts.manifest import Manifest

    io = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 2)), TensorSpec("h0", "float32", (1, "batch", 3), True)),
                (TensorSpec("y", "float32", ("batch", 1)), TensorSpec("hn", "float32", (1, "batch", 3), True)))
    return Manifest(kind="onnx", file="m.onnx", sha256=hashlib.sha256(tiny_lstm_onnx()).hexdigest(), io=io,
                    details={"route": "torchscript", "opset": 17, "ort_opt_level": "all"}).to_dict()


def _check(tmp_path_factory, text: bytes) -> None:
    from edgelstm.artifacts.artifact import Artifact, io_spec_of
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.data import synthetic_dataset

    d = scratch(tmp_path_factory, "manifest")
    art = d / "m.onnx"
    art.write_bytes(tiny_lstm_onnx())
    (d / "m.onnx.json").write_bytes(text)
    for verify in (True, False):
        only_ours(read_manifest, art, verify=verify)
    a = only_ours(Artifact.open, art)
    if a is not None and not isinstance(a, Exception):
        only_ours(synthetic_dataset, a.io, 2, seq=3)
    spec = only_ours(io_spec_of, art)
    if spec is not None and not isinstance(spec, Exception):
        only_ours(synthetic_dataset, spec, 2, seq=3)


@given(json_values())
def test_arbitrary_json(tmp_path_factory, value):
    _check(tmp_path_factory, json.dumps(value).encode())


@given(st.data())
def test_real_manifest_with_replaced_parts(tmp_path_factory, data):
    value = data.draw(replaced_subtrees(good_manifest()))
    _check(tmp_path_factory, json.dumps(value).encode())


@given(mutated(json.dumps(good_manifest(), indent=2).encode()))
def test_mutated_bytes(tmp_path_factory, text):
    _check(tmp_path_factory, text)
