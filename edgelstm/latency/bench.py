"""`bench_artifacts`: latency of artifacts over a grid of batch sizes, sequence lengths and thread
counts, through edgelstm.runners.open_runner. A pure stage: nothing printed, no sys.exit; progress is
reported through callbacks.

Every problem that can be found before timing (unknown or missing backend, a batch/seq outside a
fixed-shape artifact or an engine profile, --stream on a non-stateful artifact) raises before the first
measurement.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from edgelstm.errors import BadInput, BackendMissing
from edgelstm.options import Backend
from edgelstm.latency.harness import TimingPolicy, time_callable, time_runner, time_timed_run

SCHEMA = "edgelstm-bench/1"
MODES = ("window", "step")

BACKEND_INSTALL = {
    "torch": ("torch", "pip install torch==2.13.0 (CPU wheel), or a CUDA build of torch on a GPU machine"),
    "onnxruntime": ("onnxruntime", "pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA provider)"),
    "tensorrt": ("tensorrt", "TensorRT's Python bindings: the edgelstm TensorRT docker image, `pip install tensorrt` "
                             "from NVIDIA's package index on x86, or the system python3-libnvinfer on Jetson "
                             "(venv with --system-site-packages)"),
}


@dataclass(frozen=True)
class BenchGrid:
    """Batch sizes x sequence lengths x thread counts (None: the backend's default)."""

    batches: tuple[int, ...] = (1, 8)
    seqs: tuple[int, ...] = (60, 256)
    threads: tuple[int | None, ...] = (None,)

    def __post_init__(self) -> None:
        for what, values in (("--batch", self.batches), ("--seq", self.seqs)):
            if not values or any(int(v) < 1 for v in values):
                raise BadInput(f"{what} must list positive integers, got {list(values)}")
        if not self.threads or any(t is not None and int(t) < 1 for t in self.threads):
            raise BadInput(f"--threads must list positive integers, got {list(self.threads)}")

    def points(self) -> list[tuple[int, int, int | None]]:
        return [(b, s, t) for t in self.threads for b in self.batches for s in self.seqs]


@dataclass(frozen=True)
class BenchOptions:
    backend: str | None = None        # torch | onnxruntime | tensorrt; None: the artifact's default
    device: str = "cpu"               # cpu | cuda
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    stream: bool = False              # also time one step of a stateful artifact with its state carried
    input_size: int | None = None     # for torch models whose input size cannot be inferred
    opt_level: str | None = None      # onnxruntime graph optimisation level; None: the manifest's proven level
                                      # (quantized models), else "all" (FP16 without one: crash-safe probe)
    measure_memory: bool = True
    seed: int = 0
    retry_noisy: int = 0              # re-measure a disturbed row up to this many times, keep the lowest p50

    def __post_init__(self) -> None:
        if self.retry_noisy < 0:
            raise BadInput(f"--retry-noisy must be >= 0, got {self.retry_noisy}")

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "stream": self.stream, "opt_level": self.opt_level,
                "retry_noisy": self.retry_noisy, **self.policy.to_dict()}


NOISY_SPREAD = 1.5   # p50 / min above this: the run was preempted (deterministic inference is ~1.0-1.1)
NOISY_PROBE = 1.15   # machine probe this much slower than the best seen in the run: the machine was busy


def looks_disturbed(row: "BenchRow", best_probe: float | None) -> bool:
    """Whether a row was measured while something else used the machine (see BenchOptions.retry_noisy)."""
    lat = row.latency_ms
    if lat["min"] > 0 and lat["p50"] > NOISY_SPREAD * lat["min"]:
        return True
    return bool(best_probe and row.probe_ms and row.probe_ms > NOISY_PROBE * best_probe)


@dataclass(frozen=True)
class BenchTarget:
    """One thing to time: a path (torch file, ONNX, engine) or an in-memory model, with how to run it."""

    artifact: Any
    name: str | None = None                   # the row's artifact name (default: file name / model name)
    backend: str | None = None                # overrides BenchOptions.backend
    device: str | None = None                 # overrides BenchOptions.device
    precision: str | None = None              # overrides what the runner reports
    variant: str = ""                         # torch on CUDA: "amp", "cuda-graph", "amp+cuda-graph"
    runner_options: Mapping[str, Any] = field(default_factory=dict)  # open_runner extras (opt_level, providers)
    extras: Mapping[str, Any] = field(default_factory=dict)          # copied into each row (e.g. drift)
    stream: bool | None = None                # time streaming steps for this target (None: BenchOptions.stream)


@dataclass
class BenchRow:
    artifact: str
    backend: str
    precision: str
    batch: int
    seq: int
    threads: int | None
    iters: int
    latency_ms: dict[str, float]
    throughput_seq_per_s: float
    throughput_steps_per_s: float
    device: str = "cpu"
    variant: str = ""
    mode: str = "window"              # window: the whole sequence; step: one step with the state carried
    warmup: int = 0
    timer: str = "wall"
    path: str | None = None
    timing_path: str | None = None    # which fast path was timed (ort-iobinding, torch-eager, ...)
    sha256: str | None = None
    parent_sha256: str | None = None
    model_size_bytes: int | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    probe_ms: float | None = None     # harness.speed_probe() around this row: the machine's speed at the time
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return self.latency_ms["p50"]

    def key(self) -> tuple:
        return row_key(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact, "backend": self.backend, "precision": self.precision, "batch": self.batch,
            "seq": self.seq, "threads": self.threads, "iters": self.iters,
            "latency_ms": {k: round(v, 6) for k, v in self.latency_ms.items()},
            "throughput_seq_per_s": round(self.throughput_seq_per_s, 3),
            "throughput_steps_per_s": round(self.throughput_steps_per_s, 3),
            "device": self.device, "variant": self.variant, "mode": self.mode, "warmup": self.warmup,
            "timer": self.timer, "timing_path": self.timing_path, "path": self.path, "sha256": self.sha256,
            "parent_sha256": self.parent_sha256, "model_size_bytes": self.model_size_bytes, "memory": self.memory,
            "probe_ms": None if self.probe_ms is None else round(self.probe_ms, 6),
            **({"extras": self.extras} if self.extras else {}),
        }


ROW_KEY_FIELDS = ("artifact", "backend", "device", "precision", "variant", "mode", "batch", "seq", "threads")


def row_key(row: Mapping[str, Any]) -> tuple:
    """What makes two rows comparable: artifact name, backend, device, precision, variant, mode, shape, threads."""
    defaults = {"device": "cpu", "variant": "", "mode": "window", "threads": None}
    return tuple(row.get(k, defaults.get(k)) for k in ROW_KEY_FIELDS)


def describe_key(key: Sequence[Any]) -> str:
    d = dict(zip(ROW_KEY_FIELDS, key))
    parts = [f"{d['artifact']} [{d['backend']}/{d['precision']}"
             + (f"/{d['variant']}" if d["variant"] else "") + (f" on {d['device']}" if d["device"] != "cpu" else "")
             + "]", f"batch {d['batch']}", f"seq {d['seq']}" if d["mode"] == "window" else "one step",
             f"threads {d['threads'] if d['threads'] is not None else 'default'}"]
    return " ".join(parts[:1]) + " " + ", ".join(parts[1:])


@dataclass
class BenchReport:
    device: dict[str, Any]
    results: list[BenchRow] = field(default_factory=list)
    stream: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    regression: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": SCHEMA, "created": self.created, "device": self.device, "options": self.options,
               "results": [r.to_dict() for r in self.results], "stream": self.stream, "skipped": self.skipped}
        if self.regression is not None:
            out["regression"] = self.regression
        out.update(self.extras)
        return out

    def find(self, **match: Any) -> list[BenchRow]:
        return [r for r in self.results if all(getattr(r, k) == v for k, v in match.items())]


def planned_rows(n_targets: int, grid: BenchGrid, stream: bool) -> int:
    """How many rows bench_artifacts will time (for a progress bar)."""
    per = len(grid.points()) + (len(grid.batches) * len(grid.threads) if stream else 0)
    return n_targets * per


# ------------------------------------------------------------------------------------------ targets


@dataclass
class _Resolved:
    target: BenchTarget
    name: str
    backend: str
    device: str
    precision: str
    io: Any
    path: Path | None
    sha256: str | None
    parent_sha256: str | None
    size: int | None
    details: dict[str, Any]
    runners: dict[Any, Any] = field(default_factory=dict)
    load_mb: dict[Any, float] = field(default_factory=dict)
    stream: bool = False


def check_backend(backend: str | None) -> str | None:
    """Validate a backend name (exit 2 when unknown) and that it is installed (exit 3 naming what to install)."""
    if backend is None:
        return None
    known = [b.value for b in Backend]
    if backend not in known:
        raise BadInput(f"unknown backend {backend!r}; known backends: {', '.join(known)}")
    module, install = BACKEND_INSTALL[backend]
    if not _importable(module):
        raise BackendMissing(f"the {backend} backend is not installed", hint=f"install it with: {install}")
    return backend


def _importable(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a module already imported counts)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_device(device: str) -> str:
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInput(f"--device must be cpu or cuda[:N], got {device!r}")
    return device


def _module_sha256(module: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _module_size(module: Any) -> int:
    return int(sum(t.numel() * t.element_size() for t in module.state_dict().values()))


def _file_size(path: Path) -> int:
    size = path.stat().st_size
    for extra in (path.with_name(path.name + ".data"), path.with_suffix(".data")):
        if extra.exists() and extra != path:
            size += extra.stat().st_size
    return size


def data_input(io: Any) -> Any:
    specs = io.data_inputs
    if not specs:
        raise BadInput("the artifact has no data input")
    return specs[0]


def shape_limits(io: Any, runner: Any = None) -> dict[str, tuple[int, int, str]]:
    """The batch and seq values an artifact accepts: {"batch": (lo, hi, why), "seq": (...)}; absent = any.

    Fixed dims of the data input (static ONNX: axis 0 batch, axis 1 seq) and, for engines, the optimization
    profile the runner exposes as `shape_ranges` (or `profiles`) = {input: (min_shape, opt_shape, max_shape)}."""
    x = data_input(io)
    limits: dict[str, tuple[int, int, str]] = {}
    if len(x.shape) >= 2:
        for axis, label in ((0, "batch"), (1, "seq")):
            d = x.shape[axis]
            if isinstance(d, int) and d > 0:
                limits[label] = (d, d, "a fixed shape (static export)")
    ranges = None
    if runner is not None:  # `shape_ranges` (protocol) or the TensorRT runner's `profiles`
        ranges = getattr(runner, "shape_ranges", None) or getattr(runner, "profiles", None)
    if callable(ranges):
        ranges = ranges()
    if isinstance(ranges, Mapping) and x.name in ranges:
        lo_shape, _opt, hi_shape = ranges[x.name]
        for axis, label in ((0, "batch"), (1, "seq")):
            if axis < len(lo_shape):
                lo, hi = int(lo_shape[axis]), int(hi_shape[axis])
                if label in limits:
                    lo, hi = max(lo, limits[label][0]), min(hi, limits[label][1])
                limits[label] = (lo, hi, "the engine's optimization profile")
    return limits


def check_grid(name: str, io: Any, grid_batches: Iterable[int], grid_seqs: Iterable[int], runner: Any = None) -> None:
    limits = shape_limits(io, runner)
    problems = []
    for label, values in (("batch", list(grid_batches)), ("seq", list(grid_seqs))):
        if label not in limits:
            continue
        lo, hi, why = limits[label]
        bad = [v for v in values if not lo <= v <= hi]
        if bad:
            allowed = str(lo) if lo == hi else f"{lo}..{hi}"
            problems.append(f"{label} {bad} is outside {allowed} ({why})")
    if problems:
        raise BadInput(f"{name}: " + "; ".join(problems),
                       hint="pick values inside the range, or export without --static / build a wider profile")


class Bencher:
    """Opens runners (cached per target and thread count), builds feeds and times single rows. The
    regression gate uses `remeasure` to time a row again."""

    def __init__(self, options: BenchOptions = BenchOptions(), grid: BenchGrid = BenchGrid()):
        self.options = options
        self.grid = grid
        check_device(options.device)
        check_backend(options.backend)
        self._resolved: list[_Resolved] = []
        self._best_probe: float | None = None

    # -- resolution (before any timing) ------------------------------------------------------------
    def add(self, target: Any) -> _Resolved:
        from edgelstm.artifacts.manifest import read_manifest
        from edgelstm.runners.base import artifact_kind, default_backend

        t = target if isinstance(target, BenchTarget) else BenchTarget(target)
        backend = check_backend(t.backend or self.options.backend)
        device = check_device(t.device or self.options.device)
        path = None
        details: dict[str, Any] = {}
        if isinstance(t.artifact, (str, Path)):
            path = Path(t.artifact)
            if not path.exists():
                raise BadInput(f"artifact {path} does not exist")
            if path.is_dir():
                raise BadInput(f"{path} is a directory, not an artifact")
            kind = artifact_kind(path)
            backend = backend or check_backend(default_backend(kind).value)
            manifest = read_manifest(path, verify=False)
            if manifest is not None:
                details = dict(manifest.details)
        else:
            backend = backend or "torch"
            if backend != "torch":
                raise BadInput(f"an in-memory model runs on the torch backend, not {backend}")
            check_backend("torch")
            manifest = None
        if backend == "tensorrt":
            device = "cuda" if device == "cpu" else device
        if t.variant and (backend != "torch" or not device.startswith("cuda")):
            raise BadInput(f"variant {t.variant!r} (autocast / CUDA graphs) needs the torch backend on CUDA")
        unknown_variant = set(filter(None, t.variant.split("+"))) - {"amp", "cuda-graph"}
        if unknown_variant:
            raise BadInput(f"unknown variant(s) {sorted(unknown_variant)}; known: amp, cuda-graph")
        res = _Resolved(t, "", backend, device, "fp32", None, path, None, None, None, details)
        probe = self._runner(res, None)  # fails here (exit 2/3) rather than in the middle of timing
        res.io = probe.io
        res.name = t.name or (path.name if path else getattr(probe, "label", "model"))
        res.precision = t.precision or ("fp16" if "amp" in t.variant else str(getattr(probe, "precision", "fp32")))
        if path is not None:
            from edgelstm.fileio import sha256_file

            res.sha256 = manifest.sha256 if manifest is not None else sha256_file(path)
            res.parent_sha256 = manifest.parent_sha256 if manifest is not None else None
            res.size = _file_size(path)
        else:
            module = getattr(probe, "module", None)
            if module is not None:
                res.sha256 = _module_sha256(module)
                res.size = _module_size(module)
        check_grid(res.name, res.io, self.grid.batches, self.grid.seqs, probe)
        res.stream = bool(self.options.stream if t.stream is None else t.stream)
        if res.stream:
            from edgelstm.latency.stream import check_streamable

            check_streamable(res.io, res.name)
            check_grid(res.name, res.io, self.grid.batches, [1], probe)
        self._resolved.append(res)
        return res

    def _open(self, res: _Resolved, threads: int | None):
        from edgelstm.runners.base import open_runner

        opts = dict(res.target.runner_options)
        if res.backend == "onnxruntime":
            if "opt_level" not in opts:
                opts["opt_level"] = self.options.opt_level or _safe_ort_level(res)
            res.details.setdefault("bench_ort_opt_level", opts["opt_level"])
            if res.device.startswith("cuda"):
                opts.setdefault("providers", ["CUDAExecutionProvider", "CPUExecutionProvider"])
        return open_runner(res.target.artifact, backend=res.backend, threads=threads,
                           input_size=self.options.input_size, device=res.device, **opts)

    # -- timing ------------------------------------------------------------------------------------
    def feeds(self, res: _Resolved, batch: int, seq: int) -> dict[str, np.ndarray]:
        from edgelstm.latency.stream import zero_state

        x = data_input(res.io)
        feature = x.shape[2] if len(x.shape) >= 3 else None
        if not (isinstance(feature, int) and feature > 0):
            feature = self.options.input_size
        if not feature:
            raise BadInput(f"cannot tell the feature size of {res.name}'s input {x.name!r}", hint="pass --input-size")
        rng = np.random.default_rng(self.options.seed + 7919 * batch + seq)
        feeds = {x.name: rng.standard_normal((batch, seq, int(feature))).astype(np.float32)}
        if res.io.state_inputs:
            feeds.update(zero_state(res.io, batch, res.details))
        return feeds

    def measure(self, res: _Resolved, batch: int, seq: int, threads: int | None, mode: str = "window",
                policy: TimingPolicy | None = None) -> BenchRow:
        from edgelstm.latency.adapters import fast_path
        from edgelstm.latency.harness import speed_probe
        from edgelstm.latency.stream import step_path

        policy = policy or self.options.policy
        runner = self._runner(res, threads)
        probe_before = speed_probe()
        amp, graph = "amp" in res.target.variant, "cuda-graph" in res.target.variant
        restore = _set_torch_threads(res.backend, threads)
        try:
            if mode == "step":
                feeds = self.feeds(res, batch, 1)
                x_name = data_input(res.io).name
                path = step_path(runner, feeds[x_name], {k: v for k, v in feeds.items() if k != x_name})
                timing = time_callable(path.call, policy, sync=path.sync)
                timing.timer = path.timer
                timing.extras["path"] = path.name
                seq_for_row = 1
            else:
                feeds = self.feeds(res, batch, seq)
                timed = getattr(runner, "timed_run", None)
                if callable(timed) or (not amp and not graph and hasattr(runner, "bind")):
                    timing = time_runner(runner, feeds, policy)
                    path = None
                else:
                    path = fast_path(runner, feeds, amp=amp, cuda_graph=graph)
                    if path.timed_run is not None:
                        timing = time_timed_run(path.timed_run, None, policy, timer=path.timer)
                    else:
                        timing = time_callable(path.call, policy, sync=path.sync)
                        timing.timer = path.timer
                    timing.extras["path"] = path.name
                seq_for_row = seq
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
                                                    if "bench_ort_opt_level" in res.details else {})})

    def measure_robust(self, res: _Resolved, batch: int, seq: int, threads: int | None,
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

    def _memory(self, res: _Resolved, runner: Any, feeds: Mapping[str, np.ndarray], path: Any) -> dict[str, Any]:
        from edgelstm.latency.memory import cuda_peak_during, peak_during

        call = path.call if path is not None else (lambda: runner.run(feeds))
        out: dict[str, Any] = {}
        try:
            if res.device.startswith("cuda") and res.backend == "torch":
                out.update(cuda_peak_during(call))
            else:
                out.update(peak_during(call))
            stats = getattr(runner, "memory_stats", None)
            if callable(stats):
                out.update(stats())
            engine = getattr(runner, "engine", None) if res.backend == "tensorrt" else None
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
                    old = res.runners.pop(d["threads"])
                    try:
                        old.close()
                    except Exception:  # noqa: BLE001
                        pass
                row2 = self.measure(res, d["batch"], seq, d["threads"], d["mode"], policy)
                return {**row2.latency_ms, "probe_ms": row2.probe_ms}
        raise BadInput(f"no artifact in this run matches {describe_key(key)}")

    def run(self, targets: Sequence[Any], *, on_row: Callable[[BenchRow], None] | None = None,
            device: dict[str, Any] | None = None, before_timing: Callable[[dict[str, Any], list[_Resolved]], None]
            | None = None) -> BenchReport:
        """Resolve every target (all checks), then time the grid; see bench_artifacts. `before_timing(device,
        resolved)` may raise to stop before the first measurement (the baseline checks do)."""
        from edgelstm.machine.device import describe_device

        if not targets:
            raise BadInput("nothing to benchmark: pass at least one artifact")
        resolved = [self.add(t) for t in targets]  # every check before any timing
        grid, options = self.grid, self.options
        device = device or describe_device(gpu=any(r.device.startswith("cuda") for r in resolved))
        if before_timing:
            before_timing(device, resolved)
        report = BenchReport(device=device, options={**options.to_dict(), "batches": list(grid.batches),
                                                     "seqs": list(grid.seqs), "threads": list(grid.threads)})
        warnings = isa_warnings(resolved, device)
        if warnings:
            report.extras["warnings"] = warnings
        for res in resolved:
            work = [(b, s, t, "window") for b, s, t in grid.points()]
            if res.stream:
                work += [(b, 1, t, "step") for t in grid.threads for b in grid.batches]
            for batch, seq, threads, mode in work:
                row = self.measure_robust(res, batch, seq, threads, mode)
                report.results.append(row)
                if on_row:
                    on_row(row)
        report.stream = stream_summary(report.results)
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
    def resolved(self) -> list[_Resolved]:
        return list(self._resolved)

    def _runner(self, res: _Resolved, threads: int | None):
        if threads not in res.runners:
            from edgelstm.latency.memory import rss_bytes

            before = rss_bytes()
            torch_threads = _torch_threads()
            try:
                res.runners[threads] = self._open(res, threads)
            finally:  # TorchRunner(threads=n) sets torch's global thread count; measure() sets it per row
                if torch_threads is not None:
                    import torch

                    torch.set_num_threads(torch_threads)
            after = rss_bytes()
            if before is not None and after is not None:
                res.load_mb[threads] = {"load_rss_mb": round(max(0, after - before) / 1024 ** 2, 3)}
        return res.runners[threads]


def isa_warnings(resolved: Sequence[_Resolved], device: Mapping[str, Any]) -> list[str]:
    """One warning per INT8 artifact timed on another CPU class than the one it was quantized for."""
    from edgelstm.machine.isa import mismatch_warning

    here = str((device.get("cpu") or {}).get("isa") or "")
    out = []
    for res in resolved:
        w = mismatch_warning(res.name, res.details.get("target_isa"), here, what="benchmarked") if here else None
        if w:
            out.append(w.replace("the drift measured here is", "the latency (and drift) measured here are"))
    return out


def _safe_ort_level(res: _Resolved) -> str:
    """The onnxruntime optimisation level to time at: the level the quantizer proved in its manifest; for an
    FP16 model without one, the highest level that survives a crash-safe probe in a child process (an FP16
    BiLSTM has crashed onnxruntime at ORT_ENABLE_ALL); otherwise "all"."""
    level = res.details.get("ort_opt_level")
    if level:
        return str(level)
    if res.path is None:
        return "all"
    try:
        import onnx

        model = onnx.load(str(res.path), load_external_data=False)
        has_fp16 = any(i.data_type == 10 for i in model.graph.initializer)
    except Exception:  # noqa: BLE001 - the runner reports a broken file properly
        return "all"
    if not has_fp16:
        return "all"
    from edgelstm.artifacts.ort import first_safe_level

    level, tried = first_safe_level(res.path)
    if level is None:
        raise BadInput(f"{res.name} does not run in onnxruntime at any optimisation level "
                       f"({'; '.join(f'{k}: {v}' for k, v in tried.items())})")
    return level


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _set_torch_threads(backend: str, threads: int | None) -> Callable[[], None]:
    if backend != "torch" or threads is None:
        return lambda: None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return lambda: torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------- stage


def stream_summary(rows: Sequence[BenchRow]) -> list[dict[str, Any]]:
    """Pair each step row with the window rows of the same artifact/backend/batch/threads: the cost of
    carrying the state one step vs re-running the whole window for one new sample."""
    out = []
    for step in (r for r in rows if r.mode == "step"):
        for win in rows:
            if (win.mode == "window" and win.artifact == step.artifact and win.backend == step.backend
                    and win.device == step.device and win.variant == step.variant and win.batch == step.batch
                    and win.threads == step.threads):
                out.append({
                    "artifact": step.artifact, "backend": step.backend, "device": step.device,
                    "precision": step.precision, "batch": step.batch, "threads": step.threads, "window": win.seq,
                    "step_p50_ms": step.p50, "step_min_ms": step.latency_ms["min"],
                    "window_p50_ms": win.p50, "window_min_ms": win.latency_ms["min"],
                    "speedup": win.p50 / step.p50 if step.p50 > 0 else float("inf"),
                })
    return out


def bench_artifacts(targets: Sequence[Any], grid: BenchGrid = BenchGrid(), options: BenchOptions = BenchOptions(), *,
                    on_row: Callable[[BenchRow], None] | None = None, device: dict[str, Any] | None = None,
                    baseline: Mapping[str, Any] | str | Path | None = None, max_slowdown: float = 1.10,
                    repeats: int = 3) -> BenchReport:
    """Time every target over the grid (and, with options.stream, one streaming step per batch/threads).

    targets: paths (torch file, ONNX, engine), in-memory models, or BenchTarget. With `baseline` (a report
    dict or a path to one), rows are compared with it and suspected regressions are re-measured `repeats`
    times before they count; the verdict is in `report.regression` (["passed"] False: a confirmed
    regression, exit code 1 in the CLI). Raises BadInput/BackendMissing before any timing."""
    from edgelstm.latency.regression import compare_reports, load_baseline, planned_keys, precheck_baseline

    base = None
    if baseline is not None:
        base = load_baseline(baseline) if isinstance(baseline, (str, Path)) else dict(baseline)

    def check(dev: dict[str, Any], resolved: list[_Resolved]) -> None:
        if base is not None:
            precheck_baseline(base, dev, [{"artifact": r.name, "sha256": r.sha256, "parent_sha256": r.parent_sha256}
                                          for r in resolved], max_slowdown=max_slowdown,
                              planned=planned_keys(resolved, grid))

    with Bencher(options, grid) as bencher:
        report = bencher.run(targets, on_row=on_row, device=device, before_timing=check)
        if base is not None:
            result = compare_reports(report.to_dict(), base, max_slowdown=max_slowdown,
                                     remeasure=bencher.remeasure, repeats=repeats)
            report.regression = result.to_dict()
    return report


# ------------------------------------------------------------------------------------------ summaries


def summarize(report: BenchReport | Mapping[str, Any], *, reference: str | None = None) -> list[dict[str, Any]]:
    """One line per row for people: artifact, backend, precision, shape, threads, size (MB), p50 (ms), and the
    speed-up against the reference row with the same batch/seq/threads/mode (and extras["model"], when rows
    carry one) — by default the first torch row on the same device, i.e. torch eager; or the row whose
    artifact is `reference`."""
    rows = [r.to_dict() for r in report.results] if isinstance(report, BenchReport) else list(report["results"])
    def group(r: Mapping[str, Any]) -> Any:  # suite rows of several models: compare within one model
        return (r.get("extras") or {}).get("model")

    def ref_for(r: Mapping[str, Any]) -> Mapping[str, Any] | None:
        for cand in rows:
            if (cand["batch"], cand["seq"], cand.get("threads"), cand.get("mode", "window"), group(cand)) != (
                    r["batch"], r["seq"], r.get("threads"), r.get("mode", "window"), group(r)):
                continue
            if reference is not None and cand["artifact"] == reference:
                return cand
            if reference is None and cand["backend"] == "torch" and not cand.get("variant") \
                    and cand.get("device", "cpu") == r.get("device", "cpu"):
                return cand
        return None

    out = []
    for r in rows:
        ref = ref_for(r)
        p50 = r["latency_ms"]["p50"]
        out.append({
            "artifact": r["artifact"], "backend": r["backend"], "precision": r["precision"],
            "variant": r.get("variant", ""), "mode": r.get("mode", "window"), "batch": r["batch"], "seq": r["seq"],
            "threads": r.get("threads"),
            "size_mb": round(r["model_size_bytes"] / 1024 ** 2, 4) if r.get("model_size_bytes") else None,
            "p50_ms": p50, "p99_ms": r["latency_ms"]["p99"], "seq_per_s": r["throughput_seq_per_s"],
            "speedup": (ref["latency_ms"]["p50"] / p50) if ref is not None and p50 > 0 else None,
            "reference": ref["artifact"] if ref is not None else None,
            **({"drift": r["extras"]["drift"]} if "drift" in r.get("extras", {}) else {}),
        })
    return out


def speedup(report: BenchReport | Mapping[str, Any], artifact: str, reference: str, **match: Any) -> float | None:
    """p50(reference) / p50(artifact) for the first pair of rows that agree on batch/seq/threads/mode and
    on every field in `match` (e.g. batch=1, seq=60, threads=1)."""
    rows = [r.to_dict() for r in report.results] if isinstance(report, BenchReport) else list(report["results"])
    for r in rows:
        if r["artifact"] != artifact or any(r.get(k) != v for k, v in match.items()):
            continue
        for ref in rows:
            if ref["artifact"] == reference and all(ref.get(k) == r.get(k) for k in ("batch", "seq", "threads", "mode")):
                return ref["latency_ms"]["p50"] / r["latency_ms"]["p50"]
    return None


def with_policy(options: BenchOptions, **changes: Any) -> BenchOptions:
    return replace(options, policy=replace(options.policy, **changes))
