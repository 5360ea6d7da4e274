"""The committed TensorRT API surfaces (tests/trt_api/*.json) agree with what edgelstm relies on.

The files are extracted from the real binding wheels by scripts/trt_api_surface.py (see
tests/trt_api/README.md). A regenerated file that contradicts a fact below fails here, so the facts
in ARCHITECTURE.md and the TensorRT stand-in are checked against the real API, not against memory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

API_DIR = Path(__file__).parent / "trt_api"
FILES = sorted(API_DIR.glob("tensorrt-*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _major_minor(data: dict) -> tuple[int, int]:
    major, minor = data["version"].split(".")[:2]
    return int(major), int(minor)


def _members(data: dict, cls: str) -> dict[str, str]:
    """Every member of *cls* (own and inherited): name -> 'method' / 'property' / ... ."""
    out: dict[str, str] = {}
    info = data["classes"][cls]
    for base in info.get("bases", []):
        out.update(_members(data, base))
    for kind in ("methods", "staticmethods", "properties", "attributes"):
        out.update({name: kind for name in info.get(kind, {})})
    return out


def _enum(data: dict, name: str) -> set[str]:
    return set(data["enums"][name]["members"])


def _params(data: dict, cls: str, method: str) -> list[list[str]]:
    """Parameter names of each overload of cls.method (self excluded)."""
    sigs = data["classes"][cls]["methods"][method]
    out = []
    for sig in sigs:
        inner = sig[1:sig.rindex(") ->")] if ") ->" in sig else sig.strip("()")
        out.append(re.findall(r"(?:^|,\s*)(\w+)\s*:", inner))
    return out


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def api(request) -> dict:
    return _load(request.param)


def test_the_versions_edgelstm_supports_are_covered():
    versions = [_major_minor(_load(p)) for p in FILES]
    assert (10, 3) in versions, "JetPack 6's TensorRT 10.3 surface is missing"
    assert any(v[0] == 10 and v[1] >= 12 for v in versions), "no TensorRT 10.12+ surface"
    assert any(v[0] >= 11 for v in versions), "no TensorRT 11.x surface"


def test_file_metadata(api):
    path = API_DIR / f"tensorrt-{api['version']}.json"
    assert path.exists(), "file name and 'version' disagree"
    assert api["schema"] == 1
    assert api["package"].startswith("tensorrt-cu") and api["package"].endswith("-bindings")
    assert re.fullmatch(r"[0-9a-f]{64}", api["wheel"]["sha256"])
    assert api["wheel"]["filename"].startswith(api["package"].replace("-", "_") + "-" + api["version"] + "-")
    # the strings fallback has no classes: it cannot back the checks below
    assert api["source"]["method"] == "import", api["source"]


def test_named_tensor_api_everywhere(api):
    """edgelstm uses only named tensors and serialized builds, on every version."""
    builder = _members(api, "Builder")
    for name in ("build_serialized_network", "create_network", "create_builder_config",
                 "create_optimization_profile", "__init__"):
        assert name in builder, f"Builder.{name}"
    config = _members(api, "IBuilderConfig")
    for name in ("set_flag", "clear_flag", "get_flag", "set_memory_pool_limit", "create_timing_cache",
                 "set_timing_cache", "get_timing_cache", "add_optimization_profile", "DLA_core",
                 "default_device_type", "profiling_verbosity", "hardware_compatibility_level"):
        assert name in config, f"IBuilderConfig.{name}"
    engine = _members(api, "ICudaEngine")
    for name in ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
                 "get_tensor_dtype", "get_tensor_profile_shape", "create_execution_context",
                 "create_engine_inspector", "serialize", "num_layers"):
        assert name in engine, f"ICudaEngine.{name}"
    assert "num_bindings" not in engine          # the binding-index API is gone since 10.0
    context = _members(api, "IExecutionContext")
    for name in ("set_tensor_address", "execute_async_v3", "set_input_shape", "get_tensor_shape"):
        assert name in context, f"IExecutionContext.{name}"
    assert "execute_async_v2" not in context
    assert "deserialize_cuda_engine" in _members(api, "Runtime")
    assert "parse" in _members(api, "OnnxParser")
    assert "set_shape" in _members(api, "IOptimizationProfile")
    assert "serialize" in _members(api, "ITimingCache")
    assert "get_engine_information" in _members(api, "EngineInspector")
    network = _members(api, "INetworkDefinition")
    assert {"num_layers", "get_layer"} <= set(network)


def test_signatures_edgelstm_calls(api):
    assert ["name", "memory"] in _params(api, "IExecutionContext", "set_tensor_address")
    assert ["stream_handle"] in _params(api, "IExecutionContext", "execute_async_v3")
    assert ["network", "config"] in _params(api, "Builder", "build_serialized_network")
    assert ["serialized_timing_cache"] in _params(api, "IBuilderConfig", "create_timing_cache")
    assert ["serialized_engine"] in _params(api, "Runtime", "deserialize_cuda_engine")
    assert ["pool", "pool_size"] in _params(api, "IBuilderConfig", "set_memory_pool_limit")
    assert ["logger"] in _params(api, "Builder", "__init__")
    assert ["logger"] in _params(api, "Runtime", "__init__")


def test_logger_and_enums_everywhere(api):
    assert api["classes"]["ILogger"]["constructible"]          # subclassed: ILogger.__init__(self)
    assert "log" in _members(api, "ILogger")
    logger = _members(api, "Logger")
    assert "ERROR" in logger and "min_severity" in logger
    assert ["min_severity"] in _params(api, "Logger", "__init__")
    assert {"TF32", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"} <= _enum(api, "BuilderFlag")
    assert "STRONGLY_TYPED" not in _enum(api, "BuilderFlag")   # it is a network creation flag
    assert "STRONGLY_TYPED" in _enum(api, "NetworkDefinitionCreationFlag")
    assert {"INPUT", "OUTPUT"} <= _enum(api, "TensorIOMode")
    assert "JSON" in _enum(api, "LayerInformationFormat")
    assert "DETAILED" in _enum(api, "ProfilingVerbosity")
    assert "WORKSPACE" in _enum(api, "MemoryPoolType")
    assert "AMPERE_PLUS" in _enum(api, "HardwareCompatibilityLevel")
    assert "DLA" in _enum(api, "DeviceType")


def test_10x_has_weak_typing_and_calibrators(api):
    major, minor = _major_minor(api)
    if major != 10:
        pytest.skip("TensorRT 10.x facts")
    assert {"FP16", "INT8"} <= _enum(api, "BuilderFlag")
    config = api["classes"]["IBuilderConfig"]
    assert "int8_calibrator" in config["properties"]
    assert not config["properties"]["int8_calibrator"]["readonly"]
    for cls in ("IInt8Calibrator", "IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator",
                "IInt8EntropyCalibrator", "IInt8LegacyCalibrator"):
        assert cls in api["classes"], cls
    calib = _members(api, "IInt8EntropyCalibrator2")
    for name in ("__init__", "get_batch_size", "get_batch", "read_calibration_cache",
                 "write_calibration_cache", "get_algorithm"):
        assert name in calib, f"IInt8EntropyCalibrator2.{name}"
    assert "ENTROPY_CALIBRATION_2" in _enum(api, "CalibrationAlgoType")
    # deprecated from 10.12 on (edgelstm warns), never removed within 10.x
    deprecated = api["enums"]["BuilderFlag"].get("deprecated", {})
    if minor >= 12:
        assert deprecated.get("FP16") == deprecated.get("INT8") == "10.12"
    else:
        assert "FP16" not in deprecated and "INT8" not in deprecated


def test_11x_removed_weak_typing(api):
    major, _ = _major_minor(api)
    if major < 11:
        pytest.skip("TensorRT 11.x facts")
    flags = _enum(api, "BuilderFlag")
    assert not {"FP16", "INT8", "BF16", "FP8", "INT4"} & flags
    assert not {"OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"} & flags
    assert "int8_calibrator" not in _members(api, "IBuilderConfig")
    assert not [c for c in api["classes"] if c.startswith("IInt8")]
    assert "CalibrationAlgoType" not in api["enums"]
    # networks are always strongly typed; the flag stays for compatibility
    assert "EXPLICIT_BATCH" not in _enum(api, "NetworkDefinitionCreationFlag")


def test_deprecation_versions_edgelstm_warns_from_are_the_bindings():
    """Issue 21.7: edgelstm warns about what the real bindings' docstrings mark deprecated, from the version they
    name: the calibrator API since 10.1 (10.3 binding), the precision flags since 10.12 (10.13 binding), and
    NetworkDefinitionCreationFlag.STRONGLY_TYPED since 11.0 (11.4 binding; edgelstm does not pass it on 11.x)."""
    from edgelstm.artifacts import trt as trt_info

    def since(data, cls, name):
        return data["classes"][cls].get("deprecated", {}).get(name)

    def version(text):
        return tuple(int(x) for x in text.split(".")) + (0,) * (3 - len(text.split(".")))

    v103, v1013, v114 = (_load(API_DIR / f"tensorrt-{v}.json") for v in ("10.3.0", "10.13.3.9", "11.4.0.106"))
    for name in ("int8_calibrator", "set_calibration_profile"):
        assert version(since(v103, "IBuilderConfig", name)) == trt_info.CALIBRATOR_DEPRECATED_FROM
    for flag in ("FP16", "INT8"):
        assert version(v1013["enums"]["BuilderFlag"]["deprecated"][flag]) == trt_info.WEAK_TYPING_DEPRECATED_FROM
    assert version(v114["enums"]["NetworkDefinitionCreationFlag"]["deprecated"]["STRONGLY_TYPED"]) == \
        trt_info.NO_WEAK_TYPING_FROM
    caps = trt_info.capabilities
    assert caps("10.3.0")["calibrator_deprecated"] and not caps("10.3.0")["weak_typing_deprecated"]
    assert not caps("10.0.1")["calibrator_deprecated"] and caps("11.4.0")["strongly_typed_only"]
