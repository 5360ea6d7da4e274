"""ONNX -> TensorRT engine (the build stage).

`build_engine(onnx_path, out, options, calib=None) -> BuildResult`: nothing printed, no sys.exit; the engine
and its manifest are written atomically, and only after TensorRT built an engine that it can load again.

How a precision is built depends on the installed TensorRT (DESIGN.md; NVIDIA's 10.x -> 11.x migration guide):

| TensorRT        | fp32                | fp16                                         | int8                                          |
|-----------------|---------------------|----------------------------------------------|-----------------------------------------------|
| < 10.12         | no flags            | BuilderFlag.FP16                             | BuilderFlag.INT8 + Q/DQ, or + calibrator/cache |
| >= 10.12 and 11 | STRONGLY_TYPED      | STRONGLY_TYPED from an FP16 ONNX (made by     | STRONGLY_TYPED from a Q/DQ ONNX (made by       |
|                 |                     | converters.fp16 when given FP32)      | converters.int8 from --calib data)     |

Strongly typed FP16 LSTM/GRU loops need TensorRT >= 10.14; on 10.12-10.13 such a build is refused with the
fix. Only named-tensor APIs are used (`build_serialized_network`, `set_tensor_address`, `execute_async_v3`).

TensorRT Python API used here, as bound in TensorRT's python/src/infer/pyCore.cpp and pyOnnx.cpp (10.x) and
documented at docs.nvidia.com/deeplearning/tensorrt (Builder, IBuilderConfig, IOptimizationProfile,
OnnxParser, EngineInspector, Runtime pages; "Removed Python APIs" in the 10.x -> 11.x migration guide):
Builder(logger).create_network(flags) / create_builder_config() / create_optimization_profile() /
build_serialized_network(network, config) / num_DLA_cores; OnnxParser(network, logger).parse(model, path) /
num_errors / get_error(i).node_name() .node_operator() .desc(); IOptimizationProfile.set_shape(input, min, opt,
max); IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes) / set_flag(BuilderFlag.X) /
add_optimization_profile / create_timing_cache(bytes) / set_timing_cache(cache, ignore_mismatch) /
get_timing_cache().serialize() / profiling_verbosity / hardware_compatibility_level / default_device_type /
DLA_core / can_run_on_DLA(layer) / int8_calibrator / set_calibration_profile (the last two: 10.x only);
Runtime(logger).deserialize_cuda_engine(bytes); ICudaEngine.create_engine_inspector() /
get_engine_information(LayerInformationFormat.JSON).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from edgelstm.errors import BackendMissing, BadInput, EdgeLSTMError, InternalError
from edgelstm.fileio import sha256_file, write_bytes_atomic
from edgelstm.artifacts.iospec import STATE_INPUTS, STATE_OUTPUTS, IOSpec, TensorSpec, iospec_from_onnx
from edgelstm.options import CalibMethod, Precision

Range = tuple[int, int, int]

DEFAULT_BATCH: Range = (1, 8, 64)
DEFAULT_SEQ: Range = (1, 64, 512)
RECURRENT_OPS = {"LSTM", "GRU", "RNN", "Loop", "Scan"}
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8", "INT4": "int4"}


@dataclass(frozen=True)
class BuildOptions:
    precision: Precision | str = Precision.fp32
    batch: Range | None = None              # min:opt:max of the batch axis (axis 0 of x, axis 1 of h0/c0)
    seq: Range | None = None                # min:opt:max of the sequence axis (axis 1 of x)
    workspace_bytes: int | None = None      # MemoryPoolType.WORKSPACE limit
    timing_cache: Path | None = None        # loaded if it exists, saved after the build
    calib_cache: Path | None = None         # TensorRT < 10.12 INT8: reused if it exists, written after calibration
    calib_method: CalibMethod | str = CalibMethod.entropy
    calib_batch_size: int = 32
    dla_core: int | None = None
    gpu_fallback: bool = True               # layers DLA cannot run go to the GPU (reported)
    hardware_compatible: bool = False       # HardwareCompatibilityLevel.AMPERE_PLUS
    version_compatible: bool = False        # BuilderFlag.VERSION_COMPATIBLE
    keep_intermediate: Path | None = None   # where to keep the FP16 / Q/DQ ONNX made on the way (default: dropped)


@dataclass
class BuildResult:
    path: Path
    precision: str
    tensorrt_version: str
    route: str                              # "strongly-typed" | "builder-flags"
    flags: list[str]
    io: IOSpec
    profiles: dict[str, dict[str, list[int]]]
    layer_precision: dict[str, Any]
    gpu: dict[str, Any] | None
    built_from: Path                        # the ONNX TensorRT parsed (the input, or an FP16/QDQ intermediate)
    timing_cache: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    dla: dict[str, Any] | None = None
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"engine": str(self.path), "precision": self.precision, "tensorrt": self.tensorrt_version,
                "route": self.route, "flags": self.flags, "io": self.io.to_dict(), "profiles": self.profiles,
                "layer_precision": self.layer_precision, "gpu": self.gpu, "built_from": str(self.built_from),
                "timing_cache": self.timing_cache, "calibration": self.calibration, "dla": self.dla,
                "hardware_compatibility": self.hardware_compatibility, "version_compatible": self.version_compatible,
                "warnings": self.warnings, "seconds": round(self.seconds, 3)}


# ------------------------------------------------------------------------------------------ small parsers


def parse_workspace(text: str | int | None) -> int | None:
    """'512MiB', '2GiB', '1G', '256M' or a plain number of MiB -> bytes."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text * (1 << 20)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?[bB])?\s*", str(text))
    if not m:
        raise BadInput(f"--workspace must look like 512MiB, 2GiB or a number of MiB, got {text!r}")
    value = float(m.group(1))
    unit = (m.group(2) or "M").upper()
    nbytes = int(value * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit])
    if nbytes < (1 << 20):
        raise BadInput(f"--workspace {text!r} is below 1 MiB")
    return nbytes


def check_range(r: Iterable[int] | None, what: str) -> Range | None:
    """Validate a min:opt:max triple (1 <= min <= opt <= max)."""
    if r is None:
        return None
    vals = tuple(int(v) for v in r)
    if len(vals) != 3:
        raise BadInput(f"{what} must be min:opt:max, got {list(vals)}")
    lo, opt, hi = vals
    if lo < 1 or not lo <= opt <= hi:
        raise BadInput(f"{what} needs 1 <= min <= opt <= max, got {lo}:{opt}:{hi}")
    return vals  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- ONNX facts


@dataclass
class OnnxFacts:
    io: IOSpec
    ops: set[str]
    precision: str         # fp32 | fp16 | int8 (Q/DQ)
    has_qdq: bool
    recurrent: bool

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"


def onnx_facts(path: Path) -> OnnxFacts:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise BadInput(f"{path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
    ops: set[str] = set()

    def walk(graph) -> None:
        for node in graph.node:
            ops.add(node.op_type)
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    walk(attr.g)

    walk(model.graph)
    io = iospec_from_onnx(model)
    types = {i.data_type for i in model.graph.initializer}
    in_types = {t.dtype for t in io.inputs}
    has_qdq = bool(ops & QDQ_OPS)
    if has_qdq:
        precision = "int8"
    elif (10 in types and 1 not in types) or ("float16" in in_types) or ("Cast" in ops and 10 in types):
        precision = "fp16"
    else:
        precision = "fp32"
    return OnnxFacts(io, ops, precision, has_qdq, bool(ops & RECURRENT_OPS))


# -------------------------------------------------------------------------------------------- profiles


def _axis_roles(spec: TensorSpec | None, name: str, rank: int) -> list[str | None]:
    state = name in STATE_INPUTS or bool(spec and spec.state)
    roles: list[str | None] = []
    for axis in range(rank):
        sym = spec.shape[axis] if spec is not None and axis < len(spec.shape) else None
        if isinstance(sym, str) and sym.lower() in ("batch", "batch_size", "n"):
            roles.append("batch")
        elif isinstance(sym, str) and sym.lower() in ("seq", "sequence", "seq_len", "time", "t"):
            roles.append("seq")
        elif state:
            roles.append("batch" if axis == 1 else None)
        else:
            roles.append({0: "batch", 1: "seq"}.get(axis))
    return roles


def plan_profile(inputs: list[tuple[str, tuple[int, ...]]], spec: IOSpec | None, batch: Range | None,
                 seq: Range | None) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """min/opt/max shapes per network input. Dynamic dims (-1) take the batch or seq range by role (data
    inputs: axis 0 batch, axis 1 seq; state inputs h0/c0: axis 1 batch); fixed dims stay fixed, and a range
    given for a fixed axis must contain it."""
    batch = check_range(batch, "--batch")
    seq = check_range(seq, "--seq")
    ranges = {"batch": batch or DEFAULT_BATCH, "seq": seq or DEFAULT_SEQ}
    given = {"batch": batch, "seq": seq}
    specs = {t.name: t for t in spec.inputs} if spec else {}
    out = {}
    for name, shape in inputs:
        roles = _axis_roles(specs.get(name), name, len(shape))
        lo, opt, hi = [], [], []
        for axis, (d, role) in enumerate(zip(shape, roles)):
            if d is None or int(d) < 0:
                if role is None:
                    raise BadInput(f"input {name!r} axis {axis} is dynamic but is neither the batch nor the sequence "
                                   f"axis (shape {list(shape)}); export it with a fixed size")
                r = ranges[role]
                lo.append(r[0]); opt.append(r[1]); hi.append(r[2])  # noqa: E702
            else:
                d = int(d)
                if role and given[role] is not None and given[role] != (d, d, d):
                    raise BadInput(f"--{role} {':'.join(map(str, given[role]))} does not fit input {name!r}: its "
                                   f"{role} axis {axis} is fixed at {d} (re-export without --static for a range)")
                lo.append(d); opt.append(d); hi.append(d)  # noqa: E702
        out[name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


# ------------------------------------------------------------------------------------------- TRT glue


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


def dtype_name(trt_dtype) -> str:
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1]
    return TRT_DTYPES.get(name, name.lower())


def _dims(d) -> tuple[int, ...]:
    return tuple(int(v) for v in d)


def _first_error(logger, default: str) -> str:
    errs = [e for e in logger.errors() if e.strip()]
    return (errs[-1] if errs else default).strip().splitlines()[0][:400]


def parser_errors(parser) -> list[str]:
    """Every error of the ONNX parser as 'node NAME (OP): description'."""
    out = []
    for i in range(int(parser.num_errors)):
        err = parser.get_error(i)
        name = _call(err, "node_name") or ""
        op = _call(err, "node_operator") or ""
        node = _call(err, "node")
        desc = (_call(err, "desc") or str(err)).strip().splitlines()[0] if (_call(err, "desc") or str(err)) else ""
        where = f"node {name!r}" if name else (f"node #{node}" if node not in (None, -1) else "model")
        out.append(f"{where}{f' ({op})' if op else ''}: {desc[:300]}")
    return out


def _call(obj, method):
    fn = getattr(obj, method, None)
    if fn is None:
        return None
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


# ----------------------------------------------------------------------------------- layer precisions

_RECURRENT_RE = re.compile(r"lstm|gru|\brnn|loop|recurren|trip_?limit|iterator|scan", re.I)
_DENSE_RE = re.compile(r"gemm|matmul|matrix_?multiply|fully_?connected|linear|conv|head|attn", re.I)
_QDQ_RE = re.compile(r"quantize|dequantize|\bq_|\bdq_", re.I)
_MOVE_TYPES = {"reformat", "shuffle", "noop", "constant", "identity", "slice", "concatenation", "gather", "cast"}


def _precision_of(fmt: str) -> str | None:
    f = fmt.lower()
    if "int8" in f:
        return "INT8"
    if "fp8" in f:
        return "FP8"
    if "bf16" in f or "bfloat" in f:
        return "BF16"
    if "half" in f or "fp16" in f or "float16" in f:
        return "FP16"
    if "float" in f or "fp32" in f:
        return "FP32"
    if "int32" in f or "int64" in f or "bool" in f:
        return "INT"
    return None


def layer_group(name: str, layer_type: str) -> str:
    t = (layer_type or "").lower()
    if _RECURRENT_RE.search(name) or t in ("recurrence", "loopoutput", "triplimit", "iterator", "loop"):
        return "recurrent"
    if t in ("quantize", "dequantize") or _QDQ_RE.search(name):
        return "quantize"
    if _DENSE_RE.search(name) or t in ("matrixmultiply", "gemm", "caskgemm", "caskconvolution", "fullyconnected",
                                        "convolution"):
        return "dense"
    if t in _MOVE_TYPES:
        return "data movement"
    return "other"


def layer_precision_summary(engine_info: str | Mapping[str, Any]) -> dict[str, Any]:
    """Summarise TensorRT's engine-inspector JSON: which layers ran in which precision, by group
    (recurrent loop, dense, quantize, data movement, other). A layer's precision is that of its outputs'
    "Format/Datatype" (its inputs' when outputs say N/A)."""
    data = json.loads(engine_info) if isinstance(engine_info, str) else dict(engine_info)
    layers = data.get("Layers", [])
    rows, totals, groups = [], {}, {}
    for layer in layers:
        if isinstance(layer, str):  # ProfilingVerbosity.LAYER_NAMES_ONLY
            name, ltype, precs = layer, "", set()
        else:
            name, ltype = str(layer.get("Name", "")), str(layer.get("LayerType", ""))
            fmts = [str(t.get("Format/Datatype", "")) for t in layer.get("Outputs", []) if isinstance(t, dict)]
            precs = {p for p in map(_precision_of, fmts) if p and p != "INT"}
            if not precs:
                fmts = [str(t.get("Format/Datatype", "")) for t in layer.get("Inputs", []) if isinstance(t, dict)]
                precs = {p for p in map(_precision_of, fmts) if p and p != "INT"}
        prec = "+".join(sorted(precs)) if precs else "unknown"
        group = layer_group(name, ltype)
        rows.append({"name": name[:200], "type": ltype, "group": group, "precision": prec})
        totals[prec] = totals.get(prec, 0) + 1
        g = groups.setdefault(group, {})
        g[prec] = g.get(prec, 0) + 1
    return {"available": bool(layers), "layers": rows, "totals": totals, "groups": groups,
            "num_layers": len(rows)}


def summary_rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    """Rows [group, layers, precisions] for the CLI's table."""
    out = []
    for group in ("recurrent", "dense", "quantize", "data movement", "other"):
        g = summary.get("groups", {}).get(group)
        if g:
            out.append([group, sum(g.values()), ", ".join(f"{p} x{n}" for p, n in sorted(g.items()))])
    return out


# ------------------------------------------------------------------------------------------- the stage


def _intermediate_fp16(src: Path, out: Path) -> Path:
    try:
        from converters.fp16 import Fp16Options, quantize_fp16
    except ImportError as exc:
        raise BadInput(f"{src.name} is FP32 and this TensorRT builds FP16 only from an FP16 ONNX; "
                       f"converters.fp16 is unavailable ({exc})",
                       hint="run `edgelstm quantize MODEL.onnx --precision fp16 -o MODEL.fp16.onnx` and build that") from None
    quantize_fp16(src, out, Fp16Options())
    return out


def _intermediate_int8(src: Path, out: Path, calib, options: BuildOptions) -> Path:
    """Static Q/DQ quantization through the quantize stage (converters.int8): TensorRT's recipe
    (symmetric int8 inputs/weights of MatMul/Gemm, LSTM/GRU left float)."""
    try:
        from converters.int8 import Int8Options, quantize_int8
    except ImportError as exc:
        raise BadInput(f"{src.name} has no Q/DQ nodes and converters.int8 is unavailable ({exc})",
                       hint="run `edgelstm quantize MODEL.onnx --precision int8 --mode static --calib DATA` "
                            "and build that") from None
    method = str(options.calib_method)
    res = quantize_int8(src, out, Int8Options(mode="static", calib_method=method), calib=calib)
    return Path(getattr(res, "path", None) or out)


def _as_source(calib, spec: IOSpec, batch_size: int):
    """A calibration source from a path (.npz/.npy/.csv) or an already re-iterable source."""
    if calib is None or not isinstance(calib, (str, Path)):
        return calib
    from edgelstm.data import as_calibration_source, load_dataset

    ds = load_dataset(calib, spec)
    size = min(int(batch_size), ds.n)
    return as_calibration_source(ds, size, spec=spec, drop_last=True)


def build_engine(onnx_path: str | Path, out: str | Path, options: BuildOptions = BuildOptions(),
                 calib: Any = None, *, progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build a TensorRT engine from ONNX. `calib`: calibration data (a .npz/.npy/.csv path or a re-iterable
    source of feed dicts) for INT8 from a float ONNX. Raises BadInput (2), BackendMissing (3)."""
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    src, out = Path(onnx_path), Path(out)
    if not src.is_file():
        raise BadInput(f"ONNX model {src} does not exist")
    if out.suffix.lower() not in (".plan", ".engine", ".trt"):
        raise BadInput(f"the engine file should end in .plan or .engine, got {out.name}")
    precision = Precision(str(options.precision))
    check_range(options.batch, "--batch")
    check_range(options.seq, "--seq")
    if options.dla_core is not None and int(options.dla_core) < 0:
        raise BadInput(f"--dla-core must be >= 0, got {options.dla_core}")
    if options.dla_core is not None and precision == Precision.fp32:
        raise BadInput("DLA runs FP16 or INT8 layers only; use --precision fp16 or int8 with --dla-core")
    if options.dla_core is not None and options.hardware_compatible:
        raise BadInput("--hardware-compatible engines cannot target the DLA; drop one of the two")
    facts = onnx_facts(src)
    if options.calib_cache is not None and Path(options.calib_cache).is_dir():
        raise BadInput(f"--calib-cache {options.calib_cache} is a directory; give a file path")

    from edgelstm.artifacts import trt as trt_info

    say("loading TensorRT")
    trt = trt_info.import_tensorrt("edgelstm build")
    version = str(trt.__version__)
    v = trt_info.parse_version(version)
    strongly = v >= trt_info.STRONGLY_TYPED_FROM
    warnings: list[str] = []
    gpu = trt_info.gpu_info()

    # ------------------------------------------------------------------ what ONNX to parse, which flags
    flags: list[str] = []
    build_src = src
    made_by: str | None = None
    calibrator = None
    tmpdir = tempfile.TemporaryDirectory(prefix=".edgelstm-build-", dir=str(out.parent) if out.parent.is_dir() else None)
    try:
        work = Path(tmpdir.name)
        if precision == Precision.fp16:
            if strongly and facts.recurrent and v < trt_info.FP16_LSTM_STRONGLY_TYPED_FROM:
                raise BackendMissing(
                    f"TensorRT {version} cannot build a strongly typed FP16 engine for a recurrent model "
                    f"({', '.join(sorted(facts.ops & RECURRENT_OPS))}): that needs TensorRT >= 10.14",
                    hint="upgrade TensorRT (docker/Dockerfile.tensorrt pins a 10.14 image) or build --precision fp32")
            if strongly and not facts.fp16:
                say("converting the model to FP16 (strongly typed build)")
                build_src = _intermediate_fp16(src, work / f"{src.stem}.fp16.onnx")
                made_by = "converters.fp16.quantize_fp16"
            elif not strongly:
                flags.append("FP16")
        elif precision == Precision.int8:
            if strongly and options.calib_cache is not None:
                warnings.append(f"--calib-cache is for TensorRT < 10.12 calibrators; TensorRT {version} builds INT8 "
                                "from Q/DQ nodes, so the cache is not used")
            if strongly:
                if not facts.has_qdq:
                    if calib is None:
                        raise BadInput("INT8 needs calibration data or a Q/DQ ONNX: pass --calib DATA, or build "
                                       "an ONNX from `edgelstm quantize --precision int8 --mode static`")
                    say("quantizing to a static Q/DQ ONNX (strongly typed INT8)")
                    build_src = _intermediate_int8(src, work / f"{src.stem}.int8.onnx", _as_source(
                        calib, facts.io, options.calib_batch_size), options)
                    made_by = "converters.int8.quantize_int8"
            else:
                flags.append("INT8")
                if not facts.has_qdq:
                    cache_ok = options.calib_cache is not None and Path(options.calib_cache).is_file()
                    if calib is None and not cache_ok:
                        raise BadInput("INT8 needs calibration data or a Q/DQ ONNX: pass --calib DATA (or an "
                                       "existing --calib-cache FILE), or build a Q/DQ ONNX from `edgelstm quantize`")
                    from calibration.trt_calibrator import make_calibrator

                    source = None if cache_ok else _as_source(calib, facts.io, options.calib_batch_size)
                    calibrator = make_calibrator(
                        trt, source, cache_file=options.calib_cache, method=str(options.calib_method),
                        input_dtypes={t.name: (np.float16 if t.dtype == "float16" else np.float32)
                                      for t in facts.io.inputs})
        if options.version_compatible:
            flags.append("VERSION_COMPATIBLE")
        if options.dla_core is not None and options.gpu_fallback:
            flags.append("GPU_FALLBACK")

        # ------------------------------------------------------------------------------ network
        logger = make_logger(trt)
        builder = trt.Builder(logger)
        net_flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if strongly else 0
        network = builder.create_network(net_flags)
        parser = trt.OnnxParser(network, logger)
        say(f"parsing {build_src.name}")
        if not parser.parse(build_src.read_bytes(), str(build_src)):
            errs = parser_errors(parser) or logger.errors() or ["unknown parser error"]
            raise BadInput(f"TensorRT {version} cannot parse {src.name}: " + "; ".join(errs[:6])
                           + (f" (+{len(errs) - 6} more)" if len(errs) > 6 else ""),
                           hint="replace the unsupported op(s) or re-export (edgelstm convert)")
        built_facts = onnx_facts(build_src) if build_src != src else facts

        config = builder.create_builder_config()
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        if options.workspace_bytes:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_bytes))
        for flag in flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))

        net_inputs = []
        for i in range(int(network.num_inputs)):
            tensor = network.get_input(i)
            net_inputs.append((tensor.name, _dims(tensor.shape)))
        shapes = plan_profile(net_inputs, built_facts.io, options.batch, options.seq)
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)

        # ------------------------------------------------------------------ calibration (10.x only)
        calib_info = None
        if calibrator is not None:
            feeder = calibrator.feeder
            if feeder.source is None:  # reuse the cache: calibrate (nothing) at the opt shapes
                calib_shapes = {n: s[1] for n, s in shapes.items()}
            else:
                say("reading calibration data")
                calib_shapes = feeder.first_batch_shapes()
                missing = [n for n in shapes if n not in calib_shapes]
                if missing:
                    raise BadInput(f"calibration data lacks input(s) {missing}; it has {sorted(calib_shapes)}")
            cprof = builder.create_optimization_profile()
            for name in shapes:
                cprof.set_shape(name, calib_shapes[name], calib_shapes[name], calib_shapes[name])
            config.set_calibration_profile(cprof)
            config.int8_calibrator = calibrator

        # ------------------------------------------------------------------------ timing cache
        tc_info = None
        if options.timing_cache is not None:
            tc_path = Path(options.timing_cache)
            blob = tc_path.read_bytes() if tc_path.is_file() else b""
            cache = config.create_timing_cache(blob)
            accepted = config.set_timing_cache(cache, False)
            reused = bool(blob) and accepted is not False
            if blob and accepted is False:
                warnings.append(f"timing cache {tc_path.name} is from another TensorRT version or GPU; started afresh")
                cache = config.create_timing_cache(b"")
                config.set_timing_cache(cache, False)
            tc_info = {"file": str(tc_path), "reused": reused, "loaded_bytes": len(blob)}

        # ------------------------------------------------------------------------- DLA, compat
        dla_info = None
        if options.dla_core is not None:
            cores = int(builder.num_DLA_cores)
            if cores == 0:
                raise BadInput(f"--dla-core {options.dla_core}: this device has no DLA "
                               "(DLA cores exist on Jetson AGX/NX Orin and Xavier)")
            if options.dla_core >= cores:
                raise BadInput(f"--dla-core {options.dla_core}: this device has {cores} DLA core(s), 0..{cores - 1}")
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = int(options.dla_core)
            on_gpu = [network.get_layer(i).name for i in range(int(network.num_layers))
                      if not config.can_run_on_DLA(network.get_layer(i))]
            if on_gpu and not options.gpu_fallback:
                raise BadInput(f"{len(on_gpu)} layer(s) cannot run on the DLA (e.g. {on_gpu[0]!r}) and GPU "
                               "fallback is off; drop --no-gpu-fallback")
            dla_info = {"core": int(options.dla_core), "num_cores": cores, "gpu_fallback": bool(options.gpu_fallback),
                        "layers_on_gpu": on_gpu, "num_layers": int(network.num_layers)}
            if on_gpu:
                warnings.append(f"{len(on_gpu)} of {int(network.num_layers)} layers fall back from DLA to the GPU")
        hw_level = "none"
        if options.hardware_compatible:
            cc = (gpu or {}).get("compute_capability")
            if cc and trt_info.parse_version(cc) < (8, 0, 0):
                raise BadInput(f"--hardware-compatible engines need an Ampere or newer GPU (compute capability "
                               f">= 8.0); this GPU ({(gpu or {}).get('name')}) is {cc}")
            config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
            hw_level = "ampere_plus"

        # ------------------------------------------------------------------------------ build
        say(f"building the {precision.value} engine ({'strongly typed' if strongly else 'builder flags'})")
        serialized = builder.build_serialized_network(network, config)
        feeder_error = getattr(getattr(calibrator, "feeder", None), "error", None)
        if feeder_error is not None:
            raise feeder_error if isinstance(feeder_error, EdgeLSTMError) else BadInput(
                f"calibration failed: {type(feeder_error).__name__}: {feeder_error}")
        if serialized is None:
            raise BadInput(f"TensorRT {version} could not build an engine from {src.name}: "
                           + _first_error(logger, "no reason given (rerun with EDGELSTM_DEBUG=1)"),
                           hint="check the profile ranges and --workspace; see the TensorRT error above")
        plan = bytes(memoryview(serialized))
        if options.timing_cache is not None:
            write_bytes_atomic(options.timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
        if calibrator is not None:
            calib_info = calibrator.feeder.stats()
            calibrator.feeder.close()
            calib_info["method"] = str(options.calib_method)

        # ------------------------------------------------- load it back: I/O and per-layer precision
        say("inspecting the engine")
        engine_io, layers = _inspect(trt, plan, logger, shapes, built_facts.io, options)
        profiles = {n: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for n, s in shapes.items()}

        # ------------------------------------------------------------------------------ write
        from edgelstm.artifacts.manifest import write_manifest

        write_bytes_atomic(out, plan)
        if options.keep_intermediate is not None and build_src != src:
            keep = Path(options.keep_intermediate)
            keep = keep / build_src.name if keep.is_dir() else keep
            write_bytes_atomic(keep, build_src.read_bytes())
        details = {
            "tensorrt": {"version": version, "route": "strongly-typed" if strongly else "builder-flags",
                         "strongly_typed": strongly, "flags": flags},
            "gpu": gpu,
            "profiles": [profiles],
            "hardware_compatibility": hw_level,
            "version_compatible": bool(options.version_compatible),
            "dla": dla_info,
            "layer_precision": {k: layers[k] for k in ("available", "totals", "groups", "num_layers", "reason")
                                if k in layers} | {"layers": layers.get("layers", [])[:500]},
            "source_onnx": {"file": src.name, "sha256": sha256_file(src), "precision": facts.precision},
            "built_from": None if build_src == src else {"made_by": made_by, "sha256": sha256_file(build_src),
                                                         "precision": built_facts.precision},
            "calibration": calib_info,
            "timing_cache": tc_info,
            "workspace_bytes": options.workspace_bytes,
            "warnings": warnings + [f"TensorRT: {w[:300]}" for w in logger.warnings()[-5:]],
            "rebuild": rebuild_command(src.name, out.name, precision.value, shapes, options),
        }
        seconds = time.perf_counter() - t0
        details["build_seconds"] = round(seconds, 3)
        manifest = write_manifest(out, kind="engine", precision=precision.value, parent=src, io=engine_io,
                                  details=details)
        return BuildResult(path=out, precision=precision.value, tensorrt_version=version,
                           route=details["tensorrt"]["route"], flags=flags, io=engine_io, profiles=profiles,
                           layer_precision=layers, gpu=gpu, built_from=build_src, timing_cache=tc_info,
                           calibration=calib_info, dla=dla_info, hardware_compatibility=hw_level,
                           version_compatible=bool(options.version_compatible), warnings=details["warnings"],
                           seconds=seconds, manifest=manifest)
    finally:
        if calibrator is not None:
            try:
                calibrator.feeder.close()
            except Exception:  # noqa: BLE001
                pass
        tmpdir.cleanup()


def rebuild_command(onnx_name: str, out_name: str, precision: str, shapes: Mapping[str, Any],
                    options: BuildOptions) -> str:
    parts = [f"edgelstm build {onnx_name} -o {out_name} --precision {precision}"]
    if options.batch:
        parts.append("--batch " + ":".join(map(str, options.batch)))
    if options.seq:
        parts.append("--seq " + ":".join(map(str, options.seq)))
    if precision == "int8":
        parts.append("--calib DATA")
    if options.dla_core is not None:
        parts.append(f"--dla-core {options.dla_core}")
    return " ".join(parts)


def _inspect(trt, plan: bytes, logger, shapes, onnx_io: IOSpec, options: BuildOptions):
    """Deserialize the fresh engine (it must load), read its I/O and the inspector's per-layer precision."""
    runtime = trt.Runtime(logger)
    if options.version_compatible:
        runtime.engine_host_code_allowed = True
    if options.dla_core is not None:
        runtime.DLA_core = int(options.dla_core)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise InternalError("TensorRT built an engine it cannot load back: " + _first_error(logger, "no reason given"))
    engine_io = engine_iospec(engine, trt, onnx_io)
    try:
        inspector = engine.create_engine_inspector()
        try:
            context = engine.create_execution_context()
            for name, (_lo, opt, _hi) in shapes.items():
                context.set_input_shape(name, opt)
            inspector.execution_context = context  # concrete formats instead of "N/A due to dynamic shapes"
        except Exception:  # noqa: BLE001 - the engine-level information is still useful
            pass
        info = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        layers = layer_precision_summary(info)
    except Exception as exc:  # noqa: BLE001
        layers = {"available": False, "reason": f"engine inspector failed: {type(exc).__name__}: {exc}"[:300],
                  "layers": [], "totals": {}, "groups": {}, "num_layers": 0}
    return engine_io, layers


def engine_iospec(engine, trt, onnx_io: IOSpec | None = None) -> IOSpec:
    """The engine's I/O as an IOSpec: TensorRT dtypes, ONNX's symbolic axis names for dynamic (-1) dims."""
    ref = {t.name: t for t in ((*onnx_io.inputs, *onnx_io.outputs) if onnx_io else ())}
    ins, outs = [], []
    for i in range(int(engine.num_io_tensors)):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        dims = []
        for axis, d in enumerate(_dims(engine.get_tensor_shape(name))):
            if d >= 0:
                dims.append(d)
            else:
                sym = ref[name].shape[axis] if name in ref and axis < len(ref[name].shape) else "?"
                dims.append(sym if isinstance(sym, str) else "?")
        state = name in (STATE_INPUTS if is_input else STATE_OUTPUTS) or bool(name in ref and ref[name].state)
        spec = TensorSpec(name, dtype_name(engine.get_tensor_dtype(name)), tuple(dims), state)
        (ins if is_input else outs).append(spec)
    return IOSpec(tuple(ins), tuple(outs))
