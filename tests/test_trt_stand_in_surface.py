"""The TensorRT stand-in (tests/fakes) checked against the real thing: the API surfaces extracted from NVIDIA's
binding wheels (tests/trt_api/tensorrt-{10.3.0,10.13.3.9,11.4.0.106}.json, see tests/trt_api/README.md).

For each real version, the stand-in built for that version
(a) exposes nothing the real version lacks: classes, methods (with the real parameter names), properties (and no
    setter where the real one is read-only), class attributes, constructors, enums and enum members (FAKE_ONLY
    names aside);
(b) has everything edgelstm uses on that version: USED lists the TensorRT names edgelstm/, converters/ and
    calibration/ use, and test_used_list_covers_the_source fails when the source uses a TensorRT name the list
    does not have (an AST scan of the modules that touch TensorRT);
(c) gives every enum member the real value, and for the enums edgelstm passes to or reads from TensorRT
    (EXACT_ENUMS) exactly the real members.
The last tests inject a removed API into the 11.x stand-in, a removed API into edgelstm's list and a new call into
the source, and show that each check fails."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

try:
    from fakes import FAKE_ONLY, FakeCuda, make_module
    from fakes.pybind import PybindEnum, make_enum
    from fakes.surface import compare, resolve_real, resolve_stand_in, stand_in_surface
except ImportError:  # tests/ is a package in some layouts
    from tests.fakes import FAKE_ONLY, FakeCuda, make_module  # type: ignore[no-redef]
    from tests.fakes.pybind import PybindEnum, make_enum  # type: ignore[no-redef]
    from tests.fakes.surface import compare, resolve_real, resolve_stand_in, stand_in_surface  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
API_DIR = Path(__file__).parent / "trt_api"
FILES = sorted(API_DIR.glob("tensorrt-*.json"))
SOURCE_DIRS = ("edgelstm", "converters", "calibration")

#: enums edgelstm passes to TensorRT or reads back by member name: the stand-in has exactly the real members
EXACT_ENUMS = ("BuilderFlag", "NetworkDefinitionCreationFlag", "MemoryPoolType", "ProfilingVerbosity",
               "HardwareCompatibilityLevel", "DeviceType", "TensorIOMode", "DataType", "LayerInformationFormat",
               "ILogger.Severity", "ExecutionContextAllocationStrategy", "CalibrationAlgoType")

#: every TensorRT name edgelstm uses, with the versions it uses it on: "*" every version, "10" only 10.x (the
#: weakly typed route and the calibrators), ">=10.13" from that version on. 'Class.__init__': edgelstm constructs
#: it (or subclasses it and calls the base __init__); a method of a calibrator or logger: edgelstm implements it
#: and TensorRT calls it.
USED: dict[str, str] = {
    # loggers (edgelstm.artifacts.trt.make_logger / dla_cores)
    "ILogger.__init__": "*", "ILogger.log": "*", "Logger.__init__": "*", "Logger.ERROR": "*",
    "ILogger.Severity.INTERNAL_ERROR": "*", "ILogger.Severity.ERROR": "*", "ILogger.Severity.WARNING": "*",
    # building (converters/tensorrt)
    "Builder.__init__": "*", "Builder.create_network": "*", "Builder.create_builder_config": "*",
    "Builder.create_optimization_profile": "*", "Builder.build_serialized_network": "*", "Builder.num_DLA_cores": "*",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": "10",  # deprecated in 11.0 (the only mode): not passed there
    "OnnxParser.__init__": "*", "OnnxParser.parse": "*", "OnnxParser.num_errors": "*", "OnnxParser.get_error": "*",
    "ParserError.node": "*", "ParserError.node_name": "*", "ParserError.node_operator": "*", "ParserError.desc": "*",
    "INetworkDefinition.num_inputs": "*", "INetworkDefinition.get_input": "*", "INetworkDefinition.num_layers": "*",
    "INetworkDefinition.get_layer": "*", "ITensor.name": "*", "ITensor.shape": "*", "ILayer.name": "*",
    "IBuilderConfig.profiling_verbosity": "*", "ProfilingVerbosity.DETAILED": "*",
    "IBuilderConfig.set_memory_pool_limit": "*", "MemoryPoolType.WORKSPACE": "*",
    "IBuilderConfig.set_flag": "*", "IBuilderConfig.clear_flag": "*", "BuilderFlag.TF32": "*",
    "BuilderFlag.VERSION_COMPATIBLE": "*", "BuilderFlag.GPU_FALLBACK": "*",
    "BuilderFlag.FP16": "10", "BuilderFlag.INT8": "10",
    "IBuilderConfig.add_optimization_profile": "*", "IOptimizationProfile.set_shape": "*",
    "IBuilderConfig.set_calibration_profile": "10", "IBuilderConfig.int8_calibrator": "10",
    "IBuilderConfig.create_timing_cache": "*", "IBuilderConfig.set_timing_cache": "*",
    "IBuilderConfig.get_timing_cache": "*", "ITimingCache.serialize": "*",
    "IBuilderConfig.default_device_type": "*", "DeviceType.DLA": "*", "IBuilderConfig.DLA_core": "*",
    "IBuilderConfig.can_run_on_DLA": "*",
    "IBuilderConfig.hardware_compatibility_level": "*", "HardwareCompatibilityLevel.AMPERE_PLUS": "*",
    # calibrators (calibration/trt_calibrator.py; TensorRT 10.x only)
    "IInt8EntropyCalibrator2.__init__": "10", "IInt8MinMaxCalibrator.__init__": "10",
    "IInt8Calibrator.get_batch_size": "10", "IInt8Calibrator.get_batch": "10",
    "IInt8Calibrator.read_calibration_cache": "10", "IInt8Calibrator.write_calibration_cache": "10",
    # running (edgelstm/runners/tensorrt_runner.py, edgelstm/artifacts/trt.py, converters/tensorrt/layers.py)
    "Runtime.__init__": "*", "Runtime.deserialize_cuda_engine": "*", "Runtime.engine_host_code_allowed": "*",
    "Runtime.DLA_core": "*", "Runtime.num_DLA_cores": "*",
    "ICudaEngine.num_io_tensors": "*", "ICudaEngine.get_tensor_name": "*", "ICudaEngine.get_tensor_mode": "*",
    "ICudaEngine.get_tensor_dtype": "*", "ICudaEngine.get_tensor_shape": "*",
    "ICudaEngine.get_tensor_profile_shape": "*", "ICudaEngine.create_execution_context": "*",
    "ICudaEngine.create_engine_inspector": "*", "TensorIOMode.INPUT": "*",
    "EngineInspector.execution_context": "*", "EngineInspector.get_engine_information": "*",
    "LayerInformationFormat.JSON": "*",
    "IExecutionContext.set_input_shape": "*", "IExecutionContext.get_tensor_shape": "*",
    "IExecutionContext.set_tensor_address": "*", "IExecutionContext.execute_async_v3": "*",
    # debug builds (converters/tensorrt/marking.py) and layer precision constraints (layer_constraints.py)
    "INetworkDefinition.mark_output": "*", "INetworkDefinition.num_outputs": "*", "INetworkDefinition.get_output": "*",
    "ILayer.type": "*", "ILayer.num_outputs": "*", "ILayer.get_output": "*", "ILayer.metadata": "*",
    "ITensor.dtype": "*", "ITensor.is_execution_tensor": "*", "ITensor.is_shape_tensor": "*",
    "ITensor.is_network_output": "*",
    **{f"LayerType.{m}": "*" for m in ("CONSTANT", "SHAPE", "TRIP_LIMIT", "ITERATOR", "RECURRENCE", "LOOP_OUTPUT")},
    "ILayer.precision": "10", "ILayer.set_output_type": "10", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS": "10",
    # bench --profile-layers (edgelstm/latency/trt_timing.py, trtexec's pattern)
    "IProfiler.__init__": "*", "IProfiler.report_layer_time": "*", "IExecutionContext.profiler": "*",
    "IExecutionContext.enqueue_emits_profile": "*", "IExecutionContext.report_to_profiler": "*",
    # DataType members edgelstm maps by name (artifacts/trt.py TRT_DTYPES)
    **{f"DataType.{m}": "*" for m in ("FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8",
                                       "INT4")},
    "DataType.FP4": ">=10.13", "DataType.E8M0": ">=10.13",
}

#: names in the scanned modules that are TensorRT names but refer to something else there (numpy dtypes, edgelstm's
#: own fields, keys of the engine inspector's JSON); a TensorRT call through one of these names is not caught
NOT_TENSORRT = {
    "append", "clear", "update", "release", "value", "kind", "file", "node", "engine", "flags", "precision",
    "tensorrt_version", "dtype", "nbytes", "float32", "float16", "bfloat16", "int8", "int32", "int64", "uint8", "bool",
    "fp8", "int4", "fp4", "e8m0", "min", "max", "opt", "type", "constant", "loop", "INT", "LayerType",
    "numpy", "axes", "data", "mode", "stride",
    "size", "query",    # numpy's array size; edgelstm's CudaBackend.query (cudaEventQuery), not TensorRT's
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _applies(spec: str, version: str) -> bool:
    v = tuple(int(x) for x in version.split(".")[:2])
    if spec == "*":
        return True
    if spec.startswith(">="):
        return v >= tuple(int(x) for x in spec[2:].split("."))
    return v[0] == int(spec)


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def real(request) -> dict:
    return _load(request.param)


def used_problems(real: dict, module, used: dict[str, str]) -> list[str]:
    """USED entries (for this version) that the real version or the stand-in lacks."""
    problems = []
    for name, spec in used.items():
        if not _applies(spec, real["version"]):
            continue
        if not resolve_real(real, name):
            problems.append(f"{real['version']}: edgelstm uses {name}, which TensorRT {real['version']} does not have")
        if not resolve_stand_in(module, name):
            problems.append(f"{real['version']}: edgelstm uses {name}, which the stand-in lacks")
    return problems


# ----------------------------------------------------------------------------------------------- (a) + (c)


def test_the_stand_in_exposes_nothing_the_real_version_lacks(real):
    module = make_module(real["version"])
    problems = compare(stand_in_surface(module, FAKE_ONLY), real, exact_enums=EXACT_ENUMS)
    assert not problems, "\n".join(problems)


def test_fake_only_names_are_the_documented_ones(real):
    module = make_module(real["version"])
    extra = [n for n in dir(module) if not n.startswith("_") and n not in real["classes"] and n not in real["enums"]
             and n not in real["module"]["functions"] and n not in real["module"]["aliases"]]
    assert extra == list(FAKE_ONLY)


def test_enum_values_follow_the_real_ones():
    """The facts from the issue: BuilderFlag values are the real ones, 10.3 has no EDITABLE_TIMING_CACHE nor
    SAME_COMPUTE_CAPABILITY, 11.x removed REJECT_EMPTY_ALGORITHMS and the precision flags but kept DIRECT_IO and
    renumbered VERSION_COMPATIBLE; enums are not IntEnum."""
    m103, m1013, m11 = make_module("10.3.0"), make_module("10.13.3.9"), make_module("11.4.0.106")
    assert (int(m103.BuilderFlag.FP16), int(m103.BuilderFlag.INT8), int(m103.BuilderFlag.TF32)) == (0, 1, 6)
    assert int(m103.BuilderFlag.VERSION_COMPATIBLE) == 13 and int(m11.BuilderFlag.VERSION_COMPATIBLE) == 12
    assert "EDITABLE_TIMING_CACHE" not in m103.BuilderFlag.__members__
    assert "EDITABLE_TIMING_CACHE" in m1013.BuilderFlag.__members__
    assert "SAME_COMPUTE_CAPABILITY" not in m103.HardwareCompatibilityLevel.__members__
    assert not {"REJECT_EMPTY_ALGORITHMS", "FP16", "INT8", "WEIGHTLESS"} & set(m11.BuilderFlag.__members__)
    assert "DIRECT_IO" in m11.BuilderFlag.__members__
    assert int(m103.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(m11.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    flag = m103.BuilderFlag.FP16
    assert not isinstance(flag, int) and flag != 0 and flag.value == 0 and m103.BuilderFlag(0) == flag
    with pytest.raises(TypeError):
        flag < m103.BuilderFlag.INT8  # noqa: B015 - scoped enums have no order
    with pytest.raises(TypeError):
        list(m103.BuilderFlag)  # a pybind11 enum class is not iterable (its __members__ is)


def test_fake_cuda_has_the_cuda_backend_interface():
    """The fake GPU offers exactly the methods of edgelstm's CudaBackend interface."""
    from edgelstm.runners.cuda_buffers import CudaBackend

    def public(cls):
        return {n for c in cls.__mro__ if c is not object for n, v in vars(c).items()
                if not n.startswith("_") and callable(v)}

    assert public(CudaBackend) <= public(FakeCuda)
    # the fake TensorRT's side, and the device primitives the stand-ins of cuda-python/pycuda/torch share
    assert public(FakeCuda) - public(CudaBackend) == {"enqueue", "pending_copies", "alloc", "release", "new_stream",
                                                      "copy_in", "copy_out", "event_done", "wait_event", "timed", "poll",
                                                      "stamp"}


# ------------------------------------------------------------------------------------------------------ (b)


def test_edgelstm_uses_only_what_each_version_has_and_the_stand_in_has_it(real):
    problems = used_problems(real, make_module(real["version"]), USED)
    assert not problems, "\n".join(problems)


def _scanned_modules() -> list[Path]:
    """The product modules that touch TensorRT: they import it, take a `trt` module argument, or import_tensorrt()."""
    out = []
    for root in SOURCE_DIRS:
        for path in sorted((ROOT / root).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if ((isinstance(node, ast.Import) and any(a.name == "tensorrt" for a in node.names))
                        or (isinstance(node, ast.arg) and node.arg == "trt")
                        or (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
                            == "import_tensorrt")):
                    out.append(path)
                    break
    return out


def _universe() -> set[str]:
    """Every name of every real surface: classes, their members, enums, enum members, module functions."""
    names: set[str] = set()
    for path in FILES:
        data = _load(path)
        for cls, info in data["classes"].items():
            names.add(cls)
            for kind in ("methods", "staticmethods", "properties", "attributes"):
                names |= set(info.get(kind, {}))
        for qualname, info in data["enums"].items():
            names |= set(qualname.split(".")) | set(info["members"])
        names |= set(data["module"]["functions"])
    return names


def tensorrt_names_in(source: str, universe: set[str]) -> set[str]:
    """TensorRT names a module's source uses: attributes, implemented methods, and identifier strings (getattr
    names, member names compared by name)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[A-Za-z_]\w*", node.value):
            found.add(node.value)
    return found & universe


def unlisted(source: str, used: dict[str, str], universe: set[str]) -> set[str]:
    listed = {part for name in used for part in name.split(".")}
    found = tensorrt_names_in(source, universe) - listed - NOT_TENSORRT
    return {n for n in found if not (n.startswith("__") and n.endswith("__"))}  # dunders: Python's, not TensorRT's


def test_used_list_covers_the_source():
    """A TensorRT name that appears in the source but not in USED fails here: add it to USED (with the versions
    that have it, and to the stand-in), or to NOT_TENSORRT if it is not TensorRT's."""
    universe = _universe()
    modules = _scanned_modules()
    rel = {str(p.relative_to(ROOT)) for p in modules}
    assert {"converters/tensorrt/build.py", "converters/tensorrt/config.py", "converters/tensorrt/layers.py",
            "calibration/trt_calibrator.py", "edgelstm/runners/tensorrt_runner.py", "edgelstm/artifacts/trt.py"} <= rel
    problems = {str(p.relative_to(ROOT)): sorted(unlisted(p.read_text(), USED, universe)) for p in modules}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"TensorRT names used but not in USED: {problems}"


# ------------------------------------------------------------------------------------------- it bites


def test_surface_check_fails_when_the_stand_in_offers_a_removed_api():
    """Inject what TensorRT 11 removed into the 11.x stand-in: BuilderFlag.INT8 and IBuilderConfig.int8_calibrator
    (and a wrong value, and a constructor where there is none): the surface check names each."""
    real = _load(API_DIR / "tensorrt-11.4.0.106.json")
    module = make_module(real["version"])
    assert not compare(stand_in_surface(module, FAKE_ONLY), real, exact_enums=EXACT_ENUMS)

    members = {k: int(v) for k, v in module.BuilderFlag.__members__.items()}
    module.BuilderFlag = make_enum("BuilderFlag", {**members, "INT8": 1, "TF32": 7})
    module.IBuilderConfig.int8_calibrator = property(lambda self: None, lambda self, v: None)
    module.ITimingCache._constructible = True
    problems = compare(stand_in_surface(module, FAKE_ONLY), real, exact_enums=EXACT_ENUMS)
    assert "11.4.0.106: BuilderFlag.INT8 does not exist" in problems
    assert "11.4.0.106: property IBuilderConfig.int8_calibrator does not exist" in problems
    assert "11.4.0.106: BuilderFlag.TF32 is 6, the stand-in says 7" in problems
    assert any(p.startswith("11.4.0.106: ITimingCache has no constructor") for p in problems)
    assert issubclass(module.BuilderFlag, PybindEnum)


def test_surface_check_fails_when_a_member_is_missing_or_writable():
    real = _load(API_DIR / "tensorrt-10.3.0.json")
    module = make_module(real["version"])
    members = {k: int(v) for k, v in module.DataType.__members__.items() if k != "BF16"}
    module.DataType = make_enum("DataType", members)
    module.ICudaEngine.num_io_tensors = property(lambda self: 0, lambda self, v: None)
    module.IExecutionContext.set_tensor_address = lambda self, name, ptr: True   # `memory=` would not work
    problems = compare(stand_in_surface(module, FAKE_ONLY), real, exact_enums=EXACT_ENUMS)
    assert "10.3.0: DataType.BF16 (= 7) is missing from the stand-in" in problems
    assert "10.3.0: ICudaEngine.num_io_tensors is read-only; the stand-in lets it be set" in problems
    assert ("10.3.0: IExecutionContext.set_tensor_address(name, ptr): the real method takes [['name', 'memory']]"
            in problems)


def test_used_check_fails_when_edgelstm_would_call_a_removed_api():
    """edgelstm setting int8_calibrator or BuilderFlag.INT8 on every version would fail on 11.x: the check says so."""
    real = _load(API_DIR / "tensorrt-11.4.0.106.json")
    wrong = {**USED, "IBuilderConfig.int8_calibrator": "*", "BuilderFlag.INT8": "*"}
    problems = used_problems(real, make_module(real["version"]), wrong)
    assert ("11.4.0.106: edgelstm uses IBuilderConfig.int8_calibrator, which TensorRT 11.4.0.106 does not have"
            in problems)
    assert "11.4.0.106: edgelstm uses BuilderFlag.INT8, which the stand-in lacks" in problems


def test_source_scan_catches_a_new_unlisted_call():
    universe = _universe()
    snippet = "def f(trt, config):\n    config.set_tactic_sources(0)\n    return trt.BuilderFlag.REFIT\n"
    assert unlisted(snippet, USED, universe) == {"set_tactic_sources", "REFIT"}
    assert unlisted("def f(config):\n    config.set_flag(x)\n", USED, universe) == set()
