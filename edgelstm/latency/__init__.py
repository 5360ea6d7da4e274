"""Latency benchmarks: a timing harness, the bench stage, streaming, the regression gate, reports.

Library entry points (the CLI `edgelstm bench` and the demo call these):

    bench_artifacts(targets, grid, options, *, baseline=None, max_slowdown=1.10) -> BenchReport
    summarize(report, reference=None) -> list[dict]      # size, p50, clock, speed-up vs torch eager
    speedup(report, artifact, reference, **match) -> float | None
    compare_reports(current, baseline, max_slowdown=..., remeasure=...) -> RegressionResult
    compare_latency(new, old, CompareOptions(...), grid=..., bench=..., clock=...) -> LatencyComparison
    write_json / write_csv / write_markdown / plot_report
    describe_device() -> dict

Modules: schema (grid, options, rows, report, row keys), preflight (checks before timing), harness (the
timing loop, clocks), adapters / stream (fast paths), bencher (the timing engine), bench (the stage),
summary, regression (the gate against a stored baseline), compare / paired / compare_report / clock (the
same-run A/B comparison), report / plot (files), memory.
"""

from edgelstm.latency.bench import bench_artifacts  # noqa: F401
from edgelstm.latency.bencher import Bencher, looks_disturbed  # noqa: F401
from edgelstm.latency.clock import Clock, ManualClock, SystemClock  # noqa: F401
from edgelstm.latency.compare import CompareOptions, LatencyComparison, PointComparison, compare_latency  # noqa: F401
from edgelstm.latency.harness import Timing, TimingPolicy, latency_stats, time_callable, time_runner  # noqa: F401
from edgelstm.latency.plot import plot_report, plot_speedups  # noqa: F401
from edgelstm.latency.regression import RegressionResult, compare_reports, load_baseline  # noqa: F401
from edgelstm.latency.report import markdown_table, write_csv, write_json, write_markdown  # noqa: F401
from edgelstm.latency.schema import (  # noqa: F401
    BenchGrid,
    BenchOptions,
    BenchReport,
    BenchRow,
    BenchTarget,
    describe_key,
    planned_rows,
    row_key,
)
from edgelstm.latency.summary import speedup, stream_summary, summarize  # noqa: F401
from edgelstm.machine.device import describe_device, machine_slug  # noqa: F401

__all__ = [
    "BenchGrid", "BenchOptions", "BenchReport", "BenchRow", "BenchTarget", "Bencher", "Clock", "CompareOptions",
    "LatencyComparison", "ManualClock", "PointComparison", "RegressionResult", "SystemClock", "Timing",
    "TimingPolicy", "bench_artifacts", "compare_latency", "compare_reports", "describe_device", "describe_key", "latency_stats",
    "load_baseline", "looks_disturbed", "machine_slug", "markdown_table", "planned_rows", "plot_report",
    "plot_speedups", "row_key", "speedup", "stream_summary", "summarize", "time_callable", "time_runner",
    "write_csv", "write_json", "write_markdown",
]
