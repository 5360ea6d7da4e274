"""The timing loop: warm-up, then a fixed number of iterations (`iters`) or as many as fit in `min_time`
seconds, and latency percentiles.

Runner timing protocol (optional methods a runner may implement; checked in this order):

- ``timed_run(feeds, iters) -> list[float]``: run `iters` times and return each iteration's latency in
  milliseconds measured by the runner's own clock (the TensorRT runner uses CUDA events). A runner that
  implements it may set ``timer = "cuda-event"`` (any short name) so that reports say which clock it was,
  ``clock`` (``"cuda-events"`` / ``"wall"``; default: from ``timer``) and ``copies_included`` (whether its
  timed region copies inputs/outputs between host and device; default False: an enqueue timed by events).
- ``bind(feeds) -> Callable[[], object]``: stage the inputs once (device buffers, IO binding) and return
  a zero-argument callable that runs one inference; timed with the wall clock (`clock_ns`).
  ``sync()`` (optional, e.g. ``torch.cuda.synchronize``) is called after each iteration when present.
- otherwise ``run(feeds)`` is timed with the wall clock.

The edgelstm runners for torch and onnxruntime get fast paths from `adapters.py` (pre-made tensors,
onnxruntime IO binding), so a comparison measures the models, not numpy conversions.

Clocks: every wall-clock reading that decides something (a latency sample, when a `min_time` loop
stops) goes through the module-level `clock_ns` (``time.perf_counter_ns``), and the machine's speed
through the module-level `speed_probe`; both are looked up at call time, so that tests replace them with
a fake clock / fake probe (``monkeypatch.setattr(harness, "clock_ns", fake)``) and assert exact outcomes
on a loaded machine. `time_callable` and `time_timed_run` also take a `clock=` argument.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from edgelstm.errors import BadInput, opt

DEFAULT_ITERS = 100

#: The wall clock of every timing loop (nanoseconds, monotonic). Bound to the builtin, so the timed path
#: pays no extra call; replace it (module attribute, looked up per call) to time against a fake clock.
clock_ns: Callable[[], int] = time.perf_counter_ns


@dataclass(frozen=True)
class TimingPolicy:
    """How long to measure. `iters` wins over `min_time`; with neither, DEFAULT_ITERS iterations."""

    warmup: int = 10
    iters: int | None = None
    min_time: float | None = None   # seconds of timed iterations (after warm-up)
    min_iters: int = 5              # with min_time: at least this many iterations
    max_iters: int = 1_000_000      # with min_time: at most this many iterations

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise BadInput(f"{opt('warmup')} must be >= 0, got {self.warmup}")
        if self.iters is not None and self.iters < 1:
            raise BadInput(f"{opt('iters')} must be >= 1, got {self.iters}")
        if self.min_time is not None and not (self.min_time > 0 and math.isfinite(self.min_time)):
            raise BadInput(f"{opt('min_time')} must be a finite number > 0 of seconds, got {self.min_time}")
        if self.min_iters < 1 or self.max_iters < self.min_iters:
            raise BadInput("min_iters must be >= 1 and <= max_iters")

    def describe(self) -> str:
        if self.iters is not None or self.min_time is None:
            return f"{self.warmup} warm-up + {self.iters or DEFAULT_ITERS} iterations"
        return f"{self.warmup} warm-up + >= {self.min_time:g} s (>= {self.min_iters} iterations)"

    def to_dict(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "iters": self.iters, "min_time_s": self.min_time,
                "min_iters": self.min_iters, "max_iters": self.max_iters}


def clock_of(timer: str | None) -> str:
    """The clock a timer name stands for: "wall" (the host's clock_ns around each call), "cuda-events"
    (device-side events around each enqueue), else the timer's own name (a runner's private clock)."""
    t = str(timer or "wall")
    if t == "wall":
        return "wall"
    return "cuda-events" if "cuda" in t else t


@dataclass
class Timing:
    """Per-iteration latencies (ms), which clock measured them (`timer`: the path's name for it, `clock`:
    wall | cuda-events) and whether the timed region includes moving inputs/outputs (`copies_included`)."""

    samples_ms: list[float]
    timer: str = "wall"
    extras: dict[str, Any] = field(default_factory=dict)
    clock: str | None = None          # None: clock_of(timer)
    copies_included: bool = False

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = clock_of(self.timer)

    @property
    def iters(self) -> int:
        return len(self.samples_ms)

    def stats(self) -> dict[str, float]:
        return latency_stats(self.samples_ms)


def latency_stats(samples_ms: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean/min/max/std of per-iteration latencies in milliseconds."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()),
            "min": float(a.min()), "max": float(a.max()), "std": float(a.std())}


def time_callable(fn: Callable[[], Any], policy: TimingPolicy, *, sync: Callable[[], Any] | None = None,
                  on_iter: Callable[[], None] | None = None, clock: Callable[[], int] | None = None) -> Timing:
    """Time `fn` with `clock` (nanoseconds; default: the module's `clock_ns`, time.perf_counter_ns):
    warm-up, then `iters` runs or runs until `min_time` elapsed."""
    for _ in range(policy.warmup):
        fn()
    if sync:
        sync()
    samples: list[float] = []
    clock = clock or clock_ns
    fixed = policy.iters if policy.iters is not None or policy.min_time is None else None
    target = fixed or DEFAULT_ITERS
    budget_ns = int((policy.min_time or 0) * 1e9)
    start = clock()
    while True:
        t0 = clock()
        fn()
        if sync:
            sync()
        t1 = clock()
        samples.append((t1 - t0) / 1e6)
        if on_iter:
            on_iter()
        n = len(samples)
        if fixed is not None or policy.min_time is None:
            if n >= target:
                break
        elif (n >= policy.min_iters and t1 - start >= budget_ns) or n >= policy.max_iters:
            break
    return Timing(samples, "wall")


def time_timed_run(timed_run: Callable[[Any, int], list[float]], feeds: Any, policy: TimingPolicy, *,
                   timer: str = "runner", clock: Callable[[], int] | None = None) -> Timing:
    """Time a runner that measures itself (`timed_run(feeds, iters) -> [ms]`), honouring the policy.
    When timed_run accepts a `warmup` keyword (the TensorRT runner's does), the harness's warm-up is
    passed through it and later calls get warmup=0. With `min_time`, `clock` (nanoseconds; default the
    module's `clock_ns`) decides when enough chunks have run."""
    import inspect

    try:
        takes_warmup = "warmup" in inspect.signature(timed_run).parameters
    except (TypeError, ValueError):
        takes_warmup = False

    def call(n: int, first: bool = False) -> list[float]:
        if takes_warmup:
            return timed_run(feeds, n, warmup=policy.warmup if first else 0)
        if first and policy.warmup:
            timed_run(feeds, policy.warmup)
        return timed_run(feeds, n)

    if policy.iters is not None or policy.min_time is None:
        return Timing([float(v) for v in call(policy.iters or DEFAULT_ITERS, first=True)], timer)
    samples: list[float] = []
    chunk = policy.min_iters
    clock = clock or clock_ns
    budget_ns = int(policy.min_time * 1e9)
    started = clock()
    first = True
    while True:
        samples.extend(float(v) for v in call(chunk, first=first))
        first = False
        if len(samples) >= policy.min_iters and clock() - started >= budget_ns:
            break
        if len(samples) >= policy.max_iters:
            break
        chunk = min(chunk * 2, max(1, policy.max_iters - len(samples)))
    return Timing(samples, timer)


def time_runner(runner: Any, feeds: Mapping[str, np.ndarray], policy: TimingPolicy, *,
                on_iter: Callable[[], None] | None = None) -> Timing:
    """Time one runner on fixed feeds through the best path it offers (see the module docstring)."""
    from edgelstm.latency.adapters import fast_path
    from edgelstm.runners.contract import as_runner

    runner = as_runner(runner)
    if callable(runner.timed_run):
        timing = time_timed_run(runner.timed_run, feeds, policy, timer=runner.timed_with)
        timing.clock = str(runner.clock or timing.clock)
        timing.copies_included = bool(runner.copies_included)
        return timing
    path = fast_path(runner, feeds)
    return time_path(path, policy, on_iter=on_iter)


def time_path(path: Any, policy: TimingPolicy, *, on_iter: Callable[[], None] | None = None) -> Timing:
    """Time an adapters.FastPath: by its own device timer when it has one, else `call` on the wall clock;
    the Timing names the path, its clock and whether the path copies inputs/outputs."""
    if path.timed_run is not None:
        timing = time_timed_run(path.timed_run, None, policy, timer=path.timer)
    else:
        timing = time_callable(path.call, policy, sync=path.sync, on_iter=on_iter)
        timing.timer = path.timer
        timing.clock = clock_of(path.timer)
    timing.copies_included = bool(path.copies_included)
    timing.extras["path"] = path.name
    return timing


# --------------------------------------------------------------------------------- machine speed probe

_PROBE_STATE: dict[str, Any] = {}


def _probe_block() -> None:
    w, h0 = _PROBE_STATE["w"], _PROBE_STATE["h"]
    for _ in range(10):
        h = h0
        for _ in range(20):  # small matrix-vector products + tanh: the shape of a recurrent step
            h = np.tanh((h @ w)[:, :64])


def speed_probe(blocks: int = 5) -> float:
    """Milliseconds of a fixed small numpy workload (the best of `blocks` runs): how fast this machine is
    right now. Measured around every bench row, it lets the regression gate tell a slower model from a
    slower machine (a busy SMT sibling, a noisy neighbour, a lower clock), and bench's `retry_noisy` tell
    a row measured while the machine was busy.

    Callers look it up at call time (``from .harness import speed_probe`` inside the function, or
    ``harness.speed_probe(...)``), so that tests can replace it with a fake probe. It reads
    time.perf_counter_ns itself, not `clock_ns`: a fake clock then sees only the timed iterations."""
    if "w" not in _PROBE_STATE:
        rng = np.random.default_rng(12345)
        _PROBE_STATE["w"] = rng.standard_normal((64, 256)).astype(np.float32) * 0.1
        _PROBE_STATE["h"] = rng.standard_normal((1, 64)).astype(np.float32)
        _probe_block()
    best = float("inf")
    for _ in range(max(1, blocks)):
        t0 = time.perf_counter_ns()
        _probe_block()
        best = min(best, (time.perf_counter_ns() - t0) / 1e6)
    return best
