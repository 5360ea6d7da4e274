"""The runner contract (edgelstm.runners.contract): every runner derives from RunnerBase, a foreign runner is
read through as_runner, callers read capabilities as attributes (no probing outside the adapter), precisions are
typed and serialize as before, and the typed results write the JSON they always wrote."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from edgelstm.artifacts.iospec import IOSpec, TensorSpec
from edgelstm.options import BuildPrecision, Precision
from edgelstm.runners.contract import RunnerBase, as_runner, is_runner, typed_precision

ROOT = Path(__file__).resolve().parents[1]
IO = IOSpec((TensorSpec("x", shape=("batch", "seq", 1)),), (TensorSpec("y", shape=("batch", 1)),))


def test_every_runner_derives_from_the_contract():
    from edgelstm.runners.onnxruntime_runner import OrtRunner
    from edgelstm.runners.openvino_runner import OpenVinoRunner
    from edgelstm.runners.tensorrt_runner import TensorRTRunner
    from edgelstm.runners.torch_runner import TorchRunner

    for cls in (OrtRunner, OpenVinoRunner, TensorRTRunner, TorchRunner):
        assert issubclass(cls, RunnerBase), cls.__name__
        assert cls.backend in ("onnxruntime", "openvino", "tensorrt", "torch")


def test_a_foreign_runner_is_adapted_absent_capabilities_read_as_absent_present_ones_live():
    class Foreign:
        io, backend, label = IO, "custom", "mine"
        graph_error = None

        def run(self, feeds):
            return {"y": np.zeros((1, 1), np.float32)}

    inner = Foreign()
    r = as_runner(inner)
    assert isinstance(r, RunnerBase) and as_runner(r) is r
    assert (r.backend, r.label, r.io) == ("custom", "mine", IO)
    assert r.precision is None                       # it does not say: unknown, not fp32
    assert r.timed_run is None and r.bind is None and r.session is None and r.module is None
    assert r.warnings == [] and r.manifest is None and r.target_isa is None and r.copies_included is False
    assert r.timed_with == "runner"
    inner.graph_error = "capture failed"             # read live, not copied when adapted
    assert r.graph_error == "capture failed"
    assert r.run({"x": np.zeros((1, 2, 1), np.float32)})["y"].shape == (1, 1)
    r.close()                                        # no close(): nothing to do
    assert as_runner(type("Unnamed", (), {"io": IO, "run": lambda self, f: {}})()).label == "Unnamed"
    assert is_runner(inner) and not is_runner("m.onnx") and not is_runner(object())


def test_typed_precision_serializes_as_the_same_string():
    assert typed_precision("fp16") is Precision.fp16 and typed_precision(None) is Precision.fp32
    assert typed_precision("bf16") is BuildPrecision.bf16          # an OpenVINO IR
    assert typed_precision("unknown") == "unknown"                # an engine without a manifest, as reported before
    row = {"precision": typed_precision("int8")}
    assert json.dumps(row) == '{"precision": "int8"}' and f"{row['precision']}" == "int8"


def test_ort_runner_opens_through_artifact_open(tiny_lstm):
    from edgelstm.artifacts.artifact import Artifact, io_spec_of
    from edgelstm.runners.base import open_runner

    r = open_runner(tiny_lstm.stateful)
    art = Artifact.open(tiny_lstm.stateful)
    assert r.io == art.io == io_spec_of(tiny_lstm.stateful)       # one manifest-first spec (state roles kept)
    assert r.precision is Precision.fp32 and r.manifest.sha256 == art.manifest.sha256
    assert r.session is not None and r.module is None and r.timed_run is None
    r.close()


def test_callers_do_not_probe_runners():
    """Outside the adapter, no product module asks a runner what it has with getattr/hasattr."""
    names = {"runner", "ref", "cand", "probe", "reference", "candidate"}
    found = []
    for path in sorted((ROOT / "edgelstm").rglob("*.py")):
        if path.name == "contract.py" and path.parent.name == "runners":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not [f for f in found if not f.startswith("edgelstm/bundle/")], found  # bundle/: reported, not ours


def test_pipeline_records_write_the_json_they_always_wrote(tmp_path):
    from edgelstm.pipeline.flow import PipelineArtifact, PipelineResult, StepRecord
    from edgelstm.pipeline.schema import ModelSection, Pipeline
    from edgelstm.pipeline.verdict import SummaryRow

    res = PipelineResult(Pipeline(model=ModelSection(zoo="gru")), tmp_path)
    res.steps += [StepRecord("convert", False, 1.5), StepRecord("quantize fp16", True, 0.01)]
    assert res.stages == [{"stage": "convert", "cached": False, "seconds": 1.5},
                          {"stage": "quantize fp16", "cached": True, "seconds": 0.01}]
    assert not res.cached_everything
    f = tmp_path / "m.onnx"
    f.write_bytes(b"12345")
    a = res.artifact("fp16", f, "fp16")
    assert isinstance(a, PipelineArtifact) and a.precision is Precision.fp16 and a.size_bytes == 5
    row = SummaryRow("m.onnx", "int8-dynamic", 5, 0.01, None, "pass", 1.0, 2.0, "b1 s60", [])
    assert list(row.to_json()) == ["artifact", "precision", "size_bytes", "rel_l2", "task", "gates", "p50_ms",
                                   "speedup", "shape", "remarks"]


def test_validation_steps_are_small_functions():
    """plan -> run -> compare -> gate: no function of the validate stage over 80 lines."""
    for rel in ("edgelstm/validation/validate.py", "edgelstm/validation/validate_plan.py",
                "edgelstm/validation/validate_run.py", "edgelstm/latency/bencher.py"):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
        assert not long, (rel, long)


@pytest.mark.parametrize("name", ["validate", "bench"])
def test_cli_command_bodies_are_short(name):
    """The command's body (its Typer signature aside) stays under 80 lines; the work is in named helpers."""
    tree = ast.parse((ROOT / f"edgelstm/cli/{name}.py").read_text(encoding="utf-8"))
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert fn.end_lineno - fn.body[0].lineno + 1 < 80
