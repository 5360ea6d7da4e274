"""Localisation and per-layer precision for TensorRT, against the stand-in (tests/fakes) computing the network
(`engine_math="onnxruntime"`: FP16 layers emulated by rounding, see tests/fakes/engine_math.py): the debug build
marks tensors with INetworkDefinition.mark_output (loop interiors left out, as Polygraphy does), layer precision
constraints go through ILayer.precision / set_output_type + OBEY_PRECISION_CONSTRAINTS on 10.x and through the ONNX
types on 11.x. Real TensorRT: tests/test_tensorrt_real.py (marker `trt`)."""

from __future__ import annotations

import json

import onnx
import pytest

try:
    from fakes.fixtures import calls, models, plan_of, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests.fakes.fixtures import calls, models, plan_of, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.errors import BadInput
from edgelstm.stages import localize_drift
from edgelstm.validation.localize import LocalizeOptions
from edgelstm.validation.validate import DataRequest

SEQ = 10
V10, V11 = "10.14.1.48", "11.4.0.106"


def _fp16_engine(models, tmp_path, name="m.fp16.plan", **kw):
    return build_engine(models["lstm"], tmp_path / name, BuildOptions(precision="fp16", batch=(1, 8, 16),
                                                                       seq=(1, SEQ, 32), **kw))


def _localize(models, engine, **kw):
    return localize_drift(models["lstm"], engine, DataRequest(synthetic=16, seq=SEQ, seed=2),
                          LocalizeOptions(batch_size=8, **kw))


def test_a_debug_build_marks_every_tensor_outside_the_loop(trt, models, tmp_path):
    mod = trt()
    res = build_engine(models["lstm"], tmp_path / "d.plan", BuildOptions(mark_outputs=("*",)))
    marked = [a[0] for a, _ in calls(mod, "INetworkDefinition.mark_output")]
    assert set(marked) == {"x_t", "rnn_Y", "rnn_Yh", "rnn_Yc", "last"}       # y is an output already
    assert not any("loop_state" in m for m in marked)                         # inside the LSTM's loop
    assert res.manifest.details["debug_outputs"]["marked"] == marked
    assert {t.name for t in res.io.outputs} == {"y", *marked}
    named = build_engine(models["lstm"], tmp_path / "n.plan",
                         BuildOptions(mark_outputs=("rnn_Y", "/rnn/LSTM/loop_state", "nosuch")))
    assert named.manifest.details["debug_outputs"] == {"marked": ["rnn_Y"],
                                                       "not_markable": ["/rnn/LSTM/loop_state", "nosuch"]}


def test_the_stand_in_refuses_a_loop_interior_as_an_output(trt, models):
    """What TensorRT refuses and the marking walk avoids: a tensor computed inside a loop body as a network output."""
    mod = trt()
    logger = mod.Logger()
    builder = mod.Builder(logger)
    network = builder.create_network(0)
    assert mod.OnnxParser(network, logger).parse(models["lstm"].read_bytes(), str(models["lstm"]))
    inner = next(network.get_layer(i).get_output(0) for i in range(network.num_layers)
                 if network.get_layer(i).type == mod.LayerType.RECURRENCE)
    assert network.get_layer(0).metadata == "[ONNX Layer: /to_seq_first]"
    network.mark_output(inner)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 1, 1), (2, 4, 1), (4, 8, 1))
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is None
    assert any("inside a loop body" in m for _, m in logger._messages)


def test_fp16_engine_drift_is_localised_through_a_debug_engine(trt, models, tmp_path):
    trt(engine_math="onnxruntime")
    engine = _fp16_engine(models, tmp_path)
    r = _localize(models, engine.path)
    assert r.backend == "tensorrt" and not r.matching["unmatched"]
    rows = {x["tensor"]: x for x in r.analysis["rows"]}
    assert rows["x_t"]["rel_l2"] > 0                  # the first FP16 layer rounds the input
    assert r.entry["tensor"] == "x_t" and r.entry["time_step"] == 0
    assert rows["rnn_Y"]["rel_l2"] > 0 and len(rows["rnn_Y"]["per_step_rel_l2"]) == SEQ
    assert r.marking_effect["y"] < 0.5 * r.analysis["worst_output_rel_l2"]
    assert any("debug engine" in n for n in r.notes)


def test_layer_precisions_on_10x_set_constraints_that_the_build_obeys(trt, models, tmp_path):
    mod = trt(engine_math="onnxruntime")
    plain = _localize(models, _fp16_engine(models, tmp_path).path)
    res = _fp16_engine(models, tmp_path, "lp.plan", layer_precisions=("recurrent:fp32",))
    set_precision = {a[0]: a[1] for a, _ in calls(mod, "ILayer.precision=")}
    assert set_precision == {"/rnn/LSTM": "FLOAT", "/rnn/LSTM_1": "FLOAT", "/rnn/LSTM_2": "FLOAT",
                             "/rnn/LSTM_3": "FLOAT"}                 # the loop and its three outputs
    assert ("/rnn/LSTM_1", 0, "FLOAT") in [a for a, _ in calls(mod, "ILayer.set_output_type")]
    assert "OBEY_PRECISION_CONSTRAINTS" in res.flags and "OBEY_PRECISION_CONSTRAINTS" in plan_of(res.path)["flags"]
    lstm = next(x for x in plan_of(res.path)["layers"] if x["node"] == "/rnn/LSTM")
    assert lstm["precision"] == "Float" and lstm["constrained"]
    assert res.manifest.details["layer_precisions"]["nodes"] == {"/rnn/LSTM": "fp32"}
    assert "--layer-precisions recurrent:fp32" in res.manifest.details["rebuild"]
    kept = _localize(models, res.path)               # the debug engine keeps the constraint (from the manifest)

    def lstm_added(r):
        return next(x["added"] for x in r.analysis["rows"] if x["tensor"] == "rnn_Y")

    assert lstm_added(kept) < lstm_added(plain)


def test_layer_precisions_on_11x_come_from_the_onnx_types(trt, models, tmp_path):
    trt(V11)
    keep = tmp_path / "made.fp16.onnx"
    res = _fp16_engine(models, tmp_path, layer_precisions=("recurrent:fp32",), keep_intermediate=keep)
    made = onnx.load(str(keep))
    types = {i.name: i.data_type for i in made.graph.initializer}
    assert types["rnn_W"] == onnx.TensorProto.FLOAT and types["head_W"] == onnx.TensorProto.FLOAT16
    assert res.manifest.details["layer_precisions"]["mode"].startswith("ONNX types")
    with pytest.raises(BadInput, match="strongly typed"):
        build_engine(keep, tmp_path / "again.plan", BuildOptions(precision="fp16", layer_precisions=("/head/Gemm:fp32",)))


def test_validate_localize_on_an_engine_from_the_command_line(trt, models, tmp_path, cli):
    trt(engine_math="onnxruntime")
    engine = _fp16_engine(models, tmp_path)
    code, stdout, stderr = cli("validate", "-r", models["lstm"], "-c", engine.path, "--synthetic", 8, "--seq", SEQ,
                               "--localize", "--json")
    assert code == 0, stderr
    loc = json.loads(stdout)["localization"]
    assert loc["backend"] == "tensorrt" and loc["entry"]["tensor"] == "x_t"


def test_build_layer_precisions_from_the_command_line(trt, models, tmp_path, cli):
    trt()
    out = tmp_path / "c.plan"
    code, _, stderr = cli("build", models["lstm"], "-o", out, "--precision", "fp16", "--layer-precisions",
                          "recurrent:fp32", "--batch", "1:2:4", "--seq", "1:4:8")
    assert code == 0, stderr
    assert read_manifest(out).details["layer_precisions"]["layers"] == {"/rnn/LSTM": 4}
    code, _, stderr = cli("build", models["lstm"], "-o", tmp_path / "d.plan", "--layer-precisions", "recurrent:fp8")
    assert code == 2 and "PATTERN:PRECISION" in stderr
