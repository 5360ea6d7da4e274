"""ONNX FP32 -> INT8 with onnxruntime's quantizer, and an op-by-op account of what became int8 and why
the rest stayed float.

- ``dynamic``: weights int8 ahead of time, activations quantized per call. LSTM becomes
  ``DynamicQuantizeLSTM``; MatMul and Gemm (rewritten to MatMul + Add) become ``MatMulInteger``; Loop/If
  bodies are quantized too unless ``subgraphs=False``. GRU has no int8 kernel in onnxruntime.
- ``static``: Q/DQ format for TensorRT and onnxruntime, calibrated on a re-iterable source with
  ``edgelstm.calibration.ranges`` (minmax / entropy / percentile; one range implementation for every backend).
  Default scope is TensorRT's recipe: int8 inputs and weights of MatMul/Gemm/Conv, symmetric (zero point 0),
  outputs left float. LSTM/GRU stay float (no Q/DQ recurrent op; TensorRT cannot run them in INT8 either).

The model is pre-processed first (``quant_pre_process`` shape inference, without graph optimizations so
that node names, which ``--exclude`` and the report use, survive). ``Int8Quantizer`` keeps the prepared
model and the calibration ranges so that the accuracy fallback can quantize many times cheaply.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np

from edgelstm.machine.isa import TargetCpu
from edgelstm.errors import BadInput, InternalError, opt
from edgelstm.options import DEFAULT_CALIB_METHOD, CalibMethod, Precision, QuantMode, RangeSource, WeightType
from edgelstm.safe_files import private_tempdir

from edgelstm.artifacts.onnx_graph import (
    FLOAT, load_onnx, name_unnamed_nodes, reject_quantized, resolve_patterns, topological_sort,
    value_types, walk,
)
from edgelstm.converters.quantize.int8_report import STATIC_DEFAULT_OPS
from edgelstm.converters.quantize.int8_target import Int8Recipe, choose_int8_recipe
from edgelstm.converters.quantize.quant_report import OpRow, QuantResult, write_quantized

RANGE_SOURCES = tuple(r.value for r in RangeSource)


@dataclass(frozen=True)
class Int8Options:
    """The INT8 quantize config (dynamic or static by ``mode``): its type is the precision."""

    precision: ClassVar[Precision] = Precision.int8
    mode: QuantMode = QuantMode.dynamic
    calib_method: CalibMethod = DEFAULT_CALIB_METHOD
    exclude: tuple[str, ...] = ()            # node names (globs) or op types kept in float
    per_channel: bool = False
    reduce_range: bool | None = None         # 7-bit weights; None: chosen for the target CPU
    target: TargetCpu = TargetCpu.auto       # the CPUs the file must not saturate on (auto: portable = all)
    weight_type: str | None = None           # dynamic: "s8" (default) or "u8"
    subgraphs: bool = True                   # dynamic: quantize Loop/If bodies too
    percentile: float = 99.999               # calib_method=percentile
    min_calib_samples: int = 16              # static: fewer calibration sequences is bad input
    op_types: tuple[str, ...] | None = None  # None: dynamic -> onnxruntime's set; static -> STATIC_DEFAULT_OPS
    quantize_outputs: bool = False           # static: also Q/DQ the outputs of quantized ops (onnxruntime's default)
    symmetric_activations: bool = True       # static: zero point 0 (TensorRT requires it)
    range_source: RangeSource = RangeSource.edgelstm  # edgelstm.calibration.ranges, or onnxruntime's calibrators
    layer_precisions: tuple = ()             # edgelstm.converters.quantize.layer_precision requests ("recurrent:fp32"): kept FP32
    probe: bool = True                       # probe an onnxruntime session (child process) before writing

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", QuantMode(self.mode))
        object.__setattr__(self, "calib_method", CalibMethod(self.calib_method))
        object.__setattr__(self, "target", TargetCpu(self.target))
        if self.range_source not in RANGE_SOURCES:
            raise BadInput(f"range_source must be one of {RANGE_SOURCES}, got {self.range_source!r}")
        object.__setattr__(self, "range_source", RangeSource(self.range_source))
        if not 0 < self.percentile <= 100:
            raise BadInput(f"{opt('percentile')} must be in (0, 100], got {self.percentile}")

    def recipe(self) -> Int8Recipe:
        """The weight type / reduce_range / onnxruntime levels that do not saturate on the target."""
        return choose_int8_recipe(self.target, self.mode, reduce_range=self.reduce_range,
                                  weight_type=self.weight_type)


@contextlib.contextmanager
def quiet_ort() -> Any:
    """onnxruntime's quantizer logs warnings on the root logger and may print: keep stdout (--json) clean."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def working_directory(path: Path) -> Any:
    """Run a third-party step that writes scratch files into the current directory inside ``path``."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _ort_method(method: CalibMethod):
    from onnxruntime.quantization import CalibrationMethod

    return {CalibMethod.minmax: CalibrationMethod.MinMax, CalibMethod.entropy: CalibrationMethod.Entropy,
            CalibMethod.percentile: CalibrationMethod.Percentile}[method]


def preprocess(model, workdir: Path) -> tuple[Path, str]:
    """Shape inference for the quantizer (symbolic, then ONNX), no graph optimizations: names survive."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    named = workdir / "named.onnx"
    onnx.save(model, str(named))
    pre = workdir / "pre.onnx"
    errors = []
    for kwargs, note in (({}, "symbolic + ONNX shape inference"),
                         ({"skip_symbolic_shape": True}, "ONNX shape inference (symbolic inference failed)")):
        try:
            # onnxruntime writes scratch files (sym_shape_infer_temp.onnx) into the working directory: keep them
            # in our private temp directory, never over a user's file
            with quiet_ort(), working_directory(workdir):
                quant_pre_process(str(named.resolve()), str(pre.resolve()), skip_optimization=True, **kwargs)
            return pre, note
        except Exception as exc:  # noqa: BLE001 - try the next, weaker pre-processing
            errors.append(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
    shutil.copyfile(named, pre)
    return pre, f"none (shape inference failed: {errors[-1]})"


def _tensors_data(ranges: Mapping[str, Any], method: CalibMethod):
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    data = {name: TensorData(lowest=np.array(r.lo, dtype=np.float32), highest=np.array(r.hi, dtype=np.float32))
            for name, r in ranges.items()}
    return TensorsData(_ort_method(method), data)


class Int8Quantizer:
    """A prepared INT8 quantization of one model: load + checks + pre-processing + calibration done once,
    then ``quantize(keep_float)`` as often as needed (the accuracy fallback). Use as a context manager."""

    precision = Precision.int8

    def __init__(self, src: str | Path, options: Int8Options = Int8Options(),
                 calib: Iterable[Mapping[str, np.ndarray]] | None = None):
        self.src = Path(src)
        self.options = options
        self.calib = calib
        self._tmp = private_tempdir("int8")
        self.workdir = Path(self._tmp.name)
        self.calibration: dict[str, Any] = {}
        self.cache: Path | None = None
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Int8Quantizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    # ------------------------------------------------------------------------------------------ prepare

    def _prepare(self) -> None:
        import onnx

        o = self.options
        self.recipe = o.recipe()
        if o.mode == QuantMode.static and self.calib is None:
            raise BadInput(f"{opt('mode')} static needs calibration data: pass {opt('calib')} DATA (.npz/.npy/.csv)")
        self.parent = load_onnx(self.src)
        reject_quantized(self.parent, self.src.name, target="INT8 quantization")
        model = onnx.ModelProto()
        model.CopyFrom(self.parent)
        name_unnamed_nodes(model)
        topological_sort(model.graph)
        self.excluded, self.exclude_patterns = (resolve_patterns(model, o.exclude) if o.exclude else (set(), {}))
        if o.layer_precisions:
            from edgelstm.converters.quantize.layer_precision import kept_fp32

            self.layer_kept = kept_fp32(model, o.layer_precisions, target="int8")
            self.excluded = set(self.excluded) | set(self.layer_kept)
        self.pre_path, self.preprocess_note = preprocess(model, self.workdir)
        self.pre = onnx.load(str(self.pre_path))
        self.types = value_types(self.pre)
        self.initializers = {i.name for _, g, _ in walk(self.pre.graph) for i in g.initializer} | \
            {i.name for i in self.pre.graph.initializer}
        if o.mode == QuantMode.static:
            self._calibrate()

    def _io(self):
        from edgelstm.artifacts.artifact import io_spec_of

        return io_spec_of(self.src, self.parent)

    def _calibrate(self) -> None:
        from edgelstm.calibration.ort_reader import OrtCalibrationReader, check_calibration, collect_activation_ranges

        o = self.options
        io_spec = self._io()
        samples, batches = check_calibration(self.calib, io_spec, min_samples=o.min_calib_samples)  # type: ignore[arg-type]
        self.cache = self.workdir / "calibration.json"
        if o.range_source == RangeSource.edgelstm:
            from onnxruntime.quantization.calibrate import save_tensors_data

            ranges = collect_activation_ranges(self.pre, self.calib, io=io_spec,  # type: ignore[arg-type]
                                               method=o.calib_method, percentile=o.percentile,
                                               names=self._calibrated_tensors())
            save_tensors_data(_tensors_data(ranges, o.calib_method), self.cache)
            tensors = len(ranges)
        else:
            self._reader = OrtCalibrationReader(self.calib, io=io_spec)  # type: ignore[arg-type]
            tensors = None
        self.calibration = {"samples": samples, "batches": batches, "data": getattr(self.calib, "source", None) or None,
                            "method": o.calib_method.value,
                            "percentile": o.percentile if o.calib_method == CalibMethod.percentile else None,
                            "range_source": o.range_source, "tensors": tensors}

    def _calibrated_tensors(self) -> list[str]:
        """Activations the Q/DQ quantizer needs ranges for: inputs and outputs of the quantized op types in
        the main graph (weights get their ranges from the weights themselves)."""
        ops = set(self._op_types() or STATIC_DEFAULT_OPS)
        names: list[str] = []
        for node in self.pre.graph.node:
            if node.op_type in ops:
                for t in (*node.input, *node.output):
                    if t and t not in self.initializers and self.types.get(t) == FLOAT and t not in names:
                        names.append(t)
        return names

    # ------------------------------------------------------------------------------------------ quantize

    def _op_types(self) -> list[str] | None:
        o = self.options
        if o.op_types:
            return list(o.op_types)
        return None if o.mode == QuantMode.dynamic else list(STATIC_DEFAULT_OPS)

    def _exclusions(self, keep: Iterable[str]) -> list[str]:
        names = set(self.excluded) | set(keep)
        gemms = {n.name for _, _, n in walk(self.pre.graph) if n.op_type == "Gemm"}
        # onnxruntime rewrites Gemm to '<name>_MatMul' + '<name>_Add' before it reads the exclusion list
        return sorted(names | {f"{n}_MatMul" for n in names & gemms})

    def quantize(self, keep_float: Mapping[str, str] | Iterable[str] = ()) -> tuple[Any, list[OpRow]]:
        """Quantize with ``keep_float`` (node names, or {name: reason}) also left in float.
        Returns (onnx.ModelProto, report rows)."""
        import onnx
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

        keep = dict(keep_float) if isinstance(keep_float, Mapping) else {k: "kept float" for k in keep_float}
        o = self.options
        out = self.workdir / "quantized.onnx"
        if out.exists():
            out.unlink()
        excl = self._exclusions(keep)
        try:
            with quiet_ort(), working_directory(self.workdir):
                if o.mode == QuantMode.dynamic:
                    quantize_dynamic(str(self.pre_path), str(out), op_types_to_quantize=self._op_types(),
                                     per_channel=o.per_channel, reduce_range=self.recipe.reduce_range,
                                     weight_type=QuantType.QUInt8 if self.recipe.weight_type == WeightType.u8
                                     else QuantType.QInt8, nodes_to_exclude=excl,
                                     extra_options={"EnableSubgraph": o.subgraphs, "MatMulConstBOnly": True})
                else:
                    ops = self._op_types() or list(STATIC_DEFAULT_OPS)
                    extra = {"ActivationSymmetric": o.symmetric_activations, "WeightSymmetric": True}
                    if not o.quantize_outputs:
                        extra["OpTypesToExcludeOutputQuantization"] = ops
                    if o.calib_method == CalibMethod.percentile:
                        extra["CalibPercentile"] = o.percentile
                    reader = getattr(self, "_reader", None) if not self.cache.exists() else None  # type: ignore[union-attr]
                    quantize_static(str(self.pre_path), str(out), calibration_data_reader=reader,
                                    quant_format=QuantFormat.QDQ, op_types_to_quantize=ops,
                                    per_channel=o.per_channel, reduce_range=self.recipe.reduce_range,
                                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                    nodes_to_exclude=excl, calibrate_method=_ort_method(o.calib_method),
                                    calibration_cache_path=str(self.cache), extra_options=extra)
                    if self.calibration.get("tensors") is None and self.cache.exists():
                        from onnxruntime.quantization.calibrate import load_tensors_data

                        self.calibration["tensors"] = len(load_tensors_data(self.cache).data)
        except BadInput:
            raise
        except Exception as exc:  # noqa: BLE001
            raise InternalError(f"onnxruntime's {o.mode.value} quantizer failed on {self.src.name}: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0][:240] if str(exc) else ''}") from None
        model = onnx.load(str(out))
        topological_sort(model.graph)
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # noqa: BLE001
            raise InternalError(f"the INT8 model fails the ONNX checker: {str(exc).splitlines()[0][:240]}") from None
        return model, self.rows(model, keep)

    # ------------------------------------------------------------------------------------------ report

    def rows(self, qmodel, keep: Mapping[str, str]) -> list[OpRow]:
        from edgelstm.converters.quantize.int8_report import report_rows

        return report_rows(self, qmodel, keep)

    # ------------------------------------------------------------------------------------------ write

    def details(self) -> dict[str, Any]:
        o = self.options
        d: dict[str, Any] = {
            "precision": "int8", "mode": o.mode.value,
            "method": o.calib_method.value if o.mode == QuantMode.static else None,
            "excluded": sorted(self.excluded), "exclude_patterns": dict(self.exclude_patterns),
            "per_channel": o.per_channel, "reduce_range": self.recipe.reduce_range,
            "weight_type": self.recipe.weight_type, "target": self.recipe.to_dict(o.target.value),
            "preprocess": self.preprocess_note,
            "op_types": self._op_types() or "onnxruntime default",
        }
        if o.mode == QuantMode.dynamic:
            d["subgraphs"] = o.subgraphs
        else:
            d.update({"format": "QDQ", "activations": "int8 symmetric" if o.symmetric_activations else "int8",
                      "weights": "int8 symmetric", "quantize_outputs": o.quantize_outputs,
                      "calibration": dict(self.calibration)})
        return d

    def write(self, model, rows: list[OpRow], out: str | Path, extra: Mapping[str, Any] | None = None) -> QuantResult:
        d = self.details()
        d.update(extra or {})
        if not any(r.precision == "int8" for r in rows):
            d["warning"] = "no node became int8"
        d["saturation"] = saturation_check(model, self.recipe)
        if d["saturation"]["can_saturate_on_target"]:
            d["target"]["saturation_safe"] = False
            d.setdefault("warning", d["saturation"]["message"])
        from edgelstm.artifacts.int8_metadata import int8_entries, set_entries

        r = self.recipe
        d["metadata_props"] = int8_entries(str(r.target), r.ort_levels, r.weight_type, r.reduce_range,
                                           saturating_pairs=d["saturation"]["saturating_on_x86_avx2"])
        set_entries(model, d["metadata_props"])  # the file says what it needs, also without its manifest
        return write_quantized(model, self.src, Path(out), precision=Precision.int8, parent_model=self.parent,
                               rows=rows, details=d, probe=self.options.probe, levels=self.recipe.ort_levels,
                               target_isa=str(self.recipe.target))


def saturation_check(model, recipe: Int8Recipe) -> dict[str, Any]:
    """Read the quantized file: how many s8 weight pairs could saturate a u8×s8 kernel without VNNI, counting
    the weights the integer kernels read at the level the file will run (unfused Q/DQ at "basic" is float)."""
    from edgelstm.converters.quantize.int8_saturation import describe, saturating_pairs
    from edgelstm.converters.quantize.int8_target import must_hold_without_vnni

    r = saturating_pairs(model, qdq=recipe.ort_levels[0] != "basic")
    risky = must_hold_without_vnni(str(recipe.target)) and bool(r["saturating"])
    out = {"pairs": r["pairs"], "saturating_on_x86_avx2": r["saturating"], "summary": describe(r),
           "can_saturate_on_target": risky}
    if risky:
        where = "x86-avx2" if recipe.target in ("portable", "tensorrt") else recipe.target
        out["message"] = (f"{r['saturating']} int8 weight pair(s) of this file can saturate on {where} "
                          f"(u8×s8 without VNNI); drop --no-reduce-range / --weight-type to let edgelstm choose 7-bit "
                          "weights")
    return out


def check_output_path(src: Path, out: Path) -> None:
    if out.suffix.lower() != ".onnx":
        raise BadInput(f"the output must end in .onnx, got {out.name}")
    if src.exists() and out.exists() and out.resolve() == src.resolve():
        raise BadInput("the output would overwrite the input model; pass another -o path")


def quantize_int8(src: str | Path, out: str | Path, options: Int8Options = Int8Options(),
                  calib: Iterable[Mapping[str, np.ndarray]] | None = None) -> QuantResult:
    """FP32 ONNX -> INT8 ONNX at ``out`` (+ manifest with the op-by-op report). ``calib`` (static mode) is a
    re-iterable source of feed dicts. Nothing is written on failure."""
    src, out = Path(src), Path(out)
    check_output_path(src, out)
    with Int8Quantizer(src, options, calib) as q:
        model, rows = q.quantize()
        return q.write(model, rows, out)


__all__ = ["Int8Options", "Int8Quantizer", "quantize_int8", "STATIC_DEFAULT_OPS", "preprocess", "quiet_ort",
           "check_output_path"]
