"""`edgelstm build`: ONNX -> TensorRT engine (.plan) with a manifest that says what ran in which precision."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgelstm import console
from edgelstm.options import DEFAULT_CALIB_METHOD, BuildPrecision, CalibMethod, Precision, parse_range
from edgelstm.cli.common import JsonOpt, QuietOpt, command, finish
from edgelstm.cli.build_openvino import HELP as OPENVINO_HELP
from edgelstm.cli.vocabulary import output_option

HELP = """Build a TensorRT engine from an ONNX model, for this GPU and this TensorRT version; or, with -o MODEL.xml, an OpenVINO IR for CPUs (see below).

How each precision is built depends on the installed TensorRT. On 10.x the builder's FP16/INT8 flags are used, with an INT8 calibrator over --calib and a reusable --calib-cache (10.12+ deprecates them; --strongly-typed builds the 11.x way instead). On 11.x, which has no other way, builds are strongly typed: FP16 comes from an FP16 ONNX (made automatically from an FP32 one), INT8 from a Q/DQ ONNX (made from --calib data when the ONNX has no Q/DQ nodes). FP32 engines compute in true FP32 (TF32 is cleared; --tf32 allows it). The LSTM core itself never runs in INT8: the summary table says which layers ran in which precision.

Engines are tied to the GPU architecture and the TensorRT version: ship the ONNX and rebuild on the target (Jetson included), unless you build --hardware-compatible / --version-compatible.

Examples:

  edgelstm build model.onnx -o model.plan

  edgelstm build model.onnx -o model.fp16.plan --precision fp16 --batch 1:8:32 --seq 1:128:512

  edgelstm build model.onnx -o model.int8.plan --precision int8 --calib calib.npz --calib-cache model.calib

  edgelstm build model.onnx -o model.plan --timing-cache trt.cache --workspace 2GiB

  edgelstm build model.onnx -o model.dla.plan --precision fp16 --dla-core 0

  edgelstm build model.onnx -o model.xml --precision fp32      # OpenVINO IR (CPU)

""" + OPENVINO_HELP


def build(
    model: Path = typer.Argument(..., metavar="MODEL.onnx", help="The ONNX model (FP32, FP16, or INT8 with Q/DQ nodes).", show_default=False),
    out: Path = output_option("OUT.plan", "Engine file to write (.plan or .engine); a <file>.json manifest goes "
                                          "beside it."),
    precision: BuildPrecision = typer.Option(BuildPrecision.fp32, "--precision", "-p",
                                             help="fp32, fp16 (from an FP16 ONNX, converted for you) or int8 (needs "
                                                  "--calib, a --calib-cache, or a Q/DQ ONNX); bf16 for OpenVINO IRs."),
    batch: Optional[str] = typer.Option(None, metavar="1:8:64", help="Batch range min:opt:max the engine accepts (axis 0 of x, axis 1 "
                                                   "of h0/c0); a single N means N:N:N. Default 1:8:64."),
    seq: Optional[str] = typer.Option(None, metavar="1:64:512", help="Sequence-length range min:opt:max (axis 1 of x). Default 1:64:512."),
    calib: Optional[Path] = typer.Option(None, metavar="DATA", help="Calibration data for int8 (.npz/.npy/.csv shaped like the "
                                                    "model's inputs; a few hundred representative sequences)."),
    calib_cache: Optional[Path] = typer.Option(None, metavar="FILE", help="INT8 calibration cache (TensorRT 10.x calibrators): reused "
                                                          "when the file exists (no data needed), written after "
                                                          "calibrating."),
    calib_method: CalibMethod = typer.Option(DEFAULT_CALIB_METHOD, help="Calibration: minmax or entropy (percentile "
                                                                        "only on the Q/DQ route); the default is "
                                                                        "quantize's and the pipeline's."),
    calib_batch_size: int = typer.Option(32, "--calib-batch", metavar="N", min=1,
                                         help="Sequences per calibration batch."),
    timing_cache: Optional[Path] = typer.Option(None, metavar="FILE", help="TensorRT timing cache file: loaded if it exists, saved "
                                                           "after the build; makes rebuilds on this GPU much faster."),
    workspace: Optional[str] = typer.Option(None, metavar="SIZE", help="Builder workspace limit, e.g. 512MiB or 2GiB (a plain number "
                                                       "is MiB). Default: TensorRT's (the GPU's memory)."),
    dla_core: Optional[int] = typer.Option(None, metavar="N", min=0, help="Run on this DLA core (Jetson AGX/NX Orin, Xavier); "
                                                             "fp16/int8 only. Layers the DLA cannot run go to the GPU "
                                                             "and are reported."),
    no_gpu_fallback: bool = typer.Option(False, "--no-gpu-fallback",
                                         help="With --dla-core: fail instead of running unsupported layers on the GPU."),
    hardware_compatible: bool = typer.Option(False, "--hardware-compatible",
                                             help="Build an engine that runs on any Ampere-or-newer GPU "
                                                  "(HardwareCompatibilityLevel.AMPERE_PLUS; may be slower)."),
    version_compatible: bool = typer.Option(False, "--version-compatible",
                                            help="Build an engine later TensorRT versions of the same major can load "
                                                 "(embeds the lean runtime; loading runs code from the plan)."),
    tf32: bool = typer.Option(False, "--tf32", help="fp32: let Ampere-or-newer GPUs run FP32 layers in TF32 "
                                                     "(faster, ~10-bit mantissa). Off by default."),
    strongly_typed: Optional[bool] = typer.Option(None, "--strongly-typed/--weakly-typed",
                                                  help="Force the build route. Default: weakly typed (builder flags) "
                                                       "on TensorRT 10.x, strongly typed on 11.x (the only way there)."),
    keep_onnx: Optional[Path] = typer.Option(None, metavar="FILE.onnx", help="Keep the FP16 / Q/DQ ONNX made on the way at this path."),
    layer_precisions: Optional[List[str]] = typer.Option(None, "--layer-precisions", metavar="PATTERN:PRECISION", show_default=False, help="Keep chosen layers in fp32 or fp16 (10.x: layer precision constraints, obeyed; strongly typed: left FP32 in the FP16/Q-DQ ONNX the build makes): PATTERN is a node name, glob, op type or 'recurrent' (every LSTM/GRU/RNN and loop), e.g. recurrent:fp32,/head/*:fp16. Repeatable or comma-separated."),
    max_drift: Optional[str] = typer.Option(None, "--max-drift", metavar="METRIC<=VALUE", help="OpenVINO bf16/int8 IR: the "
                                            "drift budget against the ONNX (default rel_l2<=0.05); exit 1 when over."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    from edgelstm import stages

    if out.suffix.lower() == ".xml":  # OpenVINO IR (CPU): edgelstm/cli/build_openvino.py
        from edgelstm.cli.build_openvino import build_openvino_command

        return build_openvino_command(
            model, out, precision.value, calib=calib, calib_method=calib_method, calib_batch_size=calib_batch_size,
            max_drift=max_drift, keep_onnx=keep_onnx, json_out=json_out,
            tensorrt_options={"batch": batch, "seq": seq, "calib_cache": calib_cache, "timing_cache": timing_cache,
                              "workspace": workspace, "dla_core": dla_core, "no_gpu_fallback": no_gpu_fallback,
                              "hardware_compatible": hardware_compatible, "version_compatible": version_compatible,
                              "tf32": tf32, "strongly_typed": strongly_typed})
    if precision == BuildPrecision.bf16 or max_drift is not None:
        from edgelstm.errors import BadInput

        raise BadInput(f"{'--precision bf16' if max_drift is None else '--max-drift'} applies to OpenVINO IRs "
                       "(-o MODEL.xml), not to TensorRT engines")

    options = stages.BuildOptions(
        precision=Precision(precision.value),
        batch=parse_range(batch, what="--batch") if batch else None,
        seq=parse_range(seq, what="--seq") if seq else None,
        workspace_bytes=stages.parse_workspace(workspace),
        timing_cache=timing_cache, calib_cache=calib_cache, calib_method=calib_method,
        calib_batch_size=calib_batch_size, dla_core=dla_core, gpu_fallback=not no_gpu_fallback,
        hardware_compatible=hardware_compatible, version_compatible=version_compatible, keep_intermediate=keep_onnx,
        tf32=tf32, strongly_typed=strongly_typed, layer_precisions=tuple(layer_precisions or ()),
    )
    result = stages.build_engine(model, out, options, calib=calib, on_step=console.step)
    size_mb = out.stat().st_size / 1e6
    gpu = result.gpu or {}
    console.success(f"wrote {out} ({size_mb:.2f} MB) in {result.seconds:.1f}s: TensorRT {result.tensorrt_version}, "
                    f"{result.route}{' +' + ','.join(result.flags) if result.flags else ''}, "
                    f"{gpu.get('name', 'GPU ?')} (compute {gpu.get('compute_capability', '?')})")
    console.table("optimization profile", ["input", "min", "opt", "max"],
                  [[n, str(p["min"]), str(p["opt"]), str(p["max"])] for n, p in result.profiles.items()])
    rows = stages.summary_rows(result.layer_precision)
    if rows:
        console.table("per-layer precision", ["layers", "count", "precision"], rows)
    elif result.layer_precision.get("reason"):
        console.warn(f"per-layer precision unavailable: {result.layer_precision['reason']}")
    if result.precision == "fp32":
        console.info("FP32 layers may run in TF32 on Ampere or newer (--tf32)" if result.tf32
                     else "FP32 layers run in full FP32 (TF32 off; --tf32 allows it)")
    if result.timing_cache:
        console.info(f"timing cache {result.timing_cache['file']}: "
                     f"{'reused' if result.timing_cache['reused'] else 'created'}")
    if result.calibration:
        c = result.calibration
        console.info(f"calibration: {'cache reused' if c['cache_read'] else str(c['batches_fed']) + ' batch(es) fed'}"
                     + (f", cache written to {c['cache_file']}" if c["cache_written"] else ""))
    if result.dla and not result.dla["layers_on_gpu"]:
        console.info(f"DLA core {result.dla['core']}: all {result.dla['num_layers']} layers run on the DLA")
    for w in result.warnings:
        console.warn(w)
    finish(result.to_dict(), json_out)


def register(app: typer.Typer) -> None:
    app.command("build", help=HELP, no_args_is_help=True)(command(build))
