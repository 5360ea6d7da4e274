"""`edgelstm build MODEL.onnx -o MODEL.xml`: the OpenVINO IR branch of `build` (CPU), called from cli/build.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from edgelstm import console
from edgelstm.cli.common import finish
from edgelstm.errors import BadInput

HELP = """OpenVINO IR (CPU): with -o MODEL.xml, build writes MODEL.xml + MODEL.bin from the ONNX, verified against it in onnxruntime at several batches and lengths. --precision fp32 (computed in FP32: OpenVINO would otherwise use BF16 where the CPU has it), bf16 (CPUs with AVX512-BF16 or AMX; drift gated by --max-drift, default rel_l2<=0.05) or int8 (OpenVINO's own int8 path from a Q/DQ ONNX, or from the FP32 ONNX with --calib DATA; the LSTM core stays float). `edgelstm bench` times it beside the ONNX files; `edgelstm validate` checks its drift."""

#: build options that only a TensorRT engine takes
TENSORRT_ONLY = ("batch", "seq", "calib_cache", "timing_cache", "workspace", "dla_core", "no_gpu_fallback",
                 "hardware_compatible", "version_compatible", "tf32", "strongly_typed")


def build_openvino_command(model: Path, out: Path, precision: str, *, calib: Optional[Path], calib_method: Any,
                           calib_batch_size: int, max_drift: Optional[str], keep_onnx: Optional[Path],
                           json_out: bool, tensorrt_options: dict[str, Any]) -> None:
    from edgelstm import stages

    used = [f"--{k.replace('_', '-')}" for k, v in tensorrt_options.items() if v is not None and v is not False]
    if used:
        raise BadInput(f"{', '.join(used)} appl{'ies' if len(used) == 1 else 'y'} to TensorRT engines, not to an "
                       f"OpenVINO IR ({out.name})")
    if precision == "fp16":
        raise BadInput("an OpenVINO IR for the CPU is fp32, bf16 or int8 (FP16 on a CPU is slower than FP32)")
    if max_drift is not None and precision == "fp32":
        raise BadInput("--max-drift applies to bf16/int8 IRs; an fp32 IR must match the ONNX (export tolerance)")
    source = None
    if calib is not None:
        if precision != "int8":
            raise BadInput("--calib applies to --precision int8")
        from edgelstm.artifacts.artifact import io_spec_of
        from edgelstm.data import as_calibration_source, load_dataset

        io = io_spec_of(model)
        ds = load_dataset(calib, io)
        source = as_calibration_source(ds, min(calib_batch_size, ds.n), spec=io)
        console.step(f"calibration data: {ds.describe()}")
    options = stages.OpenVinoOptions(precision=precision, max_drift=max_drift, calib_method=calib_method,
                                     keep_intermediate=keep_onnx)
    result = stages.build_openvino(model, out, options, calib=source, on_step=console.step)
    d = result.drift
    console.success(f"wrote {out} + {out.with_suffix('.bin').name} in {result.seconds:.1f}s: OpenVINO "
                    f"{result.manifest.details['openvino']['version']}, {precision} (inference precision "
                    f"{result.inference_precision})")
    console.table(f"verified against {d['against']} (onnxruntime)", ["batch", "seq", "rel_l2"],
                  [[p["batch"], p["seq"], f"{p['rel_l2']:.3g}"] for p in result.verification])
    console.info(f"  drift {d['metric']} {d['value']:.3g}" + (f" <= {d['limit']:g}" if precision != "fp32" else ""))
    from edgelstm.artifacts.openvino import compute_layers

    layers = compute_layers(result.layer_precision)
    if layers:
        console.table("compute layers as OpenVINO runs them", ["layer precision", "count"],
                      [[k, v] for k, v in layers.items()])
    for w in result.warnings:
        console.warn(w)
    finish(result.to_dict(), json_out)


__all__ = ["build_openvino_command", "HELP", "TENSORRT_ONLY"]
