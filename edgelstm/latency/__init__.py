"""Latency benchmarks: a timing harness, the bench stage, streaming, the regression gate, reports.

Library entry points (the CLI `edgelstm bench` and the demo call these):

    bench_artifacts(targets, grid, options, *, baseline=None, max_slowdown=1.10) -> BenchReport
    summarize(report, reference=None) -> list[dict]      # size, p50, speed-up vs torch eager
    speedup(report, artifact, reference, **match) -> float | None
    compare_reports(current, baseline, max_slowdown=..., remeasure=...) -> RegressionResult
    write_json / write_csv / write_markdown / plot_report
    describe_device() -> dict
"""

from edgelstm.latency.bench import (  # noqa: F401
    BenchGrid,
    BenchOptions,
    BenchReport,
    BenchRow,
    BenchTarget,
    Bencher,
    bench_artifacts,
    planned_rows,
    row_key,
    speedup,
    summarize,
)
from edgelstm.machine.device import describe_device, machine_slug  # noqa: F401
from edgelstm.latency.harness import Timing, TimingPolicy, latency_stats, time_callable, time_runner  # noqa: F401
from edgelstm.latency.plot import plot_report, plot_speedups  # noqa: F401
from edgelstm.latency.regression import RegressionResult, compare_reports, load_baseline  # noqa: F401
from edgelstm.latency.report import markdown_table, write_csv, write_json, write_markdown  # noqa: F401
