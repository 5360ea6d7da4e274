"""The TensorRT build stage, runner, calibrator and facts, tested everywhere against the stand-in module
(tests/fake_tensorrt.py): which API calls are made on which TensorRT version, with which shapes and flags.
Real TensorRT is exercised by tests/test_tensorrt_real.py (marker `trt`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import fake_tensorrt as fake
except ImportError:  # tests/ is a package in some layouts
    from tests import fake_tensorrt as fake  # type: ignore[no-redef]

from converters.tensorrt.build import (
    BuildOptions, build_engine, check_range, layer_precision_summary, parse_workspace, plan_profile,
)
from edgelstm.errors import BackendMissing, BadInput
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.options import parse_range


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny ONNX models exported once: a stateless LSTM regressor and its stateful (h0/c0) variant."""
    from converters.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    d = tmp_path_factory.mktemp("onnx")
    m = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)
    export_onnx(m, d / "lstm.onnx", ExportOptions(input_size=1, seq_len=5))
    export_onnx(m, d / "lstm_stateful.onnx", ExportOptions(input_size=1, seq_len=5, stateful=True))
    return {"lstm": d / "lstm.onnx", "stateful": d / "lstm_stateful.onnx", "dir": d}


@pytest.fixture
def trt(monkeypatch):
    """Install the stand-in: `trt()` -> TensorRT 10.14 on a compute-8.9 GPU; pass version=... to change."""
    def install(version="10.14.1.48", **kw):
        return fake.install(monkeypatch, version, **kw)
    return install


def calls(mod, name):
    return mod.recorder.find(name)


def calib_data(n=24, seq=6, seed=0):
    from edgelstm.data.sources import BatchSource

    x = np.random.default_rng(seed).normal(size=(n, seq, 1)).astype(np.float32)
    return BatchSource({"x": x}, {"x": 0}, n, 8)


# ---------------------------------------------------------------------------------- version dispatch


def test_trt_10_3_fp16_uses_builder_flag_not_strong_typing(trt, models, tmp_path):
    mod = trt("10.3.0.26")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "Builder.create_network") == [((0,), {})]
    assert ("FP16",) in [a for a, _ in calls(mod, "IBuilderConfig.set_flag")]
    assert res.route == "builder-flags" and res.flags == ["FP16"]
    parsed = calls(mod, "OnnxParser.parse")
    assert parsed[0][0][1] == str(models["lstm"])  # parsed the FP32 ONNX as given


def test_trt_10_14_fp16_is_strongly_typed_from_an_fp16_onnx(trt, models, tmp_path):
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    strongly = 1 << int(mod.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert calls(mod, "Builder.create_network") == [((strongly,), {})]
    assert calls(mod, "IBuilderConfig.set_flag") == []  # no precision flags on a strongly typed network
    assert res.route == "strongly-typed" and res.flags == []
    assert calls(mod, "OnnxParser.parse")[0][0][1].endswith("lstm.fp16.onnx")  # the quantize stage made it
    assert res.built_from.name == "lstm.fp16.onnx"
    assert res.layer_precision["groups"]["recurrent"] == {"FP16": res.layer_precision["groups"]["recurrent"]["FP16"]}
    m = read_manifest(tmp_path / "m.plan")
    assert m.details["built_from"]["made_by"] == "converters.fp16.quantize_fp16"
    assert m.details["built_from"]["precision"] == "fp16"
    assert not list(tmp_path.glob(".edgelstm-build-*"))  # the intermediate is gone


def test_trt_11_has_no_weak_flags_and_builds_strongly_typed(trt, models, tmp_path):
    mod = trt("11.1.0.5")
    assert not hasattr(mod.BuilderFlag, "FP16") and not hasattr(mod, "IInt8EntropyCalibrator2")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "Builder.create_network") == [((1 << 0,), {})]
    assert calls(mod, "IBuilderConfig.set_flag") == []
    assert res.route == "strongly-typed"


def test_trt_10_13_refuses_strongly_typed_fp16_lstm(trt, models, tmp_path):
    trt("10.13.2.6")
    with pytest.raises(BackendMissing, match=r"10\.14") as err:
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert err.value.exit_code == 3
    assert not (tmp_path / "m.plan").exists()


def test_fp32_on_10_14_is_strongly_typed_without_conversion(trt, models, tmp_path):
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions())
    assert res.built_from == models["lstm"]
    assert set(res.layer_precision["totals"]) == {"FP32"}
    assert calls(mod, "IBuilderConfig.set_flag") == []


# ------------------------------------------------------------------------------------------------ INT8


@pytest.mark.parametrize("version", ["10.3.0.26", "10.14.1.48", "11.0.0.9"])
def test_int8_without_calibration_or_qdq_is_bad_input(trt, models, tmp_path, version):
    trt(version)
    with pytest.raises(BadInput, match="INT8 needs calibration data or a Q/DQ ONNX"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="int8"))
    assert not (tmp_path / "m.plan").exists()


def test_int8_10_3_calibrates_then_reuses_the_cache(trt, models, tmp_path):
    mod = trt("10.3.0.26")
    cache = tmp_path / "model.calib"
    res = build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(precision="int8", calib_cache=cache),
                       calib=calib_data())
    assert ("INT8",) in [a for a, _ in calls(mod, "IBuilderConfig.set_flag")]
    assert [type(a[0]).__name__ for a, _ in calls(mod, "IBuilderConfig.int8_calibrator=")] == [
        "EdgeLSTMInt8EntropyCalibrator2"]
    cprof = calls(mod, "IBuilderConfig.set_calibration_profile")[0][0][0]
    assert cprof["x"] == ((8, 6, 1), (8, 6, 1), (8, 6, 1))  # one fixed calibration shape: the batch's
    assert len(calls(mod, "calibrator.get_batch")) == 6  # 3 batches, walked twice
    assert cache.read_bytes() == b"TRT-FAKE-CALIBRATION-CACHE v1"
    assert res.calibration["cache_written"] and res.calibration["passes"] == 2
    assert res.layer_precision["groups"]["dense"] == {"INT8": 1}
    assert set(res.layer_precision["groups"]["recurrent"]) == {"FP32"}  # the LSTM loop stays float

    class Exploding:
        def __iter__(self):
            raise AssertionError("the calibration data must not be read when the cache exists")

    mod2 = trt("10.3.0.26")
    res2 = build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(precision="int8", calib_cache=cache),
                        calib=Exploding())
    assert calls(mod2, "calibrator.read_calibration_cache") == [((True,), {})]
    assert calls(mod2, "calibrator.get_batch") == []
    assert res2.calibration["cache_read"] and not res2.calibration["cache_written"]
    # a cache alone (no data) is enough too
    build_engine(models["lstm"], tmp_path / "c.plan", BuildOptions(precision="int8", calib_cache=cache))


def test_calibrator_feeds_the_same_batches_on_every_pass(monkeypatch):
    from calibration.trt_calibrator import CalibrationFeeder

    feeder = CalibrationFeeder(calib_data(n=20), cuda=fake.CUDA)
    passes = []
    for _ in range(2):
        seen = []
        while (ptrs := feeder.next_pointers(["x"])) is not None:
            seen.append(np.frombuffer(bytes(fake.MEMORY[ptrs[0]][: 8 * 6 * 4]), np.float32).copy())
        passes.append(seen)
    assert len(passes[0]) == 2 and feeder.skipped == 2  # the short last batch (4 of 20) is skipped each pass
    assert all(np.array_equal(a, b) for a, b in zip(*passes))
    assert feeder.passes == 2 and feeder.batches_fed == 4


def test_int8_strongly_typed_builds_from_a_qdq_onnx(trt, models, tmp_path):
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "q.plan", BuildOptions(precision="int8"), calib=calib_data(n=32))
    assert calls(mod, "IBuilderConfig.set_flag") == [] and not calls(mod, "IBuilderConfig.int8_calibrator=")
    assert res.built_from.name == "lstm.int8.onnx"
    assert res.layer_precision["groups"]["dense"] == {"INT8": 1}
    assert "INT8" not in res.layer_precision["groups"]["recurrent"]


def test_trt_11_calibrator_route_does_not_exist(trt, models, tmp_path):
    """On 11.x INT8 from a float ONNX goes through Q/DQ; the calibrator API is never touched."""
    mod = trt("11.0.0.9")
    res = build_engine(models["lstm"], tmp_path / "q.plan", BuildOptions(precision="int8"), calib=calib_data(n=32))
    assert res.route == "strongly-typed" and not calls(mod, "IBuilderConfig.int8_calibrator=")


# -------------------------------------------------------------------------------------------- profiles


def test_profiles_are_set_per_input_with_state_batch_on_axis_1(trt, models, tmp_path):
    mod = trt()
    res = build_engine(models["stateful"], tmp_path / "s.plan", BuildOptions(batch=(2, 4, 8), seq=(3, 5, 9)))
    shapes = {a[0]: a[1:] for a, _ in calls(mod, "IOptimizationProfile.set_shape")}
    assert shapes["x"] == ((2, 3, 1), (4, 5, 1), (8, 9, 1))
    assert shapes["h0"] == ((1, 2, 8), (1, 4, 8), (1, 8, 8))
    assert shapes["c0"] == ((1, 2, 8), (1, 4, 8), (1, 8, 8))
    assert res.profiles["h0"] == {"min": [1, 2, 8], "opt": [1, 4, 8], "max": [1, 8, 8]}


def test_default_profile_and_fixed_axes():
    shapes = plan_profile([("x", (-1, -1, 3))], None, None, None)
    assert shapes["x"] == ((1, 1, 3), (8, 64, 3), (64, 512, 3))
    fixed = plan_profile([("x", (2, 16, 3))], None, None, None)
    assert fixed["x"] == ((2, 16, 3),) * 3
    with pytest.raises(BadInput, match="fixed at 2"):
        plan_profile([("x", (2, 16, 3))], None, (1, 4, 8), None)
    with pytest.raises(BadInput, match="neither the batch nor the sequence"):
        plan_profile([("x", (-1, -1, -1))], None, None, None)


@pytest.mark.parametrize("text", ["8:4:2", "4:2:8", "0:1:2", "1:2", "a:b:c"])
def test_bad_profile_ranges_are_bad_input(text):
    with pytest.raises(BadInput):
        parse_range(text, what="--batch")


def test_bad_profile_in_options_fails_before_tensorrt_is_needed(monkeypatch, models, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # even without TensorRT: bad usage first
    with pytest.raises(BadInput, match="min <= opt <= max"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(batch=(8, 4, 2)))
    assert check_range((1, 1, 1), "--seq") == (1, 1, 1)


# -------------------------------------------------------------------------------- caches, workspace


def test_timing_cache_is_created_then_reused(trt, models, tmp_path):
    cache = tmp_path / "trt.cache"
    mod = trt()
    r1 = build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(timing_cache=cache))
    assert calls(mod, "IBuilderConfig.create_timing_cache") == [((b"",), {})]
    assert cache.exists() and not r1.timing_cache["reused"]
    saved = cache.read_bytes()
    mod2 = trt()
    r2 = build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(timing_cache=cache))
    assert calls(mod2, "IBuilderConfig.create_timing_cache") == [((saved,), {})]
    assert calls(mod2, "IBuilderConfig.set_timing_cache")[0][0] == (int(saved.split(b"|")[-1]), False)
    assert r2.timing_cache["reused"]
    assert int(cache.read_bytes().split(b"|")[-1]) > int(saved.split(b"|")[-1])  # it grew


def test_timing_cache_from_another_gpu_is_not_used(trt, models, tmp_path, monkeypatch):
    cache = tmp_path / "trt.cache"
    trt()
    build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(timing_cache=cache))
    trt(compute_capability="8.0", gpu_name="NVIDIA A100")
    res = build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(timing_cache=cache))
    assert not res.timing_cache["reused"]
    assert any("another TensorRT version or GPU" in w for w in res.warnings)


def test_workspace_limit(trt, models, tmp_path):
    mod = trt()
    build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(workspace_bytes=parse_workspace("256MiB")))
    assert calls(mod, "IBuilderConfig.set_memory_pool_limit") == [(("WORKSPACE", 256 << 20), {})]


def test_parse_workspace():
    assert parse_workspace("2GiB") == 2 << 30
    assert parse_workspace("512") == 512 << 20
    assert parse_workspace("1.5G") == int(1.5 * (1 << 30))
    assert parse_workspace(None) is None
    for bad in ("lots", "10KiB", "-1G"):
        with pytest.raises(BadInput):
            parse_workspace(bad)


# ---------------------------------------------------------------------------------------------- DLA


def test_dla_core_with_gpu_fallback_reported(trt, models, tmp_path):
    mod = trt("10.3.0.26", dla_cores=2)
    res = build_engine(models["lstm"], tmp_path / "d.plan", BuildOptions(precision="fp16", dla_core=1))
    assert calls(mod, "IBuilderConfig.default_device_type=") == [((mod.DeviceType.DLA,), {})]
    assert calls(mod, "IBuilderConfig.DLA_core=") == [((1,), {})]
    assert ("GPU_FALLBACK",) in [a for a, _ in calls(mod, "IBuilderConfig.set_flag")]
    assert res.dla["core"] == 1 and res.dla["layers_on_gpu"] == ["/rnn/LSTM"]
    assert any("fall back from DLA to the GPU" in w for w in res.warnings)
    assert read_manifest(tmp_path / "d.plan").details["dla"]["layers_on_gpu"] == ["/rnn/LSTM"]


@pytest.mark.parametrize("opts,match", [
    (dict(precision="fp16", dla_core=2), "has 2 DLA core"),
    (dict(precision="fp16", dla_core=0, gpu_fallback=False), "cannot run on the DLA"),
    (dict(precision="fp32", dla_core=0), "FP16 or INT8"),
])
def test_dla_misuse_is_bad_input(trt, models, tmp_path, opts, match):
    trt("10.3.0.26", dla_cores=2)
    with pytest.raises(BadInput, match=match):
        build_engine(models["lstm"], tmp_path / "d.plan", BuildOptions(**opts))


def test_dla_on_a_gpu_without_dla(trt, models, tmp_path):
    trt("10.3.0.26", dla_cores=0)
    with pytest.raises(BadInput, match="no DLA"):
        build_engine(models["lstm"], tmp_path / "d.plan", BuildOptions(precision="fp16", dla_core=0))


# ---------------------------------------------------------------------------------------- parser, files


def _onnx_with_unknown_op(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 2])
    n1 = helper.make_node("Relu", ["x"], ["r"], name="ok_relu")
    n2 = helper.make_node("FancyCellOp", ["r"], ["y"], name="weird_cell")
    model = helper.make_model(helper.make_graph([n1, n2], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def test_parser_errors_name_the_nodes_and_nothing_is_written(trt, tmp_path):
    trt()
    src = _onnx_with_unknown_op(tmp_path / "bad.onnx")
    with pytest.raises(BadInput) as err:
        build_engine(src, tmp_path / "bad.plan", BuildOptions())
    msg = str(err.value)
    assert "node 'weird_cell' (FancyCellOp)" in msg and "No importer registered" in msg
    assert "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_missing_onnx_and_bad_suffix(trt, tmp_path, models):
    trt()
    with pytest.raises(BadInput, match="does not exist"):
        build_engine(tmp_path / "nope.onnx", tmp_path / "m.plan")
    with pytest.raises(BadInput, match=r"\.plan or \.engine"):
        build_engine(models["lstm"], tmp_path / "m.onnx")


def test_missing_tensorrt_is_exit_3_with_install_hint(monkeypatch, cli, models, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code, out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan")
    assert code == 3
    assert "TensorRT is not installed" in err
    assert "pypi.nvidia.com" in err and "Dockerfile.tensorrt" in err
    assert "Traceback" not in err and not (tmp_path / "m.plan").exists()


def test_jetson_install_hint(monkeypatch, tmp_path):
    from edgelstm.artifacts import trt as trt_info

    rel = tmp_path / "nv_tegra_release"
    rel.write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: x\n")
    monkeypatch.setattr(trt_info, "TEGRA_RELEASE", rel)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendMissing) as err:
        trt_info.import_tensorrt()
    assert "python3-libnvinfer" in str(err.value) and "--system-site-packages" in str(err.value)


# -------------------------------------------------------------------------------------------- manifest


def test_engine_manifest_contents(trt, models, tmp_path):
    trt("10.14.1.48", compute_capability="8.6", gpu_name="NVIDIA RTX A4000")
    build_engine(models["stateful"], tmp_path / "m.plan",
                 BuildOptions(batch=(1, 2, 4), seq=(1, 8, 32), hardware_compatible=True, version_compatible=True))
    m = read_manifest(tmp_path / "m.plan")
    assert m.kind == "engine" and m.precision == "fp32"
    d = m.details
    assert d["tensorrt"]["version"] == "10.14.1.48" and d["tensorrt"]["strongly_typed"]
    assert d["gpu"]["name"] == "NVIDIA RTX A4000" and d["gpu"]["compute_capability"] == "8.6"
    assert d["profiles"][0]["x"] == {"min": [1, 1, 1], "opt": [2, 8, 1], "max": [4, 32, 1]}
    assert d["hardware_compatibility"] == "ampere_plus" and d["version_compatible"] is True
    assert "VERSION_COMPATIBLE" in d["tensorrt"]["flags"]
    assert d["layer_precision"]["available"] and d["layer_precision"]["totals"] == {"FP32": d["layer_precision"]["num_layers"]}
    assert d["source_onnx"]["sha256"] == m.parent_sha256
    assert d["rebuild"].startswith("edgelstm build lstm_stateful.onnx -o m.plan --precision fp32 --batch 1:2:4")
    io = {t.name: t for t in (*m.io.inputs, *m.io.outputs)}
    assert io["x"].shape == ("batch", "seq", 1) and io["h0"].shape == (1, "batch", 8) and io["h0"].state
    assert io["hn"].state and io["y"].dtype == "float32"


def test_hardware_compatible_needs_ampere(trt, models, tmp_path):
    trt(compute_capability="7.5", gpu_name="Tesla T4")
    with pytest.raises(BadInput, match="Ampere"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(hardware_compatible=True))


def test_layer_precision_summary_reads_inspector_json():
    info = {"Layers": [
        {"Name": "/rnn/LSTM_loop", "LayerType": "Recurrence", "Outputs": [{"Format/Datatype": "Row major linear FP32"}]},
        {"Name": "/head/Gemm", "LayerType": "CaskGemm", "Outputs": [{"Format/Datatype": "Row major Int8 format"}]},
        {"Name": "Reformatting CopyNode", "LayerType": "Reformat", "Outputs": [{"Format/Datatype": "Half"}]},
        {"Name": "dyn", "LayerType": "NoOp", "Outputs": [{"Format/Datatype": "N/A due to dynamic shapes"}]},
    ]}
    s = layer_precision_summary(json.dumps(info))
    assert s["groups"]["recurrent"] == {"FP32": 1} and s["groups"]["dense"] == {"INT8": 1}
    assert s["groups"]["data movement"] == {"FP16": 1, "unknown": 1}
    names_only = layer_precision_summary({"Layers": ["a", "b"]})
    assert names_only["totals"] == {"unknown": 2}


# ------------------------------------------------------------------------------------------------ runner


@pytest.fixture
def engine(trt, models, tmp_path):
    trt()
    build_engine(models["stateful"], tmp_path / "s.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16)))
    return tmp_path / "s.plan"


def test_runner_uses_named_tensors_only(engine):
    from edgelstm.runners import open_runner
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    mod = sys.modules["tensorrt"]
    runner = open_runner(engine)
    assert isinstance(runner, TensorRTRunner) and runner.backend == "tensorrt" and runner.precision == "fp32"
    x = np.random.default_rng(0).normal(size=(3, 7, 1)).astype(np.float32)
    out = runner.run({"x": x})
    expect = x.reshape(3, -1).mean(axis=1)  # the stand-in engine computes mean(x[b]) (+ mean(h0[:, b]))
    np.testing.assert_allclose(out["y"][:, 0], expect, rtol=1e-6)
    assert out["hn"].shape == (1, 3, 8) and out["y"].dtype == np.float32
    names = mod.recorder.names()
    assert "IExecutionContext.execute_async_v3" in names
    assert "IExecutionContext.execute_v2" not in names
    addressed = {a[0] for a, _ in mod.recorder.find("IExecutionContext.set_tensor_address")}
    assert addressed == {"x", "h0", "c0", "y", "hn", "cn"}
    assert ("x", (3, 7, 1)) in [a for a, _ in mod.recorder.find("IExecutionContext.set_input_shape")]
    runner.close()


def test_runner_streams_state_between_steps(engine):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    runner = TensorRTRunner(engine)
    x = np.ones((2, 1, 1), np.float32)
    first = runner.step({"x": x})
    second = runner.step({"x": x})
    np.testing.assert_allclose(first["y"], 1.0)
    np.testing.assert_allclose(second["y"], 2.0)  # mean(x) + mean(h0 = previous hn)
    runner.reset_state()
    np.testing.assert_allclose(runner.step({"x": x})["y"], 1.0)


def test_runner_input_beyond_profile_names_the_profile(engine):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    runner = TensorRTRunner(engine)
    with pytest.raises(BadInput, match=r"outside the engine's optimization profile \(min \[1, 1, 1\], max \[4, 16, 1\]\)"):
        runner.run({"x": np.zeros((8, 4, 1), np.float32)})
    with pytest.raises(BadInput, match="rank"):
        runner.run({"x": np.zeros((2, 4), np.float32)})


def test_runner_timing_with_cuda_events_and_graphs(engine):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    runner = TensorRTRunner(engine, cuda_graph=True)
    x = np.full((2, 4, 1), 3.0, np.float32)
    np.testing.assert_allclose(runner.run({"x": x})["y"], 3.0)
    assert "begin_capture" in fake.CUDA.calls.names() and "launch" in fake.CUDA.calls.names()
    times = runner.timed_run({"x": x}, iters=5, warmup=2)
    assert times == [0.25] * 5  # one stand-in kernel (0.25 ms) per replayed graph
    assert runner.time_once() == 0.25
    plain = TensorRTRunner(engine)
    assert plain.timed_run({"x": x}, iters=3, warmup=0) == [0.25] * 3


def test_runner_refuses_engine_from_another_tensorrt_version(engine, monkeypatch):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    fake.switch_machine(monkeypatch, version="10.3.0.26")
    with pytest.raises(BadInput) as err:
        TensorRTRunner(engine)
    msg = str(err.value)
    assert "TensorRT 10.14.1.48, this machine has 10.3.0.26" in msg
    assert "rebuild it here from the shipped ONNX: edgelstm build lstm_stateful.onnx -o s.plan" in msg
    assert "\n" not in msg


def test_runner_refuses_engine_for_another_gpu(engine, monkeypatch):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    fake.switch_machine(monkeypatch, compute_capability="8.7", gpu_name="Orin")
    with pytest.raises(BadInput, match=r"compute capability 8\.9 .*this GPU Orin is 8\.7"):
        TensorRTRunner(engine)


def test_compatible_engines_load_elsewhere(trt, models, tmp_path, monkeypatch):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    trt("10.14.1.48")
    build_engine(models["lstm"], tmp_path / "c.plan", BuildOptions(hardware_compatible=True, version_compatible=True))
    fake.switch_machine(monkeypatch, version="10.16.0.1", compute_capability="8.0", gpu_name="A100")
    runner = TensorRTRunner(tmp_path / "c.plan")
    mod = sys.modules["tensorrt"]
    assert mod.recorder.find("Runtime.deserialize_cuda_engine")
    assert runner.run({"x": np.ones((1, 3, 1), np.float32)})["y"].shape == (1, 1)
    fake.switch_machine(monkeypatch, compute_capability="7.5", gpu_name="T4")
    with pytest.raises(BadInput, match="Ampere-or-newer"):
        TensorRTRunner(tmp_path / "c.plan")
    fake.switch_machine(monkeypatch, version="11.0.0.9", compute_capability="8.0")
    with pytest.raises(BadInput, match="version-compatible"):
        TensorRTRunner(tmp_path / "c.plan")


def test_corrupt_and_truncated_engines_are_one_line_errors(engine, tmp_path):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    data = engine.read_bytes()
    cut = tmp_path / "cut.plan"
    cut.write_bytes(data[: len(data) // 2])  # no manifest: TensorRT's own check
    with pytest.raises(BadInput, match=r"not an engine TensorRT 10\.14\.1\.48 can load .*magicTag") as err:
        TensorRTRunner(cut)
    assert "\n" not in str(err.value)
    engine.write_bytes(data[:-10])  # with a manifest: the sha256 no longer matches
    with pytest.raises(BadInput, match="does not match its manifest"):
        TensorRTRunner(engine)
    tiny = tmp_path / "tiny.plan"
    tiny.write_bytes(b"x")
    with pytest.raises(BadInput, match="truncated or empty"):
        TensorRTRunner(tiny)


def test_runner_without_tensorrt_is_exit_3(engine, monkeypatch):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendMissing) as err:
        TensorRTRunner(engine)
    assert err.value.exit_code == 3


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_build_json_and_summary_table(trt, cli, models, tmp_path):
    trt("10.3.0.26")
    code, out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan", "--precision", "fp16",
                         "--batch", "1:2:4", "--seq", "1:8:16", "--timing-cache", tmp_path / "tc", "--workspace",
                         "64MiB", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["precision"] == "fp16" and payload["flags"] == ["FP16"]
    assert payload["profiles"]["x"] == {"min": [1, 1, 1], "opt": [2, 8, 1], "max": [4, 16, 1]}
    assert payload["layer_precision"]["groups"]["recurrent"]
    assert "per-layer precision" in err and "recurrent" in err and "wrote" in err


def test_cli_build_bad_range_is_exit_2(trt, cli, models, tmp_path):
    trt()
    code, _out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan", "--batch", "8:4:2")
    assert code == 2 and "--batch needs 1 <= min <= opt <= max" in err


def test_cli_build_help_mentions_the_options(cli):
    code, out, _ = cli("build", "--help")
    assert code == 0
    for opt in ("--precision", "--batch", "--seq", "--calib", "--calib-cache", "--timing-cache", "--workspace",
                "--dla-core", "--hardware-compatible", "--version-compatible", "--json"):
        assert opt in out


# ------------------------------------------------------------------------------------------------- facts


def test_tensorrt_facts_without_tensorrt(monkeypatch):
    from edgelstm.artifacts import trt as trt_info

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    facts = trt_info.tensorrt_facts()
    assert facts["installed"] is False and facts["version"] is None and "tensorrt" in facts["install_hint"]


def test_tensorrt_facts_with_the_stand_in(trt):
    from edgelstm.artifacts import trt as trt_info

    trt("10.3.0.26", dla_cores=2)
    facts = trt_info.tensorrt_facts()
    assert facts["installed"] and facts["version"] == "10.3.0.26" and facts["dla_cores"] == 2
    assert facts["capabilities"]["int8_calibrators"] and not facts["capabilities"]["strongly_typed_builds"]
    assert facts["gpu"]["compute_capability"] == "8.9"
    caps11 = trt_info.capabilities("11.1.0")
    assert caps11["strongly_typed_fp16_lstm"] and not caps11["weak_typing_flags"]
    assert trt_info.capabilities("10.13.0")["strongly_typed_builds"]
    assert not trt_info.capabilities("10.13.0")["strongly_typed_fp16_lstm"]


def test_jetson_facts(tmp_path, monkeypatch):
    from edgelstm.artifacts import trt as trt_info

    rel = tmp_path / "nv_tegra_release"
    rel.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: x\n")
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    monkeypatch.setattr(trt_info, "_run", lambda cmd, timeout=5.0: None)  # no dpkg / nvpmodel here
    info = trt_info.jetson_info(rel, model)
    assert info == {"l4t": "36.4.3", "jetpack": "6.2", "model": "NVIDIA Jetson AGX Orin Developer Kit",
                    "power_mode": None}
    assert trt_info.jetson_info(tmp_path / "absent") is None
    assert trt_info.power_mode("NVPM WARN: x\nNV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert trt_info.power_mode("") is None
    assert trt_info.parse_version("10.14.1.48") == (10, 14, 1)
