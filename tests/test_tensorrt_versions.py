"""Version rules against the TensorRT stand-in: which route each TensorRT version builds (10.x weakly typed with
builder flags, 11.x strongly typed), version-compatible engines across majors, the facts `doctor` prints, and
what happens without TensorRT."""

from __future__ import annotations

import sys

import pytest

try:
    from fakes.fixtures import calls, models, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests.fakes.fixtures import calls, models, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.artifacts.manifest import read_manifest
from edgelstm.errors import BackendMissing, BadInput


# ---------------------------------------------------------------------------------- version dispatch


def test_trt_10_3_fp16_uses_builder_flag_not_strong_typing(trt, models, tmp_path):
    mod = trt("10.3.0.26")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "Builder.create_network") == [((0,), {})]
    assert ("FP16",) in [a for a, _ in calls(mod, "IBuilderConfig.set_flag")]
    assert res.route == "builder-flags" and res.flags == ["FP16"]
    parsed = calls(mod, "OnnxParser.parse")
    assert parsed[0][0][1] == str(models["lstm"])  # parsed the FP32 ONNX as given
    assert not res.warnings


@pytest.mark.parametrize("version", ["10.12.0.36", "10.13.2.6", "10.14.1.48", "10.16.0.1"])
def test_every_10x_builds_fp16_lstm_with_the_builder_flag(trt, models, tmp_path, version):
    """Issue 14.3: 10.12+ deprecates BuilderFlag.FP16 but keeps it; no strongly typed build is forced and no
    FP16 LSTM/GRU is refused (no NVIDIA document has a ">= 10.14" rule)."""
    mod = trt(version)
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "Builder.create_network") == [((0,), {})]
    assert res.route == "builder-flags" and res.flags == ["FP16"]
    assert calls(mod, "OnnxParser.parse")[0][0][1] == str(models["lstm"])
    assert set(res.layer_precision["groups"]["recurrent"]) == {"FP16"}
    assert any("deprecates BuilderFlag.FP16" in w for w in res.warnings)
    assert read_manifest(tmp_path / "m.plan").details["tensorrt"]["strongly_typed"] is False


def test_trt_11_fp16_is_strongly_typed_from_an_fp16_onnx(trt, models, tmp_path):
    mod = trt("11.1.0.5")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    # issue 21.7: the 11.4 binding marks NetworkDefinitionCreationFlag.STRONGLY_TYPED deprecated since 11.0 (strong
    # typing is the only mode): it is not passed
    assert calls(mod, "Builder.create_network") == [((0,), {})]
    assert calls(mod, "IBuilderConfig.set_flag") == []  # no precision flags on a strongly typed network
    assert res.route == "strongly-typed" and res.flags == []
    assert calls(mod, "OnnxParser.parse")[0][0][1].endswith("lstm.fp16.onnx")  # the quantize stage made it
    assert res.built_from.name == "lstm.fp16.onnx"
    assert res.layer_precision["groups"]["recurrent"] == {"FP16": res.layer_precision["groups"]["recurrent"]["FP16"]}
    m = read_manifest(tmp_path / "m.plan")
    assert m.details["built_from"]["made_by"] == "edgelstm.converters.quantize.fp16.quantize_fp16"
    assert m.details["built_from"]["precision"] == "fp16"
    assert not list(tmp_path.glob(".edgelstm-build-*"))  # the intermediate is gone


def test_trt_11_has_no_weak_flags_and_builds_strongly_typed(trt, models, tmp_path):
    mod = trt("11.1.0.5")
    assert not hasattr(mod.BuilderFlag, "FP16") and not hasattr(mod, "IInt8EntropyCalibrator2")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16"))
    assert calls(mod, "Builder.create_network") == [((0,), {})]     # no deprecated STRONGLY_TYPED flag on 11.x
    assert calls(mod, "IBuilderConfig.set_flag") == []
    assert res.route == "strongly-typed"


@pytest.mark.parametrize("version,route", [("10.14.1.48", "builder-flags"), ("11.1.0.5", "strongly-typed")])
def test_fp32_is_built_without_conversion(trt, models, tmp_path, version, route):
    mod = trt(version)
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions())
    assert res.built_from == models["lstm"] and res.route == route
    assert set(res.layer_precision["totals"]) == {"FP32"}
    assert calls(mod, "IBuilderConfig.set_flag") == []


def test_strongly_typed_opt_in_on_10x(trt, models, tmp_path):
    """The 11.x route on 10.x, asked for: strongly typed FP16 from an FP16 ONNX, from 10.14 on (ARCHITECTURE.md: a
    strongly typed FP16 LSTM needs TensorRT >= 10.14; before, the build is refused up front, naming the node)."""
    mod = trt("10.13.2.6")
    with pytest.raises(BadInput, match=r"node '/rnn/LSTM' \(LSTM\): a strongly typed FP16 LSTM builds from TensorRT "
                                       r"10\.14 on"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16", strongly_typed=True))
    assert calls(mod, "Builder") == []
    mod = trt("10.14.1.48")
    res = build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16", strongly_typed=True))
    assert calls(mod, "Builder.create_network") == [((1 << int(mod.NetworkDefinitionCreationFlag.STRONGLY_TYPED),), {})]
    assert res.route == "strongly-typed" and res.flags == [] and res.built_from.name == "lstm.fp16.onnx"
    assert not any("deprecates" in w for w in res.warnings)


def test_weakly_typed_on_11x_is_bad_input(trt, models, tmp_path):
    trt("11.1.0.5")
    with pytest.raises(BadInput, match=r"builds strongly typed only .*drop --weakly-typed"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="fp16", strongly_typed=False))


# -------------------------------------------------------------------------------------------- facts


def test_capabilities_by_version():
    from edgelstm.artifacts import trt as trt_info

    for version in ("10.3.0", "10.12.0", "10.13.0", "10.14.1"):
        caps = trt_info.capabilities(version)
        assert caps["weak_typing_flags"] and caps["int8_calibrators"] and not caps["strongly_typed_only"]
        assert caps["strongly_typed_builds"]  # available as an opt-in
    assert not trt_info.capabilities("10.3.0")["weak_typing_deprecated"]
    assert trt_info.capabilities("10.12.0")["weak_typing_deprecated"]
    caps11 = trt_info.capabilities("11.1.0")
    assert caps11["strongly_typed_only"] and not caps11["weak_typing_flags"] and not caps11["int8_calibrators"]
    assert "strongly_typed_fp16_lstm" not in caps11
    assert trt_info.capabilities(None) == {}


def test_version_compatible_engines_cross_the_supported_majors():
    """Issue 14.4 (TensorRT 11.4 support matrix): 10 -> 11 and 8 -> 9/10 only; never to an older runtime."""
    from edgelstm.artifacts.trt import runs_version_compatible as runs

    assert runs("10.14.1.48", "10.16.0.1") and runs("10.14.1.48", "11.4.0.1") and runs("10.3.0.26", "11.0.0.9")
    assert runs("8.6.1", "10.3.0") and runs("8.6.1", "9.2.0")
    assert not runs("10.14.1.48", "10.3.0.26") and not runs("11.1.0.5", "10.16.0.1")
    assert not runs("8.6.1", "11.4.0") and not runs("10.14.1", "12.0.0")


def test_tensorrt_facts_with_the_stand_in(trt):
    from edgelstm.machine import tensorrt as trt_info
    from edgelstm.runners import cuda_buffers

    trt("10.3.0.26", dla_cores=2)
    facts = trt_info.tensorrt_facts(cuda_buffers)
    assert facts["installed"] and facts["version"] == "10.3.0.26" and facts["dla_cores"] == 2
    assert facts["capabilities"]["int8_calibrators"] and facts["capabilities"]["weak_typing_flags"]
    assert facts["gpu"]["compute_capability"] == "8.9"


def test_tensorrt_facts_without_tensorrt(monkeypatch):
    from edgelstm.machine import tensorrt as trt_info

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    facts = trt_info.tensorrt_facts()
    assert facts["installed"] is False and facts["version"] is None and "tensorrt" in facts["install_hint"]


def test_jetson_facts(tmp_path, monkeypatch):
    from edgelstm.artifacts.trt import parse_version
    from edgelstm.machine import tensorrt as trt_info

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
    assert parse_version("10.14.1.48") == (10, 14, 1)


# ------------------------------------------------------------------------------------ without TensorRT


def test_missing_tensorrt_is_exit_3_with_install_hint(monkeypatch, cli, models, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code, out, err = cli("build", models["lstm"], "-o", tmp_path / "m.plan")
    assert code == 3
    assert "TensorRT is not installed" in err
    assert "pypi.nvidia.com" in err and "Dockerfile.tensorrt" in err
    assert "Traceback" not in err and not (tmp_path / "m.plan").exists()


def test_jetson_install_hint(monkeypatch, tmp_path):
    from edgelstm.machine import device
    from edgelstm.machine import tensorrt as trt_info

    rel = tmp_path / "nv_tegra_release"
    rel.write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: x\n")
    monkeypatch.setattr(device, "TEGRA_RELEASE", rel)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendMissing) as err:
        trt_info.import_tensorrt()
    assert "python3-libnvinfer" in str(err.value) and "--system-site-packages" in str(err.value)
