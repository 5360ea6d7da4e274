"""TensorRT, GPU and Jetson facts. Every function here is safe where the thing it asks about is absent:
it returns None (or a dict saying "not installed") instead of raising. `tensorrt_facts()` is what
`edgelstm doctor` prints; `import_tensorrt()` is the one place that turns a missing TensorRT into
BackendMissing (exit 3) with the right install hint for x86 or Jetson. The runtime side of an engine that
both the build stage and the runner need (the capturing logger, TensorRT dtype names, an engine's I/O spec)
lives here too, so the runner never imports the build stage.

Version facts (DESIGN.md; NVIDIA's 10.x -> 11.x migration guide and the 11.4 support matrix):
- Every TensorRT 10.x has the weakly typed precision flags (BuilderFlag.FP16/INT8), IBuilderConfig.int8_calibrator
  and the INT8 calibrators; 11.x removed them (FP16 then comes from an FP16 ONNX built strongly typed, INT8 from
  Q/DQ nodes). edgelstm builds weakly typed on 10.x, strongly typed on 11.x. Deprecated, by the real bindings'
  docstrings (tests/trt_api/*.json): IBuilderConfig.int8_calibrator / set_calibration_profile since 10.1 (the
  10.3 binding says so), the precision flags since 10.12 (10.13 binding), NetworkDefinitionCreationFlag
  .STRONGLY_TYPED since 11.0 (11.4 binding: strong typing is the only mode, the flag is not passed there).
- TF32 is on by default in a new builder config (Ampere and newer run FP32 GEMMs in TF32 unless it is cleared).
- Version-compatible engines run on later runtimes of the same major, and across exactly these majors:
  8 -> 9, 8 -> 10, 10 -> 11. Hardware- and version-compatible engines exist since 8.6; hardware compatibility
  is for discrete Ampere-or-newer GPUs, not Jetson.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

NO_WEAK_TYPING_FROM = (11, 0, 0)              # BuilderFlag.FP16/INT8 and the calibrators removed
WEAK_TYPING_DEPRECATED_FROM = (10, 12, 0)     # the precision flags deprecated (still present) from here
CALIBRATOR_DEPRECATED_FROM = (10, 1, 0)       # IBuilderConfig.int8_calibrator / set_calibration_profile
#: (built major, runtime major) pairs a version-compatible engine crosses (11.4 support matrix)
VERSION_COMPATIBLE_ACROSS = frozenset({(8, 9), (8, 10), (10, 11)})

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")

X86_INSTALL = ("pip install \"edgelstm[tensorrt]\" --extra-index-url https://pypi.nvidia.com (TensorRT for CUDA 12; "
               "[tensorrt-cu13] needs an R580+ driver; NVIDIA's index holds the builder libraries, PyPI alone has only "
               "stubs), or run inside the image from docker/Dockerfile.tensorrt (bash docker/run-trt-tests.sh)")
JETSON_INSTALL = ("on Jetson TensorRT comes with JetPack: sudo apt-get install python3-libnvinfer, then use a venv "
                  "made with `python3 -m venv --system-site-packages` (or docker/Dockerfile.jetson)")


# --------------------------------------------------------------------------------------------- versions


def parse_version(text: str | None) -> tuple[int, int, int]:
    """'10.14.1.48' -> (10, 14, 1); unparsable -> (0, 0, 0)."""
    if not text:
        return (0, 0, 0)
    nums = [int(n) for n in re.findall(r"\d+", str(text))[:3]]
    while len(nums) < 3:
        nums.append(0)
    return tuple(nums)  # type: ignore[return-value]


def capabilities(version: str | tuple[int, int, int] | None) -> dict[str, bool]:
    """What edgelstm can do with this TensorRT version."""
    v = parse_version(version) if not isinstance(version, tuple) else version
    if v == (0, 0, 0):
        return {}
    weak = v < NO_WEAK_TYPING_FROM
    return {
        "strongly_typed_builds": v >= (10, 0, 0),        # NetworkDefinitionCreationFlag.STRONGLY_TYPED
        "strongly_typed_only": not weak,                 # 11.x: the default and only route
        "weak_typing_flags": weak,                       # BuilderFlag.FP16 / INT8 (edgelstm's route on 10.x)
        "weak_typing_deprecated": weak and v >= WEAK_TYPING_DEPRECATED_FROM,
        "calibrator_deprecated": weak and v >= CALIBRATOR_DEPRECATED_FROM,
        "int8_calibrators": weak,                        # IInt8EntropyCalibrator2 + int8_calibrator (+ cache)
        "hardware_compatible": v >= (8, 6, 0),
        "version_compatible": v >= (8, 6, 0),
        "named_tensor_api": v >= (8, 5, 0),              # set_tensor_address / execute_async_v3
    }


def runs_version_compatible(built: str, runtime: str) -> bool:
    """Whether a version-compatible engine built by TensorRT `built` loads on a TensorRT `runtime`."""
    bv, rv = parse_version(built), parse_version(runtime)
    return rv >= bv and (rv[0] == bv[0] or (bv[0], rv[0]) in VERSION_COMPATIBLE_ACROSS)


def is_jetson() -> bool:
    return TEGRA_RELEASE.exists() or "tegra" in platform.release().lower()


def install_hint() -> str:
    return JETSON_INSTALL if is_jetson() else X86_INSTALL


def import_tensorrt(purpose: str = "building and running TensorRT engines"):
    """`import tensorrt`, or BackendMissing (exit 3) with the install hint for this platform."""
    from edgelstm.errors import BackendMissing

    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError as exc:
        raise BackendMissing(f"TensorRT is not installed, but {purpose} needs it", hint=install_hint()) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. the stub wheel failing to find its libraries
        raise BackendMissing(f"TensorRT is installed but does not load: {str(exc).splitlines()[0][:200]}",
                             hint=install_hint()) from exc
    if getattr(trt, "__version__", None) is None:
        raise BackendMissing("the installed `tensorrt` module has no version (a stub?)", hint=install_hint())
    return trt


def tensorrt_version() -> str | None:
    try:
        import tensorrt as trt  # noqa: PLC0415
    except Exception:  # noqa: BLE001
        return None
    return str(getattr(trt, "__version__", "")) or None


# ------------------------------------------------------------------------------------------------- GPU


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


# Jetson modules have no nvidia-smi query for compute capability on older JetPacks: map the model name.
_JETSON_CC = [("thor", "11.0"), ("orin", "8.7"), ("xavier", "7.2"), ("tx2", "6.2"), ("nano", "5.3"), ("tx1", "5.3")]


def gpu_info() -> dict[str, Any] | None:
    """Name and compute capability of GPU 0: from the CUDA buffer backend when one is usable, else
    nvidia-smi, else (Jetson) the device-tree model name. None without a GPU."""
    try:
        from edgelstm.runners.cuda_buffers import get_backend

        return get_backend().device_info()
    except Exception:  # noqa: BLE001 - no backend, no GPU
        pass
    out = _run(["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"])
    if out and out.strip():
        parts = [p.strip() for p in out.strip().splitlines()[0].split(",")]
        info: dict[str, Any] = {"name": parts[0], "source": "nvidia-smi"}
        if len(parts) > 1 and re.fullmatch(r"\d+\.\d+", parts[1]):
            info["compute_capability"] = parts[1]
        if len(parts) > 2 and parts[2].isdigit():
            info["memory_bytes"] = int(parts[2]) * 1024 * 1024
        return info
    model = jetson_model()
    if model:
        for key, cc in _JETSON_CC:
            if key in model.lower():
                return {"name": model, "compute_capability": cc, "source": "device-tree"}
        return {"name": model, "source": "device-tree"}
    return None


# ---------------------------------------------------------------------------------------------- Jetson

# L4T release -> JetPack (NVIDIA's JetPack archive). Prefix match, most specific first.
_L4T_TO_JETPACK = [
    ("38.2", "7.0"), ("36.4.3", "6.2"), ("36.4.4", "6.2.1"), ("36.4", "6.1"), ("36.3", "6.0"), ("36.2", "6.0 DP"),
    ("35.6", "5.1.4"), ("35.5", "5.1.3"), ("35.4", "5.1.2"), ("35.3", "5.1.1"), ("35.2", "5.1"), ("35.1", "5.0.2"),
    ("32.7", "4.6.x"), ("32.6", "4.6"), ("32.5", "4.5"),
]


def l4t_version(release_file: Path = TEGRA_RELEASE) -> str | None:
    """'# R36 (release), REVISION: 4.0, ...' -> '36.4.0'. None when not a Jetson (or unreadable)."""
    try:
        text = Path(release_file).read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"R(\d+)\s*\(\w+\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    rev = m.group(2).split(".")
    while len(rev) < 2:
        rev.append("0")
    return f"{m.group(1)}.{rev[0]}.{rev[1]}"


def jetpack_version(l4t: str | None) -> str | None:
    pkg = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    if pkg and pkg.strip():
        return pkg.strip().split("+")[0].split("-")[0]
    if not l4t:
        return None
    for prefix, jp in _L4T_TO_JETPACK:
        if l4t == prefix or l4t.startswith(prefix + "."):
            return jp
    return None


def jetson_model(model_file: Path = DEVICE_TREE_MODEL) -> str | None:
    try:
        text = Path(model_file).read_bytes().decode(errors="replace").strip("\x00 \n")
    except OSError:
        return None
    return text or None


def power_mode(nvpmodel_output: str | None = None) -> dict[str, Any] | None:
    """nvpmodel's current power mode ({'name': 'MAXN', 'id': 0}); None when nvpmodel is absent."""
    out = nvpmodel_output if nvpmodel_output is not None else _run(["nvpmodel", "-q"])
    if not out:
        return None
    m = re.search(r"NV Power Mode:\s*(.+)", out)
    if not m:
        return None
    mode: dict[str, Any] = {"name": m.group(1).strip()}
    after = out[m.end():].strip().splitlines()
    if after and after[0].strip().isdigit():
        mode["id"] = int(after[0].strip())
    return mode


def jetson_info(release_file: Path = TEGRA_RELEASE, model_file: Path = DEVICE_TREE_MODEL) -> dict[str, Any] | None:
    """L4T / JetPack versions, board model and power mode; None when this is not a Jetson."""
    l4t = l4t_version(release_file)
    if l4t is None:
        return None
    return {"l4t": l4t, "jetpack": jetpack_version(l4t), "model": jetson_model(model_file),
            "power_mode": power_mode()}


# ------------------------------------------------------------------------------------------------ DLA


def dla_cores(trt=None) -> int | None:
    """Number of DLA cores TensorRT sees (Jetson AGX/NX Orin and Xavier have them); None if unknown."""
    try:
        if trt is None:
            import tensorrt as trt  # noqa: PLC0415
        logger = trt.Logger(trt.Logger.ERROR)
        return int(trt.Runtime(logger).num_DLA_cores)
    except Exception:  # noqa: BLE001 - no TensorRT, no GPU, no driver
        return None


# --------------------------------------------------------------------------------------------- summary


def tensorrt_facts() -> dict[str, Any]:
    """Everything `edgelstm doctor` shows about TensorRT, the GPU and Jetson. Never raises."""
    from edgelstm.runners.cuda_buffers import available_backends

    facts: dict[str, Any] = {"installed": False, "version": None, "capabilities": {}, "gpu": None,
                             "jetson": None, "dla_cores": None, "cuda_buffer_backends": [], "install_hint": None}
    try:
        facts["cuda_buffer_backends"] = available_backends()
    except Exception:  # noqa: BLE001
        pass
    facts["jetson"] = _safe(jetson_info)
    facts["gpu"] = _safe(gpu_info)
    try:
        import tensorrt as trt  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001
        facts["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
        facts["install_hint"] = install_hint()
        return facts
    version = str(getattr(trt, "__version__", "") or "") or None
    facts.update(installed=version is not None, version=version, capabilities=capabilities(version))
    facts["dla_cores"] = dla_cores(trt)
    if version is None:
        facts["install_hint"] = install_hint()
    if os.environ.get("EDGELSTM_TRT_VERBOSE"):
        facts["module"] = getattr(trt, "__file__", None)
    return facts


def _safe(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------------- engines: runtime side

#: TensorRT DataType member -> edgelstm dtype name (the ml_dtypes names for the narrow floats)
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": "int4",
              "FP4": "float4_e2m1fn", "E8M0": "float8_e8m0fnu"}
#: dtypes whose values are floats (returned to the caller as float32)
FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float8_e4m3fn"})
_NUMPY = ("float32", "float16", "int8", "int32", "int64", "uint8", "bool")
_ML_DTYPES = ("bfloat16", "float8_e4m3fn")  # from ml_dtypes (an onnx dependency)


def dtype_name(trt_dtype) -> str:
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1]
    return TRT_DTYPES.get(name, name.lower())


def host_dtype(name: str, tensor: str = "?"):
    """The numpy dtype of an engine I/O tensor's host buffer; BadInput for a dtype numpy cannot hold (a packed
    int4/fp4 tensor) instead of a float32 buffer of the wrong size."""
    import numpy as np

    from edgelstm.errors import BadInput

    if name in _NUMPY:
        return np.dtype(name)
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError:
            raise BadInput(f"engine tensor {tensor!r} is {name}; exchanging it with numpy needs ml_dtypes",
                           hint="pip install ml-dtypes") from None
        return np.dtype(getattr(ml_dtypes, name))
    raise BadInput(f"engine tensor {tensor!r} is {name}, which edgelstm cannot exchange with numpy "
                   "(packed sub-byte types)", hint="rebuild the engine with float32/float16 inputs and outputs")


_LOGGERS: dict[int, type] = {}


def make_logger(trt):
    """A trt.ILogger that keeps warnings and errors (TensorRT's messages become our one-line errors)."""
    cls = _LOGGERS.get(id(trt))
    if cls is None:
        class _CapturingLogger(trt.ILogger):  # type: ignore[misc, valid-type]
            def __init__(self):
                trt.ILogger.__init__(self)
                self.messages: list[tuple[str, str]] = []

            def log(self, severity, msg):
                level = getattr(severity, "name", str(severity)).split(".")[-1]
                if level in ("INTERNAL_ERROR", "ERROR", "WARNING"):
                    self.messages.append((level, str(msg)))

            def errors(self) -> list[str]:
                return [m for lvl, m in self.messages if lvl in ("INTERNAL_ERROR", "ERROR")]

            def warnings(self) -> list[str]:
                return [m for lvl, m in self.messages if lvl == "WARNING"]

        cls = _LOGGERS[id(trt)] = _CapturingLogger
    return cls()


def first_error(logger, default: str) -> str:
    """The last error TensorRT logged, as one line (or `default`)."""
    errs = [e for e in logger.errors() if e.strip()]
    return (errs[-1] if errs else default).strip().splitlines()[0][:400]


def engine_iospec(engine, trt, onnx_io=None):
    """The engine's I/O as an IOSpec: TensorRT dtypes, the ONNX's symbolic axis names for dynamic (-1) dims."""
    from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, IOSpec, TensorSpec

    ref = {t.name: t for t in ((*onnx_io.inputs, *onnx_io.outputs) if onnx_io else ())}
    ins, outs = [], []
    for i in range(int(engine.num_io_tensors)):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        dims: list[int | str] = []
        for axis, d in enumerate(int(v) for v in engine.get_tensor_shape(name)):
            if d >= 0:
                dims.append(d)
            else:
                sym = ref[name].shape[axis] if name in ref and axis < len(ref[name].shape) else "?"
                dims.append(sym if isinstance(sym, str) else "?")
        state = name in (STATE_INPUTS if is_input else STATE_OUTPUTS) or bool(name in ref and ref[name].state)
        spec = TensorSpec(name, dtype_name(engine.get_tensor_dtype(name)), tuple(dims), state,
                          ref[name].value_range if name in ref else None, ref[name].role if name in ref else None)
        (ins if is_input else outs).append(spec)
    return IOSpec(tuple(ins), tuple(outs))
