"""float64 models (``model.double()``, as some official examples train): exported in float32 and verified against
the float64 model itself.

onnxruntime has no float64 LSTM/GRU kernels ("LSTM operator does not support double yet") and edge runtimes
(TensorRT, Jetson) compute in float32 or lower, so the export is made from a float32 copy of the model and every
route is verified as usual; the file that verified is then checked against the *float64* model at the same batches
and lengths, with the same output-relative tolerance, and the manifest says so (``details.cast``)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np

from edgelstm.errors import require_torch


def float32_form(module) -> tuple[Any, Any]:
    """(the module to export, the float64 original or None): a float32 copy of a model that computes in float64."""
    torch = require_torch()
    from edgelstm.models.loading import float_dtype

    if isinstance(module, torch.jit.ScriptModule) or not hasattr(module, "parameters"):
        return module, None
    if float_dtype(module) != torch.float64:
        return module, None
    copied = copy.deepcopy(module).float().eval()
    return copied, module


def check_against_float64(original, options, ort_fn: Callable[[dict], list[np.ndarray]], make_feeds,
                          out_names: Sequence[str], batches, seqs, tol, kept_axes=()) -> tuple[Any, dict[str, Any]]:
    """(VerifyReport, manifest details) of the exported file against the float64 model, called through the same
    input contract (float inputs given to it as float64)."""
    from edgelstm.converters.export.export_inputs import resolve_export_call
    from edgelstm.converters.export.onnx_verify import verify_grid

    call = resolve_export_call(original, options)

    def reference(feeds: dict) -> list[np.ndarray]:
        got = call.run({k: v for k, v in feeds.items() if k in call.io.input_names})
        return [got[n] for n in call.io.output_names]

    report = verify_grid(reference, ort_fn, make_feeds, out_names, batches, seqs, tol, kept_axes=kept_axes)
    details = {"from": "float64", "to": "float32",
               "why": "onnxruntime has no float64 LSTM/GRU kernels; edge runtimes compute in float32",
               "checks_against_float64": len(report.checks), "passed": report.passed,
               "max_rel_l2": max((c.rel_l2 for c in report.checks if np.isfinite(c.rel_l2)), default=0.0),
               "tolerance": "the export's own (relative to each output's spread)"}
    return report, details


def same_inputs(io_names: Sequence[str], original, options) -> bool:
    """Whether the export takes the model's own inputs (a --stateful wrapper adds h0/c0 the model does not take)."""
    from edgelstm.converters.export.export_inputs import resolve_export_call

    return list(io_names) == list(resolve_export_call(original, options).io.input_names)


__all__ = ["check_against_float64", "float32_form", "same_inputs"]
