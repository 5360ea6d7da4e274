"""The builder-config steps of a build, one function each: precision flags and TF32, workspace, the optimization
and calibration profiles, the timing cache, DLA, hardware compatibility; and the ONNX parser's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.converters.tensorrt.options import BuildOptions
from edgelstm.converters.tensorrt.profile import Shapes, calibration_shapes
from edgelstm.artifacts import trt as trt_info
from edgelstm.errors import BadInput, InternalError, opt
from edgelstm.options import Precision


def _call(obj, method):
    fn = getattr(obj, method, None)
    if fn is None:
        return None
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


def parser_errors(parser) -> list[str]:
    """Every error of the ONNX parser as 'node NAME (OP): description'."""
    out = []
    for i in range(int(parser.num_errors)):
        err = parser.get_error(i)
        name = _call(err, "node_name") or ""
        op = _call(err, "node_operator") or ""
        node = _call(err, "node")
        text = _call(err, "desc") or str(err)
        desc = text.strip().splitlines()[0] if text.strip() else ""
        where = f"node {name!r}" if name else (f"node #{node}" if node not in (None, -1) else "model")
        out.append(f"{where}{f' ({op})' if op else ''}: {desc[:300]}")
    return out


def configure(trt, config, options: BuildOptions, flags: list[str], precision: Precision) -> bool:
    """Verbosity, workspace and flags. Returns whether TF32 stays allowed: TensorRT turns it on by default, so an
    FP32 build clears it unless asked (`tf32`) - an "FP32" engine then really computes in FP32."""
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_bytes))
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    tf32 = precision != Precision.fp32 or bool(options.tf32)
    tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
    if tf32_flag is not None and not tf32:
        config.clear_flag(tf32_flag)
    return tf32


def add_profile(builder, config, shapes: Shapes) -> None:
    profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in shapes.items():
        profile.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(profile)


def set_calibration(builder, config, shapes: Shapes, calibrator) -> None:
    """TensorRT 10.x weakly typed INT8: one fixed calibration shape (a profile of its own) and the calibrator."""
    fixed = calibration_shapes(shapes, calibrator.feeder)
    cprof = builder.create_optimization_profile()
    for name in shapes:
        cprof.set_shape(name, fixed[name], fixed[name], fixed[name])
    config.set_calibration_profile(cprof)
    config.int8_calibrator = calibrator


def _create_timing_cache(config, blob: bytes):
    try:
        return config.create_timing_cache(blob)
    except Exception:  # noqa: BLE001 - some bindings raise instead of returning None
        return None


def load_timing_cache(config, path: Path | None, warnings: list[str], logger) -> dict[str, Any] | None:
    """Load the timing cache file when it exists (a corrupt or foreign one is replaced by a fresh cache)."""
    if path is None:
        return None
    path = Path(path)
    blob = path.read_bytes() if path.is_file() else b""
    cache = _create_timing_cache(config, blob)
    reused = bool(blob)
    if cache is None and blob:
        warnings.append(f"timing cache {path.name} is unreadable (corrupt, or not a TensorRT timing cache); "
                        "started afresh")
        cache, reused = _create_timing_cache(config, b""), False
    if cache is None:
        raise InternalError("TensorRT could not create a timing cache: "
                            + trt_info.first_error(logger, "no reason given"), hint=f"build without {opt('timing_cache')}")
    if config.set_timing_cache(cache, False) is False and reused:
        warnings.append(f"timing cache {path.name} is from another TensorRT version or GPU; started afresh")
        config.set_timing_cache(_create_timing_cache(config, b""), False)
        reused = False
    return {"file": str(path), "reused": reused, "loaded_bytes": len(blob)}


def set_dla(trt, builder, network, config, options: BuildOptions, warnings: list[str]) -> dict[str, Any] | None:
    if options.dla_core is None:
        return None
    core = int(options.dla_core)
    cores = int(builder.num_DLA_cores)
    if cores == 0:
        raise BadInput(f"{opt('dla_core')} {core}: this device has no DLA "
                       "(DLA cores exist on Jetson AGX/NX Orin and Xavier)")
    if core >= cores:
        raise BadInput(f"{opt('dla_core')} {core}: this device has {cores} DLA core(s), 0..{cores - 1}")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    layers = [network.get_layer(i) for i in range(int(network.num_layers))]
    on_gpu = [layer.name for layer in layers if not config.can_run_on_DLA(layer)]
    if on_gpu and not options.gpu_fallback:
        raise BadInput(f"{len(on_gpu)} layer(s) cannot run on the DLA (e.g. {on_gpu[0]!r}) and GPU "
                       f"fallback is off; drop {opt('no_gpu_fallback')}")
    if on_gpu:
        warnings.append(f"{len(on_gpu)} of {len(layers)} layers fall back from DLA to the GPU")
    return {"core": core, "num_cores": cores, "gpu_fallback": bool(options.gpu_fallback),
            "layers_on_gpu": on_gpu, "num_layers": len(layers)}


def set_hardware_compatibility(trt, config, options: BuildOptions, gpu: dict[str, Any] | None) -> str:
    if not options.hardware_compatible:
        return "none"
    cc = (gpu or {}).get("compute_capability")
    if cc and trt_info.parse_version(cc) < (8, 0, 0):
        raise BadInput(f"{opt('hardware_compatible')} engines need an Ampere or newer GPU (compute capability "
                       f">= 8.0); this GPU ({(gpu or {}).get('name')}) is {cc}")
    config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    return "ampere_plus"
