"""Same-run A/B latency comparison: is NEW slower than OLD, measured here and now, on this runner?

    compare_latency(new, old, options: CompareOptions, *, grid, bench, clock, on_progress) -> LatencyComparison

A stored baseline is only valid on the machine that made it, and a hosted CI runner is never the same machine
twice (another CPU, another neighbour). The comparison needs no stored number: it times both artifacts in one
run, alternating blocks of iterations (pairs of blocks, the order inside each pair random or balanced,
each model warmed up before its first block and each block opened by a few untimed iterations), and puts a
confidence interval on the latency ratio NEW/OLD (Hodges–Lehmann estimate, signed-rank interval over the
pairs' median ratios: see paired.py for why this is robust to load spikes and to sustained load).

The verdict is given only when the interval clears the tolerance, at every grid point (batch x seq x threads):

- "slower" when the whole interval is above max_slowdown (the gate fails: exit 1);
- "not slower" when the whole interval is below it (pass);
- "inconclusive" otherwise. The run then extends (looks at min_pairs, 2x, 4x ... max_pairs pairs, fresh
  runners each look) while the time budget (max_time per grid point) allows; what an inconclusive result
  does to the gate is `on_inconclusive` (fail | warn | pass; default fail: inconclusive is not a pass).

Looking at the data more than once, and at several grid points, would make a false verdict likelier; the
interval of each look is therefore computed at confidence 1 - (1 - confidence) / (looks x grid points)
(Bonferroni), so that `confidence` holds for the whole run.

Pure: nothing printed, no exit. Time is read only through `clock` (clock.py), so tests use a ManualClock;
`compare_point` runs the schedule on any two block timers (`(warm-up, iterations) -> [ms]`).
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgelstm.errors import BadInput, opt
from edgelstm.latency.clock import SYSTEM_CLOCK, Clock
from edgelstm.latency.paired import RatioInterval, ratio_interval
from edgelstm.latency.schema import BenchGrid, BenchOptions, BenchTarget
from edgelstm.options import BlockOrder, OnInconclusive, Verdict, check_float, check_int

SCHEMA = "edgelstm-bench-compare/1"
CALIBRATION_ITERS = 5          # timed iterations after the first warm-up, to size the blocks
MIN_BLOCK_ITERS = 3
MAX_BLOCK_ITERS = 100_000

#: The clock compare_latency reads when none is passed (tests of the command line replace it).
DEFAULT_CLOCK: Clock = SYSTEM_CLOCK

BlockTimer = Callable[[int, int], list[float]]          # (warm-up iterations, timed iterations) -> ms each
TimerFactory = Callable[[bool], tuple[BlockTimer, BlockTimer]]  # fresh runners? -> (NEW timer, OLD timer)
PairProgress = Callable[[int, int], None]               # (pairs done, pairs of the current look)
ProgressFn = Callable[[int, int, int, int], None]       # (grid point index, points, pairs done, pairs planned)


@dataclass(frozen=True)
class CompareOptions:
    """How to compare. max_slowdown 1.10: NEW may be at most 10% slower than OLD."""

    max_slowdown: float = 1.10
    confidence: float = 0.95          # for the whole run (all looks, all grid points)
    min_pairs: int = 16               # pairs of blocks in the first look
    max_pairs: int = 128              # the run extends (doubling) up to this many pairs while inconclusive
    max_time: float = 60.0            # seconds of measuring per grid point, at most (no new look beyond it)
    block_time: float = 0.03          # seconds per block: iterations per block sized from the warm-up
    block_iters: int | None = None    # or exactly this many timed iterations per block
    warmup: int = 10                  # untimed iterations of each model before its first block (each look)
    block_warmup: int = 2             # untimed iterations opening every block (caches after the other model)
    order: BlockOrder = BlockOrder.random
    seed: int = 0                     # of the random order
    on_inconclusive: OnInconclusive = OnInconclusive.fail
    fresh_runners: bool = True        # re-open both runners for every look after the first

    def __post_init__(self) -> None:
        check_float(self.max_slowdown, "max_slowdown", minimum=1.0)
        check_float(self.confidence, "confidence", minimum=0.5, strict=True, maximum=0.9999)
        check_int(self.min_pairs, "min_pairs", minimum=6)
        check_int(self.max_pairs, "max_pairs", minimum=self.min_pairs)
        check_float(self.max_time, "max_time", strict=True)
        check_float(self.block_time, "block_time", strict=True)
        check_int(self.block_iters, "block_iters", optional=True)
        check_int(self.warmup, "warmup", minimum=0)
        check_int(self.block_warmup, "block_warmup", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        for key, enum in (("order", BlockOrder), ("on_inconclusive", OnInconclusive)):
            try:
                object.__setattr__(self, key, enum(getattr(self, key)))
            except ValueError:
                raise BadInput(f"{opt(key)} must be one of {', '.join(e.value for e in enum)}, "
                               f"got {getattr(self, key)!r}") from None

    def looks(self) -> list[int]:
        """The pair counts at which the interval is looked at: min_pairs, doubling, ending at max_pairs."""
        out = [self.min_pairs]
        while out[-1] * 2 < self.max_pairs:
            out.append(out[-1] * 2)
        if out[-1] != self.max_pairs:
            out.append(self.max_pairs)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"max_slowdown": self.max_slowdown, "confidence": self.confidence, "min_pairs": self.min_pairs,
                "max_pairs": self.max_pairs, "max_time_s": self.max_time, "block_time_s": self.block_time,
                "block_iters": self.block_iters, "warmup": self.warmup, "block_warmup": self.block_warmup,
                "order": str(self.order), "seed": self.seed, "on_inconclusive": str(self.on_inconclusive),
                "fresh_runners": self.fresh_runners, "looks": self.looks()}


def judge(interval: RatioInterval, max_slowdown: float) -> Verdict:
    """slower / not slower only when the whole interval is on one side of max_slowdown."""
    if interval.low > max_slowdown:
        return Verdict.slower
    if interval.high < max_slowdown:
        return Verdict.not_slower
    return Verdict.inconclusive


@dataclass
class PointComparison:
    """NEW vs OLD at one grid point: the verdict, the interval it rests on and the measurements behind it."""

    batch: int
    seq: int
    threads: int | None
    verdict: Verdict
    interval: RatioInterval
    max_slowdown: float
    new_block_ms: list[float] = field(default_factory=list)   # median latency of each NEW block
    old_block_ms: list[float] = field(default_factory=list)   # of each OLD block, paired by index
    new_first: list[bool] = field(default_factory=list)       # which block of each pair ran first
    new_iters: int = 0                                        # timed iterations per block
    old_iters: int = 0
    looks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = ""                  # decided | max_pairs | max_time

    @property
    def ratio(self) -> float:
        return self.interval.estimate

    @property
    def new_ms(self) -> float:
        return statistics.median(self.new_block_ms) if self.new_block_ms else float("nan")

    @property
    def old_ms(self) -> float:
        return statistics.median(self.old_block_ms) if self.old_block_ms else float("nan")

    def describe(self) -> str:
        return f"batch {self.batch}, seq {self.seq}, threads {'default' if self.threads is None else self.threads}"

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "seq": self.seq, "threads": self.threads, "verdict": str(self.verdict),
                "ratio": self.interval.to_dict(), "max_slowdown": self.max_slowdown,
                "new_p50_ms": round(self.new_ms, 6), "old_p50_ms": round(self.old_ms, 6),
                "pairs": len(self.new_block_ms), "new_iters_per_block": self.new_iters,
                "old_iters_per_block": self.old_iters, "looks": self.looks, "seconds": round(self.seconds, 3),
                "stopped": self.stopped, "new_block_ms": [round(v, 6) for v in self.new_block_ms],
                "old_block_ms": [round(v, 6) for v in self.old_block_ms],
                "new_first": list(self.new_first)}


def overall_verdict(verdicts: Sequence[Verdict]) -> Verdict:
    """slower if any point is slower; else inconclusive if any is; else not slower."""
    if any(v == Verdict.slower for v in verdicts):
        return Verdict.slower
    if not verdicts or any(v == Verdict.inconclusive for v in verdicts):
        return Verdict.inconclusive
    return Verdict.not_slower


@dataclass
class LatencyComparison:
    """The result of compare_latency: one PointComparison per grid point and the run's verdict."""

    new: dict[str, Any]
    old: dict[str, Any]
    options: CompareOptions
    device: dict[str, Any]
    points: list[PointComparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    per_look_confidence: float = 0.95
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def verdict(self) -> Verdict:
        return overall_verdict([p.verdict for p in self.points])

    @property
    def passed(self) -> bool:
        """Whether the gate passes: not slower, or inconclusive when on_inconclusive is warn or pass."""
        v = self.verdict
        return v == Verdict.not_slower or (v == Verdict.inconclusive
                                           and self.options.on_inconclusive != OnInconclusive.fail)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "created": self.created, "verdict": str(self.verdict), "passed": self.passed,
                "max_slowdown": self.options.max_slowdown, "on_inconclusive": str(self.options.on_inconclusive),
                "method": "alternating blocks, ratio of block medians per pair, Hodges-Lehmann estimate, "
                          "signed-rank interval (Bonferroni over looks and grid points)",
                "per_look_confidence": round(self.per_look_confidence, 6), "new": self.new, "old": self.old,
                "device": self.device, "options": self.options.to_dict(),
                "points": [p.to_dict() for p in self.points], "warnings": self.warnings, "notes": self.notes}

    def to_markdown(self) -> str:
        from edgelstm.latency.compare_report import comparison_markdown

        return comparison_markdown(self.to_json())


# ------------------------------------------------------------------------------------------- the schedule


def _iters_for(samples_ms: Sequence[float], options: CompareOptions) -> int:
    if options.block_iters is not None:
        return options.block_iters
    per_iter = statistics.median(samples_ms) if samples_ms else 0.0
    if per_iter <= 0:
        return MAX_BLOCK_ITERS
    return int(min(MAX_BLOCK_ITERS, max(MIN_BLOCK_ITERS, math.ceil(options.block_time * 1e3 / per_iter))))


def _new_first(options: CompareOptions, rng: np.random.Generator, index: int) -> bool:
    if options.order == BlockOrder.balanced:
        return index % 2 == 0       # AB BA AB BA ...
    return bool(rng.integers(2))


def _block_median(timer: BlockTimer, warmup: int, iters: int) -> float:
    samples = timer(warmup, iters)
    if not samples:
        raise BadInput("a block timer returned no sample")
    value = float(statistics.median(samples))
    return value if value > 0 else 1e-9  # a clock too coarse for one iteration: never a zero in a ratio


def compare_point(make_timers: TimerFactory, options: CompareOptions, *, where: tuple[int, int, int | None],
                  clock: Clock = SYSTEM_CLOCK, alpha: float | None = None, rng: np.random.Generator | None = None,
                  on_pair: PairProgress | None = None) -> PointComparison:
    """Alternate blocks of NEW and OLD until the ratio's interval clears max_slowdown or the budget is spent.

    make_timers(fresh) gives the two block timers (fresh: re-open the runners first); alpha is the error
    allowed at each look (default: (1 - confidence) / looks); `where` = (batch, seq, threads) for the result."""
    looks = options.looks()
    alpha = (1 - options.confidence) / len(looks) if alpha is None else alpha
    rng = rng if rng is not None else np.random.default_rng(options.seed)
    budget_ns = options.max_time * 1e9
    start = clock.now_ns()
    point = PointComparison(*where, Verdict.inconclusive, RatioInterval(math.nan, 0.0, math.inf, 1 - alpha, 0),
                            options.max_slowdown, stopped="max_pairs")
    for look, target in enumerate(looks):
        new_timer, old_timer = make_timers(look > 0 and options.fresh_runners)
        warm_old = old_timer(options.warmup, CALIBRATION_ITERS)
        warm_new = new_timer(options.warmup, CALIBRATION_ITERS)
        if look == 0:
            point.new_iters, point.old_iters = _iters_for(warm_new, options), _iters_for(warm_old, options)
        while len(point.new_block_ms) < target and clock.now_ns() - start <= budget_ns:
            first_new = _new_first(options, rng, len(point.new_block_ms))
            runs = [(new_timer, point.new_iters), (old_timer, point.old_iters)]
            medians = [_block_median(t, options.block_warmup, n) for t, n in (runs if first_new else runs[::-1])]
            new_ms, old_ms = medians if first_new else medians[::-1]
            point.new_block_ms.append(new_ms)
            point.old_block_ms.append(old_ms)
            point.new_first.append(first_new)
            if on_pair:
                on_pair(len(point.new_block_ms), target)
        point.interval = ratio_interval(point.new_block_ms, point.old_block_ms, 1 - alpha)
        point.verdict = judge(point.interval, options.max_slowdown)
        elapsed = clock.now_ns() - start
        point.looks.append({"pairs": len(point.new_block_ms), **point.interval.to_dict(),
                            "verdict": str(point.verdict), "elapsed_s": round(elapsed / 1e9, 3)})
        if point.verdict != Verdict.inconclusive:
            point.stopped = "decided"
            break
        if look + 1 < len(looks):
            per_pair = elapsed / max(1, len(point.new_block_ms))
            if elapsed > budget_ns or per_pair * looks[look + 1] > budget_ns:
                point.stopped = "max_time"
                break
        elif len(point.new_block_ms) < target:
            point.stopped = "max_time"
    point.seconds = (clock.now_ns() - start) / 1e9
    return point


# ------------------------------------------------------------------------------------- artifacts, grid


def compare_latency(new: Any, old: Any, options: CompareOptions = CompareOptions(), *, grid: BenchGrid = BenchGrid(),
                    bench: BenchOptions = BenchOptions(), clock: Clock | None = None,
                    on_progress: ProgressFn | None = None, device: dict[str, Any] | None = None) -> LatencyComparison:
    """Time NEW and OLD (paths to torch files, ONNX files of any precision, engines; in-memory torch models;
    BenchTargets) interleaved at every grid point and judge NEW/OLD against options.max_slowdown.

    bench: the harness's options (backend, device, opt_level, torch loading options, input_size); its timing
    policy is not used (blocks are sized by `options`). clock: default the module's DEFAULT_CLOCK (looked up at
    call time, so a test of the command line replaces it). Raises BadInput/BackendMissing before any timing."""
    from edgelstm.latency.bencher import Bencher
    from edgelstm.latency.threads import set_torch_threads
    from edgelstm.latency.compare_report import describe_side, pair_notes, pair_warnings
    from edgelstm.latency.preflight import isa_warnings
    from edgelstm.machine.device import describe_device

    if bench.stream:
        raise BadInput(f"{opt('stream')} does not apply to a comparison with {opt('against')}")
    clock = clock or DEFAULT_CLOCK
    points = grid.points()
    per_look = (1 - options.confidence) / (len(options.looks()) * len(points))
    rng = np.random.default_rng(options.seed)
    with Bencher(bench, grid) as bencher:
        new_res = bencher.add(_as_target(new))
        old_res = bencher.add(_as_target(old))
        device = device or describe_device(gpu=any(r.device.startswith("cuda") for r in (new_res, old_res)))
        result = LatencyComparison(describe_side(new_res), describe_side(old_res), options, device,
                                   warnings=pair_warnings(new_res, old_res) + isa_warnings([new_res, old_res], device),
                                   notes=pair_notes(new_res, old_res), per_look_confidence=1 - per_look)
        torch_side = "torch" if "torch" in (new_res.backend, old_res.backend) else ""
        for index, (batch, seq, threads) in enumerate(points):
            def make_timers(fresh: bool, b=batch, s=seq, t=threads) -> tuple[BlockTimer, BlockTimer]:
                return (block_timer(bencher, new_res, b, s, t, clock, fresh, result.new),
                        block_timer(bencher, old_res, b, s, t, clock, fresh, result.old))

            def on_pair(done: int, planned: int, i=index) -> None:
                if on_progress:
                    on_progress(i, len(points), done, planned)

            restore = set_torch_threads(torch_side, threads)
            try:
                result.points.append(compare_point(make_timers, options, where=(batch, seq, threads), clock=clock,
                                                   alpha=per_look, rng=rng, on_pair=on_pair))
            finally:
                restore()
    return result


def _as_target(x: Any) -> Any:
    return x if isinstance(x, BenchTarget) else BenchTarget(Path(x) if isinstance(x, str) else x)


def block_timer(bencher: Any, res: Any, batch: int, seq: int, threads: int | None, clock: Clock, fresh: bool,
                side: dict[str, Any] | None = None) -> BlockTimer:
    """A block timer for one target at one grid point, through the path bench times: the runner's own device
    timer (timed_run: TensorRT's CUDA events) when it has one, else its fastest path (IO binding, staged torch
    tensors, autocast / CUDA graph variants) timed with `clock`. Records the path in `side`."""
    from edgelstm.latency.adapters import fast_path
    from edgelstm.latency.harness import TimingPolicy, clock_of, time_callable, time_timed_run

    runner, feeds = bencher.staged(res, batch, seq, threads, fresh=fresh)
    timed = runner.timed_run
    if not callable(timed):
        variant = res.target.variant
        path = fast_path(runner, feeds, amp="amp" in variant, cuda_graph="cuda-graph" in variant)
        timed, feeds, name, timer = path.timed_run, None, path.name, path.timer
    else:  # as harness.time_runner names it: TensorRT's timer is CUDA events unless the runner says otherwise
        path, name, timer = None, "timed_run", runner.timed_with
    if side is not None:
        side.update({"timing_path": name, "clock": str(runner.clock or clock_of(timer))})
    if timed is not None:
        return lambda warmup, iters: time_timed_run(timed, feeds, TimingPolicy(warmup=warmup, iters=iters)).samples_ms
    return lambda warmup, iters: time_callable(path.call, TimingPolicy(warmup=warmup, iters=iters), sync=path.sync,
                                               clock=clock.now_ns).samples_ms


__all__ = ["BlockTimer", "CompareOptions", "LatencyComparison", "PointComparison", "SCHEMA", "compare_latency",
           "compare_point", "judge", "overall_verdict"]
