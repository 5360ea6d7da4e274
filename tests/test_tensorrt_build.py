"""The TensorRT build stage against the stand-in (tests/fakes): profiles, caches, workspace, DLA, TF32, parser
errors, the manifest, the per-layer precision summary and the CLI. Version dispatch is in
test_tensorrt_versions.py, INT8 and calibration in test_tensorrt_calibration.py, the runner in
test_tensorrt_runner.py; real TensorRT in test_tensorrt_real.py (marker `trt`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

try:
    import fakes as fake
    from fakes.fixtures import calls, models, plan_of, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes.fixtures import calls, models, plan_of, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import (BuildOptions, build_engine, check_range, layer_precision_summary, parse_workspace,
                                 plan_profile)
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.errors import BadInput, InternalError
from edgelstm.options import parse_range


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


def test_a_fixed_axis_takes_d_as_well_as_d_d_d():
    """Issue 14.10: a fixed axis accepts its size alone (library ints and strings too, not only the CLI's)."""
    for batch, seq in ((2, 16), ("2", "16"), ((2, 2, 2), "16:16:16"), ([2], (16,))):
        assert plan_profile([("x", (2, 16, 3))], None, batch, seq)["x"] == ((2, 16, 3),) * 3
    assert check_range(4, "batch") == (4, 4, 4) and check_range("1:2:3", "seq") == (1, 2, 3)
    with pytest.raises(BadInput) as err:
        plan_profile([("x", (2, 16, 3))], None, 4, None)
    assert "pass --batch 2 (or leave it out)" in str(err.value)
    with pytest.raises(BadInput, match="min:opt:max or one size"):
        check_range("1:2", "batch")


def test_fixed_axis_engine_builds_with_d(trt, tmp_path):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    mod = trt()
    export_onnx(zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0), tmp_path / "static.onnx",
                ExportOptions(input_size=1, seq_len=5, batch=2, static=True))
    res = build_engine(tmp_path / "static.onnx", tmp_path / "s.plan", BuildOptions(batch=2, seq="5"))
    assert calls(mod, "IOptimizationProfile.set_shape")[0][0] == ("x", (2, 5, 1), (2, 5, 1), (2, 5, 1))
    assert res.profiles["x"]["opt"] == [2, 5, 1]


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


def test_corrupt_timing_cache_is_checked_and_replaced(trt, models, tmp_path, monkeypatch):
    """Issue 14.10: create_timing_cache's result is checked (None for a corrupt blob), not handed on."""
    cache = tmp_path / "trt.cache"
    cache.write_bytes(b"\x00garbage, not a timing cache")
    mod = trt()
    res = build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(timing_cache=cache))
    created = [a[0] for a, _ in calls(mod, "IBuilderConfig.create_timing_cache")]
    assert created == [b"\x00garbage, not a timing cache", b""]  # None for the corrupt blob, then a fresh one
    assert not res.timing_cache["reused"] and any("unreadable" in w for w in res.warnings)
    assert cache.read_bytes().startswith(b"FAKECACHE|")  # replaced by a valid cache
    monkeypatch.setattr(mod.IBuilderConfig, "create_timing_cache", lambda self, blob: None)
    with pytest.raises(InternalError, match="could not create a timing cache") as err:
        build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(timing_cache=cache))
    assert err.value.exit_code == 4 and not (tmp_path / "b.plan").exists()


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


# ---------------------------------------------------------------------------------------------- TF32


@pytest.mark.parametrize("version", ["10.3.0.26", "10.14.1.48", "11.1.0.5"])
def test_fp32_builds_clear_tf32(trt, models, tmp_path, version):
    """Issue 14.5: TF32 is on in a new config; an "fp32" engine clears it, records it, and reports FP32 truly."""
    mod = trt(version)
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions())
    assert calls(mod, "IBuilderConfig.clear_flag") == [(("TF32",), {})]
    assert "TF32" not in plan_of(tmp_path / "m.plan")["flags"]
    assert res.tf32 is False and read_manifest(tmp_path / "m.plan").details["tensorrt"]["tf32"] is False
    assert set(res.layer_precision["totals"]) == {"FP32"} and res.layer_precision["tf32"] is False


def test_tf32_opt_in_is_reported_per_layer(trt, models, tmp_path):
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(tf32=True))
    assert calls(mod, "IBuilderConfig.clear_flag") == [] and "TF32" in plan_of(tmp_path / "m.plan")["flags"]
    assert res.tf32 and res.layer_precision["groups"]["dense"] == {"TF32": 1}  # its GEMM ran a TF32 tactic
    assert read_manifest(tmp_path / "m.plan").details["rebuild"].endswith("--tf32")
    trt("10.14.1.48", compute_capability="7.5", gpu_name="Tesla T4")  # no TF32 before Ampere
    res = build_engine(models["lstm"], tmp_path / "t4.plan", BuildOptions(tf32=True))
    assert res.layer_precision["groups"]["dense"] == {"FP32": 1}


def test_fp16_builds_keep_tensorrts_tf32_default(trt, models, tmp_path):
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "IBuilderConfig.clear_flag") == [] and res.tf32


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


def test_bad_files_fail_before_tensorrt_is_needed(monkeypatch, models, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    (tmp_path / "zero.onnx").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    cases = [((tmp_path / "zero.onnx", BuildOptions()), {}, "is empty"),
             ((models["lstm"], BuildOptions(timing_cache=tmp_path / "dir")), {}, "--timing-cache .* is a directory"),
             ((models["lstm"], BuildOptions(precision="int8")), {"calib": tmp_path / "nope.npz"}, "--calib .* does not exist")]
    for (src, options), kw, match in cases:
        with pytest.raises(BadInput, match=match):
            build_engine(src, tmp_path / "m.plan", options, **kw)


# -------------------------------------------------------------------------------------------- manifest


def test_engine_manifest_contents(trt, models, tmp_path):
    trt("10.14.1.48", compute_capability="8.6", gpu_name="NVIDIA RTX A4000")
    build_engine(models["stateful"], tmp_path / "m.plan",
                 BuildOptions(batch=(1, 2, 4), seq=(1, 8, 32), hardware_compatible=True, version_compatible=True))
    m = read_manifest(tmp_path / "m.plan")
    assert m.kind == "engine" and m.precision == "fp32"
    d = m.details
    # 10.x builds weakly typed (issue 14.3); 11.x strongly typed (test_tensorrt_versions.py)
    assert d["tensorrt"]["version"] == "10.14.1.48" and d["tensorrt"]["strongly_typed"] is False
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


def test_hardware_compatible_is_refused_on_jetson(cli, monkeypatch, models, tmp_path):
    """Issue 14.10: one line, exit 2, before TensorRT is even needed."""
    from edgelstm.machine import device

    rel = tmp_path / "nv_tegra_release"
    rel.write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: x\n")
    monkeypatch.setattr(device, "TEGRA_RELEASE", rel)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code, out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan", "--hardware-compatible")
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--hardware-compatible is not available on Jetson" in lines[0]
    assert not (tmp_path / "m.plan").exists()


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
    tf32 = layer_precision_summary({"Layers": [{"Name": "/head/Gemm", "LayerType": "CaskGemm",
                                                "TacticName": "sm80_xmma_gemm_tf32f32_tf32f32_f32_nn",
                                                "Outputs": [{"Format/Datatype": "Row major linear FP32"}]}]})
    assert tf32["groups"]["dense"] == {"TF32": 1}



def test_layer_precision_summary_reads_the_11x_inspector_schema():
    """Issue 21.2: TensorRT 11 splits a layer tensor's "Format/Datatype" into "Datatype" and "Format", and replaces
    "Bindings" with "I/O Tensors" objects (the shape from NVIDIA's 10.x -> 11.x IEngineInspector migration guide)."""
    info = {"Layers": [
        {"Name": "/rnn/LSTM_loop", "LayerType": "Recurrence",
         "Outputs": [{"Name": "h", "Location": "Device", "Dimensions": [1, 8], "Format": "Row major linear",
                      "Datatype": "Half"}]},
        {"Name": "/head/Gemm", "LayerType": "CaskGemm",
         "Outputs": [{"Name": "y", "Format": "Row major linear FP32 format (kLINEAR)", "Datatype": "Int8"}]},
        {"Name": "/head/bias", "LayerType": "CaskGemm", "Outputs": [{"Name": "b", "DataType": "Float"}]},
    ], "I/O Tensors": [
        {"Name": "x", "IOMode": "Input", "DataType": "Float", "Dimensions": [-1, -1, 1], "Location": "Device",
         "IsShapeInferenceIO": False, "ProfileInfo": [{"MinShape": [1, 1, 1], "OptShape": [4, 8, 1],
                                                        "MaxShape": [8, 16, 1],
                                                        "Format": "Row major linear FP32 format (kLINEAR)"}]},
        {"Name": "y", "IOMode": "Output", "DataType": "Float", "Dimensions": [-1, 1], "Location": "Device",
         "IsShapeInferenceIO": False}]}
    s = layer_precision_summary(json.dumps(info))
    assert s["groups"]["recurrent"] == {"FP16": 1}
    assert s["groups"]["dense"] == {"INT8": 1, "FP32": 1}          # the data type decides, not the format text
    assert "unknown" not in s["totals"] and s["io_tensors"] == ["x", "y"]
    assert layer_precision_summary({"Layers": [], "Bindings": ["x", "y"]})["io_tensors"] == ["x", "y"]


@pytest.mark.parametrize("version", ["10.3.0.26", "10.14.1.48", "11.0.0.9", "11.4.0.106"])
def test_every_layer_precision_is_read_on_every_version(trt, models, tmp_path, version):
    """The stand-in's inspector speaks each version's schema; no layer comes back "unknown"."""
    mod = trt(version)
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    lp = res.layer_precision
    assert lp["available"] and "unknown" not in lp["totals"], lp["totals"]
    assert set(lp["groups"]["recurrent"]) == {"FP16"}
    assert lp["io_tensors"] == ["x", "y"]
    raw = json.loads(mod.Runtime(mod.Logger()).deserialize_cuda_engine((tmp_path / "m.plan").read_bytes())
                     .create_engine_inspector().get_engine_information(mod.LayerInformationFormat.JSON))
    assert ("I/O Tensors" in raw) == version.startswith("11") and ("Bindings" in raw) != version.startswith("11")


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


def test_cli_build_tf32_and_route_options(trt, cli, models, tmp_path):
    mod = trt("10.14.1.48")
    code, out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan", "--tf32", "--strongly-typed", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["tf32"] is True and payload["route"] == "strongly-typed"
    assert calls(mod, "IBuilderConfig.clear_flag") == [] and "TF32" in err


def test_cli_build_help_mentions_the_options(cli):
    code, out, _ = cli("build", "--help")
    assert code == 0
    for opt in ("--precision", "--batch", "--seq", "--calib", "--calib-cache", "--timing-cache", "--workspace",
                "--dla-core", "--hardware-compatible", "--version-compatible", "--tf32", "--strongly-typed", "--json"):
        assert opt in out


def test_the_build_takes_the_onnx_manifests_io_spec(trt, models, tmp_path):
    """Issue 19: the build reads the I/O spec manifest first (as every runner does), so what only the manifest knows
    (an input's value range, symbolic names) reaches the engine's manifest; before, the file's spec was used and the
    manifest only checked against it."""
    import dataclasses
    import shutil

    from edgelstm.artifacts.artifact import io_spec_of
    from edgelstm.artifacts.manifest import write_manifest

    trt()
    src = tmp_path / "ranged.onnx"
    shutil.copy(models["lstm"], src)
    io = io_spec_of(src)
    x = dataclasses.replace(io.inputs[0], value_range=(-3, 3))
    write_manifest(src, kind="onnx", io=dataclasses.replace(io, inputs=(x, *io.inputs[1:])))
    build_engine(src, tmp_path / "r.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 32)))
    engine_x = read_manifest(tmp_path / "r.plan").io.inputs[0]
    assert engine_x.name == "x" and engine_x.value_range == (-3, 3)
