"""Manifests through every command that reads them, not only the loader: inspect (ONNX and engine), validate
(either side), bench (ONNX, and an engine: exit 3 here without TensorRT), quantize, build (its preflight: exit 2
for a bad manifest, else 3 here without TensorRT), bundle and run.

Each example writes a manifest beside a good model (the tiny exported LSTM) and runs one command in-process with
``--json``. The property: the command ends with a code ARCHITECTURE.md allows for a user's file (0 ok, 1 a gate, 2 bad
input, 3 backend missing; never 4), at most one ``error:`` line on stderr and exactly one when it failed, no
traceback, and exactly one JSON object on stdout saying how it ended. ``run`` re-creates an artifact whose
manifest changed (the cache keeps both), so after it the manifest is edgelstm's own again.

Budget: cheap commands get the profile's examples, the ones that run a model a third, ``run`` (an export per
example) a tenth (at least 2)."""

from __future__ import annotations

import functools
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .fuzzing import NASTY_NUMBERS, NASTY_STRINGS, json_values, mutated, replaced_subtrees, scratch

KINDS = {1: "gate_failed", 2: "bad_input", 3: "backend_missing"}

#: a value for a field: the wrong type, a nasty number or string, or a plausible-but-wrong enum
WRONG = st.one_of(st.sampled_from(NASTY_STRINGS), st.sampled_from(NASTY_NUMBERS), st.booleans(), st.none(),
                  st.sampled_from(["x86-avx9", "turbo", "onnxx", "int4", "engine", "bundle", "float128", "lengths",
                                   "bfloat16", "h0", "hn", "batch", "seq"]),
                  st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.sampled_from(["core", "isa", "a"]),
                                                                            st.integers(-2, 2), max_size=2))
FIELDS = ["kind", "file", "sha256", "precision", "parent_sha256", "manifest_version", "created", "versions",
          "versions.torch", "details", "details.target_isa", "details.ort_opt_level", "details.opset",
          "details.quantization", "details.quantization.target", "details.quantization.target.isa", "details.dla",
          "details.dla.core", "details.tensorrt", "details.tensorrt.version", "details.gpu", "details.state",
          "details.version_compatible", "io", "io.inputs", "io.outputs", "io.inputs.0", "io.inputs.0.name",
          "io.inputs.0.dtype", "io.inputs.0.shape", "io.inputs.0.shape.2", "io.inputs.0.state", "io.inputs.0.role",
          "io.inputs.0.range", "io.outputs.0.name", "io.outputs.0.shape"]


@st.composite
def edited_field(draw, base: dict) -> dict:
    """``base`` with a few named fields set to wrong values (deep paths created as needed)."""
    d = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(FIELDS)).split(".")
        node = d
        try:
            for k in path[:-1]:
                node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
            if isinstance(node, list):
                node[int(path[-1])] = draw(WRONG)
            elif isinstance(node, dict):
                node[path[-1]] = draw(WRONG)
        except (IndexError, ValueError, TypeError, AttributeError):
            continue  # the path crossed a value an earlier edit replaced
    return d


@st.composite
def io_edit(draw, base: dict) -> dict:
    """The I/O spec changed the way a hand edit changes it: tensors added (state ones too), dropped or renamed."""
    d = json.loads(json.dumps(base))
    io = d["io"]
    for _ in range(draw(st.integers(1, 3))):
        role = draw(st.sampled_from(["inputs", "outputs"]))
        op = draw(st.sampled_from(["add-state", "add", "drop", "rename", "retype", "reshape"]))
        tensors = io[role]
        if op == "add-state":
            tensors.append({"name": "h0" if role == "inputs" else "hn", "dtype": "float32",
                            "shape": [1, "batch", draw(st.integers(1, 16))], "state": True})
        elif op == "add":
            tensors.append({"name": draw(st.sampled_from(["lengths", "x2", "mask"])), "dtype": "int64",
                            "shape": ["batch"], **({"role": "lengths"} if draw(st.booleans()) else {})})
        elif tensors and op == "drop":
            tensors.pop(draw(st.integers(0, len(tensors) - 1)))
        elif tensors and op == "rename":
            tensors[0]["name"] = draw(st.sampled_from(["y", "x", "features", "h0", "out"]))
        elif tensors and op == "retype":
            tensors[0]["dtype"] = draw(st.sampled_from(["float16", "int64", "float64", "bool"]))
        elif tensors:
            tensors[0]["shape"] = draw(st.lists(st.one_of(st.integers(0, 9), st.sampled_from(["batch", "seq"])),
                                                max_size=4))
    return d


def manifests(base: dict):
    return st.one_of(edited_field(base), io_edit(base), replaced_subtrees(base), json_values())


@functools.lru_cache(maxsize=None)
def _base(onnx_manifest: str) -> dict:
    return json.loads(onnx_manifest)


PLAN = b"not really an engine, but inspect only reads its manifest" * 4


def engine_manifest(onnx_manifest: dict) -> dict:
    """What `edgelstm build` writes beside an engine (the fields the engine runner, inspect and bundle read)."""
    import hashlib

    return {**onnx_manifest, "kind": "engine", "file": "m.plan", "sha256": hashlib.sha256(PLAN).hexdigest(),
            "precision": "fp16",
            "details": {"tensorrt": {"version": "10.3.0", "route": "builder-flags"},
                        "gpu": {"name": "Orin", "compute_capability": "8.7"}, "hardware_compatibility": "none",
                        "version_compatible": False, "dla": {"core": None}, "rebuild": "edgelstm build m.onnx",
                        "layer_precision": {"groups": {"recurrent": {"fp16": 2}, "other": {"fp32": 1}}}}}


COMMANDS = {
    "inspect": (1, lambda d: ("inspect", d / "m.onnx")),
    "inspect-engine": (1, lambda d: ("inspect", d / "m.plan")),
    "bench-engine": (1, lambda d: ("bench", d / "m.plan", "--iters", "2")),
    "validate-candidate": (3, lambda d: ("validate", "-r", d / "ref.onnx", "-c", d / "m.onnx", "--synthetic", "2",
                                         "--seq", "3")),
    "validate-reference": (3, lambda d: ("validate", "-r", d / "m.onnx", "-c", d / "ref.onnx", "--synthetic", "2",
                                         "--seq", "3")),
    "bench": (3, lambda d: ("bench", d / "m.onnx", "--iters", "2", "--warmup", "0", "--batch", "1", "--seq", "3")),
    "quantize": (3, lambda d: ("quantize", d / "m.onnx", "-p", "fp16", "-o", d / "out" / "q.onnx")),
    "build": (1, lambda d: ("build", d / "m.onnx", "-o", d / "out" / "m.plan")),
    "bundle": (1, lambda d: ("bundle", d, "-o", d.parent / "b.tar.gz")),
}


def run_edgelstm(*args) -> tuple[int, str, str]:
    """``edgelstm ARGS`` in-process through its real entry point (usage errors answer in JSON too):
    (exit code, stdout, stderr)."""
    import contextlib
    import io

    from edgelstm.cli.app import run_cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _examples(share: int) -> int:
    return max(2, settings().max_examples // share)


def check_outcome(code: int, stdout: str, stderr: str, what: str) -> dict:
    assert code in (0, 1, 2, 3), f"exit {code} for {what}\n{stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == (1 if code else 0) or (code == 1 and errors), stderr
    obj = json.loads(stdout)
    assert obj["exit_code"] == code and obj["ok"] is (code == 0), obj
    if code:
        assert obj["kind"] == KINDS[code] and obj["error"], obj
    return obj


@pytest.fixture(scope="module")
def model_files(tiny_lstm):
    return tiny_lstm


def _prepare(tmp_path_factory, tiny, name: str, manifest_bytes: bytes):
    d = scratch(tmp_path_factory, f"manifest_cmd_{name}")
    for p in list(d.iterdir()):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.copy2(tiny.onnx, d / "m.onnx")
    shutil.copy2(tiny.onnx, d / "ref.onnx")
    shutil.copy2(tiny.onnx.with_name("m.onnx.json"), d / "ref.onnx.json")
    if name.endswith("-engine"):
        (d / "m.plan").write_bytes(PLAN)
        (d / "m.plan.json").write_bytes(manifest_bytes)
    else:
        (d / "m.onnx.json").write_bytes(manifest_bytes)
    (d.parent / "b.tar.gz").unlink(missing_ok=True)
    (d.parent / "b.tar.gz.json").unlink(missing_ok=True)
    return d


@pytest.mark.parametrize("name", list(COMMANDS))
def test_manifest_through_command(name, tmp_path_factory, model_files):
    share, argv = COMMANDS[name]
    base = _base(model_files.onnx.with_name("m.onnx.json").read_text())
    base = engine_manifest(base) if name.endswith("-engine") else base

    @settings(max_examples=_examples(share))
    @given(st.one_of(manifests(base).map(lambda v: json.dumps(v).encode()),
                     mutated(json.dumps(base, indent=1).encode())))
    def run(manifest_bytes):
        d = _prepare(tmp_path_factory, model_files, name, manifest_bytes)
        args = [str(a) for a in argv(d)] + ["--json"]
        code, stdout, stderr = run_edgelstm(*args)
        check_outcome(code, stdout, stderr, f"{name} with manifest {manifest_bytes[:300]!r}")

    run()


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A finished pipeline (export + validate only): every later example finds its stages cached."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    from bad_input.tiny_pipeline import tiny_pipeline

    d = tmp_path_factory.mktemp("manifest_run")
    (d / "p.toml").write_text(tiny_pipeline(out=str(d / "out")))
    res = CliRunner().invoke(app, ["run", str(d / "p.toml"), "-q"])
    assert res.exit_code == 0, res.stderr
    return d


def test_manifest_through_run(pipeline_dir):
    from edgelstm.artifacts.manifest import read_manifest

    out = pipeline_dir / "out"
    base = json.loads((out / "model.onnx.json").read_text())

    @settings(max_examples=_examples(10))
    @given(manifests(base).map(lambda v: json.dumps(v).encode()))
    def run(manifest_bytes):
        (out / "model.onnx.json").write_bytes(manifest_bytes)
        code, stdout, stderr = run_edgelstm("run", pipeline_dir / "p.toml", "--json")
        check_outcome(code, stdout, stderr, f"run with manifest {manifest_bytes[:300]!r}")
        if code == 0:  # the changed manifest was not trusted: the pair was made again
            assert read_manifest(out / "model.onnx") is not None

    run()
