"""`Bencher`: the timing engine of `edgelstm bench`. It resolves targets (all the preflight checks, one
runner opened per target so that a broken artifact fails before any timing), then times rows: one
(batch, seq, threads, mode) point of one target, through the fastest path the runner offers (see
harness.py and adapters.py), with the machine's speed probed around it, memory measured, and a row that
looks disturbed by other processes measured again (`BenchOptions.retry_noisy`).

Runners are cached per target and thread count; the regression gate re-times a row with `remeasure`.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgelstm.artifacts.manifest import read_manifest
from edgelstm.errors import BadInput, opt
from edgelstm.latency import device_bench
from edgelstm.latency.harness import TimingPolicy, clock_of, time_callable, time_path, time_runner
from edgelstm.latency.preflight import (ResolvedTarget, check_backend, check_device, check_grid, check_lengths,
                                        data_input, file_size, isa_warnings, module_sha256, module_size,
                                        safe_ort_level)
from edgelstm.latency.schema import (ROW_KEY_FIELDS, BenchGrid, BenchOptions, BenchReport, BenchRow, BenchTarget,
                                     describe_key, row_key, work_list)
from edgelstm.latency.summary import stream_summary
from edgelstm.latency.targets import (VARIANTS, active_provider, artifact_path, check_variant,  # noqa: F401
                                      graph_facts, target_backend)
from edgelstm.latency.threads import set_torch_threads, torch_threads as torch_threads_now
from edgelstm.options import Backend, Precision
from edgelstm.runners.batch_parallel import BATCH_PARALLEL_BACKENDS
from edgelstm.runners.contract import RunnerBase, as_runner, typed_precision

NOISY_SPREAD = 1.5   # p50 / min above this: the run was preempted (deterministic inference is ~1.0-1.1)
NOISY_PROBE = 1.15   # machine probe this much slower than the best seen in the run: the machine was busy


def looks_disturbed(row: BenchRow, best_probe: float | None) -> bool:
    """Whether a row was measured while something else used the machine (see BenchOptions.retry_noisy)."""
    lat = row.latency_ms
    if lat["min"] > 0 and lat["p50"] > NOISY_SPREAD * lat["min"]:
        return True
    return bool(best_probe and row.probe_ms and row.probe_ms > NOISY_PROBE * best_probe)


class Bencher:
    """Opens runners (cached per target and thread count), builds feeds and times single rows. The
    regression gate uses `remeasure` to time a row again."""

    def __init__(self, options: BenchOptions = BenchOptions(), grid: BenchGrid = BenchGrid()):
        self.options = options
        self.grid = grid
        check_device(options.device)
        check_backend(options.backend)
        self._resolved: list[ResolvedTarget] = []
        self._best_probe: float | None = None
        self.length_warnings: list[str] = []  # grid lengths outside an artifact's verified range

    # -- resolution (before any timing) ------------------------------------------------------------
    def add(self, target: Any) -> ResolvedTarget:
        """Resolve one target: where it is, which backend and device run it, every check; one runner opened."""
        t = target if isinstance(target, BenchTarget) else BenchTarget(target)
        path = artifact_path(t.artifact)
        backend = target_backend(t.backend or self.options.backend, path)
        device = check_device(t.device or self.options.device)
        if backend == Backend.tensorrt:  # TensorRT always runs on a GPU: "cpu" (the default) means the first one
            device = "cuda" if device == "cpu" else device
        # read once, before the runner opens: the onnxruntime level is chosen from it (see safe_ort_level)
        manifest = read_manifest(path, verify=False) if path is not None else None
        t = device_bench.apply_to_target(t, self.options.device_options, backend, device)
        check_variant(t.variant, backend, device)
        res = ResolvedTarget(t, "", backend, device, Precision.fp32, None, path, None, None, None,
                             dict(manifest.details) if manifest is not None else {})
        probe = self._runner(res, None)  # fails here (exit 2/3) rather than in the middle of timing
        self._describe(res, probe, manifest)
        self._check_shapes(res, probe)
        self._resolved.append(res)
        return res

    def _describe(self, res: ResolvedTarget, probe: RunnerBase, manifest: Any) -> None:
        """What a row says of its target: I/O, name, precision, file hash and size (the module's, in memory)."""
        t = res.target
        res.io = probe.io
        device_bench.check(self.options.device_options, res.backend, res.device, probe.io)
        res.name = t.name or (res.path.name if res.path else probe.label)
        res.precision = typed_precision(t.precision or (Precision.fp16 if "amp" in t.variant else probe.precision))
        if res.path is not None:
            from edgelstm.fileio import sha256_file

            res.sha256 = manifest.sha256 if manifest is not None else sha256_file(res.path)
            res.parent_sha256 = manifest.parent_sha256 if manifest is not None else None
            res.size = file_size(res.path)
        elif probe.module is not None:
            res.sha256 = module_sha256(probe.module)
            res.size = module_size(probe.module)

    def _check_shapes(self, res: ResolvedTarget, probe: RunnerBase) -> None:
        """The grid against the target's fixed shapes and profiles, its verified lengths, and streaming."""
        device_bench.grid_checked(check_grid, res, self.grid, probe, self.options.device_options)
        self.length_warnings += check_lengths(res.name, res.details, self.grid.seqs)
        res.stream = bool(self.options.stream if res.target.stream is None else res.target.stream)
        if res.stream:
            from edgelstm.latency.stream import check_streamable

            check_streamable(res.io, res.name)
            check_grid(res.name, res.io, self.grid.batches, [1], probe)

    def _open(self, res: ResolvedTarget, threads: int | None):
        from edgelstm.runners.base import open_runner

        opts = {**(self.options.torch_options if res.backend == "torch" else {}), **res.target.runner_options}
        if "batch-parallel" in res.target.variant:
            opts["batch_parallel"] = True   # one single-threaded runner per thread, the batch split between them
        if res.backend == "tensorrt" and "cuda-graph" in res.target.variant:
            opts["cuda_graph"] = True   # TensorRTRunner captures the enqueue once per shape and replays it
        if res.backend == "onnxruntime":
            if "opt_level" not in opts:
                opts["opt_level"] = self.options.opt_level or safe_ort_level(res)
            res.details.setdefault("bench_ort_opt_level", opts["opt_level"])
            if res.device.startswith("cuda"):
                opts.setdefault("providers", ["CUDAExecutionProvider", "CPUExecutionProvider"])
        return open_runner(res.target.artifact, backend=res.backend, threads=threads,
                           input_size=self.options.input_size, device=res.device, **opts)

    # -- timing ------------------------------------------------------------------------------------
    def feeds(self, res: ResolvedTarget, batch: int, seq: int) -> dict[str, np.ndarray]:
        """Seeded inputs for every data input (x[batch, seq, features], or any rank: axis 0 batch, axis 1 seq),
        zero state for the state inputs; an input too large for this machine is refused before allocating."""
        from edgelstm.artifacts.feeds import tensor_values
        from edgelstm.latency.stream import zero_state
        from edgelstm.options import check_alloc

        rng = np.random.default_rng(self.options.seed + 7919 * batch + seq)
        feeds: dict[str, np.ndarray] = {}
        shapes = getattr(self.options.device_options, "shapes", None) or {}   # --shapes wins
        for x in res.io.data_inputs or (data_input(res.io),):
            dims = shapes.get(x.name) or [self._dim(res, x, axis, d, batch, seq) for axis, d in enumerate(x.shape)]
            check_alloc(dims, 8, what=f"{res.name}'s input {x.name!r} at batch {batch}, seq {seq}",
                        hint=f"use a smaller {opt('batch')} or {opt('seq')}")
            # floats standard normal; token ids within their value range; lengths ragged in [1, seq]
            feeds[x.name] = tensor_values(x, tuple(dims), rng, seq=seq)
        if res.io.state_inputs:
            feeds.update(zero_state(res.io, batch, res.details))
        return device_bench.shaped_state(feeds, shapes, res.io)

    def _dim(self, res: ResolvedTarget, x: Any, axis: int, d: Any, batch: int, seq: int) -> int:
        if d in ("batch", "seq"):  # the real axis roles: a seq-first input is [seq, batch, F]
            return batch if d == "batch" else seq
        if "batch" in x.shape or "seq" in x.shape:
            if isinstance(d, int) and d > 0:
                return d
            if isinstance(d, str) and d != "?":
                return seq  # another symbolic axis (e.g. the encoder length of a decoder step)
        if axis == 0:
            return batch
        if axis == 1 and (d == "seq" or len(x.shape) == 3 or not (isinstance(d, int) and d > 0)):
            return seq
        if isinstance(d, int) and d > 0:
            return d
        if self.options.input_size:
            return int(self.options.input_size)
        raise BadInput(f"cannot tell the feature size of {res.name}'s input {x.name!r}",
                       hint=f"pass {opt('input_size')}")

    def measure(self, res: ResolvedTarget, batch: int, seq: int, threads: int | None, mode: str = "window",
                policy: TimingPolicy | None = None) -> BenchRow:
        from edgelstm.latency.adapters import fast_path
        from edgelstm.latency.harness import speed_probe
        from edgelstm.latency.stream import step_path

        policy = policy or self.options.policy
        runner = self._runner(res, threads)
        probe_before = speed_probe()
        amp, graph = "amp" in res.target.variant, "cuda-graph" in res.target.variant
        restore = set_torch_threads(res.backend, threads)
        try:
            if mode == "step":
                feeds = self.feeds(res, batch, 1)
                x_name = data_input(res.io).name
                path = step_path(runner, feeds[x_name], {k: v for k, v in feeds.items() if k != x_name})
                timing = time_callable(path.call, policy, sync=path.sync)
                timing.timer, timing.clock = path.timer, clock_of(path.timer)
                timing.copies_included = path.copies_included
                timing.extras["path"] = path.name
                seq_for_row = 1
            else:
                feeds = self.feeds(res, batch, seq)
                path = device_bench.ort_graph_path(runner, res.backend, graph, feeds)  # None: not onnxruntime's graph
                if path is not None:
                    timing = time_path(path, policy)
                elif callable(runner.timed_run) or (not amp and not graph and runner.bind is not None):
                    timing = time_runner(runner, feeds, policy)
                    path = None
                else:
                    path = fast_path(runner, feeds, amp=amp, cuda_graph=graph)
                    timing = time_path(path, policy)
                batch, seq_for_row = device_bench.row_point(res.io, feeds, batch, seq)
            memory = dict(res.load_mb.get(threads, {}))
            if self.options.measure_memory:
                memory.update(self._memory(res, runner, feeds, path))
        finally:
            restore()
        probe_ms = max(probe_before, speed_probe())
        stats = timing.stats()
        p50_s = stats["p50"] / 1e3
        return BenchRow(
            artifact=res.name, backend=res.backend, precision=res.precision, batch=batch, seq=seq_for_row,
            threads=threads, iters=timing.iters, latency_ms=stats,
            throughput_seq_per_s=batch / p50_s if p50_s > 0 else float("inf"),
            throughput_steps_per_s=batch * seq_for_row / p50_s if p50_s > 0 else float("inf"),
            device=res.device, variant=res.target.variant, mode=mode, warmup=policy.warmup, timer=timing.timer,
            path=str(res.path) if res.path else None, timing_path=timing.extras.get("path"), sha256=res.sha256,
            parent_sha256=res.parent_sha256, model_size_bytes=res.size, memory=memory, probe_ms=probe_ms,
            extras={**dict(res.target.extras), **({"ort_opt_level": res.details["bench_ort_opt_level"]}
                                                    if "bench_ort_opt_level" in res.details else {}),
                    **graph_facts(runner, graph),
                    **(device_bench.extras(runner, res.backend, feeds, self.options.device_options, timing.iters,
                                           policy.warmup) if mode == "window" else {})},
            clock=str(timing.clock), copies_included=bool(timing.copies_included), provider=active_provider(runner))

    def measure_robust(self, res: ResolvedTarget, batch: int, seq: int, threads: int | None,
                       mode: str = "window") -> BenchRow:
        """measure(), then up to options.retry_noisy more attempts while the row looks disturbed (preempted,
        or the machine probe slow); the attempt with the lowest p50 is kept and the row says so."""
        row = self.measure(res, batch, seq, threads, mode)
        self._best_probe = min(filter(None, (self._best_probe, row.probe_ms)), default=None)
        p50s = [row.p50]
        while len(p50s) <= self.options.retry_noisy and looks_disturbed(row, self._best_probe):
            again = self.measure(res, batch, seq, threads, mode)
            self._best_probe = min(filter(None, (self._best_probe, again.probe_ms)), default=None)
            p50s.append(again.p50)
            if again.p50 < row.p50:
                row = again
        if len(p50s) > 1:
            row.extras["attempts_p50_ms"] = p50s
        return row

    def _memory(self, res: ResolvedTarget, runner: RunnerBase, feeds: Mapping[str, np.ndarray], path: Any) -> dict[str, Any]:
        from edgelstm.latency.memory import cuda_peak_during, peak_during

        call = path.call if path is not None else (lambda: runner.run(feeds))
        out: dict[str, Any] = {}
        try:
            if res.device.startswith("cuda") and res.backend == "torch":
                out.update(cuda_peak_during(call))
            else:
                out.update(peak_during(call))
            if callable(runner.memory_stats):
                out.update(runner.memory_stats())
            engine = runner.engine
            if engine is not None:  # what the engine's execution context needs on the GPU
                size = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", None)
                if isinstance(size, int):
                    out["engine_device_memory_mb"] = round(size / 1024 ** 2, 3)
        except Exception as exc:  # noqa: BLE001 - memory is a side fact; never fail a row over it
            out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        return out

    def remeasure(self, row: Mapping[str, Any], policy: TimingPolicy | None = None, *,
                  fresh: bool = True) -> dict[str, float]:
        """Time a row of this run again; returns its latency stats (ms) and the machine probe (probe_ms).
        fresh: re-open the runner first, so that one unlucky session (memory placement, a stale cache) is
        not measured again and again."""
        key = row_key(row)
        d = dict(zip(ROW_KEY_FIELDS, key))
        for res in self._resolved:
            if (res.name, res.backend, res.device, res.precision, res.target.variant) == (
                    d["artifact"], d["backend"], d["device"], d["precision"], d["variant"]):
                seq = d["seq"] if d["mode"] == "window" else 1
                if fresh and d["threads"] in res.runners:
                    with contextlib.suppress(Exception):  # a runner that fails to close is replaced all the same
                        res.runners.pop(d["threads"]).close()
                row2 = self.measure(res, d["batch"], seq, d["threads"], d["mode"], policy)
                return {**row2.latency_ms, "probe_ms": row2.probe_ms}
        raise BadInput(f"no artifact in this run matches {describe_key(key)}")

    def staged(self, res: ResolvedTarget, batch: int, seq: int, threads: int | None, *,
               fresh: bool = False) -> tuple[Any, dict[str, np.ndarray]]:
        """(runner, feeds) of `res` at one window grid point, for callers that schedule their own timing (the
        same-run comparison alternates blocks of two targets). fresh: close and re-open the runner first."""
        if fresh and threads in res.runners:
            with contextlib.suppress(Exception):  # a runner that fails to close is replaced all the same
                res.runners.pop(threads).close()
        return self._runner(res, threads), self.feeds(res, batch, seq)

    def run(self, targets: Sequence[Any], *, on_row: Callable[[BenchRow], None] | None = None,
            device: dict[str, Any] | None = None,
            before_timing: Callable[[dict[str, Any], list[ResolvedTarget]], None] | None = None) -> BenchReport:
        """Resolve every target (all checks), then time the grid; see bench_artifacts. `before_timing(device,
        resolved)` may raise to stop before the first measurement (the baseline checks do)."""
        from edgelstm.machine.device import describe_device

        from edgelstm.latency.amx_guard import prepare_amx, process_facts

        if not targets:
            raise BadInput("nothing to benchmark: pass at least one artifact")
        # before any runner opens: onnxruntime asks for AMX once per process, on its first integer GEMM
        amx = prepare_amx(self.options.amx, targets, self.grid.batches, self.options.backend, self.options.device)
        resolved = [self.add(t) for t in targets]  # every check before any timing
        if self.options.batch_parallel:  # beside each onnxruntime/OpenVINO CPU target, its batch-parallel variant
            resolved += [self.add(replace(r.target, variant="batch-parallel")) for r in list(resolved)
                         if r.backend in BATCH_PARALLEL_BACKENDS and r.device == "cpu" and not r.target.variant]
        grid, options = self.grid, self.options
        device = device or describe_device(gpu=any(r.device.startswith("cuda") for r in resolved))
        if before_timing:
            before_timing(device, resolved)
        report = BenchReport(device=device, options={**options.to_dict(), "batches": list(grid.batches),
                                                     "seqs": list(grid.seqs), "threads": list(grid.threads)})
        # a target and its batch-parallel variant share their file's warnings: each said once
        warnings = list(dict.fromkeys(isa_warnings(resolved, device) + self.length_warnings + amx["warnings"]))
        if warnings:
            report.extras["warnings"] = warnings
        for res in resolved:
            for batch, seq, threads, mode in work_list(grid, res.stream, res.target.variant):
                row = self.measure_robust(res, batch, seq, threads, mode)
                report.results.append(row)
                if on_row:
                    on_row(row)
        report.stream = stream_summary(report.results)
        report.device["process"] = process_facts(amx)  # after timing: what the measuring process really had
        from edgelstm.latency.winners import fastest_per_shape

        report.extras["fastest"] = fastest_per_shape(r.to_dict() for r in report.results)
        return report

    def __enter__(self) -> "Bencher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for res in self._resolved:
            for runner in res.runners.values():
                try:
                    runner.close()
                except Exception:  # noqa: BLE001
                    pass
            res.runners.clear()

    @property
    def resolved(self) -> list[ResolvedTarget]:
        return list(self._resolved)

    def _runner(self, res: ResolvedTarget, threads: int | None) -> RunnerBase:
        if threads not in res.runners:
            from edgelstm.latency.memory import rss_bytes

            before = rss_bytes()
            torch_threads = torch_threads_now()
            try:
                res.runners[threads] = as_runner(self._open(res, threads))
            finally:  # TorchRunner(threads=n) sets torch's global thread count; measure() sets it per row
                if torch_threads is not None:
                    import torch

                    torch.set_num_threads(torch_threads)
            after = rss_bytes()
            if before is not None and after is not None:
                res.load_mb[threads] = {"load_rss_mb": round(max(0, after - before) / 1024 ** 2, 3)}
        return res.runners[threads]
