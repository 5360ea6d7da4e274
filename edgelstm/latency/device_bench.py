"""Where the trtexec-style options (trt_options.DeviceOptions) meet the bencher: a target gets its CUDA-graph variant
or provider options, feeds take the --shapes, a row learns its batch/seq from the real feeds, and the extra
measurements (split transfers, streams, layer profile) go into the row's extras."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from edgelstm.latency.trt_options import DeviceOptions, check_device_options, feed_shape


def apply_to_target(target: Any, options: DeviceOptions | None, backend: str, device: str) -> Any:
    """``--cuda-graph``: TensorRT and torch on CUDA replay a captured graph (variant "cuda-graph"), onnxruntime's CUDA
    provider gets ``enable_cuda_graph``."""
    if options is None or not options.cuda_graph or "cuda-graph" in target.variant:
        return target
    if backend == "onnxruntime" and device.startswith("cuda"):
        from edgelstm.latency.ort_cuda import cuda_providers
        from edgelstm.runners.cuda_base import device_index

        target = replace(target, runner_options={**target.runner_options,
                                                 "providers": cuda_providers(device_index(device), cuda_graph=True)})
    return replace(target, variant="+".join(v for v in (target.variant, "cuda-graph") if v))


def check(options: DeviceOptions | None, backend: str, device: str, io: Any) -> None:
    if options is not None and options.any:
        check_device_options(options, backend, device, [t.name for t in io.inputs])
        for t in io.inputs:
            feed_shape(options, t.name, len(t.shape))


def grid_checked(check_grid: Any, res: Any, grid: Any, probe: Any, options: DeviceOptions | None) -> None:
    """The bencher's grid check, unless --shapes gives every data input's shape (the runner checks those)."""
    if not shaped(options, res.io):
        check_grid(res.name, res.io, grid.batches, grid.seqs, probe)


def ort_graph_path(runner: Any, backend: str, graph: bool, feeds: Mapping[str, np.ndarray]) -> Any:
    """onnxruntime with --cuda-graph: the timed call on fixed device buffers (ort_cuda.graph_path); else None."""
    if not graph or backend != "onnxruntime":
        return None
    from edgelstm.latency.ort_cuda import graph_path

    return graph_path(runner.session, feeds)


def shaped(options: DeviceOptions | None, io: Any) -> bool:
    """Whether --shapes gives the shape of every data input (the grid's batch/seq do not apply then)."""
    names = [t.name for t in (io.data_inputs or io.inputs)]
    return bool(options is not None and names and all(n in options.shapes for n in names))


def shaped_state(feeds: dict[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], io: Any) -> dict:
    """State inputs (h0/c0) --shapes names start as zeros of that shape."""
    data = {t.name for t in io.data_inputs}
    for name, shape in shapes.items():
        if name in feeds and name not in data and feeds[name].shape != tuple(shape):
            feeds[name] = np.zeros(shape, dtype=feeds[name].dtype)
    return feeds


def row_point(io: Any, feeds: Mapping[str, np.ndarray], batch: int, seq: int) -> tuple[int, int]:
    """The (batch, seq) a row really ran: read from the first data input's named axes (``--shapes`` may set them)."""
    for t in io.data_inputs or io.inputs:
        if t.name in feeds:
            shape = np.shape(feeds[t.name])
            b, s = t.axis("batch"), t.axis("seq")
            return (int(shape[b]) if b is not None and b < len(shape) else batch,
                    int(shape[s]) if s is not None and s < len(shape) else seq)
    return batch, seq


def extras(runner: Any, backend: str, feeds: Mapping[str, np.ndarray], options: DeviceOptions | None,
           iters: int, warmup: int) -> dict[str, Any]:
    """The extra measurements a row asked for (each a run of its own, after the timed one)."""
    if options is None or not options.any:
        return {}
    out: dict[str, Any] = {"device_options": options.to_dict()}
    if backend == "tensorrt":
        from edgelstm.latency import trt_timing

        if options.split_transfers:
            out["split_ms"] = trt_timing.split_transfers(runner, feeds, iters, warmup, spin=options.spin_wait)
        if options.streams > 1:
            out["streams"] = trt_timing.multi_stream(runner, feeds, options.streams, iters, warmup)
        if options.profile_layers:
            out["layer_profile"] = trt_timing.layer_profile(runner, feeds, max(5, min(iters, 50)))[:60]
    elif backend == "onnxruntime" and options.split_transfers:
        from edgelstm.latency.ort_cuda import split_transfers

        out["split_ms"] = split_transfers(runner.session, feeds, iters, warmup)
    return out


__all__ = ["apply_to_target", "check", "grid_checked", "ort_graph_path", "shaped", "shaped_state", "row_point",
           "extras"]
