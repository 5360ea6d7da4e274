"""Calibration data for a build: a path or a re-iterable source becomes batches, and for TensorRT 10.x weakly typed
INT8 a calibrator whose host buffers have each network input's own dtype (float32 for `x`, int64 for `lengths`
or token ids: TensorRT reads `get_batch`'s pointers with the network's dtypes, so a float32 buffer for an INT64
input would be read out of bounds)."""

from __future__ import annotations

from typing import Any

from edgelstm.converters.tensorrt.options import BuildOptions
from edgelstm.artifacts.iospec import IOSpec
from edgelstm.errors import BadInput, opt


def as_source(calib, spec: IOSpec, batch_size: int):
    """A calibration source from a path (.npz/.npy/.csv) or an already re-iterable source."""
    from pathlib import Path

    if calib is None or not isinstance(calib, (str, Path)):
        return calib
    from edgelstm.data import as_calibration_source, load_dataset

    ds = load_dataset(calib, spec)
    return as_calibration_source(ds, min(int(batch_size), ds.n), spec=spec, drop_last=True)


def no_int8_source(cache: str = "") -> BadInput:
    return BadInput(f"INT8 needs calibration data or a Q/DQ ONNX: pass {opt('calib')} DATA{cache}, or build an ONNX "
                    "from `edgelstm quantize --precision int8 --mode static`")


def network_host_dtypes(trt, network) -> dict[str, Any]:
    """name -> numpy dtype of every network input, as TensorRT will read it (the runner's rule: host_dtype)."""
    from edgelstm.artifacts.trt import dtype_name, host_dtype

    inputs = (network.get_input(i) for i in range(int(network.num_inputs)))
    return {t.name: host_dtype(dtype_name(t.dtype), t.name) for t in inputs}


def make_build_calibrator(trt, network, source, options: BuildOptions):
    """The TensorRT 10.x calibrator of a build, fed with each input's network dtype."""
    from edgelstm.calibration.trt_calibrator import make_calibrator

    return make_calibrator(trt, source, cache_file=options.calib_cache, method=str(options.calib_method),
                           input_dtypes=network_host_dtypes(trt, network))


def failure_hint(calibrating: bool, why: str) -> str:
    """What to check when TensorRT builds nothing: the calibration data when the calibration step failed, else the
    profile and the workspace."""
    if calibrating and "calibrat" in why.lower():
        return (f"the INT8 calibration step failed: check that {opt('calib')} has every input of the model, with its "
                "dtype (int64 lengths/token ids stay integers) and one fixed batch shape")
    return f"check the profile ranges and {opt('workspace')}; see the TensorRT error above"
