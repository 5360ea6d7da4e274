"""ONNX -> TensorRT engine (the build stage).

`build_engine(onnx_path, out, options, calib=None) -> BuildResult`: nothing printed, no sys.exit; the engine
and its manifest are written atomically, and only after TensorRT built an engine that it can load again.

How a precision is built depends on the installed TensorRT (ARCHITECTURE.md; NVIDIA's 10.x -> 11.x migration guide):

| TensorRT | fp32                     | fp16                                  | int8                                          |
|----------|--------------------------|---------------------------------------|-----------------------------------------------|
| 10.x     | no precision flag        | BuilderFlag.FP16                      | BuilderFlag.INT8 + Q/DQ, or + calibrator/cache |
| 11.x     | strongly typed (the only | strongly typed from an FP16 ONNX (made | strongly typed from a Q/DQ ONNX (made by       |
|          | mode: no flag passed)    | by edgelstm.converters.quantize.fp16 when given FP32)   | edgelstm.converters.quantize.int8 from --calib data)             |

The calibrator API is deprecated since 10.1, the precision flags since 10.12 (11.x removed both; the real bindings'
docstrings, tests/trt_api); NetworkDefinitionCreationFlag.STRONGLY_TYPED is deprecated since 11.0, so it is passed
on 10.x only; `BuildOptions(strongly_typed=True)` builds the 11.x way on 10.x too. Before TensorRT runs, the ONNX
is checked for what only TensorRT's parser refuses (onnx_support.py); calibration batches keep each input's dtype
(calibrate.py). FP32 builds clear BuilderFlag.TF32 (on by default: Ampere+ would run FP32 GEMMs in TF32)
unless `tf32=True`. Only named-tensor APIs are used (`build_serialized_network`, `set_tensor_address`,
`execute_async_v3`).

TensorRT Python API used here, as bound in TensorRT's python/src/infer/pyCore.cpp and pyOnnx.cpp (10.x) and
documented at docs.nvidia.com/deeplearning/tensorrt (Builder, IBuilderConfig, IOptimizationProfile, OnnxParser,
EngineInspector, Runtime pages; "Removed Python APIs" in the 10.x -> 11.x migration guide):
Builder(logger).create_network(flags) / create_builder_config() / create_optimization_profile() /
build_serialized_network(network, config) / num_DLA_cores; OnnxParser(network, logger).parse(model, path) /
num_errors / get_error(i).node_name() .node_operator() .desc(); IOptimizationProfile.set_shape(input, min, opt,
max); IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes) / set_flag / clear_flag /
add_optimization_profile / create_timing_cache(bytes) / set_timing_cache(cache, ignore_mismatch) /
get_timing_cache().serialize() / profiling_verbosity / hardware_compatibility_level / default_device_type /
DLA_core / can_run_on_DLA(layer) / int8_calibrator / set_calibration_profile (the last two: 10.x only);
Runtime(logger).deserialize_cuda_engine(bytes); ICudaEngine.create_engine_inspector() /
get_engine_information(LayerInformationFormat.JSON).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from edgelstm.converters.tensorrt.calibrate import as_source, failure_hint, make_build_calibrator, no_int8_source
from edgelstm.converters.tensorrt.config import (add_profile, configure, load_timing_cache, parser_errors, set_calibration,
                                        set_dla, set_hardware_compatibility)
from edgelstm.converters.tensorrt.layers import inspect_engine
from edgelstm.converters.tensorrt.layer_constraints import constrain_layers
from edgelstm.converters.tensorrt.marking import mark_outputs
from edgelstm.converters.tensorrt.onnx_support import check_for_tensorrt
from edgelstm.converters.tensorrt.options import BuildOptions, BuildResult, check_range
from edgelstm.converters.tensorrt.profile import plan_profile, profile_dict
from edgelstm.artifacts import trt as trt_info
from edgelstm.machine import tensorrt as host_trt
from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput, EdgeLSTMError, opt
from edgelstm.fileio import sha256_file, write_bytes_atomic
from edgelstm.options import Precision
from edgelstm.safe_files import private_tempdir


@dataclass
class _Onnx:
    path: Path
    facts: Any          # edgelstm.artifacts.facts.OnnxFacts
    io: IOSpec
    model: Any = None   # the onnx.ModelProto (external data not loaded)


@dataclass
class _Route:
    strongly: bool
    flags: list[str]
    src: _Onnx                      # the ONNX TensorRT parses
    made_by: str | None = None      # the stage that made it, when it is an intermediate
    calibrate: bool = False         # TensorRT 10.x INT8 through a calibrator (made once the network is parsed)
    calib_source: Any = None        # its data (None: only the cache is read)
    calibrator: Any = None          # the calibrator


def _read_onnx(path: Path) -> _Onnx:
    import onnx

    from edgelstm.artifacts.facts import onnx_facts
    from edgelstm.artifacts.iospec import iospec_from_onnx

    from edgelstm.fileio import require_file

    require_file(path, what="ONNX model", kind="an ONNX model")  # unreadable, a link loop, empty: said so
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
    if not model.graph.node:
        raise BadInput(f"{path.name} is not a valid ONNX model: its graph has no nodes")
    from edgelstm.artifacts.artifact import manifest_first_io
    from edgelstm.artifacts.manifest import read_manifest

    # the manifest's spec (state roles, input ranges, symbolic dims) once the file agrees with it; a manifest edited
    # by hand or left from another file is refused before TensorRT
    manifest = read_manifest(path)
    io, _ = manifest_first_io(manifest.io if manifest is not None else None, iospec_from_onnx(model), path.name)
    return _Onnx(path, onnx_facts(model), io, model)


def _check_request(src: Path, out: Path, options: BuildOptions, calib: Any) -> Precision:
    """Bad usage fails here, before TensorRT is needed."""
    if not src.is_file():
        from edgelstm.fileio import link_problem

        raise BadInput(f"ONNX model {src} {link_problem(src) or ('is not a file' if src.exists() else 'does not exist')}")
    if out.suffix.lower() not in (".plan", ".engine", ".trt"):
        raise BadInput(f"the engine file should end in .plan or .engine, got {out.name}")
    precision = Precision(str(options.precision))
    check_range(options.batch, "batch")
    check_range(options.seq, "seq")
    dla = options.dla_core
    if dla is not None and int(dla) < 0:
        raise BadInput(f"{opt('dla_core')} must be >= 0, got {dla}")
    if dla is not None and precision == Precision.fp32:
        raise BadInput(f"DLA runs FP16 or INT8 layers only; use {opt('precision')} fp16 or int8 with {opt('dla_core')}")
    if dla is not None and options.hardware_compatible:
        raise BadInput(f"{opt('hardware_compatible')} engines cannot target the DLA; drop one of the two")
    if options.hardware_compatible and host_trt.is_jetson():
        raise BadInput(f"{opt('hardware_compatible')} is not available on Jetson (TensorRT's hardware compatibility "
                       "covers discrete Ampere-or-newer GPUs); build on each device from the shipped ONNX")
    for key, path in (("calib_cache", options.calib_cache), ("timing_cache", options.timing_cache)):
        if path is not None and Path(path).is_dir():
            raise BadInput(f"{opt(key)} {path} is a directory; give a file path")
    if isinstance(calib, (str, Path)) and not Path(calib).is_file():
        raise BadInput(f"{opt('calib')} {calib} " + ("is a directory; give a data file (.npz/.npy/.csv)"
                                                     if Path(calib).is_dir() else "does not exist"))
    return precision


def _strongly_typed(options: BuildOptions, version: str) -> bool:
    weak_ok = trt_info.capabilities(version).get("weak_typing_flags", False)
    if options.strongly_typed is False and not weak_ok:
        raise BadInput(f"TensorRT {version} builds strongly typed only (11.x removed BuilderFlag.FP16/INT8 and the "
                       f"calibrators); drop {opt('weakly_typed')}")
    return not weak_ok if options.strongly_typed is None else bool(options.strongly_typed)


def _intermediate_fp16(src: Path, out: Path, options: BuildOptions) -> Path:
    try:
        from edgelstm.converters.quantize.fp16 import Fp16Options, quantize_fp16
    except ImportError as exc:
        raise BadInput(f"{src.name} is FP32 and a strongly typed build needs an FP16 ONNX for FP16; "
                       f"edgelstm.converters.quantize.fp16 is unavailable ({exc})",
                       hint="run `edgelstm quantize MODEL.onnx --precision fp16 -o MODEL.fp16.onnx` and build that") from None
    quantize_fp16(src, out, Fp16Options(layer_precisions=tuple(options.layer_precisions)))
    return out


def _intermediate_int8(src: Path, out: Path, calib, options: BuildOptions) -> Path:
    """Static Q/DQ quantization through the quantize stage (edgelstm.converters.quantize.int8): TensorRT's recipe
    (symmetric int8 inputs/weights of MatMul/Gemm, LSTM/GRU left float)."""
    try:
        from edgelstm.converters.quantize.int8 import Int8Options, quantize_int8
    except ImportError as exc:
        raise BadInput(f"{src.name} has no Q/DQ nodes and edgelstm.converters.quantize.int8 is unavailable ({exc})",
                       hint="run `edgelstm quantize MODEL.onnx --precision int8 --mode static --calib DATA` "
                            "and build that") from None
    res = quantize_int8(src, out, Int8Options(mode="static", calib_method=str(options.calib_method), target="tensorrt",
                                              layer_precisions=tuple(options.layer_precisions)), calib=calib)
    return Path(getattr(res, "path", None) or out)


def _route(trt, precision: Precision, onnx: _Onnx, work: Path, options: BuildOptions, calib, strongly: bool,
           warnings: list[str], say) -> _Route:
    """Which ONNX TensorRT parses, with which precision flags and calibrator."""
    route = _Route(strongly, [], onnx)
    facts, src = onnx.facts, onnx.path
    if precision == Precision.fp16:
        if not strongly:
            route.flags.append("FP16")
        elif facts.precision != "fp16":
            say("converting the model to FP16 (strongly typed build)")
            route.src = _read_onnx(_intermediate_fp16(src, work / f"{src.stem}.fp16.onnx", options))
            route.made_by = "edgelstm.converters.quantize.fp16.quantize_fp16"
    elif precision == Precision.int8 and strongly:
        if options.calib_cache is not None:
            warnings.append(f"{opt('calib_cache')} is for weakly typed INT8 (TensorRT 10.x calibrators); this strongly "
                            "typed build quantizes from Q/DQ nodes, so the cache is not used")
        if not facts.has_qdq:
            if calib is None:
                raise no_int8_source()
            say("quantizing to a static Q/DQ ONNX (strongly typed INT8)")
            source = as_source(calib, onnx.io, options.calib_batch_size)
            route.src = _read_onnx(_intermediate_int8(src, work / f"{src.stem}.int8.onnx", source, options))
            route.made_by = "edgelstm.converters.quantize.int8.quantize_int8"
    elif precision == Precision.int8:
        route.flags.append("INT8")
        if not facts.has_qdq:
            cache_ok = options.calib_cache is not None and Path(options.calib_cache).is_file()
            if calib is None and not cache_ok:
                raise no_int8_source(f" (or an existing {opt('calib_cache')} FILE)")
            route.calibrate = True
            route.calib_source = None if cache_ok else as_source(calib, onnx.io, options.calib_batch_size)
    if options.version_compatible:
        route.flags.append("VERSION_COMPATIBLE")
    if options.dla_core is not None and options.gpu_fallback:
        route.flags.append("GPU_FALLBACK")
    return route


def _parse(trt, builder, logger, route: _Route, src: Path, version: str, say):
    # 10.x: strong typing is a flag; 11.x: the only mode, and the flag is deprecated (11.4 binding: "since 11.0")
    strongly_flag = route.strongly and not trt_info.capabilities(version).get("strongly_typed_only")
    net_flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if strongly_flag else 0
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    path = route.src.path
    say(f"parsing {path.name}")
    if not parser.parse(path.read_bytes(), str(path)):
        errs = parser_errors(parser) or logger.errors() or ["unknown parser error"]
        raise BadInput(f"TensorRT {version} cannot parse {src.name}: " + "; ".join(errs[:6])
                       + (f" (+{len(errs) - 6} more)" if len(errs) > 6 else ""),
                       hint="replace the unsupported op(s) or re-export (edgelstm convert)")
    return network, parser


def _deprecations(version: str, route: _Route) -> list[str]:
    """What this build uses that the installed TensorRT deprecates (from the real bindings' docstrings: the
    calibrator API since 10.1, the precision flags since 10.12; 11.x removed both)."""
    caps, out = trt_info.capabilities(version), []
    weak_flag = next((f for f in route.flags if f in ("FP16", "INT8")), None)
    if weak_flag and caps.get("weak_typing_deprecated"):
        out.append(f"TensorRT {version} deprecates BuilderFlag.{weak_flag} (11.x removed it; there edgelstm builds "
                   f"strongly typed); {opt('strongly_typed')} builds that way here too")
    if route.calibrate and caps.get("calibrator_deprecated"):
        out.append(f"TensorRT {version} deprecates IBuilderConfig.int8_calibrator and set_calibration_profile "
                   f"(since 10.1; 11.x removed them); {opt('strongly_typed')} builds INT8 from Q/DQ nodes instead")
    return out


def build_engine(onnx_path: str | Path, out: str | Path, options: BuildOptions = BuildOptions(),
                 calib: Any = None, *, on_step: Callable[[str], None] | None = None,
                 progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build a TensorRT engine from ONNX. `calib`: calibration data (a .npz/.npy/.csv path or a re-iterable
    source of feed dicts) for INT8 from a float ONNX; `on_step` (or its older name `progress`) hears each step.
    Raises BadInput (2), BackendMissing (3)."""
    t0 = time.perf_counter()
    say = on_step or progress or (lambda _msg: None)
    src, out = Path(onnx_path), Path(out)
    precision = _check_request(src, out, options, calib)
    onnx = _read_onnx(src)

    say("loading TensorRT")
    trt = host_trt.import_tensorrt("edgelstm build")
    version = str(trt.__version__)
    strongly = _strongly_typed(options, version)
    check_for_tensorrt(onnx.model, src.name, version, strongly_typed=strongly)  # what only TensorRT refuses
    warnings: list[str] = []
    from edgelstm.runners import cuda_buffers

    gpu = host_trt.gpu_info(cuda_buffers)
    route = None
    tmpdir = private_tempdir("build", folder=out.parent if out.parent.is_dir() else None)
    try:
        route = _route(trt, precision, onnx, Path(tmpdir.name), options, calib, strongly, warnings, say)
        if route.made_by is not None:
            check_for_tensorrt(route.src.model, f"{src.name} (as {route.src.path.name})", version,
                               strongly_typed=strongly)
        warnings += _deprecations(version, route)

        logger = trt_info.make_logger(trt)
        builder = trt.Builder(logger)
        network, _parser = _parse(trt, builder, logger, route, src, version, say)
        debug_outputs = mark_outputs(trt, network, options.mark_outputs) if options.mark_outputs else None
        constraints = constrain_layers(trt, network, onnx.model, tuple(options.layer_precisions), route.flags,
                                       strongly=strongly, made_by=route.made_by, onnx_precision=onnx.facts.precision,
                                       version=version, warnings=warnings)
        if route.calibrate:
            route.calibrator = make_build_calibrator(trt, network, route.calib_source, options)
        config = builder.create_builder_config()
        tf32 = configure(trt, config, options, route.flags, precision)
        net_inputs = [(t.name, tuple(int(d) for d in t.shape))
                      for t in (network.get_input(i) for i in range(int(network.num_inputs)))]
        shapes = plan_profile(net_inputs, route.src.io, options.batch, options.seq)
        add_profile(builder, config, shapes)
        if route.calibrator is not None:
            say("reading calibration data")
            set_calibration(builder, config, shapes, route.calibrator)
        tc_info = load_timing_cache(config, options.timing_cache, warnings, logger)
        dla_info = set_dla(trt, builder, network, config, options, warnings)
        hw_level = set_hardware_compatibility(trt, config, options, gpu)

        say(f"building the {precision.value} engine ({'strongly typed' if strongly else 'builder flags'})")
        plan = _serialize(builder, network, config, route, logger, version, src)
        if options.timing_cache is not None:
            write_bytes_atomic(options.timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
        calib_info = None
        if route.calibrator is not None:
            calib_info = route.calibrator.feeder.stats() | {"method": str(options.calib_method)}

        say("inspecting the engine")
        engine_io, layers = inspect_engine(trt, plan, logger, shapes, route.src.io,
                                           version_compatible=options.version_compatible, dla_core=options.dla_core)
        layers["tf32"] = tf32
        details = _engine_details(version, strongly, route, tf32, gpu, shapes, hw_level, options, dla_info, layers,
                                  src, onnx, calib_info, tc_info, warnings, logger, out, precision)
        if debug_outputs is not None:
            details["debug_outputs"] = debug_outputs
        if constraints is not None:
            details["layer_precisions"] = constraints
        return _write(out, plan, src, route, options, precision, details, layers, engine_io, time.perf_counter() - t0)
    finally:
        if route is not None and route.calibrator is not None:
            try:
                route.calibrator.feeder.close()
            except Exception:  # noqa: BLE001
                pass
        tmpdir.cleanup()


def _serialize(builder, network, config, route, logger, version: str, src: Path) -> bytes:
    """The serialized engine; a calibration failure or a refused build is BadInput with TensorRT's reason."""
    serialized = builder.build_serialized_network(network, config)
    feeder_error = getattr(getattr(route.calibrator, "feeder", None), "error", None)
    if feeder_error is not None:
        raise feeder_error if isinstance(feeder_error, EdgeLSTMError) else BadInput(
            f"calibration failed: {type(feeder_error).__name__}: {feeder_error}")
    if serialized is None:
        why = trt_info.first_error(logger, "no reason given (rerun with EDGELSTM_DEBUG=1)")
        raise BadInput(f"TensorRT {version} could not build an engine from {src.name}: {why}",
                       hint=failure_hint(route.calib_source is not None, why))
    return bytes(memoryview(serialized))


def _engine_details(version, strongly, route, tf32, gpu, shapes, hw_level, options, dla_info, layers, src, onnx,
                    calib_info, tc_info, warnings, logger, out, precision) -> dict[str, Any]:
    """The manifest's details of an engine: how it was built, on what, from what."""
    return {
        "tensorrt": {"version": version, "route": "strongly-typed" if strongly else "builder-flags",
                     "strongly_typed": strongly, "flags": route.flags, "tf32": tf32},
        "gpu": gpu,
        "profiles": [profile_dict(shapes)],
        "hardware_compatibility": hw_level,
        "version_compatible": bool(options.version_compatible),
        "dla": dla_info,
        "layer_precision": {k: layers[k] for k in ("available", "totals", "groups", "num_layers", "reason", "tf32")
                            if k in layers} | {"layers": layers.get("layers", [])[:500]},
        "source_onnx": {"file": src.name, "sha256": sha256_file(src), "precision": onnx.facts.precision},
        "built_from": None if route.made_by is None else {
            "made_by": route.made_by, "sha256": sha256_file(route.src.path), "precision": route.src.facts.precision},
        "calibration": calib_info,
        "timing_cache": tc_info,
        "workspace_bytes": options.workspace_bytes,
        "warnings": warnings + [f"TensorRT: {w[:300]}" for w in logger.warnings()[-5:]],
        "rebuild": rebuild_command(src.name, out.name, precision.value, shapes, options),
    }


def _write(out: Path, plan: bytes, src: Path, route: _Route, options: BuildOptions, precision: Precision,
           details: dict[str, Any], layers: dict[str, Any], engine_io: IOSpec, seconds: float) -> BuildResult:
    from edgelstm.artifacts.manifest import write_artifact
    from edgelstm.safe_files import all_or_nothing

    details["build_seconds"] = round(seconds, 3)
    with all_or_nothing():  # the engine, its manifest and a kept ONNX commit together
        with write_artifact(out) as pair:
            pair.write_bytes(plan)
            manifest = pair.write_manifest(kind="engine", precision=precision.value, parent=src, io=engine_io,
                                           details=details)
        if options.keep_intermediate is not None and route.made_by is not None:
            keep = Path(options.keep_intermediate)
            keep = keep / route.src.path.name if keep.is_dir() else keep
            write_bytes_atomic(keep, route.src.path.read_bytes())
    trt_details = details["tensorrt"]
    return BuildResult(path=out, precision=precision.value, tensorrt_version=trt_details["version"],
                       route=trt_details["route"], flags=route.flags, io=engine_io,
                       profiles=details["profiles"][0], layer_precision=layers, gpu=details["gpu"],
                       built_from=route.src.path, timing_cache=details["timing_cache"],
                       calibration=details["calibration"], dla=details["dla"],
                       hardware_compatibility=details["hardware_compatibility"],
                       version_compatible=bool(options.version_compatible), tf32=trt_details["tf32"],
                       warnings=details["warnings"], seconds=seconds, manifest=manifest)


def rebuild_command(onnx_name: str, out_name: str, precision: str, shapes: Mapping[str, Any],
                    options: BuildOptions) -> str:
    parts = [f"edgelstm build {onnx_name} -o {out_name} --precision {precision}"]
    for key in ("batch", "seq"):
        r = check_range(getattr(options, key), key)
        if r:
            parts.append(f"--{key} " + ":".join(map(str, r)))
    if precision == "int8":
        parts.append("--calib DATA")
    if options.dla_core is not None:
        parts.append(f"--dla-core {options.dla_core}")
    if options.tf32 and precision == "fp32":
        parts.append("--tf32")
    if options.strongly_typed is not None:
        parts.append("--strongly-typed" if options.strongly_typed else "--weakly-typed")
    if options.layer_precisions:
        parts.append("--layer-precisions " + ",".join(str(r) for r in options.layer_precisions))
    return " ".join(parts)
