"""Batch-parallel execution on CPUs: N copies of one artifact, one thread each, every call's batch split between them.

A recurrent layer's step is a small matrix product (batch × hidden by hidden × 4·hidden) followed by a barrier:
a second thread inside one inference (intra-op) splits that small product and waits at every step, so 2 threads
buy little (torch eager at batch 32 × 256: ~1.3× its 1-thread time). Sequences in a batch are independent, so
splitting the batch into one contiguous shard per worker keeps every thread busy without a barrier. Each worker
is a runner with one thread (an onnxruntime session of its own, or one request of an OpenVINO model compiled with a
stream per worker), and the shards run concurrently (both libraries release the GIL while they compute).

What it changes: nothing per sequence for FP32/BF16 artifacts; a dynamically quantized INT8 file chooses its
activation scale per call, so each shard gets its own scale (``validate --batch-parallel`` measures the drift of
this mode itself). A batch smaller than the workers uses as many workers as it has sequences."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgelstm.errors import BadInput
from edgelstm.runners.contract import RunnerBase

#: the backends whose runners can be copied per worker (CPU libraries that release the GIL while computing)
BATCH_PARALLEL_BACKENDS = ("onnxruntime", "openvino")


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count: edgelstm.machine.amx)."""
    from edgelstm.machine.amx import affinity

    facts = affinity()
    return max(1, facts["usable_cpus"] or facts["online_cpus"] or 1)


def shard_bounds(batch: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) row ranges, one per worker that gets rows, sizes differing by at most one."""
    n = max(1, min(workers, batch))
    base, extra = divmod(batch, n)
    bounds, start = [], 0
    for i in range(n):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class BatchParallelRunner(RunnerBase):
    """Runners of one artifact that can compute at the same time (one thread each) behind one runner: onnxruntime
    sessions, or the lanes (requests) of an OpenVINO model compiled with a stream per worker."""

    def __init__(self, workers: Sequence[RunnerBase]):
        self.workers: list[RunnerBase] = list(workers)
        if len(self.workers) < 2:
            self.close()
            raise BadInput(f"batch-parallel needs at least 2 workers (threads), got {len(self.workers)}")
        first = self.workers[0]
        if first.backend not in BATCH_PARALLEL_BACKENDS:
            self.close()
            raise BadInput(f"batch-parallel runs {' and '.join(BATCH_PARALLEL_BACKENDS)} artifacts on CPUs, "
                           f"not {first.backend}")
        self.io, self.backend, self.precision, self.path, self.manifest = (
            first.io, first.backend, first.precision, first.path, first.manifest)
        self.label = f"{first.label} (batch-parallel ×{len(self.workers)})"
        # through ``bind``, a worker without its own binding is called through run (numpy in and out); the bench's
        # fast path (edgelstm.latency.adapters) stages each shard the fastest way the worker has (IO binding)
        self.copies_included = any(not callable(w.bind) or w.copies_included for w in self.workers)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(len(self.workers) - 1,
                                                                   thread_name_prefix="edgelstm-shard")
        self._in_axes = {t.name: t.batch_axis for t in self.io.inputs}
        self._out_axes = {t.name: t.batch_axis for t in self.io.outputs}

    @property
    def warnings(self) -> list[str]:
        return list(self.workers[0].warnings) if self.workers else []

    def _batch_of(self, feeds: Mapping[str, np.ndarray]) -> int:
        sizes = {int(np.shape(a)[self._in_axes.get(n, 0)]) for n, a in feeds.items()
                 if np.ndim(a) > self._in_axes.get(n, 0)}
        if len(sizes) != 1:
            raise BadInput(f"batch-parallel needs one batch size across the inputs, got "
                           f"{ {n: list(np.shape(a)) for n, a in feeds.items()} }")
        return sizes.pop()

    def split(self, feeds: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The feeds of each shard (views along each input's batch axis)."""
        bounds = shard_bounds(self._batch_of(feeds), len(self.workers))
        shards = []
        for start, stop in bounds:
            shard = {}
            for name, arr in feeds.items():
                axis = self._in_axes.get(name, 0)
                index = [slice(None)] * np.ndim(arr)
                index[axis] = slice(start, stop)
                shard[name] = np.asarray(arr)[tuple(index)]
            shards.append(shard)
        return shards

    def run_each(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run the calls concurrently: the first on this thread, the others on the pool; first error wins."""
        if self._pool is None:
            raise BadInput("this batch-parallel runner is closed")
        futures = [self._pool.submit(c) for c in calls[1:]]
        results = [calls[0]()] if calls else []
        return results + [f.result() for f in futures]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards = self.split(feeds)
        outs = self.run_each([lambda w=w, s=s: w.run(s) for w, s in zip(self.workers, shards)])
        return {name: np.concatenate([o[name] for o in outs], axis=self._out_axes.get(name, 0))
                for name in outs[0]}

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], Any]:  # type: ignore[override]
        """Each shard staged once on its worker (through the worker's own binding where it has one); the call runs
        one inference of the whole batch."""
        calls = []
        for worker, shard in zip(self.workers, self.split(feeds)):
            calls.append(worker.bind(shard) if callable(worker.bind) else (lambda w=worker, s=shard: w.run(s)))

        def call() -> None:
            self.run_each(calls)

        return call

    def layer_precisions(self) -> dict[str, int]:
        first = self.workers[0]
        return first.layer_precisions() if hasattr(first, "layer_precisions") else {}

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


__all__ = ["BATCH_PARALLEL_BACKENDS", "BatchParallelRunner", "shard_bounds", "usable_cores"]
