"""`edgelstm quantize`: FP32 ONNX -> FP16 or INT8 ONNX, with an op-by-op report and an accuracy fallback."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.machine import isa as cpu_isa
from edgelstm.options import TargetCpu
from edgelstm.errors import BadInput
from edgelstm.options import CalibMethod, Precision, QuantizePrecision, QuantMode
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.data_options import FeaturesOpt, GroupOpt, StrideOpt, WindowOpt
from edgelstm.cli.vocabulary import output_option

HELP = """Quantize an FP32 ONNX model to FP16 or INT8 and say, op by op, what became FP16/INT8 and what stayed float and why. The result gets a manifest (precision, parent, report, sizes).

FP16: weights and compute in float16 with float32 inputs/outputs (for GPUs and TensorRT); Loop/If bodies are converted too, LSTM/GRU integer inputs stay int32. FP16 on CPU is slower than FP32: it is for GPUs.

INT8 --mode dynamic (default): int8 weights, activations quantized per call; LSTM becomes DynamicQuantizeLSTM, MatMul/Gemm MatMulInteger; GRU has no int8 kernel in onnxruntime and stays float.

INT8 --mode static (or --precision int8-static): Q/DQ (the format TensorRT builds INT8 from), calibrated on --calib DATA (minmax ranges unless --calib-method); LSTM/GRU stay float (no tool quantizes the recurrent core), the dense layers around them become int8.

INT8 target: on x86 CPUs without VNNI (AVX2-only, AVX-512 without VNNI) onnxruntime's u8×s8 int8 kernel saturates 8-bit weights. The default --target-cpu auto (= portable) writes 7-bit weights, which every CPU class computes exactly at every onnxruntime level: the file drifts the same everywhere. Name a class (x86-vnni, x86-amx, arm64; native = this machine) for full 8-bit weights on that class only, or tensorrt (static) for TensorRT's 8-bit recipe. The target and the onnxruntime levels the file allows go into its manifest and its ONNX metadata_props; validate/bench warn when they run it on another class.

Accuracy fallback: --data DATA --max-drift "rel_l2<=0.01" keeps the most drift-sensitive nodes in float until the outputs stay within the budget of the FP32 model's, or fails with exit code 1.

Examples:

  edgelstm quantize model.onnx --precision fp16 -o model.fp16.onnx

  edgelstm quantize model.onnx --precision int8 -o model.int8.onnx

  edgelstm quantize model.onnx --precision int8 --target-cpu x86-avx2 -o model.avx2.int8.onnx

  edgelstm quantize model.onnx --precision int8-static --calib calib.npz -o model.qdq.onnx

  edgelstm quantize model.onnx --precision int8 --data val.npz --max-drift "rel_l2<=0.01" -o model.int8.onnx
"""


def _model_io(path: Path):
    from edgelstm.artifacts.artifact import io_spec_of

    return io_spec_of(path)


def _load(path: Path, io, csv: dict):
    from edgelstm.data import load_dataset

    ds = load_dataset(path, io, **csv)
    return ds.for_spec(io)


def _synthetic_calibration(io, n: int, batch_size: int):
    """--calib-synthetic N: N seeded standard-normal sequences (60 steps, or the model's fixed length)."""
    from edgelstm.data import as_calibration_source, synthetic_dataset

    ds = synthetic_dataset(io, n, seq=60, seed=0)  # a fixed-shape model keeps its own length
    ds.source = "synthetic data (seeded N(0,1) noise, as --calib-synthetic asks)"
    return as_calibration_source(ds, batch_size, spec=io)


def quantize(
    model: Path = typer.Argument(..., metavar="MODEL.onnx", help="The FP32 ONNX model (e.g. from `edgelstm convert`).", show_default=False),
    out: Path = output_option("OUT.onnx", "Where to write the quantized ONNX (a <file>.json manifest goes beside it)."),
    precision: QuantizePrecision = typer.Option(..., "--precision", "-p", help="fp16, int8 (with --mode), or int8-dynamic / int8-static (the pipeline's names).", case_sensitive=False),
    mode: Optional[QuantMode] = typer.Option(None, "--mode", help="INT8 only: dynamic (default; no calibration) or static (Q/DQ, needs --calib).", case_sensitive=False),
    calib: Optional[Path] = typer.Option(None, "--calib", metavar="DATA", help="Static INT8: calibration data (.npz/.npy/.csv), at least 16 sequences like the real inputs."),
    calib_synthetic: Optional[int] = typer.Option(None, "--calib-synthetic", metavar="N", show_default=False, help="Static INT8 without data: calibrate on N seeded N(0,1) sequences of 60 steps (the model's own length when fixed). Noise, not your inputs: ranges can be far off, and the manifest and reports say 'calibrated on synthetic data'. Prefer --calib."),
    calib_method: Optional[CalibMethod] = typer.Option(None, "--calib-method", help="Static INT8: how activation ranges are chosen: minmax (default, as in build and the pipeline), entropy (KL) or percentile.", case_sensitive=False),
    percentile: float = typer.Option(99.999, "--percentile", metavar="P", help="For --calib-method percentile: the percentile of |x| used as the range."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", metavar="PATTERN", help="Keep these in float: node names, globs over names ('/rnn/*') or op types (GRU, MatMul). Repeatable or comma-separated; a pattern that matches nothing is an error."),
    layer_precisions: Optional[List[str]] = typer.Option(None, "--layer-precisions", metavar="PATTERN:PRECISION", show_default=False, help="Keep chosen layers in FP32: PATTERN is a node name, glob, op type or 'recurrent' (every LSTM/GRU/RNN and loop), e.g. recurrent:fp32,/head/*:fp16. Repeatable or comma-separated."),
    per_channel: bool = typer.Option(False, "--per-channel", help="INT8: one scale per output channel of each weight (more accurate, slightly slower)."),
    target_cpu: TargetCpu = typer.Option(TargetCpu.auto, "--target-cpu", help="INT8: the CPUs the file must compute exactly on: auto = portable (7-bit weights, every x86 and arm64 class, any onnxruntime level), native (this machine's class), x86-amx, x86-vnni, arm64 (full 8-bit weights for that class), x86-avx2 (x86 without VNNI) or tensorrt (static: TensorRT's 8-bit recipe).", case_sensitive=False),
    reduce_range: Optional[bool] = typer.Option(None, "--reduce-range/--no-reduce-range", help="INT8: force 7-bit weights on/off (default: chosen for --target-cpu).", show_default=False),
    weight_type: Optional[str] = typer.Option(None, "--weight-type", metavar="s8|u8", help="Dynamic INT8: s8 (default) or u8 weights (u8 runs onnxruntime's non-saturating u8×u8 kernel).", show_default=False),
    no_subgraphs: bool = typer.Option(False, "--no-subgraphs", help="Dynamic INT8: leave Loop/If bodies float."),
    fp16_io: bool = typer.Option(False, "--fp16-io", help="FP16: make the graph inputs/outputs float16 too (default: float32 I/O with casts inside)."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="DATA", help="Data for the accuracy fallback (.npz/.npy/.csv): drift is measured on it against the FP32 model."),
    max_drift: Optional[str] = typer.Option(None, "--max-drift", metavar="METRIC<=VALUE", help="Drift budget on the outputs vs FP32, e.g. rel_l2<=0.01 (metric rel_l2, max_abs, rmse or mean_abs; the --gate syntax); needs --data. Keeps the most sensitive nodes in float until it holds, else exit 1."),
    window: Optional[int] = WindowOpt,
    stride: int = StrideOpt,
    group: Optional[str] = GroupOpt,
    features: Optional[str] = FeaturesOpt,
    batch_size: int = typer.Option(32, "--batch", metavar="N", help="Batch size for calibration and drift measurement."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm import stages

    # usage checks first, before anything is loaded
    precision, named_mode = _split_precision(precision, mode)
    mode = mode or named_mode
    config = stages.quantize_config(
        precision, mode, calib=calib is not None, calib_synthetic=calib_synthetic, calib_method=calib_method,
        exclude=tuple(exclude or ()), layer_precisions=tuple(layer_precisions or ()), per_channel=per_channel,
        reduce_range=reduce_range, weight_type=weight_type, target=target_cpu, subgraphs=not no_subgraphs,
        percentile=percentile, fp16_io=fp16_io)
    if max_drift is not None and data is None:
        raise BadInput("--max-drift needs --data DATA to measure the drift on")
    if data is not None and max_drift is None:
        raise BadInput("--data is used by the accuracy fallback: add --max-drift METRIC<=VALUE (e.g. rel_l2<=0.01)")
    budget = stages.DriftBudget.parse(max_drift) if max_drift is not None else None
    if batch_size < 1:
        raise BadInput(f"--batch must be >= 1, got {batch_size}")
    if out.suffix.lower() != ".onnx":
        raise BadInput(f"-o must end in .onnx, got {out.name}")

    io = _model_io(model)
    csv = {"window": window, "features": features, "stride": stride, "group": group}
    calib_src = _calibration_source(io, calib, calib_synthetic, csv, batch_size)
    data_src = None
    if data is not None:
        ds = _load(data, io, csv)
        data_src = ds.batches(batch_size)
        console.step(f"drift measured on: {ds.describe()}")
    if isinstance(config, stages.Int8Options):
        _warn_target(config)
    what = config.precision.value + (f" {config.mode.value}" if isinstance(config, stages.Int8Options) else "")
    console.step(f"quantizing {model.name} to {what}")
    if budget is not None and isinstance(config, stages.Fp16Options):
        console.warn(stages.FP16_CPU_NOTE)
    result = stages.quantize(model, out, config, calib=calib_src, budget=budget, data=data_src, on_step=console.step)
    _show(result, model, out, what, stages)
    finish({**result.to_dict(), "input": str(model)}, json_out)


def _calibration_source(io, calib: Optional[Path], calib_synthetic: Optional[int], csv: dict, batch_size: int):
    """The calibration batches: from --calib DATA, from --calib-synthetic N, or None."""
    if calib is not None:
        from edgelstm.data import as_calibration_source

        ds = _load(calib, io, csv)
        console.step(f"calibration data: {ds.describe()}")
        return as_calibration_source(ds, batch_size, spec=io)
    if calib_synthetic is not None:
        source = _synthetic_calibration(io, calib_synthetic, batch_size)
        console.warn(f"calibrating on {calib_synthetic} synthetic N(0,1) sequences, not on real inputs: activation "
                     "ranges may not fit your data (the manifest records it)")
        return source
    return None


def _warn_target(options) -> None:
    """Warn when the INT8 recipe can saturate on its target, or targets another CPU class than this one."""
    recipe = options.recipe()
    here = cpu_isa.detect_isa()
    if not recipe.safe:
        console.warn(f"this INT8 file can saturate on {recipe.target}: {recipe.why}")
    if str(recipe.target) != str(here) and str(recipe.target) not in cpu_isa.PORTABLE_TARGETS:
        console.warn(f"the file targets {recipe.target} but this machine is {here}: drift measured here "
                     f"(--max-drift, validate) is not what {cpu_isa.article(recipe.target)} {recipe.target} "
                     "device will see")


def _show(result, model: Path, out: Path, what: str, stages) -> None:
    """The op-by-op table and what a reader must know about the file written."""
    q = result.details
    t = q.get("target")
    if t:
        where = " (this machine)" if t["requested"] == "auto" else f" (this machine: {t['quantized_on']})"
        console.step(f"INT8 for {t['isa']}{where}: {t['weight_type']} {'7-bit' if t['reduce_range'] else '8-bit'} "
                     f"weights, onnxruntime level {result.ort_opt_level}; {t['why']}")
    console.table(f"{model.name} -> {out.name} ({what})", stages.TABLE_COLUMNS, stages.table_rows(result.report))
    counts = result.counts()
    console.info("  " + ", ".join(f"{v} node(s) {k}" for k, v in counts.items() if k != "n/a"))
    if q.get("warning"):
        console.warn(q["warning"])
    if q.get("metadata_props"):  # what a plain onnxruntime session (level all) would compute instead
        from edgelstm.artifacts.int8_metadata import plain_session_warning

        plain = plain_session_warning(out.name, q["metadata_props"],
                                      saturating_pairs=(q.get("saturation") or {}).get("saturating_on_x86_avx2"))
        if plain:
            console.warn(plain)
    fb = q.get("fallback")
    if fb:
        kept = fb.get("kept_float") or []
        console.info(f"  accuracy fallback: {fb['metric']} {fb['drift']:.4g} <= {fb['budget']:g} "
                     f"(all quantized: {fb['drift_all_quantized']:.4g}); kept in float: "
                     f"{', '.join(kept) if kept else 'nothing'}")
    _show_level(result)
    ratio = (f"{result.times_smaller:.2f}x smaller than" if result.size_bytes <= result.parent_size_bytes
             else f"{1 / result.times_smaller:.2f}x larger than")
    console.success(f"wrote {out} ({result.size_bytes:,} bytes, {ratio} {model.name}'s {result.parent_size_bytes:,})")


def _show_level(result) -> None:
    """The onnxruntime level the manifest records, when it is not 'all'."""
    limited = (result.manifest.details.get("quantization", {}).get("target", {}) if result.manifest else {})
    if limited and result.ort_opt_level != "all" and "all" not in limited.get("ort_levels", ["all"]):
        console.info(f"  onnxruntime level '{result.ort_opt_level}' recorded for {limited.get('isa')}: the level "
                     "validate, bench and the pipeline will run it at")
    elif result.ort_opt_level != "all":
        why = (result.manifest.details.get("ort_probe", {}).get("all") if result.manifest else None) or "failed"
        console.warn(f"an onnxruntime session at ORT_ENABLE_ALL fails on this model ({why}); the manifest "
                     f"records opt level '{result.ort_opt_level}', which edgelstm's onnxruntime runner uses")


def _split_precision(precision: QuantizePrecision, mode: Optional[QuantMode]) -> tuple[Precision, Optional[QuantMode]]:
    """``int8-static`` -> (int8, static); ``--mode`` may repeat the name's mode but not contradict it."""
    prec, named = QuantizePrecision(precision).split()
    if named is not None and mode is not None and mode != named:
        raise BadInput(f"--precision {precision} and --mode {mode} contradict each other; give one")
    return prec, named


def register(app: typer.Typer) -> None:
    app.command("quantize", help=HELP)(command(quantize))
