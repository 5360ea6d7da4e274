"""trtexec-style measurements of a TensorRT engine (see trt_options.py for the options): host-to-device / compute /
device-to-host split, spin-wait, multi-stream throughput and the per-layer profile (IProfiler). They work on an open
edgelstm TensorRTRunner (its engine, context, stream and CUDA buffer backend) through TensorRT's named-tensor API
(`set_input_shape`, `set_tensor_address`, `execute_async_v3`) and the CudaBackend interface (events, copies,
`query` for the spin-wait). Nothing here runs without a GPU: tests/fakes checks the calls and their order.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

SPIN_LIMIT = 10_000_000   # polls before a spin-wait gives up and blocks (a GPU that never answers is not "fast")


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return {}
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "mean": float(a.mean()), "min": float(a.min())}


def wait(cuda: Any, event: Any, spin: bool) -> None:
    """Wait for ``event``: by polling (spin) or by blocking (elapsed_ms's cudaEventSynchronize does it)."""
    if not spin:
        return
    for _ in range(SPIN_LIMIT):
        if cuda.query(event):
            return


def _staged(runner: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    prepared = runner._prepare(feeds)
    runner._set_shapes(prepared)
    runner._bind(prepared)
    return prepared


def split_transfers(runner: Any, feeds: Mapping[str, np.ndarray], iters: int, warmup: int = 5, *,
                    spin: bool = False) -> dict[str, Any]:
    """Per iteration: H2D of every input, the enqueue, D2H of every output, each between CUDA events on the runner's
    stream, and the host latency of all three (perf_counter, until the last event is done)."""
    cuda, stream = runner.cuda, runner.stream
    prepared = _staged(runner, feeds)
    events = [cuda.event() for _ in range(4)]
    parts: dict[str, list[float]] = {"h2d": [], "compute": [], "d2h": [], "host_latency": []}
    try:
        for i in range(max(0, warmup) + max(1, iters)):
            t0 = time.perf_counter()
            cuda.record(events[0], stream)
            for name, host in prepared.items():
                cuda.htod(runner._buffers[name], host, stream)
            cuda.record(events[1], stream)
            runner._enqueue()
            cuda.record(events[2], stream)
            for name, host in runner._outputs.items():
                cuda.dtoh(host, runner._buffers[name], stream)
            cuda.record(events[3], stream)
            wait(cuda, events[3], spin)
            spans = [cuda.elapsed_ms(a, b) for a, b in zip(events, events[1:])]
            host_ms = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                for key, value in zip(("h2d", "compute", "d2h", "host_latency"), (*spans, host_ms)):
                    parts[key].append(value)
        cuda.synchronize(stream)
    finally:
        for ev in events:
            cuda.destroy_event(ev)
    return {key: _stats(v) for key, v in parts.items()} | {"spin_wait": bool(spin), "clock": "cuda-events",
                                                           "host_clock": "wall"}


def _lane(runner: Any, prepared: Mapping[str, np.ndarray]) -> tuple[Any, Any, dict[str, Any]]:
    """One more execution context of the runner's engine, with its own stream and buffers (inputs uploaded)."""
    cuda = runner.cuda
    with runner._on_device():
        context = runner.engine.create_execution_context()
    stream = cuda.stream()
    buffers: dict[str, Any] = {}
    for name, host in prepared.items():
        context.set_input_shape(name, tuple(int(d) for d in host.shape))
    for name, host in (*prepared.items(), *runner._outputs.items()):
        buffers[name] = cuda.malloc(max(host.nbytes, 1))
        context.set_tensor_address(name, int(buffers[name].ptr))
    for name, host in prepared.items():
        cuda.htod(buffers[name], host, stream)
    return context, stream, buffers


def multi_stream(runner: Any, feeds: Mapping[str, np.ndarray], streams: int, iters: int, warmup: int = 5) -> dict:
    """``streams`` execution contexts of one engine, each on its own stream, enqueued round-robin for ``iters``
    rounds (trtexec's --infStreams): throughput from the host clock over all rounds, and each stream's own time."""
    cuda = runner.cuda
    prepared = _staged(runner, feeds)
    lanes = [(runner.context, runner.stream, None)]
    starts: list[Any] = []
    ends: list[Any] = []
    try:
        for _ in range(streams - 1):
            lanes.append(_lane(runner, prepared))
        starts += [cuda.event() for _ in lanes]
        ends += [cuda.event() for _ in lanes]

        def round_() -> None:
            for context, stream, _ in lanes:
                with runner._on_device():
                    context.execute_async_v3(stream)

        for _ in range(max(0, warmup)):
            round_()
        for _, stream, _ in lanes:
            cuda.synchronize(stream)
        t0 = time.perf_counter()
        for ev, (_, stream, _) in zip(starts, lanes):
            cuda.record(ev, stream)
        for _ in range(max(1, iters)):
            round_()
        for ev, (_, stream, _) in zip(ends, lanes):
            cuda.record(ev, stream)
        lane_ms = [cuda.elapsed_ms(a, b) for a, b in zip(starts, ends)]
        wall_s = time.perf_counter() - t0
    finally:
        for _, stream, buffers in lanes[1:]:
            for buf in (buffers or {}).values():
                cuda.free(buf)
            cuda.destroy_stream(stream)
        for ev in (*starts, *ends):
            cuda.destroy_event(ev)
    batch = int(next(iter(prepared.values())).shape[0]) if prepared else 1
    done = streams * max(1, iters) * batch
    return {"streams": streams, "rounds": max(1, iters), "sequences": done,
            "throughput_seq_per_s_host": done / wall_s if wall_s > 0 else None,
            "throughput_seq_per_s_device": done / (max(lane_ms) / 1e3) if max(lane_ms) > 0 else None,
            "stream_ms": lane_ms}


def _collector(trt) -> Any:
    """An IProfiler that keeps every reported layer time (a Python profiler calls the base __init__)."""

    class Collector(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(str(layer_name), []).append(float(ms))

    return Collector()


def layer_profile(runner: Any, feeds: Mapping[str, np.ndarray], iters: int = 20) -> list[dict[str, Any]]:
    """Per-layer times from TensorRT's IProfiler, in a run of its own: the profiler on the runner's context with
    ``enqueue_emits_profile = False`` and ``report_to_profiler()`` after each enqueue (trtexec's pattern), plain
    enqueues (no CUDA graph). Layers by mean time, most first, with their share of the total."""
    _staged(runner, feeds)
    collector = _collector(runner.trt)
    context = runner.context
    context.profiler = collector
    context.enqueue_emits_profile = False
    try:
        for _ in range(max(1, iters)):
            runner._execute()
            context.report_to_profiler()
            runner.cuda.synchronize(runner.stream)
    finally:
        context.enqueue_emits_profile = True
    means = {name: float(np.mean(v)) for name, v in collector.times.items()}
    total = sum(means.values()) or 1.0
    return sorted(({"layer": n, "mean_ms": m, "median_ms": float(np.median(collector.times[n])),
                    "share": m / total, "calls": len(collector.times[n])} for n, m in means.items()),
                  key=lambda r: -r["mean_ms"])


__all__ = ["split_transfers", "multi_stream", "layer_profile", "wait"]
